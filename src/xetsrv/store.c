/* Xet state: xorb objects in their own blob store, and the module's DB tables. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/error.h"
#include "xetsrv/internal.h"

/* Module migrations (db_migrate_module "xetsrv"): append steps, never edit one.
 * Hashes are raw 32-byte BLOBs; chunk tables and term lists are packed little-endian
 * arrays (48 bytes per chunk: hash, header offset, stored length, length, unpacked start;
 * 44 bytes per term: xorb, chunk start, chunk end, unpacked bytes). */
static const char *const STEPS[] = {
    "CREATE TABLE xet_xorbs(hash BLOB PRIMARY KEY, blob_oid TEXT NOT NULL,"
    " size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, unpacked INTEGER NOT NULL,"
    " chunks BLOB NOT NULL, repo_id INTEGER NOT NULL, created_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE xet_files(hash BLOB PRIMARY KEY, size INTEGER NOT NULL,"
    " terms BLOB NOT NULL, repo_id INTEGER NOT NULL, created_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE xet_file_xorbs(xorb BLOB NOT NULL, file BLOB NOT NULL,"
    " PRIMARY KEY(xorb, file)) WITHOUT ROWID;"
    "CREATE TABLE xet_sha(sha256 TEXT NOT NULL, file BLOB NOT NULL, size INTEGER NOT NULL,"
    " verified INTEGER NOT NULL, repo_id INTEGER NOT NULL,"
    " PRIMARY KEY(sha256, file, repo_id)) WITHOUT ROWID;"
    "CREATE TABLE xet_dedup(chunk BLOB NOT NULL, xorb BLOB NOT NULL,"
    " PRIMARY KEY(chunk, xorb)) WITHOUT ROWID;"
    "CREATE TABLE xet_repo_files(repo_id INTEGER NOT NULL REFERENCES repos(id)"
    " ON DELETE CASCADE, file BLOB NOT NULL, PRIMARY KEY(repo_id, file)) WITHOUT ROWID;"
    "CREATE TABLE xet_settings(repo_id INTEGER PRIMARY KEY REFERENCES repos(id)"
    " ON DELETE CASCADE, enabled INTEGER NOT NULL);",
};

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
  return db_kv_set("xet_dedup_secret", g_dedup_secret, sizeof g_dedup_secret);
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

int xs_store_open(void) {
  int rc = 0;
  pthread_mutex_lock(&g_open_mu);
  if (!g_xorbs) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/xet", db_data_dir());
    rc = db_migrate_module("xetsrv", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
    if (!rc) rc = load_dedup_secret();
    if (!rc) rc = blob_store_open(&g_xorbs, "fs", dir);
    if (!rc) blob_store_sweep_tmp(g_xorbs, 24 * 3600, NULL);
  }
  pthread_mutex_unlock(&g_open_mu);
  return rc;
}

blob_store *xs_blobs(void) {
  return g_xorbs;
}

static int sql_err(const char *what) {
  return hub_error_set(HUB_ERROR, "xet store: %s: %s", what, sqlite3_errmsg(db_conn()));
}

