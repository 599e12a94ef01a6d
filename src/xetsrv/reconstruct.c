/* Bytes out of xorbs: the streaming file reader (the "byte bridge" of §7.2, used by
 * /resolve, git-lfs downloads, verification and fsck), the signed xorb transfer URLs
 * (§6.5) and the signed git-lfs download route for Xet-only objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/sign.h"
#include "http/range.h"
#include "lfs/lfs.h"
#include "blob/backend.h"
#include "util/error.h"
#include "blob/backend.h"
#include "db/objects.h"
#include "security/security.h"
#include "xetsrv/internal.h"

/* ---- reader ------------------------------------------------------------------------------ */

struct xs_reader {
  xs_file f;
  xs_cache cache;
  xet_decoder *dec;
  uint64_t pos, end;  /* next file offset to hand out; end (exclusive) */
  size_t ti;          /* current term */
  uint32_t ci;        /* current chunk (index in the term's xorb) */
  uint64_t chunk_pos; /* file offset of chunk (ti, ci) */
  uint8_t *out;       /* decoded chunk (ti, ci) when out_len > 0 */
  size_t out_len;
  uint8_t *rec; /* one serialized chunk record */
  int fd;
  xet_hash fd_xorb;
  /* Stores without file descriptors (S3): a ranged stream from one chunk to the end of its
   * xorb, kept while the chunks read are consecutive (the common, sequential case). */
  blob_stream *st;
  uint64_t st_pos; /* xorb offset the stream reads next */
  int no_fd;
};

int xs_reader_open(xs_reader **out, const xet_hash *file, uint64_t start, uint64_t len) {
  xs_reader *rd = calloc(1, sizeof *rd);
  int rc;
  *out = NULL;
  if (!rd) return hub_error_set(HUB_ERROR, "out of memory");
  rd->fd = -1;
  if ((rc = xs_file_get(file, &rd->f))) goto fail;
  if (start > rd->f.size || len > rd->f.size - start) {
    rc = hub_error_set(HUB_ERANGE, "range outside the file");
    goto fail;
  }
  rd->pos = start;
  rd->end = start + len;
  if (!(rd->out = malloc(XET_CHUNK_MAX)) ||
      !(rd->rec = malloc(XET_CHUNK_HEADER + HUB_MAX_XORB_CHUNK_STORED))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto fail;
  }
  if ((rc = xet_decoder_new(&rd->dec))) goto fail;
  if (rd->f.n) rd->ci = rd->f.terms[0].chunk_start;
  *out = rd;
  return 0;
fail:
  xs_reader_free(rd);
  return rc;
}

void xs_reader_free(xs_reader *rd) {
  if (!rd) return;
  if (rd->fd >= 0) close(rd->fd);
  blob_stream_close(rd->st);
  xet_decoder_free(rd->dec);
  xs_cache_dispose(&rd->cache);
  xs_file_dispose(&rd->f);
  free(rd->out);
  free(rd->rec);
  free(rd);
}

