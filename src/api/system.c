/* Health, metrics, YAML validation and the small endpoints clients probe. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "db/search.h"
#include "security/security.h"
#include "blob/blob.h"
#include "db/events.h"
#include "events/events.h"
#include "jobs/jobs.h"
#include "ml/card.h"
#include "mirror/mirror.h"
#include "util/error.h"

/* GET /healthz for load balancers: can this node reach its database and its blob store?
 * The probes (a one-row read; a stat of an object that does not exist) run at most once a
 * second; callers in between, or while another thread probes, get the last answer. */
static pthread_mutex_t g_health_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t g_health_at = -1000000; /* ms, monotonic */
static int g_health_probing;
static char g_health_db[200], g_health_store[200]; /* "" = reachable, else why not */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void health_probe(void) {
  char db[200] = "", store[200] = "";
  int64_t last = 0;
  if (db_events_last(&last, NULL)) snprintf(db, sizeof db, "%s", hub_error_msg());
  struct blob_store *bs = api_blobs();
  if (bs && blob_store_check(bs)) snprintf(store, sizeof store, "%s", hub_error_msg());
  pthread_mutex_lock(&g_health_mu);
  memcpy(g_health_db, db, sizeof db);
  memcpy(g_health_store, store, sizeof store);
  g_health_at = now_ms();
  g_health_probing = 0;
  pthread_mutex_unlock(&g_health_mu);
}

static int h_health(hub_req *r) {
  char db[200], store[200];
  pthread_mutex_lock(&g_health_mu);
  int probe = !g_health_probing && now_ms() - g_health_at >= 1000;
  if (probe) g_health_probing = 1;
  pthread_mutex_unlock(&g_health_mu);
  if (probe) health_probe();
  pthread_mutex_lock(&g_health_mu);
  memcpy(db, g_health_db, sizeof db);
  memcpy(store, g_health_store, sizeof store);
  pthread_mutex_unlock(&g_health_mu);
  int ok = !db[0] && !store[0];
  json_t *checks =
      json_pack("{s:s, s:s}", "database", db[0] ? db : "ok", "blobStore", store[0] ? store : "ok");
  json_t *o = json_pack("{s:s, s:s, s:o}", "status", ok ? "ok" : "unavailable", "version",
                        HUB_VERSION, "checks", checks);
  if (o) mirror_health(o); /* "offline" and the upstreams, when mirroring */
  int rc = http_reply_json(r, ok ? 200 : 503, o);
  if (rc || ok) return rc;
  char msg[300];
  snprintf(msg, sizeof msg, "%s unreachable",
           db[0] && store[0] ? "database and blob store"
           : db[0]           ? "database"
                             : "blob store");
  http_add_header(r, "X-Error-Code", "ServiceUnavailable");
  http_add_header(r, "X-Error-Message", msg);
  http_add_header(r, "Retry-After", "1");
  return 0;
}

/* /metrics counts private repos and users: a site admin's write token may read it, and
 * so may the client addresses listed in MODELHUB_METRICS_ALLOW (a Prometheus scraper). */
static int metrics_access(hub_req *r) {
  if (auth_full_credential(&r->who) && r->who.is_admin) return 0;
  if (http_ip_listed(getenv("MODELHUB_METRICS_ALLOW"), http_client_ip(r))) return 0;
  if (!r->who.authenticated)
    return hub_error_set(HUB_EAUTH, "Metrics need a site administrator's token, or a client "
                                    "address listed in MODELHUB_METRICS_ALLOW");
  return hub_error_set(HUB_EFORBIDDEN, "Metrics need a site administrator's write token");
}

/* ---- GET /api/admin/events: the event log, read-only, for site admins ----
 * ?repo=ns/name (&type=model|dataset|space) narrows it to one repository; ?before=<id> pages
 * back; ?limit (≤ 64). With the consumers' cursors (docs/architecture.md, "The spine"). */
