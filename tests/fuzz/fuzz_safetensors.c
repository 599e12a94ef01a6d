/* libFuzzer: safetensors first 8 bytes + JSON header. Invariants on success: the total is
 * non-negative and equals the sum of the per-dtype counts; a successful parse of the header
 * alone agrees with the whole-file parse. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "ml/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *p = NULL;
  int64_t total = -1, sum = 0;
  uint64_t n = 0;
  int rc = safetensors_parse_file(data, size, &p, &total);
  if (rc) {
    if (p || total != 0) abort();
    return 0;
  }
  const char *k;
  json_t *v;
  json_object_foreach(p, k, v) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) abort();
    sum += (int64_t)json_integer_value(v);
  }
  if (total < 0 || sum != total) abort();
  if (safetensors_header_len(data, size, &n) || n > size - 8) abort();
  json_t *p2 = NULL;
  int64_t t2 = 0;
  if (safetensors_parse_header((const char *)data + 8, (size_t)n, size, &p2, &t2) || t2 != total)
    abort();
  /* merging a model with itself doubles every count (or reports overflow) */
  if (safetensors_params_merge(p2, &t2, p, total) == 0 && t2 != 2 * total) abort();
  json_decref(p2);
  json_decref(p);
  return 0;
}
