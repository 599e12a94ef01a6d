/* git-LFS batch API (hf-api.md §5.3, §8.2): request parser, multipart policy, the batch and
 * verify handlers, and the module's route table. */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sign.h"
#include "auth/auth.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "http/errors.h"
#include "lfs/lfs.h"
#include "security/security.h"
#include "util/error.h"
#include "util/limits.h"

#define LFS_CTYPE "application/vnd.git-lfs+json"

/* ---- request parser (pure) ---------------------------------------------------------- */

void lfs_batch_req_free(lfs_batch_req *req) {
  free(req);
}

static int parse_object(json_t *o, size_t i, lfs_batch_obj *out) {
  if (!json_is_object(o))
    return hub_error_set(HUB_EUNPROCESSABLE, "objects[%zu] must be an object", i);
  json_t *oid = json_object_get(o, "oid"), *size = json_object_get(o, "size");
  if (!json_is_string(oid))
    return hub_error_set(HUB_EUNPROCESSABLE, "objects[%zu].oid must be a string", i);
  if (json_string_length(oid) > LFS_MAX_OID_TEXT)
    return hub_error_set(HUB_EUNPROCESSABLE, "objects[%zu].oid is too long", i);
  if (!json_is_integer(size))
    return hub_error_set(HUB_EUNPROCESSABLE, "objects[%zu].size must be an integer", i);
  /* jansson rejects \u0000 in strings (no JSON_ALLOW_NUL), so strlen is the length. */
  snprintf(out->oid, sizeof out->oid, "%s", json_string_value(oid));
  out->size = (int64_t)json_integer_value(size);
  out->valid = 0;
  if (!blob_oid_valid(out->oid))
    out->why = "Invalid object id: want the sha256 as 64 lowercase hex characters";
  else if (out->size < 0)
    out->why = "Invalid size: must not be negative";
  else if (out->size == 0)
    out->why = "Empty files are not stored in LFS; commit them as regular files";
  else if (out->size > HUB_MAX_BLOB_SIZE)
    out->why = "Object is larger than this hub's 50 GB limit per file";
  else {
    out->valid = 1;
    out->why = NULL;
  }
  return 0;
}

