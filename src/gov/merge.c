/* Merging a pull request: one compare-and-swap on the target branch, like a commit
 * (architecture invariant). Fast-forward when the target is an ancestor of the PR head,
 * else a two-parent merge commit built in memory with libgit2; a conflict writes nothing. */
#include <stdio.h>
#include <string.h>

#include "gov/internal.h"
#include "repo/repo.h"
#include "util/buf.h"
#include "util/error.h"

/* The commit a ref peels to. Missing → HUB_EREVISION. */
static int ref_commit(git_repository *g, const char *ref, git_oid *out) {
  git_reference *r = NULL;
  git_object *o = NULL;
  int err = git_reference_lookup(&r, g, ref), rc = 0;
  if (err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC)
    return hub_error_set(HUB_EREVISION, "%s does not exist", ref);
  if (err < 0) return gov__git_error("look up ref");
  if (git_reference_peel(&o, r, GIT_OBJECT_COMMIT) < 0)
    rc = gov__git_error("peel ref");
  else
    git_oid_cpy(out, git_object_id(o));
  git_object_free(o);
  git_reference_free(r);
  return rc;
}

/* Merge the two commits in memory: *out_index (owned) holds the result and any conflicts. */
static int merge_index(git_repository *g, const git_oid *ours, const git_oid *theirs,
                       git_index **out_index) {
  git_commit *a = NULL, *b = NULL;
  git_merge_options opts;
  int rc = 0;
  git_merge_options_init(&opts, GIT_MERGE_OPTIONS_VERSION);
  if (git_commit_lookup(&a, g, ours) < 0 || git_commit_lookup(&b, g, theirs) < 0 ||
      git_merge_commits(out_index, g, a, b, &opts) < 0)
    rc = gov__git_error("merge");
  git_commit_free(a);
  git_commit_free(b);
  return rc;
}

/* Conflicting paths of an index into `files` (if non-NULL) and a message buffer. */
static size_t list_conflicts(git_index *idx, json_t *files, hub_buf *msg) {
  git_index_conflict_iterator *it = NULL;
  const git_index_entry *anc, *ours, *theirs;
  size_t n = 0;
  if (git_index_conflict_iterator_new(&it, idx) < 0) return 0;
  while (git_index_conflict_next(&anc, &ours, &theirs, it) == 0) {
    const char *path = ours ? ours->path : theirs ? theirs->path : anc ? anc->path : "?";
    if (n < GOV_MAX_CONFLICTS) {
      if (files) json_array_append_new(files, json_string(path));
      if (msg) hub_buf_printf(msg, "%s%s", n ? ", " : "", path);
    } else if (n == GOV_MAX_CONFLICTS && msg) {
      hub_buf_puts(msg, ", …");
    }
    n++;
  }
  git_index_conflict_iterator_free(it);
  return n;
}

int gov__conflicts(git_repository *g, const char *target_ref, const char *pr_ref, json_t *files) {
  git_oid target, head;
  git_index *idx = NULL;
  int rc;
  if ((rc = ref_commit(g, target_ref, &target)) || (rc = ref_commit(g, pr_ref, &head))) return rc;
  if (git_oid_equal(&target, &head) || git_graph_descendant_of(g, &target, &head) == 1 ||
      git_graph_descendant_of(g, &head, &target) == 1)
    return 0; /* nothing to merge, or a fast-forward */
  if ((rc = merge_index(g, &target, &head, &idx))) return rc;
  if (git_index_has_conflicts(idx)) list_conflicts(idx, files, NULL);
  git_index_free(idx);
  return 0;
}

/* Write the merge commit of target and head whose tree is the conflict-free idx. */
static int merge_commit(git_repository *g, git_index *idx, const git_oid *target,
                        const git_oid *head, const char *author, const char *email,
                        const char *message, git_oid *out) {
  git_oid tree_id;
  git_tree *tree = NULL;
  git_commit *p1 = NULL, *p2 = NULL;
  git_signature *sig = NULL;
  int rc = 0;
  if (git_index_write_tree_to(&tree_id, idx, g) < 0 || git_tree_lookup(&tree, g, &tree_id) < 0 ||
      git_commit_lookup(&p1, g, target) < 0 || git_commit_lookup(&p2, g, head) < 0 ||
      git_signature_now(&sig, author, email) < 0) {
    rc = gov__git_error("write merge commit");
    goto done;
  }
  const git_commit *parents[2] = {p1, p2};
  if (git_commit_create(out, g, NULL, sig, sig, NULL, message, tree, 2, parents) < 0)
    rc = gov__git_error("write merge commit");
done:
  git_signature_free(sig);
  git_commit_free(p2);
  git_commit_free(p1);
  git_tree_free(tree);
  return rc;
}

int gov__merge(git_repository *g, repo_handle *h, const repo_recorder *rec, const char *target_ref,
               const char *pr_ref, const char *author, const char *email, const char *message,
               gov_merge_result *out) {
  memset(out, 0, sizeof *out);
  for (int attempt = 0; attempt < GOV_MAX_RETRIES;) {
    git_oid target, head, next;
    git_index *idx = NULL;
    int rc;
    if ((rc = ref_commit(g, target_ref, &target)) || (rc = ref_commit(g, pr_ref, &head))) return rc;
    git_oid_tostr(out->old_sha, sizeof out->old_sha, &target);
    git_oid_tostr(out->head_sha, sizeof out->head_sha, &head);
    if (git_oid_equal(&target, &head) || git_graph_descendant_of(g, &target, &head) == 1) {
      out->noop = 1; /* already merged (e.g. by a concurrent request) */
      snprintf(out->new_sha, sizeof out->new_sha, "%s", out->old_sha);
      return 0;
    }
    out->fast_forward = git_graph_descendant_of(g, &head, &target) == 1;
    if (out->fast_forward) {
      git_oid_cpy(&next, &head);
    } else {
      if ((rc = merge_index(g, &target, &head, &idx))) return rc;
      if (git_index_has_conflicts(idx)) {
        hub_buf msg = HUB_BUF_INIT;
        hub_buf_init(&msg, 8192);
        size_t n = list_conflicts(idx, NULL, &msg);
        rc = hub_error_set(HUB_EEXISTS,
                           "Merge conflict: %zu file%s changed on both %s and the pull request "
                           "(%s); update the pull request and try again",
                           n, n == 1 ? "" : "s", target_ref, msg.ptr ? msg.ptr : "");
        hub_buf_dispose(&msg);
        git_index_free(idx);
        return rc;
      }
      rc = merge_commit(g, idx, &target, &head, author, email, message, &next);
      git_index_free(idx);
      if (rc) return rc;
    }
    /* The one moment the merge becomes visible: the ref transaction's CAS on the target
     * branch (synced and recorded like a commit). */
    git_oid_tostr(out->new_sha, sizeof out->new_sha, &next);
    repo_txn *t = NULL;
    if (!(rc = repo_txn_begin(&t, h)) &&
        !(rc = repo_txn_update(t, target_ref, out->old_sha, out->new_sha)))
      rc = repo_txn_commit(t, rec, NULL, NULL);
    repo_txn_free(t);
    if (rc == HUB_ECONFLICT) { /* the branch moved: merge again on the new head */
      attempt++;
      continue;
    }
    return rc;
  }
  return hub_error_set(HUB_ERETRY, "%s kept moving during the merge; try again", target_ref);
}
