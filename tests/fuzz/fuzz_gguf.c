/* libFuzzer: GGUF metadata + tensor-info parser over a bounded buffer. Also parses every
 * input as a prefix of a larger file, and checks the output's shape on success. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ml/gguf.h"
#include "util/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *g = NULL;
  int trunc = 0;
  int rc = gguf_parse(data, size, &g);
  if (rc) {
    if (g) abort();
  } else {
    json_t *t = json_object_get(g, "total");
    if (!json_is_integer(t) || json_integer_value(t) < 0) abort();
    json_t *tmpl = json_object_get(g, "chat_template");
    if (tmpl && (!json_is_string(tmpl) || json_string_length(tmpl) > ML_MAX_CHAT_TEMPLATE)) abort();
    json_decref(g);
    g = NULL;
  }
  /* same bytes, claiming a larger file: the verdict must not change */
  int rc2 = gguf__parse_prefix(data, size, (uint64_t)size + 4096, &g, &trunc);
  if ((rc == 0) != (rc2 == 0)) abort();
  if (rc2 == 0 && trunc) abort();
  json_decref(g);
  return 0;
}
