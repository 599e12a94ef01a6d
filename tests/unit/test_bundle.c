/* bundle/ helpers and the outer durable transaction bundle import publishes in
 * (db_txn_outer_begin: the spine's transactions become savepoints of it). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/internal.h"
#include "db/db.h"
#include "db/events.h"
#include "util/error.h"

static int has(const char *key) {
  char v[16];
  size_t n = 0;
  return db_kv_get(key, v, sizeof v, &n) == 0;
}

static void test_outer_txn(void **st) {
  /* Rolled back: nothing of the outer transaction or its inner ones stays. */
  assert_int_equal(db_txn_outer_begin(), 0);
  assert_int_equal(db_kv_set("o1", "x", 1), 0);
  assert_int_equal(db_txn_begin_durable(), 0);
  assert_int_equal(db_kv_set("i1", "x", 1), 0);
  assert_int_equal(db_txn_commit_durable(), 0); /* a savepoint released, not a COMMIT */
  assert_int_equal(db_in_transaction(), 1);
  assert_int_equal(db_txn_outer_end(0), 0);
  assert_false(has("o1"));
  assert_false(has("i1"));
  /* Committed: the inner one rolled back is gone, the others stay. */
  assert_int_equal(db_txn_outer_begin(), 0);
  assert_int_equal(db_kv_set("o2", "x", 1), 0);
  assert_int_equal(db_txn_begin_durable(), 0);
  assert_int_equal(db_kv_set("gone", "x", 1), 0);
  db_txn_rollback();
  assert_int_equal(db_in_transaction(), 1);
  assert_int_equal(db_txn_begin_durable(), 0);
  assert_int_equal(db_kv_set("i2", "x", 1), 0);
  assert_int_equal(db_txn_commit_durable(), 0);
  assert_int_equal(db_txn_outer_end(1), 0);
  assert_int_equal(db_in_transaction(), 0);
  assert_true(has("o2"));
  assert_true(has("i2"));
  assert_false(has("gone"));
  /* Outside an outer transaction the durable ones are real transactions again. */
  assert_int_equal(db_txn_begin_durable(), 0);
  assert_int_equal(db_kv_set("plain", "x", 1), 0);
  assert_int_equal(db_txn_commit_durable(), 0);
  assert_int_equal(db_in_transaction(), 0);
  assert_true(has("plain"));
}

static void test_helpers(void **st) {
  int t = -1;
  char hex[9];
  const unsigned char b[] = {0x00, 0xab, 0x10, 0xff};
  assert_int_equal(bundle__type_parse("dataset", &t), 0);
  assert_int_equal(t, HUB_REPO_DATASET);
  assert_string_equal(bundle__type_name(HUB_REPO_SPACE), "space");
  assert_int_equal(bundle__type_parse("models", &t), HUB_EINVALID);
  bundle__hex(hex, b, sizeof b);
  assert_string_equal(hex, "00ab10ff");
}

int main(void) {
  char dir[] = "/tmp/mh-bundle-XXXXXX";
  if (!mkdtemp(dir) || db_global_init(dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_outer_txn),
      cmocka_unit_test(test_helpers),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
