/* libFuzzer: xorb parser (chunk headers, LZ4 frames, BG4). An accepted xorb must be
 * self-consistent, and every record must decode again to bytes with the recorded hash. */
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  xet_xorb x;
  if (xet_xorb_parse(&x, data, size, NULL) != 0) return 0;
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
