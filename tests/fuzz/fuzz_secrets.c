/* libFuzzer: the secrets scanner of scan/detect.h over a memfd holding the input, as a
 * README and as a .env file (unquoted values). Invariants: binary input (a NUL in the first
 * 8000 bytes) is skipped, anything else gets a report with a known status; findings are
 * bounded, on existing lines, and their messages are the rule's fixed text (plus at most a
 * short name), never longer. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scan/detect.h"

static int memfd = -1;

static void check(json_t *r, const uint8_t *data, size_t size) {
  size_t probe = size < 8000 ? size : 8000;
  int binary = probe && memchr(data, 0, probe) != NULL;
  if (binary != (r == NULL)) abort();
  if (!r) return;
  int l = scan_level_parse(json_string_value(json_object_get(r, "status")));
  if (l < 0 || l == SCAN_ERROR) abort();
  uint64_t lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += data[i] == '\n';
  json_t *fs = json_object_get(r, "findings"), *f;
  if (!json_is_array(fs) || json_array_size(fs) > 100) abort();
  size_t i;
  json_array_foreach(fs, i, f) {
    json_int_t line = json_integer_value(json_object_get(f, "line"));
    if (line < 1 || (uint64_t)line > lines) abort();
    const char *m = json_string_value(json_object_get(f, "message"));
    if (!m || strlen(m) >= 200 || !json_is_string(json_object_get(f, "rule"))) abort();
  }
  json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (memfd < 0 && (memfd = memfd_create("fuzz-secrets", 0)) < 0) abort();
  if (ftruncate(memfd, 0) || (size && pwrite(memfd, data, size, 0) != (ssize_t)size)) abort();
  check(scan_secrets(memfd, size, "README.md", NULL), data, size);
  check(scan_secrets(memfd, size, "conf/.env", NULL), data, size);
  return 0;
}
