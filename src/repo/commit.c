/* Building a commit in memory and publishing it with one compare-and-swap ref update. */
#include "repo/repo_internal.h"

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

int repo_commit(repo_handle *h, const repo_commit_req *req, char out_sha[41]) {
  prepared p = {0};
  git_signature *sig = NULL;
  git_reference *ref = NULL, *newref = NULL;
  git_commit *base = NULL;
  git_oid from_id, head_id, new_id;
  char *msg = NULL, hex[41];
  unsigned races = 0, waits = 0, clears = 0;
  int64_t lock_deadline = 0;
  repo__reflock *turn = NULL;
  int have_from = 0, rc, err;

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

  /* One writer of this process at a time per ref: the others queue here instead of
   * building on a head that is about to move and losing the CAS. */
  if ((rc = repo__ref_lock(h, req->ref, &turn)) < 0) goto done;

  for (;;) {
    int exists;
    git_reference_free(ref);
    ref = NULL;
    git_commit_free(base);
    base = NULL;

    err = git_reference_lookup(&ref, h->git, req->ref);
    if (err < 0 && err != GIT_ENOTFOUND) {
      rc = repo__git_error(err, HUB_ERROR, "look up ref");
      goto done;
    }
    exists = err == 0;
    if (exists && req->must_create) {
      rc = hub_error_set(HUB_EEXISTS, "'%s' already exists", req->ref);
      goto done;
    }
    if (exists) {
      if (git_reference_type(ref) != GIT_REFERENCE_DIRECT) {
        rc = hub_error_set(HUB_EINVALID, "'%s' is a symbolic ref", req->ref);
        goto done;
      }
      git_oid_cpy(&head_id, git_reference_target(ref));
    } else {
      if (!req->create_from) {
        rc = hub_error_set(HUB_EREVISION, "Invalid rev id: %s", req->ref);
        goto done;
      }
      if (!have_from) {
        if ((rc = repo_resolve(h, req->create_from, hex, NULL)) < 0) goto done;
        git_oid_fromstr(&from_id, hex);
        have_from = 1;
      }
      git_oid_cpy(&head_id, &from_id);
    }
    repo__oid_hex(hex, &head_id);
    if (req->parent_pin && strncasecmp(hex, req->parent_pin, strlen(req->parent_pin))) {
      rc = hub_error_set(HUB_ECONFLICT, STALE_PARENT_MSG);
      goto done;
    }
    if ((err = git_commit_lookup(&base, h->git, &head_id)) < 0) {
      rc = repo__git_error(err, HUB_EREVISION, "look up head commit");
      goto done;
    }
    if ((rc = build_commit(h, req, &p, base, sig, msg, &new_id)) < 0) goto done;
    if ((rc = repo__sync(h)) < 0) goto done; /* objects on disk before the ref names them */

    /* The one moment the commit becomes visible: CAS on the ref. */
    if (exists)
      err =
          git_reference_create_matching(&newref, h->git, req->ref, &new_id, 1, &head_id, "commit");
    else
      err = git_reference_create(&newref, h->git, req->ref, &new_id, 0, "commit");
    if (err == 0) {
      /* Let the next writer in, then make the moved ref durable before answering (its
       * syncfs and ours overlap). Should the sync fail, the commit is already visible:
       * reporting an error would only make the client commit twice. */
      repo__ref_unlock(turn);
      turn = NULL;
      repo__sync(h);
      break;
    }
    if (err == GIT_ELOCKED) {
      /* Another process (git receive-pack) holds the ref lock, or a dead one left it:
       * remove it if stale, else wait and rebuild. */
      if (clears < 16 && repo__ref_lock_clear_stale(h, req->ref)) {
        clears++;
        continue;
      }
      if (!lock_deadline) lock_deadline = now_ms() + REPO_LOCK_WAIT_MS;
      if (now_ms() > lock_deadline) {
        rc = hub_error_set(HUB_ERETRY, "'%s' is busy, try again", req->ref);
        goto done;
      }
      lock_backoff(++waits);
      continue;
    }
    if (err != GIT_EMODIFIED && err != GIT_EEXISTS) {
      rc = repo__git_error(err, HUB_ERROR, "update ref");
      goto done;
    }
    if (req->parent_pin) { /* the ref moved away from the pinned parent */
      rc = hub_error_set(HUB_ECONFLICT, STALE_PARENT_MSG);
      goto done;
    }
    if (++races >= REPO_COMMIT_MAX_RETRIES) {
      rc = hub_error_set(HUB_ERETRY, "'%s' kept moving during the commit, try again", req->ref);
      goto done;
    }
  }
  if (out_sha) repo__oid_hex(out_sha, &new_id);
  rc = 0;

done:
  repo__ref_unlock(turn);
  git_reference_free(newref);
  git_reference_free(ref);
  git_commit_free(base);
  git_signature_free(sig);
  free(msg);
  prepared_dispose(&p);
  return rc;
}
