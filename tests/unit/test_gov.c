/* gov/: the webhook shapes of discussions and comments (gov_discussion_json). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/discussions.h"
#include "db/events.h"
#include "gov/gov.h"
#include "util/error.h"

static char dir[] = "/tmp/mh-gov-XXXXXX";

static int setup(void **s) {
  if (!mkdtemp(dir)) return -1;
  return db_global_init(dir) || db_events_init() || gov_init();
}

static int teardown(void **s) {
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_discussion_json(void **s) {
  db_account u = {0};
  snprintf(u.name, sizeof u.name, "alice");
  assert_int_equal(db_account_create(&u), 0);
  db_repo repo = {0};
  repo.type = HUB_REPO_DATASET;
  repo.owner_id = u.id;
  snprintf(repo.ns, sizeof repo.ns, "alice");
  snprintf(repo.name, sizeof repo.name, "data");
  assert_int_equal(db_repo_create(&repo), 0);
  gov_set_public_url("https://hub.example");

  assert_int_equal(db_disc_insert(repo.id, 3, "Fix the card", "open", 1, u.id, "main", 1000), 0);
  assert_int_equal(db_disc_insert(repo.id, 3, "again", "open", 0, u.id, "", 1000), HUB_EEXISTS);
  const char *cid = "0123456789abcdef01234567";
  assert_int_equal(db_disc_event_add(repo.id, 3, cid, "comment", u.id, "hello *world*", "[]", 2000),
                   0);

  json_t *d = NULL, *c = NULL;
  assert_int_equal(gov_discussion_json(&repo, 3, cid, &d, &c), 0);
  assert_int_equal(json_integer_value(json_object_get(d, "num")), 3);
  assert_string_equal(json_string_value(json_object_get(d, "title")), "Fix the card");
  assert_string_equal(json_string_value(json_object_get(d, "status")), "open");
  assert_true(json_is_true(json_object_get(d, "isPullRequest")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(d, "author"), "id")),
                      u.uid);
  assert_string_equal(json_string_value(json_object_get(json_object_get(d, "url"), "web")),
                      "https://hub.example/datasets/alice/data/discussions/3");
  assert_string_equal(json_string_value(json_object_get(json_object_get(d, "url"), "api")),
                      "https://hub.example/api/datasets/alice/data/discussions/3");
  assert_string_equal(json_string_value(json_object_get(json_object_get(d, "changes"), "base")),
                      "refs/heads/main");
  assert_int_equal(strlen(json_string_value(json_object_get(d, "id"))), 24);
  assert_string_equal(json_string_value(json_object_get(c, "id")), cid);
  assert_string_equal(json_string_value(json_object_get(c, "content")), "hello *world*");
  assert_false(json_is_true(json_object_get(c, "hidden")));
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(c, "url"), "web")),
      "https://hub.example/datasets/alice/data/discussions/3#0123456789abcdef01234567");
  json_decref(d);
  json_decref(c);

  /* Hidden: no content. The discussion alone when no comment is asked for. */
  assert_int_equal(db_disc_comment_hide(repo.id, 3, cid, u.id, 3000), 0);
  assert_int_equal(gov_discussion_json(&repo, 3, cid, NULL, &c), 0);
  assert_true(json_is_true(json_object_get(c, "hidden")));
  assert_string_equal(json_string_value(json_object_get(c, "content")), "");
  json_decref(c);
  assert_int_equal(gov_discussion_json(&repo, 3, NULL, &d, NULL), 0);
  assert_null(json_object_get(d, "comment"));
  json_decref(d);

  /* Missing discussion or comment. */
  assert_int_equal(gov_discussion_json(&repo, 4, NULL, &d, NULL), HUB_ENOTFOUND);
  assert_null(d);
  assert_int_equal(gov_discussion_json(&repo, 3, "ffffffffffffffffffffffff", &d, &c),
                   HUB_ENOTFOUND);
  assert_null(d);
  assert_null(c);
  int next = 0;
  assert_int_equal(gov_next_num(&repo, &next), 0);
  assert_int_equal(next, 4);
  gov_set_public_url(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_discussion_json),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
