/* The statement layer (db/stmt.h) on both engines: the same cases against SQLite and
 * against a throwaway PostgreSQL cluster this test starts with scripts/pg.sh (skipped, loudly,
 * only when the PostgreSQL binaries are missing). Types, NULLs, blobs, placeholders, the
 * dialect rewrites, migrations, transactions and savepoints, durable commits, two writer
 * threads, and reconnection after the server restarts (503 while it is down). */
#include "unit.h"

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

enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

/* scripts/pg.sh of this checkout: from the current directory, else up from the binary
 * (build/unit/ or build/asan/unit/). */
static char g_script[4096] = "scripts/pg.sh";

static void find_script(void) {
  if (access(g_script, R_OK) == 0) return;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  for (char *slash; (slash = strrchr(exe, '/'));) {
    *slash = 0;
    char path[sizeof g_script];
    if (strlen(exe) + 16 > sizeof path) return;
    snprintf(path, sizeof path, "%.4000s/scripts/pg.sh", exe);
    if (access(path, R_OK) == 0) {
      snprintf(g_script, sizeof g_script, "%s", path);
      return;
    }
  }
}

static int pg_script(const char *verb, char *out, size_t cap) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "sh '%s' %s %s", g_script, verb, g_pg_dir);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  char line[512] = "";
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  int st = pclose(f);
  line[strcspn(line, "\n")] = 0;
  if (out) snprintf(out, cap, "%s", line);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int group_setup(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir)) return -1;
  find_script();
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
      cmocka_unit_test_prestate(test_pg_reconnect, &eng_pg),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
