/* Leases and cross-node locks in the database (lock.h). */
#include "db/lock.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "db/db.h"
#include "db/stmt.h"
#include "util/error.h"

static const char *const NODES_STEPS[] = {
    /* 1: leases (name → owner until until_ms) */
    "CREATE TABLE node_leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    " until_ms INTEGER NOT NULL);",
    /* 2: failure counters in a window (login throttling across nodes) */
    "CREATE TABLE node_counters(key TEXT PRIMARY KEY, start_ms INTEGER NOT NULL,"
    " n INTEGER NOT NULL);"
    "CREATE INDEX node_counters_start ON node_counters(start_ms);",
};

static int g_ready;
static pthread_once_t g_node_once = PTHREAD_ONCE_INIT;
static char g_node[96];

static void make_node_id(void) {
  char host[64] = "";
  gethostname(host, sizeof host - 1);
  snprintf(g_node, sizeof g_node, "%s:%d:%08x", host, (int)getpid(), randombytes_random());
}

const char *db_node_id(void) {
  pthread_once(&g_node_once, make_node_id);
  return g_node;
}

int db_locks_init(void) {
  int rc =
      db_migrate_module("nodes", NODES_STEPS, (int)(sizeof NODES_STEPS / sizeof NODES_STEPS[0]));
  if (!rc) __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
  return rc;
}

int db_lease_take(const char *name, int64_t ttl_ms) {
  int64_t now = db_now_ms();
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return 1; /* one process: always ours */
  /* Insert, or take over a row that is ours (renewal) or expired; nothing changes while
   * another node's lease runs. */
  db_stmt *st = db_prep("INSERT INTO node_leases(name, owner, until_ms) VALUES(?1, ?2, ?3)"
                        " ON CONFLICT(name) DO UPDATE SET owner=excluded.owner,"
                        " until_ms=excluded.until_ms"
                        " WHERE node_leases.owner=excluded.owner OR node_leases.until_ms < ?4");
  int rc;
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, name, -1);
  db_bind_text(st, 2, db_node_id(), -1);
  db_bind_int64(st, 3, now + ttl_ms);
  db_bind_int64(st, 4, now);
  if ((rc = db_step_done(st)) < 0) return rc;
  return db_changes() > 0;
}

int db_lease_drop(const char *name) {
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return 0;
  db_stmt *st = db_prep("DELETE FROM node_leases WHERE name=? AND owner=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, name, -1);
  db_bind_text(st, 2, db_node_id(), -1);
  return db_step_done(st);
}

static int ref_lease_name(char *out, size_t cap, const char *repo_key, const char *ref) {
  if ((size_t)snprintf(out, cap, "ref:%s:%s", repo_key, ref) >= cap)
    return hub_error_set(HUB_EINVALID, "ref name too long");
  return 0;
}

/* Whether another node holds an unexpired lease named `name` (like 1: a LIKE pattern). */
static int foreign_lease(const char *name, int like) {
  db_stmt *st = db_prep(like ? "SELECT count(*) FROM node_leases WHERE name LIKE ?1"
                               " AND owner<>?2 AND until_ms>=?3"
                             : "SELECT count(*) FROM node_leases WHERE name=?1"
                               " AND owner<>?2 AND until_ms>=?3");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, name, -1);
  db_bind_text(st, 2, db_node_id(), -1);
  db_bind_int64(st, 3, db_now_ms());
  int rc = db_step(st);
  int64_t n = rc == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  return rc == DB_ROW ? n > 0 : rc < 0 ? rc : 0;
}

/* The name of a repo's maintenance lease; repo keys are uids (hex), no LIKE wildcards. */
static int maint_lease_name(char *out, size_t cap, const char *repo_key) {
  if ((size_t)snprintf(out, cap, "maint:%s", repo_key) >= cap || strpbrk(repo_key, "%_\\"))
    return hub_error_set(HUB_EINVALID, "bad repository key");
  return 0;
}

