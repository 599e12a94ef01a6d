/* Who may move a ref, and when a ref's `.lock` file is left over from a crash.
 *
 * Writers of this process queue per (repository, ref); one of them at a time, the leader,
 * reads the head, builds on it and moves the ref (docs/repo.md). While a writer leads no
 * other thread of the process can hold the ref's git lock file, so a `<ref>.lock` met then belongs
 * to another process (a `git receive-pack` child, git maintenance) or to nobody: a process that
 * died between creating and renaming it. It is stale, and removed, when it is at least
 * REPO_LOCK_STALE_SECS old and no live process that may write refs works in the repository (its
 * working directory is the git directory, as for `git receive-pack DIR` and its hooks). */
#include "repo/repo_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/lock.h"
#include "util/error.h"
#include "util/limits.h"

/* ---- per-ref queues ------------------------------------------------------------------ */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static repo__refq *g_queues;

int repo__refq_get(repo_handle *h, const char *ref, repo__refq **out) {
  const char *dir = git_repository_path(h->git);
  size_t dl = strlen(dir), rl = strlen(ref);
  repo__refq *q;

  *out = NULL;
  pthread_mutex_lock(&g_mu);
  for (q = g_queues; q; q = q->next_q)
    if (!strncmp(q->key, dir, dl) && q->key[dl] == '\n' && !strcmp(q->key + dl + 1, ref)) break;
  if (!q) {
    q = calloc(1, sizeof *q + dl + rl + 2);
    if (!q) {
      pthread_mutex_unlock(&g_mu);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
    memcpy(q->key, dir, dl);
    q->key[dl] = '\n';
    memcpy(q->key + dl + 1, ref, rl + 1);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->tail = &q->head;
    q->next_q = g_queues;
    g_queues = q;
  }
  q->users++;
  pthread_mutex_unlock(&g_mu);
  *out = q;
  return 0;
}

void repo__refq_put(repo__refq *q) {
  if (!q) return;
  pthread_mutex_lock(&g_mu);
  if (--q->users == 0) {
    repo__refq **pp = &g_queues;
    while (*pp != q)
      pp = &(*pp)->next_q;
    *pp = q->next_q;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
  }
  pthread_mutex_unlock(&g_mu);
}

/* ---- the turn across nodes ----------------------------------------------------------- */

/* The queue's repository as every node names it (the git dir's name, "<uid>", whatever
 * the mount point) and its ref. */
static void node_key(const repo__refq *q, char repo[128], const char **ref) {
  const char *nl = strchr(q->key, '\n');
  size_t end = (size_t)(nl - q->key), start;
  while (end > 1 && q->key[end - 1] == '/')
    end--;
  start = end;
  while (start > 0 && q->key[start - 1] != '/')
    start--;
  if (end - start > 4 && !memcmp(q->key + end - 4, ".git", 4)) end -= 4;
  snprintf(repo, 128, "%.*s", (int)(end - start), q->key + start);
  *ref = nl + 1;
}

int repo__refq_node_lock(repo__refq *q) {
  char repo[128];
  const char *ref;
  node_key(q, repo, &ref);
  return db_repo_lock(repo, ref, (int64_t)REPO_REF_WAIT_SECS * 1000);
}

void repo__refq_node_unlock(repo__refq *q) {
  char repo[128];
  const char *ref;
  node_key(q, repo, &ref);
  db_repo_unlock(repo, ref);
}

int repo__ref_lock(repo_handle *h, const char *ref, repo__refq **out) {
  struct timespec deadline;
  repo__refq *q;
  int rc, err = 0;

  *out = NULL;
  if ((rc = repo__refq_get(h, ref, &q)) < 0) return rc;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += REPO_REF_WAIT_SECS;
  pthread_mutex_lock(&q->mu);
  while (q->leader && err == 0)
    err = pthread_cond_timedwait(&q->cv, &q->mu, &deadline);
  if (!q->leader) {
    q->leader = 1;
    err = 0;
  }
  pthread_mutex_unlock(&q->mu);
  if (err) {
    repo__refq_put(q);
    return hub_error_set(HUB_ERETRY, "'%s' is busy with other commits, try again", ref);
  }
  /* This process's turn; now the nodes' (docs/scale-out.md, "Several nodes"). */
  if ((rc = repo__refq_node_lock(q)) < 0) {
    pthread_mutex_lock(&q->mu);
    q->leader = 0;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    repo__refq_put(q);
    return rc;
  }
  *out = q;
  return 0;
}

void repo__ref_unlock(repo__refq *q) {
  if (!q) return;
  repo__refq_node_unlock(q);
  pthread_mutex_lock(&q->mu);
  q->leader = 0;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  repo__refq_put(q);
}

/* ---- stale lock files --------------------------------------------------------------- */

/* 1 if a live process other than us has its working directory in `dir` (the git
 * directory, without a trailing '/') and may write refs there. Read-only git services
 * (upload-pack and the pack-objects it runs) do not count: a long clone must not keep a
 * dead writer's lock alive. */
static int live_worker_in(const char *dir) {
  DIR *proc = opendir("/proc");
  struct dirent *d;
  size_t dl = strlen(dir);
  pid_t self = getpid();
  int found = 0;

  if (!proc) return 1; /* cannot tell: assume someone is there */
  while (!found && (d = readdir(proc))) {
    char link[64], cwd[PATH_MAX + 1], cmd[512];
    ssize_t n;
    FILE *f;
    size_t m, i;
    char *end;
    long pid = strtol(d->d_name, &end, 10);
    if (*end || pid <= 0 || pid == self) continue;
    snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
    n = readlink(link, cwd, sizeof cwd - 1);
    if (n < 0) continue; /* gone, or another user's */
    cwd[n] = 0;
    if (strncmp(cwd, dir, dl) || (cwd[dl] && cwd[dl] != '/')) continue;
    snprintf(link, sizeof link, "/proc/%ld/cmdline", pid);
    m = 0;
    if ((f = fopen(link, "r"))) {
      m = fread(cmd, 1, sizeof cmd - 1, f);
      fclose(f);
    }
    for (i = 0; i < m; i++)
      if (!cmd[i]) cmd[i] = ' ';
    cmd[m] = 0;
    if (strstr(cmd, "upload-pack") || strstr(cmd, "pack-objects")) continue;
    found = 1;
  }
  closedir(proc);
  return found;
}

/* `gitdir` with any trailing '/' removed and symlinks resolved, into out. */
static void canonical_dir(const char *gitdir, char out[PATH_MAX + 1]) {
  size_t n;
  if (!realpath(gitdir, out)) snprintf(out, PATH_MAX + 1, "%s", gitdir);
  n = strlen(out);
  while (n > 1 && out[n - 1] == '/')
    out[--n] = 0;
}

int repo__lock_file_stale(const char *lock_path, const char *gitdir) {
  struct stat st;
  char dir[PATH_MAX + 1];
  if (lstat(lock_path, &st)) return errno == ENOENT ? -1 : 0;
  if (!S_ISREG(st.st_mode) || time(NULL) - st.st_mtime < REPO_LOCK_STALE_SECS) return 0;
  canonical_dir(gitdir, dir);
  return !live_worker_in(dir);
}

int repo__ref_lock_clear_stale(repo_handle *h, const char *ref) {
  char path[PATH_MAX + 1];
  const char *dir = git_repository_path(h->git);
  int stale;
  if ((size_t)snprintf(path, sizeof path, "%s%s.lock", dir, ref) >= sizeof path) return 0;
  stale = repo__lock_file_stale(path, dir);
  if (stale < 0) return 1; /* already gone: try again */
  if (!stale) return 0;
  if (unlink(path) && errno != ENOENT) return 0;
  fprintf(stderr, "modelhub: removed stale lock %s (left by a process that died)\n", path);
  return 1;
}

/* ---- sweeping a repository (start-up, fsck) ------------------------------------------ */

typedef struct {
  const char *gitdir;
  repo_lock_cb cb;
  void *payload;
  int found;
  int rc;
} sweep;

static void sweep_one(sweep *s, const char *path, const char *rel) {
  int stale = repo__lock_file_stale(path, s->gitdir);
  int removed;
  if (stale <= 0) return;
  removed = unlink(path) == 0 || errno == ENOENT;
  s->found++;
  if (s->cb && !s->rc) s->rc = s->cb(s->gitdir, rel, removed, s->payload);
}

static int has_lock_suffix(const char *name) {
  size_t n = strlen(name);
  return n > 5 && !strcmp(name + n - 5, ".lock");
}

/* Lock files under refs/ (`depth` bounds hostile nesting from pushes). */
static void sweep_dir(sweep *s, char *path, size_t plen, size_t root_len, int depth) {
  DIR *d;
  struct dirent *e;
  if (depth > 64 || !(d = opendir(path))) return;
  while ((e = readdir(d)) && !s->rc) {
    struct stat st;
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    if (plen + 1 + n >= PATH_MAX) continue;
    path[plen] = '/';
    memcpy(path + plen + 1, e->d_name, n + 1);
    if (lstat(path, &st) == 0) {
      if (S_ISDIR(st.st_mode))
        sweep_dir(s, path, plen + 1 + n, root_len, depth + 1);
      else if (has_lock_suffix(e->d_name))
        sweep_one(s, path, path + root_len);
    }
    path[plen] = 0;
  }
  closedir(d);
}

int repo_locks_sweep(const char *gitdir, repo_lock_cb cb, void *payload) {
  char path[PATH_MAX + 1];
  sweep s = {gitdir, cb, payload, 0, 0};
  size_t root;
  DIR *d;
  struct dirent *e;

  root = (size_t)snprintf(path, sizeof path, "%s", gitdir);
  if (root >= sizeof path - 8) return hub_error_set(HUB_EINVALID, "path too long");
  while (root > 1 && path[root - 1] == '/')
    path[--root] = 0;
  /* Top-level locks: packed-refs.lock, HEAD.lock, config.lock, shallow.lock. */
  if (!(d = opendir(path))) return hub_error_set(HUB_EREPO, "cannot open %s", gitdir);
  while ((e = readdir(d)) && !s.rc) {
    char p[PATH_MAX + 1];
    if (!has_lock_suffix(e->d_name)) continue;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= sizeof p) continue;
    sweep_one(&s, p, p + root + 1);
  }
  closedir(d);
  memcpy(path + root, "/refs", 6);
  if (!s.rc) sweep_dir(&s, path, root + 5, root + 1, 0);
  return s.rc ? s.rc : s.found;
}

