/* Filesystem blob backend.
 *
 * Layout under the root directory (the data dir):
 *   blobs/sha256/ab/cd/<oid>   published objects, immutable
 *   tmp/w-<random>.tmp         in-flight writes (same filesystem, so publishing is atomic)
 *   tmp/parts/<oid>/<n>        parts of a multipart upload
 *
 * Publishing: write temp → fsync → link(temp, final) → fsync(final dir) → unlink(temp).
 * link() never replaces, so concurrent commits of the same oid all succeed and the first one
 * wins; where hard links are unsupported we fall back to rename(), which replaces atomically
 * with identical bytes. A crash leaves at most a temp file, never a partial object. */
#include "blob/backend.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WBUF_SIZE (1024 * 1024)
/* Start writeback every this many bytes, so the final fsync of a multi-GB upload has
 * little left to flush and the disk works while the network still delivers. */
#define WRITEBACK_STEP (16 * 1024 * 1024)

typedef struct {
  blob_backend base;
  int root_fd; /* the data dir; every path below is relative to it */
} fs_backend;

typedef struct {
  blob_backend_writer base;
  int fd;
  char tmp[64]; /* "tmp/w-<32 hex>.tmp" */
  size_t blen;
  uint64_t written, kicked; /* bytes written; bytes handed to writeback */
  unsigned char buf[WBUF_SIZE];
} fs_writer;

typedef struct {
  struct blob_stream base;
  int fd;
} fs_stream;

static int sys_err(const char *what, const char *path) {
  return hub_error_set(HUB_ERROR, "blob fs: %s %s: %s", what, path, strerror(errno));
}

static void object_path(char out[96], const char *oid) {
  snprintf(out, 96, "blobs/sha256/%.2s/%.2s/%s", oid, oid + 2, oid);
}

static void object_dir(char out[32], const char *oid) {
  snprintf(out, 32, "blobs/sha256/%.2s/%.2s", oid, oid + 2);
}

static void parts_dir(char out[96], const char *oid) {
  snprintf(out, 96, "tmp/parts/%s", oid);
}

static int fsync_dir(int root_fd, const char *rel) {
  int fd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_err("open dir", rel);
  int r = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  if (r < 0 && errno != EINVAL) return sys_err("fsync dir", rel);
  return 0;
}

/* mkdir -p for a relative path; a directory we create has its parent fsynced so the new
 * entry survives a crash. */
static int ensure_dir(int root_fd, const char *rel) {
  char p[128];
  size_t n = strlen(rel);
  if (n >= sizeof p) return hub_error_set(HUB_ERROR, "blob fs: path too long");
  memcpy(p, rel, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != 0) continue;
    char saved = p[i];
    p[i] = 0;
    if (mkdirat(root_fd, p, 0755) == 0) {
      char *slash = strrchr(p, '/');
      int rc;
      if (slash) {
        *slash = 0;
        rc = fsync_dir(root_fd, p);
        *slash = '/';
      } else {
        rc = fsync_dir(root_fd, ".");
      }
      if (rc < 0) return rc;
    } else if (errno != EEXIST) {
      return sys_err("mkdir", p);
    }
    p[i] = saved;
  }
  return 0;
}

static int fs_stat(blob_backend *be, const char *oid, int64_t *out_size) {
  fs_backend *fs = (fs_backend *)be;
  char path[96];
  struct stat st;
  object_path(path, oid);
  if (fstatat(fs->root_fd, path, &st, 0) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return hub_error_set(HUB_ENOTFOUND, "object %s not found", oid);
    return sys_err("stat", path);
  }
  if (out_size) *out_size = (int64_t)st.st_size;
  return 0;
}

static int open_file(int root_fd, const char *path, int *out_fd, int64_t *out_size,
                     const char *what) {
  struct stat st;
  int fd = openat(root_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return hub_error_set(HUB_ENOTFOUND, "%s not found", what);
    return sys_err("open", path);
  }
  if (fstat(fd, &st) < 0) {
    int rc = sys_err("fstat", path);
    close(fd);
    return rc;
  }
  *out_fd = fd;
  if (out_size) *out_size = (int64_t)st.st_size;
  return 0;
}

