/* The pull-through mirror (mirror.h, docs/mirror.md). */
#include "mirror/mirror.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "events/events.h"
#include "git/git.h"
#include "net/outbound.h"
#include "repo/repo.h"
#include "util/error.h"
#include "util/thread.h"
#include "xetsrv/pull.h"
#include "util/time.h"

extern char **environ;

#define MIRROR_MAX_UPSTREAMS 8
#define MIRROR_MAX_PATTERNS 32
#define MIRROR_DEFAULT_TTL_S 300
#define MIRROR_FETCH_ATTEMPTS 5  /* a cut transfer resumes with a Range request this often */
#define MIRROR_MAX_HOPS 3        /* redirects followed for an object download */
#define MIRROR_RETRY_FAILED_S 10 /* after a failed refresh, serve the cache this long */

typedef struct {
  char url[512]; /* no trailing '/' */
  char token[256];
  char *allow[MIRROR_MAX_PATTERNS];
  size_t nallow;
  char *deny[MIRROR_MAX_PATTERNS];
  size_t ndeny;
} upstream;

static upstream g_up[MIRROR_MAX_UPSTREAMS];
static size_t g_nup;
static int g_offline;
static int64_t g_ttl_ms = MIRROR_DEFAULT_TTL_S * 1000LL;
static int64_t g_cache_max; /* bytes; 0 = no limit */
static blob_store *g_blobs;
static char g_data[4096];
static int g_xet; /* this hub serves Xet: upstream Xet files are pulled through its CAS */

static _Atomic int64_t g_retry_until_ms; /* upstream said 429: not before this */
static _Atomic uint64_t m_hits, m_misses, m_bytes, m_evictions, m_requests, m_errors,
    m_repos_fetched, m_refreshes;

/* ---- configuration ------------------------------------------------------------------ */

static int add_upstream(const char *url, const char *token, json_t *allow, json_t *deny) {
  if (g_nup >= MIRROR_MAX_UPSTREAMS)
    return hub_error_set(HUB_EINVALID, "mirror: at most %d upstreams", MIRROR_MAX_UPSTREAMS);
  if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
    return hub_error_set(HUB_EINVALID, "mirror: upstream URL must start with http:// or https://");
  const char *auth = strstr(url, "://") + 3;
  if (memchr(auth, '@', strcspn(auth, "/?#")))
    return hub_error_set(HUB_EINVALID, "mirror: the upstream URL must not carry credentials (they "
                                       "would show wherever the URL does): use its token");
  upstream *u = &g_up[g_nup];
  memset(u, 0, sizeof *u);
  if (strlen(url) >= sizeof u->url || (token && strlen(token) >= sizeof u->token))
    return hub_error_set(HUB_EINVALID, "mirror: upstream URL or token too long");
  snprintf(u->url, sizeof u->url, "%s", url);
  size_t l = strlen(u->url);
  while (l && u->url[l - 1] == '/')
    u->url[--l] = 0;
  if (token) snprintf(u->token, sizeof u->token, "%s", token);
  json_t *lists[2] = {allow, deny};
  for (int k = 0; k < 2; k++) {
    size_t i;
    json_t *v;
    if (!lists[k]) continue;
    if (!json_is_array(lists[k]))
      return hub_error_set(HUB_EINVALID, "mirror: allow/deny must be lists of patterns");
    json_array_foreach(lists[k], i, v) {
      size_t *n = k ? &u->ndeny : &u->nallow;
      char **arr = k ? u->deny : u->allow;
      if (!json_is_string(v) || *n >= MIRROR_MAX_PATTERNS)
        return hub_error_set(HUB_EINVALID, "mirror: bad pattern list (strings, at most %d)",
                             MIRROR_MAX_PATTERNS);
      arr[(*n)++] = strdup(json_string_value(v));
    }
  }
  g_nup++;
  return 0;
}

static int load_config_file(const char *path) {
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root || !json_is_object(root)) {
    json_decref(root);
    return hub_error_set(HUB_EINVALID, "mirror config %s: %s (line %d)", path, je.text, je.line);
  }
  int rc = 0;
  json_t *ups = json_object_get(root, "upstreams");
  size_t i;
  json_t *u;
  if (ups && !json_is_array(ups)) rc = hub_error_set(HUB_EINVALID, "mirror config: upstreams");
  json_array_foreach(ups, i, u) {
    if (rc) break;
    json_t *url = json_object_get(u, "url"), *tok = json_object_get(u, "token");
    rc = add_upstream(json_string_value(url), json_string_value(tok), json_object_get(u, "allow"),
                      json_object_get(u, "deny"));
  }
  json_t *v;
  if (!rc && (v = json_object_get(root, "cacheMaxBytes")) && json_is_integer(v))
    g_cache_max = json_integer_value(v);
  if (!rc && (v = json_object_get(root, "ttlSeconds")) && json_is_integer(v))
    g_ttl_ms = json_integer_value(v) * 1000;
  if (!rc && (v = json_object_get(root, "offline")) && json_is_boolean(v))
    g_offline = json_is_true(v);
  json_decref(root);
  return rc;
}

int mirror_configure(const char *up, const char *token, const char *config_file, int offline) {
  int rc = 0;
  if (config_file && *config_file && (rc = load_config_file(config_file))) return rc;
  if (up && *up && (rc = add_upstream(up, token, NULL, NULL))) return rc;
  const char *v = getenv("MODELHUB_MIRROR_TTL");
  if (v && *v) g_ttl_ms = strtoll(v, NULL, 10) * 1000;
  v = getenv("MODELHUB_MIRROR_CACHE_MAX");
  if (v && *v) g_cache_max = strtoll(v, NULL, 10);
  if (offline >= 0) g_offline = offline;
  return 0;
}

int mirror_init(const hub_ctx *ctx) {
  g_blobs = ctx->blobs;
  g_xet = ctx->xet_enabled;
  snprintf(g_data, sizeof g_data, "%s", ctx->data_dir);
  return db_mirror_init();
}

int mirror_enabled(void) {
  return g_nup > 0;
}

int mirror_offline(void) {
  return g_nup > 0 && g_offline;
}

static int admits(const upstream *u, const char *ns, const char *name) {
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", ns, name);
  for (size_t i = 0; i < u->ndeny; i++)
    if (fnmatch(u->deny[i], id, FNM_PATHNAME | FNM_CASEFOLD) == 0) return 0;
  if (!u->nallow) return 1;
  for (size_t i = 0; i < u->nallow; i++)
    if (fnmatch(u->allow[i], id, FNM_PATHNAME | FNM_CASEFOLD) == 0) return 1;
  return 0;
}

/* A namespace or repo name as the Hub allows them: letters, digits, '_', '.', '-', no "--"
 * or "..", not starting or ending with '-' or '.'. Anything else (a decoded '/', a dot
 * segment) would change the upstream URL's path and dodge the allow/deny patterns. */
static int name_ok(const char *n) {
  size_t len = strlen(n);
  if (!len || len > HUB_MAX_NAME) return 0;
  if (strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
    return 0;
  if (strstr(n, "--") || strstr(n, "..")) return 0;
  return !strchr("-.", n[0]) && !strchr("-.", n[len - 1]);
}

static const upstream *upstream_for(const char *ns, const char *name) {
  if (!ns || !name || !name_ok(ns) || !name_ok(name)) return NULL;
  for (size_t i = 0; i < g_nup; i++)
    if (admits(&g_up[i], ns, name)) return &g_up[i];
  return NULL;
}

static const upstream *upstream_by_url(const char *url) {
  for (size_t i = 0; i < g_nup; i++)
    if (!strcmp(g_up[i].url, url)) return &g_up[i];
  return NULL;
}

/* ---- upstream requests -------------------------------------------------------------- */

int mirror_retry_after_s(void) {
  int64_t left = g_retry_until_ms - db_now_ms();
  return left > 0 ? (int)((left + 999) / 1000) : 0;
}

static int rate_limited(void) {
  int s = mirror_retry_after_s();
  if (!s) return 0;
  return hub_error_set(HUB_ERATELIMIT,
                       "The upstream hub rate-limited this mirror; retry in %d s (not cached)", s);
}

static void note_retry_after(const char *v) {
  int64_t s = v ? strtoll(v, NULL, 10) : 0;
  if (s <= 0) s = 1;
  if (s > 3600) s = 3600;
  int64_t until = db_now_ms() + s * 1000;
  if (until > g_retry_until_ms) g_retry_until_ms = until;
}

/* The error for an upstream answer that is not a success (and not handled by the caller). */
static int status_error(long status, const char *retry_after, const char *what) {
  m_errors++;
  if (status == 429) {
    note_retry_after(retry_after);
    return rate_limited();
  }
  if (status == 404 || status == 401 || status == 403)
    return hub_error_set(HUB_ENOTFOUND, "%s: not found upstream", what);
  return hub_error_set(HUB_EUPSTREAM, "The upstream hub failed to answer (%s: HTTP %ld)", what,
                       status);
}

static outbound_opts up_opts(void) {
  outbound_opts o = {0};
  o.allow_private = 1; /* a configured upstream may be on a private network */
  o.connect_timeout_ms = 5000;
  o.low_speed_time_s = 30;
  o.max_body = 4 << 20;
  return o;
}

/* Same scheme, host and port as the upstream's base URL (the token goes only there). */
static int same_origin(const char *a, const char *b) {
  const char *pa = strstr(a, "://"), *pb = strstr(b, "://");
  if (!pa || !pb) return 0;
  size_t la = strcspn(pa + 3, "/?#") + (size_t)(pa + 3 - a);
  size_t lb = strcspn(pb + 3, "/?#") + (size_t)(pb + 3 - b);
  return la == lb && !strncasecmp(a, b, la);
}

/* A buffered GET/POST to the upstream with its token. */
static int up_call(const upstream *u, const char *method, const char *url, const char *body,
                   const char *ctype, outbound_response *resp) {
  char auth[300], ct[128];
  const char *hdrs[4] = {0};
  size_t nh = 0;
  if (u->token[0]) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
    hdrs[nh++] = auth;
  }
  if (ctype) {
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    hdrs[nh++] = ct;
    hdrs[nh++] = "Accept: application/vnd.git-lfs+json";
  }
  outbound_opts o = up_opts();
  o.timeout_ms = 60000;
  outbound_request rq = {0};
  rq.method = method;
  rq.url = url;
  rq.headers = hdrs;
  rq.body = body;
  rq.body_len = body ? strlen(body) : 0;
  m_requests++;
  int rc = outbound_perform(&o, &rq, resp);
  if (rc) m_errors++;
  return rc;
}

