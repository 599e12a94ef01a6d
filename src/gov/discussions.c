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
  disc_row d;
  /* The number is taken by a plain discussion (opened at the same time): the caller
   * retries with the next one. */
  if (db_gov_discussion_get(repo->id, num, &d) == 0) {
    int is_pr = d.is_pr;
    disc_dispose(&d);
    if (!is_pr) return hub_error_set(HUB_EEXISTS, "Discussion #%d exists", num);
  }
  hub_error_clear();
  return db_gov_pr_opened(repo->id, num, title && *title ? title : "Upload files", who->user_id,
                          target_branch && *target_branch ? target_branch : "main", db_now_ms());
}

static int disc_load(int64_t repo_id, int num, disc_row *out) {
  return db_gov_discussion_get(repo_id, num, out);
}

/* The §7.2 list item. */
json_t *gov__disc_json(const db_repo *r, const disc_row *d) {
  char repo[HUB_MAX_NAME * 2 + 2];
  snprintf(repo, sizeof repo, "%s/%s", r->ns, r->name);
  return json_pack("{s:i, s:s, s:s, s:o, s:b, s:{s:s, s:s}, s:{s:s}}", "num", d->num, "title",
                   d->title, "status", d->status, "createdAt", hub_iso_json(d->created_ms),
                   "isPullRequest", d->is_pr, "repo", "name", repo, "type", http_type_name(r->type),
                   "author", "name", d->author);
}

/* ---- GET /discussions ------------------------------------------------------------------ */

typedef struct {
  hub_req *r;
  json_t *arr;
} list_ctx;

static int list_row(const disc_row *d, void *payload) {
  list_ctx *c = payload;
  json_array_append_new(c->arr, gov__disc_json(&c->r->repo, d));
  return 0;
}

int gov_disc_list(hub_req *r, const char *type, const char *status, const char *author, long page,
                  json_t **out) {
  json_t *arr = NULL;
  int64_t count = 0, closed = 0;
  int is_pr = -1, rc = 0;
  *out = NULL;
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
  if (page < 0 || page > 1000000) return hub_error_set(HUB_EINVALID, "bad page: p");

  if ((rc = db_gov_discussion_count(r->repo.id, is_pr, status, author, &count)) ||
      (rc = db_gov_discussion_count(r->repo.id, is_pr, "closed", author, &closed)))
    return rc;
  arr = json_array();
  list_ctx c = {r, arr};
  rc = db_gov_discussion_list(r->repo.id, is_pr, status, author, GOV_PAGE, (int64_t)page * GOV_PAGE,
                              list_row, &c);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  *out = json_pack("{s:o, s:I, s:I, s:I}", "discussions", arr, "count", (json_int_t)count, "start",
                   (json_int_t)page * GOV_PAGE, "numClosedDiscussions", (json_int_t)closed);
  return *out ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

int gov__h_discussions(hub_req *r) {
  const char *p = http_param(r, "p");
  long page = 0;
  json_t *out = NULL;
  if (p && *p) {
    char *end;
    page = strtol(p, &end, 10);
    if (*end || page < 0 || page > 1000000) return hub_error_set(HUB_EINVALID, "bad page: p");
  }
  int rc = gov_disc_list(r, http_param(r, "type"), http_param(r, "status"), http_param(r, "author"),
                         page, &out);
  return rc ? rc : http_reply_json(r, 200, out);
}

/* ---- GET /discussions/{num} ------------------------------------------------------------ */

int gov_disc_details(hub_req *r, int num, int with_diff, json_t **out) {
  disc_row d = {0};
  git_repository *g = NULL;
  char pr_ref[32], target_ref[HUB_MAX_PATH + 16];
  int rc;
  *out = NULL;
  if ((rc = disc_load(r->repo.id, num, &d))) return rc;
  /* A gated repo's files need an accepted access request: so does a diff of them. */
  if (with_diff && !auth_gate_allows(&r->who, &r->repo, r->repo_perm)) with_diff = 0;
  json_t *o = gov__disc_json(&r->repo, &d), *events = json_array();
  if (!o || !events) {
    json_decref(o);
    json_decref(events);
    disc_dispose(&d);
    return hub_error_set(HUB_ERROR, "cannot encode discussion #%d", num);
  }
  json_object_set_new(o, "events", events);
  if (gov__git_open(&r->repo, &g)) g = NULL;
  if ((rc = gov__thread(&r->repo, &d, g, events))) goto done;
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
    if (g) {
      git_oid head;
      char hex[41];
      if (git_reference_name_to_id(&head, g, pr_ref) == 0)
        json_object_set_new(pr, "headCommit", json_string(git_oid_tostr(hex, sizeof hex, &head)));
      /* Only an open PR can still conflict; a vanished target just lists nothing. */
      if (!strcmp(d.status, "open") || !strcmp(d.status, "draft"))
        gov__conflicts(g, target_ref, pr_ref, files);
      if (with_diff) {
        char *diff = NULL;
        if ((rc = gov__pr_diff(&r->repo, &d, g, &diff))) goto done;
        json_object_set_new(o, "diff", json_string(diff ? diff : ""));
        free(diff);
      }
    }
    json_object_set_new(o, "changes", changes);
    json_object_set_new(o, "filesWithConflicts", files);
    json_object_set_new(o, "pullRequest", pr);
  }
done:
  git_repository_free(g);
  disc_dispose(&d);
  if (rc) {
    json_decref(o);
    return rc;
  }
  hub_error_clear();
  *out = o;
  return 0;
}

