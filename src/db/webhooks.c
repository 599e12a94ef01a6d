/* Webhooks' tables (see db/webhooks.h). */
#include "db/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "webhooks"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: webhooks, what they watch, the delivery log */
    "CREATE TABLE webhooks(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " url TEXT NOT NULL, watched TEXT NOT NULL, domains TEXT NOT NULL,"
    " secret TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0,"
    " disabled_reason TEXT NOT NULL DEFAULT '', failures INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " disabled_ms INTEGER NOT NULL DEFAULT 0, last_ok_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhooks_user ON webhooks(user_id, id);"
    "CREATE TABLE webhook_watch("
    " webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL, repo_type INTEGER NOT NULL, name TEXT NOT NULL);"
    "CREATE INDEX webhook_watch_name ON webhook_watch(name, kind, repo_type);"
    "CREATE INDEX webhook_watch_hook ON webhook_watch(webhook_id);"
    "CREATE TABLE webhook_deliveries(id INTEGER PRIMARY KEY,"
    " webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    " event_id INTEGER NOT NULL, replay_of INTEGER NOT NULL DEFAULT 0,"
    " repo_id INTEGER NOT NULL, scope TEXT NOT NULL, action TEXT NOT NULL,"
    " payload TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL DEFAULT 0, latency_ms INTEGER NOT NULL DEFAULT 0,"
    " error TEXT NOT NULL DEFAULT '', response TEXT NOT NULL DEFAULT '',"
    " owner TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries(webhook_id, event_id,"
    " scope) WHERE replay_of=0;"
    "CREATE INDEX webhook_deliveries_state ON webhook_deliveries(webhook_id, state, id);"
    "CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, id);",
};

