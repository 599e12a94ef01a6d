/* The statement layer (db/stmt.h) on both engines: the same cases against SQLite and
 * against a throwaway PostgreSQL cluster this test starts with scripts/pg.sh (skipped, loudly,
 * only when the PostgreSQL binaries are missing). Types, NULLs, blobs, placeholders, the
 * dialect rewrites, migrations, transactions and savepoints, durable commits, two writer
 * threads, and reconnection after the server restarts (503 while it is down). */
#include "unit.h"
#include "pgtest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-dbeng-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-pg-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

static int group_setup(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3)
    fprintf(stderr, "\n*** test_db_engines: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL cases are SKIPPED ***\n\n");
  else if (rc != 0) {
    fprintf(stderr, "test_db_engines: scripts/pg.sh start failed (%d)\n", rc);
    return -1;
  }
  g_pg_up = rc == 0;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  db_stmt_thread_end();
  db_engine_select("sqlite");
  db_global_shutdown();
  if (g_pg_up) pg_script("stop", NULL, 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_sqlite_dir, g_pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Select the test's engine; 0 when the case must be skipped. */
static int use(void **state) {
  int e = *(int *)*state;
  if (e == ENG_PG) {
    if (!g_pg_up) return 0;
    assert_int_equal(db_engine_select(g_pg_url), 0);
    assert_int_equal(db_engine(), DB_ENGINE_POSTGRES);
  } else {
    assert_int_equal(db_engine_select("sqlite"), 0);
    assert_int_equal(db_engine(), DB_ENGINE_SQLITE);
  }
  return 1;
}

#define USE_OR_SKIP()                                                                              \
  do {                                                                                             \
    if (!use(state)) {                                                                             \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* The schema every case uses, through db_migrate (portable steps and one per-engine pair). */
static const db_migration STEPS[] = {
    {"CREATE TABLE eng_vals(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB,"
     " n TEXT);"
     "CREATE TABLE eng_names(name TEXT NOT NULL UNIQUE COLLATE NOCASE, v INTEGER NOT NULL"
     " DEFAULT 0);"
     "CREATE TABLE eng_pairs(a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY(a, b))"
     " WITHOUT ROWID;",
     NULL, NULL},
    {NULL, "CREATE TABLE eng_counter(k INTEGER PRIMARY KEY CHECK(k=1), n INTEGER NOT NULL);",
     "CREATE TABLE eng_counter(k BIGINT PRIMARY KEY CHECK(k=1), n BIGINT NOT NULL);"},
    {"INSERT INTO eng_counter VALUES(1, 0);", NULL, NULL},
};

static int64_t count_rows(const char *sql) {
  db_stmt *st = db_prep_text(sql);
  assert_non_null(st);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t n = db_col_int64(st, 0);
  db_prep_text_done(st);
  return n;
}

static void test_migrate(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0); /* applied once */
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='engtest'"), 3);
  /* A binary that knows fewer steps than the database has refuses (a newer one migrated). */
  assert_int_equal(db_migrate("engtest", STEPS, 2), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "newer than this modelhub"));
  assert_int_equal(db_tx_active(), 0);
  /* A module db/schema.c lists must have the listed number of steps. */
  assert_int_equal(db_migrate("ops", STEPS, 3), HUB_ERROR);
  assert_non_null(strstr(hub_error_msg(), "DB_SCHEMA_KNOWN"));
  hub_error_clear();
  assert_int_equal(count_rows("SELECT count(*) FROM eng_counter"), 1);
  /* A failing step leaves the version where it was. */
  static const db_migration BAD[] = {{"SELECT 1", NULL, NULL}, {"CREATE TABLE (", NULL, NULL}};
  assert_int_not_equal(db_migrate("engbad", BAD, 2), 0);
  assert_non_null(strstr(hub_error_msg(), "engbad step 2"));
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='engbad'"), 1);
  assert_int_equal(db_tx_active(), 0);
  /* db_migrate_module (plain step texts) runs portable steps on either engine, in the
   * same schema_modules numbering. */
  static const char *const OLD[] = {"CREATE TABLE eng_old(a INTEGER NOT NULL, b BLOB)",
                                    "INSERT INTO eng_old VALUES(5000000000, NULL)"};
  assert_int_equal(db_migrate_module("engold", OLD, 2), 0);
  assert_int_equal(db_migrate_module("engold", OLD, 2), 0);
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='engold'"), 2);
  assert_int_equal(count_rows("SELECT a FROM eng_old"), 5000000000);
}

static void test_types(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  const unsigned char blob[] = {0, 1, 0xff, 0x5c, 'x', 0, 0x80};
  const int64_t big = ((int64_t)1 << 40) + 3; /* INTEGER columns hold 64 bits on both */
  db_stmt *st = db_prep("INSERT INTO eng_vals(i, r, s, b, n) VALUES(?, ?, ?, ?, ?)");
  assert_non_null(st);
  assert_int_equal(db_bind_int64(st, 1, big), 0);
  assert_int_equal(db_bind_double(st, 2, 2.5), 0);
  char text[32];
  snprintf(text, sizeof text, "it's \xc3\xa9t\xc3\xa9 ?");
  assert_int_equal(db_bind_text(st, 3, text, -1), 0);
  memset(text, 'z', sizeof text - 1); /* bound values are copies */
  assert_int_equal(db_bind_blob(st, 4, blob, sizeof blob), 0);
  assert_int_equal(db_bind_null(st, 5), 0);
  assert_int_equal(db_step(st), DB_DONE);
  assert_int_equal(db_changes(), 1);
  int64_t id = db_last_id();
  assert_true(id > 0);
  db_reset(st);

  st = db_prep("SELECT id, i, r, s, b, n, i + 1, count(*) OVER () FROM eng_vals WHERE id=?1");
  assert_non_null(st);
  db_bind_int64(st, 1, id);
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_count(st), 8);
  assert_int_equal(db_col_type(st, 0), DB_T_INT);
  assert_int_equal(db_col_int64(st, 0), id);
  assert_int_equal(db_col_type(st, 1), DB_T_INT);
  assert_int_equal(db_col_int64(st, 1), big);
  assert_int_equal(db_col_type(st, 2), DB_T_FLOAT);
  assert_true(db_col_double(st, 2) == 2.5);
  assert_int_equal(db_col_type(st, 3), DB_T_TEXT);
  assert_string_equal(db_col_text(st, 3), "it's \xc3\xa9t\xc3\xa9 ?");
  assert_int_equal(db_col_bytes(st, 3), strlen("it's \xc3\xa9t\xc3\xa9 ?"));
  assert_int_equal(db_col_type(st, 4), DB_T_BLOB);
  assert_int_equal(db_col_bytes(st, 4), sizeof blob);
  assert_memory_equal(db_col_blob(st, 4), blob, sizeof blob);
  assert_int_equal(db_col_type(st, 5), DB_T_NULL);
  assert_null(db_col_text(st, 5));
  assert_int_equal(db_col_int64(st, 5), 0);
  assert_int_equal(db_col_bytes(st, 5), 0);
  assert_int_equal(db_col_int64(st, 6), big + 1);
  assert_int_equal(db_col_int64(st, 7), 1);
  char copy[8];
  db_col_copy(copy, sizeof copy, st, 3);
  assert_string_equal(copy, "it's \xc3\xa9");
  db_col_copy(copy, sizeof copy, st, 5);
  assert_string_equal(copy, "");
  assert_int_equal(db_step(st), DB_DONE);
  db_reset(st);
  /* db_reset keeps the bindings; db_prep clears them. */
  assert_int_equal(db_step(st), DB_ROW);
  db_reset(st);

  /* RETURNING (SQLite >= 3.35 and PostgreSQL) and an empty blob. */
  st = db_prep("INSERT INTO eng_vals(s, b) VALUES(?, ?) RETURNING id, s");
  db_bind_text(st, 1, "abc", 2);
  db_bind_blob(st, 2, NULL, 0);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t id2 = db_col_int64(st, 0);
  assert_true(id2 > id);
  assert_string_equal(db_col_text(st, 1), "ab");
  assert_int_equal(db_step(st), DB_DONE);
  db_reset(st);
  assert_int_equal(db_last_id(), id2);
  st = db_prep("SELECT length(b), b FROM eng_vals WHERE id=?");
  db_bind_int64(st, 1, id2);
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_int64(st, 0), 0);
  assert_int_equal(db_col_bytes(st, 1), 0);
  db_reset(st);

  /* db_step_done; UPDATE counts. */
  st = db_prep("UPDATE eng_vals SET n=? WHERE id IN (?, ?)");
  db_bind_text(st, 1, "x", -1);
  db_bind_int64(st, 2, id);
  db_bind_int64(st, 3, id2);
  assert_int_equal(db_step_done(st), 0);
  assert_int_equal(db_changes(), 2);
}

