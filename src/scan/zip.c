/* Archive scanner (docs/scanning.md "Archives"): zip (stored + deflate, zip64) and tar.
 * Lists members from the central directory (zip) or the headers (tar), checks paths,
 * member count, declared expansion and ratio, encryption, and hands the members that can
 * hold pickles (scan_member decides by name and magic) to the pickle walker through a
 * bounded stream: a stored member is read in place, a deflated one is inflated with its
 * output bounded by the declared size and the ratio limit. Tensor data is never read. */
#include "scan/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t u16(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t u32(const unsigned char *p) {
  return u16(p) | (uint32_t)u16(p + 2) << 16;
}
static uint64_t u64(const unsigned char *p) {
  return u32(p) | (uint64_t)u32(p + 4) << 32;
}

/* "path escapes the archive": absolute, a drive letter, or a ".." component. */
static int path_escapes(const char *n) {
  if (n[0] == '/' || n[0] == '\\') return 1;
  if (((n[0] | 0x20) >= 'a' && (n[0] | 0x20) <= 'z') && n[1] == ':') return 1;
  for (const char *p = n; *p;) {
    size_t k = strcspn(p, "/\\");
    if (k == 2 && p[0] == '.' && p[1] == '.') return 1;
    p += k;
    if (*p) p++;
  }
  return 0;
}

static void join(char *out, size_t cap, const char *prefix, const char *name) {
  if (prefix && *prefix)
    snprintf(out, cap, "%s/%s", prefix, name);
  else
    snprintf(out, cap, "%s", name);
}

/* One more member across the file's archives: 0, or -1 past the limit (reported once). */
static int count_member(scan_ctx *c, const char *where) {
  if (++c->members_total <= c->lim.zip_max_members) return 0;
  if (!c->members_reported)
    scan_ctx_archive(c, SCAN_SUSPICIOUS, where,
                     "more members than the limit (%llu), nested archives included",
                     (unsigned long long)c->lim.zip_max_members);
  c->members_reported = 1;
  return -1;
}

/* Bytes member streams may still produce in this scan; 0 when used up (reported once). */
static uint64_t budget(scan_ctx *c, const char *member) {
  if (c->stream_used < c->lim.pickle_max_bytes) return c->lim.pickle_max_bytes - c->stream_used;
  if (!c->budget_reported)
    scan_ctx_archive(c, SCAN_CAUTION, member, "read budget of %llu bytes used up: not scanned",
                     (unsigned long long)c->lim.pickle_max_bytes);
  c->budget_reported = 1;
  return 0;
}

/* Hand a member to scan_member. A deflated member that must be read at random (a nested
 * archive) is inflated into memory first, bounded. */
static void member(scan_ctx *c, const scan_src *src, const char *full, uint64_t off, uint64_t csize,
                   uint64_t usize, int method, int depth) {
  scan_rd r;
  scan_src sub = {src->fd, src->mem, src->base + off, method == 0 ? csize : 0};
  uint64_t left = budget(c, full);
  if (!left) return;
  if (scan_rd_open(&r, src, off, csize, method, usize, c->lim.zip_max_ratio, left)) {
    c->oom = 1;
    return;
  }
  scan_member(c, full, &r, method == 0 ? &sub : NULL, depth + 1);
  c->stream_used += r.produced;
  if (r.bomb == 1)
    scan_ctx_archive(c, SCAN_UNSAFE, full, "member inflates beyond its declared size");
  else if (r.bomb == 2)
    scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "member inflates beyond the ratio limit (%u)",
                     c->lim.zip_max_ratio);
  else if (r.bomb == 3)
    scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "corrupt deflate data");
  scan_rd_dispose(&r);
}

static int find_eocd(scan_ctx *c, const scan_src *src, uint64_t *cd_off, uint64_t *cd_size,
                     uint64_t *count) {
  uint64_t tail = src->size < 65557 ? src->size : 65557;
  if (tail < 22) return -1;
  unsigned char *t = malloc(tail);
  if (!t) {
    c->oom = 1;
    return -1;
  }
  int rc = -1;
  if (scan_src_read(src, src->size - tail, t, tail)) goto out;
  for (uint64_t i = tail - 22 + 1; i-- > 0;) {
    if (u32(t + i) != 0x06054b50) continue;
    if (i + 22 + u16(t + i + 20) > tail) continue; /* comment must fit */
    *count = u16(t + i + 10);
    *cd_size = u32(t + i + 12);
    *cd_off = u32(t + i + 16);
    uint64_t eocd = src->size - tail + i;
    if (eocd >= 20 && (*count == 0xffff || *cd_size == 0xffffffff || *cd_off == 0xffffffff)) {
      unsigned char loc[20], e64[56];
      if (scan_src_read(src, eocd - 20, loc, 20) == 0 && u32(loc) == 0x07064b50 &&
          scan_src_read(src, u64(loc + 8), e64, 56) == 0 && u32(e64) == 0x06064b50) {
        *count = u64(e64 + 32);
        *cd_size = u64(e64 + 40);
        *cd_off = u64(e64 + 48);
      }
    }
    rc = (*cd_off <= src->size && *cd_size <= src->size - *cd_off) ? 0 : -2;
    break;
  }
out:
  free(t);
  return rc;
}

