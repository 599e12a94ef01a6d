/* Which in-repo paths a commit may write: one rule for the whole hub (util/path.h). */
#include "repo/repo_internal.h"

#include <string.h>

#include "util/error.h"
#include "util/path.h"

int repo_path_valid(const char *path) {
  if (!path) return hub_error_set(HUB_EINVALID, "missing path");
  return path_check_n(path, strlen(path));
}
