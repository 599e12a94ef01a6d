/* db/search: cursor encoding, num_parameters ranges, sort names. */
#include "unit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#include "db/db.h"
#include "db/internal.h" /* db_conn: this test edits the SQLite file behind the index */
#include "db/search.h"
#include "index/index.h"
#include "util/error.h"

static void test_cursor_roundtrip(void **state) {
  (void)state;
  db_search_cursor cases[] = {
      {DB_SORT_DOWNLOADS, -1, 0, 123456789012LL, 0, 42},
      {DB_SORT_TRENDING, 1, 0, 0, 1234.5678901234567, 7},
      {DB_SORT_RELEVANCE, -1, 2, 0, 0, 1},
      {DB_SORT_ID, 1, 0, -5, 0, INT64_MAX},
      {DB_SORT_TRENDING, -1, 0, 0, 0.1 + 0.2, 99},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char enc[DB_CURSOR_MAX + 1];
    db_cursor_encode(&cases[i], enc);
    assert_true(strlen(enc) < DB_CURSOR_MAX);
    assert_int_equal(
        strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(enc));
    db_search_cursor back;
    assert_int_equal(db_cursor_decode(enc, &back), 0);
    assert_int_equal(back.sort, cases[i].sort);
    assert_int_equal(back.dir, cases[i].dir);
    assert_int_equal(back.tier, cases[i].tier);
    assert_true(back.ival == cases[i].ival);
    assert_true(back.dval == cases[i].dval); /* exact: keyset equality depends on it */
    assert_true(back.id == cases[i].id);
  }
}

static void test_cursor_rejects(void **state) {
  (void)state;
  db_search_cursor c;
  const char *bad[] = {"",
                       "!!!",
                       "abc",
                       "djE6MDotMTowOjA6MDow" /* id 0 */,
                       "dj",
                       "djE6OTk6LTE6MDowOjA6Mg" /* sort 99 */,
                       "djE6MDoyOjA6MDowOjI" /* dir 2 */};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (db_cursor_decode(bad[i], &c) != HUB_EINVALID) fail_msg("accepted cursor '%s'", bad[i]);
  char longc[400];
  memset(longc, 'A', sizeof longc - 1);
  longc[sizeof longc - 1] = 0;
  assert_int_equal(db_cursor_decode(longc, &c), HUB_EINVALID);
  /* A valid one for comparison. */
  db_search_cursor ok = {DB_SORT_LIKES, -1, 0, 3, 0, 9};
  char enc[DB_CURSOR_MAX + 1];
  db_cursor_encode(&ok, enc);
  assert_int_equal(db_cursor_decode(enc, &c), 0);
  /* Truncations of it never decode to something else silently. */
  for (size_t n = 1; n < strlen(enc); n++) {
    char t[DB_CURSOR_MAX + 1];
    memcpy(t, enc, n);
    t[n] = 0;
    if (db_cursor_decode(t, &c) == 0) assert_true(c.id != 9 || c.ival != 3 || n == strlen(enc));
  }
}

