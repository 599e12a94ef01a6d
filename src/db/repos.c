/* Repo rows and rename redirects. */
#include "db/db.h"
#include "db/internal.h"
#include "db/stmt.h"

#include <string.h>

#include "util/error.h"

#define REPO_COLS DB_REPO_COLS

void db__read_repo(sqlite3_stmt *st, void *out) {
  db_repo *r = out;
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(st, 0);
  db__copy(r->uid, sizeof r->uid, st, 1);
  r->type = sqlite3_column_int(st, 2);
  db__copy(r->ns, sizeof r->ns, st, 3);
  db__copy(r->name, sizeof r->name, st, 4);
  r->owner_id = sqlite3_column_int64(st, 5);
  r->owner_is_org = sqlite3_column_int(st, 6);
  r->is_private = sqlite3_column_int(st, 7);
  db__copy(r->gated, sizeof r->gated, st, 8);
  r->disabled = sqlite3_column_int(st, 9);
  r->created_ms = sqlite3_column_int64(st, 10);
  r->updated_ms = sqlite3_column_int64(st, 11);
  db__copy(r->head_sha, sizeof r->head_sha, st, 12);
  r->last_modified_ms = sqlite3_column_int64(st, 13);
}

void db__read_repo_row(db_stmt *st, void *out) {
  db_repo *r = out;
  memset(r, 0, sizeof *r);
  r->id = db_col_int64(st, 0);
  db_col_copy(r->uid, sizeof r->uid, st, 1);
  r->type = (int)db_col_int64(st, 2);
  db_col_copy(r->ns, sizeof r->ns, st, 3);
  db_col_copy(r->name, sizeof r->name, st, 4);
  r->owner_id = db_col_int64(st, 5);
  r->owner_is_org = (int)db_col_int64(st, 6);
  r->is_private = (int)db_col_int64(st, 7);
  db_col_copy(r->gated, sizeof r->gated, st, 8);
  r->disabled = (int)db_col_int64(st, 9);
  r->created_ms = db_col_int64(st, 10);
  r->updated_ms = db_col_int64(st, 11);
  db_col_copy(r->head_sha, sizeof r->head_sha, st, 12);
  r->last_modified_ms = db_col_int64(st, 13);
}

static int one_repo(sqlite3_stmt *st, db_repo *out) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) db__read_repo(st, out);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) return 0;
  /* Only "no row" is "not found": a busy or failing database is an error, so that no caller
   * takes a transient failure for a repository that does not exist (and, say, sweeps it). */
  if (rc != SQLITE_DONE)
    return hub_error_set(HUB_ERROR, "reading the repository failed: %s", sqlite3_errmsg(db_conn()));
  return hub_error_set(HUB_EREPO, "Repository not found");
}

