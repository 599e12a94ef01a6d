/* libFuzzer: the pickle walker (src/scan/pickle.c) over a bounded buffer, as a raw pickle,
 * as a stacked legacy checkpoint (.pt) and as an .npy. The report must always have a
 * valid level and, for a pickle, a status and an imports array. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

static void check(const json_t *rep) {
  if (scan_level_parse(json_string_value(json_object_get(rep, "level"))) < 0) abort();
  json_t *p = json_object_get(json_object_get(rep, "scanners"), "pickle");
  if (p && (scan_level_parse(json_string_value(json_object_get(p, "status"))) < 0 ||
            !json_is_array(json_object_get(p, "imports"))))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {"f.pkl", "f.pt", "f.npy"};
  scan_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.pickle_max_bytes = 1 << 20;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    json_t *rep = NULL;
    if (scan_mem(&lim, data, size, names[i], &rep)) abort(); /* only OOM may fail */
    check(rep);
    json_decref(rep);
  }
  return 0;
}
