/* Shared by the web module's .c files only. */
#ifndef HUB_WEB_INTERNAL_H
#define HUB_WEB_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "http/http.h"
#include "repo/repo.h"
#include "web/html.h"
#include "web/web.h"

/* Bounds on what one page renders (hostile repos: huge files, trees, histories). */
#define WEB_MAX_FORM_BODY (64 * 1024)    /* urlencoded POST forms */
#define WEB_MAX_README (1024 * 1024)     /* bytes of README rendered as Markdown */
#define WEB_MAX_TEXT_VIEW (512 * 1024)   /* bytes of a file shown in the text viewer */
#define WEB_MAX_TREE_ENTRIES 1000        /* entries listed in one directory page */
#define WEB_MAX_LAST_COMMITS 100         /* entries that get a "last commit" lookup */
#define WEB_MAX_TENSORS 2000             /* rows of a safetensors tensor table */
#define WEB_MAX_DIFF_BYTES (1024 * 1024) /* patch text shown on a commit page */
#define WEB_MAX_DIFF_FILES 300           /* files listed on a commit page */
#define WEB_COMMITS_PER_PAGE 30
#define WEB_REPOS_PER_PAGE 30
#define WEB_SESSION_DAYS 30

/* ---- page building (layout.c) ------------------------------------------------------ */

typedef struct {
  hub_req *r;
  hub_buf b;
  int logged_in;
  char csrf[65]; /* the session's CSRF token ("" when anonymous) */
} web_page;

/* Start a page: doctype, <head>, the top bar. `title` is user text (escaped). */
void web_page_begin(web_page *p, hub_req *r, const char *title);
/* Footer and closing tags. */
void web_page_end(web_page *p);
/* Queue the page as text/html with `status` (plus security headers); disposes p->b. */
int web_page_send(web_page *p, int status);
/* Hidden input carrying the session's CSRF token (every POST form). */
void web_csrf_input(web_page *p);
/* A complete error page. `detail` may be NULL. Returns the reply's result. */
int web_error(hub_req *r, int status, const char *title, const char *detail);
int web_not_found(hub_req *r);
/* A handler's failure: returns the code, and the page is drawn once after the handler
 * returns (web__error_page, with the status of http/errors.c). Unknown /api paths: 404
 * NotFound in Hub JSON. */
int web_error_code(hub_req *r, int code);
/* The error page of web routes (ERR_HTML), set with http_set_error_page: drawn once, after
 * the handler returned a negative code (or the router refused the request). */
int web__error_page(hub_req *r, int code, int status, const char *title, const char *msg);
/* CSS and JS served at /static/. */
int web_static_css(hub_req *r);
int web_static_js(hub_req *r);

/* "1.2 MB", "12.3k", "3 days ago", "7.24B". */
void web_fmt_size(char *out, size_t cap, uint64_t n);
void web_fmt_count(char *out, size_t cap, int64_t n);
void web_fmt_ago(char *out, size_t cap, int64_t ms);
void web_fmt_params(char *out, size_t cap, int64_t n);
/* "/datasets/ns/name" with each segment URL-encoded. */
void web_repo_href(hub_buf *b, const db_repo *repo);

/* ---- sessions and forms (session.c) ------------------------------------------------ */

typedef struct {
  int valid;
  int64_t user_id;
  char id_hash[65];
  char csrf[65];
} web_session;

int web_session_init(void); /* tables */
/* The session named by this request's cookie (out->valid = 0 when none). */
int web_session_get(hub_req *r, web_session *out);
#define WEB_SESSION_COOKIE "mh_session"
#define WEB_LOGIN_CSRF_COOKIE "mh_login_csrf"
/* New session for user_id; id gets the cookie value (64 hex) to send with web_set_cookie. */
int web_session_start(hub_req *r, int64_t user_id, char id[65]);
/* 64 random hex characters. */
void web_random_hex(char out[65]);
int web_session_end(hub_req *r);
/* Value of cookie `name` (decoded as-is) in buf, or NULL. */
const char *web_cookie(hub_req *r, const char *name, char *buf, size_t cap);
/* Add a Set-Cookie header to the queued response (max_age < 0: delete the cookie). */
void web_set_cookie(hub_req *r, const char *name, const char *value, int max_age);
/* Decoded form field of the POST body (borrowed until the request ends), or NULL. */
const char *web_form(hub_req *r, const char *key);
/* 0 if the form's "csrf" field matches the session's token; HUB_EFORBIDDEN otherwise. */
int web_csrf_check(hub_req *r);
/* 1 if rt belongs to the web route table. */
int web__is_web_route(const hub_route *rt);

/* ---- repos (routes.c) -------------------------------------------------------------- */

/* Load the repo named by captures (cap[0] = ns, cap[1] = name) of r->repo_type into
 * r->repo / r->repo_perm, authorizing like the router: invisible → HUB_EREPO;
 * want (PERM_*) above the caller's permission → HUB_EREPO / HUB_EAUTH / HUB_EFORBIDDEN.
 * files: the page shows file contents (gated repos need an accepted request → HUB_EGATED).
 * Returns 1 when it queued a redirect (renamed repo). */