static int fs_open_read(blob_backend *be, const char *oid, int want_fd, int *out_fd,
                        struct blob_stream **out_stream, int64_t *out_size) {
  fs_backend *fs = (fs_backend *)be;
  char path[96], what[80];
  (void)want_fd; /* always an fd: the generic layer wraps it when a stream is wanted */
  *out_fd = -1;
  *out_stream = NULL;
  object_path(path, oid);
  snprintf(what, sizeof what, "object %s", oid);
  return open_file(fs->root_fd, path, out_fd, out_size, what);
}

static int fs_stream_read(struct blob_stream *s, void *buf, size_t cap, size_t *out_n) {
  fs_stream *f = (fs_stream *)s;
  ssize_t n;
  do
    n = read(f->fd, buf, cap);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    *out_n = 0;
    return hub_error_set(HUB_ERROR, "blob fs: read: %s", strerror(errno));
  }
  *out_n = (size_t)n;
  return 0;
}

static void fs_stream_close(struct blob_stream *s) {
  fs_stream *f = (fs_stream *)s;
  close(f->fd);
  free(f);
}

static int fs_writer_open(blob_backend *be, blob_backend_writer **out) {
  fs_backend *fs = (fs_backend *)be;
  static const char digits[] = "0123456789abcdef";
  unsigned char rnd[16];
  fs_writer *w = NULL;
  *out = NULL;
  if (!(w = malloc(sizeof *w))) return hub_error_set(HUB_ERROR, "out of memory");
  w->base.backend = be;
  w->blen = 0;
  w->written = w->kicked = 0;
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    free(w);
    return hub_error_set(HUB_ERROR, "blob fs: no randomness for temp name");
  }
  memcpy(w->tmp, "tmp/w-", 6);
  for (int i = 0; i < 16; i++) {
    w->tmp[6 + 2 * i] = digits[rnd[i] >> 4];
    w->tmp[7 + 2 * i] = digits[rnd[i] & 15];
  }
  memcpy(w->tmp + 38, ".tmp", 5);
  w->fd = openat(fs->root_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    int rc = sys_err("create", w->tmp);
    free(w);
    return rc;
  }
  *out = &w->base;
  return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len, const char *path) {
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC || errno == EDQUOT)
        return hub_error_set(HUB_ENOSPC, "blob fs: disk full writing %s", path);
      return sys_err("write", path);
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int flush_buf(fs_writer *w, const unsigned char *p, size_t len) {
  int rc = write_all(w->fd, p, len, w->tmp);
  if (rc < 0) return rc;
  w->written += len;
  if (w->written - w->kicked >= WRITEBACK_STEP) {
    /* Asynchronous: only queues the dirty range for writeback (errors surface at fsync). */
    sync_file_range(w->fd, (off_t)w->kicked, (off_t)(w->written - w->kicked),
                    SYNC_FILE_RANGE_WRITE);
    w->kicked = w->written;
  }
  return 0;
}

static int fs_writer_write(blob_backend_writer *bw, const void *data, size_t len) {
  fs_writer *w = (fs_writer *)bw;
  if (w->blen + len <= WBUF_SIZE) {
    memcpy(w->buf + w->blen, data, len);
    w->blen += len;
    return 0;
  }
  int rc = flush_buf(w, w->buf, w->blen);
  w->blen = 0;
  if (rc < 0) return rc;
  if (len >= WBUF_SIZE) return flush_buf(w, data, len);
  memcpy(w->buf, data, len);
  w->blen = len;
  return 0;
}

static int fs_writer_flush_fd(blob_backend_writer *bw, int *out_fd) {
  fs_writer *w = (fs_writer *)bw;
  fs_backend *fs = (fs_backend *)bw->backend;
  int rc = flush_buf(w, w->buf, w->blen);
  w->blen = 0;
  if (rc < 0 || !out_fd) return rc;
  *out_fd = openat(fs->root_fd, w->tmp, O_RDONLY | O_CLOEXEC);
  return *out_fd < 0 ? sys_err("open", w->tmp) : 0;
}

