/* Users, orgs, memberships and tokens. */
#include "db/db.h"
#include "db/internal.h"

#include <string.h>

#include "util/error.h"

#define ACC_COLS "id, uid, kind, name, fullname, email, password_hash, is_admin, created_ms"
#define ACC_COLS_A                                                                                 \
  "a.id, a.uid, a.kind, a.name, a.fullname, a.email, a.password_hash, a.is_admin, a.created_ms"

static void read_account(sqlite3_stmt *st, db_account *a) {
  memset(a, 0, sizeof *a);
  a->id = sqlite3_column_int64(st, 0);
  db__copy(a->uid, sizeof a->uid, st, 1);
  a->kind = sqlite3_column_int(st, 2);
  db__copy(a->name, sizeof a->name, st, 3);
  db__copy(a->fullname, sizeof a->fullname, st, 4);
  db__copy(a->email, sizeof a->email, st, 5);
  db__copy(a->password_hash, sizeof a->password_hash, st, 6);
  a->is_admin = sqlite3_column_int(st, 7);
  a->created_ms = sqlite3_column_int64(st, 8);
}

int db_account_create(db_account *acc) {
  sqlite3_stmt *st = db__stmt("INSERT INTO accounts(uid, kind, name, fullname, email, "
                              "password_hash, is_admin, created_ms) VALUES(?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_new_uid(acc->uid);
  acc->created_ms = db_now_ms();
  sqlite3_bind_text(st, 1, acc->uid, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, acc->kind);
  sqlite3_bind_text(st, 3, acc->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, acc->fullname, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, acc->email, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, acc->password_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 7, acc->is_admin);
  sqlite3_bind_int64(st, 8, acc->created_ms);
  int rc = db__step_done(st);
  if (rc == HUB_EEXISTS) return hub_error_set(rc, "the name '%s' is already taken", acc->name);
  if (rc) return rc;
  acc->id = sqlite3_last_insert_rowid(db_conn());
  return 0;
}

static int account_query(sqlite3_stmt *st, db_account *out, const char *what) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    read_account(st, out);
    sqlite3_reset(st);
    return 0;
  }
  sqlite3_reset(st);
  return hub_error_set(HUB_ENOTFOUND, "no user or organization '%s'", what);
}

