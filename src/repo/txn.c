/* The ref transaction (repo.h, "ref transactions"): every ref move of the server, one
 * shape — turns, compare-and-swap of each ref, sync, record, or nothing. */
#include "repo/repo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

typedef struct {
  char ref[256];
  int expect_kind; /* 0: any, 1: absent, 2: exactly `expect` */
  char expect[41];
  char new_[41];
} txn_item;

struct repo_txn {
  repo_handle *h;
  txn_item items[REPO_TXN_MAX_UPDATES];
  repo_ref_update done[REPO_TXN_MAX_UPDATES];
  repo__refq *turns[REPO_TXN_MAX_UPDATES];
  size_t n;
};

int repo_txn_begin(repo_txn **out, repo_handle *h) {
  *out = calloc(1, sizeof **out);
  if (!*out) return hub_error_set(HUB_ERROR, "out of memory");
  (*out)->h = h;
  return 0;
}

void repo_txn_free(repo_txn *t) {
  free(t);
}

static int hex40(const char *s) {
  return s && strlen(s) == 40 && repo__is_hex(s, 40);
}

int repo_txn_update(repo_txn *t, const char *ref, const char *expected, const char *new_id) {
  int valid = 0;
  txn_item *it;
  if (t->n == REPO_TXN_MAX_UPDATES)
    return hub_error_set(HUB_ETOOBIG, "too many ref updates in one transaction");
  if (!ref || strncmp(ref, "refs/", 5) || strlen(ref) >= sizeof it->ref ||
      git_reference_name_is_valid(&valid, ref) || !valid)
    return hub_error_set(HUB_EINVALID, "Invalid ref name '%.200s'", ref ? ref : "");
  for (size_t i = 0; i < t->n; i++)
    if (!strcmp(t->items[i].ref, ref))
      return hub_error_set(HUB_EINVALID, "'%s' updated twice in one transaction", ref);
  if ((new_id && *new_id && !hex40(new_id)) || (expected && *expected && !hex40(expected)))
    return hub_error_set(HUB_EINVALID, "bad object id for '%s'", ref);
  it = &t->items[t->n++];
  snprintf(it->ref, sizeof it->ref, "%s", ref);
  it->expect_kind = !expected ? 0 : !*expected ? 1 : 2;
  snprintf(it->expect, sizeof it->expect, "%s", expected ? expected : "");
  snprintf(it->new_, sizeof it->new_, "%s", new_id ? new_id : "");
  return 0;
}

