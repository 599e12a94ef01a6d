/* Webhooks' tables (db/webhooks.h): watch matching (repo, namespace, domain, disabled,
 * created after the event), one delivery pending per webhook with the rest waiting in
 * order, one delivery per (webhook, event, scope), the run of give-ups that disables a
 * webhook and the reset on success or by hand. The same cases on SQLite and on a throwaway
 * PostgreSQL cluster started with scripts/pg.sh (skipped, loudly, only when the PostgreSQL
 * binaries are missing), where the rows must land: the module's SQL runs through the
 * statement layer (db/stmt.h). */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <unistd.h>

#include "db/db.h"
#include "db/stmt.h"
#include "db/webhooks.h"
#include "util/error.h"

static int64_t g_user;
static char g_sqlite_dir[] = "/tmp/modelhub-unit-webhooks-XXXXXX";
static char g_pg_dir[] = "/tmp/modelhub-unit-webhooks-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

#define SKIP_UNLESS_ENGINE()                                                                       \
  do {                                                                                             \
    if (*(int *)*st && !g_pg_up) {                                                                 \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static int64_t count_rows(const char *sql) {
  db_stmt *q = db_prep_text(sql);
  assert_non_null(q);
  assert_int_equal(db_step(q), DB_ROW);
  int64_t n = db_col_int64(q, 0);
  db_prep_text_done(q);
  return n;
}

static int64_t make_hook(const char *repo, const char *ns, const char *domains) {
  db_webhook w;
  memset(&w, 0, sizeof w);
  w.user_id = g_user;
  snprintf(w.url, sizeof w.url, "http://example.com/h");
  snprintf(w.watched, sizeof w.watched, "[]");
  snprintf(w.domains, sizeof w.domains, "%s", domains);
  db_webhook_watch items[2];
  size_t n = 0;
  memset(items, 0, sizeof items);
  if (repo) {
    items[n].kind = DB_WATCH_REPO;
    items[n].repo_type = HUB_REPO_MODEL;
    snprintf(items[n++].name, sizeof items[0].name, "%s", repo);
  }
  if (ns) {
    items[n].kind = DB_WATCH_NS;
    snprintf(items[n++].name, sizeof items[0].name, "%s", ns);
  }
  assert_int_equal(db_webhook_create(&w, items, n), 0);
  assert_int_equal(strlen(w.uid), 24);
  return w.id;
}

static void test_match(void **st) {
  SKIP_UNLESS_ENGINE();
  int64_t a = make_hook("alice/m", NULL, "[\"repo\"]");
  int64_t b = make_hook(NULL, "alice", "[\"repo\",\"discussion\"]");
  int64_t c = make_hook("bob/m", NULL, "[\"repo\"]");
  int64_t ids[8];
  size_t n = 0;
  int64_t later = db_now_ms() + 1000;
  assert_int_equal(db_webhook_match(HUB_REPO_MODEL, "alice", "alice/m", "repo", later, ids, 8, &n),
                   0);
  assert_int_equal(n, 2);
  assert_true(ids[0] == a && ids[1] == b);
  /* Another type of the same name is another repo. */
  assert_int_equal(
      db_webhook_match(HUB_REPO_DATASET, "alice", "alice/m", "repo", later, ids, 8, &n), 0);
  assert_int_equal(n, 1);
  assert_true(ids[0] == b);
  /* Domain. */
  assert_int_equal(
      db_webhook_match(HUB_REPO_MODEL, "alice", "alice/m", "discussion", later, ids, 8, &n), 0);
  assert_int_equal(n, 1);
  /* An event older than the webhook is not its backlog. */
  assert_int_equal(db_webhook_match(HUB_REPO_MODEL, "alice", "alice/m", "repo", 1, ids, 8, &n), 0);
  assert_int_equal(n, 0);
  /* Disabled ones are left out; enabled again, back. */
  assert_int_equal(db_webhook_set_disabled(a, 1, "manual"), 0);
  assert_int_equal(db_webhook_match(HUB_REPO_MODEL, "alice", "alice/m", "repo", later, ids, 8, &n),
                   0);
  assert_int_equal(n, 1);
  assert_int_equal(db_webhook_set_disabled(a, 0, NULL), 0);
  assert_int_equal(db_webhook_delete(c), 0);
  assert_int_equal(db_webhook_match(HUB_REPO_MODEL, "bob", "bob/m", "repo", later, ids, 8, &n), 0);
  assert_int_equal(n, 0);
  db_webhook w;
  assert_int_equal(db_webhook_by_id(c, &w), HUB_ENOTFOUND);
}

/* End delivery id; its next is handed to the same owner when keep (else to "d<next>"). */
static void end_keep(int64_t id, const char *state, int disable_after, int keep, int *disabled,
                     int64_t *next) {
  db_webhook_delivery d;
  int new_owner;
  assert_int_equal(db_webhook_delivery_get(id, &d), 0);
  snprintf(d.state, sizeof d.state, "%s", state);
  d.attempts = 1;
  assert_int_equal(db_begin_immediate(), 0);
  assert_int_equal(db_webhook_delivery_finish(&d, disable_after, keep, disabled, next, &new_owner),
                   0);
  assert_int_equal(db_commit(), 0);
  if (*next) assert_int_equal(new_owner, !keep);
  db_webhook_delivery_dispose(&d);
}

static void end(int64_t id, const char *state, int disable_after, int *disabled, int64_t *next) {
  end_keep(id, state, disable_after, 0, disabled, next);
}

static void test_owner_chain(void **st) {
  SKIP_UNLESS_ENGINE();
  int64_t h = make_hook("alice/owned", NULL, "[\"repo\"]");
  int64_t d[3];
  int pending, disabled;
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        db_webhook_delivery_add(h, 300 + i, 0, 1, "repo.content", "update", "{}", &d[i], &pending),
        0);
  char k0[24], k2[24];
  snprintf(k0, sizeof k0, "d%lld", (long long)d[0]);
  snprintf(k2, sizeof k2, "d%lld", (long long)d[2]);
  db_webhook_delivery x;
  assert_int_equal(db_webhook_delivery_owned(h, k0, &x), 0);
  assert_int_equal(x.id, d[0]);
  db_webhook_delivery_dispose(&x);
  int64_t next;
  end_keep(d[0], "ok", 0, 1, &disabled, &next); /* the job keeps the chain */
  assert_int_equal(next, d[1]);
  assert_int_equal(db_webhook_delivery_owned(h, k0, &x), 0);
  assert_int_equal(x.id, d[1]);
  db_webhook_delivery_dispose(&x);
  end_keep(d[1], "ok", 0, 0, &disabled, &next); /* handed to a new job */
  assert_int_equal(next, d[2]);
  assert_int_equal(db_webhook_delivery_owned(h, k0, &x), HUB_ENOTFOUND);
  assert_int_equal(db_webhook_delivery_owned(h, k2, &x), 0);
  assert_int_equal(x.id, d[2]);
  db_webhook_delivery_dispose(&x);
  end_keep(d[2], "ok", 0, 1, &disabled, &next);
  assert_int_equal(next, 0);
  assert_int_equal(db_webhook_delivery_owned(h, k2, &x), HUB_ENOTFOUND);
}

static void test_in_order_chain(void **st) {
  SKIP_UNLESS_ENGINE();
  int64_t h = make_hook("alice/chain", NULL, "[\"repo\"]");
  int64_t d[3];
  int pending;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        db_webhook_delivery_add(h, 100 + i, 0, 1, "repo.content", "update", "{}", &d[i], &pending),
        0);
    assert_int_equal(pending, i == 0); /* only the first goes out at once */
  }
  /* The same event and scope again (a replayed consumer batch): refused. Another scope of
   * the same event (a merge is also a discussion event) is its own delivery. */
  int64_t dup;
  assert_int_equal(
      db_webhook_delivery_add(h, 100, 0, 1, "repo.content", "update", "{}", &dup, &pending),
      HUB_EEXISTS);
  int64_t other;
  assert_int_equal(
      db_webhook_delivery_add(h, 100, 0, 1, "discussion", "update", "{}", &other, &pending), 0);
  assert_int_equal(pending, 0);
  int disabled;
  int64_t next;
  end(d[0], "ok", 0, &disabled, &next);
  assert_int_equal(next, d[1]);
  db_webhook_delivery x;
  assert_int_equal(db_webhook_delivery_get(d[1], &x), 0);
  assert_string_equal(x.state, "pending");
  db_webhook_delivery_dispose(&x);
  assert_int_equal(db_webhook_delivery_get(d[2], &x), 0);
  assert_string_equal(x.state, "waiting");
  db_webhook_delivery_dispose(&x);
  end(d[1], "failed", 0, &disabled, &next);
  assert_int_equal(next, d[2]);
  end(d[2], "skipped", 0, &disabled, &next);
  assert_int_equal(next, other);
  end(other, "ok", 0, &disabled, &next);
  assert_int_equal(next, 0);
  /* A replay of a finished delivery goes out at once (nothing pending). */
  int64_t r;
  assert_int_equal(
      db_webhook_delivery_add(h, 100, d[0], 1, "repo.content", "update", "{}", &r, &pending), 0);
  assert_int_equal(pending, 1);
}

