/* Schema versions for operations (schema.h): what this binary knows, what the database
 * has, and the record of the binary that last migrated it. */
#include "db/schema.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Every schema module of this binary and its number of steps (the version it migrates a
 * database to). "core" is conn.c's MIGRATIONS (PRAGMA user_version on SQLite until the
 * core schema becomes a db_migrate module of that name). A new module, or a new step of
 * one, is added here too: tests/e2e/ops.test.mjs fails while a fresh database ends at
 * other versions than these, and db_migrate refuses a module whose step count differs
 * from its entry here. Modules with steps for one engine only (search-pg) have empty steps
 * on the other, so they are at the same version on both. */
static const struct {
  const char *module;
  int version;
} DB_SCHEMA_KNOWN[] = {
    {"core", 8},
    {"jobs", 1},
    {"auth", 1},
    {"gate", 1},
    {"audit", 1},
    {"events", 2},
    {"gov", 1},
    {"discussions", 1},
    {"xetsrv", 1},
    {"xetsrv-acl", 1},
    {"xetsrv-repo-delete", 1},
    {"scan", 2},
    {"webhooks", 1},
    {"mirror", 1},
    {"collections", 1},
    {"web", 1},
    {"ops", 1},
    {"nodes", 2},
    {"search-pg", 2},
};
#define NKNOWN (sizeof DB_SCHEMA_KNOWN / sizeof DB_SCHEMA_KNOWN[0])

/* Module "ops": which binary last migrated the database. */
static const db_migration OPS_STEPS[] = {
    {"CREATE TABLE schema_binary(k INTEGER PRIMARY KEY CHECK(k=1),"
     " binary_version TEXT NOT NULL, modules TEXT NOT NULL, migrated_ms INTEGER NOT NULL);",
     NULL, NULL},
};

static db_schema_entry *entry(db_schema_state *s, const char *module) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->v[i].module, module)) return &s->v[i];
  db_schema_entry *v = realloc(s->v, (s->n + 1) * sizeof *v);
  if (!v) return NULL;
  s->v = v;
  db_schema_entry *e = &v[s->n++];
  memset(e, 0, sizeof *e);
  snprintf(e->module, sizeof e->module, "%s", module);
  e->known = -1;
  return e;
}

static int put(db_schema_state *s, const char *module, int version) {
  db_schema_entry *e = entry(s, module);
  if (!e) return hub_error_set(HUB_ERROR, "out of memory");
  if (version > e->have) e->have = version;
  if (version > 0) s->exists = 1;
  return 0;
}

static int read_sqlite(const char *data_dir, db_schema_state *s) {
  char path[4200];
  snprintf(path, sizeof path, "%s/modelhub.db", data_dir);
  if (access(path, F_OK)) return 0; /* no database yet */
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    rc = hub_error_set(HUB_ERROR, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "oom");
    goto done;
  }
  sqlite3_busy_timeout(db, 10000);
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && (rc = put(s, "core", sqlite3_column_int(st, 0))))
    goto done;
  sqlite3_finalize(st);
  st = NULL;
  /* Tables that may not exist yet: a failed prepare is an empty answer. */
  if (sqlite3_prepare_v2(db, "SELECT module, version FROM schema_modules", -1, &st, NULL) ==
      SQLITE_OK)
    while (sqlite3_step(st) == SQLITE_ROW)
      if ((rc = put(s, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1))))
        goto done;
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT binary_version, modules, migrated_ms FROM schema_binary", -1,
                         &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *b = sqlite3_column_text(st, 0), *m = sqlite3_column_text(st, 1);
    snprintf(s->last_binary, sizeof s->last_binary, "%s", b ? (const char *)b : "");
    snprintf(s->last_modules, sizeof s->last_modules, "%s", m ? (const char *)m : "");
    s->last_ms = sqlite3_column_int64(st, 2);
  }
done:
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* PostgreSQL: the same tables through the statement layer. to_regclass answers NULL for a
 * table that does not exist, so no statement fails (which would abort a transaction). */
