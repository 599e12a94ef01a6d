/* Organizations: members and roles, and the audit log (per org and site-wide). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "audit/audit.h"
#include "util/error.h"

/* The org named in the URL, with the caller's role in it. Non-members get 404 for
 * everything but the public member list would be fine on the Hub; we keep orgs private. */
static int load_org(hub_req *r, db_account *org, int *role) {
  char *name = strdup(r->cap[0]);
  if (!name) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, name);
  if (api_pct_decode_inplace(name) || db_account_by_name(name, org) || org->kind != ACCOUNT_ORG)
    return hub_error_set(HUB_ENOTFOUND, "Organization not found");
  /* The member role, capped by the token: a read token only reads, a fine-grained token
   * needs a scope on the org itself (an "admin" one to manage it). */
  *role = auth_org_role(&r->who, org);
  if (*role >= PERM_READ) return 0;
  if (r->who.token_role == PERM_FINE_GRAINED) {
    hub_identity unscoped = r->who;
    unscoped.token_role = PERM_WRITE;
    unscoped.nscopes = 0;
    if (auth_org_role(&unscoped, org) >= PERM_READ)
      return hub_error_set(HUB_EFORBIDDEN, "This token's scopes do not include the organization %s",
                           org->name);
  }
  return hub_error_set(HUB_ENOTFOUND, "Organization not found");
}

/* Managing the org needs admin; say why a member's token falls short. */
static int need_org_admin(hub_req *r, const db_account *org, int role, const char *what) {
  if (role >= PERM_ADMIN) return 0;
  if (r->who.token_role == PERM_FINE_GRAINED)
    return hub_error_set(HUB_EFORBIDDEN,
                         "Only admins of %s can %s, with a token whose scope on %s has "
                         "permission admin",
                         org->name, what, org->name);
  if (r->who.token_role == PERM_READ)
    return hub_error_set(HUB_EFORBIDDEN, "Only admins of %s can %s (this token is read-only)",
                         org->name, what);
  return hub_error_set(HUB_EFORBIDDEN, "Only admins of %s can %s", org->name, what);
}

static void add_member(const db_account *u, int role, void *payload) {
  json_array_append_new(payload,
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "_id", u->uid, "user", u->name,
                                  "fullname", u->fullname[0] ? u->fullname : u->name, "type",
                                  "user", "role", auth_role_name(role)));
}

static int h_members(hub_req *r) {
  db_account org;
  int role, rc;
  if ((rc = load_org(r, &org, &role))) return rc;
  json_t *arr = json_array();
  db_org_members(org.id, add_member, arr);
  return http_reply_json(r, 200, arr);
}

static int org_audit(hub_req *r, const db_account *org, const char *action, const char *user,
                     json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char target[HUB_MAX_USER_NAME + 8];
  snprintf(target, sizeof target, "user:%s", user);
  return audit_log(&ctx, action, org->name, target, details);
}

/* POST/PUT /api/organizations/{org}/members/{user} {role}; DELETE removes. Org admins only. */
static int member_change(hub_req *r, int remove) {
  db_account org, user;
  int role, rc;
  if ((rc = load_org(r, &org, &role))) return rc;
  if ((rc = need_org_admin(r, &org, role, "change its members"))) return rc;
  char *uname = strdup(r->cap[1]);
  if (!uname) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, uname);
  if (api_pct_decode_inplace(uname) || db_account_by_name(uname, &user) ||
      user.kind != ACCOUNT_USER)
    return hub_error_set(HUB_ENOTFOUND, "User not found");
  if (remove) {
    if ((rc = db_member_remove(org.id, user.id))) return rc;
    org_audit(r, &org, "org.member.remove", user.name, NULL);
    return http_reply_json(r, 200, json_object());
  }
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  int newrole;
  if ((rc = auth_role_parse(json_string_value(json_object_get(b, "role")), &newrole))) return rc;
  int old = PERM_NONE;
  db_member_role(org.id, user.id, &old);
  if ((rc = db_member_set(org.id, user.id, newrole))) return rc;
  org_audit(r, &org, old ? "org.member.role" : "org.member.add", user.name,
            json_pack("{s:s, s:s}", "from", auth_role_name(old), "to", auth_role_name(newrole)));
  return http_reply_json(
      r, 200, json_pack("{s:s, s:s}", "user", user.name, "role", auth_role_name(newrole)));
}

