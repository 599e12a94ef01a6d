/* The Xet store's tables (db/xet.h); moved from xetsrv/store.c and xetsrv/acl.c. */
#include "db/xet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
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
static const db_migration DELETE_STEPS[] = {
    {.sqlite = "CREATE TRIGGER xet_repo_deleted AFTER DELETE ON repos BEGIN"
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
               "UPDATE xet_files SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM"
               " repos);"
               "UPDATE xet_xorbs SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM"
               " repos);",
     /* The same as a PL/pgSQL row trigger. UPDATE OR IGNORE (skip a row whose move to
      * repo_id 0 would collide with a global link already there) becomes NOT EXISTS; in the
      * cleanup of older deletes, where several dead repos can link the same (sha256, file),
      * DISTINCT ON moves one of them. */
     .postgres =
         "CREATE FUNCTION xet_repo_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
         " DELETE FROM xet_sha WHERE repo_id=OLD.id AND verified=0;"
         " UPDATE xet_sha SET repo_id=0 WHERE repo_id=OLD.id AND NOT EXISTS(SELECT 1 FROM"
         " xet_sha z WHERE z.sha256=xet_sha.sha256 AND z.file=xet_sha.file AND z.repo_id=0);"
         " DELETE FROM xet_sha WHERE repo_id=OLD.id;"
         " UPDATE xet_files SET repo_id=0 WHERE repo_id=OLD.id;"
         " UPDATE xet_xorbs SET repo_id=0 WHERE repo_id=OLD.id;"
         " RETURN NULL; END $$;"
         "CREATE TRIGGER xet_repo_deleted AFTER DELETE ON repos FOR EACH ROW"
         " EXECUTE FUNCTION xet_repo_deleted();"
         "DELETE FROM xet_sha WHERE verified=0 AND repo_id NOT IN (SELECT id FROM repos);"
         "UPDATE xet_sha SET repo_id=0 FROM (SELECT DISTINCT ON (sha256, file) sha256, file,"
         " repo_id FROM xet_sha WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM repos)"
         " ORDER BY sha256, file, repo_id) k WHERE xet_sha.sha256=k.sha256 AND"
         " xet_sha.file=k.file AND xet_sha.repo_id=k.repo_id AND NOT EXISTS(SELECT 1 FROM"
         " xet_sha z WHERE z.sha256=k.sha256 AND z.file=k.file AND z.repo_id=0);"
         "DELETE FROM xet_sha WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM repos);"
         "UPDATE xet_files SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM"
         " repos);"
         "UPDATE xet_xorbs SET repo_id=0 WHERE repo_id<>0 AND repo_id NOT IN (SELECT id FROM"
         " repos);"},
};

#define N(a) ((int)(sizeof a / sizeof a[0]))

int db_xet_migrate(void) {
  int rc = db_migrate_module("xetsrv", STEPS, N(STEPS));
  if (!rc) rc = db_migrate_module("xetsrv-acl", ACL_STEPS, N(ACL_STEPS));
  if (!rc) rc = db_migrate("xetsrv-repo-delete", DELETE_STEPS, N(DELETE_STEPS));
  return rc;
}

/* An error of a statement (code from db_step, kept) with what was being done. */
static int sql_err(int code, const char *what) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  return hub_error_set(code < 0 ? code : HUB_ERROR, "xet store: %s: %s", what, msg);
}

static int step_done(db_stmt *st, const char *what) {
  int s = db_step(st);
  int rc = (s == DB_DONE || s == DB_ROW) ? 0 : sql_err(s, what);
  db_reset(st);
  return rc;
}

int db_xet_txn_begin(void) {
  int rc = db_tx_begin(DB_TX_WRITE);
  return rc ? sql_err(rc, "begin") : 0;
}

int db_xet_txn_end(int rc) {
  if (!rc && (rc = db_tx_commit())) return sql_err(rc, "commit");
  if (rc) db_tx_rollback();
  return rc;
}

static int copy_blob(db_stmt *st, int col, uint8_t **out, size_t *len) {
  const void *p = db_col_blob(st, col);
  size_t n = db_col_bytes(st, col);
  *out = NULL;
  *len = n;
  if (!n) return 0;
  if (!(*out = malloc(n))) return hub_error_set(HUB_ERROR, "out of memory");
  memcpy(*out, p, n);
  return 0;
}

int db_xet_enabled(int64_t repo_id) {
  db_stmt *st = db_prep("SELECT enabled FROM xet_settings WHERE repo_id=?");
  if (!st) return 1;
  db_bind_int64(st, 1, repo_id);
  int on = db_step(st) == DB_ROW ? (int)db_col_int64(st, 0) : 1;
  db_reset(st);
  return on;
}

