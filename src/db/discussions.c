/* Discussion threads (see db/discussions.h). */
#include "db/discussions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
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

static int sql_err(sqlite3 *db) {
  return hub_error_set(HUB_ERROR, "discussions: %s", db ? sqlite3_errmsg(db) : "no database");
}

static int prepare(sqlite3 **db, sqlite3_stmt **st, const char *sql) {
  *db = db_conn();
  *st = NULL;
  if (!*db || sqlite3_prepare_v2(*db, sql, -1, st, NULL) != SQLITE_OK) return sql_err(*db);
  return 0;
}

/* Step a write statement to completion and finalize it. */
static int run(sqlite3 *db, sqlite3_stmt *st) {
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_CONSTRAINT)
    rc = hub_error_set(HUB_EEXISTS, "discussion number already taken");
  else if (s != SQLITE_DONE)
    rc = sql_err(db);
  sqlite3_finalize(st);
  return rc;
}

int db_disc_next_num(int64_t repo_id, int *out) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  *out = 1;
  if ((rc = prepare(&db, &st,
                    "SELECT COALESCE(MAX(num), 0) + 1 FROM gov_discussions WHERE repo_id=?")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  if (sqlite3_step(st) == SQLITE_ROW)
    *out = sqlite3_column_int(st, 0);
  else
    rc = sql_err(db);
  sqlite3_finalize(st);
  return rc;
}

int db_disc_insert(int64_t repo_id, int num, const char *title, const char *status, int is_pr,
                   int64_t author_id, const char *target_branch, int64_t now) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st,
                    "INSERT INTO gov_discussions(repo_id, num, title, status, is_pr, author_id,"
                    " created_ms, updated_ms, target_branch) VALUES(?,?,?,?,?,?,?,?,?)")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  sqlite3_bind_text(st, 3, title, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, status, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 5, is_pr);
  sqlite3_bind_int64(st, 6, author_id);
  sqlite3_bind_int64(st, 7, now);
  sqlite3_bind_int64(st, 8, now);
  sqlite3_bind_text(st, 9, target_branch ? target_branch : "", -1, SQLITE_TRANSIENT);
  return run(db, st);
}

int db_disc_set_title(int64_t repo_id, int num, const char *title, int64_t now) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st,
                    "UPDATE gov_discussions SET title=?, updated_ms=? WHERE repo_id=? AND num=?")))
    return rc;
  sqlite3_bind_text(st, 1, title, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, repo_id);
  sqlite3_bind_int(st, 4, num);
  return run(db, st);
}

int db_disc_set_merge_prev(int64_t repo_id, int num, const char *sha) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st, "UPDATE gov_discussions SET merge_prev=? WHERE repo_id=? AND num=?")))
    return rc;
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, repo_id);
  sqlite3_bind_int(st, 3, num);
  return run(db, st);
}

int db_disc_merge_prev(int64_t repo_id, int num, char out[41]) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  out[0] = 0;
  if ((rc = prepare(&db, &st, "SELECT merge_prev FROM gov_discussions WHERE repo_id=? AND num=?")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, 41, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return 0;
}

void db_disc_event_dispose(db_disc_event *e) {
  free(e->raw);
  free(e->data);
  e->raw = e->data = NULL;
}

int db_disc_event_add(int64_t repo_id, int num, const char *uid, const char *type,
                      int64_t author_id, const char *raw, const char *data, int64_t now) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st,
                    "INSERT INTO gov_disc_events(uid, repo_id, num, seq, type, author_id,"
                    " created_ms, updated_ms, raw, data) VALUES(?,?,?,"
                    " (SELECT COALESCE(MAX(id), 0) + 1 FROM events),?,?,?,?,?,?)")))
    return rc;
  sqlite3_bind_text(st, 1, uid, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, repo_id);
  sqlite3_bind_int(st, 3, num);
  sqlite3_bind_text(st, 4, type, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 5, author_id);
  sqlite3_bind_int64(st, 6, now);
  sqlite3_bind_int64(st, 7, now);
  if (raw)
    sqlite3_bind_text(st, 8, raw, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 8);
  sqlite3_bind_text(st, 9, data ? data : "{}", -1, SQLITE_TRANSIENT);
  return run(db, st);
}

#define EV_COLS                                                                                    \
  "e.uid, e.type, e.seq, e.author_id, COALESCE(a.name, 'deleted'), e.created_ms, e.updated_ms,"    \
  " COALESCE(e.raw, ''), e.data, e.hidden, e.edits, COALESCE(ed.name, ''), COALESCE(hb.name, '')"  \
  " FROM gov_disc_events e LEFT JOIN accounts a ON a.id = e.author_id"                             \
  " LEFT JOIN accounts ed ON ed.id = e.editor_id LEFT JOIN accounts hb ON hb.id = e.hidden_by"

