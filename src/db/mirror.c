/* The mirror's tables (db/mirror.h). */
#include "db/mirror.h"

#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/internal.h"
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
  sqlite3_stmt *st =
      db__stmt("SELECT upstream, fetched_ms, refs_ms FROM mirror_repos WHERE repo_id=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, repo_id);
  int s = sqlite3_step(st), rc = 0;
  if (s == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    out->repo_id = repo_id;
    db__copy(out->upstream, sizeof out->upstream, st, 0);
    out->fetched_ms = sqlite3_column_int64(st, 1);
    out->refs_ms = sqlite3_column_int64(st, 2);
  } else if (s == SQLITE_DONE) {
    rc = HUB_ENOTFOUND;
  } else {
    rc = hub_error_set(HUB_ERROR, "mirror repos: %s", sqlite3_errmsg(db_conn()));
  }
  sqlite3_reset(st);
  return rc;
}

int db_mirror_repo_set(const db_mirror_repo *m) {
  sqlite3_stmt *st = db__stmt("INSERT OR REPLACE INTO mirror_repos(repo_id, upstream, fetched_ms,"
                              " refs_ms) VALUES(?,?,?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, m->repo_id);
  sqlite3_bind_text(st, 2, m->upstream, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, m->fetched_ms);
  sqlite3_bind_int64(st, 4, m->refs_ms);
  return db__step_done(st);
}

int db_mirror_ns_is(int64_t account_id) {
  sqlite3_stmt *st = db__stmt("SELECT 1 FROM mirror_namespaces WHERE account_id=?");
  if (!st) return 0;
  sqlite3_bind_int64(st, 1, account_id);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  return yes;
}

int db_mirror_ns_add(int64_t account_id, const char *upstream) {
  sqlite3_stmt *st =
      db__stmt("INSERT OR IGNORE INTO mirror_namespaces(account_id, upstream) VALUES(?,?)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_text(st, 2, upstream, -1, SQLITE_STATIC);
  int rc = db__step_done(st);
  return rc == HUB_EEXISTS ? 0 : rc;
}

int db_mirror_object_add(const char *oid, int64_t size, int pinned, int64_t now_ms) {
  sqlite3_stmt *st = db__stmt(
      "INSERT INTO mirror_objects(oid, size, pinned, fetched_ms, last_used_ms) VALUES(?1,?2,?3,?4,"
      "?4) ON CONFLICT(oid) DO UPDATE SET pinned=max(pinned, ?3), last_used_ms=?4");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, size);
  sqlite3_bind_int(st, 3, pinned ? 1 : 0);
  sqlite3_bind_int64(st, 4, now_ms);
  return db__step_done(st);
}

int db_mirror_object_has(const char *oid) {
  sqlite3_stmt *st = db__stmt("SELECT 1 FROM mirror_objects WHERE oid=?");
  if (!st) return 0;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  int yes = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  return yes;
}

int db_mirror_objects_touch(const char (*oids)[65], const int64_t *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sqlite3_stmt *st =
        db__stmt("UPDATE mirror_objects SET last_used_ms=max(last_used_ms, ?2) WHERE oid=?1");
    if (!st) return HUB_ERROR;
    sqlite3_bind_text(st, 1, oids[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ms[i]);
    int rc = db__step_done(st);
    if (rc) return rc;
  }
  return 0;
}

int db_mirror_objects_bytes(int64_t *out) {
  sqlite3_stmt *st = db__stmt("SELECT coalesce(sum(size), 0) FROM mirror_objects");
  if (!st) return HUB_ERROR;
  int s = sqlite3_step(st);
  *out = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return s == SQLITE_ROW ? 0 : hub_error_set(HUB_ERROR, "mirror objects: sum");
}

int db_mirror_objects_lru(char (*oids)[65], int64_t *sizes, size_t max, size_t *out_n) {
  sqlite3_stmt *st = db__stmt("SELECT oid, size FROM mirror_objects WHERE pinned=0"
                              " ORDER BY last_used_ms, oid LIMIT ?");
  *out_n = 0;
  if (!st) return HUB_ERROR;
  sqlite3_bind_int64(st, 1, (int64_t)max);
  int s;
  while ((s = sqlite3_step(st)) == SQLITE_ROW && *out_n < max) {
    db__copy(oids[*out_n], 65, st, 0);
    sizes[*out_n] = sqlite3_column_int64(st, 1);
    (*out_n)++;
  }
  sqlite3_reset(st);
  return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : hub_error_set(HUB_ERROR, "mirror objects: lru");
}

int db_mirror_object_forget(const char *oid, int *out_shared) {
  *out_shared = 0;
  sqlite3_stmt *st = db__stmt("SELECT 1 FROM repo_objects WHERE oid=? AND repo_id NOT IN"
                              " (SELECT repo_id FROM mirror_repos) LIMIT 1");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  *out_shared = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  st = db__stmt("DELETE FROM repo_objects WHERE oid=? AND repo_id IN"
                " (SELECT repo_id FROM mirror_repos)");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  int rc = db__step_done(st);
  if (rc) return rc;
  st = db__stmt("DELETE FROM mirror_objects WHERE oid=?");
  if (!st) return HUB_ERROR;
  sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
  return db__step_done(st);
}
