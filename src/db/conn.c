/* Per-thread SQLite connections and statement cache (the SQLite engine's side of the
 * statement layer, db/stmt.c), the core schema (module "core" of db_migrate) and the
 * engine-neutral transaction, read-only and budget calls of db.h. */
#include "db/db.h"
#include "db/engine.h"
#include "db/internal.h"
#include "db/search_pg.h"
#include "db/stmt.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/error.h"

typedef struct {
  sqlite3 *db;
  struct {
    const char *sql;
    sqlite3_stmt *st;
  } cache[DB_STMT_CACHE];
  int n;
  struct {
    char *sql; /* owned copy; NULL = free slot */
    sqlite3_stmt *st;
    unsigned long used; /* LRU clock */
    int busy;
  } text[DB_TEXT_CACHE];
  unsigned long clock;
} thread_conn;

static char g_path[4096];
static char g_dir[4096];
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void conn_free(void *p) {
  thread_conn *tc = p;
  if (!tc) return;
  for (int i = 0; i < tc->n; i++)
    sqlite3_finalize(tc->cache[i].st);
  for (int i = 0; i < DB_TEXT_CACHE; i++) {
    sqlite3_finalize(tc->text[i].st);
    free(tc->text[i].sql);
  }
  sqlite3_close(tc->db);
  free(tc);
}

static void make_key(void) {
  pthread_key_create(&g_key, conn_free);
}

