/* The PostgreSQL engine of the statement layer (stmt.h) through libpq: one connection per
 * thread, statements rewritten once (dialect.c) and prepared server-side per connection,
 * reconnection after the server went away (HUB_EUNAVAILABLE until it is back). */
#include <ctype.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "db/engine.h"
#include "db/internal.h"
#include "util/error.h"
#include "util/time.h"

/* PostgreSQL type oids (catalog/pg_type.h, stable across versions). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700
#define PG_MAX_PARAMS 256

typedef struct {
  db_stmt base;
  const char *key; /* db_prep: the caller's pointer */
  char *text_key;  /* db_prep_text: owned copy of the caller's text */
  char *sql;       /* rewritten */
  int nparams;
  char name[24];
  unsigned gen; /* connection generation it is prepared on (0: not prepared) */
  Oid *prep_types;
  /* bindings */
  char **vals;
  int *lens, *fmts;
  Oid *types;
  /* the result being read */
  PGresult *res;
  int row, nrows;
  unsigned char **blobs; /* unescaped bytea columns of the current row */
  size_t *blob_lens;
  int nblobs;
  int busy;
  unsigned long used;
} pg_stmt;

#define PG_CACHE DB_STMT_CACHE
typedef struct {
  PGconn *conn;
  unsigned gen;
  unsigned long names, clock;
  int64_t changes;
  int tx_open; /* the connection was inside a transaction after the last command */
  /* A read snapshot (DB_TX_READ) whose BEGIN is not sent yet: it goes out just before the
   * snapshot's first statement, and a snapshot that runs none costs no round trip at all
   * (REPEATABLE READ takes its snapshot at the first statement anyway, so nothing changes
   * for what the statements see). `outside`: statements run now (db__pg_outside_snapshot)
   * go before it, in their own implicit transaction. */
  int read_pending, outside;
  int64_t used_ms; /* when the connection last answered (monotonic) */
  /* Writes, for db_write_fence: the open transaction changed something; when this
   * thread's last change was committed (monotonic µs, 0: never). */
  int tx_wrote;
  int64_t wrote_us;
  int lost_tx; /* a connection was lost inside a transaction its owner has not ended */
  pg_stmt *cache[PG_CACHE];
  int n;
  pg_stmt *text[DB_TEXT_CACHE];
  /* session settings (db__pg_session_readonly …): wanted, and what the connection has
   * (-1: unknown, e.g. a new connection or after a rollback that may have undone a SET) */
  int want_ro, have_ro;
  long want_stmt_ms, have_stmt_ms, want_lock_ms, have_lock_ms;
  int timed_out; /* a statement was canceled by statement_timeout */
  char state[6]; /* SQLSTATE of the last failed statement */
} pg_thread;

static char g_url[1024];
static _Atomic int64_t g_wrote_us; /* the process's last committed change (exit fence) */
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

void db__pg_set_url(const char *url) {
  snprintf(g_url, sizeof g_url, "%s", url);
}

static void clear_row(pg_stmt *st) {
  for (int i = 0; i < st->nblobs; i++)
    PQfreemem(st->blobs[i]);
  free(st->blobs);
  free(st->blob_lens);
  st->blobs = NULL;
  st->blob_lens = NULL;
  st->nblobs = 0;
}

static void clear_result(pg_stmt *st) {
  clear_row(st);
  PQclear(st->res);
  st->res = NULL;
  st->row = -1;
  st->nrows = 0;
}

static void clear_bindings(pg_stmt *st) {
  for (int i = 0; i < st->nparams; i++) {
    free(st->vals[i]);
    st->vals[i] = NULL;
    st->lens[i] = st->fmts[i] = 0;
    st->types[i] = 0;
  }
}

static void stmt_free(pg_stmt *st) {
  if (!st) return;
  clear_result(st);
  clear_bindings(st);
  free(st->vals);
  free(st->lens);
  free(st->fmts);
  free(st->types);
  free(st->prep_types);
  free(st->sql);
  free(st->text_key);
  free(st);
}

static void thread_free(void *p) {
  pg_thread *t = p;
  if (!t) return;
  for (int i = 0; i < t->n; i++)
    stmt_free(t->cache[i]);
  for (int i = 0; i < DB_TEXT_CACHE; i++)
    stmt_free(t->text[i]);
  if (t->conn) PQfinish(t->conn);
  free(t);
}

