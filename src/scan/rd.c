/* Sources and bounded streams of the scan engine (scan/engine.h). */
#include "scan/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int scan_src_read(const scan_src *s, uint64_t off, void *buf, size_t n) {
  if (off > s->size || n > s->size - off) return -1;
  if (s->mem) {
    memcpy(buf, s->mem + s->base + off, n);
    return 0;
  }
  unsigned char *p = buf;
  while (n) {
    ssize_t got = pread(s->fd, p, n, (off_t)(s->base + off));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    p += got, n -= (size_t)got, off += (uint64_t)got;
  }
  return 0;
}

int scan_rd_open(scan_rd *r, const scan_src *src, uint64_t off, uint64_t clen, int method,
                 uint64_t declared, uint32_t max_ratio, uint64_t limit) {
  memset(r, 0, sizeof *r);
  r->src = src;
  r->off = off;
  r->end = (off <= src->size && clen <= src->size - off) ? off + clen : src->size;
  r->declared = declared;
  r->max_ratio = max_ratio;
  r->limit = limit;
  r->buf = malloc(SCAN_RD_BUF);
  if (!r->buf) return -1;
  if (method == 8) {
    r->z = calloc(1, sizeof *r->z);
    r->zin = malloc(SCAN_RD_BUF);
    if (!r->z || !r->zin || inflateInit2(r->z, -15) != Z_OK) {
      free(r->zin), free(r->z), free(r->buf);
      r->z = NULL, r->zin = NULL, r->buf = NULL;
      return -1;
    }
  }
  return 0;
}

void scan_rd_dispose(scan_rd *r) {
  if (r->z) inflateEnd(r->z);
  free(r->z);
  free(r->zin);
  free(r->buf);
  r->z = NULL, r->zin = NULL, r->buf = NULL;
}

/* Raw bytes into dst (up to cap), from src; 0 at end or error. */
static size_t raw_read(scan_rd *r, unsigned char *dst, size_t cap) {
  uint64_t left = r->end > r->off ? r->end - r->off : 0;
  size_t n = left < cap ? (size_t)left : cap;
  if (!n) return 0;
  if (scan_src_read(r->src, r->off, dst, n)) {
    r->ioerr = 1;
    return 0;
  }
  r->off += n;
  return n;
}

static size_t inflate_more(scan_rd *r, unsigned char *dst, size_t cap) {
  z_stream *z = r->z;
  z->next_out = dst;
  z->avail_out = (uInt)cap;
  while (z->avail_out == cap) {
    if (!z->avail_in) {
      size_t n = raw_read(r, r->zin, SCAN_RD_BUF);
      if (!n) break;
      z->next_in = r->zin;
      z->avail_in = (uInt)n;
    }
    int rc = inflate(z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      r->bomb = 3;
      break;
    }
    if (rc == Z_BUF_ERROR && !z->avail_in && r->off >= r->end) break;
  }
  size_t out = cap - z->avail_out;
  uint64_t total = z->total_out;
  if (total > r->declared) {
    r->bomb = 1; /* deliver nothing past the declared size */
    uint64_t over = total - r->declared;
    out = over >= out ? 0 : out - (size_t)over;
  } else if (r->max_ratio && total >= SCAN_INFLATE_RATIO_FLOOR &&
             total / (z->total_in ? z->total_in : 1) > r->max_ratio) {
    r->bomb = 2;
  }
  return out;
}

size_t scan_rd__fill(scan_rd *r) {
  if (r->pos < r->len) return r->len - r->pos;
  r->pos = r->len = 0;
  if (r->eof || !r->buf) return 0;
  size_t cap = SCAN_RD_BUF;
  if (r->limit) {
    if (r->produced >= r->limit) {
      r->limited = 1;
      r->eof = 1;
      return 0;
    }
    if (r->limit - r->produced < cap) cap = (size_t)(r->limit - r->produced);
  }
  size_t n = r->z ? (r->bomb ? 0 : inflate_more(r, r->buf, cap)) : raw_read(r, r->buf, cap);
  if (!n) {
    r->eof = 1;
    return 0;
  }
  r->len = n;
  r->produced += n;
  return n;
}

int scan_rd_read(scan_rd *r, void *dst, size_t n) {
  unsigned char *p = dst;
  while (n) {
    size_t have = scan_rd__fill(r);
    if (!have) return -1;
    size_t k = have < n ? have : n;
    memcpy(p, r->buf + r->pos, k);
    r->pos += k, p += k, n -= k;
  }
  return 0;
}

int scan_rd_skip(scan_rd *r, uint64_t n) {
  size_t have = r->len - r->pos;
  if (n <= have) {
    r->pos += (size_t)n;
    return 0;
  }
  n -= have;
  r->pos = r->len;
  if (!r->z) { /* stored: seek */
    uint64_t left = r->end > r->off ? r->end - r->off : 0;
    uint64_t room = r->limit ? r->limit - r->produced : UINT64_MAX;
    uint64_t k = n < left ? n : left;
    if (k > room) k = room;
    r->off += k;
    r->produced += k;
    if (k < n) {
      if (k == room) r->limited = 1;
      r->eof = 1;
      return -1;
    }
    return 0;
  }
  while (n) {
    size_t got = scan_rd__fill(r);
    if (!got) return -1;
    size_t k = got < n ? got : (size_t)n;
    r->pos += k;
    n -= k;
  }
  return 0;
}

const unsigned char *scan_rd_peek(scan_rd *r, size_t n, size_t *got) {
  if (n > SCAN_RD_BUF / 2) n = SCAN_RD_BUF / 2;
  if (r->len - r->pos < n && r->buf) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    while (r->len < n && !r->eof) {
      size_t cap = SCAN_RD_BUF - r->len;
      if (r->limit && r->limit - r->produced < cap) cap = (size_t)(r->limit - r->produced);
      size_t k = 0;
      if (cap)
        k = r->z ? (r->bomb ? 0 : inflate_more(r, r->buf + r->len, cap))
                 : raw_read(r, r->buf + r->len, cap);
      if (!k) {
        if (r->limit && r->produced >= r->limit) r->limited = 1;
        r->eof = 1;
        break;
      }
      r->len += k;
      r->produced += k;
    }
  }
  size_t have = r->len - r->pos;
  *got = have < n ? have : n;
  return r->buf ? r->buf + r->pos : (const unsigned char *)"";
}
