/* For whoever implements an engine of the statement layer (stmt.h): the operations a
 * backend provides, and the statement header each backend's statements start with. */
#ifndef HUB_DB_ENGINE_H
#define HUB_DB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "db/stmt.h"

struct db_stmt {
  const struct db_engine_ops *ops;
};

/* A bound value, as the layer hands it to the engine (text/blob borrowed for the call). */
typedef struct {
  int type; /* DB_T_* */
  int64_t i;
  double d;
  const void *p;
  size_t len;
} db_value;

typedef struct db_engine_ops {
  db_stmt *(*prep)(const char *sql);
  db_stmt *(*prep_text)(const char *sql);
  void (*prep_text_done)(db_stmt *st);
  int (*bind)(db_stmt *st, int idx, const db_value *v);
  int (*step)(db_stmt *st);
  void (*reset)(db_stmt *st);
  int (*col_count)(db_stmt *st);
  int (*col_type)(db_stmt *st, int col);
  int64_t (*col_int64)(db_stmt *st, int col);
  double (*col_double)(db_stmt *st, int col);
  const char *(*col_text)(db_stmt *st, int col);
  const void *(*col_blob)(db_stmt *st, int col);
  size_t (*col_bytes)(db_stmt *st, int col);
  int64_t (*changes)(void);
  int64_t (*last_id)(void);
  int (*exec)(const char *sql);
  int (*tx_active)(void);
} db_engine_ops;

extern const db_engine_ops db__sqlite_ops; /* stmt.c */
extern const db_engine_ops db__pg_ops;     /* pg.c */
/* pg.c: the URL to connect to (set by db_engine_select before any statement). */
void db__pg_set_url(const char *url);
/* pg.c: settings of this thread's PostgreSQL session, kept across reconnects and applied
 * before its next statement. db__pg_session_readonly: default_transaction_read_only = on
 * from now on (db_thread_readonly). db__pg_statement_timeout: statement_timeout in ms (0:
 * none; db_budget_set), and it clears db__pg_timed_out, which says whether a statement was
 * canceled by it since. db__pg_lock_timeout: lock_timeout in ms (0: none;
 * db_try_without_waiting). db__pg_sqlstate: the SQLSTATE of this thread's last failed
 * statement ("" after db__pg_clear_sqlstate). */
void db__pg_session_readonly(void);
void db__pg_statement_timeout(long ms);
int db__pg_timed_out(void);
void db__pg_lock_timeout(long ms);
const char *db__pg_sqlstate(void);
void db__pg_clear_sqlstate(void);
/* pg.c: db__pg_read_begin opens this thread's read snapshot lazily (its BEGIN goes out
 * with the first statement; ending one that ran none sends nothing). db__pg_tx_begun: a
 * transaction is open on the server (not just pending). db__pg_outside_snapshot(1):
 * statements run before a pending snapshot's BEGIN, each on its own, until (0). */
void db__pg_read_begin(void);
int db__pg_tx_begun(void);
void db__pg_outside_snapshot(int on);
/* stmt.c: 1 when this thread's open transaction was begun with DB_TX_READ. */
int db__tx_is_read(void);
#endif
