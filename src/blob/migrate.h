/* Moving a data directory's local ("fs") blob store into another store (an S3 bucket):
 * `modelhub storage migrate --to s3://BUCKET[/PREFIX]` (docs/scale-out.md "Operations").
 *
 * Every object under <fs_root>/blobs/sha256/ab/cd/<oid> is copied to `dst` through an
 * ordinary blob_writer, so the destination publishes it only after its sha256 and size
 * matched (blob.h), and is then stat'ed there for its size. An object the destination
 * already holds with the same size is skipped (keys are content addresses), which makes a
 * second run copy only what was written since: idempotent and resumable. The source is
 * only read. Errors: 0 or a negative HUB_E* code; one object that fails is counted, the
 * walk goes on, and the first error is returned at the end. */
#ifndef HUB_BLOB_MIGRATE_H
#define HUB_BLOB_MIGRATE_H

#include <stdint.h>

#include "blob/blob.h"

typedef struct {
  int64_t objects; /* seen in the source */
  int64_t copied;  /* written to the destination by this run */
  int64_t skipped; /* already there with the right size */
  int64_t failed;
  int64_t bytes_copied;
} blob_migrate_stats;

/* Called after each object (copied: 1, skipped: 0, failed: negative code). */
typedef void (*blob_migrate_cb)(const char *oid, int64_t size, int result, void *payload);

int blob_migrate_fs(const char *fs_root, blob_store *dst, blob_migrate_stats *out,
                    blob_migrate_cb cb, void *payload);

#endif
