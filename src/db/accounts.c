/* Users, orgs, memberships and tokens. */
#include "db/db.h"
#include "db/stmt.h"

#include <string.h>

#include "util/error.h"

#define ACC_COLS "id, uid, kind, name, fullname, email, password_hash, is_admin, created_ms"
#define ACC_COLS_A                                                                                 \
  "a.id, a.uid, a.kind, a.name, a.fullname, a.email, a.password_hash, a.is_admin, a.created_ms"

/* An account from ACC_COLS's columns, starting at column c. */
static void read_account_at(db_stmt *st, int c, db_account *a) {
  memset(a, 0, sizeof *a);
  a->id = db_col_int64(st, c + 0);
  db_col_copy(a->uid, sizeof a->uid, st, c + 1);
  a->kind = (int)db_col_int64(st, c + 2);
  db_col_copy(a->name, sizeof a->name, st, c + 3);
  db_col_copy(a->fullname, sizeof a->fullname, st, c + 4);
  db_col_copy(a->email, sizeof a->email, st, c + 5);
  db_col_copy(a->password_hash, sizeof a->password_hash, st, c + 6);
  a->is_admin = (int)db_col_int64(st, c + 7);
  a->created_ms = db_col_int64(st, c + 8);
}

static void read_account(db_stmt *st, db_account *a) {
  read_account_at(st, 0, a);
}

int db_account_create(db_account *acc) {
  /* A taken name is an expected failure: DO NOTHING rather than a constraint error, which
   * on PostgreSQL would abort a caller's transaction. */
  db_stmt *st = db_prep("INSERT INTO accounts(uid, kind, name, fullname, email, "
                        "password_hash, is_admin, created_ms) VALUES(?,?,?,?,?,?,?,?)"
                        " ON CONFLICT DO NOTHING RETURNING id");
  if (!st) return HUB_ERROR;
  db_new_uid(acc->uid);
  acc->created_ms = db_now_ms();
  db_bind_text(st, 1, acc->uid, -1);
  db_bind_int64(st, 2, acc->kind);
  db_bind_text(st, 3, acc->name, -1);
  db_bind_text(st, 4, acc->fullname, -1);
  db_bind_text(st, 5, acc->email, -1);
  db_bind_text(st, 6, acc->password_hash, -1);
  db_bind_int64(st, 7, acc->is_admin);
  db_bind_int64(st, 8, acc->created_ms);
  int rc = db_step(st);
  if (rc == DB_ROW) {
    acc->id = db_col_int64(st, 0);
    return db_step_done(st); /* SQLite: the statement ends, the row is written */
  }
  db_reset(st);
  if (rc == DB_DONE || rc == HUB_EEXISTS)
    return hub_error_set(HUB_EEXISTS, "the name '%s' is already taken", acc->name);
  return rc;
}

static int account_query(db_stmt *st, db_account *out, const char *what) {
  int rc = db_step(st);
  if (rc == DB_ROW) {
    read_account(st, out);
    db_reset(st);
    return 0;
  }
  db_reset(st);
  if (rc < 0) return rc;
  return hub_error_set(HUB_ENOTFOUND, "no user or organization '%s'", what);
}

