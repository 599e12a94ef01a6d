/* The small db files on the statement layer (db/stmt.h): accounts, tokens, memberships,
 * repos and redirects, gate requests, sessions, per-repo objects, facets and the audit log,
 * through their public functions. The cases that the conversion changed the shape of: new
 * ids read back with RETURNING, duplicates that must not break a caller's transaction,
 * upserts that replaced INSERT OR REPLACE, max(a,b) as CASE, pages of a full walk (audit
 * verify, the languages facet) and the languages facet counted in C. */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/facets.h"
#include "db/gate.h"
#include "db/objects.h"
#include "db/sessions.h"
#include "db/stmt.h"
#include "db/xet.h"
#include "util/error.h"

static char dir[] = "/tmp/mh-dbsmall-XXXXXX";

static int setup(void **s) {
  if (!mkdtemp(dir)) return -1;
  return db_global_init(dir) || auth_init() || db_gate_init() || db_sessions_init() || audit_init();
}

static int teardown(void **s) {
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int64_t user(const char *name) {
  db_account a;
  memset(&a, 0, sizeof a);
  snprintf(a.name, sizeof a.name, "%s", name);
  assert_int_equal(db_account_create(&a), 0);
  assert_true(a.id > 0);
  return a.id;
}

static int64_t repo(int64_t owner, const char *ns, const char *name, int priv) {
  db_repo r;
  memset(&r, 0, sizeof r);
  snprintf(r.ns, sizeof r.ns, "%s", ns);
  snprintf(r.name, sizeof r.name, "%s", name);
  r.owner_id = owner;
  r.is_private = priv;
  assert_int_equal(db_repo_create(&r), 0);
  assert_true(r.id > 0);
  return r.id;
}

static void test_accounts_and_tokens(void **s) {
  int64_t a = user("acc-alice"), b = user("acc-bob");
  assert_true(b > a);
  db_account got;
  assert_int_equal(db_account_by_name("ACC-ALICE", &got), 0); /* names are case-insensitive */
  assert_int_equal(got.id, a);
  assert_int_equal(db_account_by_name("acc-nobody", &got), HUB_ENOTFOUND);

  /* A taken name inside a transaction: an error for that call only, the transaction goes on. */
  assert_int_equal(db_begin_immediate(), 0);
  db_account dup;
  memset(&dup, 0, sizeof dup);
  snprintf(dup.name, sizeof dup.name, "Acc-Bob");
  assert_int_equal(db_account_create(&dup), HUB_EEXISTS);
  assert_non_null(strstr(hub_error_msg(), "already taken"));
  int64_t c = user("acc-carol");
  assert_int_equal(db_commit(), 0);
  assert_int_equal(db_account_by_id(c, &got), 0);
  assert_string_equal(got.name, "acc-carol");

  /* memberships: the upsert changes the role in place */
  int64_t org = user("acc-org");
  int role = -1;
  assert_int_equal(db_member_set(org, a, 1), 0);
  assert_int_equal(db_member_set(org, a, 2), 0);
  assert_int_equal(db_member_role(org, a, &role), 0);
  assert_int_equal(role, 2);
  assert_int_equal(db_member_remove(org, a), 0);
  assert_int_equal(db_member_remove(org, a), HUB_ENOTFOUND);

  /* tokens: ids from RETURNING, revocation counts changed rows */
  db_token t1, t2, back;
  memset(&t1, 0, sizeof t1);
  t1.user_id = a;
  snprintf(t1.name, sizeof t1.name, "t");
  t2 = t1;
  assert_int_equal(db_token_create(&t1, "hash-one"), 0);
  assert_int_equal(db_token_create(&t2, "hash-two"), 0);
  assert_true(t1.id > 0 && t2.id == t1.id + 1);
  assert_int_equal(db_token_by_hash("hash-two", &back), 0);
  assert_int_equal(back.id, t2.id);
  assert_int_equal(db_token_revoke(t1.uid, a), 0);
  assert_int_equal(db_token_revoke(t1.uid, a), HUB_ENOTFOUND);
}

static void test_repos_and_redirects(void **s) {
  int64_t o = user("rp-owner");
  int64_t id = repo(o, "rp-owner", "first", 0), other = repo(o, "rp-owner", "second", 0);
  assert_true(other == id + 1);
  db_repo r;
  memset(&r, 0, sizeof r);
  snprintf(r.ns, sizeof r.ns, "RP-owner");
  snprintf(r.name, sizeof r.name, "FIRST");
  r.owner_id = o;
  assert_int_equal(db_repo_create(&r), HUB_EEXISTS);
  assert_non_null(strstr(hub_error_msg(), "You already created this model repo"));

  /* first -> renamed -> first -> renamed: each old name redirects, the current one never */
  assert_int_equal(db_repo_move(id, o, 0, "rp-owner", "renamed"), 0);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "FIRST", &r), 0);
  assert_int_equal(r.id, id);
  assert_string_equal(r.name, "renamed");
  assert_int_equal(db_repo_move(id, o, 0, "rp-owner", "first"), 0);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "first", &r), HUB_EREPO);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "renamed", &r), 0);
  assert_int_equal(db_repo_move(id, o, 0, "rp-owner", "renamed"), 0);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "first", &r), 0);
  assert_int_equal(r.id, id);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "renamed", &r), HUB_EREPO);
  /* a taken name: refused, the transaction of the move rolled back */
  assert_int_equal(db_repo_move(id, o, 0, "rp-owner", "Second"), HUB_EEXISTS);
  assert_int_equal(db_repo_by_id(id, &r), 0);
  assert_string_equal(r.name, "renamed");
  assert_false(db_in_transaction());
  /* a new repo takes its name back from the redirect */
  int64_t again = repo(o, "rp-owner", "first", 0);
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "rp-owner", "first", &r), 0);
  assert_int_equal(r.id, again);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "rp-owner", "first", &r), HUB_EREPO);

  /* set_head keeps the later updated_ms (was max(a, b)) */
  assert_int_equal(db_repo_touch(other, INT64_C(4000000000000)), 0);
  assert_int_equal(db_repo_set_head(other, "0123456789012345678901234567890123456789", 5), 0);
  assert_int_equal(db_repo_by_id(other, &r), 0);
  assert_int_equal(r.updated_ms, INT64_C(4000000000000));
  assert_int_equal(r.last_modified_ms, 5);
  assert_int_equal(db_repo_touch(other, 1), 0);
  assert_int_equal(db_repo_set_head(other, "0123456789012345678901234567890123456789", 6), 0);
  assert_int_equal(db_repo_by_id(other, &r), 0);
  assert_true(r.updated_ms > 1);
  assert_int_equal(db_repo_by_id(999999, &r), HUB_EREPO);
}

