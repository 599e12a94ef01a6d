/* History: commit descriptions, paginated log, last commit touching a path. */
#include "repo/repo_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int repo__commit_info_fill(repo_commit_info *out, const git_commit *c) {
  const git_signature *a = git_commit_author(c);
  const char *msg = git_commit_message_raw(c);
  const char *nl;
  size_t i, tlen;

  memset(out, 0, sizeof *out);
  repo__oid_hex(out->id, git_commit_id(c));
  if (!msg) msg = "";
  while (*msg == '\n')
    msg++;
  nl = strchr(msg, '\n');
  tlen = nl ? (size_t)(nl - msg) : strlen(msg);
  out->title = strndup(msg, tlen);
  out->message = strdup(msg);
  out->author_name = strdup(a && a->name ? a->name : "");
  out->author_email = strdup(a && a->email ? a->email : "");
  out->author_time = a ? (int64_t)a->when.time : 0;
  out->date = (int64_t)git_commit_time(c);
  out->nparents = git_commit_parentcount(c);
  out->parents = calloc(out->nparents ? out->nparents : 1, sizeof *out->parents);
  if (!out->title || !out->message || !out->author_name || !out->author_email || !out->parents) {
    repo_commit_info_dispose(out);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  for (i = 0; i < out->nparents; i++)
    repo__oid_hex(out->parents[i], git_commit_parent_id(c, i));
  return 0;
}

void repo_commit_info_dispose(repo_commit_info *c) {
  if (!c) return;
  free(c->title);
  free(c->message);
  free(c->author_name);
  free(c->author_email);
  free(c->parents);
  memset(c, 0, sizeof *c);
}

int repo_commit_info_get(repo_handle *h, const char *rev, repo_commit_info *out) {
  git_commit *c = NULL;
  char sha[41];
  int rc;

  memset(out, 0, sizeof *out);
  if ((rc = repo_resolve(h, rev, sha, NULL)) < 0) return rc;
  if ((rc = repo__commit_lookup(&c, h, sha)) < 0) return rc;
  rc = repo__commit_info_fill(out, c);
  git_commit_free(c);
  return rc;
}

static int walk_start(repo_handle *h, const char *sha, git_revwalk **out) {
  git_commit *c = NULL;
  int rc, err;

  *out = NULL;
  if ((rc = repo__commit_lookup(&c, h, sha)) < 0) return rc;
  if ((err = git_revwalk_new(out, h->git)) < 0 ||
      (err = git_revwalk_sorting(*out, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME)) < 0 ||
      (err = git_revwalk_push(*out, git_commit_id(c))) < 0) {
    git_revwalk_free(*out);
    *out = NULL;
    rc = repo__git_error(err, HUB_ERROR, "walk history");
  }
  git_commit_free(c);
  return rc;
}

int repo_log(repo_handle *h, const char *commit_sha, size_t skip, size_t limit, repo_commit_cb cb,
             void *payload, size_t *out_total) {
  git_revwalk *walk = NULL;
  git_oid id;
  size_t n = 0;
  int rc, err;

  if (out_total) *out_total = 0;
  if ((rc = walk_start(h, commit_sha, &walk)) < 0) return rc;
  while ((err = git_revwalk_next(&id, walk)) == 0) {
    if (cb && n >= skip && (limit == 0 || n - skip < limit)) {
      git_commit *c = NULL;
      repo_commit_info info;
      if ((err = git_commit_lookup(&c, h->git, &id)) < 0) {
        rc = repo__git_error(err, HUB_ERROR, "read commit");
        break;
      }
      rc = repo__commit_info_fill(&info, c);
      git_commit_free(c);
      if (rc < 0) break;
      rc = cb(&info, payload);
      repo_commit_info_dispose(&info);
      if (rc) break;
    } else if (!out_total && (!cb || (limit && n >= skip && n - skip >= limit))) {
      break; /* nobody wants the count */
    }
    n++;
  }
  if (err < 0 && err != GIT_ITEROVER && rc == 0) rc = repo__git_error(err, HUB_ERROR, "walk");
  git_revwalk_free(walk);
  if (rc == 0 && out_total) *out_total = n;
  return rc;
}

/* The id of the entry at `path` in commit c, or zero oid when absent. */
static int entry_id_at(const git_commit *c, const char *path, git_oid *out) {
  git_tree *tree = NULL;
  git_tree_entry *e = NULL;
  int err;

  memset(out, 0, sizeof *out);
  if ((err = git_commit_tree(&tree, c)) < 0) return repo__git_error(err, HUB_ERROR, "read tree");
  err = git_tree_entry_bypath(&e, tree, path);
  if (err == 0) git_oid_cpy(out, git_tree_entry_id(e));
  git_tree_entry_free(e);
  git_tree_free(tree);
  if (err < 0 && err != GIT_ENOTFOUND) return repo__git_error(err, HUB_ERROR, "look up path");
  return 0;
}

int repo_last_commit_for_path(repo_handle *h, const char *commit_sha, const char *path,
                              repo_commit_info *out) {
  git_revwalk *walk = NULL;
  git_commit *c = NULL, *last = NULL;
  git_oid id, zero, here;
  size_t n = 0;
  int rc, err;

  memset(out, 0, sizeof *out);
  memset(&zero, 0, sizeof zero);
  while (path && *path == '/')
    path++;
  if (!path || !*path) return repo_commit_info_get(h, commit_sha, out);
  if ((rc = walk_start(h, commit_sha, &walk)) < 0) return rc;
  while (rc == 0 && (err = git_revwalk_next(&id, walk)) == 0) {
    unsigned i, np;
    int changed = 1;

    if ((err = git_commit_lookup(&c, h->git, &id)) < 0) {
      rc = repo__git_error(err, HUB_ERROR, "read commit");
      break;
    }
    if ((rc = entry_id_at(c, path, &here)) < 0) break;
    if (n == 0 && git_oid_equal(&here, &zero)) {
      rc = hub_error_set(HUB_EENTRY, "Entry not found: '%.300s'", path);
      break;
    }
    np = git_commit_parentcount(c);
    for (i = 0; i < np && changed; i++) { /* TREESAME to any parent: not this commit */
      git_commit *parent = NULL;
      git_oid there;
      if ((err = git_commit_parent(&parent, c, i)) < 0) {
        rc = repo__git_error(err, HUB_ERROR, "read parent");
        break;
      }
      rc = entry_id_at(parent, path, &there);
      git_commit_free(parent);
      if (rc < 0) break;
      if (git_oid_equal(&here, &there)) changed = 0;
    }
    if (rc < 0) break;
    git_commit_free(last);
    last = c;
    c = NULL;
    if (changed || ++n >= REPO_LAST_COMMIT_WALK_MAX) break;
  }
  if (rc == 0 && last)
    rc = repo__commit_info_fill(out, last);
  else if (rc == 0)
    rc = hub_error_set(HUB_EENTRY, "Entry not found: '%.300s'", path);
  git_commit_free(c);
  git_commit_free(last);
  git_revwalk_free(walk);
  return rc;
}
