/* /api/settings/webhooks: the Hub's webhook API (huggingface_hub's create_webhook,
 * update_webhook, list_webhooks, get_webhook, enable_webhook, disable_webhook,
 * delete_webhook), plus the delivery log and replay. Webhooks belong to the caller's
 * user; every change is audited. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "net/outbound.h"
#include "util/error.h"
#include "util/time.h"
#include "webhooks/internal.h"

static const char *const DOMAINS[] = {"repo", "discussion"};

json_t *webhooks_json(const db_webhook *w) {
  json_t *watched = json_loads(w->watched, 0, NULL), *domains = json_loads(w->domains, 0, NULL);
  return json_pack("{s:s, s:s, s:n, s:o, s:o, s:o, s:b, s:o, s:i, s:o, s:o, s:o}", "id", w->uid,
                   "url", w->url, "job", "watched", watched ? watched : json_array(), "domains",
                   domains ? domains : json_array(), "secret",
                   w->secret[0] ? json_string(w->secret) : json_null(), "disabled", w->disabled,
                   "disabledReason",
                   w->disabled_reason[0] ? json_string(w->disabled_reason) : json_null(),
                   "failures", w->failures, "createdAt", hub_iso_json(w->created_ms), "updatedAt",
                   hub_iso_json(w->updated_ms), "lastSuccessAt",
                   w->last_ok_ms ? hub_iso_json(w->last_ok_ms) : json_null());
}

json_t *webhooks_delivery_json(const db_webhook_delivery *d, int with_payload) {
  json_t *o = json_pack("{s:I, s:I, s:o, s:{s:s, s:s}, s:s, s:i, s:o, s:I, s:o, s:o, s:o, s:o}",
                        "id", (json_int_t)d->id, "eventId", (json_int_t)d->event_id, "replayOf",
                        d->replay_of ? json_integer(d->replay_of) : json_null(), "event", "action",
                        d->action, "scope", d->scope, "state", d->state, "attempts", d->attempts,
                        "status", d->status ? json_integer(d->status) : json_null(), "latencyMs",
                        (json_int_t)d->latency_ms, "error",
                        d->error[0] ? json_string(d->error) : json_null(), "response",
                        d->attempts ? json_string(d->response) : json_null(), "createdAt",
                        hub_iso_json(d->created_ms), "updatedAt", hub_iso_json(d->updated_ms));
  if (o && with_payload && d->payload) {
    json_t *p = json_loads(d->payload, 0, NULL);
    if (p) json_object_set_new(o, "payload", p);
  }
  return o;
}

static void hook_audit(hub_req *r, const char *action, const char *uid, json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char target[48];
  snprintf(target, sizeof target, "webhook:%s", uid);
  audit_log(&ctx, action, r->who.name, target, details);
}

/* Webhooks carry a secret and act on the user's behalf: a credential with all the user's
 * powers (a write token or a web session) manages them. */
static int need_full(hub_req *r) {
  if (auth_full_credential(&r->who)) return 0;
  return hub_error_set(HUB_EFORBIDDEN, "Managing webhooks needs a write token (this token is %s)",
                       r->who.token_role == PERM_READ ? "read-only" : "fine-grained");
}

static int valid_uid(const char *s) {
  return s && strlen(s) == 24 && strspn(s, "0123456789abcdef") == 24;
}

/* The caller's webhook named by cap[0]. */
static int load(hub_req *r, const char *uid, db_webhook *out) {
  int rc = need_full(r);
  if (rc) return rc;
  if (!valid_uid(uid)) return hub_error_set(HUB_ENOTFOUND, "Webhook not found");
  return db_webhook_get(uid, r->who.user_id, out);
}

/* http(s) URL; a literal private, loopback or link-local address is refused here unless
 * the site allows them (names are checked at connect time, net/outbound.h). */
