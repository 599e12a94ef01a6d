/* The event log, jobs, mirror and Xet tables (db/events.c, jobs.c, mirror.c, xet.c) on both
 * database engines: their migrations and every kind of statement they run (upserts,
 * RETURNING ids, CASE for two-argument max, durable and nested transactions, BLOB keys,
 * the repo-delete trigger) against SQLite and against a throwaway PostgreSQL cluster
 * started with scripts/pg.sh (skipped, loudly, only when the PostgreSQL binaries are
 * missing). Each case also counts its rows through the statement layer on the engine in
 * use, so a statement that went to the wrong database fails the case. */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/db.h"
#include "db/events.h"
#include "db/jobs.h"
#include "db/mirror.h"
#include "db/stmt.h"
#include "db/xet.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-dbspine-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-pgspine-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

/* The core tables these modules reference, as far as they use them. SQLite has them from
 * db_global_init (IF NOT EXISTS leaves them alone); PostgreSQL gets these stand-ins until
 * the core schema runs there. */
static const char *const CORE_STANDIN =
    "CREATE TABLE IF NOT EXISTS accounts(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL, name TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS repos(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " type INTEGER NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id), owner_is_org INTEGER NOT NULL,"
    " private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',"
    " disabled INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, UNIQUE(type, ns, name));"
    "CREATE TABLE IF NOT EXISTS repo_objects(repo_id INTEGER NOT NULL REFERENCES repos(id)"
    " ON DELETE CASCADE, oid TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY(repo_id, oid));";

