/* libFuzzer: shard parser, serializer, store check and reconstruction planning. An accepted
 * shard re-serializes to a shard that parses to the same bytes again (serialize is a fixed
 * point after one round), and checking / planning against a fake store never misbehaves. */
#include "util/error.h"
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

/* Fake store: any xorb whose first byte is even exists, with (first byte % 37) + 1 chunks
 * of 1000 + k bytes. */
static xet_xorb_chunk fake[40];

static int lookup(void *payload, const xet_hash *xorb, const xet_xorb_chunk **out, size_t *n) {
  (void)payload;
  if (xorb->b[0] & 1) return HUB_ENOTFOUND;
  size_t m = (size_t)(xorb->b[0] % 37) + 1;
  uint32_t pos = 0, off = 0;
  for (size_t k = 0; k < m; k++) {
    uint32_t v = (uint32_t)k;
    xet_chunk_hash(&fake[k].hash, &v, sizeof v);
    fake[k].len = 1000 + (uint32_t)k;
    fake[k].unpacked_start = pos;
    fake[k].offset = off;
    fake[k].stored_len = 8 + fake[k].len;
    pos += fake[k].len;
    off += fake[k].stored_len;
  }
  *out = fake;
  *n = m;
  return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  xet_shard s, t;
  uint8_t *a = NULL, *b = NULL;
  size_t alen, blen;
  if (xet_shard_parse(&s, data, size) != 0) return 0;
  if (xet_shard_serialize(&a, &alen, &s) != 0) abort();
  if (xet_shard_parse(&t, a, alen) != 0) abort();
  if (t.n_files != s.n_files || t.n_cas != s.n_cas) abort();
  if (xet_shard_serialize(&b, &blen, &t) != 0) abort();
  if (alen != blen || memcmp(a, b, alen) != 0) abort();
  (void)xet_shard_check(&s, XET_CHECK_REQUIRE_SHA256, lookup, NULL);
  for (size_t i = 0; i < s.n_files; i++) {
    const xet_file *f = &s.files[i];
    if (f->n_terms == 0) continue;
    xet_recon r;
    uint64_t first = f->size ? size % f->size : 0;
    int rc = xet_reconstruct(&r, f->terms, f->n_terms, f->size, first, UINT64_MAX, lookup, NULL);
    if (rc == 0) {
      if (r.n_terms == 0 || r.n_fetch == 0) abort();
      for (size_t k = 0; k < r.n_fetch; k++)
        if (r.fetch[k].chunk_start >= r.fetch[k].chunk_end ||
            r.fetch[k].byte_start > r.fetch[k].byte_end)
          abort();
      xet_recon_dispose(&r);
    }
  }
  xet_hash *xs;
  size_t nx;
  if (xet_shard_xorbs(&s, &xs, &nx) != 0) abort();
  free(xs);
  free(a);
  free(b);
  xet_shard_dispose(&s);
  xet_shard_dispose(&t);
  return 0;
}
