/* Derived data after ref changes, reindexing, download counters (docs/search.md). */
#include "index/index.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "blob/blob.h"
#include "db/search.h"
#include "ml/derive.h"
#include "repo/repo.h"
#include "util/error.h"
#include "util/thread.h"

/* ---- derived metadata --------------------------------------------------------------- */

static blob_store *g_blobs;
static const blob_read_fallback *g_fallback;

void index_set_read_fallback(const void *fb) {
  g_fallback = fb;
}
static pthread_once_t g_blobs_once = PTHREAD_ONCE_INIT;

static void blobs_open(void) {
  if (blob_store_open_at(&g_blobs, "")) g_blobs = NULL;
}

static const char *str_of(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Store ml_derive's result for the repo's head. Takes ownership of meta. */
static int store_meta(const db_repo *repo, json_t *meta) {
  const char **tags = NULL, **bases = NULL;
  char *meta_text = NULL, *tags_text = NULL, *card = NULL;
  int rc = HUB_ERROR;
  json_t *card_text = json_object_get(meta, "cardText");
  if (json_is_string(card_text)) card = strdup(json_string_value(card_text));
  json_object_del(meta, "cardText");
  const char *pipeline = str_of(meta, "pipeline_tag");
  json_t *tl = json_object_get(meta, "tags");
  if (!json_is_array(tl)) {
    tl = json_array();
    json_object_set_new(meta, "tags", tl);
  }
  /* The Hub lists the pipeline tag among the tags too. */
  if (pipeline) {
    int has = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tl, i, t) has |=
        json_is_string(t) && !strcmp(json_string_value(t), pipeline);
    if (!has) json_array_append_new(tl, json_string(pipeline));
  }
  size_t nt = json_array_size(tl);
  if (nt > ML_MAX_LIST_ITEMS) nt = ML_MAX_LIST_ITEMS;
  tags = calloc(nt + 1, sizeof *tags);
  size_t ntags = 0;
  for (size_t i = 0; tags && i < nt; i++) {
    json_t *t = json_array_get(tl, i);
    if (json_is_string(t)) tags[ntags++] = json_string_value(t);
  }
  json_t *bm = json_object_get(meta, "baseModels");
  json_t *models = json_object_get(bm, "models");
  size_t nb = json_array_size(models);
  if (nb > ML_MAX_LIST_ITEMS) nb = ML_MAX_LIST_ITEMS;
  bases = calloc(nb + 1, sizeof *bases);
  size_t nbases = 0;
  for (size_t i = 0; bases && i < nb; i++) {
    const char *id = str_of(json_array_get(models, i), "id");
    if (id) bases[nbases++] = id;
  }
  int64_t params = 0;
  json_t *np = json_object_get(meta, "num_parameters");
  if (json_is_integer(np))
    params = json_integer_value(np);
  else if (json_is_integer(json_object_get(json_object_get(meta, "safetensors"), "total")))
    params = json_integer_value(json_object_get(json_object_get(meta, "safetensors"), "total"));
  meta_text = json_dumps(meta, JSON_COMPACT);
  tags_text = json_dumps(tl, JSON_COMPACT);
  if (!tags || !bases || !meta_text || !tags_text) {
    hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  db_meta m = {meta_text, tags_text, pipeline, str_of(meta, "library_name"), card, params, 0, tags,
               ntags,     bases,     nbases,   str_of(bm, "relation")};
  rc = db_meta_store(repo->id, &m);
done:
  free(tags);
  free(bases);
  free(meta_text);
  free(tags_text);
  free(card);
  json_decref(meta);
  return rc;
}

/* Derive and store the metadata of refs/heads/main now. A problem is logged, never
 * returned: derived data never fails the ref change that triggered it. */
static void derive_now(const db_repo *repo, repo_handle *h) {
  char sha[41];
  int drc;
  if (repo_resolve(h, "refs/heads/main", sha, NULL)) {
    drc = db_meta_clear(repo->id);
  } else {
    json_t *meta = NULL;
    pthread_once(&g_blobs_once, blobs_open);
    blob_store *view = g_blobs && g_fallback
                           ? blob_store_view(g_blobs, g_fallback, (void *)(intptr_t)repo->id)
                           : NULL;
    drc = ml_derive(h, view ? view : g_blobs, sha, repo->type, &meta);
    blob_store_view_free(view);
    if (!drc) drc = store_meta(repo, meta);
  }
  if (drc) fprintf(stderr, "modelhub: index %s/%s: %s\n", repo->ns, repo->name, hub_error_msg());
}

/* ---- the event consumer ---------------------------------------------------------------
 * In the server, metadata is derived by the "index" consumer of the event log (events/):
 * a batch of events costs one derive per repo whose default branch moved in it (50
 * concurrent commits cost a few derives, not 50). A crash replays the batch: derive is
 * idempotent. */

int index_consume(const db_event *ev, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t j;
    if (strcmp(ev[i].ref, "refs/heads/main")) continue;
    for (j = i + 1; j < n; j++) /* a later event of the same repo derives it */
      if (ev[j].repo_id == ev[i].repo_id && !strcmp(ev[j].ref, "refs/heads/main")) break;
    if (j < n) continue;
    db_repo repo;
    if (db_repo_by_id(ev[i].repo_id, &repo)) continue; /* deleted since */
    char dir[4200];
    repo_handle *h = NULL;
    db_repo_dir(repo.uid, dir, sizeof dir);
    if (repo_open(&h, dir) == 0) derive_now(&repo, h);
    repo_free(h);
  }
  return 0;
}

