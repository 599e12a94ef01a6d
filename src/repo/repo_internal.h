/* Private to src/repo/: the handle and helpers shared between its files. */
#ifndef HUB_REPO_INTERNAL_H
#define HUB_REPO_INTERNAL_H

#include <git2.h>
#include <pthread.h>
#include <stddef.h>

#include "repo/repo.h"

struct repo_handle {
  git_repository *git;
  git_odb *odb; /* owned reference, for cheap header reads */
};

/* ---- reflock.c: per-ref writer queue and stale lock files --------------------------- */

/* The writers of one (repository, ref) in this process. `leader` marks the one thread
 * that may move the ref; commits wait in the queue (head..tail) and the leader builds them
 * all, one on the other, and publishes them with one sync and one CAS (commit.c). */
typedef struct repo__pending repo__pending; /* commit.c */
typedef struct repo__refq {
  struct repo__refq *next_q;
  unsigned users; /* threads holding a reference; freed at 0 */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* leader released, or queued commits done */
  int leader;
  repo__pending *head, **tail;
  char key[]; /* "<git dir>\n<ref>" */
} repo__refq;
/* Reference the queue of `ref` in h's repository; release with repo__refq_put. */
int repo__refq_get(repo_handle *h, const char *ref, repo__refq **out);
void repo__refq_put(repo__refq *q);
/* Become the leader of `ref` (wait up to REPO_REF_WAIT_SECS, then HUB_ERETRY): for single
 * ref updates (branch create/delete). Release with repo__ref_unlock (NULL is a no-op). */
int repo__ref_lock(repo_handle *h, const char *ref, repo__refq **out);
void repo__ref_unlock(repo__refq *q);
/* The same turn across nodes sharing the database (db_repo_lock on the queue's repo uid and
 * ref), taken by whoever leads the queue in this process, so one node at a time reads,
 * builds on and moves a ref: 0, or HUB_ERETRY after REPO_REF_WAIT_SECS. repo__ref_lock
 * takes and repo__ref_unlock releases it; the group commit's leader takes it itself. */
int repo__refq_node_lock(repo__refq *q);
void repo__refq_node_unlock(repo__refq *q);
/* 1 if the lock file is stale (old enough, no live process working in `gitdir`), 0 if it
 * may be held, -1 if it does not exist. */
int repo__lock_file_stale(const char *lock_path, const char *gitdir);
/* With `ref`'s writer lock held: remove `<ref>.lock` if stale. 1 = gone now (retry), 0 = it
 * may be held by a live process. */
int repo__ref_lock_clear_stale(repo_handle *h, const char *ref);

/* Make every object and ref written so far durable (one syncfs of the repo's
 * filesystem). Called before a ref moves (its objects) and after (the ref itself). */
int repo__sync(repo_handle *h);

/* Map a libgit2 failure to a hub code and message. GIT_ENOTFOUND becomes `notfound`
 * (pass HUB_ERROR to keep it internal); other codes HUB_ERROR. Returns the hub code. */
int repo__git_error(int gerr, int notfound, const char *what);

/* 1 if s[0..n) is all lowercase-or-uppercase hex. */
int repo__is_hex(const char *s, size_t n);

void repo__oid_hex(char out[41], const git_oid *id);

/* Look up the commit named by a 40-hex id (HUB_EREVISION if not a commit here). */
int repo__commit_lookup(git_commit **out, repo_handle *h, const char *sha);

/* Fill *out from a commit (strings owned by *out). */
int repo__commit_info_fill(repo_commit_info *out, const git_commit *c);

/* strdup that records HUB_ERROR on OOM (returns NULL then). */
char *repo__strdup(const char *s);

/* ---- treeedit.c: ordered edits of a tree in memory, written once at the end ---------- */

typedef struct repo__tnode repo__tnode;
typedef struct {
  git_repository *git;
  repo__tnode *root;
} repo__tedit;

/* Start editing `base` (NULL = empty tree). */
int repo__tedit_init(repo__tedit *t, git_repository *git, const git_tree *base);
/* Write blob `id` at `path` (validated), creating folders; the 100755 mode of a replaced
 * file is kept. A file in the way of a folder, or a folder at `path` → HUB_EINVALID. */
int repo__tedit_upsert(repo__tedit *t, const char *path, const git_oid *id);
/* Remove the file (folder=0) or folder (folder=1) at `path`; missing → HUB_EENTRY. */
int repo__tedit_remove(repo__tedit *t, const char *path, int folder);
/* Write every modified tree; folders left empty are dropped. */
int repo__tedit_write(repo__tedit *t, git_oid *out);
void repo__tedit_dispose(repo__tedit *t);

#endif
