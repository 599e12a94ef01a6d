/* libFuzzer: repo path validation. Checks the length and NUL-terminated variants agree, the
 * documented rules hold for every accepted path, and path_normalize_folder is consistent. */
#include "util/error.h"
#include "util/path.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  const char *p = (const char *)data;
  int ok = path_valid_n(p, size);
  if (ok != (path_check_n(p, size) == 0)) abort();
  char *s = malloc(size + 2);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  if (memchr(data, 0, size)) {
    if (ok) abort();
  } else if (ok != path_valid(s)) {
    abort();
  }
  if (ok) {
    if (s[0] == '/' || strstr(s, "//") || s[size - 1] == '/' || strchr(s, '\\')) abort();
    char *save = NULL, *dup = strdup(s);
    for (char *seg = strtok_r(dup, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
      if (!strcmp(seg, ".") || !strcmp(seg, "..") || !strcasecmp(seg, ".git")) abort();
    free(dup);
    for (size_t i = 0; i < size; i++)
      if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) abort();
    /* a valid path plus '/' normalizes back to itself */
    s[size] = '/';
    s[size + 1] = 0;
    if (path_normalize_folder(s) != 0 || strlen(s) != size) abort();
  }
  char q[32];
  path_quote(q, sizeof q, p, size);
  if (strlen(q) >= sizeof q) abort();
  free(s);
  return 0;
}
