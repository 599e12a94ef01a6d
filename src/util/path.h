/* Validation of repo-internal file paths ("dir/sub/file.bin"), applied before a path from
 * the wire touches git, the filesystem, the DB or an HTML page.
 *
 * A valid path: 1..HUB_MAX_PATH bytes; valid UTF-8; no NUL, control character (< 0x20,
 * 0x7f) or backslash; no leading '/', no empty segment (so no "//" and no trailing '/');
 * no "." or ".." segment; no ".git" segment in any letter case, nor one NTFS or HFS+
 * would read as ".git" (".git.", ".git ", ".git:x", "git~1", ".g\u200cit"; git's verify_path
 * with core.protectNTFS/protectHFS, which libgit2 applies when it writes a tree). */
#ifndef HUB_UTIL_PATH_H
#define HUB_UTIL_PATH_H

#include <stddef.h>

/* 1 if the NUL-terminated `p` is valid, else 0. Does not touch the error message. */
int path_valid(const char *p);
/* Same for `len` bytes at `p` (an embedded NUL makes it invalid). */
int path_valid_n(const char *p, size_t len);
/* 0 if valid, else HUB_EINVALID with hub_error_msg() = "invalid path '<p>': <reason>"
 * (the path is shown with unprintable bytes replaced and truncated, safe for a header). */
int path_check_n(const char *p, size_t len);

/* For folder arguments ("deletedFolder", tree paths): strip one trailing '/' in place, then
 * return path_check_n() of the result (0 or HUB_EINVALID). */
int path_normalize_folder(char *p);

/* Copy `len` bytes of `p` into out (cap bytes incl. NUL) for an error message: bytes
 * outside printable ASCII become '?', and a long input is cut with "...". */
void path_quote(char *out, size_t cap, const char *p, size_t len);

#endif
