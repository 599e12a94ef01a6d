/* Governance's tables (see db/gov.h). */
#include "db/gov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "gov"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: pull requests (and, later, plain discussions), stage history, protections */
    "CREATE TABLE gov_discussions("
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " num INTEGER NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,"
    " is_pr INTEGER NOT NULL, author_id INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, target_branch TEXT NOT NULL DEFAULT '',"
    " merged_commit TEXT NOT NULL DEFAULT '', merged_by TEXT NOT NULL DEFAULT '',"
    " merged_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(repo_id, num));"
    "CREATE TABLE gov_stage_history("
    " id INTEGER PRIMARY KEY,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " stage TEXT NOT NULL, commit_sha TEXT NOT NULL, prev_sha TEXT NOT NULL,"
    " actor TEXT NOT NULL, reason TEXT NOT NULL, ts_ms INTEGER NOT NULL);"
    "CREATE INDEX gov_stage_history_repo ON gov_stage_history(repo_id, stage, id);"
    "CREATE TABLE gov_protections("
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL, pattern TEXT NOT NULL, no_force_push INTEGER NOT NULL,"
    " no_deletion INTEGER NOT NULL, require_pr INTEGER NOT NULL, PRIMARY KEY(repo_id, pos));"
    "CREATE TABLE gov_settings("
    " repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    " immutable_tags INTEGER NOT NULL DEFAULT 0,"
    " stage_approver INTEGER NOT NULL DEFAULT 4);",
};

