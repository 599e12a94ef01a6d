/* SQL of the jobs table (db/jobs.h). */
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/jobs.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "jobs"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: the queue. A live (queued/running) job is unique per kind + key. */
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, payload TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL DEFAULT 5, run_after INTEGER NOT NULL DEFAULT 0,"
    " lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE INDEX jobs_ready ON jobs(state, run_after);"
    "CREATE INDEX jobs_kind ON jobs(kind, state);"
    "CREATE UNIQUE INDEX jobs_live_key ON jobs(kind, key)"
    " WHERE key IS NOT NULL AND state IN ('queued', 'running');",
};

int db_jobs_init(void) {
  return db_migrate_module("jobs", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

#define JOB_COLS                                                                                   \
  "id, kind, coalesce(key, ''), payload, state, attempts, max_attempts, run_after, lease_until,"   \
  " created, updated, coalesce(lease_owner, ''), coalesce(last_error, '')"

static void read_job(db_stmt *st, db_job *j) {
  memset(j, 0, sizeof *j);
  j->id = db_col_int64(st, 0);
  db_col_copy(j->kind, sizeof j->kind, st, 1);
  db_col_copy(j->key, sizeof j->key, st, 2);
  db_col_copy(j->payload, sizeof j->payload, st, 3);
  db_col_copy(j->state, sizeof j->state, st, 4);
  j->attempts = (int)db_col_int64(st, 5);
  j->max_attempts = (int)db_col_int64(st, 6);
  j->run_after = db_col_int64(st, 7);
  j->lease_until = db_col_int64(st, 8);
  j->created = db_col_int64(st, 9);
  j->updated = db_col_int64(st, 10);
  db_col_copy(j->lease_owner, sizeof j->lease_owner, st, 11);
  db_col_copy(j->last_error, sizeof j->last_error, st, 12);
}

/* A write transaction of its own, or a savepoint inside the caller's. */
static int tx_begin(int *nested) {
  *nested = db_tx_active();
  return *nested ? db_savepoint("jobs") : db_tx_begin(DB_TX_WRITE);
}

static int tx_end(int nested, int rc) {
  if (!rc) {
    if (!nested) return db_tx_commit(); /* it rolls back by itself when COMMIT fails */
    if (!(rc = db_savepoint_release("jobs"))) return 0;
  }
  if (nested) {
    db_savepoint_rollback("jobs");
    db_savepoint_release("jobs");
  } else {
    db_tx_rollback();
  }
  return rc;
}

int db_job_enqueue(const char *kind, const char *key, const char *payload, int max_attempts,
                   int max_queued, int64_t run_after, int64_t *out_id) {
  if (key && !*key) key = NULL;
  if (!payload) payload = "";
  if (!kind || !*kind || strlen(kind) > DB_JOB_KIND_MAX || (key && strlen(key) > DB_JOB_KEY_MAX) ||
      strlen(payload) > DB_JOB_PAYLOAD_MAX)
    return hub_error_set(HUB_EINVALID, "job kind, key or payload too long");
  int nested, rc = tx_begin(&nested);
  if (rc) return rc;
  db_stmt *st;
  if (key) {
    st = db_prep("SELECT id FROM jobs WHERE kind=? AND key=? AND state IN ('queued', 'running',"
                 " 'dead') LIMIT 1");
    if (!st) return tx_end(nested, HUB_ERROR);
    db_bind_text(st, 1, kind, -1);
    db_bind_text(st, 2, key, -1);
    if (db_step(st) == DB_ROW) {
      if (out_id) *out_id = db_col_int64(st, 0);
      db_reset(st);
      tx_end(nested, HUB_EEXISTS);
      return hub_error_set(HUB_EEXISTS, "a job %s %s exists", kind, key);
    }
    db_reset(st);
  }
  if (max_queued > 0) {
    st = db_prep("SELECT count(*) FROM jobs WHERE kind=? AND state='queued'");
    if (!st) return tx_end(nested, HUB_ERROR);
    db_bind_text(st, 1, kind, -1);
    int64_t n = db_step(st) == DB_ROW ? db_col_int64(st, 0) : 0;
    db_reset(st);
    if (n >= max_queued) {
      tx_end(nested, HUB_EBUSY);
      return hub_error_set(HUB_EBUSY, "the %s queue is full (%d jobs)", kind, max_queued);
    }
  }
  int64_t now = db_now_ms();
  st = db_prep("INSERT INTO jobs(kind, key, payload, max_attempts, run_after, created, updated)"
               " VALUES(?, ?, ?, ?, ?, ?, ?) RETURNING id");
  if (!st) return tx_end(nested, HUB_ERROR);
  db_bind_text(st, 1, kind, -1);
  if (key)
    db_bind_text(st, 2, key, -1);
  else
    db_bind_null(st, 2);
  db_bind_text(st, 3, payload, -1);
  db_bind_int64(st, 4, max_attempts > 0 ? max_attempts : 1);
  db_bind_int64(st, 5, run_after > 0 ? run_after : now);
  db_bind_int64(st, 6, now);
  db_bind_int64(st, 7, now);
  rc = db_step(st);
  if (rc == DB_ROW && out_id) *out_id = db_col_int64(st, 0);
  db_reset(st);
  rc = rc == DB_ROW ? 0 : rc < 0 ? rc : hub_error_set(HUB_ERROR, "jobs: no id");
  return tx_end(nested, rc);
}

int db_job_claim(const char *const *kinds, int n, const char *owner, int64_t lease_ms,
                 db_job *out) {
  char sql[1024];
  if (n <= 0) return HUB_ENOTFOUND;
  if (n > 32) n = 32;
  /* Oldest ready job first; the kind list varies with the runner's free slots. */
  size_t o = (size_t)snprintf(sql, sizeof sql,
                              "SELECT " JOB_COLS " FROM jobs WHERE ((state='queued' AND "
                              "run_after<=?1) OR (state='running' AND lease_until<?1)) AND "
                              "kind IN (");
  for (int i = 0; i < n && o < sizeof sql; i++)
    o += (size_t)snprintf(sql + o, sizeof sql - o, "%s?%d", i ? ", " : "", i + 2);
  if (o < sizeof sql) snprintf(sql + o, sizeof sql - o, ") ORDER BY run_after, id LIMIT 1");
  int nested, rc = tx_begin(&nested);
  if (rc) return rc;
  int64_t now = db_now_ms();
  for (;;) {
    db_stmt *st = db_prep_text(sql);
    if (!st) return tx_end(nested, HUB_ERROR);
    db_bind_int64(st, 1, now);
    for (int i = 0; i < n; i++)
      db_bind_text(st, i + 2, kinds[i], -1);
    int s = db_step(st);
    if (s == DB_ROW) read_job(st, out);
    db_prep_text_done(st);
    if (s != DB_ROW) {
      rc = s == DB_DONE ? HUB_ENOTFOUND : s;
      break;
    }
    db_stmt *up;
    if (!strcmp(out->state, "running") && out->attempts >= out->max_attempts) {
      /* Its node died while running it, and that was its last attempt. */
      up = db_prep("UPDATE jobs SET state='dead', lease_owner=NULL, updated=?2,"
                   " last_error='lease expired on its last attempt' WHERE id=?1");
      if (!up) return tx_end(nested, HUB_ERROR);
      db_bind_int64(up, 1, out->id);
      db_bind_int64(up, 2, now);
      if ((rc = db_step_done(up))) break;
      continue;
    }
    up = db_prep("UPDATE jobs SET state='running', attempts=attempts+1, lease_owner=?2,"
                 " lease_until=?3, updated=?4 WHERE id=?1");
    if (!up) return tx_end(nested, HUB_ERROR);
    db_bind_int64(up, 1, out->id);
    db_bind_text(up, 2, owner, -1);
    db_bind_int64(up, 3, now + lease_ms);
    db_bind_int64(up, 4, now);
    if (!(rc = db_step_done(up))) {
      snprintf(out->state, sizeof out->state, "running");
      snprintf(out->lease_owner, sizeof out->lease_owner, "%s", owner);
      out->attempts++;
      out->lease_until = now + lease_ms;
    }
    break;
  }
  if (rc == HUB_ENOTFOUND) {
    tx_end(nested, 0);
    return HUB_ENOTFOUND;
  }
  return tx_end(nested, rc);
}

int db_job_renew(const char *owner, int64_t lease_ms) {
  db_stmt *st = db_prep("UPDATE jobs SET lease_until=? WHERE state='running' AND lease_owner=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, db_now_ms() + lease_ms);
  db_bind_text(st, 2, owner, -1);
  return db_step_done(st);
}

int db_job_finish(int64_t id, const char *owner, const char *state, int64_t run_after,
                  const char *err) {
  db_stmt *st =
      db_prep("UPDATE jobs SET state=?3, run_after=?4, last_error=coalesce(?5, last_error),"
              " lease_owner=NULL, lease_until=0, updated=?6"
              " WHERE id=?1 AND lease_owner=?2 AND state='running'");
  if (!st) return HUB_ERROR;
  char e[DB_JOB_ERROR_MAX + 1];
  if (err) snprintf(e, sizeof e, "%s", err);
  db_bind_int64(st, 1, id);
  db_bind_text(st, 2, owner, -1);
  db_bind_text(st, 3, state, -1);
  db_bind_int64(st, 4, run_after);
  if (err)
    db_bind_text(st, 5, e, -1);
  else
    db_bind_null(st, 5);
  db_bind_int64(st, 6, db_now_ms());
  int rc = db_step_done(st);
  if (!rc && db_changes() == 0)
    return hub_error_set(HUB_ECONFLICT, "job %lld is no longer held by this node", (long long)id);
  return rc;
}

int db_job_get(int64_t id, db_job *out) {
  db_stmt *st = db_prep("SELECT " JOB_COLS " FROM jobs WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  int s = db_step(st);
  if (s == DB_ROW) read_job(st, out);
  db_reset(st);
  if (s == DB_ROW) return 0;
  return hub_error_set(HUB_ENOTFOUND, "no job %lld", (long long)id);
}

int db_job_list(const char *state, const char *kind, int limit, db_job_cb cb, void *payload) {
  /* "Any" is a flag (?4, ?5), not `?1 IS NULL`: PostgreSQL cannot type a parameter that
   * is first seen by IS NULL. */
  db_stmt *st = db_prep("SELECT " JOB_COLS " FROM jobs WHERE (?4=0 OR state=?1)"
                        " AND (?5=0 OR kind=?2) ORDER BY id DESC LIMIT ?3");
  if (!st) return HUB_ERROR;
  if (state)
    db_bind_text(st, 1, state, -1);
  else
    db_bind_null(st, 1);
  if (kind)
    db_bind_text(st, 2, kind, -1);
  else
    db_bind_null(st, 2);
  db_bind_int64(st, 3, limit > 0 ? limit : 100);
  db_bind_int64(st, 4, state != NULL);
  db_bind_int64(st, 5, kind != NULL);
  int rc = 0, s;
  db_job j;
  while ((s = db_step(st)) == DB_ROW) {
    read_job(st, &j);
    if ((rc = cb(&j, payload))) break;
  }
  if (!rc && s != DB_DONE && s != DB_ROW) rc = s;
  db_reset(st);
  return rc;
}

int db_job_retry(int64_t id) {
  db_job j;
  int rc = db_job_get(id, &j);
  if (rc) return rc;
  if (strcmp(j.state, "dead") && strcmp(j.state, "cancelled"))
    return hub_error_set(HUB_ECONFLICT, "job %lld is %s, not dead or cancelled", (long long)id,
                         j.state);
  db_stmt *st = db_prep("UPDATE jobs SET state='queued', attempts=0, run_after=?2,"
                        " updated=?2 WHERE id=?1 AND state IN ('dead', 'cancelled')");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  db_bind_int64(st, 2, db_now_ms());
  rc = db_step_done(st);
  if (rc == HUB_EEXISTS)
    return hub_error_set(HUB_EEXISTS, "a live job %s %s already exists", j.kind, j.key);
  return rc;
}

int db_job_cancel(int64_t id) {
  db_job j;
  int rc = db_job_get(id, &j);
  if (rc) return rc;
  db_stmt *st = db_prep("UPDATE jobs SET state='cancelled', lease_owner=NULL, updated=?2"
                        " WHERE id=?1 AND state IN ('queued', 'running', 'dead')");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  db_bind_int64(st, 2, db_now_ms());
  if ((rc = db_step_done(st))) return rc;
  if (db_changes() == 0)
    return hub_error_set(HUB_ECONFLICT, "job %lld is already %s", (long long)id, j.state);
  return 0;
}

int db_job_counts(db_job_count_cb cb, void *payload) {
  db_stmt *st = db_prep("SELECT kind, state, count(*), min(created) FROM jobs"
                        " GROUP BY kind, state ORDER BY kind, state");
  if (!st) return HUB_ERROR;
  int s;
  while ((s = db_step(st)) == DB_ROW)
    cb(db_col_text(st, 0), db_col_text(st, 1), db_col_int64(st, 2), db_col_int64(st, 3), payload);
  db_reset(st);
  return s == DB_DONE ? 0 : s;
}

int db_job_prune(int64_t before) {
  db_stmt *st = db_prep("DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND updated<?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, before);
  return db_step_done(st);
}
