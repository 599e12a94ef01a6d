/* libFuzzer: HTTP Range parser. The first 8 input bytes pick the total size; the rest is the
 * header value. A satisfiable range must lie inside [0, total). */
#include "http/range.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  uint64_t t = 0;
  if (size < 8) return 0;
  memcpy(&t, data, 8);
  int64_t total = (int64_t)(t >> 1); /* >= 0 */
  if (t & 1) total %= 1000;          /* small sizes half the time */
  char *hdr = malloc(size - 8 + 1);
  if (!hdr) return 0;
  memcpy(hdr, data + 8, size - 8);
  hdr[size - 8] = 0;
  int64_t s = -1, e = -1;
  int rc = range_parse(hdr, total, &s, &e);
  if (rc == 0 && !(s >= 0 && s <= e && e < total)) abort();
  if (rc != 0 && rc != RANGE_IGNORE && rc != HUB_ERANGE) abort();
  free(hdr);
  return 0;
}
