/* Discovery API (docs/search.md): GET /api/models|datasets|spaces (search, filters, sorts,
 * keyset cursors), likes, likers, a user's likes, model lineage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/search.h"
#include "util/error.h"

/* Keys copied from the derived metadata into repo objects (hf-api.md §3.5, §7.3). */
static const char *const META_KEYS[] = {"cardData",    "config",     "transformersInfo",
                                        "safetensors", "gguf",       "model-index",
                                        "evalResults", "baseModels", NULL};

/* Copy the derived-metadata keys into `o`: all of them, or those named in only[]. */
void api_meta_fields(json_t *o, const char *meta_json, int want_all, const char *const *only,
                     size_t nonly) {
  if (!meta_json) return;
  json_t *meta = json_loads(meta_json, 0, NULL);
  if (!json_is_object(meta)) {
    json_decref(meta);
    return;
  }
  for (int i = 0; META_KEYS[i]; i++) {
    int want = want_all;
    for (size_t k = 0; !want && k < nonly; k++)
      want = !strcmp(only[k], META_KEYS[i]);
    json_t *v = json_object_get(meta, META_KEYS[i]);
    if (want && v) json_object_set(o, META_KEYS[i], v);
  }
  json_decref(meta);
}

static int viewer_of(hub_req *r, int64_t *id) {
  *id = r->who.authenticated ? r->who.user_id : 0;
  return r->who.authenticated && r->who.is_admin;
}

/* ---- listing ------------------------------------------------------------------------ */

struct list_ctx {
  hub_req *r;
  json_t *arr;
  int full;
  const char *expand[64];
  size_t nexpand;
  int meta_all;
};

static int expands(const struct list_ctx *c, const char *key) {
  for (size_t i = 0; i < c->nexpand; i++)
    if (!strcmp(c->expand[i], key)) return 1;
  return 0;
}

static int add_git_sibling(const repo_entry *e, void *payload) {
  if (e->type == REPO_ENTRY_FILE)
    json_array_append_new(payload, json_pack("{s:s}", "rfilename", e->path));
  return 0;
}

static json_t *siblings_of(const db_search_row *w) {
  if (w->synthetic) {
    json_t *meta = json_loads(w->meta_json ? w->meta_json : "{}", 0, NULL);
    json_t *s = json_incref(json_object_get(meta, "siblings"));
    json_decref(meta);
    return s ? s : json_array();
  }
  json_t *arr = json_array();
  char dir[4200];
  repo_handle *h = NULL;
  db_repo_dir(w->repo.uid, dir, sizeof dir);
  if (w->repo.head_sha[0] && !repo_open(&h, dir)) {
    repo_list(h, w->repo.head_sha, "", 1, add_git_sibling, arr);
    repo_free(h);
  }
  return arr;
}

static int list_row(const db_search_row *w, void *payload) {
  struct list_ctx *c = payload;
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", w->repo.ns, w->repo.name);
  json_t *o = json_object();
  if (!o) return hub_error_set(HUB_ERROR, "out of memory");
  json_object_set_new(o, "_id", json_string(w->repo.uid));
  json_object_set_new(o, "id", json_string(id));
  if (w->repo.type == HUB_REPO_MODEL) json_object_set_new(o, "modelId", json_string(id));
  json_object_set_new(o, "author", json_string(w->repo.ns));
  if (w->repo.head_sha[0]) json_object_set_new(o, "sha", json_string(w->repo.head_sha));
  json_object_set_new(o, "private", json_boolean(w->repo.is_private));
  json_object_set_new(o, "gated", w->repo.gated[0] ? json_string(w->repo.gated) : json_false());
  json_object_set_new(o, "disabled", json_boolean(w->repo.disabled));
  if (*w->pipeline_tag) json_object_set_new(o, "pipeline_tag", json_string(w->pipeline_tag));
  if (*w->library_name) json_object_set_new(o, "library_name", json_string(w->library_name));
  json_t *tags = json_loads(w->tags_json, 0, NULL);
  json_object_set_new(o, "tags", json_is_array(tags) ? tags : json_array());
  if (tags && !json_is_array(tags)) json_decref(tags);
  json_object_set_new(o, "downloads", json_integer(w->downloads));
  json_object_set_new(o, "downloadsAllTime", json_integer(w->downloads_all));
  json_object_set_new(o, "likes", json_integer(w->likes));
  json_object_set_new(o, "trendingScore", json_real(w->trending));
  int64_t mod = w->repo.last_modified_ms ? w->repo.last_modified_ms : w->repo.updated_ms;
  json_object_set_new(o, "lastModified", api_iso_json(mod));
  json_object_set_new(o, "createdAt", api_iso_json(w->repo.created_ms));
  if (c->full || c->meta_all || c->nexpand)
    api_meta_fields(o, w->meta_json, c->full || c->meta_all, c->expand, c->nexpand);
  if (c->full || expands(c, "siblings")) json_object_set_new(o, "siblings", siblings_of(w));
  json_array_append_new(c->arr, o);
  return 0;
}

