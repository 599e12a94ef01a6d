/* Building a commit in memory and publishing it with one compare-and-swap ref update. */
#include "repo/repo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/limits.h"

#define STALE_PARENT_MSG                                                                           \
  "The branch was updated since you opened this page. Please refresh and try again."

/* Validated, normalised copy of the request's paths and the blobs written for them. */
typedef struct {
  char **paths;
  git_oid *blobs;
  size_t n;
} prepared;

static void prepared_dispose(prepared *p) {
  size_t i;
  for (i = 0; p->paths && i < p->n; i++)
    free(p->paths[i]);
  free(p->paths);
  free(p->blobs);
}

static int blob_exists(repo_handle *h, const git_oid *id) {
  git_odb *odb = NULL;
  git_object_t type = GIT_OBJECT_INVALID;
  size_t len = 0;
  int ok = git_repository_odb(&odb, h->git) == 0 &&
           git_odb_read_header(&len, &type, odb, id) == 0 && type == GIT_OBJECT_BLOB;
  git_odb_free(odb);
  return ok;
}

int repo_blob_write(repo_handle *h, const void *data, size_t len, char out_oid[41]) {
  git_oid id;
  int err = git_blob_create_from_buffer(&id, h->git, len ? data : "", len);
  if (err < 0) return repo__git_error(err, HUB_ERROR, "write blob");
  git_oid_tostr(out_oid, 41, &id);
  return 0;
}

static int prepare(repo_handle *h, const repo_commit_req *req, prepared *p) {
  size_t i;
  int rc, err;

  p->n = req->nops;
  p->paths = calloc(req->nops ? req->nops : 1, sizeof *p->paths);
  p->blobs = calloc(req->nops ? req->nops : 1, sizeof *p->blobs);
  if (!p->paths || !p->blobs) return hub_error_set(HUB_ERROR, "out of memory");
  for (i = 0; i < req->nops; i++) {
    const repo_op *op = &req->ops[i];
    char *path;
    size_t len;

    if (!op->path) return hub_error_set(HUB_EINVALID, "operation %zu has no path", i);
    if (!(path = p->paths[i] = strdup(op->path))) return hub_error_set(HUB_ERROR, "out of memory");
    len = strlen(path);
    if (op->kind == REPO_OP_DELETE_FOLDER)
      while (len > 1 && path[len - 1] == '/')
        path[--len] = 0;
    if ((rc = repo_path_valid(path)) < 0) return rc;

    switch (op->kind) {
    case REPO_OP_ADD:
      if (op->len && !op->data) return hub_error_set(HUB_EINVALID, "'%s' has no content", path);
      err = git_blob_create_from_buffer(&p->blobs[i], h->git, op->data ? op->data : "", op->len);
      if (err < 0) return repo__git_error(err, HUB_ERROR, "write blob");
      break;
    case REPO_OP_ADD_LFS: {
      char ptr[256];
      int n = repo_lfs_pointer_format(ptr, sizeof ptr, op->lfs_oid, op->lfs_size);
      if (n < 0) return n;
      err = git_blob_create_from_buffer(&p->blobs[i], h->git, ptr, (size_t)n);
      if (err < 0) return repo__git_error(err, HUB_ERROR, "write blob");
      break;
    }
    case REPO_OP_ADD_BLOB:
      if (!op->lfs_oid || strlen(op->lfs_oid) != 40 || git_oid_fromstr(&p->blobs[i], op->lfs_oid) ||
          !blob_exists(h, &p->blobs[i]))
        return hub_error_set(HUB_EINVALID, "'%s': blob %.40s is not in the repository", path,
                             op->lfs_oid ? op->lfs_oid : "");
      break;
    case REPO_OP_DELETE_FILE:
    case REPO_OP_DELETE_FOLDER:
      break;
    default:
      return hub_error_set(HUB_EINVALID, "unknown operation %d", (int)op->kind);
    }
  }
  return 0;
}

static int check_request(const repo_commit_req *req) {
  int valid = 0;
  size_t n;

  if (!req->ref || strncmp(req->ref, "refs/", 5) || git_reference_name_is_valid(&valid, req->ref) ||
      !valid)
    return hub_error_set(HUB_EINVALID, "Invalid ref name '%.200s'", req->ref ? req->ref : "");
  if (req->nops > HUB_MAX_COMMIT_OPS)
    return hub_error_set(HUB_ETOOBIG, "Too many operations in one commit (max %d)",
                         HUB_MAX_COMMIT_OPS);
  if (req->parent_pin) {
    n = strlen(req->parent_pin);
    if (n < 5 || n > 40 || !repo__is_hex(req->parent_pin, n))
      return hub_error_set(HUB_EINVALID, "Invalid parentCommit '%.64s'", req->parent_pin);
  }
  if (!req->author_name || !*req->author_name || !req->author_email)
    return hub_error_set(HUB_EINVALID, "commit author is required");
  return 0;
}

