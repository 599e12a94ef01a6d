/* Webhooks' tables (see db/webhooks.h). */
#include "db/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/internal.h"
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

static int sql_error(const char *what) {
  sqlite3 *db = db_conn();
  return hub_error_set(HUB_ERROR, "webhooks: %s: %s", what, db ? sqlite3_errmsg(db) : "no db");
}

#define WEBHOOK_COLS                                                                               \
  "id, uid, user_id, url, watched, domains, secret, disabled, disabled_reason, failures,"          \
  " created_ms, updated_ms, disabled_ms, last_ok_ms"

static void read_webhook(sqlite3_stmt *st, db_webhook *w) {
  memset(w, 0, sizeof *w);
  w->id = sqlite3_column_int64(st, 0);
  db__copy(w->uid, sizeof w->uid, st, 1);
  w->user_id = sqlite3_column_int64(st, 2);
  db__copy(w->url, sizeof w->url, st, 3);
  db__copy(w->watched, sizeof w->watched, st, 4);
  db__copy(w->domains, sizeof w->domains, st, 5);
  db__copy(w->secret, sizeof w->secret, st, 6);
  w->disabled = sqlite3_column_int(st, 7);
  db__copy(w->disabled_reason, sizeof w->disabled_reason, st, 8);
  w->failures = sqlite3_column_int(st, 9);
  w->created_ms = sqlite3_column_int64(st, 10);
  w->updated_ms = sqlite3_column_int64(st, 11);
  w->disabled_ms = sqlite3_column_int64(st, 12);
  w->last_ok_ms = sqlite3_column_int64(st, 13);
}

/* Replace the watch rows of a webhook. */
static int put_watch(int64_t id, const db_webhook_watch *items, size_t n) {
  sqlite3_stmt *st = db__stmt("DELETE FROM webhook_watch WHERE webhook_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int rc = db__step_done(st);
  for (size_t i = 0; !rc && i < n; i++) {
    st = db__stmt("INSERT INTO webhook_watch(webhook_id, kind, repo_type, name) VALUES(?,?,?,?)");
    if (!st) return HUB_ERROR;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, items[i].kind);
    sqlite3_bind_int(st, 3, items[i].kind == DB_WATCH_REPO ? items[i].repo_type : -1);
    sqlite3_bind_text(st, 4, items[i].name, -1, SQLITE_STATIC);
    rc = db__step_done(st);
  }
  return rc;
}

