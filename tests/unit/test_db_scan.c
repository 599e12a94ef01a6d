/* The scan service's tables (db/scan.h) on both database engines: SQLite, and a throwaway
 * PostgreSQL cluster started with scripts/pg.sh (skipped, loudly, only when the PostgreSQL
 * binaries are missing). Notes and states, finished scans counted (the upsert), hints and
 * paths, requeues, issues and counts, overrides, org policies, walked trees, forgetting
 * orphans, and the sha256 links of a Xet file (a blob parameter). On PostgreSQL the rows
 * must land there: the module's SQL runs through the statement layer (db/stmt.h). */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <unistd.h>

#include "db/db.h"
#include "db/scan.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-unit-dbscan-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-unit-dbscan-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;
static int64_t g_repo[2], g_account;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

/* xet_sha as the xetsrv module has it (only the columns this module reads matter). */
static const char XET_SHA[] =
    "CREATE TABLE IF NOT EXISTS xet_sha(sha256 TEXT NOT NULL, file BLOB NOT NULL,"
    " size INTEGER NOT NULL, verified INTEGER NOT NULL, repo_id INTEGER NOT NULL,"
    " PRIMARY KEY(sha256, file, repo_id))";

static int setup_sqlite(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir) || db_scan_init() ||
      db_exec(XET_SHA))
    return -1;
  db_account u = {0};
  snprintf(u.name, sizeof u.name, "alice");
  if (db_account_create(&u)) return -1;
  g_account = u.id;
  for (int i = 0; i < 2; i++) {
    db_repo r = {0};
    r.type = HUB_REPO_MODEL;
    r.owner_id = u.id;
    snprintf(r.ns, sizeof r.ns, "alice");
    snprintf(r.name, sizeof r.name, "m%d", i);
    if (db_repo_create(&r)) return -1;
    g_repo[i] = r.id;
  }
  return 0;
}

static int teardown_sqlite(void **state) {
  (void)state;
  return 0; /* the connection stays for the PostgreSQL group (db.h transactions) */
}

/* PostgreSQL: a cluster of its own with stand-ins for the core tables the module's foreign
 * keys name (the core schema is not this module's). */
