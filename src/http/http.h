/* HTTP layer: libmicrohttpd daemon, declarative route table, per-request context.
 *
 * Life of a request: the router matches the RAW path (split on '/' before any
 * percent-decoding, hf-api.md §1.2), authenticates the caller, loads and authorizes the
 * repo when the route names one, then receives the body as the route declares (none,
 * buffered with a limit, or streamed to a callback), and finally calls the handler.
 * Authorization happens once, here, from the route's declared needs. Handlers queue
 * exactly one response with an http_reply_* call, or return a negative HUB_E* code
 * that the layer turns into an HF-style error (http/errors.c). */
#ifndef HUB_HTTP_HTTP_H
#define HUB_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "auth/auth.h"
#include "db/db.h"
#include "db/search.h"
#include "util/buf.h"
#include "util/limits.h"

typedef struct hub_req hub_req;
typedef int (*hub_handler)(hub_req *r);
/* Request body callback; return 0 to continue or a HUB_E* code to fail the request. It is
 * called first once with len 0 (data "") after authorization and before any body byte is
 * read, on every route that sets it (buffered or streamed, with a body or not): the
 * route's chance to refuse the request from its URL, headers and caller alone, so that a
 * refused upload is never read. BODY_STREAM routes then get each chunk as it arrives. */
typedef int (*hub_body_cb)(hub_req *r, const char *data, size_t len);

enum hub_needs {
  NEED_NONE = 0,
  NEED_LOGIN = 1,      /* any authenticated caller */
  NEED_REPO_READ = 2,  /* route has {repo}; caller may read it */
  NEED_REPO_WRITE = 4, /* route has {repo}; caller may write it */
  NEED_REPO_ADMIN = 8, /* route has {repo}; caller administers it */
  NEED_SITE_ADMIN = 16,
  NEED_REPO_FILES = 32,  /* reading file contents: gated repos need an accepted request */
  NEED_NO_REDIRECT = 64, /* do not 307 moved repos (e.g. create/delete bodies) */
  /* git / git-lfs clients send credentials only after a 401 challenge: on such routes an
   * anonymous caller who cannot see the repo gets 401 + WWW-Authenticate (not 404), and
   * every 401 carries the challenge. Authenticated callers still get 404 / 403. */
  NEED_GIT_CHALLENGE = 128,
  /* the handler checks its own credentials (Xet CAS bearer tokens, xetsrv/): the router
   * does not identify the caller, so r->who stays anonymous */
  NEED_OWN_AUTH = 256,
  /* Not an authorization need: the handler never blocks (no fsync, child process, lock
   * wait or long CPU work), so it runs on the connection's event thread. Every other
   * handler runs on a worker thread while its connection is suspended (architecture.md). */
  RUN_INLINE = 512,
  /* A read-only handler that is usually cheap but not always (listings): it starts on the
   * event thread under a budget of SQLite work (HUB_INLINE_BUDGET); past it, whatever it
   * produced is dropped and it runs again on a worker. It must have no side effects. */
  RUN_INLINE_TRY = 1024,
  /* Not a need either: the route's error style. A failure — the router's (auth, repo,
   * body) or a negative HUB_E* code the handler returns — is rendered once, by
   * http_reply_error, in this style; status, X-Error-Code and X-Error-Message are the same
   * in every style (http/errors.c). Without a flag: Hub JSON {"error": "…"}. */
  ERR_LFS = 2048,  /* git-LFS JSON {"message": "…"}, application/vnd.git-lfs+json */
  ERR_GIT = 4096,  /* text/plain, which git shows the user as "remote: …" */
  ERR_HTML = 8192, /* an HTML page, drawn by the hook web/ sets (http_set_error_page) */
  /* The handler answers from the repo's popularity and derived metadata (repo info): the
   * router reads them with the repo row, in the same statement (r->repo_stats). */
  NEED_REPO_STATS = 16384,
};

enum hub_body { BODY_NONE = 0, BODY_JSON, BODY_LARGE, BODY_STREAM };