static void nap(unsigned waits) {
  /* 1-8 ms at first, up to 20 ms later, spread so the nodes' waiters do not poll in
   * step (each try is a write). */
  long ms = (long)(1 + (waits * 7919u) % 8) + (waits > 20 ? 12 : 0);
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

int db_repo_lock(const char *repo_key, const char *ref, int64_t wait_ms) {
  char name[512], maint[160];
  int64_t deadline = db_now_ms() + wait_ms;
  unsigned waits = 0;
  int rc;
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return 0;
  if ((rc = ref_lease_name(name, sizeof name, repo_key, ref)) < 0) return rc;
  int check_maint = maint_lease_name(maint, sizeof maint, repo_key) == 0;
  for (;;) {
    if ((rc = db_lease_take(name, DB_REPO_LOCK_TTL_MS)) < 0) return rc;
    if (rc) {
      /* Taken, then another node's maintenance looked for: it waits for our turn to
       * end, so while it runs we give the turn up (db_repo_maint_begin). */
      int busy = check_maint ? foreign_lease(maint, 0) : 0;
      if (busy == 0) return 0;
      db_lease_drop(name);
      if (busy < 0) return busy;
    }
    if (db_now_ms() > deadline)
      return hub_error_set(HUB_ERETRY, "'%s' is busy with commits on another node, try again", ref);
    nap(++waits);
  }
}

int db_repo_maint_begin(const char *repo_key, int64_t wait_ms) {
  char maint[160], refs[160];
  int64_t deadline = db_now_ms() + wait_ms;
  unsigned waits = 0;
  int rc;
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return 0;
  if ((rc = maint_lease_name(maint, sizeof maint, repo_key)) < 0) return rc;
  snprintf(refs, sizeof refs, "ref:%s:%%", repo_key);
  if ((rc = db_lease_take(maint, DB_MAINT_LEASE_TTL_MS)) <= 0)
    return rc < 0 ? rc : hub_error_set(HUB_ERETRY, "another node maintains %s", repo_key);
  /* From now on other nodes' new turns give way; wait for the ones running to end. */
  for (;;) {
    int busy = foreign_lease(refs, 1);
    if (busy == 0) return 0;
    if (busy < 0 || db_now_ms() > deadline) {
      db_lease_drop(maint);
      return busy < 0
                 ? busy
                 : hub_error_set(HUB_ERETRY, "refs of %s stayed busy on another node", repo_key);
    }
    nap(++waits);
  }
}

int db_repo_maint_renew(const char *repo_key) {
  char maint[160];
  int rc;
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return 0;
  if ((rc = maint_lease_name(maint, sizeof maint, repo_key)) < 0) return rc;
  rc = db_lease_take(maint, DB_MAINT_LEASE_TTL_MS);
  return rc < 0 ? rc : rc ? 0 : hub_error_set(HUB_ERETRY, "maintenance lease of %s lost", repo_key);
}

void db_repo_maint_end(const char *repo_key) {
  char maint[160];
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return;
  if (maint_lease_name(maint, sizeof maint, repo_key) < 0) return;
  if (db_lease_drop(maint) < 0)
    fprintf(stderr, "modelhub: cannot release %s (expires by itself): %s\n", maint,
            hub_error_msg());
}

void db_repo_unlock(const char *repo_key, const char *ref) {
  char name[512];
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) return;
  if (ref_lease_name(name, sizeof name, repo_key, ref) < 0) return;
  if (db_lease_drop(name) < 0)
    fprintf(stderr, "modelhub: cannot release %s (expires by itself): %s\n", name, hub_error_msg());
}

int db_kv_claim(const char *key, void *val, size_t len) {
  size_t n = 0;
  db_stmt *st = db_prep("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO NOTHING");
  int rc;
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  db_bind_blob(st, 2, val, len);
  if ((rc = db_step_done(st)) < 0) return rc;
  if ((rc = db_kv_get(key, val, len, &n)) < 0) return rc;
  if (n != len)
    return hub_error_set(HUB_ERROR, "kv %s: stored value has %zu bytes, not %zu", key, n, len);
  return 0;
}

/* ---- counters ------------------------------------------------------------------------ */

int db_counter_add(const char *key, int64_t window_ms) {
  static _Atomic unsigned calls;
  int64_t now = db_now_ms();
  int rc;
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE))
    return hub_error_set(HUB_EUNSUPPORTED, "no shared counters in this process");
  db_stmt *st = db_prep("INSERT INTO node_counters(key, start_ms, n) VALUES(?1, ?2, 1)"
                        " ON CONFLICT(key) DO UPDATE SET"
                        " n = CASE WHEN node_counters.start_ms <= ?3 THEN 1"
                        " ELSE node_counters.n + 1 END,"
                        " start_ms = CASE WHEN node_counters.start_ms <= ?3 THEN ?2"
                        " ELSE node_counters.start_ms END");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  db_bind_int64(st, 2, now);
  db_bind_int64(st, 3, now - window_ms);
  if ((rc = db_step_done(st)) < 0) return rc;
  /* Now and then, forget windows long over (a spray of names must not grow the table). */
  if (++calls % 256 == 0 && (st = db_prep("DELETE FROM node_counters WHERE start_ms < ?"))) {
    db_bind_int64(st, 1, now - window_ms);
    db_step_done(st);
  }
  return 0;
}

int db_counter_get(const char *key, int64_t window_ms, int *out_n, int64_t *out_start_ms) {
  int rc;
  *out_n = 0;
  *out_start_ms = 0;
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE))
    return hub_error_set(HUB_EUNSUPPORTED, "no shared counters in this process");
  db_stmt *st = db_prep("SELECT n, start_ms FROM node_counters WHERE key=? AND start_ms > ?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  db_bind_int64(st, 2, db_now_ms() - window_ms);
  rc = db_step(st);
  if (rc == DB_ROW) {
    *out_n = (int)db_col_int64(st, 0);
    *out_start_ms = db_col_int64(st, 1);
  }
  db_reset(st);
  return rc < 0 ? rc : 0;
}

int db_counter_clear(const char *key) {
  if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE))
    return hub_error_set(HUB_EUNSUPPORTED, "no shared counters in this process");
  db_stmt *st = db_prep("DELETE FROM node_counters WHERE key=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  return db_step_done(st);
}