static int check_url(const char *url) {
  size_t n = strlen(url);
  if (!n || n > DB_WEBHOOK_URL_MAX)
    return hub_error_set(HUB_EINVALID, "url must be 1 to %d characters", DB_WEBHOOK_URL_MAX);
  const char *host = !strncmp(url, "https://", 8)  ? url + 8
                     : !strncmp(url, "http://", 7) ? url + 7
                                                   : NULL;
  if (!host || !*host) return hub_error_set(HUB_EINVALID, "url must be an http:// or https:// URL");
  for (const char *c = url; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f)
      return hub_error_set(HUB_EINVALID, "url must not contain spaces or control characters");
  char h[256];
  size_t hl = strcspn(host, "/?#");
  const char *at = memchr(host, '@', hl);
  if (at) return hub_error_set(HUB_EINVALID, "url must not carry credentials");
  if (host[0] == '[') {
    const char *end = memchr(host, ']', hl);
    if (!end) return hub_error_set(HUB_EINVALID, "url: bad IPv6 address");
    snprintf(h, sizeof h, "%.*s", (int)(end - host - 1), host + 1);
  } else {
    snprintf(h, sizeof h, "%.*s", (int)strcspn(host, ":/?#"), host);
  }
  if (!h[0]) return hub_error_set(HUB_EINVALID, "url has no host");
  if (webhooks__cfg.allow_private) return 0;
  struct sockaddr_in a4 = {0};
  struct sockaddr_in6 a6 = {0};
  int priv = 0;
  if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    priv = outbound_addr_is_private((struct sockaddr *)&a4);
  } else if (inet_pton(AF_INET6, h, &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    priv = outbound_addr_is_private((struct sockaddr *)&a6);
  }
  if (priv)
    return hub_error_set(HUB_EINVALID,
                         "url points to a private or loopback address (%s), which this hub does "
                         "not deliver to",
                         h);
  return 0;
}

/* watched: [{type, name}] → watch rows, after checking each item exists and is visible. */
static int parse_watched(hub_req *r, json_t *arr, db_webhook_watch *items, size_t *n,
                         json_t **out_json) {
  *n = 0;
  if (!json_is_array(arr)) return hub_error_set(HUB_EINVALID, "watched must be an array");
  if (json_array_size(arr) > DB_WEBHOOK_WATCHED_MAX)
    return hub_error_set(HUB_EINVALID, "at most %d watched items", DB_WEBHOOK_WATCHED_MAX);
  json_t *clean = json_array();
  size_t i;
  json_t *it;
  json_array_foreach(arr, i, it) {
    const char *type = json_string_value(json_object_get(it, "type"));
    const char *name = json_string_value(json_object_get(it, "name"));
    if (!type || !name || !*name || strlen(name) > 2 * HUB_MAX_NAME + 1) {
      json_decref(clean);
      return hub_error_set(HUB_EINVALID, "each watched item needs a type and a name");
    }
    db_webhook_watch *w = &items[*n];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    int rt;
    if (!strcmp(type, "user") || !strcmp(type, "org")) {
      db_account a;
      if (db_account_by_name(name, &a) || (a.kind == ACCOUNT_ORG) != (strcmp(type, "org") == 0)) {
        json_decref(clean);
        return hub_error_set(HUB_EINVALID, "watched %s '%s' not found", type, name);
      }
      w->kind = DB_WATCH_NS;
    } else if (!http_type_parse(type, &rt)) {
      const char *slash = strchr(name, '/');
      db_repo repo;
      char ns[HUB_MAX_NAME + 1];
      if (!slash || strchr(slash + 1, '/') || slash - name > HUB_MAX_NAME) {
        json_decref(clean);
        return hub_error_set(HUB_EINVALID, "watched %s must be named 'namespace/name'", type);
      }
      snprintf(ns, sizeof ns, "%.*s", (int)(slash - name), name);
      if (db_repo_get(rt, ns, slash + 1, &repo) || auth_repo_perm(&r->who, &repo) < PERM_READ) {
        json_decref(clean);
        return hub_error_set(HUB_EINVALID, "watched %s '%s' not found", type, name);
      }
      w->kind = DB_WATCH_REPO;
      w->repo_type = rt;
      snprintf(w->name, sizeof w->name, "%s/%s", repo.ns, repo.name);
    } else {
      json_decref(clean);
      return hub_error_set(
          HUB_EINVALID, "watched type must be model, dataset, space, user or org (got '%s')", type);
    }
    json_array_append_new(clean, json_pack("{s:s, s:s}", "type", type, "name", w->name));
    (*n)++;
  }
  *out_json = clean;
  return 0;
}

