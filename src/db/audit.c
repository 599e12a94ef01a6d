/* The audit log's rows (see db/audit.h). */
#include "db/audit.h"

#include <stdint.h>

#include "db/db.h"
#include "db/stmt.h"
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
  db_stmt *st = db_prep("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1");
  int found = 0;
  *id = 0;
  hash[0] = 0;
  if (st && db_step(st) == DB_ROW) {
    *id = db_col_int64(st, 0);
    db_col_copy(hash, 65, st, 1);
    found = 1;
  }
  if (st) db_reset(st);
  return found;
}

int db_audit_insert(const db_audit_row *r) {
  db_stmt *st = db_prep("INSERT INTO audit_log(id, ts_ms, actor, token, ip, action, ns, target,"
                        " details, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, r->id);
  db_bind_int64(st, 2, r->ts_ms);
  db_bind_text(st, 3, r->actor, -1);
  db_bind_text(st, 4, r->token, -1);
  db_bind_text(st, 5, r->ip, -1);
  db_bind_text(st, 6, r->action, -1);
  db_bind_text(st, 7, r->ns, -1);
  db_bind_text(st, 8, r->target, -1);
  db_bind_text(st, 9, r->details, -1);
  db_bind_text(st, 10, r->prev_hash, -1);
  db_bind_text(st, 11, r->hash, -1);
  return db_step_done(st);
}

static void read_row(db_stmt *st, db_audit_row *r) {
#define T(i) db_col_text(st, i)
  r->id = db_col_int64(st, 0);
  r->ts_ms = db_col_int64(st, 1);
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

/* Rows of st to cb until cb returns nonzero; then st is reset. *n counts the rows and *last
 * gets the last one's id. */
static int each_row(db_stmt *st, db_audit_cb cb, void *payload, int *n, int64_t *last) {
  int rc = 0, s = 0;
  while (!rc && (s = db_step(st)) == DB_ROW) {
    db_audit_row r;
    read_row(st, &r);
    if (n) ++*n;
    if (last) *last = r.id;
    rc = cb(&r, payload);
  }
  db_reset(st);
  return rc ? rc : s < 0 ? s : 0;
}

int db_audit_list(const char *ns, const char *action, const char *actor, int64_t since_ms,
                  int64_t until_ms, int64_t before_id, int limit, db_audit_cb cb, void *payload) {
  /* `action` is a prefix, matched exactly (case-sensitive, no wildcards) whatever the
   * collation: its first ?8 characters equal ?2 (both engines count characters, not bytes).
   * PostgreSQL takes a parameter's type from its first use: `?N IS NULL` comes after. */
  db_stmt *st =
      db_prep("SELECT id, ts_ms, actor, token, ip, action, ns, target, details, prev_hash, hash "
              "FROM audit_log WHERE (ns=?1 OR ?1 IS NULL) "
              "AND (substr(action, 1, CAST(?8 AS INTEGER))=?2 OR ?2 IS NULL) "
              "AND (actor=?3 OR ?3 IS NULL) AND (?4=0 OR ts_ms>=?4) AND (?5=0 OR ts_ms<?5) "
              "AND (?6=0 OR id<?6) ORDER BY id DESC LIMIT ?7");
  if (!st) return HUB_ERROR;
  if (ns) db_bind_text(st, 1, ns, -1);
  int64_t chars = 0;
  for (const char *p = action; p && *p; p++)
    chars += ((unsigned char)*p & 0xC0) != 0x80;
  if (action) db_bind_text(st, 2, action, -1);
  db_bind_int64(st, 8, chars);
  if (actor) db_bind_text(st, 3, actor, -1);
  db_bind_int64(st, 4, since_ms);
  db_bind_int64(st, 5, until_ms);
  db_bind_int64(st, 6, before_id);
  db_bind_int64(st, 7, limit > 0 ? limit : 100);
  return each_row(st, cb, payload, NULL, NULL);
}

/* The whole log in id order, a page at a time (keyset): PostgreSQL reads a whole result
 * into memory. */
#define AUDIT_PAGE 512

int db_audit_each(db_audit_cb cb, void *payload) {
  int rc = 0, n = AUDIT_PAGE;
  for (int64_t after = INT64_MIN; !rc && n == AUDIT_PAGE;) {
    db_stmt *st = db_prep("SELECT id, ts_ms, actor, token, ip, action, ns, target, details, "
                          "prev_hash, hash FROM audit_log WHERE id>? ORDER BY id LIMIT ?");
    if (!st) return HUB_ERROR;
    db_bind_int64(st, 1, after);
    db_bind_int64(st, 2, AUDIT_PAGE);
    n = 0;
    rc = each_row(st, cb, payload, &n, &after);
  }
  return rc;
}
