/* The consumer dispatcher: one thread that hands each consumer the events after its
 * cursor, oldest first, and moves the cursor when the consumer finished them (events.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/lock.h"
#include "events/events.h"
#include "util/error.h"
#include "util/thread.h"

/* Events handed to a consumer at once. */
#define EVENTS_BATCH 64
/* A consumer that failed a batch gets it again after this long. */
#define EVENTS_RETRY_MS 1000
/* Several nodes on one database: one of them dispatches, holding this lease (db/lock.h);
 * the others stand by and take over when it expires (a node that died). */
#define EVENTS_LEASE "events.dispatch"
#define EVENTS_LEASE_MS 10000
/* How often the dispatcher looks for events it was not told about (other processes: git
 * hooks, other nodes). */
#define EVENTS_POLL_MS 250

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER; /* dispatcher: events may be there */
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER; /* waiters: a cursor moved */
static pthread_t g_thread;
static int g_on, g_stop, g_pending;
static const char *g_pause; /* MODELHUB_TEST_PAUSE_CONSUMERS: "1" or a flag file's path */

/* Tests: consumers are paused for "1", or while the named file exists. */
static int paused(void) {
  if (!g_pause) return 0;
  return !strcmp(g_pause, "1") || access(g_pause, F_OK) == 0;
}
static int64_t g_cursor[16]; /* per consumer, as last seen (for events_wait) */

void events_notify(void) {
  pthread_mutex_lock(&g_mu);
  g_pending = 1;
  pthread_cond_signal(&g_work);
  pthread_mutex_unlock(&g_mu);
}

typedef struct {
  db_event ev[EVENTS_BATCH];
  size_t n;
} batch;

static int take(const db_event *e, void *payload) {
  batch *b = payload;
  b->ev[b->n++] = *e;
  return 0;
}

/* One round over every consumer; 1 if any of them had work (another round may have more). */
static int round_once(int *failed) {
  int busy = 0;
  *failed = 0;
  for (size_t i = 0; i < events_nconsumers; i++) {
    const events_consumer *c = &events_consumers[i];
    int64_t last = 0;
    static batch b;            /* dispatcher thread only */
    if (!c->consume) continue; /* not wired in (events_set_consumer): keep its events */
    b.n = 0;
    if (db_cursor_get(c->name, 0, &last, NULL) || db_events_after(last, EVENTS_BATCH, take, &b)) {
      *failed = 1;
      continue;
    }
    if (!b.n) {
      pthread_mutex_lock(&g_mu);
      if (i < 16) g_cursor[i] = last;
      pthread_mutex_unlock(&g_mu);
      continue;
    }
    if (c->consume(b.ev, b.n)) {
      fprintf(stderr, "modelhub: consumer %s: %s (retrying)\n", c->name, hub_error_msg());
      *failed = 1;
      continue;
    }
    if (db_cursor_set(c->name, b.ev[b.n - 1].id, (int64_t)b.n)) {
      *failed = 1;
      continue;
    }
    busy = 1;
    pthread_mutex_lock(&g_mu);
    if (i < 16) g_cursor[i] = b.ev[b.n - 1].id;
    pthread_cond_broadcast(&g_done);
    pthread_mutex_unlock(&g_mu);
  }
  return busy;
}

/* 1 while this node holds the dispatcher lease; renewed when half of it is used up. */
static int lease_held(void) {
  static int64_t until; /* dispatcher thread only */
  int64_t now = db_now_ms();
  if (until - now > EVENTS_LEASE_MS / 2) return 1;
  int rc = db_lease_take(EVENTS_LEASE, EVENTS_LEASE_MS);
  if (rc < 0) fprintf(stderr, "modelhub: event dispatcher lease: %s\n", hub_error_msg());
  until = rc == 1 ? now + EVENTS_LEASE_MS : 0;
  return rc == 1;
}

static void *dispatcher(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    int failed = 0;
    g_pending = 0;
    pthread_mutex_unlock(&g_mu);
    while (!paused() && lease_held() && round_once(&failed) && !failed) {
      pthread_mutex_lock(&g_mu);
      int stop = g_stop;
      pthread_mutex_unlock(&g_mu);
      if (stop) break;
    }
    pthread_mutex_lock(&g_mu);
    if (g_stop) break;
    if (g_pending) continue;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* Also a poll: git hooks and other nodes append events from another process. */
    long ms = failed ? EVENTS_RETRY_MS : EVENTS_POLL_MS;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_work, &g_mu, &ts);
  }
  pthread_mutex_unlock(&g_mu);
  db_lease_drop(EVENTS_LEASE); /* another node takes over now, not when it expires */
  db_global_shutdown();        /* this thread's connection */
  return NULL;
}

