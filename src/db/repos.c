/* Repo rows and rename redirects. */
#include "db/db.h"
#include "db/internal.h"
#include "db/stmt.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

#define REPO_COLS DB_REPO_COLS

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

static int one_repo(db_stmt *st, db_repo *out) {
  int rc = db_step(st);
  if (rc == DB_ROW) db__read_repo_row(st, out);
  db_reset(st);
  if (rc == DB_ROW) return 0;
  /* Only "no row" is "not found": a busy or failing database is an error, so that no caller
   * takes a transient failure for a repository that does not exist (and, say, sweeps it). */
  if (rc != DB_DONE) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return hub_error_set(rc, "reading the repository failed: %s", msg);
  }
  return hub_error_set(HUB_EREPO, "Repository not found");
}

int db_repo_create(db_repo *r) {
  /* A taken name is an expected failure: DO NOTHING rather than a constraint error, which
   * on PostgreSQL would abort a caller's transaction (bundle import creates inside one). */
  db_stmt *st = db_prep("INSERT INTO repos(uid, type, ns, name, owner_id, owner_is_org, "
                        "private, gated, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?)"
                        " ON CONFLICT DO NOTHING RETURNING id");
  if (!st) return HUB_ERROR;
  db_new_uid(r->uid);
  r->created_ms = r->updated_ms = db_now_ms();
  db_bind_text(st, 1, r->uid, -1);
  db_bind_int64(st, 2, r->type);
  db_bind_text(st, 3, r->ns, -1);
  db_bind_text(st, 4, r->name, -1);
  db_bind_int64(st, 5, r->owner_id);
  db_bind_int64(st, 6, r->owner_is_org);
  db_bind_int64(st, 7, r->is_private);
  db_bind_text(st, 8, r->gated, -1);
  db_bind_int64(st, 9, r->created_ms);
  db_bind_int64(st, 10, r->updated_ms);
  int rc = db_step(st);
  if (rc == DB_ROW) {
    r->id = db_col_int64(st, 0);
    rc = db_step_done(st); /* SQLite: the statement ends, the row is written */
  } else {
    db_reset(st);
    if (rc == DB_DONE) rc = HUB_EEXISTS;
  }
  if (rc == HUB_EEXISTS)
    return hub_error_set(rc, "You already created this %s repo: %s/%s",
                         r->type == HUB_REPO_DATASET ? "dataset"
                         : r->type == HUB_REPO_SPACE ? "space"
                                                     : "model",
                         r->ns, r->name);
  if (rc) return rc;
  /* A new repo takes the name back from any old redirect. */
  db_stmt *d = db_prep("DELETE FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (d) {
    db_bind_int64(d, 1, r->type);
    db_bind_text(d, 2, r->ns, -1);
    db_bind_text(d, 3, r->name, -1);
    db_step_done(d);
  }
  return 0;
}