static int read_pg(db_schema_state *s) {
  int rc = 0;
  db_stmt *st = db_prep("SELECT to_regclass('schema_modules') IS NOT NULL,"
                        " to_regclass('schema_binary') IS NOT NULL");
  if (!st) return HUB_ERROR;
  if ((rc = db_step(st)) != DB_ROW) return rc < 0 ? rc : hub_error_set(HUB_ERROR, "no answer");
  int have_modules = (int)db_col_int64(st, 0), have_binary = (int)db_col_int64(st, 1);
  db_reset(st);
  if (have_modules) {
    st = db_prep("SELECT module, version FROM schema_modules");
    if (!st) return HUB_ERROR;
    while ((rc = db_step(st)) == DB_ROW)
      if ((rc = put(s, db_col_text(st, 0), (int)db_col_int64(st, 1)))) break;
    db_reset(st);
    if (rc < 0) return rc;
  }
  if (have_binary) {
    st = db_prep("SELECT binary_version, modules, migrated_ms FROM schema_binary");
    if (!st) return HUB_ERROR;
    if ((rc = db_step(st)) == DB_ROW) {
      db_col_copy(s->last_binary, sizeof s->last_binary, st, 0);
      db_col_copy(s->last_modules, sizeof s->last_modules, st, 1);
      s->last_ms = db_col_int64(st, 2);
    }
    db_reset(st);
    if (rc < 0) return rc;
  }
  return 0;
}

int db_schema_known_version(const char *module) {
  for (size_t i = 0; i < NKNOWN; i++)
    if (!strcmp(DB_SCHEMA_KNOWN[i].module, module)) return DB_SCHEMA_KNOWN[i].version;
  return -1;
}

int db_schema_read(const char *data_dir, db_schema_state *out) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < NKNOWN; i++) {
    db_schema_entry *e = entry(out, DB_SCHEMA_KNOWN[i].module);
    if (!e) return hub_error_set(HUB_ERROR, "out of memory");
    e->known = DB_SCHEMA_KNOWN[i].version;
  }
  int rc = db_engine() == DB_ENGINE_POSTGRES ? read_pg(out) : read_sqlite(data_dir, out);
  if (rc) db_schema_state_dispose(out);
  return rc;
}

void db_schema_state_dispose(db_schema_state *s) {
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

int db_schema_newer(const db_schema_state *s, char *msg, size_t cap) {
  for (size_t i = 0; i < s->n; i++) {
    const db_schema_entry *e = &s->v[i];
    if (e->known >= 0 && e->have > e->known) {
      snprintf(msg, cap,
               "the database schema is newer than this modelhub (module %s at version %d, this "
               "binary knows %d%s%s): upgrade modelhub",
               e->module, e->have, e->known, s->last_binary[0] ? "; last migrated by " : "",
               s->last_binary);
      return 1;
    }
  }
  return 0;
}

int db_schema_pending(const db_schema_state *s, char *msg, size_t cap) {
  int n = 0;
  const db_schema_entry *first = NULL;
  for (size_t i = 0; i < s->n; i++) {
    const db_schema_entry *e = &s->v[i];
    if (e->known > e->have) {
      n += e->known - e->have;
      if (!first) first = e;
    }
  }
  if (n && msg)
    snprintf(msg, cap,
             "%d schema step%s pending (module %s at version %d, this binary knows %d): run "
             "`modelhub migrate` first",
             n, n == 1 ? " is" : "s are", first->module, first->have, first->known);
  return n;
}

int db_schema_record(const char *binary) {
  int rc = db_migrate("ops", OPS_STEPS, (int)(sizeof OPS_STEPS / sizeof OPS_STEPS[0]));
  if (rc) return rc;
  char modules[512];
  size_t len = 0;
  modules[len++] = '{';
  for (size_t i = 0; i < NKNOWN && len < sizeof modules; i++)
    len += (size_t)snprintf(modules + len, sizeof modules - len, "%s\"%s\":%d", i ? "," : "",
                            DB_SCHEMA_KNOWN[i].module, DB_SCHEMA_KNOWN[i].version);
  if (len + 2 > sizeof modules) return hub_error_set(HUB_ERROR, "schema record too long");
  modules[len++] = '}';
  modules[len] = 0;
  db_stmt *st = db_prep("INSERT INTO schema_binary(k, binary_version, modules, migrated_ms)"
                        " VALUES(1, ?, ?, ?) ON CONFLICT(k) DO UPDATE SET"
                        " binary_version=excluded.binary_version, modules=excluded.modules,"
                        " migrated_ms=excluded.migrated_ms");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, binary, -1);
  db_bind_text(st, 2, modules, -1);
  db_bind_int64(st, 3, db_now_ms());
  return db_step_done(st);
}
