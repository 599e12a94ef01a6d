/* libFuzzer: the safetensors and GGUF header validators of scan/detect.h, through a memfd
 * holding the input (they read with pread). Invariants: a report for every input under a
 * .safetensors or .gguf name, with a known status and the right format; under another name
 * a report only for a GGUF magic. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scan/detect.h"

static int memfd = -1;

static void check(json_t *r, const char *format) {
  if (!r) abort();
  const char *st = json_string_value(json_object_get(r, "status"));
  int l = scan_level_parse(st);
  if (l < 0 || l == SCAN_ERROR) abort(); /* a memfd never fails to read */
  if (!json_is_string(json_object_get(r, "message"))) abort();
  if (strcmp(json_string_value(json_object_get(r, "format")), format)) abort();
  json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (memfd < 0 && (memfd = memfd_create("fuzz-header", 0)) < 0) abort();
  if (ftruncate(memfd, 0) || (size && pwrite(memfd, data, size, 0) != (ssize_t)size)) abort();
  check(scan_header(memfd, size, "model.safetensors", NULL), "safetensors");
  check(scan_header(memfd, size, "dir/model.GGUF", NULL), "gguf");
  json_t *r = scan_header(memfd, size, "weights.bin", NULL);
  int magic = size >= 4 && !memcmp(data, "GGUF", 4);
  if (magic != (r != NULL)) abort();
  if (r) check(r, "gguf");
  return 0;
}
