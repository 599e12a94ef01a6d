/* The client address behind trusted load balancers (MODELHUB_TRUSTED_PROXIES): a parser of
 * the untrusted X-Forwarded-For header, kept apart from the server so it can be fuzzed
 * (tests/fuzz/fuzz_forwarded.c). */
#ifndef HUB_HTTP_FORWARDED_H
#define HUB_HTTP_FORWARDED_H

#include <stddef.h>

/* `ip` (its first il bytes) is one of the comma- or space-separated addresses in `list`; an
 * IPv4 address mapped into IPv6 ("::ffff:a.b.c.d") matches its IPv4 form. */
int http_forwarded_listed(const char *list, const char *ip, size_t il);

/* When `peer` is one of the `trusted` addresses and `xff` is given: the client is the last
 * hop of xff that is not trusted (each proxy appends the address it was called from, so what
 * a client wrote itself is further left and never reached), or the leftmost when all are;
 * a hop that is not an IP address stops the walk at the trusted hop after it. The address
 * goes into out (cap bytes, NUL-terminated); returns 1 then, 0 when out is left alone (the
 * peer is the client). */
int http_forwarded_client(const char *trusted, const char *peer, const char *xff, char *out,
                          size_t cap);
#endif