static int decode_current(xs_reader *rd, const xs_xorb *x) {
  const xet_xorb_chunk *ch = &x->chunks[rd->ci];
  if (ch->stored_len > XET_CHUNK_HEADER + HUB_MAX_XORB_CHUNK_STORED)
    return hub_error_set(HUB_ERROR, "stored chunk record too large");
  int same = (rd->fd >= 0 || rd->st) && xet_hash_eq(&rd->fd_xorb, &x->hash);
  if (!rd->no_fd && !same) {
    int64_t size = 0;
    if (rd->fd >= 0) close(rd->fd);
    rd->fd = -1;
    int rc = blob_open_fd(xs_blobs(), x->blob_oid, &rd->fd, &size);
    if (rc == HUB_EUNSUPPORTED)
      rd->no_fd = 1;
    else if (rc)
      return rc;
    rd->fd_xorb = x->hash;
  }
  size_t got = 0;
  if (rd->no_fd) {
    if (!same || !rd->st || rd->st_pos != ch->offset) {
      int64_t total = 0;
      int rc = blob_stat(xs_blobs(), x->blob_oid, &total);
      blob_stream_close(rd->st);
      rd->st = NULL;
      if (!rc && (uint64_t)total < ch->offset + ch->stored_len)
        rc = hub_error_set(HUB_ERROR, "xorb object %s is truncated", x->blob_oid);
      if (!rc)
        rc = blob_open_range(xs_blobs(), x->blob_oid, (int64_t)ch->offset,
                             total - (int64_t)ch->offset, &rd->st, NULL);
      if (rc) return rc;
      rd->st_pos = ch->offset;
      rd->fd_xorb = x->hash;
    }
    while (got < ch->stored_len) {
      size_t n = 0;
      int rc = blob_stream_read(rd->st, rd->rec + got, ch->stored_len - got, &n);
      if (!rc && !n) rc = hub_error_set(HUB_ERROR, "xorb object %s is truncated", x->blob_oid);
      if (rc) {
        blob_stream_close(rd->st);
        rd->st = NULL;
        return rc;
      }
      got += n;
    }
    rd->st_pos += got;
  } else {
    while (got < ch->stored_len) {
      ssize_t n =
          pread(rd->fd, rd->rec + got, ch->stored_len - got, (off_t)ch->offset + (off_t)got);
      if (n <= 0) return hub_error_set(HUB_ERROR, "xorb object %s is truncated", x->blob_oid);
      got += (size_t)n;
    }
  }
  size_t olen = 0, rlen = 0;
  int rc = xet_record_decode(rd->dec, rd->rec, got, rd->out, &olen, &rlen);
  if (rc) return rc;
  if (olen != ch->len || rlen != ch->stored_len)
    return hub_error_set(HUB_ERROR, "xorb object %s disagrees with its chunk table", x->blob_oid);
  rd->out_len = olen;
  return 0;
}

int xs_reader_read(xs_reader *rd, uint8_t *buf, size_t cap, size_t *got) {
  *got = 0;
  while (*got < cap && rd->pos < rd->end) {
    if (rd->ti >= rd->f.n) return hub_error_set(HUB_ERROR, "file terms end before its size");
    const xet_term *t = &rd->f.terms[rd->ti];
    xs_xorb *x = xs_cache_get(&rd->cache, &t->xorb);
    if (!x) return hub_error_code() ? hub_error_code() : HUB_ERROR;
    if (rd->ci >= x->n || rd->ci >= t->chunk_end)
      return hub_error_set(HUB_ERROR, "file term outside its xorb");
    uint64_t len = x->chunks[rd->ci].len;
    if (rd->chunk_pos + len > rd->pos) {
      if (!rd->out_len) {
        int rc = decode_current(rd, x);
        if (rc) return rc;
      }
      size_t off = (size_t)(rd->pos - rd->chunk_pos);
      size_t n = rd->out_len - off;
      if (n > cap - *got) n = cap - *got;
      if (n > rd->end - rd->pos) n = (size_t)(rd->end - rd->pos);
      memcpy(buf + *got, rd->out + off, n);
      *got += n;
      rd->pos += n;
      if (rd->pos < rd->chunk_pos + len) continue; /* buffer full, chunk not finished */
    }
    /* next chunk */
    rd->chunk_pos += len;
    rd->out_len = 0;
    if (++rd->ci >= t->chunk_end && ++rd->ti < rd->f.n) rd->ci = rd->f.terms[rd->ti].chunk_start;
  }
  return 0;
}

/* ---- streamed replies ---------------------------------------------------------------------- */

static ssize_t stream_cb(void *payload, uint64_t pos, char *buf, size_t max) {
  xs_reader *rd = payload;
  size_t got = 0;
  if (xs_reader_read(rd, (uint8_t *)buf, max, &got)) {
    fprintf(stderr, "xet: reconstruction failed: %s\n", hub_error_msg());
    return -1;
  }
  return (ssize_t)got;
}

static void stream_free(void *payload) {
  xs_reader_free(payload);
}

int xetsrv_reply_bytes(hub_req *r, int status, const char *ctype, const xetsrv_file *f,
                       int64_t start, int64_t len) {
  xet_hash h;
  if (xet_hash_parse(&h, f->hash, 64)) return HUB_EINVALID;
  if (r->is_head) return http_reply_data_len(r, status, ctype, (uint64_t)len);
  xs_reader *rd;
  int rc = xs_reader_open(&rd, &h, (uint64_t)start, (uint64_t)len);
  if (rc) return rc;
  return http_reply_stream(r, status, ctype, (uint64_t)len, stream_cb, rd, stream_free);
}

/* ---- signed xorb transfer URLs (§6.5) ---------------------------------------------------- */

