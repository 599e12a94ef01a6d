/* db/search: cursor encoding, num_parameters ranges, sort names. */
#include "unit.h"

#include "db/search.h"
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cursor_roundtrip),
      cmocka_unit_test(test_cursor_rejects),
      cmocka_unit_test(test_num_params),
      cmocka_unit_test(test_sort_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
