/* libFuzzer: xorb parser (chunk headers, LZ4 frames, BG4). An accepted xorb must be
 * self-consistent, and every record must decode again to bytes with the recorded hash.
 * The streamed parser, fed in pieces, must agree with the one-call parser and hand on
 * exactly the record bytes. */
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

struct sink {
  const unsigned char *data;
  size_t off;
};
static int same_bytes(const uint8_t *rec, size_t len, void *p) {
  struct sink *k = p;
  if (memcmp(k->data + k->off, rec, len) != 0) abort();
  k->off += len;
  return 0;
}

static int streamed(const unsigned char *data, size_t size, xet_xorb *out, size_t *records) {
  xet_xorb_stream *s;
  struct sink k = {data, 0};
  if (xet_xorb_stream_new(&s, same_bytes, &k) != 0) abort();
  size_t piece = size ? (size_t)data[0] * 97 + 1 : 1;
  int rc = 0;
  for (size_t off = 0; !rc && off < size; off += piece)
    rc = xet_xorb_stream_feed(s, data + off, size - off < piece ? size - off : piece);
  if (!rc) rc = xet_xorb_stream_finish(s, out, NULL);
  xet_xorb_stream_free(s);
  *records = k.off;
  return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  xet_xorb x, z;
  size_t records = 0;
  int one = xet_xorb_parse(&x, data, size, NULL);
  int two = streamed(data, size, &z, &records);
  if ((one == 0) != (two == 0)) abort();
  if (one != 0) return 0;
  if (z.n_chunks != x.n_chunks || !xet_hash_eq(&z.hash, &x.hash) || z.data_len != x.data_len ||
      records != x.data_len || memcmp(z.chunks, x.chunks, x.n_chunks * sizeof *x.chunks) != 0)
    abort();
  xet_xorb_dispose(&z);
  static uint8_t out[XET_CHUNK_MAX];
  uint64_t off = 0, unpacked = 0;
  xet_node *nodes = malloc(x.n_chunks * sizeof *nodes);
  xet_decoder *dec = NULL;
  if (!nodes || xet_decoder_new(&dec) != 0) abort();
  for (size_t i = 0; i < x.n_chunks; i++) {
    const xet_xorb_chunk *c = &x.chunks[i];
    size_t ulen, rlen;
    if (c->offset != off || c->unpacked_start != unpacked) abort();
    if (xet_record_decode(dec, data + off, size - off, out, &ulen, &rlen) != 0) abort();
    if (ulen != c->len || rlen != c->stored_len) abort();
    xet_hash h;
    xet_chunk_hash(&h, out, ulen);
    if (!xet_hash_eq(&h, &c->hash)) abort();
    nodes[i].hash = h;
    nodes[i].len = ulen;
    off += rlen;
    unpacked += ulen;
  }
  if (off != x.data_len || unpacked != x.unpacked_len) abort();
  xet_hash root;
  xet_xorb_hash(&root, nodes, x.n_chunks);
  if (!xet_hash_eq(&root, &x.hash)) abort();
  /* the computed hash is accepted as the expected one */
  xet_xorb y;
  if (xet_xorb_parse(&y, data, size, &root) != 0) abort();
  xet_xorb_dispose(&y);
  xet_decoder_free(dec);
  free(nodes);
  xet_xorb_dispose(&x);
  return 0;
}
