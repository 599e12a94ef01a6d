/* Shared repo lookups for request routing (db_repo_get_shared, search.h): on PostgreSQL a
 * round trip per request is what caps a node, and the requests that matter most arrive
 * together for one repo (a fleet pulling one model).
 *
 * Cache: an answer is reused for db_write_fence_ms() after its query was sent. That is
 * safe because whoever commits a change waits as long before telling anyone about it
 * (db_write_fence, db.h): a request that starts after a change was acknowledged starts
 * at least that long after the commit, so any answer young enough for it was read from a
 * snapshot taken after the commit. Only durations on each node's monotonic clock are
 * compared, never clocks of two hosts. Misses are not cached.
 *
 * Flights: callers missing the same row (and the same stats viewer) while a query for it
 * is in flight wait for the next one, which all of them share: one query at a time per
 * key, every caller served by a query sent after it asked. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/engine.h"
#include "db/internal.h"
#include "db/search.h"
#include "db/stmt.h"
#include "util/error.h"
#include "util/time.h"

enum { F_QUEUED, F_RUNNING, F_DONE };

typedef struct flight {
  struct flight *next;
  int type, with_stats, admin;
  int64_t viewer;
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1];
  int state, refs;
  int rc;
  char msg[512];
  db_repo repo;
  db_repo_stats stats;
} flight;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static flight *g_flights;
static long g_queries, g_shared, g_cached; /* queries sent, callers that shared one, hits */

/* The cache: direct-mapped by a hash of the key, an entry per slot. */
#define CACHE_SLOTS 1024
typedef struct {
  int used;
  int type, with_stats, admin;
  int64_t viewer;
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1];
  int64_t sent_us; /* when the query that read it was sent */
  db_repo repo;
  db_repo_stats stats;
} cached;
static cached *g_cache; /* CACHE_SLOTS, allocated on first use */

static unsigned slot_of(int type, const char *ns, const char *name, int with_stats, int64_t viewer,
                        int admin) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *p = ns; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ '/') * 1099511628211ull;
  for (const char *p = name; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h ^=
      (uint64_t)type * 31 + (uint64_t)with_stats * 7 + (uint64_t)admin * 3 + (uint64_t)viewer * 131;
  h *= 1099511628211ull;
  return (unsigned)(h >> 32) % CACHE_SLOTS;
}

static int same_key(const flight *f, int type, const char *ns, const char *name, int with_stats,
                    int64_t viewer, int admin) {
  return f->type == type && f->with_stats == with_stats && f->viewer == viewer &&
         f->admin == admin && !strcmp(f->ns, ns) && !strcmp(f->name, name);
}

static flight *find(int state, int type, const char *ns, const char *name, int with_stats,
                    int64_t viewer, int admin) {
  for (flight *f = g_flights; f; f = f->next)
    if (f->state == state && same_key(f, type, ns, name, with_stats, viewer, admin)) return f;
  return NULL;
}

static void unlink_flight(flight *f) {
  for (flight **p = &g_flights; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      return;
    }
}