int events_start(void) {
  const char *pause = getenv("MODELHUB_TEST_PAUSE_CONSUMERS");
  pthread_mutex_lock(&g_mu);
  if (g_on) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  if (pause && *pause && strcmp(pause, "0")) {
    g_pause = pause;
    fprintf(stderr, "modelhub: event consumers pausable (MODELHUB_TEST_PAUSE_CONSUMERS=%s)\n",
            pause);
  }
  g_stop = 0;
  int rc = hub_thread_start("event-dispatcher", dispatcher, NULL, &g_thread);
  if (!rc) g_on = 1;
  pthread_mutex_unlock(&g_mu);
  if (rc) return hub_error_set(HUB_ERROR, "cannot start the event dispatcher");
  atexit(events_stop);
  return 0;
}

void events_stop(void) {
  pthread_mutex_lock(&g_mu);
  int on = g_on;
  g_stop = 1;
  pthread_cond_broadcast(&g_work);
  pthread_cond_broadcast(&g_done);
  pthread_mutex_unlock(&g_mu);
  if (on) pthread_join(g_thread, NULL);
  pthread_mutex_lock(&g_mu);
  g_on = 0;
  pthread_mutex_unlock(&g_mu);
}

int events_wait(const char *name, int64_t id, int ms) {
  size_t i;
  for (i = 0; i < events_nconsumers && i < 16; i++)
    if (!strcmp(events_consumers[i].name, name)) break;
  if (i == events_nconsumers || i == 16) return 1;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  if (paused()) return 1;
  pthread_mutex_lock(&g_mu);
  int rc = 0;
  while (g_cursor[i] < id) {
    /* Another node may be the dispatcher: look at the cursor in the database too. */
    struct timespec slice;
    clock_gettime(CLOCK_REALTIME, &slice);
    slice.tv_nsec += 20 * 1000000L;
    if (slice.tv_nsec >= 1000000000L) {
      slice.tv_sec++;
      slice.tv_nsec -= 1000000000L;
    }
    int last_slice = slice.tv_sec > until.tv_sec ||
                     (slice.tv_sec == until.tv_sec && slice.tv_nsec >= until.tv_nsec);
    if (!g_on || g_stop) {
      rc = 1;
      break;
    }
    if (pthread_cond_timedwait(&g_done, &g_mu, last_slice ? &until : &slice) == 0) continue;
    pthread_mutex_unlock(&g_mu);
    int64_t cur = 0;
    int peek = db_cursor_peek(events_consumers[i].name, &cur, NULL);
    pthread_mutex_lock(&g_mu);
    if (!peek && cur > g_cursor[i]) g_cursor[i] = cur;
    if (g_cursor[i] >= id) break;
    if (last_slice) {
      rc = 1;
      break;
    }
  }
  pthread_mutex_unlock(&g_mu);
  /* The consumer's changes (another node's, maybe) are seen: the caller is about to tell
   * of them, which waits until no node's repo cache can be older (db_visibility_wait). */
  if (!rc) db_visibility_wait();
  return rc;
}

void events_metrics(hub_buf *b) {
  int64_t last = 0, last_ts = 0, now = db_now_ms();
  if (db_events_last(&last, &last_ts)) return;
  hub_buf_puts(b, "# HELP modelhub_events_total Events recorded (ref moves and repo changes).\n"
                  "# TYPE modelhub_events_total counter\n");
  hub_buf_printf(b, "modelhub_events_total %lld\n", (long long)last);
  hub_buf_puts(b, "# HELP modelhub_consumer_lag_events Events a consumer has not finished.\n"
                  "# TYPE modelhub_consumer_lag_events gauge\n");
  for (size_t i = 0; i < events_nconsumers; i++) {
    int64_t cur = 0, done = 0;
    db_cursor_peek(events_consumers[i].name, &cur, &done);
    hub_buf_printf(b, "modelhub_consumer_lag_events{consumer=\"%s\"} %lld\n",
                   events_consumers[i].name, (long long)(last > cur ? last - cur : 0));
  }
  hub_buf_puts(b, "# HELP modelhub_consumer_lag_seconds Age of the oldest event a consumer has "
                  "not finished.\n# TYPE modelhub_consumer_lag_seconds gauge\n");
  for (size_t i = 0; i < events_nconsumers; i++) {
    int64_t cur = 0, done = 0, ts = 0;
    db_cursor_peek(events_consumers[i].name, &cur, &done);
    if (cur < last) ts = db_event_ts(cur + 1);
    hub_buf_printf(b, "modelhub_consumer_lag_seconds{consumer=\"%s\"} %.3f\n",
                   events_consumers[i].name, ts && now > ts ? (double)(now - ts) / 1000.0 : 0.0);
  }
  hub_buf_puts(b, "# HELP modelhub_consumer_processed_total Events a consumer finished.\n"
                  "# TYPE modelhub_consumer_processed_total counter\n");
  for (size_t i = 0; i < events_nconsumers; i++) {
    int64_t cur = 0, done = 0;
    db_cursor_peek(events_consumers[i].name, &cur, &done);
    hub_buf_printf(b, "modelhub_consumer_processed_total{consumer=\"%s\"} %lld\n",
                   events_consumers[i].name, (long long)done);
  }
  (void)last_ts;
}
