/* bundle/: git child processes, I/O and hashing helpers. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle/internal.h"
#include "db/db.h"
#include "util/error.h"

int bundle__git(const char *const *args, int out_fd) {
  size_t n = 0;
  while (args[n])
    n++;
  const char **argv = calloc(n + 2, sizeof *argv);
  int errp[2] = {-1, -1};
  if (!argv || pipe2(errp, O_CLOEXEC)) {
    free(argv);
    return hub_error_set(HUB_ERROR, "cannot run git: %s", strerror(errno));
  }
  argv[0] = "git";
  memcpy(argv + 1, args, n * sizeof *argv);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(out_fd >= 0 ? out_fd : null, 1);
    dup2(errp[1], 2);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    execvp("git", (char *const *)argv);
    _exit(127);
  }
  free(argv);
  close(errp[1]);
  if (pid < 0) {
    close(errp[0]);
    return hub_error_set(HUB_ERROR, "cannot run git: %s", strerror(errno));
  }
  char err[1024];
  size_t el = 0;
  ssize_t r;
  char sink[4096];
  while ((r = read(errp[0], sink, sizeof sink)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    size_t take = (size_t)r < sizeof err - 1 - el ? (size_t)r : sizeof err - 1 - el;
    memcpy(err + el, sink, take);
    el += take;
  }
  err[el] = 0;
  close(errp[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  err[strcspn(err, "\n")] = 0;
  return hub_error_set(HUB_ERROR, "git %s failed: %s", args[0], *err ? err : "exit status");
}

int bundle__write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return hub_error_set(errno == ENOSPC ? HUB_ENOSPC : HUB_ERROR, "write: %s", strerror(errno));
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int bundle__read_exact(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return hub_error_set(HUB_ERROR, "read: %s", strerror(errno));
    if (r == 0) return hub_error_set(HUB_EINVALID, "bundle is truncated");
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

int bundle__copy(int in_fd, int out_fd, uint64_t n, EVP_MD_CTX *md) {
  char *buf = malloc(BUNDLE_IO_BLOCK);
  int rc = 0;
  if (!buf) return hub_error_set(HUB_ERROR, "out of memory");
  while (n && !rc) {
    size_t want = n < BUNDLE_IO_BLOCK ? (size_t)n : BUNDLE_IO_BLOCK;
    ssize_t r = read(in_fd, buf, want);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = hub_error_set(HUB_ERROR, "read: %s", strerror(errno));
      break;
    }
    if (r == 0) {
      rc = hub_error_set(HUB_EINVALID, "bundle is truncated");
      break;
    }
    if (md) EVP_DigestUpdate(md, buf, (size_t)r);
    if (out_fd >= 0) rc = bundle__write_all(out_fd, buf, (size_t)r);
    n -= (uint64_t)r;
  }
  free(buf);
  return rc;
}

void bundle__hex(char *out, const unsigned char *p, size_t n) {
  static const char h[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = h[p[i] >> 4];
    out[2 * i + 1] = h[p[i] & 15];
  }
  out[2 * n] = 0;
}

int bundle__file_sha256(const char *path, char out_hex[65], uint64_t *out_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    if (fd >= 0) close(fd);
    return hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char d[32];
  unsigned dl = 0;
  int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : HUB_ERROR;
  if (!rc) rc = bundle__copy(fd, -1, (uint64_t)st.st_size, md);
  if (!rc && EVP_DigestFinal_ex(md, d, &dl) != 1) rc = hub_error_set(HUB_ERROR, "sha256");
  if (!rc) {
    bundle__hex(out_hex, d, 32);
    *out_size = (uint64_t)st.st_size;
  }
  EVP_MD_CTX_free(md);
  close(fd);
  return rc;
}

int bundle__tmpdir(const char *prefix, char *out, size_t cap) {
  if ((size_t)snprintf(out, cap, "%s/tmp/%sXXXXXX", db_data_dir(), prefix) >= cap)
    return hub_error_set(HUB_ERROR, "path too long");
  if (!mkdtemp(out)) return hub_error_set(HUB_ERROR, "mkdtemp %s: %s", out, strerror(errno));
  return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

void bundle__rmtree(const char *dir) {
  if (dir && *dir) nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

const char *bundle__type_name(int type) {
  return type == HUB_REPO_DATASET ? "dataset" : type == HUB_REPO_SPACE ? "space" : "model";
}

int bundle__type_parse(const char *s, int *out) {
  if (!strcmp(s, "model"))
    *out = HUB_REPO_MODEL;
  else if (!strcmp(s, "dataset"))
    *out = HUB_REPO_DATASET;
  else if (!strcmp(s, "space"))
    *out = HUB_REPO_SPACE;
  else
    return hub_error_set(HUB_EINVALID, "type must be model, dataset or space");
  return 0;
}
