/* lfs/: batch request parser and the multipart part-size policy. */
#include "unit.h"

#include <stdio.h>

#include "lfs/lfs.h"
#include "util/error.h"
#include "util/limits.h"

#define OID "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

static lfs_batch_req *parse_ok(const char *json) {
  lfs_batch_req *req = NULL;
  int rc = lfs_batch_parse(json, strlen(json), &req);
  if (rc) fail_msg("parse failed (%d: %s): %s", rc, hub_error_msg(), json);
  assert_non_null(req);
  return req;
}

static void parse_fails(const char *json, int want, const char *msg_part) {
  lfs_batch_req *req = (lfs_batch_req *)1;
  int rc = lfs_batch_parse(json, strlen(json), &req);
  if (rc != want) fail_msg("want %d, got %d (%s) for %s", want, rc, hub_error_msg(), json);
  assert_null(req);
  if (msg_part && !strstr(hub_error_msg(), msg_part))
    fail_msg("message '%s' lacks '%s'", hub_error_msg(), msg_part);
}

/* What each client sends (hf-api.md §5.3 table). */
static void test_clients(void **state) {
  (void)state;
  lfs_batch_req *r;
  /* Python */
  r = parse_ok("{\"operation\":\"upload\",\"transfers\":[\"basic\",\"multipart\"],\"objects\":"
               "[{\"oid\":\"" OID "\",\"size\":5}],\"hash_algo\":\"sha256\",\"ref\":{\"name\":"
               "\"main\"}}");
  assert_int_equal(r->operation, LFS_OP_UPLOAD);
  assert_int_equal(r->transfers, LFS_XFER_BASIC | LFS_XFER_MULTIPART);
  assert_true(r->hash_ok);
  assert_true(r->has_ref);
  assert_string_equal(r->ref, "main");
  assert_int_equal(r->nobjects, 1);
  assert_string_equal(r->objects[0].oid, OID);
  assert_int_equal(r->objects[0].size, 5);
  assert_true(r->objects[0].valid);
  lfs_batch_req_free(r);
  /* JS: xet offered, sha_256 */
  r = parse_ok("{\"operation\":\"upload\",\"transfers\":[\"basic\",\"multipart\",\"xet\"],"
               "\"hash_algo\":\"sha_256\",\"objects\":[]}");
  assert_int_equal(r->transfers, LFS_XFER_BASIC | LFS_XFER_MULTIPART);
  assert_true(r->hash_ok);
  assert_false(r->has_ref);
  assert_int_equal(r->nobjects, 0);
  lfs_batch_req_free(r);
  /* git-lfs: no transfers, fully qualified ref, download */
  r = parse_ok("{\"operation\":\"download\",\"objects\":[{\"oid\":\"" OID "\",\"size\":1}],"
               "\"ref\":{\"name\":\"refs/heads/main\"}}");
  assert_int_equal(r->operation, LFS_OP_DOWNLOAD);
  assert_int_equal(r->transfers, LFS_XFER_BASIC);
  assert_string_equal(r->ref, "refs/heads/main");
  lfs_batch_req_free(r);
  /* null ref, null ref.name, null hash_algo, null transfers */
  r = parse_ok("{\"operation\":\"download\",\"objects\":[],\"ref\":null,\"hash_algo\":null,"
               "\"transfers\":null}");
  assert_false(r->has_ref);
  assert_true(r->hash_ok);
  lfs_batch_req_free(r);
  r = parse_ok("{\"operation\":\"download\",\"objects\":[],\"ref\":{\"name\":null}}");
  assert_false(r->has_ref);
  lfs_batch_req_free(r);
  /* only unknown transfers: nothing we implement was offered */
  r = parse_ok("{\"operation\":\"upload\",\"objects\":[],\"transfers\":[\"ssh\"]}");
  assert_int_equal(r->transfers, 0);
  lfs_batch_req_free(r);
}

static void test_hash_algo(void **state) {
  (void)state;
  lfs_batch_req *r = parse_ok("{\"operation\":\"upload\",\"objects\":[],\"hash_algo\":\"md5\"}");
  assert_false(r->hash_ok);
  assert_string_equal(r->hash_algo, "md5");
  lfs_batch_req_free(r);
  r = parse_ok("{\"operation\":\"upload\",\"objects\":[],\"hash_algo\":\"SHA256\"}");
  assert_false(r->hash_ok);
  lfs_batch_req_free(r);
  parse_fails("{\"operation\":\"upload\",\"objects\":[],\"hash_algo\":1}", HUB_EUNPROCESSABLE,
              "hash_algo");
}

/* Semantically bad objects parse, marked invalid with a reason (→ per-object 422). */
static void test_objects(void **state) {
  (void)state;
  lfs_batch_req *r = parse_ok(
      "{\"operation\":\"upload\",\"objects\":["
      "{\"oid\":\"" OID "\",\"size\":0},"
      "{\"oid\":\"" OID "\",\"size\":-1},"
      "{\"oid\":\"" OID "\",\"size\":50000000001},"
      "{\"oid\":\"" OID "\",\"size\":50000000000},"
      "{\"oid\":\"2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824\",\"size\":1},"
      "{\"oid\":\"abc\",\"size\":1},"
      "{\"oid\":\"\",\"size\":1},"
      "{\"oid\":\"" OID "0\",\"size\":1},"
      "{\"oid\":\"" OID "\",\"size\":9,\"extra\":true}]}");
  assert_int_equal(r->nobjects, 9);
  int want_valid[] = {0, 0, 0, 1, 0, 0, 0, 0, 1};
  for (size_t i = 0; i < r->nobjects; i++) {
    if (r->objects[i].valid != want_valid[i])
      fail_msg("object %zu valid=%d", i, r->objects[i].valid);
    if (!want_valid[i]) assert_non_null(r->objects[i].why);
  }
  assert_int_equal(r->objects[1].size, -1);
  assert_string_equal(r->objects[5].oid, "abc");
  lfs_batch_req_free(r);
}

