/* The "s3" blob backend: objects in an S3-compatible bucket (backend.h, docs/blob.md).
 *
 * Root "s3://BUCKET[/PREFIX]"; keys mirror the fs layout under PREFIX:
 *   PREFIX/blobs/sha256/ab/cd/<oid>       published objects
 *   PREFIX/parts/<upload oid>/<n>          parts of a client's multipart upload
 * Requests are signed by libcurl's AWS SigV4 (CURLOPT_AWS_SIGV4). Endpoint, addressing and
 * credentials come from the environment (MODELHUB_S3_ENDPOINT, MODELHUB_S3_PATH_STYLE,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION).
 *
 * Nothing unverified is ever visible: a writer streams its bytes into an S3 multipart upload
 * (parts of S3_PART_SIZE as they fill), and only writer_commit — called by blob.c after the
 * sha256 matched — completes the upload under the object's key. Objects smaller than one
 * part are held in memory and PUT at commit. An aborted writer aborts its upload; uploads
 * left by a crashed node are aborted by sweep_tmp (ListMultipartUploads, by age).
 *
 * Failures to reach the store are HUB_EUNAVAILABLE (503): the hub keeps serving what does
 * not need the store, and recovers by itself when the store is back. */
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "blob/backend.h"
#include "util/buf.h"
#include "util/error.h"

#define S3_PART_SIZE ((size_t)8 << 20)      /* first 1,000 parts */
#define S3_PART_SIZE_BIG ((size_t)64 << 20) /* after that: objects up to ~580 GB */
#define S3_MAX_PARTS 10000
#define S3_MAX_ERROR_BODY 4096
#define S3_STREAM_BUF ((size_t)1 << 20)
#define S3_COPY_MAX ((uint64_t)5 << 30)  /* CopyObject limit */
#define S3_COPY_PART ((uint64_t)1 << 30) /* UploadPartCopy range size */

typedef struct {
  blob_backend base;
  char *bucket;
  char *prefix;   /* "" or "a/b/" (ends with '/') */
  char *endpoint; /* scheme://host[:port], no trailing slash */
  int path_style;
  char *sigv4;                            /* "aws:amz:<region>:s3" */
  char *userpwd;                          /* "<key>:<secret>" */
  char *token_hdr;                        /* "x-amz-security-token: ..." or NULL */
  char *key_id, *secret, *region, *token; /* for presigned URLs (token NULL: none) */
} s3_backend;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- requests ------------------------------------------------------------------------- */

typedef struct {
  long status;
  hub_buf body;   /* response body (bounded unless a sink is given) */
  char etag[128]; /* ETag response header */
  int64_t length; /* Content-Length response header, -1 if none */
} s3_resp;

typedef struct {
  const char *method;
  const char *key;   /* object key below the prefix (NULL: the bucket) */
  const char *query; /* without '?', may be NULL */
  const void *body;
  size_t body_len;
  const char *const *headers; /* extra "Name: value", NULL-terminated */
  size_t body_max;            /* response bytes kept (0: S3_MAX_ERROR_BODY) */
} s3_req;

static size_t on_resp_body(char *d, size_t sz, size_t n, void *ctx) {
  s3_resp *r = ctx;
  size_t len = sz * n;
  size_t room = r->body.max > r->body.len ? r->body.max - r->body.len : 0;
  hub_buf_put(&r->body, d, len < room ? len : room);
  return len;
}