/* ---- git ---------------------------------------------------------------------------- */

/* Run git with `argv` (argv[0] "git") as one of the server's git children (git_run: it
 * dies with the server), the parent's environment minus GIT_* and MODELHUB_*, plus `extra`.
 * 0 when it exited 0. Its output goes to the server log; an upstream 429 is a rate limit. */
static int run_git(char *const argv[], const char *const *extra) {
  char out[2048];
  int code = git_run(argv, extra, out, sizeof out);
  if (code < 0) return code;
  if (!code) return 0;
  fprintf(stderr, "mirror: %s %s: exit %d: %s", argv[0], argv[1], code, out);
  if (strstr(out, "error: 429")) {
    m_errors++;
    note_retry_after("5"); /* git does not show upstream's Retry-After */
    return rate_limited();
  }
  return hub_error_set(HUB_EUPSTREAM, "The upstream hub failed to answer (git fetch failed)");
}

static const char *type_prefix(int type) {
  return type == HUB_REPO_DATASET ? "datasets/" : type == HUB_REPO_SPACE ? "spaces/" : "";
}
static const char *type_api(int type) {
  return type == HUB_REPO_DATASET ? "datasets" : type == HUB_REPO_SPACE ? "spaces" : "models";
}

/* git fetch the upstream's branches and tags into refs/mirror/upstream/ of `dir`. The token
 * goes in an http.extraHeader through the environment (never on the command line). */
static int git_fetch(const upstream *u, const db_repo *repo, const char *dir) {
  char url[1200], gitdir[4300], hdr[300];
  snprintf(url, sizeof url, "%s/%s%s/%s", u->url, type_prefix(repo->type), repo->ns, repo->name);
  snprintf(gitdir, sizeof gitdir, "--git-dir=%s", dir);
  snprintf(hdr, sizeof hdr, "GIT_CONFIG_VALUE_0=Authorization: Bearer %s", u->token);
  const char *extra[] = {"GIT_TERMINAL_PROMPT=0",
                         "GIT_CONFIG_NOSYSTEM=1",
                         u->token[0] ? "GIT_CONFIG_COUNT=2" : "GIT_CONFIG_COUNT=1",
                         "GIT_CONFIG_KEY_1=http.followRedirects",
                         "GIT_CONFIG_VALUE_1=false",
                         "GIT_CONFIG_KEY_0=http.extraHeader",
                         hdr,
                         NULL};
  if (!u->token[0]) { /* only the redirect setting, as entry 0 */
    extra[3] = "GIT_CONFIG_KEY_0=http.followRedirects";
    extra[4] = "GIT_CONFIG_VALUE_0=false";
    extra[5] = NULL;
  }
  char *argv[] = {"git",
                  gitdir,
                  "fetch",
                  "--quiet",
                  "--no-tags",
                  "--prune",
                  "--no-write-fetch-head",
                  url,
                  "+refs/heads/*:refs/mirror/upstream/heads/*",
                  "+refs/tags/*:refs/mirror/upstream/tags/*",
                  NULL};
  m_requests++;
  int rc = run_git(argv, extra);
  if (rc) m_errors++;
  return rc;
}

/* The audit actor: the requesting user; "-" for an anonymous caller, "cli:USER" for
 * `modelhub mirror pull` (no address). */
static const char *actor_of(const hub_identity *who, const char *ip) {
  static _Thread_local char cli[96];
  if (who && who->authenticated) return NULL;
  if (ip) return "-";
  const char *u = getenv("SUDO_USER") ? getenv("SUDO_USER") : getenv("USER");
  snprintf(cli, sizeof cli, "cli:%s", u ? u : "?");
  return cli;
}

/* ---- refs: upstream's copy → the repo's own refs, through the spine ------------------ */

#define MAX_REFS REPO_TXN_MAX_UPDATES
typedef struct {
  char name[256];
  char sha[41];
} ref_pair;
typedef struct {
  ref_pair up[MAX_REFS], local[MAX_REFS], keep[MAX_REFS * 2];
  size_t nup, nlocal, nkeep;
} ref_sets;

static int collect_ref(const char *ref, const char *id, void *payload) {
  ref_sets *s = payload;
  const char *p;
  if (!strncmp(ref, "refs/mirror/upstream/", 21)) {
    p = ref + 21;
    if (s->nup < MAX_REFS) {
      snprintf(s->up[s->nup].name, sizeof s->up[0].name, "refs/%s", p);
      snprintf(s->up[s->nup].sha, 41, "%s", id);
      s->nup++;
    }
  } else if (!strncmp(ref, "refs/mirror/keep/", 17)) {
    if (s->nkeep < MAX_REFS * 2) snprintf(s->keep[s->nkeep++].sha, 41, "%s", ref + 17);
  } else if (!strncmp(ref, "refs/heads/", 11) || !strncmp(ref, "refs/tags/", 10)) {
    if (s->nlocal < MAX_REFS) {
      snprintf(s->local[s->nlocal].name, sizeof s->local[0].name, "%s", ref);
      snprintf(s->local[s->nlocal].sha, 41, "%s", id);
      s->nlocal++;
    }
  }
  return 0;
}

static const char *find_ref(const ref_pair *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v[i].name, name)) return v[i].sha;
  return NULL;
}

/* Old values stay addressable: a ref refs/mirror/keep/<sha> for every value a ref had
 * before it moves (git update-ref, outside the spine: these refs are the mirror's own). */
static int keep_old(const char *dir, const ref_sets *s, const ref_pair *olds, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int have = 0;
    for (size_t j = 0; j < s->nkeep && !have; j++)
      have = !strcmp(s->keep[j].sha, olds[i].sha);
    if (have) continue;
    char gitdir[4300], ref[80];
    snprintf(gitdir, sizeof gitdir, "--git-dir=%s", dir);
    snprintf(ref, sizeof ref, "refs/mirror/keep/%s", olds[i].sha);
    char *argv[] = {"git", gitdir, "update-ref", ref, (char *)olds[i].sha, NULL};
    int rc = run_git(argv, NULL);
    if (rc) return hub_error_set(HUB_ERROR, "mirror: cannot keep %s", olds[i].sha);
  }
  return 0;
}

/* Move refs/heads/ and refs/tags/ to upstream's values in one spine transaction: event
 * kind "mirror", audit "mirror.fetch" with the requesting user as actor. */
static int apply_refs(const db_repo *repo, const char *dir, const hub_identity *who, const char *ip,
                      const char *upurl) {
  repo_handle *h = NULL;
  ref_sets *s = calloc(1, sizeof *s);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = repo_open(&h, dir);
  if (!rc) rc = repo_refs_each_raw(h, collect_ref, s);
  repo_txn *t = NULL;
  ref_pair olds[MAX_REFS];
  size_t nold = 0, nupd = 0;
  if (!rc) rc = repo_txn_begin(&t, h);
  for (size_t i = 0; !rc && i < s->nup; i++) {
    const char *have = find_ref(s->local, s->nlocal, s->up[i].name);
    if (have && !strcmp(have, s->up[i].sha)) continue;
    if (have) snprintf(olds[nold++].sha, 41, "%s", have);
    rc = repo_txn_update(t, s->up[i].name, have ? have : "", s->up[i].sha);
    nupd++;
  }
  for (size_t i = 0; !rc && i < s->nlocal; i++) { /* gone upstream: gone here, kept below */
    if (find_ref(s->up, s->nup, s->local[i].name)) continue;
    snprintf(olds[nold++].sha, 41, "%s", s->local[i].sha);
    rc = repo_txn_update(t, s->local[i].name, s->local[i].sha, NULL);
    nupd++;
  }
  if (!rc && nold) rc = keep_old(dir, s, olds, nold);
  if (!rc && nupd) {
    json_t *det = json_pack("{s:s}", "upstream", upurl);
    events_ctx ev = {
        repo, {who, actor_of(who, ip), ip}, "mirror", "mirror.fetch", det, 0, NULL, NULL, NULL};
    repo_recorder rec = events_recorder(&ev);
    rc = repo_txn_commit(t, &rec, NULL, NULL);
    json_decref(det);
  }
  repo_txn_free(t);
  repo_free(h);
  free(s);
  return rc;
}