int64_t xs_xfer_ttl(void) {
  const char *e = getenv("MODELHUB_XET_URL_TTL");
  long v = e ? strtol(e, NULL, 10) : 0;
  return v > 0 ? v : XS_XFER_TTL_S;
}

int xs_xfer_url(hub_req *r, hub_buf *out, const xet_hash *h, uint64_t s, uint64_t e, int64_t exp) {
  char hs[65], subject[120];
  xet_hash_str(hs, h);
  snprintf(subject, sizeof subject, "%s/%llu-%llu", hs, (unsigned long long)s,
           (unsigned long long)e);
  hub_buf_printf(out, "%s%s/xfer/%s?", http_base_url(r), XS_CAS_PREFIX, subject);
  int rc = sign_make(out, "xet-xfer", subject, exp);
  if (rc) return rc;
  return out->failed ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

static int parse_u64(const char *s, const char *stop, uint64_t *out) {
  uint64_t v = 0;
  if (s == stop || (s[0] == '0' && s + 1 != stop)) return -1;
  for (; s < stop; s++) {
    if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 0;
}

static int check_sig(hub_req *r, const char *purpose, const char *subject) {
  const char *exp = http_param(r, "exp"), *sig = http_param(r, "sig");
  if (!exp || !sig) return hub_error_set(HUB_EFORBIDDEN, "This URL must be signed (exp, sig)");
  if (sign_check(purpose, subject, exp, sig, (int64_t)time(NULL)))
    return hub_error_set(HUB_EFORBIDDEN, strcmp(hub_error_msg(), "expired")
                                             ? "Invalid signed URL (tampered with)"
                                             : "Signed URL expired; fetch a new reconstruction");
  return 0;
}

/* GET /xet-cas/xfer/{xorb}/{s}-{e}?exp&sig: exact 206 ranges inside [s, e]. */
static int h_xfer(hub_req *r) {
  xet_hash h;
  char subject[120];
  const char *dash = strchr(r->cap[1], '-');
  uint64_t s, e;
  if (xet_hash_parse(&h, r->cap[0], strlen(r->cap[0])) || !dash || parse_u64(r->cap[1], dash, &s) ||
      parse_u64(dash + 1, dash + strlen(dash), &e) || e < s)
    return hub_error_set(HUB_ENOTFOUND, "Malformed transfer URL");
  snprintf(subject, sizeof subject, "%s/%s", r->cap[0], r->cap[1]);
  int rc = check_sig(r, "xet-xfer", subject);
  if (rc) return rc;
  xs_xorb x;
  if ((rc = xs_xorb_get(&h, &x))) return rc;
  int64_t total = 0;
  char oid[65];
  snprintf(oid, sizeof oid, "%s", x.blob_oid);
  rc = blob_stat(xs_blobs(), oid, &total);
  xs_xorb_dispose(&x);
  if (rc) return rc;
  int64_t a = (int64_t)s, b = (int64_t)e;
  const char *hdr = http_header(r, "Range");
  if (hdr) {
    int pr = range_parse(hdr, total, &a, &b);
    if (pr == HUB_ERANGE || (pr == RANGE_IGNORE && strchr(hdr, ','))) {
      return hub_error_set(pr == HUB_ERANGE ? HUB_ERANGE : HUB_EFORBIDDEN,
                           "Range not allowed by this URL");
    }
    if (pr == RANGE_IGNORE) a = (int64_t)s, b = (int64_t)e;
  }
  if (a < (int64_t)s || b > (int64_t)e || b >= total) {
    return hub_error_set(HUB_EFORBIDDEN, "Range outside the signed range of this URL");
  }
  char cr[96], want[96];
  snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)a, (long long)b, (long long)total);
  /* --blob-redirect: a presigned URL bound to exactly this Range (it must not open the rest
   * of the xorb), so only when the client sent it in that canonical form. */
  snprintf(want, sizeof want, "bytes=%lld-%lld", (long long)a, (long long)b);
  if (hdr && !strcmp(hdr, want) &&
      (rc = http_reply_blob_redirect(r, xs_blobs(), oid, want)) != HUB_EUNSUPPORTED)
    return rc;
  if (r->is_head) {
    rc = http_reply_data_len(r, 206, "application/octet-stream", (uint64_t)(b - a + 1));
  } else {
    rc = http_reply_blob(r, 206, "application/octet-stream", xs_blobs(), oid, (uint64_t)a,
                         (uint64_t)(b - a + 1));
  }
  if (rc) return rc;
  http_add_header(r, "Content-Range", cr);
  http_add_header(r, "Accept-Ranges", "bytes");
  return 0;
}

