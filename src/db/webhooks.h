/* Webhooks' tables (docs/webhooks.md): the webhooks of each user, what they watch, and the
 * delivery log. SQL only: webhooks/ decides what to deliver and when.
 *
 * - webhooks: one row per webhook (owner, url, secret, domains, disabled + why, the run of
 *   consecutive give-ups that disables it automatically).
 * - webhook_watch: one row per watched item: a repo (type + "ns/name") or a namespace
 *   (user or org name), so an event finds its webhooks by index.
 * - webhook_deliveries: one row per (webhook, event, scope) and per replay. A webhook's deliveries
 *   go out one at a time in id order: at most one is "pending", later ones are "waiting";
 *   finishing one (ok, failed = given up, skipped) makes the next pending. A pending
 *   delivery names its owner, the job key that sends it ("d<id>" of the delivery that started
 *   the job); the next one is handed to the same owner or to a new one ("d<its id>"), whose
 *   job the caller queues in the same transaction. */
#ifndef HUB_DB_WEBHOOKS_H
#define HUB_DB_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#define DB_WEBHOOK_URL_MAX 2048
#define DB_WEBHOOK_SECRET_MAX 256
#define DB_WEBHOOK_WATCHED_MAX 32    /* watched items per webhook */
#define DB_WEBHOOK_WATCHED_JSON 8192 /* their JSON text */
#define DB_WEBHOOK_PAYLOAD_MAX 65536 /* one delivery's payload (JSON) */
#define DB_WEBHOOK_RESPONSE_MAX 1024 /* response excerpt kept per delivery */
#define DB_WEBHOOK_PER_USER_MAX 100  /* webhooks one user may have */

enum { DB_WATCH_REPO = 0, DB_WATCH_NS = 1 };

typedef struct {
  int kind;       /* DB_WATCH_REPO or DB_WATCH_NS */
  int repo_type;  /* DB_WATCH_REPO: REPO_MODEL/DATASET/SPACE (db.h) */
  char name[256]; /* "ns/name" or "ns" */
} db_webhook_watch;

typedef struct {
  int64_t id;
  char uid[25];
  int64_t user_id;
  char url[DB_WEBHOOK_URL_MAX + 1];
  char watched[DB_WEBHOOK_WATCHED_JSON];  /* JSON array as the API shows it */
  char domains[64];                       /* JSON array: ["repo","discussion"] */
  char secret[DB_WEBHOOK_SECRET_MAX + 1]; /* "" = none */
  int disabled;
  char disabled_reason[16]; /* "" | "manual" | "failures" */
  int failures;             /* consecutive deliveries given up */
  int64_t created_ms, updated_ms, disabled_ms, last_ok_ms;
} db_webhook;

typedef struct {
  int64_t id, webhook_id, event_id, replay_of, repo_id;
  char scope[32], action[16];
  char state[12]; /* waiting | pending | ok | failed | skipped */
  char owner[24]; /* pending: the key of the job that sends it */
  int attempts;
  int status;         /* last HTTP status, 0 when none arrived */
  int64_t latency_ms; /* last attempt */
  char error[256];
  char response[DB_WEBHOOK_RESPONSE_MAX + 1];
  int64_t created_ms, updated_ms;
  char *payload; /* malloc'd JSON (db_webhook_delivery_dispose), NULL in listings without it */
} db_webhook_delivery;

int db_webhooks_init(void); /* module "webhooks"; once at start-up */

/* Create (fills id, uid, times) with its watch rows, in one transaction. HUB_EINVALID past
 * DB_WEBHOOK_PER_USER_MAX. */
int db_webhook_create(db_webhook *w, const db_webhook_watch *items, size_t n);
/* Update url, watched, domains, secret (and the watch rows when items != NULL). */
int db_webhook_update(db_webhook *w, const db_webhook_watch *items, size_t n);
/* By uid, owned by user_id (0: any owner). HUB_ENOTFOUND. */
int db_webhook_get(const char *uid, int64_t user_id, db_webhook *out);
int db_webhook_by_id(int64_t id, db_webhook *out);
typedef int (*db_webhook_cb)(const db_webhook *w, void *payload);
int db_webhook_list(int64_t user_id, db_webhook_cb cb, void *payload);
/* Delete a webhook, its watch rows and its deliveries. */
int db_webhook_delete(int64_t id);
/* Disable (reason "manual" or "failures") or enable (failures back to 0). */
int db_webhook_set_disabled(int64_t id, int disabled, const char *reason);
/* Enabled webhooks watching a repo (by type + "ns/name") or its namespace: ids in out
 * (at most max), wanting `domain` ("repo" or "discussion"), created at or before `at_ms`
 * (the event's time: a new webhook is not sent the backlog). */
int db_webhook_match(int repo_type, const char *ns, const char *full, const char *domain,
                     int64_t at_ms, int64_t *out, size_t max, size_t *n);

/* Append a delivery: "pending" (*out_pending = 1, owner "d<its id>": queue that job) when
 * the webhook has none pending, else "waiting". replay_of 0: at most one per (webhook, event,
 * scope): HUB_EEXISTS for a second. */
int db_webhook_delivery_add(int64_t webhook_id, int64_t event_id, int64_t replay_of,
                            int64_t repo_id, const char *scope, const char *action,
                            const char *payload, int64_t *out_id, int *out_pending);
/* One delivery with its payload (dispose it). HUB_ENOTFOUND. */
int db_webhook_delivery_get(int64_t id, db_webhook_delivery *out);
void db_webhook_delivery_dispose(db_webhook_delivery *d);
/* Record an attempt that will be retried (state stays pending). */
int db_webhook_delivery_attempt(const db_webhook_delivery *d);
/* End a delivery (d->state: ok | failed | skipped) with its last attempt's record; the
 * webhook's run of give-ups is reset (ok) or grows (failed) and past disable_after (> 0)
 * the webhook is disabled ("failures", *out_disabled = 1). The next waiting delivery of the
 * webhook becomes pending (*out_next, 0 when none), owned by d's owner when `keep_owner`,
 * else by "d<next>" (*out_new_owner = 1: the caller queues that job). Run inside the
 * caller's transaction. */
int db_webhook_delivery_finish(const db_webhook_delivery *d, int disable_after, int keep_owner,
                               int *out_disabled, int64_t *out_next, int *out_new_owner);
/* The pending delivery of a webhook owned by `owner` (with its payload). HUB_ENOTFOUND when
 * none: the job's chain ended or passed to another job. */
int db_webhook_delivery_owned(int64_t webhook_id, const char *owner, db_webhook_delivery *out);
/* Newest first, id < before (0: from the newest), at most limit; with payloads. */
typedef int (*db_webhook_delivery_cb)(const db_webhook_delivery *d, void *payload);
int db_webhook_deliveries(int64_t webhook_id, int64_t before, int limit, db_webhook_delivery_cb cb,
                          void *payload);
/* Keep the newest `keep` finished deliveries of a webhook. */
int db_webhook_deliveries_prune(int64_t webhook_id, int keep);
/* Counts per state over all webhooks (metrics): cb(state, n). */
int db_webhook_delivery_counts(void (*cb)(const char *state, int64_t n, void *payload),
                               void *payload);

#endif
