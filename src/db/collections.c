/* Collections' tables (see db/collections.h). */
#include "db/collections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util/buf.h"
#include "util/error.h"

/* Module migrations (db_migrate_module "collections"): append steps, never edit one. */
static const char *const STEPS[] = {
    /* 1: collections and their items (a repo or another collection each) */
    "CREATE TABLE collections("
    " id INTEGER PRIMARY KEY, oid TEXT NOT NULL UNIQUE,"
    " owner_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " title TEXT NOT NULL, slug_title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    " private INTEGER NOT NULL DEFAULT 0, theme TEXT NOT NULL, position INTEGER NOT NULL,"
    " upvotes INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX collections_owner ON collections(owner_id, position);"
    "CREATE INDEX collections_updated ON collections(updated_ms);"
    "CREATE TABLE collection_items("
    " id INTEGER PRIMARY KEY, oid TEXT NOT NULL UNIQUE,"
    " collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL,"
    " repo_id INTEGER REFERENCES repos(id) ON DELETE CASCADE,"
    " sub_id INTEGER REFERENCES collections(id) ON DELETE CASCADE,"
    " note TEXT NOT NULL DEFAULT '', position INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX collection_items_one ON"
    " collection_items(collection_id, kind, coalesce(repo_id, sub_id));"
    "CREATE INDEX collection_items_repo ON collection_items(repo_id);"
    "CREATE INDEX collection_items_sub ON collection_items(sub_id);",
};

int db_collections_init(void) {
  return db_migrate_module("collections", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

static int sql_err(sqlite3 *db, const char *what) {
  return hub_error_set(HUB_ERROR, "%s: %s", what, sqlite3_errmsg(db));
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return sql_err(db, "collections");
  return 0;
}

/* One statement run to completion. */
static int exec_done(sqlite3_stmt *st) {
  int s = sqlite3_step(st);
  int rc = s == SQLITE_DONE || s == SQLITE_ROW ? 0 : sql_err(sqlite3_db_handle(st), "collections");
  sqlite3_finalize(st);
  return rc;
}

static int begin(sqlite3 *db) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return sql_err(db, "collections");
  return 0;
}

static int finish(sqlite3 *db, int rc) {
  if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = sql_err(db, "collections");
  if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static void copy_col(char *out, size_t cap, sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
}

#define COLL_COLS                                                                                  \
  "c.id, c.oid, c.owner_id, c.title, c.slug_title, c.description, c.private, c.theme, "            \
  "c.position, c.upvotes, c.created_ms, c.updated_ms, "                                            \
  "(SELECT count(*) FROM collection_items i WHERE i.collection_id=c.id)"

static void read_coll(sqlite3_stmt *st, db_collection *c) {
  memset(c, 0, sizeof *c);
  c->id = sqlite3_column_int64(st, 0);
  copy_col(c->oid, sizeof c->oid, st, 1);
  c->owner_id = sqlite3_column_int64(st, 2);
  copy_col(c->title, sizeof c->title, st, 3);
  copy_col(c->slug_title, sizeof c->slug_title, st, 4);
  copy_col(c->description, sizeof c->description, st, 5);
  c->is_private = sqlite3_column_int(st, 6);
  copy_col(c->theme, sizeof c->theme, st, 7);
  c->position = sqlite3_column_int(st, 8);
  c->upvotes = sqlite3_column_int64(st, 9);
  c->created_ms = sqlite3_column_int64(st, 10);
  c->updated_ms = sqlite3_column_int64(st, 11);
  c->nitems = sqlite3_column_int64(st, 12);
}

/* Move row `id` to index `pos` (clamped) of the rows `sel` returns (ids in order, one
 * parameter: `scope`), writing positions 0..n-1 with `upd` (position, id). pos < 0: only
 * renumber. Inside the caller's transaction. */
static int reorder(sqlite3 *db, const char *sel, int64_t scope, const char *upd, int64_t id,
                   int pos) {
  sqlite3_stmt *st = NULL;
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc = prep(db, sel, &st), s;
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, scope);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t v = sqlite3_column_int64(st, 0);
    if (pos >= 0 && v == id) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      int64_t *p = realloc(ids, (nc + 1) * sizeof *p);
      if (!p) {
        rc = hub_error_set(HUB_ERROR, "out of memory");
        break;
      }
      ids = p;
      cap = nc;
    }
    ids[n++] = v;
  }
  if (!rc && s != SQLITE_DONE) rc = sql_err(db, "collections");
  sqlite3_finalize(st);
  if (!rc && pos >= 0) {
    if (!ids && !(ids = malloc(sizeof *ids))) rc = hub_error_set(HUB_ERROR, "out of memory");
    if (!rc) {
      size_t at = (size_t)pos > n ? n : (size_t)pos;
      memmove(ids + at + 1, ids + at, (n - at) * sizeof *ids);
      ids[at] = id;
      n++;
    }
  }
  for (size_t i = 0; !rc && i < n; i++) {
    if ((rc = prep(db, upd, &st))) break;
    sqlite3_bind_int64(st, 1, (int64_t)i);
    sqlite3_bind_int64(st, 2, ids[i]);
    rc = exec_done(st);
  }
  free(ids);
  return rc;
}

