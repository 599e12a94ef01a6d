/* Header validation of safetensors and GGUF files (docs/scanning.md "Header validation").
 *
 * Both formats put a header in front of raw tensor data, and the loaders trust the header's
 * offsets and sizes: a header that points outside the file or makes two tensors share bytes
 * is how a crafted model file attacks a loader (out-of-bounds reads, overflowing size
 * arithmetic). The validators read through pread, never map or load the data section, and
 * never allocate by a count the file claims: the safetensors header is read whole (it is
 * bounded by the Hub's 100 MB limit), GGUF is streamed through a small window, and the
 * per-tensor table grows only with entries actually parsed.
 *
 * Levels: "unsafe" when the header points outside the file (a length or offset beyond the
 * end), makes tensors overlap, or overflows a loader's arithmetic or fixed arrays; and
 * "suspicious" when it is over a limit built to exhaust loaders, or ambiguous
 * (duplicate keys); "caution" when it is merely inconsistent (missing fields, gaps, size
 * not matching dtype × shape, misaligned offsets, unknown versions). */
#include "scan/detect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The Hub's (and the safetensors crate's) limit on the JSON header. */
#define ST_MAX_HEADER (100ULL * 1000 * 1000)
/* GGUF counts over these are refused as built to exhaust loaders (the largest published
 * models have a few thousand tensors and a few dozen keys; vocabularies a few 100k). */
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_ARRAY (1ull << 26)
#define GGUF_MAX_KEY 65535
#define GGUF_MAX_NAME 63 /* ggml's GGML_MAX_NAME (64) includes the NUL */
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

ssize_t detect__pread_full(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

const char *detect__ext(const char *path) {
  if (!path) return "";
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  return dot && dot != base ? dot + 1 : "";
}

/* ---- the verdict: worst level, its first message, how many issues ---- */

typedef struct {
  scan_level level;
  unsigned issues;
  char msg[240];
} verdict;

static void flag(verdict *v, scan_level l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void flag(verdict *v, scan_level l, const char *fmt, ...) {
  v->issues++;
  if (v->issues > 1 && l <= v->level) return;
  v->level = l;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->msg, sizeof v->msg, fmt, ap);
  va_end(ap);
}

/* A name from the file, shortened and made printable for a message. */
static const char *printable(const char *s, size_t n, char out[48]) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < 40; i++)
    out[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
  if (n > 40) out[k++] = '.', out[k++] = '.', out[k++] = '.';
  out[k] = 0;
  return out;
}

static json_t *report(const verdict *v, const char *format, const char *ok_msg) {
  char msg[300];
  if (!v->issues)
    snprintf(msg, sizeof msg, "%s", ok_msg);
  else if (v->issues == 1)
    snprintf(msg, sizeof msg, "%s", v->msg);
  else
    snprintf(msg, sizeof msg, "%s (and %u more issue%s)", v->msg, v->issues - 1,
             v->issues == 2 ? "" : "s");
  return json_pack("{s:s, s:s, s:s}", "status", scan_level_name(v->issues ? v->level : SCAN_SAFE),
                   "message", msg, "format", format);
}

static json_t *read_error(const char *format) {
  return json_pack("{s:s, s:s, s:s}", "status", "error", "message", "the file could not be read",
                   "format", format);
}

/* A data range of one tensor, for the overlap check. */
typedef struct {
  uint64_t begin, end;
  size_t idx; /* safetensors: entry number; GGUF: tensor number */
} range;

static int range_cmp(const void *a, const void *b) {
  const range *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* ---- safetensors ---- */

static const struct {
  const char *name;
  unsigned bits;
} st_dtypes[] = {
    {"BOOL", 8},    {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8},
    {"F8_E8M0", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16},    {"BF16", 16},
    {"I32", 32},    {"U32", 32}, {"F32", 32}, {"I64", 64},    {"U64", 64},
    {"F64", 64},    {"C64", 64}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6},
};

static unsigned st_dtype_bits(const char *name) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (!strcmp(st_dtypes[i].name, name)) return st_dtypes[i].bits;
  return 0;
}

/* One tensor entry: flags what is wrong with it; 1 and *out set when it has a usable
 * data range for the overlap check. */
