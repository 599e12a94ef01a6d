/* Listing: tree/{rev}[/{path}] and paths-info/{rev}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "http/internal.h"
#include "util/error.h"

#define TREE_PAGE 1000
#define TREE_PAGE_EXPAND 100

struct tree_ctx {
  hub_req *r;
  repo_handle *h;
  const char *sha;
  json_t *arr;
  size_t skip, limit, seen;
  int expand, more;
};

static int tree_entry(const repo_entry *e, void *payload) {
  struct tree_ctx *c = payload;
  size_t i = c->seen++;
  if (i < c->skip) return 0;
  if (i >= c->skip + c->limit) {
    c->more = 1;
    return 1; /* stop: a next page exists */
  }
  json_t *o = api_entry_json(c->r, c->h, c->sha, e, c->expand);
  if (!o) return HUB_ERROR;
  json_array_append_new(c->arr, o);
  return 0;
}

static int h_tree(hub_req *r) {
  repo_handle *h;
  char sha[41];
  const char *path;
  int rc = api_rev_and_path(r, &h, sha, &path);
  if (rc) return rc;
  while (*path == '/')
    path++;
  struct tree_ctx c = {r, h, sha, json_array(), 0, 0, 0, 0, 0};
  c.expand = http_param_bool(r, "expand", 0);
  c.limit = c.expand ? TREE_PAGE_EXPAND : TREE_PAGE;
  const char *cur = http_param(r, "cursor");
  if (cur) c.skip = strtoull(cur, NULL, 10);
  if (c.skip > SIZE_MAX - c.limit) c.skip = SIZE_MAX - c.limit; /* skip + limit never wraps */
  rc = repo_list(h, sha, path, http_param_bool(r, "recursive", 0), tree_entry, &c);
  if (rc < 0) {
    json_decref(c.arr);
    if (rc == HUB_EENTRY) {
      hub_error_set(HUB_EENTRY, "Entry not found");
      rc = http_reply_error(r, HUB_EENTRY);
      if (!rc) http_add_header(r, "X-Repo-Commit", sha);
      return rc;
    }
    return rc;
  }
  rc = http_reply_json(r, 200, c.arr);
  if (rc) return rc;
  http_add_header(r, "X-Repo-Commit", sha);
  if (c.more) {
    char v[32];
    snprintf(v, sizeof v, "%zu", c.skip + c.limit);
    api_next_link(r, "cursor", v);
  }
  return 0;
}

/* paths-info takes a form body (Python) or JSON (JS): collect paths + expand from either. */
static int paths_from_body(hub_req *r, json_t **out_paths, int *expand) {
  const char *ct = http_header(r, "Content-Type");
  json_t *paths = json_array();
  *expand = 0;
  if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
    char *body = strndup(r->body.ptr ? r->body.ptr : "", r->body.len);
    if (!body) return hub_error_set(HUB_ERROR, "out of memory");
    for (char *save = NULL, *kv = strtok_r(body, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
      char *eq = strchr(kv, '=');
      if (!eq) continue;
      *eq = 0;
      if (http_pct_decode(kv, 1) || http_pct_decode(eq + 1, 1)) {
        free(body);
        json_decref(paths);
        return hub_error_set(HUB_EINVALID, "Malformed form body");
      }
      if (!strcmp(kv, "paths") || !strcmp(kv, "paths[]"))
        json_array_append_new(paths, json_string(eq + 1));
      else if (!strcmp(kv, "expand"))
        *expand = !strcasecmp(eq + 1, "true") || !strcmp(eq + 1, "1");
    }
    free(body);
  } else {
    json_t *b = http_body_json(r);
    if (!b) {
      json_decref(paths);
      return HUB_EINVALID;
    }
    json_t *p = json_object_get(b, "paths"), *v;
    size_t i;
    if (json_is_string(p)) {
      json_array_append(paths, p);
    } else if (json_is_array(p)) {
      json_array_foreach(p, i, v) {
        if (json_is_string(v)) json_array_append(paths, v);
      }
    } else {
      json_decref(paths);
      return hub_error_set(HUB_EINVALID, "paths must be a list of strings");
    }
    *expand = json_is_true(json_object_get(b, "expand"));
  }
  if (json_array_size(paths) > HUB_MAX_PAGE) {
    json_decref(paths);
    return hub_error_set(HUB_EINVALID, "At most %d paths per request", HUB_MAX_PAGE);
  }
  *out_paths = paths;
  return 0;
}

static int h_paths_info(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  if (!r->nrest) return hub_error_set(HUB_EREVISION, "Missing revision");
  const char *rev = api_join_rest(r, 0, r->nrest);
  if (!rev) return hub_error_code();
  char sha[41];
  if ((rc = repo_resolve(h, rev, sha, NULL))) return rc;
  json_t *paths = NULL;
  int expand = 0;
  if ((rc = paths_from_body(r, &paths, &expand))) return rc;
  /* expand walks history for each path (lastCommit): as many paths as one expanded tree
   * page, so one request costs at most what a tree page with expand=true costs. */
  if (expand && json_array_size(paths) > TREE_PAGE_EXPAND) {
    json_decref(paths);
    return hub_error_set(HUB_EINVALID, "At most %d paths per request with expand=true",
                         TREE_PAGE_EXPAND);
  }
  json_t *out = json_array(), *p;
  size_t i;
  json_array_foreach(paths, i, p) {
    const char *path = json_string_value(p);
    while (*path == '/')
      path++;
    repo_entry e;
    if (!*path || repo_stat(h, sha, path, &e)) continue; /* absent paths are left out */
    json_t *o = api_entry_json(r, h, sha, &e, expand);
    repo_entry_dispose(&e);
    if (o) json_array_append_new(out, o);
  }
  json_decref(paths);
  rc = http_reply_json(r, 200, out);
  if (!rc) http_add_header(r, "X-Repo-Commit", sha);
  return rc;
}

const hub_route api_tree_routes[] = {
    {"GET", "/api/{type}/{repo}/tree/{*}", h_tree, NEED_REPO_FILES, BODY_NONE, NULL, 0},
    {"POST", "/api/{type}/{repo}/paths-info/{*}", h_paths_info, NEED_REPO_FILES, BODY_JSON, NULL,
     0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
