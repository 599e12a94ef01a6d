/* Shard upload validation against stored xorbs (spec §5.6 items 3-4). Verification and
 * file hashes are recomputed from the stored chunk-hash lists; xorb data is never re-read. */
#include "xet/xet.h"

#include <string.h>

#include "util/error.h"
#include "util/limits.h"

static int lookup_xorb(xet_xorb_lookup_fn lookup, void *payload, const xet_hash *x,
                       const xet_xorb_chunk **chunks, size_t *n) {
  int rc = lookup(payload, x, chunks, n);
  if (rc == HUB_ENOTFOUND) {
    char s[65];
    xet_hash_str(s, x);
    return hub_error_set(HUB_EINVALID, "shard references unknown xorb %s", s);
  }
  return rc;
}

static int check_file(const xet_file *f, unsigned flags, xet_xorb_lookup_fn lookup, void *payload,
                      uint64_t *visits) {
  char fs[65];
  xet_hash_str(fs, &f->file_hash);
  if (!(f->flags & XET_FILE_FLAG_VERIFY))
    return hub_error_set(HUB_EINVALID, "file %s: no verification entries", fs);
  if ((flags & XET_CHECK_REQUIRE_SHA256) && !(f->flags & XET_FILE_FLAG_META))
    return hub_error_set(HUB_EINVALID, "file %s: no sha256 metadata", fs);
  xet_merkle m;
  xet_merkle_init(&m);
  for (size_t i = 0; i < f->n_terms; i++) {
    const xet_term *t = &f->terms[i];
    const xet_xorb_chunk *ch;
    size_t n;
    int rc = lookup_xorb(lookup, payload, &t->xorb, &ch, &n);
    if (rc) return rc;
    if (t->chunk_start >= t->chunk_end || t->chunk_end > n)
      return hub_error_set(HUB_EINVALID,
                           "file %s term %zu: chunk range [%u,%u) outside xorb of %zu", fs, i,
                           t->chunk_start, t->chunk_end, n);
    *visits += t->chunk_end - t->chunk_start;
    if (*visits > HUB_MAX_SHARD_CHUNK_REFS)
      return hub_error_set(HUB_ETOOBIG, "shard references more than %ld chunks",
                           (long)HUB_MAX_SHARD_CHUNK_REFS);
    xet_verifier v;
    xet_verifier_init(&v);
    uint64_t bytes = 0;
    for (uint32_t k = t->chunk_start; k < t->chunk_end; k++) {
      xet_verifier_add(&v, &ch[k].hash);
      xet_merkle_add(&m, &ch[k].hash, ch[k].len);
      bytes += ch[k].len;
    }
    if (bytes != t->unpacked_bytes)
      return hub_error_set(HUB_EINVALID, "file %s term %zu: claims %u bytes, chunks hold %llu", fs,
                           i, t->unpacked_bytes, (unsigned long long)bytes);
    xet_hash vh;
    xet_verifier_final(&v, &vh);
    if (!xet_hash_eq(&vh, &t->range_hash))
      return hub_error_set(HUB_EINVALID, "file %s term %zu: verification hash mismatch", fs, i);
  }
  xet_hash got;
  xet_merkle_final_file(&m, &got);
  if (!xet_hash_eq(&got, &f->file_hash)) {
    char gs[65];
    xet_hash_str(gs, &got);
    return hub_error_set(HUB_EINVALID, "file hash mismatch: shard says %s, terms give %s", fs, gs);
  }
  return 0;
}

static int check_cas(const xet_cas *c, xet_xorb_lookup_fn lookup, void *payload) {
  const xet_xorb_chunk *ch;
  size_t n;
  char xs[65];
  int rc = lookup_xorb(lookup, payload, &c->xorb, &ch, &n);
  if (rc) return rc;
  xet_hash_str(xs, &c->xorb);
  if (n != c->n_chunks)
    return hub_error_set(HUB_EINVALID, "CAS block %s: %zu chunks, stored xorb has %zu", xs,
                         c->n_chunks, n);
  uint64_t total = 0;
  for (size_t k = 0; k < n; k++) {
    const xet_cas_chunk *e = &c->chunks[k];
    if (!xet_hash_eq(&e->hash, &ch[k].hash) || e->len != ch[k].len ||
        e->unpacked_start != ch[k].unpacked_start)
      return hub_error_set(HUB_EINVALID, "CAS block %s: chunk %zu differs from the stored xorb", xs,
                           k);
    total += ch[k].len;
  }
  if (total != c->bytes_in_cas)
    return hub_error_set(HUB_EINVALID, "CAS block %s: num_bytes_in_cas mismatch", xs);
  return 0;
}

int xet_shard_check(const xet_shard *s, unsigned flags, xet_xorb_lookup_fn lookup, void *payload) {
  uint64_t visits = 0;
  for (size_t i = 0; i < s->n_files; i++) {
    int rc = check_file(&s->files[i], flags, lookup, payload, &visits);
    if (rc) return rc;
  }
  for (size_t i = 0; i < s->n_cas; i++) {
    int rc = check_cas(&s->cas[i], lookup, payload);
    if (rc) return rc;
  }
  return 0;
}
