#include "api/attrs.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Glob with '*' (not '/'), '?', '[..]' (via fnmatch on one char) and '**'. */
static int glob(const char *p, const char *s) {
  while (*p) {
    if (p[0] == '*' && p[1] == '*') {
      p += 2;
      if (*p == '/') p++;
      if (!*p) return 1;
      for (const char *t = s;; t++) {
        if (glob(p, t)) return 1;
        if (!*t) return 0;
      }
    }
    if (*p == '*') {
      p++;
      for (const char *t = s;; t++) {
        if (glob(p, t)) return 1;
        if (!*t || *t == '/') return 0;
      }
    }
    if (!*s) return 0;
    if (*p == '[') {
      const char *close = strchr(p + 1, ']');
      if (!close) return 0;
      char cls[64];
      size_t n = (size_t)(close - p + 1);
      if (n >= sizeof cls) return 0;
      memcpy(cls, p, n);
      cls[n] = 0;
      char one[2] = {*s, 0};
      if (*s == '/' || fnmatch(cls, one, 0) != 0) return 0;
      p = close + 1;
      s++;
      continue;
    }
    if (*p == '?') {
      if (*s == '/') return 0;
    } else if (*p == '\\' && p[1]) {
      p++;
      if (*p != *s) return 0;
    } else if (*p != *s) {
      return 0;
    }
    p++;
    s++;
  }
  return *s == 0;
}

int attrs_glob_match(const char *pattern, const char *path) {
  if (*pattern == '/') return glob(pattern + 1, path);
  if (!strchr(pattern, '/')) {
    /* Matches the basename, or any directory component (gitignore semantics). */
    const char *seg = path;
    for (;;) {
      const char *slash = strchr(seg, '/');
      size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
      char buf[1024];
      if (n < sizeof buf) {
        memcpy(buf, seg, n);
        buf[n] = 0;
        if (glob(pattern, buf)) return 1;
      }
      if (!slash) return 0;
      seg = slash + 1;
    }
  }
  return glob(pattern, path);
}

/* Iterate lines; cb returns -1 to continue, else the value to keep as "last match". */
static int last_match(const char *text, const char *path, int attrs) {
  int result = 0;
  if (!text) return 0;
  const char *line = text;
  while (*line) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    char buf[1024];
    if (n < sizeof buf) {
      memcpy(buf, line, n);
      buf[n] = 0;
      char *b = buf;
      while (*b == ' ' || *b == '\t')
        b++;
      size_t bl = strlen(b);
      while (bl && (b[bl - 1] == '\r' || b[bl - 1] == ' ' || b[bl - 1] == '\t'))
        b[--bl] = 0;
      if (*b && *b != '#') {
        if (attrs) {
          char *sp = b + strcspn(b, " \t");
          if (*sp) {
            *sp++ = 0;
            if (attrs_glob_match(b, path)) {
              if (strstr(sp, "filter=lfs"))
                result = 1;
              else if (strstr(sp, "-filter") || strstr(sp, "!filter"))
                result = 0;
            }
          }
        } else {
          int neg = *b == '!';
          if (neg) b++;
          if (bl && b[strlen(b) - 1] == '/') b[strlen(b) - 1] = 0;
          if (*b && attrs_glob_match(b, path)) result = !neg;
        }
      }
    }
    line += n + (nl ? 1 : 0);
  }
  return result;
}

int attrs_is_lfs(const char *attributes, const char *path) {
  return last_match(attributes, path, 1);
}

int attrs_is_ignored(const char *gitignore, const char *path) {
  return last_match(gitignore, path, 0);
}
