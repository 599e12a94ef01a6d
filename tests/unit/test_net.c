/* net/outbound: address classification, refusal of private targets, no redirects followed,
 * bounded buffered reads — against a one-shot HTTP server on loopback. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/outbound.h"
#include "util/error.h"

static int is_private(const char *ip) {
  struct sockaddr_storage ss = {0};
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  }
  return outbound_addr_is_private((struct sockaddr *)&ss);
}

static void test_classify(void **state) {
  (void)state;
  const char *priv[] = {"127.0.0.1",
                        "127.9.9.9",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "0.0.0.0",
                        "100.64.0.1",
                        "224.0.0.1",
                        "255.255.255.255",
                        "::1",
                        "::",
                        "fe80::1",
                        "fd00::1",
                        "fc00::2",
                        "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1",
                        "ff02::1",
                        "2002:7f00:1::1"};
  const char *pub[] = {"8.8.8.8",       "1.1.1.1",     "172.32.0.1",
                       "192.169.0.1",   "100.128.0.1", "2001:4860:4860::8888",
                       "::ffff:8.8.8.8"};
  for (size_t i = 0; i < sizeof priv / sizeof *priv; i++) {
    if (!is_private(priv[i])) fail_msg("%s should be private", priv[i]);
  }
  for (size_t i = 0; i < sizeof pub / sizeof *pub; i++) {
    if (is_private(pub[i])) fail_msg("%s should be public", pub[i]);
  }
}

typedef struct {
  int fd;
  const char *reply;
  size_t reply_len;
} one_shot;

static void *serve_once(void *arg) {
  one_shot *s = arg;
  int c = accept(s->fd, NULL, NULL);
  if (c < 0) return NULL;
  char req[4096];
  (void)!read(c, req, sizeof req);
  size_t off = 0;
  while (off < s->reply_len) {
    ssize_t w = write(c, s->reply + off, s->reply_len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  close(c);
  return NULL;
}

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

/* IPv6 forms that embed or reach an IPv4 or internal address by other prefixes. */
static void test_classify_embedded(void **state) {
  (void)state;
  const char *priv[] = {
      "::ffff:0:127.0.0.1",                   /* IPv4-translated (SIIT, RFC 2765) */
      "::ffff:0:10.0.0.1",                    /* IPv4-translated */
      "::127.0.0.1",                          /* IPv4-compatible (deprecated) */
      "64:ff9b::a9fe:a9fe",                   /* NAT64 well-known prefix to 169.254.169.254 */
      "64:ff9b:1::7f00:1",                    /* NAT64 local-use prefix */
      "fec0::1",                              /* site-local (deprecated, still routed) */
      "2001:0:4136:e378:8000:63bf:3fff:fdd2", /* Teredo: tunnels to an embedded IPv4 */
      "100::1",                               /* discard-only */
  };
  for (size_t i = 0; i < sizeof priv / sizeof *priv; i++) {
    if (!is_private(priv[i])) fail_msg("%s should be private", priv[i]);
  }
  if (is_private("2001:db9::1")) fail_msg("2001:db9::1 should be public");
}

static void test_loopback_refused(void **state) {
  (void)state;
  int port;
  int fd = listen_loopback(&port);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
  outbound_request req = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
  outbound_response resp;
  int rc = outbound_perform(NULL, &req, &resp);
  assert_int_equal(rc, HUB_EFORBIDDEN);
  assert_non_null(strstr(hub_error_msg(), "127.0.0.1"));
  assert_int_equal(resp.status, 0);
  outbound_response_free(&resp);
  /* localhost by name too: the check is on the resolved address */
  snprintf(url, sizeof url, "http://localhost:%d/hook", port);
  assert_int_equal(outbound_perform(NULL, &req, &resp), HUB_EFORBIDDEN);
  outbound_response_free(&resp);
  req.url = "file:///etc/passwd";
  assert_int_equal(outbound_perform(NULL, &req, &resp), HUB_EINVALID);
  outbound_response_free(&resp);
  close(fd);
}

static void test_redirect_not_followed(void **state) {
  (void)state;
  int port;
  int fd = listen_loopback(&port);
  static const char reply[] = "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
  one_shot s = {fd, reply, sizeof reply - 1};
  pthread_t t;
  pthread_create(&t, NULL, serve_once, &s);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  outbound_opts o = {.allow_private = 1};
  outbound_request req = {.url = url};
  outbound_response resp;
  assert_int_equal(outbound_perform(&o, &req, &resp), 0);
  assert_int_equal(resp.status, 302);
  assert_string_equal(resp.location, "http://169.254.169.254/");
  outbound_response_free(&resp);
  pthread_join(t, NULL);
  close(fd);
}

static void test_bounded_read(void **state) {
  (void)state;
  int port;
  int fd = listen_loopback(&port);
  size_t body = 256 * 1024;
  char *reply = malloc(body + 128);
  int h = snprintf(reply, 128, "HTTP/1.1 500 Oops\r\nRetry-After: 7\r\nContent-Length: %zu\r\n\r\n",
                   body);
  memset(reply + h, 'x', body);
  one_shot s = {fd, reply, (size_t)h + body};
  pthread_t t;
  pthread_create(&t, NULL, serve_once, &s);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  outbound_opts o = {.allow_private = 1, .max_body = 1000, .timeout_ms = 5000};
  outbound_request req = {.url = url};
  outbound_response resp;
  assert_int_equal(outbound_perform(&o, &req, &resp), 0);
  assert_int_equal(resp.status, 500);
  assert_int_equal(resp.body.len, 1000);
  assert_true(resp.truncated);
  assert_string_equal(resp.retry_after, "7");
  outbound_response_free(&resp);
  pthread_join(t, NULL);
  free(reply);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),         cmocka_unit_test(test_classify_embedded),
      cmocka_unit_test(test_loopback_refused), cmocka_unit_test(test_redirect_not_followed),
      cmocka_unit_test(test_bounded_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
