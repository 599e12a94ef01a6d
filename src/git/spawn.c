/* Child process plumbing for git: fork + exec with an argv array (never a shell), stdout on
 * a pipe, and a reaper that kills the whole process group when the client has gone.
 *
 * Children end with the server: each one gets PR_SET_PDEATHSIG(SIGKILL) (the kernel kills
 * it when the server dies, even by SIGKILL), and every running child is in a registry so
 * a shutdown that runs out of grace can stop them (git_children_stop). fork rather than
 * posix_spawn because the death signal must be set in the child before exec. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "git/internal.h"
#include "util/error.h"

extern char **environ;

/* Running children (process group ids), for git_children_stop(). */
#define MAX_TRACKED 1024
static pthread_mutex_t g_kids_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t g_kids[MAX_TRACKED];
static int g_stopping;

static void track(pid_t pid, int add) {
  pthread_mutex_lock(&g_kids_mu);
  for (int i = 0; i < MAX_TRACKED; i++)
    if (g_kids[i] == (add ? 0 : pid)) {
      g_kids[i] = add ? pid : 0;
      break;
    }
  if (add && g_stopping) kill(-pid, SIGTERM); /* started during the stop: stop it too */
  pthread_mutex_unlock(&g_kids_mu);
}

void git_children_stop(void) {
  pthread_mutex_lock(&g_kids_mu);
  g_stopping = 1;
  for (int i = 0; i < MAX_TRACKED; i++)
    if (g_kids[i]) kill(-g_kids[i], SIGTERM);
  pthread_mutex_unlock(&g_kids_mu);
}

/* In the child between fork and exec: only async-signal-safe calls. Reports errno on the
 * CLOEXEC status pipe when it cannot exec. */
static void child_exec(char *const argv[], char *const envp[], int in_fd, int out_fd, int st_fd,
                       pid_t parent, int merge_err) {
  sigset_t none;
  struct sigaction dfl;
  int err;
  /* The kernel sends SIGKILL when the thread that forked us ends (the server died). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) _exit(127);
  setpgid(0, 0);
  /* The server blocks SIGINT/SIGTERM in every thread and ignores SIGPIPE; exec keeps both,
   * so reset them: git must die on SIGTERM and on a closed pipe like any other process. */
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, NULL);
  sigaction(SIGTERM, &dfl, NULL);
  sigaction(SIGINT, &dfl, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (in_fd < 0) in_fd = open("/dev/null", O_RDONLY);
  /* dup2 onto itself would keep FD_CLOEXEC (when the server's own 0/1 were closed). */
  if (in_fd < 0 || (in_fd == 0 ? fcntl(0, F_SETFD, 0) : dup2(in_fd, 0)) < 0 ||
      (out_fd == 1 ? fcntl(1, F_SETFD, 0) : dup2(out_fd, 1)) < 0 || (merge_err && dup2(1, 2) < 0))
    goto fail;
  /* No other descriptors: a child holding another connection's socket would keep it open
   * after we close it. The status pipe is CLOEXEC, so it closes at exec. */
  if (st_fd > 3) close_range(3, (unsigned)st_fd - 1, 0);
  close_range((unsigned)st_fd + 1, ~0U, 0);
  execvpe(argv[0], argv, envp ? envp : environ);
fail:
  err = errno;
  if (write(st_fd, &err, sizeof err) < 0) _exit(127);
  _exit(127);
}

static int spawn(git_child *c, char *const argv[], char *const envp[], int in_fd, int merge_err) {
  int p[2] = {-1, -1}, st[2] = {-1, -1};
  int err = 0;
  const char *what = "pipe";
  pid_t parent = getpid();

  memset(c, 0, sizeof *c);
  c->out_fd = -1;
  /* CLOEXEC on both ends: the dup2 in the child gives it a plain fd 1, and no other
   * thread's child inherits this pipe (which would hide EOF from us). */
  if (pipe2(p, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
    err = errno;
    goto done;
  }
  what = "fork";
  pid_t pid = fork();
  if (pid < 0) {
    err = errno;
    goto done;
  }
  if (pid == 0) child_exec(argv, envp, in_fd, p[1], st[1], parent, merge_err);
  close(st[1]);
  st[1] = -1;
  setpgid(pid, pid); /* also here, so a kill(-pid) right after this returns reaches it */
  int child_err = 0;
  ssize_t got;
  do
    got = read(st[0], &child_err, sizeof child_err);
  while (got < 0 && errno == EINTR);
  c->pid = pid;
  if (got == (ssize_t)sizeof child_err) { /* exec failed; the child has exited */
    err = child_err;
    what = argv[0];
    waitpid(pid, NULL, 0);
    c->pid = 0;
    goto done;
  }
  track(pid, 1);
  c->out_fd = p[0];
  p[0] = -1;
done:
  for (int i = 0; i < 2; i++) {
    if (p[i] >= 0) close(p[i]);
    if (st[i] >= 0) close(st[i]);
  }
  if (err) return hub_error_set(HUB_ERROR, "cannot run git (%s): %s", what, strerror(err));
  return 0;
}

int git_child_spawn(git_child *c, char *const argv[], char *const envp[], int in_fd) {
  return spawn(c, argv, envp, in_fd, 0);
}

int git_run(char *const argv[], const char *const *extra, char *out, size_t cap) {
  char **env = NULL;
  git_child c;
  size_t len = 0;
  char buf[4096];
  ssize_t n;
  int rc = git_child_env(&env, extra);
  if (!rc) rc = spawn(&c, argv, env, -1, 1);
  free(env);
  if (rc) return rc;
  if (out && cap) out[0] = 0;
  while ((n = git_child_read(&c, buf, sizeof buf)) > 0) {
    size_t k = out && cap > len + 1 ? cap - 1 - len : 0;
    if (k > (size_t)n) k = (size_t)n;
    memcpy(out + len, buf, k);
    len += k;
    if (k) out[len] = 0;
  }
  int code = git_child_wait(&c);
  git_child_dispose(&c);
  return code < 0 ? 128 : code;
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
    track(c->pid, 0);
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
