/* SQL of the event log and consumer cursors (db/events.h). */
#include "db/events.h"

#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "events"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: the event log, the refs as last recorded, the consumers' cursors */
    "CREATE TABLE events(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL,"
    " repo_uid TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, old TEXT NOT NULL,"
    " new TEXT NOT NULL, actor TEXT NOT NULL, token TEXT NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE INDEX events_repo ON events(repo_id, id);"
    "CREATE TABLE event_refs(repo_id INTEGER NOT NULL, ref TEXT NOT NULL, sha TEXT NOT NULL,"
    " PRIMARY KEY(repo_id, ref));"
    "CREATE TABLE event_cursors(consumer TEXT PRIMARY KEY, last_id INTEGER NOT NULL,"
    " processed INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL);",
    /* 2: what changed beyond the ref (discussion number, comment id, new visibility...). */
    "ALTER TABLE events ADD COLUMN details TEXT NOT NULL DEFAULT '';",
};

int db_events_init(void) {
  return db_migrate_module("events", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

int db_event_append(db_event *e) {
  db_stmt *st = db_prep("INSERT INTO events(repo_id, repo_uid, kind, ref, old, new, actor,"
                        " token, ts_ms, details) VALUES(?,?,?,?,?,?,?,?,?,?) RETURNING id");
  int rc;
  if (!st) return HUB_ERROR;
  e->ts_ms = db_now_ms();
  db_bind_int64(st, 1, e->repo_id);
  db_bind_text(st, 2, e->repo_uid, -1);
  db_bind_text(st, 3, e->kind, -1);
  db_bind_text(st, 4, e->ref, -1);
  db_bind_text(st, 5, e->old, -1);
  db_bind_text(st, 6, e->new_, -1);
  db_bind_text(st, 7, e->actor[0] ? e->actor : "-", -1);
  db_bind_text(st, 8, e->token[0] ? e->token : "-", -1);
  db_bind_int64(st, 9, e->ts_ms);
  db_bind_text(st, 10, e->details, -1);
  rc = db_step(st);
  if (rc == DB_ROW) e->id = db_col_int64(st, 0);
  db_reset(st);
  if (rc != DB_ROW) return rc < 0 ? rc : hub_error_set(HUB_ERROR, "events: no id");
  if (!e->ref[0]) return 0;
  if (e->new_[0]) return db_event_ref_set(e->repo_id, e->ref, e->new_);
  st = db_prep("DELETE FROM event_refs WHERE repo_id=? AND ref=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, e->repo_id);
  db_bind_text(st, 2, e->ref, -1);
  return db_step_done(st);
}

static void read_event(db_stmt *st, db_event *e) {
  memset(e, 0, sizeof *e);
  e->id = db_col_int64(st, 0);
  e->repo_id = db_col_int64(st, 1);
  db_col_copy(e->repo_uid, sizeof e->repo_uid, st, 2);
  db_col_copy(e->kind, sizeof e->kind, st, 3);
  db_col_copy(e->ref, sizeof e->ref, st, 4);
  db_col_copy(e->old, sizeof e->old, st, 5);
  db_col_copy(e->new_, sizeof e->new_, st, 6);
  db_col_copy(e->actor, sizeof e->actor, st, 7);
  db_col_copy(e->token, sizeof e->token, st, 8);
  e->ts_ms = db_col_int64(st, 9);
  db_col_copy(e->details, sizeof e->details, st, 10);
}

#define EVENT_COLS "id, repo_id, repo_uid, kind, ref, old, new, actor, token, ts_ms, details"

/* Rows are copied out first: a callback may run statements of its own. */
static int each_row(db_stmt *st, int limit, db_event_cb cb, void *payload) {
  db_event buf[64];
  int n = 0, rc = 0, s;
  if (limit > 64) limit = 64;
  while (n < limit && (s = db_step(st)) == DB_ROW)
    read_event(st, &buf[n++]);
  db_reset(st);
  for (int i = 0; i < n && !rc; i++)
    rc = cb(&buf[i], payload);
  return rc;
}

int db_events_after(int64_t after, int limit, db_event_cb cb, void *payload) {
  db_stmt *st = db_prep("SELECT " EVENT_COLS " FROM events WHERE id>? ORDER BY id LIMIT ?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, after);
  db_bind_int64(st, 2, limit);
  return each_row(st, limit, cb, payload);
}

int db_events_list(int64_t repo_id, int64_t before, int limit, db_event_cb cb, void *payload) {
  db_stmt *st = db_prep("SELECT " EVENT_COLS " FROM events WHERE (?1=0 OR repo_id=?1)"
                        " AND (?2=0 OR id<?2) ORDER BY id DESC LIMIT ?3");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, before);
  db_bind_int64(st, 3, limit);
  return each_row(st, limit, cb, payload);
}

int db_events_last(int64_t *out_id, int64_t *out_ts_ms) {
  db_stmt *st = db_prep("SELECT id, ts_ms FROM events ORDER BY id DESC LIMIT 1");
  *out_id = 0;
  if (out_ts_ms) *out_ts_ms = 0;
  if (!st) return hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  int rc = db_step(st);
  if (rc == DB_ROW) {
    *out_id = db_col_int64(st, 0);
    if (out_ts_ms) *out_ts_ms = db_col_int64(st, 1);
  }
  db_reset(st);
  /* An error is an error (the health probe reads the database through this): on PostgreSQL
   * a lost server shows at the step, not at the prepare. */
  return rc < 0 ? rc : 0;
}

int64_t db_event_ts(int64_t id) {
  db_stmt *st = db_prep("SELECT ts_ms FROM events WHERE id=?");
  int64_t ts = 0;
  if (!st) return 0;
  db_bind_int64(st, 1, id);
  if (db_step(st) == DB_ROW) ts = db_col_int64(st, 0);
  db_reset(st);
  return ts;
}

int db_event_ref_get(int64_t repo_id, const char *ref, char out[41]) {
  db_stmt *st = db_prep("SELECT sha FROM event_refs WHERE repo_id=? AND ref=?");
  int found = 0;
  out[0] = 0;
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, ref, -1);
  if (db_step(st) == DB_ROW) {
    db_col_copy(out, 41, st, 0);
    found = 1;
  }
  db_reset(st);
  return found;
}

int db_event_refs_each(int64_t repo_id, db_event_ref_cb cb, void *payload) {
  db_stmt *st = db_prep("SELECT ref, sha FROM event_refs WHERE repo_id=? ORDER BY ref");
  int rc = 0;
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  while (!rc && db_step(st) == DB_ROW)
    rc = cb(db_col_text(st, 0), db_col_text(st, 1), payload);
  db_reset(st);
  return rc;
}

int db_event_ref_set(int64_t repo_id, const char *ref, const char *sha) {
  db_stmt *st = db_prep("INSERT INTO event_refs(repo_id, ref, sha) VALUES(?,?,?)"
                        " ON CONFLICT(repo_id, ref) DO UPDATE SET sha=excluded.sha");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, ref, -1);
  db_bind_text(st, 3, sha, -1);
  return db_step_done(st);
}

int db_event_ref_put(int64_t repo_id, const char *ref, const char *sha) {
  if (sha[0]) return db_event_ref_set(repo_id, ref, sha);
  db_stmt *st = db_prep("DELETE FROM event_refs WHERE repo_id=? AND ref=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, ref, -1);
  return db_step_done(st);
}

int db_event_moved_from(int64_t repo_id, const char *ref, const char *sha) {
  db_stmt *st =
      db_prep("SELECT 1 FROM events WHERE repo_id=? AND ref=? AND old=? AND kind!='repo.delete'"
              " LIMIT 1");
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, ref, -1);
  db_bind_text(st, 3, sha, -1);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_event_refs_clear(int64_t repo_id) {
  db_stmt *st = db_prep("DELETE FROM event_refs WHERE repo_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  return db_step_done(st);
}

int db_event_refs_any(int64_t repo_id) {
  db_stmt *st = db_prep("SELECT 1 FROM event_refs WHERE repo_id=? LIMIT 1");
  int any;
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  any = db_step(st) == DB_ROW;
  db_reset(st);
  return any;
}

int db_cursor_get(const char *consumer, int start_at_end, int64_t *out_last,
                  int64_t *out_processed) {
  db_stmt *st = db_prep("SELECT last_id, processed FROM event_cursors WHERE consumer=?");
  int found = 0;
  *out_last = 0;
  if (out_processed) *out_processed = 0;
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, consumer, -1);
  if (db_step(st) == DB_ROW) {
    *out_last = db_col_int64(st, 0);
    if (out_processed) *out_processed = db_col_int64(st, 1);
    found = 1;
  }
  db_reset(st);
  if (found) return 0;
  if (start_at_end && db_events_last(out_last, NULL)) return HUB_ERROR;
  st = db_prep("INSERT OR IGNORE INTO event_cursors(consumer, last_id, processed, updated_ms)"
               " VALUES(?,?,0,?)");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, consumer, -1);
  db_bind_int64(st, 2, *out_last);
  db_bind_int64(st, 3, db_now_ms());
  return db_step_done(st);
}

int db_cursor_peek(const char *consumer, int64_t *out_last, int64_t *out_processed) {
  db_stmt *st = db_prep("SELECT last_id, processed FROM event_cursors WHERE consumer=?");
  *out_last = 0;
  if (out_processed) *out_processed = 0;
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, consumer, -1);
  if (db_step(st) == DB_ROW) {
    *out_last = db_col_int64(st, 0);
    if (out_processed) *out_processed = db_col_int64(st, 1);
  }
  db_reset(st);
  return 0;
}