static int h_list(hub_req *r, int type) {
  db_search_query q;
  memset(&q, 0, sizeof q);
  q.type = type;
  q.min_params = q.max_params = -1;
  q.dir = -1;
  q.nsearch = http_params(r, "search", q.search, DB_SEARCH_MAX_TERMS);
  for (size_t i = 0; i < q.nsearch;)
    if (!*q.search[i])
      q.search[i] = q.search[--q.nsearch];
    else
      i++;
  q.author = http_param(r, "author");
  if (q.author && !*q.author) q.author = NULL;
  q.ntags = http_params(r, "filter", q.tags, DB_SEARCH_MAX_TAGS);
  q.ntags += http_params(r, "library", q.tags + q.ntags, DB_SEARCH_MAX_TAGS - q.ntags);
  q.ntags += http_params(r, "language", q.tags + q.ntags, DB_SEARCH_MAX_TAGS - q.ntags);
  for (size_t i = 0; i < q.ntags;)
    if (!*q.tags[i])
      q.tags[i] = q.tags[--q.ntags];
    else
      i++;
  q.pipeline_tag = http_param(r, "pipeline_tag");
  if (q.pipeline_tag && !*q.pipeline_tag) q.pipeline_tag = NULL;
  const char *np = http_param(r, "num_parameters");
  if (np && *np && db_num_params_parse(np, &q.min_params, &q.max_params)) return HUB_EINVALID;
  const char *sort = http_param(r, "sort");
  if (sort && *sort) {
    if (db_sort_parse(sort, &q.sort)) return HUB_EINVALID;
  } else {
    q.sort = q.nsearch ? DB_SORT_RELEVANCE : DB_SORT_TRENDING;
  }
  const char *dir = http_param(r, "direction");
  if (dir && *dir) {
    if (!strcmp(dir, "1") || !strcmp(dir, "asc"))
      q.dir = 1;
    else if (!strcmp(dir, "-1") || !strcmp(dir, "desc"))
      q.dir = -1;
    else
      return hub_error_set(HUB_EINVALID, "Invalid direction '%s' (-1 or 1)", dir);
  }
  const char *lim = http_param(r, "limit");
  q.limit = HUB_MAX_PAGE;
  if (lim && *lim) {
    char *end;
    long v = strtol(lim, &end, 10);
    if (*end || v < 1) return hub_error_set(HUB_EINVALID, "Invalid limit '%s'", lim);
    if (v < HUB_MAX_PAGE) q.limit = (size_t)v;
  }
  db_search_cursor after;
  const char *cur = http_param(r, "cursor");
  if (cur && *cur) {
    if (db_cursor_decode(cur, &after)) return HUB_EINVALID;
    q.after = &after;
  }
  db_search_scope scopes[AUTH_MAX_SCOPES];
  auth_search_viewer(&r->who, &q, scopes);

  struct list_ctx c;
  memset(&c, 0, sizeof c);
  c.r = r;
  c.full = http_param_bool(r, "full", 0);
  c.nexpand = http_params(r, "expand", c.expand, 60);
  if (http_param_bool(r, "cardData", 0)) c.expand[c.nexpand++] = "cardData";
  if (http_param_bool(r, "config", 0)) c.expand[c.nexpand++] = "config";
  q.want_meta = c.full || c.nexpand;
  c.arr = json_array();
  if (!c.arr) return hub_error_set(HUB_ERROR, "out of memory");
  db_search_cursor next;
  int more = 0;
  int rc = db_search(&q, list_row, &c, &next, &more);
  if (rc) {
    json_decref(c.arr);
    return rc;
  }
  rc = http_reply_json(r, 200, c.arr);
  if (!rc && more) {
    char enc[DB_CURSOR_MAX + 1];
    db_cursor_encode(&next, enc);
    api_next_link(r, "cursor", enc);
  }
  return rc;
}