int lfs_batch_parse(const char *buf, size_t len, lfs_batch_req **out) {
  json_error_t err;
  json_t *root = NULL;
  lfs_batch_req *req = NULL;
  int rc = 0;
  *out = NULL;
  root = json_loadb(buf ? buf : "", buf ? len : 0, JSON_REJECT_DUPLICATES, &err);
  if (!root) {
    rc = hub_error_set(HUB_EINVALID, "Invalid JSON body: %s (line %d, column %d)", err.text,
                       err.line, err.column);
    goto done;
  }
  if (!json_is_object(root)) {
    rc = hub_error_set(HUB_EINVALID, "Invalid JSON body: expected an object");
    goto done;
  }
  json_t *op = json_object_get(root, "operation");
  json_t *objs = json_object_get(root, "objects");
  int operation = 0;
  if (json_is_string(op) && !strcmp(json_string_value(op), "upload"))
    operation = LFS_OP_UPLOAD;
  else if (json_is_string(op) && !strcmp(json_string_value(op), "download"))
    operation = LFS_OP_DOWNLOAD;
  else {
    rc = hub_error_set(HUB_EUNPROCESSABLE, "operation must be \"upload\" or \"download\"");
    goto done;
  }
  if (!json_is_array(objs)) {
    rc = hub_error_set(HUB_EUNPROCESSABLE, "objects must be a list of {oid, size}");
    goto done;
  }
  size_t n = json_array_size(objs);
  if (n > HUB_MAX_LFS_BATCH) {
    rc = hub_error_set(HUB_ETOOBIG, "Too many objects in one batch (%zu, limit %d)", n,
                       HUB_MAX_LFS_BATCH);
    goto done;
  }
  /* n <= HUB_MAX_LFS_BATCH, so the size below cannot overflow. */
  if (!(req = calloc(1, sizeof *req + n * sizeof req->objects[0]))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  req->operation = operation;

  json_t *tr = json_object_get(root, "transfers");
  if (!tr || json_is_null(tr)) {
    req->transfers = LFS_XFER_BASIC;
  } else if (json_is_array(tr)) {
    size_t k;
    json_t *t;
    json_array_foreach(tr, k, t) {
      if (!json_is_string(t)) {
        rc = hub_error_set(HUB_EUNPROCESSABLE, "transfers must be a list of strings");
        goto done;
      }
      if (!strcmp(json_string_value(t), "basic")) req->transfers |= LFS_XFER_BASIC;
      if (!strcmp(json_string_value(t), "multipart")) req->transfers |= LFS_XFER_MULTIPART;
    }
  } else {
    rc = hub_error_set(HUB_EUNPROCESSABLE, "transfers must be a list of strings");
    goto done;
  }

  json_t *ha = json_object_get(root, "hash_algo");
  if (!ha || json_is_null(ha)) {
    req->hash_ok = 1;
  } else if (json_is_string(ha)) {
    const char *s = json_string_value(ha);
    /* JS sends "sha_256", git-lfs and Python "sha256" (hf-api.md §5.3). */
    req->hash_ok = !strcmp(s, "sha256") || !strcmp(s, "sha_256");
    snprintf(req->hash_algo, sizeof req->hash_algo, "%s", s);
  } else {
    rc = hub_error_set(HUB_EUNPROCESSABLE, "hash_algo must be a string");
    goto done;
  }

  json_t *ref = json_object_get(root, "ref");
  if (ref && !json_is_null(ref)) {
    json_t *name = json_is_object(ref) ? json_object_get(ref, "name") : NULL;
    if (!json_is_object(ref) || (name && !json_is_null(name) && !json_is_string(name))) {
      rc = hub_error_set(HUB_EUNPROCESSABLE, "ref must be {\"name\": \"<branch>\"}");
      goto done;
    }
    if (json_is_string(name)) {
      if (json_string_length(name) > HUB_MAX_PATH) {
        rc = hub_error_set(HUB_EUNPROCESSABLE, "ref.name is too long");
        goto done;
      }
      req->has_ref = 1;
      snprintf(req->ref, sizeof req->ref, "%s", json_string_value(name));
    }
  }

  for (size_t i = 0; i < n; i++)
    if ((rc = parse_object(json_array_get(objs, i), i, &req->objects[i])) < 0) goto done;
  req->nobjects = n;
  *out = req;
  req = NULL;
done:
  json_decref(root);
  lfs_batch_req_free(req);
  return rc;
}

/* ---- multipart policy --------------------------------------------------------------- */

int64_t lfs_part_size(int64_t size) {
  const int64_t mib = 1024 * 1024;
  int64_t per = (size + HUB_MAX_LFS_PARTS - 1) / HUB_MAX_LFS_PARTS;
  int64_t chunk = (per + mib - 1) / mib * mib;
  return chunk < LFS_PART_MIN ? LFS_PART_MIN : chunk;
}

unsigned lfs_part_count(int64_t size) {
  int64_t chunk = lfs_part_size(size);
  return (unsigned)((size + chunk - 1) / chunk);
}

/* ---- responses ---------------------------------------------------------------------- */

/* Whole-request error in the git-lfs shape ({"message", "request_id"}) plus the Hub's
 * {"error"} and X-Error-* headers, so git-lfs, Python and JS all show the reason. (The
 * router adds LFS-Authenticate to 401s on these NEED_GIT_CHALLENGE routes.) */
static lfs_batch_hook g_batch_hook;
static struct blob_store *g_blobs;

void lfs_set_batch_hook(lfs_batch_hook fn) {
  g_batch_hook = fn;
}

static lfs_fetch_hook g_fetch_hook;
void lfs_set_fetch_hook(lfs_fetch_hook fn) {
  g_fetch_hook = fn;
}

void lfs_init(struct blob_store *blobs) {
  g_blobs = blobs;
}

struct blob_store *lfs__blobs(void) {
  return g_blobs;
}

/* The batch and verify routes declare ERR_LFS: the layer renders the code as LFS JSON once
 * the handler returns it (http_reply_error). */
static int lfs_reply_error(hub_req *r, int code) {
  (void)r;
  return code < 0 ? code : HUB_ERROR;
}

static int reply_lfs_json(hub_req *r, int status, json_t *body) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!s) return hub_error_set(HUB_ERROR, "cannot encode JSON");
  int rc = http_reply_data(r, status, LFS_CTYPE, s, strlen(s));
  free(s);
  return rc;
}

