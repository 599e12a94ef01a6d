/* Xorb format (spec §4): parsing with full verification, single-record decoding for the
 * byte bridge, and a builder that serializes chunks. */
#include "xet/xet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/limits.h"

static uint32_t rd24(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static void wr24(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
}

/* Validate the header at data[0..avail) (avail >= 8): version, scheme, sizes, payload
 * inside the buffer. */
static int header_check(const uint8_t *data, size_t avail, uint32_t *out_clen, uint32_t *out_ulen,
                        int *out_scheme) {
  uint32_t clen = rd24(data + 1), ulen = rd24(data + 5);
  int scheme = data[4];
  if (data[0] != 0) return hub_error_set(HUB_EINVALID, "xorb: chunk header version %u", data[0]);
  if (scheme > XET_SCHEME_BG4)
    return hub_error_set(HUB_EINVALID, "xorb: unknown compression scheme %d", scheme);
  if (ulen < 1 || ulen > XET_CHUNK_MAX)
    return hub_error_set(HUB_EINVALID, "xorb: chunk size %u out of 1..%d", ulen, XET_CHUNK_MAX);
  if (clen > HUB_MAX_XORB_CHUNK_STORED)
    return hub_error_set(HUB_EINVALID, "xorb: compressed chunk size %u too large", clen);
  if (clen > avail - XET_CHUNK_HEADER)
    return hub_error_set(HUB_EINVALID, "xorb: chunk payload runs past the end");
  *out_clen = clen;
  *out_ulen = ulen;
  *out_scheme = scheme;
  return 0;
}

int xet_record_decode(xet_decoder *dec, const uint8_t *data, size_t avail, uint8_t *out,
                      size_t *out_len, size_t *out_rec_len) {
  uint32_t clen, ulen;
  int scheme, rc;
  if (avail < XET_CHUNK_HEADER) return hub_error_set(HUB_EINVALID, "xorb: truncated chunk header");
  if ((rc = header_check(data, avail, &clen, &ulen, &scheme))) return rc;
  rc = xet_payload_decode(dec, scheme, data + XET_CHUNK_HEADER, clen, out, ulen);
  if (rc) return rc;
  *out_len = ulen;
  *out_rec_len = XET_CHUNK_HEADER + (size_t)clen;
  return 0;
}

/* ---- streamed parsing ------------------------------------------------------------------ */

struct xet_xorb_stream {
  xet_record_fn cb;
  void *payload;
  xet_decoder *dec;
  uint8_t *buf;  /* one decoded chunk */
  uint8_t *pend; /* a record split across feeds */
  size_t npend;
  size_t need; /* length of the record in pend; 0 while its header is incomplete */
  xet_xorb_chunk *chunks;
  size_t n;
  uint64_t off, unpacked, total;
  int footer, failed;
  xet_merkle m;
};

int xet_xorb_stream_new(xet_xorb_stream **out, xet_record_fn cb, void *payload) {
  xet_xorb_stream *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  s->cb = cb;
  s->payload = payload;
  int rc = xet_decoder_new(&s->dec);
  if (!rc && !(s->buf = malloc(XET_CHUNK_MAX))) rc = hub_error_set(HUB_ERROR, "out of memory");
  if (rc) {
    xet_xorb_stream_free(s);
    return rc;
  }
  xet_merkle_init(&s->m);
  *out = s;
  return 0;
}

void xet_xorb_stream_free(xet_xorb_stream *s) {
  if (!s) return;
  xet_decoder_free(s->dec);
  free(s->buf);
  free(s->pend);
  free(s->chunks);
  free(s);
}

/* A record starts at h[0..8): 1 = the XETBLOB footer starts here, 0 and *need = the record's
 * length, or an error. */
static int record_start(xet_xorb_stream *s, const uint8_t *h, size_t *need) {
  uint32_t clen, ulen;
  int scheme, rc;
  if (memcmp(h, "XETBLOB", 7) == 0) return 1; /* footer: chunk data ends here (§4.5) */
  if ((rc = header_check(h, SIZE_MAX, &clen, &ulen, &scheme))) return rc;
  if (s->n == HUB_MAX_XORB_CHUNKS)
    return hub_error_set(HUB_ETOOBIG, "xorb: more than %d chunks", HUB_MAX_XORB_CHUNKS);
  if (s->unpacked + ulen > (uint64_t)HUB_MAX_XORB_UNPACKED)
    return hub_error_set(HUB_ETOOBIG, "xorb: more than %ld uncompressed bytes",
                         (long)HUB_MAX_XORB_UNPACKED);
  *need = XET_CHUNK_HEADER + (size_t)clen;
  return 0;
}

/* A complete record rec[0..len): decode, hash, add to the table, hand it on. */
static int record_take(xet_xorb_stream *s, const uint8_t *rec, size_t len) {
  uint32_t ulen = rd24(rec + 5);
  int rc = xet_payload_decode(s->dec, rec[4], rec + XET_CHUNK_HEADER, len - XET_CHUNK_HEADER,
                              s->buf, ulen);
  if (rc) {
    char why[256];
    snprintf(why, sizeof why, "%s", hub_error_msg());
    return hub_error_set(rc, "xorb chunk %zu: %s", s->n, why);
  }
  if (s->n % 256 == 0) {
    xet_xorb_chunk *grown = realloc(s->chunks, (s->n + 256) * sizeof *s->chunks);
    if (!grown) return hub_error_set(HUB_ERROR, "out of memory");
    s->chunks = grown;
  }
  xet_xorb_chunk *c = &s->chunks[s->n++];
  xet_chunk_hash(&c->hash, s->buf, ulen);
  c->offset = (uint32_t)s->off;
  c->stored_len = (uint32_t)len;
  c->len = ulen;
  c->unpacked_start = (uint32_t)s->unpacked;
  xet_merkle_add(&s->m, &c->hash, ulen);
  s->unpacked += ulen;
  s->off += len;
  return s->cb ? s->cb(rec, len, s->payload) : 0;
}

static int feed(xet_xorb_stream *s, const uint8_t *data, size_t len) {
  int rc;
  if (len > (uint64_t)HUB_MAX_XORB_BODY - s->total)
    return hub_error_set(HUB_ETOOBIG, "xorb: body over the limit");
  s->total += len;
  while (len && !s->footer) {
    if (s->npend == 0 && len >= XET_CHUNK_HEADER) { /* records wholly in `data`: no copy */
      size_t need = 0;
      if ((rc = record_start(s, data, &need)) < 0) return rc;
      if (rc == 1) {
        s->footer = 1;
        break;
      }
      if (len >= need) {
        if ((rc = record_take(s, data, need))) return rc;
        data += need, len -= need;
        continue;
      }
    }
    if (!s->pend && !(s->pend = malloc(XET_CHUNK_HEADER + HUB_MAX_XORB_CHUNK_STORED)))
      return hub_error_set(HUB_ERROR, "out of memory");
    if (s->npend < XET_CHUNK_HEADER) {
      size_t k = XET_CHUNK_HEADER - s->npend < len ? XET_CHUNK_HEADER - s->npend : len;
      memcpy(s->pend + s->npend, data, k);
      s->npend += k, data += k, len -= k;
      if (s->npend < XET_CHUNK_HEADER) break;
      if ((rc = record_start(s, s->pend, &s->need)) < 0) return rc;
      if (rc == 1) {
        s->footer = 1;
        break;
      }
    }
    size_t k = s->need - s->npend < len ? s->need - s->npend : len;
    memcpy(s->pend + s->npend, data, k);
    s->npend += k, data += k, len -= k;
    if (s->npend == s->need) {
      if ((rc = record_take(s, s->pend, s->need))) return rc;
      s->npend = s->need = 0;
    }
  }
  return 0;
}

int xet_xorb_stream_feed(xet_xorb_stream *s, const uint8_t *data, size_t len) {
  if (s->failed) return hub_error_set(s->failed, "xorb: the stream already failed");
  int rc = feed(s, data, len);
  if (rc) s->failed = rc;
  return rc;
}

int xet_xorb_stream_finish(xet_xorb_stream *s, xet_xorb *out, const xet_hash *expected) {
  memset(out, 0, sizeof *out);
  if (s->failed) return hub_error_set(s->failed, "xorb: the stream already failed");
  if (!s->footer && s->npend) {
    s->failed = s->npend < XET_CHUNK_HEADER
                    ? hub_error_set(HUB_EINVALID, "xorb: %zu stray bytes at the end", s->npend)
                    : hub_error_set(HUB_EINVALID, "xorb: chunk payload runs past the end");
    return s->failed;
  }
  if (s->n == 0) return s->failed = hub_error_set(HUB_EINVALID, "xorb: no chunks");
  xet_merkle_final(&s->m, &out->hash, NULL);
  xet_merkle_init(&s->m);
  if (expected && !xet_hash_eq(expected, &out->hash)) {
    char want[65], got[65];
    xet_hash_str(want, expected);
    xet_hash_str(got, &out->hash);
    s->failed =
        hub_error_set(HUB_EINVALID, "xorb hash mismatch: expected %s, content is %s", want, got);
    memset(out, 0, sizeof *out);
    return s->failed;
  }
  out->n_chunks = s->n;
  out->chunks = s->chunks;
  out->data_len = s->off;
  out->unpacked_len = s->unpacked;
  out->had_footer = s->footer;
  s->chunks = NULL;
  s->n = 0;
  s->failed = HUB_EINVALID; /* spent */
  return 0;
}

int xet_xorb_parse(xet_xorb *out, const uint8_t *data, size_t len, const xet_hash *expected) {
  xet_xorb_stream *s = NULL;
  memset(out, 0, sizeof *out);
  if (len > HUB_MAX_XORB_BODY) return hub_error_set(HUB_ETOOBIG, "xorb: body over the limit");
  int rc = xet_xorb_stream_new(&s, NULL, NULL);
  if (!rc) rc = xet_xorb_stream_feed(s, data, len);
  if (!rc) rc = xet_xorb_stream_finish(s, out, expected);
  xet_xorb_stream_free(s);
  return rc;
}

void xet_xorb_dispose(xet_xorb *x) {
  if (!x) return;
  free(x->chunks);
  memset(x, 0, sizeof *x);
}

void xet_xorb_builder_init(xet_xorb_builder *b) {
  memset(b, 0, sizeof *b);
  xet_merkle_init(&b->merkle);
}

int xet_xorb_builder_add(xet_xorb_builder *b, const uint8_t *chunk, size_t len, int scheme) {
  uint8_t *payload = NULL;
  size_t plen = 0;
  int used = 0, rc;
  if (len < 1 || len > XET_CHUNK_MAX)
    return hub_error_set(HUB_EINVALID, "xorb: chunk size %zu out of 1..%d", len, XET_CHUNK_MAX);
  if (b->n_chunks >= HUB_MAX_XORB_CHUNKS || b->unpacked_len + len > HUB_MAX_XORB_UNPACKED)
    return hub_error_set(HUB_ETOOBIG, "xorb is full");
  if ((rc = xet_payload_encode(scheme, chunk, len, &payload, &plen, &used))) return rc;
  size_t need = b->len + XET_CHUNK_HEADER + plen;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < need)
      cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) {
      free(payload);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
    b->data = grown;
    b->cap = cap;
  }
  uint8_t *h = b->data + b->len;
  h[0] = 0;
  wr24(h + 1, (uint32_t)plen);
  h[4] = (uint8_t)used;
  wr24(h + 5, (uint32_t)len);
  memcpy(h + XET_CHUNK_HEADER, payload, plen);
  free(payload);
  b->len = need;
  xet_hash ch;
  xet_chunk_hash(&ch, chunk, len);
  xet_merkle_add(&b->merkle, &ch, len);
  b->n_chunks++;
  b->unpacked_len += len;
  return 0;
}

int xet_xorb_builder_finish(xet_xorb_builder *b, uint8_t **out, size_t *out_len,
                            xet_hash *out_hash) {
  if (b->n_chunks == 0) return hub_error_set(HUB_EINVALID, "xorb: no chunks");
  xet_merkle_final(&b->merkle, out_hash, NULL);
  *out = b->data;
  *out_len = b->len;
  b->data = NULL;
  xet_xorb_builder_dispose(b);
  return 0;
}

void xet_xorb_builder_dispose(xet_xorb_builder *b) {
  free(b->data);
  xet_xorb_builder_init(b);
}