static void test_disable_after_give_ups(void **st) {
  SKIP_UNLESS_ENGINE();
  int64_t h = make_hook("alice/flaky", NULL, "[\"repo\"]");
  int disabled = 0, pending;
  int64_t next, id;
  db_webhook w;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        db_webhook_delivery_add(h, 200 + i, 0, 1, "repo.content", "update", "{}", &id, &pending),
        0);
    end(id, i == 1 ? "ok" : "failed", 2, &disabled, &next);
    assert_int_equal(disabled, 0); /* the success in between reset the run */
  }
  assert_int_equal(db_webhook_by_id(h, &w), 0);
  assert_int_equal(w.failures, 1);
  assert_true(w.last_ok_ms > 0);
  assert_int_equal(
      db_webhook_delivery_add(h, 210, 0, 1, "repo.content", "update", "{}", &id, &pending), 0);
  end(id, "failed", 2, &disabled, &next);
  assert_int_equal(disabled, 1);
  assert_int_equal(db_webhook_by_id(h, &w), 0);
  assert_int_equal(w.disabled, 1);
  assert_string_equal(w.disabled_reason, "failures");
  assert_int_equal(w.failures, 2);
  /* Enabled by hand: the run starts again. */
  assert_int_equal(db_webhook_set_disabled(h, 0, NULL), 0);
  assert_int_equal(db_webhook_by_id(h, &w), 0);
  assert_int_equal(w.disabled, 0);
  assert_int_equal(w.failures, 0);
  assert_string_equal(w.disabled_reason, "");
}