static const char *const MIGRATIONS[] = {
    /* 1: identities, tokens, repos */
    "CREATE TABLE accounts("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " fullname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',"
    " password_hash TEXT NOT NULL DEFAULT '', is_admin INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE memberships("
    " org_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " role INTEGER NOT NULL, PRIMARY KEY(org_id, user_id));"
    "CREATE INDEX memberships_user ON memberships(user_id);"
    "CREATE TABLE tokens("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, role INTEGER NOT NULL, hash TEXT NOT NULL UNIQUE,"
    " created_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL DEFAULT 0,"
    " expires_ms INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE repos("
    " id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, type INTEGER NOT NULL,"
    " ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id), owner_is_org INTEGER NOT NULL,"
    " private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " UNIQUE(type, ns, name));"
    "CREATE TABLE repo_redirects("
    " type INTEGER NOT NULL, ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " PRIMARY KEY(type, ns, name));"
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    /* 2: derived head of the default branch, so reads need not open git */
    "ALTER TABLE repos ADD COLUMN head_sha TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE repos ADD COLUMN last_modified_ms INTEGER NOT NULL DEFAULT 0;",
    /* 3: discovery (docs/search.md): derived card metadata, tag filter, full-text and
     * id-substring search, popularity counters with one sort index per key, likes,
     * daily downloads, base-model edges. */
    "ALTER TABLE repos ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE repos ADD COLUMN downloads_all INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE repos ADD COLUMN likes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE repos ADD COLUMN trending REAL NOT NULL DEFAULT 0;"
    "CREATE INDEX repos_sort_downloads ON repos(type, downloads, id);"
    "CREATE INDEX repos_sort_likes ON repos(type, likes, id);"
    "CREATE INDEX repos_sort_trending ON repos(type, trending, id);"
    "CREATE INDEX repos_sort_created ON repos(type, created_ms, id);"
    "CREATE INDEX repos_sort_modified ON repos(type, last_modified_ms, id);"
    "CREATE INDEX repos_owner ON repos(owner_id);"
    "CREATE TABLE repo_meta("
    " repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    /* small filter columns first: reading them never walks the overflow pages of the
     * large JSON and text columns behind them */
    " pipeline_tag TEXT NOT NULL DEFAULT '', library_name TEXT NOT NULL DEFAULT '',"
    " num_params INTEGER NOT NULL DEFAULT 0, synthetic INTEGER NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '[]', meta TEXT NOT NULL DEFAULT '{}',"
    " card_text TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE repo_tags(tag TEXT NOT NULL, repo_id INTEGER NOT NULL"
    " REFERENCES repos(id) ON DELETE CASCADE, PRIMARY KEY(tag, repo_id)) WITHOUT ROWID;"
    "CREATE INDEX repo_tags_repo ON repo_tags(repo_id);"
    "CREATE VIRTUAL TABLE repo_fts_id USING fts5(name, tokenize='trigram');"
    "INSERT INTO repo_fts_id(rowid, name) SELECT id, ns || '/' || name FROM repos;"
    "CREATE TRIGGER repos_fts_ins AFTER INSERT ON repos BEGIN"
    " INSERT INTO repo_fts_id(rowid, name) VALUES(new.id, new.ns || '/' || new.name); END;"
    "CREATE TRIGGER repos_fts_del AFTER DELETE ON repos BEGIN"
    " DELETE FROM repo_fts_id WHERE rowid=old.id; END;"
    "CREATE TRIGGER repos_fts_upd AFTER UPDATE OF ns, name ON repos BEGIN"
    " DELETE FROM repo_fts_id WHERE rowid=old.id;"
    " INSERT INTO repo_fts_id(rowid, name) VALUES(new.id, new.ns || '/' || new.name); END;"
    "CREATE VIRTUAL TABLE repo_fts_card USING fts5(card_text, content='repo_meta',"
    " content_rowid='repo_id', tokenize='unicode61 remove_diacritics 2');"
    "CREATE TRIGGER repo_meta_fts_ins AFTER INSERT ON repo_meta BEGIN"
    " INSERT INTO repo_fts_card(rowid, card_text) VALUES(new.repo_id, new.card_text); END;"
    "CREATE TRIGGER repo_meta_fts_del AFTER DELETE ON repo_meta BEGIN"
    " INSERT INTO repo_fts_card(repo_fts_card, rowid, card_text)"
    " VALUES('delete', old.repo_id, old.card_text); END;"
    "CREATE TRIGGER repo_meta_fts_upd AFTER UPDATE OF card_text ON repo_meta BEGIN"
    " INSERT INTO repo_fts_card(repo_fts_card, rowid, card_text)"
    " VALUES('delete', old.repo_id, old.card_text);"
    " INSERT INTO repo_fts_card(rowid, card_text) VALUES(new.repo_id, new.card_text); END;"
    "CREATE TABLE downloads_daily(repo_id INTEGER NOT NULL REFERENCES repos(id)"
    " ON DELETE CASCADE, day INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY(repo_id, day)) WITHOUT ROWID;"
    "CREATE INDEX downloads_daily_day ON downloads_daily(day);"
    "CREATE TABLE likes(user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY(user_id, repo_id)) WITHOUT ROWID;"
    "CREATE INDEX likes_repo ON likes(repo_id, created_ms);"
    "CREATE INDEX likes_user ON likes(user_id, created_ms);"
    "CREATE TABLE model_edges(base TEXT NOT NULL COLLATE NOCASE,"
    " child_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " relation TEXT NOT NULL, PRIMARY KEY(base, child_id)) WITHOUT ROWID;"
    "CREATE INDEX model_edges_child ON model_edges(child_id);",
    /* 4: listings at catalog scale (docs/search.md). Author listings read a page from
     * (type, ns, key) indexes; db_search names them with INDEXED BY, so no plan depends on
     * planner statistics. repos.chg is the value of repo_seq.n when a repo's id, downloads,
     * card text (or, from migration 5, tags) last changed: the in-memory search index (db/accel.c)
     * holds a snapshot taken at some n and treats rows with a larger chg as changed since. */
    "CREATE INDEX repos_author_trending ON repos(type, ns, trending, id);"
    "CREATE INDEX repos_author_downloads ON repos(type, ns, downloads, id);"
    "CREATE INDEX repos_author_likes ON repos(type, ns, likes, id);"
    "CREATE INDEX repos_author_created ON repos(type, ns, created_ms, id);"
    "CREATE INDEX repos_author_modified ON repos(type, ns, last_modified_ms, id);"
    "CREATE TABLE repo_seq(k INTEGER PRIMARY KEY CHECK(k=1), n INTEGER NOT NULL);"
    "INSERT INTO repo_seq VALUES(1, 0);"
    "ALTER TABLE repos ADD COLUMN chg INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX repos_chg ON repos(chg);"
    "CREATE TRIGGER repos_chg_ins AFTER INSERT ON repos BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.id; END;"
    "CREATE TRIGGER repos_chg_upd AFTER UPDATE OF type, ns, name, downloads ON repos"
    " WHEN old.type IS NOT new.type OR old.ns IS NOT new.ns OR old.name IS NOT new.name"
    " OR old.downloads IS NOT new.downloads BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.id; END;"
    "CREATE TRIGGER repo_meta_chg_ins AFTER INSERT ON repo_meta BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.repo_id; END;"
    "CREATE TRIGGER repo_meta_chg_upd AFTER UPDATE OF card_text ON repo_meta"
    " WHEN old.card_text IS NOT new.card_text BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.repo_id; END;"
    "CREATE TRIGGER repo_meta_chg_del AFTER DELETE ON repo_meta BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=old.repo_id; END;",
    /* 5: a repo's tags changing counts as a change too: the in-memory index filters
     * candidates by tag bitmaps read after its snapshot (db/accel.c). */
    "CREATE TRIGGER repo_tags_chg_ins AFTER INSERT ON repo_tags BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.repo_id; END;"
    "CREATE TRIGGER repo_tags_chg_del AFTER DELETE ON repo_tags BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=old.repo_id; END;"
    "CREATE TRIGGER repo_tags_chg_upd AFTER UPDATE ON repo_tags BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id IN (old.repo_id, new.repo_id); END;",
    /* 6: a downloads change stamps repos.dchg instead of repos.chg: the repo's id, card and
     * tags are unchanged, only its place in the downloads order moved, which the in-memory
     * index follows without a rebuild (db/accel.c, "downloads moved"). */
    "DROP TRIGGER repos_chg_upd;"
    "CREATE TRIGGER repos_chg_upd AFTER UPDATE OF type, ns, name ON repos"
    " WHEN old.type IS NOT new.type OR old.ns IS NOT new.ns OR old.name IS NOT new.name BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET chg=(SELECT n FROM repo_seq) WHERE id=new.id; END;"
    "ALTER TABLE repos ADD COLUMN dchg INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX repos_dchg ON repos(dchg);"
    "CREATE TRIGGER repos_dchg_upd AFTER UPDATE OF downloads ON repos"
    " WHEN old.downloads IS NOT new.downloads BEGIN"
    " UPDATE repo_seq SET n=n+1;"
    " UPDATE repos SET dchg=(SELECT n FROM repo_seq) WHERE id=new.id; END;",
    /* 7: a pipeline_tag few repos have drives its listing (db/search.c probe_pipeline). */
    "CREATE INDEX repo_meta_pipeline ON repo_meta(pipeline_tag);",
    /* 8: the LFS/Xet objects each repo references (db/objects.h): batch downloads, signed
     * GETs, commits, pushes and Xet reads answer only for these. Filled from existing git
     * history and Xet records once, at the first server start after this step
     * (lfs_objects_backfill, recorded as kv "objects_backfill"). */
    "CREATE TABLE repo_objects(repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY(repo_id, oid)) WITHOUT ROWID;",
};

