/* Facet counts (see db/facets.h). */
#include "db/facets.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Tasks, libraries and licenses are group-bys; languages are counted in C (language_top). */
static const char *const SQL[DB_FACET_N] = {
    "SELECT m.pipeline_tag, count(*) FROM repo_meta m JOIN repos r ON r.id=m.repo_id"
    " WHERE r.type=? AND r.private=0 AND m.pipeline_tag<>'' GROUP BY 1 ORDER BY 2 DESC, 1"
    " LIMIT 16",
    "SELECT m.library_name, count(*) FROM repo_meta m JOIN repos r ON r.id=m.repo_id"
    " WHERE r.type=? AND r.private=0 AND m.library_name<>'' GROUP BY 1 ORDER BY 2 DESC, 1"
    " LIMIT 16",
    "SELECT substr(t.tag, 9), count(*) FROM repo_tags t JOIN repos r ON r.id=t.repo_id"
    " WHERE t.tag>='license:' AND t.tag<'license;' AND r.type=? AND r.private=0"
    " GROUP BY t.tag ORDER BY 2 DESC, 1 LIMIT 16",
    NULL,
};

static const char PARAMS_SQL[] =
    "SELECT sum(CASE WHEN m.num_params>0 AND m.num_params<1000000000 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN m.num_params>=1000000000 AND m.num_params<6000000000 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN m.num_params>=6000000000 AND m.num_params<12000000000 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN m.num_params>=12000000000 AND m.num_params<32000000000 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN m.num_params>=32000000000 AND m.num_params<128000000000 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN m.num_params>=128000000000 THEN 1 ELSE 0 END)"
    " FROM repo_meta m JOIN repos r ON r.id=m.repo_id WHERE r.type=? AND r.private=0";

/* Public repos' metadata, a page at a time in id order (keyset): PostgreSQL reads a whole
 * result into memory, and the metadata JSON is the largest column. Only rows that mention
 * "languages" (LIKE, case-insensitive on SQLite: the JSON is checked in C anyway). */
#define LANG_PAGE 256
static const char LANG_SQL[] =
    "SELECT m.repo_id, m.meta FROM repo_meta m JOIN repos r ON r.id=m.repo_id"
    " WHERE r.type=?1 AND r.private=0 AND m.repo_id>?2 AND m.meta LIKE '%\"languages\"%'"
    " ORDER BY m.repo_id LIMIT ?3";

static int count_lang(json_t *counts, const json_t *v) {
  if (!json_is_string(v)) return 0;
  const char *s = json_string_value(v);
  json_t *c = json_object_get(counts, s);
  if (c) return json_integer_set(c, json_integer_value(c) + 1);
  return json_object_set_new(counts, s, json_integer(1));
}

/* The strings of meta's "languages" (derive.c writes an array of them; a lone string counts
 * as itself, as SQLite's json_each counted it). Unparsable metadata counts nothing. */
static int count_meta(json_t *counts, const char *text) {
  if (!text || !strstr(text, "\"languages\"")) return 0;
  json_t *meta = json_loads(text, 0, NULL);
  json_t *langs = json_object_get(meta, "languages");
  int rc = 0;
  if (json_is_array(langs)) {
    size_t i;
    json_t *v;
    json_array_foreach(langs, i, v) {
      if ((rc = count_lang(counts, v))) break;
    }
  } else {
    rc = count_lang(counts, langs);
  }
  json_decref(meta);
  return rc ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

typedef struct {
  const char *value;
  int64_t count;
} lang_count;

/* Most frequent first, then by value (bytewise, like SQLite's ORDER BY on text). */
static int by_count(const void *pa, const void *pb) {
  const lang_count *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return strcmp(a->value, b->value);
}

static int language_top(int type, db_facet_cb cb, void *payload) {
  json_t *counts = json_object();
  lang_count *v = NULL;
  int rc = counts ? 0 : hub_error_set(HUB_ERROR, "out of memory");
  for (int64_t after = 0, n = LANG_PAGE; !rc && n == LANG_PAGE;) {
    db_stmt *st = db_prep(LANG_SQL);
    if (!st) {
      rc = HUB_ERROR;
      break;
    }
    db_bind_int64(st, 1, type);
    db_bind_int64(st, 2, after);
    db_bind_int64(st, 3, LANG_PAGE);
    int s = 0;
    n = 0;
    while (!rc && (s = db_step(st)) == DB_ROW) {
      n++;
      after = db_col_int64(st, 0);
      rc = count_meta(counts, db_col_text(st, 1));
    }
    db_reset(st);
    if (!rc && s < 0) rc = s;
  }
  size_t k = rc ? 0 : json_object_size(counts), i = 0;
  if (k && !(v = malloc(k * sizeof *v))) rc = hub_error_set(HUB_ERROR, "out of memory");
  if (!rc && k) {
    const char *key;
    json_t *c;
    json_object_foreach(counts, key, c) {
      v[i].value = key;
      v[i++].count = json_integer_value(c);
    }
    qsort(v, k, sizeof *v, by_count);
    for (i = 0; i < k && i < 16; i++)
      if (cb(v[i].value, v[i].count, payload)) break;
  }
  free(v);
  json_decref(counts);
  return rc;
}

int db_facet_top(int type, int facet, db_facet_cb cb, void *payload) {
  if (facet < 0 || facet >= DB_FACET_N) return hub_error_set(HUB_EINVALID, "facets: bad facet");
  if (facet == DB_FACET_LANGUAGE) return language_top(type, cb, payload);
  db_stmt *st = db_prep(SQL[facet]);
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, type);
  int s;
  while ((s = db_step(st)) == DB_ROW)
    if (cb(db_col_text(st, 0), db_col_int64(st, 1), payload)) break;
  db_reset(st);
  return s < 0 ? s : 0;
}

int db_facet_params(int type, int64_t out[6]) {
  db_stmt *st = db_prep(PARAMS_SQL);
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, type);
  int s = db_step(st);
  if (s == DB_ROW)
    for (int i = 0; i < 6; i++)
      out[i] = db_col_int64(st, i);
  db_reset(st);
  return s < 0 ? s : 0;
}
