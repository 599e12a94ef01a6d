/* Webhooks (docs/webhooks.md): the Hub's /api/settings/webhooks API, and delivery of the
 * event log to them.
 *
 * - The "webhooks" event consumer (webhooks_consume, handed to events/ by main.c with
 *   events_set_consumer) turns each event into one delivery per matching webhook: the
 *   Hub's payload (version 3) is built then and stored with the delivery.
 * - Each delivery is a job of kind "webhooks.deliver" (jobs/): an HTTP POST through
 *   net/outbound.h (no redirects, private targets refused unless
 *   MODELHUB_WEBHOOK_ALLOW_PRIVATE=1, bounded reads, a timeout per attempt), retried with
 *   exponential backoff, at least once. A webhook's deliveries go out in order: the next
 *   one's job is queued only when the previous one succeeded or was given up.
 * - The owner's read access to the repo is checked at delivery time.
 * - A run of MODELHUB_WEBHOOK_DISABLE_AFTER consecutive give-ups disables the webhook.
 *
 * Layering: layer 4, above http/, jobs/, audit/, auth/, net/, db/; below api/ and web/. */
#ifndef HUB_WEBHOOKS_WEBHOOKS_H
#define HUB_WEBHOOKS_WEBHOOKS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/events.h"
#include "db/webhooks.h"
#include "http/http.h"
#include "util/buf.h"
#include "util/hub.h"

/* Tables and the delivery job kind; `fallback_base` ("http://host:port") builds the
 * payloads' URLs when ctx->public_url is NULL. Once at start-up, before events_start. */
int webhooks_init(const hub_ctx *ctx, const char *fallback_base);

/* The events consumer (events_consumer.consume). */
int webhooks_consume(const db_event *ev, size_t n);

/* The discussion and comment objects of a payload (gov/'s gov_discussion_json), handed
 * down by main.c: *disc and *comment (NULL when comment_id is NULL) are new references. */
typedef int (*webhooks_discussion_fn)(const db_repo *repo, int num, const char *comment_id,
                                      json_t **disc, json_t **comment);
void webhooks_set_discussion_source(webhooks_discussion_fn fn);

/* The API routes (/api/settings/webhooks...). */
extern const hub_route webhooks_routes[];

/* For the settings page (web/) and the API: the webhook as the Hub shows it (new ref). */
json_t *webhooks_json(const db_webhook *w);
json_t *webhooks_delivery_json(const db_webhook_delivery *d, int with_payload);

/* Operations shared by the API and the settings page: each is permission-checked (the
 * webhook must belong to who) and audited. */
int webhooks_set_disabled(hub_req *r, const char *uid, int disabled, db_webhook *out);
int webhooks_replay(hub_req *r, const char *uid, int64_t delivery_id, int64_t *out_id);

#endif
