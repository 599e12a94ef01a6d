/* Ordered edits of a git tree in memory.
 *
 * Each folder touched by an edit becomes a node holding a git_treebuilder loaded from the
 * base tree; nodes for sub-folders hang below it. Edits apply in order (a later op sees
 * earlier ones). Writing walks the nodes bottom-up, replaces each touched sub-folder's
 * entry by its new tree (or drops it when empty) and writes the treebuilders. Only objects
 * are written, never refs, so nothing is visible until the caller moves a ref. */
#include "repo/repo_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/limits.h"

struct repo__tnode {
  char *name;
  git_treebuilder *tb;
  repo__tnode **kids;
  size_t nkids, cap;
};

static void node_free(repo__tnode *n) {
  size_t i;
  if (!n) return;
  for (i = 0; i < n->nkids; i++)
    node_free(n->kids[i]);
  free(n->kids);
  git_treebuilder_free(n->tb);
  free(n->name);
  free(n);
}

static int node_new(repo__tnode **out, git_repository *git, const char *name, const git_tree *src) {
  repo__tnode *n = calloc(1, sizeof *n);
  int err;

  *out = NULL;
  if (!n || !(n->name = strdup(name))) {
    free(n);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  if ((err = git_treebuilder_new(&n->tb, git, src)) < 0) {
    node_free(n);
    return repo__git_error(err, HUB_ERROR, "tree builder");
  }
  *out = n;
  return 0;
}

static repo__tnode *kid_find(repo__tnode *n, const char *name, size_t *idx) {
  size_t i;
  for (i = 0; i < n->nkids; i++)
    if (!strcmp(n->kids[i]->name, name)) {
      if (idx) *idx = i;
      return n->kids[i];
    }
  return NULL;
}

static void kid_drop(repo__tnode *n, size_t idx) {
  node_free(n->kids[idx]);
  n->kids[idx] = n->kids[--n->nkids];
}

/* The node for folder `name` below n. create: make it (empty) if missing; 1 = missing
 * (create == 0) or a file is in the way (sets HUB_EINVALID when create). */
static int kid_get(repo__tedit *t, repo__tnode *n, const char *name, int create,
                   repo__tnode **out) {
  const git_tree_entry *e;
  git_tree *sub = NULL;
  repo__tnode *k;
  int rc, err;

  if ((*out = kid_find(n, name, NULL))) return 0;
  e = git_treebuilder_get(n->tb, name);
  if (e && git_tree_entry_type(e) == GIT_OBJECT_TREE) {
    if ((err = git_tree_lookup(&sub, t->git, git_tree_entry_id(e))) < 0)
      return repo__git_error(err, HUB_ERROR, "read tree");
  } else if (e || !create) {
    if (e && create) return hub_error_set(HUB_EINVALID, "'%s' is a file, not a folder", name);
    return 1;
  }
  rc = node_new(&k, t->git, name, sub);
  git_tree_free(sub);
  if (rc < 0) return rc;
  if (n->nkids == n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 4;
    repo__tnode **kids = realloc(n->kids, cap * sizeof *kids);
    if (!kids) {
      node_free(k);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
    n->kids = kids;
    n->cap = cap;
  }
  n->kids[n->nkids++] = k;
  *out = k;
  return 0;
}

/* Walk to the folder holding path's last segment; *out_base points into `buf`. */
static int walk_to_parent(repo__tedit *t, char *buf, int create, repo__tnode **out,
                          const char **out_base) {
  repo__tnode *n = t->root;
  char *seg = buf, *slash;
  int rc;

  while ((slash = strchr(seg, '/'))) {
    *slash = 0;
    rc = kid_get(t, n, seg, create, &n);
    if (rc) return rc;
    seg = slash + 1;
  }
  *out = n;
  *out_base = seg;
  return 0;
}

int repo__tedit_init(repo__tedit *t, git_repository *git, const git_tree *base) {
  t->git = git;
  return node_new(&t->root, git, "", base);
}

int repo__tedit_upsert(repo__tedit *t, const char *path, const git_oid *id) {
  char buf[HUB_MAX_PATH + 1];
  const git_tree_entry *e;
  git_filemode_t mode = GIT_FILEMODE_BLOB;
  const char *base;
  repo__tnode *n;
  int rc, err;

  if (strlen(path) > HUB_MAX_PATH) return hub_error_set(HUB_EINVALID, "path too long");
  strcpy(buf, path);
  if ((rc = walk_to_parent(t, buf, 1, &n, &base)) != 0) return rc < 0 ? rc : HUB_EINVALID;
  e = git_treebuilder_get(n->tb, base);
  if (kid_find(n, base, NULL) || (e && git_tree_entry_type(e) == GIT_OBJECT_TREE))
    return hub_error_set(HUB_EINVALID, "'%s' is a folder, not a file", path);
  if (e && git_tree_entry_filemode(e) == GIT_FILEMODE_BLOB_EXECUTABLE)
    mode = GIT_FILEMODE_BLOB_EXECUTABLE;
  if ((err = git_treebuilder_insert(NULL, n->tb, base, id, mode)) < 0)
    return hub_error_set(HUB_EINVALID, "Invalid path '%s': %s", path, git_error_last()->message);
  return 0;
}

int repo__tedit_remove(repo__tedit *t, const char *path, int folder) {
  char buf[HUB_MAX_PATH + 1];
  const git_tree_entry *e;
  const char *base;
  repo__tnode *n;
  size_t idx;
  int rc;

  if (strlen(path) > HUB_MAX_PATH) return hub_error_set(HUB_EINVALID, "path too long");
  strcpy(buf, path);
  rc = walk_to_parent(t, buf, 0, &n, &base);
  if (rc < 0) return rc;
  if (rc == 0) {
    e = git_treebuilder_get(n->tb, base);
    if (folder) {
      int had_kid = kid_find(n, base, &idx) != NULL;
      if (had_kid) kid_drop(n, idx);
      if (e && git_tree_entry_type(e) == GIT_OBJECT_TREE) {
        git_treebuilder_remove(n->tb, base);
        return 0;
      }
      if (had_kid) return 0;
    } else if (e && git_tree_entry_type(e) != GIT_OBJECT_TREE &&
               git_tree_entry_type(e) != GIT_OBJECT_COMMIT && !kid_find(n, base, NULL)) {
      git_treebuilder_remove(n->tb, base);
      return 0;
    }
  }
  if (folder) return hub_error_set(HUB_EENTRY, "A folder with this name doesn't exist: '%s'", path);
  return hub_error_set(HUB_EENTRY, "A file with this name doesn't exist: '%s'", path);
}

static int node_write(repo__tnode *n, git_oid *out) {
  size_t i;
  int rc, err;

  for (i = 0; i < n->nkids; i++) {
    repo__tnode *k = n->kids[i];
    git_oid id;
    if ((rc = node_write(k, &id)) < 0) return rc;
    if (git_treebuilder_entrycount(k->tb) == 0) {
      if (git_treebuilder_get(n->tb, k->name)) git_treebuilder_remove(n->tb, k->name);
    } else if ((err = git_treebuilder_insert(NULL, n->tb, k->name, &id, GIT_FILEMODE_TREE)) < 0) {
      return hub_error_set(HUB_EINVALID, "Invalid folder name '%s': %s", k->name,
                           git_error_last()->message);
    }
  }
  if ((err = git_treebuilder_write(out, n->tb)) < 0)
    return repo__git_error(err, HUB_ERROR, "write tree");
  return 0;
}

int repo__tedit_write(repo__tedit *t, git_oid *out) {
  return node_write(t->root, out);
}

void repo__tedit_dispose(repo__tedit *t) {
  node_free(t->root);
  t->root = NULL;
}
