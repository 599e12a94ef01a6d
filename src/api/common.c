#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "http/internal.h"
#include "util/error.h"

void api_repo_dir(const char *uid, char *out, size_t cap) {
  snprintf(out, cap, "%s/repos/%.2s/%.2s/%s.git", db_data_dir(), uid, uid + 2, uid);
}

static void close_repo(void *h) {
  repo_free(h);
}

int api_repo_open(hub_req *r, repo_handle **out) {
  if (r->state_repo) {
    *out = r->state_repo;
    return 0;
  }
  char dir[4200];
  api_repo_dir(r->repo.uid, dir, sizeof dir);
  int rc = repo_open(out, dir);
  if (rc) return rc;
  r->state_repo = *out;
  http_cleanup_add(r, close_repo, *out);
  return 0;
}

void api_iso_time(int64_t ms, char *out) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[24];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.%03dZ", b, (int)(ms % 1000));
}

json_t *api_iso_json(int64_t ms) {
  char b[32];
  api_iso_time(ms, b);
  return json_string(b);
}

int api_name_valid(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > HUB_MAX_NAME) return 0;
  if (strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
    return 0;
  if (strstr(n, "--") || strstr(n, "..")) return 0;
  if (n[0] == '-' || n[0] == '.' || n[len - 1] == '-' || n[len - 1] == '.') return 0;
  return 1;
}

char *api_repo_url(hub_req *r, const db_repo *repo) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_printf(&b, "%s/%s%s/%s", http_base_url(r), http_type_prefix(repo->type), repo->ns,
                 repo->name);
  if (b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  char *s = hub_buf_detach(&b);
  http_cleanup_add(r, free, s);
  return s;
}

char *api_join_rest(hub_req *r, size_t from, size_t upto) {
  hub_buf b = HUB_BUF_INIT;
  for (size_t i = from; i < upto && i < r->nrest; i++) {
    char *seg = strdup(r->rest[i]);
    if (!seg || http_pct_decode(seg, 0)) {
      free(seg);
      hub_buf_dispose(&b);
      hub_error_set(HUB_EINVALID, "Malformed percent-encoding in path");
      return NULL;
    }
    if (i > from) hub_buf_putc(&b, '/');
    hub_buf_puts(&b, seg);
    free(seg);
  }
  if (b.failed) {
    hub_buf_dispose(&b);
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  char *s = hub_buf_detach(&b);
  http_cleanup_add(r, free, s);
  return s;
}
