/* Pull requests (hf-api.md §5.5 create_pr, §7.2 list shape): the discussions table, its list
 * and detail endpoints, merge and status changes. A PR's commits live on refs/pr/N; the
 * table holds what git does not: title, author, target branch, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov/internal.h"
#include "events/events.h"
#include "util/error.h"
#include "util/time.h"

typedef db_gov_discussion disc_row;

static void disc_dispose(disc_row *d) {
  free(d->title);
  d->title = NULL;
}

int gov_pr_opened(const db_repo *repo, const hub_identity *who, int num, const char *title,
                  const char *target_branch) {
  return db_gov_pr_opened(repo->id, num, title && *title ? title : "Upload files", who->user_id,
                          target_branch && *target_branch ? target_branch : "main", db_now_ms());
}

static int disc_load(int64_t repo_id, int num, disc_row *out) {
  return db_gov_discussion_get(repo_id, num, out);
}

/* The §7.2 list item. */
static json_t *disc_json(hub_req *r, const disc_row *d) {
  char repo[HUB_MAX_NAME * 2 + 2];
  snprintf(repo, sizeof repo, "%s/%s", r->repo.ns, r->repo.name);
  return json_pack("{s:i, s:s, s:s, s:o, s:b, s:{s:s, s:s}, s:{s:s}}", "num", d->num, "title",
                   d->title, "status", d->status, "createdAt", hub_iso_json(d->created_ms),
                   "isPullRequest", d->is_pr, "repo", "name", repo, "type",
                   http_type_name(r->repo.type), "author", "name", d->author);
}

/* ---- GET /discussions ------------------------------------------------------------------ */

typedef struct {
  hub_req *r;
  json_t *arr;
} list_ctx;

static int list_row(const disc_row *d, void *payload) {
  list_ctx *c = payload;
  json_array_append_new(c->arr, disc_json(c->r, d));
  return 0;
}

int gov__h_discussions(hub_req *r) {
  const char *type = http_param(r, "type"), *status = http_param(r, "status");
  const char *author = http_param(r, "author"), *p = http_param(r, "p");
  json_t *arr = NULL;
  int64_t count = 0;
  int is_pr = -1, rc = 0;
  long page = 0;

  if (!type || !*type || !strcmp(type, "all"))
    is_pr = -1;
  else if (!strcmp(type, "pull_request"))
    is_pr = 1;
  else if (!strcmp(type, "discussion"))
    is_pr = 0;
  else
    return hub_error_set(HUB_EINVALID, "type must be all, discussion or pull_request");
  if (!status || !*status) status = "all";
  if (strcmp(status, "all") && strcmp(status, "open") && strcmp(status, "closed") &&
      strcmp(status, "merged") && strcmp(status, "draft"))
    return hub_error_set(HUB_EINVALID, "status must be all, open, closed, merged or draft");
  if (author && !*author) author = NULL;
  if (p && *p) {
    char *end;
    page = strtol(p, &end, 10);
    if (*end || page < 0 || page > 1000000) return hub_error_set(HUB_EINVALID, "bad page: p");
  }
  if (!db_conn()) return HUB_ERROR;

  if ((rc = db_gov_discussion_count(r->repo.id, is_pr, status, author, &count))) return rc;
  arr = json_array();
  list_ctx c = {r, arr};
  rc = db_gov_discussion_list(r->repo.id, is_pr, status, author, GOV_PAGE, (int64_t)page * GOV_PAGE,
                              list_row, &c);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  return http_reply_json(r, 200,
                         json_pack("{s:o, s:I, s:I}", "discussions", arr, "count",
                                   (json_int_t)count, "start", (json_int_t)page * GOV_PAGE));
}

/* ---- GET /discussions/{num} ------------------------------------------------------------ */

