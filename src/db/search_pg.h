/* The PostgreSQL side of search and of the accelerator's change stamps: a schema module
 * ("search-pg") applied right after the core schema on PostgreSQL only (SQLite's FTS5
 * tables and triggers live in the core schema). Shared by the db module's .c files only. */
#ifndef HUB_DB_SEARCH_PG_H
#define HUB_DB_SEARCH_PG_H

/* Apply the "search-pg" module's pending steps (no-op on SQLite). */
int db__search_pg_migrate(void);

#endif