int index_repo_changed(const db_repo *repo) {
  char dir[4200], sha[41];
  db_repo_dir(repo->uid, dir, sizeof dir);
  repo_handle *h = NULL;
  int rc = repo_open(&h, dir);
  if (rc) return rc;
  repo_commit_info ci;
  int64_t when = db_now_ms();
  rc = repo_resolve(h, "refs/heads/main", sha, NULL);
  if (rc == HUB_EREVISION) {
    sha[0] = 0; /* the default branch was deleted by a push */
    rc = 0;
  } else if (!rc && repo_commit_info_get(h, sha, &ci) == 0) {
    when = ci.date * 1000;
    repo_commit_info_dispose(&ci);
  }
  /* The head (sha, lastModified, siblings) is stored before answering: read-your-writes. */
  if (!rc) rc = db_repo_set_head(repo->id, sha, when);
  if (!rc) derive_now(repo, h);
  repo_free(h);
  return rc;
}

/* ---- reindex ------------------------------------------------------------------------ */

static int reindex_one(const db_repo *repo, void *payload) {
  int *count = payload;
  if (index_repo_changed(repo))
    fprintf(stderr, "modelhub reindex: %s/%s: %s\n", repo->ns, repo->name, hub_error_msg());
  count[0]++;
  if (count[1] && count[0] % 100 == 0) fprintf(stderr, "reindexed %d repos\n", count[0]);
  return 0;
}

static int64_t today(void) {
  return db_now_ms() / 86400000;
}

int index_reindex_all(int verbose) {
  int count[2] = {0, verbose};
  int rc = db_repo_each(reindex_one, count);
  if (!rc) rc = db_popularity_refresh(NULL, 0, today());
  if (!rc) printf("reindexed %d repos\n", count[0]);
  return rc;
}

/* ---- download counters -------------------------------------------------------------- */

/* Open-addressing map repo id → pending count, swapped out whole by the flusher. */
typedef struct {
  db_count *slot;
  size_t cap, used;
} count_map;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static count_map g_pending;
static pthread_t g_thread;
static int g_started, g_stop;

static int map_add(count_map *m, int64_t id, int64_t n) {
  if ((m->used + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    db_count *s = calloc(cap, sizeof *s);
    if (!s) return HUB_ERROR;
    for (size_t i = 0; i < m->cap; i++)
      if (m->slot[i].repo_id) {
        size_t j = (size_t)m->slot[i].repo_id * 0x9E3779B97F4A7C15ULL & (cap - 1);
        while (s[j].repo_id)
          j = (j + 1) & (cap - 1);
        s[j] = m->slot[i];
      }
    free(m->slot);
    m->slot = s;
    m->cap = cap;
  }
  size_t j = (size_t)id * 0x9E3779B97F4A7C15ULL & (m->cap - 1);
  while (m->slot[j].repo_id && m->slot[j].repo_id != id)
    j = (j + 1) & (m->cap - 1);
  if (!m->slot[j].repo_id) {
    m->slot[j].repo_id = id;
    m->used++;
  }
  m->slot[j].n += n;
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcasecmp(s + a - b, suffix);
}

int index_is_query_file(int type, const char *path) {
  if (!path || !*path) return 0;
  if (ends_with(path, ".gguf")) return 1;
  if (type == HUB_REPO_MODEL) return !strcmp(path, "config.json");
  if (type == HUB_REPO_DATASET) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strcmp(path, "README.md") && strcmp(base, ".gitattributes");
  }
  return 0;
}