static void gate_row(const db_gate_request *g, void *payload) {
  snprintf(payload, 64, "%s:%s:%s", g->user, g->status, g->fields);
}

static void test_gate_sessions_objects(void **s) {
  int64_t u = user("gs-user"), id = repo(u, "gs-user", "gated", 0);
  char st[16], row[64] = "";
  assert_int_equal(db_gate_status(id, u, st), 0);
  assert_string_equal(st, "");
  assert_int_equal(db_gate_set(id, u, "pending", "{\"a\":1}", NULL, NULL), 0);
  assert_int_equal(db_gate_set(id, u, "accepted", NULL, "admin", ""), 0); /* fields kept */
  assert_int_equal(db_gate_status(id, u, st), 0);
  assert_string_equal(st, "accepted");
  assert_int_equal(db_gate_list(id, "accepted", gate_row, row), 0);
  assert_string_equal(row, "gs-user:accepted:{\"a\":1}");

  int64_t who = 0;
  char csrf[65];
  assert_int_equal(db_session_create("sess-1", u, "csrf-1", 1000, db_now_ms() + 60000), 0);
  assert_int_equal(db_session_create("sess-old", u, "csrf-2", 1000, 2000), 0);
  assert_int_equal(db_session_lookup("sess-1", &who, csrf), 0);
  assert_int_equal(who, u);
  assert_string_equal(csrf, "csrf-1");
  assert_int_equal(db_session_lookup("sess-old", &who, csrf), HUB_ENOTFOUND);
  assert_int_equal(db_session_delete("sess-1"), 0);
  assert_int_equal(db_session_lookup("sess-1", &who, csrf), HUB_ENOTFOUND);

  const char *oid = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
  const char *xoid = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
  int64_t size = 0, n = 0;
  assert_int_equal(db_objects_add(id, oid, 10), 0);
  assert_int_equal(db_objects_add(id, oid, 10), 0); /* again: ignored */
  assert_int_equal(db_objects_count(id, &n), 0);
  assert_int_equal(n, 1);
  /* no xetsrv tables yet: repo_objects alone answers */
  assert_int_equal(db_objects_may_reference(id, oid, 10, &size), 0);
  assert_int_equal(size, 10);
  assert_int_equal(db_objects_may_reference(id, oid, 11, &size), HUB_ENOTFOUND);
  assert_int_equal(db_objects_may_reference(id, xoid, -1, &size), HUB_ENOTFOUND);
  /* with them, a verified Xet upload of this repo counts too */
  assert_int_equal(db_xet_migrate(), 0);
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO xet_sha(sha256, file, size, verified, repo_id) VALUES('%s', x'00', 7, 1,"
           " %lld)",
           xoid, (long long)id);
  assert_int_equal(db_exec(sql), 0);
  assert_int_equal(db_objects_may_reference(id, xoid, -1, &size), 0);
  assert_int_equal(size, 7);
  assert_int_equal(db_objects_may_reference(id, oid, -1, &size), 0);
  assert_int_equal(size, 10);
}

