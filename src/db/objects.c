/* Per-repo object references (db/objects.h): table repo_objects, core migration 8. */
#include "db/objects.h"

#include <stdatomic.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

int db_objects_add(int64_t repo_id, const char *oid, int64_t size) {
  db_stmt *st = db_prep("INSERT OR IGNORE INTO repo_objects(repo_id, oid, size) VALUES(?,?,?)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  db_bind_int64(st, 3, size);
  int rc = db_step_done(st);
  return rc == HUB_EEXISTS ? 0 : rc;
}

int db_objects_get(int64_t repo_id, const char *oid, int64_t *out_size) {
  db_stmt *st = db_prep("SELECT size FROM repo_objects WHERE repo_id=? AND oid=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW) {
    if (out_size) *out_size = db_col_int64(st, 0);
  } else if (s == DB_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  } else {
    rc = s;
  }
  db_reset(st);
  return rc;
}

int db_objects_count(int64_t repo_id, int64_t *out) {
  db_stmt *st = db_prep("SELECT count(*) FROM repo_objects WHERE repo_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  int s = db_step(st);
  *out = s == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  return s == DB_ROW ? 0 : s < 0 ? s : hub_error_set(HUB_ERROR, "repo objects: count");
}

/* Does this database have xetsrv's xet_sha table (module "xetsrv")? One that no server with
 * xetsrv ever opened has none. Asked of schema_modules rather than learnt from a failing
 * statement: PostgreSQL reports an unknown table only when the statement runs, and that
 * error would abort the caller's transaction. Once there, the table stays. */
static int have_xet_sha(void) {
  static atomic_int known;
  if (atomic_load(&known)) return 1;
  db_stmt *st = db_prep("SELECT version FROM schema_modules WHERE module='xetsrv'");
  if (!st) return 0;
  int yes = db_step(st) == DB_ROW && db_col_int64(st, 0) >= 1;
  db_reset(st);
  if (yes) atomic_store(&known, 1);
  return yes;
}

int db_objects_may_reference(int64_t repo_id, const char *oid, int64_t size, int64_t *out_size) {
  /* Without xet_sha only repo_objects counts. */
  db_stmt *st =
      have_xet_sha()
          ? db_prep(
                "SELECT size FROM repo_objects WHERE repo_id=?1 AND oid=?2 AND (?3<0 OR size=?3)"
                " UNION ALL SELECT size FROM xet_sha WHERE sha256=?2 AND repo_id=?1 AND"
                " (?3<0 OR size=?3) LIMIT 1")
          : NULL;
  if (!st) {
    int64_t have = 0;
    int rc = db_objects_get(repo_id, oid, &have);
    if (rc) return rc;
    if (size >= 0 && have != size) return hub_error_set(HUB_ENOTFOUND, "Object does not exist");
    if (out_size) *out_size = have;
    return 0;
  }
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  db_bind_int64(st, 3, size);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW) {
    if (out_size) *out_size = db_col_int64(st, 0);
  } else if (s == DB_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  } else {
    rc = s;
  }
  db_reset(st);
  return rc;
}
