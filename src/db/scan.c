/* The scan service's tables (see db/scan.h). */
#include "db/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "scan"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: objects, path hints, overrides, org policies */
    "CREATE TABLE scan_objects("
    " oid TEXT PRIMARY KEY, state TEXT NOT NULL, level TEXT NOT NULL DEFAULT '',"
    " report TEXT NOT NULL DEFAULT '', av_status TEXT NOT NULL DEFAULT '',"
    " av_sigs INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
    " scans INTEGER NOT NULL DEFAULT 0, queued_ms INTEGER NOT NULL,"
    " scanned_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX scan_objects_state ON scan_objects(state, level);"
    "CREATE TABLE scan_paths("
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, path TEXT NOT NULL, seen_ms INTEGER NOT NULL,"
    " PRIMARY KEY(repo_id, oid, path));"
    "CREATE INDEX scan_paths_oid ON scan_paths(oid, seen_ms);"
    "CREATE TABLE scan_overrides("
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, path TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY(repo_id, oid));"
    "CREATE TABLE scan_org_policy("
    " account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
    " policy TEXT NOT NULL, actor TEXT NOT NULL, updated_ms INTEGER NOT NULL);",
    /* 2: git trees of a repo whose files have all been noted (the walk skips them) */
    "CREATE TABLE scan_trees("
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, PRIMARY KEY(repo_id, oid)) WITHOUT ROWID;",
};

int db_scan_init(void) {
  return db_migrate_module("scan", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

static int prep(sqlite3_stmt **st, const char *sql) {
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    return hub_error_set(HUB_ERROR, "scan: %s", sqlite3_errmsg(db));
  return 0;
}

/* Step a statement that returns no rows, finalize it. */
static int exec_done(sqlite3_stmt *st) {
  int s = sqlite3_step(st);
  int rc = s == SQLITE_DONE ? 0
                            : hub_error_set(s == SQLITE_BUSY ? HUB_EBUSY : HUB_ERROR, "scan: %s",
                                            sqlite3_errmsg(sqlite3_db_handle(st)));
  sqlite3_finalize(st);
  return rc;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

int db_scan_note(int64_t repo_id, const char *oid, int64_t size, const char *path,
                 char out_state[8]) {
  sqlite3_stmt *st = NULL;
  int64_t now = db_now_ms();
  int rc = prep(&st, "INSERT INTO scan_paths(repo_id, oid, path, seen_ms) VALUES(?,?,?,?)"
                     " ON CONFLICT DO NOTHING");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  if ((rc = exec_done(st))) return rc;
  if ((rc = prep(&st, "INSERT OR IGNORE INTO scan_objects(oid, state, size, queued_ms)"
                      " VALUES(?, 'queued', ?, ?)")))
    return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, size);
  sqlite3_bind_int64(st, 3, now);
  if ((rc = exec_done(st))) return rc;
  if ((rc = prep(&st, "SELECT state FROM scan_objects WHERE oid=?"))) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    copy_col(out_state, 8, st, 0);
  else
    rc = hub_error_set(HUB_ERROR, "scan: object row vanished");
  sqlite3_finalize(st);
  return rc;
}

int db_scan_object_get(const char *oid, db_scan_object *out) {
  sqlite3_stmt *st = NULL;
  memset(out, 0, sizeof *out);
  int rc = prep(&st, "SELECT oid, state, level, av_status, size, av_sigs, scans, scanned_ms, report"
                     " FROM scan_objects WHERE oid=?");
  if (rc) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    copy_col(out->oid, sizeof out->oid, st, 0);
    copy_col(out->state, sizeof out->state, st, 1);
    copy_col(out->level, sizeof out->level, st, 2);
    copy_col(out->av_status, sizeof out->av_status, st, 3);
    out->size = sqlite3_column_int64(st, 4);
    out->av_sigs = sqlite3_column_int64(st, 5);
    out->scans = sqlite3_column_int64(st, 6);
    out->scanned_ms = sqlite3_column_int64(st, 7);
    const unsigned char *t = sqlite3_column_text(st, 8);
    out->report = strdup(t ? (const char *)t : "");
    if (!out->report) rc = hub_error_set(HUB_ERROR, "out of memory");
  } else if (s == SQLITE_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "not scanned");
  } else {
    rc = hub_error_set(HUB_ERROR, "scan: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
  }
  sqlite3_finalize(st);
  return rc;
}

void db_scan_object_dispose(db_scan_object *o) {
  free(o->report);
  o->report = NULL;
}

int db_scan_object_done(const char *oid, int64_t size, const char *level, const char *report,
                        const char *av_status, int64_t av_sigs) {
  sqlite3_stmt *st = NULL;
  int rc =
      prep(&st, "INSERT INTO scan_objects(oid, state, level, report, av_status, av_sigs,"
                " size, scans, queued_ms, scanned_ms) VALUES(?1,'done',?2,?3,?4,?5,?6,1,?7,?7)"
                " ON CONFLICT(oid) DO UPDATE SET state='done', level=?2, report=?3, av_status=?4,"
                " av_sigs=?5, size=?6, scans=scans+1, scanned_ms=?7");
  if (rc) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, level, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, report, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, av_status, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, av_sigs);
  sqlite3_bind_int64(st, 6, size);
  sqlite3_bind_int64(st, 7, db_now_ms());
  return exec_done(st);
}