static char *build_message(const repo_commit_req *req) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_puts(&b, req->summary ? req->summary : "");
  if (req->description && *req->description) {
    hub_buf_puts(&b, "\n\n");
    hub_buf_puts(&b, req->description);
  }
  if (b.failed) {
    hub_buf_dispose(&b);
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  if (!b.ptr) return repo__strdup("");
  return hub_buf_detach(&b);
}

/* Apply the ops on `base`'s tree and write commit `out` with `base` as its parent. */
static int build_commit(repo_handle *h, const repo_commit_req *req, const prepared *p,
                        const git_commit *base, const git_signature *sig, const char *msg,
                        git_oid *out) {
  repo__tedit te = {0};
  git_tree *base_tree = NULL, *tree = NULL;
  git_oid tree_id;
  size_t i;
  int rc = 0, err;

  if ((err = git_commit_tree(&base_tree, base)) < 0) {
    rc = repo__git_error(err, HUB_ERROR, "read base tree");
    goto done;
  }
  if ((rc = repo__tedit_init(&te, h->git, base_tree)) < 0) goto done;
  for (i = 0; i < p->n && rc == 0; i++) {
    switch (req->ops[i].kind) {
    case REPO_OP_ADD:
    case REPO_OP_ADD_LFS:
    case REPO_OP_ADD_BLOB:
      rc = repo__tedit_upsert(&te, p->paths[i], &p->blobs[i]);
      break;
    case REPO_OP_DELETE_FILE:
      rc = repo__tedit_remove(&te, p->paths[i], 0);
      break;
    case REPO_OP_DELETE_FOLDER:
      rc = repo__tedit_remove(&te, p->paths[i], 1);
      break;
    }
  }
  if (rc < 0 || (rc = repo__tedit_write(&te, &tree_id)) < 0) goto done;
  if ((err = git_tree_lookup(&tree, h->git, &tree_id)) < 0 ||
      (err = git_commit_create(out, h->git, NULL, sig, sig, NULL, msg, tree, 1, &base)) < 0)
    rc = repo__git_error(err, HUB_ERROR, "create commit");
done:
  git_tree_free(tree);
  git_tree_free(base_tree);
  repo__tedit_dispose(&te);
  return rc;
}