int db_collection_create(db_collection *c, int max_per_owner, char existing_oid[25]) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  if (!(rc = prep(db, "SELECT oid FROM collections WHERE owner_id=? AND slug_title=?", &st))) {
    sqlite3_bind_int64(st, 1, c->owner_id);
    sqlite3_bind_text(st, 2, c->slug_title, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
      copy_col(existing_oid, 25, st, 0);
      rc = hub_error_set(HUB_EEXISTS, "You already have a collection with this title");
    }
    sqlite3_finalize(st);
  }
  if (!rc && !(rc = prep(db, "SELECT count(*) FROM collections WHERE owner_id=?", &st))) {
    sqlite3_bind_int64(st, 1, c->owner_id);
    if (sqlite3_step(st) != SQLITE_ROW)
      rc = sql_err(db, "collections");
    else if (sqlite3_column_int64(st, 0) >= max_per_owner)
      rc = hub_error_set(HUB_ETOOBIG, "An owner has at most %d collections", max_per_owner);
    sqlite3_finalize(st);
  }
  if (!rc &&
      !(rc = prep(db,
                  "INSERT INTO collections(oid, owner_id, title, slug_title, description, private,"
                  " theme, position, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,"
                  " (SELECT coalesce(max(position) + 1, 0) FROM collections WHERE owner_id=?2),"
                  " ?8, ?8) RETURNING id, position",
                  &st))) {
    sqlite3_bind_text(st, 1, c->oid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, c->owner_id);
    sqlite3_bind_text(st, 3, c->title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, c->slug_title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, c->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, c->is_private);
    sqlite3_bind_text(st, 7, c->theme, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, c->created_ms);
    if (sqlite3_step(st) == SQLITE_ROW) {
      c->id = sqlite3_column_int64(st, 0);
      c->position = sqlite3_column_int(st, 1);
      c->updated_ms = c->created_ms;
    } else
      rc = sql_err(db, "create collection");
    sqlite3_finalize(st);
  }
  return finish(db, rc);
}

static int get_by(const char *where, const char *oid, int64_t id, db_collection *out) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  char sql[1024];
  if (!db) return HUB_ERROR;
  snprintf(sql, sizeof sql, "SELECT " COLL_COLS " FROM collections c WHERE %s", where);
  int rc = prep(db, sql, &st);
  if (rc) return rc;
  if (oid)
    sqlite3_bind_text(st, 1, oid, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_int64(st, 1, id);
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW)
    read_coll(st, out);
  else if (s == SQLITE_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Collection not found");
  else
    rc = sql_err(db, "collection");
  sqlite3_finalize(st);
  return rc;
}

int db_collection_get(const char *oid, db_collection *out) {
  return get_by("c.oid=?", oid, 0, out);
}

int db_collection_by_id(int64_t id, db_collection *out) {
  return get_by("c.id=?", NULL, id, out);
}

int db_collection_update(const db_collection *c, int new_position) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  if (!(rc = prep(db,
                  "UPDATE collections SET title=?, slug_title=?, description=?, private=?,"
                  " theme=?, updated_ms=? WHERE id=?",
                  &st))) {
    sqlite3_bind_text(st, 1, c->title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, c->slug_title, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, c->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, c->is_private);
    sqlite3_bind_text(st, 5, c->theme, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, c->updated_ms);
    sqlite3_bind_int64(st, 7, c->id);
    rc = exec_done(st);
  }
  if (!rc && new_position >= 0)
    rc = reorder(db, "SELECT id FROM collections WHERE owner_id=? ORDER BY position, id",
                 c->owner_id, "UPDATE collections SET position=? WHERE id=?", c->id, new_position);
  return finish(db, rc);
}

int db_collection_delete(int64_t id) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  int64_t owner = 0;
  if (!(rc = prep(db, "DELETE FROM collections WHERE id=? RETURNING owner_id", &st))) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) owner = sqlite3_column_int64(st, 0);
    rc = exec_done(st);
  }
  if (!rc && owner)
    rc = reorder(db, "SELECT id FROM collections WHERE owner_id=? ORDER BY position, id", owner,
                 "UPDATE collections SET position=? WHERE id=?", 0, -1);
  return finish(db, rc);
}

