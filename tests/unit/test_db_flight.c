/* The router's repo lookup (db_repo_get_shared, db/flight.c), the lazy read snapshot and
 * the write fences (db/db.h), on SQLite and on a throwaway PostgreSQL cluster
 * (scripts/pg.sh; skipped, loudly, only when the PostgreSQL binaries are missing). */
#include "unit.h"
#include "pgtest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "db/db.h"
#include "db/engine.h"
#include "db/search.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-flight-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-flight-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Select the case's engine (the core schema is made on first use); 0 when skipped. */
static int use(void **state) {
  int e = *(int *)*state;
  if (e == ENG_PG) {
    if (!g_pg_up) return 0;
    assert_int_equal(db_engine_select(g_pg_url), 0);
  } else {
    assert_int_equal(db_engine_select("sqlite"), 0);
  }
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(auth_init(), 0); /* tokens.scopes */
  db_repo_cache_set_ms(0);
  return 1;
}

#define USE_OR_SKIP()                                                                              \
  do {                                                                                             \
    if (!use(state)) {                                                                             \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* Repo `name` of account "flight" (created once per engine). */
static db_repo make_repo(const char *name) {
  db_account a;
  if (db_account_by_name("flight", &a)) {
    memset(&a, 0, sizeof a);
    a.kind = ACCOUNT_USER;
    snprintf(a.name, sizeof a.name, "flight");
    assert_int_equal(db_account_create(&a), 0);
  }
  db_repo r;
  memset(&r, 0, sizeof r);
  r.type = HUB_REPO_MODEL;
  snprintf(r.ns, sizeof r.ns, "flight");
  snprintf(r.name, sizeof r.name, "%s", name);
  r.owner_id = a.id;
  r.created_ms = r.updated_ms = db_now_ms();
  assert_int_equal(db_repo_create(&r), 0);
  return r;
}

static void test_lookup(void **state) {
  USE_OR_SKIP();
  db_repo made = make_repo(db_engine() == DB_ENGINE_POSTGRES ? "lookup-pg" : "lookup");
  db_repo got;
  db_repo_stats st;
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", made.name, 0, 0, &got, &st), 0);
  assert_int_equal(got.id, made.id);
  assert_string_equal(got.uid, made.uid);
  assert_int_equal(st.downloads, 0);
  assert_int_equal(st.children, 0);
  db_repo_stats_dispose(&st);
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", made.name, 0, 0, &got, NULL), 0);
  assert_int_equal(got.id, made.id);
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", "nope", 0, 0, &got, &st),
                   HUB_EREPO);
  db_repo_stats_dispose(&st);
  assert_int_equal(db_repo_get_shared(HUB_REPO_DATASET, "flight", made.name, 0, 0, &got, NULL),
                   HUB_EREPO);
}

/* A read snapshot on PostgreSQL sends its BEGIN with its first statement: the router's
 * lookup before it runs on its own, and the snapshot still isolates what follows. */
static void *bump_private(void *arg) {
  db_repo r = *(db_repo *)arg;
  r.is_private = !r.is_private;
  if (db_repo_update(&r)) return (void *)1;
  db_write_fence();
  db_stmt_thread_end();
  return NULL;
}

static void test_lazy_snapshot(void **state) {
  USE_OR_SKIP();
  if (db_engine() != DB_ENGINE_POSTGRES) {
    skip();
    return;
  }
  db_repo made = make_repo("lazy");
  db_repo got;
  db_read_begin();
  assert_int_equal(db_in_transaction(), 1);
  assert_int_equal(db__pg_tx_begun(), 0);
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", "lazy", 0, 0, &got, NULL), 0);
  assert_int_equal(db__pg_tx_begun(), 0); /* the router's lookup went before the snapshot */
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "flight", "lazy", &got), 0);
  assert_int_equal(db__pg_tx_begun(), 1);
  assert_int_equal(got.is_private, 0);
  pthread_t t;
  void *res = (void *)1;
  assert_int_equal(pthread_create(&t, NULL, bump_private, &made), 0);
  pthread_join(t, &res);
  assert_null(res);
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "flight", "lazy", &got), 0);
  assert_int_equal(got.is_private, 0); /* one snapshot */
  db_read_end();
  assert_int_equal(db__pg_tx_begun(), 0);
  assert_int_equal(db_in_transaction(), 0);
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "flight", "lazy", &got), 0);
  assert_int_equal(got.is_private, 1);
  /* A snapshot that ran nothing ends without a word to the server. */
  db_read_begin();
  db_read_end();
  assert_int_equal(db_in_transaction(), 0);
  assert_int_equal(db__pg_tx_begun(), 0);
}

/* Many callers at once: every answer right, each from a query or a shared one. */
#define CALLERS 12
#define CALLS 40
static void *hammer(void *arg) {
  const db_repo *want = arg;
  long bad = 0;
  for (int i = 0; i < CALLS; i++) {
    db_repo got;
    db_repo_stats st;
    if (db_repo_get_shared(HUB_REPO_MODEL, "flight", want->name, 0, 0, &got, &st) ||
        got.id != want->id)
      bad++;
    else
      db_repo_stats_dispose(&st);
  }
  db_stmt_thread_end();
  return (void *)bad;
}