int db_account_by_name(const char *name, db_account *out) {
  db_stmt *st = db_prep("SELECT " ACC_COLS " FROM accounts WHERE name=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, name, -1);
  return account_query(st, out, name);
}

int db_account_by_id(int64_t id, db_account *out) {
  db_stmt *st = db_prep("SELECT " ACC_COLS " FROM accounts WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return account_query(st, out, "(id)");
}

int db_account_count(int kind, int64_t *out) {
  db_stmt *st = db_prep("SELECT count(*) FROM accounts WHERE kind=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, kind);
  int rc = db_step(st);
  *out = rc == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_account_set_password(int64_t id, const char *hash) {
  db_stmt *st = db_prep("UPDATE accounts SET password_hash=? WHERE id=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, hash, -1);
  db_bind_int64(st, 2, id);
  return db_step_done(st);
}

int db_member_set(int64_t org_id, int64_t user_id, int role) {
  db_stmt *st = db_prep("INSERT INTO memberships(org_id, user_id, role) VALUES(?,?,?)"
                        " ON CONFLICT(org_id, user_id) DO UPDATE SET role=excluded.role");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, org_id);
  db_bind_int64(st, 2, user_id);
  db_bind_int64(st, 3, role);
  return db_step_done(st);
}

int db_member_remove(int64_t org_id, int64_t user_id) {
  db_stmt *st = db_prep("DELETE FROM memberships WHERE org_id=? AND user_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, org_id);
  db_bind_int64(st, 2, user_id);
  int rc = db_step_done(st);
  if (!rc && db_changes() == 0) return hub_error_set(HUB_ENOTFOUND, "not a member");
  return rc;
}

int db_member_role(int64_t org_id, int64_t user_id, int *out_role) {
  db_stmt *st = db_prep("SELECT role FROM memberships WHERE org_id=? AND user_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, org_id);
  db_bind_int64(st, 2, user_id);
  int rc = db_step(st);
  *out_role = rc == DB_ROW ? (int)db_col_int64(st, 0) : 0;
  db_reset(st);
  return rc < 0 ? rc : 0;
}

/* Rows of (account columns..., role) for one id bound at ?1. */
static int member_rows(db_stmt *st, int64_t id, db_member_cb cb, void *payload) {
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  db_account a;
  int rc;
  while ((rc = db_step(st)) == DB_ROW) {
    read_account(st, &a);
    cb(&a, (int)db_col_int64(st, 9), payload);
  }
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_member_orgs(int64_t user_id, db_member_cb cb, void *payload) {
  return member_rows(db_prep("SELECT " ACC_COLS_A ", m.role FROM memberships m JOIN accounts a"
                             " ON a.id=m.org_id WHERE m.user_id=? ORDER BY a.name"),
                     user_id, cb, payload);
}

int db_org_members(int64_t org_id, db_member_cb cb, void *payload) {
  return member_rows(db_prep("SELECT " ACC_COLS_A ", m.role FROM memberships m JOIN accounts a"
                             " ON a.id=m.user_id WHERE m.org_id=? ORDER BY a.name"),
                     org_id, cb, payload);
}

#define TOK_COLS                                                                                   \
  "t.id, t.uid, t.user_id, t.name, t.role, t.created_ms, t.last_used_ms, "                         \
  "t.expires_ms, t.revoked, t.scopes"

static void read_token(db_stmt *st, db_token *t) {
  memset(t, 0, sizeof *t);
  t->id = db_col_int64(st, 0);
  db_col_copy(t->uid, sizeof t->uid, st, 1);
  t->user_id = db_col_int64(st, 2);
  db_col_copy(t->name, sizeof t->name, st, 3);
  t->role = (int)db_col_int64(st, 4);
  t->created_ms = db_col_int64(st, 5);
  t->last_used_ms = db_col_int64(st, 6);
  t->expires_ms = db_col_int64(st, 7);
  t->revoked = (int)db_col_int64(st, 8);
  db_col_copy(t->scopes, sizeof t->scopes, st, 9);
}

int db_token_create(db_token *tok, const char *hash_hex) {
  db_stmt *st = db_prep("INSERT INTO tokens(uid, user_id, name, role, hash, created_ms, "
                        "expires_ms, scopes) VALUES(?,?,?,?,?,?,?,?) RETURNING id");
  if (!st) return HUB_ERROR;
  db_new_uid(tok->uid);
  tok->created_ms = db_now_ms();
  db_bind_text(st, 1, tok->uid, -1);
  db_bind_int64(st, 2, tok->user_id);
  db_bind_text(st, 3, tok->name, -1);
  db_bind_int64(st, 4, tok->role);
  db_bind_text(st, 5, hash_hex, -1);
  db_bind_int64(st, 6, tok->created_ms);
  db_bind_int64(st, 7, tok->expires_ms);
  db_bind_text(st, 8, tok->scopes, -1);
  int rc = db_step(st);
  if (rc == DB_ROW) {
    tok->id = db_col_int64(st, 0);
    return db_step_done(st);
  }
  db_reset(st);
  return rc < 0 ? rc : hub_error_set(HUB_ERROR, "token insert returned no id");
}

int db_token_by_hash(const char *hash_hex, db_token *out) {
  db_stmt *st = db_prep("SELECT " TOK_COLS " FROM tokens t WHERE t.hash=?");
  if (!st) return hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  db_bind_text(st, 1, hash_hex, -1);
  int rc = db_step(st);
  if (rc == DB_ROW) read_token(st, out);
  db_reset(st);
  return rc == DB_ROW ? 0 : rc < 0 ? rc : hub_error_set(HUB_ENOTFOUND, "unknown token");
}

int db_token_identity(const char *hash_hex, db_token *tok, db_account *acc) {
  /* The password hash stays out: a token's identity never needs it. */
  db_stmt *st = db_prep("SELECT " TOK_COLS ", a.id, a.uid, a.kind, a.name, a.fullname, a.email,"
                        " '', a.is_admin, a.created_ms FROM tokens t JOIN accounts a"
                        " ON a.id=t.user_id WHERE t.hash=?");
  if (!st) return hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  db_bind_text(st, 1, hash_hex, -1);
  int rc = db_step(st);
  if (rc == DB_ROW) {
    read_token(st, tok);
    read_account_at(st, 10, acc);
  }
  db_reset(st);
  return rc == DB_ROW ? 0 : rc < 0 ? rc : hub_error_set(HUB_ENOTFOUND, "unknown token");
}

int db_token_touch(int64_t id, int64_t now_ms) {
  /* Only write when the stored value is stale by a minute: keeps reads read-only. */
  db_stmt *st =
      db_prep("UPDATE tokens SET last_used_ms=?1 WHERE id=?2 AND last_used_ms < ?1 - 60000");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, now_ms);
  db_bind_int64(st, 2, id);
  return db_step_done(st);
}

int db_token_list(int64_t user_id, db_token_cb cb, void *payload) {
  db_stmt *st = db_prep("SELECT " TOK_COLS ", a.name FROM tokens t JOIN accounts a ON "
                        "a.id=t.user_id WHERE (?1=0 OR t.user_id=?1) ORDER BY t.id");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, user_id);
  db_token t;
  int rc;
  while ((rc = db_step(st)) == DB_ROW) {
    read_token(st, &t);
    cb(&t, db_col_text(st, 10), payload);
  }
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_token_revoke(const char *uid_or_name, int64_t user_id) {
  db_stmt *st = db_prep("UPDATE tokens SET revoked=1 WHERE (uid=?1 OR name=?1) AND "
                        "(?2=0 OR user_id=?2) AND revoked=0");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, uid_or_name, -1);
  db_bind_int64(st, 2, user_id);
  int rc = db_step_done(st);
  if (!rc && db_changes() == 0)
    return hub_error_set(HUB_ENOTFOUND, "no active token '%s'", uid_or_name);
  return rc;
}