void index_download_count(const db_repo *repo, const char *path) {
  if (!repo || !repo->id || !index_is_query_file(repo->type, path)) return;
  pthread_mutex_lock(&g_mu);
  map_add(&g_pending, repo->id, 1);
  pthread_mutex_unlock(&g_mu);
}

int index_flush(void) {
  pthread_mutex_lock(&g_mu);
  count_map m = g_pending;
  memset(&g_pending, 0, sizeof g_pending);
  pthread_mutex_unlock(&g_mu);
  if (!m.used) {
    free(m.slot);
    return 0;
  }
  db_count *list = malloc(m.used * sizeof *list);
  size_t n = 0;
  for (size_t i = 0; list && i < m.cap; i++)
    if (m.slot[i].repo_id) list[n++] = m.slot[i];
  int rc = list ? db_downloads_add(list, n, today()) : hub_error_set(HUB_ERROR, "out of memory");
  if (rc) { /* keep the counts for the next round */
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; list && i < n; i++)
      map_add(&g_pending, list[i].repo_id, list[i].n);
    pthread_mutex_unlock(&g_mu);
  }
  free(list);
  free(m.slot);
  return rc;
}

static void daily_refresh(int64_t *last_day) {
  int64_t d = today();
  if (d == *last_day) return;
  int64_t stored = 0;
  size_t len = 0;
  if (!*last_day && !db_kv_get("popularity_day", &stored, sizeof stored, &len) &&
      len == sizeof stored && stored == d) {
    *last_day = d;
    return;
  }
  if (db_popularity_refresh(NULL, 0, d) == 0) {
    db_kv_set("popularity_day", &d, sizeof d);
    *last_day = d;
  } else {
    fprintf(stderr, "modelhub: popularity refresh: %s\n", hub_error_msg());
  }
}

static void *flusher(void *arg) {
  int64_t last_day = 0;
  pthread_mutex_lock(&g_mu);
  while (!g_stop) {
    pthread_mutex_unlock(&g_mu);
    daily_refresh(&last_day);
    if (index_flush()) fprintf(stderr, "modelhub: download counts: %s\n", hub_error_msg());
    if (auth_token_touch_flush()) fprintf(stderr, "modelhub: token use: %s\n", hub_error_msg());
    pthread_mutex_lock(&g_mu);
    if (g_stop) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&g_cv, &g_mu, &ts);
  }
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void index_stop(void) {
  pthread_mutex_lock(&g_mu);
  int started = g_started;
  g_stop = 1;
  pthread_cond_signal(&g_cv);
  pthread_mutex_unlock(&g_mu);
  if (started) pthread_join(g_thread, NULL);
  index_flush();
  free(g_pending.slot);
  memset(&g_pending, 0, sizeof g_pending);
  db_global_shutdown(); /* the connection this flush opened on the exiting thread */
}

int index_start(void) {
  pthread_mutex_lock(&g_mu);
  if (g_started) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  int rc = hub_thread_start("index-flusher", flusher, NULL, &g_thread);
  if (!rc) g_started = 1;
  pthread_mutex_unlock(&g_mu);
  if (rc) return hub_error_set(HUB_ERROR, "cannot start the download counter thread");
  atexit(index_stop);
  return 0;
}

/* ---- CLI ---------------------------------------------------------------------------- */

int index_main(int argc, char **argv) {
  int verbose = 0;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose = 1;
  if (!strcmp(argv[0], "reindex")) {
    if (index_reindex_all(verbose)) {
      fprintf(stderr, "modelhub reindex: %s\n", hub_error_msg());
      return 1;
    }
    return 0;
  }
  if (!strcmp(argv[0], "dev") && argc >= 3 && !strcmp(argv[1], "seed-catalog")) {
    char *end;
    long n = strtol(argv[2], &end, 10);
    if (*end || n <= 0) {
      fprintf(stderr, "usage: modelhub dev seed-catalog N\n");
      return 2;
    }
    if (index_seed_catalog(n, verbose)) {
      fprintf(stderr, "modelhub dev seed-catalog: %s\n", hub_error_msg());
      return 1;
    }
    return 0;
  }
  fprintf(stderr, "usage: modelhub reindex [-v]\n       modelhub dev seed-catalog N\n");
  return 2;
}
