/* The mirror's tables (db/mirror.h). */
#include "db/mirror.h"

#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "mirror"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: mirrored repos, placeholder namespaces, the object cache */
    "CREATE TABLE mirror_repos("
    " repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    " upstream TEXT NOT NULL, fetched_ms INTEGER NOT NULL, refs_ms INTEGER NOT NULL);"
    "CREATE TABLE mirror_namespaces("
    " account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
    " upstream TEXT NOT NULL);"
    "CREATE TABLE mirror_objects("
    " oid TEXT PRIMARY KEY, size INTEGER NOT NULL, pinned INTEGER NOT NULL DEFAULT 0,"
    " fetched_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL);"
    "CREATE INDEX mirror_objects_lru ON mirror_objects(pinned, last_used_ms);",
};

int db_mirror_init(void) {
  return db_migrate_module("mirror", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

int db_mirror_repo_get(int64_t repo_id, db_mirror_repo *out) {
  db_stmt *st = db_prep("SELECT upstream, fetched_ms, refs_ms FROM mirror_repos WHERE repo_id=?");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  int s = db_step(st), rc = 0;
  if (s == DB_ROW) {
    memset(out, 0, sizeof *out);
    out->repo_id = repo_id;
    db_col_copy(out->upstream, sizeof out->upstream, st, 0);
    out->fetched_ms = db_col_int64(st, 1);
    out->refs_ms = db_col_int64(st, 2);
  } else if (s == DB_DONE) {
    rc = HUB_ENOTFOUND;
  } else {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    rc = hub_error_set(s < 0 ? s : HUB_ERROR, "mirror repos: %s", msg);
  }
  db_reset(st);
  return rc;
}

int db_mirror_repo_set(const db_mirror_repo *m) {
  db_stmt *st = db_prep("INSERT INTO mirror_repos(repo_id, upstream, fetched_ms, refs_ms)"
                        " VALUES(?,?,?,?) ON CONFLICT(repo_id) DO UPDATE SET"
                        " upstream=excluded.upstream, fetched_ms=excluded.fetched_ms,"
                        " refs_ms=excluded.refs_ms");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, m->repo_id);
  db_bind_text(st, 2, m->upstream, -1);
  db_bind_int64(st, 3, m->fetched_ms);
  db_bind_int64(st, 4, m->refs_ms);
  return db_step_done(st);
}

int db_mirror_ns_is(int64_t account_id) {
  db_stmt *st = db_prep("SELECT 1 FROM mirror_namespaces WHERE account_id=?");
  if (!st) return 0;
  db_bind_int64(st, 1, account_id);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_mirror_ns_add(int64_t account_id, const char *upstream) {
  db_stmt *st =
      db_prep("INSERT OR IGNORE INTO mirror_namespaces(account_id, upstream) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, account_id);
  db_bind_text(st, 2, upstream, -1);
  int rc = db_step_done(st);
  return rc == HUB_EEXISTS ? 0 : rc;
}

int db_mirror_object_add(const char *oid, int64_t size, int pinned, int64_t now_ms) {
  db_stmt *st = db_prep(
      "INSERT INTO mirror_objects(oid, size, pinned, fetched_ms, last_used_ms) VALUES(?1,?2,?3,?4,"
      "?4) ON CONFLICT(oid) DO UPDATE SET pinned=CASE WHEN mirror_objects.pinned>?3 THEN"
      " mirror_objects.pinned ELSE ?3 END, last_used_ms=?4");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  db_bind_int64(st, 2, size);
  db_bind_int64(st, 3, pinned ? 1 : 0);
  db_bind_int64(st, 4, now_ms);
  return db_step_done(st);
}

int db_mirror_object_has(const char *oid) {
  db_stmt *st = db_prep("SELECT 1 FROM mirror_objects WHERE oid=?");
  if (!st) return 0;
  db_bind_text(st, 1, oid, -1);
  int yes = db_step(st) == DB_ROW;
  db_reset(st);
  return yes;
}

int db_mirror_objects_touch(const char (*oids)[65], const int64_t *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    db_stmt *st =
        db_prep("UPDATE mirror_objects SET last_used_ms=CASE WHEN last_used_ms>?2 THEN last_used_ms"
                " ELSE ?2 END WHERE oid=?1");
    if (!st) return HUB_ERROR;
    db_bind_text(st, 1, oids[i], -1);
    db_bind_int64(st, 2, ms[i]);
    int rc = db_step_done(st);
    if (rc) return rc;
  }
  return 0;
}

int db_mirror_objects_bytes(int64_t *out) {
  db_stmt *st = db_prep("SELECT coalesce(sum(size), 0) FROM mirror_objects");
  if (!st) return HUB_ERROR;
  int s = db_step(st);
  *out = s == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  return s == DB_ROW ? 0 : hub_error_set(HUB_ERROR, "mirror objects: sum");
}

int db_mirror_objects_lru(char (*oids)[65], int64_t *sizes, size_t max, size_t *out_n) {
  db_stmt *st = db_prep("SELECT oid, size FROM mirror_objects WHERE pinned=0"
                        " ORDER BY last_used_ms, oid LIMIT ?");
  *out_n = 0;
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, (int64_t)max);
  int s;
  while ((s = db_step(st)) == DB_ROW && *out_n < max) {
    db_col_copy(oids[*out_n], 65, st, 0);
    sizes[*out_n] = db_col_int64(st, 1);
    (*out_n)++;
  }
  db_reset(st);
  return s == DB_ROW || s == DB_DONE ? 0 : hub_error_set(HUB_ERROR, "mirror objects: lru");
}

int db_mirror_object_forget(const char *oid, int *out_shared) {
  *out_shared = 0;
  db_stmt *st = db_prep("SELECT 1 FROM repo_objects WHERE oid=? AND repo_id NOT IN"
                        " (SELECT repo_id FROM mirror_repos) LIMIT 1");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  *out_shared = db_step(st) == DB_ROW;
  db_reset(st);
  st = db_prep("DELETE FROM repo_objects WHERE oid=? AND repo_id IN"
               " (SELECT repo_id FROM mirror_repos)");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  int rc = db_step_done(st);
  if (rc) return rc;
  st = db_prep("DELETE FROM mirror_objects WHERE oid=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, oid, -1);
  return db_step_done(st);
}