/* ---- repos -------------------------------------------------------------------------- */

static pthread_mutex_t g_repo_mu = PTHREAD_MUTEX_INITIALIZER; /* one repo fetch at a time */

static int create_namespace(const char *ns, const char *upurl, db_account *out) {
  if (db_account_by_name(ns, out) == 0) {
    if (!db_mirror_ns_is(out->id))
      return hub_error_set(HUB_EREPO, "Repository not found"); /* a local namespace wins */
    return 0;
  }
  memset(out, 0, sizeof *out);
  out->kind = ACCOUNT_ORG;
  snprintf(out->name, sizeof out->name, "%s", ns);
  int rc = db_account_create(out);
  if (rc == HUB_EEXISTS) rc = db_account_by_name(ns, out);
  if (!rc) rc = db_mirror_ns_add(out->id, upurl);
  return rc;
}

static void remove_tree(const char *dir) {
  char *argv[] = {"rm", "-rf", (char *)dir, NULL};
  pid_t pid;
  if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0) waitpid(pid, NULL, 0);
}

/* First fetch of ns/name from upstream. Holds g_repo_mu. */
static int materialize(int type, const char *ns, const char *name, const hub_identity *who,
                       const char *ip) {
  const upstream *u = upstream_for(ns, name);
  if (!u) return hub_error_set(HUB_EREPO, "Repository not found");
  db_repo repo;
  if (db_repo_get(type, ns, name, &repo) == 0) return 0; /* another request brought it */
  if (g_offline)
    return hub_error_set(HUB_EOFFLINE, "The hub is offline and %s/%s is not cached", ns, name);
  int rc = rate_limited();
  if (rc) return rc;
  char url[1200];
  snprintf(url, sizeof url, "%s/api/%s/%s/%s", u->url, type_api(type), ns, name);
  outbound_response resp;
  rc = up_call(u, "GET", url, NULL, NULL, &resp);
  if (!rc && resp.status != 200) {
    rc = status_error(resp.status, resp.retry_after, "repo info");
    if (rc == HUB_ENOTFOUND) rc = hub_error_set(HUB_EREPO, "Repository not found");
  }
  json_t *info = rc ? NULL : json_loads(resp.body.ptr ? resp.body.ptr : "", 0, NULL);
  outbound_response_free(&resp);
  if (!rc && !json_is_object(info))
    rc = hub_error_set(HUB_EUPSTREAM, "The upstream hub sent an unreadable repo info");
  db_account acct;
  if (!rc) rc = create_namespace(ns, u->url, &acct);
  if (rc) {
    json_decref(info);
    return rc;
  }
  memset(&repo, 0, sizeof repo);
  repo.type = type;
  snprintf(repo.ns, sizeof repo.ns, "%s", acct.name);
  snprintf(repo.name, sizeof repo.name, "%s", name);
  repo.owner_id = acct.id;
  repo.owner_is_org = 1;
  repo.is_private = json_is_true(json_object_get(info, "private"));
  json_t *gated = json_object_get(info, "gated");
  if (json_is_string(gated))
    snprintf(repo.gated, sizeof repo.gated, "%s", json_string_value(gated));
  else if (json_is_true(gated))
    snprintf(repo.gated, sizeof repo.gated, "auto");
  json_decref(info);
  if ((rc = db_repo_create(&repo))) return rc;
  if (repo.is_private || repo.gated[0]) rc = db_repo_update(&repo);
  char dir[4200], gitdir[4300];
  db_repo_dir(repo.uid, dir, sizeof dir);
  snprintf(gitdir, sizeof gitdir, "%s", dir);
  char *init[] = {"git", "init", "--quiet", "--bare", "--initial-branch=main", gitdir, NULL};
  if (!rc) rc = run_git(init, NULL);
  if (rc == HUB_EUPSTREAM) rc = hub_error_set(HUB_ERROR, "mirror: git init failed");
  if (!rc) rc = git_fetch(u, &repo, dir);
  if (!rc) rc = apply_refs(&repo, dir, who, ip, u->url);
  if (!rc) {
    int64_t now = db_now_ms();
    db_mirror_repo m = {repo.id, {0}, now, now};
    snprintf(m.upstream, sizeof m.upstream, "%s", u->url);
    rc = db_mirror_repo_set(&m);
  }
  if (rc) { /* no partial state: the row and the git dir go */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    db_repo_delete(repo.id);
    remove_tree(dir);
    return hub_error_set(rc, "%s", msg);
  }
  m_repos_fetched++;
  char target[2 * HUB_MAX_NAME + 16];
  snprintf(target, sizeof target, "%s:%s/%s",
           type == HUB_REPO_DATASET ? "dataset"
           : type == HUB_REPO_SPACE ? "space"
                                    : "model",
           ns, name);
  audit_ctx ac = {who, actor_of(who, ip), ip};
  audit_log(&ac, "mirror.repo.fetch", repo.ns, target, json_pack("{s:s}", "upstream", u->url));
  return 0;
}

static int flags_change(void *payload) {
  return db_repo_update(payload);
}

/* Upstream's private/gated flags taken over again into *repo (a repo made private upstream,
 * deleted there, or no longer readable with the token must not stay public here: 404, 401
 * and 403 make it private). A change is recorded like a settings change (event
 * "repo.settings", audit "mirror.repo.settings"). Other answers: an error, nothing changes. */
static int refresh_flags(const upstream *u, db_repo *repo, const hub_identity *who,
                         const char *ip) {
  char url[1200];
  snprintf(url, sizeof url, "%s/api/%s/%s/%s", u->url, type_api(repo->type), repo->ns, repo->name);
  outbound_response resp;
  int rc = up_call(u, "GET", url, NULL, NULL, &resp);
  if (rc) return rc;
  db_repo next = *repo;
  if (resp.status == 200) {
    json_t *info = json_loads(resp.body.ptr ? resp.body.ptr : "", 0, NULL);
    if (!json_is_object(info)) {
      rc = hub_error_set(HUB_EUPSTREAM, "The upstream hub sent an unreadable repo info");
    } else {
      next.is_private = json_is_true(json_object_get(info, "private"));
      json_t *gated = json_object_get(info, "gated");
      if (json_is_string(gated))
        snprintf(next.gated, sizeof next.gated, "%s", json_string_value(gated));
      else if (json_is_true(gated))
        snprintf(next.gated, sizeof next.gated, "auto");
      else
        next.gated[0] = 0;
    }
    json_decref(info);
  } else if (resp.status == 404 || resp.status == 401 || resp.status == 403) {
    next.is_private = 1;
  } else {
    rc = status_error(resp.status, resp.retry_after, "repo info");
  }
  outbound_response_free(&resp);
  if (rc || (next.is_private == repo->is_private && !strcmp(next.gated, repo->gated))) return rc;
  json_t *det = json_object();
  if (next.is_private != repo->is_private)
    json_object_set_new(det, "private", json_boolean(next.is_private));
  if (strcmp(next.gated, repo->gated))
    json_object_set_new(det, "gated", next.gated[0] ? json_string(next.gated) : json_false());
  events_ctx ev = {&next,
                   {who, actor_of(who, ip), ip},
                   "repo.settings",
                   "mirror.repo.settings",
                   det,
                   0,
                   NULL,
                   NULL,
                   det};
  rc = events_record_repo(&ev, flags_change, &next);
  json_decref(det);
  if (!rc) *repo = next;
  return rc;
}

/* Refs older than the TTL: take them from upstream again. A failure keeps the cache. */
static int refresh(const db_repo *repo_in, const hub_identity *who, const char *ip) {
  db_repo cur = *repo_in, *repo = &cur;
  db_mirror_repo m;
  if (db_mirror_repo_get(repo->id, &m)) return 0;
  int64_t now = db_now_ms();
  if (now - m.refs_ms < g_ttl_ms || g_offline || mirror_retry_after_s()) return 0;
  const upstream *u = upstream_by_url(m.upstream);
  if (!u) return 0;
  char dir[4200];
  db_repo_dir(repo->uid, dir, sizeof dir);
  int rc = refresh_flags(u, repo, who, ip);
  if (!rc) rc = git_fetch(u, repo, dir);
  if (!rc) rc = apply_refs(repo, dir, who, ip, u->url);
  if (rc) {
    fprintf(stderr, "mirror: refresh of %s/%s failed (serving the cache): %s\n", repo->ns,
            repo->name, hub_error_msg());
    m.refs_ms = now - g_ttl_ms + MIRROR_RETRY_FAILED_S * 1000;
  } else {
    m.refs_ms = now;
    m_refreshes++;
  }
  db_mirror_repo_set(&m);
  hub_error_clear();
  return 0;
}

