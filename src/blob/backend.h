/* Interface for blob store backends (blob/blob.h is the caller's interface).
 *
 * A backend embeds `struct blob_backend` as its FIRST member and fills every pointer (an
 * optional one may be NULL where stated). `version` must be BLOB_BACKEND_VERSION; the store
 * refuses other versions, so adding members bumps the version. The generic layer (blob.c)
 * validates oids, hashes and verifies bytes, and enforces limits; backends only move bytes.
 *
 * Thread safety: every function may be called concurrently from different threads, also for
 * the same oid. A writer is used by one thread at a time.
 * Errors: 0 or negative HUB_E* with hub_error_set(); absent objects are HUB_ENOTFOUND. */
#ifndef HUB_BLOB_BACKEND_H
#define HUB_BLOB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define BLOB_BACKEND_VERSION 4

typedef struct blob_backend blob_backend;
typedef struct blob_backend_writer blob_backend_writer;

/* A read stream; backends embed it as the first member of their own stream struct. */
struct blob_stream {
  int (*read)(struct blob_stream *s, void *buf, size_t cap, size_t *out_n); /* 0 = EOF */
  void (*close)(struct blob_stream *s);                                     /* frees s */
};

/* A pending write; backends embed it as the first member. */
struct blob_backend_writer {
  blob_backend *backend;
};

struct blob_backend {
  int version;      /* BLOB_BACKEND_VERSION */
  const char *name; /* "fs", "s3", ... */

  /* Size of an object, HUB_ENOTFOUND if absent. */
  int (*stat)(blob_backend *be, const char *oid, int64_t *out_size);
  /* Open for reading. Fill *out_fd (a file descriptor the caller closes) when the backend
   * can, else *out_stream (caller closes); set the other to -1 / NULL. `want_fd` says the
   * caller prefers an fd (sendfile); a backend without fds may return a stream anyway. */
  int (*open_read)(blob_backend *be, const char *oid, int want_fd, int *out_fd,
                   struct blob_stream **out_stream, int64_t *out_size);
  /* Optional (NULL for backends whose open_read gives fds): a stream of bytes
   * [off, off + len) of an object, *out_total its whole size. */
  int (*open_range)(blob_backend *be, const char *oid, int64_t off, int64_t len,
                    struct blob_stream **out, int64_t *out_total);
  /* Start writing temporary data. */
  int (*writer_open)(blob_backend *be, blob_backend_writer **out);
  int (*writer_write)(blob_backend_writer *w, const void *data, size_t len);
  /* Make the (already verified) bytes durable and visible as `oid`; if `oid` already
   * exists, drop the temporary data and succeed. Frees w in all cases. */
  int (*writer_commit)(blob_backend_writer *w, const char *oid);
  /* Discard temporary data, free w. */
  void (*writer_abort)(blob_backend_writer *w);
  /* Remove an object; HUB_ENOTFOUND if absent. */
  int (*remove)(blob_backend *be, const char *oid);

  /* Multipart: store the writer's bytes as part `n` of upload `upload_oid` (replacing an
   * older one); frees w in all cases. */
  int (*part_commit)(blob_backend_writer *w, const char *upload_oid, unsigned n);
  /* Open part `n` as a stream; HUB_ENOTFOUND if absent. */
  int (*part_open)(blob_backend *be, const char *upload_oid, unsigned n, struct blob_stream **out,
                   int64_t *out_size);
  /* Remove all parts of an upload; 0 if there were none. */
  int (*parts_remove)(blob_backend *be, const char *upload_oid);

  /* Optional (NULL: the backend has no URLs of its own): a URL that lets its holder GET
   * object `oid` directly from the store for `expires` seconds, without credentials.
   * `range` ("bytes=a-b", or NULL) is bound into the signature: the URL then works only
   * with exactly that Range header. *out is the caller's to free. */
  int (*presign_get)(blob_backend *be, const char *oid, int64_t expires, const char *range,
                     char **out);
  /* Reclaim temporary data older than the given age (optional, NULL = nothing to do). */
  int (*sweep_tmp)(blob_backend *be, int64_t older_than_seconds, int *out_removed);
  /* Free the backend. */
  void (*free)(blob_backend *be);
  /* Optional (NULL: the temporary data is not a local file, e.g. S3): hand buffered bytes
   * to the temporary file, and when out_fd is not NULL open that file read-only (the
   * caller closes the fd; it stays valid after commit or abort). */
  int (*writer_flush_fd)(blob_backend_writer *w, int *out_fd);
};

/* Backend constructors, looked up by name in blob.c. */
int blob_fs_backend_new(blob_backend **out, const char *root_dir);
/* root: "s3://BUCKET[/PREFIX]"; endpoint, addressing and credentials from the environment
 * (blob_s3.c). */
int blob_s3_backend_new(blob_backend **out, const char *root);
/* The presigned GET URL of `key` (below the prefix) at time `now` (unix seconds): what
 * presign_get does, with the clock given (tests check it against AWS's published example). */
int blob_s3_presign_key(blob_backend *be, const char *key, int64_t expires, const char *range,
                        int64_t now, char **out);

#endif
