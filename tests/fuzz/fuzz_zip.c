/* libFuzzer: the archive scanner (src/scan/zip.c) over a bounded buffer, as a zip, a
 * PyTorch checkpoint and a tar, with small limits so that nesting, member counts and
 * inflation bounds are reached. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const names[] = {"f.zip", "f.pt", "f.tar"};
  scan_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.zip_max_members = 64;
  lim.zip_max_expansion = 16 << 20;
  lim.pickle_max_bytes = 1 << 20;
  lim.nesting_max = 2;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    json_t *rep = NULL;
    if (scan_mem(&lim, data, size, names[i], &rep)) abort(); /* only OOM may fail */
    if (scan_level_parse(json_string_value(json_object_get(rep, "level"))) < 0) abort();
    json_t *a = json_object_get(json_object_get(rep, "scanners"), "archive");
    if (a && !json_is_array(json_object_get(a, "findings"))) abort();
    json_decref(rep);
  }
  return 0;
}