/* Run fn inside a transaction of its own, or inside the caller's. */
static int in_txn(int (*fn)(void *), void *arg) {
  if (db_in_transaction()) return fn(arg);
  if (db_begin_immediate()) return sql_error("begin");
  int rc = fn(arg);
  if (rc || db_commit()) {
    db_rollback();
    return rc ? rc : sql_error("commit");
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
  sqlite3_stmt *st = db__stmt("SELECT count(*) FROM webhooks WHERE user_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, w->user_id);
  int64_t have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (have >= DB_WEBHOOK_PER_USER_MAX)
    return hub_error_set(HUB_EINVALID, "at most %d webhooks per user", DB_WEBHOOK_PER_USER_MAX);
  db_new_uid(w->uid);
  w->created_ms = w->updated_ms = db_now_ms();
  st = db__stmt("INSERT INTO webhooks(uid, user_id, url, watched, domains, secret, disabled,"
                " disabled_reason, created_ms, updated_ms, disabled_ms)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, w->uid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, w->user_id);
  sqlite3_bind_text(st, 3, w->url, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, w->watched, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, w->domains, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, w->secret, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 7, w->disabled);
  sqlite3_bind_text(st, 8, w->disabled ? "manual" : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 9, w->created_ms);
  sqlite3_bind_int64(st, 10, w->updated_ms);
  sqlite3_bind_int64(st, 11, w->disabled ? w->created_ms : 0);
  int rc = db__step_done(st);
  if (rc) return rc;
  w->id = sqlite3_last_insert_rowid(db_conn());
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
  sqlite3_stmt *st = db__stmt("UPDATE webhooks SET url=?, watched=?, domains=?, secret=?,"
                              " updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, w->url, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, w->watched, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->domains, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, w->secret, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, w->updated_ms);
  sqlite3_bind_int64(st, 6, w->id);
  int rc = db__step_done(st);
  if (!rc && a->items) rc = put_watch(w->id, a->items, a->n);
  return rc;
}

int db_webhook_update(db_webhook *w, const db_webhook_watch *items, size_t n) {
  put_args a = {w, items, n};
  return in_txn(update_fn, &a);
}

int db_webhook_get(const char *uid, int64_t user_id, db_webhook *out) {
  sqlite3_stmt *st = db__stmt("SELECT " WEBHOOK_COLS " FROM webhooks WHERE uid=?"
                              " AND (?=0 OR user_id=?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int64(st, 3, user_id);
  int rc = HUB_ENOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) {
    read_webhook(st, out);
    rc = 0;
  }
  sqlite3_reset(st);
  return rc == HUB_ENOTFOUND ? hub_error_set(rc, "Webhook not found") : rc;
}

int db_webhook_by_id(int64_t id, db_webhook *out) {
  sqlite3_stmt *st = db__stmt("SELECT " WEBHOOK_COLS " FROM webhooks WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int rc = HUB_ENOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) {
    read_webhook(st, out);
    rc = 0;
  }
  sqlite3_reset(st);
  return rc == HUB_ENOTFOUND ? hub_error_set(rc, "Webhook not found") : rc;
}

int db_webhook_list(int64_t user_id, db_webhook_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  sqlite3 *db = db_conn();
  if (!db ||
      sqlite3_prepare_v2(db, "SELECT " WEBHOOK_COLS " FROM webhooks WHERE user_id=? ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return sql_error("list");
  sqlite3_bind_int64(st, 1, user_id);
  db_webhook *w = malloc(sizeof *w);
  int rc = w ? 0 : hub_error_set(HUB_ERROR, "out of memory"), s = SQLITE_DONE;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
    read_webhook(st, w);
    if (cb(w, payload)) break;
  }
  if (!rc && s != SQLITE_ROW && s != SQLITE_DONE) rc = sql_error("list");
  free(w);
  sqlite3_finalize(st);
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
    sqlite3_stmt *st = db__stmt(sql[i]);
    if (!st) return HUB_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = db__step_done(st);
    if (rc) return rc;
  }
  return 0;
}

int db_webhook_delete(int64_t id) {
  return in_txn(delete_fn, &id);
}

int db_webhook_set_disabled(int64_t id, int disabled, const char *reason) {
  sqlite3_stmt *st =
      db__stmt("UPDATE webhooks SET disabled=?, disabled_reason=?, disabled_ms=?, updated_ms=?,"
               " failures=CASE WHEN ?1 THEN failures ELSE 0 END WHERE id=?");
  if (!st) return HUB_ERROR;
  int64_t now = db_now_ms();
  sqlite3_bind_int(st, 1, disabled ? 1 : 0);
  sqlite3_bind_text(st, 2, disabled ? (reason ? reason : "manual") : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, disabled ? now : 0);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, id);
  return db__step_done(st);
}

int db_webhook_match(int repo_type, const char *ns, const char *full, const char *domain,
                     int64_t at_ms, int64_t *out, size_t max, size_t *n) {
  *n = 0;
  sqlite3_stmt *st =
      db__stmt("SELECT DISTINCT w.id FROM webhook_watch x JOIN webhooks w ON w.id=x.webhook_id"
               " WHERE w.disabled=0 AND w.created_ms<=? AND instr(w.domains, ?) > 0 AND"
               " ((x.kind=0 AND x.repo_type=? AND x.name=?) OR (x.kind=1 AND x.name=?))"
               " ORDER BY w.id LIMIT ?");
  if (!st) return HUB_ERROR;
  char quoted[32];
  snprintf(quoted, sizeof quoted, "\"%s\"", domain);
  sqlite3_bind_int64(st, 1, at_ms);
  sqlite3_bind_text(st, 2, quoted, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, repo_type);
  sqlite3_bind_text(st, 4, full, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, ns, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, (int64_t)max);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW)
    out[(*n)++] = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return s == SQLITE_DONE ? 0 : sql_error("match");
}

/* ---- deliveries ----------------------------------------------------------------------- */

int db_webhook_delivery_add(int64_t webhook_id, int64_t event_id, int64_t replay_of,
                            int64_t repo_id, const char *scope, const char *action,
                            const char *payload, int64_t *out_id, int *out_pending) {
  *out_pending = 0;
  sqlite3_stmt *st = db__stmt("SELECT 1 FROM webhook_deliveries WHERE webhook_id=? AND"
                              " state IN ('pending','waiting') LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, webhook_id);
  int busy = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  st = db__stmt("INSERT INTO webhook_deliveries(webhook_id, event_id, replay_of, repo_id, scope,"
                " action, payload, state, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  int64_t now = db_now_ms();
  sqlite3_bind_int64(st, 1, webhook_id);
  sqlite3_bind_int64(st, 2, event_id);
  sqlite3_bind_int64(st, 3, replay_of);
  sqlite3_bind_int64(st, 4, repo_id);
  sqlite3_bind_text(st, 5, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, action, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 7, payload, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, busy ? "waiting" : "pending", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 9, now);
  sqlite3_bind_int64(st, 10, now);
  int rc = db__step_done(st);
  if (rc) return rc;
  int64_t id = sqlite3_last_insert_rowid(db_conn());
  if (out_id) *out_id = id;
  if (!busy) {
    st = db__stmt("UPDATE webhook_deliveries SET owner='d'||id WHERE id=?");
    if (!st) return HUB_ERROR;
    sqlite3_bind_int64(st, 1, id);
    if ((rc = db__step_done(st))) return rc;
  }
  *out_pending = !busy;
  return 0;
}

#define DELIVERY_COLS                                                                              \
  "id, webhook_id, event_id, replay_of, repo_id, scope, action, state, attempts, status,"          \
  " latency_ms, error, response, created_ms, updated_ms, payload, owner"

static int read_delivery(sqlite3_stmt *st, db_webhook_delivery *d) {
  memset(d, 0, sizeof *d);
  d->id = sqlite3_column_int64(st, 0);
  d->webhook_id = sqlite3_column_int64(st, 1);
  d->event_id = sqlite3_column_int64(st, 2);
  d->replay_of = sqlite3_column_int64(st, 3);
  d->repo_id = sqlite3_column_int64(st, 4);
  db__copy(d->scope, sizeof d->scope, st, 5);
  db__copy(d->action, sizeof d->action, st, 6);
  db__copy(d->state, sizeof d->state, st, 7);
  d->attempts = sqlite3_column_int(st, 8);
  d->status = sqlite3_column_int(st, 9);
  d->latency_ms = sqlite3_column_int64(st, 10);
  db__copy(d->error, sizeof d->error, st, 11);
  db__copy(d->response, sizeof d->response, st, 12);
  d->created_ms = sqlite3_column_int64(st, 13);
  d->updated_ms = sqlite3_column_int64(st, 14);
  db__copy(d->owner, sizeof d->owner, st, 16);
  const char *p = (const char *)sqlite3_column_text(st, 15);
  d->payload = strdup(p ? p : "{}");
  return d->payload ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

void db_webhook_delivery_dispose(db_webhook_delivery *d) {
  free(d->payload);
  d->payload = NULL;
}

int db_webhook_delivery_get(int64_t id, db_webhook_delivery *out) {
  sqlite3_stmt *st = db__stmt("SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int rc = HUB_ENOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) rc = read_delivery(st, out);
  sqlite3_reset(st);
  return rc == HUB_ENOTFOUND ? hub_error_set(rc, "Delivery not found") : rc;
}

static int put_attempt(const db_webhook_delivery *d, const char *state) {
  sqlite3_stmt *st = db__stmt("UPDATE webhook_deliveries SET state=?, attempts=?, status=?,"
                              " latency_ms=?, error=?, response=?, updated_ms=? WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, d->attempts);
  sqlite3_bind_int(st, 3, d->status);
  sqlite3_bind_int64(st, 4, d->latency_ms);
  sqlite3_bind_text(st, 5, d->error, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, d->response, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, db_now_ms());
  sqlite3_bind_int64(st, 8, d->id);
  return db__step_done(st);
}

int db_webhook_delivery_attempt(const db_webhook_delivery *d) {
  return put_attempt(d, "pending");
}

int db_webhook_delivery_owned(int64_t webhook_id, const char *owner, db_webhook_delivery *out) {
  sqlite3_stmt *st = db__stmt("SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE"
                              " webhook_id=? AND state='pending' AND owner=? ORDER BY id LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, webhook_id);
  sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
  int rc = HUB_ENOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) rc = read_delivery(st, out);
  sqlite3_reset(st);
  return rc == HUB_ENOTFOUND ? hub_error_set(rc, "Delivery not found") : rc;
}

int db_webhook_delivery_finish(const db_webhook_delivery *d, int disable_after, int keep_owner,
                               int *out_disabled, int64_t *out_next, int *out_new_owner) {
  *out_disabled = 0;
  *out_next = 0;
  *out_new_owner = 0;
  int rc = put_attempt(d, d->state);
  if (rc) return rc;
  sqlite3_stmt *st;
  int64_t now = db_now_ms();
  if (!strcmp(d->state, "ok")) {
    st = db__stmt("UPDATE webhooks SET failures=0, last_ok_ms=? WHERE id=?");
    if (!st) return HUB_ERROR;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, d->webhook_id);
    if ((rc = db__step_done(st))) return rc;
  } else if (!strcmp(d->state, "failed")) {
    st =
        db__stmt("UPDATE webhooks SET failures=failures+1 WHERE id=? RETURNING failures, disabled");
    if (!st) return HUB_ERROR;
    sqlite3_bind_int64(st, 1, d->webhook_id);
    int failures = 0, disabled = 1;
    if (sqlite3_step(st) == SQLITE_ROW) {
      failures = sqlite3_column_int(st, 0);
      disabled = sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    if (!disabled && disable_after > 0 && failures >= disable_after) {
      if ((rc = db_webhook_set_disabled(d->webhook_id, 1, "failures"))) return rc;
      *out_disabled = 1;
    }
  }
  st = db__stmt("SELECT id FROM webhook_deliveries WHERE webhook_id=? AND state='waiting'"
                " ORDER BY id LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, d->webhook_id);
  int64_t next = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (!next) return 0;
  st = db__stmt("UPDATE webhook_deliveries SET state='pending', updated_ms=?,"
                " owner=CASE WHEN ? THEN ? ELSE 'd'||id END WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, keep_owner && d->owner[0]);
  sqlite3_bind_text(st, 3, d->owner, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, next);
  if ((rc = db__step_done(st))) return rc;
  *out_next = next;
  *out_new_owner = !(keep_owner && d->owner[0]);
  return 0;
}

int db_webhook_deliveries(int64_t webhook_id, int64_t before, int limit, db_webhook_delivery_cb cb,
                          void *payload) {
  sqlite3_stmt *st = NULL;
  sqlite3 *db = db_conn();
  if (!db || sqlite3_prepare_v2(db,
                                "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE"
                                " webhook_id=? AND (?=0 OR id<?) ORDER BY id DESC LIMIT ?",
                                -1, &st, NULL) != SQLITE_OK)
    return sql_error("deliveries");
  sqlite3_bind_int64(st, 1, webhook_id);
  sqlite3_bind_int64(st, 2, before);
  sqlite3_bind_int64(st, 3, before);
  sqlite3_bind_int(st, 4, limit);
  db_webhook_delivery *d = malloc(sizeof *d);
  int rc = d ? 0 : hub_error_set(HUB_ERROR, "out of memory"), s = SQLITE_DONE;
  while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
    if ((rc = read_delivery(st, d))) break;
    int stop = cb(d, payload);
    db_webhook_delivery_dispose(d);
    if (stop) break;
  }
  if (!rc && s != SQLITE_ROW && s != SQLITE_DONE) rc = sql_error("deliveries");
  free(d);
  sqlite3_finalize(st);
  return rc;
}

int db_webhook_deliveries_prune(int64_t webhook_id, int keep) {
  sqlite3_stmt *st = db__stmt(
      "DELETE FROM webhook_deliveries WHERE webhook_id=?1 AND state IN ('ok','failed','skipped')"
      " AND id < (SELECT id FROM webhook_deliveries WHERE webhook_id=?1 ORDER BY id DESC"
      " LIMIT 1 OFFSET ?2)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, webhook_id);
  sqlite3_bind_int(st, 2, keep);
  return db__step_done(st);
}

int db_webhook_delivery_counts(void (*cb)(const char *state, int64_t n, void *payload),
                               void *payload) {
  sqlite3_stmt *st = db__stmt("SELECT state, count(*) FROM webhook_deliveries GROUP BY state");
  if (!st) return HUB_ERROR;
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW)
    cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), payload);
  sqlite3_reset(st);
  return s == SQLITE_DONE ? 0 : sql_error("counts");
}
