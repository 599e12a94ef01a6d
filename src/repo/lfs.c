/* git-lfs pointer files, through the one strict parser in blob/lfs_pointer.h. */
#include "repo/repo_internal.h"

#include <string.h>

#include "blob/lfs_pointer.h"
#include "util/error.h"

int repo_lfs_pointer_parse(const void *data, size_t len, char out_oid[65], uint64_t *out_size) {
  int64_t size = 0;
  if (len >= REPO_LFS_POINTER_MAX || lfs_pointer_parse(data, len, out_oid, &size)) {
    hub_error_clear(); /* "not a pointer" is an answer here, not an error */
    return 0;
  }
  *out_size = (uint64_t)size;
  return 1;
}

int repo_lfs_pointer_format(char *buf, size_t cap, const char *oid, uint64_t size) {
  hub_buf b = HUB_BUF_INIT;
  int rc = lfs_pointer_format(&b, oid, (int64_t)size);
  if (!rc && b.len + 1 > cap) rc = hub_error_set(HUB_EINVALID, "pointer buffer too small");
  if (!rc) {
    memcpy(buf, b.ptr, b.len + 1);
    rc = (int)b.len;
  }
  hub_buf_dispose(&b);
  return rc;
}

struct pointers_each {
  repo_handle *h;
  repo_lfs_pointer_cb cb;
  void *payload;
  int rc;
};

static int pointer_visit(const git_oid *id, void *payload) {
  struct pointers_each *p = payload;
  size_t len;
  git_object_t type;
  git_odb_object *obj = NULL;
  char oid[65];
  uint64_t size;
  if (git_odb_read_header(&len, &type, p->h->odb, id) < 0 || type != GIT_OBJECT_BLOB ||
      len >= REPO_LFS_POINTER_MAX)
    return 0;
  if (git_odb_read(&obj, p->h->odb, id) < 0) return 0;
  if (repo_lfs_pointer_parse(git_odb_object_data(obj), git_odb_object_size(obj), oid, &size))
    p->rc = p->cb(oid, size, p->payload);
  git_odb_object_free(obj);
  return p->rc ? GIT_EUSER : 0;
}

int repo_lfs_pointers_each(repo_handle *h, repo_lfs_pointer_cb cb, void *payload) {
  struct pointers_each p = {h, cb, payload, 0};
  int gerr = git_odb_foreach(h->odb, pointer_visit, &p);
  if (p.rc) return p.rc;
  return gerr < 0 ? repo__git_error(gerr, HUB_ERROR, "listing objects") : 0;
}