static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL) != SQLITE_OK) {
    sql_err("prepare");
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

static int step_done(sqlite3_stmt *st, const char *what) {
  int s = sqlite3_step(st);
  int rc = (s == SQLITE_DONE || s == SQLITE_ROW) ? 0 : sql_err(what);
  sqlite3_finalize(st);
  return rc;
}

int xs_enabled(int64_t repo_id) {
  const char *env = getenv("MODELHUB_XET");
  if (env && (!strcmp(env, "0") || !strcmp(env, "off") || !strcmp(env, "false"))) return 0;
  sqlite3_stmt *st = prep("SELECT enabled FROM xet_settings WHERE repo_id=?");
  if (!st) return 1;
  sqlite3_bind_int64(st, 1, repo_id);
  int on = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
  sqlite3_finalize(st);
  return on;
}

int xs_set_enabled(int64_t repo_id, int on) {
  sqlite3_stmt *st = prep("INSERT INTO xet_settings(repo_id, enabled) VALUES(?,?)"
                          " ON CONFLICT(repo_id) DO UPDATE SET enabled=excluded.enabled");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, on ? 1 : 0);
  return step_done(st, "xet setting");
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
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_xorbs WHERE hash=?");
  if (!st) return 0;
  sqlite3_bind_blob(st, 1, h->b, XET_HASH_LEN, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int xs_xorb_get(const xet_hash *h, xs_xorb *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = prep("SELECT blob_oid, size, n_chunks, chunks FROM xet_xorbs WHERE hash=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, h->b, XET_HASH_LEN, SQLITE_STATIC);
  int s = sqlite3_step(st), rc = 0;
  if (s != SQLITE_ROW) {
    char hs[65];
    xet_hash_str(hs, h);
    rc = s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "xorb %s is not stored", hs)
                          : sql_err("xorb");
    sqlite3_finalize(st);
    return rc;
  }
  out->hash = *h;
  snprintf(out->blob_oid, sizeof out->blob_oid, "%s", (const char *)sqlite3_column_text(st, 0));
  out->size = (uint64_t)sqlite3_column_int64(st, 1);
  size_t n = (size_t)sqlite3_column_int64(st, 2);
  const uint8_t *p = sqlite3_column_blob(st, 3);
  size_t plen = (size_t)sqlite3_column_bytes(st, 3);
  if (n == 0 || plen != n * CHUNK_REC || !(out->chunks = calloc(n, sizeof *out->chunks))) {
    sqlite3_finalize(st);
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
  sqlite3_finalize(st);
  return rc;
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
  sqlite3 *db = db_conn();
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_xorbs(hash, blob_oid, size, n_chunks,"
                          " unpacked, chunks, repo_id, created_ms) VALUES(?,?,?,?,?,?,?,?)");
  if (!st) {
    rc = HUB_ERROR;
  } else {
    sqlite3_bind_blob(st, 1, x->hash.b, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, len);
    sqlite3_bind_int64(st, 4, (int64_t)x->n_chunks);
    sqlite3_bind_int64(st, 5, (int64_t)x->unpacked_len);
    sqlite3_bind_blob(st, 6, packed, (int)(x->n_chunks * CHUNK_REC), SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, repo_id);
    sqlite3_bind_int64(st, 8, db_now_ms());
    rc = step_done(st, "insert xorb");
    if (!rc) *inserted = sqlite3_changes(db) > 0;
  }
  /* Global-dedup index: chunks whose hash is 0 mod 1024 (§2.9); first chunks of files and
   * flagged chunks come with the shard. */
  for (size_t i = 0; !rc && *inserted && i < x->n_chunks; i++) {
    if (!xet_dedup_eligible(&x->chunks[i].hash, 0, 0)) continue;
    if (!(st = prep("INSERT OR IGNORE INTO xet_dedup(chunk, xorb) VALUES(?,?)"))) {
      rc = HUB_ERROR;
      break;
    }
    sqlite3_bind_blob(st, 1, x->chunks[i].hash.b, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, x->hash.b, 32, SQLITE_STATIC);
    rc = step_done(st, "dedup index");
  }
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = sql_err("commit");
  if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  free(packed);
  /* The object is content-addressed: a concurrent upload of the same xorb wrote the same
   * bytes, so it is never removed here. */
  return rc;
}

/* ---- files ---------------------------------------------------------------------------- */

int xs_file_get(const xet_hash *h, xs_file *out) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = prep("SELECT size, terms FROM xet_files WHERE hash=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, h->b, 32, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s != SQLITE_ROW) {
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "Unknown file") : sql_err("file");
  }
  out->hash = *h;
  out->size = (uint64_t)sqlite3_column_int64(st, 0);
  const uint8_t *p = sqlite3_column_blob(st, 1);
  size_t plen = (size_t)sqlite3_column_bytes(st, 1);
  size_t n = plen / TERM_REC;
  if (plen % TERM_REC || (n && !(out->terms = calloc(n, sizeof *out->terms)))) {
    sqlite3_finalize(st);
    return hub_error_set(HUB_ERROR, "xet store: bad term list");
  }
  for (size_t i = 0; i < n; i++, p += TERM_REC) {
    memcpy(out->terms[i].xorb.b, p, 32);
    out->terms[i].chunk_start = get32(p + 32);
    out->terms[i].chunk_end = get32(p + 36);
    out->terms[i].unpacked_bytes = get32(p + 40);
  }
  out->n = n;
  sqlite3_finalize(st);
  return 0;
}

void xs_file_dispose(xs_file *f) {
  free(f->terms);
  memset(f, 0, sizeof *f);
}

static int dedup_add(const xet_hash *chunk, const xet_hash *xorb) {
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_dedup(chunk, xorb) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, chunk->b, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, xorb->b, 32, SQLITE_STATIC);
  return step_done(st, "dedup index");
}

