/* The recorder of the ref transaction: event + audit + derived head in one durable DB
 * transaction (events.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/search.h"

#include "events/events.h"
#include "util/error.h"

static const char *type_name(int type) {
  return type == HUB_REPO_DATASET ? "dataset" : type == HUB_REPO_SPACE ? "space" : "model";
}

int events_init(void) {
  return db_events_init();
}

static int fill_event(db_event *e, const events_ctx *c) {
  const hub_identity *w = c->audit.who;
  memset(e, 0, sizeof *e);
  if (c->event_details) {
    char *js = json_dumps(c->event_details, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n = js ? strlen(js) : 0;
    if (!js || n >= sizeof e->details) {
      free(js);
      return hub_error_set(HUB_ERROR, "event details too large (%zu bytes)", n);
    }
    memcpy(e->details, js, n + 1);
    free(js);
  }
  e->repo_id = c->repo->id;
  snprintf(e->repo_uid, sizeof e->repo_uid, "%s", c->repo->uid);
  snprintf(e->kind, sizeof e->kind, "%s", c->kind ? c->kind : "");
  snprintf(e->actor, sizeof e->actor, "%s",
           c->audit.actor_name     ? c->audit.actor_name
           : w && w->authenticated ? w->name
                                   : "-");
  snprintf(e->token, sizeof e->token, "%s", w && w->token_uid[0] ? w->token_uid : "-");
  return 0;
}

static int audit_one(const events_ctx *c, const char *ref, const char *old, const char *new_) {
  char target[2 * HUB_MAX_NAME + 16];
  json_t *d = c->details ? json_deep_copy(c->details) : json_object();
  if (!d) return hub_error_set(HUB_ERROR, "out of memory");
  snprintf(target, sizeof target, "%s:%s/%s", type_name(c->repo->type), c->repo->ns, c->repo->name);
  if (ref) {
    json_object_set_new(d, "ref", json_string(ref));
    json_object_set_new(d, "old", json_string(old));
    json_object_set_new(d, "new", json_string(new_));
  }
  return audit_log(&c->audit, c->action, c->repo->ns, target, d);
}

/* The derived head of the default branch, from git (in the caller's transaction). */
static int set_head(repo_handle *h, const events_ctx *c, const char *sha) {
  int64_t when = db_now_ms();
  repo_commit_info ci;
  if (*sha && repo_commit_info_get(h, sha, &ci) == 0) {
    when = ci.date * 1000;
    repo_commit_info_dispose(&ci);
  }
  return db_repo_set_head(c->repo->id, sha, when);
}

int events_record(repo_handle *h, const repo_ref_update *u, size_t n, void *payload) {
  events_ctx *c = payload;
  int rc;
  if ((rc = db_txn_begin_durable())) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    db_event e;
    char cur[41];
    /* Compare-and-insert on event_refs, inside the transaction: a move already recorded
     * (a push's hook after the server's post-push check took it for a move outside) gets
     * no second event; a "recovered" record stands only while the record it compared
     * with is still the last one (another push's hook may have recorded meanwhile). */
    db_event_ref_get(c->repo->id, u[i].ref, cur);
    if (!strcmp(cur, u[i].new_)) continue;
    if (!strcmp(c->kind, "recovered") && strcmp(cur, u[i].old)) continue;
    /* Two pushes' hooks may record out of order (git moved the ref twice before the first
     * hook ran): the earlier move gets its event, the record keeps the later value. */
    int later = strcmp(cur, u[i].old) && *u[i].new_ &&
                db_event_moved_from(c->repo->id, u[i].ref, u[i].new_);
    if ((rc = fill_event(&e, c))) break;
    snprintf(e.ref, sizeof e.ref, "%s", u[i].ref);
    snprintf(e.old, sizeof e.old, "%s", u[i].old);
    snprintf(e.new_, sizeof e.new_, "%s", u[i].new_);
    if (!(rc = db_event_append(&e))) c->last_event = e.id;
    if (!rc && later) rc = db_event_ref_put(c->repo->id, u[i].ref, cur);
    if (!rc) rc = audit_one(c, u[i].ref, u[i].old, u[i].new_);
    /* The head follows the later move, already recorded. */
    if (!rc && !later && !strcmp(u[i].ref, "refs/heads/main")) rc = set_head(h, c, u[i].new_);
  }
  if (!rc && c->also) rc = c->also(c->also_payload);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    db_txn_rollback();
    return hub_error_set(rc, "the change was not recorded, so it was not made: %s", msg);
  }
  if ((rc = db_txn_commit_durable())) return rc;
  events_notify();
  return 0;
}