static void lock_backoff(unsigned waits) {
  struct timespec ts = {0, (long)(1 + (waits * 7919u) % 8) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One queued commit: its writer waits until `done`; the leader fills rc/errmsg/new_id. */
struct repo__pending {
  repo__pending *next;
  const repo_commit_req *req;
  const prepared *p;
  const git_signature *sig;
  const char *msg;
  int done, failed, rc;
  git_oid new_id;
  char errmsg[512];
};

static void pending_fail(repo__pending *w, int rc) {
  w->failed = 1;
  w->rc = rc;
  snprintf(w->errmsg, sizeof w->errmsg, "%s", hub_error_msg());
}

/* After the CAS: make the move durable, then record each commit of the batch in order
 * (events, audit, derived head: the caller's recorder). A record that fails puts the ref
 * back to the commit before it and fails it and every later commit of the batch, so no
 * visible commit lacks its record. */
static void record_batch(repo_handle *h, const char *refname, repo__pending *batch,
                         const git_oid *old_head, const git_oid *tip) {
  repo_ref_update u;
  char prev[41] = "", tiphex[41];
  repo__pending *w;
  int rc;

  if ((rc = repo__sync(h)) < 0) {
    for (w = batch; w; w = w->next)
      if (!w->failed) pending_fail(w, rc);
    return;
  }
  if (old_head) repo__oid_hex(prev, old_head);
  repo__oid_hex(tiphex, tip);
  for (w = batch; w; w = w->next) {
    if (w->failed) continue;
    u.ref = refname;
    snprintf(u.old, sizeof u.old, "%s", prev);
    repo__oid_hex(u.new_, &w->new_id);
    if (w->req->record && w->req->record->fn &&
        (rc = w->req->record->fn(h, &u, 1, w->req->record->payload)) != 0)
      break;
    snprintf(prev, sizeof prev, "%s", u.new_);
  }
  if (!w) return;
  /* w's record failed: the ref goes back to `prev` (the last recorded commit). */
  pending_fail(w, rc < 0 ? rc : HUB_ERROR);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", w->errmsg);
  for (repo__pending *l = w->next; l; l = l->next)
    if (!l->failed) pending_fail(l, hub_error_set(HUB_ERETRY, "%s", msg));
  git_reference *ref = NULL;
  git_oid want, cur;
  int err;
  git_oid_fromstr(&cur, tiphex);
  repo_ref_lock(git_repository_path(h->git), 0);
  if (*prev) {
    git_oid_fromstr(&want, prev);
    err = git_reference_create_matching(&ref, h->git, refname, &want, 1, &cur, "commit: undone");
  } else if ((err = git_reference_lookup(&ref, h->git, refname)) == 0) {
    err = git_oid_equal(git_reference_target(ref), &cur) ? git_reference_delete(ref) : -1;
  }
  repo_ref_unlock(git_repository_path(h->git));
  git_reference_free(ref);
  if (err < 0) fprintf(stderr, "modelhub: cannot undo unrecorded commit on %s\n", refname);
  repo__sync(h);
}

/* The leader's work: build every commit of the batch on the ref's head, each on the one
 * before (so all of them stay in the history), make the objects durable with one sync and
 * publish the last with one CAS. A commit whose pin, ops or ref state do not fit fails
 * alone. The ref moved by another process (git push): rebuild, up to
 * REPO_COMMIT_MAX_RETRIES times; pinned commits then fail with HUB_ECONFLICT. The ref's
 * lock held by another process: clear it if stale, else wait up to REPO_LOCK_WAIT_MS. */
static void publish_batch(repo_handle *h, const char *refname, repo__pending *batch) {
  git_reference *ref = NULL, *newref = NULL;
  git_commit *base = NULL;
  git_oid head_id, tip, from_id;
  char hex[41];
  unsigned races = 0, waits = 0, clears = 0;
  int64_t lock_deadline = 0;
  int have_from = 0, rc, err;
  repo__pending *w;

  for (;;) {
    int exists, have_tip, built = 0;
    git_reference_free(ref);
    ref = NULL;

    err = git_reference_lookup(&ref, h->git, refname);
    if (err < 0 && err != GIT_ENOTFOUND) {
      rc = repo__git_error(err, HUB_ERROR, "look up ref");
      goto fail_all;
    }
    exists = err == 0;
    if (exists && git_reference_type(ref) != GIT_REFERENCE_DIRECT) {
      rc = hub_error_set(HUB_EINVALID, "'%s' is a symbolic ref", refname);
      goto fail_all;
    }
    if (exists) git_oid_cpy(&head_id, git_reference_target(ref));
    have_tip = exists;
    git_oid_cpy(&tip, &head_id);

    for (w = batch; w; w = w->next) {
      const repo_commit_req *req = w->req;
      if (w->failed) continue;
      if (!have_tip) { /* the ref does not exist yet: start it from create_from */
        if (!req->create_from) {
          pending_fail(w, hub_error_set(HUB_EREVISION, "Invalid rev id: %s", refname));
          continue;
        }
        if (!have_from) {
          if ((rc = repo_resolve(h, req->create_from, hex, NULL)) < 0) {
            pending_fail(w, rc);
            continue;
          }
          git_oid_fromstr(&from_id, hex);
          have_from = 1;
        }
        git_oid_cpy(&tip, &from_id);
      } else if (req->must_create) {
        pending_fail(w, hub_error_set(HUB_EEXISTS, "'%s' already exists", refname));
        continue;
      }
      repo__oid_hex(hex, &tip);
      if (req->parent_pin && strncasecmp(hex, req->parent_pin, strlen(req->parent_pin))) {
        pending_fail(w, hub_error_set(HUB_ECONFLICT, STALE_PARENT_MSG));
        continue;
      }
      git_commit_free(base);
      base = NULL;
      if ((err = git_commit_lookup(&base, h->git, &tip)) < 0) {
        pending_fail(w, repo__git_error(err, HUB_EREVISION, "look up head commit"));
        continue;
      }
      if ((rc = build_commit(h, req, w->p, base, w->sig, w->msg, &w->new_id)) < 0) {
        pending_fail(w, rc);
        continue;
      }
      git_oid_cpy(&tip, &w->new_id);
      have_tip = 1;
      built++;
    }
    if (!built) goto out;
    if ((rc = repo__sync(h)) < 0) goto fail_all; /* objects on disk before the ref names them */

    /* The one moment the commits become visible: CAS on the ref (never during the
     * server's maintenance, which holds the repo's ref lock exclusively). */
    repo_ref_lock(git_repository_path(h->git), 0);
    if (exists)
      err = git_reference_create_matching(&newref, h->git, refname, &tip, 1, &head_id, "commit");
    else
      err = git_reference_create(&newref, h->git, refname, &tip, 0, "commit");
    repo_ref_unlock(git_repository_path(h->git));
    git_reference_free(newref);
    newref = NULL;
    if (err == 0) {
      record_batch(h, refname, batch, exists ? &head_id : NULL, &tip);
      goto out;
    }
    if (err == GIT_ELOCKED) {
      /* Another process (git receive-pack) holds the ref lock, or a dead one left it:
       * remove it if stale, else wait and rebuild. */
      if (clears < 16 && repo__ref_lock_clear_stale(h, refname)) {
        clears++;
        continue;
      }
      if (!lock_deadline) lock_deadline = now_ms() + REPO_LOCK_WAIT_MS;
      if (now_ms() > lock_deadline) {
        rc = hub_error_set(HUB_ERETRY, "'%s' is busy, try again", refname);
        goto fail_all;
      }
      lock_backoff(++waits);
      continue;
    }
    if (err != GIT_EMODIFIED && err != GIT_EEXISTS) {
      rc = repo__git_error(err, HUB_ERROR, "update ref");
      goto fail_all;
    }
    /* Another process moved (or created) the ref: pinned commits are stale now. */
    for (w = batch; w; w = w->next)
      if (!w->failed && w->req->parent_pin)
        pending_fail(w, hub_error_set(HUB_ECONFLICT, STALE_PARENT_MSG));
    if (++races >= REPO_COMMIT_MAX_RETRIES) {
      rc = hub_error_set(HUB_ERETRY, "'%s' kept moving during the commit, try again", refname);
      goto fail_all;
    }
  }
fail_all:
  for (w = batch; w; w = w->next)
    if (!w->failed) pending_fail(w, rc);
out:
  git_reference_free(ref);
  git_commit_free(base);
}

int repo_commit(repo_handle *h, const repo_commit_req *req, char out_sha[41]) {
  prepared p = {0};
  git_signature *sig = NULL;
  char *msg = NULL;
  repo__refq *q = NULL;
  repo__pending me;
  int rc, err;

  if ((rc = check_request(req)) < 0) return rc;
  if ((rc = prepare(h, req, &p)) < 0) goto done;
  if (!(msg = build_message(req))) {
    rc = HUB_ERROR;
    goto done;
  }
  err = req->time
            ? git_signature_new(&sig, req->author_name, req->author_email, (git_time_t)req->time, 0)
            : git_signature_now(&sig, req->author_name, req->author_email);
  if (err < 0) {
    rc = hub_error_set(HUB_EINVALID, "Invalid author: %s", git_error_last()->message);
    goto done;
  }

  /* Group commit: queue behind this process's other writers of the ref. Whoever finds no
   * leader takes the whole queue and publishes it; a writer never builds on a head that
   * is about to move, so unpinned commits do not lose races to each other. */
  if ((rc = repo__refq_get(h, req->ref, &q)) < 0) goto done;
  memset(&me, 0, sizeof me);
  me.req = req;
  me.p = &p;
  me.sig = sig;
  me.msg = msg;
  pthread_mutex_lock(&q->mu);
  *q->tail = &me;
  q->tail = &me.next;
  while (!me.done) {
    if (!q->leader) {
      repo__pending *batch = q->head, *w, *next;
      q->head = NULL;
      q->tail = &q->head;
      q->leader = 1;
      pthread_mutex_unlock(&q->mu);
      /* The other nodes' leaders of this ref wait while this one publishes. */
      if ((rc = repo__refq_node_lock(q)) < 0) {
        for (w = batch; w; w = w->next)
          pending_fail(w, rc);
      } else {
        publish_batch(h, req->ref, batch);
        repo__refq_node_unlock(q);
      }
      pthread_mutex_lock(&q->mu);
      for (w = batch; w; w = next) {
        next = w->next; /* w belongs to its writer once done is set */
        w->done = 1;
      }
      q->leader = 0;
      pthread_cond_broadcast(&q->cv);
    } else {
      pthread_cond_wait(&q->cv, &q->mu);
    }
  }
  pthread_mutex_unlock(&q->mu);
  if (me.failed) {
    rc = hub_error_set(me.rc, "%s", me.errmsg);
    goto done;
  }
  /* The leader made the moved ref durable and recorded it (record_batch). */
  if (out_sha) repo__oid_hex(out_sha, &me.new_id);
  rc = 0;

done:
  repo__refq_put(q);
  git_signature_free(sig);
  free(msg);
  prepared_dispose(&p);
  return rc;
}
