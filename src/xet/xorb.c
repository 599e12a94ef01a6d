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

int xet_xorb_parse(xet_xorb *out, const uint8_t *data, size_t len, const xet_hash *expected) {
  uint8_t *buf = NULL;
  xet_decoder *dec = NULL;
  xet_xorb_chunk *chunks = NULL;
  size_t n = 0, off = 0;
  uint64_t unpacked = 0;
  int rc = 0, footer = 0;
  xet_merkle m;

  memset(out, 0, sizeof *out);
  if (len > HUB_MAX_XORB_BODY) return hub_error_set(HUB_ETOOBIG, "xorb: body over the limit");
  if ((rc = xet_decoder_new(&dec))) return rc;
  if (!(buf = malloc(XET_CHUNK_MAX))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  xet_merkle_init(&m);
  while (off < len) {
    size_t avail = len - off;
    uint32_t clen, ulen;
    int scheme;
    if (avail < XET_CHUNK_HEADER) {
      rc = hub_error_set(HUB_EINVALID, "xorb: %zu stray bytes at the end", avail);
      goto done;
    }
    if (memcmp(data + off, "XETBLOB", 7) == 0) { /* footer: chunk data ends here (§4.5) */
      footer = 1;
      break;
    }
    if ((rc = header_check(data + off, avail, &clen, &ulen, &scheme))) goto done;
    if (n == HUB_MAX_XORB_CHUNKS) {
      rc = hub_error_set(HUB_ETOOBIG, "xorb: more than %d chunks", HUB_MAX_XORB_CHUNKS);
      goto done;
    }
    if (unpacked + ulen > (uint64_t)HUB_MAX_XORB_UNPACKED) {
      rc = hub_error_set(HUB_ETOOBIG, "xorb: more than %ld uncompressed bytes",
                         (long)HUB_MAX_XORB_UNPACKED);
      goto done;
    }
    if ((rc = xet_payload_decode(dec, scheme, data + off + XET_CHUNK_HEADER, clen, buf, ulen))) {
      char why[256];
      snprintf(why, sizeof why, "%s", hub_error_msg());
      hub_error_set(rc, "xorb chunk %zu: %s", n, why);
      goto done;
    }
    if (n % 256 == 0) {
      xet_xorb_chunk *grown = realloc(chunks, (n + 256) * sizeof *chunks);
      if (!grown) {
        rc = hub_error_set(HUB_ERROR, "out of memory");
        goto done;
      }
      chunks = grown;
    }
    xet_xorb_chunk *c = &chunks[n++];
    xet_chunk_hash(&c->hash, buf, ulen);
    c->offset = (uint32_t)off;
    c->stored_len = XET_CHUNK_HEADER + clen;
    c->len = ulen;
    c->unpacked_start = (uint32_t)unpacked;
    xet_merkle_add(&m, &c->hash, ulen);
    unpacked += ulen;
    off += c->stored_len;
  }
  if (n == 0) {
    rc = hub_error_set(HUB_EINVALID, "xorb: no chunks");
    goto done;
  }
  xet_merkle_final(&m, &out->hash, NULL);
  if (expected && !xet_hash_eq(expected, &out->hash)) {
    char want[65], got[65];
    xet_hash_str(want, expected);
    xet_hash_str(got, &out->hash);
    rc = hub_error_set(HUB_EINVALID, "xorb hash mismatch: expected %s, content is %s", want, got);
    goto done;
  }
  out->n_chunks = n;
  out->chunks = chunks;
  chunks = NULL;
  out->data_len = off;
  out->unpacked_len = unpacked;
  out->had_footer = footer;
done:
  free(chunks);
  free(buf);
  xet_decoder_free(dec);
  if (rc) memset(out, 0, sizeof *out);
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
