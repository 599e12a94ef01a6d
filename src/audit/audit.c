#include "audit/audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "util/buf.h"
#include "util/error.h"

static const char *const STEPS[] = {
    "CREATE TABLE audit_log(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL, token TEXT NOT NULL, ip TEXT NOT NULL, action TEXT NOT NULL,"
    " ns TEXT NOT NULL, target TEXT NOT NULL, details TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX audit_ns ON audit_log(ns, id);",
};

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

int audit_init(void) {
  return db_migrate_module("audit", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

/* Length-prefixed fields, so no two different entries hash the same text. */
static void entry_hash(const char *prev, int64_t id, int64_t ts, const char *actor,
                       const char *token, const char *ip, const char *action, const char *ns,
                       const char *target, const char *details, char out[65]) {
  hub_buf b = HUB_BUF_INIT;
  const char *f[] = {prev, actor, token, ip, action, ns, target, details};
  hub_buf_printf(&b, "%lld:%lld", (long long)id, (long long)ts);
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    hub_buf_printf(&b, "|%zu:%s", strlen(f[i]), f[i]);
  unsigned char md[32];
  EVP_Digest(b.ptr ? b.ptr : "", b.len, md, NULL, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  hub_buf_dispose(&b);
}

static int head(int64_t *id, char hash[65]) {
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(db_conn(), "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", -1,
                     &st, NULL);
  *id = 0;
  snprintf(hash, 65, "%s", GENESIS);
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    *id = sqlite3_column_int64(st, 0);
    snprintf(hash, 65, "%s", (const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  return 0;
}

int audit_log(const audit_ctx *ctx, const char *action, const char *ns, const char *target,
              json_t *details) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  const hub_identity *w = ctx ? ctx->who : NULL;
  const char *actor = ctx && ctx->actor_name ? ctx->actor_name
                      : w && w->authenticated  ? w->name
                                               : "-";
  const char *token = w && w->token_uid[0] ? w->token_uid : "-";
  const char *ip = ctx && ctx->ip ? ctx->ip : "cli";
  char *det = details ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
  if (!det) {
    json_decref(details);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  int rc = HUB_ERROR;
  /* Inside the caller's transaction (the ref spine's): the entry commits or rolls back
   * with the change it records. */
  int outer = !sqlite3_get_autocommit(db);
  const char *fail = getenv("MODELHUB_TEST_AUDIT_FAIL");
  if (fail && *fail && !strncmp(action, fail, strlen(fail))) { /* tests: a full/busy DB */
    rc = hub_error_set(HUB_ERROR, "audit append failed: MODELHUB_TEST_AUDIT_FAIL");
    goto out;
  }
  /* BEGIN IMMEDIATE serialises appenders across threads and processes: the chain has
   * exactly one head at any time. */
  if (!outer && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) goto out;
  int64_t last;
  char prev[65], hash[65];
  head(&last, prev);
  int64_t id = last + 1, ts = db_now_ms();
  entry_hash(prev, id, ts, actor, token, ip, action, ns ? ns : "", target ? target : "", det,
             hash);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO audit_log(id, ts_ms, actor, token, ip, action, ns, target,"
                         " details, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ts);
    sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ns ? ns : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, target ? target : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, det, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, prev, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) rc = 0;
  }
  sqlite3_finalize(st);
  /* The head is also kept outside the table, so deleting the newest rows shows. */
  if (!rc) {
    char headv[100];
    int n = snprintf(headv, sizeof headv, "%lld:%s", (long long)id, hash);
    rc = db_kv_set("audit_head", headv, (size_t)n);
  }
  if (outer) {
    if (rc) rc = hub_error_set(HUB_ERROR, "audit append failed: %s", sqlite3_errmsg(db));
    goto out;
  }
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) goto out;
  rc = hub_error_set(HUB_ERROR, "audit append failed: %s", sqlite3_errmsg(db));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
  json_decref(details);
  if (rc) fprintf(stderr, "audit: %s (%s %s)\n", hub_error_msg(), action, target ? target : "");
  free(det);
  return rc;
}

static json_t *row_json(sqlite3_stmt *st) {
  json_t *det = json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL);
  char when[32];
  int64_t ms = sqlite3_column_int64(st, 1);
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  char ts[40];
  snprintf(ts, sizeof ts, "%s.%03dZ", when, (int)(ms % 1000));
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id",
                   (json_int_t)sqlite3_column_int64(st, 0), "time", ts, "actor",
                   sqlite3_column_text(st, 2), "tokenId", sqlite3_column_text(st, 3), "ip",
                   sqlite3_column_text(st, 4), "action", sqlite3_column_text(st, 5), "namespace",
                   sqlite3_column_text(st, 6), "target", sqlite3_column_text(st, 7), "details",
                   det ? det : json_object(), "prevHash", sqlite3_column_text(st, 9), "hash",
                   sqlite3_column_text(st, 10));
}

int audit_list(const audit_query *q, json_t **out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db_conn(),
      "SELECT id, ts_ms, actor, token, ip, action, ns, target, details, prev_hash, hash "
      "FROM audit_log WHERE (?1 IS NULL OR ns=?1) AND (?2 IS NULL OR action LIKE ?2 || '%') "
      "AND (?3 IS NULL OR actor=?3) AND (?4=0 OR ts_ms>=?4) AND (?5=0 OR ts_ms<?5) "
      "AND (?6=0 OR id<?6) ORDER BY id DESC LIMIT ?7",
      -1, &st, NULL);
  if (rc != SQLITE_OK) return hub_error_set(HUB_ERROR, "audit query: %s", sqlite3_errmsg(db_conn()));
  if (q->ns) sqlite3_bind_text(st, 1, q->ns, -1, SQLITE_STATIC);
  if (q->action) sqlite3_bind_text(st, 2, q->action, -1, SQLITE_STATIC);
  if (q->actor) sqlite3_bind_text(st, 3, q->actor, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, q->since_ms);
  sqlite3_bind_int64(st, 5, q->until_ms);
  sqlite3_bind_int64(st, 6, q->before_id);
  sqlite3_bind_int(st, 7, q->limit > 0 ? q->limit : 100);
  json_t *arr = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) json_array_append_new(arr, row_json(st));
  sqlite3_finalize(st);
  *out = arr;
  return 0;
}

