/* The statement layer both database engines implement: SQLite (embedded, the default) and
 * PostgreSQL through libpq (--db postgres://… / MODELHUB_DB). The engine choice
 * (db_engine_select) is for main.c; the rest is shared by the db module's .c files only.
 * docs/scale-out.md ("Database engines") has the portable-SQL rules and the plan
 * that moves every db file from sqlite3_* calls onto this header.
 *
 * Connections are per thread on both engines (opened on first use, closed at thread exit).
 * SQL is written once, with `?` or `?N` placeholders; on PostgreSQL it is rewritten once at
 * prepare time (placeholders to $N, INSERT OR IGNORE, DDL types; db__pg_rewrite) and the
 * result is prepared server-side and cached per connection, like sqlite3_prepare_v3 here.
 * Errors: a negative HUB_E* code with the message set (util/error.h); a constraint
 * violation is HUB_EEXISTS, a PostgreSQL server that cannot be reached HUB_EUNAVAILABLE
 * (503): the connection is retried at the next statement, so service resumes by itself. */
#ifndef HUB_DB_STMT_H
#define HUB_DB_STMT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DB_ENGINE_SQLITE = 0, DB_ENGINE_POSTGRES = 1 } db_engine_kind;

/* Choose the engine before db_global_init / the first statement: NULL or "" reads
 * MODELHUB_DB; a postgres:// or postgresql:// URL (libpq syntax) selects PostgreSQL,
 * anything else (unset, "sqlite") the embedded SQLite file in the data dir. HUB_EINVALID
 * for an unknown scheme. Not thread-safe: call once at startup. */
int db_engine_select(const char *spec);
db_engine_kind db_engine(void);
/* The PostgreSQL URL in use ("" on SQLite). */
const char *db_engine_url(void);

typedef struct db_stmt db_stmt;

/* db_step results (errors are negative HUB_E* codes). */
enum { DB_ROW = 1, DB_DONE = 2 };
/* db_col_type results. */
enum { DB_T_NULL = 0, DB_T_INT = 1, DB_T_FLOAT = 2, DB_T_TEXT = 3, DB_T_BLOB = 4 };

/* The cached statement for a static SQL string (keyed by the pointer), reset and unbound.
 * Borrowed: never freed by the caller, valid on this thread until the next db_prep of the
 * same text. NULL with an error set on failure. The role of db__stmt (internal.h). An SQL
 * error shows at db_prep on SQLite, at the first db_step on PostgreSQL (prepared then,
 * with the bound values' types). At most 256 parameters on PostgreSQL. */
db_stmt *db_prep(const char *sql);
/* A statement for SQL text built at run time (listings), cached per thread by its text.
 * Release it with db_prep_text_done. */
db_stmt *db_prep_text(const char *sql);
void db_prep_text_done(db_stmt *st);

/* Bind parameter idx (1-based, like ?N). Text and blobs are copied when bound, so the
 * caller's buffer may go away before db_step. len -1: text up to its NUL. */
int db_bind_int64(db_stmt *st, int idx, int64_t v);
int db_bind_double(db_stmt *st, int idx, double v);
int db_bind_text(db_stmt *st, int idx, const char *s, int len);
int db_bind_blob(db_stmt *st, int idx, const void *p, size_t len);
int db_bind_null(db_stmt *st, int idx);

/* Run or advance: DB_ROW (a row to read), DB_DONE, or a negative HUB_E* error. */
int db_step(db_stmt *st);
/* Step to completion ignoring rows, then reset: 0 or an error (db__step_done's role). */
int db_step_done(db_stmt *st);
/* Back to before the first step, bindings kept (db_prep clears them). */
void db_reset(db_stmt *st);

/* Columns of the current row (0-based). NULL reads as 0 / NULL text / NULL blob. Text and
 * blob pointers are borrowed until the next db_step / db_reset of st. */
int db_col_type(db_stmt *st, int col);
int64_t db_col_int64(db_stmt *st, int col);
double db_col_double(db_stmt *st, int col);
const char *db_col_text(db_stmt *st, int col);
const void *db_col_blob(db_stmt *st, int col);
size_t db_col_bytes(db_stmt *st, int col);
int db_col_count(db_stmt *st);
/* Copy a text column into dst (always NUL-terminated; "" for NULL). */
void db_col_copy(char *dst, size_t cap, db_stmt *st, int col);

/* Close this thread's PostgreSQL connection and statements now (thread exit does it too;
 * the main thread calls it, via db_global_shutdown). No-op on SQLite. */
void db_stmt_thread_end(void);

/* Rows changed by the last INSERT/UPDATE/DELETE on this thread. */
int64_t db_changes(void);
/* Id of the row the last INSERT on this thread created: SQLite's rowid; PostgreSQL's
 * lastval() (the last identity value this session drew). Portable SQL that needs the id
 * says `INSERT … RETURNING id` and reads it as a row instead. */
int64_t db_last_id(void);

/* Run one or more statements without parameters (DDL, PRAGMA-free setup). Rewritten like
 * prepared SQL on PostgreSQL. */
int db_exec(const char *sql);

/* Transactions. DB_TX_READ: one consistent snapshot for several reads. DB_TX_WRITE: the
 * writer lock at once, so a read-then-write inside is never interleaved with another
 * writer (SQLite BEGIN IMMEDIATE; PostgreSQL a transaction-scoped advisory lock that
 * every DB_TX_WRITE takes). DB_TX_DURABLE: DB_TX_WRITE whose commit returns only once it
 * is on disk (SQLite synchronous=FULL for that commit; PostgreSQL synchronous_commit=on). */
enum { DB_TX_READ = 0, DB_TX_WRITE = 1, DB_TX_DURABLE = 2 };
int db_tx_begin(int kind);
int db_tx_commit(void);
void db_tx_rollback(void);
/* 1 inside a transaction on this thread's connection. */
int db_tx_active(void);
/* Named savepoints inside a transaction (a plain identifier). On PostgreSQL a failed
 * statement aborts the whole transaction: code that expects a failure inside one (and
 * carries on) wraps that statement in a savepoint and rolls back to it. */
int db_savepoint(const char *name);
int db_savepoint_release(const char *name);
int db_savepoint_rollback(const char *name);

/* A schema step for db_migrate: `sql` runs on both engines unless the engine's own text is
 * given (`sqlite` / `postgres`: a step that cannot be written portably, e.g. FTS5 vs
 * tsvector). A NULL text for the engine in use (and no `sql`) is an empty step. */
typedef struct {
  const char *sql, *sqlite, *postgres;
} db_migration;
/* Apply steps[version..nsteps) of `module` on the current engine, each in its own write
 * transaction, recording the version in schema_modules (the same table and numbering as
 * db_migrate_module, so a module can move from one runner to the other). */
int db_migrate(const char *module, const db_migration *steps, int nsteps);

/* ---- engine internals (stmt.c dispatches to these; pg.c implements them) ---- */
/* Rewrite SQL for PostgreSQL (malloc'd; NULL on OOM): placeholders ?/?N to $N outside
 * quotes and comments, INSERT OR IGNORE, and in DDL the SQLite type names. *nparams gets
 * the highest parameter number. Exposed for tests. */
char *db__pg_rewrite(const char *sql, int *nparams);
#endif
