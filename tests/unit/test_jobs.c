/* The job runner and its table: claims under leases, lease expiry, retries with backoff,
 * dead letters, bounded queues, dedup by key, cancel / retry; the thread cap. */
#include "unit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/jobs.h"
#include "jobs/jobs.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/thread.h"

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *state_of(int64_t id) {
  static db_job j;
  if (db_job_get(id, &j)) return "?";
  return j.state;
}

static void test_claim_and_finish(void **st) {
  int64_t id = 0;
  db_job j;
  const char *kinds[] = {"u.a"};
  assert_int_equal(db_job_enqueue("u.a", NULL, "hello", 3, 0, 0, &id), 0);
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), 0);
  assert_int_equal(j.id, id);
  assert_string_equal(j.payload, "hello");
  assert_int_equal(j.attempts, 1);
  assert_string_equal(j.state, "running");
  /* Held under a live lease: nobody else gets it. */
  assert_int_equal(db_job_claim(kinds, 1, "n2", 60000, &j), HUB_ENOTFOUND);
  assert_int_equal(db_job_finish(id, "n2", "done", 0, NULL), HUB_ECONFLICT);
  assert_int_equal(db_job_finish(id, "n1", "done", 0, NULL), 0);
  assert_string_equal(state_of(id), "done");
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), HUB_ENOTFOUND);
}

static void test_lease_expiry(void **st) {
  int64_t id = 0;
  db_job j;
  const char *kinds[] = {"u.lease"};
  assert_int_equal(db_job_enqueue("u.lease", NULL, "", 2, 0, 0, &id), 0);
  assert_int_equal(db_job_claim(kinds, 1, "dead-node", 1, &j), 0);
  usleep(5000);
  /* Its node "died": the lease ran out, another node takes it over. */
  assert_int_equal(db_job_claim(kinds, 1, "n2", 1, &j), 0);
  assert_int_equal(j.id, id);
  assert_int_equal(j.attempts, 2);
  /* The first node's late outcome is dropped. */
  assert_int_equal(db_job_finish(id, "dead-node", "done", 0, NULL), HUB_ECONFLICT);
  usleep(5000);
  /* Expired again on its last attempt: dead, not claimed a third time. */
  assert_int_equal(db_job_claim(kinds, 1, "n3", 60000, &j), HUB_ENOTFOUND);
  assert_string_equal(state_of(id), "dead");
}

static void test_dedup_by_key(void **st) {
  int64_t a = 0, b = 0;
  db_job j;
  const char *kinds[] = {"u.dedup"};
  assert_int_equal(db_job_enqueue("u.dedup", "k1", "", 1, 0, 0, &a), 0);
  assert_int_equal(db_job_enqueue("u.dedup", "k1", "", 1, 0, 0, &b), HUB_EEXISTS);
  assert_int_equal(a, b);
  assert_int_equal(db_job_enqueue("u.dedup", "k2", "", 1, 0, 0, &b), 0);
  assert_true(a != b);
  /* Also while running; a finished job does not block a new one. */
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), 0);
  assert_int_equal(db_job_enqueue("u.dedup", j.key, "", 1, 0, 0, NULL), HUB_EEXISTS);
  assert_int_equal(db_job_finish(j.id, "n1", "done", 0, NULL), 0);
  assert_int_equal(db_job_enqueue("u.dedup", j.key, "", 1, 0, 0, NULL), 0);
  /* A dead one blocks it until `jobs retry`. */
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), 0);
  assert_int_equal(db_job_finish(j.id, "n1", "dead", 0, "boom"), 0);
  assert_int_equal(db_job_enqueue("u.dedup", j.key, "", 1, 0, 0, NULL), HUB_EEXISTS);
  assert_int_equal(db_job_retry(j.id), 0);
  assert_string_equal(state_of(j.id), "queued");
}

static void test_bounded_queue(void **st) {
  assert_int_equal(db_job_enqueue("u.bound", NULL, "", 1, 2, 0, NULL), 0);
  assert_int_equal(db_job_enqueue("u.bound", NULL, "", 1, 2, 0, NULL), 0);
  assert_int_equal(db_job_enqueue("u.bound", NULL, "", 1, 2, 0, NULL), HUB_EBUSY);
  /* Other kinds have their own queue. */
  assert_int_equal(db_job_enqueue("u.bound2", NULL, "", 1, 2, 0, NULL), 0);
}

