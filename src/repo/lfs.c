/* git-lfs pointer files, through the one strict parser in lfs/pointer.h. */
#include "repo/repo_internal.h"

#include <string.h>

#include "lfs/pointer.h"
#include "util/error.h"

int repo_lfs_pointer_parse(const void *data, size_t len, char out_oid[65], uint64_t *out_size) {
  int64_t size = 0;
  if (len >= REPO_LFS_POINTER_MAX || lfs_pointer_parse(data, len, out_oid, &size)) {
    hub_error_clear(); /* "not a pointer" is an answer here, not an error */
    return 0;
  }
  *out_size = (uint64_t)size;
  return 1;
}

int repo_lfs_pointer_format(char *buf, size_t cap, const char *oid, uint64_t size) {
  hub_buf b = HUB_BUF_INIT;
  int rc = lfs_pointer_format(&b, oid, (int64_t)size);
  if (!rc && b.len + 1 > cap) rc = hub_error_set(HUB_EINVALID, "pointer buffer too small");
  if (!rc) {
    memcpy(buf, b.ptr, b.len + 1);
    rc = (int)b.len;
  }
  hub_buf_dispose(&b);
  return rc;
}
