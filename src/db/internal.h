/* Shared by the db module's .c files only. */
#ifndef HUB_DB_INTERNAL_H
#define HUB_DB_INTERNAL_H
#include <sqlite3.h>
#include <stddef.h>

#define DB_STMT_CACHE 96
/* Cached prepared statement for a static SQL string (keyed by pointer), reset and
 * unbound. Borrowed: do not finalize. NULL with an error set on failure. */
sqlite3_stmt *db__stmt(const char *sql);
/* Step a statement that returns no rows we need; maps constraint errors to HUB_EEXISTS. */
int db__step_done(sqlite3_stmt *st);
void db__copy(char *dst, size_t cap, sqlite3_stmt *st, int col);

/* Columns of a repo row, in the order db__read_repo() reads them (prefix "r." variant
 * for joins). */
#define DB_REPO_COLS                                                                           \
  "id, uid, type, ns, name, owner_id, owner_is_org, private, gated, disabled, created_ms, "      \
  "updated_ms, head_sha, last_modified_ms"
#define DB_REPO_COLS_R                                                                         \
  "r.id, r.uid, r.type, r.ns, r.name, r.owner_id, r.owner_is_org, r.private, r.gated,"         \
  " r.disabled, r.created_ms, r.updated_ms, r.head_sha, r.last_modified_ms"
/* Fill *out (a db_repo) from columns 0..13 of the current row. */
void db__read_repo(sqlite3_stmt *st, void *out);
#endif