int gov__h_discussion(hub_req *r) {
  json_t *out = NULL;
  int num, rc;
  if ((rc = gov__parse_num(r->cap[0], &num))) return rc;
  rc = gov_disc_details(r, num, http_param_bool(r, "diff", 0), &out);
  return rc ? rc : http_reply_json(r, 200, out);
}

/* ---- POST /discussions/{num}/merge --------------------------------------------------- */

typedef struct {
  hub_req *r;
  const disc_row *d;
  int num;
  const gov_merge_result *m;
  int changed;
  events_ctx ev;
} merge_rec;

/* The discussion marked merged, the target's commit before the merge kept (for the diff)
 * and the thread's "merged" status change: in the merge's transaction. */
static int merge_also(void *payload) {
  merge_rec *mr = payload;
  hub_req *r = mr->r;
  int64_t now = db_now_ms();
  int rc = db_gov_mark_merged(r->repo.id, mr->num, mr->m->new_sha, r->who.name, now, &mr->changed);
  if (!rc && !mr->changed)
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is already merged", mr->num);
  if (!rc) rc = db_disc_set_merge_prev(r->repo.id, mr->num, mr->m->old_sha);
  if (!rc) rc = gov__status_row(r->repo.id, mr->num, r->who.user_id, "merged", now);
  return rc;
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

int gov_disc_merge(hub_req *r, int num, const char *comment, json_t **out) {
  disc_row d = {0};
  git_repository *g = NULL;
  gov_merge_result m;
  char pr_ref[32], target_ref[HUB_MAX_PATH + 16], email[HUB_MAX_USER_NAME + 32];
  hub_buf msg = HUB_BUF_INIT;
  json_t *evd = NULL;
  int rc;
  *out = NULL;
  if (r->repo_perm < PERM_WRITE) return gov__deny(r, "Merging a pull request needs write access");
  if ((rc = disc_load(r->repo.id, num, &d))) return rc;
  if (!d.is_pr) {
    rc = hub_error_set(HUB_EINVALID, "Discussion #%d is not a pull request", num);
    goto done;
  }
  if (!strcmp(d.status, "merged")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is already merged", num);
    goto done;
  }
  if (strcmp(d.status, "open")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is %s; set its status to open before merging",
                       num, !strcmp(d.status, "draft") ? "a draft" : d.status);
    goto done;
  }
  snprintf(pr_ref, sizeof pr_ref, "refs/pr/%d", num);
  snprintf(target_ref, sizeof target_ref, "refs/heads/%s", d.target);
  snprintf(email, sizeof email, "%s@users.noreply.modelhub", r->who.name);
  hub_buf_printf(&msg, "Merge pull request #%d: %s\n", num, d.title);
  evd = json_pack("{s:i, s:s, s:s, s:b}", "num", num, "action", "update", "status", "merged",
                  "isPullRequest", 1);
  if (msg.failed || !evd) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  repo_handle *h;
  if ((rc = gov__repo_open(r, &h)) || (rc = gov__git_open(&r->repo, &g))) goto done;
  merge_rec mr = {
      r,
      &d,
      num,
      &m,
      0,
      {&r->repo, {&r->who, NULL, http_client_ip(r)}, "merge", "pr.merge", NULL, 0, NULL, NULL, evd}};
  repo_recorder rec = {merge_record, &mr};
  rc = gov__merge(g, h, &rec, target_ref, pr_ref, r->who.name, email, msg.ptr, &m);
  if (rc == HUB_EREVISION) {
    char why[256];
    snprintf(why, sizeof why, "%s", hub_error_msg());
    rc = hub_error_set(rc, "Cannot merge pull request #%d: %s", num, why);
  }
  if (rc) goto done;
  if (m.noop) { /* nothing moved: only the discussion's status, with its own event */
    json_t *audit = json_pack("{s:i, s:s, s:s, s:s, s:b}", "num", num, "target", d.target, "from",
                              m.old_sha, "to", m.new_sha, "fastForward", 0);
    rc = gov__record(r, "discussion", "pr.merge", audit, evd, merge_also, &mr);
    json_decref(audit);
    if (rc) goto done;
  } else if (!strcmp(d.target, "main")) {
    events_wait("index", mr.ev.last_event, HUB_DERIVE_WAIT_MS);
  }
  if (comment && *comment) {
    json_t *c = NULL;
    if ((rc = gov_disc_comment(r, num, comment, &c))) goto done;
    json_decref(c);
  }
  *out = json_pack("{s:i, s:s, s:s, s:s, s:b}", "num", num, "status", "merged", "mergeCommitId",
                   m.new_sha, "previousCommit", m.old_sha, "fastForward", m.fast_forward);
done:
  json_decref(evd);
  hub_buf_dispose(&msg);
  git_repository_free(g);
  disc_dispose(&d);
  return rc;
}