static void test_placeholders(void **state) {
  USE_OR_SKIP();
  /* ?N reuse, and ? that are text or comments, not parameters. */
  db_stmt *st = db_prep("SELECT ?2 || '?' || ?1 /* ? */, ?2 -- ?\n , '''?'''");
  assert_non_null(st);
  db_bind_text(st, 1, "a", -1);
  db_bind_text(st, 2, "b", -1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_string_equal(db_col_text(st, 0), "b?a");
  assert_string_equal(db_col_text(st, 1), "b");
  assert_string_equal(db_col_text(st, 2), "'?'");
  db_reset(st);
  /* A bare ? after ?N takes the next number (SQLite's rule). */
  st = db_prep("SELECT ?3, ?, ?1");
  db_bind_int64(st, 1, 1);
  db_bind_int64(st, 2, 2);
  db_bind_int64(st, 3, 3);
  db_bind_int64(st, 4, 4);
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_int64(st, 0), 3);
  assert_int_equal(db_col_int64(st, 1), 4);
  assert_int_equal(db_col_int64(st, 2), 1);
  db_reset(st);
  /* Run-time text: cached by text; two of the same text busy at once. */
  char sql[64];
  snprintf(sql, sizeof sql, "SELECT ? + %d", 40);
  db_stmt *a = db_prep_text(sql), *b = db_prep_text(sql);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  db_bind_int64(a, 1, 2);
  db_bind_int64(b, 1, 3);
  assert_int_equal(db_step(a), DB_ROW);
  assert_int_equal(db_step(b), DB_ROW);
  assert_int_equal(db_col_int64(a, 0), 42);
  assert_int_equal(db_col_int64(b, 0), 43);
  db_prep_text_done(a);
  db_prep_text_done(b);
  /* A value of another type than the first execution's. */
  st = db_prep("SELECT coalesce(?, 'none')");
  db_bind_text(st, 1, "t", -1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_string_equal(db_col_text(st, 0), "t");
  st = db_prep("SELECT coalesce(?, 'none')");
  db_bind_null(st, 1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_string_equal(db_col_text(st, 0), "none");
  db_reset(st);
}

static void test_rewrites_text(void **state) {
  (void)state;
  int n = 0;
  char *q = db__pg_rewrite("INSERT OR IGNORE INTO t(a, b) VALUES(?, ?2)", &n);
  assert_string_equal(q, "INSERT INTO t(a, b) VALUES($1, $2) ON CONFLICT DO NOTHING");
  assert_int_equal(n, 2);
  free(q);
  q = db__pg_rewrite("insert or ignore into t(a) values(?) returning a; BEGIN IMMEDIATE", &n);
  assert_string_equal(q, "insert into t(a) values($1) ON CONFLICT DO NOTHING returning a; BEGIN");
  free(q);
  q = db__pg_rewrite("CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, x REAL, b BLOB,"
                     " y integer) WITHOUT ROWID; SELECT 'INTEGER', x FROM \"BLOB\"",
                     &n);
  assert_string_equal(q, "CREATE TABLE t(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                         " , x DOUBLE PRECISION, b BYTEA, y BIGINT) ; SELECT 'INTEGER', x FROM"
                         " \"BLOB\"");
  assert_int_equal(n, 0);
  free(q);
  q = db__pg_rewrite("SELECT a FROM t WHERE a = 'it''s ?' AND b=? -- ?1\n", &n);
  assert_string_equal(q, "SELECT a FROM t WHERE a = 'it''s ?' AND b=$1 -- ?1\n");
  assert_int_equal(n, 1);
  free(q);
}

static void test_rewrites_run(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  db_stmt *st = db_prep("INSERT OR IGNORE INTO eng_names(name, v) VALUES(?, ?)");
  db_bind_text(st, 1, "Alice", -1);
  db_bind_int64(st, 2, 1);
  assert_int_equal(db_step_done(st), 0);
  st = db_prep("INSERT OR IGNORE INTO eng_names(name, v) VALUES(?, ?)");
  db_bind_text(st, 1, "ALICE", -1); /* COLLATE NOCASE: the same name */
  db_bind_int64(st, 2, 2);
  assert_int_equal(db_step_done(st), 0);
  assert_int_equal(db_changes(), 0);
  /* Without OR IGNORE the duplicate is HUB_EEXISTS on both. */
  st = db_prep("INSERT INTO eng_names(name) VALUES(?)");
  db_bind_text(st, 1, "alice", -1);
  assert_int_equal(db_step_done(st), HUB_EEXISTS);
  /* Portable upsert. */
  st = db_prep("INSERT INTO eng_names(name, v) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET"
               " v=eng_names.v + excluded.v");
  db_bind_text(st, 1, "aLiCe", -1);
  db_bind_int64(st, 2, 10);
  assert_int_equal(db_step_done(st), 0);
  st = db_prep("SELECT name, v FROM eng_names WHERE name=?");
  db_bind_text(st, 1, "alice", -1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_string_equal(db_col_text(st, 0), "Alice");
  assert_int_equal(db_col_int64(st, 1), 11);
  db_reset(st);
  /* WITHOUT ROWID table, OR IGNORE on a composite key. */
  for (int i = 0; i < 3; i++) {
    st = db_prep("INSERT OR IGNORE INTO eng_pairs VALUES(?, ?)");
    db_bind_int64(st, 1, 1);
    db_bind_int64(st, 2, i % 2);
    assert_int_equal(db_step_done(st), 0);
  }
  assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 2);
  /* Errors carry the engine's message: at db_prep on SQLite, at the first db_step on
   * PostgreSQL (prepared then, with the bound values' types). */
  st = db_prep_text("SELEC nothing");
  if (st) {
    assert_int_equal(db_engine(), DB_ENGINE_POSTGRES);
    assert_int_equal(db_step(st), HUB_ERROR);
    db_prep_text_done(st);
  }
  assert_int_equal(hub_error_code(), HUB_ERROR);
  assert_non_null(strstr(hub_error_msg(), "sql"));
  assert_non_null(strstr(hub_error_msg(), "SELEC"));
}

static void test_transactions(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  assert_int_equal(db_exec("DELETE FROM eng_pairs"), 0);
  static const char *ins = "INSERT INTO eng_pairs VALUES(?, ?)";
  db_stmt *st;
  /* rollback */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_tx_active(), 1);
  st = db_prep(ins);
  db_bind_int64(st, 1, 7);
  db_bind_int64(st, 2, 1);
  assert_int_equal(db_step_done(st), 0);
  db_tx_rollback();
  assert_int_equal(db_tx_active(), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 0);
  /* commit, with a savepoint rolled back and a constraint failure recovered by one */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  st = db_prep(ins);
  db_bind_int64(st, 1, 7);
  db_bind_int64(st, 2, 1);
  assert_int_equal(db_step_done(st), 0);
  assert_int_equal(db_savepoint("sp1"), 0);
  st = db_prep(ins);
  db_bind_int64(st, 1, 7);
  db_bind_int64(st, 2, 2);
  assert_int_equal(db_step_done(st), 0);
  assert_int_equal(db_savepoint_rollback("sp1"), 0);
  assert_int_equal(db_savepoint_release("sp1"), 0);
  assert_int_equal(db_savepoint("dup"), 0);
  st = db_prep(ins);
  db_bind_int64(st, 1, 7);
  db_bind_int64(st, 2, 1);
  assert_int_equal(db_step_done(st), HUB_EEXISTS);
  assert_int_equal(db_savepoint_rollback("dup"), 0);
  assert_int_equal(db_savepoint_release("dup"), 0);
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 1);
  assert_int_equal(db_savepoint("bad name"), HUB_EINVALID);
  /* durable */
  assert_int_equal(db_tx_begin(DB_TX_DURABLE), 0);
  st = db_prep(ins);
  db_bind_int64(st, 1, 8);
  db_bind_int64(st, 2, 8);
  assert_int_equal(db_step_done(st), 0);
  assert_int_equal(db_tx_commit(), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 2);
  if (db_engine() == DB_ENGINE_SQLITE)
    assert_int_equal(count_rows("PRAGMA synchronous"), 1); /* NORMAL again */
  /* read snapshot */
  assert_int_equal(db_tx_begin(DB_TX_READ), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 2);
  assert_int_equal(db_tx_commit(), 0);
  /* A failed statement inside a transaction: PostgreSQL aborts the transaction, and the
   * layer's commit then reports it (SQLite carries on). */
  if (db_engine() == DB_ENGINE_POSTGRES) {
    assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
    st = db_prep(ins);
    db_bind_int64(st, 1, 9);
    db_bind_int64(st, 2, 9);
    assert_int_equal(db_step_done(st), 0);
    st = db_prep(ins);
    db_bind_int64(st, 1, 9);
    db_bind_int64(st, 2, 9);
    assert_int_equal(db_step_done(st), HUB_EEXISTS);
    assert_int_not_equal(db_tx_commit(), 0);
    assert_int_equal(db_tx_active(), 0);
    assert_int_equal(count_rows("SELECT count(*) FROM eng_pairs"), 2);
  }
}

