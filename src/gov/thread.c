/* Discussion threads: opening discussions and pull requests, comments (edit, hide),
 * renames, the ordered event list of GET /discussions/{num}, a PR's diff, and the webhook
 * shapes. Every change is one durable transaction with its spine event (kind "discussion"
 * or "comment", details {num, action, ...}) and audit entry (docs/governance.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "gov/internal.h"
#include "util/error.h"
#include "util/time.h"

static const char *g_public_url;
static gov_markdown_fn g_markdown;

void gov_set_public_url(const char *url) {
  g_public_url = url;
}

void gov_set_markdown(gov_markdown_fn fn) {
  g_markdown = fn;
}

int gov_next_num(const db_repo *repo, int *out) {
  return db_disc_next_num(repo->id, out);
}

int gov__may_post(hub_req *r) {
  if (!r->who.authenticated)
    return hub_error_set(HUB_EAUTH, "You must be signed in to take part in discussions");
  if (r->who.token_role == PERM_READ)
    return hub_error_set(HUB_EFORBIDDEN,
                         "Your token is read-only: posting to discussions needs a write token");
  return 0;
}

int gov__record(hub_req *r, const char *kind, const char *action, json_t *audit_details,
                json_t *event_details, int (*change)(void *payload), void *payload) {
  events_ctx ev = {
      &r->repo,     {&r->who, NULL, http_client_ip(r)}, kind, action, audit_details, 0, NULL, NULL,
      event_details};
  return events_record_repo(&ev, change, payload);
}

int gov__status_row(int64_t repo_id, int num, int64_t author_id, const char *status, int64_t now) {
  char uid[25], data[64];
  db_new_uid(uid);
  snprintf(data, sizeof data, "{\"status\":\"%s\"}", status);
  return db_disc_event_add(repo_id, num, uid, "status-change", author_id, NULL, data, now);
}

/* ---- JSON shapes ----------------------------------------------------------------------- */

static json_t *who_json(const char *name) {
  return json_pack("{s:s, s:s}", "name", name, "type", "user");
}

static void esc_html(hub_buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<':
      hub_buf_puts(b, "&lt;");
      break;
    case '>':
      hub_buf_puts(b, "&gt;");
      break;
    case '&':
      hub_buf_puts(b, "&amp;");
      break;
    case '"':
      hub_buf_puts(b, "&quot;");
      break;
    case '\'':
      hub_buf_puts(b, "&#39;");
      break;
    default:
      hub_buf_putc(b, *s);
    }
  }
}

static json_t *render(const char *md) {
  hub_buf b = HUB_BUF_INIT;
  int ok = g_markdown && g_markdown(&b, md, strlen(md)) == 0;
  if (!ok) {
    hub_buf_clear(&b);
    hub_buf_puts(&b, "<p>");
    esc_html(&b, md);
    hub_buf_puts(&b, "</p>\n");
  }
  json_t *s = json_string(b.failed || !b.ptr ? "" : b.ptr);
  hub_buf_dispose(&b);
  hub_error_clear();
  return s;
}

/* One stored event in the Hub's shape (community.py deserialize_event). */
static json_t *event_json(const db_disc_event *e) {
  json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "id", e->uid, "type", e->type, "createdAt",
                        hub_iso_json(e->created_ms), "author", who_json(e->author));
  json_t *data = json_loads(e->data, 0, NULL);
  if (strcmp(e->type, "comment")) {
    json_object_set_new(o, "data", data ? data : json_object());
    return o;
  }
  json_t *history = json_is_array(data) ? data : json_array();
  if (data && history != data) json_decref(data);
  json_t *editors = json_array();
  size_t i;
  json_t *h;
  json_array_foreach(history, i, h) {
    const char *n = json_string_value(json_object_get(json_object_get(h, "author"), "name"));
    int seen = 0;
    size_t j;
    json_t *x;
    json_array_foreach(editors, j, x) seen |= n && !strcmp(json_string_value(x), n);
    if (n && !seen) json_array_append_new(editors, json_string(n));
  }
  const char *by = e->editor[0] ? e->editor : e->author;
  json_t *latest =
      json_pack("{s:s, s:o, s:o, s:o}", "raw", e->hidden ? "" : e->raw, "html",
                e->hidden ? json_string("This comment has been hidden") : render(e->raw),
                "updatedAt", hub_iso_json(e->updated_ms), "author", who_json(by));
  json_t *d =
      json_pack("{s:b, s:b, s:o, s:i, s:o, s:o}", "edited", e->edits > 0, "hidden", e->hidden,
                "latest", latest, "numEdits", e->edits, "editors", editors, "history", history);
  if (e->hidden && e->hidden_by[0]) json_object_set_new(d, "hiddenBy", json_string(e->hidden_by));
  json_object_set_new(o, "data", d);
  return o;
}

