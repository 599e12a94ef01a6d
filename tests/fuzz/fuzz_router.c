/* Raw request path → split, percent-decode, match against every route pattern. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/internal.h"
#include "http/router.h"

static const hub_route *const tables[] = {api_system_routes, api_account_routes, api_repo_routes,
                                          api_info_routes,   api_tree_routes,    api_refs_routes,
                                          api_commit_routes, api_resolve_routes};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *path = malloc(size + 2);
  path[0] = '/';
  memcpy(path + 1, data, size);
  path[size + 1] = 0;
  char *segs[HUB_MAX_URL_SEGMENTS];
  size_t n = 0;
  if (router_split(path, segs, HUB_MAX_URL_SEGMENTS, &n) == 0) {
    router_match_t m;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
      for (const hub_route *r = tables[t]; r->pattern; r++)
        if (router_match(r->pattern, segs, n, &m)) {
          if (m.has_repo && m.repo_seg + 1 >= n + 1) abort();
          if (m.has_rest && m.rest > n) abort();
          for (size_t i = 0; i < m.ncap; i++)
            if (m.cap[i] >= n) abort();
        }
    for (size_t i = 0; i < n; i++) {
      char *copy = strdup(segs[i]);
      size_t before = strlen(copy);
      if (http_pct_decode(copy, i & 1) == 0 && strlen(copy) > before) abort();
      free(copy);
    }
  }
  free(path);
  return 0;
}
