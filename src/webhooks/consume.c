/* The "webhooks" event consumer: each event becomes one delivery per matching webhook,
 * with the Hub's payload (version 3) built now and stored with the delivery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "jobs/jobs.h"
#include "util/error.h"
#include "webhooks/internal.h"

#define MATCH_MAX 1024 /* webhooks one event is delivered to */

static webhooks_discussion_fn g_discussion;

void webhooks_set_discussion_source(webhooks_discussion_fn fn) {
  g_discussion = fn;
}

/* What an event is for webhooks. */
typedef struct {
  const char *domain; /* "repo" | "discussion" */
  const char *scope;  /* "repo", "repo.content", "repo.config", "discussion", ... */
  const char *action; /* "create" | "update" | "delete" | "move" */
} ev_kind;

/* The action of a discussion event, as a static string (the batch outlives the details). */
static const char *disc_action(json_t *det) {
  const char *a = json_string_value(json_object_get(det, "action"));
  if (a && !strcmp(a, "create")) return "create";
  if (a && !strcmp(a, "delete")) return "delete";
  return "update";
}

/* An event is one or two webhook events: a ref move that opened or merged a pull request
 * (details carry its number) is also a discussion event. Returns how many (0: none). */
static int classify(const db_event *e, json_t *det, ev_kind k[2]) {
  k[0] = (ev_kind){"repo", NULL, "update"};
  if (!strcmp(e->kind, "repo.create")) {
    k[0].scope = "repo";
    k[0].action = "create";
  } else if (!strcmp(e->kind, "repo.delete")) {
    k[0].scope = "repo";
    k[0].action = "delete";
  } else if (!strcmp(e->kind, "repo.move")) {
    k[0].scope = "repo";
    k[0].action = "move";
  } else if (!strcmp(e->kind, "repo.settings")) {
    k[0].scope = "repo.config";
  } else if (!strcmp(e->kind, "discussion") || !strcmp(e->kind, "comment")) {
    int comment = !strcmp(e->kind, "comment");
    k[0] = (ev_kind){"discussion", comment ? "discussion.comment" : "discussion", disc_action(det)};
  } else if (e->ref[0]) {
    k[0].scope = "repo.content"; /* commit, push, merge, branch, tag, stage, recovered */
    if (json_integer_value(json_object_get(det, "num")) > 0) {
      k[1] = (ev_kind){"discussion", "discussion", disc_action(det)};
      return 2;
    }
  } else {
    return 0; /* nothing webhooks know */
  }
  return 1;
}

static void split_full(const char *full, char *ns, size_t nscap, const char **name) {
  const char *s = strchr(full, '/');
  size_t n = s ? (size_t)(s - full) : strlen(full);
  snprintf(ns, nscap, "%.*s", (int)n, full);
  *name = s ? s + 1 : "";
}

/* The repo object of a payload. name: "ns/name" as the event saw it. */
static json_t *repo_json(const db_repo *repo, const char *full) {
  char web[3 * DB_WEBHOOK_URL_MAX], api[3 * DB_WEBHOOK_URL_MAX];
  const char *base = webhooks__base();
  snprintf(web, sizeof web, "%s/%s%s", base, http_type_prefix(repo->type), full);
  snprintf(api, sizeof api, "%s/api/%s/%s", base, http_type_api(repo->type), full);
  db_account owner;
  const char *owner_uid = db_account_by_id(repo->owner_id, &owner) ? "" : owner.uid;
  json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s}}", "type",
                        http_type_name(repo->type), "name", full, "id", repo->uid, "private",
                        repo->is_private, "url", "web", web, "api", api, "owner", "id", owner_uid);
  if (o && repo->head_sha[0]) json_object_set_new(o, "headSha", json_string(repo->head_sha));
  return o;
}

static json_t *sha_or_null(const char *s) {
  return s[0] ? json_string(s) : json_null();
}

/* The payload of one event (new ref), or NULL when it cannot be built (the repo is gone
 * or a discussion source is missing): the event is then not delivered. */
