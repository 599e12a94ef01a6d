#include "http/router.h"

#include <string.h>

#include "db/db.h"

int router_split(char *path, char **segs, size_t max, size_t *n) {
  *n = 0;
  if (!path || path[0] != '/') return -1;
  char *p = path + 1;
  if (!*p) return 0; /* "/" has no segments */
  for (;;) {
    if (*n >= max) return -1;
    segs[(*n)++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = 0;
    p = slash + 1;
  }
  return 0;
}

static int type_of(const char *seg, size_t len, int api, int *out) {
  static const char *const api_names[] = {"models", "datasets", "spaces"};
  for (int i = api ? 0 : 1; i < 3; i++)
    if (strlen(api_names[i]) == len && memcmp(api_names[i], seg, len) == 0) {
      *out = i == 0 ? HUB_REPO_MODEL : i == 1 ? HUB_REPO_DATASET : HUB_REPO_SPACE;
      return 1;
    }
  return 0;
}

int router_match(const char *pattern, char *const *segs, size_t n, router_match_t *m) {
  memset(m, 0, sizeof *m);
  const char *p = pattern;
  size_t i = 0;
  if (*p == '/') p++;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t tl = end ? (size_t)(end - p) : strlen(p);
    if (tl == 3 && memcmp(p, "{*}", 3) == 0) {
      m->has_rest = 1;
      m->rest = i;
      return 1;
    } else if (tl == 8 && memcmp(p, "{prefix}", 8) == 0) {
      if (i < n && type_of(segs[i], strlen(segs[i]), 0, &m->repo_type)) i++;
    } else if (tl == 6 && memcmp(p, "{type}", 6) == 0) {
      if (i >= n || !type_of(segs[i], strlen(segs[i]), 1, &m->repo_type)) return 0;
      i++;
    } else if (tl == 6 && memcmp(p, "{repo}", 6) == 0) {
      if (i + 2 > n || !*segs[i] || !*segs[i + 1]) return 0;
      size_t nl = strlen(segs[i + 1]);
      m->dot_git = nl > 4 && memcmp(segs[i + 1] + nl - 4, ".git", 4) == 0;
      m->has_repo = 1;
      m->repo_seg = i;
      i += 2;
    } else if (tl >= 2 && p[0] == '{' && p[tl - 1] == '}') {
      if (i >= n || !*segs[i] || m->ncap >= 4) return 0;
      m->cap[m->ncap++] = i++;
    } else {
      if (i >= n || strlen(segs[i]) != tl || memcmp(segs[i], p, tl) != 0) return 0;
      i++;
    }
    p += tl;
    if (*p == '/') p++;
  }
  return i == n;
}