#define WRITER_ROUNDS 40
static void *writer(void *arg) {
  (void)arg;
  for (int i = 0; i < WRITER_ROUNDS; i++) {
    /* read, then write what was read plus one: lost updates unless writers serialize */
    if (db_tx_begin(DB_TX_WRITE)) return (void *)1;
    db_stmt *st = db_prep("SELECT n FROM eng_counter WHERE k=1");
    if (!st || db_step(st) != DB_ROW) return (void *)2;
    int64_t n = db_col_int64(st, 0);
    db_reset(st);
    st = db_prep("UPDATE eng_counter SET n=? WHERE k=1");
    db_bind_int64(st, 1, n + 1);
    if (db_step_done(st) || db_tx_commit()) return (void *)3;
  }
  db_stmt_thread_end();
  return NULL;
}

static void test_concurrent_writers(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  int64_t before = count_rows("SELECT n FROM eng_counter");
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, writer, NULL), 0);
  for (int i = 0; i < 2; i++) {
    void *r = (void *)1;
    pthread_join(t[i], &r);
    assert_null(r);
  }
  assert_int_equal(count_rows("SELECT n FROM eng_counter"), before + 2 * WRITER_ROUNDS);
}

static void test_pg_reconnect(void **state) {
  USE_OR_SKIP();
  if (db_engine() != DB_ENGINE_POSTGRES) {
    skip(); /* SQLite has no server to lose */
    return;
  }
  assert_int_equal(db_migrate("engtest", STEPS, 3), 0);
  static const char *q = "SELECT count(*) FROM eng_counter WHERE k=?";
  db_stmt *st = db_prep(q);
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), DB_ROW);
  db_reset(st);
  assert_int_equal(pg_script("stop", NULL, 0), 0);
  st = db_prep(q);
  assert_non_null(st);
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), HUB_EUNAVAILABLE);
  assert_non_null(strstr(hub_error_msg(), "database unavailable"));
  /* still down: new statements and transactions fail the same way */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), HUB_EUNAVAILABLE);
  assert_int_equal(db_step(st), HUB_EUNAVAILABLE);
  char url[512];
  assert_int_equal(pg_script("start", url, sizeof url), 0);
  assert_string_equal(url, g_pg_url);
  st = db_prep(q); /* the cached statement, prepared again on the new connection */
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_int64(st, 0), 1);
  db_reset(st);
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(db_tx_commit(), 0);
  /* A restart between two statements of an idle connection: the server ended the session
   * before the next statement was sent, so it runs on a new connection without an error. */
  assert_int_equal(pg_script("stop", NULL, 0), 0);
  assert_int_equal(pg_script("start", NULL, 0), 0);
  st = db_prep(q);
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), DB_ROW);
  db_reset(st);
  assert_int_equal(pg_script("stop", NULL, 0), 0);
  assert_int_equal(pg_script("start", NULL, 0), 0);
  assert_int_equal(db_tx_begin(DB_TX_READ), 0);
  assert_int_equal(db_tx_commit(), 0);
  /* Lost inside a transaction: an error (503), never a silent new connection. */
  assert_int_equal(db_tx_begin(DB_TX_WRITE), 0);
  assert_int_equal(pg_script("stop", NULL, 0), 0);
  assert_int_equal(pg_script("start", NULL, 0), 0);
  st = db_prep(q);
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), HUB_EUNAVAILABLE);
  assert_int_equal(db_tx_active(), 1); /* the owner still has to end it */
  st = db_prep(q); /* nothing runs outside the transaction its owner believes open */
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), HUB_EUNAVAILABLE);
  assert_int_equal(db_tx_commit(), HUB_EUNAVAILABLE);
  assert_int_equal(db_tx_active(), 0);
  st = db_prep(q);
  db_bind_int64(st, 1, 1);
  assert_int_equal(db_step(st), DB_ROW);
  db_reset(st);
}