/* The core schema on PostgreSQL: step 1 of module "core" creates what MIGRATIONS 1-8 build
 * on SQLite (every table, column in the same order, and index), except the FTS5 tables and
 * the triggers: module "search-pg" (db/search_pg.c) adds their PostgreSQL counterparts
 * right after. Steps 2-8 are empty there. COLLATE NOCASE names the case-insensitive
 * collation db_migrate creates. */
static const char PG_CORE_SCHEMA[] =
    "CREATE TABLE accounts("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind BIGINT NOT NULL, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " fullname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',"
    " password_hash TEXT NOT NULL DEFAULT '', is_admin BIGINT NOT NULL DEFAULT 0,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE memberships("
    " org_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " user_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " role BIGINT NOT NULL, PRIMARY KEY(org_id, user_id));"
    "CREATE INDEX memberships_user ON memberships(user_id);"
    "CREATE TABLE tokens("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " user_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, role BIGINT NOT NULL, hash TEXT NOT NULL UNIQUE,"
    " created_ms BIGINT NOT NULL, last_used_ms BIGINT NOT NULL DEFAULT 0,"
    " expires_ms BIGINT NOT NULL DEFAULT 0, revoked BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE repos("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " type BIGINT NOT NULL,"
    " ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " owner_id BIGINT NOT NULL REFERENCES accounts(id), owner_is_org BIGINT NOT NULL,"
    " private BIGINT NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',"
    " disabled BIGINT NOT NULL DEFAULT 0,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    /* 2 */
    " head_sha TEXT NOT NULL DEFAULT '', last_modified_ms BIGINT NOT NULL DEFAULT 0,"
    /* 3 */
    " downloads BIGINT NOT NULL DEFAULT 0, downloads_all BIGINT NOT NULL DEFAULT 0,"
    " likes BIGINT NOT NULL DEFAULT 0, trending DOUBLE PRECISION NOT NULL DEFAULT 0,"
    /* 4, 6 */
    " chg BIGINT NOT NULL DEFAULT 0, dchg BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE(type, ns, name));"
    "CREATE TABLE repo_redirects("
    " type BIGINT NOT NULL, ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " PRIMARY KEY(type, ns, name));"
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value BYTEA NOT NULL);"
    /* 3 */
    "CREATE INDEX repos_sort_downloads ON repos(type, downloads, id);"
    "CREATE INDEX repos_sort_likes ON repos(type, likes, id);"
    "CREATE INDEX repos_sort_trending ON repos(type, trending, id);"
    "CREATE INDEX repos_sort_created ON repos(type, created_ms, id);"
    "CREATE INDEX repos_sort_modified ON repos(type, last_modified_ms, id);"
    "CREATE INDEX repos_owner ON repos(owner_id);"
    "CREATE TABLE repo_meta("
    " repo_id BIGINT PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    " pipeline_tag TEXT NOT NULL DEFAULT '', library_name TEXT NOT NULL DEFAULT '',"
    " num_params BIGINT NOT NULL DEFAULT 0, synthetic BIGINT NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '[]', meta TEXT NOT NULL DEFAULT '{}',"
    " card_text TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE repo_tags(tag TEXT NOT NULL, repo_id BIGINT NOT NULL"
    " REFERENCES repos(id) ON DELETE CASCADE, PRIMARY KEY(tag, repo_id));"
    "CREATE INDEX repo_tags_repo ON repo_tags(repo_id);"
    "CREATE TABLE downloads_daily(repo_id BIGINT NOT NULL REFERENCES repos(id)"
    " ON DELETE CASCADE, day BIGINT NOT NULL, n BIGINT NOT NULL,"
    " PRIMARY KEY(repo_id, day));"
    "CREATE INDEX downloads_daily_day ON downloads_daily(day);"
    "CREATE TABLE likes(user_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " created_ms BIGINT NOT NULL, PRIMARY KEY(user_id, repo_id));"
    "CREATE INDEX likes_repo ON likes(repo_id, created_ms);"
    "CREATE INDEX likes_user ON likes(user_id, created_ms);"
    "CREATE TABLE model_edges(base TEXT NOT NULL COLLATE NOCASE,"
    " child_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " relation TEXT NOT NULL, PRIMARY KEY(base, child_id));"
    "CREATE INDEX model_edges_child ON model_edges(child_id);"
    /* 4 */
    "CREATE INDEX repos_author_trending ON repos(type, ns, trending, id);"
    "CREATE INDEX repos_author_downloads ON repos(type, ns, downloads, id);"
    "CREATE INDEX repos_author_likes ON repos(type, ns, likes, id);"
    "CREATE INDEX repos_author_created ON repos(type, ns, created_ms, id);"
    "CREATE INDEX repos_author_modified ON repos(type, ns, last_modified_ms, id);"
    "CREATE TABLE repo_seq(k BIGINT PRIMARY KEY CHECK(k=1), n BIGINT NOT NULL);"
    "INSERT INTO repo_seq VALUES(1, 0);"
    "CREATE INDEX repos_chg ON repos(chg);"
    /* 6 */
    "CREATE INDEX repos_dchg ON repos(dchg);"
    /* 7 */
    "CREATE INDEX repo_meta_pipeline ON repo_meta(pipeline_tag);"
    /* 8 */
    "CREATE TABLE repo_objects(repo_id BIGINT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " oid TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY(repo_id, oid));";

