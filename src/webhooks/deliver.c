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
  /* A delivery is given up by its own count of attempts (webhook_deliveries.attempts); the
   * job gets a few more (a run cut short by a crash counts as one) so it never dies first. */
  jobs_kind kind = {WEBHOOKS_JOB_KIND, webhooks__deliver, NULL, c->concurrency, 100000,
                    c->attempts + 5,   c->backoff_ms};
  return jobs_register(&kind);
}

int webhooks__queue(int64_t delivery_id, int64_t webhook_id) {
  char key[32], payload[32];
  snprintf(key, sizeof key, "d%lld", (long long)delivery_id);
  snprintf(payload, sizeof payload, "%lld", (long long)webhook_id);
  int rc = jobs_enqueue(WEBHOOKS_JOB_KIND, key, payload);
  return rc == HUB_EEXISTS ? 0 : rc;
}

/* End a delivery and hand the webhook's next one to this job (keep_owner) or to a new job
 * queued in the same transaction. *out_next: the next delivery kept by this job (0: none). */
static int finish(db_webhook_delivery *d, int keep_owner, int64_t *out_next) {
  *out_next = 0;
  if (db_begin_immediate()) return hub_error_set(HUB_ERROR, "webhooks: begin: %s", db_errmsg());
  int disabled = 0, new_owner = 0;
  int64_t next = 0;
  int rc = db_webhook_delivery_finish(d, webhooks__cfg.disable_after, keep_owner, &disabled, &next,
                                      &new_owner);
  if (!rc && next && new_owner) rc = webhooks__queue(next, d->webhook_id);
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
  if (next && !new_owner) *out_next = next;
  return 0;
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

/* One attempt at d. 1: it ended (ok, given up, skipped: d->state says which), 0: retry it
 * later (d records the attempt). */
static int attempt(const db_webhook *w, db_webhook_delivery *d) {
  if (w->disabled || !still_allowed(w, d)) {
    snprintf(d->state, sizeof d->state, "skipped");
    snprintf(d->error, sizeof d->error, "%s",
             w->disabled ? "webhook disabled"
                         : "the webhook's owner can no longer read the repository");
    return 1;
  }
  char secret_hdr[DB_WEBHOOK_SECRET_MAX + 32], id_hdr[64], ev_hdr[64];
  snprintf(secret_hdr, sizeof secret_hdr, "X-Webhook-Secret: %s", w->secret);
  snprintf(id_hdr, sizeof id_hdr, "X-Webhook-Id: %s", w->uid);
  snprintf(ev_hdr, sizeof ev_hdr, "X-Webhook-Delivery: %lld", (long long)d->id);
  const char *headers[6];
  int nh = 0;
  headers[nh++] = "Content-Type: application/json";
  headers[nh++] = "User-Agent: modelhub-webhooks/3";
  headers[nh++] = id_hdr;
  headers[nh++] = ev_hdr;
  if (w->secret[0]) headers[nh++] = secret_hdr;
  headers[nh] = NULL;
  outbound_opts opts = {webhooks__cfg.allow_private, webhooks__cfg.timeout_ms,
                        webhooks__cfg.timeout_ms, 0, DB_WEBHOOK_RESPONSE_MAX};
  outbound_request req = {"POST", w->url, headers, d->payload, strlen(d->payload),
                          NULL,   NULL,   NULL,    NULL};
  outbound_response resp;
  /* The receiver may ask any node about the change at once: not before every node's repo
   * cache is newer than it (db_visibility_wait; the change was committed before we read
   * the delivery). */
  db_visibility_wait();
  int64_t t0 = db_now_ms();
  int orc = outbound_perform(&opts, &req, &resp);
  d->latency_ms = db_now_ms() - t0;
  d->attempts++;
  d->status = (int)resp.status;
  d->error[0] = 0;
  snprintf(d->response, sizeof d->response, "%s", resp.body.ptr ? resp.body.ptr : "");
  for (char *c = d->response; *c; c++) /* an excerpt shown as JSON text: ASCII only */
    if ((unsigned char)*c >= 0x7f || ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t'))
      *c = '?';
  int ok = !orc && resp.status >= 200 && resp.status < 300;
  /* A refused target (private address) or a bad URL will not get better: give up now. */
  int permanent = orc == HUB_EFORBIDDEN || orc == HUB_EINVALID;
  if (orc)
    snprintf(d->error, sizeof d->error, "%s", hub_error_msg());
  else if (!ok && resp.status >= 300 && resp.status < 400)
    snprintf(d->error, sizeof d->error, "HTTP %ld redirect to %s (not followed)", resp.status,
             resp.location ? resp.location : "?");
  else if (!ok)
    snprintf(d->error, sizeof d->error, "HTTP %ld", resp.status);
  outbound_response_free(&resp);
  if (ok || permanent || d->attempts >= webhooks__cfg.attempts) {
    snprintf(d->state, sizeof d->state, "%s", ok ? "ok" : "failed");
    return 1;
  }
  return 0;
}

/* The job of key "d<id>" sends the webhook's deliveries it owns, one after another: the
 * delivery it was queued for, then (while each goes through at the first try of this job,
 * up to WEBHOOKS_INLINE_MAX) the next ones, which it keeps instead of queueing a job each.
 * A delivery that needs a retry ends the run (the job runner retries it after its backoff,
 * doubling per attempt); the delivery after it is handed to a new job, so each delivery's
 * backoff starts afresh. After a crash the job runs again and resumes with the pending
 * delivery it owns; one it no longer owns (the chain ended, or went to a new job) is left
 * alone: a webhook's deliveries are sent by one job at a time, in order. */
int webhooks__deliver(const db_job *job, void *ctx) {
  (void)ctx;
  int64_t webhook_id = strtoll(job->payload, NULL, 10);
  db_webhook *w = malloc(sizeof *w);
  if (!w) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = 0;
  for (int sent = 0;; sent++) {
    db_webhook_delivery d;
    if (db_webhook_delivery_owned(webhook_id, job->key, &d)) break; /* nothing (left) to send */
    if (db_webhook_by_id(webhook_id, w)) {
      db_webhook_delivery_dispose(&d);
      break; /* deleted */
    }
    if (!attempt(w, &d)) {
      db_webhook_delivery_attempt(&d);
      rc = hub_error_set(HUB_EUPSTREAM, "webhook %s delivery %lld: %s", w->uid, (long long)d.id,
                         d.error);
      db_webhook_delivery_dispose(&d);
      break;
    }
    int64_t next = 0;
    int keep = job->attempts == 1 && sent + 1 < WEBHOOKS_INLINE_MAX && !jobs_stopping();
    rc = finish(&d, keep, &next);
    db_webhook_delivery_dispose(&d);
    if (rc || !next) break;
  }
  free(w);
  return rc;
}
