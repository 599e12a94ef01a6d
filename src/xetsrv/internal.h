/* Shared by the xetsrv module's .c files only. */
#ifndef HUB_XETSRV_INTERNAL_H
#define HUB_XETSRV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "http/http.h"
#include "xet/xet.h"
#include "xetsrv/xetsrv.h"

/* Lifetimes: CAS access tokens (§7.1 suggests 1 h), transfer URLs (§6.5: minutes to an
 * hour), dedup shard keys (§5.8: 7-14 days). A token is honoured XS_TOKEN_TTL_S (plus 5 s
 * of skew) but advertised as expiring XS_TOKEN_EARLY_S sooner: clients refresh by their own
 * clocks shortly before the advertised `exp` (xet-core 30 s, JS 60 s), so a client whose
 * clock is behind, or whose request is slow, still holds a valid token. Dedup HMAC keys
 * are derived per XS_DEDUP_KEY_PERIOD_S from a secret kept in the DB, so the dedup shards
 * a client caches within a period share one key. */
#define XS_TOKEN_TTL_S 3600
#define XS_TOKEN_EARLY_S 300
#define XS_DEDUP_KEY_PERIOD_S (24 * 3600)
#define XS_XFER_TTL_S 3600
#define XS_DEDUP_TTL_S (7 * 24 * 3600)
/* A dedup reply offers the xorbs holding the chunk plus those of up to this many files
 * that use them ("nearby" xorbs, §5.8), at most XS_DEDUP_MAX_CHUNKS entries. */
#define XS_DEDUP_MAX_FILES 8
#define XS_DEDUP_MAX_XORBS 64
#define XS_DEDUP_MAX_CHUNKS 200000
#define XS_CAS_PREFIX "/xet-cas"

/* ---- store.c ---------------------------------------------------------------------- */

int xs_store_open(const char *data_dir); /* migrations + xorb store <data>/xet; idempotent */
/* The hub-wide switch (hub_ctx.xet_enabled), from xetsrv_init; before it (CLI), MODELHUB_XET. */
void xs_set_global(int on);
blob_store *xs_blobs(void);
blob_store *xs_lfs_blobs(void);  /* the LFS object store given to xetsrv_init */
int xs_enabled(int64_t repo_id); /* MODELHUB_XET=0 turns it off everywhere */
int xs_set_enabled(int64_t repo_id, int on);
/* Transfer-URL lifetime: XS_XFER_TTL_S, or MODELHUB_XET_URL_TTL seconds (tests). */
int64_t xs_xfer_ttl(void);
/* The dedup-reply HMAC key of the period holding `now` (HMAC-SHA256 of the period number
 * under the module's secret, created once in the DB). */
int xs_dedup_key(xet_hash *out, uint64_t now);

typedef struct {
  xet_hash hash;
  char blob_oid[65];
  uint64_t size; /* serialized bytes */
  size_t n;
  xet_xorb_chunk *chunks;
} xs_xorb;
int xs_xorb_get(const xet_hash *h, xs_xorb *out); /* HUB_ENOTFOUND */
void xs_xorb_dispose(xs_xorb *x);
int xs_xorb_exists(const xet_hash *h);
/* Store a parsed, verified xorb and its bytes. *inserted = 0 if it was already there. */
int xs_xorb_put(const xet_xorb *x, const uint8_t *data, size_t len, int64_t repo_id, int *inserted);
/* The same for a xorb whose x->data_len record bytes were streamed into `w` (committed here,
 * or aborted when the xorb is already stored; `w` is freed either way). */
int xs_xorb_put_writer(const xet_xorb *x, blob_writer *w, int64_t repo_id, int *inserted);

typedef struct {
  xet_hash hash;
  uint64_t size;
  size_t n;
  xet_term *terms;
} xs_file;
int xs_file_get(const xet_hash *h, xs_file *out); /* HUB_ENOTFOUND */
void xs_file_dispose(xs_file *f);

/* Record the files of a checked shard (and the CAS blocks' dedup hints) in one
 * transaction; *any_new = 1 if a file was new. Links each file to `repo_id` and its sha256
 * (unverified unless `verified`). */
int xs_shard_record(const xet_shard *s, int64_t repo_id, int verified, int *any_new);
/* sha256 hex -> file, accepting a verified link or one made by `repo_id` (0 = verified
 * only). HUB_ENOTFOUND. */