static void make_key(void) {
  pthread_key_create(&g_key, thread_free);
}

static pg_thread *thread_state(void) {
  pthread_once(&g_once, make_key);
  pg_thread *t = pthread_getspecific(g_key);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t) {
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  t->gen = 1;
  t->have_ro = -1;
  t->have_stmt_ms = t->have_lock_ms = -1;
  pthread_setspecific(g_key, t);
  return t;
}

/* Forget a connection that failed: every statement is prepared again on the next one. */
static void drop_conn(pg_thread *t) {
  if (t->tx_open) t->lost_tx = 1; /* until the owner's COMMIT (an error) or ROLLBACK */
  t->tx_open = 0;
  if (t->conn) PQfinish(t->conn);
  t->conn = NULL;
  t->gen++;
  t->have_ro = -1;
  t->have_stmt_ms = t->have_lock_ms = -1;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A command tag of a statement that changes data or schema. */
static int writes(const char *tag) {
  static const char *const W[] = {"INSERT", "UPDATE", "DELETE", "MERGE",    "COPY",
                                  "CREATE", "ALTER",  "DROP",   "TRUNCATE", NULL};
  for (int i = 0; W[i]; i++)
    if (!strncmp(tag, W[i], strlen(W[i]))) return 1;
  return 0;
}

static void exit_fence(void);
static pthread_once_t g_exit_once = PTHREAD_ONCE_INIT;
static void register_exit_fence(void) {
  atexit(exit_fence);
}

/* After a successful command with tag `tag` (sql: its text, for COMMIT): a change that is
 * committed now (outside a transaction, or the COMMIT of one that changed something) is
 * recorded for the fences. */
static void note_write(pg_thread *t, PGconn *c, const char *tag, const char *sql) {
  int in_tx = PQtransactionStatus(c) != PQTRANS_IDLE;
  if (in_tx) {
    if (writes(tag)) t->tx_wrote = 1;
    return;
  }
  int committed = t->tx_wrote && sql && !strncasecmp(tag, "COMMIT", 6);
  t->tx_wrote = 0;
  if (committed || writes(tag)) {
    t->wrote_us = hub_mono_us();
    g_wrote_us = t->wrote_us;
    pthread_once(&g_exit_once, register_exit_fence);
  }
}

/* A connection that answered this recently is not checked again: two reads per statement
 * are a noticeable share of a short query's cost, and a server restart takes longer than
 * this (a session ended in between still fails cleanly, and the next statement
 * reconnects). */
#define PG_ALIVE_CHECK_MS 100

/* The connection is still usable: the server may have ended the session while it was idle
 * (a restart: it sends a FATAL message and closes), which libpq notices only when it reads.
 * Reading what is pending (without blocking) finds that out before a statement is sent, so
 * the statement runs on a new connection instead of failing. */
static int alive(PGconn *c) {
  for (int i = 0; i < 2 && PQstatus(c) == CONNECTION_OK; i++)
    if (!PQconsumeInput(c)) return 0;
  return PQstatus(c) == CONNECTION_OK;
}

/* After a command: whether the connection is inside a transaction now. */
static void note_tx(pg_thread *t) {
  if (t->conn && PQstatus(t->conn) == CONNECTION_OK) {
    t->tx_open = PQtransactionStatus(t->conn) != PQTRANS_IDLE;
    t->used_ms = mono_ms();
  }
}

static PGconn *thread_conn(pg_thread *t) {
  if (t->conn && PQstatus(t->conn) == CONNECTION_OK && mono_ms() - t->used_ms < PG_ALIVE_CHECK_MS)
    return t->conn;
  if (t->conn && alive(t->conn)) return t->conn;
  drop_conn(t);
  if (t->lost_tx) {
    hub_error_set(HUB_EUNAVAILABLE, "database unavailable: connection lost in a transaction");
    return NULL;
  }
  const char *keys[] = {"connect_timeout", "dbname", NULL};
  const char *vals[] = {"5", g_url, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
      msg[--n] = 0;
    if (c) PQfinish(c);
    hub_error_set(HUB_EUNAVAILABLE, "database unavailable: %s", msg);
    return NULL;
  }
  /* Notices (e.g. "relation already exists, skipping") are not errors; keep stderr quiet. */
  PQclear(PQexec(c, "SET client_min_messages TO warning"));
  t->conn = c;
  return c;
}

/* The thread's session settings onto connection c, when they differ from what it has. A
 * failure leaves them unknown, to try again before the next statement. */
static void apply_session(pg_thread *t, PGconn *c) {
  if (t->have_ro == t->want_ro && t->have_stmt_ms == t->want_stmt_ms &&
      t->have_lock_ms == t->want_lock_ms)
    return;
  if (PQtransactionStatus(c) == PQTRANS_INERROR) return; /* the next statement fails anyway */
  char sql[160];
  snprintf(sql, sizeof sql,
           "SET default_transaction_read_only = %s; SET statement_timeout = %ld;"
           " SET lock_timeout = %ld",
           t->want_ro ? "on" : "off", t->want_stmt_ms, t->want_lock_ms);
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  t->have_ro = ok ? t->want_ro : -1;
  t->have_stmt_ms = ok ? t->want_stmt_ms : -1;
  t->have_lock_ms = ok ? t->want_lock_ms : -1;
}

/* The error of a failed result as a HUB_E* code with the message set. */
static int pg_err(pg_thread *t, const PGresult *res) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  snprintf(t->state, sizeof t->state, "%s", state ? state : "");
  if (state && !strcmp(state, "57014")) t->timed_out = 1; /* statement_timeout */
  char msg[512];
  snprintf(msg, sizeof msg, "%s",
           res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
           : t->conn                         ? PQerrorMessage(t->conn)
                                             : "no connection");
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
    msg[--n] = 0;
  if (!t->conn || PQstatus(t->conn) != CONNECTION_OK || (state && !strncmp(state, "08", 2)) ||
      (state && !strncmp(state, "57P", 3))) {
    drop_conn(t);
    return hub_error_set(HUB_EUNAVAILABLE, "database unavailable: %s", msg);
  }
  if (state && !strncmp(state, "23", 2))
    return hub_error_set(HUB_EEXISTS, "already exists (%s)", msg);
  if (state && !strcmp(state, "53100")) return hub_error_set(HUB_ENOSPC, "%s", msg);
  return hub_error_set(HUB_ERROR, "sql: %s", msg);
}

