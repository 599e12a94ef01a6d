/* Child process plumbing for git: posix_spawn with an argv array (never a shell), stdout on
 * a pipe, and a reaper that kills the whole process group when the client has gone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "git/internal.h"
#include "util/error.h"

extern char **environ;

int git_child_spawn(git_child *c, char *const argv[], char *const envp[], int in_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int p[2] = {-1, -1};
  int fa_ok = 0, attr_ok = 0, err = 0;
  const char *what = "pipe";
  sigset_t none, dflt;

  memset(c, 0, sizeof *c);
  c->out_fd = -1;
  /* CLOEXEC on both ends: the dup2 below gives the child a plain fd 1, and no other
   * thread's child inherits this pipe (which would hide EOF from us). */
  if (pipe2(p, O_CLOEXEC) < 0) {
    err = errno;
    goto done;
  }
  what = "posix_spawn setup";
  if ((err = posix_spawn_file_actions_init(&fa))) goto done;
  fa_ok = 1;
  if ((err = posix_spawnattr_init(&attr))) goto done;
  attr_ok = 1;
  err = in_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, in_fd, 0)
                   : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (err || (err = posix_spawn_file_actions_adddup2(&fa, p[1], 1))) goto done;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  /* Belt and braces for descriptors opened without CLOEXEC elsewhere (client sockets):
   * a child holding another connection's socket would keep it open after we close it. */
  if ((err = posix_spawn_file_actions_addclosefrom_np(&fa, 3))) goto done;
#endif
  /* The server blocks SIGINT/SIGTERM in every thread and ignores SIGPIPE; exec keeps both,
   * so reset them: git must die on SIGTERM and on a closed pipe like any other process. */
  sigemptyset(&none);
  sigemptyset(&dflt);
  sigaddset(&dflt, SIGPIPE);
  sigaddset(&dflt, SIGTERM);
  sigaddset(&dflt, SIGINT);
  if ((err = posix_spawnattr_setsigmask(&attr, &none)) ||
      (err = posix_spawnattr_setsigdefault(&attr, &dflt)) ||
      (err = posix_spawnattr_setpgroup(&attr, 0)) ||
      (err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETPGROUP)))
    goto done;
  what = argv[0];
  if ((err = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, envp ? envp : environ))) {
    c->pid = 0;
    goto done;
  }
  c->out_fd = p[0];
  p[0] = -1;
done:
  if (fa_ok) posix_spawn_file_actions_destroy(&fa);
  if (attr_ok) posix_spawnattr_destroy(&attr);
  if (p[0] >= 0) close(p[0]);
  if (p[1] >= 0) close(p[1]);
  if (err) return hub_error_set(HUB_ERROR, "cannot run git (%s): %s", what, strerror(err));
  return 0;
}

ssize_t git_child_read(git_child *c, char *buf, size_t cap) {
  if (c->out_fd < 0) return 0;
  for (;;) {
    ssize_t n = read(c->out_fd, buf, cap);
    if (n >= 0 || errno != EINTR) return n;
  }
}

static int reap(git_child *c, int options) {
  int st;
  pid_t w;
  do
    w = waitpid(c->pid, &st, options);
  while (w < 0 && errno == EINTR);
  if (w == c->pid || (w < 0 && errno == ECHILD)) {
    c->reaped = 1;
    c->status = w == c->pid ? st : 0;
    return 1;
  }
  return 0;
}

int git_child_wait(git_child *c) {
  if (c->out_fd >= 0) {
    close(c->out_fd);
    c->out_fd = -1;
  }
  if (c->pid && !c->reaped) reap(c, 0);
  if (!c->pid) return -1;
  return WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
}

void git_child_dispose(git_child *c) {
  if (c->out_fd >= 0) {
    close(c->out_fd);
    c->out_fd = -1;
  }
  if (!c->pid || c->reaped) return;
  if (reap(c, WNOHANG)) return;
  /* Still running: the response was abandoned. SIGTERM first so git removes its lock files
   * and quarantine directory; the group takes pack-objects / index-pack / hooks along. */
  kill(-c->pid, SIGTERM);
  for (int waited = 0; waited < GIT_CHILD_KILL_GRACE_MS; waited += 10) {
    if (reap(c, WNOHANG)) return;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(-c->pid, SIGKILL);
  reap(c, 0);
}

int git_child_env(char ***out, const char *const *extra) {
  size_t n = 0, bytes = 0, nextra = 0;
  *out = NULL;
  for (char **e = environ; *e; e++)
    n++;
  for (const char *const *e = extra; e && *e; e++)
    nextra++, bytes += strlen(*e) + 1;
  char **env = malloc((n + nextra + 1) * sizeof *env + bytes);
  if (!env) return hub_error_set(HUB_ERROR, "out of memory");
  char *store = (char *)(env + n + nextra + 1);
  size_t k = 0;
  /* Drop GIT_* (GIT_DIR, GIT_CONFIG_*, GIT_PROTOCOL...) and our own settings: the child's
   * git behaviour comes only from what we pass explicitly. */
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "GIT_", 4) && strncmp(*e, "MODELHUB_", 9)) env[k++] = *e;
  for (const char *const *e = extra; e && *e; e++) {
    size_t l = strlen(*e) + 1;
    memcpy(store, *e, l);
    env[k++] = store;
    store += l;
  }
  env[k] = NULL;
  *out = env;
  return 0;
}