int db_repo_create(db_repo *r) {
  sqlite3_stmt *st =
      db__stmt("INSERT INTO repos(uid, type, ns, name, owner_id, owner_is_org, "
               "private, gated, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_new_uid(r->uid);
  r->created_ms = r->updated_ms = db_now_ms();
  sqlite3_bind_text(st, 1, r->uid, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, r->type);
  sqlite3_bind_text(st, 3, r->ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, r->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, r->owner_id);
  sqlite3_bind_int(st, 6, r->owner_is_org);
  sqlite3_bind_int(st, 7, r->is_private);
  sqlite3_bind_text(st, 8, r->gated, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 9, r->created_ms);
  sqlite3_bind_int64(st, 10, r->updated_ms);
  int rc = db__step_done(st);
  if (rc == HUB_EEXISTS)
    return hub_error_set(rc, "You already created this %s repo: %s/%s",
                         r->type == HUB_REPO_DATASET ? "dataset"
                         : r->type == HUB_REPO_SPACE ? "space"
                                                     : "model",
                         r->ns, r->name);
  if (rc) return rc;
  r->id = sqlite3_last_insert_rowid(db_conn());
  /* A new repo takes the name back from any old redirect. */
  sqlite3_stmt *d = db__stmt("DELETE FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (d) {
    sqlite3_bind_int(d, 1, r->type);
    sqlite3_bind_text(d, 2, r->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(d, 3, r->name, -1, SQLITE_STATIC);
    db__step_done(d);
  }
  return 0;
}

int db_repo_get(int type, const char *ns, const char *name, db_repo *out) {
  sqlite3_stmt *st = db__stmt("SELECT " REPO_COLS " FROM repos WHERE type=? AND ns=? AND name=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int(st, 1, type);
  sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  return one_repo(st, out);
}

int db_repo_by_id(int64_t id, db_repo *out) {
  sqlite3_stmt *st = db__stmt("SELECT " REPO_COLS " FROM repos WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  return one_repo(st, out);
}

int db_repo_by_uid(const char *uid, db_repo *out) {
  sqlite3_stmt *st = db__stmt("SELECT " REPO_COLS " FROM repos WHERE uid=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
  return one_repo(st, out);
}

int db_repo_delete(int64_t id) {
  sqlite3_stmt *st = db__stmt("DELETE FROM repos WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  return db__step_done(st);
}

int db_repo_move(int64_t id, int64_t new_owner_id, int new_owner_is_org, const char *new_ns,
                 const char *new_name) {
  sqlite3 *db = db_conn();
  db_repo old;
  int rc = db_repo_by_id(id, &old);
  if (rc) return rc;
  /* Inside the caller's transaction (the spine's, with the move's event) or in its own. */
  int outer = !sqlite3_get_autocommit(db);
  if (!outer && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "sql: %s", sqlite3_errmsg(db));
  sqlite3_stmt *st = db__stmt("UPDATE repos SET ns=?, name=?, owner_id=?, owner_is_org=?, "
                              "updated_ms=? WHERE id=?");
  if (!st) goto fail;
  sqlite3_bind_text(st, 1, new_ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, new_name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, new_owner_id);
  sqlite3_bind_int(st, 4, new_owner_is_org);
  sqlite3_bind_int64(st, 5, db_now_ms());
  sqlite3_bind_int64(st, 6, id);
  if ((rc = db__step_done(st))) goto fail;
  sqlite3_stmt *del = db__stmt("DELETE FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (!del) goto fail;
  sqlite3_bind_int(del, 1, old.type);
  sqlite3_bind_text(del, 2, new_ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(del, 3, new_name, -1, SQLITE_STATIC);
  if ((rc = db__step_done(del))) goto fail;
  sqlite3_stmt *ins =
      db__stmt("INSERT OR REPLACE INTO repo_redirects(type, ns, name, repo_id) VALUES(?,?,?,?)");
  if (!ins) goto fail;
  sqlite3_bind_int(ins, 1, old.type);
  sqlite3_bind_text(ins, 2, old.ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 3, old.name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(ins, 4, id);
  if ((rc = db__step_done(ins))) goto fail;
  if (!outer && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
  return 0;
fail:
  if (!outer) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  if (rc == HUB_EEXISTS)
    return hub_error_set(rc, "Repository %s/%s already exists", new_ns, new_name);
  return rc ? rc : hub_error_set(HUB_ERROR, "sql: %s", sqlite3_errmsg(db));
}

int db_repo_redirect(int type, const char *ns, const char *name, db_repo *out) {
  sqlite3_stmt *st =
      db__stmt("SELECT repo_id FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int(st, 1, type);
  sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  int64_t id = 0;
  if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (!id) return hub_error_set(HUB_EREPO, "Repository not found");
  return db_repo_by_id(id, out);
}

int db_repo_update(const db_repo *r) {
  sqlite3_stmt *st =
      db__stmt("UPDATE repos SET private=?, gated=?, disabled=?, updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int(st, 1, r->is_private);
  sqlite3_bind_text(st, 2, r->gated, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, r->disabled);
  sqlite3_bind_int64(st, 4, db_now_ms());
  sqlite3_bind_int64(st, 5, r->id);
  return db__step_done(st);
}

int db_repo_touch(int64_t id, int64_t updated_ms) {
  sqlite3_stmt *st = db__stmt("UPDATE repos SET updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, updated_ms);
  sqlite3_bind_int64(st, 2, id);
  return db__step_done(st);
}

int db_repo_count(int64_t *out) {
  sqlite3_stmt *st = db__stmt("SELECT count(*) FROM repos");
  if (!st) return HUB_ERROR;
  *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return 0;
}

int db_repo_set_head(int64_t id, const char *sha, int64_t last_modified_ms) {
  sqlite3_stmt *st = db__stmt(
      "UPDATE repos SET head_sha=?, last_modified_ms=?, updated_ms=max(updated_ms, ?) WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, last_modified_ms);
  sqlite3_bind_int64(st, 3, db_now_ms());
  sqlite3_bind_int64(st, 4, id);
  return db__step_done(st);
}
