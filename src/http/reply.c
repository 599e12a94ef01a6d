/* Building responses: JSON, bytes, files (sendfile), streams, errors, redirects. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/errors.h"
#include "http/http.h"
#include "http/internal.h"
#include "util/error.h"

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
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
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

struct stream {
  http_stream_cb cb;
  void *payload;
  void (*free_cb)(void *);
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  struct stream *s = cls;
  ssize_t n = s->cb(s->payload, pos, buf, max);
  if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
  if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
  return n;
}

static void stream_free(void *cls) {
  struct stream *s = cls;
  if (s->free_cb) s->free_cb(s->payload);
  free(s);
}

int http_reply_stream(hub_req *r, int status, const char *ctype, uint64_t size, http_stream_cb cb,
                      void *payload, void (*free_cb)(void *)) {
  struct stream *s = malloc(sizeof *s);
  if (!s) {
    if (free_cb) free_cb(payload);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  s->cb = cb;
  s->payload = payload;
  s->free_cb = free_cb;
  struct MHD_Response *resp =
      MHD_create_response_from_callback(size, 64 * 1024, stream_reader, s, stream_free);
  if (!resp) {
    stream_free(s);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  return set_resp(r, status, resp, ctype);
}

int http_reply_error(hub_req *r, int code) {
  http_error_map m = http_error_lookup(code, !r->who.authenticated);
  const char *msg = hub_error_msg();
  if (!msg || !*msg || hub_error_code() != code) msg = m.default_msg;
  /* Internal details stay in the log; the client gets a generic message. */
  if (m.status == 500) {
    fprintf(stderr, "error rid=%s: %s\n", r->request_id, msg);
    msg = m.default_msg;
  }
  char safe[512];
  /* Header values must be one line of printable ASCII. */
  size_t j = 0;
  for (size_t i = 0; msg[i] && j < sizeof safe - 1; i++)
    safe[j++] = (msg[i] < 0x20 || msg[i] == 0x7f) ? ' ' : msg[i];
  safe[j] = 0;
  json_t *body = json_pack("{s:s}", "error", safe);
  int rc = http_reply_json(r, m.status, body);
  if (rc) return rc;
  if (m.error_code) http_add_header(r, "X-Error-Code", m.error_code);
  http_add_header(r, "X-Error-Message", safe);
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