int mirror_repo_of(const db_repo *repo, db_mirror_repo *out) {
  if (!g_nup || !repo || !repo->id) return HUB_ENOTFOUND;
  return db_mirror_repo_get(repo->id, out);
}

/* ---- the router's repo source --------------------------------------------------------- */

static int src_missing(hub_req *r) {
  if (!g_nup || !upstream_for(r->repo_ns, r->repo_name)) return 0;
  if (!r->bodyless) { /* only reads that POST bring a repo: LFS batch, paths-info */
    const char *last = r->nsegs ? r->segs[r->nsegs - 1] : "";
    if (strcmp(last, "batch") && strcmp(last, "paths-info") &&
        !(r->nsegs >= 2 && !strcmp(r->segs[r->nsegs - 2], "paths-info")))
      return 0;
  }
  return 1; /* offline answers "not cached" from prepare */
}

static int src_stale(hub_req *r) {
  db_mirror_repo m;
  if (!g_nup || g_offline || db_mirror_repo_get(r->repo.id, &m)) return 0;
  return db_now_ms() - m.refs_ms >= g_ttl_ms && !mirror_retry_after_s();
}

static int src_prepare(hub_req *r) {
  pthread_mutex_lock(&g_repo_mu);
  int rc;
  db_repo have;
  if (db_repo_get(r->repo_type, r->repo_ns, r->repo_name, &have) == 0)
    rc = refresh(&have, &r->who, http_client_ip(r));
  else
    rc = materialize(r->repo_type, r->repo_ns, r->repo_name, &r->who, http_client_ip(r));
  pthread_mutex_unlock(&g_repo_mu);
  if (rc == HUB_ENOTFOUND) rc = hub_error_set(HUB_EREPO, "Repository not found");
  if (rc == HUB_ERATELIMIT) return mirror_reply_error(r, rc) ? rc : rc;
  return rc;
}

static int src_may_write(hub_req *r, int want) {
  if (!g_nup) return 0;
  int reads = want < PERM_WRITE && (!strcmp(r->method, "GET") || r->is_head);
  if (reads) return 0;
  db_mirror_repo m;
  if (db_mirror_repo_get(r->repo.id, &m)) return 0;
  /* Reads that POST: LFS batch downloads, git fetches, paths-info. */
  if (want < PERM_WRITE && r->nsegs) {
    const char *last = r->segs[r->nsegs - 1];
    if (!strcmp(last, "git-upload-pack") || !strcmp(last, "batch") || !strcmp(last, "paths-info") ||
        (r->nsegs >= 2 && !strcmp(r->segs[r->nsegs - 2], "paths-info")))
      return 0;
  }
  return hub_error_set(HUB_EFORBIDDEN,
                       "%s/%s is a read-only mirror of %s: it cannot be changed here", r->repo.ns,
                       r->repo.name, m.upstream);
}

const http_repo_source mirror_repo_source = {src_missing, src_stale, src_prepare, src_may_write};

int mirror_reply_error(hub_req *r, int code) {
  int rc = http_reply_error(r, code);
  if (!rc && code == HUB_ERATELIMIT) {
    char s[24];
    snprintf(s, sizeof s, "%d", mirror_retry_after_s() ? mirror_retry_after_s() : 1);
    http_add_header(r, "Retry-After", s);
  }
  return rc;
}

/* ---- objects: single flight, in use, LRU -------------------------------------------- */

/* One fetch of one object from upstream, shared by every request that wants it. The bytes
 * go to a blob writer (hashed, published only if they hash to the oid); readers follow the
 * writer's own temporary file as it grows (pread up to `written`), so every byte is written
 * once. A store whose temporary data is not a local file (S3) gets an unlinked part file in
 * <data>/tmp that the bytes are copied to for the readers. */
typedef struct flight {
  char oid[65];
  int64_t size;
  int started; /* the first body byte arrived (or done): errors before it are plain replies */
  int done, rc;
  int verified;    /* every byte is in part_fd and hashed to the oid (before the commit's fsync) */
  int refs;        /* the fetch thread + every waiter and reader */
  int64_t written; /* bytes readable from part_fd */
  int part_fd;     /* the blob writer's temp file, or the part file (use_part); -1 before */
  int use_part;
  char msg[256];
  pthread_cond_t cv;
  struct flight *next;
  /* what the fetch thread needs */
  db_repo repo;
  hub_identity who;
  int has_who;
  char ip[64];
  int pinned;
  char upstream[512];
  char commit[41]; /* the download's commit and file path ("" when unknown: LFS batch) */
  char path[1024];
} flight;

static pthread_mutex_t g_obj_mu = PTHREAD_MUTEX_INITIALIZER;
static flight *g_flights;
static _Atomic int g_fetching; /* fetches running (mirror_stop waits for them) */
static _Atomic int g_stopping;

#define MAX_INUSE 1024
static struct {
  char oid[65];
  int n;
} g_inuse[MAX_INUSE];

#define MAX_TOUCH 512
static char g_touch_oid[MAX_TOUCH][65];
static int64_t g_touch_ms[MAX_TOUCH];
static size_t g_ntouch;

static void inuse_add(const char *oid, int d) { /* under g_obj_mu */
  int free_slot = -1;
  for (int i = 0; i < MAX_INUSE; i++) {
    if (g_inuse[i].n && !strcmp(g_inuse[i].oid, oid)) {
      g_inuse[i].n += d;
      return;
    }
    if (!g_inuse[i].n && free_slot < 0) free_slot = i;
  }
  if (d > 0 && free_slot >= 0) {
    snprintf(g_inuse[free_slot].oid, 65, "%s", oid);
    g_inuse[free_slot].n = d;
  }
}

static int inuse(const char *oid) { /* under g_obj_mu */
  for (int i = 0; i < MAX_INUSE; i++)
    if (g_inuse[i].n > 0 && !strcmp(g_inuse[i].oid, oid)) return 1;
  for (flight *f = g_flights; f; f = f->next)
    if (!strcmp(f->oid, oid)) return 1;
  return 0;
}

void mirror_object_release(const char *oid) {
  pthread_mutex_lock(&g_obj_mu);
  inuse_add(oid, -1);
  pthread_mutex_unlock(&g_obj_mu);
}

void mirror_object_release_cb(void *oid_copy) {
  if (oid_copy) mirror_object_release(oid_copy);
}

void mirror_object_touch(const char *oid) {
  m_hits++;
  pthread_mutex_lock(&g_obj_mu);
  inuse_add(oid, 1); /* until mirror_object_release: no eviction meanwhile */
  size_t i = 0;
  while (i < g_ntouch && strcmp(g_touch_oid[i], oid))
    i++;
  if (i == g_ntouch) {
    if (g_ntouch < MAX_TOUCH)
      g_ntouch++;
    else
      i = (size_t)(db_now_ms() % MAX_TOUCH);
    snprintf(g_touch_oid[i], 65, "%s", oid);
  }
  g_touch_ms[i] = db_now_ms();
  pthread_mutex_unlock(&g_obj_mu);
}

/* Over the cache limit: drop unpinned objects, least recently used first, never one in use
 * (being fetched, or handed to a request that has not finished). A request that already
 * opened the file keeps reading it after the unlink. */
static void evict(void) {
  if (g_cache_max <= 0) return;
  pthread_mutex_lock(&g_obj_mu);
  static char oids[MAX_TOUCH][65];
  static int64_t ms[MAX_TOUCH];
  size_t n = g_ntouch;
  memcpy(oids, g_touch_oid, n * 65);
  memcpy(ms, g_touch_ms, n * sizeof ms[0]);
  g_ntouch = 0;
  db_mirror_objects_touch((const char(*)[65])oids, ms, n);
  int64_t total = 0;
  db_mirror_objects_bytes(&total);
  char lru[64][65];
  int64_t sizes[64];
  size_t nl = 0;
  if (total > g_cache_max) db_mirror_objects_lru(lru, sizes, 64, &nl);
  for (size_t i = 0; i < nl && total > g_cache_max; i++) {
    if (inuse(lru[i])) continue;
    int shared = 0;
    if (db_mirror_object_forget(lru[i], &shared)) continue;
    if (!shared) blob_delete(g_blobs, lru[i]);
    total -= sizes[i];
    m_evictions++;
  }
  pthread_mutex_unlock(&g_obj_mu);
  hub_error_clear();
}

static void flight_unref(flight *f) { /* under g_obj_mu */
  if (--f->refs) return;
  if (f->part_fd >= 0) close(f->part_fd);
  pthread_cond_destroy(&f->cv);
  free(f);
}

/* ---- objects: the transfer ---------------------------------------------------------- */

