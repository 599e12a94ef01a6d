/* Named stages ("staging", "production", ...): refs/stages/<name>, moved by compare-and-swap
 * by approvers only, each move recorded in gov_stage_history. Revision resolution tries
 * refs/stages/<name> after branches and tags, so a stage works wherever a revision does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov/internal.h"
#include "repo/repo.h"
#include "events/events.h"
#include "util/error.h"
#include "util/time.h"

static int stage_name(hub_req *r, const char **out) {
  const char *n = r->ncap ? r->cap[0] : "";
  size_t len = strlen(n);
  if (!len || len > GOV_MAX_STAGE || strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
    return hub_error_set(HUB_EINVALID, "Stage names are 1-%d characters of [a-z0-9_-]",
                         GOV_MAX_STAGE);
  /* A name would shadow the commit id it spells (names win over ids in resolution). */
  if (len == 40 && strspn(n, "0123456789abcdef") == len)
    return hub_error_set(HUB_EINVALID, "A stage cannot be named like a commit id");
  *out = n;
  return 0;
}

/* Current commit of refs/stages/<name> into out: 0 found, 1 missing, <0 error. */
static int stage_get(git_repository *g, const char *name, git_oid *out) {
  char ref[GOV_MAX_STAGE + 16];
  snprintf(ref, sizeof ref, "refs/stages/%s", name);
  int err = git_reference_name_to_id(out, g, ref);
  if (err == GIT_ENOTFOUND) return 1;
  if (err < 0) return gov__git_error("read stage");
  return 0;
}

/* History rows of a stage, newest first, as JSON (limit rows); *out_latest (may be NULL)
 * gets the newest row (borrowed from the array) or NULL. */
static void history_row(const char *c, const char *p, const char *actor, const char *reason,
                        int64_t ts_ms, void *payload) {
  json_array_append_new((json_t *)payload,
                        json_pack("{s:o, s:o, s:s, s:s, s:o}", "commit",
                                  *c ? json_string(c) : json_null(), "previousCommit",
                                  *p ? json_string(p) : json_null(), "actor", actor, "reason",
                                  reason, "date", hub_iso_json(ts_ms)));
}

static json_t *history(int64_t repo_id, const char *name, int limit, json_t **out_latest) {
  json_t *arr = json_array();
  if (out_latest) *out_latest = NULL;
  if (!arr) {
    hub_error_set(HUB_ERROR, "stage history: out of memory");
    return NULL;
  }
  if (db_gov_stage_history(repo_id, name, limit, history_row, arr)) {
    json_decref(arr);
    return NULL;
  }
  if (out_latest) *out_latest = json_array_get(arr, 0);
  return arr;
}

/* {name, commit, updatedAt, updatedBy, reason}; commit null when the stage was deleted. */
static json_t *stage_json(int64_t repo_id, const char *name, const git_oid *id, int limit,
                          json_t **out_history) {
  json_t *latest, *h = history(repo_id, name, limit, &latest);
  char hex[41] = "";
  if (!h) return NULL;
  if (id) git_oid_tostr(hex, sizeof hex, id);
  json_t *o = json_pack("{s:s, s:o, s:O, s:O, s:O}", "name", name, "commit",
                        id ? json_string(hex) : json_null(), "updatedAt",
                        latest ? json_object_get(latest, "date") : json_null(), "updatedBy",
                        latest ? json_object_get(latest, "actor") : json_null(), "reason",
                        latest ? json_object_get(latest, "reason") : json_null());
  if (out_history)
    *out_history = h;
  else
    json_decref(h);
  return o;
}

int gov__h_stages(hub_req *r) {
  git_repository *g = NULL;
  git_reference_iterator *it = NULL;
  git_reference *ref;
  json_t *arr = json_array();
  int rc;
  if ((rc = gov__git_open(&r->repo, &g))) goto done;
  if (git_reference_iterator_glob_new(&it, g, "refs/stages/*") < 0) {
    rc = gov__git_error("list stages");
    goto done;
  }
  while (git_reference_next(&ref, it) == 0) {
    git_object *obj = NULL;
    const char *name = git_reference_name(ref) + 12;
    if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
      json_t *o = stage_json(r->repo.id, name, git_object_id(obj), 1, NULL);
      if (o) json_array_append_new(arr, o);
    }
    git_object_free(obj);
    git_reference_free(ref);
  }
  rc = http_reply_json(r, 200, json_pack("{s:O}", "stages", arr));