static pg_stmt *stmt_new(pg_thread *t, const char *sql) {
  pg_stmt *st = calloc(1, sizeof *st);
  if (!st) goto oom;
  st->base.ops = &db__pg_ops;
  st->row = -1;
  st->sql = db__pg_rewrite(sql, &st->nparams);
  if (!st->sql) goto oom;
  if (st->nparams > PG_MAX_PARAMS) {
    stmt_free(st);
    hub_error_set(HUB_ERROR, "sql: more than %d parameters", PG_MAX_PARAMS);
    return NULL;
  }
  int n = st->nparams ? st->nparams : 1;
  st->vals = calloc((size_t)n, sizeof *st->vals);
  st->lens = calloc((size_t)n, sizeof *st->lens);
  st->fmts = calloc((size_t)n, sizeof *st->fmts);
  st->types = calloc((size_t)n, sizeof *st->types);
  st->prep_types = calloc((size_t)n, sizeof *st->prep_types);
  if (!st->vals || !st->lens || !st->fmts || !st->types || !st->prep_types) goto oom;
  snprintf(st->name, sizeof st->name, "mh%lu", ++t->names);
  return st;
oom:
  stmt_free(st);
  hub_error_set(HUB_ERROR, "out of memory");
  return NULL;
}

static void deallocate(pg_thread *t, pg_stmt *st) {
  if (st->gen != t->gen || !t->conn || PQtransactionStatus(t->conn) == PQTRANS_INERROR) return;
  char sql[48];
  snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
  PQclear(PQexec(t->conn, sql));
}

static db_stmt *pg_prep(const char *sql) {
  pg_thread *t = thread_state();
  if (!t) return NULL;
  for (int i = 0; i < t->n; i++)
    if (t->cache[i]->key == sql) {
      pg_stmt *st = t->cache[i];
      clear_result(st);
      clear_bindings(st);
      return &st->base;
    }
  pg_stmt *st = stmt_new(t, sql);
  if (!st) return NULL;
  st->key = sql;
  if (t->n == PG_CACHE) { /* a sizing bug: evict the oldest rather than leak */
    deallocate(t, t->cache[0]);
    stmt_free(t->cache[0]);
    memmove(t->cache, t->cache + 1, sizeof t->cache[0] * (PG_CACHE - 1));
    t->n--;
  }
  t->cache[t->n++] = st;
  return &st->base;
}