/* Append the gathered bytes to the flight's part file at *woff and wake its readers. */
static int part_write(flight *f, const char *buf, size_t *blen, int64_t *woff) {
  for (size_t off = 0; off < *blen;) {
    ssize_t n = pwrite(f->part_fd, buf + off, *blen - off, (off_t)*woff);
    if (n <= 0) return 1;
    off += (size_t)n;
    *woff += n;
  }
  *blen = 0;
  pthread_mutex_lock(&g_obj_mu);
  if (*woff > f->written) f->written = *woff;
  f->started = 1;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&g_obj_mu);
  return 0;
}

#define PART_BUF (256 * 1024) /* bytes gathered before a part-file write and a wake-up */
typedef struct {
  flight *f;
  blob_writer **w;
  long status;
  int64_t skip;      /* bytes of this answer to drop (a 200 to a range request) */
  int64_t woff;      /* where this attempt's next bytes go in the part file */
  int64_t unflushed; /* bytes in the writer that readers cannot see yet */
  char retry_after[32];
  char *buf; /* PART_BUF: bytes not in the part file yet */
  size_t blen;
  int over; /* upstream sent more than the object's size */
} sinkctx;

/* Make the bytes received so far readable (the writer's temp file, or the part file) and
 * wake the readers. */
static int part_flush(sinkctx *s) {
  if (!s->f->use_part) {
    if (blob_writer_flush(*s->w)) return 1;
    s->woff = blob_writer_size(*s->w);
    s->unflushed = 0;
  }
  return part_write(s->f, s->buf, &s->blen, &s->woff);
}

static int on_hdr(void *ctx, long status, const char *name, const char *value) {
  sinkctx *s = ctx;
  s->status = status;
  if (!strcasecmp(name, "Retry-After"))
    snprintf(s->retry_after, sizeof s->retry_after, "%s", value);
  return 0;
}

static int on_data(void *ctx, const char *data, size_t len) {
  sinkctx *s = ctx;
  if (s->status != 200 && s->status != 206) return 0; /* an error page: dropped */
  if (s->status == 200 && s->skip) {
    /* Asked for a range, got the whole object: drop what we have (the sha256 of the whole
     * writer is checked at the end, so a different object cannot slip through). */
    size_t n = (int64_t)len < s->skip ? len : (size_t)s->skip;
    s->skip -= (int64_t)n;
    data += n, len -= n;
    if (!len) return 0;
  }
  if (blob_writer_size(*s->w) + (int64_t)len > s->f->size) {
    /* More than the pointer's size: a lying or endless upstream, not read any further. */
    s->over = 1;
    hub_error_set(HUB_EUPSTREAM, "The upstream hub sent more than the object's %lld bytes",
                  (long long)s->f->size);
    return 1;
  }
  if (g_stopping || blob_writer_write(*s->w, data, len)) return 1;
  m_bytes += len;
  if (!s->f->use_part) {
    s->unflushed += (int64_t)len;
    return s->unflushed >= PART_BUF && part_flush(s);
  }
  while (len) {
    size_t n = len < PART_BUF - s->blen ? len : PART_BUF - s->blen;
    memcpy(s->buf + s->blen, data, n);
    s->blen += n, data += n, len -= n;
    if (s->blen == PART_BUF && part_flush(s)) return 1;
  }
  return 0;
}

/* "scheme://host:port" of a URL (length of that prefix), 0 if malformed. */
static size_t origin_len(const char *u) {
  const char *p = strstr(u, "://");
  return p ? (size_t)(p + 3 - u) + strcspn(p + 3, "/?#") : 0;
}

/* GET `href` into the writer from byte blob_writer_size(w), following up to
 * MIRROR_MAX_HOPS redirects to http(s) URLs. `extra_hdrs` (from upstream's batch answer)
 * go to the href's own origin only, the upstream token only to the upstream's origin. 0
 * when the whole rest arrived; HUB_EUPSTREAM on a cut (the writer keeps what came); other
 * codes for answers that will not get better. */
static int get_once(const upstream *u, flight *f, const char *href, const char *const *extra_hdrs,
                    blob_writer **w) {
  char url[2048];
  snprintf(url, sizeof url, "%s", href);
  size_t hl = origin_len(href);
  for (int hop = 0; hop <= MIRROR_MAX_HOPS; hop++) {
    const char *hdrs[12] = {0};
    size_t nh = 0, ol = origin_len(url);
    char auth[300], range[64];
    int href_origin = hl && ol == hl && !strncasecmp(url, href, hl);
    int has_auth = 0;
    for (const char *const *e = extra_hdrs; href_origin && e && *e && nh < 8; e++) {
      hdrs[nh++] = *e;
      has_auth |= !strncasecmp(*e, "Authorization:", 14);
    }
    if (same_origin(url, u->url) && u->token[0] && !has_auth) {
      snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
      hdrs[nh++] = auth;
    }
    int64_t from = blob_writer_size(*w);
    if (from > 0) {
      snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)from);
      hdrs[nh++] = range;
    }
    sinkctx s = {f, w, 0, from, from, 0, {0}, f->use_part ? malloc(PART_BUF) : NULL, 0, 0};
    if (f->use_part && !s.buf) return hub_error_set(HUB_ERROR, "out of memory");
    outbound_opts o = up_opts();
    /* Only the configured upstream itself may be private: an href or a redirect elsewhere
     * must be public (a hostile upstream cannot aim the mirror at internal hosts). */
    o.allow_private = same_origin(url, u->url);
    outbound_request rq = {0};
    rq.url = url;
    rq.headers = hdrs;
    rq.sink = on_data;
    rq.sink_ctx = &s;
    rq.on_header = on_hdr;
    rq.header_ctx = &s;
    outbound_response resp;
    m_requests++;
    int rc = outbound_perform(&o, &rq, &resp);
    if ((s.blen || s.unflushed) && part_flush(&s) && !rc)
      rc = hub_error_set(HUB_ERROR, "mirror: part file write");
    free(s.buf);
    long st = resp.status;
    char loc[2048] = "";
    if (resp.location) snprintf(loc, sizeof loc, "%s", resp.location);
    outbound_response_free(&resp);
    if (rc && s.over) { /* will not get better: no retry */
      m_errors++;
      return hub_error_set(HUB_EINVALID, "The upstream hub sent more than the %lld bytes of %s",
                           (long long)f->size, f->oid);
    }
    if (rc) {
      m_errors++;
      /* The details (the href may be presigned) go to the log, not to the clients. */
      fprintf(stderr, "mirror: object %s: %s\n", f->oid, hub_error_msg());
      if (rc == HUB_EFORBIDDEN)
        return hub_error_set(HUB_EFORBIDDEN,
                             "The upstream hub sent the download of %s to a "
                             "private or loopback address elsewhere (refused)",
                             f->oid);
      if (rc == HUB_EINVALID)
        return hub_error_set(HUB_EINVALID, "The upstream hub sent an unusable download URL for %s",
                             f->oid);
      return hub_error_set(HUB_EUPSTREAM, "The upstream transfer of %s failed", f->oid);
    }
    if (st == 200 || st == 206) {
      if (blob_writer_size(*w) < f->size)
        return hub_error_set(HUB_EUPSTREAM, "The upstream transfer was cut");
      return 0;
    }
    if (st >= 300 && st < 400 && loc[0]) {
      if (!strncmp(loc, "http://", 7) || !strncmp(loc, "https://", 8)) {
        snprintf(url, sizeof url, "%s", loc);
      } else if (loc[0] == '/' && loc[1] != '/' && ol) {
        if (ol + strlen(loc) >= sizeof url)
          return hub_error_set(HUB_EUPSTREAM, "upstream redirected to a too long URL");
        memcpy(url + ol, loc, strlen(loc) + 1); /* same origin, new path */
      } else {
        return hub_error_set(HUB_EUPSTREAM, "upstream redirected to an unusable URL");
      }
      continue;
    }
    return status_error(st, s.retry_after, "object download");
  }
  return hub_error_set(HUB_EUPSTREAM, "upstream redirected more than %d times", MIRROR_MAX_HOPS);
}

/* Ask upstream's LFS batch API where to download `oid`: the href and its headers. */
static int batch_href(const upstream *u, const db_repo *repo, const char *oid, int64_t size,
                      char *href, size_t cap, char hdrs[4][300], size_t *nh) {
  char url[1200], body[300];
  snprintf(url, sizeof url, "%s/%s%s/%s.git/info/lfs/objects/batch", u->url,
           type_prefix(repo->type), repo->ns, repo->name);
  snprintf(body, sizeof body,
           "{\"operation\":\"download\",\"transfers\":[\"basic\"],\"hash_algo\":\"sha256\","
           "\"objects\":[{\"oid\":\"%s\",\"size\":%lld}]}",
           oid, (long long)size);
  outbound_response resp;
  int rc = up_call(u, "POST", url, body, "application/vnd.git-lfs+json", &resp);
  if (!rc && resp.status != 200) rc = status_error(resp.status, resp.retry_after, "LFS batch");
  json_t *j = rc ? NULL : json_loads(resp.body.ptr ? resp.body.ptr : "", 0, NULL);
  outbound_response_free(&resp);
  if (rc) return rc;
  json_t *o = json_array_get(json_object_get(j, "objects"), 0);
  json_t *dl = json_object_get(json_object_get(o, "actions"), "download");
  const char *h = json_string_value(json_object_get(dl, "href"));
  if (!h) {
    json_decref(j);
    return hub_error_set(HUB_ENOTFOUND, "object %s: not available upstream", oid);
  }
  snprintf(href, cap, "%s", h);
  *nh = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(dl, "header"), k, v) {
    if (*nh < 4 && json_is_string(v) && !strpbrk(k, "\r\n:") &&
        !strpbrk(json_string_value(v), "\r\n"))
      snprintf(hdrs[(*nh)++], 300, "%s: %s", k, json_string_value(v));
  }
  json_decref(j);
  return 0;
}

