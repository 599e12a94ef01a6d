/* Request bodies of git RPCs: inflated while they stream in and spooled to an unlinked
 * file, which then becomes the child's stdin. The first GIT_BODY_MEMORY_MAX bytes go to an
 * in-memory file (memfd): fetch negotiations are small, and a clone or fetch must keep
 * working when the data disk is full. A body that grows past it (a push's pack) moves to
 * an unlinked file under <data>/tmp.
 *
 * Why spool instead of piping into the child as chunks arrive: the child's stdin is then a
 * regular file, so nothing can deadlock between our write to its stdin and its writes to
 * stdout (we only start reading stdout after the body is complete), a client that disconnects
 * mid-upload never leaves a half-fed git behind, and no pack is ever held in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "git/internal.h"
#include "util/error.h"

static int open_spool(int *out) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/tmp", db_data_dir());
  /* O_TMPFILE: no name, so nothing to clean up after a crash. Fallback: create + unlink. */
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    char path[4300];
    snprintf(path, sizeof path, "%s/git-body-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
  }
  if (fd < 0)
    return hub_error_set(HUB_ERROR, "cannot create spool file in %s: %s", dir, strerror(errno));
  *out = fd;
  return 0;
}

/* The body outgrew memory: copy what the memfd holds to a disk spool and continue there. */
static int spill(git_body *b) {
  int fd = -1, rc;
  char buf[64 * 1024];
  if ((rc = open_spool(&fd))) return rc;
  for (off_t off = 0;;) {
    ssize_t got = pread(b->fd, buf, sizeof buf, off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      rc = hub_error_set(HUB_ERROR, "reading git body: %s", strerror(errno));
      break;
    }
    if (got == 0) break;
    for (ssize_t done = 0; done < got;) {
      ssize_t w = write(fd, buf + done, (size_t)(got - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        rc = hub_error_set(HUB_ERROR, "writing git spool: %s", strerror(errno));
        break;
      }
      done += w;
    }
    if (rc) break;
    off += got;
  }
  if (rc) {
    close(fd);
    return rc;
  }
  close(b->fd);
  b->fd = fd;
  b->in_memory = 0;
  return 0;
}

int git_body_to_disk(git_body *b) {
  return b->in_memory ? spill(b) : 0;
}

uint64_t git_body_upload_max(void) {
  const char *v = getenv("MODELHUB_GIT_UPLOAD_BODY_MAX");
  char *end = NULL;
  unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
  return n && end && !*end ? (uint64_t)n : (uint64_t)GIT_MAX_UPLOAD_BODY;
}

static int write_all(git_body *b, const char *p, size_t n) {
  if (n > b->max || b->total > b->max - n)
    return hub_error_set(HUB_ETOOBIG, "git request body too large (limit %llu bytes%s)",
                         (unsigned long long)b->max, b->gzip ? " after gzip inflation" : "");
  if (b->in_memory && b->total + n > GIT_BODY_MEMORY_MAX) {
    int rc = spill(b);
    if (rc) return rc;
  }
  b->total += n;
  while (n) {
    ssize_t w = write(b->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return hub_error_set(HUB_ERROR, "writing git spool: %s", strerror(errno));
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int git_body_open(git_body *b, int gzip, uint64_t max) {
  memset(b, 0, sizeof *b);
  b->fd = -1;
  b->gzip = gzip;
  b->max = max;
  if (gzip) {
    /* 15 + 32: accept a gzip or zlib header, whichever the client sent. */
    if (inflateInit2(&b->z, 15 + 32) != Z_OK)
      return hub_error_set(HUB_ERROR, "inflateInit2 failed");
    b->z_ready = 1;
  }
  b->fd = memfd_create("git-body", MFD_CLOEXEC);
  if (b->fd >= 0) {
    b->in_memory = 1;
    return 0;
  }
  return open_spool(&b->fd);
}

int git_body_write(git_body *b, const char *data, size_t len) {
  if (!b->gzip) return write_all(b, data, len);
  char out[64 * 1024];
  b->z.next_in = (unsigned char *)data;
  b->z.avail_in = (unsigned)len;
  /* Bytes after the end of the gzip stream are ignored, as git http-backend does. */
  while (b->z.avail_in && !b->z_end) {
    b->z.next_out = (unsigned char *)out;
    b->z.avail_out = sizeof out;
    int zr = inflate(&b->z, Z_NO_FLUSH);
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
      return hub_error_set(HUB_EINVALID, "malformed gzip request body: %s",
                           b->z.msg ? b->z.msg : "inflate failed");
    int rc = write_all(b, out, sizeof out - b->z.avail_out);
    if (rc) return rc;
    /* A gzip bomb is refused as soon as it shows, not after inflating it to the limit. */
    if (b->z.total_out > GIT_INFLATE_RATIO_FLOOR &&
        b->z.total_out / GIT_MAX_INFLATE_RATIO > b->z.total_in)
      return hub_error_set(HUB_ETOOBIG,
                           "gzip request body inflates more than %d times (%lu bytes from %lu): "
                           "refused",
                           GIT_MAX_INFLATE_RATIO, (unsigned long)b->z.total_out,
                           (unsigned long)b->z.total_in);
    if (zr == Z_STREAM_END)
      b->z_end = 1;
    else if (zr == Z_BUF_ERROR && b->z.avail_out)
      break; /* needs more input */
  }
  return 0;
}

int git_body_finish(git_body *b, int *out_fd) {
  if (b->gzip && b->z.total_in && !b->z_end)
    return hub_error_set(HUB_EINVALID, "truncated gzip request body");
  if (lseek(b->fd, 0, SEEK_SET) < 0)
    return hub_error_set(HUB_ERROR, "rewinding git spool: %s", strerror(errno));
  *out_fd = b->fd;
  return 0;
}

void git_body_dispose(git_body *b) {
  if (b->z_ready) inflateEnd(&b->z);
  b->z_ready = 0;
  if (b->fd >= 0) close(b->fd);
  b->fd = -1;
}
