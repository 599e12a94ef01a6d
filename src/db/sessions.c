/* Browser sessions (see db/sessions.h). */
#include "db/sessions.h"

#include "db/db.h"
#include "db/stmt.h"
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
  db_stmt *st = db_prep("SELECT user_id, csrf FROM web_sessions WHERE id_hash=? AND expires_ms>?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, id_hash, -1);
  db_bind_int64(st, 2, db_now_ms());
  int s = db_step(st), rc = HUB_ENOTFOUND;
  if (s == DB_ROW) {
    *user_id = db_col_int64(st, 0);
    db_col_copy(csrf, 65, st, 1);
    rc = 0;
  } else if (s < 0) {
    rc = s;
  }
  db_reset(st);
  return rc;
}

int db_session_create(const char *id_hash, int64_t user_id, const char *csrf, int64_t now,
                      int64_t expires_ms) {
  db_stmt *gc = db_prep("DELETE FROM web_sessions WHERE expires_ms<=?");
  if (gc) {
    db_bind_int64(gc, 1, now);
    db_step_done(gc);
  }
  db_stmt *st = db_prep("INSERT INTO web_sessions(id_hash, user_id, csrf, created_ms, expires_ms)"
                        " VALUES(?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, id_hash, -1);
  db_bind_int64(st, 2, user_id);
  db_bind_text(st, 3, csrf, -1);
  db_bind_int64(st, 4, now);
  db_bind_int64(st, 5, expires_ms);
  return db_step_done(st);
}

int db_session_delete(const char *id_hash) {
  db_stmt *st = db_prep("DELETE FROM web_sessions WHERE id_hash=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, id_hash, -1);
  db_step_done(st);
  return 0;
}