static int setup_pg(void **state) {
  (void)state;
  if (!mkdtemp(g_pg_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3) {
    fprintf(stderr, "\n*** test_db_scan: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL cases are SKIPPED ***\n\n");
    return 0;
  }
  if (rc) {
    fprintf(stderr, "%s: scripts/pg.sh start failed (%d)\n", "test_db_scan", rc);
    return -1;
  }
  g_pg_up = 1;
  if (db_engine_select(g_pg_url) ||
      db_exec("CREATE TABLE accounts(id BIGINT PRIMARY KEY);"
              "CREATE TABLE repos(id BIGINT PRIMARY KEY);"
              "INSERT INTO accounts VALUES(7); INSERT INTO repos VALUES(11), (12);") ||
      db_exec(XET_SHA) || db_scan_init() || db_scan_init()) {
    fprintf(stderr, "test_db_scan: PostgreSQL setup: %s\n", hub_error_msg());
    return -1;
  }
  g_account = 7;
  g_repo[0] = 11;
  g_repo[1] = 12;
  return 0;
}

static int teardown_pg(void **state) {
  (void)state;
  db_stmt_thread_end();
  db_engine_select("sqlite");
  if (g_pg_up) pg_script("stop", NULL, 0);
  return 0;
}

#define SKIP_UNLESS_ENGINE()                                                                       \
  do {                                                                                             \
    if (*(int *)*state && !g_pg_up) {                                                              \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static int64_t count_rows(const char *sql) {
  db_stmt *st = db_prep_text(sql);
  assert_non_null(st);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t n = db_col_int64(st, 0);
  db_prep_text_done(st);
  return n;
}

typedef struct {
  int n;
  int64_t repo[8];
  char text[8][80];
} seen;

static int path_cb(int64_t repo_id, const char *path, void *payload) {
  seen *s = payload;
  if (s->n < 8) {
    s->repo[s->n] = repo_id;
    snprintf(s->text[s->n++], sizeof s->text[0], "%s", path);
  }
  return 0;
}

static int issue_cb(int64_t repo_id, const char *path, const char *oid, const char *level,
                    void *payload) {
  seen *s = payload;
  if (s->n < 8) {
    s->repo[s->n] = repo_id;
    snprintf(s->text[s->n++], sizeof s->text[0], "%s %s %.8s", path, level, oid);
  }
  return 0;
}

static int oid_cb(const char *oid, int64_t repo_id, void *payload) {
  seen *s = payload;
  if (s->n < 8) {
    s->repo[s->n] = repo_id;
    snprintf(s->text[s->n++], sizeof s->text[0], "%s", oid);
  }
  return 0;
}

static int object_cb(const char *oid, const char *state, const char *level, int64_t scans,
                     void *payload) {
  seen *s = payload;
  if (s->n < 8)
    snprintf(s->text[s->n++], sizeof s->text[0], "%.8s %s %s %lld", oid, state, level,
             (long long)scans);
  return 0;
}

static int sha_cb(const char *sha, void *payload) {
  seen *s = payload;
  if (s->n < 8) snprintf(s->text[s->n++], sizeof s->text[0], "%s", sha);
  return 0;
}

#define OID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define OID_C "cccccccccccccccccccccccccccccccccccccccc"
#define OID_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static void test_note_scan_issues(void **state) {
  SKIP_UNLESS_ENGINE();
  char st8[8];
  assert_int_equal(db_scan_note(g_repo[0], OID_A, 10, "a.bin", st8), 0);
  assert_string_equal(st8, "queued");
  assert_int_equal(db_scan_note(g_repo[1], OID_A, 10, "b/a.bin", st8), 0);
  assert_int_equal(db_scan_note(g_repo[1], OID_A, 10, "b/a.bin", st8), 0); /* idempotent */
  assert_string_equal(st8, "queued");
  assert_int_equal(count_rows("SELECT count(*) FROM scan_paths"), 2);
  int64_t pending = -1, queued = -1, per[5];
  assert_int_equal(db_scan_repo_pending(g_repo[0], &pending), 0);
  assert_int_equal(pending, 1);
  seen s = {0};
  assert_int_equal(db_scan_queued_each(oid_cb, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.text[0], OID_A);
  assert_true(s.repo[0] == g_repo[0] || s.repo[0] == g_repo[1]);

  /* Two finished scans of the same object: the second updates the row (scans 2). */
  assert_int_equal(db_scan_object_done(OID_A, 10, "caution", "{}", "ok", 5), 0);
  assert_int_equal(db_scan_object_done(OID_A, 10, "unsafe", "{\"f\":1}", "ok", 6), 0);
  db_scan_object o;
  assert_int_equal(db_scan_object_get(OID_A, &o), 0);
  assert_string_equal(o.state, "done");
  assert_string_equal(o.level, "unsafe");
  assert_string_equal(o.report, "{\"f\":1}");
  assert_int_equal(o.scans, 2);
  assert_int_equal(o.av_sigs, 6);
  assert_int_equal(o.size, 10);
  assert_true(o.scanned_ms > 0);
  db_scan_object_dispose(&o);
  assert_int_equal(db_scan_object_get(OID_B, &o), HUB_ENOTFOUND);
  assert_int_equal(db_scan_note(g_repo[0], OID_A, 10, "copy.bin", st8), 0);
  assert_string_equal(st8, "done");
  assert_int_equal(db_scan_repo_pending(g_repo[0], &pending), 0);
  assert_int_equal(pending, 0);

  int64_t repo_id = 0;
  char path[64];
  assert_int_equal(db_scan_hint(OID_A, &repo_id, path, sizeof path), 0);
  assert_int_equal(db_scan_hint(OID_B, &repo_id, path, sizeof path), HUB_ENOTFOUND);
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_paths_of(OID_A, path_cb, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.repo[0], g_repo[0]);
  assert_string_equal(s.text[0], "a.bin");
  assert_string_equal(s.text[1], "copy.bin");
  assert_string_equal(s.text[2], "b/a.bin");

  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_issues(0, 10, issue_cb, &s), 0);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.text[0], "a.bin unsafe aaaaaaaa");
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_issues(g_repo[1], 10, issue_cb, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.text[0], "b/a.bin unsafe aaaaaaaa");
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_issues(0, 1, issue_cb, &s), 0); /* the limit */
  assert_int_equal(s.n, 1);

  assert_int_equal(db_scan_counts(&queued, per), 0);
  assert_int_equal(queued, 0);
  assert_int_equal(per[3], 1);
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_objects_each(10, object_cb, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.text[0], "aaaaaaaa done unsafe 2");
}

static void test_requeue_forget(void **state) {
  SKIP_UNLESS_ENGINE();
  char st8[8];
  /* B: final AV result with 6 signatures; C: AV not run; D: no repo names it. */
  assert_int_equal(db_scan_note(g_repo[0], OID_B, 1, "b.bin", st8), 0);
  assert_int_equal(db_scan_object_done(OID_B, 1, "safe", "{}", "ok", 6), 0);
  assert_int_equal(db_scan_note(g_repo[0], OID_C, 1, "c.txt", st8), 0);
  assert_int_equal(db_scan_object_done(OID_C, 1, "safe", "{}", "unscanned", 0), 0);
  assert_int_equal(db_scan_object_done(OID_D, 1, "safe", "{}", "ok", 6), 0);
  seen s = {0};
  assert_int_equal(db_scan_requeue(1, 6, oid_cb, &s), 0);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.text[0], OID_C);
  assert_int_equal(s.repo[0], g_repo[0]);
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_requeue(1, 7, oid_cb, &s), 0); /* a new AV database: all done ones */
  assert_true(s.n >= 3);
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_requeue(0, 0, oid_cb, &s), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM scan_objects WHERE state<>'queued'"), 0);
  /* Forgetting drops a queued object only when no repo names it. */
  assert_int_equal(db_scan_object_forget(OID_D), 0);
  assert_int_equal(db_scan_object_forget(OID_C), 0);
  db_scan_object o;
  assert_int_equal(db_scan_object_get(OID_D, &o), HUB_ENOTFOUND);
  assert_int_equal(db_scan_object_get(OID_C, &o), 0);
  assert_string_equal(o.state, "queued");
  db_scan_object_dispose(&o);
}

