/* Copy a SQLite database into PostgreSQL, table by table (copy.h). */
#include "db/copy.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/stmt.h"
#include "util/error.h"

#define MAX_TABLES 256
#define MAX_COLS 200
#define NAME_MAX_LEN 128

typedef struct {
  char name[NAME_MAX_LEN];
  int deps[16], ndeps;
  int done;
} table;

typedef struct {
  table *t;
  int n;
} table_list;

static int lite_err(sqlite3 *db, const char *what) {
  return hub_error_set(HUB_ERROR, "source database: %s: %s", what, sqlite3_errmsg(db));
}

/* "…" around an identifier, doubling quotes inside. */
static void quote(char *out, size_t cap, const char *name) {
  size_t o = 0;
  if (cap < 3) return;
  out[o++] = '"';
  for (const char *p = name; *p && o + 3 < cap; p++) {
    if (*p == '"') out[o++] = '"';
    out[o++] = *p;
  }
  out[o++] = '"';
  out[o] = 0;
}

static int find(const table_list *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (!strcasecmp(l->t[i].name, name)) return i;
  return -1;
}

/* The tables to copy, and each one's foreign-key parents. FTS5 virtual tables and their
 * shadow tables (<vt>_data, _idx, _content, _docsize, _config) exist on SQLite only. */
static int list_tables(sqlite3 *src, table_list *out, db_copy_stats *st) {
  char vt[32][NAME_MAX_LEN];
  int nvt = 0, rc = 0;
  sqlite3_stmt *q = NULL;
  if (sqlite3_prepare_v2(src,
                         "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type='table'"
                         " ORDER BY name",
                         -1, &q, NULL) != SQLITE_OK)
    return lite_err(src, "tables");
  while (sqlite3_step(q) == SQLITE_ROW)
    if (!strncasecmp((const char *)sqlite3_column_text(q, 1), "CREATE VIRTUAL TABLE", 20) &&
        nvt < 32)
      snprintf(vt[nvt++], NAME_MAX_LEN, "%s", (const char *)sqlite3_column_text(q, 0));
  sqlite3_reset(q);
  while (sqlite3_step(q) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(q, 0);
    int skip = !strncmp(name, "sqlite_", 7) || !strcmp(name, "schema_modules") ||
               !strcmp(name, "schema_binary");
    for (int i = 0; i < nvt && !skip; i++) {
      size_t n = strlen(vt[i]);
      if (!strcmp(name, vt[i])) st->skipped++; /* counted once, without its shadow tables */
      skip = !strcmp(name, vt[i]) || (!strncmp(name, vt[i], n) && name[n] == '_');
    }
    if (skip) continue;
    if (out->n >= MAX_TABLES || strlen(name) >= NAME_MAX_LEN) {
      rc = hub_error_set(HUB_ERROR, "source database: too many tables or too long a name");
      break;
    }
    memset(&out->t[out->n], 0, sizeof out->t[0]);
    snprintf(out->t[out->n++].name, NAME_MAX_LEN, "%s", name);
  }
  sqlite3_finalize(q);
  for (int i = 0; i < out->n && !rc; i++) {
    char sql[NAME_MAX_LEN * 2 + 64], qn[NAME_MAX_LEN * 2 + 3];
    quote(qn, sizeof qn, out->t[i].name);
    snprintf(sql, sizeof sql, "PRAGMA foreign_key_list(%s)", qn);
    if (sqlite3_prepare_v2(src, sql, -1, &q, NULL) != SQLITE_OK) return lite_err(src, sql);
    while (sqlite3_step(q) == SQLITE_ROW) {
      int p = find(out, (const char *)sqlite3_column_text(q, 2));
      if (p >= 0 && p != i && out->t[i].ndeps < 16) out->t[i].deps[out->t[i].ndeps++] = p;
    }
    sqlite3_finalize(q);
  }
  return rc;
}

/* Columns of `name` on the destination: *n of them, identity ones flagged. */
static int dest_columns(const char *name, char (*cols)[NAME_MAX_LEN], int *ident, int *n) {
  *n = 0;
  db_stmt *st = db_prep("SELECT column_name, is_identity FROM information_schema.columns"
                        " WHERE table_schema = current_schema() AND table_name = ?"
                        " ORDER BY ordinal_position");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, name, -1);
  int rc;
  while ((rc = db_step(st)) == DB_ROW && *n < MAX_COLS) {
    db_col_copy(cols[*n], NAME_MAX_LEN, st, 0);
    const char *id = db_col_text(st, 1);
    ident[*n] = id && !strcmp(id, "YES");
    (*n)++;
  }
  db_reset(st);
  return rc < 0 ? rc : 0;
}

