/* Shared by the http module's .c files only. */
#ifndef HUB_HTTP_INTERNAL_H
#define HUB_HTTP_INTERNAL_H
#include <microhttpd.h>
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

/* ---- limits.c: connection accounting, header deadlines, the body memory budget ---- */
/* Read the MODELHUB_* limits, raise the descriptor limit; returns the connection limit. */
unsigned http__limits_init(void);
unsigned http__limits_per_ip(void);
/* libmicrohttpd callbacks: the accept policy (per-IP cap) and connection start/close. */
enum MHD_Result http__accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void http__conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* A request's headers are complete (its deadline is lifted) / its response is done (the
 * keep-alive deadline starts). */
void http__conn_request_begin(struct MHD_Connection *c);
void http__conn_request_end(struct MHD_Connection *c);
/* The thread that closes connections past their header deadline. */
int http__watchdog_start(void);
void http__watchdog_stop(void);
/* Give back whatever the request holds of the body budget. */
void http__body_release(hub_req *r);
void http__limits_metrics(hub_buf *out);
#endif
