/* Shard format (spec §5): strict linear parser, serializer and the global-dedup reply. */
#include "xet/xet.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/limits.h"

static const uint8_t TAG[32] = {0x48, 0x46, 0x52, 0x65, 0x70, 0x6F, 0x4D, 0x65, 0x74, 0x61, 0x44,
                                0x61, 0x74, 0x61, 0x00, 0x55, 0x69, 0x67, 0x45, 0x6A, 0x7B, 0x81,
                                0x57, 0x83, 0xA5, 0xBD, 0xD9, 0x5C, 0xCD, 0xD1, 0x4A, 0xA9};

#define E XET_SHARD_ENTRY

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static int is_bookend(const uint8_t *p) {
  for (int i = 0; i < 32; i++)
    if (p[i] != 0xFF) return 0;
  return 1;
}

static int bad(const char *what, size_t off) {
  return hub_error_set(HUB_EINVALID, "shard: %s (at offset %zu)", what, off);
}

/* One pass over the sections. With `s->term_store` etc. NULL it only validates and counts
 * (*n_*); with storage allocated it fills it. Returns the end offset of the CAS bookend. */
static int walk(xet_shard *s, const uint8_t *d, size_t end, size_t *n_files, size_t *n_terms,
                size_t *n_cas, size_t *n_chunks, size_t *out_off) {
  int fill = s->files != NULL;
  size_t off = E, nf = 0, nt = 0, nc = 0, nk = 0;
  for (;;) { /* file section */
    if (end - off < E) return bad("file section runs past the end", off);
    const uint8_t *h = d + off;
    if (is_bookend(h)) {
      off += E;
      break;
    }
    uint32_t flags = rd32(h + 32), n = rd32(h + 36);
    if (flags & ~(XET_FILE_FLAG_VERIFY | XET_FILE_FLAG_META)) return bad("unknown file flags", off);
    uint64_t need = (uint64_t)n * ((flags & XET_FILE_FLAG_VERIFY) ? 2 : 1) +
                    ((flags & XET_FILE_FLAG_META) ? 1 : 0);
    if (need > (end - off - E) / E) return bad("file entry count exceeds the shard", off);
    xet_hash fh;
    memcpy(fh.b, h, 32);
    if ((n == 0) != xet_hash_is_zero(&fh))
      return bad("only the empty file (zero hash) may have no terms", off);
    const uint8_t *te = h + E, *ve = te + (size_t)n * E, *me = ve;
    if (flags & XET_FILE_FLAG_VERIFY) me = ve + (size_t)n * E;
    xet_file *f = fill ? &s->files[nf] : NULL;
    if (f) {
      f->file_hash = fh;
      f->flags = flags;
      f->n_terms = n;
      f->terms = s->term_store + nt;
      f->size = 0;
      memset(&f->sha256, 0, sizeof f->sha256);
      if (flags & XET_FILE_FLAG_META) memcpy(f->sha256.b, me, 32);
    }
    for (uint32_t i = 0; i < n; i++) {
      const uint8_t *t = te + (size_t)i * E;
      uint32_t bytes = rd32(t + 36), a = rd32(t + 40), b = rd32(t + 44);
      if (a >= b || b > HUB_MAX_XORB_CHUNKS) return bad("bad term chunk range", off);
      if (bytes < b - a || (uint64_t)bytes > (uint64_t)(b - a) * XET_CHUNK_MAX)
        return bad("term byte count impossible for its chunk count", off);
      if (f) {
        xet_term *x = &f->terms[i];
        memcpy(x->xorb.b, t, 32);
        x->flags = rd32(t + 32);
        x->unpacked_bytes = bytes;
        x->chunk_start = a;
        x->chunk_end = b;
        memset(&x->range_hash, 0, sizeof x->range_hash);
        if (flags & XET_FILE_FLAG_VERIFY) memcpy(x->range_hash.b, ve + (size_t)i * E, 32);
        f->size += bytes;
      }
    }
    nf++;
    nt += n;
    off += E + (size_t)need * E;
  }
  for (;;) { /* CAS section */
    if (end - off < E) return bad("CAS section runs past the end", off);
    const uint8_t *h = d + off;
    if (is_bookend(h)) {
      off += E;
      break;
    }
    uint32_t n = rd32(h + 36), in_cas = rd32(h + 40);
    if (n < 1 || n > HUB_MAX_XORB_CHUNKS) return bad("CAS block chunk count out of range", off);
    if (n > (end - off - E) / E) return bad("CAS entry count exceeds the shard", off);
    xet_cas *c = fill ? &s->cas[nc] : NULL;
    if (c) {
      memcpy(c->xorb.b, h, 32);
      c->flags = rd32(h + 32);
      c->bytes_in_cas = in_cas;
      c->bytes_on_disk = rd32(h + 44);
      c->n_chunks = n;
      c->chunks = s->chunk_store + nk;
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
      const uint8_t *e = h + E + (size_t)i * E;
      uint32_t start = rd32(e + 32), len = rd32(e + 36);
      if (len < 1 || len > XET_CHUNK_MAX) return bad("CAS chunk size out of range", off);
      if (start != sum) return bad("CAS chunk offsets do not add up", off);
      sum += len;
      if (c) {
        memcpy(c->chunks[i].hash.b, e, 32);
        c->chunks[i].unpacked_start = start;
        c->chunks[i].len = len;
        c->chunks[i].flags = rd32(e + 40);
      }
    }
    if (sum != in_cas) return bad("CAS block byte count does not match its chunks", off);
    nc++;
    nk += n;
    off += E + (size_t)n * E;
  }
  *n_files = nf;
  *n_terms = nt;
  *n_cas = nc;
  *n_chunks = nk;
  *out_off = off;
  return 0;
}

