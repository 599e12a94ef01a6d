/* Hub side of Xet (spec §7): token routes, the LFS batch "xet" answer, the Xet signals on
 * resolve / tree / paths-info / siblings, and the commit fallback for Xet-uploaded oids. */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sign.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "lfs/lfs.h"
#include "util/error.h"
#include "security/security.h"
#include "xetsrv/internal.h"

/* ---- tokens ------------------------------------------------------------------------------ */

int xs_token_make(char *out, size_t cap, const char *repo_uid, int write, int64_t exp) {
  char subject[64];
  hub_buf q = HUB_BUF_INIT;
  snprintf(subject, sizeof subject, "%s/%s", repo_uid, write ? "w" : "r");
  int rc = sign_make(&q, "xet-token", subject, exp);
  const char *sig = rc || q.failed ? NULL : strstr(q.ptr, "sig=");
  if (!sig) {
    hub_buf_dispose(&q);
    return rc ? rc : hub_error_set(HUB_ERROR, "cannot sign token");
  }
  snprintf(out, cap, "xet1.%s.%s.%lld.%s", repo_uid, write ? "w" : "r", (long long)exp, sig + 4);
  hub_buf_dispose(&q);
  return 0;
}

void xs_cas_url(hub_req *r, hub_buf *out) {
  hub_buf_printf(out, "%s%s", http_base_url(r), XS_CAS_PREFIX);
}

static void token_url(hub_req *r, hub_buf *out, const char *kind, const char *rev, int pr) {
  hub_buf_printf(out, "%s/api/%s/%s/%s/xet-%s-token/", http_base_url(r),
                 http_type_api(r->repo.type), r->repo.ns, r->repo.name, kind);
  for (const char *p = rev; *p; p++) {
    if (*p == '/')
      hub_buf_puts(out, "%2F");
    else
      hub_buf_putc(out, *p);
  }
  if (pr) hub_buf_puts(out, "?create_pr=1");
}

/* The one rule of who may write which ref (auth_may_write_ref); rev is the raw segment. */
static int may_write(hub_req *r, const char *rev, int create_pr) {
  if (create_pr || !strcmp(rev, "None"))
    return auth_may_write_ref(r->repo_perm, NULL, AUTH_REF_API);
  if (!strncmp(rev, "refs%2Fpr%2F", 12) || !strncmp(rev, "refs/pr/", 8))
    return auth_may_write_ref(r->repo_perm, "refs/pr/", AUTH_REF_API);
  return auth_may_write_ref(r->repo_perm, "refs/heads/", AUTH_REF_API);
}

static int h_token(hub_req *r, int write) {
  const char *rev = r->nrest ? r->rest[0] : "";
  int create_pr = http_param_bool(r, "create_pr", 0);
  if (write) {
    /* Granted whether or not Xet is on for the repo: hf_xet asks for it without any
     * negotiation and fails the upload on an error. With Xet off, the uploaded files are
     * stored as plain LFS objects once the shard is in (cas.c, convert.c). */
    if (!may_write(r, rev, create_pr))
      return hub_error_set(r->who.authenticated ? HUB_EFORBIDDEN : HUB_EAUTH,
                           "You don't have write access to %s/%s", r->repo.ns, r->repo.name);
  }
  int64_t exp = (int64_t)time(NULL) + XS_TOKEN_TTL_S, shown = exp - XS_TOKEN_EARLY_S;
  char tok[200], exps[24];
  int rc = xs_token_make(tok, sizeof tok, r->repo.uid, write, exp);
  if (rc) return rc;
  hub_buf cas = HUB_BUF_INIT;
  xs_cas_url(r, &cas);
  if (cas.failed) return hub_error_set(HUB_ERROR, "out of memory");
  snprintf(exps, sizeof exps, "%lld", (long long)shown);
  rc = http_reply_json(r, 200,
                       json_pack("{s:s, s:I, s:s}", "accessToken", tok, "exp", (json_int_t)shown,
                                 "casUrl", cas.ptr));
  if (!rc) {
    http_add_header(r, "X-Xet-Access-Token", tok);
    http_add_header(r, "X-Xet-Token-Expiration", exps);
    http_add_header(r, "X-Xet-Cas-Url", cas.ptr);
  }
  hub_buf_dispose(&cas);
  return rc;
}

static int h_read_token(hub_req *r) {
  return h_token(r, 0);
}
static int h_write_token(hub_req *r) {
  return h_token(r, 1);
}

