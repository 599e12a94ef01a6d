/* Which in-repo paths a commit may write. */
#include "repo/repo_internal.h"

#include <string.h>
#include <strings.h>

#include "util/error.h"
#include "util/limits.h"

int repo_path_valid(const char *path) {
  const char *seg, *end;
  size_t len;

  if (!path || !*path) return hub_error_set(HUB_EINVALID, "Path must not be empty");
  len = strlen(path);
  if (len > HUB_MAX_PATH)
    return hub_error_set(HUB_EINVALID, "Path is longer than %d bytes", HUB_MAX_PATH);
  if (path[0] == '/') return hub_error_set(HUB_EINVALID, "Path must be relative: '%s'", path);
  for (seg = path; seg <= path + len; seg = end + 1) {
    size_t n;
    const char *p;
    end = strchr(seg, '/');
    if (!end) end = path + len;
    n = (size_t)(end - seg);
    if (n == 0) return hub_error_set(HUB_EINVALID, "Path has an empty segment: '%s'", path);
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
      return hub_error_set(HUB_EINVALID, "Path must not contain '.' or '..': '%s'", path);
    if (n == 4 && !strncasecmp(seg, ".git", 4))
      return hub_error_set(HUB_EINVALID, "Path must not be inside '.git': '%s'", path);
    for (p = seg; p < end; p++) {
      unsigned char c = (unsigned char)*p;
      if (c == '\\' || c < 0x20 || c == 0x7f)
        return hub_error_set(HUB_EINVALID, "Path contains a forbidden character: '%s'", path);
    }
  }
  return 0;
}
