/* Schema versions, for operations (`modelhub migrate`, docs/scale-out.md "Operations").
 *
 * Every schema module (the core schema and each db_migrate / db_migrate_module caller)
 * has a version in the database: the number of its steps applied. This binary knows a
 * version of each (DB_SCHEMA_KNOWN in schema.c, kept equal to the step counts by
 * tests/e2e/ops.test.mjs). Before anything migrates, main.c reads the database's versions
 * (db_schema_read) and refuses to run when a module is at a higher version than this
 * binary knows (a newer modelhub migrated it), and, with --no-migrate, when steps are
 * pending. After migrating, db_schema_record writes which binary did it (table
 * schema_binary, module "ops").
 *
 * db_schema_read may run before db_global_init (it opens the SQLite file itself, read
 * only; on PostgreSQL it reads through db/stmt.h). Errors: 0 or a negative HUB_E* code
 * with the message set. */
#ifndef HUB_DB_SCHEMA_H
#define HUB_DB_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char module[64];
  int have;  /* version in the database; 0 when absent */
  int known; /* version this binary knows; -1 when it does not know the module */
} db_schema_entry;

typedef struct {
  db_schema_entry *v; /* owned; free with db_schema_state_dispose */
  size_t n;
  int exists;             /* the database has a schema at all */
  char last_binary[128];  /* "modelhub 0.1.0" that last recorded a migration, or "" */
  char last_modules[512]; /* what that binary knew (JSON object module -> version) */
  int64_t last_ms;        /* when (unix ms), 0 if never recorded */
} db_schema_state;

/* Versions of every module this binary knows or the database has. data_dir holds the
 * SQLite file (ignored on PostgreSQL). A missing database is a state with exists = 0. */
int db_schema_read(const char *data_dir, db_schema_state *out);
void db_schema_state_dispose(db_schema_state *s);
/* The version this binary knows for `module` (its step count), -1 if not listed. */
int db_schema_known_version(const char *module);

/* 1 (with a message in msg) when a module is at a higher version than this binary knows:
 * "the database schema is newer than this modelhub (module X at version N, this binary
 * knows M): upgrade modelhub". Modules this binary does not know at all are not counted
 * (it never touches their tables). */
int db_schema_newer(const db_schema_state *s, char *msg, size_t cap);
/* Steps pending (the sum over modules of known - have), with the first module named in
 * msg when non-zero. */
int db_schema_pending(const db_schema_state *s, char *msg, size_t cap);

/* Record, after every module migrated, that `binary` ("modelhub 0.1.0") did it: module
 * "ops" (table schema_binary) and its one row, with the versions this binary knows. */
int db_schema_record(const char *binary);

#endif
