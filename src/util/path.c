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
