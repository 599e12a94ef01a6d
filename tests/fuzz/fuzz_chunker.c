/* libFuzzer: content-defined chunker and file hasher. The input is expanded into a larger
 * periodic buffer (so chunks longer than the 8 KiB minimum occur), then chunked in one call,
 * in pieces, and by a direct byte-at-a-time transcription of spec §3.3: all must agree, and
 * the file hasher must see the same chunks. */
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

static size_t naive(const uint8_t *d, size_t n, uint64_t *ends, size_t max) {
  uint64_t h = 0;
  size_t start = 0, k = 0;
  for (size_t i = 0; i < n; i++) {
    h = (h << 1) + xet_gear[d[i]];
    size_t size = i + 1 - start;
    if (size < XET_CHUNK_MIN) continue;
    if (size >= XET_CHUNK_MAX || (h & 0xFFFF000000000000ULL) == 0) {
      if (k < max) ends[k] = i + 1;
      k++;
      start = i + 1;
      h = 0;
    }
  }
  if (start < n) {
    if (k < max) ends[k] = n;
    k++;
  }
  return k;
}

static size_t streamed(const uint8_t *d, size_t n, size_t piece, uint64_t *ends, size_t max) {
  xet_chunker c;
  size_t k = 0;
  xet_chunker_init(&c);
  for (size_t off = 0; off < n;) {
    size_t m = n - off < piece ? n - off : piece;
    const uint8_t *p = d + off;
    off += m;
    while (m) {
      uint64_t cut;
      size_t used = xet_chunker_scan(&c, p, m, &cut);
      p += used;
      m -= used;
      if (cut) {
        if (k < max) ends[k] = c.pos;
        k++;
      }
    }
  }
  uint64_t s, e;
  if (xet_chunker_finish(&c, &s, &e)) {
    if (k < max) ends[k] = e;
    k++;
  }
  return k;
}

typedef struct {
  size_t n;
  uint64_t pos;
  const uint64_t *ends;
  int bad;
} seen;

static int on_chunk(const uint8_t *chunk, size_t len, const xet_hash *hash, void *payload) {
  seen *s = payload;
  xet_hash h;
  xet_chunk_hash(&h, chunk, len);
  s->pos += len;
  if (!xet_hash_eq(&h, hash) || s->ends[s->n] != s->pos) s->bad = 1;
  s->n++;
  return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  enum { MAXN = 200000, MAXE = MAXN / 8192 + 2 };
  static uint64_t e1[MAXE], e2[MAXE];
  if (size < 3) return 0;
  size_t n = ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)(data[2] & 7) << 16);
  if (n > MAXN) n = MAXN;
  size_t piece = (size_t)data[2] * 131 + 1;
  data += 3;
  size -= 3;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) abort();
  for (size_t i = 0; i < n; i++)
    buf[i] = size ? data[i % size] ^ (uint8_t)(i / (size * 7 + 1)) : 0;
  size_t k1 = naive(buf, n, e1, MAXE);
  size_t k2 = streamed(buf, n, n ? n : 1, e2, MAXE);
  if (k1 != k2 || k1 > MAXE || memcmp(e1, e2, k1 * sizeof *e1)) abort();
  k2 = streamed(buf, n, piece, e2, MAXE);
  if (k1 != k2 || memcmp(e1, e2, k1 * sizeof *e1)) abort();
  for (size_t i = 0; i < k1; i++) {
    uint64_t len = e1[i] - (i ? e1[i - 1] : 0);
    if (len == 0 || len > XET_CHUNK_MAX || (i + 1 < k1 && len < XET_CHUNK_MIN)) abort();
  }
  seen s = {0, 0, e1, 0};
  xet_file_hasher *fh;
  if (xet_file_hasher_new(&fh, on_chunk, &s) != 0) abort();
  for (size_t off = 0; off < n; off += piece)
    if (xet_file_hasher_update(fh, buf + off, n - off < piece ? n - off : piece) != 0) abort();
  xet_hash file;
  uint64_t total, chunks;
  if (xet_file_hasher_final(fh, &file, NULL, &total, &chunks) != 0) abort();
  if (s.bad || s.n != k1 || chunks != k1 || total != n) abort();
  if ((n == 0) != xet_hash_is_zero(&file)) abort();
  xet_file_hasher_free(fh);
  free(buf);
  return 0;
}