/* ---- the core schema (module "core") and the db.h calls on the layer ---- */

static int64_t kv_roundtrip(const char *key, const void *val, size_t len) {
  assert_int_equal(db_kv_set(key, val, len), 0);
  unsigned char out[64];
  size_t n = 0;
  assert_int_equal(db_kv_get(key, out, sizeof out, &n), 0);
  assert_int_equal(n, len);
  if (len) assert_memory_equal(out, val, len);
  return (int64_t)n;
}

static void test_core_schema(void **state) {
  USE_OR_SKIP();
  /* db_global_init migrates the core schema on the selected engine, once. */
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='core'"), 8);
  /* every table of steps 1-8 (and their later columns) is there */
  assert_int_equal(count_rows("SELECT count(*) FROM (SELECT id, uid, kind, name, fullname, email,"
                              " password_hash, is_admin, created_ms FROM accounts) a"),
                   0);
  assert_int_equal(count_rows("SELECT count(*) FROM (SELECT org_id, user_id, role FROM"
                              " memberships) a"),
                   0);
  assert_int_equal(count_rows("SELECT count(*) FROM (SELECT id, uid, user_id, name, role, hash,"
                              " created_ms, last_used_ms, expires_ms, revoked FROM tokens) a"),
                   0);
  assert_int_equal(count_rows("SELECT count(*) FROM (SELECT id, uid, type, ns, name, owner_id,"
                              " owner_is_org, private, gated, disabled, created_ms, updated_ms,"
                              " head_sha, last_modified_ms, downloads, downloads_all, likes,"
                              " trending, chg, dchg FROM repos) a"),
                   0);
  static const char *const tables[] = {"repo_redirects",  "kv",    "repo_meta",   "repo_tags",
                                       "downloads_daily", "likes", "model_edges", "repo_objects"};
  for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
    assert_int_equal(count_rows(sql), 0);
  }
  assert_int_equal(count_rows("SELECT n FROM repo_seq WHERE k=1"), 0);
  /* case-insensitive names (COLLATE NOCASE on both), 64-bit times, ids from the table */
  db_stmt *st = db_prep("INSERT INTO accounts(uid, kind, name, created_ms) VALUES(?, 0, ?, ?)"
                        " RETURNING id");
  db_bind_text(st, 1, "u1", -1);
  db_bind_text(st, 2, "CoreUser", -1);
  db_bind_int64(st, 3, 1700000000000);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t uid = db_col_int64(st, 0);
  assert_true(uid > 0);
  db_reset(st);
  st = db_prep("INSERT INTO accounts(uid, kind, name, created_ms) VALUES('u2', 0, 'COREUSER', 1)");
  assert_int_equal(db_step_done(st), HUB_EEXISTS);
  st = db_prep("SELECT created_ms FROM accounts WHERE name=?");
  db_bind_text(st, 1, "coreuser", -1);
  assert_int_equal(db_step(st), DB_ROW);
  assert_int_equal(db_col_int64(st, 0), 1700000000000);
  db_reset(st);
  st = db_prep("DELETE FROM accounts WHERE id=?");
  db_bind_int64(st, 1, uid);
  assert_int_equal(db_step_done(st), 0);

  /* kv: set, overwrite (an upsert), binary values, missing keys */
  assert_int_equal(kv_roundtrip("core-test", "one", 3), 3);
  assert_int_equal(kv_roundtrip("core-test", "three", 5), 5);
  const unsigned char bin[] = {0, 0xff, 0x5c, 'x', 0};
  assert_int_equal(kv_roundtrip("core-bin", bin, sizeof bin), (int64_t)sizeof bin);
  assert_int_equal(kv_roundtrip("core-empty", "", 0), 0);
  assert_int_equal(count_rows("SELECT count(*) FROM kv WHERE key LIKE 'core-%'"), 3);
  char small[2];
  size_t n = 0;
  assert_int_equal(db_kv_get("core-test", small, sizeof small, &n), 0); /* truncated to cap */
  assert_int_equal(n, 2);
  assert_memory_equal(small, "th", 2);
  assert_int_equal(db_kv_get("core-missing", small, sizeof small, &n), HUB_ENOTFOUND);
  assert_int_equal(db_exec("DELETE FROM kv WHERE key LIKE 'core-%'"), 0);
}