static void test_overrides_policy_trees(void **state) {
  SKIP_UNLESS_ENGINE();
  db_scan_override ov;
  assert_int_equal(db_scan_override_get(g_repo[0], OID_A, &ov), HUB_ENOTFOUND);
  assert_int_equal(db_scan_override_set(g_repo[0], OID_A, "a.bin", "alice", "vetted"), 0);
  assert_int_equal(db_scan_override_set(g_repo[0], OID_A, "a.bin", "bob", "re-vetted"), 0);
  assert_int_equal(db_scan_override_get(g_repo[0], OID_A, &ov), 0);
  assert_string_equal(ov.actor, "bob");
  assert_string_equal(ov.reason, "re-vetted");
  assert_string_equal(ov.path, "a.bin");
  assert_true(ov.created_ms > 0);
  assert_int_equal(db_scan_override_get(g_repo[1], OID_A, NULL), HUB_ENOTFOUND);
  assert_int_equal(db_scan_override_delete(g_repo[0], OID_A), 0);
  assert_int_equal(db_scan_override_delete(g_repo[0], OID_A), HUB_ENOTFOUND);

  char pol[24];
  assert_int_equal(db_scan_org_policy_get(g_account, pol), 0);
  assert_string_equal(pol, "");
  assert_int_equal(db_scan_org_policy_set(g_account, "block", "alice"), 0);
  assert_int_equal(db_scan_org_policy_set(g_account, "warn", "alice"), 0);
  assert_int_equal(db_scan_org_policy_get(g_account, pol), 0);
  assert_string_equal(pol, "warn");
  assert_int_equal(db_scan_org_policy_set(g_account, "", "alice"), 0);
  assert_int_equal(db_scan_org_policy_get(g_account, pol), 0);
  assert_string_equal(pol, "");

  assert_int_equal(db_scan_tree_seen(g_repo[0], OID_C), 0);
  assert_int_equal(db_scan_tree_mark(g_repo[0], OID_C), 0);
  assert_int_equal(db_scan_tree_mark(g_repo[0], OID_C), 0); /* once */
  assert_int_equal(db_scan_tree_seen(g_repo[0], OID_C), 1);
  assert_int_equal(db_scan_tree_seen(g_repo[1], OID_C), 0);
}

static void test_xet_file_shas(void **state) {
  SKIP_UNLESS_ENGINE();
  uint8_t file[32], other[32];
  memset(file, 0x5c, sizeof file); /* a backslash byte: bytea's escape character */
  file[0] = 0;
  memset(other, 0x11, sizeof other);
  static const char *const SHAS[] = {OID_A, OID_B, OID_A, OID_D};
  for (int i = 0; i < 4; i++) {
    if (i == 3) { /* the file stands for two sha256s (distinct), then three */
      seen s = {0};
      assert_int_equal(db_scan_xet_file_check(file, sha_cb, &s), 0);
      assert_int_equal(s.n, 2);
    }
    db_stmt *st = db_prep_text(
        "INSERT INTO xet_sha(sha256, file, size, verified, repo_id) VALUES(?,?,1,1,?)");
    assert_non_null(st);
    db_bind_text(st, 1, SHAS[i], -1);
    db_bind_blob(st, 2, file, sizeof file);
    db_bind_int64(st, 3, i);
    assert_int_equal(db_step(st), DB_DONE);
    db_prep_text_done(st);
  }
  seen s = {0};
  assert_int_equal(db_scan_xet_file_check(file, sha_cb, &s), 0);
  assert_int_equal(s.n, 3);
  memset(&s, 0, sizeof s);
  assert_int_equal(db_scan_xet_file_check(other, sha_cb, &s), 0);
  assert_int_equal(s.n, 0);
}

static int eng_sqlite = 0, eng_pg = 1;
#define CASES(eng)                                                                                 \
  {                                                                                                \
    cmocka_unit_test_prestate(test_note_scan_issues, &eng),                                        \
        cmocka_unit_test_prestate(test_requeue_forget, &eng),                                      \
        cmocka_unit_test_prestate(test_overrides_policy_trees, &eng),                              \
        cmocka_unit_test_prestate(test_xet_file_shas, &eng),                                       \
  }

int main(void) {
  const struct CMUnitTest lite[] = CASES(eng_sqlite);
  const struct CMUnitTest pg[] = CASES(eng_pg);
  int rc = cmocka_run_group_tests_name("sqlite", lite, setup_sqlite, teardown_sqlite);
  rc |= cmocka_run_group_tests_name("postgres", pg, setup_pg, teardown_pg);
  db_global_shutdown();
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_sqlite_dir, g_pg_dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
