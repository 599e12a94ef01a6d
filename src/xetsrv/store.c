/* Xet state: xorb objects in their own blob store, and the module's DB tables. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/lock.h"
#include "db/xet.h"
#include "util/error.h"
#include "xetsrv/internal.h"

static blob_store *g_xorbs;
static pthread_mutex_t g_open_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_dedup_secret[32];

/* The dedup-key secret lives in the DB so restarts (and every node) derive the same keys. */
static int load_dedup_secret(void) {
  size_t n = 0;
  if (db_kv_get("xet_dedup_secret", g_dedup_secret, sizeof g_dedup_secret, &n) == 0 &&
      n == sizeof g_dedup_secret)
    return 0;
  if (RAND_bytes(g_dedup_secret, sizeof g_dedup_secret) != 1)
    return hub_error_set(HUB_ERROR, "no randomness");
  /* First writer wins: nodes starting at once agree on one secret. */
  return db_kv_claim("xet_dedup_secret", g_dedup_secret, sizeof g_dedup_secret);
}

int xs_dedup_key(xet_hash *out, uint64_t now) {
  char msg[64];
  unsigned len = 0;
  int n = snprintf(msg, sizeof msg, "modelhub-xet-dedup-key-v1\n%llu",
                   (unsigned long long)(now / XS_DEDUP_KEY_PERIOD_S));
  if (!HMAC(EVP_sha256(), g_dedup_secret, (int)sizeof g_dedup_secret, (const unsigned char *)msg,
            (size_t)n, out->b, &len) ||
      len != XET_HASH_LEN)
    return hub_error_set(HUB_ERROR, "cannot derive the dedup key");
  return 0;
}

int xs_store_open(const char *data_dir) {
  int rc = 0;
  pthread_mutex_lock(&g_open_mu);
  if (!g_xorbs) {
    (void)data_dir; /* the store's location is the process's (blob_set_location) */
    rc = db_xet_migrate();
    if (!rc) rc = load_dedup_secret();
    if (!rc) rc = blob_store_open_at(&g_xorbs, "xet");
    if (!rc) blob_store_sweep_tmp(g_xorbs, 24 * 3600, NULL);
  }
  pthread_mutex_unlock(&g_open_mu);
  return rc;
}

blob_store *xs_blobs(void) {
  return g_xorbs;
}

static int g_global = -1; /* -1: not given (CLI), read MODELHUB_XET */

void xs_set_global(int on) {
  g_global = on ? 1 : 0;
}

int xs_enabled(int64_t repo_id) {
  if (g_global == 0) return 0;
  const char *env = g_global < 0 ? getenv("MODELHUB_XET") : NULL;
  if (env && (!strcmp(env, "0") || !strcmp(env, "off") || !strcmp(env, "false"))) return 0;
  return db_xet_enabled(repo_id);
}

int xs_set_enabled(int64_t repo_id, int on) {
  return db_xet_set_enabled(repo_id, on);
}

/* ---- packing -------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define CHUNK_REC 48
#define TERM_REC 44

/* ---- xorbs ---------------------------------------------------------------------------- */

int xs_xorb_exists(const xet_hash *h) {
  return db_xet_xorb_exists(h->b);
}

int xs_xorb_get(const xet_hash *h, xs_xorb *out) {
  memset(out, 0, sizeof *out);
  uint8_t *packed = NULL;
  size_t n = 0, plen = 0;
  int rc = db_xet_xorb_get(h->b, out->blob_oid, &out->size, &n, &packed, &plen);
  if (rc == HUB_ENOTFOUND) {
    char hs[65];
    xet_hash_str(hs, h);
    return hub_error_set(HUB_ENOTFOUND, "xorb %s is not stored", hs);
  }
  if (rc) return rc;
  out->hash = *h;
  const uint8_t *p = packed;
  if (n == 0 || plen != n * CHUNK_REC || !(out->chunks = calloc(n, sizeof *out->chunks))) {
    free(packed);
    return hub_error_set(HUB_ERROR, "xet store: bad chunk table");
  }
  for (size_t i = 0; i < n; i++, p += CHUNK_REC) {
    memcpy(out->chunks[i].hash.b, p, 32);
    out->chunks[i].offset = get32(p + 32);
    out->chunks[i].stored_len = get32(p + 36);
    out->chunks[i].len = get32(p + 40);
    out->chunks[i].unpacked_start = get32(p + 44);
  }
  out->n = n;
  free(packed);
  return 0;
}