static json_t *history_entry(const char *raw, int64_t now, const char *who) {
  json_t *iso = hub_iso_json(now);
  return json_pack("{s:s, s:o, s:o}", "raw", raw, "updatedAt", iso, "author", who_json(who));
}

/* ---- the thread ---------------------------------------------------------------------- */

typedef struct {
  int64_t seq;
  int order; /* stored events before commits of the same seq */
  json_t *ev;
} item;

typedef struct {
  item *v;
  size_t n, cap;
  git_repository *g;
  int failed;
} thread;

static void add(thread *t, int64_t seq, int order, json_t *ev) {
  if (!ev) {
    t->failed = 1;
    return;
  }
  if (t->n >= GOV_MAX_THREAD) {
    json_decref(ev);
    return;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 32;
    item *v = realloc(t->v, cap * sizeof *v);
    if (!v) {
      json_decref(ev);
      t->failed = 1;
      return;
    }
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = (item){seq, order, ev};
}

static int stored_row(const db_disc_event *e, void *payload) {
  add(payload, e->seq, 0, event_json(e));
  return 0;
}

static void commit_event(thread *t, const git_oid *id, const db_disc_ref_move *m) {
  git_commit *c = NULL;
  char hex[41], uid[25];
  if (git_commit_lookup(&c, t->g, id) < 0) return;
  git_oid_tostr(hex, sizeof hex, id);
  snprintf(uid, sizeof uid, "%.24s", hex);
  const char *summary = git_commit_summary(c);
  add(t, m->id, 1,
      json_pack("{s:s, s:s, s:o, s:o, s:{s:s, s:s}}", "id", uid, "type", "commit", "createdAt",
                hub_iso_json(m->ts_ms), "author", who_json(m->actor), "data", "subject",
                summary ? summary : "", "oid", hex));
  git_commit_free(c);
}

/* The commits one move of refs/pr/N brought: new ^old (a PR opened by the commit API: its
 * one commit; opened by the discussions API: none, the ref starts at the target). */
static int ref_move(const db_disc_ref_move *m, void *payload) {
  thread *t = payload;
  git_oid nid, oid;
  git_revwalk *w = NULL;
  if (!strcmp(m->kind, "discussion") || !m->new_[0] || git_oid_fromstr(&nid, m->new_) < 0) return 0;
  if (!m->old[0]) {
    commit_event(t, &nid, m);
    return 0;
  }
  if (git_revwalk_new(&w, t->g) < 0) return 0;
  git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  git_oid ids[GOV_MAX_PR_COMMITS];
  size_t n = 0;
  if (git_revwalk_push(w, &nid) == 0 && git_oid_fromstr(&oid, m->old) == 0) {
    git_revwalk_hide(w, &oid); /* a vanished old commit: list nothing rather than all */
    while (n < GOV_MAX_PR_COMMITS && git_revwalk_next(&oid, w) == 0)
      git_oid_cpy(&ids[n++], &oid);
  }
  git_revwalk_free(w);
  while (n--) /* oldest first */
    commit_event(t, &ids[n], m);
  return 0;
}

static int item_cmp(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
  if (x->order != y->order) return x->order - y->order;
  return 0;
}

int gov__thread(const db_repo *repo, const gov_disc *d, git_repository *g, json_t *arr) {
  thread t = {NULL, 0, 0, g, 0};
  int rc = db_disc_events_each(repo->id, d->num, stored_row, &t);
  if (!rc && d->is_pr && g) {
    char ref[32];
    snprintf(ref, sizeof ref, "refs/pr/%d", d->num);
    rc = db_disc_ref_moves(repo->id, ref, GOV_MAX_THREAD, ref_move, &t);
  }
  /* Stable by (seq, order): insertion order breaks the remaining ties. */
  for (size_t i = 1; i < t.n; i++)
    for (size_t j = i; j > 0 && item_cmp(&t.v[j - 1], &t.v[j]) > 0; j--) {
      item x = t.v[j];
      t.v[j] = t.v[j - 1];
      t.v[j - 1] = x;
    }
  for (size_t i = 0; i < t.n; i++)
    json_array_append_new(arr, t.v[i].ev);
  free(t.v);
  if (!rc && t.failed) rc = hub_error_set(HUB_ERROR, "out of memory");
  return rc;
}

/* ---- diff ---------------------------------------------------------------------------- */

int gov__pr_diff(const db_repo *repo, const gov_disc *d, git_repository *g, char **out) {
  char ref[32], target[HUB_MAX_PATH + 16], prev[41];
  git_oid head, base, tip;
  git_commit *hc = NULL, *bc = NULL;
  git_tree *ht = NULL, *bt = NULL;
  git_diff *diff = NULL;
  git_buf buf = {0};
  int rc = 0;
  *out = NULL;
  snprintf(ref, sizeof ref, "refs/pr/%d", d->num);
  snprintf(target, sizeof target, "refs/heads/%s", d->target);
  if (git_reference_name_to_id(&head, g, ref) < 0) return 0;
  db_disc_merge_prev(repo->id, d->num, prev);
  if (!strcmp(d->status, "merged") && prev[0]) {
    if (git_oid_fromstr(&tip, prev) < 0) return 0;
  } else if (git_reference_name_to_id(&tip, g, target) < 0) {
    return 0;
  }
  if (git_merge_base(&base, g, &tip, &head) < 0) return 0; /* unrelated: no diff */
  if (git_commit_lookup(&hc, g, &head) < 0 || git_commit_lookup(&bc, g, &base) < 0 ||
      git_commit_tree(&ht, hc) < 0 || git_commit_tree(&bt, bc) < 0 ||
      git_diff_tree_to_tree(&diff, g, bt, ht, NULL) < 0 ||
      git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH) < 0) {
    rc = gov__git_error("diff");
    goto done;
  }
  size_t n = buf.size > GOV_MAX_DIFF ? GOV_MAX_DIFF : buf.size;
  *out = malloc(n + 1);
  if (!*out) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  memcpy(*out, buf.ptr ? buf.ptr : "", n);
  (*out)[n] = 0;
done:
  git_buf_dispose(&buf);
  git_diff_free(diff);
  git_tree_free(ht);
  git_tree_free(bt);
  git_commit_free(hc);
  git_commit_free(bc);
  return rc;
}