static int cmp_item(const void *a, const void *b) {
  return strcmp(((const txn_item *)a)->ref, ((const txn_item *)b)->ref);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Current value of `ref`: 1 found (hex filled), 0 absent, <0 error. */
static int read_ref(repo_handle *h, const char *ref, char hex[41]) {
  git_reference *r = NULL;
  int err = git_reference_lookup(&r, h->git, ref);
  hex[0] = 0;
  if (err == GIT_ENOTFOUND) return 0;
  if (err < 0) return repo__git_error(err, HUB_ERROR, "look up ref");
  if (git_reference_type(r) != GIT_REFERENCE_DIRECT) {
    git_reference_free(r);
    return hub_error_set(HUB_EINVALID, "'%s' is a symbolic ref", ref);
  }
  repo__oid_hex(hex, git_reference_target(r));
  git_reference_free(r);
  return 1;
}

/* Move `ref` from `old` ("" = absent) to `new_` ("" = delete) by CAS. libgit2 code. */
static int cas(repo_handle *h, const char *ref, const char *old, const char *new_) {
  git_reference *r = NULL;
  git_oid o, n;
  int err;
  if (!*new_) {
    if ((err = git_reference_lookup(&r, h->git, ref)) < 0) return err;
    git_oid_fromstr(&o, old);
    /* git_reference_delete removes the ref only if it still has the value looked up. */
    err = git_oid_equal(git_reference_target(r), &o) ? git_reference_delete(r) : GIT_EMODIFIED;
    git_reference_free(r);
    return err;
  }
  git_oid_fromstr(&n, new_);
  if (*old) {
    git_oid_fromstr(&o, old);
    err = git_reference_create_matching(&r, h->git, ref, &n, 1, &o, "modelhub");
  } else {
    err = git_reference_create(&r, h->git, ref, &n, 0, "modelhub");
  }
  git_reference_free(r);
  return err;
}

/* Put applied updates [0, n) back, newest first (best effort: a ref moved meanwhile by
 * another process stays where that process put it). */
static void undo(repo_txn *t, size_t n) {
  const char *dir = git_repository_path(t->h->git);
  repo_ref_lock(dir, 0);
  while (n-- > 0) {
    const repo_ref_update *u = &t->done[n];
    int err = cas(t->h, u->ref, u->new_, u->old);
    if (err < 0 && err != GIT_ENOTFOUND)
      fprintf(stderr, "modelhub: cannot put %s back to %s: %s\n", u->ref,
              *u->old ? u->old : "(none)", git_error_last() ? git_error_last()->message : "?");
  }
  repo_ref_unlock(dir);
}

/* Apply item i: check its expectation against the ref now and CAS it. */
static int apply_one(repo_txn *t, size_t i) {
  txn_item *it = &t->items[i];
  repo_ref_update *u = &t->done[i];
  const char *dir = git_repository_path(t->h->git);
  int64_t deadline = 0;
  unsigned waits = 0, clears = 0, races = 0;
  for (;;) {
    char cur[41];
    int found = read_ref(t->h, it->ref, cur), err;
    if (found < 0) return found;
    if (it->expect_kind == 1 && found)
      return hub_error_set(HUB_EEXISTS, "Reference already exists: %s", it->ref);
    if (it->expect_kind == 2 && strcmp(cur, it->expect))
      return hub_error_set(HUB_ECONFLICT, "'%s' is at %s, not %s", it->ref, found ? cur : "(none)",
                           it->expect);
    if (!*it->new_ && !found) return hub_error_set(HUB_EREVISION, "Invalid rev id: %s", it->ref);
    u->ref = it->ref;
    snprintf(u->old, sizeof u->old, "%s", cur);
    snprintf(u->new_, sizeof u->new_, "%s", it->new_);
    repo_ref_lock(dir, 0); /* never during maintenance */
    err = cas(t->h, it->ref, cur, it->new_);
    repo_ref_unlock(dir);
    if (err == 0) return 0;
    if (err == GIT_ELOCKED) { /* another process (receive-pack) or a dead one holds it */
      if (clears < 16 && repo__ref_lock_clear_stale(t->h, it->ref)) {
        clears++;
        continue;
      }
      if (!deadline) deadline = now_ms() + REPO_LOCK_WAIT_MS;
      if (now_ms() > deadline) return hub_error_set(HUB_ERETRY, "'%s' is busy, try again", it->ref);
      struct timespec ts = {0, (long)(1 + (++waits * 7919u) % 8) * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    if (err == GIT_EMODIFIED || err == GIT_EEXISTS || err == GIT_ENOTFOUND) {
      /* moved by another process between the read and the CAS */
      if (it->expect_kind == 0 && ++races < REPO_COMMIT_MAX_RETRIES) continue;
      return it->expect_kind == 1
                 ? hub_error_set(HUB_EEXISTS, "Reference already exists: %s", it->ref)
                 : hub_error_set(HUB_ECONFLICT, "'%s' moved during the update", it->ref);
    }
    return repo__git_error(err, HUB_ERROR, "update ref");
  }
}

int repo_txn_commit(repo_txn *t, const repo_recorder *rec, const repo_ref_update **out_updates,
                    size_t *out_n) {
  size_t i, applied = 0, turns = 0;
  int rc = 0;

  if (out_updates) *out_updates = NULL;
  if (out_n) *out_n = 0;
  /* Turns in name order: two transactions over the same refs cannot deadlock. */
  qsort(t->items, t->n, sizeof *t->items, cmp_item);
  for (i = 0; i < t->n; i++) {
    if ((rc = repo__ref_lock(t->h, t->items[i].ref, &t->turns[i])) < 0) goto done;
    turns++;
  }
  /* New objects on disk before a ref names them. */
  if ((rc = repo__sync(t->h)) < 0) goto done;
  for (i = 0; i < t->n; i++) {
    if ((rc = apply_one(t, i)) < 0) {
      undo(t, applied);
      goto done;
    }
    applied++;
  }
  /* The moves on disk before they are recorded: a record never names a move a power cut
   * could undo. */
  if ((rc = repo__sync(t->h)) < 0) {
    undo(t, applied);
    goto done;
  }
  if (rec && rec->fn && (rc = rec->fn(t->h, t->done, t->n, rec->payload)) != 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    undo(t, applied);
    repo__sync(t->h);
    rc = hub_error_set(rc < 0 ? rc : HUB_ERROR, "%s", msg);
    goto done;
  }
  if (out_updates) *out_updates = t->done;
  if (out_n) *out_n = t->n;
done:
  for (i = turns; i-- > 0;)
    repo__ref_unlock(t->turns[i]);
  memset(t->turns, 0, sizeof t->turns);
  return rc;
}

int repo_ref_with_turn(repo_handle *h, const char *ref, int (*fn)(void *payload), void *payload) {
  repo__refq *turn = NULL;
  int rc = repo__ref_lock(h, ref, &turn);
  if (rc < 0) return rc;
  rc = fn(payload);
  repo__ref_unlock(turn);
  return rc;
}