static void test_cancel_and_retry(void **st) {
  int64_t id = 0;
  db_job j;
  const char *kinds[] = {"u.cancel"};
  assert_int_equal(db_job_enqueue("u.cancel", "c", "", 1, 0, 0, &id), 0);
  assert_int_equal(db_job_retry(id), HUB_ECONFLICT); /* queued: nothing to retry */
  assert_int_equal(db_job_cancel(id), 0);
  assert_string_equal(state_of(id), "cancelled");
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), HUB_ENOTFOUND);
  assert_int_equal(db_job_cancel(id), HUB_ECONFLICT);
  assert_int_equal(db_job_retry(id), 0);
  assert_int_equal(db_job_claim(kinds, 1, "n1", 60000, &j), 0);
  /* Cancelled while running: the runner's outcome is dropped. */
  assert_int_equal(db_job_cancel(id), 0);
  assert_int_equal(db_job_finish(id, "n1", "done", 0, NULL), HUB_ECONFLICT);
  assert_string_equal(state_of(id), "cancelled");
  assert_int_equal(db_job_cancel(999999), HUB_ENOTFOUND);
}

/* ---- the thread cap ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_release;

static void *blocker(void *arg) {
  pthread_mutex_lock(&g_mu);
  while (!g_release)
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void test_thread_cap(void **st) {
  pthread_t t[3];
  int base = hub_thread_count();
  assert_int_equal(base, 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(hub_thread_start("blocker", blocker, NULL, &t[i]), 0);
  assert_int_equal(hub_thread_count(), 3);
  assert_int_equal(hub_thread_start("blocker", blocker, NULL, NULL), HUB_EBUSY);
  pthread_mutex_lock(&g_mu);
  g_release = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
  usleep(1000);
  assert_int_equal(hub_thread_count(), 0);
}

/* ---- the runner ---- */

static _Atomic int g_runs;
static int64_t g_run_at[8];

static int always_fails(const db_job *job, void *ctx) {
  int n = g_runs++;
  if (n < 8) g_run_at[n] = now_ms();
  return hub_error_set(HUB_ERROR, "failing on purpose");
}

static _Atomic int g_ok_runs;
static int succeeds(const db_job *job, void *ctx) {
  g_ok_runs++;
  return 0;
}

/* Up to 30 s: a loaded 2-core machine (the ASan build, other tests) can stall the runner. */
static int wait_state(int64_t id, const char *state) {
  for (int i = 0; i < 3000; i++) {
    if (!strcmp(state_of(id), state)) return 1;
    usleep(10000);
  }
  return 0;
}

static int take(const db_job *job, void *p) {
  *(int64_t *)p = job->id;
  return 0;
}

static int count_one(const db_job *job, void *p) {
  (*(int *)p)++;
  return 0;
}

static int count_jobs(const char *kind) {
  int n = 0;
  db_job_list(NULL, kind, 1000, count_one, &n);
  return n;
}

/* The newest job of a kind. */
static int64_t last_id(const char *kind) {
  int64_t id = 0;
  db_job_list(NULL, kind, 1, take, &id);
  return id;
}

static _Atomic int g_inside, g_max_inside, g_serial_runs;
static int one_at_a_time(const db_job *job, void *ctx) {
  int n = ++g_inside;
  if (n > g_max_inside) g_max_inside = n;
  usleep(30000);
  g_inside--;
  g_serial_runs++;
  return 0;
}