int gov__h_discussion(hub_req *r) {
  disc_row d = {0};
  git_repository *g = NULL;
  char pr_ref[32], target_ref[HUB_MAX_PATH + 16];
  int num, rc;
  if ((rc = gov__parse_num(r->cap[0], &num)) || (rc = disc_load(r->repo.id, num, &d))) return rc;
  json_t *o = disc_json(r, &d);
  if (!o) {
    disc_dispose(&d);
    return hub_error_set(HUB_ERROR, "cannot encode discussion #%d", num);
  }
  json_object_set_new(o, "events", json_array());
  if (d.is_pr) {
    json_t *files = json_array(), *changes = json_object();
    snprintf(pr_ref, sizeof pr_ref, "refs/pr/%d", num);
    snprintf(target_ref, sizeof target_ref, "refs/heads/%s", d.target);
    json_object_set_new(changes, "base", json_string(target_ref));
    if (d.merged_commit[0]) {
      json_object_set_new(changes, "mergeCommitId", json_string(d.merged_commit));
      json_object_set_new(o, "mergedBy", json_string(d.merged_by));
      json_object_set_new(o, "mergedAt", hub_iso_json(d.merged_ms));
    }
    json_t *pr =
        json_pack("{s:s, s:s, s:n}", "ref", pr_ref, "targetBranch", d.target, "headCommit");
    if (gov__git_open(&r->repo, &g) == 0) {
      git_oid head;
      char hex[41];
      if (git_reference_name_to_id(&head, g, pr_ref) == 0)
        json_object_set_new(pr, "headCommit", json_string(git_oid_tostr(hex, sizeof hex, &head)));
      /* Only an open PR can still conflict; a vanished target just lists nothing. */
      if (!strcmp(d.status, "open") || !strcmp(d.status, "draft"))
        gov__conflicts(g, target_ref, pr_ref, files);
      git_repository_free(g);
    }
    json_object_set_new(o, "changes", changes);
    json_object_set_new(o, "filesWithConflicts", files);
    json_object_set_new(o, "pullRequest", pr);
  }
  disc_dispose(&d);
  hub_error_clear();
  return http_reply_json(r, 200, o);
}

/* ---- POST /discussions/{num}/merge --------------------------------------------------- */

/* The discussion marked merged (in the caller's transaction when there is one). */
static int mark_merged(hub_req *r, int num, const char *sha, int *changed) {
  return db_gov_mark_merged(r->repo.id, num, sha, r->who.name, db_now_ms(), changed);
}

typedef struct {
  hub_req *r;
  const disc_row *d;
  int num;
  const gov_merge_result *m;
  int changed;
  events_ctx ev;
} merge_rec;

static int merge_also(void *payload) {
  merge_rec *mr = payload;
  return mark_merged(mr->r, mr->num, mr->m->new_sha, &mr->changed);
}

/* The merge's record: event + "pr.merge" audit entry + derived head + the PR marked merged,
 * one transaction (events/). */
static int merge_record(repo_handle *h, const repo_ref_update *u, size_t n, void *payload) {
  merge_rec *mr = payload;
  json_t *details = json_pack("{s:i, s:s, s:s, s:s, s:s, s:b}", "num", mr->num, "target",
                              mr->d->target, "from", mr->m->old_sha, "to", mr->m->new_sha, "head",
                              mr->m->head_sha, "fastForward", mr->m->fast_forward);
  mr->ev.details = details;
  mr->ev.also = merge_also;
  mr->ev.also_payload = mr;
  int rc = events_record(h, u, n, &mr->ev);
  json_decref(details);
  return rc;
}