static int bind_value(db_stmt *ins, int idx, sqlite3_stmt *q, int col) {
  switch (sqlite3_column_type(q, col)) {
  case SQLITE_INTEGER:
    return db_bind_int64(ins, idx, sqlite3_column_int64(q, col));
  case SQLITE_FLOAT:
    return db_bind_double(ins, idx, sqlite3_column_double(q, col));
  case SQLITE_TEXT:
    return db_bind_text(ins, idx, (const char *)sqlite3_column_text(q, col),
                        sqlite3_column_bytes(q, col));
  case SQLITE_BLOB:
    return db_bind_blob(ins, idx, sqlite3_column_blob(q, col),
                        (size_t)sqlite3_column_bytes(q, col));
  default:
    return db_bind_null(ins, idx);
  }
}

/* One table in one transaction: empty, fill, count, sequences. */
static int copy_table(sqlite3 *src, const char *name, db_copy_stats *st, int64_t *out_rows) {
  static char scols[MAX_COLS][NAME_MAX_LEN], dcols[MAX_COLS][NAME_MAX_LEN];
  static int ident[MAX_COLS];
  char qn[NAME_MAX_LEN * 2 + 3], sql[8192];
  char *ins_sql = NULL, *sel_sql = NULL;
  sqlite3_stmt *q = NULL;
  db_stmt *ins = NULL;
  int ns = 0, nd = 0, rc = 0, in_tx = 0;
  int64_t rows = 0;
  quote(qn, sizeof qn, name);

  snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", qn);
  if (sqlite3_prepare_v2(src, sql, -1, &q, NULL) != SQLITE_OK) return lite_err(src, sql);
  while (sqlite3_step(q) == SQLITE_ROW && ns < MAX_COLS)
    snprintf(scols[ns++], NAME_MAX_LEN, "%s", (const char *)sqlite3_column_text(q, 1));
  sqlite3_finalize(q);
  q = NULL;
  if ((rc = dest_columns(name, dcols, ident, &nd))) return rc;
  if (!nd)
    return hub_error_set(HUB_EINVALID,
                         "table %s is not in the destination (are all its schema modules "
                         "migrated there?)",
                         name);
  size_t cap = (size_t)ns * (NAME_MAX_LEN * 2 + 8) + 256, il = 0, sl = 0;
  if (!(ins_sql = malloc(cap)) || !(sel_sql = malloc(cap))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  il = (size_t)snprintf(ins_sql, cap, "INSERT INTO %s(", qn);
  sl = (size_t)snprintf(sel_sql, cap, "SELECT ");
  for (int i = 0; i < ns; i++) {
    int found = 0;
    for (int j = 0; j < nd && !found; j++)
      found = !strcasecmp(scols[i], dcols[j]);
    if (!found) {
      rc = hub_error_set(HUB_EINVALID, "column %s.%s is not in the destination", name, scols[i]);
      goto done;
    }
    char qc[NAME_MAX_LEN * 2 + 3];
    quote(qc, sizeof qc, scols[i]);
    il += (size_t)snprintf(ins_sql + il, cap - il, "%s%s", i ? ", " : "", qc);
    sl += (size_t)snprintf(sel_sql + sl, cap - sl, "%s%s", i ? ", " : "", qc);
  }
  il += (size_t)snprintf(ins_sql + il, cap - il, ") VALUES(");
  for (int i = 0; i < ns; i++)
    il += (size_t)snprintf(ins_sql + il, cap - il, "%s?", i ? ", " : "");
  snprintf(ins_sql + il, cap - il, ")");
  snprintf(sel_sql + sl, cap - sl, " FROM %s", qn);
  if (sqlite3_prepare_v2(src, sel_sql, -1, &q, NULL) != SQLITE_OK) {
    rc = lite_err(src, sel_sql);
    goto done;
  }

  if ((rc = db_tx_begin(DB_TX_WRITE))) goto done;
  in_tx = 1;
  /* Rows arrive as they were: no trigger rewrites a change stamp, and no foreign key is
   * checked against a table copied later (needs a role that may set it). */
  if ((rc = db_savepoint("copy_role"))) goto done;
  if (db_exec("SET LOCAL session_replication_role = replica")) {
    if ((rc = db_savepoint_rollback("copy_role"))) goto done;
    st->triggers = 1;
  }
  if ((rc = db_savepoint_release("copy_role"))) goto done;
  snprintf(sql, sizeof sql, "DELETE FROM %s", qn); /* what the migrations seeded */
  if ((rc = db_exec(sql))) goto done;
  if (!(ins = db_prep_text(ins_sql))) {
    rc = HUB_ERROR;
    goto done;
  }
  int s;
  while ((s = sqlite3_step(q)) == SQLITE_ROW) {
    for (int i = 0; i < ns && !rc; i++)
      rc = bind_value(ins, i + 1, q, i);
    if (rc || (rc = db_step_done(ins))) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", hub_error_msg());
      rc = hub_error_set(rc, "table %s, row %lld: %s", name, (long long)rows + 1, msg);
      goto done;
    }
    rows++;
  }
  if (s != SQLITE_DONE) {
    rc = lite_err(src, sel_sql);
    goto done;
  }
  db_prep_text_done(ins);
  ins = NULL;

  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", qn);
  db_stmt *cnt = db_prep_text(sql);
  if (!cnt) {
    rc = HUB_ERROR;
    goto done;
  }
  int64_t have = -1;
  if ((rc = db_step(cnt)) == DB_ROW) have = db_col_int64(cnt, 0);
  db_prep_text_done(cnt);
  if (rc < 0) goto done;
  rc = 0;
  if (have != rows) {
    rc = hub_error_set(HUB_ERROR,
                       "table %s: %lld rows in the destination after the copy, %lld "
                       "in the source",
                       name, (long long)have, (long long)rows);
    goto done;
  }
  /* Identity columns: the next generated id follows the largest copied one. */
  for (int j = 0; j < nd; j++) {
    if (!ident[j]) continue;
    char qc[NAME_MAX_LEN * 2 + 3];
    quote(qc, sizeof qc, dcols[j]);
    snprintf(sql, sizeof sql,
             "SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max(%s), 0) + 1, false)"
             " FROM %s",
             qc, qn);
    db_stmt *sv = db_prep_text(sql);
    if (!sv) {
      rc = HUB_ERROR;
      goto done;
    }
    db_bind_text(sv, 1, qn, -1);
    db_bind_text(sv, 2, dcols[j], -1);
    rc = db_step_done(sv);
    db_prep_text_done(sv);
    if (rc) goto done;
  }
  rc = db_tx_commit();
  in_tx = 0;
  if (!rc) {
    st->tables++;
    st->rows += rows;
    *out_rows = rows;
  }
done:
  if (ins) db_prep_text_done(ins);
  if (in_tx) db_tx_rollback();
  sqlite3_finalize(q);
  free(ins_sql);
  free(sel_sql);
  return rc;
}

