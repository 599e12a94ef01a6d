/* Facet counts (see db/facets.h). */
#include "db/facets.h"

#include "db/db.h"
#include "util/error.h"

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

int db_facet_top(int type, int facet, db_facet_cb cb, void *payload) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  if (facet < 0 || facet >= DB_FACET_N) return hub_error_set(HUB_EINVALID, "facets: bad facet");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, SQL[facet], -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "facets: %s", sqlite3_errmsg(db));
  sqlite3_bind_int(st, 1, type);
  while (sqlite3_step(st) == SQLITE_ROW)
    if (cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), payload)) break;
  sqlite3_finalize(st);
  return 0;
}

int db_facet_params(int type, int64_t out[6]) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, PARAMS_SQL, -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "facets: %s", sqlite3_errmsg(db));
  sqlite3_bind_int(st, 1, type);
  if (sqlite3_step(st) == SQLITE_ROW)
    for (int i = 0; i < 6; i++)
      out[i] = sqlite3_column_int64(st, i);
  sqlite3_finalize(st);
  return 0;
}
