/* The statement layer (stmt.h): engine choice, dispatch, the SQLite engine (on the same
 * per-thread connection and statement cache as conn.c, so files converted to this layer
 * and files still on sqlite3_* share transactions), transactions and db_migrate. */
#include "db/stmt.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/engine.h"
#include "db/internal.h"
#include "db/schema.h"
#include "util/error.h"

static const db_engine_ops *g_ops = &db__sqlite_ops;
static db_engine_kind g_engine = DB_ENGINE_SQLITE;
static char g_url[1024];

int db_engine_select(const char *spec) {
  if (!spec || !*spec) spec = getenv("MODELHUB_DB");
  if (!spec || !*spec || !strcmp(spec, "sqlite")) {
    g_engine = DB_ENGINE_SQLITE;
    g_ops = &db__sqlite_ops;
    g_url[0] = 0;
    return 0;
  }
  if (strncmp(spec, "postgres://", 11) && strncmp(spec, "postgresql://", 13))
    return hub_error_set(HUB_EINVALID, "--db: expected sqlite or a postgres:// URL");
  if (strlen(spec) >= sizeof g_url) return hub_error_set(HUB_EINVALID, "--db: URL too long");
  snprintf(g_url, sizeof g_url, "%s", spec);
  g_engine = DB_ENGINE_POSTGRES;
  g_ops = &db__pg_ops;
  db__pg_set_url(g_url);
  return 0;
}

db_engine_kind db_engine(void) {
  return g_engine;
}

const char *db_engine_url(void) {
  return g_url;
}

/* ---- dispatch ---- */

db_stmt *db_prep(const char *sql) {
  return g_ops->prep(sql);
}

db_stmt *db_prep_text(const char *sql) {
  return g_ops->prep_text(sql);
}

void db_prep_text_done(db_stmt *st) {
  if (st) st->ops->prep_text_done(st);
}

int db_bind_int64(db_stmt *st, int idx, int64_t v) {
  db_value x = {.type = DB_T_INT, .i = v};
  return st->ops->bind(st, idx, &x);
}

int db_bind_double(db_stmt *st, int idx, double v) {
  db_value x = {.type = DB_T_FLOAT, .d = v};
  return st->ops->bind(st, idx, &x);
}

int db_bind_text(db_stmt *st, int idx, const char *s, int len) {
  if (!s) return db_bind_null(st, idx);
  db_value x = {.type = DB_T_TEXT, .p = s, .len = len < 0 ? strlen(s) : (size_t)len};
  return st->ops->bind(st, idx, &x);
}

int db_bind_blob(db_stmt *st, int idx, const void *p, size_t len) {
  db_value x = {.type = DB_T_BLOB, .p = p ? p : "", .len = p ? len : 0};
  return st->ops->bind(st, idx, &x);
}

int db_bind_null(db_stmt *st, int idx) {
  db_value x = {.type = DB_T_NULL};
  return st->ops->bind(st, idx, &x);
}

int db_step(db_stmt *st) {
  return st->ops->step(st);
}

int db_step_done(db_stmt *st) {
  int rc;
  while ((rc = st->ops->step(st)) == DB_ROW)
    ;
  st->ops->reset(st);
  return rc == DB_DONE ? 0 : rc;
}

void db_reset(db_stmt *st) {
  st->ops->reset(st);
}

int db_col_count(db_stmt *st) {
  return st->ops->col_count(st);
}

int db_col_type(db_stmt *st, int col) {
  return st->ops->col_type(st, col);
}

int64_t db_col_int64(db_stmt *st, int col) {
  return st->ops->col_int64(st, col);
}

double db_col_double(db_stmt *st, int col) {
  return st->ops->col_double(st, col);
}

const char *db_col_text(db_stmt *st, int col) {
  return st->ops->col_text(st, col);
}

const void *db_col_blob(db_stmt *st, int col) {
  return st->ops->col_blob(st, col);
}

size_t db_col_bytes(db_stmt *st, int col) {
  return st->ops->col_bytes(st, col);
}

void db_col_copy(char *dst, size_t cap, db_stmt *st, int col) {
  const char *s = st->ops->col_text(st, col);
  snprintf(dst, cap, "%s", s ? s : "");
}

int64_t db_changes(void) {
  return g_ops->changes();
}

int64_t db_last_id(void) {
  return g_ops->last_id();
}

