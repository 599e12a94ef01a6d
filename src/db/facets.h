/* Facet counts for the search sidebar: read-only group-bys over discovery's tables (public
 * repos of one type only). web/facets.c caches them. */
#ifndef HUB_DB_FACETS_H
#define HUB_DB_FACETS_H

#include <stdint.h>

enum { DB_FACET_TASK = 0, DB_FACET_LIBRARY, DB_FACET_LICENSE, DB_FACET_LANGUAGE, DB_FACET_N };
/* Called per value, most frequent first (at most 16); return nonzero to stop. */
typedef int (*db_facet_cb)(const char *value, int64_t count, void *payload);
int db_facet_top(int type, int facet, db_facet_cb cb, void *payload);
/* Repos per parameter-size bucket: <1B, 1–6B, 6–12B, 12–32B, 32–128B, >=128B. */
int db_facet_params(int type, int64_t out[6]);

#endif
