/* Generic blob store layer: backend registry, oid validation, hashing while streaming,
 * verification before publishing, limits, and multipart assembly. Backends only move bytes
 * (blob/backend.h); this file is the one place for tracing and fault injection. */
#include "blob/blob.h"

#include "blob/backend.h"
#include "util/error.h"
#include "util/limits.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct blob_store {
  blob_backend *be;
  const blob_read_fallback *fb; /* views only */
  void *fb_ctx;
};

struct blob_writer {
  blob_store *store;
  blob_backend_writer *bw;
  EVP_MD_CTX *md;
  int64_t size;
  int err; /* sticky: first failure of a write */
  int is_part;
  unsigned part_no;
  char upload_oid[65];
};

static const struct {
  const char *name;
  int (*create)(blob_backend **out, const char *root_dir);
} backends[] = {
    {"fs", blob_fs_backend_new},
    {"s3", blob_s3_backend_new},
};

int blob_oid_valid(const char *oid) {
  if (!oid) return 0;
  for (int i = 0; i < 64; i++) {
    char c = oid[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
  }
  return oid[64] == 0;
}

static int check_oid(const char *oid) {
  if (blob_oid_valid(oid)) return 0;
  return hub_error_set(HUB_EINVALID, "invalid object id (want 64 lowercase hex characters)");
}

int blob_store_open(blob_store **out, const char *kind, const char *root_dir) {
  blob_backend *be = NULL;
  blob_store *s = NULL;
  int rc = HUB_ERROR;
  *out = NULL;
  if (!kind) kind = "fs";
  size_t i;
  for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (!strcmp(backends[i].name, kind)) break;
  if (i == sizeof backends / sizeof backends[0])
    return hub_error_set(HUB_EINVALID, "unknown blob store kind '%.64s'", kind);
  if ((rc = backends[i].create(&be, root_dir)) < 0) goto done;
  if (be->version != BLOB_BACKEND_VERSION) {
    rc = hub_error_set(HUB_ERROR, "blob backend '%s' has version %d, want %d", kind, be->version,
                       BLOB_BACKEND_VERSION);
    goto done;
  }
  if (!(s = calloc(1, sizeof *s))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  s->be = be;
  be = NULL;
  *out = s;
  rc = 0;
done:
  if (be) be->free(be);
  return rc;
}

static char *g_location;

int blob_set_location(const char *location) {
  char *l = location ? strdup(location) : NULL;
  if (location && !l) return hub_error_set(HUB_ERROR, "out of memory");
  free(g_location);
  g_location = l;
  return 0;
}

const char *blob_location(void) {
  return g_location;
}

int blob_store_open_at(blob_store **out, const char *sub) {
  char root[4200];
  *out = NULL;
  if (!g_location || !*g_location)
    return hub_error_set(HUB_EINVALID, "no blob store location configured");
  int s3 = strncmp(g_location, "s3://", 5) == 0;
  size_t n = strlen(g_location);
  while (n > (s3 ? 5u : 1u) && g_location[n - 1] == '/')
    n--;
  if ((size_t)snprintf(root, sizeof root, "%.*s%s%s", (int)n, g_location, sub && *sub ? "/" : "",
                       sub ? sub : "") >= sizeof root)
    return hub_error_set(HUB_EINVALID, "blob store location too long");
  return blob_store_open(out, s3 ? "s3" : "fs", root);
}

static int64_t g_redirect; /* presigned URL lifetime in seconds; 0: no redirects */

void blob_set_redirect(int64_t seconds) {
  g_redirect = seconds > 0 ? seconds : 0;
}

int64_t blob_redirect_seconds(void) {
  return g_redirect;
}

int blob_presign_get(blob_store *store, const char *oid, const char *range, char **out) {
  int rc;
  *out = NULL;
  if ((rc = check_oid(oid)) < 0) return rc;
  if (!g_redirect || !store->be->presign_get)
    return hub_error_set(HUB_EUNSUPPORTED, "the blob store gives no direct URLs");
  return store->be->presign_get(store->be, oid, g_redirect, range, out);
}

int blob_store_check(blob_store *store) {
  static const char none[] = "0000000000000000000000000000000000000000000000000000000000000000";
  int rc = store->be->stat(store->be, none, NULL);
  return rc == HUB_ENOTFOUND ? 0 : rc;
}

blob_store *blob_store_view(blob_store *base, const blob_read_fallback *fb, void *ctx) {
  blob_store *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->be = base->be;
  v->fb = fb;
  v->fb_ctx = ctx;
  return v;
}

void blob_store_view_free(blob_store *view) {
  free(view);
}

void blob_store_free(blob_store *store) {
  if (!store) return;
  store->be->free(store->be);
  free(store);
}

const char *blob_store_kind(const blob_store *store) {
  return store->be->name;
}

int blob_stat(blob_store *store, const char *oid, int64_t *out_size) {
  int rc;
  if ((rc = check_oid(oid)) < 0) return rc;
  return store->be->stat(store->be, oid, out_size);
}

int blob_open_fd(blob_store *store, const char *oid, int *out_fd, int64_t *out_size) {
  struct blob_stream *st = NULL;
  int rc;
  *out_fd = -1;
  if ((rc = check_oid(oid)) < 0) return rc;
  if ((rc = store->be->open_read(store->be, oid, 1, out_fd, &st, out_size)) < 0) return rc;
  if (*out_fd < 0) {
    if (st) st->close(st);
    return hub_error_set(HUB_EUNSUPPORTED, "blob backend '%s' cannot give file descriptors",
                         store->be->name);
  }
  return 0;
}

/* A stream over a plain fd, for backends that answered open_read with one. */
struct fd_stream {
  struct blob_stream base;
  int fd;
};

static int fd_stream_read(struct blob_stream *s, void *buf, size_t cap, size_t *out_n) {
  struct fd_stream *f = (struct fd_stream *)s;
  ssize_t n;
  do
    n = read(f->fd, buf, cap);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    *out_n = 0;
    return hub_error_set(HUB_ERROR, "blob read: %s", strerror(errno));
  }
  *out_n = (size_t)n;
  return 0;
}

static void fd_stream_close(struct blob_stream *s) {
  struct fd_stream *f = (struct fd_stream *)s;
  close(f->fd);
  free(f);
}

int blob_open_stream(blob_store *store, const char *oid, blob_stream **out, int64_t *out_size) {
  struct blob_stream *st = NULL;
  int fd = -1, rc;
  *out = NULL;
  if ((rc = check_oid(oid)) < 0) return rc;
  if (store->fb && store->fb->base_ok && !store->fb->base_ok(store->fb_ctx, oid))
    return store->fb->open(store->fb_ctx, oid, out, out_size);
  rc = store->be->open_read(store->be, oid, 0, &fd, &st, out_size);
  if (rc == HUB_ENOTFOUND && store->fb) return store->fb->open(store->fb_ctx, oid, out, out_size);
  if (rc < 0) return rc;
  if (fd >= 0) {
    struct fd_stream *f = malloc(sizeof *f);
    if (!f) {
      close(fd);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
    f->base.read = fd_stream_read;
    f->base.close = fd_stream_close;
    f->fd = fd;
    st = &f->base;
  }
  *out = st;
  return 0;
}

/* At most `left` bytes of another stream. */
struct lim_stream {
  struct blob_stream base;
  struct blob_stream *in;
  int64_t left;
};

static int lim_stream_read(struct blob_stream *s, void *buf, size_t cap, size_t *out_n) {
  struct lim_stream *l = (struct lim_stream *)s;
  *out_n = 0;
  if (l->left <= 0) return 0;
  if ((int64_t)cap > l->left) cap = (size_t)l->left;
  int rc = l->in->read(l->in, buf, cap, out_n);
  if (!rc && *out_n == 0)
    return hub_error_set(HUB_ERROR, "blob read: object ended %lld bytes early", (long long)l->left);
  if (!rc) l->left -= (int64_t)*out_n;
  return rc;
}

static void lim_stream_close(struct blob_stream *s) {
  struct lim_stream *l = (struct lim_stream *)s;
  l->in->close(l->in);
  free(l);
}

int blob_open_range(blob_store *store, const char *oid, int64_t off, int64_t len, blob_stream **out,
                    int64_t *out_total) {
  struct blob_stream *st = NULL;
  int64_t total = 0;
  int fd = -1, rc;
  *out = NULL;
  if ((rc = check_oid(oid)) < 0) return rc;
  if (off < 0 || len < 0) return hub_error_set(HUB_ERANGE, "negative range");
  if (store->be->open_range && len > 0) {
    if ((rc = store->be->open_range(store->be, oid, off, len, out, &total)) < 0) return rc;
    if (out_total) *out_total = total;
    return 0;
  }
  if ((rc = store->be->open_read(store->be, oid, 1, &fd, &st, &total)) < 0) return rc;
  if (off + len > total) {
    if (fd >= 0) close(fd);
    if (st) st->close(st);
    return hub_error_set(HUB_ERANGE, "range past the end of object %s", oid);
  }
  if (fd >= 0) {
    struct fd_stream *f = malloc(sizeof *f);
    if (!f || lseek(fd, (off_t)off, SEEK_SET) < 0) {
      free(f);
      close(fd);
      return hub_error_set(HUB_ERROR, "blob read: cannot seek");
    }
    f->base.read = fd_stream_read;
    f->base.close = fd_stream_close;
    f->fd = fd;
    st = &f->base;
  } else { /* a plain stream: skip to off */
    char skip[65536];
    for (int64_t left = off; left > 0;) {
      size_t n = 0;
      rc = st->read(st, skip, left < (int64_t)sizeof skip ? (size_t)left : sizeof skip, &n);
      if (!rc && !n) rc = hub_error_set(HUB_ERROR, "blob read: object ended early");
      if (rc) {
        st->close(st);
        return rc;
      }
      left -= (int64_t)n;
    }
  }
  struct lim_stream *l = malloc(sizeof *l);
  if (!l) {
    st->close(st);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  l->base.read = lim_stream_read;
  l->base.close = lim_stream_close;
  l->in = st;
  l->left = len;
  *out = &l->base;
  if (out_total) *out_total = total;
  return 0;
}

int blob_stream_read(blob_stream *s, void *buf, size_t cap, size_t *out_n) {
  return s->read(s, buf, cap, out_n);
}

void blob_stream_close(blob_stream *s) {
  if (s) s->close(s);
}

int blob_delete(blob_store *store, const char *oid) {
  int rc;
  if ((rc = check_oid(oid)) < 0) return rc;
  return store->be->remove(store->be, oid);
}

/* ---- writers ---- */

static void writer_free(blob_writer *w) {
  EVP_MD_CTX_free(w->md);
  free(w);
}

static int writer_new(blob_store *store, blob_writer **out) {
  blob_writer *w = NULL;
  int rc = HUB_ERROR;
  *out = NULL;
  if (!(w = calloc(1, sizeof *w)) || !(w->md = EVP_MD_CTX_new()) ||
      EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
    rc = hub_error_set(HUB_ERROR, "blob writer: out of memory");
    goto fail;
  }
  w->store = store;
  if ((rc = store->be->writer_open(store->be, &w->bw)) < 0) goto fail;
  *out = w;
  return 0;
fail:
  if (w) writer_free(w);
  return rc;
}

int blob_writer_open(blob_store *store, blob_writer **out) {
  return writer_new(store, out);
}

int blob_writer_write(blob_writer *w, const void *data, size_t len) {
  int rc;
  if (w->err) return hub_error_set(w->err, "blob writer failed earlier");
  if (len == 0) return 0;
  if (len > (uint64_t)HUB_MAX_BLOB_SIZE || w->size > HUB_MAX_BLOB_SIZE - (int64_t)len) {
    w->err = HUB_ETOOBIG;
    return hub_error_set(HUB_ETOOBIG, "object larger than %lld bytes",
                         (long long)HUB_MAX_BLOB_SIZE);
  }
  if (EVP_DigestUpdate(w->md, data, len) != 1) {
    w->err = HUB_ERROR;
    return hub_error_set(HUB_ERROR, "sha256 update failed");
  }
  if ((rc = w->store->be->writer_write(w->bw, data, len)) < 0) {
    w->err = rc;
    return rc;
  }
  w->size += (int64_t)len;
  return 0;
}

int64_t blob_writer_size(const blob_writer *w) {
  return w->size;
}

static int writer_digest(blob_writer *w, char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  static const char digits[] = "0123456789abcdef";
  if (EVP_DigestFinal_ex(w->md, md, &n) != 1 || n != 32)
    return hub_error_set(HUB_ERROR, "sha256 final failed");
  for (unsigned i = 0; i < 32; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = 0;
  return 0;
}

int blob_writer_verify(blob_writer *w, const char *expected_oid, int64_t expected_size) {
  int rc;
  if (w->err) return hub_error_set(w->err, "blob writer failed earlier");
  if ((rc = check_oid(expected_oid)) < 0) return rc;
  if (w->size != expected_size)
    return hub_error_set(HUB_EINVALID, "size mismatch: expected %lld bytes, received %lld",
                         (long long)expected_size, (long long)w->size);
  /* Finish a copy of the running digest: the writer goes on (its commit finishes its own). */
  EVP_MD_CTX *copy = EVP_MD_CTX_new(), *mine = w->md;
  if (!copy || EVP_MD_CTX_copy_ex(copy, w->md) != 1) {
    EVP_MD_CTX_free(copy);
    return hub_error_set(HUB_ERROR, "sha256 copy failed");
  }
  char oid[65];
  w->md = copy;
  rc = writer_digest(w, oid);
  w->md = mine;
  EVP_MD_CTX_free(copy);
  if (rc < 0) return rc;
  if (strcmp(oid, expected_oid) != 0)
    return hub_error_set(HUB_EINVALID, "sha256 mismatch: expected %s, received data hashes to %s",
                         expected_oid, oid);
  return 0;
}

void blob_writer_abort(blob_writer *w) {
  if (!w) return;
  w->store->be->writer_abort(w->bw);
  writer_free(w);
}

int blob_writer_read_fd(blob_writer *w, int *out_fd) {
  blob_backend *be = w->bw ? w->bw->backend : NULL;
  *out_fd = -1;
  if (w->err) return hub_error_set(w->err, "blob writer failed earlier");
  if (!be || !be->writer_flush_fd)
    return hub_error_set(HUB_EUNSUPPORTED, "blob %s: no local temporary file", be ? be->name : "?");
  int rc = be->writer_flush_fd(w->bw, out_fd);
  if (rc < 0) w->err = rc;
  return rc;
}

int blob_writer_flush(blob_writer *w) {
  blob_backend *be = w->bw ? w->bw->backend : NULL;
  if (w->err) return hub_error_set(w->err, "blob writer failed earlier");
  if (!be || !be->writer_flush_fd) return 0;
  int rc = be->writer_flush_fd(w->bw, NULL);
  if (rc < 0) w->err = rc;
  return rc;
}

int blob_writer_commit(blob_writer *w, const char *expected_oid, int64_t expected_size,
                       char out_oid[65]) {
  char oid[65];
  int rc;
  assert(!w->is_part && "use blob_parts_writer_commit for part writers");
  if (w->err) {
    rc = hub_error_set(w->err, "blob writer failed earlier");
    goto fail;
  }
  if (expected_oid && (rc = check_oid(expected_oid)) < 0) goto fail;
  if (expected_size >= 0 && w->size != expected_size) {
    rc = hub_error_set(HUB_EINVALID, "size mismatch: expected %lld bytes, received %lld",
                       (long long)expected_size, (long long)w->size);
    goto fail;
  }
  if ((rc = writer_digest(w, oid)) < 0) goto fail;
  if (expected_oid && strcmp(oid, expected_oid) != 0) {
    rc = hub_error_set(HUB_EINVALID, "sha256 mismatch: expected %s, received data hashes to %s",
                       expected_oid, oid);
    goto fail;
  }
  rc = w->store->be->writer_commit(w->bw, oid);
  writer_free(w);
  if (rc == 0 && out_oid) memcpy(out_oid, oid, 65);
  return rc;
fail:
  blob_writer_abort(w);
  return rc;
}

/* ---- multipart ---- */

static int check_part(const char *oid, unsigned n) {
  int rc;
  if ((rc = check_oid(oid)) < 0) return rc;
  if (n < 1 || n > HUB_MAX_LFS_PARTS)
    return hub_error_set(HUB_EINVALID, "part number %u out of range 1..%d", n, HUB_MAX_LFS_PARTS);
  return 0;
}

int blob_parts_writer_open(blob_store *store, const char *oid, unsigned part_no,
                           blob_writer **out) {
  int rc;
  *out = NULL;
  if ((rc = check_part(oid, part_no)) < 0) return rc;
  if ((rc = writer_new(store, out)) < 0) return rc;
  (*out)->is_part = 1;
  (*out)->part_no = part_no;
  memcpy((*out)->upload_oid, oid, 65);
  return 0;
}

int blob_parts_writer_commit(blob_writer *w, char out_etag[65]) {
  char etag[65];
  int rc;
  assert(w->is_part);
  if (w->err) {
    rc = hub_error_set(w->err, "blob writer failed earlier");
    goto fail;
  }
  if ((rc = writer_digest(w, etag)) < 0) goto fail;
  rc = w->store->be->part_commit(w->bw, w->upload_oid, w->part_no);
  writer_free(w);
  if (rc == 0 && out_etag) memcpy(out_etag, etag, 65);
  return rc;
fail:
  blob_writer_abort(w);
  return rc;
}

int blob_parts_remove(blob_store *store, const char *oid) {
  int rc;
  if ((rc = check_oid(oid)) < 0) return rc;
  return store->be->parts_remove(store->be, oid);
}

/* Already stored with the right size? Then assembling is moot. */
static int already_have(blob_store *store, const char *oid, int64_t expected_size) {
  int64_t size;
  if (store->be->stat(store->be, oid, &size) < 0) return 0;
  return expected_size < 0 || size == expected_size;
}

/* Parts are read from upload `key`; the result must hash to `oid`. `strict`: no shortcut
 * when the object already exists (every part must be there). */
static int parts_assemble(blob_store *store, const char *key, const char *oid, unsigned nparts,
                          int64_t expected_size, char out_oid[65], int strict) {
  blob_writer *w = NULL;
  struct blob_stream *st = NULL;
  char *buf = NULL;
  const size_t bufsize = 256 * 1024;
  int rc;
  if ((rc = check_oid(oid)) < 0 || (rc = check_oid(key)) < 0) return rc;
  if (nparts < 1 || nparts > HUB_MAX_LFS_PARTS)
    return hub_error_set(HUB_EINVALID, "number of parts %u out of range 1..%d", nparts,
                         HUB_MAX_LFS_PARTS);
  if (!(buf = malloc(bufsize))) return hub_error_set(HUB_ERROR, "out of memory");
  if ((rc = blob_writer_open(store, &w)) < 0) goto done;
  for (unsigned i = 1; i <= nparts; i++) {
    int64_t psize;
    if ((rc = store->be->part_open(store->be, key, i, &st, &psize)) < 0) {
      if (rc == HUB_ENOTFOUND) {
        if (!strict && already_have(store, oid, expected_size)) { /* a concurrent assemble won */
          store->be->parts_remove(store->be, key);
          rc = 0;
          if (out_oid) memcpy(out_oid, oid, 65);
          goto done;
        }
        rc = hub_error_set(HUB_ENOTFOUND, "part %u of %u of upload %s is missing", i, nparts, key);
      }
      goto done;
    }
    for (;;) {
      size_t n;
      if ((rc = st->read(st, buf, bufsize, &n)) < 0) goto done;
      if (n == 0) break;
      if ((rc = blob_writer_write(w, buf, n)) < 0) goto done;
    }
    st->close(st);
    st = NULL;
  }
  rc = blob_writer_commit(w, oid, expected_size, out_oid);
  w = NULL;
  if (rc == 0 || rc == HUB_EINVALID) {
    int keep = rc;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    store->be->parts_remove(store->be, key);
    if (keep < 0) hub_error_set(keep, "%s", msg);
  }
done:
  if (st) st->close(st);
  blob_writer_abort(w);
  free(buf);
  return rc;
}

int blob_parts_assemble(blob_store *store, const char *oid, unsigned nparts, int64_t expected_size,
                        char out_oid[65]) {
  return parts_assemble(store, oid, oid, nparts, expected_size, out_oid, 0);
}

int blob_parts_assemble_upload(blob_store *store, const char *upload, const char *oid,
                               unsigned nparts, int64_t expected_size, char out_oid[65]) {
  return parts_assemble(store, upload, oid, nparts, expected_size, out_oid, 1);
}

int blob_store_sweep_tmp(blob_store *store, int64_t older_than_seconds, int *out_removed) {
  if (out_removed) *out_removed = 0;
  if (!store->be->sweep_tmp) return 0;
  return store->be->sweep_tmp(store->be, older_than_seconds, out_removed);
}