const hub_route xs_hub_routes[] = {
    {"GET", "/api/{type}/{repo}/xet-read-token/{*}", h_read_token, NEED_REPO_READ | NEED_REPO_FILES,
     BODY_NONE, NULL, 0},
    /* write permission (or contributor + create_pr) is checked by the handler */
    {"GET", "/api/{type}/{repo}/xet-write-token/{*}", h_write_token, NEED_REPO_READ, BODY_NONE,
     NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};

int xetsrv_register(void) {
  lfs_set_batch_hook(xetsrv_lfs_batch); /* Xet transfers in git-LFS batch requests */
  int rc = http_routes_add(xs_hub_routes);
  if (!rc) rc = http_routes_add(xs_cas_routes);
  if (!rc) rc = http_routes_add(xs_xfer_routes);
  return rc;
}

static blob_store *g_lfs_blobs;

blob_store *xs_lfs_blobs(void) {
  return g_lfs_blobs;
}

int xetsrv_init(const hub_ctx *ctx) {
  g_lfs_blobs = ctx->blobs;
  xs_set_global(ctx->xet_enabled);
  int rc = xs_store_open(ctx->data_dir);
  if (!rc) rc = xs_acl_open();
  if (rc) return rc;
  return xs_worker_start();
}

/* ---- lookups ----------------------------------------------------------------------------- */

int xetsrv_lookup(const db_repo *repo, const char *sha256, xetsrv_file *out) {
  xet_hash f;
  uint64_t size = 0;
  if (!xs_blobs() || !blob_oid_valid(sha256)) return HUB_ENOTFOUND;
  /* Only through this repo's own upload, or a verified file whose sha256 the repo
   * references (db/objects.h): naming a sha256 is not enough. */
  int rc = xs_sha_find_for(sha256, repo->id, &f, &size);
  if (rc == HUB_ENOTFOUND) {
    int64_t have = 0, ref = 0;
    if (xs_enabled(repo->id) && xs_lfs_blobs() && db_objects_get(repo->id, sha256, &ref) == 0 &&
        blob_stat(xs_lfs_blobs(), sha256, &have) == 0 && have == ref)
      xs_queue_convert(sha256, repo->id);
    return hub_error_set(HUB_ENOTFOUND, "not Xet-backed");
  }
  if (rc) return rc;
  /* The file is in this repo: its tokens may read it. Recorded by the worker (this may be an
   * event thread, which never writes); xs_repo_may_read answers the same meanwhile. */
  if (!xs_repo_has(repo->id, &f)) xs_queue_link(repo->id, &f);
  int64_t have = 0;
  if (!xs_enabled(repo->id) && xs_lfs_blobs() && blob_stat(xs_lfs_blobs(), sha256, &have))
    xs_queue_materialize(sha256, &f); /* Xet off: serve it as a plain LFS object */
  xet_hash_str(out->hash, &f);
  out->size = size;
  return 0;
}

int xetsrv_lfs_stat(const db_repo *repo, const char *oid, int64_t *out_size) {
  xetsrv_file f;
  if (db_objects_get(repo->id, oid, out_size) == 0) {
    xetsrv_lookup(repo, oid, &f); /* queues the conversion when needed */
    return 0;
  }
  /* Uploaded through this repo's Xet token, sha256 not verified yet. */
  if (xetsrv_lookup(repo, oid, &f)) return hub_error_set(HUB_ENOTFOUND, "unknown object");
  *out_size = (int64_t)f.size;
  return 0;
}

void xetsrv_entry_json(const db_repo *repo, json_t *o, const repo_entry *e) {
  xetsrv_file f;
  if (!o || !e->is_lfs || !repo || !repo->id || !xs_enabled(repo->id)) return;
  if (xetsrv_lookup(repo, e->lfs_oid, &f) == 0 && f.size == e->lfs_size)
    json_object_set_new(o, "xetHash", json_string(f.hash));
}

/* ---- resolve signals ---------------------------------------------------------------------- */

void xetsrv_add_headers(hub_req *r, const char *commit, const xetsrv_file *f) {
  if (!xs_enabled(r->repo.id)) return; /* xetEnabled off: plain contract, bytes still served */
  hub_buf tok = HUB_BUF_INIT, link = HUB_BUF_INIT;
  token_url(r, &tok, "read", commit, 0);
  hub_buf_printf(&link, "<%s>; rel=\"xet-auth\", <", tok.ptr ? tok.ptr : "");
  xs_cas_url(r, &link);
  hub_buf_printf(&link, "/v1/reconstructions/%s>; rel=\"xet-reconstruction-info\"", f->hash);
  if (!tok.failed && !link.failed) {
    http_add_header(r, "X-Xet-Hash", f->hash);
    http_add_header(r, "Link", link.ptr);
    http_add_header(r, "X-Xet-Refresh-Route", tok.ptr);
  }
  hub_buf_dispose(&tok);
  hub_buf_dispose(&link);
}

int xetsrv_wants_fileinfo(hub_req *r) {
  const char *a = http_header(r, "Accept");
  if (!xs_enabled(r->repo.id)) return 0;
  return a && strstr(a, "application/vnd.xet-fileinfo+json") != NULL;
}

int xetsrv_reply_fileinfo(hub_req *r, const char *commit, const xetsrv_file *f,
                          const char *etag_q) {
  hub_buf tok = HUB_BUF_INIT, cas = HUB_BUF_INIT, rec = HUB_BUF_INIT;
  token_url(r, &tok, "read", commit, 0);
  xs_cas_url(r, &cas);
  xs_cas_url(r, &rec);
  hub_buf_printf(&rec, "/v1/reconstructions/%s", f->hash);
  char etag[70];
  snprintf(etag, sizeof etag, "%s", etag_q);
  size_t n = strlen(etag);
  if (n >= 2 && etag[0] == '"') memmove(etag, etag + 1, n), etag[n - 2] = 0;
  int rc = HUB_ERROR;
  if (!tok.failed && !cas.failed && !rec.failed) {
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "hash", f->hash, "size",
                          (json_int_t)f->size, "etag", etag, "refreshUrl", tok.ptr,
                          "reconstructionUrl", rec.ptr, "casUrl", cas.ptr);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    rc = s ? http_reply_data(r, 200, "application/vnd.xet-fileinfo+json", s, strlen(s))
           : hub_error_set(HUB_ERROR, "out of memory");
    free(s);
  } else {
    hub_error_set(HUB_ERROR, "out of memory");
  }
  hub_buf_dispose(&tok);
  hub_buf_dispose(&cas);
  hub_buf_dispose(&rec);
  return rc;
}

