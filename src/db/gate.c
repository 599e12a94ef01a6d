/* Gated repos' access requests (see db/gate.h). */
#include "db/gate.h"

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

static const char *const GATE_STEPS[] = {
    "CREATE TABLE gate_requests(repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " status TEXT NOT NULL, fields TEXT NOT NULL DEFAULT '{}', created_ms INTEGER NOT NULL,"
    " decided_ms INTEGER NOT NULL DEFAULT 0, decided_by TEXT NOT NULL DEFAULT '',"
    " reason TEXT NOT NULL DEFAULT '', PRIMARY KEY(repo_id, user_id));",
};

int db_gate_init(void) {
  return db_migrate_module("gate", GATE_STEPS, (int)(sizeof GATE_STEPS / sizeof GATE_STEPS[0]));
}

int db_gate_status(int64_t repo_id, int64_t user_id, char out[16]) {
  db_stmt *st = db_prep("SELECT status FROM gate_requests WHERE repo_id=? AND user_id=?");
  out[0] = 0;
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, user_id);
  int rc = db_step(st);
  if (rc == DB_ROW) db_col_copy(out, 16, st, 0);
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_gate_set(int64_t repo_id, int64_t user_id, const char *status, const char *fields,
                const char *decided_by, const char *reason) {
  db_stmt *st =
      db_prep("INSERT INTO gate_requests(repo_id, user_id, status, fields, created_ms, decided_ms,"
              " decided_by, reason) VALUES(?1,?2,?3,coalesce(?4,'{}'),?5,?6,?7,?8)"
              " ON CONFLICT(repo_id, user_id) DO UPDATE SET status=?3, fields=coalesce(?4, "
              "gate_requests.fields),"
              " decided_ms=?6, decided_by=?7, reason=?8");
  if (!st) return HUB_ERROR;
  int64_t now = db_now_ms();
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, user_id);
  db_bind_text(st, 3, status, -1);
  if (fields) db_bind_text(st, 4, fields, -1);
  db_bind_int64(st, 5, now);
  db_bind_int64(st, 6, decided_by && *decided_by ? now : 0);
  db_bind_text(st, 7, decided_by ? decided_by : "", -1);
  db_bind_text(st, 8, reason ? reason : "", -1);
  return db_step_done(st);
}

int db_gate_list(int64_t repo_id, const char *status, db_gate_cb cb, void *payload) {
  db_stmt *st =
      db_prep("SELECT a.name, a.fullname, a.email, g.created_ms, g.status, g.fields, g.decided_by, "
              "g.reason FROM gate_requests g JOIN accounts a ON a.id=g.user_id "
              "WHERE g.repo_id=? AND g.status=? ORDER BY g.created_ms");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, status, -1);
  int rc;
  while ((rc = db_step(st)) == DB_ROW) {
    db_gate_request g;
#define S(i) db_col_text(st, i)
    g.user = S(0);
    g.fullname = S(1);
    g.email = S(2);
    g.created_ms = db_col_int64(st, 3);
    g.status = S(4);
    g.fields = S(5);
    g.decided_by = S(6);
    g.reason = S(7);
#undef S
    cb(&g, payload);
  }
  db_reset(st);
  return rc < 0 ? rc : 0;
}
