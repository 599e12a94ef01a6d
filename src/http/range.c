#include "http/range.h"

#include <assert.h>
#include <stddef.h>

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Parse 1+ digits at *p, saturating at INT64_MAX. 0 if there is no digit. */
static int parse_num(const char **p, int64_t *out) {
  const char *s = *p;
  int64_t v = 0;
  if (*s < '0' || *s > '9') return 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    int d = *s - '0';
    v = v > (INT64_MAX - d) / 10 ? INT64_MAX : v * 10 + d;
  }
  *p = s;
  *out = v;
  return 1;
}

static int lower(char c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int range_parse(const char *hdr, int64_t total, int64_t *out_start, int64_t *out_end_inclusive) {
  const char *p = hdr;
  int64_t first = -1, last = -1, suffix = -1;
  assert(total >= 0);
  if (!p) return RANGE_IGNORE;
  while (is_ows(*p))
    p++;
  for (const char *u = "bytes"; *u; u++, p++)
    if (lower(*p) != *u) return RANGE_IGNORE;
  if (*p++ != '=') return RANGE_IGNORE;
  while (is_ows(*p))
    p++;
  if (*p == '-') {
    p++;
    if (!parse_num(&p, &suffix)) return RANGE_IGNORE;
  } else {
    if (!parse_num(&p, &first) || *p++ != '-') return RANGE_IGNORE;
    if (*p >= '0' && *p <= '9') {
      parse_num(&p, &last);
      if (last < first) return RANGE_IGNORE; /* invalid per RFC 7233 §2.1 */
    }
  }
  while (is_ows(*p))
    p++;
  if (*p) return RANGE_IGNORE; /* trailing garbage or a second range */

  if (suffix >= 0) {
    if (suffix == 0 || total == 0)
      return hub_error_set(HUB_ERANGE, "range not satisfiable: suffix of %lld bytes of %lld",
                           (long long)suffix, (long long)total);
    *out_start = suffix >= total ? 0 : total - suffix;
    *out_end_inclusive = total - 1;
    return 0;
  }
  if (first >= total)
    return hub_error_set(HUB_ERANGE, "range not satisfiable: starts at %lld of %lld bytes",
                         (long long)first, (long long)total);
  *out_start = first;
  *out_end_inclusive = (last < 0 || last >= total) ? total - 1 : last;
  return 0;
}
