/* The one table of event consumers (events.h). Each has its own cursor in the database
 * (event_cursors) and sees every event once, oldest first; a crash replays at most the
 * batch it was working on (effects are idempotent).
 *
 * - index: derived metadata (card data, tags, parameters, search rows) of repos whose
 *   default branch moved (index_consume). The head itself (sha, siblings) is not here: the
 *   ref transaction writes it synchronously (read-your-writes).
 * - xet: LFS -> Xet conversion of the objects a repo with Xet on references, after its
 *   refs moved (xetsrv_consume, handed down by main.c with events_set_xet_consumer).
 * Next: scanning, webhooks, mirroring — add a row. */
#include "events/events.h"
#include "index/index.h"

/* Set by main.c (events/ never includes xetsrv/, a peer above it in the table). */
static int (*g_xet_consume)(const db_event *ev, size_t n);

void events_set_xet_consumer(int (*consume)(const db_event *ev, size_t n)) {
  g_xet_consume = consume;
}

static int xet_consume(const db_event *ev, size_t n) {
  return g_xet_consume ? g_xet_consume(ev, n) : 0;
}

const events_consumer events_consumers[] = {
    {"index", index_consume},
    {"xet", xet_consume},
};
const size_t events_nconsumers = sizeof events_consumers / sizeof events_consumers[0];
