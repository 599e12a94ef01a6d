/* git-lfs pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
 *
 *   version https://git-lfs.github.com/spec/v1\n
 *   oid sha256:<64 lowercase hex>\n
 *   size <decimal>\n
 *
 * Parsing is strict and bounded: exactly these three lines in this order, LF endings with a
 * final LF, single spaces, size in canonical decimal (no sign, no leading zero unless "0",
 * fits in int64), total under HUB_MAX_LFS_POINTER bytes. The legacy version URL
 * "https://hawser.github.com/spec/v1" is accepted too. Extension lines ("ext-N-...") are
 * not supported and make the text "not a pointer". The output of lfs_pointer_format() is
 * always accepted by lfs_pointer_parse(). */
#ifndef HUB_BLOB_LFS_POINTER_H
#define HUB_BLOB_LFS_POINTER_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Parse `len` bytes at `buf` (need not be NUL-terminated). 0 and out_oid (NUL-terminated)
 * + *out_size on success; HUB_EINVALID if it is not a pointer (message says why). */
int lfs_pointer_parse(const char *buf, size_t len, char out_oid[65], int64_t *out_size);

/* Append the pointer text for (oid, size) to out. HUB_EINVALID for a bad oid or negative
 * size, HUB_ERROR if the buffer failed. */
int lfs_pointer_format(hub_buf *out, const char *oid, int64_t size);

#endif
