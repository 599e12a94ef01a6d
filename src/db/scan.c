/* The scan service's tables (see db/scan.h). */
#include "db/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate "scan", the same numbering db_migrate_module gave): append
 * steps, never edit one. */
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

/* Step 1 on PostgreSQL: STEPS[0] as the rewrite gives it, but scan_org_policy.account_id a
 * plain key (the rewrite turns `INTEGER PRIMARY KEY` into an identity column). */
static const char STEP1_PG[] =
    "CREATE TABLE scan_objects("
    " oid TEXT PRIMARY KEY, state TEXT NOT NULL, level TEXT NOT NULL DEFAULT '',"
    " report TEXT NOT NULL DEFAULT '', av_status TEXT NOT NULL DEFAULT '',"
    " av_sigs BIGINT NOT NULL DEFAULT 0, size BIGINT NOT NULL DEFAULT 0,"
    " scans BIGINT NOT NULL DEFAULT 0, queued_ms BIGINT NOT NULL,"
    " scanned_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX scan_objects_state ON scan_objects(state, level);"
    "CREATE TABLE scan_paths("
    " repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, path TEXT NOT NULL, seen_ms BIGINT NOT NULL,"
    " PRIMARY KEY(repo_id, oid, path));"
    "CREATE INDEX scan_paths_oid ON scan_paths(oid, seen_ms);"
    "CREATE TABLE scan_overrides("
    " repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, path TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL, PRIMARY KEY(repo_id, oid));"
    "CREATE TABLE scan_org_policy("
    " account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
    " policy TEXT NOT NULL, actor TEXT NOT NULL, updated_ms BIGINT NOT NULL);";

int db_scan_init(void) {
  const db_migration steps[] = {{.sqlite = STEPS[0], .postgres = STEP1_PG}, {.sql = STEPS[1]}};
  _Static_assert(sizeof STEPS / sizeof STEPS[0] == 2, "a new step goes into steps[] too");
  return db_migrate("scan", steps, (int)(sizeof steps / sizeof steps[0]));
}

int db_scan_note(int64_t repo_id, const char *oid, int64_t size, const char *path,
                 char out_state[8]) {
  int64_t now = db_now_ms();
  db_stmt *st = db_prep("INSERT INTO scan_paths(repo_id, oid, path, seen_ms) VALUES(?,?,?,?)"
                        " ON CONFLICT DO NOTHING");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  db_bind_text(st, 3, path, -1);
  db_bind_int64(st, 4, now);
  int rc = db_step_done(st);
  if (rc) return rc;
  if (!(st = db_prep("INSERT OR IGNORE INTO scan_objects(oid, state, size, queued_ms)"
                     " VALUES(?, 'queued', ?, ?)")))
    return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  db_bind_int64(st, 2, size);
  db_bind_int64(st, 3, now);
  if ((rc = db_step_done(st))) return rc;
  if (!(st = db_prep("SELECT state FROM scan_objects WHERE oid=?"))) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  int s = db_step(st);
  if (s == DB_ROW)
    db_col_copy(out_state, 8, st, 0);
  else
    rc = s < 0 ? s : hub_error_set(HUB_ERROR, "scan: object row vanished");
  db_reset(st);
  return rc;
}