static int h_models(hub_req *r) {
  return h_list(r, HUB_REPO_MODEL);
}
static int h_datasets(hub_req *r) {
  return h_list(r, HUB_REPO_DATASET);
}
static int h_spaces(hub_req *r) {
  return h_list(r, HUB_REPO_SPACE);
}

/* ---- likes -------------------------------------------------------------------------- */

static int like_set(hub_req *r, int on) {
  int changed = 0;
  int rc = db_like_set(r->who.user_id, r->repo.id, on, &changed);
  if (rc) return rc;
  if (changed) {
    int64_t id = r->repo.id;
    db_popularity_refresh(&id, 1, db_now_ms() / 86400000);
  }
  return http_reply_json(r, 200, json_pack("{s:b}", "liked", on));
}

static int h_like(hub_req *r) {
  return like_set(r, 1);
}
static int h_unlike(hub_req *r) {
  return like_set(r, 0);
}

struct like_ctx {
  hub_req *r;
  json_t *arr;
};

static size_t page_limit(hub_req *r, size_t dflt) {
  const char *lim = http_param(r, "limit");
  long v = lim ? strtol(lim, NULL, 10) : 0;
  if (v < 1) return dflt;
  return v > HUB_MAX_PAGE ? HUB_MAX_PAGE : (size_t)v;
}

/* A private repo a fine-grained token may not read stays out of its listings. */
static int hidden_from(const hub_req *r, const db_repo *repo) {
  return repo->is_private && r->who.token_role == PERM_FINE_GRAINED &&
         auth_repo_perm(&r->who, repo) < PERM_READ;
}

static int liked_row(const db_like_row *w, void *payload) {
  struct like_ctx *c = payload;
  if (hidden_from(c->r, &w->repo)) return 0;
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", w->repo.ns, w->repo.name);
  json_array_append_new(c->arr, json_pack("{s:{s:s, s:s}, s:o}", "repo", "name", id, "type",
                                          http_type_name(w->repo.type), "createdAt",
                                          api_iso_json(w->created_ms)));
  return 0;
}

static int liker_row(const db_like_row *w, void *payload) {
  struct like_ctx *c = payload;
  json_array_append_new(c->arr, json_pack("{s:s, s:s, s:s, s:s}", "user", w->user ? w->user : "",
                                          "fullname", w->fullname ? w->fullname : "", "avatarUrl",
                                          "", "type", "user"));
  return 0;
}

static int reply_page(hub_req *r, struct like_ctx *c, int rc, int more,
                      const db_search_cursor *next) {
  if (rc) {
    json_decref(c->arr);
    return rc;
  }
  rc = http_reply_json(r, 200, c->arr);
  if (!rc && more) {
    char enc[DB_CURSOR_MAX + 1];
    db_cursor_encode(next, enc);
    api_next_link(r, "cursor", enc);
  }
  return rc;
}

static int decode_after(hub_req *r, db_search_cursor *after, const db_search_cursor **out) {
  const char *cur = http_param(r, "cursor");
  *out = NULL;
  if (!cur || !*cur) return 0;
  if (db_cursor_decode(cur, after)) return HUB_EINVALID;
  *out = after;
  return 0;
}

