#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "events/events.h"
#include "index/index.h"
#include "audit/audit.h"
#include "auth/sign.h"
#include "security/security.h"
#include "blob/blob.h"
#include "gov/gov.h"
#include <openssl/rand.h>
#include "http/internal.h"
#include "lfs/lfs.h"
#include "util/error.h"
#include "util/hub.h"
#include "util/time.h"
#include "xetsrv/xetsrv.h"

/* Opening a libgit2 repository costs dozens of filesystem calls, so each thread keeps
 * its last few handles (libgit2 handles are per-thread objects; refs and new objects are
 * re-read from disk on every lookup, so a cached handle never serves stale refs). */
#define REPO_CACHE 8
typedef struct {
  char uid[25];
  repo_handle *h;
} cached_repo;
typedef struct {
  cached_repo e[REPO_CACHE];
  unsigned next;
} repo_cache;
static pthread_key_t g_repo_key;
static pthread_once_t g_repo_once = PTHREAD_ONCE_INIT;

static void close_repo(void *h) {
  repo_free(h);
}

static void repo_cache_free(void *p) {
  repo_cache *c = p;
  for (int i = 0; i < REPO_CACHE; i++)
    repo_free(c->e[i].h);
  free(c);
}

static void repo_key_make(void) {
  pthread_key_create(&g_repo_key, repo_cache_free);
}

void api_repo_forget(const char *uid) {
  pthread_once(&g_repo_once, repo_key_make);
  repo_cache *c = pthread_getspecific(g_repo_key);
  for (int i = 0; c && i < REPO_CACHE; i++)
    if (c->e[i].h && !strcmp(c->e[i].uid, uid)) {
      repo_free(c->e[i].h);
      c->e[i].h = NULL;
      c->e[i].uid[0] = 0;
    }
}

int api_repo_open(hub_req *r, repo_handle **out) {
  if (r->state_repo) {
    *out = r->state_repo;
    return 0;
  }
  pthread_once(&g_repo_once, repo_key_make);
  repo_cache *c = pthread_getspecific(g_repo_key);
  if (!c && (c = calloc(1, sizeof *c))) pthread_setspecific(g_repo_key, c);
  for (int i = 0; c && i < REPO_CACHE; i++)
    if (c->e[i].h && !strcmp(c->e[i].uid, r->repo.uid)) {
      r->state_repo = *out = c->e[i].h;
      return 0;
    }
  char dir[4200];
  db_repo_dir(r->repo.uid, dir, sizeof dir);
  int rc = repo_open(out, dir);
  if (rc) return rc;
  r->state_repo = *out;
  if (!c) {
    http_cleanup_add(r, close_repo, *out);
    return 0;
  }
  cached_repo *slot = &c->e[c->next++ % REPO_CACHE];
  repo_free(slot->h);
  snprintf(slot->uid, sizeof slot->uid, "%s", r->repo.uid);
  slot->h = *out;
  return 0;
}

void api_iso_time(int64_t ms, char *out) {
  hub_iso_time(ms, out);
}

json_t *api_iso_json(int64_t ms) {
  return hub_iso_json(ms);
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

int api_rev_and_path(hub_req *r, repo_handle **h, char sha[41], const char **out_path) {
  int rc = api_repo_open(r, h);
  if (rc) return rc;
  if (!r->nrest) return hub_error_set(HUB_EREVISION, "Missing revision");
  size_t used;
  if ((rc = repo_resolve_segments(*h, (const char *const *)r->rest, r->nrest, sha, NULL, &used)))
    return rc;
  if (!out_path) return 0;
  *out_path = api_join_rest(r, used, r->nrest);
  return *out_path ? 0 : hub_error_code();
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

static blob_store *g_blobs;
static const blob_read_fallback *g_read_fb; /* Xet-backed objects, when Xet is built in */

int api_pct_decode_inplace(char *s) {
  return http_pct_decode(s, 0);
}

void api_repo_target(const db_repo *repo, char *out, size_t cap) {
  snprintf(out, cap, "%s:%s/%s", http_type_name(repo->type), repo->ns, repo->name);
}

void api_audit(hub_req *r, const char *action, const char *target, json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char t[2 * HUB_MAX_NAME + 16];
  if (!target && r->repo.id) {
    api_repo_target(&r->repo, t, sizeof t);
    target = t;
  }
  audit_log(&ctx, action, r->repo.id ? r->repo.ns : "", target ? target : "", details);
}

int api_init(const hub_ctx *ctx) {
  int rc = audit_init();
  if (!rc) rc = events_init(); /* the event log and consumer cursors (events/) */
  if (rc) return rc;
  g_blobs = ctx->blobs;
  lfs_init(ctx->blobs);
  if ((rc = gov_init())) return rc;
  gov_set_public_url(ctx->public_url);
  if ((rc = xetsrv_init(ctx))) return rc;
  if ((rc = api_objects_backfill())) return rc;
  g_read_fb = xetsrv_read_fallback();
  index_set_read_fallback(g_read_fb);
  return sign_init(ctx->sign_key, ctx->sign_key_len);
}

blob_store *api_blobs(void) {
  return g_blobs;
}

static void view_free(void *v) {
  blob_store_view_free(v);
}

blob_store *api_repo_blobs(hub_req *r) {
  if (!g_read_fb || !r->repo.id) return g_blobs;
  blob_store *v = blob_store_view(g_blobs, g_read_fb, (void *)(intptr_t)r->repo.id);
  if (!v) return g_blobs;
  http_cleanup_add(r, view_free, v);
  return v;
}

void api_next_link(hub_req *r, const char *key, const char *value) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_printf(&b, "<%s%s?", http_base_url(r), r->path);
  const char *q = r->query ? r->query : "";
  size_t kl = strlen(key);
  int first = 1;
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    if (n && !(n >= kl && !strncmp(q, key, kl) && (q[kl] == '=' || kl == n))) {
      if (!first) hub_buf_putc(&b, '&');
      hub_buf_put(&b, q, n);
      first = 0;
    }
    q += n + (amp ? 1 : 0);
  }
  hub_buf_printf(&b, "%s%s=%s>; rel=\"next\"", first ? "" : "&", key, value);
  if (!b.failed) http_add_header(r, "Link", b.ptr);
  hub_buf_dispose(&b);
}

json_t *api_entry_json(hub_req *r, repo_handle *h, const char *commit, const repo_entry *e,
                       int expand) {
  int dir = e->type == REPO_ENTRY_DIR;
  json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "type", dir ? "directory" : "file", "oid", e->oid,
                        "size", (json_int_t)(dir ? 0 : e->size), "path", e->path);
  if (!o) return NULL;
  if (e->is_lfs)
    json_object_set_new(o, "lfs",
                        json_pack("{s:s, s:I, s:I}", "oid", e->lfs_oid, "size",
                                  (json_int_t)e->lfs_size, "pointerSize",
                                  (json_int_t)e->pointer_size));
  xetsrv_entry_json(&r->repo, o, e);
  if (expand) {
    repo_commit_info ci;
    if (repo_last_commit_for_path(h, commit, e->path, &ci) == 0) {
      json_object_set_new(o, "lastCommit",
                          json_pack("{s:s, s:s, s:o}", "id", ci.id, "title", ci.title, "date",
                                    api_iso_json(ci.date * 1000)));
      repo_commit_info_dispose(&ci);
    }
    if (!dir) /* the Hub's per-file scan result (docs/scanning.md) */
      json_object_set_new(o, "securityFileStatus",
                          security_file_status(e->is_lfs ? e->lfs_oid : e->oid));
  }
  return o;
}