int xs_sha_find(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size);
int xs_sha_set_verified(const char *sha, const xet_hash *file, int ok);
int xs_repo_link(int64_t repo_id, const xet_hash *file);
int xs_repo_has(int64_t repo_id, const xet_hash *file);
/* Xorbs to offer for a dedup query on `chunk`; *out malloc'd. HUB_ENOTFOUND if none. */
int xs_dedup_xorbs(const xet_hash *chunk, xet_hash **out, size_t *n);
/* Unverified (sha, file, uploader repo) links, for the worker after a restart. */
int xs_unverified(void (*cb)(const char *sha, const xet_hash *file, int64_t repo_id, void *p),
                  void *p);

/* A per-request cache of xorb chunk tables; xs_cache_lookup is an xet_xorb_lookup_fn. */
typedef struct {
  size_t n, cap;
  xs_xorb *x;
} xs_cache;
xs_xorb *xs_cache_get(xs_cache *c, const xet_hash *h); /* NULL with error set */
int xs_cache_lookup(void *payload, const xet_hash *xorb, const xet_xorb_chunk **out_chunks,
                    size_t *out_n);
void xs_cache_dispose(xs_cache *c);

/* ---- acl.c: what a repo may read (docs/xet.md, "Read scope") ------------------------ */

int xs_acl_open(void); /* module "xetsrv-acl" migrations */
/* Like xs_sha_find, for one repo: a link made by `repo_id`'s own upload (verified or not),
 * or a verified link whose sha256 the repo references (repo_objects, same size). */
int xs_sha_find_for(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size);
/* 1 if `repo_id` may read file `file` (reconstructions): linked to it, or a verified
 * sha256 of it is referenced by the repo (then the link is recorded). */
int xs_repo_may_read(int64_t repo_id, const xet_hash *file);
/* 1 if a dedup answer to a token of `repo_id` may offer `xorb`: a file using it is
 * readable through that repo or sits in a public, ungated repo. */
int xs_dedup_allowed(int64_t repo_id, const xet_hash *xorb);
/* A verified sha256 claim: every uploader repo of (sha, file) now references the object. */
int xs_claims_to_objects(const char *sha, const xet_hash *file);

/* ---- hub.c / cas.c ------------------------------------------------------------------- */

/* "xet1.<repo uid>.<r|w>.<exp>.<sig>"; out >= 160 bytes. */
int xs_token_make(char *out, size_t cap, const char *repo_uid, int write, int64_t exp);
void xs_cas_url(hub_req *r, hub_buf *out);
extern const hub_route xs_cas_routes[];
extern const hub_route xs_hub_routes[];

/* ---- reconstruct.c ------------------------------------------------------------------- */

/* Sequential reader of file bytes [start, start+len), rebuilt from xorbs. */
typedef struct xs_reader xs_reader;
int xs_reader_open(xs_reader **out, const xet_hash *file, uint64_t start, uint64_t len);
/* *got = 0 at the end. */
int xs_reader_read(xs_reader *rd, uint8_t *buf, size_t cap, size_t *got);
void xs_reader_free(xs_reader *rd);
/* Signed transfer URL for bytes [s, e] (inclusive) of xorb `h`. */
int xs_xfer_url(hub_req *r, hub_buf *out, const xet_hash *h, uint64_t s, uint64_t e, int64_t exp);
extern const hub_route xs_xfer_routes[];

/* ---- convert.c ------------------------------------------------------------------------ */

int xs_worker_start(void);
void xs_queue_convert(const char *sha, int64_t repo_id);
void xs_queue_verify(const char *sha, const xet_hash *file);
/* For repos with Xet off: rebuild the file into the LFS store as object `sha` (which checks
 * the sha256 claim on the way), so the repo serves it as a plain LFS object. */
void xs_queue_materialize(const char *sha, const xet_hash *file);
/* Record that `repo_id` holds `file` (xs_repo_link) on the worker: lookups run on event
 * threads, which never write. */
void xs_queue_link(int64_t repo_id, const xet_hash *file);
int xs_materialize_file(const char *sha, const xet_hash *file);
/* Convert a stored LFS blob into xorbs + a file now (worker and CLI). */
int xs_convert_blob(const char *sha, int64_t repo_id);
/* Rebuild a file and compare its sha256; 0 if equal, HUB_EINVALID if not. */
int xs_verify_file(const char *sha, const xet_hash *file);

#endif
