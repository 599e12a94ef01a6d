/* Browser sessions (see db/sessions.h). */
#include "db/sessions.h"

#include <stdio.h>

#include "db/db.h"
#include "util/error.h"

static const char *const MIGRATIONS[] = {
    "CREATE TABLE web_sessions(id_hash TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " csrf TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL);"
    "CREATE INDEX web_sessions_user ON web_sessions(user_id);",
};

int db_sessions_init(void) {
  return db_migrate_module("web", MIGRATIONS, (int)(sizeof MIGRATIONS / sizeof *MIGRATIONS));
}

int db_session_lookup(const char *id_hash, int64_t *user_id, char csrf[65]) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = HUB_ENOTFOUND;
  if (!db || sqlite3_prepare_v2(db,
                                "SELECT user_id, csrf FROM web_sessions WHERE id_hash=?"
                                " AND expires_ms>?",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "sessions: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_text(st, 1, id_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, db_now_ms());
  if (sqlite3_step(st) == SQLITE_ROW) {
    *user_id = sqlite3_column_int64(st, 0);
    const char *c = (const char *)sqlite3_column_text(st, 1);
    snprintf(csrf, 65, "%s", c ? c : "");
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

int db_session_create(const char *id_hash, int64_t user_id, const char *csrf, int64_t now,
                      int64_t expires_ms) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  sqlite3_stmt *gc = NULL;
  if (sqlite3_prepare_v2(db, "DELETE FROM web_sessions WHERE expires_ms<=?", -1, &gc, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_int64(gc, 1, now);
    sqlite3_step(gc);
  }
  sqlite3_finalize(gc);
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO web_sessions(id_hash, user_id, csrf, created_ms, expires_ms)"
                         " VALUES(?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "sessions: %s", sqlite3_errmsg(db));
  sqlite3_bind_text(st, 1, id_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_text(st, 3, csrf, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, expires_ms);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  if (!ok) return hub_error_set(HUB_ERROR, "sessions: %s", sqlite3_errmsg(db));
  return 0;
}

int db_session_delete(const char *id_hash) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db || sqlite3_prepare_v2(db, "DELETE FROM web_sessions WHERE id_hash=?", -1, &st, NULL) !=
                 SQLITE_OK)
    return HUB_ERROR;
  sqlite3_bind_text(st, 1, id_hash, -1, SQLITE_STATIC);
  sqlite3_step(st);
  sqlite3_finalize(st);
  return 0;
}
