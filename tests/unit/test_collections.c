/* collections/: the slug's title part, character counts, themes. */
#include "unit.h"

#include "collections/internal.h"

static void test_slugify(void **state) {
  (void)state;
  char out[DB_COLL_TITLE_BYTES];
  coll__slugify("My Cool Stuff!", out, sizeof out);
  assert_string_equal(out, "my-cool-stuff");
  coll__slugify("  ICCV -- 2023  ", out, sizeof out);
  assert_string_equal(out, "iccv-2023");
  coll__slugify("Web <picks>", out, sizeof out);
  assert_string_equal(out, "web-picks");
  coll__slugify("Ünïcödé títle", out, sizeof out);
  assert_string_equal(out, "n-c-d-t-tle");
  coll__slugify("!!!", out, sizeof out);
  assert_string_equal(out, "collection");
  char long_title[400];
  memset(long_title, 'a', sizeof long_title - 1);
  long_title[sizeof long_title - 1] = 0;
  coll__slugify(long_title, out, sizeof out);
  assert_int_equal(strlen(out), 100);
  char tiny[4];
  coll__slugify("abcdef", tiny, sizeof tiny);
  assert_string_equal(tiny, "ab");
}

static void test_chars_and_themes(void **state) {
  (void)state;
  assert_int_equal(coll__chars(""), 0);
  assert_int_equal(coll__chars("abc"), 3);
  assert_int_equal(coll__chars("héllo"), 5);
  assert_int_equal(coll__chars("日本"), 2);
  assert_true(coll__theme_valid("indigo"));
  assert_false(coll__theme_valid("rainbow"));
  assert_false(coll__theme_valid(""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slugify),
      cmocka_unit_test(test_chars_and_themes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
