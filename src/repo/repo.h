/* repo/: git storage on libgit2 — the module's whole interface.
 *
 * A repository is a bare git repo on disk. Git is the source of truth for content and
 * history; this module reads trees/blobs/history and builds commits in memory, publishing
 * each one with a single compare-and-swap ref update (docs/repo.md).
 *
 * Conventions
 * - Every function returns 0 or a negative HUB_E* code with a message set through
 *   hub_error_set() (util/error.h). Unknown revision → HUB_EREVISION, missing path →
 *   HUB_EENTRY, stale pinned parent → HUB_ECONFLICT, bad input → HUB_EINVALID, existing
 *   ref → HUB_EEXISTS, missing repo → HUB_EREPO, anything else → HUB_ERROR.
 * - Commit ids are 40-hex lowercase, NUL-terminated in `char[41]`.
 * - Threads: call repo_global_init() once before any thread uses the module. A
 *   repo_handle belongs to one thread at a time; each thread opens its own handle (several
 *   handles on the same repo, in threads or processes, are safe: ref updates are CAS).
 * - Ownership: `char **out` strings and `void **out` buffers are malloc()ed and owned by
 *   the caller (free()). Structs passed to callbacks and their strings are borrowed for the
 *   duration of the callback only. Structs filled by a call (`repo_entry *out`,
 *   `repo_commit_info *out`) own their strings; release them with the matching _dispose().
 * - A callback returning non-zero stops the iteration; the function then returns that
 *   value unchanged (so use a negative HUB_E* code or a positive private value). */
#ifndef HUB_REPO_REPO_H
#define HUB_REPO_REPO_H

#include <stddef.h>
#include <stdint.h>

typedef struct repo_handle repo_handle;

/* Maximum commits repo_last_commit_for_path() walks before giving up and answering with
 * the oldest commit it visited: bounds work per tree entry on deep histories. */
#define REPO_LAST_COMMIT_WALK_MAX 2000
/* Rebuild attempts when the target ref moves under an unpinned commit (lost CAS race). */
#define REPO_COMMIT_MAX_RETRIES 50
/* Longest a writer waits for its turn on a ref behind this process's other writers
 * (they queue per repository and ref) before HUB_ERETRY. */
#define REPO_REF_WAIT_SECS 60
/* A ref's `.lock` file at least this old that no live process can be holding is left over
 * from a crash and is removed (docs/repo.md, "Stale locks"). git holds ref locks for
 * milliseconds. */
#define REPO_LOCK_STALE_SECS 5
/* Longest a commit waits on a ref `.lock` held by another process (git receive-pack):
 * longer than REPO_LOCK_STALE_SECS, so a crashed holder's lock is cleared in time. */
#define REPO_LOCK_WAIT_MS 10000
/* Process-wide bound on libgit2's object cache (raw bytes of cached commits and trees). */
#define REPO_GIT_CACHE_BYTES (4 * 1024 * 1024)
/* Blobs at or above this size are never LFS pointers (git-lfs spec). */
#define REPO_LFS_POINTER_MAX 1024

/* ---- setup ------------------------------------------------------------------------ */

/* Initialise libgit2 once per process (idempotent, thread-safe). */
int repo_global_init(void);
/* Release libgit2's global state at process exit (after every handle is freed). The module
 * cannot be initialised again afterwards. */
void repo_global_shutdown(void);

/* The default .gitattributes text of a new repo (HF LFS patterns). Static, never freed. */
const char *repo_default_gitattributes(void);

/* Create a bare repo at `path` (parent directories created) with HEAD -> refs/heads/main
 * and one commit "Initial commit" holding repo_default_gitattributes(). `path` already
 * holding a repository → HUB_EEXISTS. out_sha may be NULL. */
int repo_init_bare(const char *path, const char *author, const char *email, char out_sha[41]);

/* Called for each stale lock file repo_locks_sweep() met: `rel` is its path inside the git
 * directory ("refs/heads/main.lock"), `removed` whether unlinking it worked. */
typedef int (*repo_lock_cb)(const char *gitdir, const char *rel, int removed, void *payload);
/* Find and remove stale lock files of the bare repo at `gitdir`: `*.lock` under refs/ and
 * at the top (packed-refs.lock, HEAD.lock, config.lock), at least REPO_LOCK_STALE_SECS old,
 * with no live process working in the repository. Safe while the server runs. Returns the
 * number found (≥ 0), a callback's non-zero value, or HUB_EREPO. */