static json_t *obj_error(const lfs_batch_obj *o, int code, const char *msg) {
  return json_pack("{s:s, s:I, s:{s:i, s:s}}", "oid", o->oid, "size", (json_int_t)o->size, "error",
                   "code", code, "message", msg);
}

/* {href, expires_in} with href = "<base>/<purpose>/<subject>?exp&sig"; NULL on failure. */
static json_t *signed_action(hub_req *r, const char *purpose, const char *subject, int64_t exp) {
  hub_buf u = HUB_BUF_INIT;
  json_t *a = NULL;
  if (lfs__signed_url(&u, r, purpose, subject, exp) == 0)
    a = json_pack("{s:s, s:i}", "href", u.ptr, "expires_in", (int)(exp - (int64_t)time(NULL)));
  hub_buf_dispose(&u);
  return a;
}

static json_t *verify_action(hub_req *r, const char *subject, int64_t exp) {
  hub_buf u = HUB_BUF_INIT;
  json_t *a = NULL;
  hub_buf_printf(&u, "%s/%s%s/%s.git/info/lfs/verify?", http_base_url(r),
                 http_type_prefix(r->repo.type), r->repo.ns, r->repo.name);
  if (sign_make(&u, "lfs-verify", subject, exp) == 0 && !u.failed)
    a = json_pack("{s:s, s:i}", "href", u.ptr, "expires_in", LFS_URL_TTL_S);
  hub_buf_dispose(&u);
  return a;
}

/* actions for one object to upload; multipart when `multipart`. */
static json_t *upload_actions(hub_req *r, const lfs_batch_obj *o, int multipart, int64_t exp) {
  char subject[200], part_subject[220], key[16], chunk_s[32], upload[65];
  unsigned char rnd[32];
  json_t *up = NULL, *verify = NULL, *header = NULL;
  snprintf(subject, sizeof subject, "%s/%s/%lld", r->repo.uid, o->oid, (long long)o->size);
  if (!multipart) {
    up = signed_action(r, "lfs-put", subject, exp);
  } else {
    unsigned nparts = lfs_part_count(o->size);
    /* A fresh upload id keys the parts, so two uploads of one object (same repo or not)
     * never overwrite each other's parts. */
    if (RAND_bytes(rnd, sizeof rnd) != 1) goto fail;
    for (int i = 0; i < 32; i++)
      snprintf(upload + 2 * i, 3, "%02x", rnd[i]);
    hub_buf cu = HUB_BUF_INIT;
    if (lfs__signed_url_upload(&cu, r, "lfs-complete", subject, upload, exp) == 0)
      up = json_pack("{s:s, s:i}", "href", cu.ptr, "expires_in", (int)(exp - (int64_t)time(NULL)));
    hub_buf_dispose(&cu);
    header = json_object();
    if (!up || !header) goto fail;
    /* Only chunk_size and the part keys, ascending: the git-lfs custom agent takes every
     * other value as a part URL, in JSON order (hf-api.md §5.3). */
    snprintf(chunk_s, sizeof chunk_s, "%lld", (long long)lfs_part_size(o->size));
    if (json_object_set_new(header, "chunk_size", json_string(chunk_s))) goto fail;
    for (unsigned i = 1; i <= nparts; i++) {
      hub_buf u = HUB_BUF_INIT;
      snprintf(part_subject, sizeof part_subject, "%s/%u", subject, i);
      snprintf(key, sizeof key, "%05u", i);
      int rc = lfs__signed_url_upload(&u, r, "lfs-part", part_subject, upload, exp);
      json_t *s = rc == 0 ? json_string(u.ptr) : NULL;
      hub_buf_dispose(&u);
      if (!s || json_object_set_new(header, key, s)) goto fail;
    }
    if (json_object_set_new(up, "header", header)) {
      header = NULL;
      goto fail;
    }
    header = NULL;
  }
  verify = verify_action(r, subject, exp);
  if (!up || !verify) goto fail;
  return json_pack("{s:o, s:o}", "upload", up, "verify", verify);
fail:
  json_decref(up);
  json_decref(verify);
  json_decref(header);
  return NULL;
}

