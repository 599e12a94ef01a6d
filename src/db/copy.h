/* Copying a SQLite database into PostgreSQL: `modelhub db copy --to postgres://…`
 * (docs/scale-out.md "Operations").
 *
 * The destination's schema is made first by the normal migrations (main.c runs every
 * module on PostgreSQL); db_copy_from_sqlite then copies rows generically: the tables from
 * sqlite_master (without FTS5 virtual tables and their shadow tables, which PostgreSQL does
 * not have, and without schema_modules / schema_binary, which the migrations wrote), parents
 * before children (foreign keys), columns by name, values by their SQLite type (integer,
 * real, text, blob, NULL). One transaction per table: the destination table is emptied of
 * what the migrations seeded, filled, its row count checked against the source, and its
 * identity sequences set past max(id). Triggers (and foreign-key checks) of the destination
 * are off for the copy when the role may do that (session_replication_role = replica, as
 * pg_restore --disable-triggers): the rows, change stamps included, arrive as they were.
 * Errors: 0 or a negative HUB_E* code with the message set; a table that failed rolls back
 * alone, and the copy stops there. */
#ifndef HUB_DB_COPY_H
#define HUB_DB_COPY_H

#include <stdint.h>

typedef struct {
  int tables;
  int64_t rows;
  int skipped;  /* tables left out (virtual tables and their shadow tables) */
  int triggers; /* 1 when the destination's triggers could not be turned off for the copy */
} db_copy_stats;

/* Called after each table is committed. */
typedef void (*db_copy_cb)(const char *table, int64_t rows, void *payload);

/* Copy every table of the SQLite file at sqlite_path (opened read-only) into the database
 * of the current engine, which must be PostgreSQL and hold the same schema. HUB_EEXISTS
 * when the destination already holds accounts (it must be new); HUB_EINVALID when a table
 * or column of the source is missing there. */
int db_copy_from_sqlite(const char *sqlite_path, db_copy_cb cb, void *payload, db_copy_stats *out);

#endif
