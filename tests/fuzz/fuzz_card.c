/* README front matter split + YAML → JSON (validate-yaml, card metadata). */
#include <jansson.h>
#include <stdint.h>

#include "ml/card.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *y, *b;
  size_t yl, bl;
  if (card_split((const char *)data, size, &y, &yl, &b, &bl)) return 0;
  json_t *j = NULL;
  if (card_yaml_to_json(y ? y : (const char *)data, y ? yl : size, &j) == 0) json_decref(j);
  return 0;
}