int repo_locks_sweep(const char *gitdir, repo_lock_cb cb, void *payload);
/* repo_locks_sweep() over every `<root>/ab/cd/<id>.git` (the data dir's repos/);
 * out_repos (may be NULL) gets how many repositories were looked at. */
int repo_locks_sweep_tree(const char *root, repo_lock_cb cb, void *payload, size_t *out_repos);

/* Open an existing bare repo (missing → HUB_EREPO). *out is owned by the caller. */
int repo_open(repo_handle **out, const char *path);
void repo_free(repo_handle *h);

/* The repository's ref lock in this process (maintlock.c): every ref update the server
 * makes through libgit2 holds it shared around that one update (never nested, never
 * across a wait); repository maintenance that rewrites refs outside libgit2's locking
 * (git gc / pack-refs) holds it exclusively. `gitdir` is the repository directory (any
 * spelling whose last component is the repo's "<uid>.git"). */
void repo_ref_lock(const char *gitdir, int exclusive);
void repo_ref_unlock(const char *gitdir);

/* ---- revisions (revision.c) ------------------------------------------------------- */

/* Resolve a revision to a commit: "HEAD", a branch name, "refs/heads/x", a tag name,
 * "refs/tags/x", "refs/pr/N", "refs/convert/...", any other full "refs/..." name, a full
 * 40-hex id or an unambiguous hex prefix of ≥4 chars. Names win over hex ids. Tags are
 * peeled to their commit. Unknown, ambiguous or non-commit → HUB_EREVISION.
 * out_refname (may be NULL) receives the full ref name that matched ("refs/heads/main";
 * HEAD gives the branch it points to), or NULL when `rev` was a commit id. */
int repo_resolve(repo_handle *h, const char *rev, char out_sha[41], char **out_refname);

/* Resolve the revision at the start of raw (still percent-encoded) URL segments, per
 * hf-api.md §1.2: the decoded first segment containing '/' is the whole revision;
 * otherwise the longest join of leading decoded segments naming an existing ref wins,
 * falling back to the first segment alone (HEAD / hex id). Joins stop at a segment that
 * decodes to contain '/' (a %2F-encoded sub-path). out_rev (may be NULL) receives the
 * decoded revision text; out_consumed the number of segments it used. Bad escapes →
 * HUB_EINVALID; unknown → HUB_EREVISION. */
int repo_resolve_segments(repo_handle *h, const char *const *raw_segs, size_t nsegs,
                          char out_sha[41], char **out_rev, size_t *out_consumed);

/* ---- trees and blobs (tree.c, lfs.c, path.c) -------------------------------------- */

typedef enum { REPO_ENTRY_FILE = 0, REPO_ENTRY_DIR = 1 } repo_entry_type;

typedef struct {
  repo_entry_type type;
  char *path;            /* full path from the repo root */
  char oid[41];          /* git blob (of the pointer, for LFS) or tree sha1 */
  uint64_t size;         /* file size; the real content size for LFS; 0 for directories */
  int is_lfs;            /* blob is a git-lfs pointer */
  char lfs_oid[65];      /* sha256 hex, "" unless is_lfs */
  uint64_t lfs_size;     /* object size from the pointer */
  uint64_t pointer_size; /* size of the pointer blob itself */
  int executable;        /* mode 100755 */
} repo_entry;

/* Entries are borrowed (path included) for the duration of the call. */
typedef int (*repo_entry_cb)(const repo_entry *entry, void *payload);

/* List the tree at `path` ("" = root) of commit `commit_sha` (40-hex). Non-recursive: the
 * direct children; recursive: every file and directory below, pre-order, git name order.
 * `path` naming a file yields just that file. Missing path → HUB_EENTRY; unknown commit →
 * HUB_EREVISION. Submodule entries are skipped. */
int repo_list(repo_handle *h, const char *commit_sha, const char *path, int recursive,
              repo_entry_cb cb, void *payload);

/* Describe one path at a commit ("" = the root directory). Missing → HUB_EENTRY.
 * On success release *out with repo_entry_dispose(). */
int repo_stat(repo_handle *h, const char *commit_sha, const char *path, repo_entry *out);
void repo_entry_dispose(repo_entry *e);

