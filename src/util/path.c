#include "util/path.h"

#include "util/error.h"
#include "util/limits.h"

#include <string.h>

/* Length of the UTF-8 sequence at p (at most n bytes available), or 0 if malformed
 * (overlong forms, surrogates and code points above U+10FFFF are malformed). */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t len;
  unsigned min;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

static int seg_is(const char *s, size_t n, const char *lit) {
  return n == strlen(lit) && !memcmp(s, lit, n);
}

static int seg_is_dotgit(const char *s, size_t n) {
  static const char g[] = ".git";
  if (n != 4) return 0;
  for (size_t i = 0; i < 4; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != g[i]) return 0;
  }
  return 1;
}

static int ci_prefix(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n < m) return 0;
  for (size_t i = 0; i < m; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != lit[i]) return 0;
  }
  return 1;
}

/* A name NTFS resolves to ".git" (git's is_ntfs_dotgit): ".git" or its 8.3 short name
 * "git~1", followed only by spaces and dots (which NTFS strips), or by ':' (an alternate
 * data stream of .git). */
static int seg_is_ntfs_dotgit(const char *s, size_t n) {
  size_t i;
  if (ci_prefix(s, n, ".git"))
    i = 4;
  else if (ci_prefix(s, n, "git~1"))
    i = 5;
  else
    return 0;
  for (; i < n; i++) {
    if (s[i] == ':') return 1;
    if (s[i] != ' ' && s[i] != '.') return 0;
  }
  return 1;
}

/* Length of a code point HFS+ ignores in names (git's is_hfs_dotgit: U+200C..U+200F,
 * U+202A..U+202E, U+206A..U+206F, U+FEFF) at s[0..n), else 0. */
static size_t hfs_ignorable(const unsigned char *s, size_t n) {
  if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
      ((s[2] >= 0x8c && s[2] <= 0x8f) || (s[2] >= 0xaa && s[2] <= 0xae)))
    return 3;
  if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xaa && s[2] <= 0xaf) return 3;
  if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) return 3;
  return 0;
}

/* A name HFS+ resolves to ".git": ".git" in any case with ignorable code points mixed in. */
static int seg_is_hfs_dotgit(const char *s, size_t n) {
  static const char g[] = ".git";
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    size_t skip = hfs_ignorable((const unsigned char *)s + i, n - i);
    if (skip) {
      i += skip;
      continue;
    }
    char c = s[i++];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (k >= 4 || c != g[k]) return 0;
    k++;
  }
  return k == 4;
}

/* NULL if valid, else the reason. */
static const char *path_problem(const char *p, size_t len) {
  if (!p || len == 0) return "empty";
  if (len > HUB_MAX_PATH) return "too long";
  if (p[0] == '/') return "must not start with '/'";
  size_t seg = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || p[i] == '/') {
      const char *s = p + seg;
      size_t n = i - seg;
      if (n == 0) return "empty segment";
      if (seg_is(s, n, ".") || seg_is(s, n, "..")) return "'.' or '..' segment";
      if (seg_is_dotgit(s, n)) return "'.git' segment";
      if (seg_is_ntfs_dotgit(s, n) || seg_is_hfs_dotgit(s, n))
        return "segment that Windows or macOS would read as '.git'";
      seg = i + 1;
      continue;
    }
    unsigned char c = (unsigned char)p[i];
    if (c == 0) return "NUL byte";
    if (c < 0x20 || c == 0x7f) return "control character";
    if (c == '\\') return "backslash";
    if (c >= 0x80) {
      size_t n = utf8_len((const unsigned char *)p + i, len - i);
      if (!n) return "invalid UTF-8";
      i += n - 1;
    }
  }
  return NULL;
}

int path_valid_n(const char *p, size_t len) {
  return path_problem(p, len) == NULL;
}

int path_valid(const char *p) {
  return p && path_valid_n(p, strlen(p));
}

void path_quote(char *out, size_t cap, const char *p, size_t len) {
  if (!cap) return;
  if (!p) len = 0;
  int cut = len > cap - 1;
  size_t n = cut ? (cap > 4 ? cap - 4 : cap - 1) : len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
  }
  if (cut && cap > 4) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = 0;
}

int path_check_n(const char *p, size_t len) {
  const char *why = path_problem(p, len);
  char q[128];
  if (!why) return 0;
  path_quote(q, sizeof q, p, len);
  return hub_error_set(HUB_EINVALID, "invalid path '%s': %s", q, why);
}

int path_normalize_folder(char *p) {
  size_t n = strlen(p);
  if (n > 0 && p[n - 1] == '/') p[--n] = 0;
  return path_check_n(p, n);
}