static db_stmt *pg_prep_text(const char *sql) {
  pg_thread *t = thread_state();
  if (!t) return NULL;
  int victim = -1;
  for (int i = 0; i < DB_TEXT_CACHE; i++) {
    pg_stmt *c = t->text[i];
    if (c && !c->busy && !strcmp(c->text_key, sql)) {
      c->busy = 1;
      c->used = ++t->clock;
      clear_result(c);
      clear_bindings(c);
      return &c->base;
    }
    if (!c || (!c->busy && (victim < 0 || (t->text[victim] && c->used < t->text[victim]->used))))
      victim = i;
  }
  pg_stmt *st = stmt_new(t, sql);
  if (!st) return NULL;
  st->text_key = strdup(sql);
  if (!st->text_key) {
    stmt_free(st);
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  st->busy = 1;
  st->used = ++t->clock;
  if (victim >= 0) {
    if (t->text[victim]) {
      deallocate(t, t->text[victim]);
      stmt_free(t->text[victim]);
    }
    t->text[victim] = st;
  } /* else every slot is busy: not cached, freed by db_prep_text_done */
  return &st->base;
}

static void pg_prep_text_done(db_stmt *s) {
  pg_stmt *st = (pg_stmt *)s;
  pg_thread *t = thread_state();
  for (int i = 0; t && i < DB_TEXT_CACHE; i++)
    if (t->text[i] == st) {
      clear_result(st);
      clear_bindings(st);
      st->busy = 0;
      return;
    }
  if (t) deallocate(t, st);
  stmt_free(st);
}

static int pg_bind(db_stmt *s, int idx, const db_value *v) {
  pg_stmt *st = (pg_stmt *)s;
  if (idx < 1 || idx > st->nparams)
    return hub_error_set(HUB_ERROR, "sql: bind index %d out of range", idx);
  int i = idx - 1;
  clear_result(st);
  free(st->vals[i]);
  st->vals[i] = NULL;
  st->lens[i] = st->fmts[i] = 0;
  st->types[i] = 0;
  char num[32];
  const char *src = NULL;
  size_t len = 0;
  switch (v->type) {
  case DB_T_INT:
    len = (size_t)snprintf(num, sizeof num, "%lld", (long long)v->i);
    src = num;
    st->types[i] = OID_INT8;
    break;
  case DB_T_FLOAT:
    len = (size_t)snprintf(num, sizeof num, "%.17g", v->d);
    src = num;
    st->types[i] = OID_FLOAT8;
    break;
  case DB_T_TEXT: /* unknown type: the server takes the column's, like SQLite's affinity */
    src = v->p;
    len = v->len;
    if (memchr(src, 0, len)) return hub_error_set(HUB_EINVALID, "text contains a NUL byte");
    break;
  case DB_T_BLOB:
    src = v->p;
    len = v->len;
    st->types[i] = OID_BYTEA;
    st->fmts[i] = 1;
    break;
  default:
    return 0; /* NULL */
  }
  if (len > 0x7fffffff) return hub_error_set(HUB_ETOOBIG, "value too large");
  st->vals[i] = malloc(len + 1);
  if (!st->vals[i]) return hub_error_set(HUB_ERROR, "out of memory");
  memcpy(st->vals[i], src, len);
  st->vals[i][len] = 0;
  st->lens[i] = (int)len;
  return 0;
}

/* The server ended this session before our statement ran (a restart, pg_terminate_backend):
 * on an idle connection the statement can run again on a new one, nothing was lost. */
static int session_ended(PGconn *c, const PGresult *r, int was_idle) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  return was_idle && PQstatus(c) != CONNECTION_OK && state &&
         (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03"));
}

static int run_on(pg_thread *t, PGconn *c, pg_stmt *st, int retried);
static int pg_exec(const char *sql);

/* The pending read snapshot's BEGIN, before a statement that belongs to it. */
static int begin_pending(pg_thread *t) {
  if (!t->read_pending || t->outside) return 0;
  t->read_pending = 0;
  return pg_exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
}

static int run(pg_thread *t, pg_stmt *st, int retried) {
  int rc0 = begin_pending(t);
  if (rc0) return rc0;
  PGconn *c = thread_conn(t);
  if (!c) return HUB_EUNAVAILABLE;
  apply_session(t, c);
  int rc = run_on(t, c, st, retried);
  note_tx(t);
  return rc;
}

static int run_on(pg_thread *t, PGconn *c, pg_stmt *st, int retried) {
  int idle = !retried && PQtransactionStatus(c) == PQTRANS_IDLE;
  if (st->gen != t->gen) {
    PGresult *r = PQprepare(c, st->name, st->sql, st->nparams, st->types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      if (session_ended(c, r, idle)) {
        PQclear(r);
        drop_conn(t);
        return run(t, st, 1);
      }
      int rc = pg_err(t, r);
      PQclear(r);
      return rc;
    }
    PQclear(r);
    st->gen = t->gen;
    if (st->nparams) memcpy(st->prep_types, st->types, sizeof(Oid) * (size_t)st->nparams);
  }
  /* A value of another type than the statement was prepared with (text-format values
   * suit any prepared type; an int8 or bytea parameter does not take other values): run
   * this once unprepared, with its own types. */
  int same = 1;
  for (int i = 0; i < st->nparams; i++)
    if (st->types[i] && st->prep_types[i] && st->types[i] != st->prep_types[i])
      same = 0;
    else if (st->fmts[i] && st->prep_types[i] != OID_BYTEA)
      same = 0;
  const char *const *vals = (const char *const *)st->vals;
  PGresult *r = same
                    ? PQexecPrepared(c, st->name, st->nparams, vals, st->lens, st->fmts, 0)
                    : PQexecParams(c, st->sql, st->nparams, st->types, vals, st->lens, st->fmts, 0);
  ExecStatusType es = PQresultStatus(r);
  if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
    if (session_ended(c, r, idle)) {
      PQclear(r);
      drop_conn(t);
      return run(t, st, 1);
    }
    int rc = pg_err(t, r);
    PQclear(r);
    return rc;
  }
  const char *ct = PQcmdTuples(r);
  if (ct && *ct) t->changes = strtoll(ct, NULL, 10);
  note_write(t, c, PQcmdStatus(r), NULL);
  st->res = r;
  st->nrows = es == PGRES_TUPLES_OK ? PQntuples(r) : 0;
  st->row = -1;
  return 0;
}