static int event_json(const db_event *e, void *payload) {
  json_t *details = e->details[0] ? json_loads(e->details, 0, NULL) : NULL;
  json_array_append_new(payload,
                        json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "id",
                                  (json_int_t)e->id, "repoId", (json_int_t)e->repo_id, "kind",
                                  e->kind, "ref", e->ref, "old", e->old, "new", e->new_, "actor",
                                  e->actor, "tokenId", e->token, "ts", (json_int_t)e->ts_ms,
                                  "details", details ? details : json_null()));
  return 0;
}

static int h_admin_events(hub_req *r) {
  const char *repo = http_param(r, "repo"), *type = http_param(r, "type");
  const char *before = http_param(r, "before"), *limit = http_param(r, "limit");
  int64_t repo_id = 0;
  if (repo) {
    const char *slash = strchr(repo, '/');
    char ns[HUB_MAX_NAME + 1];
    db_repo row;
    int t = !type || !strcmp(type, "model") ? HUB_REPO_MODEL
            : !strcmp(type, "dataset")      ? HUB_REPO_DATASET
            : !strcmp(type, "space")        ? HUB_REPO_SPACE
                                            : -1;
    if (!slash || t < 0 || (size_t)(slash - repo) > HUB_MAX_NAME)
      return hub_error_set(HUB_EINVALID,
                           "repo must be 'namespace/name' (type model|dataset|space)");
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - repo), repo);
    if (db_repo_get(t, ns, slash + 1, &row))
      return hub_error_set(HUB_EREPO, "Repository not found");
    repo_id = row.id;
  }
  int n = limit ? atoi(limit) : 64;
  if (n <= 0 || n > 64) n = 64;
  json_t *events = json_array(), *consumers = json_array();
  int rc = db_events_list(repo_id, before ? strtoll(before, NULL, 10) : 0, n, event_json, events);
  int64_t last = 0;
  db_events_last(&last, NULL);
  for (size_t i = 0; !rc && i < events_nconsumers; i++) {
    int64_t cur = 0, done = 0;
    db_cursor_peek(events_consumers[i].name, &cur, &done);
    json_array_append_new(consumers,
                          json_pack("{s:s, s:I, s:I, s:I}", "name", events_consumers[i].name,
                                    "cursor", (json_int_t)cur, "processed", (json_int_t)done,
                                    "lagEvents", (json_int_t)(last > cur ? last - cur : 0)));
  }
  if (rc) {
    json_decref(events);
    json_decref(consumers);
    return rc;
  }
  return http_reply_json(r, 200,
                         json_pack("{s:o, s:o, s:I}", "events", events, "consumers", consumers,
                                   "lastId", (json_int_t)last));
}

