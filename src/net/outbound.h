/* Outbound HTTP requests (webhook deliveries, upstream hubs) through libcurl, safe by
 * default (docs/architecture.md, "Outbound requests").
 *
 * - Targets: every address a name resolves to is checked when the socket is opened (so a
 *   DNS answer cannot swap in a private address after a check): loopback, private
 *   (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), link-local (169.254/16, fe80::/10,
 *   which holds cloud metadata services), site-local fec0::/10, unspecified, multicast,
 *   IPv4-mapped/-compatible/-translated forms of those, and prefixes that reach an
 *   embedded IPv4 (6to4 2002::/16, NAT64 64:ff9b::/32, Teredo 2001::/32) or nowhere
 *   (100::/64) are refused unless opts.allow_private. Only http and https.
 * - Redirects are never followed: a 3xx is returned to the caller as is, who decides.
 * - Reads are bounded: a buffered response keeps at most opts.max_body bytes and reports
 *   truncation; a streamed response goes to the caller's sink, which may stop it.
 * - Every transfer has a connect timeout, and either a total timeout or a low-speed abort.
 * Thread-safe; one easy handle per call (no connection reuse across calls). */
#ifndef HUB_NET_OUTBOUND_H
#define HUB_NET_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"

typedef struct {
  int allow_private;       /* permit loopback / private / link-local targets */
  long connect_timeout_ms; /* 0: 5,000 */
  long timeout_ms;         /* whole transfer; 0: no total limit (low-speed abort only) */
  long low_speed_time_s;   /* abort when under 1 byte/s for this long; 0: 30 */
  size_t max_body;         /* buffered responses: bytes kept (0: 1 MiB); the rest is dropped */
} outbound_opts;

/* Streamed body: return 0 to go on, non-zero to stop the transfer (outbound_perform then
 * returns HUB_EUPSTREAM with "stopped by the receiver" unless the sink set an error). */
typedef int (*outbound_sink)(void *ctx, const char *data, size_t len);
/* One response header ("Name", "value" without CR/LF), before any body byte. The status
 * line is not passed. Return non-zero to stop the transfer. */
typedef int (*outbound_header_cb)(void *ctx, long status, const char *name, const char *value);

typedef struct {
  const char *method;         /* NULL: GET (HEAD: no body is read) */
  const char *url;            /* http:// or https:// */
  const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
  const void *body;           /* request body, may be NULL */
  size_t body_len;
  outbound_sink sink; /* NULL: the body is buffered into the response */
  void *sink_ctx;
  outbound_header_cb on_header; /* may be NULL */
  void *header_ctx;
} outbound_request;

typedef struct {
  long status;       /* HTTP status; 0 if no response arrived */
  hub_buf body;      /* buffered body (sink == NULL), NUL-terminated, at most max_body */
  int truncated;     /* the buffered body was longer than max_body */
  uint64_t bytes;    /* body bytes received in all (buffered or streamed) */
  double seconds;    /* total transfer time */
  char *location;    /* Location header of a 3xx (not followed), or NULL */
  char *retry_after; /* Retry-After header, or NULL */
} outbound_response;

/* Perform one request. 0 when a response arrived, whatever its status (the caller judges
 * 4xx/5xx). HUB_EFORBIDDEN when the target address is refused, HUB_EINVALID for a bad URL or
 * scheme, HUB_EUPSTREAM for DNS, connect, TLS, timeout or a cut transfer; the message says
 * which. `resp` is always initialised; release it with outbound_response_free. */
int outbound_perform(const outbound_opts *opts, const outbound_request *req,
                     outbound_response *resp);
void outbound_response_free(outbound_response *resp);

/* 1 if the address is loopback, private, link-local, unspecified or multicast (the ranges
 * listed above), 0 if it is a public unicast address. */
int outbound_addr_is_private(const struct sockaddr *sa);

#endif