int db_repo_get(int type, const char *ns, const char *name, db_repo *out) {
  db_stmt *st = db_prep("SELECT " REPO_COLS " FROM repos WHERE type=? AND ns=? AND name=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, type);
  db_bind_text(st, 2, ns, -1);
  db_bind_text(st, 3, name, -1);
  return one_repo(st, out);
}

int db_repo_by_id(int64_t id, db_repo *out) {
  db_stmt *st = db_prep("SELECT " REPO_COLS " FROM repos WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return one_repo(st, out);
}

int db_repo_by_uid(const char *uid, db_repo *out) {
  db_stmt *st = db_prep("SELECT " REPO_COLS " FROM repos WHERE uid=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, uid, -1);
  return one_repo(st, out);
}

int db_repo_delete(int64_t id) {
  db_stmt *st = db_prep("DELETE FROM repos WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return db_step_done(st);
}

int db_repo_move(int64_t id, int64_t new_owner_id, int new_owner_is_org, const char *new_ns,
                 const char *new_name) {
  db_repo old;
  int rc = db_repo_by_id(id, &old);
  if (rc) return rc;
  /* Inside the caller's transaction (the spine's, with the move's event) or in its own. */
  int outer = db_in_transaction();
  if (!outer && db_begin_immediate()) return hub_error_set(HUB_ERROR, "sql: %s", db_errmsg());
  db_stmt *st = db_prep("UPDATE repos SET ns=?, name=?, owner_id=?, owner_is_org=?, "
                        "updated_ms=? WHERE id=?");
  if (!st) { /* db_prep has set the message */
    rc = HUB_ERROR;
    goto fail;
  }
  db_bind_text(st, 1, new_ns, -1);
  db_bind_text(st, 2, new_name, -1);
  db_bind_int64(st, 3, new_owner_id);
  db_bind_int64(st, 4, new_owner_is_org);
  db_bind_int64(st, 5, db_now_ms());
  db_bind_int64(st, 6, id);
  if ((rc = db_step_done(st))) goto fail;
  db_stmt *del = db_prep("DELETE FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (!del) {
    rc = HUB_ERROR;
    goto fail;
  }
  db_bind_int64(del, 1, old.type);
  db_bind_text(del, 2, new_ns, -1);
  db_bind_text(del, 3, new_name, -1);
  if ((rc = db_step_done(del))) goto fail;
  /* The old name's redirect replaces any earlier one (in the old name's spelling). */
  db_stmt *ins = db_prep("INSERT INTO repo_redirects(type, ns, name, repo_id) VALUES(?,?,?,?)"
                         " ON CONFLICT(type, ns, name) DO UPDATE SET ns=excluded.ns,"
                         " name=excluded.name, repo_id=excluded.repo_id");
  if (!ins) {
    rc = HUB_ERROR;
    goto fail;
  }
  db_bind_int64(ins, 1, old.type);
  db_bind_text(ins, 2, old.ns, -1);
  db_bind_text(ins, 3, old.name, -1);
  db_bind_int64(ins, 4, id);
  if ((rc = db_step_done(ins))) goto fail;
  if (!outer && db_commit()) {
    rc = hub_error_set(HUB_ERROR, "sql: %s", db_errmsg());
    goto fail;
  }
  return 0;
fail:
  if (!outer) db_rollback();
  if (rc == HUB_EEXISTS)
    return hub_error_set(rc, "Repository %s/%s already exists", new_ns, new_name);
  return rc;
}

int db_repo_redirect(int type, const char *ns, const char *name, db_repo *out) {
  db_stmt *st = db_prep("SELECT repo_id FROM repo_redirects WHERE type=? AND ns=? AND name=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, type);
  db_bind_text(st, 2, ns, -1);
  db_bind_text(st, 3, name, -1);
  int64_t id = 0;
  int rc = db_step(st);
  if (rc == DB_ROW) id = db_col_int64(st, 0);
  db_reset(st);
  if (rc < 0) return rc;
  if (!id) return hub_error_set(HUB_EREPO, "Repository not found");
  return db_repo_by_id(id, out);
}

int db_repo_update(const db_repo *r) {
  db_stmt *st = db_prep("UPDATE repos SET private=?, gated=?, disabled=?, updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, r->is_private);
  db_bind_text(st, 2, r->gated, -1);
  db_bind_int64(st, 3, r->disabled);
  db_bind_int64(st, 4, db_now_ms());
  db_bind_int64(st, 5, r->id);
  return db_step_done(st);
}

int db_repo_touch(int64_t id, int64_t updated_ms) {
  db_stmt *st = db_prep("UPDATE repos SET updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, updated_ms);
  db_bind_int64(st, 2, id);
  return db_step_done(st);
}

int db_repo_count(int64_t *out) {
  db_stmt *st = db_prep("SELECT count(*) FROM repos");
  if (!st) return HUB_ERROR;
  int rc = db_step(st);
  *out = rc == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_repo_set_head(int64_t id, const char *sha, int64_t last_modified_ms) {
  db_stmt *st =
      db_prep("UPDATE repos SET head_sha=?1, last_modified_ms=?2,"
              " updated_ms=CASE WHEN updated_ms>?3 THEN updated_ms ELSE ?3 END WHERE id=?4");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, sha, -1);
  db_bind_int64(st, 2, last_modified_ms);
  db_bind_int64(st, 3, db_now_ms());
  db_bind_int64(st, 4, id);
  return db_step_done(st);
}