/* A replayed consumer batch inside one transaction: the duplicate is refused and the
 * transaction goes on (on PostgreSQL a failed statement would abort all of it). */
static void test_duplicate_in_transaction(void **st) {
  SKIP_UNLESS_ENGINE();
  int64_t h = make_hook("alice/replayed", NULL, "[\"repo\"]");
  int64_t a, b, c;
  int pending;
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0); /* a real transaction on either engine */
  assert_int_equal(
      db_webhook_delivery_add(h, 400, 0, 1, "repo.content", "update", "{}", &a, &pending), 0);
  assert_int_equal(
      db_webhook_delivery_add(h, 400, 0, 1, "repo.content", "update", "{}", &b, &pending),
      HUB_EEXISTS);
  assert_int_equal(
      db_webhook_delivery_add(h, 401, 0, 1, "repo.content", "update", "{}", &c, &pending), 0);
  assert_int_equal(db_tx_commit(), 0);
  assert_true(c > a);
  db_webhook_delivery d;
  assert_int_equal(db_webhook_delivery_get(c, &d), 0);
  assert_string_equal(d.state, "waiting");
  db_webhook_delivery_dispose(&d);
  /* The rows are in this engine's tables. */
  assert_int_equal(count_rows("SELECT count(*) FROM webhook_deliveries WHERE event_id>=400"), 2);
  assert_int_equal(count_rows("SELECT count(*) FROM webhooks"), 6);
}

static int setup_sqlite(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || db_engine_select("sqlite") || db_global_init(g_sqlite_dir) ||
      db_webhooks_init())
    return -1;
  db_account u = {0};
  snprintf(u.name, sizeof u.name, "alice");
  if (db_account_create(&u)) return -1;
  g_user = u.id;
  return 0;
}

/* PostgreSQL: a cluster of its own, with a stand-in for the accounts table the module's
 * foreign key names (the core schema is not this module's). db.h's transactions stay on the
 * SQLite connection until they are engine-neutral too; the statements go to PostgreSQL. */
static int setup_pg(void **state) {
  (void)state;
  if (!mkdtemp(g_pg_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3) {
    fprintf(stderr, "\n*** test_webhooks: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL cases are SKIPPED ***\n\n");
    return 0;
  }
  if (rc) {
    fprintf(stderr, "%s: scripts/pg.sh start failed (%d)\n", "test_webhooks", rc);
    return -1;
  }
  g_pg_up = 1;
  if (db_engine_select(g_pg_url) ||
      db_exec("CREATE TABLE accounts(id BIGINT PRIMARY KEY); INSERT INTO accounts VALUES(3)") ||
      db_webhooks_init() || db_webhooks_init()) {
    fprintf(stderr, "test_webhooks: PostgreSQL setup: %s\n", hub_error_msg());
    return -1;
  }
  g_user = 3;
  return 0;
}

static int teardown_pg(void **state) {
  (void)state;
  db_stmt_thread_end();
  db_engine_select("sqlite");
  if (g_pg_up) pg_script("stop", NULL, 0);
  return 0;
}

static int eng_sqlite = 0, eng_pg = 1;
#define CASES(eng)                                                                                 \
  {                                                                                                \
    cmocka_unit_test_prestate(test_match, &eng),                                                   \
        cmocka_unit_test_prestate(test_in_order_chain, &eng),                                      \
        cmocka_unit_test_prestate(test_owner_chain, &eng),                                         \
        cmocka_unit_test_prestate(test_disable_after_give_ups, &eng),                              \
        cmocka_unit_test_prestate(test_duplicate_in_transaction, &eng),                            \
  }

int main(void) {
  const struct CMUnitTest lite[] = CASES(eng_sqlite);
  const struct CMUnitTest pg[] = CASES(eng_pg);
  int rc = cmocka_run_group_tests_name("sqlite", lite, setup_sqlite, NULL);
  rc |= cmocka_run_group_tests_name("postgres", pg, setup_pg, teardown_pg);
  db_global_shutdown();
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_sqlite_dir, g_pg_dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
