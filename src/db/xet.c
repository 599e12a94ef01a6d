/* The Xet store's tables (db/xet.h); moved from xetsrv/store.c and xetsrv/acl.c. */
#include "db/xet.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/error.h"

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

/* Module "xetsrv-acl": an index for the file -> sha256 probes below. */
static const char *const ACL_STEPS[] = {
    "CREATE INDEX IF NOT EXISTS xet_sha_file ON xet_sha(file);"
    "CREATE INDEX IF NOT EXISTS xet_repo_files_file ON xet_repo_files(file);",
};

/* Module "xetsrv-repo-delete": repo ids are reused (`id INTEGER PRIMARY KEY`: a repo
 * created after the newest one was deleted gets its id), so Xet rows that name a repo by id
 * without a foreign key must not outlive it, or the new repo inherits the deleted repo's
 * uploads (db_xet_sha_find_for matches xet_sha.repo_id). Unverified claims go; verified
 * sha256 links stay as global facts (repo_id 0). Rows of repos deleted earlier too. */
static const char *const DELETE_STEPS[] = {
    "CREATE TRIGGER xet_repo_deleted AFTER DELETE ON repos BEGIN"
    " DELETE FROM xet_sha WHERE repo_id=old.id AND verified=0;"
    " UPDATE OR IGNORE xet_sha SET repo_id=0 WHERE repo_id=old.id;"
    " DELETE FROM xet_sha WHERE repo_id=old.id;"
    " UPDATE xet_files SET repo_id=0 WHERE repo_id=old.id;"
    " UPDATE xet_xorbs SET repo_id=0 WHERE repo_id=old.id;"
    " END;"
    "DELETE FROM xet_sha WHERE verified=0 AND repo_id NOT IN (SELECT id FROM repos);"
    "UPDATE OR IGNORE xet_sha SET repo_id=0 WHERE repo_id<>0 AND"
    " repo_id NOT IN (SELECT id FROM repos);"
    "DELETE FROM xet_sha WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM repos);"
    "UPDATE xet_files SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM repos);"
    "UPDATE xet_xorbs SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM repos);",
};

#define N(a) ((int)(sizeof a / sizeof a[0]))

