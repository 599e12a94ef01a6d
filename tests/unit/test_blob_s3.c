/* The "s3" blob backend against a real S3 API server on loopback: moto_server (the machine
 * image provides it; see docs/blob.md), started and stopped by this test. */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blob/backend.h"
#include "blob/blob.h"
#include "util/buf.h"
#include "util/error.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    int rc_ = (x);                                                                                 \
    if (rc_) fail_msg("%s = %d: %s", #x, rc_, hub_error_msg());                                    \
  } while (0)
#define HELLO_OID "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define OTHER_OID "00f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

static pid_t g_moto;
static char g_endpoint[64];

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static size_t sink(char *d, size_t s, size_t n, void *c) {
  (void)d, (void)c;
  return s * n;
}

static long raw(const char *method, const char *path) {
  char url[256];
  long status = 0;
  snprintf(url, sizeof url, "%s%s", g_endpoint, path);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  if (!strcmp(method, "HEAD"))
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
  curl_easy_setopt(c, CURLOPT_USERPWD, "testing:testing");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return status;
}

static size_t buf_sink(char *d, size_t s, size_t n, void *c) {
  hub_buf_put(c, d, s * n);
  return s * n;
}

static int start_moto(void **state) {
  (void)state;
  int port = free_port();
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  snprintf(g_endpoint, sizeof g_endpoint, "http://127.0.0.1:%d", port);
  g_moto = fork();
  if (g_moto == 0) {
    int null = open("/dev/null", 1);
    dup2(null, 1), dup2(null, 2);
    execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", ps, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 300; i++) { /* up to 30 s */
    if (raw("GET", "/") == 200) break;
    int st;
    if (waitpid(g_moto, &st, WNOHANG) == g_moto) fail_msg("moto_server did not start");
    usleep(100000);
  }
  setenv("MODELHUB_S3_ENDPOINT", g_endpoint, 1);
  setenv("MODELHUB_S3_PATH_STYLE", "1", 1);
  setenv("AWS_ACCESS_KEY_ID", "testing", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
  setenv("AWS_REGION", "us-east-1", 1);
  assert_int_equal(raw("PUT", "/bucket1"), 200);
  return 0;
}

static int stop_moto(void **state) {
  (void)state;
  if (g_moto > 0) kill(g_moto, SIGTERM), waitpid(g_moto, NULL, 0);
  return 0;
}

static void sha_hex(const void *d, size_t n, char out[65]) {
  unsigned char md[32];
  SHA256(d, n, md);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

static void read_all(blob_store *s, const char *oid, unsigned char *out, size_t len) {
  blob_stream *st;
  int64_t size;
  assert_int_equal(blob_open_stream(s, oid, &st, &size), 0);
  assert_int_equal(size, (int64_t)len);
  size_t got = 0, n;
  do {
    assert_int_equal(blob_stream_read(st, out + got, len - got < 65536 ? len - got + 1 : 65536, &n),
                     0);
    got += n;
    assert_true(got <= len);
  } while (n);
  blob_stream_close(st);
  assert_int_equal(got, len);
}

static void test_small_and_dedup(void **state) {
  (void)state;
  blob_store *s;
  assert_int_equal(blob_store_open(&s, "s3", "s3://bucket1/pfx/a"), 0);
  assert_string_equal(blob_store_kind(s), "s3");
  int64_t size;
  assert_int_equal(blob_stat(s, HELLO_OID, &size), HUB_ENOTFOUND);
  for (int i = 0; i < 2; i++) { /* the second write of the same bytes is a no-op success */
    blob_writer *w;
    char oid[65];
    assert_int_equal(blob_writer_open(s, &w), 0);
    assert_int_equal(blob_writer_write(w, "hello", 5), 0);
    CHECK(blob_writer_commit(w, HELLO_OID, 5, oid));
    assert_string_equal(oid, HELLO_OID);
  }
  assert_int_equal(blob_stat(s, HELLO_OID, &size), 0);
  assert_int_equal(size, 5);
  unsigned char back[5];
  read_all(s, HELLO_OID, back, 5);
  assert_memory_equal(back, "hello", 5);
  /* the key layout is the fs one, below the prefix */
  assert_int_equal(raw("HEAD", "/bucket1/pfx/a/blobs/sha256/2c/f2/" HELLO_OID), 200);
  /* a mismatch publishes nothing */
  blob_writer *w;
  assert_int_equal(blob_writer_open(s, &w), 0);
  assert_int_equal(blob_writer_write(w, "hellO", 5), 0);
  char oid[65];
  assert_int_equal(blob_writer_commit(w, OTHER_OID, 5, oid), HUB_EINVALID);
  assert_int_equal(blob_stat(s, OTHER_OID, &size), HUB_ENOTFOUND);
  assert_int_equal(blob_delete(s, HELLO_OID), 0);
  assert_int_equal(blob_delete(s, HELLO_OID), HUB_ENOTFOUND);
  blob_store_free(s);
}

static void test_large_multipart(void **state) {
  (void)state;
  blob_store *s;
  assert_int_equal(blob_store_open(&s, "s3", "s3://bucket1/big"), 0);
  size_t len = (size_t)19 << 20; /* three parts of 8 MiB, the last one short */
  unsigned char *data = malloc(len);
  for (size_t i = 0; i < len; i++)
    data[i] = (unsigned char)(i * 31 + (i >> 13));
  char want[65], oid[65];
  sha_hex(data, len, want);
  blob_writer *w;
  assert_int_equal(blob_writer_open(s, &w), 0);
  for (size_t off = 0; off < len;) {
    size_t n = off % 2 ? 1000003 : 77777;
    if (n > len - off) n = len - off;
    assert_int_equal(blob_writer_write(w, data + off, n), 0);
    off += n;
  }
  assert_int_equal(blob_writer_commit(w, want, (int64_t)len, oid), 0);
  unsigned char *back = malloc(len);
  read_all(s, want, back, len);
  assert_memory_equal(back, data, len);
  /* an aborted large writer leaves no object and no upload */
  assert_int_equal(blob_writer_open(s, &w), 0);
  assert_int_equal(blob_writer_write(w, data, len), 0);
  blob_writer_abort(w);
  int removed = -1;
  assert_int_equal(blob_store_sweep_tmp(s, -10, &removed), 0);
  assert_int_equal(removed, 0);
  /* a crashed writer's upload is reclaimed by the sweep */
  assert_int_equal(blob_writer_open(s, &w), 0);
  assert_int_equal(blob_writer_write(w, data, len), 0);
  assert_int_equal(blob_store_sweep_tmp(s, -10, &removed), 0);
  assert_int_equal(removed, 1);
  blob_writer_abort(w); /* its upload is already gone: harmless */
  free(back);
  free(data);
  blob_store_free(s);
}

static void put_part(blob_store *s, unsigned n, const char *data) {
  blob_writer *w;
  char etag[65];
  assert_int_equal(blob_parts_writer_open(s, HELLO_OID, n, &w), 0);
  assert_int_equal(blob_writer_write(w, data, strlen(data)), 0);
  assert_int_equal(blob_parts_writer_commit(w, etag), 0);
}

static void test_parts(void **state) {
  (void)state;
  blob_store *s;
  assert_int_equal(blob_store_open(&s, "s3", "s3://bucket1"), 0);
  put_part(s, 1, "hel");
  put_part(s, 2, "xx"); /* replaced below */
  char oid[65];
  /* a missing part: the parts stay */
  assert_int_equal(blob_parts_assemble(s, HELLO_OID, 3, 5, oid), HUB_ENOTFOUND);
  put_part(s, 2, "lo");
  assert_int_equal(blob_parts_assemble(s, HELLO_OID, 2, 5, oid), 0);
  assert_string_equal(oid, HELLO_OID);
  unsigned char back[5];
  read_all(s, HELLO_OID, back, 5);
  assert_memory_equal(back, "hello", 5);
  assert_int_equal(raw("HEAD", "/bucket1/parts/" HELLO_OID "/1"), 404); /* assembled: gone */
  put_part(s, 1, "junk");
  assert_int_equal(raw("HEAD", "/bucket1/parts/" HELLO_OID "/1"), 200);
  assert_int_equal(blob_parts_remove(s, HELLO_OID), 0);
  assert_int_equal(raw("HEAD", "/bucket1/parts/" HELLO_OID "/1"), 404);
  blob_store_free(s);
}

static void test_store_down(void **state) {
  (void)state;
  blob_store *s;
  char ep[64];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", free_port());
  setenv("MODELHUB_S3_ENDPOINT", ep, 1);
  assert_int_equal(blob_store_open(&s, "s3", "s3://bucket1"), 0);
  setenv("MODELHUB_S3_ENDPOINT", g_endpoint, 1);
  int64_t size;
  assert_int_equal(blob_stat(s, HELLO_OID, &size), HUB_EUNAVAILABLE);
  assert_non_null(strstr(hub_error_msg(), "unreachable"));
  assert_int_equal(blob_store_check(s), HUB_EUNAVAILABLE); /* what /healthz reports */
  blob_store_free(s);
  assert_int_equal(blob_store_open(&s, "s3", "/tmp"), HUB_EINVALID);
  assert_int_equal(blob_store_open(&s, "s3", "s3://Bad_Bucket"), HUB_EINVALID);
}

/* GET `url` without credentials (as a client following a redirect would), with an
 * optional Range header; the body into out. */
static long plain_get(const char *url, const char *range, hub_buf *out) {
  long status = 0;
  struct curl_slist *h = NULL;
  char hdr[96];
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  if (range) {
    snprintf(hdr, sizeof hdr, "Range: %s", range);
    h = curl_slist_append(h, hdr);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

static void test_presign(void **state) {
  (void)state;
  /* AWS's published example of a presigned GET (S3 API reference, "Authenticating
   * Requests: Using Query Parameters"): the signature must match to the character. */
  setenv("MODELHUB_S3_ENDPOINT", "https://s3.amazonaws.com", 1);
  setenv("MODELHUB_S3_PATH_STYLE", "0", 1);
  setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
  blob_backend *be;
  CHECK(blob_s3_backend_new(&be, "s3://examplebucket"));
  char *url;
  CHECK(blob_s3_presign_key(be, "test.txt", 86400, NULL, 1369353600, &url));
  assert_string_equal(
      url, "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  free(url);
  assert_int_equal(blob_s3_presign_key(be, "test.txt", 0, NULL, 1369353600, &url), HUB_EINVALID);
  be->free(be);
  setenv("MODELHUB_S3_ENDPOINT", g_endpoint, 1);
  setenv("MODELHUB_S3_PATH_STYLE", "1", 1);
  setenv("AWS_ACCESS_KEY_ID", "testing", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);

  /* Against the server: the URL reads the object without credentials, whole or the
   * signed range; with redirects off, or on a disk store, there is no URL. */
  blob_store *s;
  blob_writer *w;
  CHECK(blob_store_open(&s, "s3", "s3://bucket1/pre"));
  CHECK(blob_writer_open(s, &w));
  CHECK(blob_writer_write(w, "hello", 5));
  CHECK(blob_writer_commit(w, HELLO_OID, 5, NULL));
  assert_int_equal(blob_presign_get(s, HELLO_OID, NULL, &url), HUB_EUNSUPPORTED);
  blob_set_redirect(300);
  CHECK(blob_presign_get(s, HELLO_OID, NULL, &url));
  assert_non_null(strstr(url, "/bucket1/pre/blobs/sha256/2c/f2/" HELLO_OID "?"));
  assert_non_null(strstr(url, "X-Amz-Expires=300&"));
  hub_buf b = HUB_BUF_INIT;
  assert_int_equal(plain_get(url, NULL, &b), 200);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.ptr, "hello", 5);
  hub_buf_dispose(&b);
  free(url);
  CHECK(blob_presign_get(s, HELLO_OID, "bytes=1-3", &url));
  assert_non_null(strstr(url, "X-Amz-SignedHeaders=host%3Brange&"));
  assert_int_equal(plain_get(url, "bytes=1-3", &b), 206);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.ptr, "ell", 3);
  hub_buf_dispose(&b);
  free(url);
  CHECK(blob_store_check(s));
  blob_store_free(s);
  char dir[] = "/tmp/blob-presign-XXXXXX";
  assert_non_null(mkdtemp(dir));
  CHECK(blob_store_open(&s, "fs", dir));
  assert_int_equal(blob_presign_get(s, HELLO_OID, NULL, &url), HUB_EUNSUPPORTED);
  CHECK(blob_store_check(s));
  blob_store_free(s);
  blob_set_redirect(0);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_and_dedup), cmocka_unit_test(test_large_multipart),
      cmocka_unit_test(test_parts),           cmocka_unit_test(test_store_down),
      cmocka_unit_test(test_presign),
  };
  return cmocka_run_group_tests(tests, start_moto, stop_moto);
}