static int h_member_set(hub_req *r) {
  return member_change(r, 0);
}

static int h_member_remove(hub_req *r) {
  return member_change(r, 1);
}

/* Audit log: filters action, actor, since, until (ISO or unix ms), cursor (id), limit;
 * format=ndjson streams every match as one JSON object per line (export). */
static int64_t parse_time(const char *s) {
  if (!s || !*s) return 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (!*end) return v;
  struct tm tm = {0};
  if (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) return (int64_t)timegm(&tm) * 1000;
  if (strptime(s, "%Y-%m-%d", &tm)) return (int64_t)timegm(&tm) * 1000;
  return 0;
}

static int audit_reply(hub_req *r, const char *ns) {
  audit_query q = {0};
  q.ns = ns;
  q.action = http_param(r, "action");
  q.actor = http_param(r, "actor");
  q.since_ms = parse_time(http_param(r, "since"));
  q.until_ms = parse_time(http_param(r, "until"));
  const char *cur = http_param(r, "cursor");
  q.before_id = cur ? strtoll(cur, NULL, 10) : 0;
  const char *lim = http_param(r, "limit");
  int ndjson = http_param(r, "format") && !strcmp(http_param(r, "format"), "ndjson");
  q.limit = ndjson ? 1000000 : lim ? atoi(lim) : 100;
  if (q.limit <= 0 || (!ndjson && q.limit > HUB_MAX_PAGE))
    q.limit = ndjson ? q.limit : HUB_MAX_PAGE;
  json_t *arr;
  int rc = audit_list(&q, &arr);
  if (rc) return rc;
  if (ndjson) {
    hub_buf b = HUB_BUF_INIT;
    json_t *e;
    size_t i;
    json_array_foreach(arr, i, e) {
      char *line = json_dumps(e, JSON_COMPACT);
      if (line) hub_buf_printf(&b, "%s\n", line);
      free(line);
    }
    json_decref(arr);
    rc = b.failed ? hub_error_set(HUB_ERROR, "out of memory")
                  : http_reply_data(r, 200, "application/x-ndjson", b.ptr ? b.ptr : "", b.len);
    hub_buf_dispose(&b);
    return rc;
  }
  size_t n = json_array_size(arr);
  json_int_t last = n ? json_integer_value(json_object_get(json_array_get(arr, n - 1), "id")) : 0;
  if ((rc = http_reply_json(r, 200, arr))) return rc;
  if (n == (size_t)q.limit && last > 1) {
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)last);
    api_next_link(r, "cursor", v);
  }
  return 0;
}

static int h_org_audit(hub_req *r) {
  db_account org;
  int role, rc;
  if ((rc = load_org(r, &org, &role))) return rc;
  if ((rc = need_org_admin(r, &org, role, "read its audit log"))) return rc;
  return audit_reply(r, org.name);
}

static int h_site_audit(hub_req *r) {
  return audit_reply(r, NULL);
}

const hub_route api_org_routes[] = {
    {"GET", "/api/organizations/{org}/members", h_members, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/organizations/{org}/members/{user}", h_member_set, NEED_LOGIN, BODY_JSON, NULL,
     0},
    {"PUT", "/api/organizations/{org}/members/{user}", h_member_set, NEED_LOGIN, BODY_JSON, NULL,
     0},
    {"DELETE", "/api/organizations/{org}/members/{user}", h_member_remove, NEED_LOGIN, BODY_NONE,
     NULL, 0},
    {"GET", "/api/organizations/{org}/audit-log", h_org_audit, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"GET", "/api/admin/audit-log", h_site_audit, NEED_SITE_ADMIN, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
