/* The scan dispatcher. Placeholder until the scanners land: every file is reported with
 * level "safe" and no scanner applied, which the service must not present as a real scan
 * (it has no "scanners"). */
#include "scan/scan.h"

#include <string.h>

#include "util/error.h"

static const char *const LEVEL_NAMES[] = {"safe", "caution", "suspicious", "unsafe", "error"};

const char *scan_level_name(scan_level l) {
  return (l >= SCAN_SAFE && l <= SCAN_ERROR) ? LEVEL_NAMES[l] : "error";
}

int scan_level_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i <= SCAN_ERROR; i++)
    if (strcmp(name, LEVEL_NAMES[i]) == 0) return i;
  return -1;
}

scan_level scan_report_level(const json_t *report) {
  int l = scan_level_parse(json_string_value(json_object_get(report, "level")));
  return l < 0 ? SCAN_ERROR : (scan_level)l;
}

int scan_fd(const scan_config *cfg, int fd, uint64_t size, const char *path, json_t **out) {
  (void)cfg, (void)fd, (void)size, (void)path;
  *out = json_pack("{s:s, s:{}}", "level", "safe", "scanners");
  return *out ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}
