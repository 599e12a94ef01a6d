/* Building responses: JSON, bytes, files (sendfile), streams, errors, redirects. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/errors.h"
#include "http/http.h"
#include "blob/blob.h"
#include "http/internal.h"
#include "util/error.h"
#include "util/limits.h"
#include "util/thread.h"

const char *const HUB_VERSION = "0.1.0";

static int set_resp(hub_req *r, int status, struct MHD_Response *resp, const char *ctype) {
  if (!resp) return hub_error_set(HUB_ERROR, "out of memory building response");
  if (r->resp) MHD_destroy_response(r->resp);
  r->resp = resp;
  r->status = status;
  r->replied = 1;
  if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
  return 0;
}

void http_add_header(hub_req *r, const char *name, const char *value) {
  if (r->resp) MHD_add_response_header(r->resp, name, value);
}

int http_reply_data(hub_req *r, int status, const char *ctype, const void *data, size_t len) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  return set_resp(r, status, resp, ctype);
}

int http_reply_json(hub_req *r, int status, json_t *body) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!s) return hub_error_set(HUB_ERROR, "cannot encode JSON");
  struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
  if (!resp) free(s);
  return set_resp(r, status, resp, "application/json; charset=utf-8");
}

int http_reply_fd(hub_req *r, int status, const char *ctype, int fd, uint64_t off, uint64_t len) {
  /* libmicrohttpd owns fd from here and sends it with sendfile. */
  struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
  if (!resp) {
    close(fd);
    return hub_error_set(HUB_ERROR, "cannot create file response");
  }
  r->bytes_out = len;
  return set_resp(r, status, resp, ctype);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max) {
  return MHD_CONTENT_READER_END_WITH_ERROR; /* only used for HEAD, never read */
}

int http_reply_data_len(hub_req *r, int status, const char *ctype, uint64_t len) {
  struct MHD_Response *resp = MHD_create_response_from_callback(len, 4096, no_body, NULL, NULL);
  return set_resp(r, status, resp, ctype);
}

/* Streamed responses (git packs, Xet reconstructions) come from sources that block
 * (a child's pipe, decompression): a producer thread, started on the first read, fills
 * one block while the event thread sends the previous one. When nothing is ready the
 * reader suspends the connection and the producer resumes it, so an event thread never
 * waits on the source. */
struct stream {
  http_stream_cb cb;
  void *payload;
  void (*free_cb)(void *);
  struct MHD_Connection *conn;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *ready; /* filled by the producer; its own while ready_len == 0 */
  size_t ready_len;
  char *out; /* being sent by the event thread */
  size_t out_len, out_off;
  uint64_t pos;
  int started, done, failed, abandoned, exited, suspended;
};

static _Atomic int g_producers; /* running producer threads, for shutdown */
static _Atomic int g_streams;   /* streamed responses alive (each may hold a producer) */
static int g_max_streams;       /* MODELHUB_MAX_STREAMS */

static int max_streams(void) {
  if (!g_max_streams) {
    const char *e = getenv("MODELHUB_MAX_STREAMS");
    long v = e && *e ? strtol(e, NULL, 10) : 0;
    g_max_streams = v > 0 && v <= 100000 ? (int)v : HUB_MAX_STREAMS;
  }
  return g_max_streams;
}

int http__streams_active(void) {
  return g_producers;
}

static void stream_destroy(struct stream *s) {
  if (s->free_cb) s->free_cb(s->payload);
  g_streams--;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->ready);
  free(s->out);
  free(s);
}