/* ---- POST {prefix}/{repo}/info/lfs/objects/batch ------------------------------------ */

enum { ST_ERROR, ST_HAVE, ST_NEED };

static void free_req(void *p) {
  lfs_batch_req_free(p);
}

static int may_upload(hub_req *r, const lfs_batch_req *req) {
  /* Contributors may upload objects for pull requests (ref absent = create_pr, or a PR
   * ref): the one rule of who may write which ref (auth_may_write_ref). */
  if (!req->has_ref) return auth_may_write_ref(r->repo_perm, NULL, AUTH_REF_API);
  char full[HUB_MAX_PATH + 16];
  snprintf(full, sizeof full, "%s%s", strncmp(req->ref, "refs/", 5) ? "refs/heads/" : "", req->ref);
  return auth_may_write_ref(r->repo_perm, full, AUTH_REF_API);
}

static int h_batch(hub_req *r) {
  lfs_batch_req *req = NULL;
  int *state = NULL;
  json_t *out = NULL, *objs = NULL;
  int rc = lfs_batch_parse(r->body.ptr, r->body.len, &req);
  if (rc) return lfs_reply_error(r, rc);
  http_cleanup_add(r, free_req, req);
  int upload = req->operation == LFS_OP_UPLOAD;
  if (upload && !may_upload(r, req)) {
    if (!r->who.authenticated)
      hub_error_set(HUB_EAUTH, "You must be authenticated to upload to %s/%s", r->repo.ns,
                    r->repo.name);
    else
      hub_error_set(HUB_EFORBIDDEN, "You don't have write access to %s/%s", r->repo.ns,
                    r->repo.name);
    return lfs_reply_error(r, hub_error_code());
  }
  if (g_batch_hook && (rc = g_batch_hook(r, req)))
    return rc < 0 ? lfs_reply_error(r, rc) : 0; /* Xet */
  if (!(state = calloc(req->nobjects + 1, sizeof *state)))
    return lfs_reply_error(r, hub_error_set(HUB_ERROR, "out of memory"));
  http_cleanup_add(r, free, state);
  if (!(out = json_object()) || !(objs = json_array())) goto oom;

  /* Pass 1: what each object needs. Only objects this repo references count (the store is
   * shared by every repo): another repo's object, a wrong size and a missing object all
   * look the same, and an upload of bytes the store already holds still needs its PUT. */
  int any_multipart = 0;
  for (size_t i = 0; i < req->nobjects; i++) {
    const lfs_batch_obj *o = &req->objects[i];
    int64_t ref = -1, have = -1;
    state[i] = ST_ERROR;
    if (!req->hash_ok || !o->valid) continue;
    rc = db_objects_get(r->repo.id, o->oid, &ref);
    if (rc == 0 && ref == o->size) rc = blob_stat(lfs__blobs(), o->oid, &have);
    if (rc && rc != HUB_ENOTFOUND) {
      json_decref(out);
      json_decref(objs);
      return lfs_reply_error(r, rc);
    }
    state[i] = rc == 0 && ref == o->size && have == o->size ? ST_HAVE : ST_NEED;
    if (!upload && state[i] == ST_NEED && g_fetch_hook && g_fetch_hook(r, o->oid, o->size) == 0)
      state[i] = ST_HAVE; /* brought from a mirror's upstream */
    hub_error_clear();
    if (upload && state[i] == ST_NEED && (req->transfers & LFS_XFER_MULTIPART) &&
        o->size > lfs_part_size(o->size))
      any_multipart = 1;
  }
  /* One adapter per batch: git-lfs runs the chosen adapter for every object, so once any
   * object needs multipart every upload in this batch is multipart-shaped (small ones as
   * one part). Python and JS decide per object from header.chunk_size; both work. */
  int multipart = upload && any_multipart;

  /* Pass 2: the response. */
  int64_t exp = (int64_t)time(NULL) + LFS_URL_TTL_S;
  int64_t dl_exp = (int64_t)time(NULL) + LFS_GET_TTL_S;
  size_t parts_budget = LFS_MAX_BATCH_PARTS;
  for (size_t i = 0; i < req->nobjects; i++) {
    const lfs_batch_obj *o = &req->objects[i];
    json_t *e = NULL;
    char msg[200];
    if (!req->hash_ok) {
      snprintf(msg, sizeof msg, "Hash algorithm \"%.32s\" is not supported; use sha256",
               req->hash_algo);
      e = obj_error(o, 409, msg);
    } else if (!o->valid) {
      e = obj_error(o, 422, o->why);
    } else if (!upload && state[i] == ST_NEED) {
      e = obj_error(o, 404, "Object does not exist");
    } else if (!upload && security_may_download(&r->repo, o->oid, NULL)) {
      e = obj_error(o, 403, hub_error_msg()); /* the scan policy (docs/scanning.md) */
    } else if (upload && state[i] == ST_HAVE) {
      e = json_pack("{s:s, s:I}", "oid", o->oid, "size", (json_int_t)o->size);
    } else if (upload) {
      size_t parts = multipart ? lfs_part_count(o->size) : 0;
      if (parts > parts_budget) {
        e = obj_error(o, 422, "Too many multipart uploads in one batch; retry with fewer objects");
      } else {
        parts_budget -= parts;
        json_t *acts = upload_actions(r, o, multipart, exp);
        e = acts ? json_pack("{s:s, s:I, s:b, s:o}", "oid", o->oid, "size", (json_int_t)o->size,
                             "authenticated", 1, "actions", acts)
                 : NULL;
      }
    } else {
      hub_buf u = HUB_BUF_INIT;
      json_t *dl = lfs_download_url(&u, r, "lfs-get", o->oid, dl_exp) == 0
                       ? json_pack("{s:s, s:i}", "href", u.ptr, "expires_in", LFS_GET_TTL_S)
                       : NULL;
      hub_buf_dispose(&u);
      e = dl ? json_pack("{s:s, s:I, s:b, s:{s:o}}", "oid", o->oid, "size", (json_int_t)o->size,
                         "authenticated", 1, "actions", "download", dl)
             : NULL;
    }
    if (!e || json_array_append_new(objs, e)) goto oom;
  }
  /* "xet" is answered by xetsrv_lfs_batch; "multipart" only when the client offered it. */
  if (json_object_set_new(out, "transfer", json_string(multipart ? "multipart" : "basic")))
    goto oom;
  if (json_object_set_new(out, "objects", objs)) { /* steals objs even on failure */
    objs = NULL;
    goto oom;
  }
  return reply_lfs_json(r, 200, out);
oom:
  json_decref(out);
  json_decref(objs);
  return lfs_reply_error(r, hub_error_set(HUB_ERROR, "out of memory building the batch reply"));
}