/* Members worth opening: names the dispatcher scans. */
static int wanted(const char *name) {
  const char *dot = strrchr(name, '.');
  const char *slash = strrchr(name, '/');
  if (!dot || (slash && dot < slash)) return 0;
  static const char *const EXT[] = {".pkl", ".pickle", ".joblib", ".dat", ".bin", ".pt",
                                    ".pth", ".ckpt",   ".npy",    ".npz", ".zip", ".tar"};
  for (size_t i = 0; i < sizeof EXT / sizeof *EXT; i++)
    if (strcasecmp(dot, EXT[i]) == 0) return 1;
  return 0;
}

void scan_zip(scan_ctx *c, const scan_src *src, const char *prefix, int depth) {
  c->archive_applied = 1;
  const char *where = prefix && *prefix ? prefix : "";
  uint64_t cd_off = 0, cd_size = 0, count = 0;
  int e = find_eocd(c, src, &cd_off, &cd_size, &count);
  if (e) {
    if (!c->oom) scan_ctx_archive(c, SCAN_SUSPICIOUS, where, "no valid zip central directory");
    return;
  }
  if (count > c->lim.zip_max_members && !c->members_reported++)
    scan_ctx_archive(c, SCAN_SUSPICIOUS, where, "%llu members, more than the limit (%llu)",
                     (unsigned long long)count, (unsigned long long)c->lim.zip_max_members);
  scan_rd cd;
  if (scan_rd_open(&cd, src, cd_off, cd_size, 0, 0, 0, 0)) {
    c->oom = 1;
    return;
  }
  uint64_t total = 0;
  int expansion_reported = 0;
  char *name = malloc(65536), *full = malloc(65536 + 1024);
  unsigned char *x = malloc(65536);
  if (!name || !full || !x) {
    c->oom = 1;
    goto out;
  }
  for (uint64_t i = 0; i < count; i++) {
    if (count_member(c, where)) break;
    unsigned char h[46];
    if (scan_rd_read(&cd, h, 46) || u32(h) != 0x02014b50) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, where, "truncated central directory");
      break;
    }
    uint32_t flags = u16(h + 8), method = u16(h + 10), nlen = u16(h + 28), xlen = u16(h + 30),
             clen = u16(h + 32);
    uint64_t csize = u32(h + 20), usize = u32(h + 24), lho = u32(h + 42);
    if (scan_rd_read(&cd, name, nlen) || scan_rd_read(&cd, x, xlen) || scan_rd_skip(&cd, clen)) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, where, "truncated central directory");
      break;
    }
    name[nlen] = '\0';
    for (uint32_t k = 0; k < nlen; k++)
      if (!name[k]) name[k] = '?';
    scan_utf8_fix(name);
    /* zip64 extra: the 0xffffffff fields, in order usize, csize, offset */
    for (uint32_t p = 0; p + 4 <= xlen;) {
      uint32_t id = u16(x + p), sz = u16(x + p + 2);
      if (p + 4 + sz > xlen) break;
      if (id == 1) {
        uint32_t q = p + 4, end = p + 4 + sz;
        if (usize == 0xffffffff && q + 8 <= end) usize = u64(x + q), q += 8;
        if (csize == 0xffffffff && q + 8 <= end) csize = u64(x + q), q += 8;
        if (lho == 0xffffffff && q + 8 <= end) lho = u64(x + q), q += 8;
      }
      p += 4 + sz;
    }
    join(full, 65536 + 1024, prefix, name);
    if (path_escapes(name)) scan_ctx_archive(c, SCAN_UNSAFE, full, "path escapes the archive");
    if (flags & 0x41) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "encrypted member (cannot be scanned)");
      continue;
    }
    total = usize > UINT64_MAX - total ? UINT64_MAX : total + usize;
    if (total > c->lim.zip_max_expansion && !expansion_reported) {
      expansion_reported = 1;
      scan_ctx_archive(c, SCAN_UNSAFE, full, "archive expands to more than %llu bytes",
                       (unsigned long long)c->lim.zip_max_expansion);
    }
    if (method == 8 && usize >= SCAN_INFLATE_RATIO_FLOOR &&
        (csize == 0 || usize / csize > c->lim.zip_max_ratio))
      scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "compression ratio over the limit (%u)",
                       c->lim.zip_max_ratio);
    if (!wanted(name)) continue;
    if (method != 0 && method != 8) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "compression method %u not supported: not scanned",
                       method);
      continue;
    }
    unsigned char lh[30];
    if (lho > src->size || scan_src_read(src, lho, lh, 30) || u32(lh) != 0x04034b50) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "bad local header");
      continue;
    }
    uint64_t data = lho + 30 + u16(lh + 26) + u16(lh + 28);
    if (data > src->size || csize > src->size - data) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, full, "member data beyond the end of the archive");
      continue;
    }
    member(c, src, full, data, csize, usize, (int)method, depth);
    if (c->oom) break;
  }
