/* Leases, cross-node ref turns, shared counters and first-writer-wins kv (db/lock.h), on
 * SQLite and on a throwaway PostgreSQL cluster (scripts/pg.sh; skipped, loudly, only when
 * the PostgreSQL binaries are missing). Another node is played by rows with another owner. */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/lock.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-nodes-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-nodes-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

/* Select the test's engine and make the "nodes" schema there; 0 when skipped. */
static int use(void **state) {
  int e = *(int *)*state;
  if (e == ENG_PG) {
    if (!g_pg_up) return 0;
    assert_int_equal(db_engine_select(g_pg_url), 0);
  } else {
    assert_int_equal(db_engine_select("sqlite"), 0);
  }
  assert_int_equal(db_locks_init(), 0);
  return 1;
}

#define USE_OR_SKIP()                                                                              \
  do {                                                                                             \
    if (!use(state)) {                                                                             \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* A lease row of another node. */
static void foreign(const char *name, int64_t until_ms) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "DELETE FROM node_leases WHERE name='%s';"
           "INSERT INTO node_leases(name, owner, until_ms) VALUES('%s', 'other:1:x', %lld)",
           name, name, (long long)until_ms);
  assert_int_equal(db_exec(sql), 0);
}

static void test_leases(void **state) {
  USE_OR_SKIP();
  db_exec("DELETE FROM node_leases");
  assert_int_equal(db_lease_take("a", 10000), 1);
  assert_int_equal(db_lease_take("a", 10000), 1); /* renewal */
  foreign("b", db_now_ms() + 60000);
  assert_int_equal(db_lease_take("b", 10000), 0); /* another node's, running */
  assert_int_equal(db_lease_drop("b"), 0);        /* not ours: stays */
  assert_int_equal(db_lease_take("b", 10000), 0);
  foreign("b", db_now_ms() - 1);
  assert_int_equal(db_lease_take("b", 10000), 1); /* expired: taken over */
  assert_int_equal(db_lease_drop("a"), 0);
  foreign("a", db_now_ms() + 60000); /* dropped: another node may take it at once */
  assert_int_equal(db_lease_take("a", 10000), 0);
  assert_true(strchr(db_node_id(), ':') != NULL);
}

static void test_repo_lock(void **state) {
  USE_OR_SKIP();
  db_exec("DELETE FROM node_leases");
  assert_int_equal(db_repo_lock("uid1", "refs/heads/main", 1000), 0);
  assert_int_equal(db_repo_lock("uid1", "refs/heads/dev", 1000), 0); /* another ref */
  db_repo_unlock("uid1", "refs/heads/main");
  db_repo_unlock("uid1", "refs/heads/dev");
  foreign("ref:uid1:refs/heads/main", db_now_ms() + 60000);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_int_equal(db_repo_lock("uid1", "refs/heads/main", 150), HUB_ERETRY);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  assert_true(ms >= 140);
  /* the other node's lease runs out while we wait: we get the turn */
  foreign("ref:uid1:refs/heads/main", db_now_ms() + 100);
  assert_int_equal(db_repo_lock("uid1", "refs/heads/main", 5000), 0);
  db_repo_unlock("uid1", "refs/heads/main");
}

/* Maintenance against other nodes' ref turns (lock.h): it waits for them (and gives up
 * after its wait), and a turn taken while another node's maintenance runs gives way. */