/* ---- POST {prefix}/{repo}/info/lfs/verify ------------------------------------------- */

/* Allowed by the signed query the batch reply put in actions.verify.href (git-lfs, which
 * sends no credentials when authenticated is true), or by read permission (Python sends
 * its usual Authorization). The route itself needs no permission so the signature gets a
 * say. */
static int h_verify(hub_req *r) {
  json_t *b = http_body_json(r);
  if (!b) return lfs_reply_error(r, HUB_EINVALID);
  json_t *oid = json_object_get(b, "oid"), *size = json_object_get(b, "size");
  if (!json_is_string(oid) || !blob_oid_valid(json_string_value(oid)) || !json_is_integer(size))
    return lfs_reply_error(
        r, hub_error_set(HUB_EUNPROCESSABLE, "Body must be {\"oid\": <sha256>, \"size\": <int>}"));
  const char *o = json_string_value(oid);
  long long sz = (long long)json_integer_value(size);
  char subject[200];
  snprintf(subject, sizeof subject, "%s/%s/%lld", r->repo.uid, o, sz);
  int gated = r->repo_perm >= PERM_READ && !auth_gate_allows(&r->who, &r->repo, r->repo_perm);
  int allowed = r->repo_perm >= PERM_READ && !gated;
  if (!allowed && http_param(r, "sig")) allowed = lfs__check_signed(r, "lfs-verify", subject) == 0;
  if (!allowed && gated)
    return hub_error_set(HUB_EGATED, "Access to %s/%s is restricted. Ask for access on its page.",
                         r->repo.ns, r->repo.name);
  if (!allowed) {
    /* Exactly what the router answers for a repo that does not exist (same status, headers
     * and body), so verify is no oracle for private repos. */
    if (!r->who.authenticated) return hub_error_set(HUB_EAUTH, "Authentication required");
    return hub_error_set(HUB_EREPO, "Repository not found");
  }
  if (r->repo.disabled && !r->who.is_admin)
    return lfs_reply_error(r,
                           hub_error_set(HUB_EFORBIDDEN, "Access to this resource is disabled."));
  int64_t have = -1;
  int rc = db_objects_get(r->repo.id, o, &have);
  if (rc == HUB_ENOTFOUND || (rc == 0 && have != sz)) /* one answer for both */
    return lfs_reply_error(r, hub_error_set(HUB_ENOTFOUND, "Object %s does not exist", o));
  if (rc) return lfs_reply_error(r, rc);
  return reply_lfs_json(r, 200, json_pack("{s:s, s:I}", "oid", o, "size", (json_int_t)have));
}

