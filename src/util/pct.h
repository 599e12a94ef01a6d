/* Percent-encoding of URL path segments (RFC 3986), as the router and repo/ need it.
 *
 * Decoding is for *path* segments: '+' stays '+' (never a space), "%00" and malformed
 * escapes ("%", "%4", "%zz") are rejected with HUB_EINVALID, so a decoded segment is
 * always a proper C string. */
#ifndef HUB_UTIL_PCT_H
#define HUB_UTIL_PCT_H

#include <stddef.h>

#include "util/buf.h"

/* Decode s[0..len) into a new NUL-terminated string; *out is owned by the caller. */
int hub_pct_decode_n(char **out, const char *s, size_t len);
/* Same, for a NUL-terminated s. */
int hub_pct_decode(char **out, const char *s);

/* Append s percent-encoded to b: unreserved characters (A-Z a-z 0-9 - . _ ~) are kept,
 * and '/' too when keep_slash; every other byte becomes %XX (uppercase hex). Returns 0
 * or -1 if the buffer has failed. */
int hub_pct_encode(hub_buf *b, const char *s, int keep_slash);

#endif