static void col(char *dst, size_t cap, sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

static int ev_fill(db_disc_event *e, sqlite3_stmt *st) {
  memset(e, 0, sizeof *e);
  col(e->uid, sizeof e->uid, st, 0);
  col(e->type, sizeof e->type, st, 1);
  e->seq = sqlite3_column_int64(st, 2);
  e->author_id = sqlite3_column_int64(st, 3);
  col(e->author, sizeof e->author, st, 4);
  e->created_ms = sqlite3_column_int64(st, 5);
  e->updated_ms = sqlite3_column_int64(st, 6);
  e->raw = strdup((const char *)sqlite3_column_text(st, 7));
  e->data = strdup((const char *)sqlite3_column_text(st, 8));
  e->hidden = sqlite3_column_int(st, 9);
  e->edits = sqlite3_column_int(st, 10);
  col(e->editor, sizeof e->editor, st, 11);
  col(e->hidden_by, sizeof e->hidden_by, st, 12);
  if (!e->raw || !e->data) {
    db_disc_event_dispose(e);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  return 0;
}

int db_disc_event_get(int64_t repo_id, int num, const char *uid, db_disc_event *out) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = prepare(&db, &st, "SELECT " EV_COLS " WHERE e.repo_id=? AND e.num=? AND e.uid=?")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  sqlite3_bind_text(st, 3, uid, -1, SQLITE_TRANSIENT);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW)
    rc = ev_fill(out, st);
  else if (s == SQLITE_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Comment %s not found in discussion #%d", uid, num);
  else
    rc = sql_err(db);
  sqlite3_finalize(st);
  return rc;
}

int db_disc_comment_edit(int64_t repo_id, int num, const char *uid, const char *raw,
                         const char *history, int64_t editor_id, int64_t now) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st,
                    "UPDATE gov_disc_events SET raw=?, data=?, editor_id=?, updated_ms=?,"
                    " edits=edits+1 WHERE repo_id=? AND num=? AND uid=? AND hidden=0")))
    return rc;
  sqlite3_bind_text(st, 1, raw, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, history, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, editor_id);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, repo_id);
  sqlite3_bind_int(st, 6, num);
  sqlite3_bind_text(st, 7, uid, -1, SQLITE_TRANSIENT);
  return run(db, st);
}

int db_disc_comment_hide(int64_t repo_id, int num, const char *uid, int64_t by_id, int64_t now) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc;
  if ((rc = prepare(&db, &st,
                    "UPDATE gov_disc_events SET raw='', data='[]', hidden=1, hidden_by=?,"
                    " updated_ms=? WHERE repo_id=? AND num=? AND uid=?")))
    return rc;
  sqlite3_bind_int64(st, 1, by_id);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, repo_id);
  sqlite3_bind_int(st, 4, num);
  sqlite3_bind_text(st, 5, uid, -1, SQLITE_TRANSIENT);
  return run(db, st);
}

int db_disc_events_each(int64_t repo_id, int num, db_disc_event_cb cb, void *payload) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc, s;
  if ((rc = prepare(&db, &st,
                    "SELECT " EV_COLS " WHERE e.repo_id=? AND e.num=? ORDER BY e.seq, e.id")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    db_disc_event e;
    if ((rc = ev_fill(&e, st))) break;
    rc = cb(&e, payload);
    db_disc_event_dispose(&e);
    if (rc) break;
  }
  if (!rc && s != SQLITE_DONE) rc = sql_err(db);
  sqlite3_finalize(st);
  return rc;
}

int db_disc_ref_moves(int64_t repo_id, const char *ref, int limit, db_disc_ref_cb cb,
                      void *payload) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int rc, s;
  if ((rc =
           prepare(&db, &st,
                   "SELECT id, kind, COALESCE(old, ''), COALESCE(new, ''), actor, ts_ms FROM events"
                   " WHERE repo_id=? AND ref=? ORDER BY id LIMIT ?")))
    return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, ref, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, limit);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    db_disc_ref_move m;
    memset(&m, 0, sizeof m);
    m.id = sqlite3_column_int64(st, 0);
    col(m.kind, sizeof m.kind, st, 1);
    col(m.old, sizeof m.old, st, 2);
    col(m.new_, sizeof m.new_, st, 3);
    col(m.actor, sizeof m.actor, st, 4);
    m.ts_ms = sqlite3_column_int64(st, 5);
    if ((rc = cb(&m, payload))) break;
  }
  if (!rc && s != SQLITE_DONE && s != SQLITE_ROW) rc = sql_err(db);
  sqlite3_finalize(st);
  return rc;
}
