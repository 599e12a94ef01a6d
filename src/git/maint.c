/* Repository maintenance and start-up reconciliation (docs/git.md, "Maintenance").
 *
 * Maintenance. Pushes no longer run `git gc --auto` (smart.c): its detached
 * `pack-refs --prune` raced with the server's libgit2 ref updates and brought deleted
 * branches back. Instead one background thread queues a git.maintain job (docs/jobs.md)
 * for every repository each MODELHUB_MAINTENANCE_INTERVAL seconds; the job, where a cheap look at
 * the directory says there may be work (loose objects in git's sample directory objects/17, more
 * than one pack, or many loose refs), it takes the repository's ref lock exclusively
 * (repo_ref_lock, the lock every libgit2 ref update of the server holds shared) and runs `git gc
 * --auto` (git applies its own thresholds and packs refs when it collects) and, for many loose
 * refs, `git pack-refs --all --prune`. Pushes are git's own receive-pack, which locks refs the way
 * pack-refs expects, so they need not wait. Other nodes' ref updates are kept out by the lease
 * maint:<uid> (db_repo_maint_begin, db/lock.h), renewed while git runs.
 *
 * Reconciliation. A ref can move without the server seeing it: a push whose server was
 * killed after receive-pack moved the ref, or a change made with plain git in the bare
 * repository. At start-up git_refs_reconcile() compares every ref of each repository with
 * the value the event log last recorded (events_reconcile_all): each difference gets its
 * event ("recovered") and audit entry ("repo.ref.recovered") in one transaction, the
 * derived head is updated with it, and the consumers catch up from the log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/lock.h"
#include "db/search.h"
#include "git/internal.h"
#include "events/events.h"
#include "gov/gov.h"
#include "index/index.h"
#include "jobs/jobs.h"
#include "repo/repo.h"
#include "util/error.h"
#include "util/thread.h"

/* ---- maintenance ------------------------------------------------------------------- */

/* Loose ref files that make maintenance pack the refs (git itself never looks). */
#define MAINT_LOOSE_REFS 64
/* How long maintenance waits for other nodes' turns on a repository's refs before it puts
 * the repository off to its next pass (holding this node's ref lock meanwhile). */
#define MAINT_NODES_WAIT_MS 10000
/* Age after which a push log left in <data>/tmp (by a server that was killed) is removed
 * at start-up: older than any push that may still be running in another process. */
#define GIT_STALE_PUSH_LOG_S (24 * 3600)
/* Directory depth of a refs/ walk (refs/heads/a/b/c...): bounds the work of one look. */
#define MAINT_REFS_DEPTH 8

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_t g_thread;
static int g_started, g_stop;
static long g_interval_s;
static pid_t g_running; /* process group of the git maintenance child, 0 when none */

/* Entries of a directory other than . and .., at most `max` (counts stop there). */
static int count_entries(const char *dir, const char *suffix, int max) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  size_t sl = suffix ? strlen(suffix) : 0;
  while (n < max && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t l = strlen(e->d_name);
    if (suffix && (l < sl || strcmp(e->d_name + l - sl, suffix))) continue;
    n++;
  }
  closedir(d);
  return n;
}

/* Loose ref files under dir, stopping at max. */
static int count_refs(const char *dir, int depth, int max) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while (n < max && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char sub[4400];
    snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(sub, &st)) continue;
    if (S_ISDIR(st.st_mode)) {
      if (depth < MAINT_REFS_DEPTH) n += count_refs(sub, depth + 1, max - n);
    } else if (S_ISREG(st.st_mode) && !strstr(e->d_name, ".lock")) {
      n++;
    }
  }
  closedir(d);
  return n;
}

