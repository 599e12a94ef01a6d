#include "audit/audit.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/audit.h"
#include "db/db.h"
#include "util/buf.h"
#include "util/error.h"

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

int audit_init(void) {
  return db_audit_init();
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
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  hub_buf_dispose(&b);
}

static int head(int64_t *id, char hash[65]) {
  if (!db_audit_head(id, hash)) snprintf(hash, 65, "%s", GENESIS);
  return 0;
}

int audit_log(const audit_ctx *ctx, const char *action, const char *ns, const char *target,
              json_t *details) {
  const hub_identity *w = ctx ? ctx->who : NULL;
  const char *actor = ctx && ctx->actor_name  ? ctx->actor_name
                      : w && w->authenticated ? w->name
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
  int outer = db_in_transaction();
  const char *fail = getenv("MODELHUB_TEST_AUDIT_FAIL");
  if (fail && *fail && !strncmp(action, fail, strlen(fail))) { /* tests: a full/busy DB */
    rc = hub_error_set(HUB_ERROR, "audit append failed: MODELHUB_TEST_AUDIT_FAIL");
    goto out;
  }
  /* BEGIN IMMEDIATE serialises appenders across threads and processes: the chain has
   * exactly one head at any time. */
  if (!outer && db_begin_immediate()) goto out;
  int64_t last;
  char prev[65], hash[65];
  head(&last, prev);
  int64_t id = last + 1, ts = db_now_ms();
  entry_hash(prev, id, ts, actor, token, ip, action, ns ? ns : "", target ? target : "", det, hash);
  db_audit_row row = {id,  ts,   actor, token, ip, action, ns ? ns : "", target ? target : "",
                      det, prev, hash};
  rc = db_audit_insert(&row);
  /* The head is also kept outside the table, so deleting the newest rows shows. */
  if (!rc) {
    char headv[100];
    int n = snprintf(headv, sizeof headv, "%lld:%s", (long long)id, hash);
    rc = db_kv_set("audit_head", headv, (size_t)n);
  }
  if (outer) {
    if (rc) rc = hub_error_set(HUB_ERROR, "audit append failed: %s", db_errmsg());
    goto out;
  }
  if (!rc && db_commit() == 0) goto out;
  rc = hub_error_set(HUB_ERROR, "audit append failed: %s", db_errmsg());
  db_rollback();
out:
  json_decref(details);
  if (rc) fprintf(stderr, "audit: %s (%s %s)\n", hub_error_msg(), action, target ? target : "");
  free(det);
  return rc;
}

static json_t *row_json(const db_audit_row *r) {
  json_t *det = json_loads(r->details, 0, NULL);
  char when[32];
  int64_t ms = r->ts_ms;
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  char ts[40];
  snprintf(ts, sizeof ts, "%s.%03dZ", when, (int)(ms % 1000));
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id",
                   (json_int_t)r->id, "time", ts, "actor", r->actor, "tokenId", r->token, "ip",
                   r->ip, "action", r->action, "namespace", r->ns, "target", r->target, "details",
                   det ? det : json_object(), "prevHash", r->prev_hash, "hash", r->hash);
}

static int list_row(const db_audit_row *r, void *payload) {
  json_array_append_new((json_t *)payload, row_json(r));
  return 0;
}

int audit_list(const audit_query *q, json_t **out) {
  json_t *arr = json_array();
  int rc = db_audit_list(q->ns, q->action, q->actor, q->since_ms, q->until_ms, q->before_id,
                         q->limit, list_row, arr);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

typedef struct {
  char prev[65], hash[65];
  int64_t expect_id, *count;
} verify_state;

static int verify_row(const db_audit_row *r, void *payload) {
  verify_state *v = payload;
  int rc = 0;
  int64_t id = r->id;
  if (id != v->expect_id)
    rc = hub_error_set(HUB_ECONFLICT, "entry %lld is missing (found %lld next)",
                       (long long)v->expect_id, (long long)id);
  else if (strcmp(r->prev_hash, v->prev) != 0)
    rc = hub_error_set(HUB_ECONFLICT,
                       "entry %lld does not follow entry %lld (reordered or "
                       "replaced)",
                       (long long)id, (long long)id - 1);
  else {
    entry_hash(v->prev, id, r->ts_ms, r->actor, r->token, r->ip, r->action, r->ns, r->target,
               r->details, v->hash);
    if (strcmp(v->hash, r->hash) != 0)
      rc = hub_error_set(HUB_ECONFLICT, "entry %lld was modified (hash mismatch)", (long long)id);
  }
  snprintf(v->prev, sizeof v->prev, "%s", v->hash);
  v->expect_id++;
  (*v->count)++;
  return rc;
}

int audit_verify(int64_t *out_count) {
  *out_count = 0;
  verify_state v = {GENESIS, "", 1, out_count};
  int rc = db_audit_each(verify_row, &v);
  int64_t expect_id = v.expect_id;
  char *prev = v.prev;
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