static int h_user_likes(hub_req *r) {
  char *name = strdup(r->cap[0]);
  if (!name) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, name);
  db_account a;
  if (db_account_by_name(name, &a)) return hub_error_set(HUB_ENOTFOUND, "User not found");
  db_search_cursor after, next;
  const db_search_cursor *ap;
  if (decode_after(r, &after, &ap)) return HUB_EINVALID;
  int64_t viewer;
  int admin = viewer_of(r, &viewer);
  struct like_ctx c = {r, json_array()};
  int more = 0;
  int rc = db_user_likes(a.id, viewer, admin, page_limit(r, 100), ap, liked_row, &c, &next, &more);
  return reply_page(r, &c, rc, more, &next);
}

static int h_likers(hub_req *r) {
  db_search_cursor after, next;
  const db_search_cursor *ap;
  if (decode_after(r, &after, &ap)) return HUB_EINVALID;
  struct like_ctx c = {r, json_array()};
  int more = 0;
  int rc = db_repo_likers(r->repo.id, page_limit(r, 100), ap, liker_row, &c, &next, &more);
  return reply_page(r, &c, rc, more, &next);
}

/* ---- lineage ------------------------------------------------------------------------ */

struct lineage_ctx {
  json_t *children, *counts;
  size_t limit;
  hub_req *r;
};

static int lineage_row(const db_like_row *w, void *payload) {
  struct lineage_ctx *c = payload;
  if (hidden_from(c->r, &w->repo)) return 0;
  const char *rel = w->user && *w->user ? w->user : "finetune";
  json_t *list = json_object_get(c->children, rel);
  if (!list) {
    list = json_array();
    json_object_set_new(c->children, rel, list);
  }
  json_int_t n = json_integer_value(json_object_get(c->counts, rel)) + 1;
  json_object_set_new(c->counts, rel, json_integer(n));
  if ((size_t)n > c->limit) return 0;
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", w->repo.ns, w->repo.name);
  json_array_append_new(list,
                        json_pack("{s:s, s:s, s:b, s:o}", "_id", w->repo.uid, "id", id, "private",
                                  w->repo.is_private, "createdAt", api_iso_json(w->created_ms)));
  return 0;
}

static int h_lineage(hub_req *r) {
  db_repo_stats st;
  int64_t viewer;
  int admin = viewer_of(r, &viewer);
  int rc = db_repo_stats_get(&r->repo, viewer, admin, &st);
  if (rc) return rc;
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", r->repo.ns, r->repo.name);
  json_t *o = json_pack("{s:s, s:s}", "_id", r->repo.uid, "id", id);
  api_meta_fields(o, st.meta_json, 0, (const char *[]){"baseModels"}, 1);
  db_repo_stats_dispose(&st);
  struct lineage_ctx c = {json_object(), json_object(), page_limit(r, 100), r};
  static const char *const RELS[] = {"finetune", "adapter", "quantized", "merge"};
  for (int i = 0; i < 4; i++) {
    json_object_set_new(c.children, RELS[i], json_array());
    json_object_set_new(c.counts, RELS[i], json_integer(0));
  }
  rc = db_lineage_children(id, viewer, admin, (size_t)-1, lineage_row, &c);
  json_object_set_new(o, "children", c.children);
  json_object_set_new(o, "childrenCount", c.counts);
  if (rc) {
    json_decref(o);
    return rc;
  }
  return http_reply_json(r, 200, o);
}

const hub_route api_list_routes[] = {
    {"GET", "/api/models", h_models, NEED_NONE | RUN_INLINE_TRY, BODY_NONE, NULL, 0},
    {"GET", "/api/datasets", h_datasets, NEED_NONE | RUN_INLINE_TRY, BODY_NONE, NULL, 0},
    {"GET", "/api/spaces", h_spaces, NEED_NONE | RUN_INLINE_TRY, BODY_NONE, NULL, 0},
    {"POST", "/api/{type}/{repo}/like", h_like, NEED_LOGIN | NEED_REPO_READ, BODY_NONE, NULL, 0},
    {"DELETE", "/api/{type}/{repo}/like", h_unlike, NEED_LOGIN | NEED_REPO_READ, BODY_NONE, NULL,
     0},
    {"GET", "/api/{type}/{repo}/likers", h_likers, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {"GET", "/api/users/{x}/likes", h_user_likes, NEED_NONE, BODY_NONE, NULL, 0},
    {"GET", "/api/{type}/{repo}/lineage", h_lineage, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