static int st_entry(verdict *v, const char *name, json_t *t, uint64_t data_size, range *out) {
  char nb[48];
  const char *pn = printable(name, strlen(name), nb);
  json_t *jd = json_object_get(t, "dtype"), *js = json_object_get(t, "shape");
  json_t *jo = json_object_get(t, "data_offsets");
  if (!json_is_object(t) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
      json_array_size(jo) != 2) {
    flag(v, SCAN_CAUTION, "tensor '%s' lacks dtype, shape or data_offsets", pn);
    return 0;
  }
  json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
  if (!json_is_integer(jb) || !json_is_integer(je)) {
    flag(v, SCAN_CAUTION, "tensor '%s' has non-integer data_offsets", pn);
    return 0;
  }
  json_int_t b = json_integer_value(jb), e = json_integer_value(je);
  if (b < 0 || e < 0 || e < b) {
    flag(v, SCAN_UNSAFE, "tensor '%s' has an inverted or negative data range", pn);
    return 0;
  }
  if ((uint64_t)e > data_size) {
    flag(v, SCAN_UNSAFE, "tensor '%s' points beyond the end of the file (offset %lld of %llu)", pn,
         (long long)e, (unsigned long long)data_size);
    return 0;
  }
  out->begin = (uint64_t)b;
  out->end = (uint64_t)e;
  uint64_t n = 1;
  size_t i;
  json_t *d;
  json_array_foreach(js, i, d) {
    if (!json_is_integer(d) || json_integer_value(d) < 0) {
      flag(v, SCAN_CAUTION, "tensor '%s' has a bad shape", pn);
      return 1;
    }
    if (__builtin_mul_overflow(n, (uint64_t)json_integer_value(d), &n)) {
      flag(v, SCAN_UNSAFE, "tensor '%s' has a shape whose size overflows", pn);
      return 1;
    }
  }
  unsigned bits = st_dtype_bits(json_string_value(jd));
  if (!bits) {
    flag(v, SCAN_CAUTION, "tensor '%s' has an unknown dtype", pn);
    return 1;
  }
  uint64_t need_bits;
  if (__builtin_mul_overflow(n, (uint64_t)bits, &need_bits)) {
    flag(v, SCAN_UNSAFE, "tensor '%s' has a shape whose size overflows", pn);
    return 1;
  }
  uint64_t need = need_bits / 8 + (need_bits % 8 != 0);
  if (need != out->end - out->begin)
    flag(v, SCAN_CAUTION, "tensor '%s' has %llu bytes but its dtype and shape make %llu", pn,
         (unsigned long long)(out->end - out->begin), (unsigned long long)need);
  return 1;
}

static void st_metadata(verdict *v, json_t *m) {
  const char *k;
  json_t *x;
  if (!json_is_object(m)) {
    flag(v, SCAN_CAUTION, "__metadata__ is not an object");
    return;
  }
  json_object_foreach(m, k, x) {
    if (!json_is_string(x)) {
      flag(v, SCAN_CAUTION, "__metadata__ has a value that is not a string");
      return;
    }
  }
}

