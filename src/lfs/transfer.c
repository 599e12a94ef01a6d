/* Signed LFS transfer routes: basic PUT, multipart part PUT + completion, download GET.
 *
 * Clients send these without credentials (hf-api.md §1.3, §5.3), so each URL authorizes
 * itself: "exp=&sig=" binds (purpose, "<repo uid>/<oid>[/<size>[/<part>]]"). Bodies stream
 * straight into a blob_writer that hashes as it writes; the object appears only when its
 * sha256 and size match. A request that dies mid-upload has its writer aborted by the
 * request cleanup, so nothing partial is ever visible. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/sign.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "http/range.h"
#include "lfs/lfs.h"
#include "security/security.h"
#include "util/error.h"
#include "util/limits.h"

/* ---- signing helpers (shared with batch.c) -------------------------------------------- */

int lfs__signed_url(hub_buf *out, hub_req *r, const char *purpose, const char *subject,
                    int64_t exp) {
  hub_buf_printf(out, "%s/%s/%s?", http_base_url(r), purpose, subject);
  int rc = sign_make(out, purpose, subject, exp);
  if (rc) return rc;
  return out->failed ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

int lfs__signed_url_upload(hub_buf *out, hub_req *r, const char *purpose, const char *subject,
                           const char *upload, int64_t exp) {
  char signed_subject[320];
  snprintf(signed_subject, sizeof signed_subject, "%s/%s", subject, upload);
  hub_buf_printf(out, "%s/%s/%s?upload=%s&", http_base_url(r), purpose, subject, upload);
  int rc = sign_make(out, purpose, signed_subject, exp);
  if (rc) return rc;
  return out->failed ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

/* Download URLs of a repo only some may read are bound to the user they were issued to. */
static int64_t download_user(hub_req *r) {
  int public_files = !r->repo.is_private && !r->repo.gated[0];
  return public_files || !r->who.authenticated ? 0 : r->who.user_id;
}

int lfs_download_url(hub_buf *out, hub_req *r, const char *purpose, const char *oid, int64_t exp) {
  char subject[160];
  int64_t u = download_user(r);
  if (!u) {
    snprintf(subject, sizeof subject, "%s/%s", r->repo.uid, oid);
    return lfs__signed_url(out, r, purpose, subject, exp);
  }
  snprintf(subject, sizeof subject, "%s/%s/u%lld", r->repo.uid, oid, (long long)u);
  hub_buf_printf(out, "%s/%s/%s/%s?u=%lld&", http_base_url(r), purpose, r->repo.uid, oid,
                 (long long)u);
  int rc = sign_make(out, purpose, subject, exp);
  if (rc) return rc;
  return out->failed ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

int lfs__check_signed(hub_req *r, const char *purpose, const char *subject) {
  const char *exp = http_param(r, "exp"), *sig = http_param(r, "sig");
  if (!exp || !sig)
    return hub_error_set(HUB_EFORBIDDEN,
                         "This URL must be signed (exp, sig); get one from the LFS batch API");
  int rc = sign_check(purpose, subject, exp, sig, (int64_t)time(NULL));
  if (rc == HUB_EAUTH) {
    if (!strcmp(hub_error_msg(), "expired"))
      return hub_error_set(HUB_EFORBIDDEN,
                           "Signed URL expired; request a new one from the LFS batch API");
    return hub_error_set(HUB_EFORBIDDEN,
                         "Invalid signed URL (tampered with, or issued for another object)");
  }
  return rc;
}

/* ---- URL targets ---------------------------------------------------------------------- */

typedef struct {
  db_repo repo;
  char oid[65];
  int64_t size;    /* -1 when the URL has none (lfs-get) */
  char upload[65]; /* multipart upload id (lfs-part, lfs-complete); "" otherwise */
  unsigned part;   /* 0 unless lfs-part */
  char subject[256];
} lfs_target;

/* Canonical decimal (no sign, no leading zero) in 0..INT64_MAX; -1 if not. */
static int64_t parse_dec(const char *s) {
  int64_t v = 0;
  if (!*s || (s[0] == '0' && s[1])) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    if (v > (INT64_MAX - (*s - '0')) / 10) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

static int uid_valid(const char *s) {
  size_t n = strspn(s, "0123456789abcdef");
  return n == 24 && !s[n];
}

/* Parse r->cap (uid, oid[, size[, part]]) and, for multipart URLs, the upload id (query
 * "upload", signed with the rest), check the signature for `purpose`, then load the repo.
 * Malformed → 404; bad signature → 403; repo gone → 404 RepoNotFound. */
static int target_load(hub_req *r, const char *purpose, lfs_target *t) {
  memset(t, 0, sizeof *t);
  t->size = -1;
  if (r->ncap < 2 || !uid_valid(r->cap[0]) || !blob_oid_valid(r->cap[1]))
    return hub_error_set(HUB_ENOTFOUND, "Malformed LFS transfer URL");
  memcpy(t->oid, r->cap[1], 65);
  if (r->ncap >= 3) {
    t->size = parse_dec(r->cap[2]);
    if (t->size < 1 || t->size > HUB_MAX_BLOB_SIZE)
      return hub_error_set(HUB_ENOTFOUND, "Malformed LFS transfer URL (size)");
  }
  int64_t user = 0;
  int download = !strcmp(purpose, "lfs-get") || !strcmp(purpose, "xet-get");
  const char *u = download ? http_param(r, "u") : NULL;
  if (u && (user = parse_dec(u)) < 1)
    return hub_error_set(HUB_EFORBIDDEN, "Invalid signed URL (tampered with)");
  if (!strcmp(purpose, "lfs-part") || !strcmp(purpose, "lfs-complete")) {
    const char *up = http_param(r, "upload");
    if (!up || !blob_oid_valid(up))
      return hub_error_set(HUB_EFORBIDDEN,
                           "This URL must name its upload (upload=); get one from the LFS batch "
                           "API");
    memcpy(t->upload, up, 65);
  }
  if (r->ncap >= 4) {
    int64_t n = parse_dec(r->cap[3]);
    if (n < 1 || n > (int64_t)lfs_part_count(t->size))
      return hub_error_set(HUB_ENOTFOUND, "Malformed LFS transfer URL (part number)");
    t->part = (unsigned)n;
  }
  if (t->size < 0)
    snprintf(t->subject, sizeof t->subject, "%s/%s", r->cap[0], t->oid);
  else if (!t->part)
    snprintf(t->subject, sizeof t->subject, "%s/%s/%lld", r->cap[0], t->oid, (long long)t->size);
  else
    snprintf(t->subject, sizeof t->subject, "%s/%s/%lld/%u", r->cap[0], t->oid, (long long)t->size,
             t->part);
  if (t->upload[0]) {
    size_t n = strlen(t->subject);
    snprintf(t->subject + n, sizeof t->subject - n, "/%s", t->upload);
  }
  if (user) {
    size_t n = strlen(t->subject);
    snprintf(t->subject + n, sizeof t->subject - n, "/u%lld", (long long)user);
  }
  int rc = lfs__check_signed(r, purpose, t->subject);
  if (rc) return rc;
  if ((rc = db_repo_by_uid(r->cap[0], &t->repo)))
    return rc == HUB_EREPO ? hub_error_set(HUB_EREPO, "Repository not found (deleted?)") : rc;
  if (t->repo.disabled)
    return hub_error_set(HUB_EFORBIDDEN, "Access to this resource is disabled.");
  if (download) {
    /* Re-check access on each use: a URL issued for a public repo stops working when the
     * repo turns private or gated; one bound to a user, when that user can no longer read
     * the repo's files (membership removed, gate revoked, account deleted). */
    hub_identity who;
    int perm = PERM_NONE;
    if (user && auth_identity_for_user(user, &who) == 0) perm = auth_repo_perm(&who, &t->repo);
    int ok = user ? perm >= PERM_READ && auth_gate_allows(&who, &t->repo, perm)
                  : !t->repo.is_private && !t->repo.gated[0];
    if (!ok) return hub_error_set(HUB_EREPO, "Repository not found");
  }
  return 0;
}

int lfs_download_target(hub_req *r, const char *purpose, db_repo *out) {
  lfs_target t;
  int rc = target_load(r, purpose, &t);
  if (!rc) *out = t.repo;
  return rc;
}

/* ---- PUT /lfs-put/{uid}/{oid}/{size} and /lfs-part/{uid}/{oid}/{size}/{n} ------------- */

struct put_state {
  blob_writer *w; /* NULL once committed or aborted */
  lfs_target t;
  int64_t want; /* bytes this body must have: the object, or this part */
};

static void put_state_free(void *p) {
  struct put_state *st = p;
  blob_writer_abort(st->w); /* client gone mid-upload: drop the temporary data */
  free(st);
}

/* First body chunk (or the handler, for an empty body): authorize and open the writer, so
 * no byte is stored before the signature is checked. */
static int put_begin(hub_req *r, struct put_state **out) {
  struct put_state *st = calloc(1, sizeof *st);
  int rc;
  if (!st) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, put_state_free, st);
  int is_part = r->ncap == 4;
  if ((rc = target_load(r, is_part ? "lfs-part" : "lfs-put", &st->t))) return rc;
  st->want = st->t.size;
  if (is_part) {
    int64_t chunk = lfs_part_size(st->t.size);
    unsigned n = lfs_part_count(st->t.size);
    st->want = st->t.part < n ? chunk : st->t.size - (int64_t)(n - 1) * chunk;
  }
  const char *cl = http_header(r, "Content-Length");
  if (cl && parse_dec(cl) != st->want)
    return hub_error_set(HUB_EINVALID, "Content-Length %.30s does not match the %lld bytes %s", cl,
                         (long long)st->want, is_part ? "of this part" : "of this object");
  rc = is_part ? blob_parts_writer_open(lfs__blobs(), st->t.upload, st->t.part, &st->w)
               : blob_writer_open(lfs__blobs(), &st->w);
  if (rc) return rc;
  r->state = st;
  *out = st;
  return 0;
}

int lfs__on_put_body(hub_req *r, const char *data, size_t len) {
  struct put_state *st = r->state;
  int rc;
  if (!st && (rc = put_begin(r, &st))) return rc;
  int64_t got = blob_writer_size(st->w);
  if ((uint64_t)len > (uint64_t)(st->want - got)) {
    blob_writer_abort(st->w); /* free the disk now; the rest of the body is discarded */
    st->w = NULL;
    return hub_error_set(HUB_EINVALID, "Body is longer than the %lld bytes %s; nothing was stored",
                         (long long)st->want, st->t.part ? "of this part" : "of this object");
  }
  if ((rc = blob_writer_write(st->w, data, len))) {
    blob_writer_abort(st->w);
    st->w = NULL;
  }
  return rc;
}

static int prefix_error(int rc, const char *prefix) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  return hub_error_set(rc, "%s%s", prefix, msg);
}

int lfs__h_put(hub_req *r) {
  struct put_state *st = r->state;
  char etag[70], id[65];
  int rc;
  if (!st && (rc = put_begin(r, &st))) return rc; /* empty body: nothing streamed */
  blob_writer *w = st->w;
  st->w = NULL; /* commit and abort both free it */
  if (!st->t.part) {
    rc = blob_writer_commit(w, st->t.oid, st->t.size, NULL);
    if (rc == HUB_EINVALID) return prefix_error(rc, "Upload rejected, nothing was stored: ");
    /* The bytes hashed to the oid: the repo may reference the object from now on. */
    if (rc || (rc = db_objects_add(st->t.repo.id, st->t.oid, st->t.size))) return rc;
    snprintf(id, sizeof id, "%s", st->t.oid);
  } else {
    int64_t got = blob_writer_size(w);
    if (got != st->want) {
      blob_writer_abort(w);
      return hub_error_set(HUB_EINVALID,
                           "Part %u has %lld bytes, expected %lld (chunk_size policy); not stored",
                           st->t.part, (long long)got, (long long)st->want);
    }
    if ((rc = blob_parts_writer_commit(w, id))) return rc;
  }
  snprintf(etag, sizeof etag, "\"%s\"", id);
  if ((rc = http_reply_data(r, 200, "text/plain; charset=utf-8", "", 0))) return rc;
  http_add_header(r, "ETag", etag); /* multipart clients require a non-empty ETag */
  return 0;
}

/* ---- POST /lfs-complete/{uid}/{oid}/{size} ------------------------------------------- */

/* Body {"oid", "parts": [{"partNumber", "etag"}, ...]}: when given, the oid must be the
 * URL's and the parts must be exactly 1..N of the chunk_size policy. The ETags are not
 * compared: the assembled object's sha256 is what is verified. */
static int check_parts(json_t *parts, unsigned n) {
  unsigned char *seen = NULL;
  size_t i;
  json_t *p;
  int rc = 0;
  if (!json_is_array(parts)) return hub_error_set(HUB_EINVALID, "parts must be a list");
  if (json_array_size(parts) != n)
    return hub_error_set(HUB_EINVALID, "Expected %u parts for this object, got %zu", n,
                         json_array_size(parts));
  if (!(seen = calloc(n + 1, 1))) return hub_error_set(HUB_ERROR, "out of memory");
  json_array_foreach(parts, i, p) {
    json_t *num = json_object_get(p, "partNumber");
    json_int_t k = json_is_integer(num) ? json_integer_value(num) : 0;
    if (k < 1 || k > (json_int_t)n || seen[k]) {
      rc = hub_error_set(HUB_EINVALID, "parts[%zu].partNumber must be a distinct number in 1..%u",
                         i, n);
      break;
    }
    seen[k] = 1;
  }
  free(seen);
  return rc;
}

int lfs__on_complete_body(hub_req *r, const char *data, size_t len) {
  lfs_target t;
  return len ? 0 : target_load(r, "lfs-complete", &t);
}

int lfs__h_complete(hub_req *r) {
  lfs_target t;
  int rc = target_load(r, "lfs-complete", &t);
  if (rc) return rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  json_t *oid = json_object_get(b, "oid"), *parts = json_object_get(b, "parts");
  if (oid && (!json_is_string(oid) || strcmp(json_string_value(oid), t.oid)))
    return hub_error_set(HUB_EINVALID, "oid in the body does not match the URL");
  unsigned n = lfs_part_count(t.size);
  if (parts && (rc = check_parts(parts, n))) return rc;
  int64_t ref = -1;
  if (db_objects_get(t.repo.id, t.oid, &ref) || ref != t.size) {
    /* Parts of this upload only, and no shortcut when the store already holds the object:
     * the repo gets the reference once these bytes hash to the oid. (A repeated
     * completion finds the reference and answers 200 again.) */
    rc = blob_parts_assemble_upload(lfs__blobs(), t.upload, t.oid, n, t.size, NULL);
    if (rc == HUB_ENOTFOUND) return prefix_error(HUB_EINVALID, "Cannot complete upload: ");
    if (rc == HUB_EINVALID) return prefix_error(rc, "Upload rejected, nothing was stored: ");
    if (rc || (rc = db_objects_add(t.repo.id, t.oid, t.size))) return rc;
  }
  json_t *o = json_pack("{s:s, s:I}", "oid", t.oid, "size", (json_int_t)t.size);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  rc = http_reply_data(r, 200, "application/vnd.git-lfs+json", s, strlen(s));
  free(s);
  if (rc) return rc;
  char etag[70];
  snprintf(etag, sizeof etag, "\"%s\"", t.oid);
  http_add_header(r, "ETag", etag);
  return 0;
}

/* ---- GET|HEAD /lfs-get/{uid}/{oid} ------------------------------------------------------ */

int lfs__h_get(hub_req *r) {
  lfs_target t;
  int64_t total = 0, s = 0, e = 0;
  char etag[70], cr[96];
  const char *ct = "application/octet-stream";
  int rc = target_load(r, "lfs-get", &t);
  if (rc) return rc;
  /* Re-checked on every use: the URL stops working once the repo no longer references the
   * object (or is deleted / disabled, above). */
  if (db_objects_get(t.repo.id, t.oid, NULL))
    return hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  if ((rc = security_may_download(&t.repo, t.oid, NULL))) return rc; /* URL signed before */
  rc = blob_stat(lfs__blobs(), t.oid, &total);
  if (rc == HUB_ENOTFOUND) return hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  if (rc) return rc;
  snprintf(etag, sizeof etag, "\"%s\"", t.oid);
  const char *inm = http_header(r, "If-None-Match");
  const char *range = http_header(r, "Range");
  int pr = range ? range_parse(range, total, &s, &e) : RANGE_IGNORE;
  int status = 200;
  uint64_t off = 0, len = (uint64_t)total;
  cr[0] = 0;
  if (inm && (strstr(inm, etag) || strstr(inm, "*"))) {
    rc = http_reply_data(r, 304, NULL, "", 0);
  } else if (total > 0 &&
             (rc = http_reply_blob_redirect(r, lfs__blobs(), t.oid, NULL)) != HUB_EUNSUPPORTED) {
    /* --blob-redirect: 302 to the object store (or its error); Range goes there too */
  } else if (range && total == 0 && pr != RANGE_IGNORE) {
    rc = http_reply_data(r, 200, ct, "", 0);
    snprintf(cr, sizeof cr, "bytes */0");
  } else if (pr == HUB_ERANGE) {
    hub_error_set(HUB_ERANGE, "Requested range not satisfiable: %.100s (size %lld)", range,
                  (long long)total);
    rc = http_reply_error(r, HUB_ERANGE);
    snprintf(cr, sizeof cr, "bytes */%lld", (long long)total);
  } else {
    if (pr == 0) {
      status = 206;
      off = (uint64_t)s;
      len = (uint64_t)(e - s + 1);
      snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)s, (long long)e, (long long)total);
    }
    if (r->is_head) {
      rc = http_reply_data_len(r, status, ct, len);
    } else {
      rc = http_reply_blob(r, status, ct, lfs__blobs(), t.oid, off, len);
    }
  }
  if (rc) return rc;
  http_add_header(r, "ETag", etag);
  http_add_header(r, "Accept-Ranges", "bytes");
  http_add_header(r, "X-Content-Type-Options", "nosniff"); /* user bytes, page origin */
  if (cr[0]) http_add_header(r, "Content-Range", cr);
  return 0;
}