int db_scan_hint(const char *oid, int64_t *out_repo_id, char *path, size_t cap) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT repo_id, path FROM scan_paths WHERE oid=? ORDER BY seen_ms DESC"
                     " LIMIT 1");
  if (rc) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    *out_repo_id = sqlite3_column_int64(st, 0);
    copy_col(path, cap, st, 1);
  } else {
    rc = hub_error_set(HUB_ENOTFOUND, "no repo names object %s", oid);
  }
  sqlite3_finalize(st);
  return rc;
}

int db_scan_paths_of(const char *oid, db_scan_path_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT repo_id, path FROM scan_paths WHERE oid=? ORDER BY repo_id, path"
                     " LIMIT 1000");
  if (rc) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = cb(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1), payload);
  sqlite3_finalize(st);
  return rc;
}

/* Collect oids first, then update and call back: cb may write (enqueue jobs). */
static int oids_each(const char *select, int64_t arg, int bind, const char *update,
                     db_scan_oid_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  size_t n = 0, cap = 0;
  char(*oids)[DB_SCAN_OID_MAX + 1] = NULL;
  int rc = prep(&st, select);
  if (rc) return rc;
  if (bind) sqlite3_bind_int64(st, 1, arg);
  while (!rc && sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 256;
      void *p = realloc(oids, nc * sizeof *oids);
      if (!p) {
        rc = hub_error_set(HUB_ERROR, "out of memory");
        break;
      }
      oids = p;
      cap = nc;
    }
    copy_col(oids[n++], sizeof oids[0], st, 0);
  }
  sqlite3_finalize(st);
  for (size_t i = 0; !rc && i < n; i++) {
    if (update) {
      if ((rc = prep(&st, update))) break;
      sqlite3_bind_text(st, 1, oids[i], -1, SQLITE_STATIC);
      if ((rc = exec_done(st))) break;
    }
    int64_t repo_id = 0;
    char path[8];
    if (db_scan_hint(oids[i], &repo_id, path, sizeof path)) repo_id = 0;
    if (cb) rc = cb(oids[i], repo_id, payload);
  }
  free(oids);
  return rc;
}

int db_scan_requeue(int av_only, int64_t av_sigs, db_scan_oid_cb cb, void *payload) {
  const char *upd = "UPDATE scan_objects SET state='queued' WHERE oid=?";
  if (!av_only)
    return oids_each("SELECT oid FROM scan_objects ORDER BY oid", 0, 0, upd, cb, payload);
  return oids_each("SELECT oid FROM scan_objects WHERE state='done' AND (av_status IN"
                   " ('unscanned','error','') OR av_sigs<>?1) ORDER BY oid",
                   av_sigs, 1, upd, cb, payload);
}

int db_scan_queued_each(db_scan_oid_cb cb, void *payload) {
  return oids_each("SELECT oid FROM scan_objects WHERE state='queued' ORDER BY queued_ms", 0, 0,
                   NULL, cb, payload);
}

int db_scan_issues(int64_t repo_id, int limit, db_scan_issue_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  int rc =
      prep(&st, "SELECT p.repo_id, p.path, o.oid, o.level FROM scan_paths p JOIN scan_objects o"
                " ON o.oid=p.oid WHERE (?1=0 OR p.repo_id=?1) AND o.state='done' AND"
                " o.level IN ('caution','suspicious','unsafe','error')"
                " ORDER BY p.repo_id, p.path LIMIT ?2");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_int(st, 2, limit);
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = cb(sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
            payload);
  sqlite3_finalize(st);
  return rc;
}

int db_scan_repo_pending(int64_t repo_id, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT count(*) FROM scan_paths p JOIN scan_objects o ON o.oid=p.oid"
                     " WHERE p.repo_id=? AND o.state='queued'");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return 0;
}

int db_scan_counts(int64_t *queued, int64_t per_level[5]) {
  static const char *const LEVELS[5] = {"safe", "caution", "suspicious", "unsafe", "error"};
  sqlite3_stmt *st = NULL;
  *queued = 0;
  memset(per_level, 0, 5 * sizeof per_level[0]);
  int rc = prep(&st, "SELECT state, level, count(*) FROM scan_objects GROUP BY state, level");
  if (rc) return rc;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *state = (const char *)sqlite3_column_text(st, 0);
    const char *level = (const char *)sqlite3_column_text(st, 1);
    int64_t n = sqlite3_column_int64(st, 2);
    if (state && !strcmp(state, "queued"))
      *queued += n;
    else
      for (int i = 0; i < 5; i++)
        if (level && !strcmp(level, LEVELS[i])) per_level[i] += n;
  }
  sqlite3_finalize(st);
  return 0;
}