/* Patterns: segments separated by '/'. Literal segments match exactly. Tokens:
 *   {type}    "models" | "datasets" | "spaces" (API segment) → r->repo_type
 *   {prefix}  optional "datasets" | "spaces" (file/git URLs) → r->repo_type
 *   {repo}    two segments ns/name (a trailing ".git" on name is stripped)
 *   {x}       one segment, captured raw into r->cap[i] in order
 *   {*}       the rest (zero or more raw segments) → r->rest / r->nrest
 * A GET route also answers HEAD. */
typedef struct hub_route {
  const char *method;
  const char *pattern;
  hub_handler handler;
  unsigned needs;
  int body;
  hub_body_cb on_body; /* start call (any route), then chunks (BODY_STREAM) */
  size_t body_max;     /* 0 = default for the body kind */
} hub_route;

typedef struct {
  char *key;
  char *value;
} hub_param;

struct MHD_Connection;
struct hub_req {
  struct MHD_Connection *conn;
  const char *method;
  int is_head;
  char *path; /* raw path, no query */
  char *segs[HUB_MAX_URL_SEGMENTS];
  size_t nsegs;
  hub_param params[HUB_MAX_QUERY_PARAMS];
  size_t nparams;
  char *query; /* raw query string (may be "") */

  const hub_route *route;
  int route_index;
  int repo_type;             /* HUB_REPO_MODEL / DATASET / SPACE */
  char *repo_ns, *repo_name; /* decoded, from {repo} */
  int has_dot_git;
  char *cap[4];
  size_t ncap;
  char **rest;
  size_t nrest;

  hub_identity who;
  db_repo repo;  /* loaded when the route has {repo}; repo.id == 0 otherwise */
  int repo_perm; /* the caller's permission on repo (PERM_*) */
  /* NEED_REPO_STATS: repo's stats for http_stats_viewer(r), read with the row; a handler
   * that uses them takes them (http_take_repo_stats), else they are freed with r. */
  db_repo_stats repo_stats;
  int repo_stats_ready;

  hub_buf body;
  size_t body_held; /* bytes of body memory drawn from the process budget (http_body_hold) */
  int body_too_big;
  int body_error;
  char err_msg[256];
  void *state;      /* handler-private, freed via a cleanup */
  void *state_repo; /* repo_handle opened for this request (api_repo_open) */

  /* response under construction */
  struct MHD_Response *resp;
  int status;
  int replied;
  int bodyless;            /* no Content-Length (or 0) and no Transfer-Encoding */
  int dispatched;          /* the handler went to a worker (connection suspended meanwhile) */
  _Atomic int worker_done; /* the worker's handler finished (resp is ready) */
  int source_pending;      /* the repo source's prepare runs on the worker first */
  int source_done;         /* prepare ran (or is not wanted again) for this request */
  int rerun;               /* an inline handler asked for a worker (http_move_to_worker) */
  int read_txn;            /* a GET/HEAD read snapshot is open (db_read_begin) */
  char request_id[33];
  char client_ip[64];
  int64_t start_us;
  uint64_t bytes_out;

  struct hub_cleanup *cleanups;
  struct hub_arena_block *arena_blocks; /* http_alloc beyond the inline block */
  size_t arena_used;
  max_align_t arena[HUB_ARENA_INLINE / sizeof(max_align_t)];
};

/* Server lifecycle. */
/* Default seconds in-flight requests get to finish after SIGTERM (--grace,
 * MODELHUB_SHUTDOWN_GRACE). */
#define HUB_SHUTDOWN_GRACE_S 30
/* Seconds requests get to end after on_grace_over stopped what they wait on (git
 * children), before the process exits regardless. */
#define HUB_SHUTDOWN_KILL_WAIT_S 5
typedef struct {
  const char *listen;          /* host:port */
  const char *public_url;      /* may be NULL: derived from Host */
  int threads_hint;            /* event threads; 0 = two per CPU (at least 4) */
  int grace_s;                 /* shutdown: seconds in-flight requests get to finish */
  void (*on_grace_over)(void); /* may be NULL: the grace ran out with requests running */
} http_config;

