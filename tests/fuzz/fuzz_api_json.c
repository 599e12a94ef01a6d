/* JSON bodies of the repo endpoints: parse exactly as the handlers do. */
#include <jansson.h>
#include <stdint.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t err;
  json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
  if (!j) return 0;
  if (json_is_object(j)) {
    api_create_body b;
    api_create_body_parse(j, &b);
  }
  json_decref(j);
  return 0;
}
