/* Protected branches and immutable tags: the rules, their API, and the checks the commit
 * API, the branch/tag API and the git pre-receive hook call. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov/internal.h"
#include "util/error.h"

static const char *short_name(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(name, prefix, n) ? name : name + n;
}

/* Rules in their stored order; *out_n ≤ GOV_MAX_RULES. */
static int rules_load(int64_t repo_id, gov_rule *out, size_t *out_n) {
  return db_gov_rules(repo_id, out, GOV_MAX_RULES, out_n);
}

/* (immutable_tags, stage_approver) of a repo; defaults when it has no row. */
static int settings_load(int64_t repo_id, int *immutable_tags, int *stage_approver) {
  *immutable_tags = 0;
  *stage_approver = PERM_ADMIN;
  return db_gov_settings(repo_id, immutable_tags, stage_approver);
}

int gov__branch_policy(int64_t repo_id, const char *branch, gov_rule *out, int *out_matched) {
  gov_rule *rules = calloc(GOV_MAX_RULES, sizeof *rules);
  size_t n = 0;
  int rc;
  memset(out, 0, sizeof *out);
  *out_matched = 0;
  if (!rules) return hub_error_set(HUB_ERROR, "out of memory");
  if ((rc = rules_load(repo_id, rules, &n))) goto done;
  for (size_t i = 0; i < n; i++) {
    /* No FNM_PATHNAME: '*' also matches '/', so a glob covers nested branch names. */
    if (strcmp(rules[i].pattern, branch) && fnmatch(rules[i].pattern, branch, 0)) continue;
    if (!*out_matched) snprintf(out->pattern, sizeof out->pattern, "%s", rules[i].pattern);
    *out_matched = 1;
    out->no_force_push |= rules[i].no_force_push;
    out->no_deletion |= rules[i].no_deletion;
    out->require_pr |= rules[i].require_pr;
  }
done:
  free(rules);
  return rc;
}

int gov__stage_approver(int64_t repo_id) {
  int imm, approver;
  if (settings_load(repo_id, &imm, &approver)) return PERM_ADMIN;
  return approver == PERM_WRITE ? PERM_WRITE : PERM_ADMIN;
}

/* ---- checks --------------------------------------------------------------------------- */

static const char MSG_REQUIRE_PR[] =
    "Branch %s is protected: open a pull request (create_pr=1) instead of committing to it "
    "directly";

int gov_check_commit(const db_repo *repo, const char *refname) {
  gov_rule p;
  int matched, rc;
  if (strncmp(refname, "refs/heads/", 11)) return 0; /* refs/pr/N: the PR's own ref */
  const char *branch = refname + 11;
  if ((rc = gov__branch_policy(repo->id, branch, &p, &matched))) return rc;
  if (matched && p.require_pr) return hub_error_set(HUB_EFORBIDDEN, MSG_REQUIRE_PR, branch);
  return 0;
}

int gov_check_pr_commit(const db_repo *repo, const hub_identity *who, int perm,
                        const char *refname) {
  if (strncmp(refname, "refs/pr/", 8) || perm >= PERM_WRITE) return 0;
  const char *n = refname + 8;
  int num = *n && strlen(n) < 10 && strspn(n, "0123456789") == strlen(n) ? atoi(n) : 0;
  gov_disc d;
  if (num <= 0 || db_gov_discussion_get(repo->id, num, &d))
    return hub_error_set(HUB_EFORBIDDEN,
                         "%s is not an open pull request: writing to it needs "
                         "write access",
                         refname);
  int author = who->authenticated && d.author_id == who->user_id;
  int open = !strcmp(d.status, "open") || !strcmp(d.status, "draft");
  free(d.title);
  if (!author)
    return hub_error_set(HUB_EFORBIDDEN,
                         "Only its author or writers can commit to pull request #%d", num);
  if (!open)
    return hub_error_set(HUB_EFORBIDDEN, "Pull request #%d is not open: reopen it first", num);
  return 0;
}

int gov_check_branch_change(const db_repo *repo, const char *name, int deletion) {
  gov_rule p;
  int matched, rc;
  const char *branch = short_name(name, "refs/heads/");
  if ((rc = gov__branch_policy(repo->id, branch, &p, &matched))) return rc;
  if (!matched) return 0;
  if (deletion && p.no_deletion)
    return hub_error_set(HUB_EFORBIDDEN, "Branch %s is protected: it cannot be deleted", branch);
  if (!deletion && (p.no_force_push || p.require_pr))
    return hub_error_set(HUB_EFORBIDDEN,
                         "Branch %s is protected: it cannot be overwritten (no force pushes)",
                         branch);
  return 0;
}

