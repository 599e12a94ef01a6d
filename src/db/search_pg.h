/* The PostgreSQL side of search and of the accelerator's change stamps: a schema module
 * ("search-pg") applied right after the core schema on PostgreSQL only (SQLite's FTS5
 * tables and triggers live in the core schema), and the SQL fragments search.c and accel.c
 * use against it (docs/search.md, "On PostgreSQL"). Shared by the db module's .c files only. */
#ifndef HUB_DB_SEARCH_PG_H
#define HUB_DB_SEARCH_PG_H

/* Apply the "search-pg" module's pending steps (no-op on SQLite). */
int db__search_pg_migrate(void);

/* A repo's lowercase id "ns/name", exactly the expression the trigram index
 * repos_id_trgm covers (so `DB__PG_ID("r.") LIKE ?` can use it). `p` is a table prefix
 * ("r." or ""). COLLATE "C": the columns' nocase collation refuses LIKE and strpos;
 * lower() under "C" folds ASCII only, like SQLite's lower(). */
#define DB__PG_ID(p) "lower((" p "ns || '/' || " p "name) COLLATE \"C\")"
/* The card phrase test on repo_meta (prefix p), one text parameter: the search term. */
#define DB__PG_CARD_MATCH(p) p "card_tsv @@ modelhub_card_query(?)"

/* LIKE pattern %term% for DB__PG_ID: ASCII lowercased, %, _ and \ escaped with \
 * (ESCAPE '\'). malloc'd; NULL when out of memory. */
char *db__pg_id_like(const char *term);
/* The term with ASCII lowercased (what DB__PG_ID holds). malloc'd; NULL when out of memory. */
char *db__pg_lower(const char *term);

#endif
