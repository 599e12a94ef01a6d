/* Reconstruction planning (spec §6.4): which chunk ranges of which xorbs rebuild bytes
 * [first, last] of a file, and which byte ranges of the serialized xorbs to fetch. */
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int grow(void **v, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return 0;
  size_t c = *cap ? *cap * 2 : 8;
  void *g = realloc(*v, c * elem);
  if (!g) return hub_error_set(HUB_ERROR, "out of memory");
  *v = g;
  *cap = c;
  return 0;
}

static int cmp_fetch(const void *a, const void *b) {
  const xet_recon_fetch *x = a, *y = b;
  int c = memcmp(x->xorb.b, y->xorb.b, XET_HASH_LEN);
  if (c) return c;
  return x->chunk_start < y->chunk_start ? -1 : x->chunk_start > y->chunk_start;
}

int xet_reconstruct(xet_recon *out, const xet_term *terms, size_t n_terms, uint64_t size,
                    uint64_t first, uint64_t last, xet_xorb_lookup_fn lookup, void *payload) {
  size_t tcap = 0, fcap = 0;
  int rc = 0;
  memset(out, 0, sizeof *out);
  if (first >= size || first > last)
    return hub_error_set(HUB_ERANGE, "range start %llu beyond file size %llu",
                         (unsigned long long)first, (unsigned long long)size);
  if (last >= size) last = size - 1;
  uint64_t pos = 0; /* file offset of the current term */
  for (size_t i = 0; i < n_terms && pos <= last; i++) {
    const xet_term *t = &terms[i];
    if (pos + t->unpacked_bytes <= first) {
      pos += t->unpacked_bytes;
      continue;
    }
    const xet_xorb_chunk *ch;
    size_t n;
    if ((rc = lookup(payload, &t->xorb, &ch, &n))) goto fail;
    if (t->chunk_start >= t->chunk_end || t->chunk_end > n) {
      rc = hub_error_set(HUB_EINVALID, "stored term %zu outside its xorb", i);
      goto fail;
    }
    uint64_t cpos = pos, kept = 0, kept_pos = 0;
    uint32_t ks = 0, ke = 0;
    for (uint32_t k = t->chunk_start; k < t->chunk_end; k++) {
      uint64_t cend = cpos + ch[k].len; /* exclusive */
      if (cend > first && cpos <= last) {
        if (!kept) {
          ks = k;
          kept_pos = cpos;
        }
        ke = k + 1;
        kept += ch[k].len;
      }
      cpos = cend;
    }
    if (cpos - pos != t->unpacked_bytes) {
      rc = hub_error_set(HUB_EINVALID, "stored term %zu size disagrees with its xorb", i);
      goto fail;
    }
    if (kept) {
      if (out->n_terms == 0) out->offset_into_first_range = first - kept_pos;
      if ((rc = grow((void **)&out->terms, out->n_terms, &tcap, sizeof *out->terms))) goto fail;
      out->terms[out->n_terms++] = (xet_recon_term){t->xorb, ks, ke, kept};
      if ((rc = grow((void **)&out->fetch, out->n_fetch, &fcap, sizeof *out->fetch))) goto fail;
      out->fetch[out->n_fetch++] = (xet_recon_fetch){
          t->xorb, ks, ke, ch[ks].offset, (uint64_t)ch[ke - 1].offset + ch[ke - 1].stored_len - 1};
    }
    pos = cpos;
  }
  if (out->n_terms == 0) {
    rc = hub_error_set(HUB_EINVALID, "file terms do not cover the requested range");
    goto fail;
  }
  /* coalesce overlapping or adjacent ranges of the same xorb */
  qsort(out->fetch, out->n_fetch, sizeof *out->fetch, cmp_fetch);
  size_t u = 0;
  for (size_t i = 0; i < out->n_fetch; i++) {
    xet_recon_fetch *f = &out->fetch[i];
    if (u > 0) {
      xet_recon_fetch *p = &out->fetch[u - 1];
      if (xet_hash_eq(&p->xorb, &f->xorb) && f->chunk_start <= p->chunk_end) {
        if (f->chunk_end > p->chunk_end) {
          p->chunk_end = f->chunk_end;
          p->byte_end = f->byte_end;
        }
        continue;
      }
    }
    out->fetch[u++] = *f;
  }
  out->n_fetch = u;
  return 0;
fail:
  xet_recon_dispose(out);
  return rc;
}

void xet_recon_dispose(xet_recon *r) {
  if (!r) return;
  free(r->terms);
  free(r->fetch);
  memset(r, 0, sizeof *r);
}
