/* Governance: schema, routes and the helpers the handlers share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "gov/internal.h"
#include "util/error.h"

int gov_init(void) {
  int rc = db_gov_init();
  return rc ? rc : db_disc_init();
}

int gov__git_open(const db_repo *repo, git_repository **out) {
  char dir[4200];
  db_repo_dir(repo->uid, dir, sizeof dir);
  if (git_repository_open_bare(out, dir) < 0) return gov__git_error("open repository");
  return 0;
}

int gov__git_error(const char *what) {
  const git_error *e = git_error_last();
  return hub_error_set(HUB_ERROR, "%s: %s", what, e && e->message ? e->message : "git error");
}

int gov__lock_wait(unsigned *waits, const char *ref) {
  if (++*waits > GOV_MAX_LOCK_WAITS) return hub_error_set(HUB_ERETRY, "%s is busy, try again", ref);
  struct timespec ts = {0, (long)(1 + (*waits * 7919u) % 8) * 1000000L};
  nanosleep(&ts, NULL);
  return 0;
}

int gov__parse_num(const char *seg, int *out) {
  long v = 0;
  if (!seg || !*seg || strlen(seg) > 9 || strspn(seg, "0123456789") != strlen(seg))
    return hub_error_set(HUB_ENOTFOUND, "Discussion not found");
  v = strtol(seg, NULL, 10);
  if (v <= 0) return hub_error_set(HUB_ENOTFOUND, "Discussion not found");
  *out = (int)v;
  return 0;
}

void gov__audit(hub_req *r, const char *action, json_t *details) {
  /* Like api_audit (the caller as actor, target: the repo); gov/ sits below api/. */
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char t[2 * HUB_MAX_NAME + 16];
  snprintf(t, sizeof t, "%s:%s/%s", http_type_name(r->repo.type), r->repo.ns, r->repo.name);
  audit_log(&ctx, action, r->repo.ns, t, json_incref(details));
}

static void repo_close(void *h) {
  repo_free(h);
}

int gov__repo_open(hub_req *r, repo_handle **out) {
  char dir[4200];
  db_repo_dir(r->repo.uid, dir, sizeof dir);
  int rc = repo_open(out, dir);
  if (!rc) http_cleanup_add(r, repo_close, *out);
  return rc;
}

int gov__deny(hub_req *r, const char *what) {
  return hub_error_set(r->who.authenticated ? HUB_EFORBIDDEN : HUB_EAUTH, "%s on %s/%s", what,
                       r->repo.ns, r->repo.name);
}

const hub_route gov_routes[] = {
    {"GET", "/api/{type}/{repo}/discussions", gov__h_discussions, NEED_REPO_READ, BODY_NONE, NULL,
     0},
    {"GET", "/api/{type}/{repo}/discussions/{num}", gov__h_discussion, NEED_REPO_READ, BODY_NONE,
     NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions", gov__h_create, NEED_REPO_READ, BODY_JSON, NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/merge", gov__h_merge, NEED_REPO_WRITE, BODY_JSON,
     NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/status", gov__h_status, NEED_REPO_READ,
     BODY_JSON, NULL, 0},
    {"PATCH", "/api/{type}/{repo}/discussions/{num}/status", gov__h_status, NEED_REPO_READ,
     BODY_JSON, NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/title", gov__h_title, NEED_REPO_READ, BODY_JSON,
     NULL, 0},
    {"PATCH", "/api/{type}/{repo}/discussions/{num}/title", gov__h_title, NEED_REPO_READ, BODY_JSON,
     NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/comment", gov__h_comment, NEED_REPO_READ,
     BODY_JSON, NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/comment/{id}/edit", gov__h_comment_edit,
     NEED_REPO_READ, BODY_JSON, NULL, 0},
    {"POST", "/api/{type}/{repo}/discussions/{num}/comment/{id}/hide", gov__h_comment_hide,
     NEED_REPO_READ, BODY_JSON, NULL, 0},
    {"PUT", "/api/{type}/{repo}/discussions/{num}/comment/{id}/hide", gov__h_comment_hide,
     NEED_REPO_READ, BODY_JSON, NULL, 0},
    {"GET", "/api/{type}/{repo}/stages", gov__h_stages, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {"GET", "/api/{type}/{repo}/stages/{name}", gov__h_stage, NEED_REPO_READ, BODY_NONE, NULL, 0},
    {"PUT", "/api/{type}/{repo}/stages/{name}", gov__h_stage_put, NEED_REPO_READ, BODY_JSON, NULL,
     0},
    {"DELETE", "/api/{type}/{repo}/stages/{name}", gov__h_stage_delete, NEED_REPO_READ, BODY_JSON,
     NULL, 0},
    {"GET", "/api/{type}/{repo}/protections", gov__h_protections, NEED_REPO_ADMIN, BODY_NONE, NULL,
     0},
    {"PUT", "/api/{type}/{repo}/protections", gov__h_protections_put, NEED_REPO_ADMIN, BODY_JSON,
     NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
