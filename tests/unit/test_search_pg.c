/* Listings on PostgreSQL (docs/search.md, "On PostgreSQL"): the same small catalog seeded
 * on SQLite and on a throwaway PostgreSQL cluster (scripts/pg.sh; the PostgreSQL part is
 * skipped, loudly, only when its binaries are missing) gives the same pages for id
 * substrings, card phrases, filters, sorts and cursors, with the in-memory index off and
 * on; after renames, card and tag edits, a new repo and downloads moving, the index stays
 * exact on PostgreSQL too (the "search-pg" change-stamp triggers). */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/db.h"
#include "db/search.h"
#include "db/search_pg.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-spg-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-spgc-XXXXXX";
static char g_pg_url[512];
static int g_pg_up;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

/* scripts/pg.sh of this checkout: from the current directory, else up from the binary. */

/* The core tables listings read (PostgreSQL only: the core schema of conn.c makes them in
 * the server; the SQLite side here is db_global_init's). SQLite dialect, rewritten by the
 * layer like every migration text. */
static const char CORE_TABLES[] =
    "CREATE TABLE accounts(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " fullname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',"
    " password_hash TEXT NOT NULL DEFAULT '', is_admin INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE memberships(org_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " role INTEGER NOT NULL, PRIMARY KEY(org_id, user_id));"
    "CREATE TABLE repos(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, type INTEGER NOT NULL,"
    " ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id), owner_is_org INTEGER NOT NULL,"
    " private INTEGER NOT NULL DEFAULT 0, gated TEXT NOT NULL DEFAULT '',"
    " disabled INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, head_sha TEXT NOT NULL DEFAULT '',"
    " last_modified_ms INTEGER NOT NULL DEFAULT 0, downloads INTEGER NOT NULL DEFAULT 0,"
    " downloads_all INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0,"
    " trending REAL NOT NULL DEFAULT 0, chg INTEGER NOT NULL DEFAULT 0,"
    " dchg INTEGER NOT NULL DEFAULT 0, UNIQUE(type, ns, name));"
    "CREATE INDEX repos_sort_downloads ON repos(type, downloads, id);"
    "CREATE INDEX repos_sort_likes ON repos(type, likes, id);"
    "CREATE INDEX repos_sort_trending ON repos(type, trending, id);"
    "CREATE INDEX repos_sort_created ON repos(type, created_ms, id);"
    "CREATE INDEX repos_sort_modified ON repos(type, last_modified_ms, id);"
    "CREATE INDEX repos_author_downloads ON repos(type, ns, downloads, id);"
    "CREATE INDEX repos_chg ON repos(chg);"
    "CREATE INDEX repos_dchg ON repos(dchg);"
    "CREATE TABLE repo_meta(repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,"
    " pipeline_tag TEXT NOT NULL DEFAULT '', library_name TEXT NOT NULL DEFAULT '',"
    " num_params INTEGER NOT NULL DEFAULT 0, synthetic INTEGER NOT NULL DEFAULT 0,"
    " tags TEXT NOT NULL DEFAULT '[]', meta TEXT NOT NULL DEFAULT '{}',"
    " card_text TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX repo_meta_pipeline ON repo_meta(pipeline_tag);"
    "CREATE TABLE repo_tags(tag TEXT NOT NULL, repo_id INTEGER NOT NULL"
    " REFERENCES repos(id) ON DELETE CASCADE, PRIMARY KEY(tag, repo_id));"
    "CREATE INDEX repo_tags_repo ON repo_tags(repo_id);"
    "CREATE TABLE downloads_daily(repo_id INTEGER NOT NULL REFERENCES repos(id)"
    " ON DELETE CASCADE, day INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(repo_id, day));"
    "CREATE TABLE likes(user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY(user_id, repo_id));"
    "CREATE TABLE model_edges(base TEXT NOT NULL COLLATE NOCASE,"
    " child_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
    " relation TEXT NOT NULL, PRIMARY KEY(base, child_id));"
    "CREATE TABLE repo_seq(k INTEGER PRIMARY KEY CHECK(k=1), n INTEGER NOT NULL);"
    "INSERT INTO repo_seq VALUES(1, 0);";

