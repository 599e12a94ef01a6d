/* Copy a local blob store into another one, verified and resumable (migrate.h). */
#include "blob/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define COPY_BUF (1 << 20)

static int is_hex2(const char *s) {
  return strlen(s) == 2 && strspn(s, "0123456789abcdef") == 2;
}

/* One object: skip when dst has it at that size, else stream it over and check. */
static int copy_one(blob_store *src, blob_store *dst, const char *oid, unsigned char *buf,
                    blob_migrate_stats *st, int64_t *out_size, int *out_copied) {
  int64_t size = -1, have = -1;
  blob_stream *in = NULL;
  blob_writer *w = NULL;
  *out_copied = 0;
  int rc = blob_stat(src, oid, &size);
  if (rc) return rc;
  *out_size = size;
  rc = blob_stat(dst, oid, &have);
  if (rc == 0 && have == size) return 0;
  if (rc == 0)
    return hub_error_set(HUB_ECONFLICT, "%s: the destination holds %lld bytes, the source %lld",
                         oid, (long long)have, (long long)size);
  if (rc != HUB_ENOTFOUND) return rc;
  if ((rc = blob_open_stream(src, oid, &in, &size))) return rc;
  if ((rc = blob_writer_open(dst, &w))) goto done;
  for (;;) {
    size_t n = 0;
    if ((rc = blob_stream_read(in, buf, COPY_BUF, &n))) goto done;
    if (!n) break;
    if ((rc = blob_writer_write(w, buf, n))) goto done;
  }
  rc = blob_writer_commit(w, oid, size, NULL); /* sha256 and size checked before publishing */
  w = NULL;
  if (rc) goto done;
  if ((rc = blob_stat(dst, oid, &have))) goto done;
  if (have != size) {
    rc = hub_error_set(HUB_ERROR, "%s: %lld bytes in the destination after the copy, want %lld",
                       oid, (long long)have, (long long)size);
    goto done;
  }
  st->bytes_copied += size;
  *out_copied = 1;
done:
  blob_writer_abort(w);
  if (in) blob_stream_close(in);
  return rc;
}

int blob_migrate_fs(const char *fs_root, blob_store *dst, blob_migrate_stats *out,
                    blob_migrate_cb cb, void *payload) {
  blob_store *src = NULL;
  unsigned char *buf = NULL;
  DIR *d1 = NULL;
  int first = 0, rc = 0;
  memset(out, 0, sizeof *out);
  char top[4200];
  snprintf(top, sizeof top, "%s/blobs/sha256", fs_root);
  if (!(d1 = opendir(top))) {
    if (errno == ENOENT) return 0; /* nothing stored there */
    return hub_error_set(HUB_ERROR, "cannot read %s: %s", top, strerror(errno));
  }
  if ((rc = blob_store_open(&src, "fs", fs_root))) goto done;
  if (!(buf = malloc(COPY_BUF))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  for (struct dirent *e1; (e1 = readdir(d1));) {
    if (!is_hex2(e1->d_name)) continue;
    char p2[4300];
    snprintf(p2, sizeof p2, "%s/%.2s", top, e1->d_name);
    DIR *d2 = opendir(p2);
    if (!d2) continue;
    for (struct dirent *e2; (e2 = readdir(d2));) {
      if (!is_hex2(e2->d_name)) continue;
      char p3[4400];
      snprintf(p3, sizeof p3, "%s/%.2s", p2, e2->d_name);
      DIR *d3 = opendir(p3);
      if (!d3) continue;
      for (struct dirent *e3; (e3 = readdir(d3));) {
        const char *oid = e3->d_name;
        if (!blob_oid_valid(oid) || strncmp(oid, e1->d_name, 2) || strncmp(oid + 2, e2->d_name, 2))
          continue;
        int64_t size = 0;
        int copied = 0;
        out->objects++;
        int r = copy_one(src, dst, oid, buf, out, &size, &copied);
        if (r) {
          out->failed++;
          if (!first) first = r;
          fprintf(stderr, "modelhub: %s: %s\n", oid, hub_error_msg());
        } else if (copied) {
          out->copied++;
        } else {
          out->skipped++;
        }
        if (cb) cb(oid, size, r ? r : copied, payload);
      }
      closedir(d3);
    }
    closedir(d2);
  }
  rc = first;
  if (rc)
    hub_error_set(rc, "%lld of %lld objects could not be copied", (long long)out->failed,
                  (long long)out->objects);
done:
  free(buf);
  blob_store_free(src);
  closedir(d1);
  return rc;
}