#define CORE_STEPS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* Work budget of this thread's queries (db_budget_set). SQLite calls budget_tick every
 * BUDGET_TICK virtual-machine steps of any statement on the connection. Work inside an
 * extension (an FTS5 doclist merge) is not counted in steps, hence CPU time as well. */
#define BUDGET_TICK 1000
/* Every connection waits this long for a lock (db_try_without_waiting: not at all). */
#define DB_BUSY_TIMEOUT_MS 10000
static _Thread_local long t_budget, t_spent;
static _Thread_local int64_t t_deadline_us;
static _Thread_local int t_over;

/* The thread's CPU time: under contention wall time would move cheap queries too. */
static int64_t cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int budget_tick(void *unused) {
  (void)unused;
  if (!t_budget) return 0;
  t_spent += BUDGET_TICK;
  if (t_spent > t_budget || cpu_us() > t_deadline_us) t_over = 1;
  return t_over; /* non-zero: the statement stops with SQLITE_INTERRUPT */
}

void db_budget_set(long steps, long usec) {
  t_budget = steps;
  t_spent = 0;
  t_over = 0;
  t_deadline_us = steps ? cpu_us() + usec : 0;
  /* PostgreSQL counts no steps: each statement gets the time (statement_timeout, wall
   * time on the server); one that runs past it is canceled (SQLSTATE 57014). */
  if (db_engine() == DB_ENGINE_POSTGRES)
    db__pg_statement_timeout(steps ? (usec >= 2000 ? usec / 1000 : 1) : 0);
}

