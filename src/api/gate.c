/* Gated access: ask for access, and the admin side (list, accept, reject, grant). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/error.h"

static int h_ask(hub_req *r) {
  if (!r->repo.gated[0]) return hub_error_set(HUB_EINVALID, "This repository is not gated");
  /* Optional form fields (JSON object or form-encoded body) are kept for the admins. */
  char *fields = NULL;
  if (r->body.len) {
    json_t *j = json_loadb(r->body.ptr, r->body.len, 0, NULL);
    if (json_is_object(j))
      fields = json_dumps(j, JSON_COMPACT);
    else
      fields = json_dumps(json_pack("{s:s%}", "form", r->body.ptr, r->body.len), JSON_COMPACT);
    json_decref(j);
  }
  const char *status = !strcmp(r->repo.gated, "auto") ? "accepted" : "pending";
  char cur[16];
  auth_gate_status(r->repo.id, r->who.user_id, cur);
  if (!strcmp(cur, "accepted") || !strcmp(cur, "rejected")) status = cur; /* no re-asking */
  int rc =
      auth_gate_set(r->repo.id, r->who.user_id, status, fields ? fields : "{}",
                    !strcmp(status, "accepted") && strcmp(cur, "accepted") ? "auto" : NULL, NULL);
  free(fields);
  if (rc) return rc;
  api_audit(r, "gate.request", NULL, json_pack("{s:s}", "status", status));
  return http_reply_json(r, 200, json_pack("{s:s}", "status", status));
}

static void add_req(const auth_gate_request *g, void *payload) {
  json_t *f = json_loads(g->fields, 0, NULL);
  json_array_append_new(payload, json_pack("{s:{s:s, s:s, s:s}, s:s, s:s, s:o, s:s, s:o}", "user",
                                           "user", g->user, "fullname", g->fullname, "email",
                                           g->email, "username", g->user, "email", g->email,
                                           "timestamp", api_iso_json(g->created_ms), "status",
                                           g->status, "fields", f ? f : json_object()));
}

static int h_list(hub_req *r) {
  const char *status = r->cap[0];
  if (strcmp(status, "pending") && strcmp(status, "accepted") && strcmp(status, "rejected"))
    return hub_error_set(HUB_EINVALID, "status must be pending, accepted or rejected");
  json_t *arr = json_array();
  auth_gate_list(r->repo.id, status, add_req, arr);
  return http_reply_json(r, 200, arr);
}

static int decide(hub_req *r, const char *user, const char *status, const char *reason) {
  db_account a;
  if (!user || db_account_by_name(user, &a) || a.kind != ACCOUNT_USER)
    return hub_error_set(HUB_ENOTFOUND, "User not found");
  int rc = auth_gate_set(r->repo.id, a.id, status, NULL, r->who.name, reason);
  if (rc) return rc;
  api_audit(r, "gate.decision", NULL,
            json_pack("{s:s, s:s, s:s}", "user", a.name, "status", status, "reason",
                      reason ? reason : ""));
  return http_reply_json(r, 200, json_object());
}

static int h_handle(hub_req *r) {
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  const char *status = json_string_value(json_object_get(b, "status"));
  if (!status ||
      (strcmp(status, "accepted") && strcmp(status, "rejected") && strcmp(status, "pending")))
    return hub_error_set(HUB_EINVALID, "status must be accepted, rejected or pending");
  return decide(r, json_string_value(json_object_get(b, "user")), status,
                json_string_value(json_object_get(b, "rejectionReason")));
}

static int h_grant(hub_req *r) {
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  return decide(r, json_string_value(json_object_get(b, "user")), "accepted", NULL);
}

const hub_route api_gate_routes[] = {
    {"POST", "/api/{type}/{repo}/ask-access", h_ask, NEED_LOGIN | NEED_REPO_READ, BODY_JSON, NULL,
     0},
    {"GET", "/api/{type}/{repo}/user-access-request/{status}", h_list, NEED_REPO_ADMIN, BODY_NONE,
     NULL, 0},
    {"POST", "/api/{type}/{repo}/user-access-request/handle", h_handle, NEED_REPO_ADMIN, BODY_JSON,
     NULL, 0},
    {"POST", "/api/{type}/{repo}/user-access-request/grant", h_grant, NEED_REPO_ADMIN, BODY_JSON,
     NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
