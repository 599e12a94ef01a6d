/* Reading trees and blobs at a commit. */
#include "repo/repo_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"

/* Trees nested deeper than this (possible through git push) are not descended into: bounds
 * the recursion's stack use. Our own commits cannot exceed HUB_MAX_PATH / 2 levels. */
#define REPO_MAX_TREE_DEPTH 1024

/* Fill the file fields of e (not path) from a blob, detecting LFS pointers. */
static int fill_blob(repo_handle *h, const git_oid *id, git_filemode_t mode, repo_entry *e) {
  git_object_t type;
  git_blob *blob = NULL;
  size_t size;
  int err;

  e->type = REPO_ENTRY_FILE;
  repo__oid_hex(e->oid, id);
  e->is_lfs = 0;
  e->lfs_oid[0] = 0;
  e->lfs_size = 0;
  e->executable = mode == GIT_FILEMODE_BLOB_EXECUTABLE;
  if ((err = git_odb_read_header(&size, &type, h->odb, id)) < 0)
    return repo__git_error(err, HUB_ERROR, "read blob header");
  e->size = size;
  e->pointer_size = size;
  if (size >= REPO_LFS_POINTER_MAX || mode == GIT_FILEMODE_LINK) return 0;
  if ((err = git_blob_lookup(&blob, h->git, id)) < 0)
    return repo__git_error(err, HUB_ERROR, "read blob");
  if (repo_lfs_pointer_parse(git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob), e->lfs_oid,
                             &e->lfs_size)) {
    e->is_lfs = 1;
    e->size = e->lfs_size;
  }
  git_blob_free(blob);
  return 0;
}

static void fill_dir(repo_entry *e, const git_oid *id) {
  memset(e, 0, sizeof *e);
  e->type = REPO_ENTRY_DIR;
  repo__oid_hex(e->oid, id);
}

/* Calls cb for each entry of `tree`; path holds the tree's own path ("" for root). */
static int walk(repo_handle *h, const git_tree *tree, hub_buf *path, int recursive, int depth,
                repo_entry_cb cb, void *payload) {
  size_t i, n = git_tree_entrycount(tree), base = path->len;
  int rc = 0;

  for (i = 0; i < n && rc == 0; i++) {
    const git_tree_entry *te = git_tree_entry_byindex(tree, i);
    git_object_t type = git_tree_entry_type(te);
    repo_entry e;

    if (type != GIT_OBJECT_TREE && type != GIT_OBJECT_BLOB) continue; /* submodule */
    if (base) hub_buf_putc(path, '/');
    hub_buf_puts(path, git_tree_entry_name(te));
    if (path->failed) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      break;
    }
    if (type == GIT_OBJECT_TREE) {
      fill_dir(&e, git_tree_entry_id(te));
    } else {
      memset(&e, 0, sizeof e);
      rc = fill_blob(h, git_tree_entry_id(te), git_tree_entry_filemode(te), &e);
    }
    e.path = path->ptr;
    if (rc == 0) rc = cb(&e, payload);
    if (rc == 0 && recursive && type == GIT_OBJECT_TREE) {
      git_tree *sub = NULL;
      int err;
      if (depth >= REPO_MAX_TREE_DEPTH) {
        rc = hub_error_set(HUB_ERROR, "tree nested too deeply at '%s'", path->ptr);
      } else if ((err = git_tree_lookup(&sub, h->git, git_tree_entry_id(te))) < 0) {
        rc = repo__git_error(err, HUB_ERROR, "read tree");
      } else {
        rc = walk(h, sub, path, recursive, depth + 1, cb, payload);
        git_tree_free(sub);
      }
    }
    path->len = base;
    path->ptr[base] = 0;
  }
  return rc;
}

