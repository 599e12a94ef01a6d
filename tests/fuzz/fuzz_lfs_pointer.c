/* libFuzzer: git-lfs pointer parser. An accepted pointer must re-format to the same bytes
 * when it uses the current version URL (the format is canonical). */
#include "blob/lfs_pointer.h"
#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char oid[65];
  int64_t sz = -1;
  if (lfs_pointer_parse((const char *)data, size, oid, &sz) != 0) return 0;
  if (sz < 0 || strlen(oid) != 64) abort();
  hub_buf b = HUB_BUF_INIT;
  if (lfs_pointer_format(&b, oid, sz) != 0) abort();
  static const char legacy[] = "version https://hawser";
  int is_legacy = size > sizeof legacy - 1 && !memcmp(data, legacy, sizeof legacy - 1);
  if (!is_legacy && (b.len != size || memcmp(b.ptr, data, size))) abort();
  hub_buf_dispose(&b);
  return 0;
}