/* Raw bytes of a blob by its 40-hex git oid (missing → HUB_EENTRY). *out is owned by the
 * caller, NUL-terminated for convenience (not counted in *out_len). */
int repo_read_blob(repo_handle *h, const char *blob_oid_hex, void **out, size_t *out_len);
/* Raw bytes of the blob at `path` in a commit (the pointer text, for LFS files). Missing
 * path or a directory → HUB_EENTRY. Same ownership as repo_read_blob(). */
int repo_read_path(repo_handle *h, const char *commit_sha, const char *path, void **out,
                   size_t *out_len);

/* Parse git-lfs pointer text ("version https://git-lfs.github.com/spec/v1\noid sha256:
 * <64hex>\nsize <n>\n", extra keys tolerated). 1 = pointer (fills out_oid / out_size),
 * 0 = not a pointer. */
int repo_lfs_pointer_parse(const void *data, size_t len, char out_oid[65], uint64_t *out_size);
/* Every git-lfs pointer blob stored in the repository (any history, any ref, packed or
 * loose), once per blob: cb(oid, size, payload); a non-zero return stops the walk and is
 * returned. Used once, to fill the per-repo object table from existing data. */
typedef int (*repo_lfs_pointer_cb)(const char *oid, uint64_t size, void *payload);
int repo_lfs_pointers_each(repo_handle *h, repo_lfs_pointer_cb cb, void *payload);
/* The canonical pointer text for (oid, size); written into buf (≥ 200 bytes). Returns the
 * length, or HUB_EINVALID when oid is not 64 lowercase hex. */
int repo_lfs_pointer_format(char *buf, size_t cap, const char *oid, uint64_t size);

/* 0 if `path` may be stored in a repo, else HUB_EINVALID with a message: non-empty, at
 * most HUB_MAX_PATH bytes, no leading '/', no empty, "." or ".." segment, no ".git"
 * segment (any case), no backslash, no control characters. ".cache/" is allowed here
 * (clients refuse it themselves; git pushes may carry it). */
int repo_path_valid(const char *path);

/* ---- history (log.c) -------------------------------------------------------------- */

typedef struct {
  char id[41];
  char *title;   /* first line of the message */
  char *message; /* full message */
  char *author_name;
  char *author_email;
  int64_t author_time; /* unix seconds */
  int64_t date;        /* committer time, unix seconds: "date" / lastModified */
  size_t nparents;
  char (*parents)[41]; /* nparents entries */
} repo_commit_info;

/* Borrowed for the duration of the callback. */
typedef int (*repo_commit_cb)(const repo_commit_info *commit, void *payload);

/* Describe one commit (40-hex or any revision repo_resolve accepts). Release with
 * repo_commit_info_dispose(). */
int repo_commit_info_get(repo_handle *h, const char *rev, repo_commit_info *out);
void repo_commit_info_dispose(repo_commit_info *c);

/* History from `commit_sha`, newest first (topological, then time). Calls cb for commits
 * [skip, skip+limit) of that order; limit 0 means no limit; cb may be NULL (count only).
 * out_total (may be NULL) gets the number of commits reachable from commit_sha. */
int repo_log(repo_handle *h, const char *commit_sha, size_t skip, size_t limit, repo_commit_cb cb,
             void *payload, size_t *out_total);

/* The most recent commit reachable from commit_sha whose tree differs at `path` from all
 * its parents ("" = commit_sha itself). Walks at most REPO_LAST_COMMIT_WALK_MAX commits,
 * then answers with the last one visited. Path missing at commit_sha → HUB_EENTRY.
 * Release *out with repo_commit_info_dispose(). */
int repo_last_commit_for_path(repo_handle *h, const char *commit_sha, const char *path,
                              repo_commit_info *out);

/* ---- ref transactions (txn.c) ----------------------------------------------------- */

/* Every ref the server moves goes through one transaction (docs/repo.md, "The ref
 * transaction"): begin → queue updates with expected old values → commit, which takes each
 * ref's turn in this process, checks and moves every ref by compare-and-swap (all or none),
 * makes the moves durable (syncfs), and then hands them to the recorder — the layer above
 * (events/) that writes the event, audit entry and derived head in one durable DB
 * transaction. A recorder that fails puts the refs back: nothing is acknowledged without
 * its record. repo/ never includes the layers above; they give it the recorder. */

