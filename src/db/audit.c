/* The audit log's rows (see db/audit.h). */
#include "db/audit.h"

#include <stdio.h>

#include "db/db.h"
#include "util/error.h"

static const char *const STEPS[] = {
    "CREATE TABLE audit_log(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL, token TEXT NOT NULL, ip TEXT NOT NULL, action TEXT NOT NULL,"
    " ns TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX audit_ns ON audit_log(ns, id);",
};

int db_audit_init(void) {
  return db_migrate_module("audit", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

int db_audit_head(int64_t *id, char hash[65]) {
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(db_conn(), "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", -1, &st,
                     NULL);
  int found = 0;
  *id = 0;
  hash[0] = 0;
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(st, 1));
    found = 1;
  }
  sqlite3_finalize(st);
  return found;
}

int db_audit_insert(const db_audit_row *r) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  int rc = HUB_ERROR;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO audit_log(id, ts_ms, actor, token, ip, action, ns, target,"
                         " details, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_int64(st, 2, r->ts_ms);
    sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, r->details, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r->prev_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, r->hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

static void read_row(sqlite3_stmt *st, db_audit_row *r) {
#define T(i) ((const char *)sqlite3_column_text(st, i))
  r->id = sqlite3_column_int64(st, 0);
  r->ts_ms = sqlite3_column_int64(st, 1);
  r->actor = T(2);
  r->token = T(3);
  r->ip = T(4);
  r->action = T(5);
  r->ns = T(6);
  r->target = T(7);
  r->details = T(8);
  r->prev_hash = T(9);
  r->hash = T(10);
#undef T
}

int db_audit_list(const char *ns, const char *action, const char *actor, int64_t since_ms,
                  int64_t until_ms, int64_t before_id, int limit, db_audit_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db_conn(),
      "SELECT id, ts_ms, actor, token, ip, action, ns, target, details, prev_hash, hash "
      "FROM audit_log WHERE (?1 IS NULL OR ns=?1) AND (?2 IS NULL OR action LIKE ?2 || '%') "
      "AND (?3 IS NULL OR actor=?3) AND (?4=0 OR ts_ms>=?4) AND (?5=0 OR ts_ms<?5) "
      "AND (?6=0 OR id<?6) ORDER BY id DESC LIMIT ?7",
      -1, &st, NULL);
  if (rc != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "audit query: %s", sqlite3_errmsg(db_conn()));
  if (ns) sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
  if (action) sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
  if (actor) sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, since_ms);
  sqlite3_bind_int64(st, 5, until_ms);
  sqlite3_bind_int64(st, 6, before_id);
  sqlite3_bind_int(st, 7, limit > 0 ? limit : 100);
  rc = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    db_audit_row r;
    read_row(st, &r);
    rc = cb(&r, payload);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_audit_each(db_audit_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db_conn(),
                         "SELECT id, ts_ms, actor, token, ip, action, ns, target, details, "
                         "prev_hash, hash FROM audit_log ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "audit: %s", sqlite3_errmsg(db_conn()));
  int rc = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    db_audit_row r;
    read_row(st, &r);
    rc = cb(&r, payload);
  }
  sqlite3_finalize(st);
  return rc;
}