int db_xet_set_enabled(int64_t repo_id, int on) {
  db_stmt *st = db_prep("INSERT INTO xet_settings(repo_id, enabled) VALUES(?,?)"
                        " ON CONFLICT(repo_id) DO UPDATE SET enabled=excluded.enabled");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, on ? 1 : 0);
  return step_done(st, "xet setting");
}

/* ---- xorbs ---------------------------------------------------------------------------- */

int db_xet_xorb_exists(const uint8_t *h32) {
  db_stmt *st = db_prep("SELECT 1 FROM xet_xorbs WHERE hash=?");
  if (!st) return 0;
  db_bind_blob(st, 1, h32, DB_XET_HASH_LEN);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_xet_xorb_get(const uint8_t *h32, char blob_oid[65], uint64_t *size, size_t *n_chunks,
                    uint8_t **chunks, size_t *chunks_len) {
  *chunks = NULL;
  db_stmt *st = db_prep("SELECT blob_oid, size, n_chunks, chunks FROM xet_xorbs WHERE hash=?");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, h32, DB_XET_HASH_LEN);
  int s = db_step(st), rc = 0;
  if (s != DB_ROW) {
    rc = s == DB_DONE ? HUB_ENOTFOUND : sql_err(s, "xorb");
    db_reset(st);
    return rc;
  }
  snprintf(blob_oid, 65, "%s", db_col_text(st, 0));
  *size = (uint64_t)db_col_int64(st, 1);
  *n_chunks = (size_t)db_col_int64(st, 2);
  rc = copy_blob(st, 3, chunks, chunks_len);
  db_reset(st);
  return rc;
}

int db_xet_xorb_insert(const uint8_t *h32, const char *blob_oid, int64_t size, int64_t n_chunks,
                       int64_t unpacked, const uint8_t *chunks, size_t chunks_len, int64_t repo_id,
                       const uint8_t *dedup, size_t n_dedup, int *inserted) {
  int rc;
  *inserted = 0;
  if ((rc = db_xet_txn_begin())) return rc;
  db_stmt *st = db_prep("INSERT OR IGNORE INTO xet_xorbs(hash, blob_oid, size, n_chunks,"
                        " unpacked, chunks, repo_id, created_ms) VALUES(?,?,?,?,?,?,?,?)");
  if (!st) {
    rc = HUB_ERROR;
  } else {
    db_bind_blob(st, 1, h32, 32);
    db_bind_text(st, 2, blob_oid, -1);
    db_bind_int64(st, 3, size);
    db_bind_int64(st, 4, n_chunks);
    db_bind_int64(st, 5, unpacked);
    db_bind_blob(st, 6, chunks, chunks_len);
    db_bind_int64(st, 7, repo_id);
    db_bind_int64(st, 8, db_now_ms());
    rc = step_done(st, "insert xorb");
    if (!rc) *inserted = db_changes() > 0;
  }
  for (size_t i = 0; !rc && *inserted && i < n_dedup; i++)
    rc = db_xet_dedup_add(dedup + i * DB_XET_HASH_LEN, h32);
  return db_xet_txn_end(rc);
}

/* ---- files ---------------------------------------------------------------------------- */

int db_xet_file_get(const uint8_t *h32, uint64_t *size, uint8_t **terms, size_t *terms_len) {
  *terms = NULL;
  db_stmt *st = db_prep("SELECT size, terms FROM xet_files WHERE hash=?");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, h32, 32);
  int s = db_step(st);
  if (s != DB_ROW) {
    db_reset(st);
    return s == DB_DONE ? hub_error_set(HUB_ENOTFOUND, "Unknown file") : sql_err(s, "file");
  }
  *size = (uint64_t)db_col_int64(st, 0);
  int rc = copy_blob(st, 1, terms, terms_len);
  db_reset(st);
  return rc;
}

