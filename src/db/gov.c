/* Governance's tables (see db/gov.h). */
#include "db/gov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
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

/* The error a statement left (rc: its negative code, or 0 for a NULL db_prep), prefixed with
 * what failed; the code is kept (HUB_EUNAVAILABLE for a database that is down). */
static int sql_fail(int rc, const char *what) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  if (rc >= 0) rc = hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  return hub_error_set(rc, "%s: %s", what, msg);
}

int db_gov_rules(int64_t repo_id, db_gov_rule *out, size_t max, size_t *out_n) {
  int rc = 0, s;
  *out_n = 0;
  db_stmt *st = db_prep("SELECT pattern, no_force_push, no_deletion, require_pr FROM "
                        "gov_protections WHERE repo_id=? ORDER BY pos LIMIT ?");
  if (!st) return sql_fail(0, "protections");
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, (int64_t)max);
  while ((s = db_step(st)) == DB_ROW) {
    db_gov_rule *g = &out[(*out_n)++];
    db_col_copy(g->pattern, sizeof g->pattern, st, 0);
    g->no_force_push = (int)db_col_int64(st, 1);
    g->no_deletion = (int)db_col_int64(st, 2);
    g->require_pr = (int)db_col_int64(st, 3);
  }
  if (s != DB_DONE) rc = sql_fail(s, "protections");
  db_reset(st);
  return rc;
}

int db_gov_settings(int64_t repo_id, int *immutable_tags, int *stage_approver) {
  db_stmt *st = db_prep("SELECT immutable_tags, stage_approver FROM gov_settings WHERE repo_id=?");
  if (!st) return sql_fail(0, "repo settings");
  db_bind_int64(st, 1, repo_id);
  int s = db_step(st);
  if (s == DB_ROW) {
    *immutable_tags = (int)db_col_int64(st, 0);
    *stage_approver = (int)db_col_int64(st, 1);
  }
  db_reset(st);
  if (s != DB_ROW && s != DB_DONE) return sql_fail(s, "repo settings");
  return 0;
}

int db_gov_protections_save(int64_t repo_id, int replace_rules, const db_gov_rule *rules, size_t n,
                            int immutable_tags, int stage_approver) {
  int rc = db_begin_immediate();
  if (rc) return rc == HUB_ERROR ? hub_error_set(HUB_ERROR, "protections: %s", db_errmsg()) : rc;
  db_stmt *st = NULL;
  if (replace_rules) {
    if (!(st = db_prep("DELETE FROM gov_protections WHERE repo_id=?")))
      rc = sql_fail(0, "protections");
    else {
      db_bind_int64(st, 1, repo_id);
      if ((rc = db_step_done(st))) rc = sql_fail(rc, "protections");
    }
    for (size_t i = 0; i < n; i++) {
      if (rc) break;
      if (!(st = db_prep("INSERT INTO gov_protections VALUES(?,?,?,?,?,?)"))) {
        rc = sql_fail(0, "protections");
        break;
      }
      db_bind_int64(st, 1, repo_id);
      db_bind_int64(st, 2, (int64_t)i);
      db_bind_text(st, 3, rules[i].pattern, -1);
      db_bind_int64(st, 4, rules[i].no_force_push);
      db_bind_int64(st, 5, rules[i].no_deletion);
      db_bind_int64(st, 6, rules[i].require_pr);
      if ((rc = db_step_done(st))) rc = sql_fail(rc, "protections");
    }
  }
  if (!rc) {
    if (!(st = db_prep("INSERT INTO gov_settings(repo_id, immutable_tags, stage_approver) "
                       "VALUES(?,?,?) ON CONFLICT(repo_id) DO UPDATE SET "
                       "immutable_tags=excluded.immutable_tags, "
                       "stage_approver=excluded.stage_approver")))
      rc = sql_fail(0, "protections");
    else {
      db_bind_int64(st, 1, repo_id);
      db_bind_int64(st, 2, immutable_tags);
      db_bind_int64(st, 3, stage_approver);
      if ((rc = db_step_done(st))) rc = sql_fail(rc, "protections");
    }
  }
  if (rc) {
    db_rollback();
    return rc;
  }
  if ((rc = db_commit())) {
    rc = rc == HUB_ERROR ? hub_error_set(HUB_ERROR, "protections: %s", db_errmsg()) : rc;
    db_rollback();
    return rc;
  }
  return 0;
}