/* SQLite files made before module "core" numbered the core schema in PRAGMA user_version
 * only: db_global_init adopts that number and applies just the steps after it, and keeps
 * user_version up to date for older binaries. */
static void test_core_user_version(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_engine(), DB_ENGINE_SQLITE);
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(count_rows("PRAGMA user_version"), 8);
  /* an older file: at version 7 (no repo_objects yet), no "core" row */
  assert_int_equal(db_exec("DROP TABLE repo_objects; PRAGMA user_version=7;"
                           " DELETE FROM schema_modules WHERE module='core'"),
                   0);
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='core'"), 8);
  assert_int_equal(count_rows("PRAGMA user_version"), 8);
  assert_int_equal(count_rows("SELECT count(*) FROM repo_objects"), 0);
  /* at version 8 already: nothing runs again (step 1 would fail: the tables exist) */
  assert_int_equal(db_exec("DELETE FROM schema_modules WHERE module='core'"), 0);
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  assert_int_equal(count_rows("SELECT version FROM schema_modules WHERE module='core'"), 8);
}

static void *readonly_thread(void *arg) {
  int *res = arg;
  db_thread_readonly();
  db_stmt *st = db_prep("SELECT count(*) FROM kv");
  res[0] = st && db_step(st) == DB_ROW;
  if (st) db_reset(st);
  st = db_prep("INSERT INTO kv(key, value) VALUES('ro-write', 'x')");
  res[1] = st ? db_step_done(st) : HUB_ERROR; /* refused */
  /* and inside a transaction too */
  db_read_begin();
  st = db_prep("DELETE FROM kv WHERE key='ro-write'");
  res[2] = st ? db_step_done(st) : HUB_ERROR;
  db_read_end();
  db_stmt_thread_end();
  db_global_shutdown();
  return NULL;
}