static int record_file(const xet_file *f, int64_t repo_id, int verified, int *is_new) {
  sqlite3 *db = db_conn();
  uint8_t *packed = malloc(f->n_terms * TERM_REC + 1);
  if (!packed) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < f->n_terms; i++) {
    uint8_t *p = packed + i * TERM_REC;
    memcpy(p, f->terms[i].xorb.b, 32);
    put32(p + 32, f->terms[i].chunk_start);
    put32(p + 36, f->terms[i].chunk_end);
    put32(p + 40, f->terms[i].unpacked_bytes);
  }
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_files(hash, size, terms, repo_id,"
                          " created_ms) VALUES(?,?,?,?,?)");
  int rc = HUB_ERROR;
  if (st) {
    sqlite3_bind_blob(st, 1, f->file_hash.b, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)f->size);
    sqlite3_bind_blob(st, 3, packed, (int)(f->n_terms * TERM_REC), SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, repo_id);
    sqlite3_bind_int64(st, 5, db_now_ms());
    rc = step_done(st, "insert file");
  }
  free(packed);
  if (rc) return rc;
  *is_new = sqlite3_changes(db) > 0;
  for (size_t i = 0; *is_new && i < f->n_terms; i++) {
    if (!(st = prep("INSERT OR IGNORE INTO xet_file_xorbs(xorb, file) VALUES(?,?)")))
      return HUB_ERROR;
    sqlite3_bind_blob(st, 1, f->terms[i].xorb.b, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, f->file_hash.b, 32, SQLITE_STATIC);
    if ((rc = step_done(st, "file xorbs"))) return rc;
  }
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
  if (!(st = prep("INSERT INTO xet_sha(sha256, file, size, verified, repo_id) VALUES(?,?,?,?,?)"
                  " ON CONFLICT DO UPDATE SET verified=max(verified, excluded.verified)")))
    return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, f->file_hash.b, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (int64_t)f->size);
  sqlite3_bind_int(st, 4, verified);
  sqlite3_bind_int64(st, 5, repo_id);
  return step_done(st, "sha256 link");
}

