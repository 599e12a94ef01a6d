/* Refs, branches, tags and history. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "gov/gov.h"
#include "events/events.h"
#include "util/error.h"

struct refs_ctx {
  json_t *branches, *tags, *converts, *prs;
};

static int add_ref(const repo_ref *ref, void *payload) {
  struct refs_ctx *c = payload;
  json_t *arr = ref->kind == REPO_REF_BRANCH    ? c->branches
                : ref->kind == REPO_REF_TAG     ? c->tags
                : ref->kind == REPO_REF_CONVERT ? c->converts
                                                : c->prs;
  if (arr)
    json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", ref->name, "ref", ref->ref,
                                         "targetCommit", ref->target));
  return 0;
}

static int h_refs(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  int prs = http_param_bool(r, "include_prs", 0);
  struct refs_ctx c = {json_array(), json_array(), json_array(), prs ? json_array() : NULL};
  json_t *o =
      json_pack("{s:o, s:o, s:o}", "branches", c.branches, "tags", c.tags, "converts", c.converts);
  if (prs) json_object_set_new(o, "pullRequests", c.prs);
  if ((rc = repo_refs_list(h, add_ref, &c))) {
    json_decref(o);
    return rc;
  }
  return http_reply_json(r, 200, o);
}

/* Optional JSON body: an empty body means {}. */
static json_t *opt_body(hub_req *r) {
  if (!r->body.len) {
    json_t *o = json_object();
    return o;
  }
  json_t *b = http_body_json(r);
  if (b) json_incref(b);
  return b;
}

static int h_branch_create(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  const char *name = api_join_rest(r, 0, r->nrest);
  if (!name) return hub_error_code();
  json_t *b = opt_body(r);
  if (!b) return HUB_EINVALID;
  const char *start = json_string_value(json_object_get(b, "startingPoint"));
  int overwrite = json_is_true(json_object_get(b, "overwrite"));
  int empty = json_is_true(json_object_get(b, "emptyBranch"));
  if (overwrite && (rc = gov_check_branch_change(&r->repo, name, 0))) {
    json_decref(b);
    return rc;
  }
  if (empty)
    rc = hub_error_set(HUB_EUNSUPPORTED, "emptyBranch is not supported by this hub");
  else if (!(rc = repo_ref_name_valid(!strncmp(name, "refs/heads/", 11) ? name + 11 : name))) {
    json_t *det = json_pack("{s:s}", "branch", name);
    events_ctx ev = {&r->repo, {&r->who, NULL, http_client_ip(r)},
                     "branch", "repo.branch.create",
                     det,      0,
                     NULL,     NULL,
                     NULL};
    repo_recorder rec = events_recorder(&ev);
    rc = repo_branch_create(h, name, start ? start : "HEAD", overwrite, &rec);
    json_decref(det);
  }
  json_decref(b);
  if (rc == HUB_EEXISTS) return hub_error_set(rc, "Reference already exists: %s", name);
  if (rc) return rc;
  return http_reply_json(r, 200, json_object());
}

static int h_branch_delete(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  const char *name = api_join_rest(r, 0, r->nrest);
  if (!name) return hub_error_code();
  if (!strcmp(name, "main") || !strcmp(name, "refs/heads/main"))
    return hub_error_set(HUB_EFORBIDDEN, "The default branch cannot be deleted");
  if ((rc = gov_check_branch_change(&r->repo, name, 1))) return rc;
  json_t *det = json_pack("{s:s}", "branch", name);
  events_ctx ev = {&r->repo, {&r->who, NULL, http_client_ip(r)},
                   "branch", "repo.branch.delete",
                   det,      0,
                   NULL,     NULL,
                   NULL};
  repo_recorder rec = events_recorder(&ev);
  rc = repo_branch_delete(h, name, &rec);
  json_decref(det);
  if (rc) return rc;
  return http_reply_json(r, 200, json_object());
}

static int h_tag_create(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  const char *rev = api_join_rest(r, 0, r->nrest);
  if (!rev) return hub_error_code();
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  const char *tag = json_string_value(json_object_get(b, "tag"));
  const char *msg = json_string_value(json_object_get(b, "message"));
  if (!tag) return hub_error_set(HUB_EINVALID, "Missing field: tag");
  if ((rc = repo_ref_name_valid(tag))) return rc;
  char email[HUB_MAX_USER_NAME + 32];
  snprintf(email, sizeof email, "%s@users.noreply.modelhub", r->who.name);
  json_t *det = json_pack("{s:s, s:s}", "tag", tag, "revision", rev);
  events_ctx ev = {
      &r->repo, {&r->who, NULL, http_client_ip(r)}, "tag", "repo.tag.create", det, 0, NULL, NULL,
      NULL};
  repo_recorder rec = events_recorder(&ev);
  rc = repo_tag_create(h, tag, rev, msg && *msg ? msg : NULL, r->who.name, email, &rec);
  json_decref(det);
  if (rc == HUB_EEXISTS) return hub_error_set(rc, "Tag already exists: %s", tag);
  if (rc) return rc;
  return http_reply_json(r, 200, json_object());
}

