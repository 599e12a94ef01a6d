/* Caller identity: GET /api/whoami-v2. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "util/error.h"

static void add_org(const db_account *org, int role, void *payload) {
  json_t *arr = payload;
  json_array_append_new(
      arr, json_pack("{s:s, s:s, s:s, s:s, s:n, s:b, s:n, s:s}", "type", "org", "id", org->uid,
                     "name", org->name, "fullname", org->fullname[0] ? org->fullname : org->name,
                     "email", "canPay", 0, "periodEnd", "roleInOrg", auth_role_name(role)));
}

static int h_whoami(hub_req *r) {
  db_account a;
  int rc = db_account_by_id(r->who.user_id, &a);
  if (rc) return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
  json_t *orgs = json_array();
  db_member_orgs(a.id, add_org, orgs);
  json_t *tok = json_pack("{s:s, s:s, s:o}", "displayName", r->who.token_name, "role",
                          auth_role_name(r->who.token_role), "createdAt",
                          api_iso_json(r->who.token_created_ms));
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:n, s:o, s:{s:s, s:o}}", "type", "user", "id",
      a.uid, "name", a.name, "fullname", a.fullname[0] ? a.fullname : a.name, "email",
      a.email[0] ? json_string(a.email) : json_null(), "emailVerified", a.email[0] != 0, "isPro", 0,
      "canPay", 0, "isAdmin", a.is_admin, "periodEnd", "orgs", orgs, "auth", "type", "access_token",
      "accessToken", tok);
  if (!o) return hub_error_set(HUB_ERROR, "cannot build whoami");
  return http_reply_json(r, 200, o);
}

const hub_route api_account_routes[] = {
    {"GET", "/api/whoami-v2", h_whoami, NEED_LOGIN | RUN_INLINE, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