/* GET /xet-get/{uid}/{oid}?exp&sig: git-lfs download of an object stored only as Xet. */
static int h_xet_get(hub_req *r) {
  db_repo repo;
  /* Signature, repo, and the access the URL was issued for (lfs/transfer.c). */
  int rc = lfs_download_target(r, "xet-get", &repo);
  if (rc) return rc;
  xetsrv_file f;
  if (xetsrv_lookup(&repo, r->cap[1], &f))
    return hub_error_set(HUB_ENOTFOUND, "Object does not exist");
  if ((rc = security_may_download(&repo, r->cap[1], NULL))) return rc; /* docs/scanning.md */
  int64_t s = 0, e = (int64_t)f.size - 1;
  const char *hdr = http_header(r, "Range");
  int pr = hdr ? range_parse(hdr, (int64_t)f.size, &s, &e) : RANGE_IGNORE;
  char etag[70], cr[96];
  snprintf(etag, sizeof etag, "\"%s\"", r->cap[1]);
  if (pr == HUB_ERANGE) return hub_error_set(HUB_ERANGE, "Requested range not satisfiable");
  if (f.size == 0) {
    rc = http_reply_data(r, 200, "application/octet-stream", "", 0);
  } else if (pr == 0) {
    rc = xetsrv_reply_bytes(r, 206, "application/octet-stream", &f, s, e - s + 1);
    snprintf(cr, sizeof cr, "bytes %lld-%lld/%llu", (long long)s, (long long)e,
             (unsigned long long)f.size);
    if (!rc) http_add_header(r, "Content-Range", cr);
  } else {
    rc = xetsrv_reply_bytes(r, 200, "application/octet-stream", &f, 0, (int64_t)f.size);
  }
  if (rc) return rc;
  http_add_header(r, "ETag", etag);
  http_add_header(r, "Accept-Ranges", "bytes");
  http_add_header(r, "X-Content-Type-Options", "nosniff"); /* user bytes, page origin */
  return 0;
}

const hub_route xs_xfer_routes[] = {
    {"GET", XS_CAS_PREFIX "/xfer/{x}/{x}", h_xfer, NEED_OWN_AUTH | RUN_INLINE, BODY_NONE, NULL, 0},
    {"GET", "/xet-get/{x}/{x}", h_xet_get, NEED_OWN_AUTH | RUN_INLINE, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};

/* ---- blob-store read fallback: Xet-backed LFS objects as ordinary read streams ----- */

typedef struct {
  struct blob_stream base;
  xs_reader *rd;
} xs_blob_stream;

static int xs_stream_read(struct blob_stream *s, void *buf, size_t cap, size_t *out_n) {
  return xs_reader_read(((xs_blob_stream *)s)->rd, buf, cap, out_n);
}

static void xs_stream_close(struct blob_stream *s) {
  xs_reader_free(((xs_blob_stream *)s)->rd);
  free(s);
}

/* ctx is the repo id: a sha256 another repo claimed but nobody verified yet is not ours. */
static int fallback_open(void *ctx, const char *oid, blob_stream **out, int64_t *out_size) {
  xet_hash file;
  uint64_t size = 0;
  int rc = xs_sha_find_for(oid, (int64_t)(intptr_t)ctx, &file, &size);
  if (rc) return rc;
  xs_blob_stream *s = calloc(1, sizeof *s);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  if ((rc = xs_reader_open(&s->rd, &file, 0, size))) {
    free(s);
    return rc;
  }
  s->base.read = xs_stream_read;
  s->base.close = xs_stream_close;
  *out = &s->base;
  if (out_size) *out_size = (int64_t)size;
  return 0;
}

/* The shared store answers for an object only when the repo references it (db/objects.h):
 * a tree may name an oid through a Xet upload whose sha256 claim is not verified yet, and
 * the store may hold other bytes under that oid for another repo. */
static int base_ok(void *ctx, const char *oid) {
  return db_objects_get((int64_t)(intptr_t)ctx, oid, NULL) == 0;
}

static const blob_read_fallback g_fallback = {fallback_open, base_ok};

const blob_read_fallback *xetsrv_read_fallback(void) {
  return &g_fallback;
}