int db_budget_exceeded(void) {
  if (db_engine() == DB_ENGINE_POSTGRES) return t_budget && db__pg_timed_out();
  return t_budget && t_over;
}

static _Thread_local int t_readonly; /* db_thread_readonly() */

/* Authorizer of read-only threads: no row changes outside the connection's temp schema. */
static int readonly_auth(void *p, int action, const char *a, const char *b, const char *dbname,
                         const char *trigger) {
  (void)p;
  (void)b;
  (void)trigger;
  if (action != SQLITE_INSERT && action != SQLITE_UPDATE && action != SQLITE_DELETE)
    return SQLITE_OK;
  if (dbname && !strcmp(dbname, "temp")) return SQLITE_OK;
  /* Connecting a virtual table (FTS5) parses its declaration as if it were created; the
   * schema itself cannot change here (query_only refuses DDL). */
  if (a && !strncmp(a, "sqlite_", 7)) return SQLITE_OK;
  fprintf(stderr, "modelhub: BUG: write on a read-only thread (%s %s)\n",
          action == SQLITE_INSERT   ? "INSERT INTO"
          : action == SQLITE_UPDATE ? "UPDATE"
                                    : "DELETE FROM",
          a ? a : "?");
  return SQLITE_DENY;
}

static void make_readonly(sqlite3 *db) {
  sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL);
  sqlite3_set_authorizer(db, readonly_auth, NULL);
}

int db_thread_is_readonly(void) {
  return t_readonly;
}

void db_thread_readonly(void) {
  if (t_readonly) return;
  t_readonly = 1;
  /* PostgreSQL: default_transaction_read_only on this thread's connection (and on every
   * new one after a reconnect): a write fails with SQLSTATE 25006. */
  if (db_engine() == DB_ENGINE_POSTGRES) {
    db__pg_session_readonly();
    return;
  }
  pthread_once(&g_once, make_key);
  thread_conn *tc = pthread_getspecific(g_key);
  if (tc) make_readonly(tc->db);
}

