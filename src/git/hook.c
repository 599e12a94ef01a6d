/* `modelhub hook pre-receive|post-receive`: runs inside `git receive-pack`, in its own
 * process, with the pushed objects still in git's quarantine directory.
 *
 * pre-receive enforces on pushes what the commit API enforces on commits:
 * - only branches (refs/heads/), tags (refs/tags/) and the refs of open pull requests
 *   (refs/pr/N, moved, never created or deleted: gov_check_push) are writable; refs/convert/
 *   belongs to the Hub's conversion bots;
 * - every path a new commit adds or changes passes repo_path_valid();
 * - every new blob that is a git-lfs pointer names an object this repo references, with that
 *   size (db/objects.h: uploaded to this repo, or already in it). An object stored for another
 *   repo is not enough: knowing a sha256 must not let a push read someone else's bytes.
 * Anything printed on stderr reaches the pusher as "remote: …"; exit 1 rejects the whole
 * push, so no ref moves.
 *
 * This uses libgit2 directly rather than repo/: the objects must be read through git's
 * quarantine environment (GIT_OBJECT_DIRECTORY + GIT_ALTERNATE_OBJECT_DIRECTORIES), which
 * only git_repository_open_ext(GIT_REPOSITORY_OPEN_FROM_ENV) honours.
 *
 * post-receive records the ref updates the push made — their events, "repo.push" audit
 * entries and the derived head — in one durable database transaction (events/, the same
 * recorder as every other ref move; actor from MODELHUB_ACTOR / MODELHUB_TOKEN_ID /
 * MODELHUB_CLIENT_IP), then copies them to $MODELHUB_PUSH_LOG for the server (push.c),
 * which wakes the consumers. If recording fails the refs have moved anyway (git moved them):
 * the server's reconciliation records them right after the push, or at the next start. */
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "auth/auth.h"
#include "db/objects.h"
#include "events/events.h"
#include "git/internal.h"
#include "gov/gov.h"
#include "repo/repo.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct {
  git_repository *repo;
  git_odb *odb;
  int64_t repo_id; /* the pushed repo's id in the metadata store */
  int perm;        /* the pusher's permission (MODELHUB_REPO_PERM from the server) */
  int errors;
  char commit[13]; /* short id of the commit being checked, for messages */
} check;