/* Run `git --git-dir=DIR <args…>` to its end; its output goes to the log. */
static int run_git(const char *dir, const char *const *args) {
  char gitdir[4300], out[512];
  const char *argv[16];
  size_t a = 0;
  char **envp = NULL;
  git_child c;
  snprintf(gitdir, sizeof gitdir, "--git-dir=%s", dir);
  argv[a++] = "git";
  argv[a++] = gitdir;
  for (const char *const *p = args; *p && a < 15; p++)
    argv[a++] = *p;
  argv[a] = NULL;
  int rc = git_child_env(&envp, NULL);
  if (rc) return rc;
  rc = git_child_spawn(&c, (char *const *)argv, envp, -1);
  free(envp);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  g_running = c.pid;
  if (g_stop) kill(-c.pid, SIGTERM);
  pthread_mutex_unlock(&g_mu);
  ssize_t n;
  while ((n = git_child_read(&c, out, sizeof out)) > 0)
    fprintf(stderr, "%.*s", (int)n, out);
  int code = git_child_wait(&c);
  pthread_mutex_lock(&g_mu);
  g_running = 0;
  pthread_mutex_unlock(&g_mu);
  git_child_dispose(&c);
  if (code != 0) {
    const char *cmd = args[0];
    for (const char *const *p = args; *p; p++)
      if (**p != '-' && !strchr(*p, '=')) { /* the subcommand, past the -c options */
        cmd = *p;
        break;
      }
    return hub_error_set(HUB_ERROR, "git %s ended with %d", cmd, code);
  }
  return 0;
}

/* A cheap look at the directory: may git gc (objects) or pack-refs (refs) have work? */
static int maint_wanted(const char *dir, int *objects, int *refs) {
  char sub[4400];
  snprintf(sub, sizeof sub, "%s/objects/17", dir);
  *objects = count_entries(sub, NULL, 1) > 0;
  snprintf(sub, sizeof sub, "%s/objects/pack", dir);
  *objects |= count_entries(sub, ".pack", 2) > 1;
  snprintf(sub, sizeof sub, "%s/refs", dir);
  *refs = count_refs(sub, 0, MAINT_LOOSE_REFS) >= MAINT_LOOSE_REFS;
  return *objects || *refs;
}

/* The maintenance lease of one repository renewed while git runs (db_repo_maint_begin). */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  const char *key;
} renewer;

static void *renew_main(void *arg) {
  renewer *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DB_MAINT_LEASE_TTL_MS / 3000;
    if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT || w->stop) continue;
    pthread_mutex_unlock(&w->mu);
    if (db_repo_maint_renew(w->key))
      fprintf(stderr, "modelhub: maintenance lease of %s: %s\n", w->key, hub_error_msg());
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int maint_one(const db_repo *repo, void *payload) {
  (void)payload;
  char dir[4200];
  pthread_mutex_lock(&g_mu);
  int stop = g_stop;
  pthread_mutex_unlock(&g_mu);
  if (stop) return 1;
  int objects, refs;
  db_repo_dir(repo->uid, dir, sizeof dir);
  if (!maint_wanted(dir, &objects, &refs)) return 0;
  static const char *const gc[] = {"-c", "gc.autoDetach=false", "gc", "--auto", "--quiet", NULL};
  static const char *const pack_refs[] = {"pack-refs", "--all", "--prune", NULL};
  repo_ref_lock(dir, 1);
  /* This node's ref updates wait on the lock above; other nodes' on the lease. */
  if (db_repo_maint_begin(repo->uid, MAINT_NODES_WAIT_MS)) {
    repo_ref_unlock(dir);
    fprintf(stderr, "modelhub: maintenance of %s/%s put off: %s\n", repo->ns, repo->name,
            hub_error_msg());
    return 0;
  }
  renewer w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, repo->uid};
  pthread_t tid;
  int renewing = hub_thread_start("git-maint-lease", renew_main, &w, &tid) == 0;
  int rc = objects ? run_git(dir, gc) : 0;
  if (!rc && refs) rc = run_git(dir, pack_refs);
  if (renewing) {
    pthread_mutex_lock(&w.mu);
    w.stop = 1;
    pthread_cond_signal(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(tid, NULL);
  }
  db_repo_maint_end(repo->uid);
  repo_ref_unlock(dir);
  if (rc)
    fprintf(stderr, "modelhub: maintenance of %s/%s: %s\n", repo->ns, repo->name, hub_error_msg());
  return 0;
}

/* The work of one repository is a job (kind git.maintain, key = the repo's uid): the
 * runner bounds and reports it, and a repository is queued at most once at a time. */
static int maint_job(const db_job *job, void *ctx) {
  db_repo repo;
  if (db_repo_by_uid(job->key, &repo)) return 0; /* deleted since */
  maint_one(&repo, NULL);
  return 0;
}

static int maint_queue(const db_repo *repo, void *payload) {
  char dir[4200];
  int objects, refs;
  db_repo_dir(repo->uid, dir, sizeof dir);
  if (!maint_wanted(dir, &objects, &refs)) return 0;
  int rc = jobs_enqueue("git.maintain", repo->uid, "");
  return rc == HUB_EBUSY ? 1 : 0; /* full: the next pass queues the rest */
}

