/* `modelhub db copy` (db/copy.h) and the PostgreSQL side of the schema versions
 * (db/schema.h), against a throwaway PostgreSQL cluster started with scripts/pg.sh (skipped,
 * loudly, only when the PostgreSQL binaries are missing): a small SQLite database with the
 * shapes the hub has (integer primary keys with gaps, NOCASE text, reals, blobs, NULLs,
 * WITHOUT ROWID tables, foreign keys, an FTS5 table) copied into the same schema made by
 * db_migrate, row by row, with identity sequences moved past the copied ids. */
#include "unit.h"
#include "pgtest.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/copy.h"
#include "db/schema.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_dir[] = "/tmp/mh-dbcopy-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-pg-XXXXXX";
static char g_src[256];
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

/* The source: what conn.c's migrations and the modules' steps look like on SQLite. */
static const char SOURCE[] =
    "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " score REAL, avatar BLOB, note TEXT);"
    "CREATE TABLE account_keys(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL"
    " REFERENCES accounts(id) ON DELETE CASCADE, title TEXT NOT NULL);"
    "CREATE TABLE pairs(a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY(a, b)) WITHOUT ROWID;"
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE aaa_extra(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE VIRTUAL TABLE docs_fts USING fts5(body);"
    "CREATE TABLE schema_modules(module TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "INSERT INTO schema_modules VALUES('copytest', 1);"
    "INSERT INTO accounts VALUES(1, 'alice', 2.5, X'00ff5c00', NULL);"
    "INSERT INTO accounts VALUES(2, 'Bob', NULL, NULL, 'it''s \xc3\xa9t\xc3\xa9 ?');"
    "INSERT INTO accounts VALUES(7, 'carol', -1e300, X'', '');"
    "INSERT INTO account_keys VALUES(1, 1, 'k1'), (2, 7, 'k2'), (3, 7, 'k3');"
    "INSERT INTO pairs VALUES(1, 2), (2, 1), (3, 3);"
    "INSERT INTO kv VALUES('secret', X'0102030405'), ('text', 'hello');"
    "INSERT INTO aaa_extra VALUES('x', 5000000000);"
    "INSERT INTO docs_fts(rowid, body) VALUES(1, 'not copied');";

/* The destination's schema through db_migrate, as `db copy` makes it; aaa_extra comes in
 * a second module, so a first copy can find it missing. The trigger would rewrite every
 * copied note if it ran. */
static const db_migration DEST[] = {
    {"CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     " score REAL, avatar BLOB, note TEXT);"
     "CREATE TABLE account_keys(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL"
     " REFERENCES accounts(id) ON DELETE CASCADE, title TEXT NOT NULL);"
     "CREATE TABLE pairs(a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY(a, b));"
     "CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
     "INSERT INTO kv VALUES('seeded', 'by a migration');",
     NULL, NULL},
    {NULL, NULL,
     "CREATE FUNCTION copytest_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
     " NEW.note := 'trigger ran'; RETURN NEW; END $$;"
     "CREATE TRIGGER accounts_note BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION"
     " copytest_note();"},
};
static const db_migration EXTRA[] = {
    {"CREATE TABLE aaa_extra(k TEXT PRIMARY KEY, v INTEGER NOT NULL);", NULL, NULL},
};

static int group_setup(void **state) {
  (void)state;
  /* Apart: as root, scripts/pg.sh hands its directory to the postgres user. */
  if (!mkdtemp(g_dir) || !mkdtemp(g_pg_dir)) return -1;
  snprintf(g_src, sizeof g_src, "%s/modelhub.db", g_dir);
  sqlite3 *db = NULL;
  char *err = NULL;
  if (sqlite3_open(g_src, &db) != SQLITE_OK || sqlite3_exec(db, SOURCE, NULL, NULL, &err)) {
    fprintf(stderr, "test_db_copy: source: %s\n", err ? err : "open");
    return -1;
  }
  sqlite3_close(db);
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3)
    fprintf(stderr, "\n*** test_db_copy: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the cases are SKIPPED ***\n\n");
  else if (rc != 0) {
    fprintf(stderr, "test_db_copy: scripts/pg.sh start failed (%d)\n", rc);
    return -1;
  }
  g_pg_up = rc == 0;
  if (g_pg_up && db_engine_select(g_pg_url)) return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  db_stmt_thread_end();
  if (g_pg_up) pg_script("stop", NULL, 0);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_dir, g_pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int64_t one_int(const char *sql) {
  db_stmt *st = db_prep_text(sql);
  assert_non_null(st);
  assert_int_equal(db_step(st), DB_ROW);
  int64_t n = db_col_int64(st, 0);
  db_prep_text_done(st);
  return n;
}