static void test_maint_lease(void **state) {
  USE_OR_SKIP();
  db_exec("DELETE FROM node_leases");
  assert_int_equal(db_repo_maint_begin("uidm", 200), 0); /* nothing in the way */
  assert_int_equal(db_repo_maint_renew("uidm"), 0);
  assert_int_equal(db_repo_lock("uidm", "refs/heads/main", 100), 0); /* this node: its lock */
  db_repo_unlock("uidm", "refs/heads/main");
  db_repo_maint_end("uidm");
  /* another node's turn on a ref of the repo: maintenance waits, then puts it off */
  foreign("ref:uidm:refs/heads/dev", db_now_ms() + 60000);
  assert_int_equal(db_repo_maint_begin("uidm", 100), HUB_ERETRY);
  /* the lease it took meanwhile was dropped: turns are not held back */
  assert_int_equal(db_repo_lock("uidm", "refs/heads/main", 100), 0);
  db_repo_unlock("uidm", "refs/heads/main");
  foreign("ref:uidm:refs/heads/dev", db_now_ms() - 1); /* that node died: lease ran out */
  assert_int_equal(db_repo_maint_begin("uidm", 200), 0);
  db_repo_maint_end("uidm");
  /* another node's maintenance: turns give way and leave no lease behind */
  foreign("maint:uidm", db_now_ms() + 60000);
  assert_int_equal(db_repo_lock("uidm", "refs/heads/main", 100), HUB_ERETRY);
  db_stmt *st = db_prep("SELECT count(*) FROM node_leases WHERE name='ref:uidm:refs/heads/main'");
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_int64(st, 0), 0);
  db_reset(st);
  assert_int_equal(db_repo_maint_begin("uidm", 100), HUB_ERETRY); /* one at a time */
  foreign("maint:uidm", db_now_ms() - 1); /* it ended badly: the lease ran out */
  assert_int_equal(db_repo_lock("uidm", "refs/heads/main", 100), 0);
  db_repo_unlock("uidm", "refs/heads/main");
  assert_int_equal(db_repo_maint_begin("bad%key", 100), HUB_EINVALID);
}

static void test_counters(void **state) {
  USE_OR_SKIP();
  int n = -1;
  int64_t start = -1;
  db_exec("DELETE FROM node_counters");
  assert_int_equal(db_counter_get("k", 60000, &n, &start), 0);
  assert_int_equal(n, 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(db_counter_add("k", 60000), 0);
  assert_int_equal(db_counter_get("k", 60000, &n, &start), 0);
  assert_int_equal(n, 3);
  assert_true(start > 0 && start <= db_now_ms());
  assert_int_equal(db_counter_clear("k"), 0);
  assert_int_equal(db_counter_get("k", 60000, &n, &start), 0);
  assert_int_equal(n, 0);
  /* a window that ran out starts again at 1 */
  assert_int_equal(db_counter_add("w", 30), 0);
  assert_int_equal(db_counter_add("w", 30), 0);
  usleep(60 * 1000);
  assert_int_equal(db_counter_get("w", 30, &n, &start), 0);
  assert_int_equal(n, 0);
  assert_int_equal(db_counter_add("w", 30), 0);
  assert_int_equal(db_counter_get("w", 30, &n, &start), 0);
  assert_int_equal(n, 1);
}

/* kv lives in the core schema (SQLite only until conn.c is converted). */
static void test_kv_claim(void **state) {
  (void)state;
  assert_int_equal(db_engine_select("sqlite"), 0);
  unsigned char a[8] = "AAAAAAA", b[8] = "BBBBBBB";
  assert_int_equal(db_kv_claim("claimed", a, sizeof a), 0);
  assert_int_equal(db_kv_claim("claimed", b, sizeof b), 0);
  assert_memory_equal(b, "AAAAAAA", 8); /* the second writer gets the first value */
  unsigned char c[8] = {0};
  size_t n = 0;
  assert_int_equal(db_kv_get("claimed", c, sizeof c, &n), 0);
  assert_memory_equal(c, "AAAAAAA", 8);
}

static int group_setup(void **state) {
  (void)state;
  return pgtest_group_setup("test_nodes", g_sqlite_dir, g_pg_dir, g_pg_url, sizeof g_pg_url,
                            &g_pg_up);
}

static int group_teardown(void **state) {
  (void)state;
  return pgtest_group_teardown(g_sqlite_dir, g_pg_dir, g_pg_up);
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &eng_sqlite), cmocka_unit_test_prestate(fn, &eng_pg)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_leases),
      BOTH(test_repo_lock),
      BOTH(test_maint_lease),
      BOTH(test_counters),
      cmocka_unit_test(test_kv_claim),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