int audit_verify(int64_t *out_count) {
  sqlite3_stmt *st = NULL;
  *out_count = 0;
  if (sqlite3_prepare_v2(db_conn(),
                         "SELECT id, ts_ms, actor, token, ip, action, ns, target, details, "
                         "prev_hash, hash FROM audit_log ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "audit: %s", sqlite3_errmsg(db_conn()));
  char prev[65] = GENESIS, hash[65];
  int64_t expect_id = 1;
  int rc = 0;
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
#define T(i) ((const char *)sqlite3_column_text(st, i))
    if (id != expect_id)
      rc = hub_error_set(HUB_ECONFLICT, "entry %lld is missing (found %lld next)",
                         (long long)expect_id, (long long)id);
    else if (strcmp(T(9), prev) != 0)
      rc = hub_error_set(HUB_ECONFLICT, "entry %lld does not follow entry %lld (reordered or "
                                        "replaced)", (long long)id, (long long)id - 1);
    else {
      entry_hash(prev, id, sqlite3_column_int64(st, 1), T(2), T(3), T(4), T(5), T(6), T(7), T(8),
                 hash);
      if (strcmp(hash, T(10)) != 0)
        rc = hub_error_set(HUB_ECONFLICT, "entry %lld was modified (hash mismatch)",
                           (long long)id);
    }
#undef T
    snprintf(prev, sizeof prev, "%s", hash);
    expect_id++;
    (*out_count)++;
  }
  sqlite3_finalize(st);
  if (rc) return rc;
  char headv[100] = "";
  size_t n = 0;
  if (db_kv_get("audit_head", headv, sizeof headv - 1, &n) == 0) {
    headv[n] = 0;
    char want[100];
    snprintf(want, sizeof want, "%lld:%s", (long long)(expect_id - 1), prev);
    if (strcmp(headv, want) != 0)
      return hub_error_set(HUB_ECONFLICT, "the newest entries were removed (head is %s)", headv);
  } else if (*out_count) {
    return hub_error_set(HUB_ECONFLICT, "the audit head record is missing");
  }
  hub_error_clear();
  return 0;
}