int db_exec(const char *sql) {
  return g_ops->exec(sql);
}

/* ---- transactions ---- */

static _Thread_local int t_durable; /* SQLite: synchronous=FULL until the transaction ends */
static _Thread_local int t_read;    /* the open transaction was begun with DB_TX_READ */

int db__tx_is_read(void) {
  return t_read;
}

/* A BEGIN that failed after opening the transaction (PostgreSQL: the writers' lock not
 * taken, e.g. lock_timeout) leaves nothing open: the caller sees only the error. */
static int begun(int rc, int kind) {
  t_read = !rc && kind == DB_TX_READ;
  if (rc && g_engine == DB_ENGINE_POSTGRES && db_tx_active()) db_tx_rollback();
  return rc;
}

/* Every DB_TX_WRITE on PostgreSQL takes this transaction-scoped advisory lock ("modelhub"),
 * which serializes writers the way SQLite's BEGIN IMMEDIATE does. */
#define PG_WRITER_LOCK "7809911974626813218"

int db_tx_begin(int kind) {
  if (g_engine == DB_ENGINE_POSTGRES) {
    /* Not READ ONLY: like SQLite's deferred BEGIN, a write inside still works (without
     * the writers' lock); a read-only thread's transactions are read-only anyway. */
    if (kind == DB_TX_READ) { /* BEGIN ISOLATION LEVEL REPEATABLE READ, with the first statement */
      db__pg_read_begin();
      return begun(0, kind);
    }
    return begun(db_exec(kind == DB_TX_DURABLE
                             ? "BEGIN; SET LOCAL synchronous_commit TO on;"
                               " SELECT pg_advisory_xact_lock(" PG_WRITER_LOCK ")"
                             : "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITER_LOCK ")"),
                 kind);
  }
  if (kind == DB_TX_READ) return begun(db_exec("BEGIN"), kind);
  if (kind == DB_TX_DURABLE) {
    /* In WAL mode synchronous=FULL fsyncs the WAL at each COMMIT (NORMAL, the
     * connection's default, only at checkpoints). */
    int rc = db_exec("PRAGMA synchronous=FULL");
    if (rc) return rc;
    t_durable = 1;
  }
  int rc = db_exec("BEGIN IMMEDIATE");
  if (rc && t_durable) {
    t_durable = 0;
    db_exec("PRAGMA synchronous=NORMAL");
  }
  return begun(rc, kind);
}

static void end_durable(void) {
  if (!t_durable) return;
  t_durable = 0;
  sqlite3_exec(db_conn(), "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
}

int db_tx_commit(void) {
  int rc = db_exec("COMMIT");
  if (rc && db_tx_active()) db_tx_rollback();
  if (g_engine == DB_ENGINE_SQLITE) end_durable();
  return rc;
}

void db_tx_rollback(void) {
  int saved = hub_error_code();
  char msg[256];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  if (db_tx_active()) db_exec("ROLLBACK");
  if (g_engine == DB_ENGINE_SQLITE) end_durable();
  if (saved) hub_error_set(saved, "%s", msg); /* keep the caller's error */
}

int db_tx_active(void) {
  return g_ops->tx_active();
}

static int savepoint_sql(const char *verb, const char *name) {
  for (const char *p = name; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (p > name && *p >= '0' && *p <= '9')))
      return hub_error_set(HUB_EINVALID, "savepoint name must be an identifier");
  if (!*name || strlen(name) > 63) return hub_error_set(HUB_EINVALID, "bad savepoint name");
  char sql[128];
  snprintf(sql, sizeof sql, "%s %s", verb, name);
  return db_exec(sql);
}

int db_savepoint(const char *name) {
  return savepoint_sql("SAVEPOINT", name);
}

int db_savepoint_release(const char *name) {
  return savepoint_sql("RELEASE SAVEPOINT", name);
}

int db_savepoint_rollback(const char *name) {
  return savepoint_sql("ROLLBACK TO SAVEPOINT", name);
}

/* ---- migrations ---- */