done:
  git_reference_iterator_free(it);
  git_repository_free(g);
  json_decref(arr);
  return rc;
}

int gov__h_stage(hub_req *r) {
  git_repository *g = NULL;
  const char *name;
  json_t *hist = NULL;
  git_oid id;
  int rc, found;
  if ((rc = stage_name(r, &name)) || (rc = gov__git_open(&r->repo, &g))) goto done;
  if ((found = stage_get(g, name, &id)) < 0) {
    rc = found;
    goto done;
  }
  json_t *o = stage_json(r->repo.id, name, found == 0 ? &id : NULL, GOV_MAX_HISTORY, &hist);
  if (!o) {
    rc = hub_error_code();
    goto done;
  }
  if (found == 1 && !json_array_size(hist)) {
    json_decref(o);
    rc = hub_error_set(HUB_ENOTFOUND, "Stage '%s' not found", name);
    goto done;
  }
  json_object_set(o, "history", hist);
  rc = http_reply_json(r, 200, o);
done:
  json_decref(hist);
  git_repository_free(g);
  return rc;
}

static int may_move(hub_req *r) {
  int need = gov__stage_approver(r->repo.id);
  if (r->repo_perm >= need) return 0;
  return gov__deny(r, need == PERM_ADMIN ? "Moving a stage requires admin rights"
                                         : "Moving a stage requires write rights");
}

static int record(hub_req *r, const char *name, const char *to, const char *from,
                  const char *reason) {
  return db_gov_stage_record(r->repo.id, name, to, from, r->who.name, reason, db_now_ms());
}

typedef struct {
  hub_req *r;
  const char *name, *to, *from, *reason;
  events_ctx ev;
} stage_rec;

static int stage_also(void *payload) {
  stage_rec *sr = payload;
  return record(sr->r, sr->name, sr->to, sr->from, sr->reason);
}

/* A stage move through the ref transaction: the move, its event, the "stage.move" audit
 * entry and the history row, or none of them. */
static int stage_move(hub_req *r, repo_handle *h, const char *name, const char *refname,
                      const char *from, const char *to, const char *reason) {
  json_t *d = json_pack("{s:s, s:o, s:o, s:s}", "stage", name, "from",
                        *from ? json_string(from) : json_null(), "to",
                        *to ? json_string(to) : json_null(), "reason", reason);
  stage_rec sr = {r,
                  name,
                  to,
                  from,
                  reason,
                  {&r->repo,
                   {&r->who, NULL, http_client_ip(r)},
                   "stage",
                   "stage.move",
                   d,
                   0,
                   stage_also,
                   NULL,
                   NULL}};
  sr.ev.also_payload = &sr;
  repo_recorder rec = events_recorder(&sr.ev);
  repo_txn *t = NULL;
  int rc = repo_txn_begin(&t, h);
  if (!rc) rc = repo_txn_update(t, refname, from, to);
  if (!rc) rc = repo_txn_commit(t, &rec, NULL, NULL);
  repo_txn_free(t);
  json_decref(d);
  return rc;
}

/* Optional JSON body fields: NULL body (empty) is fine. */
static json_t *opt_body(hub_req *r) {
  return r->body.len ? http_body_json(r) : NULL;
}

static int reason_of(json_t *b, const char **out) {
  json_t *v = json_object_get(b, "reason");
  *out = "";
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return hub_error_set(HUB_EINVALID, "reason must be a string");
  if (json_string_length(v) > GOV_MAX_REASON)
    return hub_error_set(HUB_EINVALID, "reason is longer than %d bytes", GOV_MAX_REASON);
  *out = json_string_value(v);
  return 0;
}