/* ---- validation ---------------------------------------------------------------------- */

/* Trimmed copy of a text field in buf (NULL and message when empty or too long). */
static const char *text_field(const char *s, size_t max, const char *what, char **owned) {
  *owned = NULL;
  if (!s) {
    hub_error_set(HUB_EINVALID, "%s is required", what);
    return NULL;
  }
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    n--;
  if (!n) {
    hub_error_set(HUB_EINVALID, "%s must not be empty", what);
    return NULL;
  }
  if (n > max) {
    hub_error_set(HUB_ETOOBIG, "%s is too long (at most %zu bytes)", what, max);
    return NULL;
  }
  *owned = strndup(s, n);
  if (!*owned) hub_error_set(HUB_ERROR, "out of memory");
  return *owned;
}

static int load(hub_req *r, int num, gov_disc *d) {
  memset(d, 0, sizeof *d);
  return db_gov_discussion_get(r->repo.id, num, d);
}

/* ---- create -------------------------------------------------------------------------- */

typedef struct {
  hub_req *r;
  int num;
  const char *title, *description, *target;
  int is_pr;
  int64_t now;
} create_ctx;

static int create_rows(void *payload) {
  create_ctx *c = payload;
  char uid[25];
  int rc = db_disc_insert(c->r->repo.id, c->num, c->title, c->is_pr ? "draft" : "open", c->is_pr,
                          c->r->who.user_id, c->target, c->now);
  if (rc) return rc;
  json_t *h = json_array();
  json_array_append_new(h, history_entry(c->description, c->now, c->r->who.name));
  char *hs = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (!hs) return hub_error_set(HUB_ERROR, "out of memory");
  db_new_uid(uid);
  rc = db_disc_event_add(c->r->repo.id, c->num, uid, "comment", c->r->who.user_id, c->description,
                         hs, c->now);
  free(hs);
  return rc;
}

