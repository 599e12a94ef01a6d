/* The job runner (jobs/jobs.h): a kind registry, runner threads that claim jobs from the
 * DB under a lease, and one keeper thread that renews this node's leases, inserts the
 * jobs handed over from read snapshots and prunes old finished jobs. */
#include <errno.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "db/db.h"
#include "jobs/jobs.h"
#include "util/error.h"
#include "util/thread.h"

/* Nice value of the job runner threads (HTTP threads keep the process's). */
#define HUB_JOB_RUNNER_NICE 10

#define MAX_KINDS 32
#define MAX_RUNNERS 16
#define MAX_HANDOFF 1024             /* jobs waiting to be inserted by the keeper */
#define POLL_MS 1000                 /* runners look for delayed / reclaimable jobs this often */
#define DEFAULT_LEASE_MS 60000       /* MODELHUB_JOB_LEASE_MS */
#define KEEP_DONE_MS (3600 * 1000LL) /* finished jobs stay listed this long */
#define MAX_BACKOFF_MS (3600 * 1000LL)

typedef struct {
  jobs_kind k;
  int running; /* in this process */
  _Atomic unsigned long long done, failed, retried, dead;
} kind_slot;

typedef struct {
  int kind;
  char key[DB_JOB_KEY_MAX + 1];
  char payload[DB_JOB_PAYLOAD_MAX + 1];
} handoff;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;      /* runners wait here */
static pthread_cond_t g_keep_cv = PTHREAD_COND_INITIALIZER; /* the keeper waits here */
static pthread_cond_t g_exit_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_claim_cv = PTHREAD_COND_INITIALIZER; /* one claim at a time */
static kind_slot g_kinds[MAX_KINDS];
static int g_nkinds;
static int g_started, g_stop, g_threads; /* runner + keeper threads alive */
static int g_claiming;                   /* a runner is claiming */
static int64_t g_lease_ms = DEFAULT_LEASE_MS;
static char g_node[64]; /* lease owner: host:pid:random, new at every start */
static handoff *g_handoff;
static int g_nhandoff;

static int find_kind_locked(const char *name) {
  for (int i = 0; i < g_nkinds; i++)
    if (!strcmp(g_kinds[i].k.name, name)) return i;
  return -1;
}

int jobs_register(const jobs_kind *kind) {
  pthread_mutex_lock(&g_mu);
  int i = find_kind_locked(kind->name);
  if (i < 0 && g_nkinds == MAX_KINDS) {
    pthread_mutex_unlock(&g_mu);
    return hub_error_set(HUB_ERROR, "too many job kinds");
  }
  if (i < 0) i = g_nkinds++;
  g_kinds[i].k = *kind;
  jobs_kind *k = &g_kinds[i].k;
  if (k->concurrency <= 0) k->concurrency = 1;
  if (k->max_queued <= 0) k->max_queued = 10000;
  if (k->max_attempts <= 0) k->max_attempts = 5;
  if (k->backoff_ms <= 0) k->backoff_ms = 1000;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return 0;
}