static void test_shared(void **state) {
  USE_OR_SKIP();
  db_repo made = make_repo(db_engine() == DB_ENGINE_POSTGRES ? "hammered-pg" : "hammered");
  long q0, s0, c0, q1, s1, c1;
  db_repo_shared_counts(&q0, &s0, &c0);
  pthread_t t[CALLERS];
  for (int i = 0; i < CALLERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, &made), 0);
  for (int i = 0; i < CALLERS; i++) {
    void *bad = (void *)1;
    pthread_join(t[i], &bad);
    assert_int_equal((long)bad, 0);
  }
  db_repo_shared_counts(&q1, &s1, &c1);
  assert_int_equal(c1 - c0, 0); /* the cache is off (0 ms) */
  if (db_engine() == DB_ENGINE_POSTGRES)
    assert_int_equal((q1 - q0) + (s1 - s0), CALLERS * CALLS);
  else
    assert_int_equal(q1 - q0, 0); /* SQLite asks directly */
}

/* The cache answers only while younger than the fence, and a writer's fence outlasts it:
 * once the writer may tell of its change, no cached answer predates the change. */
static void test_cache_and_fence(void **state) {
  USE_OR_SKIP();
  if (db_engine() != DB_ENGINE_POSTGRES) {
    skip();
    return;
  }
  const int ttl = 300;
  db_repo_cache_set_ms(ttl);
  db_repo made = make_repo("cached");
  db_repo got;
  long q0, s0, c0, q1, s1, c1;
  db_repo_shared_counts(&q0, &s0, &c0);
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", "cached", 0, 0, &got, NULL), 0);
  assert_int_equal(got.is_private, 0);
  /* Another thread changes the row and waits its fence. */
  int64_t t0 = now_us();
  pthread_t t;
  void *res = (void *)1;
  assert_int_equal(pthread_create(&t, NULL, bump_private, &made), 0);
  pthread_join(t, &res);
  assert_null(res);
  int64_t waited = now_us() - t0;
  assert_true(waited >= (int64_t)ttl * 1000 - 2000); /* the fence held it back */
  /* Now the writer may tell of it: the next lookup reads the row again. */
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", "cached", 0, 0, &got, NULL), 0);
  assert_int_equal(got.is_private, 1);
  /* Within the age, answers come from the cache. */
  assert_int_equal(db_repo_get_shared(HUB_REPO_MODEL, "flight", "cached", 0, 0, &got, NULL), 0);
  db_repo_shared_counts(&q1, &s1, &c1);
  assert_int_equal(q1 - q0, 2);
  assert_true(c1 - c0 >= 1);
  /* A transaction that changed nothing leaves no fence to wait for. */
  db_stmt_thread_end(); /* a fresh connection: no earlier write on this thread */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_repo_get(HUB_REPO_MODEL, "flight", "cached", &got), 0);
  assert_int_equal(db_tx_commit(), 0);
  t0 = now_us();
  db_write_fence();
  assert_true(now_us() - t0 < (int64_t)ttl * 1000 / 2);
  /* One that did, does. */
  got.is_private = 0;
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_repo_update(&got), 0);
  assert_int_equal(db_tx_commit(), 0);
  t0 = now_us();
  db_write_fence();
  assert_true(now_us() - t0 >= (int64_t)ttl * 1000 - 50000);
  db_repo_cache_set_ms(0);
}

/* Token identities: one statement; on PostgreSQL cached like repo rows, and a revocation
 * waited out by its fence is seen at once. */
static void *revoke_token(void *arg) {
  if (db_token_revoke(arg, 0)) return (void *)1;
  db_write_fence();
  db_stmt_thread_end();
  return NULL;
}

static void test_token_identity(void **state) {
  USE_OR_SKIP();
  int pg = db_engine() == DB_ENGINE_POSTGRES;
  db_repo_cache_set_ms(pg ? 300 : 0);
  make_repo(pg ? "tok-pg" : "tok"); /* makes the account */
  db_account owner;
  assert_int_equal(db_account_by_name("flight", &owner), 0);
  db_token t;
  memset(&t, 0, sizeof t);
  t.user_id = owner.id;
  t.role = 1;
  snprintf(t.name, sizeof t.name, "%s", pg ? "t-pg" : "t");
  const char *hash = pg ? "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
                        : "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
  assert_int_equal(db_token_create(&t, hash), 0);
  db_token got;
  db_account acc;
  assert_int_equal(db_token_identity_shared(hash, &got, &acc), 0);
  assert_int_equal(got.id, t.id);
  assert_int_equal(got.revoked, 0);
  assert_int_equal(acc.id, owner.id);
  assert_string_equal(acc.name, "flight");
  assert_string_equal(acc.password_hash, "");
  long h0 = db_token_cache_hits();
  assert_int_equal(db_token_identity_shared(hash, &got, &acc), 0);
  assert_int_equal(db_token_cache_hits() - h0, pg ? 1 : 0);
  pthread_t th;
  void *res = (void *)1;
  assert_int_equal(pthread_create(&th, NULL, revoke_token, t.uid), 0);
  pthread_join(th, &res);
  assert_null(res);
  assert_int_equal(db_token_identity_shared(hash, &got, &acc), 0);
  assert_int_equal(got.revoked, 1);
  assert_int_equal(db_token_identity_shared("00", &got, &acc), HUB_ENOTFOUND);
  db_repo_cache_set_ms(0);
}

static int group_setup(void **state) {
  (void)state;
  return pgtest_group_setup("test_db_flight", g_sqlite_dir, g_pg_dir, g_pg_url, sizeof g_pg_url,
                            &g_pg_up);
}

static int group_teardown(void **state) {
  (void)state;
  return pgtest_group_teardown(g_sqlite_dir, g_pg_dir, g_pg_up);
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &eng_sqlite), cmocka_unit_test_prestate(fn, &eng_pg)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_lookup),         cmocka_unit_test_prestate(test_lazy_snapshot, &eng_pg),
      BOTH(test_shared),         cmocka_unit_test_prestate(test_cache_and_fence, &eng_pg),
      BOTH(test_token_identity),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