void xs_xorb_dispose(xs_xorb *x) {
  free(x->chunks);
  memset(x, 0, sizeof *x);
}

int xs_xorb_put(const xet_xorb *x, const uint8_t *data, size_t len, int64_t repo_id,
                int *inserted) {
  *inserted = 0;
  if (xs_xorb_exists(&x->hash)) return 0;
  blob_writer *w = NULL;
  if (x->data_len > len) return hub_error_set(HUB_ERROR, "xorb record bytes missing");
  int rc = blob_writer_open(g_xorbs, &w);
  if (!rc) rc = blob_writer_write(w, data, (size_t)x->data_len); /* a footer is dropped */
  if (rc) {
    blob_writer_abort(w);
    return rc;
  }
  return xs_xorb_put_writer(x, w, repo_id, inserted);
}

int xs_xorb_put_writer(const xet_xorb *x, blob_writer *w, int64_t repo_id, int *inserted) {
  char oid[65];
  int rc;
  *inserted = 0;
  if (xs_xorb_exists(&x->hash)) {
    blob_writer_abort(w);
    return 0;
  }
  int64_t len = (int64_t)x->data_len;
  if ((rc = blob_writer_commit(w, NULL, len, oid))) return rc;
  uint8_t *packed = malloc(x->n_chunks * CHUNK_REC);
  if (!packed) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < x->n_chunks; i++) {
    uint8_t *p = packed + i * CHUNK_REC;
    memcpy(p, x->chunks[i].hash.b, 32);
    put32(p + 32, x->chunks[i].offset);
    put32(p + 36, x->chunks[i].stored_len);
    put32(p + 40, x->chunks[i].len);
    put32(p + 44, x->chunks[i].unpacked_start);
  }
  /* Global-dedup index: chunks whose hash is 0 mod 1024 (§2.9); first chunks of files and
   * flagged chunks come with the shard. */
  uint8_t *dedup = malloc(x->n_chunks * XET_HASH_LEN + 1);
  size_t n_dedup = 0;
  if (!dedup) {
    free(packed);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  for (size_t i = 0; i < x->n_chunks; i++)
    if (xet_dedup_eligible(&x->chunks[i].hash, 0, 0))
      memcpy(dedup + XET_HASH_LEN * n_dedup++, x->chunks[i].hash.b, XET_HASH_LEN);
  rc = db_xet_xorb_insert(x->hash.b, oid, len, (int64_t)x->n_chunks, (int64_t)x->unpacked_len,
                          packed, x->n_chunks * CHUNK_REC, repo_id, dedup, n_dedup, inserted);
  free(dedup);
  free(packed);
  /* The object is content-addressed: a concurrent upload of the same xorb wrote the same
   * bytes, so it is never removed here. */
  return rc;
}

/* ---- files ---------------------------------------------------------------------------- */

int xs_file_get(const xet_hash *h, xs_file *out) {
  memset(out, 0, sizeof *out);
  uint8_t *packed = NULL;
  size_t plen = 0;
  int rc = db_xet_file_get(h->b, &out->size, &packed, &plen);
  if (rc) return rc;
  out->hash = *h;
  const uint8_t *p = packed;
  size_t n = plen / TERM_REC;
  if (plen % TERM_REC || (n && !(out->terms = calloc(n, sizeof *out->terms)))) {
    free(packed);
    return hub_error_set(HUB_ERROR, "xet store: bad term list");
  }
  for (size_t i = 0; i < n; i++, p += TERM_REC) {
    memcpy(out->terms[i].xorb.b, p, 32);
    out->terms[i].chunk_start = get32(p + 32);
    out->terms[i].chunk_end = get32(p + 36);
    out->terms[i].unpacked_bytes = get32(p + 40);
  }
  out->n = n;
  free(packed);
  return 0;
}