typedef struct {
  char v[16][32];
  int64_t n[16];
  int k;
} facet_out;

static int facet_row(const char *value, int64_t count, void *payload) {
  facet_out *f = payload;
  snprintf(f->v[f->k], sizeof f->v[0], "%s", value ? value : "");
  f->n[f->k++] = count;
  return f->k == 16;
}

static void meta(int64_t repo_id, const char *json, int64_t params) {
  db_stmt *st = db_prep_text("INSERT INTO repo_meta(repo_id, meta, num_params) VALUES(?,?,?)");
  assert_non_null(st);
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, json, -1);
  db_bind_int64(st, 3, params);
  assert_int_equal(db_step_done(st), 0);
  db_prep_text_done(st);
}

static void test_facets(void **s) {
  int64_t u = user("fc-user");
  char name[32], json[128];
  /* over the page size of the walk (256): "aa" in all 300, "bb" in every third */
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof name, "fc-%03d", i);
    int64_t id = repo(u, "fc-user", name, 0);
    snprintf(json, sizeof json, "{\"languages\":[\"aa\"%s]}", i % 3 ? "" : ",\"bb\"");
    meta(id, json, i < 10 ? INT64_C(7000000000) : 0);
  }
  int64_t id;
  id = repo(u, "fc-user", "fc-string", 0);
  meta(id, "{\"languages\":\"cc\"}", 2);
  id = repo(u, "fc-user", "fc-mixed", 0);
  meta(id, "{\"languages\":[\"cc\", 3, null, [\"zz\"], \"dd\"]}", 0);
  id = repo(u, "fc-user", "fc-broken", 0);
  meta(id, "{\"languages\":[\"zz\"", 0); /* not JSON: counts nothing */
  id = repo(u, "fc-user", "fc-other", 0);
  meta(id, "{\"language\":[\"zz\"],\"x\":{\"languages\":[\"zz\"]}}", 0);
  id = repo(u, "fc-user", "fc-private", 1);
  meta(id, "{\"languages\":[\"zz\",\"cc\",\"cc\",\"cc\"]}", 0);
  /* a dataset's languages are not the models' */
  db_repo ds;
  memset(&ds, 0, sizeof ds);
  ds.type = HUB_REPO_DATASET;
  snprintf(ds.ns, sizeof ds.ns, "fc-user");
  snprintf(ds.name, sizeof ds.name, "fc-data");
  ds.owner_id = u;
  assert_int_equal(db_repo_create(&ds), 0);
  meta(ds.id, "{\"languages\":[\"zz\"]}", 0);

  facet_out f = {0};
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_LANGUAGE, facet_row, &f), 0);
  assert_int_equal(f.k, 4);
  assert_string_equal(f.v[0], "aa");
  assert_int_equal(f.n[0], 300);
  assert_string_equal(f.v[1], "bb");
  assert_int_equal(f.n[1], 100);
  assert_string_equal(f.v[2], "cc"); /* 2 each: ties by value */
  assert_int_equal(f.n[2], 2);
  assert_string_equal(f.v[3], "dd");
  assert_int_equal(f.n[3], 1);
  memset(&f, 0, sizeof f);
  assert_int_equal(db_facet_top(HUB_REPO_DATASET, DB_FACET_LANGUAGE, facet_row, &f), 0);
  assert_int_equal(f.k, 1);
  assert_string_equal(f.v[0], "zz");
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_N, facet_row, &f), HUB_EINVALID);

  int64_t b[6];
  assert_int_equal(db_facet_params(HUB_REPO_MODEL, b), 0);
  assert_int_equal(b[0], 1);  /* fc-string: 2 */
  assert_int_equal(b[2], 10); /* 7B: 6-12B */
  assert_int_equal(b[1] + b[3] + b[4] + b[5], 0);
}