static int group_setup(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3)
    fprintf(stderr, "\n*** test_search_pg: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL comparison is SKIPPED ***\n\n");
  else if (rc != 0)
    return -1;
  g_pg_up = rc == 0;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  db_stmt_thread_end();
  db_engine_select("sqlite");
  db_global_shutdown();
  if (g_pg_up) pg_script("stop", NULL, 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", g_sqlite_dir, g_pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- one catalog, the same on both engines ---- */

static uint64_t g_rng;
static unsigned rnd(unsigned n) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (unsigned)(g_rng % n);
}

#define NREPOS 800
static const char *FAM[] = {"llama", "Mistral", "qwen", "phi", "gemma", "LLaMA-x"};
static const char *SIZE[] = {"7B", "13B", "0.5B", "70b"};
static const char *SUF[] = {"instruct", "chat", "GGUF", "base", "story_teller"};
static const char *TASK[] = {"text-generation", "text-classification", "fill-mask"};
static const char *LANG[] = {"en", "fr", "de"};
static const char *LIC[] = {"apache-2.0", "mit", "llama2"};

static int64_t owners[12];

static void seed(void) {
  g_rng = 0x5eed1234abcdULL;
  db_bulk_mode();
  assert_int_equal(db_tx("BEGIN IMMEDIATE"), 0);
  for (int i = 0; i < 12; i++) {
    char name[32];
    snprintf(name, sizeof name, "%s%d", i % 4 == 0 ? "org" : "user", i);
    assert_int_equal(db_seed_account(name, i % 4 == 0 ? 1 : 0, &owners[i]), 0);
  }
  for (int i = 0; i < NREPOS; i++) {
    int o = (int)rnd(12), type = rnd(10) < 7 ? 0 : rnd(3) ? 1 : 2;
    const char *fam = FAM[rnd(6)], *size = SIZE[rnd(4)], *suf = SUF[rnd(5)];
    const char *task = TASK[rnd(3)], *lang = LANG[rnd(3)], *lic = LIC[rnd(3)];
    char ns[32], name[96], uid[25], card[512], tl[48];
    snprintf(ns, sizeof ns, "%s%d", o % 4 == 0 ? "org" : "user", o);
    snprintf(name, sizeof name, "%s-%s-%s-%d", fam, size, suf, i);
    snprintf(uid, sizeof uid, "5eed%020x", (unsigned)i);
    db_seed_repo_row w = {.type = type,
                          .ns = ns,
                          .name = name,
                          .uid = uid,
                          .head_sha = "",
                          .owner_id = owners[o],
                          .owner_is_org = o % 4 == 0,
                          .is_private = rnd(20) == 0};
    w.created_ms = 1700000000000LL + (int64_t)rnd(1000000) * 1000;
    w.modified_ms = w.created_ms + (int64_t)rnd(100000) * 1000;
    w.downloads30 = rnd(4) ? (int64_t)rnd(100000) : 0;
    w.downloads_all = w.downloads30 * 3;
    w.likes = (int64_t)rnd(50);
    w.recent = w.downloads30 / 4;
    w.day = 20000;
    w.trending = (double)rnd(10000) / 7.0;
    int64_t id;
    assert_int_equal(db_seed_repo(&w, &id), 0);
    snprintf(card, sizeof card,
             "# %s\n\nA %s %s model (%s) for %s, trained on data. Language: %s.%s\n", name, fam,
             size, suf, task, lang, rnd(5) ? "" : " Café-style, naïve résumé; x_y. it's");
    snprintf(tl, sizeof tl, "license:%s", lic);
    const char *tags[] = {task, lang, tl};
    db_meta m = {"{}", "[]", type ? "" : task,
                 "",   card, (int64_t)(rnd(70) + 1) * 1000000000LL,
                 1,    tags, 3,
                 NULL, 0,    NULL};
    assert_int_equal(db_seed_meta(id, &m), 0);
  }
  assert_int_equal(db_tx("COMMIT"), 0);
}

/* ---- listings as text: "id,id,…|" per page, following cursors ---- */

typedef struct {
  char *s;
  size_t len, cap;
} text;

static void put(text *t, const char *s) {
  size_t n = strlen(s);
  if (t->len + n + 1 > t->cap) {
    t->cap = (t->cap + n + 1) * 2;
    t->s = realloc(t->s, t->cap);
    assert_non_null(t->s);
  }
  memcpy(t->s + t->len, s, n + 1);
  t->len += n;
}

static int collect(const db_search_row *row, void *payload) {
  char one[32];
  snprintf(one, sizeof one, "%lld,", (long long)row->repo.id);
  put(payload, one);
  return 0;
}