int db_xet_migrate(void) {
  int rc = db_migrate_module("xetsrv", STEPS, N(STEPS));
  if (!rc) rc = db_migrate_module("xetsrv-acl", ACL_STEPS, N(ACL_STEPS));
  if (!rc) rc = db_migrate_module("xetsrv-repo-delete", DELETE_STEPS, N(DELETE_STEPS));
  return rc;
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

int db_xet_txn_begin(void) {
  if (sqlite3_exec(db_conn(), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return sql_err("begin");
  return 0;
}

int db_xet_txn_end(int rc) {
  sqlite3 *db = db_conn();
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = sql_err("commit");
  if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int copy_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len) {
  const void *p = sqlite3_column_blob(st, col);
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  *out = NULL;
  *len = n;
  if (!n) return 0;
  if (!(*out = malloc(n))) return hub_error_set(HUB_ERROR, "out of memory");
  memcpy(*out, p, n);
  return 0;
}

int db_xet_enabled(int64_t repo_id) {
  sqlite3_stmt *st = prep("SELECT enabled FROM xet_settings WHERE repo_id=?");
  if (!st) return 1;
  sqlite3_bind_int64(st, 1, repo_id);
  int on = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
  sqlite3_finalize(st);
  return on;
}

int db_xet_set_enabled(int64_t repo_id, int on) {
  sqlite3_stmt *st = prep("INSERT INTO xet_settings(repo_id, enabled) VALUES(?,?)"
                          " ON CONFLICT(repo_id) DO UPDATE SET enabled=excluded.enabled");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, on ? 1 : 0);
  return step_done(st, "xet setting");
}

/* ---- xorbs ---------------------------------------------------------------------------- */

int db_xet_xorb_exists(const uint8_t *h32) {
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_xorbs WHERE hash=?");
  if (!st) return 0;
  sqlite3_bind_blob(st, 1, h32, DB_XET_HASH_LEN, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int db_xet_xorb_get(const uint8_t *h32, char blob_oid[65], uint64_t *size, size_t *n_chunks,
                    uint8_t **chunks, size_t *chunks_len) {
  *chunks = NULL;
  sqlite3_stmt *st = prep("SELECT blob_oid, size, n_chunks, chunks FROM xet_xorbs WHERE hash=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, h32, DB_XET_HASH_LEN, SQLITE_STATIC);
  int s = sqlite3_step(st), rc = 0;
  if (s != SQLITE_ROW) {
    rc = s == SQLITE_DONE ? HUB_ENOTFOUND : sql_err("xorb");
    sqlite3_finalize(st);
    return rc;
  }
  snprintf(blob_oid, 65, "%s", (const char *)sqlite3_column_text(st, 0));
  *size = (uint64_t)sqlite3_column_int64(st, 1);
  *n_chunks = (size_t)sqlite3_column_int64(st, 2);
  rc = copy_blob(st, 3, chunks, chunks_len);
  sqlite3_finalize(st);
  return rc;
}

int db_xet_xorb_insert(const uint8_t *h32, const char *blob_oid, int64_t size, int64_t n_chunks,
                       int64_t unpacked, const uint8_t *chunks, size_t chunks_len, int64_t repo_id,
                       const uint8_t *dedup, size_t n_dedup, int *inserted) {
  int rc;
  *inserted = 0;
  sqlite3 *db = db_conn();
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_xorbs(hash, blob_oid, size, n_chunks,"
                          " unpacked, chunks, repo_id, created_ms) VALUES(?,?,?,?,?,?,?,?)");
  if (!st) {
    rc = HUB_ERROR;
  } else {
    sqlite3_bind_blob(st, 1, h32, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, blob_oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, size);
    sqlite3_bind_int64(st, 4, n_chunks);
    sqlite3_bind_int64(st, 5, unpacked);
    sqlite3_bind_blob(st, 6, chunks, (int)chunks_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, repo_id);
    sqlite3_bind_int64(st, 8, db_now_ms());
    rc = step_done(st, "insert xorb");
    if (!rc) *inserted = sqlite3_changes(db) > 0;
  }
  for (size_t i = 0; !rc && *inserted && i < n_dedup; i++)
    rc = db_xet_dedup_add(dedup + i * DB_XET_HASH_LEN, h32);
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = sql_err("commit");
  if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* ---- files ---------------------------------------------------------------------------- */

int db_xet_file_get(const uint8_t *h32, uint64_t *size, uint8_t **terms, size_t *terms_len) {
  *terms = NULL;
  sqlite3_stmt *st = prep("SELECT size, terms FROM xet_files WHERE hash=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, h32, 32, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s != SQLITE_ROW) {
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "Unknown file") : sql_err("file");
  }
  *size = (uint64_t)sqlite3_column_int64(st, 0);
  int rc = copy_blob(st, 1, terms, terms_len);
  sqlite3_finalize(st);
  return rc;
}

int db_xet_dedup_add(const uint8_t *chunk32, const uint8_t *xorb32) {
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_dedup(chunk, xorb) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, chunk32, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, xorb32, 32, SQLITE_STATIC);
  return step_done(st, "dedup index");
}

int db_xet_file_insert(const uint8_t *h32, int64_t size, const uint8_t *terms, size_t terms_len,
                       int64_t repo_id, int *is_new) {
  static const uint8_t empty[1];
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_files(hash, size, terms, repo_id,"
                          " created_ms) VALUES(?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, h32, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, size);
  sqlite3_bind_blob(st, 3, terms ? terms : empty, (int)terms_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, repo_id);
  sqlite3_bind_int64(st, 5, db_now_ms());
  int rc = step_done(st, "insert file");
  if (!rc) *is_new = sqlite3_changes(db_conn()) > 0;
  return rc;
}

int db_xet_file_xorb_add(const uint8_t *xorb32, const uint8_t *file32) {
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_file_xorbs(xorb, file) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, xorb32, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  return step_done(st, "file xorbs");
}

int db_xet_sha_add(const char *sha, const uint8_t *file32, int64_t size, int verified,
                   int64_t repo_id) {
  sqlite3_stmt *st =
      prep("INSERT INTO xet_sha(sha256, file, size, verified, repo_id) VALUES(?,?,?,?,?)"
           " ON CONFLICT DO UPDATE SET verified=max(verified, excluded.verified)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, size);
  sqlite3_bind_int(st, 4, verified);
  sqlite3_bind_int64(st, 5, repo_id);
  return step_done(st, "sha256 link");
}

int db_xet_sha_find(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size) {
  sqlite3_stmt *st = prep("SELECT file, size FROM xet_sha WHERE sha256=? AND"
                          " (verified=1 OR repo_id=?) ORDER BY verified DESC LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, repo_id > 0 ? repo_id : -1);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
    memcpy(file32, sqlite3_column_blob(st, 0), 32);
    if (size) *size = (uint64_t)sqlite3_column_int64(st, 1);
  } else {
    rc = s == SQLITE_ROW || s == SQLITE_DONE ? HUB_ENOTFOUND : sql_err("sha256 link");
  }
  sqlite3_finalize(st);
  return rc;
}

int db_xet_sha_find_for(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size) {
  if (repo_id <= 0) return hub_error_set(HUB_ENOTFOUND, "not Xet-backed");
  sqlite3_stmt *st = prep("SELECT file, size FROM xet_sha s WHERE sha256=?1 AND (repo_id=?2 OR"
                          " (verified=1 AND EXISTS(SELECT 1 FROM repo_objects o WHERE"
                          " o.repo_id=?2 AND o.oid=s.sha256 AND o.size=s.size)))"
                          " ORDER BY verified DESC LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, repo_id);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
    memcpy(file32, sqlite3_column_blob(st, 0), 32);
    if (size) *size = (uint64_t)sqlite3_column_int64(st, 1);
  } else {
    rc = s == SQLITE_ROW || s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "not Xet-backed")
                                             : sql_err("sha256 link");
  }
  sqlite3_finalize(st);
  return rc;
}

int db_xet_sha_set_verified(const char *sha, const uint8_t *file32, int ok) {
  sqlite3_stmt *st = prep(ok ? "UPDATE xet_sha SET verified=1 WHERE sha256=? AND file=?"
                             : "DELETE FROM xet_sha WHERE sha256=? AND file=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  return step_done(st, "verify sha256");
}

int db_xet_verified_size(const char *sha, int64_t *out_size) {
  sqlite3_stmt *st = prep("SELECT size FROM xet_sha WHERE sha256=? AND verified=1 LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW)
    *out_size = sqlite3_column_int64(st, 0);
  else
    rc = s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "no verified Xet file") : sql_err("sha");
  sqlite3_finalize(st);
  return rc;
}

int db_xet_unverified(void (*cb)(const char *sha, const uint8_t *file32, int64_t repo_id, void *p),
                      void *p) {
  sqlite3_stmt *st = prep("SELECT sha256, file, repo_id FROM xet_sha WHERE verified=0");
  if (!st) return HUB_ERROR;
  while (sqlite3_step(st) == SQLITE_ROW) {
    uint8_t f[32];
    if (sqlite3_column_bytes(st, 1) != 32) continue;
    memcpy(f, sqlite3_column_blob(st, 1), 32);
    cb((const char *)sqlite3_column_text(st, 0), f, sqlite3_column_int64(st, 2), p);
  }
  sqlite3_finalize(st);
  return 0;
}

int db_xet_claims_to_objects(const char *sha, const uint8_t *file32) {
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO repo_objects(repo_id, oid, size)"
                          " SELECT s.repo_id, s.sha256, s.size FROM xet_sha s JOIN repos r ON"
                          " r.id=s.repo_id WHERE s.sha256=? AND s.file=? AND s.verified=1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  int s = sqlite3_step(st);
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? 0 : sql_err("claims to objects");
}

int db_xet_objects_migrate(void) {
  /* Verified uploads become references of their uploader repos; then the read cache loses
   * every row no reference justifies (older versions linked a repo to any file whose
   * sha256 a caller merely named). */
  static const char *const SQL =
      "INSERT OR IGNORE INTO repo_objects(repo_id, oid, size) SELECT s.repo_id, s.sha256, s.size"
      " FROM xet_sha s JOIN repos r ON r.id=s.repo_id WHERE s.verified=1;"
      "DELETE FROM xet_repo_files WHERE NOT ("
      " EXISTS(SELECT 1 FROM xet_files f WHERE f.hash=xet_repo_files.file AND"
      "  f.repo_id=xet_repo_files.repo_id) OR"
      " EXISTS(SELECT 1 FROM xet_sha s WHERE s.file=xet_repo_files.file AND"
      "  s.repo_id=xet_repo_files.repo_id) OR"
      " EXISTS(SELECT 1 FROM xet_sha s JOIN repo_objects o ON o.oid=s.sha256 AND o.size=s.size"
      "  WHERE s.file=xet_repo_files.file AND o.repo_id=xet_repo_files.repo_id AND"
      "  s.verified=1));";
  char *err = NULL;
  if (sqlite3_exec(db_conn(), SQL, NULL, NULL, &err) != SQLITE_OK) {
    int rc = hub_error_set(HUB_ERROR, "xet acl migration: %s", err ? err : "?");
    sqlite3_free(err);
    return rc;
  }
  return 0;
}

/* ---- repo read links and dedup -------------------------------------------------------- */

int db_xet_repo_has(int64_t repo_id, const uint8_t *file32) {
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_repo_files WHERE repo_id=? AND file=?");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int db_xet_repo_link(int64_t repo_id, const uint8_t *file32) {
  if (db_xet_repo_has(repo_id, file32)) return 0;
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO xet_repo_files(repo_id, file) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  return step_done(st, "repo link");
}

int db_xet_repo_references(int64_t repo_id, const uint8_t *file32) {
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_sha s JOIN repo_objects o ON o.repo_id=?1 AND"
                          " o.oid=s.sha256 AND o.size=s.size WHERE s.file=?2 AND s.verified=1"
                          " LIMIT 1");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file32, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int db_xet_dedup_allowed(int64_t repo_id, const uint8_t *xorb32) {
  sqlite3_stmt *st =
      prep("SELECT 1 FROM xet_file_xorbs fx JOIN xet_repo_files rf ON rf.file=fx.file"
           " JOIN repos r ON r.id=rf.repo_id WHERE fx.xorb=?2 AND (rf.repo_id=?1 OR"
           " (r.private=0 AND r.gated='' AND r.disabled=0)) LIMIT 1");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, xorb32, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

static int hash_rows(sqlite3_stmt *st, db_xet_hash_cb cb, void *p) {
  int rc = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 32) continue;
    rc = cb(sqlite3_column_blob(st, 0), p);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_xet_dedup_xorbs(const uint8_t *chunk32, int limit, db_xet_hash_cb cb, void *p) {
  sqlite3_stmt *st = prep("SELECT xorb FROM xet_dedup WHERE chunk=? LIMIT ?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, chunk32, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, limit);
  return hash_rows(st, cb, p);
}

int db_xet_xorb_files(const uint8_t *xorb32, int limit, db_xet_hash_cb cb, void *p) {
  sqlite3_stmt *st = prep("SELECT file FROM xet_file_xorbs WHERE xorb=? LIMIT ?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_blob(st, 1, xorb32, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, limit);
  return hash_rows(st, cb, p);
}

/* ---- storage stats and fsck ----------------------------------------------------------- */

static int64_t q1(const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

void db_xet_stats_get(db_xet_stats *t) {
  t->xorbs = q1("SELECT count(*) FROM xet_xorbs");
  t->stored = q1("SELECT coalesce(sum(size), 0) FROM xet_xorbs");
  t->unpacked = q1("SELECT coalesce(sum(unpacked), 0) FROM xet_xorbs");
  t->files = q1("SELECT count(*) FROM xet_files");
  t->unique_bytes = q1("SELECT coalesce(sum(size), 0) FROM xet_files");
  t->logical = q1("SELECT coalesce(sum(f.size), 0) FROM xet_repo_files rf"
                  " JOIN xet_files f ON f.hash = rf.file");
  t->verified_files = q1("SELECT count(DISTINCT file) FROM xet_sha WHERE verified = 1");
  t->unverified = q1("SELECT count(*) FROM xet_sha WHERE verified = 0");
}

int db_xet_each_xorb(db_xet_hash_cb cb, void *p) {
  sqlite3_stmt *st = prep("SELECT hash FROM xet_xorbs");
  return st ? hash_rows(st, cb, p) : HUB_ERROR;
}

int db_xet_each_file(db_xet_hash_cb cb, void *p) {
  sqlite3_stmt *st = prep("SELECT hash FROM xet_files");
  return st ? hash_rows(st, cb, p) : HUB_ERROR;
}

int db_xet_each_sha_link(void (*cb)(const char *sha, const uint8_t *file32, void *p), void *p) {
  sqlite3_stmt *st = prep("SELECT DISTINCT sha256, file FROM xet_sha");
  if (!st) return HUB_ERROR;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 1) != 32) continue;
    cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_blob(st, 1), p);
  }
  sqlite3_finalize(st);
  return 0;
}
