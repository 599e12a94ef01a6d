/* The one table of event consumers (events.h). Each has its own cursor in the database
 * (event_cursors) and sees every event once, oldest first; a crash replays at most the
 * batch it was working on (effects are idempotent).
 *
 * - index: derived metadata (card data, tags, parameters, search rows) of repos whose
 *   default branch moved (index_consume). The head itself (sha, siblings) is not here: the
 *   ref transaction writes it synchronously (read-your-writes).
 * Next: scanning, webhooks, mirroring — add a row. */
#include "events/events.h"
#include "index/index.h"

const events_consumer events_consumers[] = {
    {"index", index_consume},
};
const size_t events_nconsumers = sizeof events_consumers / sizeof events_consumers[0];