int db_xet_dedup_add(const uint8_t *chunk32, const uint8_t *xorb32) {
  db_stmt *st = db_prep("INSERT OR IGNORE INTO xet_dedup(chunk, xorb) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, chunk32, 32);
  db_bind_blob(st, 2, xorb32, 32);
  return step_done(st, "dedup index");
}

int db_xet_file_insert(const uint8_t *h32, int64_t size, const uint8_t *terms, size_t terms_len,
                       int64_t repo_id, int *is_new) {
  static const uint8_t empty[1];
  db_stmt *st = db_prep("INSERT OR IGNORE INTO xet_files(hash, size, terms, repo_id,"
                        " created_ms) VALUES(?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, h32, 32);
  db_bind_int64(st, 2, size);
  db_bind_blob(st, 3, terms ? terms : empty, terms_len);
  db_bind_int64(st, 4, repo_id);
  db_bind_int64(st, 5, db_now_ms());
  int rc = step_done(st, "insert file");
  if (!rc) *is_new = db_changes() > 0;
  return rc;
}

int db_xet_file_xorb_add(const uint8_t *xorb32, const uint8_t *file32) {
  db_stmt *st = db_prep("INSERT OR IGNORE INTO xet_file_xorbs(xorb, file) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, xorb32, 32);
  db_bind_blob(st, 2, file32, 32);
  return step_done(st, "file xorbs");
}

int db_xet_sha_add(const char *sha, const uint8_t *file32, int64_t size, int verified,
                   int64_t repo_id) {
  db_stmt *st = db_prep(
      "INSERT INTO xet_sha(sha256, file, size, verified, repo_id) VALUES(?,?,?,?,?)"
      " ON CONFLICT(sha256, file, repo_id) DO UPDATE SET verified=CASE WHEN"
      " excluded.verified>xet_sha.verified THEN excluded.verified ELSE xet_sha.verified END");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_blob(st, 2, file32, 32);
  db_bind_int64(st, 3, size);
  db_bind_int64(st, 4, verified);
  db_bind_int64(st, 5, repo_id);
  return step_done(st, "sha256 link");
}

int db_xet_sha_find(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size) {
  db_stmt *st = db_prep("SELECT file, size FROM xet_sha WHERE sha256=? AND"
                        " (verified=1 OR repo_id=?) ORDER BY verified DESC LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_int64(st, 2, repo_id > 0 ? repo_id : -1);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW && db_col_bytes(st, 0) == 32) {
    memcpy(file32, db_col_blob(st, 0), 32);
    if (size) *size = (uint64_t)db_col_int64(st, 1);
  } else {
    rc = s == DB_ROW || s == DB_DONE ? HUB_ENOTFOUND : sql_err(s, "sha256 link");
  }
  db_reset(st);
  return rc;
}

int db_xet_sha_find_for(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size) {
  if (repo_id <= 0) return hub_error_set(HUB_ENOTFOUND, "not Xet-backed");
  db_stmt *st = db_prep("SELECT file, size FROM xet_sha s WHERE sha256=?1 AND (repo_id=?2 OR"
                        " (verified=1 AND EXISTS(SELECT 1 FROM repo_objects o WHERE"
                        " o.repo_id=?2 AND o.oid=s.sha256 AND o.size=s.size)))"
                        " ORDER BY verified DESC LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_int64(st, 2, repo_id);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW && db_col_bytes(st, 0) == 32) {
    memcpy(file32, db_col_blob(st, 0), 32);
    if (size) *size = (uint64_t)db_col_int64(st, 1);
  } else {
    rc = s == DB_ROW || s == DB_DONE ? hub_error_set(HUB_ENOTFOUND, "not Xet-backed")
                                     : sql_err(s, "sha256 link");
  }
  db_reset(st);
  return rc;
}

int db_xet_sha_set_verified(const char *sha, const uint8_t *file32, int ok) {
  db_stmt *st = db_prep(ok ? "UPDATE xet_sha SET verified=1 WHERE sha256=? AND file=?"
                           : "DELETE FROM xet_sha WHERE sha256=? AND file=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_blob(st, 2, file32, 32);
  return step_done(st, "verify sha256");
}

int db_xet_verified_size(const char *sha, int64_t *out_size) {
  db_stmt *st = db_prep("SELECT size FROM xet_sha WHERE sha256=? AND verified=1 LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW)
    *out_size = db_col_int64(st, 0);
  else
    rc = s == DB_DONE ? hub_error_set(HUB_ENOTFOUND, "no verified Xet file") : sql_err(s, "sha");
  db_reset(st);
  return rc;
}

int db_xet_unverified(void (*cb)(const char *sha, const uint8_t *file32, int64_t repo_id, void *p),
                      void *p) {
  db_stmt *st = db_prep("SELECT sha256, file, repo_id FROM xet_sha WHERE verified=0");
  if (!st) return HUB_ERROR;
  while (db_step(st) == DB_ROW) {
    uint8_t f[32];
    if (db_col_bytes(st, 1) != 32) continue;
    memcpy(f, db_col_blob(st, 1), 32);
    cb(db_col_text(st, 0), f, db_col_int64(st, 2), p);
  }
  db_reset(st);
  return 0;
}

int db_xet_claims_to_objects(const char *sha, const uint8_t *file32) {
  db_stmt *st = db_prep("INSERT OR IGNORE INTO repo_objects(repo_id, oid, size)"
                        " SELECT s.repo_id, s.sha256, s.size FROM xet_sha s JOIN repos r ON"
                        " r.id=s.repo_id WHERE s.sha256=? AND s.file=? AND s.verified=1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_blob(st, 2, file32, 32);
  int s = db_step(st);
  db_reset(st);
  return s == DB_DONE ? 0 : sql_err(s, "claims to objects");
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
  int rc = db_exec(SQL);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return hub_error_set(rc, "xet acl migration: %s", msg);
  }
  return 0;
}

/* ---- repo read links and dedup -------------------------------------------------------- */

int db_xet_repo_has(int64_t repo_id, const uint8_t *file32) {
  db_stmt *st = db_prep("SELECT 1 FROM xet_repo_files WHERE repo_id=? AND file=?");
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_blob(st, 2, file32, 32);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_xet_repo_link(int64_t repo_id, const uint8_t *file32) {
  if (db_xet_repo_has(repo_id, file32)) return 0;
  db_stmt *st = db_prep("INSERT OR IGNORE INTO xet_repo_files(repo_id, file) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_blob(st, 2, file32, 32);
  return step_done(st, "repo link");
}

int db_xet_repo_references(int64_t repo_id, const uint8_t *file32) {
  db_stmt *st = db_prep("SELECT 1 FROM xet_sha s JOIN repo_objects o ON o.repo_id=?1 AND"
                        " o.oid=s.sha256 AND o.size=s.size WHERE s.file=?2 AND s.verified=1"
                        " LIMIT 1");
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_blob(st, 2, file32, 32);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_xet_dedup_allowed(int64_t repo_id, const uint8_t *xorb32) {
  db_stmt *st = db_prep("SELECT 1 FROM xet_file_xorbs fx JOIN xet_repo_files rf ON rf.file=fx.file"
                        " JOIN repos r ON r.id=rf.repo_id WHERE fx.xorb=?2 AND (rf.repo_id=?1 OR"
                        " (r.private=0 AND r.gated='' AND r.disabled=0)) LIMIT 1");
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_blob(st, 2, xorb32, 32);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

static int hash_rows(db_stmt *st, db_xet_hash_cb cb, void *p) {
  int rc = 0;
  while (!rc && db_step(st) == DB_ROW) {
    if (db_col_bytes(st, 0) != 32) continue;
    rc = cb(db_col_blob(st, 0), p);
  }
  db_reset(st);
  return rc;
}

int db_xet_dedup_xorbs(const uint8_t *chunk32, int limit, db_xet_hash_cb cb, void *p) {
  db_stmt *st = db_prep("SELECT xorb FROM xet_dedup WHERE chunk=? LIMIT ?");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, chunk32, 32);
  db_bind_int64(st, 2, limit);
  return hash_rows(st, cb, p);
}

int db_xet_xorb_files(const uint8_t *xorb32, int limit, db_xet_hash_cb cb, void *p) {
  db_stmt *st = db_prep("SELECT file FROM xet_file_xorbs WHERE xorb=? LIMIT ?");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, xorb32, 32);
  db_bind_int64(st, 2, limit);
  return hash_rows(st, cb, p);
}

/* ---- storage stats and fsck ----------------------------------------------------------- */

static int64_t q1(const char *sql) {
  db_stmt *st = db_prep(sql);
  int64_t v = 0;
  if (!st) return 0;
  if (db_step(st) == DB_ROW) v = db_col_int64(st, 0);
  db_reset(st);
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
  db_stmt *st = db_prep("SELECT hash FROM xet_xorbs");
  return st ? hash_rows(st, cb, p) : HUB_ERROR;
}

int db_xet_each_file(db_xet_hash_cb cb, void *p) {
  db_stmt *st = db_prep("SELECT hash FROM xet_files");
  return st ? hash_rows(st, cb, p) : HUB_ERROR;
}

int db_xet_each_sha_link(void (*cb)(const char *sha, const uint8_t *file32, void *p), void *p) {
  db_stmt *st = db_prep("SELECT DISTINCT sha256, file FROM xet_sha");
  if (!st) return HUB_ERROR;
  while (db_step(st) == DB_ROW) {
    if (db_col_bytes(st, 1) != 32) continue;
    cb(db_col_text(st, 0), db_col_blob(st, 1), p);
  }
  db_reset(st);
  return 0;
}
