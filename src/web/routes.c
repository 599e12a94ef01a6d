/* The web route table, repo loading for pages, and the bridge from forms to API handlers.
 *
 * Web routes name repos with plain captures ({ns}/{name}) rather than {repo}: the router
 * answers a missing or invisible {repo} with a JSON 404 before any handler runs, and a
 * browser should get an HTML page. web_repo_load() therefore repeats the router's
 * authorization (visibility, permission, gating, disabled) for pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "gov/gov.h"
#include "util/error.h"
#include "web/internal.h"

static int is_api_path(hub_req *r) {
  return r->nsegs && !strcmp(r->segs[0], "api");
}

static int h_catch_all(hub_req *r) {
  if (is_api_path(r))
    return hub_error_set(HUB_ENOTFOUND, "Sorry, we can't find the page you are looking for.");
  return web_not_found(r);
}

/* Order matters: literal pages first, then repo sub-pages, the repo page, profiles, and the
 * catch-all 404 last. */
static const hub_route web_routes[] = {
    {"GET", "/static/style.css", web_static_css, NEED_NONE | RUN_INLINE | ERR_HTML, BODY_NONE, NULL,
     0},
    {"GET", "/static/app.js", web_static_js, NEED_NONE | RUN_INLINE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/", web_h_home, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/models", web_h_search, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/datasets", web_h_search, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/spaces", web_h_search, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/login", web_h_login, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/login", web_h_login_post, NEED_NONE | ERR_HTML, BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"POST", "/logout", web_h_logout_post, NEED_NONE | ERR_HTML, BODY_JSON, NULL,
     WEB_MAX_FORM_BODY},
    {"GET", "/settings/tokens", web_h_tokens, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/settings/tokens", web_h_tokens_post, NEED_NONE | ERR_HTML, BODY_JSON, NULL,
     WEB_MAX_FORM_BODY},
    {"POST", "/settings/tokens/{id}/revoke", web_h_token_revoke_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/settings/webhooks", web_h_webhooks, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/settings/webhooks/{id}/enable", web_h_webhook_enable_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"POST", "/settings/webhooks/{id}/disable", web_h_webhook_disable_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"POST", "/settings/webhooks/{id}/replay", web_h_webhook_replay_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/new", web_h_new, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/admin/-/scans", web_h_admin_scans, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/new", web_h_new_post, NEED_NONE | ERR_HTML, BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/collections/{ns}", web_h_collections, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/collections/{ns}", web_h_collections_post, NEED_NONE | ERR_HTML, BODY_JSON, NULL,
     WEB_MAX_FORM_BODY},
    {"GET", "/collections/{ns}/{slug}", web_h_collection, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"POST", "/collections/{ns}/{slug}/remove", web_h_collection_remove_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"POST", "/{prefix}/{ns}/{name}/add-to-collection", web_h_add_to_collection_post,
     NEED_NONE | ERR_HTML, BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/{prefix}/{ns}/{name}/tree/{*}", web_h_tree, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/{prefix}/{ns}/{name}/blob/{*}", web_h_blob, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/{prefix}/{ns}/{name}/commits/{*}", web_h_commits, NEED_NONE | ERR_HTML, BODY_NONE,
     NULL, 0},
    {"GET", "/{prefix}/{ns}/{name}/commit/{sha}", web_h_commit, NEED_NONE | ERR_HTML, BODY_NONE,
     NULL, 0},
    {"GET", "/{prefix}/{ns}/{name}/discussions", web_h_discussions, NEED_NONE | ERR_HTML, BODY_NONE,
     NULL, 0},
    {"POST", "/{prefix}/{ns}/{name}/discussions", web_h_discussion_new_post, NEED_NONE | ERR_HTML,
     BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/{prefix}/{ns}/{name}/discussions/{num}", web_h_discussion, NEED_NONE | ERR_HTML,
     BODY_NONE, NULL, 0},
    {"POST", "/{prefix}/{ns}/{name}/discussions/{num}/{action}", web_h_discussion_post,
     NEED_NONE | ERR_HTML, BODY_JSON, NULL, WEB_MAX_FORM_BODY},
    {"GET", "/{prefix}/{ns}/{name}/settings", web_h_settings, NEED_NONE | ERR_HTML, BODY_NONE, NULL,
     0},
    {"POST", "/{prefix}/{ns}/{name}/settings", web_h_settings_post, NEED_NONE | ERR_HTML, BODY_JSON,
     NULL, WEB_MAX_FORM_BODY},
    {"POST", "/{prefix}/{ns}/{name}/delete", web_h_delete_post, NEED_NONE | ERR_HTML, BODY_JSON,
     NULL, WEB_MAX_FORM_BODY},
    {"GET", "/{prefix}/{ns}/{name}", web_h_repo, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/{ns}", web_h_profile, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {"GET", "/{*}", h_catch_all, NEED_NONE | ERR_HTML, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};

#define NROUTES (sizeof web_routes / sizeof *web_routes - 1)

int web__is_web_route(const hub_route *rt) {
  return rt >= web_routes && rt < web_routes + NROUTES;
}

int web_register(void) {
  int rc = web_session_init();
  if (rc) return rc;
  http_set_cookie_identify(web_session_identify);
  http_set_error_page(web__error_page);
  gov_set_markdown(web_markdown); /* comments render like cards */
  return http_routes_add(web_routes);
}

int web_redirect(hub_req *r, const char *location) {
  return http_reply_redirect(r, 303, location);
}

/* 307 to the repo's new name, keeping the rest of the path and the query. */
static int redirect_moved(hub_req *r, const db_repo *now) {
  hub_buf loc = HUB_BUF_INIT;
  web_repo_href(&loc, now);
  size_t i = 0;
  while (i < r->nsegs && r->segs[i] != r->cap[1])
    i++;
  for (i++; i < r->nsegs; i++)
    hub_buf_printf(&loc, "/%s", r->segs[i]);
  if (r->query && *r->query) hub_buf_printf(&loc, "?%s", r->query);
  int rc =
      loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : http_reply_redirect(r, 307, loc.ptr);
  hub_buf_dispose(&loc);
  return rc ? rc : 1;
}

static int decode_cap(const char *raw, char *out, size_t cap) {
  if (!raw || strlen(raw) >= cap) return -1;
  snprintf(out, cap, "%s", raw);
  return api_pct_decode_inplace(out);
}

int web_repo_load(hub_req *r, int want, int files) {
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1];
  if (r->ncap < 2 || decode_cap(r->cap[0], ns, sizeof ns) ||
      decode_cap(r->cap[1], name, sizeof name))
    return hub_error_set(HUB_EREPO, "Repository not found");
  int rc = db_repo_get(r->repo_type, ns, name, &r->repo);
  if (rc) {
    memset(&r->repo, 0, sizeof r->repo);
    db_repo moved;
    if (db_repo_redirect(r->repo_type, ns, name, &moved) == 0 &&
        auth_repo_perm(&r->who, &moved) >= PERM_READ)
      return redirect_moved(r, &moved);
    return hub_error_set(HUB_EREPO, "Repository not found");
  }
  r->repo_perm = auth_repo_perm(&r->who, &r->repo);
  if (r->repo_perm < PERM_READ) {
    memset(&r->repo, 0, sizeof r->repo);
    return hub_error_set(HUB_EREPO, "Repository not found");
  }
  if (r->repo_perm < want)
    return hub_error_set(r->who.authenticated ? HUB_EFORBIDDEN : HUB_EAUTH,
                         "You don't have the rights to administer %s/%s", r->repo.ns, r->repo.name);
  if (files && !auth_gate_allows(&r->who, &r->repo, r->repo_perm))
    return hub_error_set(HUB_EGATED, "Access to %s/%s is restricted: request access first.",
                         r->repo.ns, r->repo.name);
  if (r->repo.disabled && !r->who.is_admin && r->repo_perm < PERM_ADMIN)
    return hub_error_set(HUB_EFORBIDDEN, "Access to this repository is disabled.");
  return 0;
}

int web_call_api(hub_req *r, const hub_route *table, const char *method, const char *pattern,
                 json_t *body) {
  const hub_route *rt = NULL;
  for (const hub_route *t = table; t->pattern && !rt; t++)
    if (!strcmp(t->method, method) && !strcmp(t->pattern, pattern)) rt = t;
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!rt || !s) {
    free(s);
    return hub_error_set(HUB_ERROR, "web: no API handler for %s %s", method, pattern);
  }
  hub_buf_dispose(&r->body);
  hub_buf_init(&r->body, 0);
  hub_buf_puts(&r->body, s);
  free(s);
  if (r->body.failed) return hub_error_set(HUB_ERROR, "out of memory");
  return rt->handler(r);
}
