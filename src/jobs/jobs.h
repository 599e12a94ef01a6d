/* One job runner for background work (docs/jobs.md): named job kinds, each with a bounded
 * queue, a concurrency, retries with exponential backoff and a dead-letter state. Jobs
 * live in the DB (db/jobs.h) and are claimed under a lease that expires, so several nodes
 * on one database share the work, and a job whose node died is picked up again (by this
 * node after a restart, or by another) once its lease has run out.
 *
 * Threads: the runner's threads, like every thread of the process, are started through
 * util/thread.h (named, counted, capped). Subsystems register kinds; they start no
 * threads of their own for queued work.
 *
 * Layering: above db/, below index/, lfs/, xetsrv/, git/, gov/, api/, http/. */
#ifndef HUB_JOBS_JOBS_H
#define HUB_JOBS_JOBS_H

#include "db/jobs.h"
#include "util/buf.h"

/* A job's handler: 0 = done; anything else = failed (hub_error_msg() is recorded), retried
 * after a backoff until max_attempts, then dead. Runs on a runner thread; it may block. */
typedef int (*jobs_fn)(const db_job *job, void *ctx);

typedef struct {
  const char *name; /* static; "area.verb", e.g. "xet.convert" */
  jobs_fn run;
  void *ctx;
  int concurrency;  /* at most this many of the kind at once in this process (default 1) */
  int max_queued;   /* queued jobs beyond this: enqueue answers HUB_EBUSY (0: 10,000) */
  int max_attempts; /* default 5 */
  int backoff_ms;   /* first retry delay; doubles per attempt, ±25% jitter, at most 1 h
                       (default 1,000) */
} jobs_kind;

/* Register a kind (copied). Before or after jobs_start; at most 32 kinds. */
int jobs_register(const jobs_kind *kind);

/* Queue a job of a registered kind. key (NULL: none) deduplicates: HUB_EEXISTS while a
 * job of that kind and key is queued, running or dead (`jobs retry` revives a dead one).
 * HUB_EBUSY when the kind's queue is full. Never waits for the DB write lock: called
 * inside a read-only snapshot (a GET handler), or while another connection holds the
 * lock, the job is handed to the keeper thread, which inserts it at once (0 is returned;
 * a full queue then drops it with a log line). Inside the caller's write transaction the
 * insert joins it. */
int jobs_enqueue(const char *kind, const char *key, const char *payload);

/* Start `runners` runner threads (0: MODELHUB_JOB_RUNNERS, default 2) and the lease
 * keeper. With MODELHUB_TEST_JOBS=1 the test kinds are registered (docs/jobs.md). */
int jobs_start(int runners);
/* Stop claiming; wait for running handlers to end. */
void jobs_stop(void);
/* True once jobs_stop was called: long handlers may end early (they are retried). */
int jobs_stopping(void);

/* Prometheus text: per kind queued / running / dead / oldest queued age from the DB, and
 * this process's done / failed / retried / dead-lettered counters; threads per name. */
void jobs_metrics_render(hub_buf *out);

#endif