static void *maint_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += g_interval_s;
    while (!g_stop && pthread_cond_timedwait(&g_cv, &g_mu, &until) != ETIMEDOUT)
      ;
    if (g_stop) break;
    pthread_mutex_unlock(&g_mu);
    db_repo_each(maint_queue, NULL);
    pthread_mutex_lock(&g_mu);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

int git_maint_start(long interval_s) {
  if (interval_s <= 0 || g_started) return 0;
  static const jobs_kind kind = {"git.maintain", maint_job, NULL, 1, 100000, 1, 1000};
  if (jobs_register(&kind)) return HUB_ERROR;
  g_interval_s = interval_s;
  g_stop = 0;
  if (hub_thread_start("git-maintenance", maint_main, NULL, &g_thread)) return HUB_ERROR;
  g_started = 1;
  return 0;
}

void git_maint_stop(void) {
  if (!g_started) return;
  pthread_mutex_lock(&g_mu);
  g_stop = 1;
  if (g_running) kill(-g_running, SIGTERM); /* git gc cleans up after itself */
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  pthread_join(g_thread, NULL);
  g_started = 0;
}

/* ---- start-up reconciliation ---------------------------------------------------------- */

/* Push logs (push.c) are named files; a server killed during a push leaves its log in
 * <data>/tmp. Remove those of pushes that cannot still be running. */
static void remove_stale_push_logs(void) {
  char dir[4200], path[4500];
  snprintf(dir, sizeof dir, "%s/tmp", db_data_dir());
  DIR *d = opendir(dir);
  if (!d) return;
  time_t now = time(NULL);
  struct dirent *e;
  while ((e = readdir(d))) {
    struct stat st;
    if (strncmp(e->d_name, "git-push-", 9)) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (!lstat(path, &st) && S_ISREG(st.st_mode) && now - st.st_mtime > GIT_STALE_PUSH_LOG_S)
      unlink(path);
  }
  closedir(d);
}

/* refs/pr/N without its discussion (a PR ref that moved while no server watched, or a
 * crash between the ref and its record before the spine) gets one, so it can be merged or
 * closed like any other. gov_pr_opened is idempotent. */
typedef struct {
  db_repo *list;
  size_t n, cap;
} repo_vec;

static int collect_repo(const db_repo *repo, void *payload) {
  repo_vec *v = payload;
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    db_repo *m = realloc(v->list, cap * sizeof *m);
    if (!m) return hub_error_set(HUB_ERROR, "out of memory");
    v->list = m;
    v->cap = cap;
  }
  v->list[v->n++] = *repo;
  return 0;
}

static int pr_discussion(const repo_ref *ref, void *payload) {
  const db_repo *repo = payload;
  hub_identity nobody;
  long num;
  char *end;
  if (ref->kind != REPO_REF_PR) return 0;
  num = strtol(ref->ref + strlen("refs/pr/"), &end, 10);
  if (*end || num <= 0 || num > 100000000) return 0;
  memset(&nobody, 0, sizeof nobody);
  if (gov_pr_opened(repo, &nobody, (int)num, "Pull request (recovered)", "main"))
    fprintf(stderr, "modelhub: %s/%s: discussion for %s: %s\n", repo->ns, repo->name, ref->ref,
            hub_error_msg());
  return 0;
}

static void reconcile_discussions(void) {
  repo_vec v = {0};
  db_repo_each(collect_repo, &v);
  for (size_t i = 0; i < v.n; i++) {
    char dir[4200];
    repo_handle *h = NULL;
    db_repo_dir(v.list[i].uid, dir, sizeof dir);
    if (repo_open(&h, dir) == 0) repo_refs_list(h, pr_discussion, &v.list[i]);
    repo_free(h);
  }
  free(v.list);
}

int git_refs_reconcile(void) {
  remove_stale_push_logs();
  /* Every ref (any namespace) against the value last recorded: differences get their
   * event and audit entry, and the consumers catch up from the event log. */
  int k = events_reconcile_all();
  if (k > 0) fprintf(stderr, "modelhub: recorded %d ref change(s) found at start-up\n", k);
  reconcile_discussions();
  return k < 0 ? k : 0;
}