int repo_locks_sweep_tree(const char *root, repo_lock_cb cb, void *payload, size_t *out_repos) {
  char a[PATH_MAX + 1], b[PATH_MAX + 1], c[PATH_MAX + 1];
  DIR *d1 = NULL, *d2, *d3;
  struct dirent *e1, *e2, *e3;
  int found = 0, rc = 0;

  if (out_repos) *out_repos = 0;
  if (!(d1 = opendir(root))) return errno == ENOENT ? 0 : hub_error_set(HUB_ERROR, "open %s", root);
  /* repos/ab/cd/<uid>.git */
  while (!rc && (e1 = readdir(d1))) {
    if (e1->d_name[0] == '.' ||
        (size_t)snprintf(a, sizeof a, "%s/%s", root, e1->d_name) >= sizeof a || !(d2 = opendir(a)))
      continue;
    while (!rc && (e2 = readdir(d2))) {
      if (e2->d_name[0] == '.' ||
          (size_t)snprintf(b, sizeof b, "%s/%s", a, e2->d_name) >= sizeof b || !(d3 = opendir(b)))
        continue;
      while (!rc && (e3 = readdir(d3))) {
        size_t n = strlen(e3->d_name);
        int k;
        if (e3->d_name[0] == '.' || n < 5 || strcmp(e3->d_name + n - 4, ".git") ||
            (size_t)snprintf(c, sizeof c, "%s/%s", b, e3->d_name) >= sizeof c)
          continue;
        if (out_repos) (*out_repos)++;
        k = repo_locks_sweep(c, cb, payload);
        if (k > 0)
          found += k;
        else if (k < 0 && k != HUB_EREPO)
          rc = k;
      }
      closedir(d3);
    }
    closedir(d2);
  }
  closedir(d1);
  return rc ? rc : found;
}