/* ---- routes --------------------------------------------------------------------------- */

/* NEED_GIT_CHALLENGE: git-lfs sends credentials only after 401 + LFS-Authenticate, so an
 * anonymous caller gets that (not 404) for a repo it cannot see, and every 401 here carries
 * the challenge headers (added by the router when the response is queued). */
const hub_route lfs_routes[] = {
    {"POST", "{prefix}/{repo}/info/lfs/objects/batch", h_batch,
     NEED_REPO_FILES | NEED_GIT_CHALLENGE | ERR_LFS, BODY_JSON, NULL, 0},
    {"POST", "{prefix}/{repo}/info/lfs/verify", h_verify, NEED_GIT_CHALLENGE | ERR_LFS, BODY_JSON,
     NULL, 0},
    {"PUT", "/lfs-put/{uid}/{oid}/{size}", lfs__h_put, NEED_NONE, BODY_STREAM, lfs__on_put_body, 0},
    {"PUT", "/lfs-part/{uid}/{oid}/{size}/{n}", lfs__h_put, NEED_NONE, BODY_STREAM,
     lfs__on_put_body, 0},
    {"POST", "/lfs-complete/{uid}/{oid}/{size}", lfs__h_complete, NEED_NONE, BODY_JSON,
     lfs__on_complete_body, LFS_MAX_COMPLETE_BODY},
    {"GET", "/lfs-get/{uid}/{oid}", lfs__h_get, NEED_NONE | RUN_INLINE, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
