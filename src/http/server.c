/* libmicrohttpd glue: request context life cycle, routing, auth, body intake. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/forwarded.h"
#include "http/http.h"
#include "http/internal.h"
#include "http/router.h"
#include "util/error.h"
#include "util/thread.h"

#define MAX_TABLES 32
static const hub_route *g_tables[MAX_TABLES];
static int g_ntables;
static http_config g_cfg;
static long g_inline_budget = HUB_INLINE_BUDGET; /* MODELHUB_INLINE_BUDGET overrides */
static char g_listen_url[256];
/* Shutdown: requests alive (first access_cb call .. completed_cb) and the drain flag. */
static _Atomic int g_inflight;
static _Atomic int g_draining;
static _Atomic int g_suspended; /* connections suspended while a worker runs their handler */

int http_routes_add(const hub_route *table) {
  if (g_ntables >= MAX_TABLES) return hub_error_set(HUB_ERROR, "too many route tables");
  g_tables[g_ntables++] = table;
  return 0;
}

static int64_t now_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Request arena: blocks of memory released together when the request ends. The first
 * block is part of the request context, so most requests allocate nothing more. */
struct hub_arena_block {
  struct hub_arena_block *next;
  size_t cap, used;
  max_align_t data[];
};

void *http_alloc(hub_req *r, size_t n) {
  const size_t align = sizeof(max_align_t);
  n = (n + align - 1) / align * align;
  if (n == 0) n = align;
  if (r->arena_used + n <= sizeof r->arena) {
    void *p = (char *)r->arena + r->arena_used;
    r->arena_used += n;
    return p;
  }
  struct hub_arena_block *b = r->arena_blocks;
  if (!b || b->used + n > b->cap) {
    size_t cap = n > HUB_ARENA_BLOCK ? n : HUB_ARENA_BLOCK;
    b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = r->arena_blocks;
    r->arena_blocks = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  return p;
}

char *http_strdup(hub_req *r, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = http_alloc(r, n);
  if (d) memcpy(d, s, n);
  return d;
}

struct hub_cleanup {
  void (*fn)(void *);
  void *arg;
  struct hub_cleanup *next;
};

void http_cleanup_add(hub_req *r, void (*fn)(void *), void *arg) {
  struct hub_cleanup *c = http_alloc(r, sizeof *c);
  if (!c) {
    fn(arg); /* cannot defer: release now rather than leak */
    return;
  }
  c->fn = fn;
  c->arg = arg;
  c->next = r->cleanups;
  r->cleanups = c;
}

void http_stats_viewer(const hub_req *r, int64_t *viewer, int *admin) {
  *viewer = r->who.authenticated ? r->who.user_id : 0;
  /* childrenModelCount counts private children the viewer may see; a fine-grained token
   * may not see its user's other private repos, so it gets the public count (as lineage's
   * rows are filtered per scope). */
  if (r->who.authenticated && r->who.token_role == PERM_FINE_GRAINED) *viewer = 0;
  *admin = r->who.authenticated && r->who.is_admin;
}

int http_take_repo_stats(hub_req *r, const db_repo *repo, db_repo_stats *out) {
  if (!r->repo_stats_ready || repo->id != r->repo.id) return 0;
  *out = r->repo_stats;
  memset(&r->repo_stats, 0, sizeof r->repo_stats);
  r->repo_stats_ready = 0;
  return 1;
}

void http__req_free(hub_req *r) {
  if (r->repo_stats_ready) db_repo_stats_dispose(&r->repo_stats);
  /* Cleanups run newest first, before the arena (which may hold their arguments). */
  while (r->cleanups) {
    struct hub_cleanup *c = r->cleanups;
    r->cleanups = c->next;
    c->fn(c->arg);
  }
  hub_buf_dispose(&r->body);
  http__body_release(r);
  if (r->resp) MHD_destroy_response(r->resp);
  while (r->arena_blocks) {
    struct hub_arena_block *b = r->arena_blocks;
    r->arena_blocks = b->next;
    free(b);
  }
  free(r);
}

const char *http_header(hub_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) {
  return strlen(s);
}

struct qctx {
  hub_req *r;
  hub_buf raw;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  struct qctx *q = cls;
  hub_req *r = q->r;
  if (r->nparams >= HUB_MAX_QUERY_PARAMS) return MHD_NO;
  if (q->raw.len) hub_buf_putc(&q->raw, '&');
  hub_buf_puts(&q->raw, key);
  if (value) {
    hub_buf_putc(&q->raw, '=');
    hub_buf_puts(&q->raw, value);
  }
  char *k = http_strdup(r, key), *v = http_strdup(r, value ? value : "");
  if (!k || !v || http_pct_decode(k, 1) || http_pct_decode(v, 1))
    return MHD_YES; /* a malformed parameter is ignored, like an absent one */
  r->params[r->nparams].key = k;
  r->params[r->nparams].value = v;
  r->nparams++;
  return MHD_YES;
}

static int match_route(hub_req *r, int *method_mismatch) {
  router_match_t m;
  *method_mismatch = 0;
  int idx = 0;
  for (int t = 0; t < g_ntables; t++)
    for (const hub_route *rt = g_tables[t]; rt->pattern; rt++, idx++) {
      if (!router_match(rt->pattern, r->segs, r->nsegs, &m)) continue;
      int same =
          strcmp(rt->method, r->method) == 0 || (r->is_head && strcmp(rt->method, "GET") == 0);
      if (!same) {
        *method_mismatch = 1;
        continue;
      }
      r->route = rt;
      r->route_index = idx;
      r->repo_type = m.repo_type;
      for (size_t i = 0; i < m.ncap; i++)
        r->cap[i] = r->segs[m.cap[i]];
      r->ncap = m.ncap;
      if (m.has_rest) {
        r->rest = r->segs + m.rest;
        r->nrest = r->nsegs - m.rest;
      }
      if (m.has_repo) {
        r->repo_ns = http_strdup(r, r->segs[m.repo_seg]);
        r->repo_name = http_strdup(r, r->segs[m.repo_seg + 1]);
        if (!r->repo_ns || !r->repo_name) return hub_error_set(HUB_ERROR, "out of memory");
        if (m.dot_git) {
          r->has_dot_git = 1;
          r->repo_name[strlen(r->repo_name) - 4] = 0;
        }
        if (http_pct_decode(r->repo_ns, 0) || http_pct_decode(r->repo_name, 0))
          return hub_error_set(HUB_EREPO, "Repository not found");
      }
      return 1;
    }
  return 0;
}

/* 307 to the repo's new name: same path and query, namespace/name replaced. */
static int redirect_moved(hub_req *r, const db_repo *now) {
  hub_buf loc = HUB_BUF_INIT;
  int skip = -1;
  /* Find the namespace segment again: it is the one whose decoded value we hold. */
  for (size_t i = 0; i + 1 < r->nsegs; i++) {
    char a[HUB_MAX_NAME * 3 + 1], b[HUB_MAX_NAME * 3 + 1];
    snprintf(a, sizeof a, "%s", r->segs[i]);
    snprintf(b, sizeof b, "%s", r->segs[i + 1]);
    http_pct_decode(a, 0);
    http_pct_decode(b, 0);
    size_t bl = strlen(b);
    if (r->has_dot_git && bl > 4) b[bl - 4] = 0;
    if (strcmp(a, r->repo_ns) == 0 && strcmp(b, r->repo_name) == 0) {
      skip = (int)i;
      break;
    }
  }
  for (size_t i = 0; i < r->nsegs; i++) {
    hub_buf_putc(&loc, '/');
    if ((int)i == skip) {
      hub_buf_printf(&loc, "%s/%s%s", now->ns, now->name, r->has_dot_git ? ".git" : "");
      i++;
    } else {
      hub_buf_puts(&loc, r->segs[i]);
    }
  }
  if (r->query && *r->query) hub_buf_printf(&loc, "?%s", r->query);
  int rc = loc.failed ? HUB_ERROR : http_reply_redirect(r, 307, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}

static const http_repo_source *g_source; /* http_set_repo_source (mirror/) */
static _Thread_local int t_event_thread; /* this thread runs libmicrohttpd callbacks */

void http_set_repo_source(const http_repo_source *src) {
  g_source = src;
}

int http_move_to_worker(hub_req *r) {
  if (!t_event_thread) return 0;
  r->rerun = 1;
  return 1;
}

/* Authorize the caller for the route. Returns 0 to proceed, 1 when a response was
 * queued (redirect), 2 when the repo source must prepare the repo on a worker first, or a
 * HUB_E* code. */
static int authorize(hub_req *r) {
  const hub_route *rt = r->route;
  unsigned needs = rt->needs;
  if ((needs & NEED_LOGIN) && !r->who.authenticated)
    return hub_error_set(HUB_EAUTH, "You must be authenticated to do this");
  /* Site-admin routes need the admin's full credential (write token, session, CLI). */
  if ((needs & NEED_SITE_ADMIN) && !(auth_full_credential(&r->who) && r->who.is_admin))
    return hub_error_set(r->who.authenticated ? HUB_EFORBIDDEN : HUB_EAUTH,
                         "Site administrator rights required");
  if (!r->repo_ns) return 0;
  /* The row (and, for repo info, its stats) read before the handler's snapshot, shared
   * with concurrent requests for the same repo on PostgreSQL (db_repo_get_shared). */
  int64_t viewer = 0;
  int admin = 0;
  if (r->repo_stats_ready) db_repo_stats_dispose(&r->repo_stats); /* authorized again */
  r->repo_stats_ready = 0;
  int with_stats = (needs & NEED_REPO_STATS) != 0;
  if (with_stats) http_stats_viewer(r, &viewer, &admin);
  int rc = db_repo_get_shared(r->repo_type, r->repo_ns, r->repo_name, viewer, admin, &r->repo,
                              with_stats ? &r->repo_stats : NULL);
  r->repo_stats_ready = with_stats && rc == 0;
  /* A database that cannot answer is a 503, never "not found": a client would give up on a
   * repo that exists. */
  if (rc && rc != HUB_EREPO) {
    memset(&r->repo, 0, sizeof r->repo);
    return rc;
  }
  if (rc == HUB_EREPO && !(needs & NEED_NO_REDIRECT)) {
    db_repo moved;
    if (db_repo_redirect(r->repo_type, r->repo_ns, r->repo_name, &moved) == 0 &&
        auth_repo_perm(&r->who, &moved) >= PERM_READ) {
      rc = redirect_moved(r, &moved);
      return rc ? rc : 1;
    }
  }
  /* git clients only send credentials after a 401, so to them a repo they cannot see
   * is "authentication required" rather than "not found" (it reveals nothing more). */
  int challenge = (needs & NEED_GIT_CHALLENGE) && !r->who.authenticated;
  if (rc) {
    memset(&r->repo, 0, sizeof r->repo);
    /* Not here: a repo source (mirror/) may bring it, on a worker (a JSON body is read
     * first: LFS batch downloads, paths-info). */
    if (rc == HUB_EREPO && g_source && !r->source_done &&
        (r->bodyless || r->route->body == BODY_JSON) && g_source->missing(r))
      return 2;
    if (challenge) return hub_error_set(HUB_EAUTH, "Authentication required");
    return hub_error_set(HUB_EREPO, "Repository not found");
  }
  r->repo_perm = auth_repo_perm(&r->who, &r->repo);
  if (auth_out_of_scope(&r->who, &r->repo) &&
      (needs & (NEED_REPO_READ | NEED_REPO_WRITE | NEED_REPO_ADMIN | NEED_REPO_FILES))) {
    /* Say "out of scope" only where the user could see the repo without the scopes. */
    hub_identity unscoped = r->who;
    unscoped.token_role = PERM_WRITE;
    unscoped.nscopes = 0;
    if (auth_repo_perm(&unscoped, &r->repo) < PERM_READ)
      return hub_error_set(HUB_EREPO, "Repository not found");
    return hub_error_set(HUB_EFORBIDDEN, "This token's scopes do not include %s/%s", r->repo.ns,
                         r->repo.name);
  }
  int want = (needs & NEED_REPO_ADMIN)                      ? PERM_ADMIN
             : (needs & NEED_REPO_WRITE)                    ? PERM_WRITE
             : (needs & (NEED_REPO_READ | NEED_REPO_FILES)) ? PERM_READ
                                                            : PERM_NONE;
  if (r->repo_perm < PERM_READ && want > PERM_NONE) {
    if (challenge) return hub_error_set(HUB_EAUTH, "Authentication required");
    return hub_error_set(HUB_EREPO, "Repository not found");
  }
  if (g_source && (rc = g_source->may_write(r, want))) return rc;
  if (r->repo_perm < want) {
    if (!r->who.authenticated)
      return hub_error_set(HUB_EAUTH, "You must be authenticated to write to %s/%s", r->repo.ns,
                           r->repo.name);
    return hub_error_set(HUB_EFORBIDDEN, "You don't have the rights to %s %s/%s",
                         want == PERM_ADMIN ? "administer" : "write to", r->repo.ns, r->repo.name);
  }
  /* Gated repos: card and metadata stay visible; files, trees, LFS and git need an
   * accepted access request (hf-api.md §1.6). */
  if ((needs & NEED_REPO_FILES) && !auth_gate_allows(&r->who, &r->repo, r->repo_perm)) {
    if (!r->who.authenticated && (needs & NEED_GIT_CHALLENGE))
      return hub_error_set(HUB_EAUTH, "Authentication required: %s/%s is gated", r->repo.ns,
                           r->repo.name);
    return hub_error_set(HUB_EGATED,
                         "Access to %s/%s is restricted. You must have access to it and be "
                         "authenticated to access it. Ask for access on its page first.",
                         r->repo.ns, r->repo.name);
  }
  if (r->repo.disabled && want > PERM_NONE && !(r->who.is_admin))
    return hub_error_set(HUB_EFORBIDDEN, "Access to this resource is disabled.");
  if (g_source && !r->source_done && r->bodyless && g_source->stale(r)) return 2;
  return 0;
}

/* Request ids only need to be unique, not secret: a per-thread random seed from OpenSSL
 * once, then a xorshift step per request (no locks, no syscalls on the hot path). */
static void gen_request_id(char out[33]) {
  static _Thread_local uint64_t s[2];
  static const char hex[] = "0123456789abcdef";
  if (!s[0] && !s[1]) {
    RAND_bytes((unsigned char *)s, sizeof s);
    s[0] |= 1;
  }
  for (int half = 0; half < 2; half++) {
    uint64_t x = s[0], y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    uint64_t v = s[1] + y;
    for (int i = 0; i < 16; i++)
      out[half * 16 + i] = hex[(v >> (60 - 4 * i)) & 15];
  }
  out[32] = 0;
}

static enum MHD_Result queue(hub_req *r) {
  if (!r->resp) {
    hub_error_set(HUB_ERROR, "handler sent no response");
    http_reply_error(r, HUB_ERROR);
  }
  http__finish_headers(r);
  /* Draining for a shutdown: finish this request, but take no more on this connection. */
  if (g_draining) http_add_header(r, "Connection", "close");
  if (r->status == 401 && r->route && (r->route->needs & NEED_GIT_CHALLENGE)) {
    http_add_header(r, "WWW-Authenticate", "Basic realm=\"modelhub\"");
    http_add_header(r, "LFS-Authenticate", "Basic realm=\"modelhub\"");
  }
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
  MHD_destroy_response(r->resp);
  r->resp = NULL;
  return ok;
}

static enum MHD_Result fail(hub_req *r, int code) {
  r->resp = NULL;
  http_reply_error(r, code);
  return queue(r);
}

static size_t body_limit(const hub_route *rt) {
  if (rt->body_max) return rt->body_max;
  return rt->body == BODY_LARGE ? (size_t)HUB_MAX_COMMIT_BODY : (size_t)HUB_MAX_JSON_BODY;
}

/* Produce the response: any thread (the event thread for RUN_INLINE routes, else a
 * worker). GET/HEAD handlers read one snapshot, unless the router's is still open. */
static void run_handler(hub_req *r) {
  int own_txn = !r->read_txn && (!strcmp(r->method, "GET") || r->is_head);
  if (own_txn) db_read_begin();
  hub_error_clear();
  int rc = r->route->handler(r);
  if (own_txn) db_read_end();
  if (r->read_txn) {
    db_read_end();
    r->read_txn = 0;
  }
  if (rc < 0 && !r->resp) http_reply_error(r, rc);
}

/* The response is queued by the event thread when libmicrohttpd calls access_cb again
 * after the resume: queueing from here would let libmicrohttpd run the connection's state
 * machine on this thread, racing with the event thread that suspended it. */
static int source_prepare(hub_req *r);
static void worker_job(void *arg) {
  hub_req *r = arg;
  if (!r->source_pending || !source_prepare(r)) run_handler(r);
  /* Whatever this request changed stays unannounced until no node can still serve an
   * older copy from its repo cache (db_write_fence, db/db.h). */
  db_write_fence();
  r->worker_done = 1;
  MHD_resume_connection(r->conn); /* from here the event thread owns r again */
}

/* Drop what a RUN_INLINE_TRY handler produced before it runs again on a worker. */
static void reset_reply(hub_req *r) {
  if (r->resp) MHD_destroy_response(r->resp);
  r->resp = NULL;
  r->status = 0;
  r->replied = 0;
  r->bytes_out = 0;
}

/* On the worker, before the handler: the repo source brings or refreshes the repo, which
 * is then looked up and authorized again. 0 = run the handler; 1 = a response is queued. */
static int source_prepare(hub_req *r) {
  r->source_pending = 0;
  r->source_done = 1;
  hub_error_clear();
  int rc = g_source->prepare(r);
  /* What the source brought (another thread's writes) is told of below: not before every
   * node's repo cache is newer (db_visibility_wait). */
  if (!rc) db_visibility_wait();
  if (r->resp) return 1;
  if (!rc) {
    db_read_begin();
    rc = authorize(r);
    db_read_end();
    if (rc == 1) return 1;
    if (rc == 2) rc = 0;
  }
  if (!rc && r->route->on_body) rc = r->route->on_body(r, "", 0);
  if (!rc) return 0;
  if (!r->resp) http_reply_error(r, rc);
  return 1;
}

/* The request is complete: run its handler inline or hand it to a worker. */
static enum MHD_Result dispatch(hub_req *r) {
  if ((r->route->needs & RUN_INLINE) && !r->source_pending) {
    run_handler(r);
    if (!r->rerun) return queue(r);
    r->rerun = 0;
    reset_reply(r);
  } else if ((r->route->needs & RUN_INLINE_TRY) && !r->source_pending) {
    db_budget_set(g_inline_budget, HUB_INLINE_BUDGET_US);
    run_handler(r);
    int over = db_budget_exceeded();
    db_budget_set(0, 0);
    if (!over && !r->rerun) return queue(r);
    r->rerun = 0;
    reset_reply(r);
    if (over) http__metrics_escalated();
  }
  if (r->read_txn) { /* the worker takes its own snapshot on its own connection */
    db_read_end();
    r->read_txn = 0;
  }
  r->dispatched = 1;
  g_suspended++;
  MHD_suspend_connection(r->conn);
  if (http__worker_submit(worker_job, r)) {
    MHD_resume_connection(r->conn);
    r->dispatched = 0;
    g_suspended--;
    return fail(r, HUB_ERROR);
  }
  return MHD_YES;
}

/* A request without a body: no Content-Length (or 0) and no Transfer-Encoding. */
static int bodyless(hub_req *r) {
  const char *cl = http_header(r, "Content-Length");
  return !http_header(r, "Transfer-Encoding") && (!cl || strtoull(cl, NULL, 10) == 0);
}

/* The body length the client announced: 0 when body-less, UINT64_MAX when unknown
 * (chunked). */
static uint64_t announced_len(hub_req *r) {
  if (r->bodyless) return 0;
  const char *cl = http_header(r, "Content-Length");
  if (!cl || http_header(r, "Transfer-Encoding")) return UINT64_MAX;
  return strtoull(cl, NULL, 10);
}

/* Refuse a request before reading its body. A small announced body (HUB_MAX_DISCARD_BODY)
 * is read and dropped first, so the connection stays usable and a client that writes its
 * whole body before reading gets the answer; a larger or chunked one is answered at once,
 * and libmicrohttpd closes the connection without reading it (it does so for a POST or
 * PUT answered on the first call), so refusing a hostile upload costs nothing. */
static enum MHD_Result refuse(hub_req *r, int code) {
  const char *expect = http_header(r, "Expect");
  /* A client waiting for 100-continue has sent nothing: answer it now, whatever the size. */
  if (r->bodyless || announced_len(r) > HUB_MAX_DISCARD_BODY ||
      (expect && strcasecmp(expect, "100-continue") == 0))
    return fail(r, code);
  r->body_error = code;
  snprintf(r->err_msg, sizeof r->err_msg, "%s", hub_error_msg());
  return MHD_YES;
}

static enum MHD_Result first_call_inner(hub_req *r, const char *url) {
  if (strlen(url) > HUB_MAX_URL) return fail(r, hub_error_set(HUB_ETOOBIG, "URL too long"));
  r->path = http_strdup(r, url);
  char *split = http_strdup(r, url);
  if (!r->path || !split) return fail(r, hub_error_set(HUB_ERROR, "out of memory"));
  if (router_split(split, r->segs, HUB_MAX_URL_SEGMENTS, &r->nsegs))
    return fail(r, hub_error_set(HUB_EINVALID, "Malformed request path"));
  struct qctx q = {r, HUB_BUF_INIT};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
  r->query = http_strdup(r, q.raw.ptr ? q.raw.ptr : "");
  hub_buf_dispose(&q.raw);

  if (strcmp(r->method, "OPTIONS") == 0) {
    http_reply_data(r, 204, NULL, "", 0);
    http_add_header(r, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS");
    http_add_header(r, "Access-Control-Allow-Headers",
                    "Authorization, Range, Content-Type, X-Request-Id, Accept, Git-Protocol");
    http_add_header(r, "Access-Control-Max-Age", "86400");
    return queue(r);
  }
  /* Everything up to the handler is decided from the request line and headers: no body
   * byte is read before the caller is known to be allowed to send it. */
  int mismatch = 0;
  int m = match_route(r, &mismatch);
  if (m < 0) return refuse(r, m);
  if (!m)
    return refuse(r, mismatch ? hub_error_set(HUB_EMETHOD, "Method %s not allowed here", r->method)
                              : hub_error_set(HUB_ENOTFOUND, "Sorry, we can't find the page "
                                                             "you are looking for."));
  int rc = http__authenticate(r);
  if (rc) return refuse(r, rc);
  rc = authorize(r);
  if (rc == 1) return queue(r);
  if (rc == 2) { /* the repo source prepares the repo on a worker (after the body) */
    r->source_pending = 1;
    if (r->bodyless) return dispatch(r);
    rc = 0;
  }
  if (rc) return refuse(r, rc);
  if (r->route->on_body && !r->source_pending && (rc = r->route->on_body(r, "", 0)))
    return refuse(r, rc);
  uint64_t announced = announced_len(r);
  if (r->route->body == BODY_JSON || r->route->body == BODY_LARGE) {
    hub_buf_init(&r->body, body_limit(r->route));
    /* An announced oversized body is not buffered, but it is still read (and dropped)
     * before the 413 goes out: clients that write the whole body before reading would
     * otherwise see a reset connection instead of the answer. An announced body that fits
     * takes its share of the memory budget now (503 when that is spent). */
    if (announced != UINT64_MAX && announced > body_limit(r->route))
      r->body_too_big = 1;
    else if (announced != UINT64_MAX && announced && (rc = http_body_hold(r, announced)))
      return refuse(r, rc);
  }
  if (r->bodyless) return dispatch(r); /* complete already */
  return MHD_YES;
}

/* Routing, authorization and, for a body-less request, the handler. A body-less request
 * is handled on the second call, when libmicrohttpd knows the request is complete: a
 * response queued on the first one makes it close the connection after sending, in case
 * a body was left unread — no keep-alive. GET/HEAD take one read snapshot for the
 * router's and the handler's queries; it never outlives the call, because an event thread
 * serves other connections in between. */
static enum MHD_Result first_call(hub_req *r, const char *url) {
  if ((!strcmp(r->method, "GET") || r->is_head) && r->bodyless) {
    db_read_begin();
    r->read_txn = 1;
  }
  enum MHD_Result ok = first_call_inner(r, url);
  if (r->read_txn) {
    db_read_end();
    r->read_txn = 0;
  }
  return ok;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  hub_req *r = *con_cls;
  if (!t_event_thread) { /* what runs here never writes: inline handlers, router checks */
    t_event_thread = 1;
    db_thread_readonly();
  }
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    *con_cls = r;
    r->conn = conn;
    r->method = method;
    r->is_head = strcmp(method, "HEAD") == 0;
    r->start_us = now_us();
    gen_request_id(r->request_id);
    hub_error_clear();
    r->bodyless = bodyless(r);
    http__conn_request_begin(conn); /* headers complete: the header deadline is met */
    g_inflight++;
    if (g_draining) /* a new request on a kept-alive connection during the drain */
      return fail(
          r, hub_error_set(HUB_EUNAVAILABLE, "The hub is shutting down; try again in a moment."));
    return r->bodyless ? MHD_YES : first_call(r, url);
  }
  if (r->bodyless && !r->path && !r->replied) { /* the deferred first call */
    hub_error_clear();
    return first_call(r, url);
  }
  if (r->dispatched) { /* resumed: the worker's response is ready */
    if (!r->worker_done) return MHD_YES;
    r->dispatched = 0;
    g_suspended--;
    return queue(r);
  }
  if (r->replied) { /* error already queued: swallow the rest of the body */
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (r->body_error || r->body_too_big) return MHD_YES;
    if (r->route->body == BODY_STREAM && r->route->on_body) {
      int rc = r->route->on_body(r, upload_data, n);
      if (rc) {
        r->body_error = rc;
        snprintf(r->err_msg, sizeof r->err_msg, "%s", hub_error_msg());
      }
    } else if (r->route->body == BODY_JSON || r->route->body == BODY_LARGE) {
      /* Chunked bodies (and any bytes past the announced length) draw on the budget as
       * they come. */
      int rc = r->body.len + n > r->body_held ? http_body_hold(r, r->body.len + n) : 0;
      if (rc) {
        r->body_error = rc;
        snprintf(r->err_msg, sizeof r->err_msg, "%s", hub_error_msg());
        hub_buf_dispose(&r->body);
        http_body_hold(r, 0);
      } else if (hub_buf_put(&r->body, upload_data, n)) {
        r->body_too_big = 1; /* the rest is dropped: give the memory back now */
        hub_buf_dispose(&r->body);
        http_body_hold(r, 0);
      }
    }
    return MHD_YES;
  }
  /* Body complete: run the handler. */
  if (r->body_too_big)
    return fail(r, hub_error_set(HUB_ETOOBIG, "Request body too large (limit %zu bytes)",
                                 body_limit(r->route)));
  if (r->body_error) {
    hub_error_set(r->body_error, "%s", r->err_msg);
    return fail(r, r->body_error);
  }
  return dispatch(r);
}

/* Access log: one line per request, buffered per event thread like nginx's
 * `access_log … buffer=`: written when half of the 8 KiB is pending, and by a flusher
 * thread within a second otherwise. Saves a write(2) per request. */
#define ACCESS_LOG_BUF 8192
#define ACCESS_LOG_MAX_THREADS 256
typedef struct {
  pthread_mutex_t mu; /* the owner thread and the flusher */
  char buf[ACCESS_LOG_BUF];
  size_t len;
} log_buf;
static pthread_mutex_t g_logs_mu = PTHREAD_MUTEX_INITIALIZER;
static log_buf *g_logs[ACCESS_LOG_MAX_THREADS];
static int g_nlogs;
static _Thread_local log_buf *t_log;
static _Thread_local int t_log_failed;

static void log_flush(log_buf *lb) {
  size_t off = 0;
  while (off < lb->len) {
    ssize_t n = write(STDERR_FILENO, lb->buf + off, lb->len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  lb->len = 0;
}

static void logs_flush_all(void) {
  pthread_mutex_lock(&g_logs_mu);
  for (int i = 0; i < g_nlogs; i++) {
    pthread_mutex_lock(&g_logs[i]->mu);
    log_flush(g_logs[i]);
    pthread_mutex_unlock(&g_logs[i]->mu);
  }
  pthread_mutex_unlock(&g_logs_mu);
}

static pthread_mutex_t g_flusher_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_flusher_cv = PTHREAD_COND_INITIALIZER;
static int g_flusher_stop;

static void *log_flusher(void *unused) {
  (void)unused;
  pthread_mutex_lock(&g_flusher_mu);
  while (!g_flusher_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_cond_timedwait(&g_flusher_cv, &g_flusher_mu, &until);
    logs_flush_all();
  }
  pthread_mutex_unlock(&g_flusher_mu);
  return NULL;
}

/* This thread's buffer, registered with the flusher; NULL means unbuffered. Buffers live
 * as long as the process (event threads do). */
static log_buf *log_mine(void) {
  if (t_log || t_log_failed) return t_log;
  log_buf *lb = calloc(1, sizeof *lb);
  pthread_mutex_lock(&g_logs_mu);
  if (lb && g_nlogs < ACCESS_LOG_MAX_THREADS) {
    pthread_mutex_init(&lb->mu, NULL);
    g_logs[g_nlogs++] = lb;
    t_log = lb;
  } else {
    free(lb);
    t_log_failed = 1;
  }
  pthread_mutex_unlock(&g_logs_mu);
  return t_log;
}

static void access_log(hub_req *r, int64_t dur, int complete) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  char ts[32], line[1024];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  int n =
      snprintf(line, sizeof line, "%s %s %s%s%s %d %.1fms rid=%s user=%s%s\n", ts, r->method,
               r->path ? r->path : "?", r->query && *r->query ? "?" : "", r->query ? r->query : "",
               r->status ? r->status : 499, (double)dur / 1000.0, r->request_id,
               r->who.authenticated ? r->who.name : "-", complete ? "" : " (aborted)");
  if (n < 0) return;
  if ((size_t)n >= sizeof line) { /* keep the line, just shorter */
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  log_buf *lb = log_mine();
  if (!lb) {
    fputs(line, stderr);
    return;
  }
  pthread_mutex_lock(&lb->mu);
  if (lb->len + (size_t)n > sizeof lb->buf) log_flush(lb);
  memcpy(lb->buf + lb->len, line, (size_t)n);
  lb->len += (size_t)n;
  if (lb->len > sizeof lb->buf / 2) log_flush(lb);
  pthread_mutex_unlock(&lb->mu);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  hub_req *r = *con_cls;
  http__conn_request_end(conn); /* a keep-alive connection's next headers are due */
  if (!r) return;
  if (r->read_txn) db_read_end();
  int64_t dur = now_us() - r->start_us;
  http__metrics_record(r->route ? r->route_index : -1, r->status ? r->status : 499, dur);
  access_log(r, dur, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
  http__req_free(r);
  *con_cls = NULL;
  g_inflight--;
}

int http_ip_listed(const char *list, const char *ip) {
  return http_forwarded_listed(list, ip, strlen(ip));
}

const char *http_client_ip(hub_req *r) {
  if (r->client_ip[0]) return r->client_ip;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip,
              sizeof r->client_ip);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip,
              sizeof r->client_ip);
  else
    snprintf(r->client_ip, sizeof r->client_ip, "-");
  /* Behind a trusted load balancer the client is the one X-Forwarded-For names. */
  static const char *trusted;
  static int loaded;
  if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) {
    trusted = getenv("MODELHUB_TRUSTED_PROXIES");
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
  }
  char fwd[sizeof r->client_ip];
  if (http_forwarded_client(trusted, r->client_ip, http_header(r, "X-Forwarded-For"), fwd,
                            sizeof fwd))
    memcpy(r->client_ip, fwd, sizeof fwd);
  return r->client_ip;
}

const char *http_base_url(hub_req *r) {
  if (g_cfg.public_url && *g_cfg.public_url) return g_cfg.public_url;
  const char *host = http_header(r, "Host");
  if (host && *host && strlen(host) < 200 &&
      strspn(host, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(host)) {
    char *u = http_alloc(r, strlen(host) + 8);
    if (u) {
      sprintf(u, "http://%s", host);
      return u;
    }
  }
  return g_listen_url;
}

static int nothing_in_flight(void) {
  return g_inflight == 0 && http__streams_active() == 0 && http__workers_drain(0) == 0;
}

/* The shutdown drain (http.h, http_serve). Returns 1 when no request is left. */
static int drain(struct MHD_Daemon *d, const sigset_t *set, int sig) {
  int grace = g_cfg.grace_s > 0 ? g_cfg.grace_s : 0;
  fprintf(stderr, "modelhub: signal %d, finishing %d request(s) (grace %d s)\n", sig,
          (int)g_inflight, grace);
  g_draining = 1;
  /* Refuse new connections at once (shutdown makes the socket stop listening and resets
   * what waits in its backlog); the descriptor itself stays open until the daemon stops,
   * as libmicrohttpd asks. */
  MHD_socket lfd = MHD_quiesce_daemon(d);
  if (lfd != MHD_INVALID_SOCKET) shutdown(lfd, SHUT_RDWR);
  int64_t deadline = now_us() + (int64_t)grace * 1000000;
  int over = 0;
  while (!nothing_in_flight()) {
    int64_t now = now_us();
    struct timespec tick = {0, 20 * 1000 * 1000};
    int again = sigtimedwait(set, NULL, &tick) > 0; /* a second signal: stop waiting */
    if (!over && (again || now >= deadline)) {
      over = 1;
      fprintf(stderr, "modelhub: %s with %d request(s) running; stopping them\n",
              again ? "second signal" : "grace period over", (int)g_inflight);
      if (g_cfg.on_grace_over) g_cfg.on_grace_over();
      deadline = now + (int64_t)HUB_SHUTDOWN_KILL_WAIT_S * 1000000;
    } else if (over && (again || now >= deadline)) {
      return 0;
    }
  }
  fprintf(stderr, "modelhub: no request in flight, exiting\n");
  return 1;
}

int http_serve(const http_config *cfg) {
  g_cfg = *cfg;
  const char *budget = getenv("MODELHUB_INLINE_BUDGET");
  if (budget && atol(budget) > 0) g_inline_budget = atol(budget);
  char host[256] = "127.0.0.1";
  const char *port = "8080";
  const char *colon = strrchr(cfg->listen, ':');
  if (colon) {
    size_t hl = (size_t)(colon - cfg->listen);
    if (hl >= sizeof host) return hub_error_set(HUB_EINVALID, "bad --listen");
    if (hl) {
      memcpy(host, cfg->listen, hl);
      host[hl] = 0;
    }
    port = colon + 1;
  } else {
    port = cfg->listen;
  }
  if (host[0] == '[') { /* [::1] */
    memmove(host, host + 1, strlen(host));
    char *e = strchr(host, ']');
    if (e) *e = 0;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(host, port, &hints, &ai) || !ai)
    return hub_error_set(HUB_EINVALID, "cannot resolve listen address %s", cfg->listen);
  snprintf(g_listen_url, sizeof g_listen_url, "http://%s", cfg->listen);
  /* An epoll loop per event thread (like nginx's workers): handlers that may block run
   * on worker threads while their connection is suspended (RUN_INLINE, workers.c). */
  /* MHD_USE_ITC: MHD_quiesce_daemon needs it with internal threads. */
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                   MHD_USE_TURBO | MHD_USE_ITC;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  unsigned threads = cfg->threads_hint > 0 ? (unsigned)cfg->threads_hint : HUB_EVENT_THREADS;
  if (!threads) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    threads = ncpu < 2 ? 4 : ncpu > 32 ? 64 : 2 * (unsigned)ncpu;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_t flusher;
  int have_flusher = hub_thread_start("log-flusher", log_flusher, NULL, &flusher) == 0;
  /* Connection accounting (http/limits.c): a cap per client address, header deadlines. */
  unsigned conn_limit = http__limits_init();
  int watchdog = http__watchdog_start() == 0;
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, http__limits_per_ip() ? http__accept_policy : NULL, NULL, access_cb, NULL,
      MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_NOTIFY_CONNECTION,
      http__conn_notify, NULL, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HUB_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)HUB_IDLE_TIMEOUT_S, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
      MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, MHD_OPTION_END);
  freeaddrinfo(ai);
  int rc = 0;
  if (!d) {
    rc = hub_error_set(HUB_ERROR, "cannot listen on %s: %s", cfg->listen, strerror(errno));
  } else {
    fprintf(stderr, "modelhub listening on http://%s (%u event threads)\n", cfg->listen, threads);
    int sig = 0;
    sigwait(&set, &sig);
    /* Stopping closes the idle kept-alive connections (and, after the grace, cuts the
     * requests left); with a connection still suspended it is undefined in MHD. */
    if (drain(d, &set, sig) || (g_suspended == 0 && http__streams_active() == 0))
      MHD_stop_daemon(d);
    else
      fprintf(stderr, "modelhub: requests still running at exit\n");
  }
  if (watchdog) http__watchdog_stop();
  pthread_mutex_lock(&g_flusher_mu);
  g_flusher_stop = 1;
  pthread_cond_signal(&g_flusher_cv);
  pthread_mutex_unlock(&g_flusher_mu);
  if (have_flusher) pthread_join(flusher, NULL);
  logs_flush_all();
  return rc;
}

static const char *route_name(int idx, const char **method) {
  int i = 0;
  for (int t = 0; t < g_ntables; t++)
    for (const hub_route *rt = g_tables[t]; rt->pattern; rt++, i++)
      if (i == idx) {
        *method = rt->method;
        return rt->pattern;
      }
  *method = "";
  return "unmatched";
}

void http_metrics_text(hub_buf *out) {
  http_metrics_render(out, route_name);
  http__limits_metrics(out);
}