static int open_conn(sqlite3 **out) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    hub_error_set(HUB_ERROR, "cannot open %s: %s", g_path, db ? sqlite3_errmsg(db) : "oom");
    sqlite3_close(db);
    return HUB_ERROR;
  }
  sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
  sqlite3_progress_handler(db, BUDGET_TICK, budget_tick, NULL);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
               /* Temp b-trees (big GROUP BY / ORDER BY) spill to disk instead of growing
                * in memory: every connection thread may run one at once. */
               /* Read through a mapping of the file instead of a read() per page missing
                * from each connection's small private cache (listings touch thousands of
                * pages; docs/search.md). Each thread's connection maps it separately, so
                * the window is bounded. */
               "PRAGMA mmap_size=268435456;",
               NULL, NULL, NULL);
  *out = db;
  return 0;
}

/* SQLite files made before the core schema became module "core" numbered it in PRAGMA
 * user_version (and still do, see core_migrate): record that as the module's version. The
 * write lock only when there is something to record (read again under it). */
static int core_adopt_user_version(void) {
  int rc = db_exec("CREATE TABLE IF NOT EXISTS schema_modules(module TEXT PRIMARY KEY,"
                   " version INTEGER NOT NULL)");
  if (rc) return rc;
  for (int locked = 0;; locked = 1) {
    int64_t uv = 0, core = 0;
    db_stmt *st = db_prep("PRAGMA user_version");
    if (!st || (rc = db_step(st)) < 0) goto fail;
    if (rc == DB_ROW) uv = db_col_int64(st, 0);
    db_reset(st);
    st = db_prep("SELECT version FROM schema_modules WHERE module='core'");
    if (!st || (rc = db_step(st)) < 0) goto fail;
    if (rc == DB_ROW) core = db_col_int64(st, 0);
    db_reset(st);
    if (uv <= core) return locked ? db_tx_commit() : 0;
    if (!locked) {
      if ((rc = db_tx_begin(DB_TX_WRITE))) return rc;
      continue;
    }
    st = db_prep("INSERT INTO schema_modules(module, version) VALUES('core', ?)"
                 " ON CONFLICT(module) DO UPDATE SET version=excluded.version");
    if (!st) goto fail;
    db_bind_int64(st, 1, uv);
    if ((rc = db_step_done(st))) goto fail;
    return db_tx_commit();
  fail:
    rc = hub_error_set(rc < 0 ? rc : HUB_ERROR, "core schema: %s", hub_error_msg());
    if (locked) db_tx_rollback();
    return rc;
  }
}

/* The core schema, module "core": on SQLite step N is MIGRATIONS[N-1] as before, which
 * also keeps PRAGMA user_version at N (older binaries read it); on PostgreSQL step 1 is
 * PG_CORE_SCHEMA and the rest are empty. */
static int core_migrate(void) {
  db_migration steps[CORE_STEPS];
  char *texts[CORE_STEPS] = {0};
  int rc = 0;
  memset(steps, 0, sizeof steps);
  if (db_engine() == DB_ENGINE_POSTGRES) {
    steps[0].postgres = PG_CORE_SCHEMA;
  } else {
    if ((rc = core_adopt_user_version())) return rc;
    for (int v = 0; v < CORE_STEPS; v++) {
      size_t n = strlen(MIGRATIONS[v]) + 64;
      if (!(texts[v] = malloc(n))) {
        rc = hub_error_set(HUB_ERROR, "out of memory");
        goto out;
      }
      snprintf(texts[v], n, "%sPRAGMA user_version=%d;", MIGRATIONS[v], v + 1);
      steps[v].sqlite = texts[v];
    }
  }
  rc = db_migrate("core", steps, CORE_STEPS);
out:
  for (int v = 0; v < CORE_STEPS; v++)
    free(texts[v]);
  return rc;
}

int db_global_init(const char *data_dir) {
  /* One connection per thread, never shared: SQLite's own connection mutexes and its
   * allocation statistics (a global mutex around every malloc) are pure overhead here. */
  sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  pthread_once(&g_once, make_key);
  snprintf(g_dir, sizeof g_dir, "%s", data_dir);
  snprintf(g_path, sizeof g_path, "%s/modelhub.db", data_dir);
  int rc = core_migrate();
  if (!rc) rc = db__search_pg_migrate();
  return rc;
}