int web_repo_load(hub_req *r, int want, int files);
/* Call the JSON API handler of (method, pattern) in `table` with `body` (stolen) as its
 * request body, so forms share the API's validation, audit and indexing. On success the
 * handler's JSON reply is left queued, to be replaced by the caller's page/redirect. */
int web_call_api(hub_req *r, const hub_route *table, const char *method, const char *pattern,
                 json_t *body);
/* Redirect with 303 See Other (after a POST). */
int web_redirect(hub_req *r, const char *location);

/* ---- pages ------------------------------------------------------------------------- */

int web_h_home(hub_req *r);   /* pages_home.c */
int web_h_search(hub_req *r); /* /models, /datasets, /spaces */
int web_h_repo(hub_req *r);   /* pages_repo.c: model card */
int web_h_settings(hub_req *r);
int web_h_settings_post(hub_req *r);
int web_h_delete_post(hub_req *r);
int web_h_tree(hub_req *r); /* pages_files.c */
int web_h_blob(hub_req *r);
int web_h_commits(hub_req *r); /* pages_history.c */
int web_h_commit(hub_req *r);
int web_h_login(hub_req *r); /* pages_account.c */
int web_h_login_post(hub_req *r);
int web_h_logout_post(hub_req *r);
int web_h_tokens(hub_req *r);
int web_h_tokens_post(hub_req *r);
int web_h_token_revoke_post(hub_req *r);
int web_h_webhooks(hub_req *r); /* pages_webhooks.c */
int web_h_webhook_enable_post(hub_req *r);
int web_h_webhook_disable_post(hub_req *r);
int web_h_webhook_replay_post(hub_req *r);
int web_h_profile(hub_req *r); /* pages_profile.c */
int web_h_new(hub_req *r);
int web_h_new_post(hub_req *r);
/* pages_scan.c: scan badges and banner (docs/scanning.md), the admin list of flagged files */
void web_scan_badge(web_page *p, const char *oid);
void web_scan_banner(web_page *p, const db_repo *repo);
int web_h_admin_scans(hub_req *r);
int web_h_collections(hub_req *r); /* pages_collections.c */
int web_h_collections_post(hub_req *r);
int web_h_collection(hub_req *r);
int web_h_collection_remove_post(hub_req *r);
int web_h_add_to_collection_post(hub_req *r);
/* The "Collections" section of a repo page's side panel (and its add form). */
void web_collections_panel(web_page *p, const db_repo *repo);
int web_h_discussions(hub_req *r); /* pages_discussions.c: the Community tab */
int web_h_discussion(hub_req *r);
int web_h_discussion_new_post(hub_req *r);
int web_h_discussion_post(hub_req *r); /* …/discussions/{num}/{comment|status|merge} */

/* One repo as a card in a listing grid (pages_home.c); row is a db_search_row. */
void web_repo_card(web_page *p, const void *row);

/* Shared repo page header: title, badges, tabs ("card", "files", "commits", "community",
 * "settings"). */
void web_repo_header(web_page *p, const db_repo *repo, const char *tab, const char *rev);
/* <select>-free branch/tag switcher (a <details> menu) for `view` ("tree", "commits"). */
void web_ref_switcher(web_page *p, repo_handle *h, const db_repo *repo, const char *view,
                      const char *rev);

/* ---- content rendering ------------------------------------------------------------- */

/* markdown.c: Markdown → HTML with cmark-gfm (table, strikethrough, autolink, tasklist,
 * tagfilter), raw HTML replaced, dangerous URLs dropped. Appends to out. */
int web_markdown(hub_buf *out, const char *md, size_t len);

/* tensors.c: the tensor table of a safetensors header. */
typedef struct {
  const char *name;
  const char *dtype;
  int64_t shape[8];
  int ndim; /* -1: more than 8 dimensions (shape not shown) */
  int64_t numel;
} web_tensor;
typedef int (*web_tensor_cb)(const web_tensor *t, void *payload);
/* Read the header of LFS object `oid` (bounded by ML_MAX_SAFETENSORS_HEADER) and call cb
 * per tensor in header order, at most `max` times; *out_count gets the total number of
 * tensors, *out_meta (may be NULL) the "__metadata__" object (owned by the caller). */
int web_tensors_blob(blob_store *s, const char *oid, size_t max, web_tensor_cb cb, void *payload,
                     size_t *out_count);
/* Same over a file held in memory (small safetensors stored in git). */
int web_tensors_mem(const unsigned char *buf, size_t len, size_t max, web_tensor_cb cb,
                    void *payload, size_t *out_count);

/* facets.c: facet counts of public repos of a type, cached briefly. */
typedef struct {
  char value[96];
  int64_t count;
} web_facet;
enum { WEB_FACET_TASK = 0, WEB_FACET_LIBRARY, WEB_FACET_LICENSE, WEB_FACET_LANGUAGE, WEB_FACET_N };
#define WEB_FACET_MAX 16
typedef struct {
  web_facet f[WEB_FACET_N][WEB_FACET_MAX];
  size_t n[WEB_FACET_N];
  int64_t params[6]; /* buckets of web_param_buckets */
} web_facets;
typedef struct {
  const char *key;   /* "params" query value */
  const char *label; /* "< 1B" */
  int64_t min, max;  /* -1 = open */
} web_param_bucket;
extern const web_param_bucket web_param_buckets[6];
int web_facets_get(int type, web_facets *out);

#endif