int http_routes_add(const hub_route *table); /* NULL-pattern terminated, static storage */
/* Serve until SIGINT/SIGTERM, then drain: stop accepting connections, answer requests
 * that arrive on open connections with 503 + Connection: close, let requests in flight
 * finish (their responses carry Connection: close) for up to grace_s seconds, and return
 * as soon as none is left. When the grace runs out (or a second signal comes),
 * on_grace_over runs and requests get HUB_SHUTDOWN_KILL_WAIT_S more seconds. */
int http_serve(const http_config *cfg);

/* Per-request helpers. */
/* Memory owned by the request: valid until it ends, released all at once (no free). */
void *http_alloc(hub_req *r, size_t n);
char *http_strdup(hub_req *r, const char *s);
/* Run fn(arg) when the request ends (newest first, before its memory is released). */
void http_cleanup_add(hub_req *r, void (*fn)(void *), void *arg);
const char *http_param(hub_req *r, const char *key); /* decoded query value or NULL */
/* Repeated keys: fills up to max values; returns count. Accepts "key" and "key[]". */
size_t http_params(hub_req *r, const char *key, const char **out, size_t max);
int http_param_bool(hub_req *r, const char *key, int dflt);
const char *http_header(hub_req *r, const char *name);
/* The request's client address as text ("127.0.0.1"; borrowed for the request): the
 * socket's peer, or behind a load balancer listed in MODELHUB_TRUSTED_PROXIES the last
 * X-Forwarded-For hop that is not one of them. */
const char *http_client_ip(hub_req *r);
/* `ip` is one of the comma- or space-separated addresses in `list` (an IPv4-mapped IPv6
 * address matches its IPv4 form). */
int http_ip_listed(const char *list, const char *ip);
/* Whose view of a repo's stats the caller gets (db_repo_stats_get's viewer and admin
 * flag): a fine-grained token sees the public counts, as its scoped listings do. */
void http_stats_viewer(const hub_req *r, int64_t *viewer, int *admin);
/* The stats the router read for repo (NEED_REPO_STATS), moved into *out (the caller
 * disposes them): 1, or 0 when there are none for that repo (read them yourself). */
int http_take_repo_stats(hub_req *r, const db_repo *repo, db_repo_stats *out);
/* The request now holds `bytes` of request-body data in memory (replacing its previous
 * amount), drawn from the process-wide budget (MODELHUB_BODY_MEMORY_MAX). Growing past the
 * budget fails with HUB_EBUSY (503 + Retry-After) and keeps the previous amount; shrinking
 * always works. Whatever is held is given back when the request ends. Streamed routes that
 * buffer (NDJSON lines) call it; buffered routes are accounted by the layer. */
int http_body_hold(hub_req *r, size_t bytes);
/* JSON body as an object (borrowed until request end) or NULL with a HUB_EINVALID set. */
json_t *http_body_json(hub_req *r);
/* Base URL clients can reach: --public-url, else http://Host. No trailing '/'. */
const char *http_base_url(hub_req *r);
/* "datasets/" / "spaces/" / "" for the repo type. */
const char *http_type_prefix(int repo_type);
const char *http_type_api(int repo_type);        /* "models" / "datasets" / "spaces" */
const char *http_type_name(int repo_type);       /* "model" / "dataset" / "space" */
int http_type_parse(const char *name, int *out); /* "model"/"dataset"/"space" */

/* Responses: each queues one response. Headers added with http_add_header after the
 * response is created. */
int http_reply_json(hub_req *r, int status, json_t *body); /* steals body */
int http_reply_data(hub_req *r, int status, const char *ctype, const void *data, size_t len);
/* A body-less response that still announces Content-Length: len (HEAD answers). */
int http_reply_data_len(hub_req *r, int status, const char *ctype, uint64_t len);
int http_reply_fd(hub_req *r, int status, const char *ctype, int fd, uint64_t off, uint64_t len);
/* Bytes [off, off + len) of blob `oid`: sendfile from a file descriptor where the store has
 * one (disk), else a stream of a ranged read (S3). The caller has checked the range against
 * the object's size (blob_stat). */
