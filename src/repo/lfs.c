/* git-lfs pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md). */
#include "repo/repo_internal.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

#define LFS_VERSION_LINE "version https://git-lfs.github.com/spec/v1\n"

static int is_lower_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int repo_lfs_pointer_parse(const void *data, size_t len, char out_oid[65], uint64_t *out_size) {
  const char *p = data, *end = p + len;
  int have_oid = 0, have_size = 0;
  uint64_t size = 0;

  if (len >= REPO_LFS_POINTER_MAX || len < sizeof LFS_VERSION_LINE - 1) return 0;
  if (memcmp(p, LFS_VERSION_LINE, sizeof LFS_VERSION_LINE - 1)) return 0;
  p += sizeof LFS_VERSION_LINE - 1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *sp;
    if (!nl) return 0; /* every line ends with \n */
    sp = memchr(p, ' ', (size_t)(nl - p));
    if (!sp || sp == p) return 0;
    if ((size_t)(sp - p) == 3 && !memcmp(p, "oid", 3)) {
      const char *v = sp + 1;
      if (have_oid || nl - v != 7 + 64 || memcmp(v, "sha256:", 7) || !is_lower_hex(v + 7, 64))
        return 0;
      memcpy(out_oid, v + 7, 64);
      out_oid[64] = 0;
      have_oid = 1;
    } else if ((size_t)(sp - p) == 4 && !memcmp(p, "size", 4)) {
      const char *v = sp + 1;
      if (have_size || v == nl || nl - v > 19) return 0;
      for (size = 0; v < nl; v++) {
        if (*v < '0' || *v > '9') return 0;
        size = size * 10 + (uint64_t)(*v - '0');
      }
      have_size = 1;
    } else {
      const char *k;
      for (k = p; k < sp; k++) /* other keys: [a-z0-9.-] (e.g. ext-0-foo) */
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '.' || *k == '-'))
          return 0;
    }
    p = nl + 1;
  }
  if (!have_oid || !have_size) return 0;
  *out_size = size;
  return 1;
}

int repo_lfs_pointer_format(char *buf, size_t cap, const char *oid, uint64_t size) {
  int n;
  if (!oid || strlen(oid) != 64 || !is_lower_hex(oid, 64))
    return hub_error_set(HUB_EINVALID, "Invalid LFS oid '%.80s'", oid ? oid : "");
  n = snprintf(buf, cap, LFS_VERSION_LINE "oid sha256:%s\nsize %llu\n", oid,
               (unsigned long long)size);
  if (n < 0 || (size_t)n >= cap) return hub_error_set(HUB_ERROR, "LFS pointer buffer too small");
  return n;
}
