/* Facet counts for the search sidebar: tasks, libraries, licenses, languages and
 * parameter-size buckets, read-only SQL over discovery's tables (db/search.h, docs/search.md).
 *
 * Counts cover public repos only, so private repos never show up in them, and they are
 * computed over the whole type (not the current filters). On a large catalog they are cached
 * for WEB_FACET_TTL_MS: group-bys over a million repos cost far more than one page may. While
 * one thread refreshes an expired entry, others keep answering with the previous counts. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"
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

static const char *const SQL[WEB_FACET_N] = {
    "SELECT m.pipeline_tag, count(*) FROM repo_meta m JOIN repos r ON r.id=m.repo_id"
    " WHERE r.type=? AND r.private=0 AND m.pipeline_tag<>'' GROUP BY 1 ORDER BY 2 DESC, 1"
    " LIMIT 16",
    "SELECT m.library_name, count(*) FROM repo_meta m JOIN repos r ON r.id=m.repo_id"
    " WHERE r.type=? AND r.private=0 AND m.library_name<>'' GROUP BY 1 ORDER BY 2 DESC, 1"
    " LIMIT 16",
    "SELECT substr(t.tag, 9), count(*) FROM repo_tags t JOIN repos r ON r.id=t.repo_id"
    " WHERE t.tag>='license:' AND t.tag<'license;' AND r.type=? AND r.private=0"
    " GROUP BY t.tag ORDER BY 2 DESC, 1 LIMIT 16",
    "SELECT j.value, count(*) FROM repo_meta m JOIN repos r ON r.id=m.repo_id,"
    " json_each(CASE WHEN json_valid(m.meta) THEN m.meta ELSE '{}' END, '$.languages') j"
    " WHERE r.type=? AND r.private=0 AND j.type='text' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 16",
};

static const char PARAMS_SQL[] =
    "SELECT sum(m.num_params>0 AND m.num_params<1000000000),"
    " sum(m.num_params>=1000000000 AND m.num_params<6000000000),"
    " sum(m.num_params>=6000000000 AND m.num_params<12000000000),"
    " sum(m.num_params>=12000000000 AND m.num_params<32000000000),"
    " sum(m.num_params>=32000000000 AND m.num_params<128000000000),"
    " sum(m.num_params>=128000000000)"
    " FROM repo_meta m JOIN repos r ON r.id=m.repo_id WHERE r.type=? AND r.private=0";

static int compute(int type, web_facets *out) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  memset(out, 0, sizeof *out);
  for (int f = 0; f < WEB_FACET_N; f++) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, SQL[f], -1, &st, NULL) != SQLITE_OK)
      return hub_error_set(HUB_ERROR, "facets: %s", sqlite3_errmsg(db));
    sqlite3_bind_int(st, 1, type);
    while (sqlite3_step(st) == SQLITE_ROW && out->n[f] < WEB_FACET_MAX) {
      const char *v = (const char *)sqlite3_column_text(st, 0);
      if (!v || !*v || strlen(v) >= sizeof out->f[f][0].value) continue;
      web_facet *x = &out->f[f][out->n[f]++];
      snprintf(x->value, sizeof x->value, "%s", v);
      x->count = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, PARAMS_SQL, -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "facets: %s", sqlite3_errmsg(db));
  sqlite3_bind_int(st, 1, type);
  if (sqlite3_step(st) == SQLITE_ROW)
    for (int i = 0; i < 6; i++)
      out->params[i] = sqlite3_column_int64(st, i);
  sqlite3_finalize(st);
  return 0;
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