static json_t *scan_safetensors(int fd, uint64_t size) {
  verdict v = {SCAN_SAFE, 0, ""};
  unsigned char first8[8];
  char *hdr = NULL;
  range *rs = NULL;
  json_t *root = NULL, *out = NULL;
  if (size < 8) {
    flag(&v, SCAN_CAUTION, "not a safetensors file: shorter than its 8-byte header length");
    goto done;
  }
  if (detect__pread_full(fd, first8, 8, 0) != 8) goto ioerr;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | first8[i];
  if (n == 0) {
    flag(&v, SCAN_CAUTION, "empty header");
    goto done;
  }
  /* Text where the length should be (an LFS pointer, a README under the wrong name): a
   * loader fails on it like on any non-safetensors file; the length means nothing. */
  int text = 1;
  for (int i = 0; i < 8; i++)
    text &= (first8[i] >= 0x20 && first8[i] < 0x7f) || first8[i] == '\n' || first8[i] == '\t';
  if (text) {
    flag(&v, SCAN_CAUTION, "not a safetensors file: it starts with text");
    goto done;
  }
  if (n > ST_MAX_HEADER) {
    flag(&v, SCAN_SUSPICIOUS, "header length %llu is over the 100 MB limit", (unsigned long long)n);
    goto done;
  }
  if (n > size - 8) {
    flag(&v, SCAN_UNSAFE, "header length %llu points beyond the end of the file (%llu bytes)",
         (unsigned long long)n, (unsigned long long)size);
    goto done;
  }
  if (!(hdr = malloc((size_t)n))) goto oom;
  if (detect__pread_full(fd, hdr, (size_t)n, 8) != (ssize_t)n) goto ioerr;
  json_error_t jerr;
  root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      flag(&v, SCAN_SUSPICIOUS, "header has duplicate keys (loaders disagree on which is used)");
    else if (json_error_code(&jerr) == json_error_out_of_memory)
      goto oom;
    else
      flag(&v, SCAN_CAUTION, "header is not valid JSON (at byte %d)", jerr.position);
    goto done;
  }
  if (!json_is_object(root) || hdr[0] != '{') {
    flag(&v, SCAN_CAUTION, "header is not a JSON object");
    goto done;
  }
  uint64_t data_size = size - 8 - n;
  size_t nr = 0, cap = json_object_size(root);
  if (cap && !(rs = calloc(cap, sizeof *rs))) goto oom; /* entries parsed, not claimed */
  const char *name;
  json_t *t;
  size_t idx = 0;
  json_object_foreach(root, name, t) {
    if (!strcmp(name, "__metadata__")) {
      st_metadata(&v, t);
    } else if (st_entry(&v, name, t, data_size, &rs[nr])) {
      rs[nr++].idx = idx;
    }
    idx++;
  }
  if (nr) qsort(rs, nr, sizeof *rs, range_cmp);
  uint64_t expect = 0;
  int gap = 0;
  for (size_t i = 0; i < nr; i++) {
    if (rs[i].begin < expect && rs[i].end > rs[i].begin) {
      flag(&v, SCAN_UNSAFE, "tensors overlap (bytes %llu-%llu are used twice)",
           (unsigned long long)rs[i].begin,
           (unsigned long long)(expect < rs[i].end ? expect : rs[i].end));
    } else if (rs[i].begin != expect && !gap) {
      gap = 1;
      flag(&v, SCAN_CAUTION, "tensor data is not contiguous (gap or misplaced entry at byte %llu)",
           (unsigned long long)rs[i].begin);
    }
    if (rs[i].end > expect) expect = rs[i].end;
  }
  if (expect < data_size && !gap)
    flag(&v, SCAN_CAUTION, "%llu bytes after the last tensor are not described by the header",
         (unsigned long long)(data_size - expect));
done:
  out = report(&v, "safetensors", "header is consistent with the file");
  goto end;
ioerr:
  out = read_error("safetensors");
  goto end;
oom:
  out = NULL;
end:
  json_decref(root);
  free(rs);
  free(hdr);
  return out;
}

/* ---- GGUF ---- */