typedef struct {
  const char *ref; /* full name */
  char old[41];    /* value before, "" when the ref did not exist */
  char new_[41];   /* value after, "" when the ref was deleted */
} repo_ref_update;

/* Record the moved refs (all of one transaction, in order). Non-zero → the refs are put
 * back and the transaction fails with that code. Runs with the refs' turns held. */
typedef int (*repo_record_fn)(repo_handle *h, const repo_ref_update *u, size_t n, void *payload);
typedef struct {
  repo_record_fn fn;
  void *payload;
} repo_recorder;

typedef struct repo_txn repo_txn;

/* Run fn(payload) holding `ref`'s turn in this process: no commit or transaction of this
 * process moves or records the ref meanwhile (start-up and post-push reconciliation compare
 * a ref with its record under it). Returns fn's value, or HUB_ERETRY after
 * REPO_REF_WAIT_SECS. */
int repo_ref_with_turn(repo_handle *h, const char *ref, int (*fn)(void *payload), void *payload);

int repo_txn_begin(repo_txn **out, repo_handle *h);
/* Queue a move of `ref` (full name) to object `new_id` (40 hex; "" or NULL deletes it).
 * `expected`: NULL = whatever it is at commit time (a missing ref is then created, and a
 * delete of a missing ref fails with HUB_EREVISION); "" = must not exist (else
 * HUB_EEXISTS); 40 hex = must be exactly that (else HUB_ECONFLICT). At most
 * REPO_TXN_MAX_UPDATES updates, each ref once. */
#define REPO_TXN_MAX_UPDATES 64
int repo_txn_update(repo_txn *t, const char *ref, const char *expected, const char *new_id);
/* Apply every queued update or none, then record them with `rec` (may be NULL: nothing
 * recorded — tests and tools only). A ref whose git lock another process holds is waited
 * for up to REPO_LOCK_WAIT_MS (stale locks removed). out_updates (may be NULL) gets the
 * applied updates (borrowed until repo_txn_free). */
int repo_txn_commit(repo_txn *t, const repo_recorder *rec, const repo_ref_update **out_updates,
                    size_t *out_n);
void repo_txn_free(repo_txn *t);

/* ---- commits (commit.c, treeedit.c) ----------------------------------------------- */

typedef enum {
  REPO_OP_ADD = 0,       /* path, data/len: regular blob (mode kept if it was 100755) */
  REPO_OP_ADD_LFS,       /* path, lfs_oid/lfs_size: the pointer text as the blob */
  REPO_OP_DELETE_FILE,   /* path; missing (or a folder) → HUB_EENTRY */
  REPO_OP_DELETE_FOLDER, /* path, trailing '/' ignored; recursive; missing → HUB_EENTRY */
  /* path, lfs_oid: the 40-hex id of a blob already written with repo_blob_write() (mode kept
   * like REPO_OP_ADD). Lets a caller write contents one at a time instead of holding every
   * file of a commit in memory. Not in the repo → HUB_EINVALID. */
  REPO_OP_ADD_BLOB,
} repo_op_kind;

typedef struct {
  repo_op_kind kind;
  const char *path;
  const void *data;    /* REPO_OP_ADD */
  size_t len;          /* REPO_OP_ADD */
  const char *lfs_oid; /* REPO_OP_ADD_LFS: 64 lowercase hex */
  uint64_t lfs_size;   /* REPO_OP_ADD_LFS */
} repo_op;

typedef struct {
  const char *ref;         /* full ref to move: "refs/heads/main", "refs/pr/3" */
  const char *parent_pin;  /* NULL or 5–40 hex: head (or create_from) must start with it */
  const char *create_from; /* NULL or a revision to start `ref` from if it doesn't exist */
  int must_create;         /* the ref must not exist yet (new PR refs): HUB_EEXISTS if it does */
  const char *author_name;
  const char *author_email;
  int64_t time;            /* commit time, unix seconds; 0 = now */
  const char *summary;     /* first line; NULL = "" */
  const char *description; /* NULL/"" = none; else message = summary "\n\n" description */
  const repo_op *ops;      /* applied in order */
  size_t nops;
  /* Records the move (events/ spine) before the commit is acknowledged; NULL = none. A
   * failing recorder fails this commit (and the ones queued behind it) and the ref is put
   * back to where it was before it. */
  const repo_recorder *record;
} repo_commit_req;

