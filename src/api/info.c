/* Repo info: GET /api/{type}s/{repo}[/revision/{rev}]. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "security/security.h"
#include "db/search.h"
#include "mirror/mirror.h"
#include "util/error.h"
#include "xetsrv/xetsrv.h"

struct sib_ctx {
  json_t *arr;
  int blobs;
  uint64_t used;
  hub_req *r;
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
    xetsrv_entry_json(&c->r->repo, s, e);
  }
  json_array_append_new(c->arr, s);
  return 0;
}

/* Siblings of a commit never change, so their JSON is cached by commit id (shared across
 * threads: jansson reference counts are atomic and the cached arrays are never modified). */
#define SIB_CACHE 256
static struct {
  char key[42]; /* sha + blobs flag */
  json_t *siblings;
  uint64_t used;
} g_sib[SIB_CACHE];
static unsigned g_sib_next;
static pthread_mutex_t g_sib_mu = PTHREAD_MUTEX_INITIALIZER;

static json_t *siblings_for(repo_handle **h, hub_req *r, const char *sha, int blobs,
                            uint64_t *used) {
  char key[42];
  snprintf(key, sizeof key, "%s%d", sha, blobs);
  pthread_mutex_lock(&g_sib_mu);
  for (int i = 0; i < SIB_CACHE; i++)
    if (g_sib[i].siblings && !strcmp(g_sib[i].key, key)) {
      json_t *s = json_incref(g_sib[i].siblings);
      *used = g_sib[i].used;
      pthread_mutex_unlock(&g_sib_mu);
      return s;
    }
  pthread_mutex_unlock(&g_sib_mu);
  if (!*h && api_repo_open(r, h)) return NULL;
  struct sib_ctx c = {json_array(), blobs, 0, r};
  if (repo_list(*h, sha, "", 1, add_sibling, &c)) {
    json_decref(c.arr);
    return NULL;
  }
  *used = c.used;
  pthread_mutex_lock(&g_sib_mu);
  unsigned slot = g_sib_next++ % SIB_CACHE;
  json_decref(g_sib[slot].siblings);
  snprintf(g_sib[slot].key, sizeof g_sib[slot].key, "%s", key);
  g_sib[slot].siblings = json_incref(c.arr);
  g_sib[slot].used = c.used;
  pthread_mutex_unlock(&g_sib_mu);
  return c.arr;
}

/* The default revision is answered from the DB's derived head without opening git. */
static int is_default_rev(const char *rev) {
  return !rev || !strcmp(rev, "HEAD") || !strcmp(rev, "main") || !strcmp(rev, "refs/heads/main");
}

json_t *api_repo_json(hub_req *r, const db_repo *repo, const char *rev, int blobs) {
  repo_handle *h = NULL;
  char sha[41];
  int64_t last_ms = repo->last_modified_ms ? repo->last_modified_ms : repo->updated_ms;
  int rc;
  /* Popularity and derived metadata: one indexed query (docs/search.md). */
  db_repo_stats st;
  if (!http_take_repo_stats(r, repo, &st)) {
    int64_t viewer;
    int admin;
    http_stats_viewer(r, &viewer, &admin);
    if (db_repo_stats_get(repo, viewer, admin, &st)) return NULL;
  }
  if (is_default_rev(rev) && repo->head_sha[0]) {
    memcpy(sha, repo->head_sha, sizeof sha);
  } else {
    if ((rc = api_repo_open(r, &h)) || (rc = repo_resolve(h, rev ? rev : "HEAD", sha, NULL))) {
      db_repo_stats_dispose(&st);
      return NULL;
    }
    repo_commit_info ci;
    if (repo_commit_info_get(h, sha, &ci) == 0) {
      last_ms = ci.date * 1000;
      repo_commit_info_dispose(&ci);
    }
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
  /* A copy of an upstream repo says so; a local repo carries nothing from upstream. */
  json_t *mirror = mirror_enabled() ? mirror_info_json(repo) : NULL;
  if (mirror) json_object_set_new(o, "mirror", mirror);
  json_object_set_new(o, "gated", repo->gated[0] ? json_string(repo->gated) : json_false());
  json_object_set_new(o, "disabled", json_boolean(repo->disabled));
  json_object_set_new(o, "downloads", json_integer(st.downloads));
  json_object_set_new(o, "downloadsAllTime", json_integer(st.downloads_all));
  json_object_set_new(o, "likes", json_integer(st.likes));
  json_object_set_new(o, "trendingScore", json_real(st.trending));
  /* Derived metadata describes the indexed head; other revisions get none of it. */
  int at_head = !strcmp(sha, repo->head_sha);
  json_t *tags = at_head && st.tags_json ? json_loads(st.tags_json, 0, NULL) : NULL;
  if (!json_is_array(tags)) {
    json_decref(tags);
    tags = json_array();
  }
  json_object_set_new(o, "tags", tags);
  if (at_head && st.pipeline_tag[0])
    json_object_set_new(o, "pipeline_tag", json_string(st.pipeline_tag));
  if (at_head && st.library_name[0])
    json_object_set_new(o, "library_name", json_string(st.library_name));
  if (at_head) api_meta_fields(o, st.meta_json, 1, NULL, 0);
  if (repo->type == HUB_REPO_MODEL)
    json_object_set_new(o, "childrenModelCount", json_integer(st.children));
  json_object_set_new(o, "spaces", json_array());
  uint64_t used = 0;
  json_t *sib = NULL;
  if (st.synthetic && at_head) { /* seeded by `modelhub dev seed-catalog`: no git dir */
    json_t *meta = json_loads(st.meta_json ? st.meta_json : "{}", 0, NULL);
    sib = json_incref(json_object_get(meta, "siblings"));
    json_decref(meta);
    if (!sib) sib = json_array();
  } else {
    sib = siblings_for(&h, r, sha, blobs, &used);
  }
  db_repo_stats_dispose(&st);
  if (!sib) {
    json_decref(o);
    return NULL;
  }
  json_object_set_new(o, "siblings", sib);
  json_object_set_new(o, "usedStorage", json_integer((json_int_t)used));
  return o;
}

static int h_info(hub_req *r) {
  const char *rev = NULL;
  if (r->nrest) {
    rev = api_join_rest(r, 0, r->nrest);
    if (!rev) return hub_error_code();
  }
  /* A gated repo shows its card, metadata and file names before access is granted, but no
   * object ids or sizes (lfs.sha256, blobId, xetHash) until the request is accepted. */
  int blobs = http_param_bool(r, "blobs", 0) && auth_gate_allows(&r->who, &r->repo, r->repo_perm);
  json_t *o = api_repo_json(r, &r->repo, rev, blobs);
  if (!o) return hub_error_code() ? hub_error_code() : HUB_ERROR;
  /* huggingface_hub: model_info(securityStatus=True), or expand=["securityRepoStatus"] */
  const char *ex[64];
  size_t nex = http_params(r, "expand", ex, 64);
  int sec = http_param_bool(r, "securityStatus", 0);
  for (size_t i = 0; i < nex && !sec; i++)
    sec = !strcmp(ex[i], "securityRepoStatus");
  if (sec) json_object_set_new(o, "securityRepoStatus", security_repo_status(&r->repo));
  return http_reply_json(r, 200, o);
}

const hub_route api_info_routes[] = {
    {"GET", "/api/{type}/{repo}", h_info, NEED_REPO_READ | NEED_REPO_STATS | RUN_INLINE, BODY_NONE,
     NULL, 0},
    {"GET", "/api/{type}/{repo}/revision/{*}", h_info,
     NEED_REPO_READ | NEED_REPO_STATS | RUN_INLINE, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
