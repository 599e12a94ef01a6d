/* Facet counts for the search sidebar: tasks, libraries, licenses, languages and
 * parameter-size buckets, read-only SQL over discovery's tables (db/search.h, docs/search.md).
 *
 * Counts cover public repos only, so private repos never show up in them, and they are
 * computed over the whole type (not the current filters). On a large catalog they are cached
 * for WEB_FACET_TTL_MS: group-bys over a million repos cost far more than one page may. While
 * one thread refreshes an expired entry, others keep answering with the previous counts. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/facets.h"
#include "util/error.h"
#include "web/internal.h"

/* Counts that took longer than WEB_FACET_SLOW_MS to compute are reused for
 * WEB_FACET_TTL_MS; cheap ones (small hubs) are recomputed on every page, so they are exact. */
#define WEB_FACET_TTL_MS 300000 /* slow catalogs: counts may be five minutes old */
#define WEB_FACET_SLOW_MS 5

const web_param_bucket web_param_buckets[6] = {
    {"lt1b", "< 1B", -1, 999999999LL},
    {"1b-6b", "1B – 6B", 1000000000LL, 5999999999LL},
    {"6b-12b", "6B – 12B", 6000000000LL, 11999999999LL},
    {"12b-32b", "12B – 32B", 12000000000LL, 31999999999LL},
    {"32b-128b", "32B – 128B", 32000000000LL, 127999999999LL},
    {"gt128b", "> 128B", 128000000000LL, -1},
};

_Static_assert((int)WEB_FACET_N == (int)DB_FACET_N && (int)WEB_FACET_TASK == (int)DB_FACET_TASK &&
                   (int)WEB_FACET_LANGUAGE == (int)DB_FACET_LANGUAGE,
               "web facets follow db/facets.h");

typedef struct {
  web_facets *out;
  int f;
} facet_fill;

static int add_facet(const char *v, int64_t count, void *payload) {
  facet_fill *c = payload;
  web_facets *out = c->out;
  int f = c->f;
  if (out->n[f] >= WEB_FACET_MAX) return 1;
  if (!v || !*v || strlen(v) >= sizeof out->f[f][0].value) return 0;
  web_facet *x = &out->f[f][out->n[f]++];
  snprintf(x->value, sizeof x->value, "%s", v);
  x->count = count;
  return 0;
}

static int compute(int type, web_facets *out) {
  memset(out, 0, sizeof *out);
  for (int f = 0; f < WEB_FACET_N; f++) {
    facet_fill c = {out, f};
    int rc = db_facet_top(type, f, add_facet, &c);
    if (rc) return rc;
  }
  return db_facet_params(type, out->params);
}

static struct {
  web_facets v;
  int64_t at_ms, ttl_ms;
  int have, busy;
} g_cache[3];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

int web_facets_get(int type, web_facets *out) {
  if (type < 0 || type > 2) return hub_error_set(HUB_EINVALID, "bad repo type");
  int64_t now = db_now_ms();
  pthread_mutex_lock(&g_mu);
  if (g_cache[type].have &&
      (now - g_cache[type].at_ms < g_cache[type].ttl_ms || g_cache[type].busy)) {
    *out = g_cache[type].v;
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  /* One computation at a time: on a large catalog each is a full scan, and letting every
   * concurrent page view start its own multiplied memory and CPU without bound. Pages
   * asked for meanwhile show no counts. */
  if (g_cache[type].busy) {
    pthread_mutex_unlock(&g_mu);
    memset(out, 0, sizeof *out);
    return 0;
  }
  g_cache[type].busy = 1;
  pthread_mutex_unlock(&g_mu);
  int rc = compute(type, out);
  pthread_mutex_lock(&g_mu);
  g_cache[type].busy = 0;
  if (!rc) {
    g_cache[type].v = *out;
    g_cache[type].at_ms = now;
    g_cache[type].ttl_ms = db_now_ms() - now > WEB_FACET_SLOW_MS ? WEB_FACET_TTL_MS : 0;
    g_cache[type].have = 1;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}
