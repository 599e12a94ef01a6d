/* security/: policy names and the finding message built from an engine report (what a
 * blocked download says). The service and the policy end to end: tests/e2e/scanning.test.mjs. */
#include "unit.h"

#include <jansson.h>

#include "security/internal.h"

static void test_policy_names(void **state) {
  (void)state;
  assert_int_equal(security_policy_parse("warn"), SECURITY_POLICY_WARN);
  assert_int_equal(security_policy_parse("block"), SECURITY_POLICY_BLOCK);
  assert_int_equal(security_policy_parse("block-unscanned"), SECURITY_POLICY_BLOCK_UNSCANNED);
  assert_int_equal(security_policy_parse("Block"), -1);
  assert_int_equal(security_policy_parse(""), -1);
  assert_int_equal(security_policy_parse(NULL), -1);
  assert_string_equal(security_policy_name(SECURITY_POLICY_BLOCK_UNSCANNED), "block-unscanned");
  assert_string_equal(security_policy_name(42), "warn");
}

static void message_of(const char *report, char *out, size_t cap) {
  json_t *r = json_loads(report, 0, NULL);
  assert_non_null(r);
  sec__finding_message(r, out, cap);
  json_decref(r);
}

static void test_finding_message(void **state) {
  (void)state;
  char m[400];
  message_of(
      "{\"level\":\"unsafe\",\"scanners\":{\"pickle\":{\"status\":\"unsafe\",\"imports\":["
      "{\"module\":\"torch._utils\",\"name\":\"_rebuild_tensor_v2\",\"safety\":\"innocuous\"},"
      "{\"module\":\"os\",\"name\":\"system\",\"safety\":\"dangerous\"},"
      "{\"module\":\"builtins\",\"name\":\"eval\",\"safety\":\"dangerous\"}]}}}",
      m, sizeof m);
  assert_string_equal(
      m, "pickle import os.system (dangerous), pickle import builtins.eval (dangerous)");
  message_of("{\"level\":\"unsafe\",\"scanners\":{\"av\":{\"status\":\"unsafe\",\"signature\":"
             "\"Eicar-Test\"},\"secrets\":{\"status\":\"safe\"}}}",
             m, sizeof m);
  assert_string_equal(m, "malware Eicar-Test");
  message_of("{\"level\":\"suspicious\",\"scanners\":{\"header\":{\"status\":\"suspicious\","
             "\"message\":\"duplicate keys\"}}}",
             m, sizeof m);
  assert_string_equal(m, "header: duplicate keys");
  message_of("{\"level\":\"safe\",\"scanners\":{}}", m, sizeof m);
  assert_string_equal(m, "");
  /* a tiny buffer truncates, never overflows */
  char small[8];
  message_of("{\"level\":\"unsafe\",\"scanners\":{\"archive\":{\"status\":\"unsafe\","
             "\"message\":\"path escapes the archive\"}}}",
             small, sizeof small);
  assert_string_equal(small, "archive");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_names),
      cmocka_unit_test(test_finding_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