void xs_file_dispose(xs_file *f) {
  free(f->terms);
  memset(f, 0, sizeof *f);
}

static int dedup_add(const xet_hash *chunk, const xet_hash *xorb) {
  return db_xet_dedup_add(chunk->b, xorb->b);
}

static int record_file(const xet_file *f, int64_t repo_id, int verified, int *is_new) {
  uint8_t *packed = malloc(f->n_terms * TERM_REC + 1);
  if (!packed) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < f->n_terms; i++) {
    uint8_t *p = packed + i * TERM_REC;
    memcpy(p, f->terms[i].xorb.b, 32);
    put32(p + 32, f->terms[i].chunk_start);
    put32(p + 36, f->terms[i].chunk_end);
    put32(p + 40, f->terms[i].unpacked_bytes);
  }
  int rc = db_xet_file_insert(f->file_hash.b, (int64_t)f->size, packed, f->n_terms * TERM_REC,
                              repo_id, is_new);
  free(packed);
  if (rc) return rc;
  for (size_t i = 0; *is_new && i < f->n_terms; i++)
    if ((rc = db_xet_file_xorb_add(f->terms[i].xorb.b, f->file_hash.b))) return rc;
  /* The first chunk of a file is always dedup-eligible (§2.9). */
  if (*is_new && f->n_terms) {
    xs_xorb x;
    if ((rc = xs_xorb_get(&f->terms[0].xorb, &x))) return rc;
    if (f->terms[0].chunk_start < x.n)
      rc = dedup_add(&x.chunks[f->terms[0].chunk_start].hash, &x.hash);
    xs_xorb_dispose(&x);
    if (rc) return rc;
  }
  if (repo_id > 0 && (rc = xs_repo_link(repo_id, &f->file_hash))) return rc;
  if (!(f->flags & XET_FILE_FLAG_META)) return 0;
  char sha[65];
  xet_hash_str(sha, &f->sha256);
  return db_xet_sha_add(sha, f->file_hash.b, (int64_t)f->size, verified, repo_id);
}

int xs_shard_record(const xet_shard *s, int64_t repo_id, int verified, int *any_new) {
  int rc = 0;
  *any_new = 0;
  if ((rc = db_xet_txn_begin())) return rc;
  for (size_t i = 0; !rc && i < s->n_files; i++) {
    int is_new = 0;
    rc = record_file(&s->files[i], repo_id, verified, &is_new);
    if (is_new) *any_new = 1;
  }
  for (size_t i = 0; !rc && i < s->n_cas; i++)
    for (size_t k = 0; !rc && k < s->cas[i].n_chunks; k++)
      if (s->cas[i].chunks[k].flags & XET_CAS_FLAG_DEDUP)
        rc = dedup_add(&s->cas[i].chunks[k].hash, &s->cas[i].xorb);
  return db_xet_txn_end(rc);
}

int xs_sha_find(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size) {
  return db_xet_sha_find(sha, repo_id, file->b, size);
}

int xs_sha_set_verified(const char *sha, const xet_hash *file, int ok) {
  return db_xet_sha_set_verified(sha, file->b, ok);
}

typedef struct {
  void (*cb)(const char *sha, const xet_hash *file, int64_t repo_id, void *p);
  void *p;
} unverified_ctx;

static void unverified_row(const char *sha, const uint8_t *file32, int64_t repo_id, void *p) {
  unverified_ctx *c = p;
  xet_hash f;
  memcpy(f.b, file32, XET_HASH_LEN);
  c->cb(sha, &f, repo_id, c->p);
}

int xs_unverified(void (*cb)(const char *sha, const xet_hash *file, int64_t repo_id, void *p),
                  void *p) {
  unverified_ctx c = {cb, p};
  return db_xet_unverified(unverified_row, &c);
}

int xs_repo_has(int64_t repo_id, const xet_hash *file) {
  return db_xet_repo_has(repo_id, file->b);
}