repo_recorder events_recorder(events_ctx *c) {
  repo_recorder r = {events_record, c};
  return r;
}

int events_record_repo(events_ctx *c, int (*change)(void *payload), void *payload) {
  db_event e;
  int rc;
  if ((rc = db_txn_begin_durable())) return rc;
  rc = fill_event(&e, c);
  if (!rc && change) rc = change(payload);
  if (!rc && !(rc = db_event_append(&e))) c->last_event = e.id;
  if (!rc) rc = audit_one(c, NULL, NULL, NULL);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    db_txn_rollback();
    return hub_error_set(rc, "%s", msg);
  }
  if ((rc = db_txn_commit_durable())) return rc;
  events_notify();
  return 0;
}

/* ---- reconciliation ------------------------------------------------------------------ */

typedef struct {
  repo_ref_update *u;
  char (*names)[256];
  size_t n, cap;
  int64_t repo_id;
  int baseline;
} diff;

static int add_update(diff *d, const char *ref, const char *old, const char *new_) {
  if (d->n == d->cap) {
    if (d->cap >= REPO_TXN_MAX_UPDATES * 16) return 0; /* the rest at the next start */
    size_t cap = d->cap ? d->cap * 2 : 16;
    repo_ref_update *u = realloc(d->u, cap * sizeof *u);
    if (!u) return hub_error_set(HUB_ERROR, "out of memory");
    d->u = u;
    char(*nm)[256] = realloc(d->names, cap * sizeof *nm);
    if (!nm) return hub_error_set(HUB_ERROR, "out of memory");
    d->names = nm;
    d->cap = cap;
  }
  snprintf(d->names[d->n], 256, "%s", ref);
  snprintf(d->u[d->n].old, 41, "%s", old);
  snprintf(d->u[d->n].new_, 41, "%s", new_);
  d->n++;
  return 0;
}

static int git_side(const char *ref, const char *id, void *payload) {
  diff *d = payload;
  char have[41];
  if (strlen(ref) >= 256) return 0;
  db_event_ref_get(d->repo_id, ref, have);
  if (!strcmp(have, id)) return 0;
  return add_update(d, ref, have, id);
}

typedef struct {
  const char *ref;
  int found;
  char id[41];
} find_ctx;

static int find_ref(const char *ref, const char *id, void *payload) {
  find_ctx *f = payload;
  if (strcmp(ref, f->ref)) return 0;
  f->found = 1;
  snprintf(f->id, sizeof f->id, "%s", id);
  return 1; /* stop */
}

typedef struct {
  repo_handle *h;
  diff *d;
} deleted_ctx;

static int check_deleted(const char *ref, const char *sha, void *payload) {
  deleted_ctx *x = payload;
  find_ctx f = {ref, 0, ""};
  repo_refs_each_raw(x->h, find_ref, &f);
  if (f.found) return 0;
  return add_update(x->d, ref, sha, "");
}

/* One ref, under its turn: compare git with the record again and record the difference. */
typedef struct {
  repo_handle *h;
  const db_repo *repo;
  const char *ref;
  const char *expect; /* only when git has this value (a push's new tip; "" = deleted) */
  int written;
} one_ref;

static int reconcile_ref(void *payload) {
  one_ref *o = payload;
  find_ctx f = {o->ref, 0, ""};
  repo_ref_update u;
  int rc;
  repo_refs_each_raw(o->h, find_ref, &f);
  u.ref = o->ref;
  db_event_ref_get(o->repo->id, o->ref, u.old);
  snprintf(u.new_, sizeof u.new_, "%s", f.id);
  if (!strcmp(u.old, u.new_)) return 0; /* recorded meanwhile */
  /* Moved on by another push: that push's hook (or its own check) records it. */
  if (o->expect && strcmp(o->expect, u.new_)) return 0;
  fprintf(stderr, "modelhub: %s/%s: %s moved outside the server (%s -> %s); recording it\n",
          o->repo->ns, o->repo->name, o->ref, *u.old ? u.old : "none",
          *u.new_ ? u.new_ : "deleted");
  json_t *why = json_pack("{s:s}", "reason", "moved while the server did not see it");
  events_ctx c = {
      o->repo, {NULL, "modelhub", NULL}, "recovered", "repo.ref.recovered", why, 0, NULL, NULL,
      NULL};
  rc = events_record(o->h, &u, 1, &c);
  json_decref(why);
  if (!rc) o->written++;
  return rc;
}

