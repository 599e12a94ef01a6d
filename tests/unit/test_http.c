/* Router (raw path split + pattern match), error mapping, limits. */
#include <errno.h>
#include <string.h>

#include "unit.h"

#include "http/errors.h"
#include "http/http.h"
#include "http/internal.h"
#include "http/router.h"
#include "util/error.h"
#include "util/limits.h"

static void split(const char *path, char **segs, size_t *n, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", path);
  assert_int_equal(router_split(buf, segs, HUB_MAX_URL_SEGMENTS, n), 0);
}

static void test_split_keeps_encoded_slash(void **s) {
  char buf[256], *segs[HUB_MAX_URL_SEGMENTS];
  size_t n;
  split("/ns/name/resolve/refs%2Fpr%2F1/a%2Fb/c.txt", segs, &n, buf, sizeof buf);
  assert_int_equal(n, 6);
  assert_string_equal(segs[3], "refs%2Fpr%2F1");
  assert_string_equal(segs[4], "a%2Fb");
  split("/", segs, &n, buf, sizeof buf);
  assert_int_equal(n, 0);
  split("/a//b/", segs, &n, buf, sizeof buf);
  assert_int_equal(n, 4);
  assert_string_equal(segs[1], "");
  assert_string_equal(segs[3], "");
  snprintf(buf, sizeof buf, "no-slash");
  assert_int_equal(router_split(buf, segs, HUB_MAX_URL_SEGMENTS, &n), -1);
}

static void test_split_too_many_segments(void **s) {
  char buf[1024] = "", *segs[HUB_MAX_URL_SEGMENTS];
  for (int i = 0; i < HUB_MAX_URL_SEGMENTS + 1; i++)
    strcat(buf, "/x");
  size_t n;
  assert_int_equal(router_split(buf, segs, HUB_MAX_URL_SEGMENTS, &n), -1);
}

static void test_match_api_type_repo(void **s) {
  char buf[256], *segs[HUB_MAX_URL_SEGMENTS];
  size_t n;
  router_match_t m;
  split("/api/datasets/acme/data/revision/main", segs, &n, buf, sizeof buf);
  assert_true(router_match("/api/{type}/{repo}/revision/{*}", segs, n, &m));
  assert_int_equal(m.repo_type, HUB_REPO_DATASET);
  assert_true(m.has_repo);
  assert_string_equal(segs[m.repo_seg], "acme");
  assert_int_equal(m.rest, 5);
  assert_false(router_match("/api/{type}/{repo}", segs, n, &m));
  split("/api/buckets/acme/data", segs, &n, buf, sizeof buf);
  assert_false(router_match("/api/{type}/{repo}", segs, n, &m));
}

static void test_match_prefix_and_dot_git(void **s) {
  char buf[256], *segs[HUB_MAX_URL_SEGMENTS];
  size_t n;
  router_match_t m;
  split("/spaces/ns/app.git/info/refs", segs, &n, buf, sizeof buf);
  assert_true(router_match("{prefix}/{repo}/info/refs", segs, n, &m));
  assert_int_equal(m.repo_type, HUB_REPO_SPACE);
  assert_true(m.dot_git);
  split("/ns/model/resolve/main/config.json", segs, &n, buf, sizeof buf);
  assert_true(router_match("{prefix}/{repo}/resolve/{*}", segs, n, &m));
  assert_int_equal(m.repo_type, HUB_REPO_MODEL);
  assert_false(m.dot_git);
  assert_int_equal(m.repo_seg, 0);
  /* empty namespace never matches a repo */
  split("//model/resolve/main/x", segs, &n, buf, sizeof buf);
  assert_false(router_match("{prefix}/{repo}/resolve/{*}", segs, n, &m));
}

static void test_match_captures_and_literals(void **s) {
  char buf[256], *segs[HUB_MAX_URL_SEGMENTS];
  size_t n;
  router_match_t m;
  split("/lfs-put/abc/def/12", segs, &n, buf, sizeof buf);
  assert_true(router_match("/lfs-put/{uid}/{oid}/{size}", segs, n, &m));
  assert_int_equal(m.ncap, 3);
  assert_string_equal(segs[m.cap[2]], "12");
  assert_false(router_match("/lfs-put/{uid}/{oid}", segs, n, &m));
  assert_false(router_match("/lfs-get/{uid}/{oid}/{size}", segs, n, &m));
}

static void test_pct_decode(void **s) {
  char a[] = "refs%2Fpr%2F1", b[] = "a+b%20c", c[] = "bad%2", d[] = "nul%00x", e[] = "x%zz";
  assert_int_equal(http_pct_decode(a, 0), 0);
  assert_string_equal(a, "refs/pr/1");
  assert_int_equal(http_pct_decode(b, 0), 0);
  assert_string_equal(b, "a+b c"); /* '+' is not a space in paths */
  char b2[] = "a+b%20c";
  assert_int_equal(http_pct_decode(b2, 1), 0);
  assert_string_equal(b2, "a b c");
  assert_int_equal(http_pct_decode(c, 0), -1);
  assert_int_equal(http_pct_decode(d, 0), -1);
  assert_int_equal(http_pct_decode(e, 0), -1);
}

