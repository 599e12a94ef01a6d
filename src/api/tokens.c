/* Access tokens over the API: list, create (shown once), revoke. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "audit/audit.h"
#include "util/error.h"

static void token_audit(hub_req *r, const char *action, const char *uid, json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char target[40];
  snprintf(target, sizeof target, "token:%s", uid);
  audit_log(&ctx, action, r->who.name, target, details);
}

static json_t *token_json(const db_token *t, const char *user) {
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "id", t->uid, "user", user, "name", t->name,
      "role", auth_role_name(t->role), "createdAt", api_iso_json(t->created_ms), "lastUsedAt",
      t->last_used_ms ? api_iso_json(t->last_used_ms) : json_null(), "expiresAt",
      t->expires_ms ? api_iso_json(t->expires_ms) : json_null(), "revoked", t->revoked);
  if (t->scopes[0]) json_object_set_new(o, "scopes", json_loads(t->scopes, 0, NULL));
  return o;
}

static void add_token(const db_token *t, const char *user, void *payload) {
  json_array_append_new(payload, token_json(t, user));
}

/* Listing, creating and revoking tokens needs a credential with all its user's powers (a
 * write token or a web session): a read or fine-grained token can neither see the others
 * nor mint a stronger one nor revoke its siblings. */
static int need_full(hub_req *r, const char *what) {
  if (auth_full_credential(&r->who)) return 0;
  return hub_error_set(HUB_EFORBIDDEN, "%s tokens needs a write token (this token is %s)", what,
                       r->who.token_role == PERM_READ ? "read-only" : "fine-grained");
}

static int h_list(hub_req *r) {
  auth_token_touch_flush(); /* the last-use times noted by recent requests */
  int rc = need_full(r, "Listing");
  if (rc) return rc;
  json_t *arr = json_array();
  int all = r->who.is_admin && http_param_bool(r, "all", 0);
  db_token_list(all ? 0 : r->who.user_id, add_token, arr);
  return http_reply_json(r, 200, arr);
}

static int h_create(hub_req *r) {
  int rc = need_full(r, "Creating");
  if (rc) return rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  const char *name = json_string_value(json_object_get(b, "name"));
  const char *role = json_string_value(json_object_get(b, "role"));
  json_t *scopes = json_object_get(b, "scopes");
  json_int_t days = json_integer_value(json_object_get(b, "expiresInDays"));
  if (!name || !*name || strlen(name) > HUB_MAX_SHORT_TEXT)
    return hub_error_set(HUB_EINVALID, "name is required (at most %d characters)",
                         HUB_MAX_SHORT_TEXT);
  int64_t exp = days > 0 ? db_now_ms() + (int64_t)days * 86400000 : 0;
  char tok[AUTH_TOKEN_LEN + 1];
  db_token row;
  if (role && !strcmp(role, "fineGrained")) {
    char *sj = json_dumps(scopes ? scopes : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    rc = sj ? auth_token_issue_scoped(r->who.user_id, name, sj, exp, tok, &row)
            : hub_error_set(HUB_ERROR, "out of memory");
    free(sj);
  } else {
    int perm;
    if ((rc = auth_role_parse(role ? role : "read", &perm))) return rc;
    if (perm != PERM_READ && perm != PERM_WRITE)
      return hub_error_set(HUB_EINVALID, "role must be read, write or fineGrained");
    rc = auth_token_issue(r->who.user_id, name, perm, exp, tok, &row);
  }
  if (rc) return rc;
  token_audit(r, "token.create", row.uid,
              json_pack("{s:s, s:s}", "name", row.name, "role", auth_role_name(row.role)));
  json_t *o = token_json(&row, r->who.name);
  json_object_set_new(o, "token", json_string(tok));
  return http_reply_json(r, 200, o);
}

static int h_revoke(hub_req *r) {
  int rc = need_full(r, "Revoking");
  if (rc) return rc;
  char *id = strdup(r->cap[0]);
  if (!id) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, id);
  if (api_pct_decode_inplace(id)) return hub_error_set(HUB_EINVALID, "bad token id");
  /* Owners revoke their own tokens; site admins any. */
  rc = db_token_revoke(id, r->who.is_admin ? 0 : r->who.user_id);
  if (rc) return rc;
  token_audit(r, "token.revoke", id, NULL);
  return http_reply_json(r, 200, json_object());
}

const hub_route api_token_routes[] = {
    {"GET", "/api/settings/tokens", h_list, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/tokens", h_create, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"DELETE", "/api/settings/tokens/{id}", h_revoke, NEED_LOGIN, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