static int h_metrics(hub_req *r) {
  int rc = metrics_access(r);
  if (rc) return rc;
  hub_buf b = HUB_BUF_INIT;
  http_metrics_text(&b);
  auth_login_metrics(&b);
  jobs_metrics_render(&b);
  events_metrics(&b);   /* event log: consumer lag in events and seconds */
  security_metrics(&b); /* scan queue, throughput, levels */
  mirror_metrics(&b);   /* mirror: hits, misses, bytes from upstream, evictions */
  long lookups = 0, shared = 0, cached = 0;
  db_repo_shared_counts(&lookups, &shared, &cached);
  hub_buf_printf(
      &b,
      "# HELP modelhub_db_repo_lookups_total Repo lookups of the router sent to the"
      " database (PostgreSQL; concurrent ones for the same repo share one).\n"
      "# TYPE modelhub_db_repo_lookups_total counter\nmodelhub_db_repo_lookups_total %ld\n"
      "# HELP modelhub_db_repo_lookups_shared_total Requests answered by another"
      " request's repo lookup.\n"
      "# TYPE modelhub_db_repo_lookups_shared_total counter\n"
      "modelhub_db_repo_lookups_shared_total %ld\n"
      "# HELP modelhub_db_repo_lookups_cached_total Requests answered from the"
      " node's repo cache (younger than MODELHUB_REPO_CACHE_MS).\n"
      "# TYPE modelhub_db_repo_lookups_cached_total counter\n"
      "modelhub_db_repo_lookups_cached_total %ld\n"
      "# HELP modelhub_db_token_lookups_cached_total Token identifications answered"
      " from the node's cache (younger than MODELHUB_REPO_CACHE_MS).\n"
      "# TYPE modelhub_db_token_lookups_cached_total counter\n"
      "modelhub_db_token_lookups_cached_total %ld\n",
      lookups, shared, cached, db_token_cache_hits());
  int64_t repos = 0, users = 0, orgs = 0;
  db_repo_count(&repos);
  db_account_count(ACCOUNT_USER, &users);
  db_account_count(ACCOUNT_ORG, &orgs);
  hub_buf_printf(&b,
                 "# HELP modelhub_repos Repositories.\n# TYPE modelhub_repos gauge\n"
                 "modelhub_repos %lld\n"
                 "# HELP modelhub_users Users.\n# TYPE modelhub_users gauge\nmodelhub_users %lld\n"
                 "# HELP modelhub_orgs Organizations.\n# TYPE modelhub_orgs gauge\n"
                 "modelhub_orgs %lld\n",
                 (long long)repos, (long long)users, (long long)orgs);
  rc = b.failed ? hub_error_set(HUB_ERROR, "out of memory")
                : http_reply_data(r, 200, "text/plain; version=0.0.4", b.ptr, b.len);
  hub_buf_dispose(&b);
  return rc;
}

static int h_validate_yaml(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  json_t *c = json_object_get(body, "content");
  if (!json_is_string(c)) return hub_error_set(HUB_EINVALID, "Missing field: content");
  const char *yaml, *md_body;
  size_t ylen, blen;
  json_t *meta = NULL;
  int rc = card_split(json_string_value(c), json_string_length(c), &yaml, &ylen, &md_body, &blen);
  if (!rc && yaml) rc = card_yaml_to_json(yaml, ylen, &meta);
  json_decref(meta);
  if (rc) {
    json_t *o = json_pack("{s:[{s:s}], s:[]}", "errors", "message", hub_error_msg(), "warnings");
    rc = http_reply_json(r, 400, o);
    http_add_header(r, "X-Error-Message", "Invalid metadata in README.md");
    return rc;
  }
  return http_reply_json(r, 200, json_pack("{s:[], s:[]}", "errors", "warnings"));
}

static int h_empty_object(hub_req *r) {
  return http_reply_json(r, 200, json_object());
}

static int h_auth_check(hub_req *r) {
  return http_reply_json(r, 200, json_object());
}

const hub_route api_system_routes[] = {
    /* not inline: the blob store probe may wait on the network (S3) */
    {"GET", "/healthz", h_health, NEED_NONE, BODY_NONE, NULL, 0},
    {"GET", "/metrics", h_metrics, NEED_NONE | RUN_INLINE, BODY_NONE, NULL, 0},
    {"POST", "/api/validate-yaml", h_validate_yaml, NEED_NONE, BODY_JSON, NULL, 0},
    {"GET", "/api/models-tags-by-type", h_empty_object, NEED_NONE | RUN_INLINE, BODY_NONE, NULL, 0},
    {"GET", "/api/datasets-tags-by-type", h_empty_object, NEED_NONE | RUN_INLINE, BODY_NONE, NULL,
     0},
    /* "Can this caller read the repo's files": a gated repo without accepted access is
     * GatedRepo (401/403), as huggingface_hub's auth_check expects (hf-api.md §7.6). */
    {"GET", "/api/{type}/{repo}/auth-check", h_auth_check,
     NEED_REPO_READ | NEED_REPO_FILES | RUN_INLINE, BODY_NONE, NULL, 0},
    {"GET", "/api/admin/events", h_admin_events, NEED_SITE_ADMIN, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
