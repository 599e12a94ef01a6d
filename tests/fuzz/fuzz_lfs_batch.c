/* libFuzzer: git-LFS batch request parser (lfs_batch_parse). Checks the parser's output
 * contract: bounded object count, NUL-terminated bounded oids, `valid` only for real
 * sha256 oids with sizes in 1..HUB_MAX_BLOB_SIZE, a reason for every invalid object, and an
 * error message with no output on failure. */
#include "blob/blob.h"
#include "lfs/lfs.h"
#include "util/error.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  lfs_batch_req *req = (lfs_batch_req *)&req; /* must be overwritten */
  int rc = lfs_batch_parse((const char *)data, size, &req);
  if (rc) {
    if (req != NULL) abort();
    if (rc != HUB_EINVALID && rc != HUB_EUNPROCESSABLE && rc != HUB_ETOOBIG && rc != HUB_ERROR)
      abort();
    if (!*hub_error_msg()) abort();
    return 0;
  }
  if (!req || req->nobjects > HUB_MAX_LFS_BATCH) abort();
  if (req->operation != LFS_OP_UPLOAD && req->operation != LFS_OP_DOWNLOAD) abort();
  if (req->transfers & ~(unsigned)(LFS_XFER_BASIC | LFS_XFER_MULTIPART)) abort();
  if (strnlen(req->ref, sizeof req->ref) >= sizeof req->ref) abort();
  if (strnlen(req->hash_algo, sizeof req->hash_algo) >= sizeof req->hash_algo) abort();
  if (!req->has_ref && req->ref[0]) abort();
  for (size_t i = 0; i < req->nobjects; i++) {
    const lfs_batch_obj *o = &req->objects[i];
    if (strnlen(o->oid, sizeof o->oid) > LFS_MAX_OID_TEXT) abort();
    if (o->valid) {
      if (!blob_oid_valid(o->oid) || o->size < 1 || o->size > HUB_MAX_BLOB_SIZE || o->why) abort();
      unsigned n = lfs_part_count(o->size);
      int64_t c = lfs_part_size(o->size);
      if (n < 1 || n > HUB_MAX_LFS_PARTS || (int64_t)(n - 1) * c >= o->size) abort();
    } else if (!o->why) {
      abort();
    }
  }
  lfs_batch_req_free(req);
  return 0;
}