enum {
  G_U8 = 0,
  G_I8,
  G_U16,
  G_I16,
  G_U32,
  G_I32,
  G_F32,
  G_BOOL,
  G_STRING,
  G_ARRAY,
  G_U64,
  G_I64,
  G_F64,
  G_COUNT
};
static const unsigned g_type_size[G_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ggml tensor types: elements per block and bytes per block (ggml's type traits; removed
 * types are 0 and unknown types are not size-checked, only bounds-checked). */
static const struct {
  unsigned short blck, bytes;
} ggml_types[] = {
    [0] = {1, 4},      [1] = {1, 2},      [2] = {32, 18},    [3] = {32, 20},    [6] = {32, 22},
    [7] = {32, 24},    [8] = {32, 34},    [9] = {32, 36},    [10] = {256, 84},  [11] = {256, 110},
    [12] = {256, 144}, [13] = {256, 176}, [14] = {256, 210}, [15] = {256, 292}, [16] = {256, 66},
    [17] = {256, 74},  [18] = {256, 98},  [19] = {256, 50},  [20] = {32, 18},   [21] = {256, 110},
    [22] = {256, 82},  [23] = {256, 136}, [24] = {1, 1},     [25] = {1, 2},     [26] = {1, 4},
    [27] = {1, 8},     [28] = {1, 8},     [29] = {256, 56},  [30] = {1, 2},     [34] = {256, 54},
    [35] = {256, 66},  [39] = {32, 17},
};

/* A buffered sequential reader over pread. Skips move the position without reading. */
typedef struct {
  int fd;
  uint64_t size, off;
  uint64_t win_off; /* file offset of win[0] */
  size_t win_len;
  int ioerr;
  unsigned char win[64 * 1024];
} rdr;

/* 0: n bytes copied; 1: the file ends first; -1: I/O error. */
static int r_read(rdr *r, void *dst, size_t n) {
  if (n > r->size || r->off > r->size - n) return 1;
  unsigned char *d = dst;
  while (n) {
    if (r->off < r->win_off || r->off >= r->win_off + r->win_len) {
      uint64_t left = r->size - r->off;
      size_t want = left < sizeof r->win ? (size_t)left : sizeof r->win;
      ssize_t got = detect__pread_full(r->fd, r->win, want, r->off);
      if (got <= 0) {
        r->ioerr = 1;
        return -1;
      }
      r->win_off = r->off;
      r->win_len = (size_t)got;
    }
    size_t at = (size_t)(r->off - r->win_off), k = r->win_len - at;
    if (k > n) k = n;
    memcpy(d, r->win + at, k);
    d += k, n -= k, r->off += k;
  }
  return 0;
}

static int r_skip(rdr *r, uint64_t n) {
  if (n > r->size || r->off > r->size - n) return 1;
  r->off += n;
  return 0;
}

static int r_u32(rdr *r, uint32_t *v) {
  unsigned char b[4];
  int rc = r_read(r, b, 4);
  if (!rc) *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return rc;
}

static int r_u64(rdr *r, uint64_t *v) {
  unsigned char b[8];
  int rc = r_read(r, b, 8);
  if (!rc) {
    *v = 0;
    for (int i = 7; i >= 0; i--)
      *v = (*v << 8) | b[i];
  }
  return rc;
}

/* Counts and string lengths are u32 in GGUF v1, u64 after. */
static int r_len(rdr *r, int v1, uint64_t *n) {
  if (!v1) return r_u64(r, n);
  uint32_t x = 0;
  int rc = r_u32(r, &x);
  *n = x;
  return rc;
}

/* Parse state: a failure stops the parse with a flag already raised. */
typedef struct {
  rdr *r;
  verdict *v;
  int v1;
} gctx;

/* Read a status code of a read: 0 continues; otherwise flags and returns nonzero. */
static int g_chk(gctx *g, int rc, const char *what) {
  if (rc > 0)
    flag(g->v, SCAN_UNSAFE, "%s at byte %llu points beyond the end of the file", what,
         (unsigned long long)g->r->off);
  return rc;
}

/* A string: its first keep_cap - 1 bytes in keep (NUL-terminated), its length in *len. */
static int g_string(gctx *g, const char *what, char *keep, size_t keep_cap, uint64_t max_len,
                    uint64_t *len) {
  uint64_t n = 0;
  int rc;
  if ((rc = g_chk(g, r_len(g->r, g->v1, &n), what))) return rc;
  if (len) *len = n;
  if (n > max_len) {
    flag(g->v, SCAN_SUSPICIOUS, "%s of %llu bytes is over the limit", what, (unsigned long long)n);
    return 1;
  }
  if (keep) {
    size_t k = n < keep_cap - 1 ? (size_t)n : keep_cap - 1;
    if ((rc = g_chk(g, r_read(g->r, keep, k), what))) return rc;
    keep[k] = 0;
    n -= k;
  }
  return g_chk(g, r_skip(g->r, n), what);
}

static int g_value(gctx *g, uint32_t type, uint64_t *u32_out) {
  int rc;
  if (type >= G_COUNT) {
    flag(g->v, SCAN_CAUTION, "unknown metadata value type %u", type);
    return 1;
  }
  if (type == G_STRING) return g_string(g, "string value", NULL, 0, UINT64_MAX, NULL);
  if (type == G_ARRAY) {
    uint32_t et = 0;
    uint64_t count = 0, bytes;
    if ((rc = g_chk(g, r_u32(g->r, &et), "array type")) ||
        (rc = g_chk(g, r_len(g->r, g->v1, &count), "array length")))
      return rc;
    if (et >= G_COUNT || et == G_ARRAY) {
      flag(g->v, SCAN_CAUTION, "%s array element type %u", et == G_ARRAY ? "nested" : "unknown",
           et);
      return 1;
    }
    if (count > GGUF_MAX_ARRAY) {
      flag(g->v, SCAN_SUSPICIOUS, "array of %llu elements is over the limit",
           (unsigned long long)count);
      return 1;
    }
    if (et != G_STRING) {
      bytes = count * g_type_size[et]; /* count <= 2^26: no overflow */
      return g_chk(g, r_skip(g->r, bytes), "array");
    }
    for (uint64_t i = 0; i < count; i++)
      if ((rc = g_string(g, "array string", NULL, 0, UINT64_MAX, NULL))) return rc;
    return 0;
  }
  if (type == G_U32 && u32_out) {
    uint32_t x = 0;
    if ((rc = g_chk(g, r_u32(g->r, &x), "value"))) return rc;
    *u32_out = x;
    return 0;
  }
  return g_chk(g, r_skip(g->r, g_type_size[type]), "value");
}

typedef struct {
  uint64_t offset, nbytes; /* nbytes UINT64_MAX: unknown type, not size-checked */
} gtensor;

static json_t *scan_gguf(int fd, uint64_t size) {
  verdict v = {SCAN_SAFE, 0, ""};
  rdr *r = NULL;
  gtensor *ts = NULL;
  range *rs = NULL;
  json_t *out = NULL;
  size_t nts = 0, cap = 0;
  char magic[4];
  uint32_t version = 0;
  uint64_t ntensors = 0, nkv = 0, alignment = GGUF_DEFAULT_ALIGNMENT;
  if (!(r = malloc(sizeof *r))) goto oom;
  r->fd = fd, r->size = size, r->off = 0, r->win_off = 0, r->win_len = 0, r->ioerr = 0;
  gctx g = {r, &v, 0};
  if (r_read(r, magic, 4) || memcmp(magic, "GGUF", 4)) {
    if (r->ioerr) goto ioerr;
    flag(&v, SCAN_CAUTION, "not a GGUF file (bad magic)");
    goto done;
  }
  if (g_chk(&g, r_u32(r, &version), "version")) goto parsed;
  if (version < 1 || version > 3) {
    flag(&v, SCAN_CAUTION, "unsupported GGUF version %u%s", version,
         (version & 0xFFFF) == 0 ? " (big-endian files are not checked)" : "");
    goto done;
  }
  g.v1 = version == 1;
  if (g_chk(&g, r_len(r, g.v1, &ntensors), "tensor count") ||
      g_chk(&g, r_len(r, g.v1, &nkv), "metadata count"))
    goto parsed;
  if (ntensors > GGUF_MAX_TENSORS || nkv > GGUF_MAX_KV) {
    flag(&v, SCAN_SUSPICIOUS, "%llu tensors and %llu metadata entries are over the limits",
         (unsigned long long)ntensors, (unsigned long long)nkv);
    goto done;
  }
  for (uint64_t i = 0; i < nkv; i++) {
    char key[32];
    uint32_t type = 0;
    uint64_t u = UINT64_MAX, klen = 0;
    if (g_string(&g, "metadata key", key, sizeof key, GGUF_MAX_KEY, &klen) ||
        g_chk(&g, r_u32(r, &type), "value type"))
      goto parsed;
    int is_align = klen == 17 && !memcmp(key, "general.alignment", 17);
    if (g_value(&g, type, is_align ? &u : NULL)) goto parsed;
    if (is_align) {
      if (type != G_U32 || u == 0 || (u & (u - 1))) {
        flag(&v, SCAN_CAUTION, "general.alignment is not a power of two (u32)");
      } else {
        alignment = u;
      }
    }
  }
  for (uint64_t i = 0; i < ntensors; i++) {
    char name[48];
    uint32_t ndims = 0, type = 0;
    uint64_t ne[GGUF_MAX_DIMS], n = 1, off = 0;
    uint64_t nlen = 0;
    if (g_string(&g, "tensor name", name, sizeof name, GGUF_MAX_KEY, &nlen)) goto parsed;
    if (g_chk(&g, r_u32(r, &ndims), "tensor dimensions")) goto parsed;
    if (ndims > GGUF_MAX_DIMS) {
      flag(&v, SCAN_UNSAFE, "tensor %llu has %u dimensions (loaders hold at most %d)",
           (unsigned long long)i, ndims, GGUF_MAX_DIMS);
      goto parsed;
    }
    int overflow = 0;
    for (uint32_t d = 0; d < ndims; d++) {
      if (g_chk(&g, g.v1 ? r_len(r, 1, &ne[d]) : r_u64(r, &ne[d]), "tensor shape")) goto parsed;
      if (ne[d] > INT64_MAX || __builtin_mul_overflow(n, ne[d], &n) || n > INT64_MAX) overflow = 1;
    }
    if (g_chk(&g, r_u32(r, &type), "tensor type") || g_chk(&g, r_u64(r, &off), "tensor offset"))
      goto parsed;
    char nb[48];
    const char *pn = printable(name, strlen(name), nb);
    if (nlen > GGUF_MAX_NAME)
      flag(&v, SCAN_CAUTION, "tensor '%s' has a name longer than %d bytes", pn, GGUF_MAX_NAME);
    if (overflow) {
      flag(&v, SCAN_UNSAFE, "tensor '%s' has a shape whose size overflows", pn);
      continue;
    }
    uint64_t nbytes = UINT64_MAX;
    if (type < sizeof ggml_types / sizeof ggml_types[0] && ggml_types[type].blck) {
      unsigned blck = ggml_types[type].blck;
      if (ndims && ne[0] % blck) {
        flag(&v, SCAN_CAUTION, "tensor '%s' has a row size not a multiple of its type's block", pn);
      } else {
        uint64_t blocks = n / blck;
        if (__builtin_mul_overflow(blocks, (uint64_t)ggml_types[type].bytes, &nbytes)) {
          flag(&v, SCAN_UNSAFE, "tensor '%s' has a size that overflows", pn);
          continue;
        }
      }
    } else {
      flag(&v, SCAN_CAUTION, "tensor '%s' has an unknown type %u (its size is not checked)", pn,
           type);
    }
    if (nts == cap) { /* grows with tensors parsed (>= 24 bytes each), never by the count */
      size_t nc = cap ? cap * 2 : 64;
      gtensor *nt = realloc(ts, nc * sizeof *nt);
      if (!nt) goto oom;
      ts = nt, cap = nc;
    }
    ts[nts].offset = off;
    ts[nts++].nbytes = nbytes;
    if (off % alignment)
      flag(&v, SCAN_CAUTION, "tensor '%s' offset %llu is not aligned to %llu", pn,
           (unsigned long long)off, (unsigned long long)alignment);
  }
  /* The data section starts at the end of the tensor infos rounded up to the alignment. */
  uint64_t data_start = r->off, data_size = 0;
  if (data_start % alignment) data_start += alignment - data_start % alignment;
  if (data_start > size) {
    if (ntensors)
      flag(&v, SCAN_UNSAFE, "the tensor data section starts beyond the end of the file");
  } else {
    data_size = size - data_start;
  }
  if (nts && !(rs = malloc(nts * sizeof *rs))) goto oom;
  size_t nr = 0;
  for (size_t i = 0; i < nts; i++) {
    uint64_t len = ts[i].nbytes == UINT64_MAX ? 0 : ts[i].nbytes;
    if (data_start > size) break;
    if (ts[i].offset > data_size || len > data_size - ts[i].offset) {
      flag(&v, SCAN_UNSAFE, "tensor %zu points beyond the end of the file (offset %llu)", i,
           (unsigned long long)ts[i].offset);
      continue;
    }
    rs[nr].begin = ts[i].offset;
    rs[nr].end = ts[i].offset + len;
    rs[nr++].idx = i;
  }
  if (nr) qsort(rs, nr, sizeof *rs, range_cmp);
  uint64_t end = 0;
  for (size_t i = 0; i < nr; i++) {
    if (rs[i].begin < end && rs[i].end > rs[i].begin) {
      flag(&v, SCAN_UNSAFE, "tensor %zu overlaps another tensor at byte %llu of the data",
           rs[i].idx, (unsigned long long)rs[i].begin);
      break;
    }
    if (rs[i].end > end) end = rs[i].end;
  }
  goto done;
parsed:
  if (r->ioerr) goto ioerr;
done:
  out = report(&v, "gguf", "header is consistent with the file");
  goto end;
ioerr:
  out = read_error("gguf");
  goto end;
oom:
  out = NULL;
end:
  free(rs);
  free(ts);
  free(r);
  return out;
}

json_t *scan_header(int fd, uint64_t size, const char *path, const scan_limits *limits) {
  (void)limits;
  const char *ext = detect__ext(path);
  if (!strcasecmp(ext, "safetensors")) return scan_safetensors(fd, size);
  if (!strcasecmp(ext, "gguf")) return scan_gguf(fd, size);
  /* Any other name: a GGUF by its magic is checked too (loaders go by content). */
  char magic[4];
  if (size >= 4 && detect__pread_full(fd, magic, 4, 0) == 4 && !memcmp(magic, "GGUF", 4))
    return scan_gguf(fd, size);
  return NULL;
}