typedef struct {
  int n;
  char first[64];
} audit_seen;

static int audit_row(const db_audit_row *r, void *payload) {
  audit_seen *a = payload;
  if (!a->n++) snprintf(a->first, sizeof a->first, "%s", r->action);
  return 0;
}

static void test_audit(void **s) {
  /* over the page size of the verify walk (512) */
  for (int i = 0; i < 600; i++)
    assert_int_equal(audit_log(NULL, i % 2 ? "unit.odd" : "unit_even", "ns", "t", NULL), 0);
  int64_t count = 0;
  assert_int_equal(audit_verify(&count), 0);
  assert_int_equal(count, 600);
  audit_seen a = {0};
  assert_int_equal(db_audit_list(NULL, "unit.", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 300);
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list(NULL, "unit_", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 300); /* "_" is no wildcard */
  assert_string_equal(a.first, "unit_even");
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list(NULL, "%", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(db_audit_list(NULL, "UNIT", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(db_audit_list("ns", "", NULL, 0, 0, 0, 10, audit_row, &a), 0);
  assert_int_equal(a.n, 10);
  /* an edit past the first page is found */
  assert_int_equal(db_exec("UPDATE audit_log SET target='x' WHERE id=555"), 0);
  assert_int_equal(audit_verify(&count), HUB_ECONFLICT);
  assert_non_null(strstr(hub_error_msg(), "entry 555 was modified"));
}

/* ---- the same SQL on PostgreSQL ----
 * The server cannot run on PostgreSQL until every db file is converted, so this pass calls
 * the converted functions directly on a throwaway cluster (scripts/pg.sh, as
 * test_db_engines does), over the core tables they read (the core schema is conn.c's; the
 * portable subset is repeated here). Skipped, loudly, when PostgreSQL is not installed. */
static char g_pg_dir[] = "/tmp/mh-dbsmall-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

static const char *const CORE_SUBSET[] = {
    "CREATE TABLE accounts("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " fullname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',"
    " password_hash TEXT NOT NULL DEFAULT '', is_admin INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE memberships("
    " org_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " role INTEGER NOT NULL, PRIMARY KEY(org_id, user_id));"
    "CREATE TABLE tokens("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, role INTEGER NOT NULL, hash TEXT NOT NULL UNIQUE,"
    " created_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL DEFAULT 0,"
    " expires_ms INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,"
    " scopes TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE repos("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, type INTEGER NOT NULL,"
    " ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id), owner_is_org INTEGER NOT NULL,"
    " private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " head_sha TEXT NOT NULL DEFAULT '', last_modified_ms INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(type, ns, name));"
    "CREATE TABLE repo_redirects("
    " type INTEGER NOT NULL, ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " PRIMARY KEY(type, ns, name));"
    "CREATE TABLE repo_meta("
    " repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    " pipeline_tag TEXT NOT NULL DEFAULT '', library_name TEXT NOT NULL DEFAULT '',"
    " num_params INTEGER NOT NULL DEFAULT 0, synthetic INTEGER NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '[]', meta TEXT NOT NULL DEFAULT '{}',"
    " card_text TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE repo_tags(tag TEXT NOT NULL, repo_id INTEGER NOT NULL"
    " REFERENCES repos(id) ON DELETE CASCADE, PRIMARY KEY(tag, repo_id)) WITHOUT ROWID;"
    "CREATE TABLE repo_objects(repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY(repo_id, oid)) WITHOUT ROWID;"
    "CREATE TABLE xet_sha(sha256 TEXT NOT NULL, file BLOB NOT NULL, size INTEGER NOT NULL,"
    " verified INTEGER NOT NULL, repo_id INTEGER NOT NULL,"
    " PRIMARY KEY(sha256, file, repo_id)) WITHOUT ROWID;"
    "INSERT INTO schema_modules(module, version) VALUES('xetsrv', 1);",
};

static char pg_sqlite_dir[] = "/tmp/mh-dbsmall-pgs-XXXXXX";

static int pg_setup(void **s) {
  /* conn.c's SQLite side stays open: db_repo_move and friends still call db.h's
   * transaction functions, which are SQLite's until helper "core" lands. */
  if (!mkdtemp(pg_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(pg_sqlite_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3) {
    fprintf(stderr, "\n*** test_db_small: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL pass is SKIPPED ***\n\n");
    return 0;
  }
  if (rc != 0) return -1;
  g_pg_up = 1;
  if (db_engine_select(g_pg_url)) return -1;
  return db_migrate_module("test-core-subset", CORE_SUBSET, 1) || db_gate_init() ||
         db_sessions_init() || db_audit_init();
}

static int pg_teardown(void **s) {
  db_stmt_thread_end();
  db_engine_select("sqlite");
  db_global_shutdown();
  if (g_pg_up) pg_script("stop", NULL, 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", pg_sqlite_dir, g_pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

#define PG_OR_SKIP()                                                                               \
  do {                                                                                             \
    if (!g_pg_up) {                                                                                \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
    assert_int_equal(db_engine(), DB_ENGINE_POSTGRES);                                             \
  } while (0)

/* A count read through the layer, so from PostgreSQL: the rows are really there. */
static int64_t layer_count(const char *sql) {
  db_stmt *st = db_prep_text(sql);
  assert_non_null(st);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t n = db_col_int64(st, 0);
  db_prep_text_done(st);
  return n;
}

static void test_pg_accounts_and_tokens(void **s) {
  PG_OR_SKIP();
  int64_t a = user("pg-alice"), b = user("pg-bob");
  assert_true(b > a);
  db_account got;
  assert_int_equal(db_account_by_name("PG-ALICE", &got), 0);
  assert_int_equal(got.id, a);
  assert_int_equal(db_account_by_name("pg-nobody", &got), HUB_ENOTFOUND);
  /* A taken name inside a transaction must not abort it (PostgreSQL aborts a transaction at
   * its first failed statement): the commit below would fail. */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  db_account dup;
  memset(&dup, 0, sizeof dup);
  snprintf(dup.name, sizeof dup.name, "Pg-Bob");
  assert_int_equal(db_account_create(&dup), HUB_EEXISTS);
  int64_t c = user("pg-carol");
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(db_account_by_id(c, &got), 0);
  assert_string_equal(got.name, "pg-carol");
  int64_t n = 0;
  assert_int_equal(db_account_count(ACCOUNT_USER, &n), 0);
  assert_int_equal(n, 3);

  int64_t org = user("pg-org");
  int role = -1;
  assert_int_equal(db_member_set(org, a, 1), 0);
  assert_int_equal(db_member_set(org, a, 2), 0);
  assert_int_equal(db_member_role(org, a, &role), 0);
  assert_int_equal(role, 2);
  assert_int_equal(db_member_remove(org, a), 0);
  assert_int_equal(db_member_remove(org, a), HUB_ENOTFOUND);

  db_token t1, t2, back;
  memset(&t1, 0, sizeof t1);
  t1.user_id = a;
  snprintf(t1.name, sizeof t1.name, "t");
  t2 = t1;
  assert_int_equal(db_token_create(&t1, "pg-hash-one"), 0);
  assert_int_equal(db_token_create(&t2, "pg-hash-two"), 0);
  assert_true(t1.id > 0 && t2.id == t1.id + 1);
  assert_int_equal(db_token_by_hash("pg-hash-two", &back), 0);
  assert_int_equal(back.id, t2.id);
  assert_int_equal(db_token_touch(t2.id, 100000), 0);
  assert_int_equal(db_token_by_hash("pg-hash-two", &back), 0);
  assert_int_equal(back.last_used_ms, 100000);
  assert_int_equal(db_token_revoke("t", a), 0); /* by name: both */
  assert_int_equal(db_token_revoke(t1.uid, 0), HUB_ENOTFOUND);
}

static void test_pg_repos(void **s) {
  PG_OR_SKIP();
  int64_t o = user("pgr-owner");
  int64_t id = repo(o, "pgr-owner", "first", 0), other = repo(o, "pgr-owner", "second", 0);
  db_repo r;
  memset(&r, 0, sizeof r);
  snprintf(r.ns, sizeof r.ns, "PGR-owner");
  snprintf(r.name, sizeof r.name, "FIRST");
  r.owner_id = o;
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_repo_create(&r), HUB_EEXISTS);
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(db_repo_move(id, o, 0, "pgr-owner", "renamed"), 0);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "pgr-owner", "FIRST", &r), 0);
  assert_int_equal(r.id, id);
  assert_int_equal(db_repo_move(id, o, 0, "pgr-owner", "first"), 0);
  assert_int_equal(db_repo_move(id, o, 0, "pgr-owner", "renamed"), 0); /* the upsert */
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "pgr-owner", "first", &r), 0);
  assert_int_equal(db_repo_redirect(HUB_REPO_MODEL, "pgr-owner", "renamed", &r), HUB_EREPO);
  assert_int_equal(db_repo_move(id, o, 0, "pgr-owner", "Second"), HUB_EEXISTS);
  int64_t again = repo(o, "pgr-owner", "first", 0);
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "pgr-owner", "First", &r), 0);
  assert_int_equal(r.id, again);
  assert_int_equal(db_repo_by_uid(r.uid, &r), 0);
  assert_int_equal(r.id, again);
  assert_int_equal(db_repo_touch(other, INT64_C(4000000000000)), 0);
  assert_int_equal(db_repo_set_head(other, "0123456789012345678901234567890123456789", 5), 0);
  assert_int_equal(db_repo_by_id(other, &r), 0);
  assert_int_equal(r.updated_ms, INT64_C(4000000000000));
  assert_string_equal(r.head_sha, "0123456789012345678901234567890123456789");
  r.is_private = 1;
  snprintf(r.gated, sizeof r.gated, "auto");
  assert_int_equal(db_repo_update(&r), 0);
  assert_int_equal(db_repo_by_id(other, &r), 0);
  assert_int_equal(r.is_private, 1);
  assert_string_equal(r.gated, "auto");
  int64_t n = 0;
  assert_int_equal(db_repo_count(&n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(layer_count("SELECT count(*) FROM repos WHERE name IN ('renamed', 'first')"), 2);
  assert_int_equal(layer_count("SELECT count(*) FROM repo_redirects"), 0);
  assert_int_equal(db_repo_delete(other), 0);
  assert_int_equal(db_repo_by_id(other, &r), HUB_EREPO);
}

static void test_pg_gate_sessions_objects(void **s) {
  PG_OR_SKIP();
  int64_t u = user("pgs-user"), id = repo(u, "pgs-user", "gated", 0);
  char st[16], row[64] = "";
  assert_int_equal(db_gate_status(id, u, st), 0);
  assert_string_equal(st, "");
  assert_int_equal(db_gate_set(id, u, "pending", "{\"a\":1}", NULL, NULL), 0);
  assert_int_equal(db_gate_set(id, u, "accepted", NULL, "admin", ""), 0);
  assert_int_equal(db_gate_status(id, u, st), 0);
  assert_string_equal(st, "accepted");
  assert_int_equal(db_gate_list(id, "accepted", gate_row, row), 0);
  assert_string_equal(row, "pgs-user:accepted:{\"a\":1}");

  int64_t who = 0;
  char csrf[65];
  assert_int_equal(db_session_create("pg-sess-1", u, "csrf-1", 1000, db_now_ms() + 60000), 0);
  assert_int_equal(db_session_create("pg-sess-old", u, "csrf-2", 1000, 2000), 0);
  assert_int_equal(db_session_lookup("pg-sess-1", &who, csrf), 0);
  assert_int_equal(who, u);
  assert_string_equal(csrf, "csrf-1");
  assert_int_equal(db_session_lookup("pg-sess-old", &who, csrf), HUB_ENOTFOUND);
  assert_int_equal(db_session_delete("pg-sess-1"), 0);
  assert_int_equal(db_session_lookup("pg-sess-1", &who, csrf), HUB_ENOTFOUND);

  const char *oid = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
  const char *xoid = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
  int64_t size = 0, n = 0;
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_objects_add(id, oid, 10), 0);
  assert_int_equal(db_objects_add(id, oid, 10), 0); /* ignored, the transaction goes on */
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(db_objects_count(id, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(db_objects_get(id, oid, &size), 0);
  assert_int_equal(size, 10);
  assert_int_equal(db_objects_may_reference(id, oid, 11, &size), HUB_ENOTFOUND);
  assert_int_equal(db_objects_may_reference(id, xoid, -1, &size), HUB_ENOTFOUND);
  db_stmt *x = db_prep_text("INSERT INTO xet_sha(sha256, file, size, verified, repo_id)"
                            " VALUES(?, ?, 7, 1, ?)");
  assert_non_null(x);
  db_bind_text(x, 1, xoid, -1);
  db_bind_blob(x, 2, "\0", 1);
  db_bind_int64(x, 3, id);
  assert_int_equal(db_step_done(x), 0);
  db_prep_text_done(x);
  assert_int_equal(db_objects_may_reference(id, xoid, -1, &size), 0);
  assert_int_equal(size, 7);
  assert_int_equal(db_objects_may_reference(id, xoid, 7, &size), 0);
  assert_int_equal(db_objects_may_reference(id, oid, 10, &size), 0);
  assert_int_equal(size, 10);
}

static void tag(int64_t repo_id, const char *t) {
  db_stmt *st = db_prep_text("INSERT INTO repo_tags(tag, repo_id) VALUES(?,?)");
  assert_non_null(st);
  db_bind_text(st, 1, t, -1);
  db_bind_int64(st, 2, repo_id);
  assert_int_equal(db_step_done(st), 0);
  db_prep_text_done(st);
}

static void test_pg_facets(void **s) {
  PG_OR_SKIP();
  int64_t u = user("pgf-user");
  char name[32], json[128];
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof name, "fc-%03d", i);
    int64_t id = repo(u, "pgf-user", name, 0);
    snprintf(json, sizeof json, "{\"languages\":[\"aa\"%s]}", i % 3 ? "" : ",\"bb\"");
    meta(id, json, i < 10 ? INT64_C(7000000000) : 0);
    if (i < 3) tag(id, i ? "license:mit" : "license:apache-2.0");
  }
  assert_int_equal(db_tx_commit(), 0);
  int64_t id = repo(u, "pgf-user", "fc-string", 0);
  meta(id, "{\"languages\":\"cc\"}", 2);
  id = repo(u, "pgf-user", "fc-mixed", 0);
  meta(id, "{\"languages\":[\"cc\", 3, null, [\"zz\"], \"dd\"]}", 0);
  id = repo(u, "pgf-user", "fc-broken", 0);
  meta(id, "{\"languages\":[\"zz\"", 0);
  id = repo(u, "pgf-user", "fc-private", 1);
  meta(id, "{\"languages\":[\"zz\",\"cc\",\"cc\",\"cc\"]}", 0);
  tag(id, "license:mit");
  assert_int_equal(db_exec("UPDATE repo_meta SET pipeline_tag='text-generation',"
                           " library_name='lib' WHERE repo_id % 2 = 0"),
                   0);

  facet_out f = {0};
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_LANGUAGE, facet_row, &f), 0);
  assert_int_equal(f.k, 4);
  assert_string_equal(f.v[0], "aa");
  assert_int_equal(f.n[0], 300);
  assert_string_equal(f.v[1], "bb");
  assert_int_equal(f.n[1], 100);
  assert_string_equal(f.v[2], "cc");
  assert_int_equal(f.n[2], 2);
  assert_string_equal(f.v[3], "dd");
  memset(&f, 0, sizeof f);
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_LICENSE, facet_row, &f), 0);
  assert_int_equal(f.k, 2);
  assert_string_equal(f.v[0], "mit");
  assert_int_equal(f.n[0], 2);
  assert_string_equal(f.v[1], "apache-2.0");
  memset(&f, 0, sizeof f);
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_TASK, facet_row, &f), 0);
  assert_int_equal(f.k, 1);
  assert_string_equal(f.v[0], "text-generation");
  assert_true(f.n[0] >= 150);
  memset(&f, 0, sizeof f);
  assert_int_equal(db_facet_top(HUB_REPO_MODEL, DB_FACET_LIBRARY, facet_row, &f), 0);
  assert_int_equal(f.k, 1);
  assert_string_equal(f.v[0], "lib");
  int64_t b[6];
  assert_int_equal(db_facet_params(HUB_REPO_MODEL, b), 0);
  assert_int_equal(b[0], 1);
  assert_int_equal(b[2], 10);
  assert_int_equal(b[1] + b[3] + b[4] + b[5], 0);
  assert_int_equal(db_facet_params(HUB_REPO_SPACE, b), 0); /* no rows: sums are NULL */
  assert_int_equal(b[0] + b[1] + b[2] + b[3] + b[4] + b[5], 0);
}