struct blob_store;
int http_reply_blob(hub_req *r, int status, const char *ctype, struct blob_store *store,
                    const char *oid, uint64_t off, uint64_t len);
/* With --blob-redirect on an object store: 302 to a short-lived presigned URL of blob
 * `oid` (`range` "bytes=a-b" bound into it, or NULL), so the bytes go straight from the
 * store. HUB_EUNSUPPORTED (nothing replied) when redirects are off or the store is a disk:
 * the caller then sends the bytes itself. The caller adds its headers as usual. */
int http_reply_blob_redirect(hub_req *r, struct blob_store *store, const char *oid,
                             const char *range);
/* A body produced by cb (n > 0 bytes, 0 at the end, < 0 on error). cb runs on a thread of
 * its own and may block; payload is freed with free_cb once the response is done. */
typedef ssize_t (*http_stream_cb)(void *payload, uint64_t pos, char *buf, size_t max);
int http_reply_stream(hub_req *r, int status, const char *ctype, uint64_t size_or_unknown,
                      http_stream_cb cb, void *payload, void (*free_cb)(void *));
/* The error response for a HUB_E* code in the route's error style (ERR_*), with the
 * message of hub_error_msg() when it belongs to this code. The router calls it for its own
 * refusals and for a handler that returned a negative code without replying. */
int http_reply_error(hub_req *r, int code);
int http_reply_redirect(hub_req *r, int status, const char *location);
/* Headers on the response queued by the last http_reply_* (call after it). */
void http_add_header(hub_req *r, const char *name, const char *value);

/* Hooks set by higher layers at start-up (before http_serve), so that this layer needs no
 * include of them (docs/architecture.md, "Layers"). */
/* Identify the caller of a request without an Authorization header (web/: the session
 * cookie). Leaves *out anonymous when it does not know the caller; never fails. */
typedef int (*http_identify_fn)(hub_req *r, hub_identity *out);
void http_set_cookie_identify(http_identify_fn fn);
/* Draw the error page of an ERR_HTML route (web/): `status` and `title` come from the one
 * code→status table (http/errors.c), `msg` is the client-safe message. Return 0 when a
 * response was queued; anything else falls back to Hub JSON. */
typedef int (*http_error_page_fn)(hub_req *r, int code, int status, const char *title,
                                  const char *msg);
void http_set_error_page(http_error_page_fn fn);

/* Where repos that are not here may come from (mirror/, wired by main.c): consulted by the
 * router for body-less requests (GET/HEAD) that name a repo.
 * - missing(r): the repo is not here. On the event thread (read-only, no waiting): 1 when
 *   prepare should try to bring it (the request then moves to a worker), 0 for a plain 404.
 * - stale(r): the repo is here and the caller may read it: 1 when prepare should refresh
 *   it first (on a worker).
 * - prepare(r): on a worker: fetch or refresh. 0 = go on (the repo is looked up and
 *   authorized again); a negative code = the request fails with it (prepare may reply
 *   itself, e.g. with Retry-After).
 * - may_write(r, want): any request on an existing repo: 0, or an error code refusing it
 *   (read-only copies). `want` is the permission the route needs (PERM_*). */
typedef struct {
  int (*missing)(hub_req *r);
  int (*stale)(hub_req *r);
  int (*prepare)(hub_req *r);
  int (*may_write)(hub_req *r, int want);
} http_repo_source;
void http_set_repo_source(const http_repo_source *src);
/* A RUN_INLINE handler that finds it must block (a mirror fetch): on an event thread this
 * returns 1, and the handler must return 0 at once without replying — it runs again on a
 * worker. On a worker it returns 0 (go on). */
int http_move_to_worker(hub_req *r);

/* Prometheus text for the request counters and latency histogram. */
void http_metrics_text(hub_buf *out);

extern const char *const HUB_VERSION;

#endif