static int cached_key(const cached *c, int type, const char *ns, const char *name, int with_stats,
                      int64_t viewer, int admin) {
  return c->used && c->type == type && c->with_stats == with_stats && c->viewer == viewer &&
         c->admin == admin && !strcmp(c->ns, ns) && !strcmp(c->name, name);
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* The caller's copy of an answer (g_mu held). */
static int copy_answer(const db_repo *repo, const db_repo_stats *st, db_repo *out,
                       db_repo_stats *stats) {
  *out = *repo;
  if (stats) {
    *stats = *st;
    stats->meta_json = dup_or_null(st->meta_json);
    stats->tags_json = dup_or_null(st->tags_json);
    if ((st->meta_json && !stats->meta_json) || (st->tags_json && !stats->tags_json)) {
      db_repo_stats_dispose(stats);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
  }
  return 0;
}

static int answer(const flight *f, db_repo *out, db_repo_stats *stats) {
  if (f->rc) return hub_error_set(f->rc, "%s", f->msg);
  return copy_answer(&f->repo, &f->stats, out, stats);
}

/* Keep a flight's answer in the cache (g_mu held). */
static void remember(const flight *f, int64_t sent_us) {
  if (f->rc) return;
  if (!g_cache && !(g_cache = calloc(CACHE_SLOTS, sizeof *g_cache))) return;
  cached *c = &g_cache[slot_of(f->type, f->ns, f->name, f->with_stats, f->viewer, f->admin)];
  if (c->used && c->sent_us > sent_us &&
      cached_key(c, f->type, f->ns, f->name, f->with_stats, f->viewer, f->admin))
    return; /* a younger answer is there already */
  db_repo_stats st = f->stats;
  st.meta_json = dup_or_null(f->stats.meta_json);
  st.tags_json = dup_or_null(f->stats.tags_json);
  if ((f->stats.meta_json && !st.meta_json) || (f->stats.tags_json && !st.tags_json)) {
    db_repo_stats_dispose(&st);
    return;
  }
  if (c->used) db_repo_stats_dispose(&c->stats);
  c->used = 1;
  c->type = f->type, c->with_stats = f->with_stats, c->viewer = f->viewer, c->admin = f->admin;
  memcpy(c->ns, f->ns, sizeof c->ns);
  memcpy(c->name, f->name, sizeof c->name);
  c->sent_us = sent_us;
  c->repo = f->repo;
  c->stats = st;
}

static int lookup(int type, const char *ns, const char *name, int64_t viewer, int admin,
                  db_repo *out, db_repo_stats *stats) {
  return stats ? db__repo_get_with_stats(type, ns, name, viewer, admin, out, stats)
               : db_repo_get(type, ns, name, out);
}

int db_repo_get_shared(int type, const char *ns, const char *name, int64_t viewer, int admin,
                       db_repo *out, db_repo_stats *stats) {
  if (stats)
    memset(stats, 0, sizeof *stats);
  else
    viewer = admin = 0;
  /* SQLite answers in-process, and inside a begun transaction the caller's own snapshot
   * is the one to read. */
  if (db_engine() != DB_ENGINE_POSTGRES || db__pg_tx_begun())
    return lookup(type, ns, name, viewer, admin, out, stats);
  if (strlen(ns) > HUB_MAX_NAME || strlen(name) > HUB_MAX_NAME)
    return hub_error_set(HUB_EREPO, "Repository not found");
  int ws = stats != NULL, rc;
  int ttl_ms = db_write_fence_ms();
  pthread_mutex_lock(&g_mu);
  if (ttl_ms && g_cache) {
    cached *c = &g_cache[slot_of(type, ns, name, ws, viewer, admin)];
    if (cached_key(c, type, ns, name, ws, viewer, admin) &&
        hub_mono_us() - c->sent_us < (int64_t)ttl_ms * 1000) {
      g_cached++;
      rc = copy_answer(&c->repo, &c->stats, out, stats);
      pthread_mutex_unlock(&g_mu);
      return rc;
    }
  }
  flight *f = find(F_QUEUED, type, ns, name, ws, viewer, admin);
  if (f) { /* the next query for this row is not sent yet: it is ours too */
    f->refs++;
    g_shared++;
    while (f->state != F_DONE)
      pthread_cond_wait(&g_cv, &g_mu);
  } else {
    f = calloc(1, sizeof *f);
    if (!f) {
      pthread_mutex_unlock(&g_mu);
      return hub_error_set(HUB_ERROR, "out of memory");
    }
    f->type = type, f->with_stats = ws, f->viewer = viewer, f->admin = admin;
    snprintf(f->ns, sizeof f->ns, "%s", ns);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->state = F_QUEUED;
    f->refs = 1;
    f->next = g_flights;
    g_flights = f;
    /* One query per key at a time: wait for the one in flight (sent before some of our
     * sharers asked), then send ours. */
    while (find(F_RUNNING, type, ns, name, ws, viewer, admin))
      pthread_cond_wait(&g_cv, &g_mu);
    f->state = F_RUNNING;
    g_queries++;
    pthread_mutex_unlock(&g_mu);
    /* Before this thread's own read snapshot, if one is pending: the row is the router's. */
    db__pg_outside_snapshot(1);
    int64_t sent_us = hub_mono_us();
    db_repo row;
    db_repo_stats st;
    memset(&st, 0, sizeof st);
    int qrc = lookup(type, ns, name, viewer, admin, &row, ws ? &st : NULL);
    db__pg_outside_snapshot(0);
    pthread_mutex_lock(&g_mu);
    f->rc = qrc;
    if (qrc)
      snprintf(f->msg, sizeof f->msg, "%s", hub_error_msg());
    else
      f->repo = row, f->stats = st;
    f->state = F_DONE;
    if (ttl_ms) remember(f, sent_us);
    unlink_flight(f); /* later callers start a new one */
    pthread_cond_broadcast(&g_cv);
  }
  rc = answer(f, out, stats);
  if (--f->refs == 0) {
    db_repo_stats_dispose(&f->stats);
    free(f);
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

/* ---- token identities ------------------------------------------------------------- */

/* The same cache for a request's token (by its hash) and owner: identification is a
 * round trip before every authenticated request otherwise. No flights: tokens of a fleet
 * differ more than the repos it reads. */
#define TOKEN_SLOTS 256
typedef struct {
  int used;
  char hash[65];
  int64_t sent_us;
  db_token tok;
  db_account acc;
} cached_token;
static cached_token *g_tokens; /* TOKEN_SLOTS, allocated on first use */
static long g_token_hits;

static unsigned token_slot(const char *hash) {
  unsigned h = 2166136261u;
  for (const char *p = hash; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return h % TOKEN_SLOTS;
}

int db_token_identity_shared(const char *hash_hex, db_token *tok, db_account *acc) {
  int ttl_ms = db_write_fence_ms();
  if (!ttl_ms || db__pg_tx_begun() || strlen(hash_hex) != 64)
    return db_token_identity(hash_hex, tok, acc);
  unsigned slot = token_slot(hash_hex);
  pthread_mutex_lock(&g_mu);
  if (g_tokens && g_tokens[slot].used && !strcmp(g_tokens[slot].hash, hash_hex) &&
      hub_mono_us() - g_tokens[slot].sent_us < (int64_t)ttl_ms * 1000) {
    *tok = g_tokens[slot].tok;
    *acc = g_tokens[slot].acc;
    g_token_hits++;
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  pthread_mutex_unlock(&g_mu);
  db__pg_outside_snapshot(1);
  int64_t sent_us = hub_mono_us();
  int rc = db_token_identity(hash_hex, tok, acc);
  db__pg_outside_snapshot(0);
  if (rc) return rc;
  pthread_mutex_lock(&g_mu);
  if (!g_tokens) g_tokens = calloc(TOKEN_SLOTS, sizeof *g_tokens);
  if (g_tokens && !(g_tokens[slot].used && !strcmp(g_tokens[slot].hash, hash_hex) &&
                    g_tokens[slot].sent_us > sent_us)) {
    cached_token *c = &g_tokens[slot];
    c->used = 1;
    memcpy(c->hash, hash_hex, sizeof c->hash);
    c->sent_us = sent_us;
    c->tok = *tok;
    c->acc = *acc;
  }
  pthread_mutex_unlock(&g_mu);
  return 0;
}

void db_repo_shared_counts(long *queries, long *shared, long *cached_hits) {
  pthread_mutex_lock(&g_mu);
  *queries = g_queries;
  *shared = g_shared;
  *cached_hits = g_cached;
  pthread_mutex_unlock(&g_mu);
}

long db_token_cache_hits(void) {
  pthread_mutex_lock(&g_mu);
  long n = g_token_hits;
  pthread_mutex_unlock(&g_mu);
  return n;
}