static void test_core_readonly_thread(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  int res[3] = {0, 0, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, readonly_thread, res), 0);
  pthread_join(t, NULL);
  assert_int_equal(res[0], 1);
  assert_true(res[1] < 0);
  assert_true(res[2] < 0);
  assert_int_equal(count_rows("SELECT count(*) FROM kv WHERE key='ro-write'"), 0);
  /* this thread still writes */
  assert_int_equal(kv_roundtrip("rw-write", "y", 1), 1);
}

static int enqueue_like(void *arg) {
  (void)arg;
  int rc = db_begin_immediate();
  if (rc) return rc;
  db_stmt *st = db_prep("UPDATE repo_seq SET n=n WHERE k=1");
  if (!st || (rc = db_step_done(st))) {
    db_rollback();
    return rc ? rc : HUB_ERROR;
  }
  return db_commit();
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int holding, release;
} lock_holder;

static void *hold_writer_lock(void *arg) {
  lock_holder *h = arg;
  int rc = db_begin_immediate();
  pthread_mutex_lock(&h->mu);
  h->holding = rc ? -1 : 1;
  pthread_cond_broadcast(&h->cv);
  while (!h->release)
    pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  if (!rc) db_rollback();
  db_stmt_thread_end();
  db_global_shutdown();
  return NULL;
}