int db_gov_init(void) {
  return db_migrate_module("gov", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

int db_gov_rules(int64_t repo_id, db_gov_rule *out, size_t max, size_t *out_n) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = 0, s;
  *out_n = 0;
  if (!db) return HUB_ERROR;
  if (sqlite3_prepare_v2(db,
                         "SELECT pattern, no_force_push, no_deletion, require_pr FROM "
                         "gov_protections WHERE repo_id=? ORDER BY pos LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "protections: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, (int)max);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    db_gov_rule *g = &out[(*out_n)++];
    snprintf(g->pattern, sizeof g->pattern, "%s", (const char *)sqlite3_column_text(st, 0));
    g->no_force_push = sqlite3_column_int(st, 1);
    g->no_deletion = sqlite3_column_int(st, 2);
    g->require_pr = sqlite3_column_int(st, 3);
  }
  if (s != SQLITE_DONE) rc = hub_error_set(HUB_ERROR, "protections: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

int db_gov_settings(int64_t repo_id, int *immutable_tags, int *stage_approver) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  if (sqlite3_prepare_v2(db,
                         "SELECT immutable_tags, stage_approver FROM gov_settings WHERE repo_id=?",
                         -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "repo settings: %s", sqlite3_errmsg(db));
  sqlite3_bind_int64(st, 1, repo_id);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    *immutable_tags = sqlite3_column_int(st, 0);
    *stage_approver = sqlite3_column_int(st, 1);
  }
  sqlite3_finalize(st);
  if (s != SQLITE_ROW && s != SQLITE_DONE)
    return hub_error_set(HUB_ERROR, "repo settings: %s", sqlite3_errmsg(db));
  return 0;
}

int db_gov_protections_save(int64_t repo_id, int replace_rules, const db_gov_rule *rules, size_t n,
                            int immutable_tags, int stage_approver) {
  sqlite3 *db = db_conn();
  int rc = 0;
  if (!db) return HUB_ERROR;
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "protections: %s", sqlite3_errmsg(db));
  sqlite3_stmt *st = NULL;
  if (replace_rules) {
    if (sqlite3_prepare_v2(db, "DELETE FROM gov_protections WHERE repo_id=?", -1, &st, NULL) ||
        sqlite3_bind_int64(st, 1, repo_id) || sqlite3_step(st) != SQLITE_DONE)
      rc = HUB_ERROR;
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; i < n; i++) {
      if (rc) break;
      if (sqlite3_prepare_v2(db, "INSERT INTO gov_protections VALUES(?,?,?,?,?,?)", -1, &st,
                             NULL) != SQLITE_OK) {
        rc = HUB_ERROR;
        break;
      }
      sqlite3_bind_int64(st, 1, repo_id);
      sqlite3_bind_int(st, 2, (int)i);
      sqlite3_bind_text(st, 3, rules[i].pattern, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(st, 4, rules[i].no_force_push);
      sqlite3_bind_int(st, 5, rules[i].no_deletion);
      sqlite3_bind_int(st, 6, rules[i].require_pr);
      if (sqlite3_step(st) != SQLITE_DONE) rc = HUB_ERROR;
      sqlite3_finalize(st);
      st = NULL;
    }
  }
  if (!rc) {
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO gov_settings(repo_id, immutable_tags, stage_approver) "
                           "VALUES(?,?,?) ON CONFLICT(repo_id) DO UPDATE SET "
                           "immutable_tags=excluded.immutable_tags, "
                           "stage_approver=excluded.stage_approver",
                           -1, &st, NULL) != SQLITE_OK)
      rc = HUB_ERROR;
    else {
      sqlite3_bind_int64(st, 1, repo_id);
      sqlite3_bind_int(st, 2, immutable_tags);
      sqlite3_bind_int(st, 3, stage_approver);
      if (sqlite3_step(st) != SQLITE_DONE) rc = HUB_ERROR;
    }
    sqlite3_finalize(st);
  }
  if (rc) {
    rc = hub_error_set(HUB_ERROR, "protections: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    rc = hub_error_set(HUB_ERROR, "protections: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return 0;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const unsigned char *s = sqlite3_column_text(st, col);
  snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

int db_gov_pr_opened(int64_t repo_id, int num, const char *title, int64_t author_id,
                     const char *target_branch, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (!db || sqlite3_prepare_v2(db,
                                "INSERT INTO gov_discussions(repo_id, num, title, status, is_pr,"
                                " author_id, created_ms, updated_ms, target_branch)"
                                " VALUES(?,?,?,'open',1,?,?,?,?) ON CONFLICT DO NOTHING",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "discussions: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  sqlite3_bind_text(st, 3, title, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, author_id);
  sqlite3_bind_int64(st, 5, now);
  sqlite3_bind_int64(st, 6, now);
  sqlite3_bind_text(st, 7, target_branch, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

#define DISC_COLS                                                                                  \
  "d.num, d.title, d.status, d.is_pr, d.author_id, COALESCE(a.name, 'deleted'), d.created_ms,"     \
  " d.target_branch, d.merged_commit, d.merged_by, d.merged_ms"

static int disc_fill(db_gov_discussion *d, sqlite3_stmt *st) {
  memset(d, 0, sizeof *d);
  d->num = sqlite3_column_int(st, 0);
  d->title = strdup((const char *)sqlite3_column_text(st, 1));
  copy_col(d->status, sizeof d->status, st, 2);
  d->is_pr = sqlite3_column_int(st, 3);
  d->author_id = sqlite3_column_int64(st, 4);
  copy_col(d->author, sizeof d->author, st, 5);
  d->created_ms = sqlite3_column_int64(st, 6);
  copy_col(d->target, sizeof d->target, st, 7);
  copy_col(d->merged_commit, sizeof d->merged_commit, st, 8);
  copy_col(d->merged_by, sizeof d->merged_by, st, 9);
  d->merged_ms = sqlite3_column_int64(st, 10);
  return d->title ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

int db_gov_discussion_get(int64_t repo_id, int num, db_gov_discussion *out) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc;
  if (!db || sqlite3_prepare_v2(db,
                                "SELECT " DISC_COLS " FROM gov_discussions d LEFT JOIN accounts a"
                                " ON a.id = d.author_id WHERE d.repo_id=? AND d.num=?",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "discussions: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, num);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW)
    rc = disc_fill(out, st);
  else if (s == SQLITE_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Discussion #%d not found", num);
  else
    rc = hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

#define LIST_WHERE                                                                                 \
  " FROM gov_discussions d LEFT JOIN accounts a ON a.id = d.author_id WHERE d.repo_id=?1"          \
  " AND (?2 < 0 OR d.is_pr = ?2) AND (?3 = 'all' OR d.status = ?3"                                 \
  " OR (?3 = 'open' AND d.status = 'draft') OR (?3 = 'closed' AND d.status = 'merged'))"           \
  " AND (?4 IS NULL OR a.name = ?4 COLLATE NOCASE)"

static void bind_filters(sqlite3_stmt *st, int64_t repo_id, int is_pr, const char *status,
                         const char *author) {
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, is_pr);
  sqlite3_bind_text(st, 3, status, -1, SQLITE_TRANSIENT);
  if (author)
    sqlite3_bind_text(st, 4, author, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 4);
}

int db_gov_discussion_count(int64_t repo_id, int is_pr, const char *status, const char *author,
                            int64_t *out) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = 0;
  *out = 0;
  if (!db) return HUB_ERROR;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*)" LIST_WHERE, -1, &st, NULL) != SQLITE_OK) goto sql;
  bind_filters(st, repo_id, is_pr, status, author);
  if (sqlite3_step(st) != SQLITE_ROW) goto sql;
  *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return 0;
sql:
  rc = hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

int db_gov_discussion_list(int64_t repo_id, int is_pr, const char *status, const char *author,
                           int limit, int64_t offset, db_gov_discussion_cb cb, void *payload) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (!db) return HUB_ERROR;
  if (sqlite3_prepare_v2(db,
                         "SELECT " DISC_COLS LIST_WHERE " ORDER BY d.num DESC LIMIT ?5"
                         " OFFSET ?6",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
  }
  bind_filters(st, repo_id, is_pr, status, author);
  sqlite3_bind_int(st, 5, limit);
  sqlite3_bind_int64(st, 6, offset);
  while (sqlite3_step(st) == SQLITE_ROW) {
    db_gov_discussion d;
    if ((rc = disc_fill(&d, st))) break;
    rc = cb(&d, payload);
    free(d.title);
    if (rc) break;
  }
  sqlite3_finalize(st);
  return rc;
}

int db_gov_mark_merged(int64_t repo_id, int num, const char *sha, const char *by, int64_t now,
                       int *changed) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db || sqlite3_prepare_v2(db,
                                "UPDATE gov_discussions SET status='merged', merged_commit=?,"
                                " merged_by=?, merged_ms=?, updated_ms=? WHERE repo_id=? AND num=?"
                                " AND status != 'merged'",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "discussions: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, by, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, now);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, repo_id);
  sqlite3_bind_int(st, 6, num);
  int s = sqlite3_step(st);
  *changed = sqlite3_changes(db);
  sqlite3_finalize(st);
  if (s != SQLITE_DONE) return hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
  return 0;
}

int db_gov_set_status(int64_t repo_id, int num, const char *status, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db || sqlite3_prepare_v2(db,
                                "UPDATE gov_discussions SET status=?, updated_ms=? WHERE "
                                "repo_id=? AND num=? AND status != 'merged'",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "discussions: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, repo_id);
  sqlite3_bind_int(st, 4, num);
  int s = sqlite3_step(st);
  sqlite3_finalize(st);
  if (s != SQLITE_DONE) return hub_error_set(HUB_ERROR, "discussions: %s", sqlite3_errmsg(db));
  return 0;
}

int db_gov_stage_record(int64_t repo_id, const char *stage, const char *to, const char *from,
                        const char *actor, const char *reason, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (!db || sqlite3_prepare_v2(db,
                                "INSERT INTO gov_stage_history(repo_id, stage, commit_sha, "
                                "prev_sha, actor, reason, ts_ms) VALUES(?,?,?,?,?,?,?)",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "stage history: %s", db ? sqlite3_errmsg(db) : "no db");
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, stage, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, from, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, actor, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, reason, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 7, now);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = hub_error_set(HUB_ERROR, "stage history: %s", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

int db_gov_stage_history(int64_t repo_id, const char *stage, int limit, db_gov_stage_cb cb,
                         void *payload) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db || sqlite3_prepare_v2(db,
                                "SELECT commit_sha, prev_sha, actor, reason, ts_ms FROM "
                                "gov_stage_history WHERE repo_id=? AND stage=? ORDER BY id DESC "
                                "LIMIT ?",
                                -1, &st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "stage history: %s", db ? sqlite3_errmsg(db) : "no database");
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, stage, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 3, limit);
  while (sqlite3_step(st) == SQLITE_ROW)
    cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
       (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
       sqlite3_column_int64(st, 4), payload);
  sqlite3_finalize(st);
  return 0;
}