static void test_copy(void **state) {
  (void)state;
  if (!g_pg_up) {
    skip();
    return;
  }
  db_copy_stats st;
  assert_int_equal(db_migrate("copytest", DEST, 2), 0);
  /* A source table the destination lacks: refused, nothing of accounts copied. */
  assert_int_equal(db_copy_from_sqlite(g_src, NULL, NULL, &st), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "table aaa_extra is not in the destination"));
  assert_int_equal(one_int("SELECT count(*) FROM accounts"), 0);
  assert_int_equal(db_migrate("copytest-extra", EXTRA, 1), 0);

  assert_int_equal(db_copy_from_sqlite(g_src, NULL, NULL, &st), 0);
  assert_int_equal(st.tables, 5);
  assert_int_equal(st.rows, 1 + 3 + 3 + 2 + 3);
  assert_int_equal(st.skipped, 1); /* docs_fts (its shadow tables are not counted) */
  assert_int_equal(st.triggers, 0);

  assert_int_equal(one_int("SELECT count(*) FROM accounts"), 3);
  assert_int_equal(one_int("SELECT count(*) FROM kv"), 2); /* the seeded row replaced */
  assert_int_equal(one_int("SELECT count(*) FROM kv WHERE key='seeded'"), 0);
  assert_int_equal(one_int("SELECT v FROM aaa_extra WHERE k='x'"), 5000000000);
  assert_int_equal(one_int("SELECT count(*) FROM pairs WHERE (a=2 AND b=1) OR (a=3 AND b=3)"), 2);
  assert_int_equal(one_int("SELECT count(*) FROM account_keys WHERE account_id=7"), 2);
  /* Values by type: blob bytes, NULL vs empty, reals, text, NOCASE. */
  db_stmt *s = db_prep_text("SELECT score, avatar, note FROM accounts WHERE name='ALICE'");
  assert_non_null(s);
  assert_int_equal(db_step(s), DB_ROW);
  assert_true(db_col_double(s, 0) == 2.5);
  assert_int_equal(db_col_bytes(s, 1), 4);
  assert_memory_equal(db_col_blob(s, 1), "\x00\xff\x5c\x00", 4);
  assert_int_equal(db_col_type(s, 2), DB_T_NULL); /* the trigger did not run */
  db_prep_text_done(s);
  s = db_prep_text("SELECT score, avatar, note FROM accounts WHERE id=2");
  assert_int_equal(db_step(s), DB_ROW);
  assert_int_equal(db_col_type(s, 0), DB_T_NULL);
  assert_int_equal(db_col_type(s, 1), DB_T_NULL);
  assert_string_equal(db_col_text(s, 2), "it's \xc3\xa9t\xc3\xa9 ?");
  db_prep_text_done(s);
  s = db_prep_text("SELECT score, avatar IS NULL, length(avatar), note FROM accounts WHERE id=7");
  assert_int_equal(db_step(s), DB_ROW);
  assert_true(db_col_double(s, 0) == -1e300);
  assert_int_equal(db_col_int64(s, 1), 0);
  assert_int_equal(db_col_int64(s, 2), 0);
  assert_string_equal(db_col_text(s, 3), "");
  db_prep_text_done(s);
  s = db_prep_text("SELECT value FROM kv WHERE key='text'");
  assert_int_equal(db_step(s), DB_ROW);
  assert_int_equal(db_col_bytes(s, 0), 5);
  assert_memory_equal(db_col_blob(s, 0), "hello", 5);
  db_prep_text_done(s);
  /* New ids follow the copied ones. */
  assert_int_equal(one_int("INSERT INTO accounts(name) VALUES('dave') RETURNING id"), 8);
  assert_int_equal(one_int("INSERT INTO account_keys(account_id, title) VALUES(8, 'k4')"
                           " RETURNING id"),
                   4);

  /* A destination that holds accounts is not a new one. */
  assert_int_equal(db_copy_from_sqlite(g_src, NULL, NULL, &st), HUB_EEXISTS);
  assert_int_equal(one_int("SELECT count(*) FROM accounts"), 4);
}

static void test_schema_pg(void **state) {
  (void)state;
  if (!g_pg_up) {
    skip();
    return;
  }
  db_schema_state s;
  assert_int_equal(db_schema_record("modelhub test"), 0);
  assert_int_equal(db_schema_read("/nonexistent", &s), 0);
  assert_string_equal(s.last_binary, "modelhub test");
  assert_non_null(strstr(s.last_modules, "\"core\":"));
  int ops = -1, copytest = -1;
  for (size_t i = 0; i < s.n; i++) {
    if (!strcmp(s.v[i].module, "ops")) ops = s.v[i].have;
    if (!strcmp(s.v[i].module, "copytest")) copytest = s.v[i].known;
  }
  assert_int_equal(ops, 1);
  assert_int_equal(copytest, -1); /* a module this binary does not know */
  char msg[512];
  assert_int_equal(db_schema_newer(&s, msg, sizeof msg), 0);
  assert_true(db_schema_pending(&s, msg, sizeof msg) > 0); /* core is not on PostgreSQL yet */
  db_schema_state_dispose(&s);
  db_stmt *st = db_prep_text("UPDATE schema_modules SET version=3 WHERE module='ops'");
  assert_int_equal(db_step_done(st), 0);
  db_prep_text_done(st);
  assert_int_equal(db_schema_read("/nonexistent", &s), 0);
  assert_int_equal(db_schema_newer(&s, msg, sizeof msg), 1);
  assert_non_null(strstr(msg, "module ops at version 3, this binary knows 1"));
  db_schema_state_dispose(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_copy),
      cmocka_unit_test(test_schema_pg),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