/* The fields of a create or update body into w (and items when watched is given). */
static int parse_body(hub_req *r, json_t *b, db_webhook *w, db_webhook_watch *items, size_t *n,
                      int creating) {
  json_t *watched = json_object_get(b, "watched");
  *n = (size_t)-1;
  int rc;
  if (creating || (watched && json_array_size(watched) > 0)) {
    json_t *clean = NULL;
    if ((rc = parse_watched(r, watched, items, n, &clean))) return rc;
    if (!*n) {
      json_decref(clean);
      return hub_error_set(HUB_EINVALID, "watched must name at least one item");
    }
    char *s = json_dumps(clean, JSON_COMPACT);
    json_decref(clean);
    if (!s || strlen(s) >= sizeof w->watched) {
      free(s);
      return hub_error_set(HUB_EINVALID, "watched is too long");
    }
    snprintf(w->watched, sizeof w->watched, "%s", s);
    free(s);
  }
  json_t *url = json_object_get(b, "url");
  if (json_object_get(b, "jobSourceId"))
    return hub_error_set(HUB_EUNSUPPORTED, "webhooks that trigger Jobs are not supported here");
  if (url || creating) {
    if (!json_is_string(url)) return hub_error_set(HUB_EINVALID, "url is required");
    if ((rc = check_url(json_string_value(url)))) return rc;
    snprintf(w->url, sizeof w->url, "%s", json_string_value(url));
  }
  json_t *domains = json_object_get(b, "domains");
  if (domains && !json_is_null(domains)) {
    if (!json_is_array(domains) || !json_array_size(domains))
      return hub_error_set(HUB_EINVALID, "domains must be a non-empty array of \"repo\", "
                                         "\"discussion\"");
    int have[2] = {0, 0};
    size_t i;
    json_t *d;
    json_array_foreach(domains, i, d) {
      const char *s = json_string_value(d);
      int k = s && !strcmp(s, "repo") ? 0 : s && !strcmp(s, "discussion") ? 1 : -1;
      if (k < 0)
        return hub_error_set(HUB_EINVALID, "domains may hold \"repo\" and \"discussion\" only");
      have[k] = 1;
    }
    snprintf(w->domains, sizeof w->domains, "[%s%s%s]", have[0] ? "\"repo\"" : "",
             have[0] && have[1] ? "," : "", have[1] ? "\"discussion\"" : "");
  } else if (creating) {
    snprintf(w->domains, sizeof w->domains, "[\"%s\",\"%s\"]", DOMAINS[0], DOMAINS[1]);
  }
  json_t *secret = json_object_get(b, "secret");
  if (secret && !json_is_null(secret)) {
    const char *s = json_string_value(secret);
    if (!s || strlen(s) > DB_WEBHOOK_SECRET_MAX)
      return hub_error_set(HUB_EINVALID, "secret must be a string of at most %d characters",
                           DB_WEBHOOK_SECRET_MAX);
    for (const char *c = s; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f)
        return hub_error_set(HUB_EINVALID, "secret must not contain control characters");
    snprintf(w->secret, sizeof w->secret, "%s", s);
  }
  return 0;
}