/* An optional {comment} body (huggingface_hub sends none without a comment). */
static int optional_comment(hub_req *r, const char **out) {
  *out = NULL;
  if (!r->body.len) return 0;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  json_t *c = json_object_get(b, "comment");
  if (c && !json_is_string(c) && !json_is_null(c))
    return hub_error_set(HUB_EINVALID, "comment must be a string");
  *out = json_string_value(c);
  return 0;
}

int gov__h_merge(hub_req *r) {
  const char *comment;
  json_t *out = NULL;
  int num, rc;
  if ((rc = gov__parse_num(r->cap[0], &num)) || (rc = optional_comment(r, &comment))) return rc;
  rc = gov_disc_merge(r, num, comment, &out);
  return rc ? rc : http_reply_json(r, 200, out);
}

/* ---- POST /discussions/{num}/status -------------------------------------------------- */

typedef struct {
  hub_req *r;
  int num;
  const char *status;
  int64_t now;
} status_ctx;

static int status_change(void *payload) {
  status_ctx *c = payload;
  int rc = db_gov_set_status(c->r->repo.id, c->num, c->status, c->now);
  if (!rc) rc = gov__status_row(c->r->repo.id, c->num, c->r->who.user_id, c->status, c->now);
  return rc;
}

int gov_disc_set_status(hub_req *r, int num, const char *want, const char *comment, json_t **out) {
  disc_row d = {0};
  int rc;
  *out = NULL;
  if (!want || (strcmp(want, "open") && strcmp(want, "closed")))
    return hub_error_set(HUB_EINVALID, "status must be \"open\" or \"closed\"");
  if ((rc = gov__may_post(r)) || (rc = disc_load(r->repo.id, num, &d))) return rc;
  int is_author = r->who.user_id == d.author_id;
  if (!(r->repo_perm >= PERM_WRITE || is_author)) {
    rc = gov__deny(r, "Only its author or writers can change the status of a discussion");
    goto done;
  }
  if (!strcmp(d.status, "merged")) {
    rc = hub_error_set(HUB_EEXISTS, "Pull request #%d is merged; its status cannot change", num);
    goto done;
  }
  status_ctx c = {r, num, want, db_now_ms()};
  json_t *audit = json_pack("{s:i, s:s, s:s}", "num", num, "from", d.status, "to", want);
  json_t *evd = json_pack("{s:i, s:s, s:s, s:b}", "num", num, "action", "update", "status", want,
                          "isPullRequest", d.is_pr);
  rc = gov__record(r, "discussion", "discussion.status", audit, evd, status_change, &c);
  json_decref(audit);
  json_decref(evd);
  if (rc) goto done;
  json_t *ev = NULL;
  /* The status change is the newest stored status-change of the thread. */
  json_t *arr = json_array();
  if (!(rc = gov__thread(&r->repo, &d, NULL, arr))) {
    size_t i = json_array_size(arr);
    while (i-- > 0) {
      json_t *e = json_array_get(arr, i);
      if (!strcmp(json_string_value(json_object_get(e, "type")), "status-change")) {
        ev = json_incref(e);
        break;
      }
    }
  }
  json_decref(arr);
  if (rc) goto done;
  if (comment && *comment) {
    json_t *cm = NULL;
    if ((rc = gov_disc_comment(r, num, comment, &cm))) {
      json_decref(ev);
      goto done;
    }
    json_decref(cm);
  }
  /* Python's change_discussion_status deserializes newStatus as a discussion event. */
  *out = json_pack("{s:o}", "newStatus", ev ? ev : json_object());
done:
  disc_dispose(&d);
  return rc;
}

int gov__h_status(hub_req *r) {
  json_t *out = NULL;
  int num, rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  json_t *c = json_object_get(b, "comment");
  if (c && !json_is_string(c) && !json_is_null(c))
    return hub_error_set(HUB_EINVALID, "comment must be a string");
  if ((rc = gov__parse_num(r->cap[0], &num))) return rc;
  rc = gov_disc_set_status(r, num, json_string_value(json_object_get(b, "status")),
                           json_string_value(c), &out);
  return rc ? rc : http_reply_json(r, 200, out);
}
