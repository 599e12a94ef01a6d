/* Worker threads for handlers that may block (disk syncs, git children, long CPU work).
 * The event threads of the epoll pool must never wait on those: a connection whose
 * handler runs here is suspended, and the worker resumes it once the response is queued.
 * Threads are started on demand (an idle one is reused first) up to HUB_MAX_WORKERS;
 * past that, jobs wait in FIFO order. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "http/internal.h"
#include "util/error.h"
#include "util/thread.h"
#include "util/limits.h"

typedef struct job {
  void (*fn)(void *);
  void *arg;
  struct job *next;
} job;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_idle_cv = PTHREAD_COND_INITIALIZER;
static job *g_head, *g_tail;
static int g_threads, g_idle, g_busy, g_queued;

static void *worker_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!g_head) {
      g_idle++;
      pthread_cond_wait(&g_cv, &g_mu);
      g_idle--;
    }
    job *j = g_head;
    g_queued--;
    g_head = j->next;
    if (!g_head) g_tail = NULL;
    g_busy++;
    pthread_mutex_unlock(&g_mu);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&g_mu);
    if (--g_busy == 0 && !g_head) pthread_cond_broadcast(&g_idle_cv);
  }
  return NULL;
}

int http__worker_submit(void (*fn)(void *), void *arg) {
  job *j = malloc(sizeof *j);
  if (!j) return hub_error_set(HUB_ERROR, "out of memory");
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_mutex_lock(&g_mu);
  if (g_tail)
    g_tail->next = j;
  else
    g_head = j;
  g_tail = j;
  g_queued++;
  /* An idle thread that was signalled but has not yet taken its job still counts as
   * idle: compare with the queue length so two quick jobs do not share one thread. */
  int spawn = g_queued > g_idle && g_threads < HUB_MAX_WORKERS;
  if (spawn) g_threads++;
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  if (spawn) {
    if (hub_thread_start("http-worker", worker_main, NULL,
                         NULL)) { /* the queued job still runs on an existing worker, if any */
      pthread_mutex_lock(&g_mu);
      g_threads--;
      int none = g_threads == 0;
      pthread_mutex_unlock(&g_mu);
      if (none) return hub_error_set(HUB_ERROR, "cannot start a worker thread");
    }
  }
  return 0;
}

int http__workers_drain(int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&g_mu);
  int rc = 0;
  while ((g_busy || g_head) && rc == 0)
    rc = pthread_cond_timedwait(&g_idle_cv, &g_mu, &until);
  int left = g_busy || g_head;
  pthread_mutex_unlock(&g_mu);
  return left ? -1 : 0;
}
