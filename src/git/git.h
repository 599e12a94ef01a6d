/* git/: git smart HTTP, the push hooks, and the git-lfs locks stubs — the module's whole
 * interface (docs/git.md).
 *
 * Fetch and push run Debian's `git upload-pack` / `git receive-pack --stateless-rpc` as child
 * processes (argv array, no shell). Request bodies are inflated (gzip) and spooled to an
 * unlinked file under <data>/tmp while they arrive, then become the child's stdin; the
 * child's stdout is streamed back as the response. Pushes run with core.hooksPath pointing at
 * <data>/hooks, whose scripts exec `modelhub hook pre-receive|post-receive`: the pre-receive
 * check enforces what the commit API enforces (valid paths, LFS objects present, no writes to
 * server-owned refs); post-receive records the ref updates so the server calls
 * git_after_push() once the push has finished.
 *
 * Authorization is the router's (http/http.h needs + NEED_GIT_CHALLENGE); handlers here only
 * add the git-specific push check on info/refs. */
#ifndef HUB_GIT_GIT_H
#define HUB_GIT_GIT_H

#include <stddef.h>

#include "audit/audit.h"
#include "db/db.h"
#include "http/http.h"

/* Request body of one git RPC after gzip inflation: bounds the disk one push can fill in
 * <data>/tmp. Git repos here hold LFS pointers, not weights. */
#define GIT_MAX_RPC_BODY (8LL * 1024 * 1024 * 1024)
/* Bytes of one git RPC body kept in memory (a memfd) before it is spooled to <data>/tmp:
 * fetch negotiations stay off the disk (clones work on a full disk); bounds the memory one
 * request holds. */
#define GIT_BODY_MEMORY_MAX (1024 * 1024)
/* Request body of one fetch negotiation (git-upload-pack: want/have lines, a few kB even for
 * big histories) after inflation (MODELHUB_GIT_UPLOAD_BODY_MAX): anyone who may read a repo
 * can send one, so this bounds what an anonymous body can write to <data>/tmp. */
#define GIT_MAX_UPLOAD_BODY (64LL * 1024 * 1024)
/* gzip request bodies may inflate at most this many times their compressed size (once past
 * GIT_INFLATE_RATIO_FLOOR bytes): git's own bodies (hex ids, packs) inflate 1-3x, a gzip
 * bomb ~1000x; refused before it is inflated any further. */
#define GIT_MAX_INFLATE_RATIO 200
#define GIT_INFLATE_RATIO_FLOOR (1024 * 1024)
/* Git-Protocol header ("version=2"): longer values are ignored, not passed to git. */
#define GIT_MAX_PROTOCOL_HEADER 256
/* Bytes of ref-update lines one hook reads from git ("<old> <new> <ref>\n" per ref): bounds
 * hook memory for a push of very many refs. */
#define GIT_MAX_HOOK_INPUT (64 * 1024 * 1024)
/* Longest the server waits after a push of main for derived metadata (event consumer). */
#define GIT_DERIVE_WAIT_MS 2000
/* Rejection messages one pre-receive run prints before it stops looking. */
#define GIT_MAX_HOOK_ERRORS 10
/* Milliseconds a child gets to exit after SIGTERM (client gone) before SIGKILL. */
#define GIT_CHILD_KILL_GRACE_MS 2000

/* Routes: info/refs, git-upload-pack, git-receive-pack (with and without .git, models and
 * the datasets/ spaces/ prefixes) and info/lfs/locks[/verify]. Registered by main.c. */
extern const hub_route git_routes[];

/* One ref moved by a push. Ids are 40-hex; all zeros means created (old) / deleted (new). */
typedef struct {
  char old_id[41];
  char new_id[41];
  const char *ref; /* full name, borrowed for the duration of the call */
} git_ref_update;

/* Called in the server after a receive-pack that moved at least one ref, before the push
 * response ends (so `git push` returning means derived data is current), with the updates
 * in the order git applied them. The hook recorded them (events/); this records whatever it
 * could not (events_reconcile_repo), wakes the consumers and waits (bounded) for derived
 * metadata of main. Returns 0 or a HUB_E* code (logged, the push stands). */
int git_after_push(const db_repo *repo, const audit_ctx *actx, const git_ref_update *updates,
                   size_t n);

/* Run git to its end as one of the server's git children (spawn.c: parent-death signal, own
 * process group, stopped by git_children_stop), stdin /dev/null, with our environment minus
 * GIT_* and MODELHUB_* plus `extra` ("K=V", NULL-terminated, may be NULL). Its stdout and
 * stderr go to `out` (NUL-terminated, the first cap-1 bytes; out may be NULL). Returns git's
 * exit code (128 when it died from a signal), or a HUB_E* code (< 0) when it did not start. */
int git_run(char *const argv[], const char *const *extra, char *out, size_t cap);

/* Shutdown ran out of grace: SIGTERM every running git child's process group (git then
 * removes its lock files and quarantine, so an unfinished push moves no ref), and any
 * child started from now on. Safe from any thread. */
void git_children_stop(void);

/* Repository maintenance (maint.c): a thread that every interval_s seconds runs
 * `git gc --auto` (and `git pack-refs` for many loose refs) on repositories that may need
 * it, each under the repository's ref lock held exclusively (repo_ref_lock). interval_s
 * <= 0 starts nothing. Stop before the DB closes; stopping ends a running git gc. */
int git_maint_start(long interval_s);
void git_maint_stop(void);

/* Start-up: for every repository whose refs/heads/main differs from the head the DB
 * derived (it moved while the server did not see it: a push cut short by a crash, or
 * plain git in the bare repository), record a "repo.ref.recovered" audit entry and
 * refresh its derived data. Reads refs without opening repositories, so it is cheap for
 * the repositories that did not move. */
int git_refs_reconcile(void);

/* `modelhub hook pre-receive|post-receive`, run by git inside receive-pack (argv[0] is
 * "hook"). Reads the ref updates on stdin; the environment carries MODELHUB_DATA and, for
 * post-receive, MODELHUB_PUSH_LOG. Returns the process exit code (0 accepts the push). */
int git_hook_main(int argc, char **argv);

#endif
