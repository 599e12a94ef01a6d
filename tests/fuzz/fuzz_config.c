/* libFuzzer: config.json → config subset + transformersInfo inference. On success the
 * subset is an object and transformersInfo, when present, has a string auto_model. The
 * input is also tried as an architecture class name. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ml/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *cfg = NULL, *ti = NULL;
  unsigned hints = size ? data[0] & 7 : 0;
  if (config_parse((const char *)data, size, hints, &cfg, &ti) == 0) {
    if (!json_is_object(cfg)) abort();
    if (ti && !json_is_string(json_object_get(ti, "auto_model"))) abort();
    json_t *a = json_object_get(cfg, "architectures");
    if (a && (!json_is_array(a) || json_array_size(a) > CONFIG_MAX_ARCHITECTURES)) abort();
  } else if (cfg || ti) {
    abort();
  }
  json_decref(cfg);
  json_decref(ti);
  if (size < 512) {
    char name[512];
    memcpy(name, data, size);
    name[size] = 0;
    const char *am, *pt;
    if (config_auto_model(name, size > 8 ? name + size - 8 : NULL, size & 1, &am, &pt) && !am)
      abort();
  }
  return 0;
}
