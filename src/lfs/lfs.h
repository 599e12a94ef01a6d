/* git-LFS server: batch API, basic and HF-multipart transfers, verify (hf-api.md §5.3, §8.2;
 * docs/lfs.md).
 *
 * Routes (lfs_routes, registered before the resolve routes):
 *   POST {prefix}/{repo}[.git]/info/lfs/objects/batch   caller's credentials (read / write)
 *   POST {prefix}/{repo}[.git]/info/lfs/verify          signed query or read permission
 *   PUT  /lfs-put/{uid}/{oid}/{size}                    signed: whole object (basic)
 *   PUT  /lfs-part/{uid}/{oid}/{size}/{n}?upload=       signed: one multipart part
 *   POST /lfs-complete/{uid}/{oid}/{size}?upload=       signed: assemble the parts
 *   GET  /lfs-get/{uid}/{oid}                           signed: download (Range, HEAD)
 * {uid} is the repo's immutable uid, so a rename does not break handed-out URLs. Signed
 * URLs carry "exp=<unix>&sig=<hmac>" from auth/sign.h; the signature binds the purpose
 * (the first path segment) and the subject (the rest of the path), so one URL can never be
 * used for another repo, object, size, upload or part. Clients PUT them without credentials.
 * upload= is a random id (64 hex) per multipart upload, signed with the path (the subject
 * gets "/<upload>" appended): parts are stored under it, so concurrent uploads of one object
 * cannot overwrite each other's parts.
 *
 * Objects are scoped per repo (db/objects.h): batch, verify and lfs-get answer only for
 * objects the repo references, and a PUT or completion adds the reference once the bytes
 * hash to the oid. */
#ifndef HUB_LFS_LFS_H
#define HUB_LFS_LFS_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

extern const hub_route lfs_routes[];

/* The LFS object store (built in main.c and passed down; borrowed for the process). Once,
 * before serving. */
struct blob_store;
void lfs_init(struct blob_store *blobs);

/* Lifetime of the signed upload URLs (put, part, complete, verify) the batch API hands out
 * (24 h: a multi-GB multipart upload over a slow link must not expire half way; an upload
 * URL can only add bytes that hash to its oid, never read or commit anything). */
#define LFS_URL_TTL_S (24 * 3600)
/* Lifetime of signed download URLs (lfs-get, xet-get): 1 h, and each use re-checks that the
 * repo still exists, is not disabled and still references the object. */
#define LFS_GET_TTL_S 3600
/* Smallest multipart part. S3 wants >= 5 MiB per part (but the last), so parts map onto
 * S3 multipart uploads one to one when the blob store grows an S3 backend. */
#define LFS_PART_MIN (8LL * 1024 * 1024)
/* Multipart URLs one batch response may hold in total: each is ~250 bytes of JSON, so this
 * bounds the response a hostile batch (1000 × 50 GB objects) can make us build (~25 MB).
 * Objects past the budget get a per-object 422 asking the client to retry with fewer. */
#define LFS_MAX_BATCH_PARTS 100000
/* Longest oid string echoed back from a request (a real one is 64). */
#define LFS_MAX_OID_TEXT 128

enum { LFS_OP_DOWNLOAD = 1, LFS_OP_UPLOAD = 2 };
/* Transfer adapters we implement, as a bit set of what the client offered. */
enum { LFS_XFER_BASIC = 1, LFS_XFER_MULTIPART = 2 };

typedef struct {
  char oid[LFS_MAX_OID_TEXT + 1]; /* as sent (NUL-free) */
  int64_t size;                   /* as sent; may be negative or over the limit */
  int valid;                      /* oid is 64 lowercase hex and 0 < size <= HUB_MAX_BLOB_SIZE */
  const char *why;                /* static reason when !valid (the per-object 422 message) */
} lfs_batch_obj;

typedef struct {
  int operation;      /* LFS_OP_* */
  unsigned transfers; /* LFS_XFER_* offered; "transfers" absent means basic */
  int hash_ok;        /* hash_algo absent/null, "sha256" or "sha_256" (else per-object 409) */
  char hash_algo[33]; /* as sent, truncated, for the 409 message ("" when absent) */
  int has_ref;
  char ref[HUB_MAX_PATH + 1]; /* ref.name as sent ("main", "refs/heads/main", ...) */
  size_t nobjects;            /* <= HUB_MAX_LFS_BATCH */
  lfs_batch_obj objects[];
} lfs_batch_req;