static json_t *build_payload(const db_event *e, json_t *det, const ev_kind *k, const db_repo *repo,
                             const char *full) {
  json_t *p = json_pack("{s:{s:s, s:s}}", "event", "action", k->action, "scope", k->scope);
  json_t *ro = p ? repo_json(repo, full) : NULL;
  if (!ro) {
    json_decref(p);
    return NULL;
  }
  json_object_set_new(p, "repo", ro);
  if (!strcmp(k->scope, "repo.content")) {
    json_object_set_new(p, "updatedRefs",
                        json_pack("[{s:s, s:o, s:o}]", "ref", e->ref, "oldSha", sha_or_null(e->old),
                                  "newSha", sha_or_null(e->new_)));
  } else if (!strcmp(k->scope, "repo.config")) {
    json_t *cfg = json_object();
    json_t *priv = json_object_get(det, "private");
    if (json_is_boolean(priv)) json_object_set(cfg, "private", priv);
    json_object_set_new(p, "updatedConfig", cfg);
  } else if (!strcmp(k->action, "move")) {
    const char *to = json_string_value(json_object_get(det, "to"));
    db_account owner;
    char ns[HUB_MAX_NAME + 1];
    const char *nm;
    split_full(to ? to : "", ns, sizeof ns, &nm);
    json_object_set_new(p, "movedTo",
                        json_pack("{s:s, s:{s:s}}", "name", to ? to : "", "owner", "id",
                                  db_account_by_name(ns, &owner) ? "" : owner.uid));
  } else if (!strcmp(k->domain, "discussion")) {
    json_t *disc = NULL, *comment = NULL;
    json_int_t num = json_integer_value(json_object_get(det, "num"));
    const char *cid = json_string_value(json_object_get(det, "comment"));
    if (!g_discussion || num <= 0 ||
        g_discussion(repo, (int)num, !strcmp(k->scope, "discussion.comment") ? cid : NULL, &disc,
                     &comment) ||
        !disc) {
      json_decref(disc);
      json_decref(comment);
      json_decref(p);
      return NULL;
    }
    json_object_set_new(p, "discussion", disc);
    if (comment) json_object_set_new(p, "comment", comment);
  }
  return p;
}

/* The repo an event names: the row, or for a deletion what the event recorded of it. */
static int event_repo(const db_event *e, json_t *det, db_repo *repo, char *full, size_t cap) {
  if (!strcmp(e->kind, "repo.delete")) {
    const char *name = json_string_value(json_object_get(det, "name"));
    if (!name || !strchr(name, '/')) return HUB_ENOTFOUND;
    memset(repo, 0, sizeof *repo);
    repo->id = e->repo_id;
    snprintf(repo->uid, sizeof repo->uid, "%s", e->repo_uid);
    repo->type = (int)json_integer_value(json_object_get(det, "type"));
    const char *nm;
    split_full(name, repo->ns, sizeof repo->ns, &nm);
    snprintf(repo->name, sizeof repo->name, "%s", nm);
    repo->owner_id = json_integer_value(json_object_get(det, "ownerId"));
    repo->owner_is_org = json_is_true(json_object_get(det, "org"));
    repo->is_private = json_is_true(json_object_get(det, "private"));
  } else if (db_repo_by_id(e->repo_id, repo)) {
    return HUB_ENOTFOUND; /* deleted since: its own event says so */
  }
  const char *from =
      !strcmp(e->kind, "repo.move") ? json_string_value(json_object_get(det, "from")) : NULL;
  if (from)
    snprintf(full, cap, "%s", from);
  else
    snprintf(full, cap, "%s/%s", repo->ns, repo->name);
  return 0;
}

/* Whether the webhook's owner may read the repo now. */
static int may_read(int64_t user_id, const db_repo *repo) {
  hub_identity who;
  if (auth_identity_for_user(user_id, &who)) return 0;
  return auth_repo_perm(&who, repo) >= PERM_READ;
}

typedef struct {
  int64_t webhook_id, event_id, repo_id;
  ev_kind k;
  char *payload;
} pending_add;

