/* The community tables (db/gov.c, db/discussions.c, db/collections.c) through the statement
 * layer, the same cases on SQLite and on a throwaway PostgreSQL cluster started with
 * scripts/pg.sh (skipped, loudly, when the PostgreSQL binaries are missing): discussions and
 * their filters (the author compared case-insensitively), protections and settings, stage
 * history, thread events, collections and their items, listings with every filter, and a
 * database that is down answering HUB_EUNAVAILABLE (503), not a 500. */
#include "unit.h"
#include "pgtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/collections.h"
#include "db/db.h"
#include "db/discussions.h"
#include "db/events.h"
#include "db/gov.h"
#include "db/stmt.h"
#include "util/error.h"

static char g_sqlite_dir[] = "/tmp/mh-dbcomm-XXXXXX";
static char g_pg_dir[] = "/tmp/mh-pgcomm-XXXXXX";
static char g_pg_url[512];
static int g_pg_up, g_ready[2];
enum { ENG_SQLITE, ENG_PG };
static int eng_sqlite = ENG_SQLITE, eng_pg = ENG_PG;

static int pg_script(const char *verb, char *out, size_t cap) {
  return pgtest_run(verb, g_pg_dir, out, cap);
}

static int group_setup(void **state) {
  (void)state;
  if (!mkdtemp(g_sqlite_dir) || !mkdtemp(g_pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(g_sqlite_dir)) return -1;
  int rc = pg_script("start", g_pg_url, sizeof g_pg_url);
  if (rc == 3)
    fprintf(stderr, "\n*** test_db_community: PostgreSQL binaries missing (apt-get install "
                    "postgresql): the PostgreSQL cases are SKIPPED ***\n\n");
  else if (rc != 0) {
    fprintf(stderr, "test_db_community: scripts/pg.sh start failed (%d)\n", rc);
    return -1;
  }
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

/* What the community tables refer to, on PostgreSQL (its own cluster: no core schema there;
 * SQLite has the real one from db_global_init and db_events_init). */
static const char PG_BASE[] =
    "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
    "CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2',"
    " deterministic = false);"
    "CREATE TABLE accounts(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE memberships(org_id INTEGER NOT NULL REFERENCES accounts(id),"
    " user_id INTEGER NOT NULL REFERENCES accounts(id), role INTEGER NOT NULL,"
    " PRIMARY KEY(org_id, user_id));"
    "CREATE TABLE repos(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, type INTEGER NOT NULL,"
    " ns TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id), owner_is_org INTEGER NOT NULL,"
    " private INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, likes INTEGER NOT NULL DEFAULT 0,"
    " downloads INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL,"
    " repo_uid TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL, old TEXT NOT NULL,"
    " new TEXT NOT NULL, actor TEXT NOT NULL, token TEXT NOT NULL, ts_ms INTEGER NOT NULL);";

/* Rows the cases share: alice (1), bob (2), org (3) with bob a member; alice's public
 * repo (1, 5 likes) and org's private one (2); one ref move. */
static const char ROWS[] =
    "INSERT INTO accounts(id, uid, kind, name, created_ms) VALUES"
    " (1, 'u1', 0, 'Alice', 1), (2, 'u2', 0, 'bob', 1), (3, 'o1', 1, 'Org', 1);"
    "INSERT INTO memberships(org_id, user_id, role) VALUES(3, 2, 1);"
    "INSERT INTO repos(id, uid, type, ns, name, owner_id, owner_is_org, private, created_ms,"
    " updated_ms, likes) VALUES(1, 'r1', 0, 'alice', 'm', 1, 0, 0, 1, 1, 5),"
    " (2, 'r2', 0, 'org', 'p', 3, 1, 1, 1, 1, 0);"
    "INSERT INTO events(repo_id, repo_uid, kind, ref, old, new, actor, token, ts_ms)"
    " VALUES(1, 'r1', 'update', 'refs/pr/1', 'a', 'b', 'alice', '', 5);";

/* Select the case's engine and create its tables once; 0 when the case is skipped. */
static int use(void **state) {
  int e = *(int *)*state;
  if (e == ENG_PG) {
    if (!g_pg_up) return 0;
    assert_int_equal(db_engine_select(g_pg_url), 0);
  } else
    assert_int_equal(db_engine_select("sqlite"), 0);
  if (!g_ready[e]) {
    if (e == ENG_PG)
      assert_int_equal(db_exec(PG_BASE), 0);
    else
      assert_int_equal(db_events_init(), 0);
    assert_int_equal(db_gov_init(), 0);
    assert_int_equal(db_disc_init(), 0);
    assert_int_equal(db_collections_init(), 0);
    assert_int_equal(db_gov_init(), 0); /* applied once */
    assert_int_equal(db_exec(ROWS), 0);
    g_ready[e] = 1;
  }
  return 1;
}

#define USE_OR_SKIP()                                                                              \
  do {                                                                                             \
    if (!use(state)) {                                                                             \
      skip();                                                                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static int count_disc(const db_gov_discussion *d, void *payload) {
  (void)d;
  ++*(int *)payload;
  return 0;
}

static void stage_row(const char *commit, const char *prev, const char *actor, const char *reason,
                      int64_t ts_ms, void *payload) {
  char *out = payload;
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "%s<%s:%s:%s:%lld;", commit, prev, actor, reason, (long long)ts_ms);
}

static void test_gov(void **state) {
  USE_OR_SKIP();
  db_gov_rule rules[2] = {{"main", 1, 1, 0}, {"v*", 0, 1, 1}}, got[4];
  size_t n = 0;
  int imm = -1, appr = -1;
  assert_int_equal(db_gov_settings(1, &imm, &appr), 0);
  assert_int_equal(imm, -1); /* no row: left alone */
  assert_int_equal(db_gov_protections_save(1, 1, rules, 2, 1, 3), 0);
  assert_int_equal(db_gov_rules(1, got, 4, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(got[0].pattern, "main");
  assert_int_equal(db_gov_protections_save(1, 1, rules + 1, 1, 0, 2), 0); /* replaces */
  assert_int_equal(db_gov_protections_save(1, 0, NULL, 0, 1, 2), 0);      /* settings only */
  assert_int_equal(db_gov_rules(1, got, 4, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(got[0].pattern, "v*");
  assert_int_equal(got[0].require_pr, 1);
  assert_int_equal(db_gov_settings(1, &imm, &appr), 0);
  assert_int_equal(imm, 1);
  assert_int_equal(appr, 2);

  assert_int_equal(db_gov_pr_opened(1, 1, "PR one", 1, "main", 10), 0);
  assert_int_equal(db_gov_pr_opened(1, 1, "ignored", 1, "main", 10), 0); /* already there */
  assert_int_equal(db_disc_insert(1, 2, "Disc two", "open", 0, 2, NULL, 11), 0);
  db_gov_discussion d;
  assert_int_equal(db_gov_discussion_get(1, 1, &d), 0);
  assert_string_equal(d.title, "PR one");
  assert_string_equal(d.author, "Alice");
  assert_string_equal(d.status, "open");
  assert_int_equal(d.is_pr, 1);
  free(d.title);
  assert_int_equal(db_gov_discussion_get(1, 9, &d), HUB_ENOTFOUND);

  int64_t cnt = 0;
  assert_int_equal(db_gov_discussion_count(1, -1, "all", NULL, &cnt), 0);
  assert_int_equal(cnt, 2);
  assert_int_equal(db_gov_discussion_count(1, 1, "open", NULL, &cnt), 0);
  assert_int_equal(cnt, 1);
  assert_int_equal(db_gov_discussion_count(1, -1, "all", "ALICE", &cnt), 0); /* NOCASE */
  assert_int_equal(cnt, 1);
  int rows = 0;
  assert_int_equal(db_gov_discussion_list(1, -1, "open", "BoB", 10, 0, count_disc, &rows), 0);
  assert_int_equal(rows, 1);
  rows = 0;
  assert_int_equal(db_gov_discussion_list(1, -1, "all", NULL, 10, 1, count_disc, &rows), 0);
  assert_int_equal(rows, 1);

  int changed = -1;
  assert_int_equal(db_gov_mark_merged(1, 1, "abc", "alice", 20, &changed), 0);
  assert_int_equal(changed, 1);
  assert_int_equal(db_gov_mark_merged(1, 1, "abc", "alice", 20, &changed), 0);
  assert_int_equal(changed, 0);
  assert_int_equal(db_gov_set_status(1, 1, "open", 21), 0); /* merged stays merged */
  assert_int_equal(db_gov_discussion_count(1, -1, "closed", NULL, &cnt), 0);
  assert_int_equal(cnt, 1);

  char hist[256] = "";
  assert_int_equal(db_gov_stage_record(1, "prod", "c2", "c1", "alice", "ship", 30), 0);
  assert_int_equal(db_gov_stage_record(1, "prod", "c3", "c2", "bob", "again", 31), 0);
  assert_int_equal(db_gov_stage_history(1, "prod", 10, stage_row, hist), 0);
  assert_string_equal(hist, "c3<c2:bob:again:31;c2<c1:alice:ship:30;");
}

static int event_row(const db_disc_event *e, void *payload) {
  char *out = payload;
  size_t n = strlen(out);
  snprintf(out + n, 512 - n, "%s/%s/%s/%s/%d/%d/%s/%s;", e->uid, e->type, e->author, e->raw,
           e->hidden, e->edits, e->editor, e->hidden_by);
  return 0;
}

static int move_row(const db_disc_ref_move *m, void *payload) {
  char *out = payload;
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "%s %s>%s %s;", m->kind, m->old, m->new_, m->actor);
  return 0;
}

static void test_discussions(void **state) {
  USE_OR_SKIP();
  int num = 0;
  assert_int_equal(db_disc_next_num(7, &num), 0);
  assert_int_equal(num, 1);
  assert_int_equal(db_disc_insert(1, 5, "Five", "draft", 1, 2, "main", 40), 0);
  assert_int_equal(db_disc_insert(1, 5, "dup", "open", 0, 2, NULL, 40), HUB_EEXISTS);
  assert_string_equal(hub_error_msg(), "discussion number already taken");
  assert_int_equal(db_disc_next_num(1, &num), 0);
  assert_int_equal(num, 6);
  assert_int_equal(db_disc_set_title(1, 5, "Renamed", 41), 0);
  assert_int_equal(db_disc_set_merge_prev(1, 5, "prevsha"), 0);
  char prev[41];
  assert_int_equal(db_disc_merge_prev(1, 5, prev), 0);
  assert_string_equal(prev, "prevsha");
  db_gov_discussion d;
  assert_int_equal(db_gov_discussion_get(1, 5, &d), 0);
  assert_string_equal(d.title, "Renamed");
  assert_string_equal(d.target, "main");
  free(d.title);

  assert_int_equal(db_disc_event_add(1, 5, "e1", "comment", 2, "hello", "[1]", 42), 0);
  assert_int_equal(db_disc_event_add(1, 5, "e2", "status-change", 1, NULL, NULL, 43), 0);
  assert_int_equal(db_disc_event_add(1, 5, "e2", "comment", 1, "x", NULL, 43), HUB_EEXISTS);
  assert_int_equal(db_disc_comment_edit(1, 5, "e1", "hello2", "[1,2]", 1, 44), 0);
  assert_int_equal(db_disc_comment_hide(1, 5, "e2", 2, 45), 0);
  db_disc_event e;
  assert_int_equal(db_disc_event_get(1, 5, "e1", &e), 0);
  assert_string_equal(e.raw, "hello2");
  assert_string_equal(e.data, "[1,2]");
  assert_int_equal(e.edits, 1);
  assert_string_equal(e.editor, "Alice");
  db_disc_event_dispose(&e);
  assert_int_equal(db_disc_event_get(1, 5, "nope", &e), HUB_ENOTFOUND);
  char evs[512] = "";
  assert_int_equal(db_disc_events_each(1, 5, event_row, evs), 0);
  assert_string_equal(evs, "e1/comment/bob/hello2/0/1/Alice/;e2/status-change/Alice//1/0//bob;");
  char moves[256] = "";
  assert_int_equal(db_disc_ref_moves(1, "r1", "refs/pr/1", 10, move_row, moves), 0);
  assert_string_equal(moves, "update a>b alice;");
}

static int coll_row(const db_collection *c, void *payload) {
  char *out = payload;
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "%s:%d:%lld;", c->title, c->position, (long long)c->nitems);
  return 0;
}

static const char *list(db_collection_filter *f, char out[256]) {
  out[0] = 0;
  assert_int_equal(db_collection_list(f, coll_row, out), 0);
  return out;
}

static int item_row(const db_collection_item *it, void *payload) {
  char *out = payload;
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "%s:%lld:%s:%d:%lld;", it->kind, (long long)it->ref_id, it->note,
           it->position, (long long)it->likes);
  return 0;
}

static void test_collections(void **state) {
  USE_OR_SKIP();
  db_collection a = {0}, b, c, g;
  char existing[25] = "", out[256];
  snprintf(a.oid, sizeof a.oid, "aaaaaaaaaaaaaaaaaaaaaaa1");
  a.owner_id = 1;
  snprintf(a.title, sizeof a.title, "My Models");
  snprintf(a.slug_title, sizeof a.slug_title, "my-models");
  snprintf(a.theme, sizeof a.theme, "blue");
  a.created_ms = 100;
  assert_int_equal(db_collection_create(&a, 10, existing), 0);
  assert_true(a.id > 0);
  assert_int_equal(a.position, 0);
  b = a;
  snprintf(b.oid, sizeof b.oid, "aaaaaaaaaaaaaaaaaaaaaaa2");
  snprintf(b.title, sizeof b.title, "Other stuff");
  snprintf(b.slug_title, sizeof b.slug_title, "other");
  b.is_private = 1;
  assert_int_equal(db_collection_create(&b, 10, existing), 0);
  assert_int_equal(b.position, 1);
  c = b;
  snprintf(c.oid, sizeof c.oid, "aaaaaaaaaaaaaaaaaaaaaaa3");
  assert_int_equal(db_collection_create(&c, 10, existing), HUB_EEXISTS);
  assert_string_equal(existing, b.oid);
  snprintf(c.slug_title, sizeof c.slug_title, "third");
  assert_int_equal(db_collection_create(&c, 2, existing), HUB_ETOOBIG);
  assert_int_equal(db_collection_get(a.oid, &g), 0);
  assert_int_equal(g.id, a.id);
  assert_int_equal(db_collection_get("nope", &g), HUB_ENOTFOUND);
  b.updated_ms = 200;
  assert_int_equal(db_collection_update(&b, 0), 0);
  assert_int_equal(db_collection_by_id(b.id, &g), 0);
  assert_int_equal(g.position, 0);
  assert_int_equal(g.updated_ms, 200);

  db_collection_item i1 = {0}, i2 = {0}, i3 = {0};
  i1.collection_id = a.id;
  snprintf(i1.kind, sizeof i1.kind, "model");
  i1.ref_id = 1;
  assert_int_equal(db_collection_item_add(&i1, "nice", 10, 300), 0);
  assert_true(i1.id > 0);
  assert_int_equal(db_collection_item_add(&i1, "again", 10, 300), HUB_EEXISTS);
  i2.collection_id = a.id;
  snprintf(i2.kind, sizeof i2.kind, "collection");
  i2.ref_id = b.id;
  assert_int_equal(db_collection_item_add(&i2, NULL, 10, 301), 0);
  assert_true(i2.id > i1.id);
  assert_int_equal(i2.position, 1);
  i3 = i1;
  i3.ref_id = 2;
  assert_int_equal(db_collection_item_add(&i3, NULL, 2, 302), HUB_ETOOBIG);
  assert_int_equal(db_collection_item_update(a.id, i2.oid, "moved", 0, 303), 0);
  assert_int_equal(db_collection_item_update(a.id, "nope", "x", 0, 303), HUB_ENOTFOUND);
  out[0] = 0;
  assert_int_equal(db_collection_items(a.id, 10, item_row, out), 0);
  char want[128];
  snprintf(want, sizeof want, "collection:%lld:moved:0:0;model:1:nice:1:5;", (long long)b.id);
  assert_string_equal(out, want);
  int64_t vis = 0;
  assert_int_equal(db_collection_count_visible(a.id, 0, 0, &vis), 0);
  assert_int_equal(vis, 1); /* b is private */
  assert_int_equal(db_collection_count_visible(a.id, 1, 0, &vis), 0);
  assert_int_equal(vis, 2);
  assert_int_equal(db_collection_count_visible(a.id, 0, 1, &vis), 0);
  assert_int_equal(vis, 2);

  db_collection_filter f = {0};
  f.limit = 10;
  assert_string_equal(list(&f, out), "My Models:1:2;");
  f.viewer_admin = 1;
  assert_string_equal(list(&f, out), "Other stuff:0:0;My Models:1:2;");
  f.q = "MODEL"; /* case-insensitive substring */
  assert_string_equal(list(&f, out), "My Models:1:2;");
  f.q = "z";
  assert_string_equal(list(&f, out), "");
  f.q = NULL;
  f.viewer_admin = 0;
  f.viewer_id = 1;
  f.item_kind = "collection";
  f.item_ref = b.id;
  f.sort = DB_COLL_SORT_UPVOTES;
  assert_string_equal(list(&f, out), "My Models:1:2;");
  int64_t owners[1] = {1};
  f.q = "my";
  f.owner_ids = owners;
  f.nowners = 1;
  f.sort = DB_COLL_SORT_LAST_MODIFIED;
  assert_string_equal(list(&f, out), "My Models:1:2;");
  memset(&f, 0, sizeof f);
  f.viewer_id = 2;
  f.limit = 1;
  f.offset = 1;
  assert_string_equal(list(&f, out), "");

  assert_int_equal(db_collection_item_delete(a.id, i2.oid, 304), 0);
  assert_int_equal(db_collection_item_delete(a.id, i2.oid, 304), HUB_ENOTFOUND);
  assert_int_equal(db_collection_delete(b.id), 0);
  assert_int_equal(db_collection_by_id(a.id, &g), 0);
  assert_int_equal(g.position, 0); /* renumbered */
  assert_int_equal(g.nitems, 1);
}

/* A database that cannot be reached: 503 (HUB_EUNAVAILABLE) from reads, listings and
 * write transactions alike, never a 500. */
static void test_unavailable(void **state) {
  (void)state;
  if (!g_pg_up) {
    skip();
    return;
  }
  db_stmt_thread_end(); /* drop the connection to the test cluster */
  assert_int_equal(db_engine_select("postgresql://modelhub@127.0.0.1:1/modelhub"), 0);
  int a = 0, b = 0;
  int64_t n = 0;
  assert_int_equal(db_gov_settings(1, &a, &b), HUB_EUNAVAILABLE);
  assert_int_equal(db_gov_discussion_count(1, -1, "all", NULL, &n), HUB_EUNAVAILABLE);
  assert_int_equal(db_disc_next_num(1, &a), HUB_EUNAVAILABLE);
  db_collection_filter f = {0};
  f.limit = 1;
  assert_int_equal(db_collection_list(&f, coll_row, (char[256]){0}), HUB_EUNAVAILABLE);
  assert_int_equal(db_collection_delete(1), HUB_EUNAVAILABLE);
  assert_int_equal(db_gov_protections_save(1, 0, NULL, 0, 0, 4), HUB_EUNAVAILABLE);
  db_stmt_thread_end();
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &eng_sqlite), cmocka_unit_test_prestate(fn, &eng_pg)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_gov),
      BOTH(test_discussions),
      BOTH(test_collections),
      cmocka_unit_test(test_unavailable),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