static void pages(text *t, db_search_query q, int mode) {
  db_search_accel_mode(mode);
  db_search_cursor next;
  for (int page = 0; page < 80; page++) {
    int more = 0;
    int rc = db_search(&q, collect, t, &next, &more);
    if (rc) fail_msg("db_search: %d %s", rc, hub_error_msg());
    put(t, "|");
    if (!more) break;
    q.after = &next;
  }
  db_search_accel_mode(1);
}

static db_search_query query(const char *term, int sort, int dir, size_t limit) {
  db_search_query q;
  memset(&q, 0, sizeof q);
  q.min_params = q.max_params = -1;
  if (term) q.search[q.nsearch++] = term;
  q.sort = sort;
  q.dir = dir;
  q.limit = limit;
  return q;
}

/* Every shape, index off ("0:") and, for term searches, on ("2:"); each must agree. */
static char *listings(void) {
  static const struct {
    const char *term;
    int sort, dir;
    size_t limit;
  } T[] = {
      {"llama", DB_SORT_RELEVANCE, -1, 9},
      {"LLama", DB_SORT_DOWNLOADS, -1, 11},
      {"llama", DB_SORT_DOWNLOADS, 1, 13},
      {"7b", DB_SORT_RELEVANCE, -1, 40},
      {"B-", DB_SORT_DOWNLOADS, -1, 30},
      {"mistral-7B", DB_SORT_RELEVANCE, -1, 5},
      {"user1/llama", DB_SORT_RELEVANCE, -1, 5},
      {"trained on", DB_SORT_DOWNLOADS, -1, 97},
      {"Language: fr", DB_SORT_LIKES, -1, 50},
      {"(GGUF) for", DB_SORT_RELEVANCE, -1, 20},
      {"cafe", DB_SORT_RELEVANCE, -1, 20},
      {"NAÏVE résumé", DB_SORT_DOWNLOADS, -1, 20},
      {"story", DB_SORT_RELEVANCE, -1, 20},
      {"x_y", DB_SORT_RELEVANCE, -1, 20},
      {"qw", DB_SORT_CREATED, 1, 30},
      {"_", DB_SORT_DOWNLOADS, -1, 60},
      {"%", DB_SORT_DOWNLOADS, -1, 60},
      {"phi", DB_SORT_PARAMS, -1, 30},
      {"zzz-none", DB_SORT_RELEVANCE, -1, 5},
  };
  text t = {calloc(1, 1), 0, 1};
  for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
    for (int admin = 0; admin < 2; admin++) {
      db_search_query q = query(T[i].term, T[i].sort, T[i].dir, T[i].limit);
      q.viewer_admin = admin;
      text off = {calloc(1, 1), 0, 1}, on = {calloc(1, 1), 0, 1};
      pages(&off, q, 0);
      pages(&on, q, 2);
      if (strcmp(off.s, on.s))
        fail_msg("'%s' sort %d: index off and on differ\noff %s\non  %s", T[i].term, T[i].sort,
                 off.s, on.s);
      put(&t, off.s);
      put(&t, "\n");
      free(off.s);
      free(on.s);
    }
  for (int sort = DB_SORT_TRENDING; sort <= DB_SORT_PARAMS; sort++)
    for (int dir = -1; dir <= 1; dir += 2) {
      db_search_query q = query(NULL, sort, dir, 101);
      q.type = sort % 3;
      pages(&t, q, 0);
      put(&t, "\n");
    }
  db_search_query q = query("llama", DB_SORT_DOWNLOADS, -1, 17);
  q.tags[q.ntags++] = "license:apache-2.0";
  pages(&t, q, 0);
  pages(&t, q, 2);
  q = query(NULL, DB_SORT_LIKES, -1, 23);
  q.tags[q.ntags++] = "fr";
  q.tags[q.ntags++] = "license:mit";
  pages(&t, q, 0);
  q = query(NULL, DB_SORT_TRENDING, -1, 31);
  q.pipeline_tag = "fill-mask";
  q.min_params = 10000000000LL;
  q.max_params = 50000000000LL;
  pages(&t, q, 0);
  q = query("llama", DB_SORT_MODIFIED, -1, 7);
  q.author = "ORG0";
  pages(&t, q, 0);
  q = query("llama", DB_SORT_RELEVANCE, -1, 19);
  q.search[q.nsearch++] = "instruct";
  pages(&t, q, 0);
  q = query("gemma", DB_SORT_DOWNLOADS, -1, 13);
  q.viewer_id = 2;
  pages(&t, q, 0);
  db_search_scope sc[] = {{-1, "USER1"}, {0, "org0/llama-7B-chat-3"}};
  q.viewer_scoped = 1;
  q.viewer_scopes = sc;
  q.nviewer_scopes = 2;
  pages(&t, q, 0);
  return t.s;
}

