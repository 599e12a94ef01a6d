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
#endif