int db_scan_object_get(const char *oid, db_scan_object *out) {
  memset(out, 0, sizeof *out);
  db_stmt *st = db_prep("SELECT oid, state, level, av_status, size, av_sigs, scans, scanned_ms,"
                        " report FROM scan_objects WHERE oid=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  int rc = 0, s = db_step(st);
  if (s == DB_ROW) {
    db_col_copy(out->oid, sizeof out->oid, st, 0);
    db_col_copy(out->state, sizeof out->state, st, 1);
    db_col_copy(out->level, sizeof out->level, st, 2);
    db_col_copy(out->av_status, sizeof out->av_status, st, 3);
    out->size = db_col_int64(st, 4);
    out->av_sigs = db_col_int64(st, 5);
    out->scans = db_col_int64(st, 6);
    out->scanned_ms = db_col_int64(st, 7);
    const char *t = db_col_text(st, 8);
    out->report = strdup(t ? t : "");
    if (!out->report) rc = hub_error_set(HUB_ERROR, "out of memory");
  } else if (s == DB_DONE) {
    rc = hub_error_set(HUB_ENOTFOUND, "not scanned");
  } else {
    rc = s;
  }
  db_reset(st);
  return rc;
}

void db_scan_object_dispose(db_scan_object *o) {
  free(o->report);
  o->report = NULL;
}

int db_scan_object_done(const char *oid, int64_t size, const char *level, const char *report,
                        const char *av_status, int64_t av_sigs) {
  db_stmt *st =
      db_prep("INSERT INTO scan_objects(oid, state, level, report, av_status, av_sigs,"
              " size, scans, queued_ms, scanned_ms) VALUES(?1,'done',?2,?3,?4,?5,?6,1,?7,?7)"
              " ON CONFLICT(oid) DO UPDATE SET state='done', level=?2, report=?3, av_status=?4,"
              " av_sigs=?5, size=?6, scans=scan_objects.scans+1, scanned_ms=?7");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  db_bind_text(st, 2, level, -1);
  db_bind_text(st, 3, report, -1);
  db_bind_text(st, 4, av_status, -1);
  db_bind_int64(st, 5, av_sigs);
  db_bind_int64(st, 6, size);
  db_bind_int64(st, 7, db_now_ms());
  return db_step_done(st);
}

int db_scan_hint(const char *oid, int64_t *out_repo_id, char *path, size_t cap) {
  db_stmt *st = db_prep("SELECT repo_id, path FROM scan_paths WHERE oid=? ORDER BY seen_ms DESC"
                        " LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  int rc = 0, s = db_step(st);
  if (s == DB_ROW) {
    *out_repo_id = db_col_int64(st, 0);
    db_col_copy(path, cap, st, 1);
  } else {
    rc = s < 0 ? s : hub_error_set(HUB_ENOTFOUND, "no repo names object %s", oid);
  }
  db_reset(st);
  return rc;
}

/* Listings that call back into the caller read through db_prep_text: a statement of their
 * own (a callback may run other statements, even this one), not a shared cached one. */
static int each_done(db_stmt *st, int s, int rc) {
  db_prep_text_done(st);
  return rc ? rc : s < 0 ? s : 0;
}

int db_scan_paths_of(const char *oid, db_scan_path_cb cb, void *payload) {
  db_stmt *st = db_prep_text("SELECT repo_id, path FROM scan_paths WHERE oid=?"
                             " ORDER BY repo_id, path LIMIT 1000");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  int rc = 0, s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW)
    rc = cb(db_col_int64(st, 0), db_col_text(st, 1), payload);
  return each_done(st, s, rc);
}

/* Collect oids first, then update and call back: cb may write (enqueue jobs). */
static int oids_each(const char *select, int64_t arg, int bind, const char *update,
                     db_scan_oid_cb cb, void *payload) {
  size_t n = 0, cap = 0;
  char(*oids)[DB_SCAN_OID_MAX + 1] = NULL;
  db_stmt *st = db_prep(select);
  if (!st) return HUB_ERROR;
  if (bind) db_bind_int64(st, 1, arg);
  int rc = 0, s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW) {
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
    db_col_copy(oids[n++], sizeof oids[0], st, 0);
  }
  db_reset(st);
  if (!rc && s < 0) rc = s;
  for (size_t i = 0; !rc && i < n; i++) {
    if (update) {
      if (!(st = db_prep(update))) {
        rc = HUB_ERROR;
        break;
      }
      db_bind_text(st, 1, oids[i], -1);
      if ((rc = db_step_done(st))) break;
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
  db_stmt *st =
      db_prep_text("SELECT p.repo_id, p.path, o.oid, o.level FROM scan_paths p JOIN scan_objects"
                   " o ON o.oid=p.oid WHERE (?1=0 OR p.repo_id=?1) AND o.state='done' AND"
                   " o.level IN ('caution','suspicious','unsafe','error')"
                   " ORDER BY p.repo_id, p.path LIMIT ?2");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, limit);
  int rc = 0, s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW)
    rc = cb(db_col_int64(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_text(st, 3),
            payload);
  return each_done(st, s, rc);
}

int db_scan_repo_pending(int64_t repo_id, int64_t *out) {
  db_stmt *st = db_prep("SELECT count(*) FROM scan_paths p JOIN scan_objects o ON o.oid=p.oid"
                        " WHERE p.repo_id=? AND o.state='queued'");
  *out = 0;
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  int s = db_step(st);
  if (s == DB_ROW) *out = db_col_int64(st, 0);
  db_reset(st);
  return s < 0 ? s : 0;
}

int db_scan_counts(int64_t *queued, int64_t per_level[5]) {
  static const char *const LEVELS[5] = {"safe", "caution", "suspicious", "unsafe", "error"};
  *queued = 0;
  memset(per_level, 0, 5 * sizeof per_level[0]);
  db_stmt *st = db_prep("SELECT state, level, count(*) FROM scan_objects GROUP BY state, level");
  if (!st) return HUB_ERROR;
  int s;
  while ((s = db_step(st)) == DB_ROW) {
    const char *state = db_col_text(st, 0);
    const char *level = db_col_text(st, 1);
    int64_t n = db_col_int64(st, 2);
    if (state && !strcmp(state, "queued"))
      *queued += n;
    else
      for (int i = 0; i < 5; i++)
        if (level && !strcmp(level, LEVELS[i])) per_level[i] += n;
  }
  db_reset(st);
  return s < 0 ? s : 0;
}

int db_scan_override_get(int64_t repo_id, const char *oid, db_scan_override *out) {
  db_stmt *st = db_prep("SELECT actor, reason, path, created_ms FROM scan_overrides"
                        " WHERE repo_id=? AND oid=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  int rc = 0, s = db_step(st);
  if (s == DB_ROW) {
    if (out) {
      db_col_copy(out->actor, sizeof out->actor, st, 0);
      db_col_copy(out->reason, sizeof out->reason, st, 1);
      db_col_copy(out->path, sizeof out->path, st, 2);
      out->created_ms = db_col_int64(st, 3);
    }
  } else {
    rc = s < 0 ? s : hub_error_set(HUB_ENOTFOUND, "no override");
  }
  db_reset(st);
  return rc;
}

int db_scan_override_set(int64_t repo_id, const char *oid, const char *path, const char *actor,
                         const char *reason) {
  db_stmt *st = db_prep("INSERT INTO scan_overrides(repo_id, oid, path, actor, reason, created_ms)"
                        " VALUES(?,?,?,?,?,?) ON CONFLICT(repo_id, oid) DO UPDATE SET"
                        " path=excluded.path, actor=excluded.actor, reason=excluded.reason,"
                        " created_ms=excluded.created_ms");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  db_bind_text(st, 3, path, -1);
  db_bind_text(st, 4, actor, -1);
  db_bind_text(st, 5, reason, -1);
  db_bind_int64(st, 6, db_now_ms());
  return db_step_done(st);
}

int db_scan_override_delete(int64_t repo_id, const char *oid) {
  db_stmt *st = db_prep("DELETE FROM scan_overrides WHERE repo_id=? AND oid=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, oid, -1);
  int rc = db_step_done(st);
  if (rc) return rc;
  return db_changes() ? 0 : hub_error_set(HUB_ENOTFOUND, "No override for this file");
}

int db_scan_org_policy_get(int64_t account_id, char out[24]) {
  out[0] = 0;
  db_stmt *st = db_prep("SELECT policy FROM scan_org_policy WHERE account_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, account_id);
  int s = db_step(st);
  if (s == DB_ROW) db_col_copy(out, 24, st, 0);
  db_reset(st);
  return s < 0 ? s : 0;
}

int db_scan_org_policy_set(int64_t account_id, const char *policy, const char *actor) {
  db_stmt *st;
  if (!policy || !*policy) {
    if (!(st = db_prep("DELETE FROM scan_org_policy WHERE account_id=?"))) return HUB_ERROR;
    db_bind_int64(st, 1, account_id);
    return db_step_done(st);
  }
  if (!(st = db_prep("INSERT INTO scan_org_policy(account_id, policy, actor, updated_ms)"
                     " VALUES(?,?,?,?) ON CONFLICT(account_id) DO UPDATE SET"
                     " policy=excluded.policy, actor=excluded.actor,"
                     " updated_ms=excluded.updated_ms")))
    return HUB_ERROR;
  db_bind_int64(st, 1, account_id);
  db_bind_text(st, 2, policy, -1);
  db_bind_text(st, 3, actor, -1);
  db_bind_int64(st, 4, db_now_ms());
  return db_step_done(st);
}

int db_scan_xet_file_check(const uint8_t *file32, int (*cb)(const char *sha, void *payload),
                           void *payload) {
  db_stmt *st = db_prep_text("SELECT DISTINCT sha256 FROM xet_sha WHERE file=? LIMIT 16");
  if (!st) return HUB_ERROR;
  db_bind_blob(st, 1, file32, 32);
  int rc = 0, s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW)
    rc = cb(db_col_text(st, 0), payload);
  return each_done(st, s, rc);
}

int db_scan_objects_each(int limit, db_scan_object_cb cb, void *payload) {
  db_stmt *st = db_prep_text("SELECT oid, state, level, scans FROM scan_objects"
                             " ORDER BY queued_ms, oid LIMIT ?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, limit);
  int rc = 0, s = DB_DONE;
  while (!rc && (s = db_step(st)) == DB_ROW)
    rc = cb(db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_int64(st, 3),
            payload);
  return each_done(st, s, rc);
}

int db_scan_tree_seen(int64_t repo_id, const char *tree_oid) {
  db_stmt *st = db_prep("SELECT 1 FROM scan_trees WHERE repo_id=? AND oid=?");
  if (!st) return 0;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, tree_oid, -1);
  int seen = db_step(st) == DB_ROW;
  db_reset(st);
  return seen;
}

int db_scan_tree_mark(int64_t repo_id, const char *tree_oid) {
  db_stmt *st = db_prep("INSERT OR IGNORE INTO scan_trees(repo_id, oid) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, tree_oid, -1);
  return db_step_done(st);
}

int db_scan_object_forget(const char *oid) {
  db_stmt *st = db_prep("DELETE FROM scan_objects WHERE oid=? AND state='queued' AND"
                        " NOT EXISTS(SELECT 1 FROM scan_paths WHERE oid=?1)");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  return db_step_done(st);
}
