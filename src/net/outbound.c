/* Outbound HTTP through libcurl: address checks at socket-open time, no redirects, bounded
 * reads (outbound.h). */
#include "net/outbound.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int v4_is_private(uint32_t a) {
  uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
  if (b0 == 0 || b0 == 10 || b0 == 127) return 1;               /* this net, private, loopback */
  if (b0 == 169 && b1 == 254) return 1;                         /* link-local, cloud metadata */
  if (b0 == 172 && (b1 & 0xf0) == 16) return 1;                 /* 172.16/12 */
  if (b0 == 192 && b1 == 168) return 1;                         /* 192.168/16 */
  if (b0 == 100 && (b1 & 0xc0) == 64) return 1;                 /* carrier-grade NAT 100.64/10 */
  if (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) return 1; /* 192.0.0/24 */
  if (b0 == 198 && (b1 & 0xfe) == 18) return 1;                 /* benchmarking 198.18/15 */
  if (b0 >= 224) return 1;                                      /* multicast, reserved, broadcast */
  return 0;
}

int outbound_addr_is_private(const struct sockaddr *sa) {
  if (!sa) return 1;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return v4_is_private(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    const uint8_t *b = a->s6_addr;
    if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a)) return 1;
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
      uint32_t v4 =
          ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
      return v4_is_private(v4);
    }
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    if (!memcmp(b, translated, 12)) { /* IPv4-translated ::ffff:0:a.b.c.d (SIIT) */
      uint32_t v4 =
          ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
      return v4_is_private(v4);
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return 1;                  /* site-local fec0::/10 */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) return 1; /* Teredo */
    if (b[0] == 0x01 && !b[1] && !b[2] && !b[3] && !b[4] && !b[5] && !b[6] && !b[7])
      return 1;                                          /* discard-only 100::/64 */
    if ((b[0] & 0xfe) == 0xfc) return 1;                 /* unique local fc00::/7 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return 1; /* link-local fe80::/10 */
    if (b[0] == 0xff) return 1;                          /* multicast */
    if (b[0] == 0x20 && b[1] == 0x02) return 1;          /* 6to4 can embed any IPv4 address */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return 1; /* NAT64 */
    return 0;
  }
  return 1; /* anything else (unix sockets...) is not a public target */
}

typedef struct {
  const outbound_opts *opts;
  const outbound_request *req;
  outbound_response *resp;
  size_t max_body;
  int refused; /* a target address was refused */
  char refused_addr[INET6_ADDRSTRLEN];
  int sink_stopped; /* the sink or header callback asked to stop */
  int over_limit;   /* the buffered body hit max_body */
} xfer;

static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr) {
  xfer *x = ctx;
  (void)purpose;
  if (!x->opts->allow_private && outbound_addr_is_private(&addr->addr)) {
    x->refused = 1;
    const void *src = addr->family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr;
    if (!inet_ntop(addr->family, src, x->refused_addr, sizeof x->refused_addr))
      strcpy(x->refused_addr, "?");
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype, addr->protocol);
}

static char *dup_trimmed(const char *s, size_t n) {
  while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  while (n && (*s == ' ' || *s == '\t'))
    s++, n--;
  char *o = malloc(n + 1);
  if (!o) return NULL;
  memcpy(o, s, n);
  o[n] = 0;
  return o;
}

static size_t on_header_line(char *data, size_t size, size_t nmemb, void *ctx) {
  xfer *x = ctx;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) { /* a status line (also after 100) */
    const char *sp = memchr(data, ' ', n);
    x->resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    free(x->resp->location), x->resp->location = NULL;
    free(x->resp->retry_after), x->resp->retry_after = NULL;
    return n;
  }
  const char *colon = memchr(data, ':', n);
  if (!colon) return n; /* the blank line ending the headers */
  size_t nl = (size_t)(colon - data);
  char *name = dup_trimmed(data, nl), *value = dup_trimmed(colon + 1, n - nl - 1);
  int stop = !name || !value;
  if (!stop) {
    if (strcasecmp(name, "Location") == 0 && !x->resp->location)
      x->resp->location = value, value = NULL;
    else if (strcasecmp(name, "Retry-After") == 0 && !x->resp->retry_after)
      x->resp->retry_after = value, value = NULL;
  }
  if (!stop && x->req->on_header && x->resp->status / 100 != 1) {
    const char *v = value                               ? value
                    : strcasecmp(name, "Location") == 0 ? x->resp->location
                                                        : x->resp->retry_after;
    stop = x->req->on_header(x->req->header_ctx, x->resp->status, name, v) != 0;
    if (stop) x->sink_stopped = 1;
  }
  free(name), free(value);
  return stop ? 0 : n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
  xfer *x = ctx;
  size_t n = size * nmemb;
  x->resp->bytes += n;
  if (x->req->sink) {
    if (x->req->sink(x->req->sink_ctx, data, n) != 0) {
      x->sink_stopped = 1;
      return 0;
    }
    return n;
  }
  size_t room = x->max_body - x->resp->body.len;
  if (n > room) {
    if (room) hub_buf_put(&x->resp->body, data, room);
    x->resp->truncated = 1;
    x->over_limit = 1;
    return 0; /* bounded read: stop the transfer, the status is known */
  }
  hub_buf_put(&x->resp->body, data, n);
  return n;
}