static void test_pg_audit(void **s) {
  PG_OR_SKIP();
  int64_t id = 0;
  char hash[65];
  assert_int_equal(db_audit_head(&id, hash), 0);
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  for (int i = 1; i <= 600; i++) {
    char h[65];
    snprintf(h, sizeof h, "h%d", i);
    db_audit_row r = {i,    1000 + i, "actor", "-", "ip", i % 2 ? "unit.odd" : "unit_even",
                      "ns", "t",      "{}",    "p", h};
    assert_int_equal(db_audit_insert(&r), 0);
  }
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(db_audit_head(&id, hash), 1);
  assert_int_equal(id, 600);
  assert_string_equal(hash, "h600");
  audit_seen a = {0};
  assert_int_equal(db_audit_each(audit_row, &a), 0);
  assert_int_equal(a.n, 600);
  assert_string_equal(a.first, "unit.odd");
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list(NULL, "unit.", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 300);
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list(NULL, "unit_", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 300);
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list(NULL, "%", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(db_audit_list(NULL, "UNIT", NULL, 0, 0, 0, 1000, audit_row, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(db_audit_list("ns", "", "actor", 1100, 1200, 1150, 10, audit_row, &a), 0);
  assert_int_equal(a.n, 10);
  assert_string_equal(a.first, "unit.odd"); /* id 149, newest first */
  memset(&a, 0, sizeof a);
  assert_int_equal(db_audit_list("other", NULL, NULL, 0, 0, 0, 0, audit_row, &a), 0);
  assert_int_equal(a.n, 0);
  /* a duplicate id is refused (the chain's head moved), and says so */
  db_audit_row dup = {600, 1, "a", "-", "ip", "x", "ns", "t", "{}", "p", "h"};
  assert_int_equal(db_audit_insert(&dup), HUB_EEXISTS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accounts_and_tokens),
      cmocka_unit_test(test_repos_and_redirects),
      cmocka_unit_test(test_gate_sessions_objects),
      cmocka_unit_test(test_facets),
      cmocka_unit_test(test_audit),
  };
  const struct CMUnitTest pg_tests[] = {
      cmocka_unit_test(test_pg_accounts_and_tokens),
      cmocka_unit_test(test_pg_repos),
      cmocka_unit_test(test_pg_gate_sessions_objects),
      cmocka_unit_test(test_pg_facets),
      cmocka_unit_test(test_pg_audit),
  };
  int failed = cmocka_run_group_tests_name("sqlite", tests, setup, teardown);
  return failed + cmocka_run_group_tests_name("postgresql", pg_tests, pg_setup, pg_teardown);
}