int db_collection_list(const db_collection_filter *f, db_collection_cb cb, void *payload) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  hub_buf q = HUB_BUF_INIT;
  int rc = 0, s;
  if (!db) return HUB_ERROR;
  hub_buf_puts(&q, "SELECT " COLL_COLS " FROM collections c WHERE 1");
  if (!f->viewer_admin)
    hub_buf_puts(&q, " AND (c.private=0 OR c.owner_id=?1 OR c.owner_id IN"
                     " (SELECT org_id FROM memberships WHERE user_id=?1))");
  if (f->owner_ids) {
    hub_buf_puts(&q, " AND c.owner_id IN (");
    for (size_t k = 0; k < f->nowners; k++)
      hub_buf_printf(&q, "%s%lld", k ? "," : "", (long long)f->owner_ids[k]);
    hub_buf_puts(&q, ")");
  }
  if (f->item_kind)
    hub_buf_puts(&q, " AND c.id IN (SELECT collection_id FROM collection_items WHERE kind=?2"
                     " AND coalesce(repo_id, sub_id)=?3)");
  if (f->q && *f->q) hub_buf_puts(&q, " AND instr(lower(c.title), lower(?4)) > 0");
  switch (f->sort) {
  case DB_COLL_SORT_UPVOTES:
    hub_buf_puts(&q, " ORDER BY c.upvotes DESC, c.updated_ms DESC, c.id DESC");
    break;
  case DB_COLL_SORT_LAST_MODIFIED:
    hub_buf_puts(&q, " ORDER BY c.updated_ms DESC, c.id DESC");
    break;
  default:
    hub_buf_puts(&q, " ORDER BY c.owner_id, c.position, c.id");
  }
  hub_buf_puts(&q, " LIMIT ?5 OFFSET ?6");
  if (q.failed) return hub_error_set(HUB_ERROR, "out of memory");
  rc = prep(db, q.ptr, &st);
  hub_buf_dispose(&q);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, f->viewer_id);
  if (f->item_kind) {
    sqlite3_bind_text(st, 2, f->item_kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, f->item_ref);
  }
  if (f->q && *f->q) sqlite3_bind_text(st, 4, f->q, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 5, f->limit);
  sqlite3_bind_int64(st, 6, f->offset);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    db_collection c;
    read_coll(st, &c);
    if ((rc = cb(&c, payload))) break;
  }
  if (!rc && s != SQLITE_DONE) rc = sql_err(db, "collections");
  sqlite3_finalize(st);
  return rc;
}

/* ---- items ---- */

int db_collection_count_visible(int64_t collection_id, int64_t viewer_id, int viewer_admin,
                                int64_t *out) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = prep(db,
                "SELECT count(*) FROM collection_items i"
                " LEFT JOIN repos r ON r.id=i.repo_id LEFT JOIN collections s ON s.id=i.sub_id"
                " WHERE i.collection_id=?1 AND (?3 OR coalesce(r.private, s.private)=0"
                " OR coalesce(r.owner_id, s.owner_id)=?2 OR coalesce(r.owner_id, s.owner_id) IN"
                " (SELECT org_id FROM memberships WHERE user_id=?2))",
                &st);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, collection_id);
  sqlite3_bind_int64(st, 2, viewer_id);
  sqlite3_bind_int(st, 3, viewer_admin ? 1 : 0);
  if (sqlite3_step(st) == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else
    rc = sql_err(db, "collection items");
  sqlite3_finalize(st);
  return rc;
}

static int touch(sqlite3 *db, int64_t collection_id, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(db, "UPDATE collections SET updated_ms=? WHERE id=?", &st);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, collection_id);
  return exec_done(st);
}

static int item_id(sqlite3 *db, int64_t collection_id, const char *oid, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = prep(db, "SELECT id FROM collection_items WHERE collection_id=? AND oid=?", &st);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, collection_id);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else
    rc = hub_error_set(HUB_ENOTFOUND, "Item not found in collection");
  sqlite3_finalize(st);
  return rc;
}

static const char ITEMS_SEL[] =
    "SELECT id FROM collection_items WHERE collection_id=? ORDER BY position, id";
static const char ITEMS_UPD[] = "UPDATE collection_items SET position=? WHERE id=?";

