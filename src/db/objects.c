/* Per-repo object references (db/objects.h): table repo_objects, core migration 8. */
#include "db/objects.h"

#include "db/db.h"
#include "db/internal.h"
#include "util/error.h"

int db_objects_add(int64_t repo_id, const char *oid, int64_t size) {
  sqlite3_stmt *st =
      db__stmt("INSERT OR IGNORE INTO repo_objects(repo_id, oid, size) VALUES(?,?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, size);
  int rc = db__step_done(st);
  return rc == HUB_EEXISTS ? 0 : rc;
}

int db_objects_get(int64_t repo_id, const char *oid, int64_t *out_size) {
  sqlite3_stmt *st = db__stmt("SELECT size FROM repo_objects WHERE repo_id=? AND oid=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW) {
    if (out_size) *out_size = sqlite3_column_int64(st, 0);
  } else if (s == SQLITE_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  } else {
    rc = hub_error_set(HUB_ERROR, "repo objects: %s", sqlite3_errmsg(db_conn()));
  }
  sqlite3_reset(st);
  return rc;
}

int db_objects_count(int64_t repo_id, int64_t *out) {
  sqlite3_stmt *st = db__stmt("SELECT count(*) FROM repo_objects WHERE repo_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  int s = sqlite3_step(st);
  *out = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return s == SQLITE_ROW ? 0 : hub_error_set(HUB_ERROR, "repo objects: count");
}

int db_objects_may_reference(int64_t repo_id, const char *oid, int64_t size, int64_t *out_size) {
  /* xet_sha is xetsrv's table (module "xet"); a data dir whose server never started xetsrv
   * has none, and then only repo_objects counts. */
  sqlite3_stmt *st =
      db__stmt("SELECT size FROM repo_objects WHERE repo_id=?1 AND oid=?2 AND (?3<0 OR size=?3)"
               " UNION ALL SELECT size FROM xet_sha WHERE sha256=?2 AND repo_id=?1 AND"
               " (?3<0 OR size=?3) LIMIT 1");
  if (!st) {
    int64_t have = 0;
    int rc = db_objects_get(repo_id, oid, &have);
    if (rc) return rc;
    if (size >= 0 && have != size) return hub_error_set(HUB_ENOTFOUND, "Object does not exist");
    if (out_size) *out_size = have;
    return 0;
  }
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, size);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW) {
    if (out_size) *out_size = sqlite3_column_int64(st, 0);
  } else if (s == SQLITE_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  } else {
    rc = hub_error_set(HUB_ERROR, "repo objects: %s", sqlite3_errmsg(db_conn()));
  }
  sqlite3_reset(st);
  return rc;
}