int gov_check_tag_change(const db_repo *repo, const char *name) {
  int imm, approver, rc;
  if ((rc = settings_load(repo->id, &imm, &approver))) return rc;
  if (imm)
    return hub_error_set(HUB_EFORBIDDEN,
                         "Tags are immutable in %s/%s: tag %s cannot be deleted or moved", repo->ns,
                         repo->name, short_name(name, "refs/tags/"));
  return 0;
}

static int is_zero(const char *id) {
  return strspn(id, "0") == 40;
}

/* The repo uid from the git directory name ".../<uid>.git/". */
static int uid_of(git_repository *git, char out[25]) {
  const char *p = git_repository_path(git);
  size_t n = p ? strlen(p) : 0;
  while (n && p[n - 1] == '/')
    n--;
  if (n < 28 || strncmp(p + n - 4, ".git", 4)) return hub_error_set(HUB_ERROR, "unknown repo");
  memcpy(out, p + n - 28, 24);
  out[24] = 0;
  return 0;
}

int gov_check_push(struct git_repository *git, const char *refname, const char *old_id,
                   const char *new_id) {
  db_repo repo;
  gov_rule p;
  char uid[25];
  int matched, rc;
  const char *data = getenv("MODELHUB_DATA");

  if (!*db_data_dir() && (!data || !*data || db_global_init(data))) {
    char why[256];
    snprintf(why, sizeof why, "%s", data && *data ? hub_error_msg() : "MODELHUB_DATA not set");
    return hub_error_set(HUB_ERROR, "%s: cannot check branch protections (metadata store: %s)",
                         refname, why);
  }
  if ((rc = uid_of(git, uid)) || (rc = db_repo_by_uid(uid, &repo)))
    return hub_error_set(rc, "%s: cannot check branch protections: repository unknown", refname);
  int creating = is_zero(old_id), deleting = is_zero(new_id);

  if (!strncmp(refname, "refs/pr/", 8)) { /* a pull request's ref: the PR must be open */
    db_gov_discussion d;
    int num;
    if (creating || deleting)
      return hub_error_set(HUB_EFORBIDDEN,
                           "%s: pull request refs are created by opening a pull request and "
                           "cannot be %s by a push",
                           refname, creating ? "created" : "deleted");
    if (gov__parse_num(refname + 8, &num) || db_gov_discussion_get(repo.id, num, &d))
      return hub_error_set(HUB_EFORBIDDEN, "%s: no such pull request", refname);
    int ok = d.is_pr && (!strcmp(d.status, "open") || !strcmp(d.status, "draft"));
    char st[16];
    snprintf(st, sizeof st, "%s", d.status);
    free(d.title);
    if (!ok) return hub_error_set(HUB_EFORBIDDEN, "%s: pull request #%d is %s", refname, num, st);
    return 0;
  }

  if (!strncmp(refname, "refs/tags/", 10)) {
    if (creating) return 0;
    if ((rc = gov_check_tag_change(&repo, refname)) == HUB_EFORBIDDEN)
      return hub_error_set(rc, "%s: tags are immutable in this repository; it cannot be %s",
                           refname, deleting ? "deleted" : "moved");
    return rc;
  }
  if (strncmp(refname, "refs/heads/", 11)) return 0;
  const char *branch = refname + 11;
  if ((rc = gov__branch_policy(repo.id, branch, &p, &matched))) return rc;
  if (!matched || creating) return 0;
  if (deleting) {
    if (p.no_deletion)
      return hub_error_set(HUB_EFORBIDDEN, "%s: branch '%s' is protected: it cannot be deleted",
                           refname, branch);
    return 0;
  }
  if (p.require_pr)
    return hub_error_set(HUB_EFORBIDDEN,
                         "%s: branch '%s' is protected: direct pushes are not allowed; open a "
                         "pull request (push another branch and commit with create_pr=1)",
                         refname, branch);
  if (p.no_force_push) {
    git_oid o, n;
    if (git_oid_fromstr(&o, old_id) < 0 || git_oid_fromstr(&n, new_id) < 0)
      return hub_error_set(HUB_EINVALID, "%s: malformed ids", refname);
    int ff = git_oid_equal(&o, &n) || git_graph_descendant_of(git, &n, &o) == 1;
    if (!ff)
      return hub_error_set(HUB_EFORBIDDEN,
                           "%s: branch '%s' is protected: force pushes (non-fast-forward "
                           "updates) are not allowed; pull, merge and push again",
                           refname, branch);
  }
  return 0;
}

/* ---- API ------------------------------------------------------------------------------ */