static void test_runner_retries_then_dead(void **st) {
  jobs_kind fail = {"u.fail", always_fails, NULL, 1, 10, 3, 40};
  jobs_kind ok = {"u.ok", succeeds, NULL, 2, 10, 3, 40};
  assert_int_equal(jobs_register(&fail), 0);
  assert_int_equal(jobs_register(&ok), 0);
  assert_int_equal(jobs_start(2), 0);
  assert_int_equal(jobs_enqueue("u.nope", NULL, ""), HUB_EINVALID);
  assert_int_equal(jobs_enqueue("u.fail", "f1", ""), 0);
  int64_t id = last_id("u.fail");
  assert_true(wait_state(id, "dead"));
  db_job j;
  assert_int_equal(db_job_get(id, &j), 0);
  assert_int_equal(j.attempts, 3);
  assert_string_equal(j.last_error, "failing on purpose");
  assert_int_equal(g_runs, 3);
  /* Backoff: 40 ms then 80 ms, each -25% at worst. */
  assert_true(g_run_at[1] - g_run_at[0] >= 30);
  assert_true(g_run_at[2] - g_run_at[1] >= 60);
  /* A dead job is not queued again by key... until `jobs retry`. */
  /* (HUB_EEXISTS; or 0 when a runner held the write lock just then and the keeper made
   * the insert, which then found the dead job.) */
  int rc = jobs_enqueue("u.fail", "f1", "");
  assert_true(rc == HUB_EEXISTS || rc == 0);
  usleep(300000);
  assert_int_equal(count_jobs("u.fail"), 1);
  assert_int_equal(db_job_retry(id), 0);
  assert_true(wait_state(id, "dead"));
  assert_int_equal(g_runs, 6);

  /* Queued from inside a read snapshot (a GET handler): handed to the keeper. */
  db_read_begin();
  assert_int_equal(jobs_enqueue("u.ok", "in-snapshot", ""), 0);
  db_read_end();
  for (int i = 0; i < 500 && g_ok_runs < 1; i++)
    usleep(10000);
  assert_int_equal(g_ok_runs, 1);
  assert_true(wait_state(last_id("u.ok"), "done"));

  /* Another connection holds the write lock: the insert does not wait for it (the caller
   * may be an event thread); the keeper makes it once the lock is free. */
  char path[4200];
  snprintf(path, sizeof path, "%s/modelhub.db", db_data_dir());
  sqlite3 *other = NULL;
  assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
  assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  int64_t t0 = now_ms();
  assert_int_equal(jobs_enqueue("u.ok", "while-locked", ""), 0);
  assert_true(now_ms() - t0 < 2000);
  usleep(100000);
  assert_int_equal(g_ok_runs, 1);
  assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(other);
  for (int i = 0; i < 500 && g_ok_runs < 2; i++)
    usleep(10000);
  assert_int_equal(g_ok_runs, 2);

  /* A kind's concurrency holds with several runners. */
  jobs_kind serial = {"u.serial", one_at_a_time, NULL, 1, 10, 1, 10};
  assert_int_equal(jobs_register(&serial), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(jobs_enqueue("u.serial", NULL, ""), 0);
  for (int i = 0; i < 500 && g_serial_runs < 4; i++)
    usleep(10000);
  assert_int_equal(g_serial_runs, 4);
  assert_int_equal(g_max_inside, 1);

  hub_buf b = HUB_BUF_INIT;
  jobs_metrics_render(&b);
  assert_non_null(strstr(b.ptr, "modelhub_jobs_dead{kind=\"u.fail\"} 1\n"));
  assert_non_null(strstr(b.ptr, "modelhub_jobs_retries_total{kind=\"u.fail\"} 4\n"));
  assert_non_null(strstr(b.ptr, "modelhub_jobs_dead_total{kind=\"u.fail\"} 2\n"));
  assert_non_null(strstr(b.ptr, "modelhub_jobs_done_total{kind=\"u.ok\"} 2\n"));
  assert_non_null(strstr(b.ptr, "modelhub_threads{name=\"job-runner\"} 2\n"));
  hub_buf_dispose(&b);
  jobs_stop();
  /* Each thread leaves the count just after its function returned. */
  for (int i = 0; i < 100 && hub_thread_count(); i++)
    usleep(10000);
  assert_int_equal(hub_thread_count(), 0);
}

int main(void) {
  char dir[] = "/tmp/mh-jobs-XXXXXX";
  if (!mkdtemp(dir) || db_global_init(dir) || db_jobs_init()) return 1;
  setenv("MODELHUB_MAX_THREADS", "3", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_claim_and_finish),
      cmocka_unit_test(test_lease_expiry),
      cmocka_unit_test(test_dedup_by_key),
      cmocka_unit_test(test_bounded_queue),
      cmocka_unit_test(test_cancel_and_retry),
      cmocka_unit_test(test_thread_cap),
      cmocka_unit_test(test_runner_retries_then_dead),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