static void fs_writer_abort(blob_backend_writer *bw) {
  fs_writer *w = (fs_writer *)bw;
  fs_backend *fs = (fs_backend *)bw->backend;
  if (w->fd >= 0) close(w->fd);
  unlinkat(fs->root_fd, w->tmp, 0);
  free(w);
}

/* Flush, fsync and close the temp file (fd is -1 afterwards). */
static int finish_tmp(fs_writer *w) {
  int rc = write_all(w->fd, w->buf, w->blen, w->tmp);
  w->blen = 0;
  if (rc < 0) return rc;
  if (fsync(w->fd) < 0) return sys_err("fsync", w->tmp);
  int r = close(w->fd);
  w->fd = -1;
  if (r < 0) return sys_err("close", w->tmp);
  return 0;
}

static int fs_writer_commit(blob_backend_writer *bw, const char *oid) {
  fs_writer *w = (fs_writer *)bw;
  fs_backend *fs = (fs_backend *)bw->backend;
  char path[96], dir[32];
  int rc;
  object_path(path, oid);
  object_dir(dir, oid);
  if ((rc = finish_tmp(w)) < 0) goto done;
  if ((rc = ensure_dir(fs->root_fd, dir)) < 0) goto done;
  if (linkat(fs->root_fd, w->tmp, fs->root_fd, path, 0) < 0) {
    if (errno == EEXIST) { /* identical content already stored */
      rc = 0;
      goto done;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK) {
      rc = sys_err("link", path);
      goto done;
    }
    if (renameat(fs->root_fd, w->tmp, fs->root_fd, path) < 0) {
      rc = sys_err("rename", path);
      goto done;
    }
  }
  rc = fsync_dir(fs->root_fd, dir);
done:
  fs_writer_abort(bw); /* closes if still open, removes the temp name, frees */
  return rc;
}

static int fs_remove(blob_backend *be, const char *oid) {
  fs_backend *fs = (fs_backend *)be;
  char path[96];
  object_path(path, oid);
  if (unlinkat(fs->root_fd, path, 0) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return hub_error_set(HUB_ENOTFOUND, "object %s not found", oid);
    return sys_err("unlink", path);
  }
  return 0;
}

static int fs_part_commit(blob_backend_writer *bw, const char *upload_oid, unsigned n) {
  fs_writer *w = (fs_writer *)bw;
  fs_backend *fs = (fs_backend *)bw->backend;
  char dir[96], path[112];
  int rc;
  parts_dir(dir, upload_oid);
  snprintf(path, sizeof path, "%s/%u", dir, n);
  if ((rc = finish_tmp(w)) < 0) goto done;
  if ((rc = ensure_dir(fs->root_fd, dir)) < 0) goto done;
  if (renameat(fs->root_fd, w->tmp, fs->root_fd, path) < 0) {
    rc = sys_err("rename", path);
    goto done;
  }
  rc = fsync_dir(fs->root_fd, dir);
done:
  fs_writer_abort(bw);
  return rc;
}

static int fs_part_open(blob_backend *be, const char *upload_oid, unsigned n,
                        struct blob_stream **out, int64_t *out_size) {
  fs_backend *fs = (fs_backend *)be;
  char path[112], what[32];
  fs_stream *s = NULL;
  int fd = -1, rc;
  *out = NULL;
  snprintf(path, sizeof path, "tmp/parts/%s/%u", upload_oid, n);
  snprintf(what, sizeof what, "part %u", n);
  if ((rc = open_file(fs->root_fd, path, &fd, out_size, what)) < 0) return rc;
  if (!(s = malloc(sizeof *s))) {
    close(fd);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  s->base.read = fs_stream_read;
  s->base.close = fs_stream_close;
  s->fd = fd;
  *out = &s->base;
  return 0;
}

/* Remove regular files in dir `rel` (older than `cutoff` when cutoff >= 0), then try to
 * remove the directory itself if `rmdir_after`. Counts removals in *removed. */
static int clean_dir(int root_fd, const char *rel, time_t cutoff, int rmdir_after, int *removed) {
  int dfd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return 0;
    return sys_err("open dir", rel);
  }
  DIR *d = fdopendir(dfd);
  if (!d) {
    int rc = sys_err("opendir", rel);
    close(dfd);
    return rc;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    struct stat st;
    if (e->d_name[0] == '.') continue; /* ".", ".."; we never create dot files */
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
    if (cutoff >= 0 && st.st_mtime >= cutoff) continue;
    if (unlinkat(dfd, e->d_name, 0) == 0 && removed) (*removed)++;
  }
  closedir(d);
  if (rmdir_after) unlinkat(root_fd, rel, AT_REMOVEDIR); /* fails harmlessly if not empty */
  return 0;
}