/* ---- LFS batch ---------------------------------------------------------------------------- */

static int offered_xet(hub_req *r) {
  json_t *b = json_loadb(r->body.ptr ? r->body.ptr : "", r->body.len, 0, NULL);
  json_t *tr = b ? json_object_get(b, "transfers") : NULL;
  size_t i;
  json_t *t;
  int yes = 0;
  if (json_is_array(tr))
    json_array_foreach(tr, i, t) if (json_is_string(t) && !strcmp(json_string_value(t), "xet"))
        yes = 1;
  json_decref(b);
  return yes;
}

static json_t *obj_error(const lfs_batch_obj *o, int code, const char *msg) {
  return json_pack("{s:s, s:I, s:{s:i, s:s}}", "oid", o->oid, "size", (json_int_t)o->size, "error",
                   "code", code, "message", msg);
}

static int reply_batch(hub_req *r, const char *transfer, json_t *objs) {
  json_t *out = json_pack("{s:s, s:o}", "transfer", transfer, "objects", objs);
  char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
  json_decref(out);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = http_reply_data(r, 200, "application/vnd.git-lfs+json", s, strlen(s));
  free(s);
  return rc ? rc : 1;
}

/* Where is this object, for this repo? 1 = an LFS blob of that size the repo references,
 * 2 = a Xet file the repo may read, 0 = neither. Objects of other repos and wrong sizes
 * are 0 like missing ones: no existence or size oracle. */
static int where(hub_req *r, const lfs_batch_obj *o) {
  int64_t have = 0, ref = -1;
  if (db_objects_get(r->repo.id, o->oid, &ref) == 0 && ref == o->size &&
      blob_stat(xs_lfs_blobs(), o->oid, &have) == 0 && have == ref)
    return 1;
  xetsrv_file f;
  if (xetsrv_lookup(&r->repo, o->oid, &f) == 0 && f.size == (uint64_t)o->size) return 2;
  return 0;
}