int db_migrate(const char *module, const db_migration *steps, int nsteps) {
  int rc = 0;
  /* The list the schema check reads (schema.c) must match the steps, or an operator's
   * `modelhub migrate --status` and the newer-schema refusal would lie. */
  int known = db_schema_known_version(module); /* -1: a module of a test program */
  if (known >= 0 && known != nsteps)
    return hub_error_set(HUB_ERROR,
                         "schema module %s has %d steps but db/schema.c lists %d: update "
                         "DB_SCHEMA_KNOWN",
                         module, nsteps, known);
  /* Inside the writers' lock: IF NOT EXISTS is no guard against another node starting at
   * the same moment on PostgreSQL (both create, one fails on the catalog's unique index). */
  if ((rc = db_tx_begin(DB_TX_WRITE))) return rc;
  if (g_engine == DB_ENGINE_POSTGRES)
    /* SQLite's COLLATE NOCASE, spelled the same in DDL (PostgreSQL folds it to "nocase"):
     * a case-insensitive ICU collation. */
    rc = db_exec("CREATE COLLATION IF NOT EXISTS nocase (provider = icu,"
                 " locale = 'und-u-ks-level2', deterministic = false)");
  if (!rc)
    rc = db_exec("CREATE TABLE IF NOT EXISTS schema_modules(module TEXT PRIMARY KEY,"
                 " version INTEGER NOT NULL)");
  if (!rc)
    rc = db_tx_commit();
  else
    db_tx_rollback();
  if (rc) return rc;
  for (;;) {
    if ((rc = db_tx_begin(DB_TX_WRITE))) return rc;
    int version = 0;
    db_stmt *st = db_prep("SELECT version FROM schema_modules WHERE module=?");
    if (!st) goto fail;
    db_bind_text(st, 1, module, -1);
    rc = db_step(st);
    if (rc == DB_ROW) version = (int)db_col_int64(st, 0);
    db_reset(st);
    if (rc < 0) goto fail;
    if (version > nsteps) {
      rc = hub_error_set(HUB_EINVALID,
                         "the database schema is newer than this modelhub (module %s at "
                         "version %d, this binary knows %d): upgrade modelhub",
                         module, version, nsteps);
      db_tx_rollback();
      return rc;
    }
    if (version >= nsteps) return db_tx_commit();
    const db_migration *m = &steps[version];
    const char *sql = g_engine == DB_ENGINE_POSTGRES ? m->postgres : m->sqlite;
    if (!sql) sql = m->sql;
    if (sql && *sql && (rc = db_exec(sql))) goto fail;
    st = db_prep("INSERT INTO schema_modules(module, version) VALUES(?, ?)"
                 " ON CONFLICT(module) DO UPDATE SET version=excluded.version");
    if (!st) goto fail;
    db_bind_text(st, 1, module, -1);
    db_bind_int64(st, 2, version + 1);
    if ((rc = db_step_done(st)) || (rc = db_tx_commit())) goto fail;
    continue;
  fail:;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    rc = hub_error_set(rc < 0 ? rc : HUB_ERROR, "migration of %s step %d: %s", module, version + 1,
                       msg);
    db_tx_rollback();
    return rc;
  }
}

/* ---- the SQLite engine ---- */

typedef struct {
  db_stmt base;
  const char *sql; /* db_prep key; NULL for db_prep_text */
  sqlite3_stmt *st;
  int text; /* from db_prep_text */
} lite_stmt;

/* Wrappers of db_prep statements (the sqlite3_stmt itself is conn.c's cached one). */
#define LITE_SLOTS 256
static _Thread_local lite_stmt t_lite[LITE_SLOTS];
static _Thread_local int t_nlite, t_lite_next;

static int lite_err(sqlite3 *db) {
  int code = sqlite3_errcode(db);
  if (code == SQLITE_CONSTRAINT)
    return hub_error_set(HUB_EEXISTS, "already exists (%s)", sqlite3_errmsg(db));
  if (code == SQLITE_FULL) return hub_error_set(HUB_ENOSPC, "%s", sqlite3_errmsg(db));
  return hub_error_set(HUB_ERROR, "sql: %s", sqlite3_errmsg(db));
}

static db_stmt *lite_prep(const char *sql) {
  sqlite3_stmt *st = db__stmt(sql);
  if (!st) return NULL;
  lite_stmt *w = NULL;
  for (int i = 0; i < t_nlite; i++)
    if (t_lite[i].sql == sql) {
      w = &t_lite[i];
      break;
    }
  if (!w) {
    /* Full: a sizing bug (more distinct static statements than slots); reuse the oldest. */
    w = t_nlite < LITE_SLOTS ? &t_lite[t_nlite++] : &t_lite[t_lite_next++ % LITE_SLOTS];
    w->base.ops = &db__sqlite_ops;
    w->sql = sql;
  }
  w->st = st;
  return &w->base;
}