static int reply_hook(hub_req *r, const db_webhook *w) {
  return http_reply_json(r, 200, json_pack("{s:o}", "webhook", webhooks_json(w)));
}

static int add_hook(const db_webhook *w, void *payload) {
  json_array_append_new(payload, webhooks_json(w));
  return 0;
}

static int h_list(hub_req *r) {
  int rc = need_full(r);
  if (rc) return rc;
  json_t *arr = json_array();
  if ((rc = db_webhook_list(r->who.user_id, add_hook, arr))) {
    json_decref(arr);
    return rc;
  }
  return http_reply_json(r, 200, arr);
}

static int h_get(hub_req *r) {
  db_webhook w;
  int rc = load(r, r->cap[0], &w);
  return rc ? rc : reply_hook(r, &w);
}

static int h_create(hub_req *r) {
  int rc = need_full(r);
  if (rc) return rc;
  json_t *b = http_body_json(r);
  if (!json_is_object(b)) return hub_error_set(HUB_EINVALID, "a JSON object body is required");
  db_webhook *w = http_alloc(r, sizeof *w);
  db_webhook_watch *items = http_alloc(r, sizeof *items * DB_WEBHOOK_WATCHED_MAX);
  if (!w || !items) return hub_error_set(HUB_ERROR, "out of memory");
  memset(w, 0, sizeof *w);
  w->user_id = r->who.user_id;
  size_t n;
  if ((rc = parse_body(r, b, w, items, &n, 1))) return rc;
  if ((rc = db_webhook_create(w, items, n))) return rc;
  hook_audit(
      r, "webhook.create", w->uid,
      json_pack("{s:s, s:s, s:s}", "url", w->url, "watched", w->watched, "domains", w->domains));
  return reply_hook(r, w);
}

static int h_update(hub_req *r) {
  db_webhook *w = http_alloc(r, sizeof *w);
  db_webhook_watch *items = http_alloc(r, sizeof *items * DB_WEBHOOK_WATCHED_MAX);
  if (!w || !items) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = load(r, r->cap[0], w);
  if (rc) return rc;
  json_t *b = http_body_json(r);
  if (!json_is_object(b)) return hub_error_set(HUB_EINVALID, "a JSON object body is required");
  size_t n;
  if ((rc = parse_body(r, b, w, items, &n, 0))) return rc;
  if ((rc = db_webhook_update(w, n == (size_t)-1 ? NULL : items, n == (size_t)-1 ? 0 : n)))
    return rc;
  hook_audit(
      r, "webhook.update", w->uid,
      json_pack("{s:s, s:s, s:s}", "url", w->url, "watched", w->watched, "domains", w->domains));
  return reply_hook(r, w);
}

int webhooks_set_disabled(hub_req *r, const char *uid, int disabled, db_webhook *out) {
  int rc = load(r, uid, out);
  if (rc) return rc;
  if ((rc = db_webhook_set_disabled(out->id, disabled, "manual"))) return rc;
  hook_audit(r, disabled ? "webhook.disable" : "webhook.enable", out->uid,
             out->disabled_reason[0] ? json_pack("{s:s}", "was", out->disabled_reason) : NULL);
  return db_webhook_by_id(out->id, out);
}

static int h_enable(hub_req *r) {
  db_webhook w;
  int rc = webhooks_set_disabled(r, r->cap[0], 0, &w);
  return rc ? rc : reply_hook(r, &w);
}

static int h_disable(hub_req *r) {
  db_webhook w;
  int rc = webhooks_set_disabled(r, r->cap[0], 1, &w);
  return rc ? rc : reply_hook(r, &w);
}

static int h_delete(hub_req *r) {
  db_webhook w;
  int rc = load(r, r->cap[0], &w);
  if (rc) return rc;
  if ((rc = db_webhook_delete(w.id))) return rc;
  hook_audit(r, "webhook.delete", w.uid, json_pack("{s:s}", "url", w.url));
  return http_reply_json(r, 200, json_object());
}

