/* Repo info: GET /api/{type}s/{repo}[/revision/{rev}]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/error.h"

struct sib_ctx {
  json_t *arr;
  int blobs;
  uint64_t used;
};

static int add_sibling(const repo_entry *e, void *payload) {
  struct sib_ctx *c = payload;
  if (e->type != REPO_ENTRY_FILE) return 0;
  json_t *s = json_pack("{s:s}", "rfilename", e->path);
  if (!s) return HUB_ERROR;
  c->used += e->size;
  if (c->blobs) {
    json_object_set_new(s, "size", json_integer((json_int_t)e->size));
    json_object_set_new(s, "blobId", json_string(e->oid));
    if (e->is_lfs)
      json_object_set_new(s, "lfs",
                          json_pack("{s:s, s:I, s:I}", "sha256", e->lfs_oid, "size",
                                    (json_int_t)e->lfs_size, "pointerSize",
                                    (json_int_t)e->pointer_size));
  }
  json_array_append_new(c->arr, s);
  return 0;
}

json_t *api_repo_json(hub_req *r, const db_repo *repo, const char *rev, int blobs) {
  repo_handle *h = NULL;
  int rc = api_repo_open(r, &h);
  if (rc) return NULL;
  char sha[41];
  if ((rc = repo_resolve(h, rev ? rev : "HEAD", sha, NULL))) return NULL;
  repo_commit_info ci;
  int64_t last_ms = repo->updated_ms;
  if (repo_commit_info_get(h, sha, &ci) == 0) {
    last_ms = ci.date * 1000;
    repo_commit_info_dispose(&ci);
  }
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", repo->ns, repo->name);
  json_t *o = json_object();
  json_object_set_new(o, "_id", json_string(repo->uid));
  json_object_set_new(o, "id", json_string(id));
  if (repo->type == HUB_REPO_MODEL) json_object_set_new(o, "modelId", json_string(id));
  json_object_set_new(o, "author", json_string(repo->ns));
  json_object_set_new(o, "sha", json_string(sha));
  json_object_set_new(o, "lastModified", api_iso_json(last_ms));
  json_object_set_new(o, "createdAt", api_iso_json(repo->created_ms));
  json_object_set_new(o, "private", json_boolean(repo->is_private));
  json_object_set_new(o, "gated", repo->gated[0] ? json_string(repo->gated) : json_false());
  json_object_set_new(o, "disabled", json_boolean(repo->disabled));
  json_object_set_new(o, "downloads", json_integer(0));
  json_object_set_new(o, "downloadsAllTime", json_integer(0));
  json_object_set_new(o, "likes", json_integer(0));
  json_object_set_new(o, "trendingScore", json_integer(0));
  json_object_set_new(o, "tags", json_array());
  json_object_set_new(o, "spaces", json_array());
  struct sib_ctx c = {json_array(), blobs, 0};
  if ((rc = repo_list(h, sha, "", 1, add_sibling, &c))) {
    json_decref(c.arr);
    json_decref(o);
    return NULL;
  }
  json_object_set_new(o, "siblings", c.arr);
  json_object_set_new(o, "usedStorage", json_integer((json_int_t)c.used));
  return o;
}

static int h_info(hub_req *r) {
  const char *rev = NULL;
  if (r->nrest) {
    rev = api_join_rest(r, 0, r->nrest);
    if (!rev) return hub_error_code();
  }
  json_t *o = api_repo_json(r, &r->repo, rev, http_param_bool(r, "blobs", 0));
  if (!o) return hub_error_code() ? hub_error_code() : HUB_ERROR;
  return http_reply_json(r, 200, o);
}

const hub_route api_info_routes[] = {
    {"GET", "/api/{type}/{repo}", h_info, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {"GET", "/api/{type}/{repo}/revision/{*}", h_info, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