int xet_shard_parse(xet_shard *out, const uint8_t *data, size_t len) {
  size_t nf, nt, nc, nk, off, end = len;
  int rc;
  memset(out, 0, sizeof *out);
  if (len > HUB_MAX_SHARD_BODY) return hub_error_set(HUB_ETOOBIG, "shard: body over the limit");
  if (len < E) return bad("shorter than its header", 0);
  if (memcmp(data, TAG, 32) != 0) return bad("bad tag", 0);
  if (rd64(data + 32) != 2) return bad("version is not 2", 32);
  uint64_t fsize = rd64(data + 40);
  if (fsize != 0 && fsize != XET_SHARD_FOOTER) return bad("footer_size is not 0 or 200", 40);
  if (fsize) {
    if (len < E + XET_SHARD_FOOTER) return bad("too short for its footer", 0);
    end = len - XET_SHARD_FOOTER;
    const uint8_t *f = data + end;
    xet_shard_footer *ft = &out->footer;
    ft->version = rd64(f);
    if (ft->version != 1) return bad("footer version is not 1", end);
    ft->file_info_offset = rd64(f + 8);
    ft->cas_info_offset = rd64(f + 16);
    ft->file_lookup_offset = rd64(f + 24);
    ft->file_lookup_n = rd64(f + 32);
    ft->xorb_lookup_offset = rd64(f + 40);
    ft->xorb_lookup_n = rd64(f + 48);
    ft->chunk_lookup_offset = rd64(f + 56);
    ft->chunk_lookup_n = rd64(f + 64);
    memcpy(ft->hmac_key.b, f + 72, 32);
    ft->created = rd64(f + 104);
    ft->expiry = rd64(f + 112);
    ft->stored_bytes_on_disk = rd64(f + 168);
    ft->materialized_bytes = rd64(f + 176);
    ft->stored_bytes = rd64(f + 184);
    ft->footer_offset = rd64(f + 192);
    out->has_footer = 1;
  }
  if ((rc = walk(out, data, end, &nf, &nt, &nc, &nk, &off))) goto fail;
  if (!fsize && off != end) {
    rc = bad("bytes after the CAS bookend without a footer", off);
    goto fail;
  }
  /* second pass fills; calloc(0) may return NULL, so allocate at least one element */
  out->files = calloc(nf ? nf : 1, sizeof *out->files);
  out->term_store = calloc(nt ? nt : 1, sizeof *out->term_store);
  out->cas = calloc(nc ? nc : 1, sizeof *out->cas);
  out->chunk_store = calloc(nk ? nk : 1, sizeof *out->chunk_store);
  if (!out->files || !out->term_store || !out->cas || !out->chunk_store) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto fail;
  }
  if ((rc = walk(out, data, end, &nf, &nt, &nc, &nk, &off))) goto fail;
  out->n_files = nf;
  out->n_cas = nc;
  return 0;