/* 0 = not wanted; else 1 + its index in refs (1 when refs is NULL). */
static int wanted(const char *ref, const char *const *refs, size_t n) {
  if (!refs) return 1;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(refs[i], ref)) return (int)i + 1;
  return 0;
}

static int reconcile(const db_repo *repo, const char *const *refs, const char *const *expect,
                     size_t nrefs) {
  char dir[4200];
  repo_handle *h = NULL;
  diff d = {0};
  int rc, written = 0;
  db_repo_dir(repo->uid, dir, sizeof dir);
  if ((rc = repo_open(&h, dir))) return rc == HUB_EREPO ? 0 : rc;
  d.repo_id = repo->id;
  d.baseline = !db_event_refs_any(repo->id);
  rc = repo_refs_each_raw(h, git_side, &d);
  if (!rc && !d.baseline) {
    deleted_ctx x = {h, &d};
    rc = db_event_refs_each(repo->id, check_deleted, &x);
  }
  for (size_t i = 0; i < d.n; i++)
    d.u[i].ref = d.names[i];
  if (!rc && d.n && d.baseline) {
    /* Data from before the spine: record what is there, no events — except that a main
     * the derived head does not know yet is recorded as moved. */
    if (!(rc = db_txn_begin_durable())) {
      for (size_t i = 0; i < d.n && !rc; i++)
        rc = db_event_ref_set(repo->id, d.u[i].ref, d.u[i].new_);
      for (size_t i = 0; i < d.n && !rc; i++)
        if (!strcmp(d.u[i].ref, "refs/heads/main") && strcmp(repo->head_sha, d.u[i].new_)) {
          events_ctx c = {repo,        {NULL, "modelhub", NULL},
                          "recovered", "repo.ref.recovered",
                          NULL,        0,
                          NULL,        NULL,
                          NULL};
          db_event e;
          (void)fill_event(&e, &c);
          snprintf(e.ref, sizeof e.ref, "%s", d.u[i].ref);
          snprintf(e.old, sizeof e.old, "%s", repo->head_sha);
          snprintf(e.new_, sizeof e.new_, "%s", d.u[i].new_);
          if (!(rc = db_event_append(&e))) rc = audit_one(&c, e.ref, e.old, e.new_);
          if (!rc) rc = set_head(h, &c, e.new_);
          written++;
        }
      if (rc)
        db_txn_rollback();
      else
        rc = db_txn_commit_durable();
    }
  } else if (!rc) {
    for (size_t i = 0; i < d.n && !rc; i++) {
      one_ref o = {h, repo, d.u[i].ref, NULL, 0};
      int k = wanted(o.ref, refs, nrefs);
      if (!k) continue;
      if (expect) o.expect = expect[k - 1];
      rc = repo_ref_with_turn(h, o.ref, reconcile_ref, &o);
      written += o.written;
    }
  }
  free(d.u);
  free(d.names);
  repo_free(h);
  return rc ? rc : written;
}

int events_reconcile_repo(const db_repo *repo, const char *const *refs, size_t n) {
  return reconcile(repo, refs, NULL, n);
}

int events_reconcile_push(const db_repo *repo, const char *const *refs, const char *const *news,
                          size_t n) {
  return reconcile(repo, refs, news, n);
}

typedef struct {
  db_repo *list;
  size_t n, cap;
} repos_seen;

static int collect(const db_repo *repo, void *payload) {
  repos_seen *l = payload;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    db_repo *m = realloc(l->list, cap * sizeof *m);
    if (!m) return hub_error_set(HUB_ERROR, "out of memory");
    l->list = m;
    l->cap = cap;
  }
  l->list[l->n++] = *repo;
  return 0;
}

int events_reconcile_all(void) {
  repos_seen l = {0};
  int total = 0;
  /* Collected first: the DB is written only after the listing is done. */
  int rc = db_repo_each(collect, &l);
  for (size_t i = 0; !rc && i < l.n; i++) {
    int k = events_reconcile_repo(&l.list[i], NULL, 0);
    if (k < 0)
      fprintf(stderr, "modelhub: reconcile %s/%s: %s\n", l.list[i].ns, l.list[i].name,
              hub_error_msg());
    else
      total += k;
  }
  free(l.list);
  return rc ? rc : total;
}