static int h_tag_delete(hub_req *r) {
  repo_handle *h;
  int rc = api_repo_open(r, &h);
  if (rc) return rc;
  const char *tag = api_join_rest(r, 0, r->nrest);
  if (!tag) return hub_error_code();
  if ((rc = gov_check_tag_change(&r->repo, tag))) return rc;
  json_t *det = json_pack("{s:s}", "tag", tag);
  events_ctx ev = {
      &r->repo, {&r->who, NULL, http_client_ip(r)}, "tag", "repo.tag.delete", det, 0, NULL, NULL,
      NULL};
  repo_recorder rec = events_recorder(&ev);
  rc = repo_tag_delete(h, tag, &rec);
  json_decref(det);
  if (rc) return rc;
  return http_reply_json(r, 200, json_object());
}

struct log_ctx {
  json_t *arr;
  int formatted;
};

static int add_commit(const repo_commit_info *c, void *payload) {
  struct log_ctx *l = payload;
  json_t *o = json_pack("{s:s, s:s, s:s, s:[{s:s}], s:o}", "id", c->id, "title", c->title,
                        "message", c->message, "authors", "user",
                        c->author_name ? c->author_name : "", "date", api_iso_json(c->date * 1000));
  if (!o) return HUB_ERROR;
  if (l->formatted) /* plain text is valid HTML-escaped only if we escape; keep it simple */
    json_object_set_new(o, "formatted",
                        json_pack("{s:s, s:s}", "title", c->title, "message", c->message));
  json_array_append_new(l->arr, o);
  return 0;
}

static int h_commits(hub_req *r) {
  repo_handle *h;
  char sha[41];
  int rc = api_rev_and_path(r, &h, sha, NULL);
  if (rc) return rc;
  long limit = http_param(r, "limit") ? strtol(http_param(r, "limit"), NULL, 10) : 50;
  if (limit <= 0) limit = 50;
  if (limit > HUB_MAX_PAGE) limit = HUB_MAX_PAGE;
  long page = http_param(r, "p") ? strtol(http_param(r, "p"), NULL, 10) : 0;
  if (page < 0) page = 0;
  /* p and limit come from the wire: a page past any history is empty, never an overflow. */
  size_t skip, next_end;
  if (__builtin_mul_overflow((size_t)page, (size_t)limit, &skip)) skip = SIZE_MAX;
  if (__builtin_add_overflow(skip, (size_t)limit, &next_end)) next_end = SIZE_MAX;
  const char *ex[4];
  size_t nex = http_params(r, "expand", ex, 4);
  struct log_ctx l = {json_array(), 0};
  for (size_t i = 0; i < nex; i++)
    l.formatted |= !strcmp(ex[i], "formatted");
  size_t total = 0;
  if ((rc = repo_log(h, sha, skip, (size_t)limit, add_commit, &l, &total))) {
    json_decref(l.arr);
    return rc;
  }
  if ((rc = http_reply_json(r, 200, l.arr))) return rc;
  char tot[32];
  snprintf(tot, sizeof tot, "%zu", total);
  http_add_header(r, "X-Total-Count", tot);
  if (next_end < total) {
    char v[32];
    snprintf(v, sizeof v, "%ld", page + 1);
    api_next_link(r, "p", v);
  }
  return 0;
}

const hub_route api_refs_routes[] = {
    {"GET", "/api/{type}/{repo}/refs", h_refs, NEED_REPO_FILES, BODY_NONE, NULL, 0},
    {"POST", "/api/{type}/{repo}/branch/{*}", h_branch_create, NEED_REPO_WRITE, BODY_JSON, NULL, 0},
    {"DELETE", "/api/{type}/{repo}/branch/{*}", h_branch_delete, NEED_REPO_WRITE, BODY_NONE, NULL,
     0},
    {"POST", "/api/{type}/{repo}/tag/{*}", h_tag_create, NEED_REPO_WRITE, BODY_JSON, NULL, 0},
    {"DELETE", "/api/{type}/{repo}/tag/{*}", h_tag_delete, NEED_REPO_WRITE, BODY_NONE, NULL, 0},
    {"GET", "/api/{type}/{repo}/commits/{*}", h_commits, NEED_REPO_FILES, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