static int fs_parts_remove(blob_backend *be, const char *upload_oid) {
  fs_backend *fs = (fs_backend *)be;
  char dir[96];
  parts_dir(dir, upload_oid);
  return clean_dir(fs->root_fd, dir, -1, 1, NULL);
}

static int fs_sweep_tmp(blob_backend *be, int64_t older_than_seconds, int *out_removed) {
  fs_backend *fs = (fs_backend *)be;
  time_t cutoff = time(NULL) - (time_t)(older_than_seconds < 0 ? 0 : older_than_seconds);
  int rc;
  if ((rc = clean_dir(fs->root_fd, "tmp", cutoff, 0, out_removed)) < 0) return rc;
  int dfd = openat(fs->root_fd, "tmp/parts", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno == ENOENT ? 0 : sys_err("open dir", "tmp/parts");
  DIR *d = fdopendir(dfd);
  if (!d) {
    rc = sys_err("opendir", "tmp/parts");
    close(dfd);
    return rc;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    char rel[96];
    struct stat st;
    if (e->d_name[0] == '.' || strlen(e->d_name) != 64) continue;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) continue;
    snprintf(rel, sizeof rel, "tmp/parts/%.64s", e->d_name);
    /* an upload directory is removed only once it is old itself, so a part being committed
     * right now into a fresh directory does not lose it */
    if ((rc = clean_dir(fs->root_fd, rel, cutoff, st.st_mtime < cutoff, out_removed)) < 0) break;
  }
  closedir(d);
  return rc;
}

static void fs_free(blob_backend *be) {
  fs_backend *fs = (fs_backend *)be;
  if (fs->root_fd >= 0) close(fs->root_fd);
  free(fs);
}

int blob_fs_backend_new(blob_backend **out, const char *root_dir) {
  fs_backend *fs = NULL;
  int rc;
  *out = NULL;
  if (!root_dir || !*root_dir) return hub_error_set(HUB_EINVALID, "blob fs: no root directory");
  if (mkdir(root_dir, 0755) < 0 && errno != EEXIST) return sys_err("mkdir", root_dir);
  if (!(fs = calloc(1, sizeof *fs))) return hub_error_set(HUB_ERROR, "out of memory");
  fs->root_fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fs->root_fd < 0) {
    rc = sys_err("open", root_dir);
    free(fs);
    return rc;
  }
  fs->base = (blob_backend){
      .version = BLOB_BACKEND_VERSION,
      .name = "fs",
      .stat = fs_stat,
      .open_read = fs_open_read,
      .writer_open = fs_writer_open,
      .writer_write = fs_writer_write,
      .writer_commit = fs_writer_commit,
      .writer_abort = fs_writer_abort,
      .remove = fs_remove,
      .part_commit = fs_part_commit,
      .part_open = fs_part_open,
      .parts_remove = fs_parts_remove,
      .sweep_tmp = fs_sweep_tmp,
      .writer_flush_fd = fs_writer_flush_fd,
      .free = fs_free,
  };
  if ((rc = ensure_dir(fs->root_fd, "blobs/sha256")) < 0 ||
      (rc = ensure_dir(fs->root_fd, "tmp/parts")) < 0) {
    fs_free(&fs->base);
    return rc;
  }
  *out = &fs->base;
  return 0;
}