static void test_malformed(void **state) {
  (void)state;
  parse_fails("", HUB_EINVALID, "Invalid JSON");
  parse_fails("{", HUB_EINVALID, "Invalid JSON");
  parse_fails("[]", HUB_EINVALID, "object");
  parse_fails("{\"operation\":\"upload\",\"operation\":\"download\",\"objects\":[]}", HUB_EINVALID,
              NULL);
  parse_fails("{\"objects\":[]}", HUB_EUNPROCESSABLE, "operation");
  parse_fails("{\"operation\":\"delete\",\"objects\":[]}", HUB_EUNPROCESSABLE, "operation");
  parse_fails("{\"operation\":\"upload\"}", HUB_EUNPROCESSABLE, "objects");
  parse_fails("{\"operation\":\"upload\",\"objects\":{}}", HUB_EUNPROCESSABLE, "objects");
  parse_fails("{\"operation\":\"upload\",\"objects\":[1]}", HUB_EUNPROCESSABLE, "objects[0]");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"size\":1}]}", HUB_EUNPROCESSABLE,
              "objects[0].oid");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"oid\":\"" OID "\"}]}", HUB_EUNPROCESSABLE,
              "objects[0].size");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"oid\":\"" OID "\",\"size\":1.5}]}",
              HUB_EUNPROCESSABLE, "size");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"oid\":\"" OID "\",\"size\":\"1\"}]}",
              HUB_EUNPROCESSABLE, "size");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"oid\":\"" OID
              "\",\"size\":99999999999999999999999}]}",
              HUB_EINVALID, NULL);
  parse_fails("{\"operation\":\"upload\",\"objects\":[],\"transfers\":\"basic\"}",
              HUB_EUNPROCESSABLE, "transfers");
  parse_fails("{\"operation\":\"upload\",\"objects\":[],\"transfers\":[1]}", HUB_EUNPROCESSABLE,
              "transfers");
  parse_fails("{\"operation\":\"upload\",\"objects\":[],\"ref\":\"main\"}", HUB_EUNPROCESSABLE,
              "ref");
  parse_fails("{\"operation\":\"upload\",\"objects\":[],\"ref\":{\"name\":1}}", HUB_EUNPROCESSABLE,
              "ref");
  parse_fails("{\"operation\":\"upload\",\"objects\":[{\"oid\":\"a\\u0000b\",\"size\":1}]}",
              HUB_EINVALID, NULL);
  /* an oid too long to echo back */
  char big[400];
  snprintf(big, sizeof big,
           "{\"operation\":\"upload\",\"objects\":[{\"oid\":\"%0*d\",\"size\":1}]}",
           LFS_MAX_OID_TEXT + 1, 0);
  parse_fails(big, HUB_EUNPROCESSABLE, "too long");
  lfs_batch_req *r = NULL;
  assert_int_equal(lfs_batch_parse(NULL, 0, &r), HUB_EINVALID);
  assert_null(r);
}

static void test_limit(void **state) {
  (void)state;
  hub_buf b = HUB_BUF_INIT;
  for (int n = HUB_MAX_LFS_BATCH; n <= HUB_MAX_LFS_BATCH + 1; n++) {
    hub_buf_clear(&b);
    hub_buf_puts(&b, "{\"operation\":\"download\",\"objects\":[");
    for (int i = 0; i < n; i++)
      hub_buf_printf(&b, "%s{\"oid\":\"" OID "\",\"size\":1}", i ? "," : "");
    hub_buf_puts(&b, "]}");
    assert_false(b.failed);
    lfs_batch_req *r = NULL;
    int rc = lfs_batch_parse(b.ptr, b.len, &r);
    if (n == HUB_MAX_LFS_BATCH) {
      assert_int_equal(rc, 0);
      assert_int_equal(r->nobjects, HUB_MAX_LFS_BATCH);
      assert_true(r->objects[n - 1].valid);
      lfs_batch_req_free(r);
    } else {
      assert_int_equal(rc, HUB_ETOOBIG);
      assert_null(r);
    }
  }
  hub_buf_dispose(&b);
}

static void test_part_policy(void **state) {
  (void)state;
  const int64_t MiB = 1024 * 1024;
  assert_int_equal(lfs_part_size(1), 8 * MiB);
  assert_int_equal(lfs_part_count(1), 1);
  assert_int_equal(lfs_part_count(8 * MiB), 1);
  assert_int_equal(lfs_part_count(8 * MiB + 1), 2);
  assert_int_equal(lfs_part_size(12 * MiB), 8 * MiB);
  assert_int_equal(lfs_part_count(12 * MiB), 2);
  const int64_t sizes[] = {1,
                           5 * MiB,
                           8 * MiB,
                           80000 * MiB,
                           80000 * MiB + 1,
                           10LL * 1000 * 1000 * 1000,
                           HUB_MAX_BLOB_SIZE - 1,
                           HUB_MAX_BLOB_SIZE};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int64_t s = sizes[i], c = lfs_part_size(s);
    unsigned n = lfs_part_count(s);
    assert_true(c >= 5 * MiB); /* S3's minimum part */
    assert_int_equal(c % MiB, 0);
    assert_true(n >= 1 && n <= HUB_MAX_LFS_PARTS);
    assert_true((int64_t)(n - 1) * c < s && (int64_t)n * c >= s); /* last part non-empty */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clients), cmocka_unit_test(test_hash_algo),
      cmocka_unit_test(test_objects), cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_limit),   cmocka_unit_test(test_part_policy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