fail:
  xet_shard_dispose(out);
  return rc;
}

void xet_shard_dispose(xet_shard *s) {
  if (!s) return;
  free(s->files);
  free(s->cas);
  free(s->term_store);
  free(s->chunk_store);
  memset(s, 0, sizeof *s);
}

static void bookend(uint8_t *p) {
  memset(p, 0xFF, 32);
  memset(p + 32, 0, 16);
}

int xet_shard_serialize(uint8_t **out, size_t *out_len, const xet_shard *s) {
  /* size first, with overflow checks against the body limit */
  uint64_t entries = 1 /* header */ + 1 /* file bookend */ + 1 /* CAS bookend */;
  for (size_t i = 0; i < s->n_files; i++) {
    const xet_file *f = &s->files[i];
    entries += 1 + (uint64_t)f->n_terms * ((f->flags & XET_FILE_FLAG_VERIFY) ? 2 : 1) +
               ((f->flags & XET_FILE_FLAG_META) ? 1 : 0);
    if (entries > HUB_MAX_SHARD_BODY / E) break;
  }
  for (size_t i = 0; i < s->n_cas && entries <= HUB_MAX_SHARD_BODY / E; i++)
    entries += 1 + (uint64_t)s->cas[i].n_chunks;
  uint64_t total = entries * E + (s->has_footer ? XET_SHARD_FOOTER : 0);
  if (entries > HUB_MAX_SHARD_BODY / E || total > HUB_MAX_SHARD_BODY)
    return hub_error_set(HUB_ETOOBIG, "shard: would exceed the size limit");
  uint8_t *d = calloc(1, (size_t)total), *p = d;
  if (!d) return hub_error_set(HUB_ERROR, "out of memory");
  memcpy(p, TAG, 32);
  wr64(p + 32, 2);
  wr64(p + 40, s->has_footer ? XET_SHARD_FOOTER : 0);
  p += E;
  for (size_t i = 0; i < s->n_files; i++) {
    const xet_file *f = &s->files[i];
    memcpy(p, f->file_hash.b, 32);
    wr32(p + 32, f->flags);
    wr32(p + 36, (uint32_t)f->n_terms);
    p += E;
    for (size_t j = 0; j < f->n_terms; j++, p += E) {
      const xet_term *t = &f->terms[j];
      memcpy(p, t->xorb.b, 32);
      wr32(p + 32, t->flags);
      wr32(p + 36, t->unpacked_bytes);
      wr32(p + 40, t->chunk_start);
      wr32(p + 44, t->chunk_end);
    }
    if (f->flags & XET_FILE_FLAG_VERIFY)
      for (size_t j = 0; j < f->n_terms; j++, p += E)
        memcpy(p, f->terms[j].range_hash.b, 32);
    if (f->flags & XET_FILE_FLAG_META) {
      memcpy(p, f->sha256.b, 32);
      p += E;
    }
  }
  bookend(p);
  p += E;
  uint64_t cas_off = (uint64_t)(p - d);
  for (size_t i = 0; i < s->n_cas; i++) {
    const xet_cas *c = &s->cas[i];
    memcpy(p, c->xorb.b, 32);
    wr32(p + 32, c->flags);
    wr32(p + 36, (uint32_t)c->n_chunks);
    wr32(p + 40, c->bytes_in_cas);
    wr32(p + 44, c->bytes_on_disk);
    p += E;
    for (size_t j = 0; j < c->n_chunks; j++, p += E) {
      memcpy(p, c->chunks[j].hash.b, 32);
      wr32(p + 32, c->chunks[j].unpacked_start);
      wr32(p + 36, c->chunks[j].len);
      wr32(p + 40, c->chunks[j].flags);
    }
  }
  bookend(p);
  p += E;
  if (s->has_footer) {
    const xet_shard_footer *ft = &s->footer;
    uint64_t fo = (uint64_t)(p - d);
    wr64(p, 1);
    wr64(p + 8, E);
    wr64(p + 16, cas_off);
    wr64(p + 24, fo); /* no lookup tables: offsets = footer offset, counts 0 (§5.8) */
    wr64(p + 40, fo);
    wr64(p + 56, fo);
    memcpy(p + 72, ft->hmac_key.b, 32);
    wr64(p + 104, ft->created);
    wr64(p + 112, ft->expiry);
    wr64(p + 168, ft->stored_bytes_on_disk);
    wr64(p + 176, ft->materialized_bytes);
    wr64(p + 184, ft->stored_bytes);
    wr64(p + 192, fo);
  }
  *out = d;
  *out_len = (size_t)total;
  return 0;
}

