#include "index/index.h"

#include "repo/repo.h"
#include "util/error.h"

int index_repo_changed(const db_repo *repo) {
  char dir[4200], sha[41];
  db_repo_dir(repo->uid, dir, sizeof dir);
  repo_handle *h = NULL;
  int rc = repo_open(&h, dir);
  if (rc) return rc;
  repo_commit_info ci;
  int64_t when = db_now_ms();
  rc = repo_resolve(h, "refs/heads/main", sha, NULL);
  if (rc == HUB_EREVISION) {
    sha[0] = 0; /* the default branch was deleted by a push */
    rc = 0;
  } else if (!rc && repo_commit_info_get(h, sha, &ci) == 0) {
    when = ci.date * 1000;
    repo_commit_info_dispose(&ci);
  }
  repo_free(h);
  return rc ? rc : db_repo_set_head(repo->id, sha, when);
}