/* ---- objects: Xet files through upstream's CAS --------------------------------------- */

typedef struct {
  char xet_hash[65];
  char linked[80]; /* X-Linked-Etag, or ETag */
} xet_probe_ctx;

static int probe_hdr(void *ctx, long status, const char *name, const char *value) {
  xet_probe_ctx *x = ctx;
  if (!strcasecmp(name, "X-Xet-Hash") && strlen(value) == 64)
    snprintf(x->xet_hash, sizeof x->xet_hash, "%s", value);
  else if (!strcasecmp(name, "X-Linked-Etag") || (!strcasecmp(name, "ETag") && !x->linked[0]))
    snprintf(x->linked, sizeof x->linked, "%s", value);
  return 0;
}

/* Percent-encode a repo path for a URL (segments kept). */
static void url_path(char *out, size_t cap, const char *p) {
  size_t j = 0;
  for (; *p && j + 4 < cap; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c))
      out[j++] = (char)c;
    else
      j += (size_t)snprintf(out + j, cap - j, "%%%02X", c);
  }
  out[j] = 0;
}

/* Does upstream store the file in Xet? HEAD of its resolve URL at the same commit: an
 * X-Xet-Hash for exactly this object (X-Linked-Etag = the oid). 0 and the hash, or
 * HUB_ENOTFOUND (plain LFS, or nothing usable: the LFS path decides). */
static int xet_probe(const upstream *u, const flight *f, char out[65]) {
  char enc[3200], url[4400], auth[300];
  url_path(enc, sizeof enc, f->path);
  snprintf(url, sizeof url, "%s/%s%s/%s/resolve/%s/%s", u->url, type_prefix(f->repo.type),
           f->repo.ns, f->repo.name, f->commit, enc);
  const char *hdrs[2] = {0};
  if (u->token[0]) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
    hdrs[0] = auth;
  }
  xet_probe_ctx x = {{0}, {0}};
  outbound_opts o = up_opts();
  o.timeout_ms = 30000;
  outbound_request rq = {0};
  rq.method = "HEAD";
  rq.url = url;
  rq.headers = hdrs;
  rq.on_header = probe_hdr;
  rq.header_ctx = &x;
  outbound_response resp;
  m_requests++;
  int rc = outbound_perform(&o, &rq, &resp);
  long st = resp.status;
  outbound_response_free(&resp);
  hub_error_clear();
  if (rc || st < 200 || st >= 400 || !x.xet_hash[0] || !strstr(x.linked, f->oid))
    return HUB_ENOTFOUND;
  snprintf(out, 65, "%s", x.xet_hash);
  return 0;
}

typedef struct {
  flight *f;
  char *buf;
  size_t blen;
  int64_t woff;
} xet_sink;

static int xet_flush(xet_sink *s) {
  return part_write(s->f, s->buf, &s->blen, &s->woff);
}

static int xet_on_data(void *ctx, const void *data, size_t len) {
  xet_sink *s = ctx;
  const char *p = data;
  if (g_stopping) return 1;
  m_bytes += len;
  while (len) {
    size_t n = len < PART_BUF - s->blen ? len : PART_BUF - s->blen;
    memcpy(s->buf + s->blen, p, n);
    s->blen += n, p += n, len -= n;
    if (s->blen == PART_BUF && xet_flush(s)) return 1;
  }
  return 0;
}

static int open_part(flight *f) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/tmp", g_data);
  int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return hub_error_set(HUB_ERROR, "mirror: cannot create a part file in %s", tmp);
  pthread_mutex_lock(&g_obj_mu);
  f->part_fd = fd;
  f->use_part = 1;
  pthread_mutex_unlock(&g_obj_mu);
  return 0;
}

/* Pull a Xet file through upstream's CAS into our LFS and Xet stores (xetsrv_pull_file),
 * streaming its bytes to the readers through a part file. 0 when stored; HUB_ENOTFOUND when
 * the LFS path should be taken instead (upstream's CAS failed before a byte reached a
 * reader); another error when it failed after (the readers' streams end cut). */
static int fetch_xet(const upstream *u, flight *f, const char *xet_hash) {
  char repo_id[2 * HUB_MAX_NAME + 2];
  snprintf(repo_id, sizeof repo_id, "%s/%s", f->repo.ns, f->repo.name);
  xet_sink s = {f, malloc(PART_BUF), 0, 0};
  int rc = s.buf ? open_part(f) : hub_error_set(HUB_ERROR, "out of memory");
  if (rc) {
    free(s.buf);
    return rc;
  }
  xetsrv_pull_req req;
  memset(&req, 0, sizeof req);
  req.upstream_url = u->url;
  req.token = u->token[0] ? u->token : NULL;
  req.repo_type = f->repo.type == HUB_REPO_DATASET ? "dataset"
                  : f->repo.type == HUB_REPO_SPACE ? "space"
                                                   : "model";
  req.repo_id = repo_id;
  req.rev = f->commit;
  req.xet_hash = xet_hash;
  req.sha256 = f->oid;
  req.size = (uint64_t)f->size;
  req.local_repo_id = f->repo.id;
  req.allow_private = 1;
  req.on_data = xet_on_data;
  req.on_data_ctx = &s;
  m_requests++;
  rc = xetsrv_pull_file(&req);
  if ((s.blen && xet_flush(&s)) && !rc) rc = hub_error_set(HUB_ERROR, "mirror: part file write");
  free(s.buf);
  if (!rc) return 0;
  m_errors++;
  fprintf(stderr, "mirror: Xet pull of %s/%s (%s) failed: %s\n", f->repo.ns, f->repo.name, f->oid,
          hub_error_msg());
  pthread_mutex_lock(&g_obj_mu);
  int fallback = f->written == 0 && !g_stopping;
  if (fallback) { /* no reader saw a byte: the LFS path starts clean */
    close(f->part_fd);
    f->part_fd = -1;
    f->use_part = 0;
  }
  pthread_mutex_unlock(&g_obj_mu);
  if (fallback) return HUB_ENOTFOUND;
  return hub_error_set(HUB_EUPSTREAM, "The upstream hub failed to send %s through Xet", f->oid);
}

static int fetch_object(const upstream *u, flight *f) {
  char href[2048], hb[4][300];
  size_t nh = 0;
  int rc = rate_limited();
  char xh[65];
  if (!rc && g_xet && f->path[0] && xet_probe(u, f, xh) == 0) {
    rc = fetch_xet(u, f, xh);
    if (rc != HUB_ENOTFOUND) return rc;
    rc = 0;
  }
  if (!rc) rc = batch_href(u, &f->repo, f->oid, f->size, href, sizeof href, hb, &nh);
  if (rc) return rc;
  const char *hdrs[5] = {0};
  for (size_t i = 0; i < nh; i++)
    hdrs[i] = hb[i];
  blob_writer *w = NULL;
  if ((rc = blob_writer_open(g_blobs, &w))) return rc;
  int fd = -1;
  rc = blob_writer_read_fd(w, &fd);
  if (rc == HUB_EUNSUPPORTED) { /* S3: the readers get a local copy */
    rc = open_part(f);
  } else if (!rc) {
    pthread_mutex_lock(&g_obj_mu);
    f->part_fd = fd;
    f->use_part = 0;
    pthread_mutex_unlock(&g_obj_mu);
  }
  if (rc) {
    blob_writer_abort(w);
    return rc;
  }
  for (int attempt = 0; attempt < MIRROR_FETCH_ATTEMPTS; attempt++) {
    rc = get_once(u, f, href, hdrs, &w);
    if (rc != HUB_EUPSTREAM || !w || blob_writer_size(w) >= f->size) break;
    if (mirror_retry_after_s()) break;
  }
  if (rc) {
    blob_writer_abort(w);
    /* A refused or unusable target is the upstream's fault: 502 for the client. */
    if (rc == HUB_EFORBIDDEN || rc == HUB_EINVALID) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s", hub_error_msg());
      rc = hub_error_set(HUB_EUPSTREAM, "%s", msg);
    }
    return rc;
  }
  /* Readers get the last byte as soon as the bytes hash right, not after the commit's fsync
   * of the whole object (seconds for a large one): they already hold every byte. */
  if (blob_writer_verify(w, f->oid, f->size) == 0) {
    pthread_mutex_lock(&g_obj_mu);
    f->verified = f->written == f->size;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&g_obj_mu);
  }
  hub_error_clear();
  rc = blob_writer_commit(w, f->oid, f->size, NULL);
  if (rc == HUB_EINVALID)
    return hub_error_set(HUB_EUPSTREAM, "The upstream hub sent bytes that do not hash to %s",
                         f->oid);
  return rc;
}