static void test_core_try_without_waiting(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  int busy = -1;
  assert_int_equal(db_try_without_waiting(enqueue_like, NULL, &busy), 0);
  assert_int_equal(busy, 0);
  lock_holder h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hold_writer_lock, &h), 0);
  pthread_mutex_lock(&h.mu);
  while (!h.holding)
    pthread_cond_wait(&h.cv, &h.mu);
  pthread_mutex_unlock(&h.mu);
  assert_int_equal(h.holding, 1);
  /* another writer holds the lock: fails at once, busy */
  assert_int_not_equal(db_try_without_waiting(enqueue_like, NULL, &busy), 0);
  assert_int_equal(busy, 1);
  assert_int_equal(db_in_transaction(), 0);
  pthread_mutex_lock(&h.mu);
  h.release = 1;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(t, NULL);
  /* the lock is free again, and the connection waits for it as usual */
  assert_int_equal(db_try_without_waiting(enqueue_like, NULL, &busy), 0);
  assert_int_equal(busy, 0);
  assert_int_equal(enqueue_like(NULL), 0);
}

static void test_core_budget_and_snapshot(void **state) {
  USE_OR_SKIP();
  assert_int_equal(db_global_init(g_sqlite_dir), 0);
  const char *slow = db_engine() == DB_ENGINE_POSTGRES
                         ? "SELECT pg_sleep(2)"
                         : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                           " WHERE x < 100000000) SELECT count(*) FROM c";
  db_budget_set(1000000, 20000);
  db_stmt *st = db_prep_text(slow);
  assert_non_null(st);
  assert_true(db_step(st) < 0);
  db_prep_text_done(st);
  assert_int_equal(db_budget_exceeded(), 1);
  db_budget_set(0, 0);
  assert_int_equal(db_budget_exceeded(), 0);
  st = db_prep_text("SELECT 1");
  assert_int_equal(db_step(st), DB_ROW); /* no limit again */
  db_prep_text_done(st);
  /* a read snapshot, then a write transaction */
  assert_int_equal(db_in_transaction(), 0);
  db_read_begin();
  assert_int_equal(db_in_transaction(), 1);
  assert_int_equal(count_rows("SELECT count(*) FROM repo_seq"), 1);
  assert_int_equal(db_in_read_snapshot(), 1);
  hub_error_set(HUB_EINVALID, "handler error");
  db_read_end(); /* keeps the caller's error */
  assert_int_equal(hub_error_code(), HUB_EINVALID);
  assert_string_equal(hub_error_msg(), "handler error");
  assert_int_equal(db_in_transaction(), 0);
  assert_int_equal(db_begin_immediate(), 0);
  assert_int_equal(db_in_read_snapshot(), 0);
  assert_int_equal(db_in_transaction(), 1);
  assert_int_equal(db_commit(), 0);
  assert_int_equal(db_in_transaction(), 0);
}

