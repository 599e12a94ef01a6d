/* The small db files on the statement layer (db/stmt.h): accounts, tokens, memberships,
 * repos and redirects, gate requests, sessions, per-repo objects, facets and the audit log,
 * through their public functions. The cases that the conversion changed the shape of: new
 * ids read back with RETURNING, duplicates that must not break a caller's transaction,
 * upserts that replaced INSERT OR REPLACE, max(a,b) as CASE, pages of a full walk (audit
 * verify, the languages facet) and the languages facet counted in C. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accounts_and_tokens),
      cmocka_unit_test(test_repos_and_redirects),
      cmocka_unit_test(test_gate_sessions_objects),
      cmocka_unit_test(test_facets),
      cmocka_unit_test(test_audit),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