int db_scan_override_get(int64_t repo_id, const char *oid, db_scan_override *out) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT actor, reason, path, created_ms FROM scan_overrides"
                     " WHERE repo_id=? AND oid=?");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    if (out) {
      copy_col(out->actor, sizeof out->actor, st, 0);
      copy_col(out->reason, sizeof out->reason, st, 1);
      copy_col(out->path, sizeof out->path, st, 2);
      out->created_ms = sqlite3_column_int64(st, 3);
    }
  } else {
    rc = hub_error_set(HUB_ENOTFOUND, "no override");
  }
  sqlite3_finalize(st);
  return rc;
}

int db_scan_override_set(int64_t repo_id, const char *oid, const char *path, const char *actor,
                         const char *reason) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "INSERT INTO scan_overrides(repo_id, oid, path, actor, reason, created_ms)"
                     " VALUES(?,?,?,?,?,?) ON CONFLICT(repo_id, oid) DO UPDATE SET"
                     " path=excluded.path, actor=excluded.actor, reason=excluded.reason,"
                     " created_ms=excluded.created_ms");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, db_now_ms());
  return exec_done(st);
}

int db_scan_override_delete(int64_t repo_id, const char *oid) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "DELETE FROM scan_overrides WHERE repo_id=? AND oid=?");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  if ((rc = exec_done(st))) return rc;
  return sqlite3_changes(db_conn()) ? 0 : hub_error_set(HUB_ENOTFOUND, "No override for this file");
}

int db_scan_org_policy_get(int64_t account_id, char out[24]) {
  sqlite3_stmt *st = NULL;
  out[0] = 0;
  int rc = prep(&st, "SELECT policy FROM scan_org_policy WHERE account_id=?");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, account_id);
  if (sqlite3_step(st) == SQLITE_ROW) copy_col(out, 24, st, 0);
  sqlite3_finalize(st);
  return 0;
}

int db_scan_org_policy_set(int64_t account_id, const char *policy, const char *actor) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (!policy || !*policy) {
    if ((rc = prep(&st, "DELETE FROM scan_org_policy WHERE account_id=?"))) return rc;
    sqlite3_bind_int64(st, 1, account_id);
    return exec_done(st);
  }
  if ((rc = prep(&st, "INSERT INTO scan_org_policy(account_id, policy, actor, updated_ms)"
                      " VALUES(?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET"
                      " policy=excluded.policy, actor=excluded.actor,"
                      " updated_ms=excluded.updated_ms")))
    return rc;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_text(st, 2, policy, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, db_now_ms());
  return exec_done(st);
}

int db_scan_xet_file_check(const uint8_t *file32, int (*cb)(const char *sha, void *payload),
                           void *payload) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT DISTINCT sha256 FROM xet_sha WHERE file=? LIMIT 16");
  if (rc) return rc;
  sqlite3_bind_blob(st, 1, file32, 32, SQLITE_STATIC);
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = cb((const char *)sqlite3_column_text(st, 0), payload);
  sqlite3_finalize(st);
  return rc;
}

int db_scan_objects_each(int limit, db_scan_object_cb cb, void *payload) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "SELECT oid, state, level, scans FROM scan_objects ORDER BY queued_ms, oid"
                     " LIMIT ?");
  if (rc) return rc;
  sqlite3_bind_int(st, 1, limit);
  while (!rc && sqlite3_step(st) == SQLITE_ROW)
    rc = cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3), payload);
  sqlite3_finalize(st);
  return rc;
}

int db_scan_tree_seen(int64_t repo_id, const char *tree_oid) {
  sqlite3_stmt *st = NULL;
  if (prep(&st, "SELECT 1 FROM scan_trees WHERE repo_id=? AND oid=?")) return 0;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, tree_oid, -1, SQLITE_STATIC);
  int seen = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return seen;
}

int db_scan_tree_mark(int64_t repo_id, const char *tree_oid) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "INSERT OR IGNORE INTO scan_trees(repo_id, oid) VALUES(?,?)");
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, repo_id);
  sqlite3_bind_text(st, 2, tree_oid, -1, SQLITE_STATIC);
  return exec_done(st);
}

int db_scan_object_forget(const char *oid) {
  sqlite3_stmt *st = NULL;
  int rc = prep(&st, "DELETE FROM scan_objects WHERE oid=? AND state='queued' AND"
                     " NOT EXISTS(SELECT 1 FROM scan_paths WHERE oid=?1)");
  if (rc) return rc;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  return exec_done(st);
}