int db_gov_pr_opened(int64_t repo_id, int num, const char *title, int64_t author_id,
                     const char *target_branch, int64_t now) {
  int rc;
  db_stmt *st = db_prep("INSERT INTO gov_discussions(repo_id, num, title, status, is_pr,"
                        " author_id, created_ms, updated_ms, target_branch)"
                        " VALUES(?,?,?,'open',1,?,?,?,?) ON CONFLICT DO NOTHING");
  if (!st) return sql_fail(0, "discussions");
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  db_bind_text(st, 3, title, -1);
  db_bind_int64(st, 4, author_id);
  db_bind_int64(st, 5, now);
  db_bind_int64(st, 6, now);
  db_bind_text(st, 7, target_branch, -1);
  if ((rc = db_step_done(st))) rc = sql_fail(rc, "discussions");
  return rc;
}

#define DISC_COLS                                                                                  \
  "d.num, d.title, d.status, d.is_pr, d.author_id, COALESCE(a.name, 'deleted'), d.created_ms,"     \
  " d.target_branch, d.merged_commit, d.merged_by, d.merged_ms"

static int disc_fill(db_gov_discussion *d, db_stmt *st) {
  memset(d, 0, sizeof *d);
  d->num = (int)db_col_int64(st, 0);
  const char *title = db_col_text(st, 1);
  d->title = strdup(title ? title : "");
  db_col_copy(d->status, sizeof d->status, st, 2);
  d->is_pr = (int)db_col_int64(st, 3);
  d->author_id = db_col_int64(st, 4);
  db_col_copy(d->author, sizeof d->author, st, 5);
  d->created_ms = db_col_int64(st, 6);
  db_col_copy(d->target, sizeof d->target, st, 7);
  db_col_copy(d->merged_commit, sizeof d->merged_commit, st, 8);
  db_col_copy(d->merged_by, sizeof d->merged_by, st, 9);
  d->merged_ms = db_col_int64(st, 10);
  return d->title ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

int db_gov_discussion_get(int64_t repo_id, int num, db_gov_discussion *out) {
  int rc;
  db_stmt *st = db_prep("SELECT " DISC_COLS " FROM gov_discussions d LEFT JOIN accounts a"
                        " ON a.id = d.author_id WHERE d.repo_id=? AND d.num=?");
  if (!st) return sql_fail(0, "discussions");
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, num);
  int s = db_step(st);
  if (s == DB_ROW)
    rc = disc_fill(out, st);
  else if (s == DB_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Discussion #%d not found", num);
  else
    rc = sql_fail(s, "discussions");
  db_reset(st);
  return rc;
}

/* ?4 is cast at its first use: PostgreSQL types a parameter there, and a text parameter is
 * bound untyped (IS NULL alone gives it no type). */
#define LIST_WHERE                                                                                 \
  " FROM gov_discussions d LEFT JOIN accounts a ON a.id = d.author_id WHERE d.repo_id=?1"          \
  " AND (?2 < 0 OR d.is_pr = ?2) AND (?3 = 'all' OR d.status = ?3"                                 \
  " OR (?3 = 'open' AND d.status = 'draft') OR (?3 = 'closed' AND d.status = 'merged'))"           \
  " AND (CAST(?4 AS TEXT) IS NULL OR a.name = ?4 COLLATE NOCASE)"

static void bind_filters(db_stmt *st, int64_t repo_id, int is_pr, const char *status,
                         const char *author) {
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, is_pr);
  db_bind_text(st, 3, status, -1);
  if (author)
    db_bind_text(st, 4, author, -1);
  else
    db_bind_null(st, 4);
}

int db_gov_discussion_count(int64_t repo_id, int is_pr, const char *status, const char *author,
                            int64_t *out) {
  *out = 0;
  db_stmt *st = db_prep("SELECT COUNT(*)" LIST_WHERE);
  if (!st) return sql_fail(0, "discussions");
  bind_filters(st, repo_id, is_pr, status, author);
  int s = db_step(st);
  if (s == DB_ROW) *out = db_col_int64(st, 0);
  db_reset(st);
  return s == DB_ROW ? 0 : sql_fail(s, "discussions");
}