int db_webhooks_init(void) {
  return db_migrate_module("webhooks", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

/* rc: the failed call's code (negative), else HUB_ERROR; the message it set is kept. */
static int sql_error(int rc, const char *what) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  return hub_error_set(rc < 0 ? rc : HUB_ERROR, "webhooks: %s: %s", what, msg);
}

#define WEBHOOK_COLS                                                                               \
  "id, uid, user_id, url, watched, domains, secret, disabled, disabled_reason, failures,"          \
  " created_ms, updated_ms, disabled_ms, last_ok_ms"

static void read_webhook(db_stmt *st, db_webhook *w) {
  memset(w, 0, sizeof *w);
  w->id = db_col_int64(st, 0);
  db_col_copy(w->uid, sizeof w->uid, st, 1);
  w->user_id = db_col_int64(st, 2);
  db_col_copy(w->url, sizeof w->url, st, 3);
  db_col_copy(w->watched, sizeof w->watched, st, 4);
  db_col_copy(w->domains, sizeof w->domains, st, 5);
  db_col_copy(w->secret, sizeof w->secret, st, 6);
  w->disabled = (int)db_col_int64(st, 7);
  db_col_copy(w->disabled_reason, sizeof w->disabled_reason, st, 8);
  w->failures = (int)db_col_int64(st, 9);
  w->created_ms = db_col_int64(st, 10);
  w->updated_ms = db_col_int64(st, 11);
  w->disabled_ms = db_col_int64(st, 12);
  w->last_ok_ms = db_col_int64(st, 13);
}

/* Step an INSERT … RETURNING id: 0 with *out, 1 when it inserted nothing (ON CONFLICT DO
 * NOTHING), or the error. Never steps again after an error (that would run it again). */
static int step_id(db_stmt *st, int64_t *out) {
  int s = db_step(st);
  if (s == DB_ROW) {
    *out = db_col_int64(st, 0);
    return db_step_done(st);
  }
  db_reset(st);
  return s == DB_DONE ? 1 : s;
}

/* Replace the watch rows of a webhook. */
static int put_watch(int64_t id, const db_webhook_watch *items, size_t n) {
  db_stmt *st = db_prep("DELETE FROM webhook_watch WHERE webhook_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  int rc = db_step_done(st);
  for (size_t i = 0; !rc && i < n; i++) {
    st = db_prep("INSERT INTO webhook_watch(webhook_id, kind, repo_type, name) VALUES(?,?,?,?)");
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, items[i].kind);
    db_bind_int64(st, 3, items[i].kind == DB_WATCH_REPO ? items[i].repo_type : -1);
    db_bind_text(st, 4, items[i].name, -1);
    rc = db_step_done(st);
  }
  return rc;
}

/* Run fn inside a transaction of its own, or inside the caller's. */
static int in_txn(int (*fn)(void *), void *arg) {
  if (db_in_transaction()) return fn(arg);
  int rc = db_begin_immediate();
  if (rc) return sql_error(rc, "begin");
  rc = fn(arg);
  if (rc) {
    db_rollback();
    return rc;
  }
  if ((rc = db_commit())) {
    rc = sql_error(rc, "commit");
    db_rollback();
    return rc;
  }
  return 0;
}

typedef struct {
  db_webhook *w;
  const db_webhook_watch *items;
  size_t n;
} put_args;

static int create_fn(void *arg) {
  put_args *a = arg;
  db_webhook *w = a->w;
  db_stmt *st = db_prep("SELECT count(*) FROM webhooks WHERE user_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, w->user_id);
  int s = db_step(st);
  int64_t have = s == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  if (s < 0) return s;
  if (have >= DB_WEBHOOK_PER_USER_MAX)
    return hub_error_set(HUB_EINVALID, "at most %d webhooks per user", DB_WEBHOOK_PER_USER_MAX);
  db_new_uid(w->uid);
  w->created_ms = w->updated_ms = db_now_ms();
  st = db_prep("INSERT INTO webhooks(uid, user_id, url, watched, domains, secret, disabled,"
               " disabled_reason, created_ms, updated_ms, disabled_ms)"
               " VALUES(?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, w->uid, -1);
  db_bind_int64(st, 2, w->user_id);
  db_bind_text(st, 3, w->url, -1);
  db_bind_text(st, 4, w->watched, -1);
  db_bind_text(st, 5, w->domains, -1);
  db_bind_text(st, 6, w->secret, -1);
  db_bind_int64(st, 7, w->disabled);
  db_bind_text(st, 8, w->disabled ? "manual" : "", -1);
  db_bind_int64(st, 9, w->created_ms);
  db_bind_int64(st, 10, w->updated_ms);
  db_bind_int64(st, 11, w->disabled ? w->created_ms : 0);
  int rc = step_id(st, &w->id);
  if (rc > 0) rc = hub_error_set(HUB_ERROR, "webhooks: insert returned no id");
  if (rc) return rc;
  return put_watch(w->id, a->items, a->n);
}

int db_webhook_create(db_webhook *w, const db_webhook_watch *items, size_t n) {
  put_args a = {w, items, n};
  return in_txn(create_fn, &a);
}

static int update_fn(void *arg) {
  put_args *a = arg;
  db_webhook *w = a->w;
  w->updated_ms = db_now_ms();
  db_stmt *st = db_prep("UPDATE webhooks SET url=?, watched=?, domains=?, secret=?,"
                        " updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, w->url, -1);
  db_bind_text(st, 2, w->watched, -1);
  db_bind_text(st, 3, w->domains, -1);
  db_bind_text(st, 4, w->secret, -1);
  db_bind_int64(st, 5, w->updated_ms);
  db_bind_int64(st, 6, w->id);
  int rc = db_step_done(st);
  if (!rc && a->items) rc = put_watch(w->id, a->items, a->n);
  return rc;
}

int db_webhook_update(db_webhook *w, const db_webhook_watch *items, size_t n) {
  put_args a = {w, items, n};
  return in_txn(update_fn, &a);
}

/* The row of a one-row read into *out, or HUB_ENOTFOUND. */
static int read_one_webhook(db_stmt *st, db_webhook *out) {
  int s = db_step(st);
  if (s == DB_ROW) read_webhook(st, out);
  db_reset(st);
  return s == DB_ROW ? 0 : s < 0 ? s : hub_error_set(HUB_ENOTFOUND, "Webhook not found");
}

int db_webhook_get(const char *uid, int64_t user_id, db_webhook *out) {
  db_stmt *st = db_prep("SELECT " WEBHOOK_COLS " FROM webhooks WHERE uid=?"
                        " AND (?=0 OR user_id=?)");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, uid, -1);
  db_bind_int64(st, 2, user_id);
  db_bind_int64(st, 3, user_id);
  return read_one_webhook(st, out);
}

int db_webhook_by_id(int64_t id, db_webhook *out) {
  db_stmt *st = db_prep("SELECT " WEBHOOK_COLS " FROM webhooks WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return read_one_webhook(st, out);
}

int db_webhook_list(int64_t user_id, db_webhook_cb cb, void *payload) {
  /* A statement of its own (db_prep_text): cb may read webhooks again. */
  db_stmt *st = db_prep_text("SELECT " WEBHOOK_COLS " FROM webhooks WHERE user_id=? ORDER BY id");
  if (!st) return sql_error(hub_error_code(), "list");
  db_bind_int64(st, 1, user_id);
  db_webhook *w = malloc(sizeof *w);
  int rc = w ? 0 : hub_error_set(HUB_ERROR, "out of memory"), s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW) {
    read_webhook(st, w);
    if (cb(w, payload)) break;
  }
  if (!rc && s < 0) rc = sql_error(s, "list");
  free(w);
  db_prep_text_done(st);
  return rc;
}

static int delete_fn(void *arg) {
  int64_t id = *(int64_t *)arg;
  static const char *const sql[] = {
      "DELETE FROM webhook_deliveries WHERE webhook_id=?",
      "DELETE FROM webhook_watch WHERE webhook_id=?",
      "DELETE FROM webhooks WHERE id=?",
  };
  for (size_t i = 0; i < 3; i++) {
    db_stmt *st = db_prep(sql[i]);
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, id);
    int rc = db_step_done(st);
    if (rc) return rc;
  }
  return 0;
}

int db_webhook_delete(int64_t id) {
  return in_txn(delete_fn, &id);
}

int db_webhook_set_disabled(int64_t id, int disabled, const char *reason) {
  db_stmt *st =
      db_prep("UPDATE webhooks SET disabled=?, disabled_reason=?, disabled_ms=?, updated_ms=?,"
              " failures=CASE WHEN ?1<>0 THEN failures ELSE 0 END WHERE id=?");
  if (!st) return HUB_ERROR;
  int64_t now = db_now_ms();
  db_bind_int64(st, 1, disabled ? 1 : 0);
  db_bind_text(st, 2, disabled ? (reason ? reason : "manual") : "", -1);
  db_bind_int64(st, 3, disabled ? now : 0);
  db_bind_int64(st, 4, now);
  db_bind_int64(st, 5, id);
  return db_step_done(st);
}

int db_webhook_match(int repo_type, const char *ns, const char *full, const char *domain,
                     int64_t at_ms, int64_t *out, size_t max, size_t *n) {
  *n = 0;
  /* domains is a JSON array the API writes ("[\"repo\",\"discussion\"]"): the quoted
   * domain is a substring of it (a LIKE pattern with its wildcards escaped). */
  db_stmt *st =
      db_prep("SELECT DISTINCT w.id FROM webhook_watch x JOIN webhooks w ON w.id=x.webhook_id"
              " WHERE w.disabled=0 AND w.created_ms<=? AND w.domains LIKE ? ESCAPE '\\' AND"
              " ((x.kind=0 AND x.repo_type=? AND x.name=?) OR (x.kind=1 AND x.name=?))"
              " ORDER BY w.id LIMIT ?");
  if (!st) return HUB_ERROR;
  char pattern[80];
  size_t k = 0;
  pattern[k++] = '%';
  pattern[k++] = '"';
  for (const char *c = domain; *c && k < sizeof pattern - 4; c++) {
    if (*c == '%' || *c == '_' || *c == '\\') pattern[k++] = '\\';
    pattern[k++] = *c;
  }
  pattern[k++] = '"';
  pattern[k++] = '%';
  pattern[k] = 0;
  db_bind_int64(st, 1, at_ms);
  db_bind_text(st, 2, pattern, -1);
  db_bind_int64(st, 3, repo_type);
  db_bind_text(st, 4, full, -1);
  db_bind_text(st, 5, ns, -1);
  db_bind_int64(st, 6, (int64_t)max);
  int s;
  while ((s = db_step(st)) == DB_ROW)
    out[(*n)++] = db_col_int64(st, 0);
  db_reset(st);
  return s == DB_DONE ? 0 : sql_error(s, "match");
}

/* ---- deliveries ----------------------------------------------------------------------- */

int db_webhook_delivery_add(int64_t webhook_id, int64_t event_id, int64_t replay_of,
                            int64_t repo_id, const char *scope, const char *action,
                            const char *payload, int64_t *out_id, int *out_pending) {
  *out_pending = 0;
  db_stmt *st = db_prep("SELECT 1 FROM webhook_deliveries WHERE webhook_id=? AND"
                        " state IN ('pending','waiting') LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, webhook_id);
  int s = db_step(st);
  int busy = s == DB_ROW;
  db_reset(st);
  if (s < 0) return s;
  /* A second delivery of one (webhook, event, scope) is expected (a replayed consumer
   * batch) and must not fail the caller's transaction: DO NOTHING, then no row back. */
  st = db_prep("INSERT INTO webhook_deliveries(webhook_id, event_id, replay_of, repo_id, scope,"
               " action, payload, state, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?)"
               " ON CONFLICT DO NOTHING RETURNING id");
  if (!st) return HUB_ERROR;
  int64_t now = db_now_ms();
  db_bind_int64(st, 1, webhook_id);
  db_bind_int64(st, 2, event_id);
  db_bind_int64(st, 3, replay_of);
  db_bind_int64(st, 4, repo_id);
  db_bind_text(st, 5, scope, -1);
  db_bind_text(st, 6, action, -1);
  db_bind_text(st, 7, payload, -1);
  db_bind_text(st, 8, busy ? "waiting" : "pending", -1);
  db_bind_int64(st, 9, now);
  db_bind_int64(st, 10, now);
  int64_t id = 0;
  int rc = step_id(st, &id);
  if (rc < 0) return rc;
  if (rc > 0)
    return hub_error_set(HUB_EEXISTS, "webhook delivery of event %lld (%s) already exists",
                         (long long)event_id, scope);
  if (out_id) *out_id = id;
  if (!busy) {
    st = db_prep("UPDATE webhook_deliveries SET owner='d'||id WHERE id=?");
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, id);
    if ((rc = db_step_done(st))) return rc;
  }
  *out_pending = !busy;
  return 0;
}

#define DELIVERY_COLS                                                                              \
  "id, webhook_id, event_id, replay_of, repo_id, scope, action, state, attempts, status,"          \
  " latency_ms, error, response, created_ms, updated_ms, payload, owner"

static int read_delivery(db_stmt *st, db_webhook_delivery *d) {
  memset(d, 0, sizeof *d);
  d->id = db_col_int64(st, 0);
  d->webhook_id = db_col_int64(st, 1);
  d->event_id = db_col_int64(st, 2);
  d->replay_of = db_col_int64(st, 3);
  d->repo_id = db_col_int64(st, 4);
  db_col_copy(d->scope, sizeof d->scope, st, 5);
  db_col_copy(d->action, sizeof d->action, st, 6);
  db_col_copy(d->state, sizeof d->state, st, 7);
  d->attempts = (int)db_col_int64(st, 8);
  d->status = (int)db_col_int64(st, 9);
  d->latency_ms = db_col_int64(st, 10);
  db_col_copy(d->error, sizeof d->error, st, 11);
  db_col_copy(d->response, sizeof d->response, st, 12);
  d->created_ms = db_col_int64(st, 13);
  d->updated_ms = db_col_int64(st, 14);
  db_col_copy(d->owner, sizeof d->owner, st, 16);
  const char *p = db_col_text(st, 15);
  d->payload = strdup(p ? p : "{}");
  return d->payload ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

void db_webhook_delivery_dispose(db_webhook_delivery *d) {
  free(d->payload);
  d->payload = NULL;
}

/* The row of a one-row read into *out, or HUB_ENOTFOUND. */
static int read_one_delivery(db_stmt *st, db_webhook_delivery *out) {
  int s = db_step(st), rc = s == DB_ROW ? read_delivery(st, out) : s < 0 ? s : HUB_ENOTFOUND;
  db_reset(st);
  return rc == HUB_ENOTFOUND ? hub_error_set(rc, "Delivery not found") : rc;
}

int db_webhook_delivery_get(int64_t id, db_webhook_delivery *out) {
  db_stmt *st = db_prep("SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return read_one_delivery(st, out);
}

static int put_attempt(const db_webhook_delivery *d, const char *state) {
  db_stmt *st = db_prep("UPDATE webhook_deliveries SET state=?, attempts=?, status=?,"
                        " latency_ms=?, error=?, response=?, updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, state, -1);
  db_bind_int64(st, 2, d->attempts);
  db_bind_int64(st, 3, d->status);
  db_bind_int64(st, 4, d->latency_ms);
  db_bind_text(st, 5, d->error, -1);
  db_bind_text(st, 6, d->response, -1);
  db_bind_int64(st, 7, db_now_ms());
  db_bind_int64(st, 8, d->id);
  return db_step_done(st);
}

int db_webhook_delivery_attempt(const db_webhook_delivery *d) {
  return put_attempt(d, "pending");
}

int db_webhook_delivery_owned(int64_t webhook_id, const char *owner, db_webhook_delivery *out) {
  db_stmt *st = db_prep("SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE"
                        " webhook_id=? AND state='pending' AND owner=? ORDER BY id LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, webhook_id);
  db_bind_text(st, 2, owner, -1);
  return read_one_delivery(st, out);
}

int db_webhook_delivery_finish(const db_webhook_delivery *d, int disable_after, int keep_owner,
                               int *out_disabled, int64_t *out_next, int *out_new_owner) {
  *out_disabled = 0;
  *out_next = 0;
  *out_new_owner = 0;
  int rc = put_attempt(d, d->state);
  if (rc) return rc;
  db_stmt *st;
  int64_t now = db_now_ms();
  int s;
  if (!strcmp(d->state, "ok")) {
    st = db_prep("UPDATE webhooks SET failures=0, last_ok_ms=? WHERE id=?");
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, d->webhook_id);
    if ((rc = db_step_done(st))) return rc;
  } else if (!strcmp(d->state, "failed")) {
    st = db_prep("UPDATE webhooks SET failures=failures+1 WHERE id=? RETURNING failures, disabled");
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, d->webhook_id);
    int failures = 0, disabled = 1;
    if ((s = db_step(st)) == DB_ROW) {
      failures = (int)db_col_int64(st, 0);
      disabled = (int)db_col_int64(st, 1);
    }
    db_reset(st);
    if (s < 0) return s;
    if (!disabled && disable_after > 0 && failures >= disable_after) {
      if ((rc = db_webhook_set_disabled(d->webhook_id, 1, "failures"))) return rc;
      *out_disabled = 1;
    }
  }
  st = db_prep("SELECT id FROM webhook_deliveries WHERE webhook_id=? AND state='waiting'"
               " ORDER BY id LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, d->webhook_id);
  s = db_step(st);
  int64_t next = s == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  if (s < 0) return s;
  if (!next) return 0;
  st = db_prep("UPDATE webhook_deliveries SET state='pending', updated_ms=?,"
               " owner=CASE WHEN ?<>0 THEN ? ELSE 'd'||id END WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, now);
  db_bind_int64(st, 2, keep_owner && d->owner[0]);
  db_bind_text(st, 3, d->owner, -1);
  db_bind_int64(st, 4, next);
  if ((rc = db_step_done(st))) return rc;
  *out_next = next;
  *out_new_owner = !(keep_owner && d->owner[0]);
  return 0;
}

int db_webhook_deliveries(int64_t webhook_id, int64_t before, int limit, db_webhook_delivery_cb cb,
                          void *payload) {
  /* A statement of its own (db_prep_text): cb may read deliveries again. */
  db_stmt *st = db_prep_text("SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE"
                             " webhook_id=? AND (?=0 OR id<?) ORDER BY id DESC LIMIT ?");
  if (!st) return sql_error(hub_error_code(), "deliveries");
  db_bind_int64(st, 1, webhook_id);
  db_bind_int64(st, 2, before);
  db_bind_int64(st, 3, before);
  db_bind_int64(st, 4, limit);
  db_webhook_delivery *d = malloc(sizeof *d);
  int rc = d ? 0 : hub_error_set(HUB_ERROR, "out of memory"), s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW) {
    if ((rc = read_delivery(st, d))) break;
    int stop = cb(d, payload);
    db_webhook_delivery_dispose(d);
    if (stop) break;
  }
  if (!rc && s < 0) rc = sql_error(s, "deliveries");
  free(d);
  db_prep_text_done(st);
  return rc;
}

int db_webhook_deliveries_prune(int64_t webhook_id, int keep) {
  db_stmt *st = db_prep(
      "DELETE FROM webhook_deliveries WHERE webhook_id=?1 AND state IN ('ok','failed','skipped')"
      " AND id < (SELECT id FROM webhook_deliveries WHERE webhook_id=?1 ORDER BY id DESC"
      " LIMIT 1 OFFSET ?2)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, webhook_id);
  db_bind_int64(st, 2, keep);
  return db_step_done(st);
}

int db_webhook_delivery_counts(void (*cb)(const char *state, int64_t n, void *payload),
                               void *payload) {
  db_stmt *st = db_prep("SELECT state, count(*) FROM webhook_deliveries GROUP BY state");
  if (!st) return HUB_ERROR;
  int s;
  while ((s = db_step(st)) == DB_ROW)
    cb(db_col_text(st, 0), db_col_int64(st, 1), payload);
  db_reset(st);
  return s == DB_DONE ? 0 : sql_error(s, "counts");
}
