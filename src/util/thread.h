/* The one place that starts threads (Redis's bio.c idea): every thread of the process is
 * started here under a name, counted per name and against one process-wide cap, so
 * `/metrics` and `modelhub jobs list` can say what runs and a flood cannot start threads
 * without bound. It lives in util/ because db/ (the index build) starts a thread too;
 * background *work* goes through the job runner (jobs/jobs.h) instead of new threads.
 *
 * Names are static strings (borrowed for the process's lifetime). */
#ifndef HUB_UTIL_THREAD_H
#define HUB_UTIL_THREAD_H

#include <pthread.h>

/* Threads the process may run at once through hub_thread_start (HTTP workers, stream
 * producers, the job runner, service threads). MODELHUB_MAX_THREADS overrides it. */
#define HUB_MAX_THREADS 512

/* Start fn(arg) on a new thread named `name`. out != NULL: joinable, its id in *out (the
 * caller joins it); out == NULL: detached. HUB_EBUSY past the process-wide cap, HUB_ERROR
 * when pthread_create fails; nothing is started then. */
int hub_thread_start(const char *name, void *(*fn)(void *), void *arg, pthread_t *out);

/* Running threads started here, per name: cb(name, running, started_total, payload) for
 * each name seen since start-up. */
typedef void (*hub_thread_cb)(const char *name, int running, unsigned long long started,
                              void *payload);
void hub_thread_each(hub_thread_cb cb, void *payload);
/* All running threads started here. */
int hub_thread_count(void);

#endif
