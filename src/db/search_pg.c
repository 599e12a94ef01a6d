/* The "search-pg" schema module (search_pg.h): trigram and text-search indexes and the
 * change-stamp triggers on PostgreSQL. */
#include "db/search_pg.h"

#include "db/stmt.h"

int db__search_pg_migrate(void) {
  if (db_engine() != DB_ENGINE_POSTGRES) return 0;
  return 0; /* steps land with the search sweep (docs/scale-out.md, conversion plan) */
}