static int pg_step(db_stmt *s) {
  pg_stmt *st = (pg_stmt *)s;
  pg_thread *t = thread_state();
  if (!t) return HUB_ERROR;
  if (!st->res) {
    int rc = run(t, st, 0);
    if (rc) return rc;
  }
  clear_row(st);
  if (st->row < st->nrows) st->row++;
  return st->row < st->nrows ? DB_ROW : DB_DONE;
}

static void pg_reset(db_stmt *s) {
  clear_result((pg_stmt *)s);
}

static int pg_col_count(db_stmt *s) {
  pg_stmt *st = (pg_stmt *)s;
  return st->res ? PQnfields(st->res) : 0;
}

/* The current row has column col (not NULL). */
static int has(pg_stmt *st, int col) {
  return st->res && st->row >= 0 && st->row < st->nrows && col >= 0 && col < PQnfields(st->res) &&
         !PQgetisnull(st->res, st->row, col);
}

static int pg_col_type(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return DB_T_NULL;
  switch (PQftype(st->res, col)) {
  case OID_BOOL:
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
    return DB_T_INT;
  case OID_NUMERIC:
    return strpbrk(PQgetvalue(st->res, st->row, col), ".eE") ? DB_T_FLOAT : DB_T_INT;
  case OID_FLOAT4:
  case OID_FLOAT8:
    return DB_T_FLOAT;
  case OID_BYTEA:
    return DB_T_BLOB;
  default:
    return DB_T_TEXT;
  }
}

static int64_t pg_col_int64(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return 0;
  const char *v = PQgetvalue(st->res, st->row, col);
  if (PQftype(st->res, col) == OID_BOOL) return *v == 't';
  if (strpbrk(v, ".eE")) return (int64_t)strtod(v, NULL);
  return strtoll(v, NULL, 10);
}

static double pg_col_double(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return 0;
  const char *v = PQgetvalue(st->res, st->row, col);
  if (PQftype(st->res, col) == OID_BOOL) return *v == 't';
  return strtod(v, NULL);
}