static void test_num_params(void **state) {
  (void)state;
  int64_t mn, mx;
  assert_int_equal(db_num_params_parse("min:1B,max:10B", &mn, &mx), 0);
  assert_true(mn == 1000000000LL && mx == 10000000000LL);
  assert_int_equal(db_num_params_parse("min:300M", &mn, &mx), 0);
  assert_true(mn == 300000000LL && mx == -1);
  assert_int_equal(db_num_params_parse("max:7.5b", &mn, &mx), 0);
  assert_true(mn == -1 && mx == 7500000000LL);
  assert_int_equal(db_num_params_parse("1T", &mn, &mx), 0);
  assert_true(mn == 1000000000000LL && mx == -1);
  assert_int_equal(db_num_params_parse("min:10k, max:2M", &mn, &mx), 0);
  assert_true(mn == 10000 && mx == 2000000);
  assert_int_equal(db_num_params_parse("max:1500", &mn, &mx), 0);
  assert_true(mn == -1 && mx == 1500);
  const char *bad[] = {"",           "min:",   "max:x",   "min:1Q", "min:-1B", "min:10B,max:1B",
                       "min:1.2.3B", "foo:1B", "min:1B,", ",",      "min:1e9", "min:99999999999T"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (db_num_params_parse(bad[i], &mn, &mx) != HUB_EINVALID) fail_msg("accepted '%s'", bad[i]);
}

static void test_sort_names(void **state) {
  (void)state;
  int s;
  assert_int_equal(db_sort_parse("downloads", &s), 0);
  assert_int_equal(s, DB_SORT_DOWNLOADS);
  assert_int_equal(db_sort_parse("trendingScore", &s), 0);
  assert_int_equal(s, DB_SORT_TRENDING);
  assert_int_equal(db_sort_parse("lastModified", &s), 0);
  assert_int_equal(s, DB_SORT_MODIFIED);
  assert_int_equal(db_sort_parse("createdAt", &s), 0);
  assert_int_equal(db_sort_parse("id", &s), 0);
  assert_int_equal(db_sort_parse("likes", &s), 0);
  assert_int_equal(db_sort_parse("mainSize", &s), HUB_EINVALID);
  assert_int_equal(db_sort_parse("DOWNLOADS", &s), HUB_EINVALID);
  assert_int_equal(db_sort_parse(NULL, &s), HUB_EINVALID);
}

/* ---- the in-memory id index gives the SQL plan's results (db/accel.c) ---- */

typedef struct {
  char *s;
  size_t len, cap;
} idlist;

static void append(idlist *l, const char *one) {
  size_t n = strlen(one);
  if (l->len + n + 1 > l->cap) {
    l->cap = (l->cap + n + 1) * 2;
    l->s = realloc(l->s, l->cap);
    assert_non_null(l->s);
  }
  memcpy(l->s + l->len, one, n + 1);
  l->len += n;
}

static int collect(const db_search_row *row, void *payload) {
  char one[64];
  snprintf(one, sizeof one, "%lld,", (long long)row->repo.id);
  append(payload, one);
  return 0;
}

/* Every page of q, following cursors, as "id,id,…|" per page. */
static char *all_pages(db_search_query q, int mode) {
  db_search_accel_mode(mode);
  idlist l = {calloc(1, 1), 0, 1};
  db_search_cursor next;
  for (int page = 0; page < 40; page++) {
    int more = 0;
    assert_int_equal(db_search(&q, collect, &l, &next, &more), 0);
    append(&l, "|");
    if (!more) break;
    q.after = &next;
  }
  db_search_accel_mode(1);
  return l.s;
}

static void compare_modes(const char *what) {
  static const struct {
    const char *term, *tag;
    int sort, dir;
    size_t limit;
  } Q[] = {
      {"llama", NULL, DB_SORT_RELEVANCE, -1, 7},
      {"LLama", NULL, DB_SORT_DOWNLOADS, -1, 9},
      {"llama", NULL, DB_SORT_DOWNLOADS, 1, 9},
      {"llama", "license:apache-2.0", DB_SORT_DOWNLOADS, -1, 3},
      {"7b", NULL, DB_SORT_RELEVANCE, -1, 25},
      {"7B-", "en", DB_SORT_DOWNLOADS, -1, 5},
      {"mistral-7B", NULL, DB_SORT_RELEVANCE, -1, 4},
      {"user1/llama", NULL, DB_SORT_RELEVANCE, -1, 5},
      {"-", NULL, DB_SORT_DOWNLOADS, -1, 50},
  };
  long served = db_search_accel_served();
  for (size_t i = 0; i < sizeof Q / sizeof Q[0]; i++)
    for (int viewer = 0; viewer < 2; viewer++) {
      db_search_query q;
      memset(&q, 0, sizeof q);
      q.type = 0;
      q.search[0] = Q[i].term;
      q.nsearch = 1;
      if (Q[i].tag) q.tags[q.ntags++] = Q[i].tag;
      q.min_params = q.max_params = -1;
      q.sort = Q[i].sort;
      q.dir = Q[i].dir;
      q.limit = Q[i].limit;
      q.viewer_admin = viewer;
      char *sql = all_pages(q, 0), *mem = all_pages(q, 2);
      if (strcmp(sql, mem))
        fail_msg("%s: '%s' sort %d dir %d viewer %d:\nsql %s\nmem %s", what, Q[i].term, Q[i].sort,
                 Q[i].dir, viewer, sql, mem);
      assert_true(strlen(sql) > 2);
      free(sql);
      free(mem);
    }
  assert_true(db_search_accel_served() > served); /* the index did answer some */
}

static void test_accel_matches_sql(void **state) {
  (void)state;
  char dir[] = "/tmp/mh-accel-XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(db_global_init(dir), 0);
  assert_int_equal(index_seed_catalog(3000, 0), 0);
  db_search_accel_reset();
  compare_modes("fresh snapshot");

  /* Changes after the snapshot: downloads, renames into and out of a match, an exact
   * name, a card-only match, a private repo, a new repo. */
  db_count c[] = {{5, 900000}, {77, 500000}, {1500, 700000}};
  assert_int_equal(db_downloads_add(c, 3, db_now_ms() / 86400000), 0);
  db_repo r;
  assert_int_equal(db_repo_by_id(10, &r), 0);
  assert_int_equal(db_repo_move(10, r.owner_id, r.owner_is_org, "user1", "llama"), 0);
  assert_int_equal(db_repo_by_id(11, &r), 0);
  assert_int_equal(db_repo_move(11, r.owner_id, r.owner_is_org, r.ns, "renamed-away"), 0);
  assert_int_equal(db_repo_by_id(12, &r), 0);
  assert_int_equal(db_repo_move(12, r.owner_id, r.owner_is_org, r.ns, "x-LLAMA-7B-y"), 0);
  const char *tags[] = {"license:apache-2.0", "en"};
  db_meta m = {"{}", "[]", "", "",  "A small llama story about mistral 7B.", 0, 0, tags,
               2,    NULL, 0,  NULL};
  assert_int_equal(db_meta_store(13, &m), 0);
  assert_int_equal(db_repo_by_id(14, &r), 0);
  r.is_private = 1;
  assert_int_equal(db_repo_update(&r), 0);
  assert_int_equal(db_tx("BEGIN IMMEDIATE"), 0);
  db_seed_repo_row nr = {0,  "org5", "llama-new", "5eedfffffffffffffffffff1",
                         "", 1,      1,           0,
                         1,  1,      123456,      123456,
                         0,  0,      0,           0,
                         0};
  int64_t nid;
  assert_int_equal(db_seed_repo(&nr, &nid), 0);
  assert_int_equal(db_tx("COMMIT"), 0);
  /* Tags alone (card untouched) after the filter tag's bitmap was cached by the first
   * comparison: llama repos gain and lose license:apache-2.0 (migration 5's triggers make
   * them "changed"; without them the cached bitmap would be stale). */
  assert_int_equal(
      sqlite3_exec(db_conn(),
                   "INSERT OR IGNORE INTO repo_tags(tag, repo_id) SELECT 'license:apache-2.0', id"
                   " FROM repos WHERE type=0 AND lower(name) LIKE '%llama%' AND id NOT IN"
                   " (SELECT repo_id FROM repo_tags WHERE tag='license:apache-2.0')"
                   " ORDER BY downloads DESC LIMIT 2;"
                   "DELETE FROM repo_tags WHERE tag='license:apache-2.0' AND repo_id IN"
                   " (SELECT r.id FROM repos r JOIN repo_tags t ON t.repo_id=r.id AND"
                   " t.tag='license:apache-2.0' WHERE r.type=0 AND lower(r.name) LIKE '%llama%'"
                   " ORDER BY r.downloads DESC LIMIT 2 OFFSET 3);",
                   NULL, NULL, NULL),
      SQLITE_OK);
  compare_modes("changed since the snapshot");

  /* Downloads only (migration 6: repos.dchg): many repos move in the order, then move
   * again, so the walk merges the snapshot with a chained delta version. */
  assert_int_equal(sqlite3_exec(db_conn(),
                                "UPDATE repos SET downloads=(id*7919)%5000 WHERE id%7=3;", NULL,
                                NULL, NULL),
                   SQLITE_OK);
  compare_modes("downloads moved");
  assert_int_equal(sqlite3_exec(db_conn(),
                                "UPDATE repos SET downloads=downloads+id%13 WHERE id%5=1;"
                                "UPDATE repos SET downloads=0 WHERE id%11=0;",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  compare_modes("downloads moved again");

  db_search_accel_reset();
  compare_modes("rebuilt snapshot");
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* A pipeline_tag listing pages exactly like the plain query over the whole catalog, for a
 * common task (walks the sort index), a rare one and an absent one (drive from
 * repo_meta_pipeline). */
static void test_pipeline_listing(void **state) {
  (void)state;
  char dir[] = "/tmp/mh-pipe-XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(db_global_init(dir), 0);
  assert_int_equal(index_seed_catalog(3000, 0), 0);
  /* One repo gets a task of its own. */
  assert_int_equal(sqlite3_exec(db_conn(),
                                "UPDATE repo_meta SET pipeline_tag='rare-task' WHERE repo_id=777;",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  const char *tasks[] = {"text-generation", "rare-task", "no-such-task"};
  for (size_t t = 0; t < 3; t++)
    for (int min = 0; min < 2; min++) {
      db_search_query q;
      memset(&q, 0, sizeof q);
      q.type = 0;
      q.pipeline_tag = tasks[t];
      q.min_params = min ? 1000000000 : -1;
      q.max_params = -1;
      q.sort = DB_SORT_TRENDING;
      q.dir = -1;
      q.limit = 50;
      char *got = all_pages(q, 0);
      idlist want = {calloc(1, 1), 0, 1};
      sqlite3_stmt *st;
      assert_int_equal(sqlite3_prepare_v2(db_conn(),
                                          "SELECT r.id FROM repos r JOIN repo_meta m ON"
                                          " m.repo_id=r.id WHERE r.type=0 AND r.private=0 AND"
                                          " m.pipeline_tag=? AND m.num_params>=?"
                                          " ORDER BY r.trending DESC, r.id DESC",
                                          -1, &st, NULL),
                       SQLITE_OK);
      sqlite3_bind_text(st, 1, tasks[t], -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, min ? 1000000000 : INT64_MIN);
      size_t n = 0;
      char num[32];
      while (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(num, sizeof num, "%lld,", (long long)sqlite3_column_int64(st, 0));
        append(&want, num);
        if (++n % 50 == 0) append(&want, "|");
      }
      sqlite3_finalize(st);
      if (n % 50 || !n) append(&want, "|");
      if (strcmp(got, want.s))
        fail_msg("pipeline %s min %d:\ngot  %s\nwant %s", tasks[t], min, got, want.s);
      assert_true(t == 2 || min || n > 0);
      free(got);
      free(want.s);
    }
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cursor_roundtrip),  cmocka_unit_test(test_cursor_rejects),
      cmocka_unit_test(test_num_params),        cmocka_unit_test(test_sort_names),
      cmocka_unit_test(test_accel_matches_sql), cmocka_unit_test(test_pipeline_listing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