int gov__h_stage_put(hub_req *r) {
  git_repository *g = NULL;
  repo_handle *h;
  const char *name, *reason, *rev, *expect;
  char refname[GOV_MAX_STAGE + 16], sha[41], from[41] = "";
  git_oid to, cur;
  int rc, found = 1, attempt = 0;
  json_t *b;

  if ((rc = stage_name(r, &name)) || (rc = may_move(r))) return rc;
  if (!(b = http_body_json(r))) return HUB_EINVALID;
  if ((rc = reason_of(b, &reason))) return rc;
  rev = json_string_value(json_object_get(b, "revision"));
  expect = json_string_value(json_object_get(b, "expectedCommit"));
  if (!rev || !*rev) return hub_error_set(HUB_EINVALID, "Missing field: revision");
  if ((rc = gov__repo_open(r, &h)) || (rc = repo_resolve(h, rev, sha, NULL))) return rc;
  if (git_oid_fromstr(&to, sha) < 0) return hub_error_set(HUB_ERROR, "bad commit id");
  if ((rc = gov__git_open(&r->repo, &g))) return rc;
  snprintf(refname, sizeof refname, "refs/stages/%s", name);
  for (;;) {
    if (attempt == GOV_MAX_RETRIES) {
      rc = hub_error_set(HUB_ERETRY, "Stage '%s' kept moving; try again", name);
      goto done;
    }
    if ((found = stage_get(g, name, &cur)) < 0) {
      rc = found;
      goto done;
    }
    from[0] = 0;
    if (found == 0) git_oid_tostr(from, sizeof from, &cur);
    if (expect && strcmp(expect, from)) {
      rc = hub_error_set(HUB_ECONFLICT, "Stage '%s' is at %s, not %s", name,
                         *from ? from : "(unset)", expect);
      goto done;
    }
    if (found == 0 && git_oid_equal(&cur, &to)) break; /* already there */
    rc = stage_move(r, h, name, refname, from, sha, reason);
    if (rc == HUB_ECONFLICT || rc == HUB_EEXISTS) { /* lost a race: re-read */
      attempt++;
      continue;
    }
    if (rc) goto done;
    break;
  }
  json_t *o = stage_json(r->repo.id, name, &to, 1, NULL);
  if (!o) {
    rc = hub_error_code();
    goto done;
  }
  json_object_set_new(o, "previousCommit", *from ? json_string(from) : json_null());
  rc = http_reply_json(r, 200, o);
done:
  git_repository_free(g);
  return rc;
}

int gov__h_stage_delete(hub_req *r) {
  git_repository *g = NULL;
  git_reference *ref = NULL;
  const char *name, *reason = "";
  char refname[GOV_MAX_STAGE + 16], from[41] = "";
  json_t *b = NULL;
  int rc, err;

  if ((rc = stage_name(r, &name)) || (rc = may_move(r))) return rc;
  if (r->body.len && !(b = opt_body(r))) return HUB_EINVALID;
  if ((rc = reason_of(b, &reason)) || (rc = gov__git_open(&r->repo, &g))) goto done;
  snprintf(refname, sizeof refname, "refs/stages/%s", name);
  if ((err = git_reference_lookup(&ref, g, refname)) == GIT_ENOTFOUND) {
    rc = hub_error_set(HUB_ENOTFOUND, "Stage '%s' not found", name);
    goto done;
  }
  if (err < 0 || !git_reference_target(ref)) {
    rc = gov__git_error("read stage");
    goto done;
  }
  git_oid_tostr(from, sizeof from, git_reference_target(ref));
  repo_handle *h;
  if ((rc = gov__repo_open(r, &h))) goto done;
  rc = stage_move(r, h, name, refname, from, "", reason);
  if (rc == HUB_ECONFLICT || rc == HUB_EREVISION)
    rc = hub_error_set(HUB_ERETRY, "Stage '%s' is moving; try again", name);
  if (rc) goto done;
  rc = http_reply_json(r, 200, json_object());
done:
  git_reference_free(ref);
  git_repository_free(g);
  return rc;
}