/* A batch request another module may answer first (xetsrv/: Xet transfers), called after
 * the request was parsed and authorized: 1 = reply queued, 0 = not ours (plain LFS goes
 * on), < 0 = error. Set once at start-up; lfs/ does not include its caller. */
typedef int (*lfs_batch_hook)(hub_req *r, const lfs_batch_req *req);
void lfs_set_batch_hook(lfs_batch_hook fn);
/* Where a download of an object the repo names but does not hold may come from (mirror/:
 * fetched from upstream, verified, then referenced): 0 when the object is now stored and
 * referenced, an error code when not (the object then gets its per-object error). Called
 * on the batch's worker thread. Set once at start-up. */
typedef int (*lfs_fetch_hook)(hub_req *r, const char *oid, int64_t size);
void lfs_set_fetch_hook(lfs_fetch_hook fn);

/* Parse a batch request body (pure: no I/O, no globals). *out is owned by the caller; free
 * it with lfs_batch_req_free(). Errors (message set): HUB_EINVALID for a body that is not
 * a JSON object; HUB_EUNPROCESSABLE for a structurally wrong request (unknown operation,
 * objects missing or not a list, an entry without a string oid or integer size, ...);
 * HUB_ETOOBIG for more than HUB_MAX_LFS_BATCH objects. Semantically bad objects (bad oid,
 * size <= 0 or too big) do not fail the parse: they come back with valid = 0. */
int lfs_batch_parse(const char *buf, size_t len, lfs_batch_req **out);
void lfs_batch_req_free(lfs_batch_req *req);

/* Multipart policy: the part size for an object of `size` bytes is the smallest whole
 * number of MiB that keeps the part count <= HUB_MAX_LFS_PARTS, but at least LFS_PART_MIN.
 * lfs_part_count() = ceil(size / part_size). size must be in 1..HUB_MAX_BLOB_SIZE. */
int64_t lfs_part_size(int64_t size);
unsigned lfs_part_count(int64_t size);

/* Completion bodies list every part ({"partNumber": 10000, "etag": "\"<64 hex>\""} is
 * ~90 bytes, up to HUB_MAX_LFS_PARTS of them). */
#define LFS_MAX_COMPLETE_BODY (4 * 1024 * 1024)

/* Signed download URL "<base>/<purpose>/<uid>/<oid>?[u=<user>&]exp&sig" (purpose "lfs-get"
 * or Xet's "xet-get") for r->repo's object `oid`. For a private or gated repo it is bound to
 * the caller's user id (signed), so each use can re-check that user's access. */
int lfs_download_url(hub_buf *out, hub_req *r, const char *purpose, const char *oid, int64_t exp);
/* Check a download URL (r->cap = uid, oid): signature, repo exists and is not disabled, and
 * the access it was issued for still holds. *out = the repo. 403 bad/expired signature; 404
 * RepoNotFound when the repo or the access is gone. The caller checks the object. */
int lfs_download_target(hub_req *r, const char *purpose, db_repo *out);

/* Semi-private, shared by batch.c (route table) and transfer.c (signed transfer routes). */
struct blob_store *lfs__blobs(void); /* the store given to lfs_init */
int lfs__h_put(hub_req *r);          /* lfs-put and lfs-part */
int lfs__on_put_body(hub_req *r, const char *data, size_t len);
int lfs__h_complete(hub_req *r);
/* Start call of a completion: the signed URL is checked before any body byte is read. */
int lfs__on_complete_body(hub_req *r, const char *data, size_t len);
int lfs__h_get(hub_req *r);
/* Check the request's exp=/sig= for (purpose, subject). 0, or HUB_EFORBIDDEN with a
 * message saying whether the URL was tampered with or expired. */
int lfs__check_signed(hub_req *r, const char *purpose, const char *subject);
/* Append "<base>/<purpose>/<subject>?exp=..&sig=.." to out. */
int lfs__signed_url(hub_buf *out, hub_req *r, const char *purpose, const char *subject,
                    int64_t exp);
/* Multipart: "<base>/<purpose>/<subject>?upload=<id>&exp=..&sig=..", signed over
 * "<subject>/<id>". */
int lfs__signed_url_upload(hub_buf *out, hub_req *r, const char *purpose, const char *subject,
                           const char *upload, int64_t exp);

#endif