int xs_shard_record(const xet_shard *s, int64_t repo_id, int verified, int *any_new) {
  sqlite3 *db = db_conn();
  int rc = 0;
  *any_new = 0;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return sql_err("begin");
  for (size_t i = 0; !rc && i < s->n_files; i++) {
    int is_new = 0;
    rc = record_file(&s->files[i], repo_id, verified, &is_new);
    if (is_new) *any_new = 1;
  }
  for (size_t i = 0; !rc && i < s->n_cas; i++)
    for (size_t k = 0; !rc && k < s->cas[i].n_chunks; k++)
      if (s->cas[i].chunks[k].flags & XET_CAS_FLAG_DEDUP)
        rc = dedup_add(&s->cas[i].chunks[k].hash, &s->cas[i].xorb);
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = sql_err("commit");
  if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int xs_sha_find(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size) {
  sqlite3_stmt *st = prep("SELECT file, size FROM xet_sha WHERE sha256=? AND"
                          " (verified=1 OR repo_id=?) ORDER BY verified DESC LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, repo_id > 0 ? repo_id : -1);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
    memcpy(file->b, sqlite3_column_blob(st, 0), 32);
    if (size) *size = (uint64_t)sqlite3_column_int64(st, 1);
  } else {
    rc = s == SQLITE_ROW || s == SQLITE_DONE ? HUB_ENOTFOUND : sql_err("sha256 link");
  }
  sqlite3_finalize(st);
  return rc;
}

int xs_sha_set_verified(const char *sha, const xet_hash *file, int ok) {
  sqlite3_stmt *st = prep(ok ? "UPDATE xet_sha SET verified=1 WHERE sha256=? AND file=?"
                             : "DELETE FROM xet_sha WHERE sha256=? AND file=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, file->b, 32, SQLITE_STATIC);
  return step_done(st, "verify sha256");
}

int xs_unverified(void (*cb)(const char *sha, const xet_hash *file, int64_t repo_id, void *p),
                  void *p) {
  sqlite3_stmt *st = prep("SELECT sha256, file, repo_id FROM xet_sha WHERE verified=0");
  if (!st) return HUB_ERROR;
  while (sqlite3_step(st) == SQLITE_ROW) {
    xet_hash f;
    if (sqlite3_column_bytes(st, 1) != 32) continue;
    memcpy(f.b, sqlite3_column_blob(st, 1), 32);
    cb((const char *)sqlite3_column_text(st, 0), &f, sqlite3_column_int64(st, 2), p);
  }
  sqlite3_finalize(st);
  return 0;
}

int xs_repo_has(int64_t repo_id, const xet_hash *file) {
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_repo_files WHERE repo_id=? AND file=?");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file->b, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int xs_repo_link(int64_t repo_id, const xet_hash *file) {
  if (xs_repo_has(repo_id, file)) return 0;
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_repo_files(repo_id, file) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file->b, 32, SQLITE_STATIC);
  return step_done(st, "repo link");
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

static int collect(sqlite3_stmt *st, xet_hash **arr, size_t *n, size_t *cap, size_t max) {
  int rc = 0;
  while (!rc && *n < max && sqlite3_step(st) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 32) continue;
    xet_hash h;
    memcpy(h.b, sqlite3_column_blob(st, 0), 32);
    rc = add_unique(arr, n, cap, &h);
  }
  sqlite3_finalize(st);
  return rc;
}

int xs_dedup_xorbs(const xet_hash *chunk, xet_hash **out, size_t *n_out) {
  xet_hash *xs = NULL, *files = NULL;
  size_t n = 0, cap = 0, nf = 0, capf = 0;
  int rc;
  sqlite3_stmt *st = prep("SELECT xorb FROM xet_dedup WHERE chunk=? LIMIT 16");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, chunk->b, 32, SQLITE_STATIC);
  if ((rc = collect(st, &xs, &n, &cap, 16))) goto done;
  if (!n) {
    rc = hub_error_set(HUB_ENOTFOUND, "Chunk not found");
    goto done;
  }
  /* Nearby xorbs: every xorb of a few files that use the ones found. */
  size_t direct = n;
  for (size_t i = 0; i < direct && nf < XS_DEDUP_MAX_FILES; i++) {
    if (!(st = prep("SELECT file FROM xet_file_xorbs WHERE xorb=? LIMIT 8"))) {
      rc = HUB_ERROR;
      goto done;
    }
    sqlite3_bind_blob(st, 1, xs[i].b, 32, SQLITE_STATIC);
    if ((rc = collect(st, &files, &nf, &capf, XS_DEDUP_MAX_FILES))) goto done;
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