static void reject(check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reject(check *c, const char *fmt, ...) {
  va_list ap;
  if (++c->errors > GIT_MAX_HOOK_ERRORS) return;
  va_start(ap, fmt);
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Paths go back to a terminal: no control characters. */
static const char *printable(const char *s, char *buf, size_t cap) {
  size_t j = 0;
  for (; *s && j + 1 < cap; s++)
    buf[j++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
  buf[j] = 0;
  return buf;
}

static void check_lfs(check *c, const char *path, const git_oid *id) {
  size_t len;
  git_object_t type;
  git_odb_object *obj = NULL;
  char oid[65], pbuf[HUB_MAX_PATH + 1];
  uint64_t size;
  int64_t have;

  if (git_odb_read_header(&len, &type, c->odb, id) < 0 || type != GIT_OBJECT_BLOB) {
    reject(c, "commit %s: cannot read %s", c->commit, printable(path, pbuf, sizeof pbuf));
    return;
  }
  if (len >= REPO_LFS_POINTER_MAX) return; /* never a pointer */
  if (git_odb_read(&obj, c->odb, id) < 0) {
    reject(c, "commit %s: cannot read %s", c->commit, printable(path, pbuf, sizeof pbuf));
    return;
  }
  if (repo_lfs_pointer_parse(git_odb_object_data(obj), git_odb_object_size(obj), oid, &size)) {
    /* The one rule, shared with the commit API (db/objects.h); a wrong size reads like a
     * missing object. */
    int rc = db_objects_may_reference(c->repo_id, oid, size > INT64_MAX ? INT64_MAX : (int64_t)size,
                                      &have);
    if (rc == HUB_ENOTFOUND)
      reject(c,
             "%s (commit %s) is an LFS pointer to sha256:%s (%llu bytes), but that object was "
             "never uploaded to this repository. Install git-lfs and push again (git lfs "
             "install; git lfs push --all origin), or commit the file through the API.",
             printable(path, pbuf, sizeof pbuf), c->commit, oid, (unsigned long long)size);
    else if (rc)
      reject(c, "%s: cannot check LFS object sha256:%s: %s", printable(path, pbuf, sizeof pbuf),
             oid, hub_error_msg());
  }
  git_odb_object_free(obj);
}

/* The pushed repo's id: its git dir is <data>/repos/ab/cd/<uid>.git. */
static int hook_repo_id(git_repository *git, const char *data, int64_t *out) {
  const char *p = git_repository_path(git);
  size_t n = p ? strlen(p) : 0;
  char uid[25];
  db_repo repo;
  while (n && p[n - 1] == '/')
    n--;
  if (n < 28 || strncmp(p + n - 4, ".git", 4))
    return hub_error_set(HUB_ERROR, "cannot tell which repository this is");
  memcpy(uid, p + n - 28, 24);
  uid[24] = 0;
  if (!*db_data_dir() && db_global_init(data)) return hub_error_code();
  int rc = db_repo_by_uid(uid, &repo);
  if (rc) return hub_error_set(rc, "repository %s is unknown to the metadata store", uid);
  *out = repo.id;
  return 0;
}

static void check_entry(check *c, const git_diff_file *f) {
  char pbuf[HUB_MAX_PATH + 1];
  if (repo_path_valid(f->path)) {
    reject(c, "commit %s: path '%s' is not allowed: %s", c->commit,
           printable(f->path, pbuf, sizeof pbuf), hub_error_msg());
    return;
  }
  if (f->mode == GIT_FILEMODE_BLOB || f->mode == GIT_FILEMODE_BLOB_EXECUTABLE)
    check_lfs(c, f->path, &f->id);
}

/* What a new commit adds or changes relative to its first parent (everything, for a root).
 * Content a merge brings in from another new commit is checked with that commit too. */
static void check_commit(check *c, const git_oid *id) {
  git_commit *commit = NULL, *parent = NULL;
  git_tree *tree = NULL, *ptree = NULL;
  git_diff *diff = NULL;
  git_diff_options opts;

  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  git_oid_tostr(c->commit, sizeof c->commit, id);
  if (git_commit_lookup(&commit, c->repo, id) < 0 || git_commit_tree(&tree, commit) < 0 ||
      (git_commit_parentcount(commit) &&
       (git_commit_parent(&parent, commit, 0) < 0 || git_commit_tree(&ptree, parent) < 0)) ||
      git_diff_tree_to_tree(&diff, c->repo, ptree, tree, &opts) < 0) {
    reject(c, "commit %s: cannot read it: %s", c->commit,
           git_error_last() ? git_error_last()->message : "?");
    goto done;
  }
  for (size_t i = 0; i < git_diff_num_deltas(diff) && c->errors < GIT_MAX_HOOK_ERRORS; i++) {
    const git_diff_delta *d = git_diff_get_delta(diff, i);
    if (d->status != GIT_DELTA_DELETED) check_entry(c, &d->new_file);
  }
done:
  git_diff_free(diff);
  git_tree_free(ptree);
  git_tree_free(tree);
  git_commit_free(parent);
  git_commit_free(commit);
}

static int is_zero(const char *id) {
  return strspn(id, "0") == 40;
}

/* Queue the new tip of one update on the walk; refuse refs that are not ours to write. */
static void check_ref(check *c, git_revwalk *walk, const git_ref_update *u) {
  git_oid id;
  git_object *obj = NULL, *peeled = NULL;
  /* refs/pr/N: an open pull request's ref only (gov_check_push), never created or deleted. */
  if (strncmp(u->ref, "refs/heads/", 11) && strncmp(u->ref, "refs/tags/", 10) &&
      strncmp(u->ref, "refs/pr/", 8)) {
    reject(c,
           "%s: only branches (refs/heads/), tags (refs/tags/) and open pull requests "
           "(refs/pr/N) can be pushed",
           u->ref);
    return;
  }
  /* The same rule as the commit API and the LFS/Xet routes (auth_may_write_ref). */
  if (!auth_may_write_ref(c->perm, u->ref, AUTH_REF_PUSH)) {
    reject(c, "%s: you don't have the rights to push to this repository", u->ref);
    return;
  }
  if (gov_check_push(c->repo, u->ref, u->old_id, u->new_id)) reject(c, "%s", hub_error_msg());
  if (is_zero(u->new_id)) return; /* deletion: nothing new to check */
  if (git_oid_fromstr(&id, u->new_id) < 0 ||
      git_object_lookup(&obj, c->repo, &id, GIT_OBJECT_ANY) ||
      git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0)
    reject(c, "%s: must point to a commit", u->ref);
  else if (git_revwalk_push(walk, git_object_id(peeled)) < 0)
    reject(c, "%s: cannot walk its history", u->ref);
  git_object_free(peeled);
  git_object_free(obj);
}

/* Everything reachable from the refs before this push was accepted already. */
static void hide_existing(check *c, git_revwalk *walk) {
  git_reference_iterator *it = NULL;
  git_reference *ref;
  if (git_reference_iterator_new(&it, c->repo) < 0) return;
  while (git_reference_next(&ref, it) == 0) {
    git_object *o = NULL;
    if (git_reference_peel(&o, ref, GIT_OBJECT_COMMIT) == 0)
      git_revwalk_hide(walk, git_object_id(o));
    git_object_free(o);
    git_reference_free(ref);
  }
  git_reference_iterator_free(it);
}

static int pre_receive(const git_ref_update *u, size_t n) {
  check c;
  git_revwalk *walk = NULL;
  git_oid id;
  const char *data = getenv("MODELHUB_DATA");

  memset(&c, 0, sizeof c);
  const char *perm = getenv("MODELHUB_REPO_PERM");
  c.perm = perm ? atoi(perm) : 0; /* unset: nothing may be pushed (fail closed) */
  if (!data || !*data) {
    fputs("error: modelhub hook: MODELHUB_DATA is not set\n", stderr);
    return 1;
  }
  if (repo_global_init()) {
    fprintf(stderr, "error: modelhub hook: %s\n", hub_error_msg());
    c.errors++;
    goto done;
  }
  if (git_repository_open_ext(&c.repo, NULL, GIT_REPOSITORY_OPEN_FROM_ENV, NULL) < 0 ||
      git_repository_odb(&c.odb, c.repo) < 0 || git_revwalk_new(&walk, c.repo) < 0) {
    fprintf(stderr, "error: modelhub hook: cannot open the repository: %s\n",
            git_error_last() ? git_error_last()->message : "?");
    c.errors++;
    goto done;
  }
  if (hook_repo_id(c.repo, data, &c.repo_id)) {
    fprintf(stderr, "error: modelhub hook: %s\n", hub_error_msg());
    c.errors++;
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    check_ref(&c, walk, &u[i]);
  if (c.errors) goto done;
  hide_existing(&c, walk);
  while (c.errors < GIT_MAX_HOOK_ERRORS && git_revwalk_next(&id, walk) == 0)
    check_commit(&c, &id);
done:
  if (c.errors > GIT_MAX_HOOK_ERRORS)
    fprintf(stderr, "error: … and more; stopped after %d problems\n", GIT_MAX_HOOK_ERRORS);
  if (c.errors)
    fprintf(stderr, "error: push to %s rejected by modelhub; no ref was changed\n",
            getenv("MODELHUB_REPO") ? getenv("MODELHUB_REPO") : "this repository");
  git_revwalk_free(walk);
  git_odb_free(c.odb);
  git_repository_free(c.repo);
  repo_global_shutdown();
  return c.errors ? 1 : 0;
}

static const char *zero_to_empty(const char *id) {
  return is_zero(id) ? "" : id;
}

/* Record the pushed updates (events, audit, derived head): one transaction. */
static void post_receive_record(char *text) {
  const char *data = getenv("MODELHUB_DATA");
  git_ref_update *u = NULL;
  repo_ref_update *ru = NULL;
  repo_handle *h = NULL;
  git_repository *g = NULL;
  size_t n = 0;
  int64_t repo_id = 0;
  db_repo repo;
  hub_identity who;
  char dir[4200];

  if (!data || !*data || !text || !*text) return;
  if (repo_global_init() || git_ref_updates_parse(text, &u, &n) || !n) goto done;
  if (git_repository_open_ext(&g, NULL, GIT_REPOSITORY_OPEN_FROM_ENV, NULL) < 0 ||
      hook_repo_id(g, data, &repo_id) || db_repo_by_id(repo_id, &repo))
    goto done;
  db_repo_dir(repo.uid, dir, sizeof dir);
  if (repo_open(&h, dir) || !(ru = calloc(n, sizeof *ru))) goto done;
  for (size_t i = 0; i < n; i++) {
    ru[i].ref = u[i].ref;
    snprintf(ru[i].old, sizeof ru[i].old, "%s", zero_to_empty(u[i].old_id));
    snprintf(ru[i].new_, sizeof ru[i].new_, "%s", zero_to_empty(u[i].new_id));
  }
  memset(&who, 0, sizeof who);
  snprintf(who.name, sizeof who.name, "%s",
           getenv("MODELHUB_ACTOR") ? getenv("MODELHUB_ACTOR") : "-");
  snprintf(who.token_uid, sizeof who.token_uid, "%s",
           getenv("MODELHUB_TOKEN_ID") ? getenv("MODELHUB_TOKEN_ID") : "");
  who.authenticated = who.name[0] && strcmp(who.name, "-");
  const char *ip = getenv("MODELHUB_CLIENT_IP");
  events_ctx c = {
      &repo, {&who, NULL, ip && *ip ? ip : NULL}, "push", "repo.push", NULL, 0, NULL, NULL, NULL};
  /* Tests: a hook slow to record (another push moves the ref meanwhile). */
  const char *delay = getenv("MODELHUB_TEST_HOOK_DELAY_MS");
  if (delay && atoi(delay) > 0)
    usleep((useconds_t)(atoi(delay) > 5000 ? 5000 : atoi(delay)) * 1000);
  /* git moved the refs: make that durable before the record names it. */
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    syncfs(fd);
    close(fd);
  }
  if (events_record(h, ru, n, &c))
    fprintf(stderr, "warning: modelhub hook: the push was not recorded yet: %s\n", hub_error_msg());
done:
  free(ru);
  free(u);
  repo_free(h);
  git_repository_free(g);
  db_global_shutdown();
  repo_global_shutdown();
}

static int post_receive(const char *text, size_t len) {
  const char *path = getenv("MODELHUB_PUSH_LOG");
  char *copy = strndup(text, len);
  post_receive_record(copy);
  free(copy);
  if (!path || !*path) return 0;
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "warning: modelhub hook: cannot open push log: %s\n", strerror(errno));
    return 0;
  }
  while (len) {
    ssize_t w = write(fd, text, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    text += w;
    len -= (size_t)w;
  }
  close(fd);
  return 0; /* the refs have moved already; nothing to refuse here */
}

int git_hook_main(int argc, char **argv) {
  hub_buf in;
  char chunk[8192];
  ssize_t got;
  git_ref_update *u = NULL;
  size_t n = 0;
  int rc = 1;

  if (argc != 2 || (strcmp(argv[1], "pre-receive") && strcmp(argv[1], "post-receive"))) {
    fputs("usage: modelhub hook pre-receive|post-receive   (run by git receive-pack)\n", stderr);
    return 2;
  }
  hub_buf_init(&in, GIT_MAX_HOOK_INPUT);
  while ((got = read(0, chunk, sizeof chunk)) != 0) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 || hub_buf_put(&in, chunk, (size_t)got)) break;
  }
  if (got != 0) {
    fputs("error: modelhub hook: cannot read the ref updates (too many refs?)\n", stderr);
    goto done;
  }
  if (!strcmp(argv[1], "post-receive")) {
    rc = post_receive(in.ptr ? in.ptr : "", in.len);
    goto done;
  }
  if (in.len && git_ref_updates_parse(in.ptr, &u, &n)) {
    fprintf(stderr, "error: modelhub hook: %s\n", hub_error_msg());
    goto done;
  }
  rc = pre_receive(u, n);
done:
  free(u);
  hub_buf_dispose(&in);
  return rc;
}