/* A bytea column of the current row, unescaped once per row. */
static const unsigned char *bytea(pg_stmt *st, int col, size_t *len) {
  if (!st->blobs) {
    int n = PQnfields(st->res);
    st->blobs = calloc((size_t)n, sizeof *st->blobs);
    st->blob_lens = calloc((size_t)n, sizeof *st->blob_lens);
    if (!st->blobs || !st->blob_lens) {
      clear_row(st);
      return NULL;
    }
    st->nblobs = n;
  }
  if (!st->blobs[col]) {
    st->blobs[col] = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, col),
                                     &st->blob_lens[col]);
    if (!st->blobs[col]) return NULL;
  }
  *len = st->blob_lens[col];
  return st->blobs[col];
}

static const char *pg_col_text(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return NULL;
  /* A bytea column reads as its escaped form (\x...): read blobs with db_col_blob. */
  return PQgetvalue(st->res, st->row, col);
}

static const void *pg_col_blob(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return NULL;
  size_t len;
  if (PQftype(st->res, col) == OID_BYTEA) return bytea(st, col, &len);
  return PQgetvalue(st->res, st->row, col);
}

static size_t pg_col_bytes(db_stmt *s, int col) {
  pg_stmt *st = (pg_stmt *)s;
  if (!has(st, col)) return 0;
  size_t len = 0;
  if (PQftype(st->res, col) == OID_BYTEA) return bytea(st, col, &len) ? len : 0;
  return (size_t)PQgetlength(st->res, st->row, col);
}

static int64_t pg_changes(void) {
  pg_thread *t = thread_state();
  return t ? t->changes : 0;
}

static int64_t pg_last_id(void) {
  pg_thread *t = thread_state();
  PGconn *c = t ? thread_conn(t) : NULL;
  if (!c) return 0;
  PGresult *r = PQexec(c, "SELECT lastval()");
  int64_t id = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                   ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                   : 0;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) pg_err(t, r);
  PQclear(r);
  return id;
}

/* sql starts with keyword kw (not followed by more of an identifier). */
static int starts(const char *sql, const char *kw) {
  while (*sql == ' ' || *sql == '\n' || *sql == '\t')
    sql++;
  size_t n = strlen(kw);
  return !strncasecmp(sql, kw, n) && !(isalnum((unsigned char)sql[n]) || sql[n] == '_');
}

static int pg_exec(const char *sql) {
  pg_thread *t = thread_state();
  if (!t) return HUB_ERROR;
  if (t->read_pending && !t->outside) {
    /* A snapshot that never ran a statement ends without a round trip. */
    if ((starts(sql, "ROLLBACK") && !strstr(sql, " TO ")) || starts(sql, "COMMIT") ||
        starts(sql, "END")) {
      t->read_pending = 0;
      return 0;
    }
    int rc = begin_pending(t);
    if (rc) return rc;
  }
  if (t->lost_tx && !t->conn) {
    /* The owner of a transaction lost with its connection ends it: COMMIT cannot succeed,
     * ROLLBACK has nothing left to do; nothing else runs until then (it would run outside
     * the transaction its owner believes open). */
    int ends = starts(sql, "ROLLBACK") && !strstr(sql, " TO ");
    if (ends || starts(sql, "COMMIT") || starts(sql, "END")) {
      t->lost_tx = 0;
      return ends ? 0
                  : hub_error_set(HUB_EUNAVAILABLE,
                                  "database unavailable: connection lost in a transaction");
    }
    if (!starts(sql, "BEGIN"))
      return hub_error_set(HUB_EUNAVAILABLE,
                           "database unavailable: connection lost in a transaction");
    t->lost_tx = 0;
  }
  PGconn *c = thread_conn(t);
  if (!c) return HUB_EUNAVAILABLE;
  apply_session(t, c);
  char *q = db__pg_rewrite(sql, NULL);
  if (!q) return hub_error_set(HUB_ERROR, "out of memory");
  int idle = PQtransactionStatus(c) == PQTRANS_IDLE;
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) == PGRES_FATAL_ERROR && session_ended(c, r, idle)) {
    PQclear(r);
    drop_conn(t);
    c = thread_conn(t);
    r = c ? PQexec(c, q) : NULL;
  }
  free(q);
  if (!c) return HUB_EUNAVAILABLE;
  ExecStatusType es = PQresultStatus(r);
  int rc = 0;
  if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK && es != PGRES_EMPTY_QUERY)
    rc = pg_err(t, r);
  else if (!strcmp(PQcmdStatus(r), "ROLLBACK") && !starts(sql, "ROLLBACK"))
    /* COMMIT of a transaction a failed statement aborted rolls back instead */
    rc = hub_error_set(HUB_ERROR, "transaction aborted by an earlier error; rolled back");
  if (!rc)
    note_write(t, c, PQcmdStatus(r), sql);
  else if (PQtransactionStatus(c) == PQTRANS_IDLE)
    t->tx_wrote = 0;
  PQclear(r);
  /* A rollback (of a transaction or to a savepoint) undoes the SETs made inside it. */
  if (starts(sql, "ROLLBACK") || rc) t->have_ro = -1, t->have_stmt_ms = t->have_lock_ms = -1;
  note_tx(t);
  return rc;
}