/* Renames into and out of matches, a card edit, tag edits, privacy, a new repo (one
 * transaction each, like the server's writes), then downloads moving twice. */
static char *after_changes(void) {
  static const char *const STEPS[] = {
      "UPDATE repos SET name='llama' WHERE id=10",
      "UPDATE repos SET name='renamed-away' WHERE id=11",
      "UPDATE repos SET name='x-LLAMA-7B-y' WHERE id=12",
      "UPDATE repos SET private=1 WHERE id=14",
      "UPDATE repo_meta SET card_text='A small llama story, café au lait.' WHERE repo_id=13",
      "INSERT INTO repo_tags(tag, repo_id) SELECT 'license:apache-2.0', id FROM repos"
      " WHERE id IN (15, 16, 17, 18) AND id NOT IN (SELECT repo_id FROM repo_tags"
      " WHERE tag='license:apache-2.0')",
      "DELETE FROM repo_tags WHERE tag='license:apache-2.0' AND repo_id IN (SELECT repo_id"
      " FROM repo_tags WHERE tag='license:apache-2.0' ORDER BY repo_id DESC LIMIT 3)",
  };
  text t = {calloc(1, 1), 0, 1};
  char *s;
  db_count c[] = {{5, 900000}, {77, 500000}, {150, 700000}};
  assert_int_equal(db_downloads_add(c, 3, 20000), 0);
  for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++)
    if (db_exec(STEPS[i])) fail_msg("%s: %s", STEPS[i], hub_error_msg());
  assert_int_equal(db_tx("BEGIN IMMEDIATE"), 0);
  db_seed_repo_row nr = {.type = 0,
                         .ns = "org4",
                         .name = "llama-new",
                         .uid = "5eedfffffffffffffffffff1",
                         .head_sha = "",
                         .owner_id = owners[4],
                         .owner_is_org = 1};
  nr.created_ms = nr.modified_ms = 1700000000000LL;
  nr.downloads30 = 123456;
  int64_t nid;
  assert_int_equal(db_seed_repo(&nr, &nid), 0);
  assert_int_equal(db_tx("COMMIT"), 0);
  put(&t, s = listings());
  free(s);
  assert_int_equal(db_exec("UPDATE repos SET downloads=(id*7919)%5000 WHERE id%7=3"), 0);
  put(&t, s = listings());
  free(s);
  assert_int_equal(db_exec("UPDATE repos SET downloads=downloads+id%13 WHERE id%5=1;"), 0);
  put(&t, s = listings());
  free(s);
  return t.s;
}

static char *run_on(const char *engine) {
  assert_int_equal(db_engine_select(engine), 0);
  db_search_accel_reset();
  if (db_engine() == DB_ENGINE_POSTGRES) {
    db_migration core = {CORE_TABLES, NULL, NULL};
    if (db_migrate("search-pg-test-core", &core, 1) || db__search_pg_migrate())
      fail_msg("schema: %s", hub_error_msg());
  }
  seed();
  text t = {calloc(1, 1), 0, 1};
  char *s = listings(); /* also builds the snapshot the changes are measured against */
  put(&t, s);
  free(s);
  put(&t, s = after_changes());
  free(s);
  db_search_accel_reset();
  return t.s;
}

static void test_pg_listings_match_sqlite(void **state) {
  (void)state;
  if (!g_pg_up) {
    skip();
    return;
  }
  char *lite = run_on("sqlite"), *pg = run_on(g_pg_url);
  assert_true(strlen(lite) > 1000);
  if (strcmp(lite, pg)) {
    size_t at = 0;
    while (lite[at] == pg[at])
      at++;
    size_t from = at > 200 ? at - 200 : 0;
    fail_msg("PostgreSQL listings differ at byte %zu:\nsqlite …%.400s\npg     …%.400s", at,
             lite + from, pg + from);
  }
  free(lite);
  free(pg);
  db_engine_select("sqlite");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pg_listings_match_sqlite),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