static db_stmt *lite_prep_text(const char *sql) {
  sqlite3_stmt *st = db__stmt_text(sql);
  if (!st) return NULL;
  lite_stmt *w = calloc(1, sizeof *w);
  if (!w) {
    db__stmt_text_done(st);
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  w->base.ops = &db__sqlite_ops;
  w->st = st;
  w->text = 1;
  return &w->base;
}

static void lite_prep_text_done(db_stmt *s) {
  lite_stmt *w = (lite_stmt *)s;
  db__stmt_text_done(w->st);
  if (w->text) free(w);
}

static int lite_bind(db_stmt *s, int idx, const db_value *v) {
  sqlite3_stmt *st = ((lite_stmt *)s)->st;
  int rc;
  switch (v->type) {
  case DB_T_INT:
    rc = sqlite3_bind_int64(st, idx, v->i);
    break;
  case DB_T_FLOAT:
    rc = sqlite3_bind_double(st, idx, v->d);
    break;
  case DB_T_TEXT:
    rc = sqlite3_bind_text64(st, idx, v->p, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
    break;
  case DB_T_BLOB:
    rc = sqlite3_bind_blob64(st, idx, v->p, v->len, SQLITE_TRANSIENT);
    break;
  default:
    rc = sqlite3_bind_null(st, idx);
  }
  return rc == SQLITE_OK ? 0 : lite_err(sqlite3_db_handle(st));
}

static int lite_step(db_stmt *s) {
  sqlite3_stmt *st = ((lite_stmt *)s)->st;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return DB_ROW;
  if (rc == SQLITE_DONE) return DB_DONE;
  return lite_err(sqlite3_db_handle(st));
}

static void lite_reset(db_stmt *s) {
  sqlite3_reset(((lite_stmt *)s)->st);
}

static int lite_col_count(db_stmt *s) {
  return sqlite3_column_count(((lite_stmt *)s)->st);
}

static int lite_col_type(db_stmt *s, int col) {
  switch (sqlite3_column_type(((lite_stmt *)s)->st, col)) {
  case SQLITE_INTEGER:
    return DB_T_INT;
  case SQLITE_FLOAT:
    return DB_T_FLOAT;
  case SQLITE_TEXT:
    return DB_T_TEXT;
  case SQLITE_BLOB:
    return DB_T_BLOB;
  default:
    return DB_T_NULL;
  }
}

static int64_t lite_col_int64(db_stmt *s, int col) {
  return sqlite3_column_int64(((lite_stmt *)s)->st, col);
}

static double lite_col_double(db_stmt *s, int col) {
  return sqlite3_column_double(((lite_stmt *)s)->st, col);
}

static const char *lite_col_text(db_stmt *s, int col) {
  return (const char *)sqlite3_column_text(((lite_stmt *)s)->st, col);
}

static const void *lite_col_blob(db_stmt *s, int col) {
  return sqlite3_column_blob(((lite_stmt *)s)->st, col);
}

static size_t lite_col_bytes(db_stmt *s, int col) {
  return (size_t)sqlite3_column_bytes(((lite_stmt *)s)->st, col);
}

static int64_t lite_changes(void) {
  sqlite3 *db = db_conn();
  return db ? sqlite3_changes64(db) : 0;
}

static int64_t lite_last_id(void) {
  sqlite3 *db = db_conn();
  return db ? sqlite3_last_insert_rowid(db) : 0;
}

static int lite_exec(const char *sql) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK) return 0;
  sqlite3_free(err);
  return lite_err(db);
}

static int lite_tx_active(void) {
  sqlite3 *db = db_conn();
  return db && !sqlite3_get_autocommit(db);
}

const db_engine_ops db__sqlite_ops = {
    lite_prep,     lite_prep_text, lite_prep_text_done, lite_bind,      lite_step,
    lite_reset,    lite_col_count, lite_col_type,       lite_col_int64, lite_col_double,
    lite_col_text, lite_col_blob,  lite_col_bytes,      lite_changes,   lite_last_id,
    lite_exec,     lite_tx_active,
};