static int create_also(void *payload) {
  return create_rows(payload);
}

/* A PR opened without changes: refs/pr/N created at the target's head, with its
 * discussion, by the ref transaction (one event, kind "discussion"). */
static int create_pr_ref(hub_req *r, repo_handle *h, create_ctx *c, json_t *audit, json_t *evd) {
  repo_txn *t = NULL;
  char sha[41], ref[32];
  int rc;
  if (repo_resolve(h, "refs/heads/main", sha, NULL))
    return hub_error_set(HUB_EINVALID, "%s/%s has no main branch to open a pull request against",
                         r->repo.ns, r->repo.name);
  snprintf(ref, sizeof ref, "refs/pr/%d", c->num);
  events_ctx ev = {&r->repo,     {&r->who, NULL, http_client_ip(r)},
                   "discussion", "discussion.create",
                   audit,        0,
                   create_also,  c,
                   evd};
  repo_recorder rec = events_recorder(&ev);
  if (!(rc = repo_txn_begin(&t, h)) && !(rc = repo_txn_update(t, ref, "", sha)))
    rc = repo_txn_commit(t, &rec, NULL, NULL);
  repo_txn_free(t);
  return rc;
}

int gov_disc_create(hub_req *r, const char *title_in, const char *desc_in, int pull_request,
                    json_t **out) {
  char *title = NULL, *desc = NULL;
  int rc;
  *out = NULL;
  if ((rc = gov__may_post(r))) return rc;
  if (!text_field(title_in, GOV_MAX_TITLE, "title", &title)) return hub_error_code();
  if (!desc_in || !*desc_in) desc_in = pull_request ? "Pull request" : "Discussion";
  if (!text_field(desc_in, GOV_MAX_COMMENT, "description", &desc)) {
    free(title);
    return hub_error_code();
  }
  if (pull_request && !auth_may_write_ref(r->repo_perm, NULL, AUTH_REF_API)) {
    rc = gov__deny(r, "Opening a pull request needs contributor rights");
    goto done;
  }
  create_ctx c = {r, 0, title, desc, pull_request ? "main" : "", pull_request, db_now_ms()};
  repo_handle *h;
  if ((rc = gov__repo_open(r, &h))) goto done;
  rc = HUB_EEXISTS;
  /* Two discussions opened at once may pick the same number: the loser takes the next. */
  for (int tries = 0; rc == HUB_EEXISTS && tries < 20; tries++) {
    int pr_next = 1;
    if ((rc = gov_next_num(&r->repo, &c.num)) || (rc = repo_next_pr_number(h, &pr_next))) goto done;
    if (pr_next > c.num) c.num = pr_next;
    json_t *audit =
        json_pack("{s:i, s:s, s:b}", "num", c.num, "title", title, "isPullRequest", pull_request);
    json_t *evd = json_pack("{s:i, s:s, s:b}", "num", c.num, "action", "create", "isPullRequest",
                            pull_request);
    rc = pull_request
             ? create_pr_ref(r, h, &c, audit, evd)
             : gov__record(r, "discussion", "discussion.create", audit, evd, create_rows, &c);
    json_decref(audit);
    json_decref(evd);
  }
  if (!rc) rc = gov_disc_details(r, c.num, 0, out);
done:
  free(title);
  free(desc);
  return rc;
}