/* Strip leading and trailing '/' into a fresh string. */
static char *norm_path(const char *path) {
  size_t len;
  char *p;
  while (*path == '/')
    path++;
  len = strlen(path);
  while (len && path[len - 1] == '/')
    len--;
  p = malloc(len + 1);
  if (!p) {
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  memcpy(p, path, len);
  p[len] = 0;
  return p;
}

/* Find `path` in the tree of commit `sha`. *out_entry is NULL for the root (then *out_root
 * is the tree); else an owned entry. */
static int locate(repo_handle *h, const char *sha, const char *path, git_tree **out_root,
                  git_tree_entry **out_entry) {
  git_commit *c = NULL;
  int rc, err;

  *out_root = NULL;
  *out_entry = NULL;
  if ((rc = repo__commit_lookup(&c, h, sha)) < 0) return rc;
  err = git_commit_tree(out_root, c);
  git_commit_free(c);
  if (err < 0) return repo__git_error(err, HUB_ERROR, "read commit tree");
  if (!*path) return 0;
  err = git_tree_entry_bypath(out_entry, *out_root, path);
  if (err == 0 && git_tree_entry_type(*out_entry) != GIT_OBJECT_TREE &&
      git_tree_entry_type(*out_entry) != GIT_OBJECT_BLOB) {
    git_tree_entry_free(*out_entry);
    *out_entry = NULL;
    err = GIT_ENOTFOUND;
  }
  if (err < 0) {
    git_tree_free(*out_root);
    *out_root = NULL;
    if (err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC)
      return hub_error_set(HUB_EENTRY, "Entry not found: '%.300s'", path);
    return repo__git_error(err, HUB_ERROR, "look up path");
  }
  return 0;
}

int repo_list(repo_handle *h, const char *commit_sha, const char *path, int recursive,
              repo_entry_cb cb, void *payload) {
  hub_buf buf = HUB_BUF_INIT;
  git_tree *root = NULL, *sub = NULL;
  git_tree_entry *te = NULL;
  char *p = NULL;
  int rc, err;

  if (!(p = norm_path(path ? path : ""))) return HUB_ERROR;
  if ((rc = locate(h, commit_sha, p, &root, &te)) < 0) goto done;
  hub_buf_puts(&buf, p);
  if (buf.failed) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if (te && git_tree_entry_type(te) == GIT_OBJECT_BLOB) {
    repo_entry e;
    memset(&e, 0, sizeof e);
    rc = fill_blob(h, git_tree_entry_id(te), git_tree_entry_filemode(te), &e);
    e.path = buf.ptr;
    if (rc == 0) rc = cb(&e, payload);
    goto done;
  }
  if (te) {
    if ((err = git_tree_lookup(&sub, h->git, git_tree_entry_id(te))) < 0) {
      rc = repo__git_error(err, HUB_ERROR, "read tree");
      goto done;
    }
  }
  rc = walk(h, sub ? sub : root, &buf, recursive, 0, cb, payload);
done:
  git_tree_free(sub);
  git_tree_entry_free(te);
  git_tree_free(root);
  hub_buf_dispose(&buf);
  free(p);
  return rc;
}

int repo_stat(repo_handle *h, const char *commit_sha, const char *path, repo_entry *out) {
  git_tree *root = NULL;
  git_tree_entry *te = NULL;
  char *p = NULL;
  int rc;

  memset(out, 0, sizeof *out);
  if (!(p = norm_path(path ? path : ""))) return HUB_ERROR;
  if ((rc = locate(h, commit_sha, p, &root, &te)) < 0) goto done;
  if (!te)
    fill_dir(out, git_tree_id(root));
  else if (git_tree_entry_type(te) == GIT_OBJECT_TREE)
    fill_dir(out, git_tree_entry_id(te));
  else
    rc = fill_blob(h, git_tree_entry_id(te), git_tree_entry_filemode(te), out);
  if (rc == 0) {
    out->path = p;
    p = NULL;
  }
done:
  git_tree_entry_free(te);
  git_tree_free(root);
  free(p);
  return rc;
}

void repo_entry_dispose(repo_entry *e) {
  if (!e) return;
  free(e->path);
  e->path = NULL;
}

static int copy_blob(repo_handle *h, const git_oid *id, void **out, size_t *out_len) {
  git_blob *blob = NULL;
  size_t len;
  char *buf;
  int err;

  err = git_blob_lookup(&blob, h->git, id);
  if (err == GIT_ENOTFOUND) return hub_error_set(HUB_EENTRY, "Blob not found");
  if (err < 0) return repo__git_error(err, HUB_ERROR, "read blob");
  len = (size_t)git_blob_rawsize(blob);
  if (len == SIZE_MAX || !(buf = malloc(len + 1))) {
    git_blob_free(blob);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  memcpy(buf, git_blob_rawcontent(blob), len);
  buf[len] = 0;
  git_blob_free(blob);
  *out = buf;
  *out_len = len;
  return 0;
}

int repo_read_blob(repo_handle *h, const char *blob_oid_hex, void **out, size_t *out_len) {
  git_oid id;

  *out = NULL;
  *out_len = 0;
  if (!blob_oid_hex || strlen(blob_oid_hex) != 40 || !repo__is_hex(blob_oid_hex, 40) ||
      git_oid_fromstr(&id, blob_oid_hex) < 0)
    return hub_error_set(HUB_EENTRY, "Invalid blob id");
  return copy_blob(h, &id, out, out_len);
}

int repo_read_path(repo_handle *h, const char *commit_sha, const char *path, void **out,
                   size_t *out_len) {
  git_tree *root = NULL;
  git_tree_entry *te = NULL;
  char *p = NULL;
  int rc;

  *out = NULL;
  *out_len = 0;
  if (!(p = norm_path(path ? path : ""))) return HUB_ERROR;
  if ((rc = locate(h, commit_sha, p, &root, &te)) < 0) goto done;
  if (!te || git_tree_entry_type(te) != GIT_OBJECT_BLOB)
    rc = hub_error_set(HUB_EENTRY, "'%.300s' is a directory", p);
  else
    rc = copy_blob(h, git_tree_entry_id(te), out, out_len);
done:
  git_tree_entry_free(te);
  git_tree_free(root);
  free(p);
  return rc;
}
