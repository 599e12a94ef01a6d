/* Shared by the http module's .c files only. */
#ifndef HUB_HTTP_INTERNAL_H
#define HUB_HTTP_INTERNAL_H
#include <stdint.h>

#include "http/http.h"

/* In-place percent-decoding; plus_is_space for query strings. Rejects malformed escapes
 * and %00 (-1). */
int http_pct_decode(char *s, int plus_is_space);
/* Identify the caller from Authorization (or a session cookie). 0 or HUB_EAUTH. */
int http__authenticate(hub_req *r);
/* Add X-Request-Id, CORS and error-less defaults before queueing. */
void http__finish_headers(hub_req *r);
void http__metrics_record(int route_index, int status, int64_t dur_us);
void http__metrics_escalated(void);
void http_metrics_render(hub_buf *out, const char *(*route_name)(int idx, const char **method));
/* Run the request's cleanups, release its arena, response and context. */
void http__req_free(hub_req *r);
/* Run fn(arg) on a worker thread (http/workers.c). 0 or HUB_ERROR. */
int http__worker_submit(void (*fn)(void *), void *arg);
/* Wait up to timeout_ms for queued and running jobs; 0 when none are left. */
int http__workers_drain(int timeout_ms);
/* Producer threads of streamed responses still running (http/reply.c). */
int http__streams_active(void);
#endif
