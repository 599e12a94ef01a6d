/* Repo lifecycle: create, delete, move, settings. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "events/events.h"
#include "mirror/mirror.h"
#include "util/error.h"

static const char *jstr(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Accept both `private: bool` (older clients) and `visibility` (newer). -1 = absent. */
static int parse_private(json_t *body, int *out) {
  json_t *vis = json_object_get(body, "visibility");
  json_t *priv = json_object_get(body, "private");
  *out = -1;
  if (json_is_string(vis)) {
    const char *v = json_string_value(vis);
    if (!strcmp(v, "public"))
      *out = 0;
    else if (!strcmp(v, "private") || !strcmp(v, "protected"))
      *out = 1;
    else
      return hub_error_set(HUB_EINVALID, "visibility must be public, private or protected");
  } else if (json_is_boolean(priv)) {
    *out = json_is_true(priv);
  } else if (priv && !json_is_null(priv)) {
    return hub_error_set(HUB_EINVALID, "private must be a boolean");
  }
  return 0;
}

static int parse_type(json_t *body, int *out) {
  json_t *t = json_object_get(body, "type");
  if (!t || json_is_null(t)) {
    *out = HUB_REPO_MODEL;
    return 0;
  }
  if (!json_is_string(t)) return hub_error_set(HUB_EINVALID, "type must be a string");
  return http_type_parse(json_string_value(t), out);
}

/* Namespace from `organization` (null → the caller). */
static int target_namespace(hub_req *r, json_t *body, db_account *out) {
  const char *org = jstr(body, "organization");
  const char *ns = org ? org : r->who.name;
  if (db_account_by_name(ns, out))
    return hub_error_set(HUB_ENOTFOUND, "Namespace '%s' not found", ns);
  return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(p);
}

static void remove_tree(const char *dir) {
  nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

int api_create_body_parse(json_t *body, api_create_body *out) {
  memset(out, 0, sizeof *out);
  out->name = jstr(body, "name");
  out->organization = jstr(body, "organization");
  if (!out->name) return hub_error_set(HUB_EINVALID, "Missing field: name");
  if (!api_name_valid(out->name))
    return hub_error_set(HUB_EINVALID,
                         "Invalid repo name '%s': use letters, digits, '-', '_' and '.', at most "
                         "%d characters, no '--' or '..', not starting or ending with '-' or '.'",
                         out->name, HUB_MAX_NAME);
  json_t *org = json_object_get(body, "organization");
  if (org && !json_is_null(org) && !json_is_string(org))
    return hub_error_set(HUB_EINVALID, "organization must be a string or null");
  int rc;
  if ((rc = parse_type(body, &out->type)) || (rc = parse_private(body, &out->is_private)))
    return rc;
  return 0;
}

static int h_create(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  api_create_body req;
  int rc = api_create_body_parse(body, &req);
  if (rc) return rc;
  const char *name = req.name;
  int type = req.type, priv = req.is_private;
  db_account ns;
  if ((rc = target_namespace(r, body, &ns))) return rc;
  int perm = auth_ns_perm(&r->who, &ns);
  if (perm < PERM_WRITE)
    return hub_error_set(HUB_EFORBIDDEN,
                         r->who.token_role == PERM_READ
                             ? "You cannot create a repository with a read-only token"
                             : "You don't have the rights to create a repository under '%s'",
                         ns.name);
  db_repo repo;
  memset(&repo, 0, sizeof repo);
  repo.type = type;
  snprintf(repo.ns, sizeof repo.ns, "%s", ns.name);
  snprintf(repo.name, sizeof repo.name, "%s", name);
  repo.owner_id = ns.id;
  repo.owner_is_org = ns.kind == ACCOUNT_ORG;
  repo.is_private = priv == 1;
  if ((rc = db_repo_create(&repo))) {
    /* The Hub's 409 names the existing repo's URL: huggingface_hub's create_repo(...,
     * exist_ok=True) returns it from there. */
    if (rc != HUB_EEXISTS) return rc;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    if ((rc = http_reply_json(
             r, 409, json_pack("{s:s, s:s}", "error", msg, "url", api_repo_url(r, &repo)))))
      return rc;
    http_add_header(r, "X-Error-Code", "Conflict");
    http_add_header(r, "X-Error-Message", msg);
    return 0;
  }
  char dir[4200];
  db_repo_dir(repo.uid, dir, sizeof dir);
  char email[HUB_MAX_USER_NAME + 32];
  snprintf(email, sizeof email, "%s@users.noreply.modelhub", r->who.name);
  char sha[41];
  repo_handle *h = NULL;
  if (!(rc = repo_init_bare(dir, r->who.name, email, sha)) && !(rc = repo_open(&h, dir))) {
    /* The first ref through the spine: event, "repo.create" audit entry, derived head. */
    json_t *det = json_pack("{s:b}", "private", repo.is_private);
    events_ctx ev = {
        &repo, {&r->who, NULL, http_client_ip(r)}, "repo.create", "repo.create", det, 0, NULL, NULL,
        NULL};
    repo_ref_update u = {"refs/heads/main", "", ""};
    snprintf(u.new_, sizeof u.new_, "%s", sha);
    rc = events_record(h, &u, 1, &ev);
    json_decref(det);
  }
  repo_free(h);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    db_repo_delete(repo.id);
    remove_tree(dir);
    return hub_error_set(rc == HUB_ENOSPC ? rc : HUB_ERROR, "creating repository failed: %s", msg);
  }
  db_repo_by_id(repo.id, &repo);
  r->repo = repo;
  char full[2 * HUB_MAX_NAME + 2];
  snprintf(full, sizeof full, "%s/%s", repo.ns, repo.name);
  return http_reply_json(
      r, 200,
      json_pack("{s:s, s:s, s:s}", "url", api_repo_url(r, &repo), "name", full, "id", repo.uid));
}