static size_t on_resp_header(char *d, size_t sz, size_t n, void *ctx) {
  s3_resp *r = ctx;
  size_t len = sz * n;
  if (len > 5 && strncasecmp(d, "ETag:", 5) == 0) {
    const char *v = d + 5;
    size_t vl = len - 5;
    while (vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    if (vl < sizeof r->etag) memcpy(r->etag, v, vl), r->etag[vl] = 0;
  } else if (len > 15 && strncasecmp(d, "Content-Length:", 15) == 0) {
    r->length = strtoll(d + 15, NULL, 10);
  }
  return len;
}

/* The URL of `key` (below the prefix) or of the bucket (key NULL). Caller frees. */
static char *s3_url(const s3_backend *s, const char *key, const char *query) {
  hub_buf u = HUB_BUF_INIT;
  const char *hostpart = strstr(s->endpoint, "://");
  if (s->path_style)
    hub_buf_printf(&u, "%s/%s/", s->endpoint, s->bucket);
  else
    hub_buf_printf(&u, "%.*s%s.%s/", (int)(hostpart + 3 - s->endpoint), s->endpoint, s->bucket,
                   hostpart + 3);
  if (key) hub_buf_printf(&u, "%s%s", s->prefix, key);
  if (query && *query) hub_buf_printf(&u, "?%s", query);
  if (u.failed) {
    hub_buf_dispose(&u);
    return NULL;
  }
  return hub_buf_detach(&u);
}

static void setup_handle(const s3_backend *s, CURL *c, struct curl_slist **hdrs) {
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
  curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  *hdrs = curl_slist_append(*hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  *hdrs = curl_slist_append(*hdrs, "Expect:");
  if (s->token_hdr) *hdrs = curl_slist_append(*hdrs, s->token_hdr);
}

/* Map a transport failure or an S3 error status to a hub error. */
static int s3_fail(const s3_req *q, CURLcode cc, const s3_resp *r) {
  if (cc != CURLE_OK)
    return hub_error_set(HUB_EUNAVAILABLE, "object store unreachable (%s %s): %s", q->method,
                         q->key ? q->key : "/", curl_easy_strerror(cc));
  if (r->status == 404) return hub_error_set(HUB_ENOTFOUND, "object store: no such key");
  if (r->status == 503 || r->status == 500 || r->status == 502 || r->status == 504)
    return hub_error_set(HUB_EUNAVAILABLE, "object store answered %ld to %s", r->status, q->method);
  const char *code = r->body.ptr ? strstr(r->body.ptr, "<Code>") : NULL;
  return hub_error_set(HUB_ERROR, "object store answered %ld to %s %s%s%.64s", r->status, q->method,
                       q->key ? q->key : "/", code ? ": " : "", code ? code + 6 : "");
}

/* One request with a buffered response. 0 when a response arrived (any status). */
static int s3_do(const s3_backend *s, const s3_req *q, s3_resp *r, CURLcode *out_cc) {
  pthread_once(&g_curl_once, curl_init_once);
  memset(r, 0, sizeof *r);
  r->length = -1;
  hub_buf_init(&r->body, q->body_max ? q->body_max : S3_MAX_ERROR_BODY);
  char *url = s3_url(s, q->key, q->query);
  CURL *c = curl_easy_init();
  struct curl_slist *hdrs = NULL;
  if (!url || !c) {
    free(url);
    if (c) curl_easy_cleanup(c);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  setup_handle(s, c, &hdrs);
  for (const char *const *h = q->headers; h && *h; h++)
    hdrs = curl_slist_append(hdrs, *h);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_resp_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_resp_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if (!strcmp(q->method, "HEAD")) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (!strcmp(q->method, "GET")) {
    /* default */
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body || !strcmp(q->method, "PUT") || !strcmp(q->method, "POST")) {
      /* libcurl would label the body as a form, which some servers then parse away */
      hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    }
  }
  CURLcode cc = curl_easy_perform(c);
  if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  free(url);
  *out_cc = cc;
  return 0;
}

/* A request that must answer 2xx; the response is released unless `keep`. */
static int s3_call(const s3_backend *s, const s3_req *q, s3_resp *keep) {
  s3_resp r;
  CURLcode cc;
  int rc = s3_do(s, q, &r, &cc);
  /* S3 asks clients to retry 500/503 (InternalError, SlowDown): twice more, after 100 and
   * 400 ms. Bodies are in memory, so every request can be sent again. An unreachable store
   * is not retried (it fails fast, for /healthz and 503s). */
  for (int i = 0; i < 2 && !rc && cc == CURLE_OK && r.status >= 500 && r.status <= 504; i++) {
    hub_buf_dispose(&r.body);
    struct timespec ts = {0, (i ? 400 : 100) * 1000000L};
    nanosleep(&ts, NULL);
    rc = s3_do(s, q, &r, &cc);
  }
  if (!rc && (cc != CURLE_OK || r.status / 100 != 2)) rc = s3_fail(q, cc, &r);
  /* CompleteMultipartUpload may answer 200 with an error document. */
  if (!rc && r.body.ptr && strstr(r.body.ptr, "<Error>"))
    rc = hub_error_set(HUB_ERROR, "object store error on %s: %.200s", q->method, r.body.ptr);
  if (keep && !rc)
    *keep = r;
  else
    hub_buf_dispose(&r.body);
  return rc;
}

static void object_key(char out[96], const char *oid) {
  snprintf(out, 96, "blobs/sha256/%.2s/%.2s/%s", oid, oid + 2, oid);
}

static void part_key(char out[128], const char *upload_oid, unsigned n) {
  snprintf(out, 128, "parts/%s/%u", upload_oid, n);
}

/* The text between <tag> and </tag> at or after *from (advanced past it). Caller frees. */
static char *xml_take(const char **from, const char *tag) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *a = *from ? strstr(*from, open) : NULL;
  if (!a) return NULL;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (!b) return NULL;
  *from = b + strlen(close);
  return strndup(a, (size_t)(b - a));
}

/* ---- stat, remove ----------------------------------------------------------------------- */

static int key_stat(const s3_backend *s, const char *key, int64_t *out_size) {
  s3_req q = {.method = "HEAD", .key = key};
  s3_resp r;
  int rc = s3_call(s, &q, &r);
  if (rc) return rc == HUB_ENOTFOUND ? hub_error_set(HUB_ENOTFOUND, "no such object") : rc;
  if (out_size) *out_size = r.length;
  hub_buf_dispose(&r.body);
  return 0;
}

static int s3_stat(blob_backend *be, const char *oid, int64_t *out_size) {
  char key[96];
  object_key(key, oid);
  return key_stat((s3_backend *)be, key, out_size);
}

static int s3_remove(blob_backend *be, const char *oid) {
  char key[96];
  int rc;
  object_key(key, oid);
  if ((rc = key_stat((s3_backend *)be, key, NULL))) return rc; /* S3 DELETE is idempotent */
  s3_req q = {.method = "DELETE", .key = key};
  return s3_call((s3_backend *)be, &q, NULL);
}

/* ---- reading: one GET, pulled through a curl multi handle ------------------------------- */

typedef struct {
  struct blob_stream base;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *hdrs;
  char *url;
  unsigned char *buf;
  size_t len, off; /* buffered bytes [off, len) */
  int paused, done;
  CURLcode result;
  long status;
} s3_stream;

static size_t on_stream_body(char *d, size_t sz, size_t n, void *ctx) {
  s3_stream *st = ctx;
  size_t len = sz * n;
  if (st->off == st->len) st->off = st->len = 0;
  if (len > S3_STREAM_BUF - st->len) {
    st->paused = 1;
    return CURL_WRITEFUNC_PAUSE; /* read() drains the buffer, then unpauses */
  }
  memcpy(st->buf + st->len, d, len);
  st->len += len;
  return len;
}

static int pump(s3_stream *st) {
  while (st->off == st->len && !st->done) {
    int running = 0;
    if (st->paused) {
      st->paused = 0;
      curl_easy_pause(st->easy, CURLPAUSE_CONT);
    }
    if (curl_multi_perform(st->multi, &running) != CURLM_OK)
      return hub_error_set(HUB_EUNAVAILABLE, "object store read failed");
    if (st->off < st->len) break;
    if (!running) {
      CURLMsg *m;
      int left;
      st->done = 1;
      while ((m = curl_multi_info_read(st->multi, &left)))
        if (m->msg == CURLMSG_DONE) st->result = m->data.result;
      if (st->result != CURLE_OK)
        return hub_error_set(HUB_EUNAVAILABLE, "object store read cut: %s",
                             curl_easy_strerror(st->result));
      break;
    }
    if (!st->paused) curl_multi_poll(st->multi, NULL, 0, 1000, NULL);
  }
  return 0;
}

static int s3_stream_read(struct blob_stream *bs, void *out, size_t cap, size_t *out_n) {
  s3_stream *st = (s3_stream *)bs;
  int rc;
  *out_n = 0;
  if ((rc = pump(st))) return rc;
  size_t n = st->len - st->off;
  if (n > cap) n = cap;
  memcpy(out, st->buf + st->off, n);
  st->off += n;
  *out_n = n;
  return 0;
}

static void s3_stream_close(struct blob_stream *bs) {
  s3_stream *st = (s3_stream *)bs;
  if (st->multi && st->easy) curl_multi_remove_handle(st->multi, st->easy);
  if (st->easy) curl_easy_cleanup(st->easy);
  if (st->multi) curl_multi_cleanup(st->multi);
  curl_slist_free_all(st->hdrs);
  free(st->url);
  free(st->buf);
  free(st);
}

/* Open a GET of `key` (bytes [off, off + len) when len > 0) as a stream. */
static int key_open_stream(const s3_backend *s, const char *key, int64_t off, int64_t len,
                           struct blob_stream **out, int64_t *out_size) {
  int64_t size = -1;
  int rc;
  *out = NULL;
  /* The size first: the blob layer checks it, and a missing key is a clean ENOTFOUND. */
  if ((rc = key_stat(s, key, &size))) return rc;
  if (len > 0 && off + len > size)
    return hub_error_set(HUB_ERANGE, "range past the end of the object");
  s3_stream *st = calloc(1, sizeof *st);
  if (!st) return hub_error_set(HUB_ERROR, "out of memory");
  st->base.read = s3_stream_read;
  st->base.close = s3_stream_close;
  st->buf = malloc(S3_STREAM_BUF);
  st->url = s3_url(s, key, NULL);
  st->multi = curl_multi_init();
  st->easy = curl_easy_init();
  if (!st->buf || !st->url || !st->multi || !st->easy) {
    s3_stream_close(&st->base);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  setup_handle(s, st->easy, &st->hdrs);
  if (len > 0) {
    char range[96];
    snprintf(range, sizeof range, "Range: bytes=%lld-%lld", (long long)off,
             (long long)(off + len - 1));
    st->hdrs = curl_slist_append(st->hdrs, range);
  }
  curl_easy_setopt(st->easy, CURLOPT_URL, st->url);
  curl_easy_setopt(st->easy, CURLOPT_HTTPHEADER, st->hdrs);
  curl_easy_setopt(st->easy, CURLOPT_WRITEFUNCTION, on_stream_body);
  curl_easy_setopt(st->easy, CURLOPT_WRITEDATA, st);
  curl_easy_setopt(st->easy, CURLOPT_FAILONERROR, 1L);
  curl_multi_add_handle(st->multi, st->easy);
  *out = &st->base;
  if (out_size) *out_size = size;
  return 0;
}

static int s3_open_read(blob_backend *be, const char *oid, int want_fd, int *out_fd,
                        struct blob_stream **out_stream, int64_t *out_size) {
  char key[96];
  (void)want_fd;
  *out_fd = -1;
  object_key(key, oid);
  return key_open_stream((s3_backend *)be, key, 0, 0, out_stream, out_size);
}

static int s3_open_range(blob_backend *be, const char *oid, int64_t off, int64_t len,
                         struct blob_stream **out, int64_t *out_total) {
  char key[96];
  object_key(key, oid);
  return key_open_stream((s3_backend *)be, key, off, len, out, out_total);
}

/* ---- writing: a multipart upload completed only at commit ------------------------------- */

typedef struct {
  blob_backend_writer base;
  unsigned char *buf;
  size_t len, cap;
  char *upload_key; /* key the multipart upload was started for (NULL: none yet) */
  char *upload_id;
  hub_buf etags; /* "<Part><PartNumber>n</PartNumber><ETag>..</ETag></Part>" */
  unsigned nparts;
  uint64_t total; /* bytes written */
  int failed;
} s3_writer;

/* A multipart upload is bound to its key when it starts, before the oid is known: it starts
 * at a temporary key under tmp/, is completed there at commit (after verification), and is
 * copied server-side to the object's key (CopyObject up to 5 GiB, UploadPartCopy past that);
 * tmp/ keys are never read as objects. */
static int s3_writer_open(blob_backend *be, blob_backend_writer **out) {
  s3_writer *w = calloc(1, sizeof *w);
  if (!w) return hub_error_set(HUB_ERROR, "out of memory");
  w->base.backend = be;
  hub_buf_init(&w->etags, 0);
  *out = &w->base;
  return 0;
}

static size_t part_size(unsigned nparts) {
  return nparts < 1000 ? S3_PART_SIZE : S3_PART_SIZE_BIG;
}

static int start_upload(s3_writer *w) {
  s3_backend *s = (s3_backend *)w->base.backend;
  unsigned char rnd[12];
  char key[96];
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd) {
    if (f) fclose(f);
    return hub_error_set(HUB_ERROR, "no randomness");
  }
  fclose(f);
  int n = snprintf(key, sizeof key, "tmp/");
  for (size_t i = 0; i < sizeof rnd; i++)
    n += snprintf(key + n, sizeof key - (size_t)n, "%02x", rnd[i]);
  s3_req q = {.method = "POST", .key = key, .query = "uploads"};
  s3_resp r;
  int rc = s3_call(s, &q, &r);
  if (rc) return rc;
  const char *p = r.body.ptr;
  w->upload_id = xml_take(&p, "UploadId");
  hub_buf_dispose(&r.body);
  if (!w->upload_id) return hub_error_set(HUB_ERROR, "object store: no UploadId in its answer");
  if (!(w->upload_key = strdup(key))) return hub_error_set(HUB_ERROR, "out of memory");
  return 0;
}

static int upload_part(s3_writer *w, const void *data, size_t len) {
  s3_backend *s = (s3_backend *)w->base.backend;
  int rc;
  if (w->nparts >= S3_MAX_PARTS) return hub_error_set(HUB_ETOOBIG, "object too large for S3");
  if (!w->upload_id && (rc = start_upload(w))) return rc;
  char *esc = curl_easy_escape(NULL, w->upload_id, 0);
  char query[1024];
  if (!esc) return hub_error_set(HUB_ERROR, "out of memory");
  snprintf(query, sizeof query, "partNumber=%u&uploadId=%s", w->nparts + 1, esc);
  curl_free(esc);
  s3_req q = {.method = "PUT", .key = w->upload_key, .query = query, .body = data, .body_len = len};
  s3_resp r;
  if ((rc = s3_call(s, &q, &r))) return rc;
  w->nparts++;
  hub_buf_printf(&w->etags, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", w->nparts,
                 r.etag);
  hub_buf_dispose(&r.body);
  return w->etags.failed ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

static int s3_writer_write(blob_backend_writer *bw, const void *data, size_t len) {
  s3_writer *w = (s3_writer *)bw;
  const unsigned char *p = data;
  if (w->failed) return w->failed;
  w->total += len;
  while (len) {
    size_t want = part_size(w->nparts);
    if (w->cap < want) {
      unsigned char *nb = realloc(w->buf, want);
      if (!nb) return w->failed = hub_error_set(HUB_ERROR, "out of memory");
      w->buf = nb, w->cap = want;
    }
    size_t n = want - w->len < len ? want - w->len : len;
    memcpy(w->buf + w->len, p, n);
    w->len += n, p += n, len -= n;
    if (w->len == want) {
      int rc = upload_part(w, w->buf, w->len);
      if (rc) return w->failed = rc;
      w->len = 0;
    }
  }
  return 0;
}

static void abort_upload(s3_writer *w) {
  if (!w->upload_id) return;
  s3_backend *s = (s3_backend *)w->base.backend;
  char *esc = curl_easy_escape(NULL, w->upload_id, 0);
  char query[1024];
  if (esc) {
    snprintf(query, sizeof query, "uploadId=%s", esc);
    curl_free(esc);
    s3_req q = {.method = "DELETE", .key = w->upload_key, .query = query};
    (void)s3_call(s, &q, NULL); /* a leftover is reclaimed by sweep_tmp */
  }
}

static void writer_free(s3_writer *w) {
  free(w->buf);
  free(w->upload_key);
  free(w->upload_id);
  hub_buf_dispose(&w->etags);
  free(w);
}

static void s3_writer_abort(blob_backend_writer *bw) {
  s3_writer *w = (s3_writer *)bw;
  abort_upload(w);
  writer_free(w);
}

static int copy_whole(const s3_backend *s, const char *src_hdr, const char *key) {
  const char *hdrs[] = {src_hdr, NULL};
  s3_req c = {.method = "PUT", .key = key, .headers = hdrs};
  return s3_call(s, &c, NULL);
}

/* UploadPartCopy in S3_COPY_PART ranges into a new multipart upload at `key`. */
static int copy_in_parts(const s3_backend *s, const char *src_hdr, const char *key,
                         uint64_t total) {
  s3_req q = {.method = "POST", .key = key, .query = "uploads"};
  s3_resp r;
  int rc = s3_call(s, &q, &r);
  if (rc) return rc;
  const char *p = r.body.ptr;
  char *id = xml_take(&p, "UploadId");
  hub_buf_dispose(&r.body);
  if (!id) return hub_error_set(HUB_ERROR, "object store: no UploadId in its answer");
  char *esc = curl_easy_escape(NULL, id, 0);
  hub_buf xml = HUB_BUF_INIT;
  hub_buf_puts(&xml, "<CompleteMultipartUpload>");
  unsigned n = 0;
  for (uint64_t off = 0; !rc && off < total; off += S3_COPY_PART) {
    uint64_t end = off + S3_COPY_PART < total ? off + S3_COPY_PART : total;
    char query[1024], range[128];
    snprintf(query, sizeof query, "partNumber=%u&uploadId=%s", ++n, esc ? esc : "");
    snprintf(range, sizeof range, "x-amz-copy-source-range: bytes=%llu-%llu",
             (unsigned long long)off, (unsigned long long)(end - 1));
    const char *hdrs[] = {src_hdr, range, NULL};
    s3_req c = {.method = "PUT", .key = key, .query = query, .headers = hdrs};
    s3_resp cr;
    if ((rc = s3_call(s, &c, &cr))) break;
    const char *cp = cr.body.ptr;
    char *etag = xml_take(&cp, "ETag");
    hub_buf_printf(&xml, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", n,
                   etag ? etag : "");
    free(etag);
    hub_buf_dispose(&cr.body);
  }
  hub_buf_puts(&xml, "</CompleteMultipartUpload>");
  char query[1024];
  snprintf(query, sizeof query, "uploadId=%s", esc ? esc : "");
  if (!rc && xml.failed) rc = hub_error_set(HUB_ERROR, "out of memory");
  if (!rc) {
    s3_req c = {.method = "POST", .key = key, .query = query, .body = xml.ptr, .body_len = xml.len};
    rc = s3_call(s, &c, NULL);
  }
  if (rc) {
    s3_req a = {.method = "DELETE", .key = key, .query = query};
    (void)s3_call(s, &a, NULL);
  }
  hub_buf_dispose(&xml);
  curl_free(esc);
  free(id);
  return rc;
}

/* Publish the writer's bytes under `key`: a small object is one PUT; a multipart one is
 * completed at its temporary key and copied to `key` server-side, then the temporary
 * object is deleted. */
static int publish(s3_writer *w, const char *key) {
  s3_backend *s = (s3_backend *)w->base.backend;
  int rc;
  if (w->failed) return w->failed;
  if (!w->upload_id) {
    s3_req q = {.method = "PUT",
                .key = key,
                .body = w->buf ? (const void *)w->buf : "",
                .body_len = w->len};
    return s3_call(s, &q, NULL);
  }
  if (w->len && (rc = upload_part(w, w->buf, w->len))) return rc;
  w->len = 0;
  hub_buf xml = HUB_BUF_INIT;
  hub_buf_printf(&xml, "<CompleteMultipartUpload>%s</CompleteMultipartUpload>", w->etags.ptr);
  char *esc = curl_easy_escape(NULL, w->upload_id, 0);
  char query[1024];
  if (xml.failed || !esc) {
    hub_buf_dispose(&xml);
    curl_free(esc);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  snprintf(query, sizeof query, "uploadId=%s", esc);
  curl_free(esc);
  s3_req q = {
      .method = "POST", .key = w->upload_key, .query = query, .body = xml.ptr, .body_len = xml.len};
  rc = s3_call(s, &q, NULL);
  hub_buf_dispose(&xml);
  if (rc) return rc;
  free(w->upload_id), w->upload_id = NULL; /* completed: nothing to abort any more */
  /* Server-side copy to the final key. */
  char src[1200];
  snprintf(src, sizeof src, "x-amz-copy-source: /%s/%s%s", s->bucket, s->prefix, w->upload_key);
  rc = w->total <= S3_COPY_MAX ? copy_whole(s, src, key) : copy_in_parts(s, src, key, w->total);
  s3_req d = {.method = "DELETE", .key = w->upload_key};
  (void)s3_call(s, &d, NULL);
  return rc;
}

static int s3_writer_commit(blob_backend_writer *bw, const char *oid) {
  s3_writer *w = (s3_writer *)bw;
  s3_backend *s = (s3_backend *)bw->backend;
  char key[96];
  object_key(key, oid);
  int rc = key_stat(s, key, NULL);
  if (rc == 0) { /* already stored: identical content */
    abort_upload(w);
    writer_free(w);
    return 0;
  }
  rc = rc == HUB_ENOTFOUND ? publish(w, key) : rc;
  if (rc) abort_upload(w);
  writer_free(w);
  return rc;
}

/* ---- client multipart parts ------------------------------------------------------------- */

static int s3_part_commit(blob_backend_writer *bw, const char *upload_oid, unsigned n) {
  s3_writer *w = (s3_writer *)bw;
  char key[128];
  part_key(key, upload_oid, n);
  int rc = publish(w, key);
  if (rc) abort_upload(w);
  writer_free(w);
  return rc;
}

static int s3_part_open(blob_backend *be, const char *upload_oid, unsigned n,
                        struct blob_stream **out, int64_t *out_size) {
  char key[128];
  part_key(key, upload_oid, n);
  return key_open_stream((s3_backend *)be, key, 0, 0, out, out_size);
}

/* Keys under `prefix` (below the backend's prefix), up to 1,000 per call. */
static int list_keys(const s3_backend *s, const char *prefix,
                     int (*each)(const s3_backend *, const char *key, void *), void *ctx) {
  char *token = NULL;
  int rc = 0;
  do {
    char *pe = curl_easy_escape(NULL, prefix, 0);
    char *te = token ? curl_easy_escape(NULL, token, 0) : NULL;
    char query[2048];
    snprintf(query, sizeof query, "list-type=2&prefix=%s%s%s", pe ? pe : "",
             te ? "&continuation-token=" : "", te ? te : "");
    curl_free(pe), curl_free(te);
    free(token), token = NULL;
    s3_req q = {.method = "GET", .key = NULL, .query = query, .body_max = (size_t)8 << 20};
    s3_resp r;
    if ((rc = s3_call(s, &q, &r))) break;
    const char *p = r.body.ptr;
    char *k;
    while (!rc && (k = xml_take(&p, "Key"))) {
      size_t pl = strlen(s->prefix);
      if (!strncmp(k, s->prefix, pl)) rc = each(s, k + pl, ctx);
      free(k);
    }
    p = r.body.ptr;
    char *trunc = xml_take(&p, "IsTruncated");
    if (trunc && !strcmp(trunc, "true")) {
      p = r.body.ptr;
      token = xml_take(&p, "NextContinuationToken");
    }
    free(trunc);
    hub_buf_dispose(&r.body);
  } while (!rc && token);
  free(token);
  return rc;
}

static int delete_key(const s3_backend *s, const char *key, void *ctx) {
  (void)ctx;
  s3_req q = {.method = "DELETE", .key = key};
  return s3_call(s, &q, NULL);
}

static int s3_parts_remove(blob_backend *be, const char *upload_oid) {
  s3_backend *s = (s3_backend *)be;
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%sparts/%s/", s->prefix, upload_oid);
  return list_keys(s, prefix, delete_key, NULL);
}

/* ---- sweeping: multipart uploads and tmp/ objects a crashed writer left ------------------ */

static int64_t parse_iso8601(const char *t) {
  struct tm tm = {0};
  if (!t || !strptime(t, "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return (int64_t)timegm(&tm);
}

static int s3_sweep_tmp(blob_backend *be, int64_t older_than_seconds, int *out_removed) {
  s3_backend *s = (s3_backend *)be;
  int removed = 0, rc;
  int64_t cutoff = (int64_t)time(NULL) - older_than_seconds;
  char *pe = NULL;
  char query[1024], prefix[512];
  snprintf(prefix, sizeof prefix, "%stmp/", s->prefix);
  pe = curl_easy_escape(NULL, prefix, 0);
  snprintf(query, sizeof query, "uploads&prefix=%s", pe ? pe : "");
  curl_free(pe);
  s3_req q = {.method = "GET", .key = NULL, .query = query, .body_max = (size_t)8 << 20};
  s3_resp r;
  if ((rc = s3_call(s, &q, &r))) return rc;
  const char *p = r.body.ptr;
  char *upload;
  while ((upload = xml_take(&p, "Upload"))) {
    const char *u = upload;
    char *key = xml_take(&u, "Key");
    u = upload;
    char *id = xml_take(&u, "UploadId");
    u = upload;
    char *init = xml_take(&u, "Initiated");
    size_t pl = strlen(s->prefix);
    if (key && id && init && parse_iso8601(init) < cutoff && !strncmp(key, s->prefix, pl)) {
      s3_writer w = {.base.backend = be, .upload_key = key + pl, .upload_id = id};
      abort_upload(&w);
      removed++;
    }
    free(key), free(id), free(init), free(upload);
  }
  hub_buf_dispose(&r.body);
  if (out_removed) *out_removed = removed;
  return 0;
}

/* ---- presigned GET URLs (SigV4 query-string signing; libcurl signs only headers) -------- */

/* RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, and so does '/'
 * when `keep_slash` (paths). */
static void uri_encode(hub_buf *b, const char *s, int keep_slash) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
      hub_buf_putc(b, (char)*p);
    else
      hub_buf_printf(b, "%%%02X", *p);
  }
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32]) {
  unsigned int n = 32;
  return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n) ? 0
                                                                                              : -1;
}

static void hex32(const unsigned char in[32], char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", in[i]);
}

int blob_s3_presign_key(blob_backend *be, const char *key, int64_t expires, const char *range,
                        int64_t now, char **out) {
  s3_backend *s = (s3_backend *)be;
  *out = NULL;
  if (expires < 1 || expires > 604800)
    return hub_error_set(HUB_EINVALID, "presigned URL expiry must be 1..604800 seconds");
  time_t t = (time_t)now;
  struct tm tm;
  char amzdate[17], day[9];
  if (!gmtime_r(&t, &tm)) return hub_error_set(HUB_ERROR, "bad time");
  strftime(amzdate, sizeof amzdate, "%Y%m%dT%H%M%SZ", &tm);
  strftime(day, sizeof day, "%Y%m%d", &tm);
  const char *scheme_end = strstr(s->endpoint, "://") + 3;
  hub_buf host = HUB_BUF_INIT, path = HUB_BUF_INIT, query = HUB_BUF_INIT, creq = HUB_BUF_INIT,
          sts = HUB_BUF_INIT, url = HUB_BUF_INIT, cred = HUB_BUF_INIT, secret = HUB_BUF_INIT;
  if (s->path_style) {
    hub_buf_puts(&host, scheme_end);
    hub_buf_puts(&path, "/");
    uri_encode(&path, s->bucket, 0);
    hub_buf_puts(&path, "/");
  } else {
    hub_buf_printf(&host, "%s.%s", s->bucket, scheme_end);
    hub_buf_puts(&path, "/");
  }
  {
    hub_buf k = HUB_BUF_INIT;
    hub_buf_printf(&k, "%s%s", s->prefix, key);
    uri_encode(&path, k.ptr ? k.ptr : "", 1);
    hub_buf_dispose(&k);
  }
  hub_buf_printf(&cred, "%s/%s/%s/s3/aws4_request", s->key_id, day, s->region);
  hub_buf_puts(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
  uri_encode(&query, cred.ptr ? cred.ptr : "", 0);
  hub_buf_printf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%lld", amzdate, (long long)expires);
  if (s->token) {
    hub_buf_puts(&query, "&X-Amz-Security-Token=");
    uri_encode(&query, s->token, 0);
  }
  hub_buf_printf(&query, "&X-Amz-SignedHeaders=%s", range ? "host%3Brange" : "host");
  hub_buf_printf(&creq, "GET\n%s\n%s\nhost:%s\n", path.ptr, query.ptr, host.ptr);
  if (range) hub_buf_printf(&creq, "range:%s\n", range);
  hub_buf_printf(&creq, "\n%s\nUNSIGNED-PAYLOAD", range ? "host;range" : "host");
  int rc = 0;
  unsigned char md[32], k1[32], k2[32], k3[32], k4[32], sig[32];
  char mdhex[65], sighex[65];
  if (host.failed || path.failed || query.failed || creq.failed || cred.failed) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  EVP_Digest(creq.ptr, creq.len, md, NULL, EVP_sha256(), NULL);
  hex32(md, mdhex);
  hub_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s", amzdate, day, s->region,
                 mdhex);
  hub_buf_printf(&secret, "AWS4%s", s->secret);
  int bad = secret.failed || sts.failed || hmac(secret.ptr, secret.len, day, k1) ||
            hmac(k1, 32, s->region, k2) || hmac(k2, 32, "s3", k3) ||
            hmac(k3, 32, "aws4_request", k4) || hmac(k4, 32, sts.ptr, sig);
  if (bad) {
    rc = hub_error_set(HUB_ERROR, "cannot sign the URL");
    goto done;
  }
  hex32(sig, sighex);
  hub_buf_printf(&url, "%.*s%s%s?%s&X-Amz-Signature=%s", (int)(scheme_end - s->endpoint),
                 s->endpoint, host.ptr, path.ptr, query.ptr, sighex);
  if (url.failed) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  *out = hub_buf_detach(&url);
done:
  hub_buf_dispose(&host);
  hub_buf_dispose(&path);
  hub_buf_dispose(&query);
  hub_buf_dispose(&creq);
  hub_buf_dispose(&sts);
  hub_buf_dispose(&url);
  hub_buf_dispose(&cred);
  if (secret.ptr) OPENSSL_cleanse(secret.ptr, secret.len);
  hub_buf_dispose(&secret);
  return rc;
}

static int s3_presign_get(blob_backend *be, const char *oid, int64_t expires, const char *range,
                          char **out) {
  char key[96];
  object_key(key, oid);
  return blob_s3_presign_key(be, key, expires, range, (int64_t)time(NULL), out);
}

static void s3_free(blob_backend *be) {
  s3_backend *s = (s3_backend *)be;
  free(s->bucket);
  free(s->prefix);
  free(s->endpoint);
  free(s->sigv4);
  free(s->userpwd);
  free(s->token_hdr);
  free(s->key_id);
  free(s->secret);
  free(s->region);
  free(s->token);
  free(s);
}

static char *env_dup(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return strdup(v && *v ? v : fallback ? fallback : "");
}

int blob_s3_backend_new(blob_backend **out, const char *root) {
  *out = NULL;
  if (!root || strncmp(root, "s3://", 5) != 0)
    return hub_error_set(HUB_EINVALID, "s3 blob store: want s3://BUCKET[/PREFIX]");
  const char *b = root + 5, *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  if (!blen || blen > 63) return hub_error_set(HUB_EINVALID, "s3 blob store: bad bucket name");
  for (size_t i = 0; i < blen; i++)
    if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
          b[i] == '.'))
      return hub_error_set(HUB_EINVALID, "s3 blob store: bad bucket name");
  const char *key_id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
  if (!key_id || !*key_id || !secret || !*secret)
    return hub_error_set(HUB_EINVALID,
                         "s3 blob store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  s3_backend *s = calloc(1, sizeof *s);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  s->base.version = BLOB_BACKEND_VERSION;
  s->base.name = "s3";
  s->base.stat = s3_stat;
  s->base.open_read = s3_open_read;
  s->base.open_range = s3_open_range;
  s->base.writer_open = s3_writer_open;
  s->base.writer_write = s3_writer_write;
  s->base.writer_commit = s3_writer_commit;
  s->base.writer_abort = s3_writer_abort;
  s->base.remove = s3_remove;
  s->base.part_commit = s3_part_commit;
  s->base.part_open = s3_part_open;
  s->base.parts_remove = s3_parts_remove;
  s->base.sweep_tmp = s3_sweep_tmp;
  s->base.presign_get = s3_presign_get;
  s->base.free = s3_free;
  s->bucket = strndup(b, blen);
  /* prefix: the rest of the URL, without leading/trailing '/', then one '/' appended */
  const char *p = slash ? slash : "";
  while (*p == '/')
    p++;
  size_t pl = strlen(p);
  while (pl && p[pl - 1] == '/')
    pl--;
  hub_buf pb = HUB_BUF_INIT;
  if (pl)
    hub_buf_printf(&pb, "%.*s/", (int)pl, p);
  else
    hub_buf_puts(&pb, "");
  s->prefix = hub_buf_detach(&pb);
  char *region = env_dup("AWS_REGION",
                         getenv("AWS_DEFAULT_REGION") ? getenv("AWS_DEFAULT_REGION") : "us-east-1");
  const char *ep = getenv("MODELHUB_S3_ENDPOINT");
  hub_buf e = HUB_BUF_INIT;
  if (ep && *ep) {
    size_t el = strlen(ep);
    while (el && ep[el - 1] == '/')
      el--;
    hub_buf_printf(&e, "%.*s", (int)el, ep);
  } else {
    hub_buf_printf(&e, "https://s3.%s.amazonaws.com", region ? region : "us-east-1");
  }
  s->endpoint = hub_buf_detach(&e);
  const char *ps = getenv("MODELHUB_S3_PATH_STYLE");
  s->path_style = ps && *ps ? (strcmp(ps, "0") != 0 && strcasecmp(ps, "false") != 0) : 0;
  hub_buf sv = HUB_BUF_INIT, up = HUB_BUF_INIT;
  hub_buf_printf(&sv, "aws:amz:%s:s3", region ? region : "us-east-1");
  hub_buf_printf(&up, "%s:%s", key_id, secret);
  s->sigv4 = hub_buf_detach(&sv);
  s->userpwd = hub_buf_detach(&up);
  const char *tok = getenv("AWS_SESSION_TOKEN");
  s->key_id = strdup(key_id);
  s->secret = strdup(secret);
  s->region = strdup(region ? region : "us-east-1");
  if (tok && *tok) s->token = strdup(tok);
  if (tok && *tok) {
    hub_buf th = HUB_BUF_INIT;
    hub_buf_printf(&th, "x-amz-security-token: %s", tok);
    s->token_hdr = hub_buf_detach(&th);
  }
  free(region);
  if (!s->bucket || !s->prefix || !s->endpoint || !s->sigv4 || !s->userpwd || !s->key_id ||
      !s->secret || !s->region || (tok && *tok && !s->token) ||
      (strncmp(s->endpoint, "http://", 7) && strncmp(s->endpoint, "https://", 8))) {
    s3_free(&s->base);
    return hub_error_set(HUB_EINVALID,
                         "s3 blob store: bad MODELHUB_S3_ENDPOINT (want http(s)://host[:port])");
  }
  *out = &s->base;
  return 0;
}
