/* Route pattern matching over raw path segments (pure; unit-tested and fuzzed). */
#ifndef HUB_HTTP_ROUTER_H
#define HUB_HTTP_ROUTER_H

#include <stddef.h>

typedef struct {
  int repo_type; /* from {type} or {prefix}; 0 (model) when absent */
  int has_repo;
  size_t repo_seg; /* index of the namespace segment */
  int dot_git;     /* the name segment ended in ".git" (stripped by the caller) */
  size_t cap[4];
  size_t ncap;
  int has_rest;
  size_t rest; /* index of the first rest segment */
} router_match_t;

/* Split `path` in place on '/', after one leading '/'. Empty segments are kept
 * ("/a//b" → "a","","b"). Fails (-1) when over `max` segments or not starting with '/'. */
int router_split(char *path, char **segs, size_t max, size_t *n);
/* 1 if pattern matches the raw segments, filling *m; 0 otherwise. */
int router_match(const char *pattern, char *const *segs, size_t n, router_match_t *m);

#endif