static int consume_kind(const db_event *e, json_t *det, const ev_kind *kp, const db_repo *rp,
                        const char *full, pending_add **adds, size_t *nadds, size_t *cap) {
  const ev_kind k = *kp;
  const db_repo repo = *rp;
  int64_t *ids = NULL;
  int rc = 0;
  ids = malloc(sizeof *ids * MATCH_MAX);
  if (!ids) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  size_t n = 0, n2 = 0;
  char ns[HUB_MAX_NAME + 1];
  const char *nm;
  split_full(full, ns, sizeof ns, &nm);
  if ((rc = db_webhook_match(repo.type, ns, full, k.domain, e->ts_ms, ids, MATCH_MAX, &n)))
    goto done;
  /* A move is seen by the watchers of the new name as well. */
  const char *to =
      !strcmp(e->kind, "repo.move") ? json_string_value(json_object_get(det, "to")) : NULL;
  if (to && n < MATCH_MAX) {
    char tns[HUB_MAX_NAME + 1];
    split_full(to, tns, sizeof tns, &nm);
    if ((rc =
             db_webhook_match(repo.type, tns, to, k.domain, e->ts_ms, ids + n, MATCH_MAX - n, &n2)))
      goto done;
    for (size_t i = n; i < n + n2; i++) { /* drop the ones already matched */
      int dup = 0;
      for (size_t j = 0; j < n && !dup; j++)
        dup = ids[j] == ids[i];
      if (!dup) ids[n++] = ids[i];
    }
  }
  if (!n) goto done;
  json_t *p = build_payload(e, det, &k, &repo, full);
  if (!p) goto done;
  for (size_t i = 0; i < n; i++) {
    db_webhook w;
    if (db_webhook_by_id(ids[i], &w)) continue;
    /* Checked again at delivery time (the row may be gone by then for a deletion). */
    if (!may_read(w.user_id, &repo)) continue;
    json_object_set_new(p, "webhook", json_pack("{s:s, s:i}", "id", w.uid, "version", 3));
    char *text = json_dumps(p, JSON_COMPACT);
    if (!text) continue;
    if (strlen(text) >= DB_WEBHOOK_PAYLOAD_MAX) {
      fprintf(stderr, "modelhub: webhooks: payload of event %lld over %d bytes, not delivered\n",
              (long long)e->id, DB_WEBHOOK_PAYLOAD_MAX);
      free(text);
      continue;
    }
    if (*nadds == *cap) {
      size_t nc = *cap ? *cap * 2 : 64;
      pending_add *na = realloc(*adds, nc * sizeof *na);
      if (!na) {
        free(text);
        json_decref(p);
        rc = hub_error_set(HUB_ERROR, "out of memory");
        goto done;
      }
      *adds = na;
      *cap = nc;
    }
    (*adds)[(*nadds)++] = (pending_add){ids[i], e->id, e->repo_id, k, text};
  }
  json_decref(p);
done:
  free(ids);
  return rc;
}

static int consume_one(const db_event *e, pending_add **adds, size_t *nadds, size_t *cap) {
  json_t *det = e->details[0] ? json_loads(e->details, 0, NULL) : NULL;
  ev_kind k[2];
  db_repo repo;
  char full[2 * HUB_MAX_NAME + 2];
  int nk = classify(e, det, k), rc = 0;
  if (nk && !event_repo(e, det, &repo, full, sizeof full))
    for (int i = 0; i < nk && !rc; i++)
      rc = consume_kind(e, det, &k[i], &repo, full, adds, nadds, cap);
  json_decref(det);
  return rc;
}

int webhooks_consume(const db_event *ev, size_t n) {
  pending_add *adds = NULL;
  size_t nadds = 0, cap = 0;
  int rc = 0;
  /* Payloads first (reads), then one write transaction for the batch's deliveries and
   * the jobs of those that go out at once: all of them, or none and the batch again. */
  for (size_t i = 0; i < n && !rc; i++)
    rc = consume_one(&ev[i], &adds, &nadds, &cap);
  if (!rc && nadds) {
    if (db_begin_immediate()) {
      rc = hub_error_set(HUB_ERROR, "webhooks: begin: %s", db_errmsg());
    } else {
      for (size_t i = 0; i < nadds && !rc; i++) {
        int64_t did = 0;
        int now = 0;
        rc =
            db_webhook_delivery_add(adds[i].webhook_id, adds[i].event_id, 0, adds[i].repo_id,
                                    adds[i].k.scope, adds[i].k.action, adds[i].payload, &did, &now);
        if (rc == HUB_EEXISTS) { /* a replayed batch (crash before the cursor moved) */
          rc = 0;
          continue;
        }
        if (!rc && now) rc = webhooks__queue(did, adds[i].webhook_id);
      }
      if (rc || db_commit()) {
        db_rollback();
        if (!rc) rc = hub_error_set(HUB_ERROR, "webhooks: commit: %s", db_errmsg());
      }
    }
  }
  for (size_t i = 0; i < nadds; i++)
    free(adds[i].payload);
  free(adds);
  if (rc) fprintf(stderr, "modelhub: webhooks consumer: %s (retrying)\n", hub_error_msg());
  return rc;
}