out:
  free(name);
  free(full);
  free(x);
  scan_rd_dispose(&cd);
}

static uint64_t tar_size(const unsigned char *f) {
  if (f[0] & 0x80) { /* base-256 */
    uint64_t v = 0;
    for (int i = 1; i < 12; i++)
      v = v > (UINT64_MAX >> 8) ? UINT64_MAX : v << 8 | f[i];
    return v;
  }
  uint64_t v = 0;
  for (int i = 0; i < 12 && f[i] >= '0' && f[i] <= '7'; i++)
    v = v > (UINT64_MAX >> 3) ? UINT64_MAX : v << 3 | (uint64_t)(f[i] - '0');
  return v;
}

/* Legacy torch.save tar: members "pickle", "storages", "tensors", "sys_info" hold pickles
 * (the last three followed by raw data, which the stacked walk stops at). */
static int legacy_torch(const char *name) {
  const char *b = strrchr(name, '/');
  b = b ? b + 1 : name;
  return !strcmp(b, "pickle") || !strcmp(b, "storages") || !strcmp(b, "tensors") ||
         !strcmp(b, "sys_info");
}

void scan_tar(scan_ctx *c, const scan_src *src, const char *prefix, int depth) {
  c->archive_applied = 1;
  char name[4096], full[4096 + 1024];
  int longname = 0;
  uint64_t off = 0, total = 0;
  while (off + 512 <= src->size) {
    unsigned char h[512];
    if (scan_src_read(src, off, h, 512)) break;
    int zero = 1;
    for (int i = 0; i < 512 && zero; i++)
      zero = !h[i];
    if (zero) break;
    uint64_t size = tar_size(h + 124), data = off + 512;
    if (size > src->size - data) {
      scan_ctx_archive(c, SCAN_SUSPICIOUS, prefix, "tar member beyond the end of the file");
      break;
    }
    uint64_t next = data + ((size + 511) & ~(uint64_t)511);
    char type = (char)h[156];
    if (type == 'L') { /* GNU long name: the next header's name */
      size_t k = size < sizeof name - 1 ? (size_t)size : sizeof name - 1;
      if (scan_src_read(src, data, name, k)) break;
      name[k] = '\0';
      longname = 1;
      off = next;
      continue;
    }
    if (!longname) {
      char pre[156] = "";
      if (!memcmp(h + 257, "ustar", 5)) memcpy(pre, h + 345, 155), pre[155] = '\0';
      char base[101];
      memcpy(base, h, 100);
      base[100] = '\0';
      snprintf(name, sizeof name, "%s%s%s", pre, *pre ? "/" : "", base);
    }
    longname = 0;
    scan_utf8_fix(name);
    off = next;
    if (type == 'x' || type == 'g') continue; /* pax headers */
    if (count_member(c, prefix)) break;
    join(full, sizeof full, prefix, name);
    if (path_escapes(name)) scan_ctx_archive(c, SCAN_UNSAFE, full, "path escapes the archive");
    if (type != '0' && type != '\0' && type != '7') continue;
    total = size > UINT64_MAX - total ? UINT64_MAX : total + size;
    if (total > c->lim.zip_max_expansion) {
      scan_ctx_archive(c, SCAN_UNSAFE, full, "archive expands to more than %llu bytes",
                       (unsigned long long)c->lim.zip_max_expansion);
      break;
    }
    if (!legacy_torch(name) && !wanted(name)) continue;
    scan_rd r;
    scan_src sub = {src->fd, src->mem, src->base + data, size};
    uint64_t left = budget(c, full);
    if (!left) return;
    if (scan_rd_open(&r, src, data, size, 0, size, 0, left)) {
      c->oom = 1;
      return;
    }
    if (legacy_torch(name))
      scan_pickle_stream(c, &r, full);
    else
      scan_member(c, full, &r, &sub, depth + 1);
    c->stream_used += r.produced;
    scan_rd_dispose(&r);
    if (c->oom) return;
  }
}
