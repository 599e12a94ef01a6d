/* Private to src/git/: child processes, request-body spooling, push bookkeeping. */
#ifndef HUB_GIT_INTERNAL_H
#define HUB_GIT_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#include "git/git.h"

/* ---- spawn.c: one git child with stdin from a file and stdout on a pipe --------------- */

typedef struct {
  pid_t pid;  /* 0 when none */
  int out_fd; /* read end of the child's stdout, -1 when closed */
  int reaped;
  int status; /* waitpid status once reaped */
} git_child;

/* Start argv (argv[0] looked up in PATH) with environment envp, stdin from in_fd (-1 means
 * /dev/null), stdout into a pipe (c->out_fd), stderr inherited (the server log). The child
 * gets its own process group, default signal dispositions and an empty signal mask, and no
 * other descriptors. */
int git_child_spawn(git_child *c, char *const argv[], char *const envp[], int in_fd);
/* Read up to cap bytes of the child's stdout: >0 bytes, 0 at end, -1 on error. */
ssize_t git_child_read(git_child *c, char *buf, size_t cap);
/* Wait for the child to exit (after its stdout ended). Returns its exit code, or -1 when it
 * died from a signal. */
int git_child_wait(git_child *c);
/* Close the pipe and, if the child still runs (the client went away), SIGTERM its process
 * group, wait up to GIT_CHILD_KILL_GRACE_MS, then SIGKILL; always reaps. Idempotent. */
void git_child_dispose(git_child *c);

/* The environment for a git child: ours minus GIT_* and MODELHUB_* variables, plus `extra`
 * ("K=V" strings, NULL-terminated). *out is one malloc()ed block (free() it). */
int git_child_env(char ***out, const char *const *extra);

/* ---- body.c: request body → (inflate) → unlinked spool file ----------------------------- */

typedef struct {
  int fd;      /* spool file, -1 until opened */
  int gzip;    /* Content-Encoding: gzip / x-gzip */
  int z_ready; /* inflateInit2 done */
  int z_end;   /* gzip stream finished */
  z_stream z;
  uint64_t total; /* bytes written to the spool (inflated) */
  int in_memory;  /* fd is a memfd (until the body passes GIT_BODY_MEMORY_MAX) */
  uint64_t max;   /* bytes the body may take (inflated) */
} git_body;

/* Prepare for a body of at most `max` bytes (after inflation); gzip selects inflation. The
 * body is kept in a memfd up to GIT_BODY_MEMORY_MAX bytes, then in an unlinked spool file
 * under <data>/tmp. */
int git_body_open(git_body *b, int gzip, uint64_t max);
/* The most a git-upload-pack body may take: MODELHUB_GIT_UPLOAD_BODY_MAX or
 * GIT_MAX_UPLOAD_BODY. */
uint64_t git_body_upload_max(void);
/* Append a chunk as it arrives. Over max, or inflating more than GIT_MAX_INFLATE_RATIO
 * times → HUB_ETOOBIG, before anything more is inflated; bad gzip → HUB_EINVALID. */
int git_body_write(git_body *b, const char *data, size_t len);
/* Move an in-memory body to the disk spool now (no-op when it is there already). */
int git_body_to_disk(git_body *b);
/* The spool rewound to its start, ready to be the child's stdin (still owned by b). */
int git_body_finish(git_body *b, int *out_fd);
void git_body_dispose(git_body *b);

/* ---- push.c: the receive-pack side of hooks ----------------------------------------------- */

/* <data>/hooks with the pre-receive and post-receive scripts (written once per process).
 * Borrowed, static. NULL with an error set on failure. */
const char *git_hooks_dir(void);
/* Absolute path of the running binary (/proc/self/exe). Borrowed, static; NULL on failure. */
const char *git_self_exe(void);
/* Absolute path of the data dir (hooks run elsewhere). Borrowed, static; NULL on failure. */
const char *git_data_dir_abs(void);
/* Parse git's hook input, lines "<old> <new> <ref>\n", in place: *out (free() it) points
 * into text. Malformed → HUB_EINVALID. */
int git_ref_updates_parse(char *text, git_ref_update **out, size_t *out_n);
/* Parse post-receive lines from fd (rewound first) and call git_after_push() when any ref
 * moved. */
int git_push_log_apply(const db_repo *repo, const audit_ctx *actx, int fd);

#endif