int db_account_by_name(const char *name, db_account *out) {
  sqlite3_stmt *st = db__stmt("SELECT " ACC_COLS " FROM accounts WHERE name=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  return account_query(st, out, name);
}

int db_account_by_id(int64_t id, db_account *out) {
  sqlite3_stmt *st = db__stmt("SELECT " ACC_COLS " FROM accounts WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  return account_query(st, out, "(id)");
}

int db_account_count(int kind, int64_t *out) {
  sqlite3_stmt *st = db__stmt("SELECT count(*) FROM accounts WHERE kind=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int(st, 1, kind);
  *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return 0;
}

int db_account_set_password(int64_t id, const char *hash) {
  sqlite3_stmt *st = db__stmt("UPDATE accounts SET password_hash=? WHERE id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  return db__step_done(st);
}

int db_member_set(int64_t org_id, int64_t user_id, int role) {
  sqlite3_stmt *st =
      db__stmt("INSERT OR REPLACE INTO memberships(org_id, user_id, role) VALUES(?,?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, org_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int(st, 3, role);
  return db__step_done(st);
}

int db_member_remove(int64_t org_id, int64_t user_id) {
  sqlite3_stmt *st = db__stmt("DELETE FROM memberships WHERE org_id=? AND user_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, org_id);
  sqlite3_bind_int64(st, 2, user_id);
  int rc = db__step_done(st);
  if (!rc && sqlite3_changes(db_conn()) == 0) return hub_error_set(HUB_ENOTFOUND, "not a member");
  return rc;
}

int db_member_role(int64_t org_id, int64_t user_id, int *out_role) {
  sqlite3_stmt *st = db__stmt("SELECT role FROM memberships WHERE org_id=? AND user_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, org_id);
  sqlite3_bind_int64(st, 2, user_id);
  *out_role = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_reset(st);
  return 0;
}

/* Rows of (account columns..., role) for one id bound at ?1. */
static int member_rows(sqlite3_stmt *st, int64_t id, db_member_cb cb, void *payload) {
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, id);
  db_account a;
  while (sqlite3_step(st) == SQLITE_ROW) {
    read_account(st, &a);
    cb(&a, sqlite3_column_int(st, 9), payload);
  }
  sqlite3_reset(st);
  return 0;
}

int db_member_orgs(int64_t user_id, db_member_cb cb, void *payload) {
  return member_rows(db__stmt("SELECT " ACC_COLS_A ", m.role FROM memberships m JOIN accounts a"
                              " ON a.id=m.org_id WHERE m.user_id=? ORDER BY a.name"),
                     user_id, cb, payload);
}

int db_org_members(int64_t org_id, db_member_cb cb, void *payload) {
  return member_rows(db__stmt("SELECT " ACC_COLS_A ", m.role FROM memberships m JOIN accounts a"
                              " ON a.id=m.user_id WHERE m.org_id=? ORDER BY a.name"),
                     org_id, cb, payload);
}

#define TOK_COLS                                                                                   \
  "t.id, t.uid, t.user_id, t.name, t.role, t.created_ms, t.last_used_ms, "                         \
  "t.expires_ms, t.revoked, t.scopes"

static void read_token(sqlite3_stmt *st, db_token *t) {
  memset(t, 0, sizeof *t);
  t->id = sqlite3_column_int64(st, 0);
  db__copy(t->uid, sizeof t->uid, st, 1);
  t->user_id = sqlite3_column_int64(st, 2);
  db__copy(t->name, sizeof t->name, st, 3);
  t->role = sqlite3_column_int(st, 4);
  t->created_ms = sqlite3_column_int64(st, 5);
  t->last_used_ms = sqlite3_column_int64(st, 6);
  t->expires_ms = sqlite3_column_int64(st, 7);
  t->revoked = sqlite3_column_int(st, 8);
  db__copy(t->scopes, sizeof t->scopes, st, 9);
}

int db_token_create(db_token *tok, const char *hash_hex) {
  sqlite3_stmt *st = db__stmt("INSERT INTO tokens(uid, user_id, name, role, hash, created_ms, "
                              "expires_ms, scopes) VALUES(?,?,?,?,?,?,?,?)");
  if (!st) return HUB_ERROR;
  db_new_uid(tok->uid);
  tok->created_ms = db_now_ms();
  sqlite3_bind_text(st, 1, tok->uid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, tok->user_id);
  sqlite3_bind_text(st, 3, tok->name, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, tok->role);
  sqlite3_bind_text(st, 5, hash_hex, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, tok->created_ms);
  sqlite3_bind_int64(st, 7, tok->expires_ms);
  sqlite3_bind_text(st, 8, tok->scopes, -1, SQLITE_STATIC);
  int rc = db__step_done(st);
  if (rc) return rc;
  tok->id = sqlite3_last_insert_rowid(db_conn());
  return 0;
}

int db_token_by_hash(const char *hash_hex, db_token *out) {
  sqlite3_stmt *st = db__stmt("SELECT " TOK_COLS " FROM tokens t WHERE t.hash=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) read_token(st, out);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : hub_error_set(HUB_ENOTFOUND, "unknown token");
}

int db_token_touch(int64_t id, int64_t now_ms) {
  /* Only write when the stored value is stale by a minute: keeps reads read-only. */
  sqlite3_stmt *st =
      db__stmt("UPDATE tokens SET last_used_ms=?1 WHERE id=?2 AND last_used_ms < ?1 - 60000");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, now_ms);
  sqlite3_bind_int64(st, 2, id);
  return db__step_done(st);
}

int db_token_list(int64_t user_id, db_token_cb cb, void *payload) {
  sqlite3_stmt *st = db__stmt("SELECT " TOK_COLS ", a.name FROM tokens t JOIN accounts a ON "
                              "a.id=t.user_id WHERE (?1=0 OR t.user_id=?1) ORDER BY t.id");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, user_id);
  db_token t;
  while (sqlite3_step(st) == SQLITE_ROW) {
    read_token(st, &t);
    cb(&t, (const char *)sqlite3_column_text(st, 10), payload);
  }
  sqlite3_reset(st);
  return 0;
}

int db_token_revoke(const char *uid_or_name, int64_t user_id) {
  sqlite3_stmt *st = db__stmt("UPDATE tokens SET revoked=1 WHERE (uid=?1 OR name=?1) AND "
                              "(?2=0 OR user_id=?2) AND revoked=0");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, uid_or_name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, user_id);
  int rc = db__step_done(st);
  if (!rc && sqlite3_changes(db_conn()) == 0)
    return hub_error_set(HUB_ENOTFOUND, "no active token '%s'", uid_or_name);
  return rc;
}
