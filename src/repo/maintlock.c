/* The in-process ref lock of a repository (repo.h, "ref lock").
 *
 * libgit2 and git lock each ref with a `<ref>.lock` file, which keeps ref updates from
 * losing each other's writes. It does not make `git pack-refs --prune` (run by git gc)
 * safe against libgit2: pack-refs copies every loose ref into packed-refs and then deletes
 * the loose files, so a branch libgit2 deleted in between came back from packed-refs, and
 * a libgit2 delete that needed packed-refs.lock while pack-refs held it failed. So the
 * server's own maintenance (git/maint.c) holds this lock exclusively, and every ref
 * update the server makes through libgit2 holds it shared for the duration of that one
 * update. Pushes are git's own receive-pack, which locks the way pack-refs expects.
 *
 * Locks are striped by the repository directory's name (its immutable uid): two repos
 * may share a stripe, which only makes one wait for the other's maintenance. Writers are
 * preferred, so maintenance cannot be starved by a steady stream of commits. */
#include <pthread.h>
#include <string.h>

#include "repo/repo.h"

#define STRIPES 256

static pthread_rwlock_t g_locks[STRIPES];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_locks(void) {
  pthread_rwlockattr_t at;
  pthread_rwlockattr_init(&at);
  pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  for (int i = 0; i < STRIPES; i++)
    pthread_rwlock_init(&g_locks[i], &at);
  pthread_rwlockattr_destroy(&at);
}

/* FNV-1a of the last path component ("…/ab/cd/<uid>.git/" and "…/<uid>.git" agree). */
static pthread_rwlock_t *stripe(const char *gitdir) {
  size_t end = strlen(gitdir);
  while (end > 1 && gitdir[end - 1] == '/')
    end--;
  size_t start = end;
  while (start > 0 && gitdir[start - 1] != '/')
    start--;
  unsigned h = 2166136261u;
  for (size_t i = start; i < end; i++)
    h = (h ^ (unsigned char)gitdir[i]) * 16777619u;
  pthread_once(&g_once, init_locks);
  return &g_locks[h % STRIPES];
}

void repo_ref_lock(const char *gitdir, int exclusive) {
  pthread_rwlock_t *l = stripe(gitdir);
  if (exclusive)
    pthread_rwlock_wrlock(l);
  else
    pthread_rwlock_rdlock(l);
}

void repo_ref_unlock(const char *gitdir) {
  pthread_rwlock_unlock(stripe(gitdir));
}
