/* Shared by the db module's .c files only. */
#ifndef HUB_DB_INTERNAL_H
#define HUB_DB_INTERNAL_H
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* This thread's SQLite connection (opened on first use, closed at thread exit); NULL with
 * an error set on PostgreSQL. The SQLite engine's (stmt.c) and unconverted code's. */
sqlite3 *db_conn(void);

#define DB_STMT_CACHE 512 /* > the number of db_prep call sites (208 today): never evicts */
/* Run-time SQL texts kept compiled per thread (LRU). */
#define DB_TEXT_CACHE 32
/* Cached prepared statement for a static SQL string (keyed by pointer), reset and
 * unbound. Borrowed: do not finalize. NULL with an error set on failure. */
sqlite3_stmt *db__stmt(const char *sql);
/* Prepared statement for SQL text built at run time (listings): cached per thread by its
 * text, so a query shape is compiled once; values must be bound, not spliced in. Release
 * with db__stmt_text_done (never finalize). NULL with an error set on failure. */
sqlite3_stmt *db__stmt_text(const char *sql);
void db__stmt_text_done(sqlite3_stmt *st);
/* Step a statement that returns no rows we need; maps constraint errors to HUB_EEXISTS. */
int db__step_done(sqlite3_stmt *st);
void db__copy(char *dst, size_t cap, sqlite3_stmt *st, int col);

/* Columns of a repo row, in the order db__read_repo_row() reads them (prefix "r." variant
 * for joins). */
#define DB_REPO_COLS                                                                               \
  "id, uid, type, ns, name, owner_id, owner_is_org, private, gated, disabled, created_ms, "        \
  "updated_ms, head_sha, last_modified_ms"
#define DB_REPO_COLS_R                                                                             \
  "r.id, r.uid, r.type, r.ns, r.name, r.owner_id, r.owner_is_org, r.private, r.gated,"             \
  " r.disabled, r.created_ms, r.updated_ms, r.head_sha, r.last_modified_ms"
/* Fill *out (a db_repo) from columns 0..13 of the current row (db/stmt.h). */
struct db_stmt;
void db__read_repo_row(struct db_stmt *st, void *out);
/* search.c: the repo row by name into *out (a db_repo) and its stats for the viewer into
 * *stats (a db_repo_stats), in one statement (db_repo_get_shared's query). */
int db__repo_get_with_stats(int type, const char *ns, const char *name, int64_t viewer, int admin,
                            void *out, void *stats);

/* ---- listings (search.c) and their in-memory id index (accel.c) ---- */
#include "db/search.h"

/* Candidate ids for a listing, as JSON arrays: `known_json` match the search term already
 * (the in-memory snapshot vouches for them), `check_json` must be tested like any row. */
typedef struct {
  const char *known_json, *check_json;
} db__cands;
/* One row of a listing's order: relevance tier, integer sort key, repo id. */
typedef struct {
  int64_t id, skey;
  int tier;
} db__key;
/* Keys of the first limit + 1 rows of q among candidates c (NULL: SQL's own sources),
 * in order; out holds limit + 1. */
int db__search_keys(const db_search_query *q, int sort, int dir, const db__cands *c, db__key *out,
                    size_t *n);
/* The listing itself (rows to cb), from candidates c or (NULL) SQL's own sources. */
int db__search_rows(const db_search_query *q, int sort, int dir, const db__cands *c,
                    db_search_cb cb, void *payload, db_search_cursor *out_next, int *out_more);
/* FTS5 phrase text for a term (malloc'd; NULL when out of memory). */
char *db__fts_phrase(const char *term);

/* Answer q from the in-memory id index when it can (accel.c). *handled says whether it
 * did (the result is then rc); otherwise the caller runs the SQL plan. */
#define DB_ACCEL_DECLINED 1
int db__accel_search(const db_search_query *q, int sort, int dir, db_search_cb cb, void *payload,
                     db_search_cursor *out_next, int *out_more, int *handled);
#endif