int db_migrate_module(const char *module, const char *const *steps, int nsteps) {
  /* Plain step texts: the same on both engines (rewritten on PostgreSQL). */
  db_migration *m = calloc(nsteps > 0 ? (size_t)nsteps : 1, sizeof *m);
  if (!m) return hub_error_set(HUB_ERROR, "out of memory");
  for (int i = 0; i < nsteps; i++)
    m[i].sql = steps[i];
  int rc = db_migrate(module, m, nsteps);
  free(m);
  return rc;
}

void db_global_shutdown(void) {
  db_stmt_thread_end();
  conn_free(pthread_getspecific(g_key));
  pthread_setspecific(g_key, NULL);
}

static thread_conn *tconn(void) {
  if (db_engine() == DB_ENGINE_POSTGRES) {
    /* Code still calling sqlite3_* directly has no database on PostgreSQL. */
    hub_error_set(HUB_ERROR, "sql: this code still uses SQLite directly (--db postgres needs "
                             "it on the statement layer, docs/scale-out.md)");
    return NULL;
  }
  pthread_once(&g_once, make_key);
  thread_conn *tc = pthread_getspecific(g_key);
  if (tc) return tc;
  tc = calloc(1, sizeof *tc);
  if (!tc) return NULL;
  if (open_conn(&tc->db)) {
    free(tc);
    return NULL;
  }
  if (t_readonly) make_readonly(tc->db);
  pthread_setspecific(g_key, tc);
  return tc;
}

sqlite3 *db_conn(void) {
  thread_conn *tc = tconn();
  return tc ? tc->db : NULL;
}

const char *db_data_dir(void) {
  return g_dir;
}

void db_repo_dir(const char *uid, char *out, size_t cap) {
  snprintf(out, cap, "%s/repos/%.2s/%.2s/%s.git", g_dir, uid, uid + 2, uid);
}

sqlite3_stmt *db__stmt(const char *sql) {
  thread_conn *tc = tconn();
  if (!tc) return NULL;
  for (int i = 0; i < tc->n; i++)
    if (tc->cache[i].sql == sql) {
      sqlite3_reset(tc->cache[i].st);
      sqlite3_clear_bindings(tc->cache[i].st);
      return tc->cache[i].st;
    }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(tc->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    hub_error_set(HUB_ERROR, "sql prepare: %s", sqlite3_errmsg(tc->db));
    return NULL;
  }
  if (tc->n < DB_STMT_CACHE) {
    tc->cache[tc->n].sql = sql;
    tc->cache[tc->n].st = st;
    tc->n++;
  } else {
    /* Cache full (a bug in sizing): evict the oldest so we never leak. */
    sqlite3_finalize(tc->cache[0].st);
    memmove(tc->cache, tc->cache + 1, sizeof tc->cache[0] * (DB_STMT_CACHE - 1));
    tc->cache[DB_STMT_CACHE - 1].sql = sql;
    tc->cache[DB_STMT_CACHE - 1].st = st;
  }
  return st;
}

sqlite3_stmt *db__stmt_text(const char *sql) {
  thread_conn *tc = tconn();
  if (!tc) return NULL;
  int victim = -1;
  for (int i = 0; i < DB_TEXT_CACHE; i++) {
    if (tc->text[i].sql && !tc->text[i].busy && !strcmp(tc->text[i].sql, sql)) {
      tc->text[i].busy = 1;
      tc->text[i].used = ++tc->clock;
      return tc->text[i].st;
    }
    if (!tc->text[i].busy && (victim < 0 || !tc->text[i].sql ||
                              (tc->text[victim].sql && tc->text[i].used < tc->text[victim].used)))
      victim = i;
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(tc->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    hub_error_set(HUB_ERROR, "sql prepare: %s", sqlite3_errmsg(tc->db));
    return NULL;
  }
  char *copy = victim >= 0 ? strdup(sql) : NULL;
  if (copy) { /* otherwise it is not cached: finalized by db__stmt_text_done */
    sqlite3_finalize(tc->text[victim].st);
    free(tc->text[victim].sql);
    tc->text[victim].sql = copy;
    tc->text[victim].st = st;
    tc->text[victim].busy = 1;
    tc->text[victim].used = ++tc->clock;
  }
  return st;
}

void db__stmt_text_done(sqlite3_stmt *st) {
  if (!st) return;
  thread_conn *tc = tconn();
  for (int i = 0; tc && i < DB_TEXT_CACHE; i++)
    if (tc->text[i].st == st) {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      tc->text[i].busy = 0;
      return;
    }
  sqlite3_finalize(st);
}

int db__step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_CONSTRAINT) return hub_error_set(HUB_EEXISTS, "already exists");
  return hub_error_set(HUB_ERROR, "sql: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
}