/* Body {name, organization, type} → the repo, authorized for admin. */
static int body_repo(hub_req *r, json_t *body, db_repo *out) {
  const char *name = jstr(body, "name");
  if (!name) return hub_error_set(HUB_EINVALID, "Missing field: name");
  const char *org = jstr(body, "organization");
  const char *slash = strchr(name, '/');
  char ns[HUB_MAX_NAME + 1], nm[HUB_MAX_NAME + 1];
  if (slash && !org) {
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - name), name);
    snprintf(nm, sizeof nm, "%s", slash + 1);
  } else {
    snprintf(ns, sizeof ns, "%s", org ? org : r->who.name);
    snprintf(nm, sizeof nm, "%s", name);
  }
  int type, rc;
  if ((rc = parse_type(body, &type))) return rc;
  if (db_repo_get(type, ns, nm, out)) return hub_error_set(HUB_EREPO, "Repository not found");
  int perm = auth_repo_perm(&r->who, out);
  if (perm < PERM_READ) return hub_error_set(HUB_EREPO, "Repository not found");
  if (perm < PERM_ADMIN)
    return hub_error_set(HUB_EFORBIDDEN, "You don't have the rights to administer %s/%s", out->ns,
                         out->name);
  return 0;
}

/* Repository changes without a ref move: the DB change runs inside the spine's
 * transaction with its event and audit entry (events_record_repo). */
static int delete_change(void *payload) {
  const db_repo *repo = payload;
  int rc = db_repo_delete(repo->id);
  return rc ? rc : db_event_refs_clear(repo->id);
}

typedef struct {
  const db_repo *repo;
  const db_account *ns;
  const char *name;
} move_args;

static int move_change(void *payload) {
  move_args *m = payload;
  return db_repo_move(m->repo->id, m->ns->id, m->ns->kind == ACCOUNT_ORG, m->ns->name, m->name);
}

static int update_change(void *payload) {
  return db_repo_update(payload);
}

/* A mirrored repo is a read-only copy (docs/mirror.md): it is neither deleted nor moved
 * through the API. */
static int refuse_mirror(const db_repo *repo) {
  db_mirror_repo m;
  if (!mirror_enabled() || mirror_repo_of(repo, &m)) return 0;
  return hub_error_set(HUB_EFORBIDDEN,
                       "%s/%s is a read-only mirror of %s: it cannot be changed here", repo->ns,
                       repo->name, m.upstream);
}

static int h_delete(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  db_repo repo;
  int rc = body_repo(r, body, &repo);
  if (!rc) rc = refuse_mirror(&repo);
  if (rc) return rc;
  r->repo = repo;
  /* What webhooks need of a repo whose row is gone (webhooks/). */
  char full[2 * HUB_MAX_NAME + 2];
  snprintf(full, sizeof full, "%s/%s", repo.ns, repo.name);
  json_t *det =
      json_pack("{s:s, s:i, s:b, s:I, s:b}", "name", full, "type", repo.type, "private",
                repo.is_private, "ownerId", (json_int_t)repo.owner_id, "org", repo.owner_is_org);
  events_ctx ev = {
      &repo, {&r->who, NULL, http_client_ip(r)}, "repo.delete", "repo.delete", NULL, 0, NULL, NULL,
      det};
  rc = events_record_repo(&ev, delete_change, &repo);
  json_decref(det);
  if (rc) return rc;
  api_repo_forget(repo.uid);
  /* The row is gone, so nothing can reach the directory any more: move it aside first so
   * a crash mid-delete leaves no half-removed repo under a live id. */
  char dir[4200], trash[4300];
  db_repo_dir(repo.uid, dir, sizeof dir);
  snprintf(trash, sizeof trash, "%s/tmp/deleted-%s.git", db_data_dir(), repo.uid);
  if (rename(dir, trash) == 0)
    remove_tree(trash);
  else
    remove_tree(dir);
  return http_reply_json(r, 200, json_object());
}