/* ---- comments ------------------------------------------------------------------------ */

typedef struct {
  hub_req *r;
  int num;
  const char *uid, *text, *history;
  int64_t now;
} comment_ctx;

static int comment_add(void *payload) {
  comment_ctx *c = payload;
  return db_disc_event_add(c->r->repo.id, c->num, c->uid, "comment", c->r->who.user_id, c->text,
                           c->history, c->now);
}

static int comment_reply(hub_req *r, int num, const char *uid, const char *key, json_t **out) {
  db_disc_event e;
  int rc = db_disc_event_get(r->repo.id, num, uid, &e);
  if (rc) return rc;
  *out = json_pack("{s:o}", key, event_json(&e));
  db_disc_event_dispose(&e);
  return *out ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

static int comment_record(hub_req *r, int num, const char *uid, const char *action,
                          const char *audit_action, int (*change)(void *), void *payload) {
  json_t *audit = json_pack("{s:i, s:s}", "num", num, "comment", uid);
  json_t *evd = json_pack("{s:i, s:s, s:s}", "num", num, "comment", uid, "action", action);
  int rc = gov__record(r, "comment", audit_action, audit, evd, change, payload);
  json_decref(audit);
  json_decref(evd);
  return rc;
}

int gov_disc_comment(hub_req *r, int num, const char *text_in, json_t **out) {
  gov_disc d;
  char *text = NULL, uid[25];
  int rc;
  *out = NULL;
  if ((rc = gov__may_post(r)) || (rc = load(r, num, &d))) return rc;
  free(d.title);
  if (!text_field(text_in, GOV_MAX_COMMENT, "comment", &text)) return hub_error_code();
  int64_t now = db_now_ms();
  json_t *h = json_array();
  json_array_append_new(h, history_entry(text, now, r->who.name));
  char *hs = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  db_new_uid(uid);
  comment_ctx c = {r, num, uid, text, hs, now};
  rc = hs ? comment_record(r, num, uid, "create", "discussion.comment", comment_add, &c)
          : hub_error_set(HUB_ERROR, "out of memory");
  if (!rc) rc = comment_reply(r, num, uid, "newMessage", out);
  free(hs);
  free(text);
  return rc;
}

static int comment_edit(void *payload) {
  comment_ctx *c = payload;
  return db_disc_comment_edit(c->r->repo.id, c->num, c->uid, c->text, c->history, c->r->who.user_id,
                              c->now);
}

static int comment_hide(void *payload) {
  comment_ctx *c = payload;
  return db_disc_comment_hide(c->r->repo.id, c->num, c->uid, c->r->who.user_id, c->now);
}

/* The comment named by the route ({num}, {id}), checked to be one. */
static int route_comment(hub_req *r, int *num, char uid[25], db_disc_event *e) {
  int rc;
  if ((rc = gov__parse_num(r->cap[0], num))) return rc;
  const char *id = r->ncap > 1 ? r->cap[1] : NULL;
  if (!id || strlen(id) != 24 || strspn(id, "0123456789abcdefABCDEF") != 24)
    return hub_error_set(HUB_ENOTFOUND, "Comment not found");
  for (int i = 0; i < 24; i++)
    uid[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
  uid[24] = 0;
  if ((rc = db_disc_event_get(r->repo.id, *num, uid, e))) return rc;
  if (strcmp(e->type, "comment")) {
    db_disc_event_dispose(e);
    return hub_error_set(HUB_ENOTFOUND, "Comment %s not found", uid);
  }
  return 0;
}

int gov__h_comment_edit(hub_req *r) {
  db_disc_event e;
  char uid[25], *text = NULL, *hs = NULL;
  int num, rc;
  json_t *b = http_body_json(r), *out = NULL;
  if (!b) return HUB_EINVALID;
  if ((rc = gov__may_post(r)) || (rc = route_comment(r, &num, uid, &e))) return rc;
  if (e.author_id != r->who.user_id) {
    rc = gov__deny(r, "Only its author can edit a comment");
    goto done;
  }
  if (e.hidden) {
    rc = hub_error_set(HUB_EEXISTS, "Comment %s is hidden and cannot be edited", uid);
    goto done;
  }
  if (!text_field(json_string_value(json_object_get(b, "content")), GOV_MAX_COMMENT, "content",
                  &text)) {
    rc = hub_error_code();
    goto done;
  }
  int64_t now = db_now_ms();
  json_t *h = json_loads(e.data, 0, NULL);
  if (!json_is_array(h)) {
    json_decref(h);
    h = json_array();
  }
  json_array_insert_new(h, 0, history_entry(text, now, r->who.name));
  hs = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  comment_ctx c = {r, num, uid, text, hs, now};
  rc = hs ? comment_record(r, num, uid, "update", "discussion.comment.edit", comment_edit, &c)
          : hub_error_set(HUB_ERROR, "out of memory");
  if (!rc) rc = comment_reply(r, num, uid, "updatedComment", &out);
  if (!rc) rc = http_reply_json(r, 200, out);
done:
  free(hs);
  free(text);
  db_disc_event_dispose(&e);
  return rc;
}

int gov__h_comment_hide(hub_req *r) {
  db_disc_event e;
  char uid[25];
  int num, rc;
  json_t *out = NULL;
  if ((rc = gov__may_post(r)) || (rc = route_comment(r, &num, uid, &e))) return rc;
  if (e.author_id != r->who.user_id && r->repo_perm < PERM_WRITE) {
    rc = gov__deny(r, "Hiding another user's comment needs write access");
    goto done;
  }
  if (!e.hidden) {
    comment_ctx c = {r, num, uid, NULL, NULL, db_now_ms()};
    rc = comment_record(r, num, uid, "update", "discussion.comment.hide", comment_hide, &c);
  }
  if (!rc) rc = comment_reply(r, num, uid, "updatedComment", &out);
  if (!rc) rc = http_reply_json(r, 200, out);
done:
  db_disc_event_dispose(&e);
  return rc;
}

/* ---- title --------------------------------------------------------------------------- */

typedef struct {
  hub_req *r;
  int num;
  const char *uid, *title, *data;
  int64_t now;
} title_ctx;

static int title_change(void *payload) {
  title_ctx *c = payload;
  int rc = db_disc_set_title(c->r->repo.id, c->num, c->title, c->now);
  if (!rc)
    rc = db_disc_event_add(c->r->repo.id, c->num, c->uid, "title-change", c->r->who.user_id, NULL,
                           c->data, c->now);
  return rc;
}

int gov__h_title(hub_req *r) {
  gov_disc d = {0};
  char *title = NULL, *data = NULL, uid[25];
  int num, rc;
  json_t *b = http_body_json(r), *out = NULL;
  if (!b) return HUB_EINVALID;
  if ((rc = gov__may_post(r)) || (rc = gov__parse_num(r->cap[0], &num)) || (rc = load(r, num, &d)))
    return rc;
  if (d.author_id != r->who.user_id && r->repo_perm < PERM_WRITE) {
    rc = gov__deny(r, "Only its author or writers can rename a discussion");
    goto done;
  }
  if (!text_field(json_string_value(json_object_get(b, "title")), GOV_MAX_TITLE, "title", &title)) {
    rc = hub_error_code();
    goto done;
  }
  json_t *dj = json_pack("{s:s, s:s}", "from", d.title, "to", title);
  data = json_dumps(dj, JSON_COMPACT);
  json_decref(dj);
  db_new_uid(uid);
  title_ctx c = {r, num, uid, title, data, db_now_ms()};
  json_t *audit = json_pack("{s:i, s:s, s:s}", "num", num, "from", d.title, "to", title);
  json_t *evd =
      json_pack("{s:i, s:s, s:b}", "num", num, "action", "update", "isPullRequest", d.is_pr);
  rc = data ? gov__record(r, "discussion", "discussion.title", audit, evd, title_change, &c)
            : hub_error_set(HUB_ERROR, "out of memory");
  json_decref(audit);
  json_decref(evd);
  if (!rc) rc = comment_reply(r, num, uid, "newTitle", &out);
  if (!rc) rc = http_reply_json(r, 200, out);
done:
  free(data);
  free(title);
  free(d.title);
  return rc;
}

/* ---- create and comment routes ------------------------------------------------------- */

int gov__h_create(hub_req *r) {
  json_t *b = http_body_json(r), *out = NULL;
  if (!b) return HUB_EINVALID;
  json_t *pr = json_object_get(b, "pullRequest");
  if (pr && !json_is_boolean(pr) && !json_is_null(pr))
    return hub_error_set(HUB_EINVALID, "pullRequest must be a boolean");
  int rc =
      gov_disc_create(r, json_string_value(json_object_get(b, "title")),
                      json_string_value(json_object_get(b, "description")), json_is_true(pr), &out);
  return rc ? rc : http_reply_json(r, 200, out);
}

int gov__h_comment(hub_req *r) {
  json_t *b = http_body_json(r), *out = NULL;
  int num, rc;
  if (!b) return HUB_EINVALID;
  if ((rc = gov__parse_num(r->cap[0], &num))) return rc;
  rc = gov_disc_comment(r, num, json_string_value(json_object_get(b, "comment")), &out);
  return rc ? rc : http_reply_json(r, 200, out);
}

/* ---- webhook shapes ------------------------------------------------------------------ */

static json_t *account_json(int64_t id, const char *name) {
  db_account a;
  if (db_account_by_id(id, &a) == 0) return json_pack("{s:s, s:s}", "id", a.uid, "name", a.name);
  hub_error_clear();
  return json_pack("{s:n, s:s}", "id", "name", name);
}

int gov_discussion_json(const db_repo *repo, int num, const char *comment_id, json_t **disc,
                        json_t **comment) {
  gov_disc d;
  char base[HUB_MAX_URL], id[25];
  int rc;
  if (disc) *disc = NULL;
  if (comment) *comment = NULL;
  if ((rc = db_gov_discussion_get(repo->id, num, &d))) return rc;
  const char *prefix = repo->type == HUB_REPO_DATASET ? "datasets/"
                       : repo->type == HUB_REPO_SPACE ? "spaces/"
                                                      : "";
  const char *tname = repo->type == HUB_REPO_DATASET ? "datasets"
                      : repo->type == HUB_REPO_SPACE ? "spaces"
                                                     : "models";
  const char *pub = g_public_url ? g_public_url : "";
  snprintf(base, sizeof base, "%s/%s%s/%s/discussions/%d", pub, prefix, repo->ns, repo->name, num);
  /* A stable 24-hex id per (repo, num): the repo's uid and the number. */
  snprintf(id, sizeof id, "%.16s%08x", repo->uid, (unsigned)num);
  if (disc) {
    char api[HUB_MAX_URL];
    snprintf(api, sizeof api, "%s/api/%s/%s/%s/discussions/%d", pub, tname, repo->ns, repo->name,
             num);
    *disc = json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:s, s:o, s:b}", "id", id, "num", num, "title",
                      d.title, "url", "web", base, "api", api, "status", d.status, "author",
                      account_json(d.author_id, d.author), "isPullRequest", d.is_pr);
    if (*disc && d.is_pr) {
      char b[HUB_MAX_PATH + 16];
      snprintf(b, sizeof b, "refs/heads/%s", d.target);
      json_object_set_new(*disc, "changes", json_pack("{s:s}", "base", b));
    }
  }
  free(d.title);
  if (comment && comment_id) {
    db_disc_event e;
    if ((rc = db_disc_event_get(repo->id, num, comment_id, &e))) {
      if (disc) {
        json_decref(*disc);
        *disc = NULL;
      }
      return rc;
    }
    char url[HUB_MAX_URL + 40];
    snprintf(url, sizeof url, "%s#%s", base, e.uid);
    *comment = json_pack("{s:s, s:o, s:b, s:s, s:{s:s}}", "id", e.uid, "author",
                         account_json(e.author_id, e.author), "hidden", e.hidden, "content",
                         e.hidden ? "" : e.raw, "url", "web", url);
    db_disc_event_dispose(&e);
  }
  return 0;
}