/* The fetch thread: the transfer, then the records (reference, cache row, audit). */
static void *fetch_main(void *arg) {
  flight *f = arg;
  const upstream *u = upstream_by_url(f->upstream);
  int rc;
  int64_t have = -1;
  /* Bytes already here from upstream (another mirrored repo) count; anything else must
   * come from upstream, so a mirrored tree cannot name a local-only object into view. */
  if (blob_stat(g_blobs, f->oid, &have) == 0 && have == f->size && db_mirror_object_has(f->oid))
    rc = 0;
  else if (g_offline)
    rc = hub_error_set(HUB_EOFFLINE, "The hub is offline and this file is not cached");
  else if (!u)
    rc = hub_error_set(HUB_EOFFLINE, "The upstream of %s/%s is no longer configured", f->repo.ns,
                       f->repo.name);
  else {
    m_misses++;
    rc = fetch_object(u, f);
  }
  if (!rc) rc = db_objects_add(f->repo.id, f->oid, f->size);
  if (!rc) rc = db_mirror_object_add(f->oid, f->size, f->pinned, db_now_ms());
  if (!rc) {
    char target[2 * HUB_MAX_NAME + 16];
    snprintf(target, sizeof target, "%s/%s", f->repo.ns, f->repo.name);
    const hub_identity *who = f->has_who ? &f->who : NULL;
    const char *ip = f->ip[0] ? f->ip : NULL;
    audit_ctx ac = {who, actor_of(who, ip), ip};
    audit_log(&ac, "mirror.object.fetch", f->repo.ns, target,
              json_pack("{s:s, s:I, s:s}", "oid", f->oid, "size", (json_int_t)f->size, "upstream",
                        f->upstream));
  }
  pthread_mutex_lock(&g_obj_mu);
  f->done = f->started = 1;
  f->rc = rc;
  snprintf(f->msg, sizeof f->msg, "%s", rc ? hub_error_msg() : "");
  for (flight **p = &g_flights; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      break;
    }
  pthread_cond_broadcast(&f->cv);
  flight_unref(f);
  pthread_mutex_unlock(&g_obj_mu);
  if (!rc) evict();
  hub_error_clear();
  g_fetching--;
  return NULL;
}

void mirror_stop(void) {
  g_stopping = 1; /* transfers in progress stop at their next block */
  for (int i = 0; i < 1000 && g_fetching > 0; i++)
    usleep(10000);
}

/* Join the flight for `oid`, starting it when there is none. Returns it with a reference
 * held (and the object marked in use), or NULL with an error set. */
static flight *flight_join(const db_repo *repo, const db_mirror_repo *m, const hub_identity *who,
                           const char *ip, const char *oid, int64_t size, int pinned,
                           const char *commit, const char *fpath, int *run_here) {
  pthread_mutex_lock(&g_obj_mu);
  inuse_add(oid, 1);
  flight *f = g_flights;
  while (f && strcmp(f->oid, oid))
    f = f->next;
  if (f) {
    f->refs++;
    if (pinned) f->pinned = 1;
    pthread_mutex_unlock(&g_obj_mu);
    return f;
  }
  f = calloc(1, sizeof *f);
  if (!f) {
    inuse_add(oid, -1);
    pthread_mutex_unlock(&g_obj_mu);
    hub_error_set(HUB_ERROR, "out of memory");
    return NULL;
  }
  snprintf(f->oid, sizeof f->oid, "%s", oid);
  f->size = size;
  f->part_fd = -1; /* set by the fetch before its first byte */
  f->refs = 2;     /* the fetch thread's and the caller's */
  f->repo = *repo;
  if (who) f->who = *who, f->has_who = 1;
  if (ip) snprintf(f->ip, sizeof f->ip, "%s", ip);
  f->pinned = pinned;
  snprintf(f->upstream, sizeof f->upstream, "%s", m->upstream);
  if (commit && fpath && strlen(fpath) < sizeof f->path) {
    snprintf(f->commit, sizeof f->commit, "%s", commit);
    snprintf(f->path, sizeof f->path, "%s", fpath);
  }
  pthread_cond_init(&f->cv, NULL);
  f->next = g_flights;
  g_flights = f;
  g_fetching++;
  if (run_here) { /* the caller waits anyway: it runs the fetch itself */
    *run_here = 1;
  } else if (hub_thread_start("mirror-fetch", fetch_main, f, NULL)) {
    g_fetching--;
    g_flights = f->next;
    f->refs = 1;
    flight_unref(f);
    inuse_add(oid, -1);
    pthread_mutex_unlock(&g_obj_mu);
    return NULL;
  }
  pthread_mutex_unlock(&g_obj_mu);
  return f;
}

/* Drop a reference; copy the error of a failed flight to this thread. */
static int flight_leave(flight *f, int release_inuse) {
  pthread_mutex_lock(&g_obj_mu);
  int rc = f->done ? f->rc : 0;
  char msg[256];
  snprintf(msg, sizeof msg, "%s", f->msg);
  if (release_inuse) inuse_add(f->oid, -1);
  flight_unref(f);
  pthread_mutex_unlock(&g_obj_mu);
  return rc ? hub_error_set(rc, "%s", msg) : 0;
}

/* Called from GET handlers, which hold a read snapshot: that snapshot cannot become a write
 * transaction once another connection wrote, so it ends for the wait and starts again. */
int mirror_object_ensure(const db_repo *repo, const hub_identity *who, const char *ip,
                         const char *oid, int64_t size, int pinned) {
  db_mirror_repo m;
  if (mirror_repo_of(repo, &m)) return hub_error_set(HUB_ENOTFOUND, "not a mirrored repo");
  int snap = db_in_read_snapshot();
  if (snap) db_read_end();
  int run_here = 0;
  flight *f = flight_join(repo, &m, who, ip, oid, size, pinned, NULL, NULL, &run_here);
  int rc = f ? 0 : hub_error_code();
  if (run_here) fetch_main(f); /* holds the fetch's own reference, dropped at its end */
  if (f) {
    pthread_mutex_lock(&g_obj_mu);
    while (!f->done)
      pthread_cond_wait(&f->cv, &g_obj_mu);
    pthread_mutex_unlock(&g_obj_mu);
    rc = flight_leave(f, 0);
    if (rc)
      mirror_object_release(oid);
    else
      db_objects_add(repo->id, oid, size); /* joined another repo's flight */
  }
  if (snap) db_read_begin();
  return rc;
}

/* ---- objects: readers that follow the part file --------------------------------------- */

typedef struct {
  flight *f;
  int64_t start, end; /* the reply's bytes [start, end) */
} follower;

/* Bytes of the part file readers may have (under g_obj_mu): the object's last byte only
 * once the whole object hashed to its oid, so no client ever receives all the bytes of
 * something that does not match the pointer (it gets a truncated reply instead). */
static int64_t follow_ready(const flight *f) {
  if ((f->done && !f->rc) || f->verified) return f->written;
  return f->written < f->size ? f->written : f->size - 1;
}

static ssize_t follow_read(void *payload, uint64_t pos, char *buf, size_t max) {
  follower *fl = payload;
  flight *f = fl->f;
  int64_t at = fl->start + (int64_t)pos;
  /* Wait for a whole block (or the end of the reply) rather than wake per network read. */
  int64_t want = fl->end - at < (int64_t)max ? fl->end - at : (int64_t)max;
  if (want <= 0) return 0;
  pthread_mutex_lock(&g_obj_mu);
  while (!f->done && follow_ready(f) < at + want)
    pthread_cond_wait(&f->cv, &g_obj_mu);
  int64_t avail = follow_ready(f) - at;
  int failed = f->done && f->rc;
  pthread_mutex_unlock(&g_obj_mu);
  if (avail <= 0) return failed ? -1 : 0;
  if (avail > want) avail = want;
  if ((int64_t)max > avail) max = (size_t)avail;
  ssize_t n = pread(f->part_fd, buf, max, (off_t)at);
  return n > 0 ? n : -1;
}

static void follow_free(void *payload) {
  follower *fl = payload;
  flight_leave(fl->f, 1);
  hub_error_clear();
  free(fl);
}

/* The file path of a resolve request and its commit here (= upstream's: the mirror keeps
 * upstream's commits), so the fetch can ask upstream whether the file is in Xet. NULL when
 * the URL does not say (the revision is looked up as its first segment only). */
static const char *download_path(hub_req *r, char commit[41]) {
  char needle[2 * HUB_MAX_NAME + 16];
  snprintf(needle, sizeof needle, "/%s/%s/resolve/", r->repo.ns, r->repo.name);
  const char *p = r->path && g_xet ? strstr(r->path, needle) : NULL;
  if (!p) return NULL;
  p += strlen(needle);
  const char *slash = strchr(p, '/');
  if (!slash || !slash[1] || slash - p >= 256) return NULL;
  char rev[256], dir[4200];
  snprintf(rev, sizeof rev, "%.*s", (int)(slash - p), p);
  db_repo_dir(r->repo.uid, dir, sizeof dir);
  repo_handle *h = NULL;
  int rc = repo_open(&h, dir);
  if (!rc) rc = repo_resolve(h, rev, commit, NULL);
  repo_free(h);
  hub_error_clear();
  return rc ? NULL : slash + 1;
}