static int h_move(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  const char *from = jstr(body, "fromRepo"), *to = jstr(body, "toRepo");
  if (!from || !to) return hub_error_set(HUB_EINVALID, "Missing field: fromRepo / toRepo");
  const char *fs = strchr(from, '/'), *ts = strchr(to, '/');
  if (!fs || !ts || strchr(fs + 1, '/') || strchr(ts + 1, '/'))
    return hub_error_set(HUB_EINVALID, "fromRepo and toRepo must be 'namespace/name'");
  int type, rc;
  if ((rc = parse_type(body, &type))) return rc;
  char fns[HUB_MAX_NAME + 1], tns[HUB_MAX_NAME + 1];
  snprintf(fns, sizeof fns, "%.*s", (int)(fs - from), from);
  snprintf(tns, sizeof tns, "%.*s", (int)(ts - to), to);
  const char *tname = ts + 1;
  if (!api_name_valid(tname)) return hub_error_set(HUB_EINVALID, "Invalid repo name '%s'", tname);
  db_repo repo;
  if (db_repo_get(type, fns, fs + 1, &repo))
    return hub_error_set(HUB_EREPO, "Repository not found");
  int perm = auth_repo_perm(&r->who, &repo);
  if (perm < PERM_READ) return hub_error_set(HUB_EREPO, "Repository not found");
  if (perm < PERM_ADMIN)
    return hub_error_set(HUB_EFORBIDDEN, "You don't have the rights to move %s", from);
  if ((rc = refuse_mirror(&repo))) return rc;
  db_account ns;
  if (db_account_by_name(tns, &ns))
    return hub_error_set(HUB_ENOTFOUND, "Namespace '%s' not found", tns);
  if (auth_ns_perm(&r->who, &ns) < PERM_WRITE)
    return hub_error_set(HUB_EFORBIDDEN, "You don't have the rights to create repos under '%s'",
                         tns);
  r->repo = repo;
  move_args ma = {&repo, &ns, tname};
  json_t *det = json_pack("{s:s, s:s}", "from", from, "to", to);
  events_ctx ev = {
      &repo, {&r->who, NULL, http_client_ip(r)}, "repo.move", "repo.move", det, 0, NULL, NULL, det};
  rc = events_record_repo(&ev, move_change, &ma);
  json_decref(det);
  if (rc) return rc;
  return http_reply_json(r, 200, json_object());
}

static int h_settings(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  int priv, rc;
  if ((rc = parse_private(body, &priv))) return rc;
  db_repo repo = r->repo;
  if (priv >= 0) repo.is_private = priv;
  json_t *g = json_object_get(body, "gated");
  if (g) {
    if (json_is_false(g) || json_is_null(g))
      repo.gated[0] = 0;
    else if (json_is_string(g) &&
             (!strcmp(json_string_value(g), "auto") || !strcmp(json_string_value(g), "manual")))
      snprintf(repo.gated, sizeof repo.gated, "%s", json_string_value(g));
    else
      return hub_error_set(HUB_EINVALID, "gated must be \"auto\", \"manual\" or false");
  }
  json_t *det = json_object();
  if (repo.is_private != r->repo.is_private)
    json_object_set_new(det, "private", json_boolean(repo.is_private));
  if (strcmp(repo.gated, r->repo.gated))
    json_object_set_new(det, "gated", repo.gated[0] ? json_string(repo.gated) : json_false());
  events_ctx ev = {&repo,
                   {&r->who, NULL, http_client_ip(r)},
                   "repo.settings",
                   "repo.settings",
                   det,
                   0,
                   NULL,
                   NULL,
                   det};
  rc = events_record_repo(&ev, update_change, &repo);
  json_decref(det);
  if (rc) return rc;
  r->repo = repo;
  return http_reply_json(r, 200,
                         json_pack("{s:b, s:o}", "private", repo.is_private, "gated",
                                   repo.gated[0] ? json_string(repo.gated) : json_false()));
}

const hub_route api_repo_routes[] = {
    {"POST", "/api/repos/create", h_create, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"DELETE", "/api/repos/delete", h_delete, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"POST", "/api/repos/move", h_move, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"PUT", "/api/{type}/{repo}/settings", h_settings, NEED_REPO_ADMIN, BODY_JSON, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
