#include "blob/lfs_pointer.h"

#include "blob/blob.h"
#include "util/error.h"
#include "util/limits.h"

#include <inttypes.h>
#include <string.h>

static const char *const versions[] = {
    "version https://git-lfs.github.com/spec/v1\n",
    "version https://hawser.github.com/spec/v1\n",
};

/* Match literal `lit` at *p (end `e`), advancing. */
static int take(const char **p, const char *e, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(e - *p) < n || memcmp(*p, lit, n)) return 0;
  *p += n;
  return 1;
}

int lfs_pointer_parse(const char *buf, size_t len, char out_oid[65], int64_t *out_size) {
  const char *p = buf, *e = buf + len;
  int64_t size = 0;
  if (!buf || len >= HUB_MAX_LFS_POINTER)
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: too long");
  if (!take(&p, e, versions[0]) && !take(&p, e, versions[1]))
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: bad version line");
  if (!take(&p, e, "oid sha256:") || e - p < 65 || p[64] != '\n')
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: bad oid line");
  char oid[65];
  memcpy(oid, p, 64);
  oid[64] = 0;
  if (!blob_oid_valid(oid))
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: oid is not 64 lowercase hex");
  p += 65;
  if (!take(&p, e, "size "))
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: bad size line");
  const char *digits = p;
  while (p < e && *p >= '0' && *p <= '9') {
    int d = *p - '0';
    if (size > (INT64_MAX - d) / 10)
      return hub_error_set(HUB_EINVALID, "not an LFS pointer: size overflows");
    size = size * 10 + d;
    p++;
  }
  if (p == digits || (p - digits > 1 && *digits == '0'))
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: size is not a canonical number");
  if (p >= e || *p != '\n' || p + 1 != e)
    return hub_error_set(HUB_EINVALID, "not an LFS pointer: junk after size");
  memcpy(out_oid, oid, 65);
  *out_size = size;
  return 0;
}

int lfs_pointer_format(hub_buf *out, const char *oid, int64_t size) {
  if (!blob_oid_valid(oid)) return hub_error_set(HUB_EINVALID, "invalid LFS oid");
  if (size < 0) return hub_error_set(HUB_EINVALID, "negative LFS size");
  if (hub_buf_printf(out, "%soid sha256:%s\nsize %" PRId64 "\n", versions[0], oid, size) < 0 ||
      out->failed)
    return hub_error_set(HUB_ERROR, "LFS pointer: buffer full");
  return 0;
}
