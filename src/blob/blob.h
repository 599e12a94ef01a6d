/* Content-addressed store of sha256 objects (LFS blobs).
 *
 * Contract:
 * - An object is named by its sha256, 64 lowercase hex characters (blob_oid_valid()).
 * - Objects are immutable. A write streams through a blob_writer that hashes the bytes as
 *   they pass; the object becomes visible only in blob_writer_commit(), and only if its
 *   sha256 (and size, when given) match. Readers never see partial objects.
 * - Identical content is stored once; committing an object that already exists just drops
 *   the temporary copy and succeeds.
 * - Every function is thread-safe: different threads may read, write, delete and commit
 *   concurrently, even the same oid. A blob_writer itself belongs to one thread at a time.
 * - Storage is a versioned backend vtable selected by name (see blob/backend.h); "fs" is
 *   the default (data layout: <root>/blobs/sha256/ab/cd/<oid>, <root>/tmp/).
 *
 * Errors: 0 on success or a negative HUB_E* code with hub_error_msg() set:
 * HUB_EINVALID (bad oid, hash/size mismatch), HUB_ENOTFOUND (no such object/part),
 * HUB_ETOOBIG (over HUB_MAX_BLOB_SIZE), HUB_EUNSUPPORTED (backend lacks the capability),
 * HUB_ERROR (I/O). See docs/blob.md. */
#ifndef HUB_BLOB_BLOB_H
#define HUB_BLOB_BLOB_H

#include <stddef.h>
#include <stdint.h>

typedef struct blob_store blob_store;
typedef struct blob_writer blob_writer;
typedef struct blob_stream blob_stream;

/* 1 if `oid` is exactly 64 lowercase hex characters (NUL-terminated), else 0. */
int blob_oid_valid(const char *oid);

/* Open the store of backend `kind` ("fs") rooted at `root_dir` (created if missing).
 * *out is owned by the caller; free it with blob_store_free(). HUB_EINVALID for an
 * unknown kind. */
int blob_store_open(blob_store **out, const char *kind, const char *root_dir);
void blob_store_free(blob_store *store);

/* The process's store location, set once at start-up (main.c): a data directory (backend
 * "fs") or "s3://BUCKET[/PREFIX]" (backend "s3", configured by the environment, blob_s3.c).
 * Copied. */
int blob_set_location(const char *location);
const char *blob_location(void);
/* Open the store at `sub` below the location ("" for the LFS store itself, "xet" for
 * xorbs): <dir>/<sub> on disk, s3://BUCKET/PREFIX/<sub> in a bucket. HUB_EINVALID when no
 * location was set. */
int blob_store_open_at(blob_store **out, const char *sub);
/* Backend name ("fs"). Borrowed for the store's lifetime. */
const char *blob_store_kind(const blob_store *store);

/* Size of object `oid`; HUB_ENOTFOUND if absent. */
int blob_stat(blob_store *store, const char *oid, int64_t *out_size);

/* Open `oid` as a file descriptor for sendfile. *out_fd is owned by the caller (close it).
 * HUB_ENOTFOUND if absent; HUB_EUNSUPPORTED if the backend has no fds (use a stream). */
int blob_open_fd(blob_store *store, const char *oid, int *out_fd, int64_t *out_size);

/* Open `oid` as a read stream (works on every backend). *out is owned by the caller;
 * close it with blob_stream_close(). */
int blob_open_stream(blob_store *store, const char *oid, blob_stream **out, int64_t *out_size);
/* Bytes [off, off + len) of `oid` as a stream, on every backend (a ranged GET on S3, a
 * seek on disk); *out_total (may be NULL) is the object's whole size. A range past the end
 * is HUB_ERANGE. Like blob_open_fd, it reads the store itself, never a view's fallback. */
int blob_open_range(blob_store *store, const char *oid, int64_t off, int64_t len, blob_stream **out,
                    int64_t *out_total);
/* Read up to `cap` bytes; *out_n = 0 means end of object. */
int blob_stream_read(blob_stream *s, void *buf, size_t cap, size_t *out_n);
void blob_stream_close(blob_stream *s);

/* Objects this store lacks may still be readable from elsewhere — files uploaded through
 * Xet live as chunks and are rebuilt on read. A view is a store that shares `base`'s
 * backend and, when an object is missing there, asks `open` (with `ctx`) for a read
 * stream. Views only read through the fallback; writes and stats go to `base`.
 * Free with blob_store_view_free() (the base stays open). */
typedef struct {
  int (*open)(void *ctx, const char *oid, blob_stream **out, int64_t *out_size);
  /* Optional: 0 when the view's owner may not read `oid` from `base` (the store is shared
   * and deduplicated; e.g. a repo that does not reference the object): `open` is asked. */
  int (*base_ok)(void *ctx, const char *oid);
} blob_read_fallback;
blob_store *blob_store_view(blob_store *base, const blob_read_fallback *fb, void *ctx);
void blob_store_view_free(blob_store *view);

/* Direct downloads (--blob-redirect, docs/blob.md): the process-wide lifetime of presigned
 * URLs in seconds, 0 (the default) for none. Set once at start-up (main.c). */