static int group_setup(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3)
    fprintf(stderr, "\n*** test_db_spine: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL cases are SKIPPED ***\n\n");
  else if (rc != 0) {
    fprintf(stderr, "test_db_spine: scripts/pg.sh start failed (%d)\n", rc);
    return -1;
  }
  g_pg_up = rc == 0;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  db_stmt_thread_end();
  db_engine_select("sqlite");
  db_global_shutdown();
  if (g_pg_up) pg_script("stop", NULL, 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_sqlite_dir, g_pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Select the case's engine and make sure the schema is there; 0 when it must be skipped. */
static int use(void **state) {
  int e = *(int *)*state;
  if (e == ENG_PG) {
    if (!g_pg_up) return 0;
    assert_int_equal(db_engine_select(g_pg_url), 0);
    assert_int_equal(db_engine(), DB_ENGINE_POSTGRES);
  } else {
    assert_int_equal(db_engine_select("sqlite"), 0);
    assert_int_equal(db_engine(), DB_ENGINE_SQLITE);
  }
  assert_int_equal(db_exec(CORE_STANDIN), 0);
  assert_int_equal(db_events_init(), 0);
  assert_int_equal(db_jobs_init(), 0);
  assert_int_equal(db_mirror_init(), 0);
  assert_int_equal(db_xet_migrate(), 0);
  assert_int_equal(db_xet_objects_migrate(), 0);
  return 1;
}

#define USE_OR_SKIP()                                                                              \
  do {                                                                                             \
    if (!use(state)) {                                                                             \
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

/* An account and a repo with this id (the same SQL on both engines). */
static void make_repo(int64_t id) {
  db_stmt *st = db_prep("INSERT INTO accounts(id, uid, kind, name, created_ms)"
                        " VALUES(1, 'acct1', 0, 'spine-owner', 0) ON CONFLICT DO NOTHING");
  assert_non_null(st);
  assert_int_equal(db_step_done(st), 0);
  st = db_prep("INSERT INTO repos(id, uid, type, ns, name, owner_id, owner_is_org, created_ms,"
               " updated_ms) VALUES(?1, 'uid' || ?1, 0, 'spine-owner', 'r' || ?1, 1, 0, 0, 0)");
  assert_non_null(st);
  assert_int_equal(db_bind_int64(st, 1, id), 0);
  assert_int_equal(db_step_done(st), 0);
}

static void delete_repo(int64_t id) {
  db_stmt *st = db_prep("DELETE FROM repos WHERE id=?");
  assert_non_null(st);
  db_bind_int64(st, 1, id);
  assert_int_equal(db_step_done(st), 0);
}

static void event(db_event *e, int64_t repo_id, const char *ref, const char *old,
                  const char *new_) {
  memset(e, 0, sizeof *e);
  e->repo_id = repo_id;
  snprintf(e->repo_uid, sizeof e->repo_uid, "uid%lld", (long long)repo_id);
  snprintf(e->kind, sizeof e->kind, "push");
  snprintf(e->ref, sizeof e->ref, "%s", ref);
  snprintf(e->old, sizeof e->old, "%s", old);
  snprintf(e->new_, sizeof e->new_, "%s", new_);
}

static int ref_cb(const char *ref, const char *sha, void *p) {
  assert_non_null(ref);
  assert_int_equal(strlen(sha), 40);
  (*(int *)p)++;
  return 0;
}

static int count_cb(const db_event *e, void *p) {
  (void)e;
  (*(int *)p)++;
  return 0;
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_events(void **state) {
  USE_OR_SKIP();
  int64_t before = count_rows("SELECT count(*) FROM events");
  db_event e1, e2;
  event(&e1, 7, "refs/heads/main", "", SHA_A);
  assert_int_equal(db_event_append(&e1), 0);
  assert_true(e1.id > 0);
  event(&e2, 7, "refs/heads/main", SHA_A, SHA_B);
  assert_int_equal(db_event_append(&e2), 0);
  assert_true(e2.id > e1.id); /* RETURNING id */
  assert_int_equal(count_rows("SELECT count(*) FROM events"), before + 2);
  char sha[41];
  assert_int_equal(db_event_ref_get(7, "refs/heads/main", sha), 1);
  assert_string_equal(sha, SHA_B); /* the upsert replaced the ref */
  assert_int_equal(count_rows("SELECT count(*) FROM event_refs WHERE repo_id=7"), 1);
  assert_int_equal(db_event_moved_from(7, "refs/heads/main", SHA_A), 1);
  int n = 0;
  assert_int_equal(db_events_list(7, 0, 10, count_cb, &n), 0);
  assert_int_equal(n, 2);
  n = 0;
  assert_int_equal(db_events_after(e1.id, 10, count_cb, &n), 0);
  assert_int_equal(n, 1);

  /* Cursors: created once, last_id only moves forward. */
  int64_t last = -1, processed = -1;
  assert_int_equal(db_cursor_get("spine-test", 0, &last, &processed), 0);
  assert_int_equal(db_cursor_get("spine-test", 0, &last, &processed), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM event_cursors WHERE consumer='spine-test'"), 1);
  assert_int_equal(db_cursor_set("spine-test", e2.id, 2), 0);
  assert_int_equal(db_cursor_set("spine-test", e1.id, 1), 0);
  assert_int_equal(db_cursor_peek("spine-test", &last, &processed), 0);
  assert_int_equal(last, e2.id);
  assert_int_equal(processed, 3);

  /* Durable transactions: a rolled-back one leaves nothing; inside an outer one, an inner
   * rollback (savepoint) undoes only its own event. */
  int64_t n0 = count_rows("SELECT count(*) FROM events");
  db_event e3;
  event(&e3, 7, "refs/heads/dev", "", SHA_A);
  assert_int_equal(db_txn_begin_durable(), 0);
  assert_int_equal(db_event_append(&e3), 0);
  db_txn_rollback();
  assert_false(db_tx_active());
  assert_int_equal(count_rows("SELECT count(*) FROM events"), n0);
  assert_int_equal(db_event_ref_get(7, "refs/heads/dev", sha), 0);

  assert_int_equal(db_txn_outer_begin(), 0);
  event(&e3, 7, "refs/heads/kept", "", SHA_A);
  assert_int_equal(db_event_append(&e3), 0);
  assert_int_equal(db_txn_begin_durable(), 0);
  event(&e3, 7, "refs/heads/dropped", "", SHA_A);
  assert_int_equal(db_event_append(&e3), 0);
  db_txn_rollback();
  assert_true(db_tx_active());
  assert_int_equal(db_txn_begin_durable(), 0);
  event(&e3, 7, "refs/heads/inner", "", SHA_B);
  assert_int_equal(db_event_append(&e3), 0);
  assert_int_equal(db_txn_commit_durable(), 0);
  assert_int_equal(db_txn_outer_end(1), 0);
  assert_false(db_tx_active());
  assert_int_equal(count_rows("SELECT count(*) FROM events"), n0 + 2);
  assert_int_equal(db_event_ref_get(7, "refs/heads/kept", sha), 1);
  assert_int_equal(db_event_ref_get(7, "refs/heads/inner", sha), 1);
  assert_int_equal(db_event_ref_get(7, "refs/heads/dropped", sha), 0);

  n = 0;
  assert_int_equal(db_event_refs_each(7, ref_cb, &n), 0);
  assert_int_equal(n, 3); /* main, kept, inner */
  assert_int_equal(db_event_ref_put(8, "refs/heads/x", SHA_A), 0);
  assert_int_equal(db_event_ref_put(8, "refs/heads/x", SHA_B), 0);
  assert_int_equal(db_event_ref_get(8, "refs/heads/x", sha), 1);
  assert_string_equal(sha, SHA_B);
  assert_int_equal(db_event_refs_any(8), 1);
  assert_int_equal(db_event_ref_put(8, "refs/heads/x", ""), 0);
  assert_int_equal(db_event_refs_any(8), 0);
  assert_int_equal(db_event_ref_put(8, "refs/heads/y", SHA_A), 0);
  assert_int_equal(db_event_refs_clear(8), 0);
  assert_int_equal(db_event_refs_any(8), 0);

  /* A deleted ref leaves event_refs. */
  event(&e3, 7, "refs/heads/kept", SHA_A, "");
  assert_int_equal(db_event_append(&e3), 0);
  assert_int_equal(db_event_ref_get(7, "refs/heads/kept", sha), 0);
  int64_t id = 0, ts = 0;
  assert_int_equal(db_events_last(&id, &ts), 0);
  assert_int_equal(id, e3.id);
  assert_int_equal(db_event_ts(id), ts);
}

static int job_cb(const db_job *j, void *p) {
  (void)j;
  (*(int *)p)++;
  return 0;
}

static void count_jobs(const char *kind, const char *state, int64_t count, int64_t oldest,
                       void *p) {
  assert_non_null(state);
  assert_true(oldest > 0);
  if (!strcmp(kind, "spine")) *(int64_t *)p += count;
}

static void test_jobs(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_exec("DELETE FROM jobs"), 0);
  int64_t id1 = 0, id2 = 0, dup = 0;
  assert_int_equal(db_job_enqueue("spine", "k1", "p1", 2, 0, 0, &id1), 0);
  assert_int_equal(db_job_enqueue("spine", "k2", "p2", 2, 0, 0, &id2), 0);
  assert_true(id1 > 0 && id2 > id1); /* RETURNING id */
  assert_int_equal(db_job_enqueue("spine", "k1", "again", 2, 0, 0, &dup), HUB_EEXISTS);
  assert_int_equal(dup, id1);
  assert_int_equal(db_job_enqueue("spine", NULL, "p3", 2, 2, 0, NULL), HUB_EBUSY);
  assert_int_equal(count_rows("SELECT count(*) FROM jobs WHERE kind='spine'"), 2);

  /* Enqueue inside the caller's transaction is a savepoint: it goes with a rollback. */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_job_enqueue("spine", "k3", "p3", 2, 0, 0, NULL), 0);
  assert_int_equal(db_job_enqueue("spine", "k3", "p3", 2, 0, 0, NULL), HUB_EEXISTS);
  assert_true(db_tx_active());
  db_tx_rollback();
  assert_int_equal(count_rows("SELECT count(*) FROM jobs WHERE kind='spine'"), 2);

  const char *kinds[] = {"other", "spine"};
  db_job j;
  assert_int_equal(db_job_claim(kinds, 2, "node-a", 60000, &j), 0);
  assert_int_equal(j.id, id1);
  assert_string_equal(j.state, "running");
  assert_int_equal(j.attempts, 1);
  assert_int_equal(db_job_renew("node-a", 120000), 0);
  db_job held;
  assert_int_equal(db_job_get(j.id, &held), 0);
  assert_true(held.lease_until >= j.lease_until);
  int64_t counted = 0;
  assert_int_equal(db_job_counts(count_jobs, &counted), 0);
  assert_int_equal(counted, 2);
  assert_int_equal(db_job_finish(j.id, "node-b", "done", 0, NULL), HUB_ECONFLICT);
  assert_int_equal(db_job_finish(j.id, "node-a", "done", 0, NULL), 0);
  assert_int_equal(db_job_get(id1, &j), 0);
  assert_string_equal(j.state, "done");
  assert_int_equal(db_job_claim(kinds, 2, "node-a", 60000, &j), 0);
  assert_int_equal(j.id, id2);
  assert_int_equal(db_job_finish(j.id, "node-a", "dead", 0, "boom"), 0);
  assert_int_equal(db_job_claim(kinds, 2, "node-a", 60000, &j), HUB_ENOTFOUND);
  assert_false(db_tx_active());
  int n = 0;
  assert_int_equal(db_job_list(NULL, "spine", 10, job_cb, &n), 0);
  assert_int_equal(n, 2);
  n = 0;
  assert_int_equal(db_job_list("dead", NULL, 10, job_cb, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(db_job_retry(id2), 0);
  assert_int_equal(db_job_cancel(id2), 0);
  assert_int_equal(db_job_cancel(id2), HUB_ECONFLICT);
  assert_int_equal(db_job_prune(db_now_ms() + 1000), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM jobs WHERE kind='spine'"), 0);
}

static void test_mirror(void **state) {
  USE_OR_SKIP();
  make_repo(21);
  db_mirror_repo m = {.repo_id = 21, .fetched_ms = 5, .refs_ms = 6};
  snprintf(m.upstream, sizeof m.upstream, "https://up.example/one");
  assert_int_equal(db_mirror_repo_set(&m), 0);
  m.refs_ms = 9;
  snprintf(m.upstream, sizeof m.upstream, "https://up.example/two");
  assert_int_equal(db_mirror_repo_set(&m), 0); /* upsert */
  db_mirror_repo got;
  assert_int_equal(db_mirror_repo_get(21, &got), 0);
  assert_string_equal(got.upstream, "https://up.example/two");
  assert_int_equal(got.refs_ms, 9);
  assert_int_equal(db_mirror_repo_get(22, &got), HUB_ENOTFOUND);
  assert_int_equal(db_mirror_ns_add(1, "https://up.example"), 0);
  assert_int_equal(db_mirror_ns_add(1, "https://up.example"), 0);
  assert_int_equal(db_mirror_ns_is(1), 1);

  char oids[3][65];
  for (int i = 0; i < 3; i++)
    snprintf(oids[i], 65, "%064d", i + 1);
  assert_int_equal(db_mirror_object_add(oids[0], 100, 1, 10), 0);
  assert_int_equal(db_mirror_object_add(oids[0], 100, 0, 11), 0); /* stays pinned */
  assert_int_equal(db_mirror_object_add(oids[1], 200, 0, 20), 0);
  assert_int_equal(db_mirror_object_add(oids[2], 300, 0, 30), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM mirror_objects WHERE pinned=1"), 1);
  int64_t ms[2] = {50, 5};
  assert_int_equal(db_mirror_objects_touch((const char(*)[65])(oids + 1), ms, 2), 0);
  int64_t bytes = 0;
  assert_int_equal(db_mirror_objects_bytes(&bytes), 0);
  assert_int_equal(bytes, 600);
  char lru[4][65];
  int64_t sizes[4];
  size_t n = 0;
  assert_int_equal(db_mirror_objects_lru(lru, sizes, 4, &n), 0);
  assert_int_equal(n, 2);               /* the pinned one is not evictable */
  assert_string_equal(lru[0], oids[2]); /* touched at 5 < 30: kept at 30; oids[1] now at 50 */
  assert_string_equal(lru[1], oids[1]);
  int shared = -1;
  assert_int_equal(db_mirror_object_forget(oids[2], &shared), 0);
  assert_int_equal(shared, 0);
  assert_int_equal(db_mirror_object_has(oids[2]), 0);
  assert_int_equal(db_mirror_object_has(oids[1]), 1);
  delete_repo(21);
  assert_int_equal(db_mirror_repo_get(21, &got), HUB_ENOTFOUND); /* ON DELETE CASCADE */
}

static void hash_of(uint8_t h[32], int seed) {
  for (int i = 0; i < 32; i++)
    h[i] = (uint8_t)(seed * 31 + i * 7); /* contains 0 bytes for some seeds */
}

static int hash_cb(const uint8_t *h32, void *p) {
  memcpy(p, h32, 32);
  return 0;
}

static void unverified_cb(const char *sha, const uint8_t *file32, int64_t repo_id, void *p) {
  (void)sha;
  (void)file32;
  (void)repo_id;
  (*(int *)p)++;
}

static void link_cb(const char *sha, const uint8_t *file32, void *p) {
  assert_int_equal(strlen(sha), 64);
  assert_non_null(file32);
  (*(int *)p)++;
}

static void test_xet(void **state) {
  USE_OR_SKIP();
  make_repo(31);
  make_repo(32);
  uint8_t xorb[32], file[32], chunk[32], got[32];
  hash_of(xorb, 1);
  hash_of(file, 2);
  hash_of(chunk, 3);
  xorb[5] = 0;
  uint8_t chunks[96];
  for (size_t i = 0; i < sizeof chunks; i++)
    chunks[i] = (uint8_t)i; /* starts with a NUL byte */
  int inserted = -1;
  assert_int_equal(db_xet_xorb_insert(xorb, "oid1", 1000, 2, 4000, chunks, sizeof chunks, 31, chunk,
                                      1, &inserted),
                   0);
  assert_int_equal(inserted, 1);
  assert_int_equal(db_xet_xorb_insert(xorb, "oid1", 1000, 2, 4000, chunks, sizeof chunks, 31, chunk,
                                      1, &inserted),
                   0);
  assert_int_equal(inserted, 0);
  assert_false(db_tx_active());
  assert_int_equal(db_xet_xorb_exists(xorb), 1);
  char oid[65];
  uint64_t size = 0;
  size_t nch = 0, clen = 0;
  uint8_t *cp = NULL;
  assert_int_equal(db_xet_xorb_get(xorb, oid, &size, &nch, &cp, &clen), 0);
  assert_string_equal(oid, "oid1");
  assert_int_equal(size, 1000);
  assert_int_equal(nch, 2);
  assert_int_equal(clen, sizeof chunks);
  assert_memory_equal(cp, chunks, sizeof chunks);
  free(cp);
  memset(got, 0, sizeof got);
  assert_int_equal(db_xet_dedup_xorbs(chunk, 4, hash_cb, got), 0);
  assert_memory_equal(got, xorb, 32);

  /* A file in a shard transaction; its links; sha256 claims. */
  int is_new = -1;
  assert_int_equal(db_xet_txn_begin(), 0);
  assert_int_equal(db_xet_file_insert(file, 4000, chunks, 44, 31, &is_new), 0);
  assert_int_equal(is_new, 1);
  assert_int_equal(db_xet_file_xorb_add(xorb, file), 0);
  assert_int_equal(db_xet_file_xorb_add(xorb, file), 0);
  assert_int_equal(db_xet_repo_link(31, file), 0);
  assert_int_equal(db_xet_txn_end(0), 0);
  assert_int_equal(db_xet_file_insert(file, 4000, chunks, 44, 31, &is_new), 0);
  assert_int_equal(is_new, 0);
  uint8_t *tp = NULL;
  size_t tlen = 0;
  assert_int_equal(db_xet_file_get(file, &size, &tp, &tlen), 0);
  assert_int_equal(tlen, 44);
  free(tp);
  memset(got, 0, sizeof got);
  assert_int_equal(db_xet_xorb_files(xorb, 4, hash_cb, got), 0);
  assert_memory_equal(got, file, 32);
  assert_int_equal(db_xet_repo_has(31, file), 1);
  assert_int_equal(db_xet_dedup_allowed(32, xorb), 1); /* public repo 31 holds it */

  const char *sha = "5555555555555555555555555555555555555555555555555555555555555555";
  const char *sha2 = "6666666666666666666666666666666666666666666666666666666666666666";
  assert_int_equal(db_xet_sha_add(sha, file, 4000, 0, 31), 0);
  assert_int_equal(db_xet_sha_add(sha, file, 4000, 1, 31), 0);
  assert_int_equal(db_xet_sha_add(sha, file, 4000, 0, 31), 0); /* stays verified */
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha WHERE verified=1"), 1);
  assert_int_equal(db_xet_sha_add(sha2, file, 4000, 0, 32), 0);
  assert_int_equal(db_xet_sha_add(sha, file, 4000, 1, 0), 0);
  uint64_t fsize = 0;
  memset(got, 0, sizeof got);
  assert_int_equal(db_xet_sha_find(sha, 32, got, &fsize), 0);
  assert_memory_equal(got, file, 32);
  assert_int_equal(fsize, 4000);
  assert_int_equal(db_xet_sha_find_for(sha2, 32, got, &fsize), 0);
  assert_int_equal(db_xet_sha_find_for(sha2, 31, got, &fsize), HUB_ENOTFOUND);
  int64_t vs = 0;
  assert_int_equal(db_xet_verified_size(sha, &vs), 0);
  assert_int_equal(vs, 4000);
  int nu = 0;
  assert_int_equal(db_xet_unverified(unverified_cb, &nu), 0);
  assert_int_equal(nu, 1);
  assert_int_equal(db_xet_sha_set_verified(sha2, file, 0), 0); /* a bad claim goes */
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha"), 2);
  assert_int_equal(db_xet_sha_add(sha2, file, 4000, 0, 32), 0);
  assert_int_equal(db_xet_sha_set_verified(sha2, file, 0), 0);
  assert_int_equal(db_xet_sha_add(sha2, file, 4000, 0, 32), 0);
  int nl = 0;
  assert_int_equal(db_xet_each_sha_link(link_cb, &nl), 0);
  assert_int_equal(nl, 2); /* distinct (sha256, file) */
  memset(got, 0, sizeof got);
  assert_int_equal(db_xet_each_file(hash_cb, got), 0);
  assert_memory_equal(got, file, 32);
  assert_int_equal(db_xet_claims_to_objects(sha, file), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM repo_objects WHERE repo_id=31"), 1);
  assert_int_equal(db_xet_repo_references(31, file), 1);
  db_xet_stats t;
  db_xet_stats_get(&t);
  assert_int_equal(t.xorbs, 1);
  assert_int_equal(t.stored, 1000);
  assert_int_equal(t.unpacked, 4000);
  assert_int_equal(t.files, 1);
  assert_int_equal(t.logical, 4000);
  assert_int_equal(t.verified_files, 1);
  assert_int_equal(t.unverified, 1);
  memset(got, 0, sizeof got);
  assert_int_equal(db_xet_each_xorb(hash_cb, got), 0);
  assert_memory_equal(got, xorb, 32);
  assert_int_equal(db_xet_enabled(31), 1);
  assert_int_equal(db_xet_set_enabled(31, 0), 0);
  assert_int_equal(db_xet_set_enabled(31, 0), 0);
  assert_int_equal(db_xet_enabled(31), 0);

  /* The repo-delete trigger: 32's unverified claim goes; 31's verified link would collide
   * with the global one (repo_id 0) and is dropped; files and xorbs pass to repo 0. */
  delete_repo(32);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha WHERE repo_id=32"), 0);
  delete_repo(31);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha WHERE repo_id=31"), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha WHERE repo_id=0 AND verified=1"), 1);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_files WHERE repo_id=0"), 1);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_xorbs WHERE repo_id=0"), 1);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_repo_files"), 0); /* cascade */
  assert_int_equal(count_rows("SELECT count(*) FROM xet_settings"), 0);   /* cascade */
  assert_int_equal(count_rows("SELECT count(*) FROM repo_objects WHERE repo_id=31"), 0);

  /* A verified link of a deleted repo with no global twin becomes global. */
  make_repo(33);
  hash_of(file, 9);
  assert_int_equal(db_xet_sha_add(sha2, file, 10, 1, 33), 0);
  delete_repo(33);
  assert_int_equal(count_rows("SELECT count(*) FROM xet_sha WHERE repo_id=0"), 2);
  assert_int_equal(db_xet_objects_migrate(), 0);
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &eng_sqlite), cmocka_unit_test_prestate(fn, &eng_pg)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_events),
      BOTH(test_jobs),
      BOTH(test_mirror),
      BOTH(test_xet),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