static int add_delivery(const db_webhook_delivery *d, void *payload) {
  json_array_append_new(payload, webhooks_delivery_json(d, 1));
  return 0;
}

static int h_deliveries(hub_req *r) {
  db_webhook w;
  int rc = load(r, r->cap[0], &w);
  if (rc) return rc;
  const char *ls = http_param(r, "limit"), *bs = http_param(r, "before");
  long limit = ls ? strtol(ls, NULL, 10) : 50;
  if (limit < 1 || limit > 500) limit = 50;
  int64_t before = bs ? strtoll(bs, NULL, 10) : 0;
  json_t *arr = json_array();
  if ((rc = db_webhook_deliveries(w.id, before > 0 ? before : 0, (int)limit, add_delivery, arr))) {
    json_decref(arr);
    return rc;
  }
  return http_reply_json(r, 200,
                         json_pack("{s:o, s:o}", "webhook", webhooks_json(&w), "deliveries", arr));
}

int webhooks_replay(hub_req *r, const char *uid, int64_t delivery_id, int64_t *out_id) {
  db_webhook w;
  int rc = load(r, uid, &w);
  if (rc) return rc;
  if (w.disabled)
    return hub_error_set(HUB_ECONFLICT, "The webhook is disabled: enable it to replay deliveries");
  db_webhook_delivery d;
  if (db_webhook_delivery_get(delivery_id, &d)) return HUB_ENOTFOUND;
  if (d.webhook_id != w.id) {
    db_webhook_delivery_dispose(&d);
    return hub_error_set(HUB_ENOTFOUND, "Delivery not found");
  }
  int pending = 0;
  if (db_begin_immediate()) {
    rc = hub_error_set(HUB_ERROR, "webhooks: begin: %s", db_errmsg());
  } else {
    rc = db_webhook_delivery_add(w.id, d.event_id, d.id, d.repo_id, d.scope, d.action, d.payload,
                                 out_id, &pending);
    if (!rc && pending) rc = webhooks__queue(*out_id, w.id);
    if (rc || db_commit()) {
      db_rollback();
      if (!rc) rc = hub_error_set(HUB_ERROR, "webhooks: commit: %s", db_errmsg());
    }
  }
  if (!rc)
    hook_audit(
        r, "webhook.replay", w.uid,
        json_pack("{s:I, s:I}", "delivery", (json_int_t)d.id, "replay", (json_int_t)*out_id));
  db_webhook_delivery_dispose(&d);
  return rc;
}

static int h_replay(hub_req *r) {
  const char *ds = r->cap[1];
  if (!ds || !*ds || strlen(ds) > 18 || strspn(ds, "0123456789") != strlen(ds))
    return hub_error_set(HUB_ENOTFOUND, "Delivery not found");
  int64_t nid = 0;
  int rc = webhooks_replay(r, r->cap[0], strtoll(ds, NULL, 10), &nid);
  if (rc) return rc;
  db_webhook_delivery d;
  if ((rc = db_webhook_delivery_get(nid, &d))) return rc;
  json_t *o = webhooks_delivery_json(&d, 1);
  db_webhook_delivery_dispose(&d);
  return http_reply_json(r, 200, json_pack("{s:o}", "delivery", o));
}

const hub_route webhooks_routes[] = {
    {"GET", "/api/settings/webhooks", h_list, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/webhooks", h_create, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"GET", "/api/settings/webhooks/{id}", h_get, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/webhooks/{id}", h_update, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"DELETE", "/api/settings/webhooks/{id}", h_delete, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/webhooks/{id}/enable", h_enable, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/webhooks/{id}/disable", h_disable, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"GET", "/api/settings/webhooks/{id}/deliveries", h_deliveries, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/settings/webhooks/{id}/deliveries/{did}/replay", h_replay, NEED_LOGIN, BODY_NONE,
     NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