int mirror_object_stream(hub_req *r, const char *oid, int64_t size, int status, const char *ctype,
                         int64_t start, int64_t len) {
  db_mirror_repo m;
  if (mirror_repo_of(&r->repo, &m)) return hub_error_set(HUB_ENOTFOUND, "not a mirrored repo");
  int snap = db_in_read_snapshot();
  if (snap) db_read_end();
  char commit[41] = "";
  const char *fpath = download_path(r, commit);
  flight *f =
      flight_join(&r->repo, &m, &r->who, http_client_ip(r), oid, size, 0, commit, fpath, NULL);
  int rc = f ? 0 : hub_error_code();
  int done = 0;
  if (f) { /* wait for the first byte: errors before it are ordinary replies */
    pthread_mutex_lock(&g_obj_mu);
    while (!f->started)
      pthread_cond_wait(&f->cv, &g_obj_mu);
    done = f->done;
    pthread_mutex_unlock(&g_obj_mu);
  }
  if (snap) db_read_begin();
  if (!f) return rc;
  if (done) { /* finished already: served from the store like any cached object */
    rc = flight_leave(f, 0);
    if (rc) {
      mirror_object_release(oid);
      return rc;
    }
    db_objects_add(r->repo.id, oid, size);
    http_cleanup_add(r, mirror_object_release_cb, http_strdup(r, oid));
    return 0;
  }
  follower *fl = calloc(1, sizeof *fl);
  if (!fl) {
    flight_leave(f, 1);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  fl->f = f;
  fl->start = start;
  fl->end = start + len;
  rc = http_reply_stream(r, status, ctype, (uint64_t)len, follow_read, fl, follow_free);
  return rc ? rc : 1;
}

int mirror_lfs_fetch(hub_req *r, const char *oid, int64_t size) {
  db_mirror_repo m;
  if (mirror_repo_of(&r->repo, &m)) return HUB_ENOTFOUND;
  int rc = mirror_object_ensure(&r->repo, &r->who, http_client_ip(r), oid, size, 0);
  if (!rc) http_cleanup_add(r, mirror_object_release_cb, http_strdup(r, oid));
  return rc;
}

/* ---- reporting ---------------------------------------------------------------------- */

json_t *mirror_info_json(const db_repo *repo) {
  db_mirror_repo m;
  if (mirror_repo_of(repo, &m)) return NULL;
  char iso[40];
  hub_iso_time(m.refs_ms, iso);
  return json_pack("{s:s, s:s}", "upstream", m.upstream, "fetchedAt", iso);
}

void mirror_metrics(hub_buf *b) {
  if (!g_nup) return;
  int64_t bytes = 0;
  db_mirror_objects_bytes(&bytes);
  hub_buf_printf(
      b,
      "# HELP modelhub_mirror_hits_total Mirrored files served from the cache.\n"
      "# TYPE modelhub_mirror_hits_total counter\nmodelhub_mirror_hits_total %llu\n"
      "# HELP modelhub_mirror_misses_total Mirrored files fetched from upstream.\n"
      "# TYPE modelhub_mirror_misses_total counter\nmodelhub_mirror_misses_total %llu\n"
      "# HELP modelhub_mirror_upstream_bytes_total Object bytes received from upstream.\n"
      "# TYPE modelhub_mirror_upstream_bytes_total counter\n"
      "modelhub_mirror_upstream_bytes_total %llu\n"
      "# HELP modelhub_mirror_evictions_total Cached objects evicted.\n"
      "# TYPE modelhub_mirror_evictions_total counter\nmodelhub_mirror_evictions_total %llu\n"
      "# HELP modelhub_mirror_upstream_requests_total Requests to upstream (HTTP and git).\n"
      "# TYPE modelhub_mirror_upstream_requests_total counter\n"
      "modelhub_mirror_upstream_requests_total %llu\n"
      "# HELP modelhub_mirror_upstream_errors_total Failed upstream requests.\n"
      "# TYPE modelhub_mirror_upstream_errors_total counter\n"
      "modelhub_mirror_upstream_errors_total %llu\n"
      "# HELP modelhub_mirror_repos_fetched_total Repos fetched from upstream.\n"
      "# TYPE modelhub_mirror_repos_fetched_total counter\n"
      "modelhub_mirror_repos_fetched_total %llu\n"
      "# HELP modelhub_mirror_refreshes_total Ref refreshes after the TTL.\n"
      "# TYPE modelhub_mirror_refreshes_total counter\nmodelhub_mirror_refreshes_total %llu\n"
      "# HELP modelhub_mirror_cache_bytes Bytes of cached objects.\n"
      "# TYPE modelhub_mirror_cache_bytes gauge\nmodelhub_mirror_cache_bytes %lld\n",
      (unsigned long long)m_hits, (unsigned long long)m_misses, (unsigned long long)m_bytes,
      (unsigned long long)m_evictions, (unsigned long long)m_requests, (unsigned long long)m_errors,
      (unsigned long long)m_repos_fetched, (unsigned long long)m_refreshes, (long long)bytes);
}

void mirror_health(json_t *o) {
  if (!g_nup) return;
  json_t *ups = json_array();
  for (size_t i = 0; i < g_nup; i++)
    json_array_append_new(ups, json_string(g_up[i].url));
  json_object_set_new(o, "offline", json_boolean(g_offline));
  json_object_set_new(o, "mirror",
                      json_pack("{s:o, s:b, s:i}", "upstreams", ups, "offline", g_offline,
                                "retryAfter", mirror_retry_after_s()));
}

/* ---- mirror pull -------------------------------------------------------------------- */

typedef struct {
  const db_repo *repo;
  const char *const *include;
  size_t ninclude;
  int rc;
  size_t files, fetched;
} pull_ctx;

static int pull_entry(const repo_entry *e, void *payload) {
  pull_ctx *p = payload;
  if (e->type != REPO_ENTRY_FILE || !e->is_lfs) return 0;
  int match = !p->ninclude;
  for (size_t i = 0; i < p->ninclude && !match; i++)
    match = fnmatch(p->include[i], e->path, 0) == 0;
  if (!match) return 0;
  p->files++;
  int64_t have = -1;
  int64_t ref = -1;
  if (db_objects_get(p->repo->id, e->lfs_oid, &ref) == 0 &&
      blob_stat(g_blobs, e->lfs_oid, &have) == 0 && have == (int64_t)e->lfs_size) {
    db_mirror_object_add(e->lfs_oid, have, 1, db_now_ms());
    printf("cached  %s\n", e->path);
    return 0;
  }
  int rc = mirror_object_ensure(p->repo, NULL, NULL, e->lfs_oid, (int64_t)e->lfs_size, 1);
  if (rc) {
    fprintf(stderr, "modelhub mirror pull: %s: %s\n", e->path, hub_error_msg());
    p->rc = rc;
    return 0;
  }
  mirror_object_release(e->lfs_oid);
  p->fetched++;
  printf("fetched %s (%llu bytes)\n", e->path, (unsigned long long)e->lfs_size);
  return 0;
}

int mirror_pull(int type, const char *ns, const char *name, const char *rev,
                const char *const *include, size_t ninclude) {
  if (!g_nup) return hub_error_set(HUB_EINVALID, "no upstream configured (--upstream URL)");
  hub_identity cli;
  memset(&cli, 0, sizeof cli);
  db_repo repo;
  int rc;
  pthread_mutex_lock(&g_repo_mu);
  if (db_repo_get(type, ns, name, &repo) == 0) {
    db_mirror_repo m;
    if (db_mirror_repo_get(repo.id, &m)) {
      pthread_mutex_unlock(&g_repo_mu);
      return hub_error_set(HUB_EINVALID, "%s/%s is a local repo, not a mirror", ns, name);
    }
    m.refs_ms = 0; /* a pull always takes the refs from upstream */
    db_mirror_repo_set(&m);
    rc = refresh(&repo, &cli, NULL);
  } else {
    rc = materialize(type, ns, name, &cli, NULL);
  }
  pthread_mutex_unlock(&g_repo_mu);
  if (!rc) rc = db_repo_get(type, ns, name, &repo);
  if (rc) return rc;
  char dir[4200], sha[41];
  db_repo_dir(repo.uid, dir, sizeof dir);
  repo_handle *h = NULL;
  if ((rc = repo_open(&h, dir))) return rc;
  rc = repo_resolve(h, rev && *rev ? rev : "main", sha, NULL);
  pull_ctx p = {&repo, include, ninclude, 0, 0, 0};
  if (!rc) rc = repo_list(h, sha, "", 1, pull_entry, &p);
  repo_free(h);
  if (!rc) rc = p.rc;
  if (!rc)
    printf("%s/%s@%s: %zu LFS files, %zu fetched, pinned\n", ns, name, sha, p.files, p.fetched);
  return rc;
}
