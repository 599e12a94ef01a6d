/* Deliveries: one job per delivery (kind "webhooks.deliver", key "d<id>"), an HTTP POST
 * through net/outbound.h. A webhook's next delivery is queued when this one ends (ok,
 * given up or skipped), in the same transaction that records the end: in order per
 * webhook, and a crash at any point leaves either this job to run again (at least once)
 * or the next one queued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "net/outbound.h"
#include "util/error.h"
#include "webhooks/internal.h"

webhooks__config webhooks__cfg;
static char g_base[1024];

const char *webhooks__base(void) {
  return g_base;
}

static long env_long(const char *name, long dflt, long min, long max) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < min || n > max) {
    fprintf(stderr, "modelhub: %s=%s is not a number from %ld to %ld; using %ld\n", name, v, min,
            max, dflt);
    return dflt;
  }
  return n;
}

int webhooks_init(const hub_ctx *ctx, const char *fallback_base) {
  int rc = db_webhooks_init();
  if (rc) return rc;
  snprintf(g_base, sizeof g_base, "%s",
           ctx && ctx->public_url ? ctx->public_url : (fallback_base ? fallback_base : ""));
  webhooks__config *c = &webhooks__cfg;
  c->allow_private = (int)env_long("MODELHUB_WEBHOOK_ALLOW_PRIVATE", 0, 0, 1);
  c->timeout_ms = env_long("MODELHUB_WEBHOOK_TIMEOUT_MS", 10000, 100, 600000);
  c->attempts = (int)env_long("MODELHUB_WEBHOOK_ATTEMPTS", 10, 1, 100);
  c->backoff_ms = (int)env_long("MODELHUB_WEBHOOK_BACKOFF_MS", 1000, 10, 3600000);
  c->disable_after = (int)env_long("MODELHUB_WEBHOOK_DISABLE_AFTER", 20, 0, 1000000);
  c->concurrency = (int)env_long("MODELHUB_WEBHOOK_CONCURRENCY", 1, 1, 64);
  jobs_kind kind = {WEBHOOKS_JOB_KIND, webhooks__deliver, NULL, c->concurrency, 100000,
                    c->attempts,       c->backoff_ms};
  return jobs_register(&kind);
}

int webhooks__queue(int64_t delivery_id) {
  char key[32];
  snprintf(key, sizeof key, "d%lld", (long long)delivery_id);
  int rc = jobs_enqueue(WEBHOOKS_JOB_KIND, key, key + 1);
  return rc == HUB_EEXISTS ? 0 : rc;
}

/* End a delivery and queue the webhook's next one, in one transaction. */
static int finish(db_webhook_delivery *d) {
  if (db_begin_immediate()) return hub_error_set(HUB_ERROR, "webhooks: begin: %s", db_errmsg());
  int disabled = 0;
  int64_t next = 0;
  int rc = db_webhook_delivery_finish(d, webhooks__cfg.disable_after, &disabled, &next);
  if (!rc && next) rc = webhooks__queue(next);
  if (rc || db_commit()) {
    db_rollback();
    return rc ? rc : hub_error_set(HUB_ERROR, "webhooks: commit: %s", db_errmsg());
  }
  if (disabled)
    fprintf(stderr,
            "modelhub: webhook %lld disabled after %d consecutive deliveries were given up\n",
            (long long)d->webhook_id, webhooks__cfg.disable_after);
  /* The log keeps the newest deliveries; trimmed now and then (it scans the webhook's). */
  if (d->id % 64 == 0) db_webhook_deliveries_prune(d->webhook_id, WEBHOOKS_KEEP_DELIVERIES);
  return 0;
}

static int skip(db_webhook_delivery *d, const char *why) {
  snprintf(d->state, sizeof d->state, "skipped");
  snprintf(d->error, sizeof d->error, "%s", why);
  return finish(d);
}

/* Whether the webhook's owner may still read the delivery's repo. A deletion was checked
 * when its delivery was made (the row is gone now). */
