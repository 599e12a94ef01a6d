/* Which Xet files and xorbs a repo may use (docs/xet.md, "Read scope").
 *
 * A repo reads a Xet file when it references it: the file was uploaded through the repo (a
 * shard sent with the repo's write token, or a conversion made for it: xet_sha.repo_id,
 * xet_files.repo_id, xet_repo_files), or the repo references the file's sha256 in
 * repo_objects (db/objects.h) and that sha256 link is verified. xet_repo_files is the
 * cache of the first kind plus links made by lookups that passed the second. */
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/objects.h"
#include "util/error.h"
#include "xetsrv/internal.h"

static int sql_err(const char *what) {
  return hub_error_set(HUB_ERROR, "xet acl: %s: %s", what, sqlite3_errmsg(db_conn()));
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

int xs_sha_find_for(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size) {
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
    memcpy(file->b, sqlite3_column_blob(st, 0), 32);
    if (size) *size = (uint64_t)sqlite3_column_int64(st, 1);
  } else {
    rc = s == SQLITE_ROW || s == SQLITE_DONE ? hub_error_set(HUB_ENOTFOUND, "not Xet-backed")
                                             : sql_err("sha256 link");
  }
  sqlite3_finalize(st);
  return rc;
}

int xs_repo_may_read(int64_t repo_id, const xet_hash *file) {
  if (xs_repo_has(repo_id, file)) return 1;
  sqlite3_stmt *st = prep("SELECT 1 FROM xet_sha s JOIN repo_objects o ON o.repo_id=?1 AND"
                          " o.oid=s.sha256 AND o.size=s.size WHERE s.file=?2 AND s.verified=1"
                          " LIMIT 1");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, file->b, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (yes) xs_queue_link(repo_id, file); /* may run on an event thread: written later */
  return yes;
}

int xs_dedup_allowed(int64_t repo_id, const xet_hash *xorb) {
  /* A xorb is offered when a file using it is readable through the token's repo, or sits
   * in a public, ungated repo (whose bytes anyone may download anyway). */
  sqlite3_stmt *st =
      prep("SELECT 1 FROM xet_file_xorbs fx JOIN xet_repo_files rf ON rf.file=fx.file"
           " JOIN repos r ON r.id=rf.repo_id WHERE fx.xorb=?2 AND (rf.repo_id=?1 OR"
           " (r.private=0 AND r.gated='' AND r.disabled=0)) LIMIT 1");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_blob(st, 2, xorb->b, 32, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return yes;
}

int xs_claims_to_objects(const char *sha, const xet_hash *file) {
  sqlite3_stmt *st = prep("INSERT OR IGNORE INTO repo_objects(repo_id, oid, size)"
                          " SELECT s.repo_id, s.sha256, s.size FROM xet_sha s JOIN repos r ON"
                          " r.id=s.repo_id WHERE s.sha256=? AND s.file=? AND s.verified=1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, file->b, 32, SQLITE_STATIC);
  int s = sqlite3_step(st);
  sqlite3_finalize(st);
  return s == SQLITE_DONE ? 0 : sql_err("claims to objects");
}

int xetsrv_verified_size(const char *sha, int64_t *out_size) {
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

/* Module "xetsrv-acl": an index for the file -> sha256 probes above. */
static const char *const STEPS[] = {
    "CREATE INDEX IF NOT EXISTS xet_sha_file ON xet_sha(file);"
    "CREATE INDEX IF NOT EXISTS xet_repo_files_file ON xet_repo_files(file);",
};

/* Module "xetsrv-repo-delete": repo ids are reused (`id INTEGER PRIMARY KEY`: a repo
 * created after the newest one was deleted gets its id), so Xet rows that name a repo by id
 * without a foreign key must not outlive it, or the new repo inherits the deleted repo's
 * uploads (xs_sha_find_for matches xet_sha.repo_id). Unverified claims go; verified
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

int xs_acl_open(void) {
  int rc = db_migrate_module("xetsrv-acl", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
  if (!rc)
    rc = db_migrate_module("xetsrv-repo-delete", DELETE_STEPS,
                           (int)(sizeof DELETE_STEPS / sizeof DELETE_STEPS[0]));
  return rc;
}

int xetsrv_objects_migrate(void) {
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