static json_t *rules_json(int64_t repo_id) {
  gov_rule *rules = calloc(GOV_MAX_RULES, sizeof *rules);
  size_t n = 0;
  int imm = 0, approver = PERM_ADMIN;
  json_t *arr = NULL;
  if (!rules) {
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  if (rules_load(repo_id, rules, &n) || settings_load(repo_id, &imm, &approver)) goto done;
  arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, json_pack("{s:s, s:b, s:b, s:b}", "pattern", rules[i].pattern,
                                         "noForcePush", rules[i].no_force_push, "noDeletion",
                                         rules[i].no_deletion, "requirePullRequest",
                                         rules[i].require_pr));
done:
  free(rules);
  if (!arr) return NULL;
  return json_pack("{s:o, s:b, s:s}", "rules", arr, "immutableTags", imm, "stageApprovers",
                   approver == PERM_WRITE ? "write" : "admin");
}

int gov__h_protections(hub_req *r) {
  json_t *o = rules_json(r->repo.id);
  if (!o) return hub_error_code() ? hub_error_code() : HUB_ERROR;
  return http_reply_json(r, 200, o);
}

static int pattern_valid(const char *p) {
  size_t n = strlen(p);
  if (!n || n > GOV_MAX_PATTERN || p[0] == '/' || p[n - 1] == '/' || strstr(p, "//") ||
      !strncmp(p, "refs/", 5))
    return 0;
  for (const char *c = p; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f || strchr("~^:\\", *c)) return 0;
  return 1;
}

/* A JSON boolean field, or dflt when absent; anything else is an error (-1). */
static int bool_field(json_t *o, const char *key, int dflt) {
  json_t *v = json_object_get(o, key);
  if (!v) return dflt;
  return json_is_boolean(v) ? json_is_true(v) : -1;
}

int gov__h_protections_put(hub_req *r) {
  json_t *b = http_body_json(r), *rules, *it, *before = NULL, *after = NULL;
  size_t i;
  int rc = 0, imm, approver, changed_rules;
  if (!b) return HUB_EINVALID;
  if ((rc = settings_load(r->repo.id, &imm, &approver))) return rc;
  rules = json_object_get(b, "rules");
  changed_rules = rules != NULL;
  if (rules && !json_is_array(rules)) return hub_error_set(HUB_EINVALID, "rules must be a list");
  if (json_array_size(rules) > GOV_MAX_RULES)
    return hub_error_set(HUB_EINVALID, "At most %d protection rules per repository", GOV_MAX_RULES);
  json_array_foreach(rules, i, it) {
    const char *pat = json_string_value(json_object_get(it, "pattern"));
    if (!json_is_object(it) || !pat || !pattern_valid(pat))
      return hub_error_set(HUB_EINVALID,
                           "rules[%zu].pattern must be a branch name or glob (e.g. \"main\", "
                           "\"release/*\")",
                           i);
    if (bool_field(it, "noForcePush", 1) < 0 || bool_field(it, "noDeletion", 1) < 0 ||
        bool_field(it, "requirePullRequest", 0) < 0)
      return hub_error_set(HUB_EINVALID,
                           "rules[%zu]: noForcePush, noDeletion and requirePullRequest are "
                           "booleans",
                           i);
  }
  int new_imm = bool_field(b, "immutableTags", imm);
  if (new_imm < 0) return hub_error_set(HUB_EINVALID, "immutableTags must be a boolean");
  json_t *sa = json_object_get(b, "stageApprovers");
  int new_approver = approver;
  if (sa) {
    const char *s = json_string_value(sa);
    if (!s || (strcmp(s, "admin") && strcmp(s, "write")))
      return hub_error_set(HUB_EINVALID, "stageApprovers must be \"admin\" or \"write\"");
    new_approver = !strcmp(s, "write") ? PERM_WRITE : PERM_ADMIN;
  }

  if (!(before = rules_json(r->repo.id))) return hub_error_code();
  gov_rule *list = calloc(json_array_size(rules) + 1, sizeof *list);
  if (!list) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  json_array_foreach(rules, i, it) {
    snprintf(list[i].pattern, sizeof list[i].pattern, "%s",
             json_string_value(json_object_get(it, "pattern")));
    list[i].no_force_push = bool_field(it, "noForcePush", 1);
    list[i].no_deletion = bool_field(it, "noDeletion", 1);
    list[i].require_pr = bool_field(it, "requirePullRequest", 0);
  }
  rc = db_gov_protections_save(r->repo.id, changed_rules, list, json_array_size(rules), new_imm,
                               new_approver);
  free(list);
  if (rc) goto done;
  if (!(after = rules_json(r->repo.id))) {
    rc = hub_error_code();
    goto done;
  }
  json_t *details = json_pack("{s:O, s:O}", "from", before, "to", after);
  gov__audit(r, "repo.protection", details);
  json_decref(details);
  rc = http_reply_json(r, 200, after);
  after = NULL;
done:
  json_decref(before);
  json_decref(after);
  return rc;
}