int db_collection_item_add(db_collection_item *it, const char *note, int max_items, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  int is_repo = strcmp(it->kind, "collection") != 0;
  if (!(rc = prep(db,
                  "SELECT count(*), coalesce(max(position) + 1, 0), sum(kind=?2 AND"
                  " coalesce(repo_id, sub_id)=?3) FROM collection_items WHERE collection_id=?1",
                  &st))) {
    sqlite3_bind_int64(st, 1, it->collection_id);
    sqlite3_bind_text(st, 2, it->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, it->ref_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
      if (sqlite3_column_int64(st, 2) > 0)
        rc = hub_error_set(HUB_EEXISTS, "Item already exists in this collection");
      else if (sqlite3_column_int64(st, 0) >= max_items)
        rc = hub_error_set(HUB_ETOOBIG, "A collection holds at most %d items", max_items);
      it->position = sqlite3_column_int(st, 1);
    } else
      rc = sql_err(db, "collection items");
    sqlite3_finalize(st);
  }
  if (!rc && !(rc = prep(db,
                         "INSERT INTO collection_items(oid, collection_id, kind, repo_id, sub_id,"
                         " note, position, created_ms) VALUES(?,?,?,?,?,?,?,?)",
                         &st))) {
    db_new_uid(it->oid);
    sqlite3_bind_text(st, 1, it->oid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, it->collection_id);
    sqlite3_bind_text(st, 3, it->kind, -1, SQLITE_TRANSIENT);
    if (is_repo)
      sqlite3_bind_int64(st, 4, it->ref_id);
    else
      sqlite3_bind_int64(st, 5, it->ref_id);
    sqlite3_bind_text(st, 6, note ? note : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 7, it->position);
    sqlite3_bind_int64(st, 8, now);
    rc = exec_done(st);
    if (!rc) it->id = sqlite3_last_insert_rowid(db);
  }
  if (!rc) rc = touch(db, it->collection_id, now);
  return finish(db, rc);
}

int db_collection_item_update(int64_t collection_id, const char *item_oid, const char *note,
                              int position, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int64_t id = 0;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  rc = item_id(db, collection_id, item_oid, &id);
  if (!rc && note && !(rc = prep(db, "UPDATE collection_items SET note=? WHERE id=?", &st))) {
    sqlite3_bind_text(st, 1, note, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, id);
    rc = exec_done(st);
  }
  if (!rc && position >= 0) rc = reorder(db, ITEMS_SEL, collection_id, ITEMS_UPD, id, position);
  if (!rc) rc = touch(db, collection_id, now);
  return finish(db, rc);
}

int db_collection_item_delete(int64_t collection_id, const char *item_oid, int64_t now) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  int64_t id = 0;
  if (!db) return HUB_ERROR;
  int rc = begin(db);
  if (rc) return rc;
  rc = item_id(db, collection_id, item_oid, &id);
  if (!rc && !(rc = prep(db, "DELETE FROM collection_items WHERE id=?", &st))) {
    sqlite3_bind_int64(st, 1, id);
    rc = exec_done(st);
  }
  if (!rc) rc = reorder(db, ITEMS_SEL, collection_id, ITEMS_UPD, 0, -1);
  if (!rc) rc = touch(db, collection_id, now);
  return finish(db, rc);
}

int db_collection_items(int64_t collection_id, int limit, db_collection_item_cb cb, void *payload) {
  sqlite3 *db = db_conn();
  sqlite3_stmt *st = NULL;
  if (!db) return HUB_ERROR;
  int rc = prep(db,
                "SELECT i.id, i.oid, i.kind, coalesce(i.repo_id, i.sub_id), i.note, i.position,"
                " i.created_ms, coalesce(r.likes, 0), coalesce(r.downloads, 0)"
                " FROM collection_items i LEFT JOIN repos r ON r.id=i.repo_id"
                " WHERE i.collection_id=? ORDER BY i.position, i.id LIMIT ?",
                &st),
      s;
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, collection_id);
  sqlite3_bind_int(st, 2, limit);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    db_collection_item it;
    memset(&it, 0, sizeof it);
    it.id = sqlite3_column_int64(st, 0);
    copy_col(it.oid, sizeof it.oid, st, 1);
    it.collection_id = collection_id;
    copy_col(it.kind, sizeof it.kind, st, 2);
    it.ref_id = sqlite3_column_int64(st, 3);
    const unsigned char *n = sqlite3_column_text(st, 4);
    it.note = n ? (const char *)n : "";
    it.position = sqlite3_column_int(st, 5);
    it.created_ms = sqlite3_column_int64(st, 6);
    it.likes = sqlite3_column_int64(st, 7);
    it.downloads = sqlite3_column_int64(st, 8);
    if ((rc = cb(&it, payload))) break;
  }
  if (!rc && s != SQLITE_DONE) rc = sql_err(db, "collection items");
  sqlite3_finalize(st);
  return rc;
}
