/* The scan service's API (docs/scanning.md, "The scan service and policy"):
 *   POST   /api/{type}/{repo}/scan/override  {"path" | "oid", "reason", "revision"?}  writers
 *   DELETE /api/{type}/{repo}/scan/override?path=P | ?oid=O                           writers
 *   GET|PUT /api/organizations/{org}/settings/scan-policy {"policy"}   org admins, site admins
 *   GET    /api/admin/scans[?objects=1]                                  site admins
 * Per-file and per-repo results are fields of the tree, paths-info and repo info answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/scan.h"
#include "security/security.h"
#include "util/error.h"

/* The object a request names: "oid" as given (sha256 or git blob sha1), or "path" at
 * `revision` (default: the head of the default branch). */
static int target_oid(hub_req *r, const char *oid, const char *path, const char *rev, char out[65],
                      char *out_path, size_t cap) {
  out_path[0] = 0;
  if (oid && *oid) {
    size_t n = strlen(oid);
    if ((n != 40 && n != 64) || strspn(oid, "0123456789abcdef") != n)
      return hub_error_set(HUB_EINVALID, "oid must be a sha256 or a git blob id (lowercase hex)");
    snprintf(out, 65, "%s", oid);
    return 0;
  }
  if (!path || !*path) return hub_error_set(HUB_EINVALID, "Give \"path\" or \"oid\"");
  repo_handle *h;
  char sha[41];
  repo_entry e;
  int rc = api_repo_open(r, &h);
  if (rc || (rc = repo_resolve(h, rev && *rev ? rev : "HEAD", sha, NULL))) return rc;
  if ((rc = repo_stat(h, sha, path, &e))) return rc;
  if (e.type != REPO_ENTRY_FILE) rc = hub_error_set(HUB_EENTRY, "%s is not a file", path);
  snprintf(out, 65, "%s", e.is_lfs ? e.lfs_oid : e.oid);
  snprintf(out_path, cap, "%s", path);
  repo_entry_dispose(&e);
  return rc;
}

static int h_override_set(hub_req *r) {
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  const char *reason = json_string_value(json_object_get(b, "reason"));
  if (!reason || !*reason || strlen(reason) > 500)
    return hub_error_set(HUB_EINVALID, "\"reason\" is required (at most 500 characters)");
  char oid[65], path[DB_SCAN_PATH_MAX + 1];
  int rc = target_oid(r, json_string_value(json_object_get(b, "oid")),
                      json_string_value(json_object_get(b, "path")),
                      json_string_value(json_object_get(b, "revision")), oid, path, sizeof path);
  if (rc) return rc;
  char msg[400], level[16];
  security_finding(oid, msg, sizeof msg, level);
  if ((rc = db_scan_override_set(r->repo.id, oid, path, r->who.name, reason))) return rc;
  api_audit(r, "scan.override", NULL,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "oid", oid, "path", path, "reason", reason,
                      "level", level[0] ? level : "unscanned", "finding", msg));
  return http_reply_json(r, 200,
                         json_pack("{s:s, s:s, s:s, s:s, s:s}", "oid", oid, "path", path, "reason",
                                   reason, "by", r->who.name, "level",
                                   level[0] ? level : "unscanned"));
}

static int h_override_delete(hub_req *r) {
  char oid[65], path[DB_SCAN_PATH_MAX + 1];
  int rc = target_oid(r, http_param(r, "oid"), http_param(r, "path"), http_param(r, "revision"),
                      oid, path, sizeof path);
  if (rc || (rc = db_scan_override_delete(r->repo.id, oid))) return rc;
  api_audit(r, "scan.override.revoke", NULL, json_pack("{s:s, s:s}", "oid", oid, "path", path));
  return http_reply_json(r, 200, json_pack("{s:s}", "oid", oid));
}

/* ---- organization policy ---- */

