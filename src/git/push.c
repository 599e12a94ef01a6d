/* The server side of pushes: the hooks directory receive-pack runs with, and what happens
 * after a push moved refs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "git/internal.h"
#include "audit/audit.h"
#include "events/events.h"
#include "util/buf.h"
#include "util/error.h"

/* The scripts are constant: the binary's path comes from MODELHUB_BIN in the child's
 * environment (set by us), so nothing user-controlled is ever written into a script. */
static const char *const hook_names[] = {"pre-receive", "post-receive"};
static const char script_fmt[] =
    "#!/bin/sh\n"
    "# Written by modelhub serve (rewritten by each server process). Do not edit.\n"
    "exec \"$MODELHUB_BIN\" hook %s\n";

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static char hooks_dir[PATH_MAX + 8];
static char hooks_err[256];
static char self_exe[PATH_MAX];
static char data_abs[PATH_MAX];

static int write_script(const char *dir, const char *name) {
  char tmp[PATH_MAX + 64], dst[PATH_MAX + 64], text[256];
  snprintf(tmp, sizeof tmp, "%s/.%s.%ld", dir, name, (long)getpid());
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int len = snprintf(text, sizeof text, script_fmt, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd < 0) return -1;
  int ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  /* rename: a concurrent receive-pack sees the old script or the new one, never half. */
  if (!ok || rename(tmp, dst)) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

static void hooks_init(void) {
  char dir[PATH_MAX + 8];
  /* Absolute: hooks run with the repository as their working directory. */
  if (!realpath(db_data_dir(), data_abs)) {
    snprintf(hooks_err, sizeof hooks_err, "realpath %.200s: %s", db_data_dir(), strerror(errno));
    return;
  }
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0) {
    snprintf(hooks_err, sizeof hooks_err, "readlink /proc/self/exe: %s", strerror(errno));
    self_exe[0] = 0;
    return;
  }
  self_exe[n] = 0;
  snprintf(dir, sizeof dir, "%s/hooks", data_abs);
  if (mkdir(dir, 0755) && errno != EEXIST) {
    snprintf(hooks_err, sizeof hooks_err, "mkdir %.200s: %s", dir, strerror(errno));
    return;
  }
  for (size_t i = 0; i < sizeof hook_names / sizeof hook_names[0]; i++)
    if (write_script(dir, hook_names[i])) {
      snprintf(hooks_err, sizeof hooks_err, "writing hook %.200s/%s: %s", dir, hook_names[i],
               strerror(errno));
      return;
    }
  snprintf(hooks_dir, sizeof hooks_dir, "%s", dir);
}

const char *git_hooks_dir(void) {
  pthread_once(&hooks_once, hooks_init);
  if (!hooks_dir[0] || !self_exe[0]) {
    hub_error_set(HUB_ERROR, "git hooks unavailable: %s", hooks_err);
    return NULL;
  }
  return hooks_dir;
}

const char *git_self_exe(void) {
  return git_hooks_dir() ? self_exe : NULL;
}

const char *git_data_dir_abs(void) {
  return git_hooks_dir() ? data_abs : NULL;
}

static int is_hex40(const char *s) {
  for (int i = 0; i < 40; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int git_ref_updates_parse(char *text, git_ref_update **out, size_t *out_n) {
  git_ref_update *u = NULL;
  size_t n = 0, cap = 0;
  *out = NULL;
  *out_n = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (strlen(line) <= 82 || line[40] != ' ' || line[81] != ' ' || !is_hex40(line) ||
        !is_hex40(line + 41)) {
      free(u);
      return hub_error_set(HUB_EINVALID, "malformed ref update line from git");
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      git_ref_update *nu = realloc(u, ncap * sizeof *u);
      if (!nu) {
        free(u);
        return hub_error_set(HUB_ERROR, "out of memory");
      }
      u = nu;
      cap = ncap;
    }
    memcpy(u[n].old_id, line, 40);
    u[n].old_id[40] = 0;
    memcpy(u[n].new_id, line + 41, 40);
    u[n].new_id[40] = 0;
    u[n].ref = line + 82;
    n++;
    line = nl ? nl + 1 : NULL;
  }
  *out = u;
  *out_n = n;
  return 0;
}

int git_push_log_apply(const db_repo *repo, const audit_ctx *actx, int fd) {
  hub_buf log;
  git_ref_update *u = NULL;
  size_t n = 0;
  int rc = 0;
  char chunk[8192];
  ssize_t got;

  hub_buf_init(&log, GIT_MAX_HOOK_INPUT);
  if (lseek(fd, 0, SEEK_SET) < 0) return hub_error_set(HUB_ERROR, "push log: %s", strerror(errno));
  while ((got = read(fd, chunk, sizeof chunk)) > 0)
    hub_buf_put(&log, chunk, (size_t)got);
  if (log.failed || got < 0) {
    rc = hub_error_set(HUB_ERROR, "cannot read the push log");
    goto done;
  }
  if (!log.len) goto done; /* nothing moved (rejected, or an empty push) */
  if ((rc = git_ref_updates_parse(log.ptr, &u, &n))) goto done;
  if (n) rc = git_after_push(repo, actx, u, n);
done:
  free(u);
  hub_buf_dispose(&log);
  return rc;
}

int git_after_push(const db_repo *repo, const audit_ctx *actx, const git_ref_update *updates,
                   size_t n) {
  /* The post-receive hook recorded the updates (events, audit, head) in its own process.
   * Whatever it could not record (a busy or full database) is found here, by comparing the
   * refs with the ones recorded, and recorded now. */
  const char **refs = calloc(n ? 2 * n : 1, sizeof *refs);
  if (!refs) return hub_error_set(HUB_ERROR, "out of memory");
  const char **news = refs + n;
  for (size_t i = 0; i < n; i++) {
    refs[i] = updates[i].ref;
    news[i] = strspn(updates[i].new_id, "0") == 40 ? "" : updates[i].new_id;
  }
  /* Only refs still at this push's values: one another push moved on is its hook's. */
  int rc = events_reconcile_push(repo, refs, news, n);
  free(refs);
  int64_t last = 0;
  (void)actx;
  events_notify();
  for (size_t i = 0; i < n; i++)
    if (!strcmp(updates[i].ref, "refs/heads/main") && db_events_last(&last, NULL) == 0) {
      events_wait("index", last, GIT_DERIVE_WAIT_MS);
      break;
    }
  return rc < 0 ? rc : 0;
}
