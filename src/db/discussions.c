/* Discussion threads (see db/discussions.h). */
#include "db/discussions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "discussions"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: thread events; the target's commit before a PR's merge */
    "CREATE TABLE gov_disc_events("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " num INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
    " author_id INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " raw TEXT, data TEXT NOT NULL DEFAULT '{}', hidden INTEGER NOT NULL DEFAULT 0,"
    " hidden_by INTEGER NOT NULL DEFAULT 0, edits INTEGER NOT NULL DEFAULT 0,"
    " editor_id INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX gov_disc_events_num ON gov_disc_events(repo_id, num, seq, id);"
    "ALTER TABLE gov_discussions ADD COLUMN merge_prev TEXT NOT NULL DEFAULT '';",
};

int db_disc_init(void) {
  return db_migrate_module("discussions", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

/* The error a statement left (rc: its negative code, or 0 for a NULL db_prep), prefixed;
 * the code is kept (HUB_EUNAVAILABLE for a database that is down). */
static int sql_err(int rc) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  if (rc >= 0) rc = hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  return hub_error_set(rc, "discussions: %s", msg);
}

static int prepare(db_stmt **st, const char *sql) {
  *st = db_prep(sql);
  return *st ? 0 : sql_err(0);
}

/* Step a write statement to completion (and reset it). */
static int run(db_stmt *st) {
  int rc = db_step_done(st);
  if (rc == HUB_EEXISTS)
    rc = hub_error_set(HUB_EEXISTS, "discussion number already taken");
  else if (rc)
    rc = sql_err(rc);
  return rc;
}

int db_disc_next_num(int64_t repo_id, int *out) {
  db_stmt *st;
  int rc;
  *out = 1;
  if ((rc = prepare(&st, "SELECT COALESCE(MAX(num), 0) + 1 FROM gov_discussions WHERE repo_id=?")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  int s = db_step(st);
  if (s == DB_ROW)
    *out = (int)db_col_int64(st, 0);
  else
    rc = sql_err(s);
  db_reset(st);
  return rc;
}

int db_disc_insert(int64_t repo_id, int num, const char *title, const char *status, int is_pr,
                   int64_t author_id, const char *target_branch, int64_t now) {
  db_stmt *st;
  int rc;
  if ((rc =
           prepare(&st, "INSERT INTO gov_discussions(repo_id, num, title, status, is_pr, author_id,"
                        " created_ms, updated_ms, target_branch) VALUES(?,?,?,?,?,?,?,?,?)")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  db_bind_text(st, 3, title, -1);
  db_bind_text(st, 4, status, -1);
  db_bind_int64(st, 5, is_pr);
  db_bind_int64(st, 6, author_id);
  db_bind_int64(st, 7, now);
  db_bind_int64(st, 8, now);
  db_bind_text(st, 9, target_branch ? target_branch : "", -1);
  return run(st);
}

int db_disc_set_title(int64_t repo_id, int num, const char *title, int64_t now) {
  db_stmt *st;
  int rc;
  if ((rc = prepare(&st,
                    "UPDATE gov_discussions SET title=?, updated_ms=? WHERE repo_id=? AND num=?")))
    return rc;
  db_bind_text(st, 1, title, -1);
  db_bind_int64(st, 2, now);
  db_bind_int64(st, 3, repo_id);
  db_bind_int64(st, 4, num);
  return run(st);
}

int db_disc_set_merge_prev(int64_t repo_id, int num, const char *sha) {
  db_stmt *st;
  int rc;
  if ((rc = prepare(&st, "UPDATE gov_discussions SET merge_prev=? WHERE repo_id=? AND num=?")))
    return rc;
  db_bind_text(st, 1, sha, -1);
  db_bind_int64(st, 2, repo_id);
  db_bind_int64(st, 3, num);
  return run(st);
}

int db_disc_merge_prev(int64_t repo_id, int num, char out[41]) {
  db_stmt *st;
  int rc;
  out[0] = 0;
  if ((rc = prepare(&st, "SELECT merge_prev FROM gov_discussions WHERE repo_id=? AND num=?")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  if (db_step(st) == DB_ROW) db_col_copy(out, 41, st, 0);
  db_reset(st);
  return 0;
}

void db_disc_event_dispose(db_disc_event *e) {
  free(e->raw);
  free(e->data);
  e->raw = e->data = NULL;
}

int db_disc_event_add(int64_t repo_id, int num, const char *uid, const char *type,
                      int64_t author_id, const char *raw, const char *data, int64_t now) {
  db_stmt *st;
  int rc;
  if ((rc = prepare(&st, "INSERT INTO gov_disc_events(uid, repo_id, num, seq, type, author_id,"
                         " created_ms, updated_ms, raw, data) VALUES(?,?,?,"
                         " (SELECT COALESCE(MAX(id), 0) + 1 FROM events),?,?,?,?,?,?)")))
    return rc;
  db_bind_text(st, 1, uid, -1);
  db_bind_int64(st, 2, repo_id);
  db_bind_int64(st, 3, num);
  db_bind_text(st, 4, type, -1);
  db_bind_int64(st, 5, author_id);
  db_bind_int64(st, 6, now);
  db_bind_int64(st, 7, now);
  if (raw)
    db_bind_text(st, 8, raw, -1);
  else
    db_bind_null(st, 8);
  db_bind_text(st, 9, data ? data : "{}", -1);
  return run(st);
}

#define EV_COLS                                                                                    \
  "e.uid, e.type, e.seq, e.author_id, COALESCE(a.name, 'deleted'), e.created_ms, e.updated_ms,"    \
  " COALESCE(e.raw, ''), e.data, e.hidden, e.edits, COALESCE(ed.name, ''), COALESCE(hb.name, '')"  \
  " FROM gov_disc_events e LEFT JOIN accounts a ON a.id = e.author_id"                             \
  " LEFT JOIN accounts ed ON ed.id = e.editor_id LEFT JOIN accounts hb ON hb.id = e.hidden_by"

static char *dup_col(db_stmt *st, int i) {
  const char *s = db_col_text(st, i);
  return strdup(s ? s : "");
}

static int ev_fill(db_disc_event *e, db_stmt *st) {
  memset(e, 0, sizeof *e);
  db_col_copy(e->uid, sizeof e->uid, st, 0);
  db_col_copy(e->type, sizeof e->type, st, 1);
  e->seq = db_col_int64(st, 2);
  e->author_id = db_col_int64(st, 3);
  db_col_copy(e->author, sizeof e->author, st, 4);
  e->created_ms = db_col_int64(st, 5);
  e->updated_ms = db_col_int64(st, 6);
  e->raw = dup_col(st, 7);
  e->data = dup_col(st, 8);
  e->hidden = (int)db_col_int64(st, 9);
  e->edits = (int)db_col_int64(st, 10);
  db_col_copy(e->editor, sizeof e->editor, st, 11);
  db_col_copy(e->hidden_by, sizeof e->hidden_by, st, 12);
  if (!e->raw || !e->data) {
    db_disc_event_dispose(e);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  return 0;
}

int db_disc_event_get(int64_t repo_id, int num, const char *uid, db_disc_event *out) {
  db_stmt *st;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = prepare(&st, "SELECT " EV_COLS " WHERE e.repo_id=? AND e.num=? AND e.uid=?")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  db_bind_text(st, 3, uid, -1);
  int s = db_step(st);
  if (s == DB_ROW)
    rc = ev_fill(out, st);
  else if (s == DB_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Comment %s not found in discussion #%d", uid, num);
  else
    rc = sql_err(s);
  db_reset(st);
  return rc;
}

int db_disc_comment_edit(int64_t repo_id, int num, const char *uid, const char *raw,
                         const char *history, int64_t editor_id, int64_t now) {
  db_stmt *st;
  int rc;
  if ((rc = prepare(&st, "UPDATE gov_disc_events SET raw=?, data=?, editor_id=?, updated_ms=?,"
                         " edits=edits+1 WHERE repo_id=? AND num=? AND uid=? AND hidden=0")))
    return rc;
  db_bind_text(st, 1, raw, -1);
  db_bind_text(st, 2, history, -1);
  db_bind_int64(st, 3, editor_id);
  db_bind_int64(st, 4, now);
  db_bind_int64(st, 5, repo_id);
  db_bind_int64(st, 6, num);
  db_bind_text(st, 7, uid, -1);
  return run(st);
}

int db_disc_comment_hide(int64_t repo_id, int num, const char *uid, int64_t by_id, int64_t now) {
  db_stmt *st;
  int rc;
  if ((rc = prepare(&st, "UPDATE gov_disc_events SET raw='', data='[]', hidden=1, hidden_by=?,"
                         " updated_ms=? WHERE repo_id=? AND num=? AND uid=?")))
    return rc;
  db_bind_int64(st, 1, by_id);
  db_bind_int64(st, 2, now);
  db_bind_int64(st, 3, repo_id);
  db_bind_int64(st, 4, num);
  db_bind_text(st, 5, uid, -1);
  return run(st);
}

int db_disc_events_each(int64_t repo_id, int num, db_disc_event_cb cb, void *payload) {
  db_stmt *st;
  int rc, s;
  if ((rc = prepare(&st, "SELECT " EV_COLS " WHERE e.repo_id=? AND e.num=? ORDER BY e.seq, e.id")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  while ((s = db_step(st)) == DB_ROW) {
    db_disc_event e;
    if ((rc = ev_fill(&e, st))) break;
    rc = cb(&e, payload);
    db_disc_event_dispose(&e);
    if (rc) break;
  }
  if (!rc && s != DB_DONE) rc = sql_err(s);
  db_reset(st);
  return rc;
}

int db_disc_ref_moves(int64_t repo_id, const char *repo_uid, const char *ref, int limit,
                      db_disc_ref_cb cb, void *payload) {
  db_stmt *st;
  int rc, s;
  if ((rc = prepare(
           &st, "SELECT id, kind, COALESCE(old, ''), COALESCE(new, ''), actor, ts_ms FROM events"
                " WHERE repo_id=? AND repo_uid=? AND ref=? ORDER BY id LIMIT ?")))
    return rc;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, repo_uid, -1);
  db_bind_text(st, 3, ref, -1);
  db_bind_int64(st, 4, limit);
  while ((s = db_step(st)) == DB_ROW) {
    db_disc_ref_move m;
    memset(&m, 0, sizeof m);
    m.id = db_col_int64(st, 0);
    db_col_copy(m.kind, sizeof m.kind, st, 1);
    db_col_copy(m.old, sizeof m.old, st, 2);
    db_col_copy(m.new_, sizeof m.new_, st, 3);
    db_col_copy(m.actor, sizeof m.actor, st, 4);
    m.ts_ms = db_col_int64(st, 5);
    if ((rc = cb(&m, payload))) break;
  }
  if (!rc && s != DB_DONE && s != DB_ROW) rc = sql_err(s);
  db_reset(st);
  return rc;
}