static void test_error_mapping(void **s) {
  http_error_map m = http_error_lookup(HUB_EREPO, 0);
  assert_int_equal(m.status, 404);
  assert_string_equal(m.error_code, "RepoNotFound");
  assert_string_equal(http_error_lookup(HUB_EREVISION, 0).error_code, "RevisionNotFound");
  assert_string_equal(http_error_lookup(HUB_EENTRY, 0).error_code, "EntryNotFound");
  assert_int_equal(http_error_lookup(HUB_EGATED, 1).status, 401);
  assert_int_equal(http_error_lookup(HUB_EGATED, 0).status, 403);
  assert_string_equal(http_error_lookup(HUB_EGATED, 0).error_code, "GatedRepo");
  assert_int_equal(http_error_lookup(HUB_EAUTH, 1).status, 401);
  assert_string_equal(http_error_lookup(HUB_EAUTH, 1).default_msg,
                      "Invalid credentials in Authorization header");
  assert_int_equal(http_error_lookup(HUB_EFORBIDDEN, 0).status, 403);
  assert_int_equal(http_error_lookup(HUB_EEXISTS, 0).status, 409);
  assert_int_equal(http_error_lookup(HUB_ECONFLICT, 0).status, 412);
  assert_int_equal(http_error_lookup(HUB_ETOOBIG, 0).status, 413);
  assert_int_equal(http_error_lookup(HUB_ERANGE, 0).status, 416);
  assert_int_equal(http_error_lookup(HUB_EUNSUPPORTED, 0).status, 501);
  assert_int_equal(http_error_lookup(HUB_ERROR, 0).status, 500);
  assert_int_equal(http_error_lookup(-999, 0).status, 500);
}

static void test_error_message_thread_local(void **s) {
  assert_int_equal(hub_error_set(HUB_EINVALID, "bad %s", "thing"), HUB_EINVALID);
  assert_string_equal(hub_error_msg(), "bad thing");
  assert_int_equal(hub_error_code(), HUB_EINVALID);
  hub_error_clear();
  assert_string_equal(hub_error_msg(), "");
}

/* A full disk is reported as whatever text the failing layer had (libgit2, SQLite, the
 * blob store): hub_error_set recognises it, and it maps to 507. */
static void test_error_disk_full(void **s) {
  assert_int_equal(hub_error_set(HUB_ERROR, "write blob: %s", strerror(ENOSPC)), HUB_ENOSPC);
  assert_int_equal(hub_error_code(), HUB_ENOSPC);
  assert_int_equal(hub_error_set(HUB_ERROR, "sql step: database or disk is full"), HUB_ENOSPC);
  assert_int_equal(hub_error_set(HUB_ERROR, "x: %s", strerror(EDQUOT)), HUB_ENOSPC);
  assert_int_equal(hub_error_set(HUB_ERROR, "x: %s", strerror(EIO)), HUB_ERROR);
  /* Only internal failures are reinterpreted. */
  assert_int_equal(hub_error_set(HUB_EINVALID, "No space left on device"), HUB_EINVALID);
  http_error_map m = http_error_lookup(HUB_ENOSPC, 0);
  assert_int_equal(m.status, 507);
  assert_string_equal(m.error_code, "InsufficientStorage");
  assert_int_equal(http_error_lookup(HUB_EUNAVAILABLE, 0).status, 503);
  hub_error_clear();
}

static void test_limits_are_sane(void **s) {
  /* The buffered-body limits must fit the connection pool and each other. */
  assert_true(HUB_MAX_JSON_BODY < HUB_MAX_COMMIT_BODY);
  assert_true(HUB_MAX_NAME == 96); /* the Hub clients' own rule */
  assert_true(HUB_MAX_URL < HUB_CONN_MEMORY);
  hub_buf b;
  hub_buf_init(&b, 8);
  assert_int_equal(hub_buf_puts(&b, "12345678"), 0);
  assert_int_equal(hub_buf_putc(&b, '9'), -1);
  assert_true(b.failed);
  assert_int_equal(hub_buf_puts(&b, ""), -1); /* sticky */
  hub_buf_dispose(&b);
}

static int g_order[4], g_norder;
static void record(void *arg) {
  g_order[g_norder++] = (int)(intptr_t)arg;
}

static void test_arena_alignment_growth_and_cleanups(void **s) {
  hub_req *r = calloc(1, sizeof *r);
  assert_non_null(r);
  size_t sizes[] = {1, 7, 100, HUB_ARENA_INLINE, 3, HUB_ARENA_BLOCK * 3, 17, 0};
  for (int round = 0; round < 50; round++)
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      unsigned char *p = http_alloc(r, sizes[i]);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
      memset(p, 0xab, sizes[i]); /* ASan: every byte asked for is ours */
    }
  char *d = http_strdup(r, "models/ns/name");
  assert_string_equal(d, "models/ns/name");
  g_norder = 0;
  http_cleanup_add(r, record, (void *)1);
  http_cleanup_add(r, record, (void *)2);
  http_cleanup_add(r, record, (void *)3);
  http__req_free(r); /* LeakSanitizer checks that every block went */
  assert_int_equal(g_norder, 3);
  assert_int_equal(g_order[0], 3); /* newest first */
  assert_int_equal(g_order[2], 1);
}

static _Atomic int g_jobs_done;
static void job(void *arg) {
  (void)arg;
  g_jobs_done++;
}

static void test_workers_run_every_job(void **s) {
  g_jobs_done = 0;
  for (int i = 0; i < 500; i++)
    assert_int_equal(http__worker_submit(job, NULL), 0);
  assert_int_equal(http__workers_drain(10000), 0);
  assert_int_equal(g_jobs_done, 500);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_keeps_encoded_slash),
      cmocka_unit_test(test_split_too_many_segments),
      cmocka_unit_test(test_match_api_type_repo),
      cmocka_unit_test(test_match_prefix_and_dot_git),
      cmocka_unit_test(test_match_captures_and_literals),
      cmocka_unit_test(test_pct_decode),
      cmocka_unit_test(test_error_mapping),
      cmocka_unit_test(test_error_message_thread_local),
      cmocka_unit_test(test_error_disk_full),
      cmocka_unit_test(test_limits_are_sane),
      cmocka_unit_test(test_arena_alignment_growth_and_cleanups),
      cmocka_unit_test(test_workers_run_every_job),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