static int batch_upload(hub_req *r, const lfs_batch_req *req) {
  int64_t exp = (int64_t)time(NULL) + XS_TOKEN_TTL_S;
  char tok[200], exps[24], sid[33];
  unsigned char rnd[16];
  int rc = xs_token_make(tok, sizeof tok, r->repo.uid, 1, exp);
  if (rc) return rc;
  snprintf(exps, sizeof exps, "%lld", (long long)(exp - XS_TOKEN_EARLY_S)); /* see internal.h */
  if (RAND_bytes(rnd, sizeof rnd) != 1) return hub_error_set(HUB_ERROR, "no randomness");
  for (int i = 0; i < 16; i++)
    snprintf(sid + 2 * i, 3, "%02x", rnd[i]);
  const char *branch = req->has_ref ? req->ref : "main";
  if (!strncmp(branch, "refs/heads/", 11)) branch += 11;
  hub_buf href = HUB_BUF_INIT, cas = HUB_BUF_INIT;
  token_url(r, &href, "write", branch, !req->has_ref);
  xs_cas_url(r, &cas);
  json_t *objs = json_array();
  rc = href.failed || cas.failed || !objs ? hub_error_set(HUB_ERROR, "out of memory") : 0;
  for (size_t i = 0; !rc && i < req->nobjects; i++) {
    const lfs_batch_obj *o = &req->objects[i];
    json_t *e;
    int w = o->valid ? where(r, o) : 0;
    if (!o->valid)
      e = obj_error(o, 422, o->why);
    else if (w > 0)
      e = json_pack("{s:s, s:I}", "oid", o->oid, "size", (json_int_t)o->size);
    else
      e = json_pack("{s:s, s:I, s:b, s:{s:{s:s, s:{s:s, s:s, s:s, s:s}}}}", "oid", o->oid, "size",
                    (json_int_t)o->size, "authenticated", 1, "actions", "upload", "href", href.ptr,
                    "header", "X-Xet-Cas-Url", cas.ptr, "X-Xet-Access-Token", tok,
                    "X-Xet-Token-Expiration", exps, "X-Xet-Session-Id", sid);
    if (!e || json_array_append_new(objs, e)) rc = hub_error_set(HUB_ERROR, "out of memory");
  }
  hub_buf_dispose(&href);
  hub_buf_dispose(&cas);
  if (rc) {
    json_decref(objs);
    return rc;
  }
  return reply_batch(r, "xet", objs);
}

static json_t *download_action(hub_req *r, const char *purpose, const char *oid, int64_t exp) {
  hub_buf u = HUB_BUF_INIT;
  json_t *a = NULL;
  if (lfs_download_url(&u, r, purpose, oid, exp) == 0)
    a = json_pack("{s:s, s:i}", "href", u.ptr, "expires_in", LFS_GET_TTL_S);
  hub_buf_dispose(&u);
  return a;
}

/* Downloads of objects that exist only as Xet files get a signed URL to the byte bridge
 * (/xet-get, reconstruct.c); the others keep /lfs-get. */
static int batch_download(hub_req *r, const lfs_batch_req *req) {
  int any_xet = 0;
  for (size_t i = 0; i < req->nobjects && !any_xet; i++)
    if (req->objects[i].valid && where(r, &req->objects[i]) == 2) any_xet = 1;
  if (!any_xet) return 0;
  int64_t exp = (int64_t)time(NULL) + LFS_GET_TTL_S;
  json_t *objs = json_array();
  int rc = objs ? 0 : hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; !rc && i < req->nobjects; i++) {
    const lfs_batch_obj *o = &req->objects[i];
    int w = o->valid ? where(r, o) : 0;
    json_t *e = NULL, *a;
    if (!o->valid)
      e = obj_error(o, 422, o->why);
    else if (w == 0)
      e = obj_error(o, 404, "Object does not exist");
    else if (security_may_download(&r->repo, o->oid, NULL))
      e = obj_error(o, 403, hub_error_msg()); /* the scan policy (docs/scanning.md) */
    else if ((a = download_action(r, w == 1 ? "lfs-get" : "xet-get", o->oid, exp)))
      e = json_pack("{s:s, s:I, s:b, s:{s:o}}", "oid", o->oid, "size", (json_int_t)o->size,
                    "authenticated", 1, "actions", "download", a);
    if (!e || json_array_append_new(objs, e)) rc = hub_error_set(HUB_ERROR, "out of memory");
  }
  if (rc) {
    json_decref(objs);
    return rc;
  }
  return reply_batch(r, "basic", objs);
}

int xetsrv_lfs_batch(hub_req *r, const lfs_batch_req *req) {
  if (!xs_blobs() || !req->hash_ok) return 0;
  if (req->operation == LFS_OP_DOWNLOAD) return batch_download(r, req);
  if (!xs_enabled(r->repo.id) || !offered_xet(r)) return 0;
  return batch_upload(r, req);
}
