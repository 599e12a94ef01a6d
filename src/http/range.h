/* HTTP Range request header (RFC 7233 §2.1, §3.1), single byte range only.
 *
 * Accepted forms (unit "bytes", case-insensitive; optional spaces/tabs around the value):
 *   bytes=a-b   a <= b; b is clamped to total-1
 *   bytes=a-    from a to the end
 *   bytes=-n    the last n bytes (n > total means the whole file)
 * Numbers are plain decimal digits and saturate at INT64_MAX, so huge values behave like
 * "very large" rather than wrapping. */
#ifndef HUB_HTTP_RANGE_H
#define HUB_HTTP_RANGE_H

#include <stdint.h>

#include "util/error.h"

/* Returned when the header must be ignored and the whole body sent with 200: header absent
 * (NULL), syntactically invalid, another unit, or several ranges. RFC 7233 §3.1 lets a
 * server ignore any Range header; multi-range (multipart/byteranges) is not supported. */
#define RANGE_IGNORE HUB_ENOTFOUND

/* Parse `hdr` against a body of `total` bytes (>= 0).
 * 0: satisfiable; serve [*out_start, *out_end_inclusive] with 206.
 * RANGE_IGNORE: see above; outputs untouched, no error message set.
 * HUB_ERANGE: syntactically valid but unsatisfiable (first byte >= total, suffix of 0, or any
 * range of an empty body) → 416 whose Content-Range has "*" for the range and the total.
 * Callers special-case empty files (hf-api.md §4.3: JS sends bytes=0-0 and needs a 200 with
 * an empty body and that Content-Range for total 0). */
int range_parse(const char *hdr, int64_t total, int64_t *out_start, int64_t *out_end_inclusive);

#endif
