/* .gitattributes / .gitignore pattern matching, enough for upload decisions. */
#ifndef HUB_API_ATTRS_H
#define HUB_API_ATTRS_H

/* 1 if gitignore-style `pattern` matches repo path `path`: a pattern without '/' matches
 * the basename (or, for ignore files, any parent directory name); with '/' it matches the
 * whole path, '**' crossing directories. */
int attrs_glob_match(const char *pattern, const char *path);
/* 1 if `attributes` (file text) marks `path` with filter=lfs (last matching line wins). */
int attrs_is_lfs(const char *attributes, const char *path);
/* 1 if `gitignore` text ignores `path` (negations with '!' honoured, last match wins). */
int attrs_is_ignored(const char *gitignore, const char *path);

#endif
