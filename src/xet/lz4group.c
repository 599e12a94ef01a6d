/* Chunk payload codecs (spec §4.2): LZ4 *frame* format through liblz4's lz4frame API, and
 * the BG4 byte grouping applied before LZ4 for scheme 2. */
#include "xet/xet.h"

#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void xet_bg4_group(uint8_t *dst, const uint8_t *src, size_t n) {
  size_t q = n / 4, r = n % 4, o = 0;
  for (size_t g = 0; g < 4; g++) {
    size_t gn = q + (g < r ? 1 : 0);
    for (size_t i = 0; i < gn; i++)
      dst[o++] = src[4 * i + g];
  }
}

void xet_bg4_ungroup(uint8_t *dst, const uint8_t *src, size_t n) {
  size_t q = n / 4, r = n % 4, o = 0;
  for (size_t g = 0; g < 4; g++) {
    size_t gn = q + (g < r ? 1 : 0);
    for (size_t i = 0; i < gn; i++)
      dst[4 * i + g] = src[o++];
  }
}

struct xet_decoder {
  LZ4F_dctx *dctx; /* reused: liblz4 keeps its block buffers (up to 2 x 4 MiB) between frames */
  uint8_t scratch[XET_CHUNK_MAX];
};

int xet_decoder_new(xet_decoder **out) {
  xet_decoder *d = malloc(sizeof *d);
  if (!d) return hub_error_set(HUB_ERROR, "out of memory");
  if (LZ4F_isError(LZ4F_createDecompressionContext(&d->dctx, LZ4F_VERSION))) {
    free(d);
    return hub_error_set(HUB_ERROR, "lz4: out of memory");
  }
  *out = d;
  return 0;
}

void xet_decoder_free(xet_decoder *d) {
  if (!d) return;
  LZ4F_freeDecompressionContext(d->dctx);
  free(d);
}

/* Decode one LZ4 frame that must span src[0..src_len) exactly into exactly n bytes. */
static int lz4_frame_decode(LZ4F_dctx *dctx, const uint8_t *src, size_t src_len, uint8_t *out,
                            size_t n) {
  int rc = 0;
  LZ4F_resetDecompressionContext(dctx); /* a previous frame may have stopped half-way */
  size_t in = 0, produced = 0;
  for (;;) {
    size_t srcn = src_len - in, dstn = n - produced;
    uint8_t sink;
    uint8_t *dst = out + produced;
    if (dstn == 0) { /* output full: any further output means the chunk is too long */
      dst = &sink;
      dstn = 1;
    }
    size_t hint = LZ4F_decompress(dctx, dst, &dstn, src + in, &srcn, NULL);
    if (LZ4F_isError(hint)) {
      rc = hub_error_set(HUB_EINVALID, "xorb: bad LZ4 frame (%s)", LZ4F_getErrorName(hint));
      break;
    }
    if (dst == &sink && dstn > 0) {
      rc = hub_error_set(HUB_EINVALID, "xorb: LZ4 frame decodes past the chunk size");
      break;
    }
    in += srcn;
    if (dst != &sink) produced += dstn;
    if (hint == 0) break; /* frame complete */
    if (srcn == 0 && dstn == 0) {
      rc = hub_error_set(HUB_EINVALID, "xorb: truncated LZ4 frame");
      break;
    }
  }
  if (rc == 0 && in != src_len)
    rc = hub_error_set(HUB_EINVALID, "xorb: trailing bytes after the LZ4 frame");
  if (rc == 0 && produced != n)
    rc = hub_error_set(HUB_EINVALID, "xorb: LZ4 frame decodes to %zu bytes, header says %zu",
                       produced, n);
  return rc;
}

int xet_payload_decode(xet_decoder *dec, int scheme, const uint8_t *src, size_t src_len,
                       uint8_t *out, size_t n) {
  if (n > XET_CHUNK_MAX) return hub_error_set(HUB_EINVALID, "xorb: chunk size %zu too large", n);
  if (!dec && scheme != XET_SCHEME_NONE) {
    int rc = xet_decoder_new(&dec);
    if (rc == 0) rc = xet_payload_decode(dec, scheme, src, src_len, out, n);
    xet_decoder_free(dec);
    return rc;
  }
  switch (scheme) {
  case XET_SCHEME_NONE:
    if (src_len != n)
      return hub_error_set(HUB_EINVALID, "xorb: raw chunk of %zu bytes claims %zu", src_len, n);
    memcpy(out, src, n);
    return 0;
  case XET_SCHEME_LZ4:
    return lz4_frame_decode(dec->dctx, src, src_len, out, n);
  case XET_SCHEME_BG4: {
    int rc = lz4_frame_decode(dec->dctx, src, src_len, dec->scratch, n);
    if (rc == 0) xet_bg4_ungroup(out, dec->scratch, n);
    return rc;
  }
  default:
    return hub_error_set(HUB_EINVALID, "xorb: unknown compression scheme %d", scheme);
  }
}

int xet_payload_encode(int scheme, const uint8_t *src, size_t n, uint8_t **out, size_t *out_len,
                       int *out_scheme) {
  uint8_t *grouped = NULL, *dst = NULL;
  int rc = 0;
  *out = NULL;
  if (scheme == XET_SCHEME_LZ4 || scheme == XET_SCHEME_BG4) {
    const uint8_t *in = src;
    if (scheme == XET_SCHEME_BG4) {
      grouped = malloc(n ? n : 1);
      if (!grouped) return hub_error_set(HUB_ERROR, "out of memory");
      xet_bg4_group(grouped, src, n);
      in = grouped;
    }
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    size_t cap = LZ4F_compressFrameBound(n, &prefs);
    dst = malloc(cap);
    if (!dst) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      goto done;
    }
    size_t m = LZ4F_compressFrame(dst, cap, in, n, &prefs);
    if (LZ4F_isError(m)) {
      rc = hub_error_set(HUB_ERROR, "lz4: %s", LZ4F_getErrorName(m));
      goto done;
    }
    if (m < n) {
      *out = dst;
      *out_len = m;
      *out_scheme = scheme;
      dst = NULL;
      goto done;
    }
  } else if (scheme != XET_SCHEME_NONE) {
    return hub_error_set(HUB_EINVALID, "xorb: unknown compression scheme %d", scheme);
  }
  /* raw: requested, or compression did not help */
  *out = malloc(n ? n : 1);
  if (!*out) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  memcpy(*out, src, n);
  *out_len = n;
  *out_scheme = XET_SCHEME_NONE;
done:
  free(grouped);
  free(dst);
  return rc;
}