int db_cursor_set(const char *consumer, int64_t last, int64_t n) {
  db_stmt *st = db_prep("UPDATE event_cursors SET last_id=CASE WHEN last_id>?1 THEN last_id"
                        " ELSE ?1 END, processed=processed+?2, updated_ms=?3 WHERE consumer=?4");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, last);
  db_bind_int64(st, 2, n);
  db_bind_int64(st, 3, db_now_ms());
  db_bind_text(st, 4, consumer, -1);
  return db_step_done(st);
}

static __thread int t_outer;  /* db_txn_outer_begin is open on this thread */
static __thread int t_nested; /* savepoints open inside it */

int db_txn_begin_durable(void) {
  if (t_outer) {
    int rc = db_savepoint("durable_inner");
    if (rc) return rc;
    t_nested++;
    return 0;
  }
  /* synchronous=FULL in WAL mode: the WAL is fsynced at each COMMIT (NORMAL only at
   * checkpoints, so a power cut could lose a transaction already acknowledged);
   * synchronous_commit=on on PostgreSQL. */
  return db_tx_begin(DB_TX_DURABLE);
}

int db_txn_commit_durable(void) {
  int rc;
  if (t_outer && t_nested) {
    t_nested--;
    return db_savepoint_release("durable_inner");
  }
  if ((rc = db_tx_commit())) { /* rolled back by db_tx_commit */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return hub_error_set(rc, "database commit: %s", msg);
  }
  return 0;
}

void db_txn_rollback(void) {
  if (t_outer && t_nested) {
    int saved = hub_error_code();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    t_nested--;
    db_savepoint_rollback("durable_inner");
    db_savepoint_release("durable_inner");
    if (saved) hub_error_set(saved, "%s", msg); /* keep the caller's error */
    return;
  }
  db_tx_rollback();
}

int db_txn_outer_begin(void) {
  int rc = db_txn_begin_durable();
  if (!rc) {
    t_outer = 1;
    t_nested = 0;
  }
  return rc;
}

int db_txn_outer_end(int commit) {
  t_outer = 0;
  t_nested = 0;
  if (commit) return db_txn_commit_durable();
  db_txn_rollback();
  return 0;
}