void outbound_response_free(outbound_response *resp) {
  if (!resp) return;
  hub_buf_dispose(&resp->body);
  free(resp->location);
  free(resp->retry_after);
  memset(resp, 0, sizeof *resp);
}

int outbound_perform(const outbound_opts *opts, const outbound_request *req,
                     outbound_response *resp) {
  static const outbound_opts defaults = {0};
  if (!opts) opts = &defaults;
  memset(resp, 0, sizeof *resp);
  hub_buf_init(&resp->body, 0);
  if (!req || !req->url) return hub_error_set(HUB_EINVALID, "outbound: no URL");
  if (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0)
    return hub_error_set(HUB_EINVALID, "outbound: only http and https URLs are allowed");
  pthread_once(&g_once, global_init);

  xfer x = {.opts = opts, .req = req, .resp = resp};
  x.max_body = opts->max_body ? opts->max_body : (size_t)1 << 20;
  CURL *c = curl_easy_init();
  if (!c) return hub_error_set(HUB_ERROR, "outbound: out of memory");
  struct curl_slist *hdrs = NULL;
  int rc = 0;
  for (const char *const *h = req->headers; h && *h; h++) {
    struct curl_slist *n = curl_slist_append(hdrs, *h);
    if (!n) {
      rc = hub_error_set(HUB_ERROR, "outbound: out of memory");
      goto out;
    }
    hdrs = n;
  }
  struct curl_slist *n = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
  if (!n) {
    rc = hub_error_set(HUB_ERROR, "outbound: out of memory");
    goto out;
  }
  hdrs = n;

  const char *method = req->method ? req->method : "GET";
  curl_easy_setopt(c, CURLOPT_URL, req->url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never an environment proxy */
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header_line);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  /* Streamed bodies are large (objects): bigger reads mean fewer syscalls and sink calls
   * (curl's default is 16 KiB). */
  if (req->sink) curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000L);
  if (opts->timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, opts->timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   opts->low_speed_time_s > 0 ? opts->low_speed_time_s : 30L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL); /* bytes as sent: hashes are checked */
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    if (req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    else if (strcmp(method, "GET") == 0 && req->body)
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "GET");
  }

  CURLcode cc = curl_easy_perform(c);
  double secs = 0;
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &secs);
  resp->seconds = secs;
  if (x.refused) {
    rc = hub_error_set(HUB_EFORBIDDEN,
                       "outbound: %s resolves to a private or loopback address (%s), which "
                       "this hub does not call",
                       req->url, x.refused_addr);
  } else if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && x.over_limit)) {
    rc = 0;
  } else if (x.sink_stopped) {
    rc = hub_error_code() ? hub_error_code()
                          : hub_error_set(HUB_EUPSTREAM, "outbound: stopped by the receiver");
  } else if (cc == CURLE_OPERATION_TIMEDOUT) {
    rc = hub_error_set(HUB_EUPSTREAM, "outbound: %s timed out", req->url);
  } else if (cc == CURLE_COULDNT_RESOLVE_HOST) {
    rc = hub_error_set(HUB_EUPSTREAM, "outbound: cannot resolve the host of %s", req->url);
  } else if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
    rc = hub_error_set(HUB_EINVALID, "outbound: bad URL %s: %s", req->url, curl_easy_strerror(cc));
  } else {
    rc = hub_error_set(HUB_EUPSTREAM, "outbound: %s: %s", req->url, curl_easy_strerror(cc));
  }
  if (rc == 0 && resp->body.failed)
    rc = hub_error_set(HUB_ERROR, "outbound: out of memory buffering the response");
out:
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return rc;
}