static int load_org_admin(hub_req *r, db_account *org, int write) {
  char *name = strdup(r->cap[0]);
  if (!name) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, name);
  if (api_pct_decode_inplace(name) || db_account_by_name(name, org) || org->kind != ACCOUNT_ORG)
    return hub_error_set(HUB_ENOTFOUND, "Organization not found");
  if (r->who.is_admin) return 0;
  int role = auth_org_role(&r->who, org);
  if (role < PERM_READ) return hub_error_set(HUB_ENOTFOUND, "Organization not found");
  if (write && role < PERM_ADMIN)
    return hub_error_set(HUB_EFORBIDDEN, "Only admins of %s can change its scan policy", org->name);
  return 0;
}

static int policy_reply(hub_req *r, const db_account *org) {
  char p[24];
  db_scan_org_policy_get(org->id, p);
  db_repo probe = {0};
  probe.owner_id = org->id;
  probe.owner_is_org = 1;
  return http_reply_json(r, 200,
                         json_pack("{s:s?, s:s}", "policy", p[0] ? p : NULL, "effective",
                                   security_policy_name(security_policy_for(&probe))));
}

static int h_policy_get(hub_req *r) {
  db_account org;
  int rc = load_org_admin(r, &org, 0);
  return rc ? rc : policy_reply(r, &org);
}

static int h_policy_set(hub_req *r) {
  db_account org;
  int rc = load_org_admin(r, &org, 1);
  if (rc) return rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  json_t *pv = json_object_get(b, "policy");
  const char *p = json_string_value(pv);
  if (!json_is_null(pv) && security_policy_parse(p) < 0)
    return hub_error_set(HUB_EINVALID,
                         "\"policy\" must be \"warn\", \"block\", \"block-unscanned\" or null");
  if ((rc = db_scan_org_policy_set(org.id, p ? p : "", r->who.name))) return rc;
  api_audit(r, "org.scan-policy", NULL, json_pack("{s:s?}", "policy", p));
  return policy_reply(r, &org);
}

/* ---- admin ---- */

static int add_flagged(int64_t repo_id, const char *path, const char *oid, const char *level,
                       void *payload) {
  db_repo repo;
  if (db_repo_by_id(repo_id, &repo)) return 0;
  char msg[400], lv[16], id[2 * HUB_MAX_NAME + 2];
  security_finding(oid, msg, sizeof msg, lv);
  snprintf(id, sizeof id, "%s/%s", repo.ns, repo.name);
  json_array_append_new(payload, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "repo", id,
                                           "type", http_type_name(repo.type), "path", path, "oid",
                                           oid, "level", level, "message", msg, "overridden",
                                           db_scan_override_get(repo_id, oid, NULL) == 0));
  return 0;
}

static int add_object(const char *oid, const char *state, const char *level, int64_t scans,
                      void *payload) {
  json_array_append_new(payload, json_pack("{s:s, s:s, s:s, s:I}", "oid", oid, "state", state,
                                           "level", level, "scans", (json_int_t)scans));
  return 0;
}

static int h_admin_scans(hub_req *r) {
  json_t *flagged = json_array();
  int64_t queued = 0, per[5];
  db_scan_issues(0, 1000, add_flagged, flagged);
  db_scan_counts(&queued, per);
  json_t *o = json_pack("{s:o, s:I, s:s}", "flagged", flagged, "queued", (json_int_t)queued,
                        "policy", security_policy_name(security_policy_for(&(db_repo){0})));
  if (o && http_param_bool(r, "objects", 0)) {
    json_t *objs = json_array();
    db_scan_objects_each(10000, add_object, objs);
    json_object_set_new(o, "objects", objs);
  }
  return http_reply_json(r, 200, o);
}

const hub_route api_scan_routes[] = {
    {"POST", "/api/{type}/{repo}/scan/override", h_override_set, NEED_REPO_WRITE, BODY_JSON, NULL,
     0},
    {"DELETE", "/api/{type}/{repo}/scan/override", h_override_delete, NEED_REPO_WRITE, BODY_NONE,
     NULL, 0},
    {"GET", "/api/organizations/{org}/settings/scan-policy", h_policy_get, NEED_LOGIN, BODY_NONE,
     NULL, 0},
    {"PUT", "/api/organizations/{org}/settings/scan-policy", h_policy_set, NEED_LOGIN, BODY_JSON,
     NULL, 0},
    {"GET", "/api/admin/scans", h_admin_scans, NEED_SITE_ADMIN, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