static void *stream_produce(void *cls) {
  struct stream *s = cls;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (s->ready_len && !s->abandoned)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->abandoned) break;
    pthread_mutex_unlock(&s->mu);
    ssize_t n = s->cb(s->payload, s->pos, s->ready, HUB_STREAM_BLOCK);
    pthread_mutex_lock(&s->mu);
    if (n > 0) {
      s->ready_len = (size_t)n;
      s->pos += (uint64_t)n;
    } else {
      s->done = 1;
      s->failed = n < 0;
    }
    if (s->suspended) {
      s->suspended = 0;
      MHD_resume_connection(s->conn);
    }
    if (s->done) break;
  }
  s->exited = 1;
  int abandoned = s->abandoned;
  pthread_mutex_unlock(&s->mu);
  if (abandoned) stream_destroy(s);
  g_producers--;
  return NULL;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  struct stream *s = cls;
  (void)pos;
  pthread_mutex_lock(&s->mu);
  if (s->out_off == s->out_len && s->ready_len) {
    char *t = s->out;
    s->out = s->ready;
    s->ready = t;
    s->out_len = s->ready_len;
    s->out_off = 0;
    s->ready_len = 0;
    pthread_cond_signal(&s->cv);
  }
  if (s->out_off < s->out_len) {
    size_t n = s->out_len - s->out_off;
    if (n > max) n = max;
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
  }
  if (s->done) {
    int failed = s->failed;
    pthread_mutex_unlock(&s->mu);
    return failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
  }
  if (!s->started) {
    g_producers++;
    if (hub_thread_start("http-stream", stream_produce, s, NULL)) {
      g_producers--;
      s->done = s->failed = 1;
      pthread_mutex_unlock(&s->mu);
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    s->started = 1;
  }
  s->suspended = 1;
  MHD_suspend_connection(s->conn);
  pthread_mutex_unlock(&s->mu);
  return 0; /* called again once the producer resumes the connection */
}