int xs_repo_link(int64_t repo_id, const xet_hash *file) {
  return db_xet_repo_link(repo_id, file->b);
}

/* ---- dedup ------------------------------------------------------------------------------ */

static int add_unique(xet_hash **arr, size_t *n, size_t *cap, const xet_hash *h) {
  for (size_t i = 0; i < *n; i++)
    if (xet_hash_eq(&(*arr)[i], h)) return 0;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    xet_hash *p = realloc(*arr, nc * sizeof *p);
    if (!p) return hub_error_set(HUB_ERROR, "out of memory");
    *arr = p, *cap = nc;
  }
  (*arr)[(*n)++] = *h;
  return 0;
}

typedef struct {
  xet_hash **arr;
  size_t *n, *cap, max;
} collect_ctx;

static int collect_row(const uint8_t *h32, void *p) {
  collect_ctx *c = p;
  xet_hash h;
  memcpy(h.b, h32, XET_HASH_LEN);
  int rc = add_unique(c->arr, c->n, c->cap, &h);
  return rc ? rc : *c->n >= c->max; /* 1 stops the listing */
}

int xs_dedup_xorbs(const xet_hash *chunk, xet_hash **out, size_t *n_out) {
  xet_hash *xs = NULL, *files = NULL;
  size_t n = 0, cap = 0, nf = 0, capf = 0;
  int rc;
  collect_ctx cx = {&xs, &n, &cap, 16};
  if ((rc = db_xet_dedup_xorbs(chunk->b, 16, collect_row, &cx)) < 0) goto done;
  rc = 0;
  if (!n) {
    rc = hub_error_set(HUB_ENOTFOUND, "Chunk not found");
    goto done;
  }
  /* Nearby xorbs: every xorb of a few files that use the ones found. */
  size_t direct = n;
  collect_ctx cf = {&files, &nf, &capf, XS_DEDUP_MAX_FILES};
  for (size_t i = 0; i < direct && nf < XS_DEDUP_MAX_FILES; i++) {
    if ((rc = db_xet_xorb_files(xs[i].b, 8, collect_row, &cf)) < 0) goto done;
    rc = 0;
  }
  for (size_t i = 0; i < nf && n < XS_DEDUP_MAX_XORBS; i++) {
    xs_file f;
    if (xs_file_get(&files[i], &f)) continue;
    for (size_t k = 0; !rc && k < f.n && n < XS_DEDUP_MAX_XORBS; k++)
      rc = add_unique(&xs, &n, &cap, &f.terms[k].xorb);
    xs_file_dispose(&f);
    if (rc) goto done;
  }
  *out = xs;
  *n_out = n;
  xs = NULL;
done:
  free(xs);
  free(files);
  return rc;
}

/* ---- lookup cache ---------------------------------------------------------------------- */

xs_xorb *xs_cache_get(xs_cache *c, const xet_hash *h) {
  for (size_t i = 0; i < c->n; i++)
    if (xet_hash_eq(&c->x[i].hash, h)) return &c->x[i];
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 8;
    xs_xorb *p = realloc(c->x, nc * sizeof *p);
    if (!p) {
      hub_error_set(HUB_ERROR, "out of memory");
      return NULL;
    }
    c->x = p, c->cap = nc;
  }
  if (xs_xorb_get(h, &c->x[c->n])) return NULL;
  return &c->x[c->n++];
}

int xs_cache_lookup(void *payload, const xet_hash *xorb, const xet_xorb_chunk **out_chunks,
                    size_t *out_n) {
  xs_xorb *x = xs_cache_get(payload, xorb);
  if (!x) return hub_error_code() ? hub_error_code() : HUB_ERROR;
  *out_chunks = x->chunks;
  *out_n = x->n;
  return 0;
}

void xs_cache_dispose(xs_cache *c) {
  for (size_t i = 0; i < c->n; i++)
    xs_xorb_dispose(&c->x[i]);
  free(c->x);
  memset(c, 0, sizeof *c);
}