static int pg_tx_active(void) {
  pg_thread *t = thread_state();
  if (t && (t->lost_tx || t->read_pending)) return 1; /* still the owner's until it ends it */
  if (!t || !t->conn) return 0;
  PGTransactionStatusType s = PQtransactionStatus(t->conn);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

const db_engine_ops db__pg_ops = {
    pg_prep,      pg_prep_text, pg_prep_text_done, pg_bind,       pg_step,      pg_reset,
    pg_col_count, pg_col_type,  pg_col_int64,      pg_col_double, pg_col_text,  pg_col_blob,
    pg_col_bytes, pg_changes,   pg_last_id,        pg_exec,       pg_tx_active,
};

void db_stmt_thread_end(void) {
  pthread_once(&g_once, make_key);
  thread_free(pthread_getspecific(g_key));
  pthread_setspecific(g_key, NULL);
}

void db__pg_read_begin(void) {
  pg_thread *t = thread_state();
  if (t) t->read_pending = 1;
}

int db__pg_tx_begun(void) {
  pg_thread *t = thread_state();
  if (!t) return 0;
  if (t->lost_tx) return 1;
  if (!t->conn) return 0;
  return PQtransactionStatus(t->conn) != PQTRANS_IDLE;
}

void db__pg_outside_snapshot(int on) {
  pg_thread *t = thread_state();
  if (t) t->outside = on;
}

/* ---- write fences (db.h) ---- */

static _Atomic int g_fence_ms = -1;

void db_repo_cache_set_ms(int ms) {
  g_fence_ms = ms < 0 ? 0 : ms > 1000 ? 1000 : ms;
}

int db_write_fence_ms(void) {
  if (g_fence_ms < 0) {
    const char *e = getenv("MODELHUB_REPO_CACHE_MS");
    int v = e && *e ? atoi(e) : DB_REPO_CACHE_MS_DEFAULT;
    g_fence_ms = v < 0 ? 0 : v > 1000 ? 1000 : v;
  }
  return db_engine() == DB_ENGINE_POSTGRES ? g_fence_ms : 0;
}

static void sleep_until(int64_t until_us) {
  for (int64_t now = hub_mono_us(); now < until_us; now = hub_mono_us()) {
    struct timespec ts = {(until_us - now) / 1000000, ((until_us - now) % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

void db_write_fence(void) {
  int ms = db_write_fence_ms();
  pg_thread *t = ms ? thread_state() : NULL;
  if (t && t->wrote_us) sleep_until(t->wrote_us + (int64_t)ms * 1000);
}

void db_visibility_wait(void) {
  int ms = db_write_fence_ms();
  if (ms) sleep_until(hub_mono_us() + (int64_t)ms * 1000);
}

static void exit_fence(void) {
  int ms = db_write_fence_ms();
  int64_t w = g_wrote_us;
  if (ms && w) sleep_until(w + (int64_t)ms * 1000);
}

void db__pg_session_readonly(void) {
  pg_thread *t = thread_state();
  if (t) t->want_ro = 1;
}

void db__pg_statement_timeout(long ms) {
  pg_thread *t = thread_state();
  if (!t) return;
  t->want_stmt_ms = ms > 0 ? ms : 0;
  t->timed_out = 0;
}

int db__pg_timed_out(void) {
  pg_thread *t = thread_state();
  return t && t->timed_out;
}

void db__pg_lock_timeout(long ms) {
  pg_thread *t = thread_state();
  if (t) t->want_lock_ms = ms > 0 ? ms : 0;
}

const char *db__pg_sqlstate(void) {
  pg_thread *t = thread_state();
  return t ? t->state : "";
}

void db__pg_clear_sqlstate(void) {
  pg_thread *t = thread_state();
  if (t) t->state[0] = 0;
}
