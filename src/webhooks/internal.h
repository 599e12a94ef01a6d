/* Shared by the webhooks module's .c files only. */
#ifndef HUB_WEBHOOKS_INTERNAL_H
#define HUB_WEBHOOKS_INTERNAL_H

#include "jobs/jobs.h"
#include "webhooks/webhooks.h"

#define WEBHOOKS_JOB_KIND "webhooks.deliver"
#define WEBHOOKS_KEEP_DELIVERIES 500 /* finished deliveries kept per webhook */
#define WEBHOOKS_INLINE_MAX 64       /* deliveries one job sends before it hands over */

/* Settings read once at start-up (docs/webhooks.md, "Environment"). */
typedef struct {
  int allow_private; /* MODELHUB_WEBHOOK_ALLOW_PRIVATE */
  long timeout_ms;   /* MODELHUB_WEBHOOK_TIMEOUT_MS: one attempt */
  int attempts;      /* MODELHUB_WEBHOOK_ATTEMPTS: before a delivery is given up */
  int backoff_ms;    /* MODELHUB_WEBHOOK_BACKOFF_MS: first retry delay (doubles) */
  int disable_after; /* MODELHUB_WEBHOOK_DISABLE_AFTER: consecutive give-ups (0: never) */
  int concurrency;   /* MODELHUB_WEBHOOK_CONCURRENCY: deliveries at once (different webhooks) */
} webhooks__config;

extern webhooks__config webhooks__cfg;

/* Base URL of the payloads' links ("http://host:port", no trailing slash). */
const char *webhooks__base(void);
/* Queue the job "d<delivery_id>" that sends a webhook's deliveries from that one on (inside
 * the caller's transaction). */
int webhooks__queue(int64_t delivery_id, int64_t webhook_id);
/* The job handler (deliver.c). */
int webhooks__deliver(const db_job *job, void *ctx);

#endif