/* Build a commit from req->ops on top of the ref's head and publish it by CAS on the ref.
 * Ops apply in order on an in-memory tree (a later op sees earlier ones); folders left
 * empty disappear. A commit that does not change the tree is still created. Missing ref
 * without create_from → HUB_EREVISION. Pinned parent not matching → HUB_ECONFLICT ("The
 * branch was updated since you opened this page. Please refresh and try again."), also
 * when the ref moves during the commit. Writers of this process queue per (repo, ref) for
 * up to REPO_REF_WAIT_SECS, so unpinned commits only race other processes (git pushes):
 * rebuilt on the new head, up to REPO_COMMIT_MAX_RETRIES times (then HUB_ERETRY). A stale
 * `<ref>.lock` is removed on the way. Nothing is visible unless the ref moved.
 * out_sha may be NULL. */
int repo_commit(repo_handle *h, const repo_commit_req *req, char out_sha[41]);
/* Write `len` bytes as a blob (not yet durable: repo_commit syncs before publishing) and put
 * its id in out_oid (40 hex). */
int repo_blob_write(repo_handle *h, const void *data, size_t len, char out_oid[41]);

/* ---- refs (refs.c) ---------------------------------------------------------------- */

typedef enum {
  REPO_REF_BRANCH = 0, /* refs/heads/ * */
  REPO_REF_TAG,        /* refs/tags/ * */
  REPO_REF_CONVERT,    /* refs/convert/ * */
  REPO_REF_PR,         /* refs/pr/ * */
} repo_ref_kind;

typedef struct {
  repo_ref_kind kind;
  const char *ref;  /* full name */
  const char *name; /* without the kind's prefix ("main", "v1", "parquet"); full for PRs */
  char target[41];  /* commit (annotated tags peeled) */
} repo_ref;

typedef int (*repo_ref_cb)(const repo_ref *ref, void *payload);

/* All branches, tags, converts and PR refs, sorted by full name; refs that do not peel
 * to a commit and other namespaces are skipped. */
int repo_refs_list(repo_handle *h, repo_ref_cb cb, void *payload);

/* 0 if `name` (short, e.g. "dev" or "v1.0") is acceptable as a branch or tag name:
 * git-valid under refs/heads/, not "HEAD", not 40 hex. Else HUB_EINVALID. */
int repo_ref_name_valid(const char *name);

/* Branch `name` (short, or "refs/heads/name") at revision `start` (any repo_resolve
 * revision). Exists → HUB_EEXISTS unless overwrite. */
int repo_branch_create(repo_handle *h, const char *name, const char *start, int overwrite,
                       const repo_recorder *rec);
/* Missing → HUB_EREVISION. */
int repo_branch_delete(repo_handle *h, const char *name, const repo_recorder *rec);
/* 1 if the branch exists, 0 if not, <0 on error. */
int repo_branch_exists(repo_handle *h, const char *name);

/* Tag `name` (short, or "refs/tags/name") at revision `target`: annotated when message is
 * non-NULL (tagger = name/email, which are then required), else lightweight.
 * Exists → HUB_EEXISTS. */
int repo_tag_create(repo_handle *h, const char *name, const char *target, const char *message,
                    const char *tagger_name, const char *tagger_email, const repo_recorder *rec);
/* Missing → HUB_EREVISION. */
int repo_tag_delete(repo_handle *h, const char *name, const repo_recorder *rec);

/* Delete any full ref name (e.g. "refs/pr/3"). Missing → HUB_EREVISION. */
int repo_ref_delete(repo_handle *h, const char *refname, const repo_recorder *rec);

/* Every ref of the repository (any namespace, HEAD excluded) with its direct target
 * (annotated tags not peeled), sorted by name: cb(ref, id) (non-zero stops). */
typedef int (*repo_ref_raw_cb)(const char *ref, const char *id, void *payload);
int repo_refs_each_raw(repo_handle *h, repo_ref_raw_cb cb, void *payload);

/* Next free pull-request number: max N over refs/pr/N, plus 1 (1 when there are none). */
int repo_next_pr_number(repo_handle *h, int *out);

#endif