static void test_engine_select(void **state) {
  (void)state;
  assert_int_equal(db_engine_select("mysql://x"), HUB_EINVALID);
  assert_int_equal(db_engine_select("postgresql://u@127.0.0.1:1/db"), 0);
  assert_int_equal(db_engine(), DB_ENGINE_POSTGRES);
  assert_string_equal(db_engine_url(), "postgresql://u@127.0.0.1:1/db");
  setenv("MODELHUB_DB", "postgres://h/db", 1);
  assert_int_equal(db_engine_select(NULL), 0);
  assert_string_equal(db_engine_url(), "postgres://h/db");
  unsetenv("MODELHUB_DB");
  assert_int_equal(db_engine_select(NULL), 0);
  assert_int_equal(db_engine(), DB_ENGINE_SQLITE);
  assert_string_equal(db_engine_url(), "");
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &eng_sqlite), cmocka_unit_test_prestate(fn, &eng_pg)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_engine_select),
      cmocka_unit_test(test_rewrites_text),
      BOTH(test_migrate),
      BOTH(test_types),
      BOTH(test_placeholders),
      BOTH(test_rewrites_run),
      BOTH(test_transactions),
      BOTH(test_concurrent_writers),
      BOTH(test_core_schema),
      cmocka_unit_test_prestate(test_core_user_version, &eng_sqlite), /* SQLite's numbering */
      BOTH(test_core_readonly_thread),
      BOTH(test_core_try_without_waiting),
      BOTH(test_core_budget_and_snapshot),
      cmocka_unit_test_prestate(test_pg_reconnect, &eng_pg),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