/* Hand a job to the keeper, which inserts it (no DB write on this thread). */
static int hand_off(int i, const char *key, const char *payload) {
  if ((key && strlen(key) > DB_JOB_KEY_MAX) || (payload && strlen(payload) > DB_JOB_PAYLOAD_MAX))
    return hub_error_set(HUB_EINVALID, "job key or payload too long");
  pthread_mutex_lock(&g_mu);
  int rc = 0;
  for (int h = 0; h < g_nhandoff; h++)
    if (g_handoff[h].kind == i && key && !strcmp(g_handoff[h].key, key)) rc = HUB_EEXISTS;
  if (!rc && (!g_started || g_stop || g_nhandoff == MAX_HANDOFF))
    rc = hub_error_set(HUB_EBUSY, "the job queue is busy");
  if (!rc) {
    handoff *h = &g_handoff[g_nhandoff++];
    h->kind = i;
    snprintf(h->key, sizeof h->key, "%s", key ? key : "");
    snprintf(h->payload, sizeof h->payload, "%s", payload ? payload : "");
    pthread_cond_signal(&g_keep_cv);
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

typedef struct {
  const jobs_kind *k;
  const char *key, *payload;
} enqueue_args;

static int enqueue_now(void *arg) {
  const enqueue_args *a = arg;
  return db_job_enqueue(a->k->name, a->key, a->payload, a->k->max_attempts, a->k->max_queued, 0,
                        NULL);
}

int jobs_enqueue(const char *kind, const char *key, const char *payload) {
  pthread_mutex_lock(&g_mu);
  int i = find_kind_locked(kind);
  jobs_kind k = i >= 0 ? g_kinds[i].k : (jobs_kind){0};
  pthread_mutex_unlock(&g_mu);
  if (i < 0) return hub_error_set(HUB_EINVALID, "no job kind %s", kind);
  /* Inside a read snapshot (db_read_begin; its BEGIN may not have read yet) the insert
   * cannot be made: the snapshot cannot become a write transaction once others wrote,
   * and it may be rolled back. The keeper inserts it. */
  if (db_in_read_snapshot()) return hand_off(i, key, payload);
  /* An event thread's connection refuses writes (db_thread_readonly): the keeper inserts. */
  if (db_thread_is_readonly()) return hand_off(i, key, payload);
  /* On its own, the insert must not wait for the write lock (the caller may be an event
   * thread): when another connection holds it, the keeper inserts the job instead. */
  enqueue_args a = {&k, key, payload};
  int busy;
  int rc = db_try_without_waiting(enqueue_now, &a, &busy);
  if (busy) return hand_off(i, key, payload);
  if (!rc) {
    pthread_mutex_lock(&g_mu);
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
  }
  return rc;
}

int jobs_stopping(void) {
  pthread_mutex_lock(&g_mu);
  int s = g_stop;
  pthread_mutex_unlock(&g_mu);
  return s;
}

static void timed_wait(pthread_cond_t *cv, long ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(cv, &g_mu, &until);
}

static void thread_exit_locked(void) {
  if (--g_threads == 0) pthread_cond_broadcast(&g_exit_cv);
}

/* Exponential backoff with ±25% jitter (several nodes retrying at once spread out). */
static int64_t backoff(const jobs_kind *k, int attempts) {
  int64_t d = k->backoff_ms;
  for (int a = 1; a < attempts && d < MAX_BACKOFF_MS; a++)
    d *= 2;
  if (d > MAX_BACKOFF_MS) d = MAX_BACKOFF_MS;
  int64_t j = d / 4;
  if (j > 0)
    d += (int64_t)randombytes_uniform((uint32_t)(2 * j + 1 > UINT32_MAX ? UINT32_MAX : 2 * j + 1)) -
         j;
  return d;
}

static void run_one(int ki, const db_job *job) {
  kind_slot *s = &g_kinds[ki];
  pthread_mutex_lock(&g_mu);
  jobs_kind k = s->k;
  pthread_mutex_unlock(&g_mu);
  hub_error_clear();
  int rc = k.run(job, k.ctx);
  const char *msg = rc ? hub_error_msg() : NULL;
  char err[DB_JOB_ERROR_MAX + 1];
  snprintf(err, sizeof err, "%s", msg && *msg ? msg : "failed");
  int frc;
  if (!rc) {
    frc = db_job_finish(job->id, g_node, "done", job->run_after, NULL);
    if (!frc) atomic_fetch_add(&s->done, 1);
  } else if (job->attempts >= job->max_attempts) {
    frc = db_job_finish(job->id, g_node, "dead", job->run_after, err);
    atomic_fetch_add(&s->failed, 1);
    if (!frc) atomic_fetch_add(&s->dead, 1);
    fprintf(stderr, "modelhub: job %lld %s %s failed %d times, dead: %s\n", (long long)job->id,
            job->kind, job->key, job->attempts, err);
  } else {
    frc = db_job_finish(job->id, g_node, "queued", db_now_ms() + backoff(&k, job->attempts), err);
    atomic_fetch_add(&s->failed, 1);
    if (!frc) atomic_fetch_add(&s->retried, 1);
    fprintf(stderr, "modelhub: job %lld %s %s failed (attempt %d of %d), retrying: %s\n",
            (long long)job->id, job->kind, job->key, job->attempts, job->max_attempts, err);
  }
  if (frc == HUB_ECONFLICT)
    fprintf(stderr, "modelhub: job %lld %s: outcome dropped (cancelled or lease lost)\n",
            (long long)job->id, job->kind);
  else if (frc)
    fprintf(stderr, "modelhub: job %lld %s: recording its outcome: %s\n", (long long)job->id,
            job->kind, hub_error_msg());
}

/* Runner and keeper threads, joined by jobs_stop. */
#define MAX_THREADS_JOINED 64
static pthread_t g_tids[MAX_THREADS_JOINED];
static int g_ntids;

static void *runner_main(void *unused) {
  (void)unused;
  /* Background work yields the CPU to requests: on Linux a thread's nice value is its own
   * (setpriority on its tid), so scans, conversions and deliveries run at a lower priority
   * than the HTTP threads on the same cores. Best effort. */
  (void)setpriority(PRIO_PROCESS, (id_t)gettid(), HUB_JOB_RUNNER_NICE);
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    /* One claim at a time in this process: the free slots a claim is made for stay free
     * until the claimed job is counted (a kind's concurrency holds). */
    while (g_claiming && !g_stop)
      pthread_cond_wait(&g_claim_cv, &g_mu);
    if (g_stop) break;
    const char *names[MAX_KINDS];
    int n = 0;
    for (int i = 0; i < g_nkinds; i++)
      if (g_kinds[i].running < g_kinds[i].k.concurrency) names[n++] = g_kinds[i].k.name;
    if (!n) {
      timed_wait(&g_cv, POLL_MS);
      continue;
    }
    g_claiming = 1;
    pthread_mutex_unlock(&g_mu);
    db_job job;
    int rc = db_job_claim(names, n, g_node, g_lease_ms, &job);
    pthread_mutex_lock(&g_mu);
    g_claiming = 0;
    pthread_cond_signal(&g_claim_cv);
    int ki = rc ? -1 : find_kind_locked(job.kind);
    if (rc || ki < 0) {
      if (rc && rc != HUB_ENOTFOUND)
        fprintf(stderr, "modelhub: claiming a job: %s\n", hub_error_msg());
      if (!g_stop) timed_wait(&g_cv, POLL_MS);
      continue;
    }
    g_kinds[ki].running++;
    pthread_mutex_unlock(&g_mu);
    run_one(ki, &job);
    pthread_mutex_lock(&g_mu);
    g_kinds[ki].running--;
    pthread_cond_broadcast(&g_cv); /* a slot of this kind is free again */
  }
  /* Free this thread's OpenSSL state (the per-thread DRBG of RAND_bytes in a job) before
   * jobs_stop may return: the process may exit before a detached thread's TLS destructors
   * run, and that state would then be reported as leaked. */
  pthread_mutex_unlock(&g_mu);
  OPENSSL_thread_stop();
  pthread_mutex_lock(&g_mu);
  thread_exit_locked();
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void *keeper_main(void *unused) {
  (void)unused;
  int64_t last_renew = 0, last_prune = 0;
  handoff *batch = malloc(sizeof(handoff) * MAX_HANDOFF);
  pthread_mutex_lock(&g_mu);
  while (!g_stop || (batch && g_nhandoff)) {
    int n = 0;
    if (batch && g_nhandoff) {
      n = g_nhandoff;
      memcpy(batch, g_handoff, sizeof(handoff) * (size_t)n);
      g_nhandoff = 0;
    }
    jobs_kind ks[MAX_KINDS];
    for (int i = 0; i < g_nkinds; i++)
      ks[i] = g_kinds[i].k;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < n; i++) {
      const jobs_kind *k = &ks[batch[i].kind];
      int rc = db_job_enqueue(k->name, batch[i].key, batch[i].payload, k->max_attempts,
                              k->max_queued, 0, NULL);
      if (rc && rc != HUB_EEXISTS)
        fprintf(stderr, "modelhub: queueing a %s job: %s\n", k->name, hub_error_msg());
    }
    int64_t now = db_now_ms();
    if (now - last_renew >= g_lease_ms / 3) {
      if (db_job_renew(g_node, g_lease_ms))
        fprintf(stderr, "modelhub: renewing job leases: %s\n", hub_error_msg());
      last_renew = now;
    }
    if (now - last_prune >= 60000) {
      db_job_prune(now - KEEP_DONE_MS);
      last_prune = now;
    }
    pthread_mutex_lock(&g_mu);
    if (n) pthread_cond_broadcast(&g_cv);
    if (!g_stop && !g_nhandoff)
      timed_wait(&g_keep_cv, g_lease_ms / 3 < POLL_MS ? g_lease_ms / 3 : POLL_MS);
  }
  pthread_mutex_unlock(&g_mu);
  free(batch);
  OPENSSL_thread_stop(); /* as in runner_main */
  pthread_mutex_lock(&g_mu);
  thread_exit_locked();
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

/* ---- test kinds (MODELHUB_TEST_JOBS=1) ---------------------------------------------- */

/* test.fail: always fails. */
static int test_fail(const db_job *job, void *ctx) {
  return hub_error_set(HUB_ERROR, "test job %lld fails on purpose", (long long)job->id);
}

/* test.slow: appends "start <attempt>" to <data>/tmp/test-job-<id>.log, sleeps payload ms,
 * then appends "done" unless its lease was lost meanwhile (the job "runs once in effect":
 * only the holder of the lease records the outcome). */
static int test_slow(const db_job *job, void *ctx) {
  char path[4200];
  snprintf(path, sizeof path, "%s/tmp/test-job-%lld.log", db_data_dir(), (long long)job->id);
  FILE *f = fopen(path, "a");
  if (!f) return hub_error_set(HUB_ERROR, "cannot open %s", path);
  fprintf(f, "start %d\n", job->attempts);
  fclose(f);
  long ms = strtol(job->payload, NULL, 10);
  for (long t = 0; t < ms && !jobs_stopping(); t += 50)
    usleep(50000);
  if (jobs_stopping()) return hub_error_set(HUB_EUNAVAILABLE, "shutting down");
  db_job now;
  if (db_job_get(job->id, &now) || strcmp(now.lease_owner, g_node) || strcmp(now.state, "running"))
    return hub_error_set(HUB_ECONFLICT, "lease lost");
  f = fopen(path, "a");
  if (!f) return hub_error_set(HUB_ERROR, "cannot open %s", path);
  fprintf(f, "done\n");
  fclose(f);
  return 0;
}

static void register_test_kinds(void) {
  jobs_kind fail = {"test.fail", test_fail, NULL, 1, 100, 3, 100};
  jobs_kind slow = {"test.slow", test_slow, NULL, 1, 100, 5, 100};
  jobs_register(&fail);
  jobs_register(&slow);
}

/* ---- start / stop --------------------------------------------------------------------- */

int jobs_start(int runners) {
  const char *e = getenv("MODELHUB_JOB_RUNNERS");
  if (runners <= 0) runners = e && *e ? (int)strtol(e, NULL, 10) : 2;
  if (runners < 1) runners = 1;
  if (runners > MAX_RUNNERS) runners = MAX_RUNNERS;
  e = getenv("MODELHUB_JOB_LEASE_MS");
  long lease = e && *e ? strtol(e, NULL, 10) : DEFAULT_LEASE_MS;
  e = getenv("MODELHUB_TEST_JOBS");
  if (e && !strcmp(e, "1")) register_test_kinds();
  if (db_jobs_init()) return HUB_ERROR;
  pthread_mutex_lock(&g_mu);
  if (g_started) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  g_lease_ms = lease >= 300 ? lease : 300;
  char host[32] = "";
  gethostname(host, sizeof host - 1);
  snprintf(g_node, sizeof g_node, "%s:%d:%08x", host, (int)getpid(), randombytes_random());
  if (!g_handoff) g_handoff = malloc(sizeof(handoff) * MAX_HANDOFF);
  g_stop = 0;
  g_started = 1;
  pthread_mutex_unlock(&g_mu);
  if (!g_handoff) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = 0;
  for (int i = 0; i <= runners && !rc; i++) {
    pthread_mutex_lock(&g_mu);
    g_threads++;
    pthread_mutex_unlock(&g_mu);
    pthread_t tid;
    rc = i < runners ? hub_thread_start("job-runner", runner_main, NULL, &tid)
                     : hub_thread_start("job-keeper", keeper_main, NULL, &tid);
    if (!rc) {
      pthread_mutex_lock(&g_mu);
      if (g_ntids < MAX_THREADS_JOINED)
        g_tids[g_ntids++] = tid;
      else
        pthread_detach(tid);
      pthread_mutex_unlock(&g_mu);
    }
    if (rc) {
      pthread_mutex_lock(&g_mu);
      thread_exit_locked();
      pthread_mutex_unlock(&g_mu);
    }
  }
  if (rc) jobs_stop();
  return rc;
}

void jobs_stop(void) {
  pthread_mutex_lock(&g_mu);
  if (!g_started) {
    pthread_mutex_unlock(&g_mu);
    return;
  }
  g_stop = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_cond_broadcast(&g_claim_cv);
  pthread_cond_broadcast(&g_keep_cv);
  while (g_threads)
    pthread_cond_wait(&g_exit_cv, &g_mu);
  /* Join them too: a thread's TLS destructors (OpenSSL's, glibc's dlerror state) run after
   * it signalled its exit, and the process must not exit before they did. */
  pthread_t tids[MAX_THREADS_JOINED];
  int ntids = g_ntids;
  memcpy(tids, g_tids, sizeof(pthread_t) * (size_t)ntids);
  g_ntids = 0;
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < ntids; i++)
    pthread_join(tids[i], NULL);
  pthread_mutex_lock(&g_mu);
  g_started = 0;
  free(g_handoff);
  g_handoff = NULL;
  g_nhandoff = 0;
  pthread_mutex_unlock(&g_mu);
}

/* ---- metrics -------------------------------------------------------------------------- */

typedef struct {
  hub_buf *out;
  int64_t now;
  const char *metric;
  const char *state;
} count_ctx;

static void put_count(const char *kind, const char *state, int64_t n, int64_t oldest, void *p) {
  count_ctx *c = p;
  if (strcmp(state, c->state)) return;
  if (c->metric)
    hub_buf_printf(c->out, "%s{kind=\"%s\"} %lld\n", c->metric, kind, (long long)n);
  else /* oldest queued age */
    hub_buf_printf(c->out, "modelhub_jobs_oldest_queued_seconds{kind=\"%s\"} %.3f\n", kind,
                   (double)(c->now - oldest) / 1000.0);
}

static void put_thread(const char *name, int running, unsigned long long started, void *p) {
  hub_buf_printf(p, "modelhub_threads{name=\"%s\"} %d\n", name, running);
}

void jobs_metrics_render(hub_buf *out) {
  static const struct {
    const char *metric, *state, *help;
  } gauges[] = {
      {"modelhub_jobs_queued", "queued", "Jobs waiting to run, per kind (all nodes)."},
      {"modelhub_jobs_running", "running", "Jobs running under a lease, per kind (all nodes)."},
      {"modelhub_jobs_dead", "dead", "Jobs that used up their attempts, per kind."},
      {NULL, "queued", "Age of the oldest queued job, per kind."},
  };
  count_ctx c = {out, db_now_ms(), NULL, NULL};
  for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
    const char *name = gauges[g].metric ? gauges[g].metric : "modelhub_jobs_oldest_queued_seconds";
    hub_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, gauges[g].help, name);
    c.metric = gauges[g].metric;
    c.state = gauges[g].state;
    db_job_counts(put_count, &c);
  }
  static const struct {
    const char *metric, *help;
    int which;
  } counters[] = {
      {"modelhub_jobs_done_total", "Jobs this process ran to success, per kind.", 0},
      {"modelhub_jobs_failed_total", "Job runs that failed in this process, per kind.", 1},
      {"modelhub_jobs_retries_total", "Failed runs queued again after a backoff, per kind.", 2},
      {"modelhub_jobs_dead_total", "Jobs this process moved to the dead-letter state.", 3},
  };
  pthread_mutex_lock(&g_mu);
  int n = g_nkinds;
  pthread_mutex_unlock(&g_mu);
  for (size_t m = 0; m < sizeof counters / sizeof counters[0]; m++) {
    hub_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[m].metric, counters[m].help,
                   counters[m].metric);
    for (int i = 0; i < n; i++) {
      kind_slot *s = &g_kinds[i];
      unsigned long long v = counters[m].which == 0   ? atomic_load(&s->done)
                             : counters[m].which == 1 ? atomic_load(&s->failed)
                             : counters[m].which == 2 ? atomic_load(&s->retried)
                                                      : atomic_load(&s->dead);
      hub_buf_printf(out, "%s{kind=\"%s\"} %llu\n", counters[m].metric, s->k.name, v);
    }
  }
  hub_buf_puts(out, "# HELP modelhub_threads Threads running, per name.\n"
                    "# TYPE modelhub_threads gauge\n");
  hub_thread_each(put_thread, out);
}