int db_gov_discussion_list(int64_t repo_id, int is_pr, const char *status, const char *author,
                           int limit, int64_t offset, db_gov_discussion_cb cb, void *payload) {
  int rc = 0, s;
  db_stmt *st = db_prep("SELECT " DISC_COLS LIST_WHERE " ORDER BY d.num DESC LIMIT ?5"
                        " OFFSET ?6");
  if (!st) return sql_fail(0, "discussions");
  bind_filters(st, repo_id, is_pr, status, author);
  db_bind_int64(st, 5, limit);
  db_bind_int64(st, 6, offset);
  while ((s = db_step(st)) == DB_ROW) {
    db_gov_discussion d;
    if ((rc = disc_fill(&d, st))) break;
    rc = cb(&d, payload);
    free(d.title);
    if (rc) break;
  }
  if (!rc && s < 0) rc = sql_fail(s, "discussions");
  db_reset(st);
  return rc;
}

int db_gov_mark_merged(int64_t repo_id, int num, const char *sha, const char *by, int64_t now,
                       int *changed) {
  int rc;
  *changed = 0;
  db_stmt *st = db_prep("UPDATE gov_discussions SET status='merged', merged_commit=?,"
                        " merged_by=?, merged_ms=?, updated_ms=? WHERE repo_id=? AND num=?"
                        " AND status != 'merged'");
  if (!st) return sql_fail(0, "discussions");
  db_bind_text(st, 1, sha, -1);
  db_bind_text(st, 2, by, -1);
  db_bind_int64(st, 3, now);
  db_bind_int64(st, 4, now);
  db_bind_int64(st, 5, repo_id);
  db_bind_int64(st, 6, num);
  if ((rc = db_step_done(st))) return sql_fail(rc, "discussions");
  *changed = (int)db_changes();
  return 0;
}

int db_gov_set_status(int64_t repo_id, int num, const char *status, int64_t now) {
  int rc;
  db_stmt *st = db_prep("UPDATE gov_discussions SET status=?, updated_ms=? WHERE "
                        "repo_id=? AND num=? AND status != 'merged'");
  if (!st) return sql_fail(0, "discussions");
  db_bind_text(st, 1, status, -1);
  db_bind_int64(st, 2, now);
  db_bind_int64(st, 3, repo_id);
  db_bind_int64(st, 4, num);
  if ((rc = db_step_done(st))) return sql_fail(rc, "discussions");
  return 0;
}

int db_gov_stage_record(int64_t repo_id, const char *stage, const char *to, const char *from,
                        const char *actor, const char *reason, int64_t now) {
  int rc;
  db_stmt *st = db_prep("INSERT INTO gov_stage_history(repo_id, stage, commit_sha, "
                        "prev_sha, actor, reason, ts_ms) VALUES(?,?,?,?,?,?,?)");
  if (!st) return sql_fail(0, "stage history");
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, stage, -1);
  db_bind_text(st, 3, to, -1);
  db_bind_text(st, 4, from, -1);
  db_bind_text(st, 5, actor, -1);
  db_bind_text(st, 6, reason, -1);
  db_bind_int64(st, 7, now);
  if ((rc = db_step_done(st))) rc = sql_fail(rc, "stage history");
  return rc;
}

int db_gov_stage_history(int64_t repo_id, const char *stage, int limit, db_gov_stage_cb cb,
                         void *payload) {
  int s;
  db_stmt *st = db_prep("SELECT commit_sha, prev_sha, actor, reason, ts_ms FROM "
                        "gov_stage_history WHERE repo_id=? AND stage=? ORDER BY id DESC "
                        "LIMIT ?");
  if (!st) return sql_fail(0, "stage history");
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, stage, -1);
  db_bind_int64(st, 3, limit);
  while ((s = db_step(st)) == DB_ROW)
    cb(db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_text(st, 3),
       db_col_int64(st, 4), payload);
  db_reset(st);
  return s < 0 ? sql_fail(s, "stage history") : 0;
}