int gov__h_merge(hub_req *r) {
  disc_row d = {0};
  git_repository *g = NULL;
  gov_merge_result m;
  char pr_ref[32], target_ref[HUB_MAX_PATH + 16], email[HUB_MAX_USER_NAME + 32];
  hub_buf msg = HUB_BUF_INIT;
  int num, rc;
  if ((rc = gov__parse_num(r->cap[0], &num)) || (rc = disc_load(r->repo.id, num, &d))) return rc;
  if (!d.is_pr) {
    rc = hub_error_set(HUB_EINVALID, "Discussion #%d is not a pull request", num);
    goto done;
  }
  if (!strcmp(d.status, "merged")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is already merged", num);
    goto done;
  }
  if (strcmp(d.status, "open")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is %s; reopen it before merging", num,
                       d.status);
    goto done;
  }
  snprintf(pr_ref, sizeof pr_ref, "refs/pr/%d", num);
  snprintf(target_ref, sizeof target_ref, "refs/heads/%s", d.target);
  snprintf(email, sizeof email, "%s@users.noreply.modelhub", r->who.name);
  hub_buf_printf(&msg, "Merge pull request #%d: %s\n", num, d.title);
  if (msg.failed) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  repo_handle *h;
  if ((rc = gov__repo_open(r, &h)) || (rc = gov__git_open(&r->repo, &g))) goto done;
  merge_rec mr = {r,
                  &d,
                  num,
                  &m,
                  0,
                  {&r->repo,
                   {&r->who, NULL, http_client_ip(r)},
                   "merge",
                   "pr.merge",
                   NULL,
                   0,
                   NULL,
                   NULL,
                   NULL}};
  repo_recorder rec = {merge_record, &mr};
  rc = gov__merge(g, h, &rec, target_ref, pr_ref, r->who.name, email, msg.ptr, &m);
  if (rc == HUB_EREVISION) {
    char why[256];
    snprintf(why, sizeof why, "%s", hub_error_msg());
    rc = hub_error_set(rc, "Cannot merge pull request #%d: %s", num, why);
  }
  if (rc) goto done;
  if (m.noop) { /* nothing moved: only the discussion's status (no event) */
    int changed = 0;
    if ((rc = mark_merged(r, num, m.new_sha, &changed))) goto done;
    if (!changed) {
      rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is already merged", num);
      goto done;
    }
  } else if (!strcmp(d.target, "main")) {
    events_wait("index", mr.ev.last_event, HUB_DERIVE_WAIT_MS);
  }
  rc = http_reply_json(r, 200,
                       json_pack("{s:i, s:s, s:s, s:s, s:b}", "num", num, "status", "merged",
                                 "mergeCommitId", m.new_sha, "previousCommit", m.old_sha,
                                 "fastForward", m.fast_forward));
done:
  hub_buf_dispose(&msg);
  git_repository_free(g);
  disc_dispose(&d);
  return rc;
}

/* ---- POST /discussions/{num}/status -------------------------------------------------- */

int gov__h_status(hub_req *r) {
  disc_row d = {0};
  int num, rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  const char *want = json_string_value(json_object_get(b, "status"));
  if (!want || (strcmp(want, "open") && strcmp(want, "closed")))
    return hub_error_set(HUB_EINVALID, "status must be \"open\" or \"closed\"");
  if ((rc = gov__parse_num(r->cap[0], &num)) || (rc = disc_load(r->repo.id, num, &d))) return rc;
  int is_author = r->who.authenticated && r->who.user_id == d.author_id;
  if (!(r->repo_perm >= PERM_WRITE || (is_author && r->repo_perm >= PERM_CONTRIBUTOR))) {
    rc = gov__deny(r, "Only its author or writers can change the status of a discussion");
    goto done;
  }
  if (!strcmp(d.status, "merged")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is merged; its status cannot change", num);
    goto done;
  }
  int64_t now = db_now_ms();
  if ((rc = db_gov_set_status(r->repo.id, num, want, now))) goto done;
  json_t *details = json_pack("{s:i, s:s, s:s}", "num", num, "from", d.status, "to", want);
  gov__audit(r, "discussion.status", details);
  json_decref(details);
  char id[25];
  db_new_uid(id);
  /* Python's change_discussion_status deserializes newStatus as a discussion event. */
  json_t *ev =
      json_pack("{s:s, s:s, s:o, s:{s:s}, s:{s:s}}", "id", id, "type", "status-change", "createdAt",
                hub_iso_json(now), "author", "name", r->who.name, "data", "status", want);
  rc = http_reply_json(r, 200, json_pack("{s:o}", "newStatus", ev));
done:
  disc_dispose(&d);
  return rc;
}