int db_copy_from_sqlite(const char *sqlite_path, db_copy_cb cb, void *payload, db_copy_stats *out) {
  sqlite3 *src = NULL;
  table_list l = {NULL, 0};
  int rc = 0;
  memset(out, 0, sizeof *out);
  if (db_engine() != DB_ENGINE_POSTGRES)
    return hub_error_set(HUB_EINVALID, "db copy: the destination must be PostgreSQL");
  if (sqlite3_open_v2(sqlite_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    rc = hub_error_set(HUB_ERROR, "cannot open %s: %s", sqlite_path,
                       src ? sqlite3_errmsg(src) : "oom");
    goto done;
  }
  sqlite3_busy_timeout(src, 10000);
  /* One read snapshot of the source for the whole copy. */
  if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    rc = lite_err(src, "BEGIN");
    goto done;
  }
  if (!(l.t = calloc(MAX_TABLES, sizeof *l.t))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = list_tables(src, &l, out))) goto done;

  /* A new destination only: copying over a used one would mix two hubs. */
  db_stmt *st = db_prep("SELECT to_regclass('accounts') IS NOT NULL");
  if (!st) {
    rc = HUB_ERROR;
    goto done;
  }
  int has = (rc = db_step(st)) == DB_ROW && db_col_int64(st, 0);
  db_reset(st);
  if (rc < 0) goto done;
  rc = 0;
  if (has) {
    st = db_prep("SELECT count(*) FROM accounts");
    if (!st) {
      rc = HUB_ERROR;
      goto done;
    }
    int64_t n = (rc = db_step(st)) == DB_ROW ? db_col_int64(st, 0) : 0;
    db_reset(st);
    if (rc < 0) goto done;
    rc = 0;
    if (n) {
      rc = hub_error_set(HUB_EEXISTS,
                         "the destination already holds %lld accounts: db copy "
                         "fills a new database",
                         (long long)n);
      goto done;
    }
  }

  /* Parents before children; a cycle (none in the schema) is copied in name order. */
  for (int left = l.n; left > 0;) {
    int progressed = 0;
    for (int i = 0; i < l.n; i++) {
      table *t = &l.t[i];
      if (t->done) continue;
      int ready = 1;
      for (int d = 0; d < t->ndeps && ready; d++)
        ready = l.t[t->deps[d]].done;
      if (!ready && progressed) continue;
      if (!ready) {
        int any = 0; /* is any table ready at all this pass? */
        for (int k = 0; k < l.n && !any; k++) {
          if (l.t[k].done) continue;
          int r = 1;
          for (int d = 0; d < l.t[k].ndeps && r; d++)
            r = l.t[l.t[k].deps[d]].done;
          any = r;
        }
        if (any) continue;
      }
      int64_t rows = 0;
      if ((rc = copy_table(src, t->name, out, &rows))) goto done;
      t->done = 1;
      left--;
      progressed = 1;
      if (cb) cb(t->name, rows, payload);
    }
  }
done:
  free(l.t);
  if (src) sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(src);
  return rc;
}
