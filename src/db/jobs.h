/* The jobs table: durable background work shared by every node on one database
 * (docs/jobs.md). The runner (jobs/jobs.h) is the only writer besides the CLI; this
 * header is its SQL, nothing else.
 *
 * A job is queued → running (under a lease: owner + expiry) → done, or back to queued
 * with a later run_after (a retry), or dead (attempts used up), or cancelled. A running
 * job whose lease expired (its node died) may be claimed again by any node. Times are
 * unix milliseconds. */
#ifndef HUB_DB_JOBS_H
#define HUB_DB_JOBS_H

#include <stdint.h>

#define DB_JOB_KIND_MAX 63
#define DB_JOB_KEY_MAX 255
#define DB_JOB_PAYLOAD_MAX 2047
#define DB_JOB_ERROR_MAX 511

typedef struct {
  int64_t id;
  char kind[DB_JOB_KIND_MAX + 1];
  char key[DB_JOB_KEY_MAX + 1]; /* "" when none */
  char payload[DB_JOB_PAYLOAD_MAX + 1];
  char state[12]; /* queued | running | done | dead | cancelled */
  int attempts, max_attempts;
  int64_t run_after, lease_until, created, updated;
  char lease_owner[64];
  char last_error[DB_JOB_ERROR_MAX + 1];
} db_job;

/* Create the table (module "jobs"). Once at start-up. */
int db_jobs_init(void);

/* Queue a job. key (NULL or "": none) deduplicates: while a job of the same kind and key
 * is queued, running or dead, HUB_EEXISTS (its id in *out_id). max_queued > 0 bounds the
 * kind's queued jobs: HUB_EBUSY past it. Runs in the caller's transaction when one is
 * open (a savepoint), else in its own. */
int db_job_enqueue(const char *kind, const char *key, const char *payload, int max_attempts,
                   int max_queued, int64_t run_after, int64_t *out_id);
/* Claim the next ready job of one of kinds[0..n): queued with run_after <= now, or running
 * with an expired lease. Its attempts grow by one; it runs under owner's lease until
 * now + lease_ms. A reclaimed job whose attempts are used up goes dead instead.
 * HUB_ENOTFOUND when none is ready. */
int db_job_claim(const char *const *kinds, int n, const char *owner, int64_t lease_ms, db_job *out);
/* Extend the leases of owner's running jobs to now + lease_ms. */
int db_job_renew(const char *owner, int64_t lease_ms);
/* End owner's run of job id: state "done", "queued" (retry at run_after) or "dead", with
 * err recorded (NULL: keep). HUB_ECONFLICT if owner no longer holds it (lease lost,
 * cancelled): the outcome is dropped. */
int db_job_finish(int64_t id, const char *owner, const char *state, int64_t run_after,
                  const char *err);
int db_job_get(int64_t id, db_job *out); /* HUB_ENOTFOUND */
/* Jobs newest first, filtered by state and kind (NULL: any), at most limit. */
typedef int (*db_job_cb)(const db_job *job, void *payload);
int db_job_list(const char *state, const char *kind, int limit, db_job_cb cb, void *payload);
/* Queue a dead or cancelled job again with fresh attempts. HUB_ENOTFOUND, HUB_ECONFLICT
 * (not dead/cancelled), HUB_EEXISTS (a live job with its key exists). */
int db_job_retry(int64_t id);
/* Cancel a queued, running or dead job (a running one's outcome is then dropped).
 * HUB_ENOTFOUND, HUB_ECONFLICT (already done/cancelled). */
int db_job_cancel(int64_t id);
/* Per kind and state: count and the oldest created time. */
typedef void (*db_job_count_cb)(const char *kind, const char *state, int64_t count,
                                int64_t oldest_created, void *payload);
int db_job_counts(db_job_count_cb cb, void *payload);
/* Delete done and cancelled jobs last updated before `before`. */
int db_job_prune(int64_t before);

#endif