void db__copy(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const unsigned char *s = sqlite3_column_text(st, col);
  snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

void db_read_begin(void) {
  if (!db_tx_active()) db_tx_begin(DB_TX_READ);
}

void db_read_end(void) {
  if (!db_tx_active()) return;
  /* void: the caller's error (a handler's) stays what it was */
  int saved = hub_error_code();
  char msg[512];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  db_tx_commit(); /* rolls back when the commit fails */
  if (saved)
    hub_error_set(saved, "%s", msg);
  else
    hub_error_clear();
}

int db_begin_immediate(void) {
  return db_tx_begin(DB_TX_WRITE);
}

int db_commit(void) {
  return db_tx_commit();
}

void db_rollback(void) {
  db_tx_rollback();
}

int db_in_transaction(void) {
  return db_tx_active();
}

int db_in_read_snapshot(void) {
  if (db_engine() == DB_ENGINE_POSTGRES) return db_tx_active() && db__tx_is_read();
  sqlite3 *db = db_conn();
  return db && !sqlite3_get_autocommit(db) && sqlite3_txn_state(db, "main") != SQLITE_TXN_WRITE;
}

int db_try_without_waiting(int (*fn)(void *arg), void *arg, int *busy) {
  *busy = 0;
  if (db_engine() == DB_ENGINE_POSTGRES) {
    /* lock_timeout: a lock wait (the writers' advisory lock) ends at once with SQLSTATE
     * 55P03 (0 would mean no limit, hence 1 ms). */
    int outside = !db_tx_active();
    if (outside) db__pg_lock_timeout(1);
    db__pg_clear_sqlstate();
    int rc = fn(arg);
    *busy = rc != 0 && !strcmp(db__pg_sqlstate(), "55P03");
    if (outside) db__pg_lock_timeout(0);
    return rc;
  }
  sqlite3 *db = db_conn();
  if (!db) return HUB_ERROR;
  int autocommit = sqlite3_get_autocommit(db);
  if (autocommit) sqlite3_busy_timeout(db, 0);
  int rc = fn(arg);
  *busy = rc == HUB_ERROR && (sqlite3_extended_errcode(db) & 0xff) == SQLITE_BUSY;
  if (autocommit) sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
  return rc;
}

const char *db_errmsg(void) {
  if (db_engine() == DB_ENGINE_POSTGRES) { /* the layer's last error, copied: callers format it */
    static _Thread_local char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return msg;
  }
  sqlite3 *db = db_conn();
  return db ? sqlite3_errmsg(db) : "no database";
}

void db_new_uid(char out[25]) {
  unsigned char raw[12];
  RAND_bytes(raw, sizeof raw);
  for (int i = 0; i < 12; i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int64_t db_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int db_kv_get(const char *key, void *out, size_t cap, size_t *out_len) {
  db_stmt *st = db_prep("SELECT value FROM kv WHERE key=?");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  int rc = db_step(st);
  if (rc != DB_ROW) {
    db_reset(st);
    return rc < 0 ? rc : hub_error_set(HUB_ENOTFOUND, "no setting %s", key);
  }
  const void *p = db_col_blob(st, 0);
  size_t n = db_col_bytes(st, 0);
  if (n > cap) n = cap;
  if (n) memcpy(out, p, n);
  if (out_len) *out_len = n;
  db_reset(st);
  return 0;
}

int db_kv_set(const char *key, const void *val, size_t len) {
  db_stmt *st = db_prep("INSERT INTO kv(key, value) VALUES(?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, key, -1);
  db_bind_blob(st, 2, val, len);
  return db_step_done(st);
}