int xet_shard_build_dedup(uint8_t **out, size_t *out_len, const xet_cas *cas, size_t n_cas,
                          const xet_hash *key, uint64_t created, uint64_t expiry) {
  xet_shard s;
  size_t nk = 0;
  int rc;
  memset(&s, 0, sizeof s);
  for (size_t i = 0; i < n_cas; i++) {
    if (cas[i].n_chunks > HUB_MAX_XORB_CHUNKS)
      return hub_error_set(HUB_EINVALID, "dedup shard: CAS block too large");
    nk += cas[i].n_chunks;
  }
  s.cas = calloc(n_cas ? n_cas : 1, sizeof *s.cas);
  s.chunk_store = calloc(nk ? nk : 1, sizeof *s.chunk_store);
  if (!s.cas || !s.chunk_store) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  int hmac = !xet_hash_is_zero(key);
  for (size_t i = 0, k = 0; i < n_cas; i++) {
    s.cas[i] = cas[i];
    s.cas[i].chunks = s.chunk_store + k;
    for (size_t j = 0; j < cas[i].n_chunks; j++, k++) {
      s.chunk_store[k] = cas[i].chunks[j];
      if (hmac) xet_hmac(&s.chunk_store[k].hash, &cas[i].chunks[j].hash, key);
    }
  }
  s.n_cas = n_cas;
  s.has_footer = 1;
  s.footer.hmac_key = *key;
  s.footer.created = created;
  s.footer.expiry = expiry;
  rc = xet_shard_serialize(out, out_len, &s);
done:
  free(s.cas);
  free(s.chunk_store);
  return rc;
}

static int cmp_hash(const void *a, const void *b) {
  return memcmp(a, b, XET_HASH_LEN);
}

int xet_shard_xorbs(const xet_shard *s, xet_hash **out, size_t *out_n) {
  size_t n = s->n_cas;
  for (size_t i = 0; i < s->n_files; i++)
    n += s->files[i].n_terms;
  xet_hash *v = malloc((n ? n : 1) * sizeof *v);
  if (!v) return hub_error_set(HUB_ERROR, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < s->n_files; i++)
    for (size_t j = 0; j < s->files[i].n_terms; j++)
      v[k++] = s->files[i].terms[j].xorb;
  for (size_t i = 0; i < s->n_cas; i++)
    v[k++] = s->cas[i].xorb;
  qsort(v, k, sizeof *v, cmp_hash);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || !xet_hash_eq(&v[u - 1], &v[i])) v[u++] = v[i];
  *out = v;
  *out_n = u;
  return 0;
}
