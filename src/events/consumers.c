/* The one table of event consumers (events.h). Each has its own cursor in the database
 * (event_cursors) and sees every event once, oldest first; a crash replays at most the
 * batch it was working on (effects are idempotent).
 *
 * - index: derived metadata (card data, tags, parameters, search rows) of repos whose
 *   default branch moved (index_consume). The head itself (sha, siblings) is not here: the
 *   ref transaction writes it synchronously (read-your-writes).
 * - xet: LFS -> Xet conversion of the objects a repo with Xet on references, after its
 *   refs moved (xetsrv_consume, handed down by main.c with events_set_consumer).
 * - scan: security scans of the objects a ref move brings in (security_consume, handed
 *   down by main.c): queues one scan.object job per object not scanned yet.
 * - webhooks: one delivery per matching webhook (webhooks_consume, handed down by main.c).
 * Next: mirroring — add a row. */
#include "events/events.h"
#include "index/index.h"

#include <string.h>

#include "util/error.h"

/* Rows whose work lives above events/ (xetsrv/, and next scanning, webhooks) start empty and
 * are filled by main.c with events_set_consumer before events_start: events/ never includes
 * a peer above it in the layer table. A row left empty is skipped without moving its cursor,
 * so no event is lost to a consumer that was not wired in. */
events_consumer events_consumers[] = {
    {"index", index_consume},
    {"xet", NULL},
    {"scan", NULL},
    {"webhooks", NULL},
};
const size_t events_nconsumers = sizeof events_consumers / sizeof events_consumers[0];

int events_set_consumer(const char *name, int (*consume)(const db_event *ev, size_t n)) {
  for (size_t i = 0; i < events_nconsumers; i++)
    if (strcmp(events_consumers[i].name, name) == 0) {
      events_consumers[i].consume = consume;
      return 0;
    }
  return hub_error_set(HUB_ENOTFOUND, "no event consumer named %s", name);
}