static void stream_free(void *cls) {
  struct stream *s = cls;
  pthread_mutex_lock(&s->mu);
  int own = !s->started || s->exited;
  if (!own) { /* the producer frees it when its current read returns */
    s->abandoned = 1;
    pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  if (own) stream_destroy(s);
}

int http_reply_stream(hub_req *r, int status, const char *ctype, uint64_t size, http_stream_cb cb,
                      void *payload, void (*free_cb)(void *)) {
  /* Each stream may hold a producer thread: past the cap, 503 + Retry-After instead of
   * one more thread. */
  if (++g_streams > max_streams()) {
    g_streams--;
    if (free_cb) free_cb(payload);
    return hub_error_set(HUB_EBUSY, "Too many streamed responses in progress; try again later");
  }
  struct stream *s = calloc(1, sizeof *s);
  if (s) {
    s->ready = malloc(HUB_STREAM_BLOCK);
    s->out = malloc(HUB_STREAM_BLOCK);
  }
  if (!s || !s->ready || !s->out) {
    if (s) {
      free(s->ready);
      free(s->out);
    }
    free(s);
    g_streams--;
    if (free_cb) free_cb(payload);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  s->cb = cb;
  s->payload = payload;
  s->free_cb = free_cb;
  s->conn = r->conn;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(size, 64 * 1024, stream_reader, s, stream_free);
  if (!resp) {
    stream_destroy(s);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  return set_resp(r, status, resp, ctype);
}

static http_error_page_fn g_error_page;

void http_set_error_page(http_error_page_fn fn) {
  g_error_page = fn;
}

/* The body of an error in the route's style; 0 or an error of the reply itself. */
static int error_body(hub_req *r, int code, const http_error_map *m, const char *safe) {
  unsigned style = r->route ? r->route->needs : 0;
  if ((style & ERR_HTML) && g_error_page &&
      g_error_page(r, code, m->status, m->default_msg, safe) == 0)
    return 0;
  if (style & ERR_GIT) {
    char line[520];
    int n = snprintf(line, sizeof line, "%s\n", safe);
    return http_reply_data(r, m->status, "text/plain; charset=utf-8", line, (size_t)n);
  }
  if (style & ERR_LFS) { /* git-lfs shows "message"; "error" for Hub-style readers */
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "message", safe, "error", safe, "request_id", r->request_id);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) return hub_error_set(HUB_ERROR, "cannot encode JSON");
    int rc = http_reply_data(r, m->status, "application/vnd.git-lfs+json", s, strlen(s));
    free(s);
    return rc;
  }
  return http_reply_json(r, m->status, json_pack("{s:s}", "error", safe));
}

int http_reply_error(hub_req *r, int code) {
  /* A caller that turned a full disk into a plain failure still answers 507. */
  if (code == HUB_ERROR && hub_error_code() == HUB_ENOSPC) code = HUB_ENOSPC;
  http_error_map m = http_error_lookup(code, !r->who.authenticated);
  const char *msg = hub_error_msg();
  if (!msg || !*msg || hub_error_code() != code) msg = m.default_msg;
  /* Internal details (paths) stay in the log; the client gets a generic message. */
  if (m.status == 500 || code == HUB_ENOSPC) {
    fprintf(stderr, "error rid=%s: %s\n", r->request_id, msg);
    msg = m.default_msg;
  }
  char safe[512];
  /* Header values must be one line of printable ASCII. */
  size_t j = 0;
  for (size_t i = 0; msg[i] && j < sizeof safe - 1; i++)
    safe[j++] = (msg[i] < 0x20 || msg[i] == 0x7f) ? ' ' : msg[i];
  safe[j] = 0;
  int rc = error_body(r, code, &m, safe);
  if (rc) return rc;
  if (m.error_code) http_add_header(r, "X-Error-Code", m.error_code);
  http_add_header(r, "X-Error-Message", safe);
  if (m.status == 503) http_add_header(r, "Retry-After", HUB_RETRY_AFTER_S);
  return 0;
}

int http_reply_redirect(hub_req *r, int status, const char *location) {
  int rc = http_reply_data(r, status, "text/plain; charset=utf-8", "", 0);
  if (rc) return rc;
  http_add_header(r, "Location", location);
  return 0;
}

void http__finish_headers(hub_req *r) {
  MHD_add_response_header(r->resp, "X-Request-Id", r->request_id);
  MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(
      r->resp, "Access-Control-Expose-Headers",
      "X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, X-Total-Count, ETag, Link, "
      "Accept-Ranges, Content-Range, X-Linked-Size, X-Linked-ETag, Content-Length");
}

static void jdecref(void *p) {
  json_decref(p);
}

json_t *http_body_json(hub_req *r) {
  json_error_t err;
  if (!r->body.len) {
    hub_error_set(HUB_EINVALID, "Missing JSON body");
    return NULL;
  }
  json_t *j = json_loadb(r->body.ptr, r->body.len, JSON_REJECT_DUPLICATES, &err);
  if (!j) {
    hub_error_set(HUB_EINVALID, "Invalid JSON body: %s (line %d, column %d)", err.text, err.line,
                  err.column);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    hub_error_set(HUB_EINVALID, "Invalid JSON body: expected an object");
    return NULL;
  }
  http_cleanup_add(r, jdecref, j);
  return j;
}

/* ---- blobs -------------------------------------------------------------------------- */

static ssize_t blob_stream_cb(void *payload, uint64_t pos, char *buf, size_t max) {
  size_t n = 0;
  (void)pos; /* sequential */
  if (blob_stream_read(payload, buf, max, &n)) return -1;
  return (ssize_t)n;
}

static void blob_stream_free(void *payload) {
  blob_stream_close(payload);
}

int http_reply_blob_redirect(hub_req *r, struct blob_store *store, const char *oid,
                             const char *range) {
  char *url = NULL;
  int rc = blob_presign_get(store, oid, range, &url);
  if (rc) return rc;
  rc = http_reply_redirect(r, 302, url);
  free(url);
  return rc;
}

int http_reply_blob(hub_req *r, int status, const char *ctype, struct blob_store *store,
                    const char *oid, uint64_t off, uint64_t len) {
  int fd = -1;
  int64_t total = 0;
  int rc = blob_open_fd(store, oid, &fd, &total);
  if (rc == 0) return http_reply_fd(r, status, ctype, fd, off, len);
  if (rc != HUB_EUNSUPPORTED) return rc;
  if (len == 0) return http_reply_data(r, status, ctype, "", 0);
  blob_stream *st = NULL;
  if ((rc = blob_open_range(store, oid, (int64_t)off, (int64_t)len, &st, NULL))) return rc;
  return http_reply_stream(r, status, ctype, len, blob_stream_cb, st, blob_stream_free);
}