void blob_set_redirect(int64_t seconds);
int64_t blob_redirect_seconds(void);
/* A URL from which a client may GET `oid` straight from the store, without credentials,
 * valid for blob_redirect_seconds(); `range` ("bytes=a-b" or NULL) is bound into it (the
 * client must send exactly that Range). HUB_EUNSUPPORTED when redirects are off or the
 * backend has no URLs (fs). It does not check that the object exists (blob_stat first).
 * *out is the caller's to free. */
int blob_presign_get(blob_store *store, const char *oid, const char *range, char **out);
/* Can the store be reached right now? 0, or the error of a cheap probe (a stat of an
 * object that does not exist): HUB_EUNAVAILABLE when S3 does not answer. */
int blob_store_check(blob_store *store);

/* Remove `oid`. HUB_ENOTFOUND if absent. Readers holding it open keep their copy. */
int blob_delete(blob_store *store, const char *oid);

/* Start a new object. *out is owned by the caller until blob_writer_commit() or
 * blob_writer_abort(), each of which frees it. */
int blob_writer_open(blob_store *store, blob_writer **out);
/* Append bytes (hashed as they pass). After a failure the writer stays failed: further
 * writes and the commit return the same error; the caller still commits or aborts. */
int blob_writer_write(blob_writer *w, const void *data, size_t len);
/* Bytes written so far. */
int64_t blob_writer_size(const blob_writer *w);
/* Finish: flush + fsync, check sha256 against `expected_oid` (NULL = accept whatever was
 * written) and size against `expected_size` (-1 = any), then publish the object under its
 * oid, written to out_oid (may be NULL). On mismatch: HUB_EINVALID with a message naming
 * both values, nothing is published and the temporary data is removed. Always frees `w`. */
int blob_writer_commit(blob_writer *w, const char *expected_oid, int64_t expected_size,
                       char out_oid[65]);
/* Check size and sha256 of what was written so far against the expected values without
 * finishing the writer (no flush, no fsync, nothing published): 0 when they match,
 * HUB_EINVALID naming both values otherwise. Lets a caller hand verified bytes on before
 * the commit's fsync; the commit checks again. */
int blob_writer_verify(blob_writer *w, const char *expected_oid, int64_t expected_size);
/* Readers that follow an object while it is written (the pull-through mirror): open the
 * writer's temporary data read-only (*out_fd: the caller closes it; it stays valid after
 * the commit, which publishes that very file on disk, or an abort). HUB_EUNSUPPORTED when
 * the backend's temporary data is not a local file (S3). Bytes written so far are readable
 * through the fd after blob_writer_flush(). */
int blob_writer_read_fd(blob_writer *w, int *out_fd);
/* Hand bytes buffered in memory to the temporary data (a no-op on backends without
 * blob_writer_read_fd). Readers must not rely on the bytes being right before the commit
 * verified them. */
int blob_writer_flush(blob_writer *w);
/* Discard the writer and its temporary data. NULL is a no-op. */
void blob_writer_abort(blob_writer *w);

/* Multipart uploads (HF multipart LFS flavour). An upload is identified by the final
 * object's oid; parts are numbered 1..HUB_MAX_LFS_PARTS. Re-uploading a part replaces it.
 *
 * blob_parts_writer_open() returns an ordinary blob_writer (write with blob_writer_write(),
 * discard with blob_writer_abort()) that is finished with blob_parts_writer_commit(), which
 * stores it as part `part_no` and writes its ETag: the lowercase hex sha256 of the part's
 * bytes (64 chars, unquoted). Always frees `w`. */
int blob_parts_writer_open(blob_store *store, const char *oid, unsigned part_no, blob_writer **out);
int blob_parts_writer_commit(blob_writer *w, char out_etag[65]);
/* Stream parts 1..nparts in order through a blob_writer and commit it, verifying sha256 ==
 * oid and size == expected_size (-1 = any). On success, or on a hash/size mismatch, the
 * parts are removed; a missing part is HUB_ENOTFOUND naming the part, and the parts stay so
 * the client can re-send it. If the object already exists (e.g. a concurrent assemble won),
 * succeeds. out_oid may be NULL. */
int blob_parts_assemble(blob_store *store, const char *oid, unsigned nparts, int64_t expected_size,
                        char out_oid[65]);
/* The same for parts stored under `upload` (64 hex the caller picked per upload, so two
 * uploads of one object never share parts; blob_parts_writer_open takes it as its oid):
 * the result must hash to `oid`, and there is no shortcut when the object already exists,
 * so every part must be present (an upload proves its bytes). */
int blob_parts_assemble_upload(blob_store *store, const char *upload, const char *oid,
                               unsigned nparts, int64_t expected_size, char out_oid[65]);
/* Drop every part of upload `oid` (0 if there were none). */
int blob_parts_remove(blob_store *store, const char *oid);

/* Remove temporary data (unfinished writes, abandoned parts) last modified more than
 * `older_than_seconds` ago; run at startup. Leftovers of a crash are never visible as
 * objects, this only reclaims space. *out_removed (may be NULL) counts removed entries. */
int blob_store_sweep_tmp(blob_store *store, int64_t older_than_seconds, int *out_removed);

#endif