static int still_allowed(const db_webhook *w, const db_webhook_delivery *d) {
  if (!strcmp(d->scope, "repo") && !strcmp(d->action, "delete")) return 1;
  db_repo repo;
  hub_identity who;
  if (db_repo_by_id(d->repo_id, &repo) || auth_identity_for_user(w->user_id, &who)) return 0;
  return auth_repo_perm(&who, &repo) >= PERM_READ;
}

int webhooks__deliver(const db_job *job, void *ctx) {
  (void)ctx;
  int64_t id = strtoll(job->payload, NULL, 10);
  db_webhook_delivery d;
  db_webhook w;
  if (db_webhook_delivery_get(id, &d)) return 0; /* its webhook was deleted */
  int rc = 0;
  if (strcmp(d.state, "pending")) goto out; /* already ended (a replayed job) */
  if (db_webhook_by_id(d.webhook_id, &w)) goto out;
  if (w.disabled) {
    rc = skip(&d, "webhook disabled");
    goto out;
  }
  if (!still_allowed(&w, &d)) {
    rc = skip(&d, "the webhook's owner can no longer read the repository");
    goto out;
  }

  char secret_hdr[DB_WEBHOOK_SECRET_MAX + 32], id_hdr[64], ev_hdr[64];
  snprintf(secret_hdr, sizeof secret_hdr, "X-Webhook-Secret: %s", w.secret);
  snprintf(id_hdr, sizeof id_hdr, "X-Webhook-Id: %s", w.uid);
  snprintf(ev_hdr, sizeof ev_hdr, "X-Webhook-Delivery: %lld", (long long)d.id);
  const char *headers[6];
  int nh = 0;
  headers[nh++] = "Content-Type: application/json";
  headers[nh++] = "User-Agent: modelhub-webhooks/3";
  headers[nh++] = id_hdr;
  headers[nh++] = ev_hdr;
  if (w.secret[0]) headers[nh++] = secret_hdr;
  headers[nh] = NULL;
  outbound_opts opts = {webhooks__cfg.allow_private, webhooks__cfg.timeout_ms,
                        webhooks__cfg.timeout_ms, 0, DB_WEBHOOK_RESPONSE_MAX};
  outbound_request req = {"POST", w.url, headers, d.payload, strlen(d.payload),
                          NULL,   NULL,  NULL,    NULL};
  outbound_response resp;
  int64_t t0 = db_now_ms();
  int orc = outbound_perform(&opts, &req, &resp);
  d.latency_ms = db_now_ms() - t0;
  d.attempts = job->attempts;
  d.status = (int)resp.status;
  d.error[0] = 0;
  snprintf(d.response, sizeof d.response, "%s", resp.body.ptr ? resp.body.ptr : "");
  for (char *c = d.response; *c; c++) /* an excerpt shown as JSON text: ASCII only */
    if ((unsigned char)*c >= 0x7f || ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t'))
      *c = '?';
  int ok = !orc && resp.status >= 200 && resp.status < 300;
  /* A refused target (private address) or a bad URL will not get better: give up now. */
  int permanent = orc == HUB_EFORBIDDEN || orc == HUB_EINVALID;
  if (orc)
    snprintf(d.error, sizeof d.error, "%s", hub_error_msg());
  else if (!ok && resp.status >= 300 && resp.status < 400)
    snprintf(d.error, sizeof d.error, "HTTP %ld redirect to %s (not followed)", resp.status,
             resp.location ? resp.location : "?");
  else if (!ok)
    snprintf(d.error, sizeof d.error, "HTTP %ld", resp.status);
  outbound_response_free(&resp);

  if (ok) {
    snprintf(d.state, sizeof d.state, "ok");
    rc = finish(&d);
  } else if (permanent || job->attempts >= job->max_attempts) {
    snprintf(d.state, sizeof d.state, "failed");
    rc = finish(&d);
  } else {
    db_webhook_delivery_attempt(&d);
    /* The job runner retries after its backoff (doubling per attempt). */
    rc = hub_error_set(HUB_EUPSTREAM, "webhook %s delivery %lld: %s", w.uid, (long long)d.id,
                       d.error);
  }
out:
  db_webhook_delivery_dispose(&d);
  return rc;
}
