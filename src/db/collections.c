/* Collections' tables (see db/collections.h). */
#include "db/collections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/stmt.h"
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

/* The error a statement left (rc: its negative code, or 0 for a NULL db_prep), prefixed with
 * what failed; the code is kept (HUB_EUNAVAILABLE for a database that is down). */
static int sql_err(int rc, const char *what) {
  char msg[400];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  if (rc >= 0) rc = hub_error_code() < 0 ? hub_error_code() : HUB_ERROR;
  return hub_error_set(rc, "%s: %s", what, msg);
}

static int prep(const char *sql, db_stmt **st) {
  *st = db_prep(sql);
  return *st ? 0 : sql_err(0, "collections");
}

/* One statement run to completion (and reset). */
static int exec_done(db_stmt *st) {
  int rc = db_step_done(st);
  return rc ? sql_err(rc, "collections") : 0;
}

static int begin(void) {
  int rc = db_begin_immediate();
  if (rc == HUB_ERROR) return hub_error_set(HUB_ERROR, "collections: %s", db_errmsg());
  return rc;
}

static int finish(int rc) {
  if (!rc && (rc = db_commit()) == HUB_ERROR)
    rc = hub_error_set(HUB_ERROR, "collections: %s", db_errmsg());
  if (rc) db_rollback();
  return rc;
}

#define COLL_COLS                                                                                  \
  "c.id, c.oid, c.owner_id, c.title, c.slug_title, c.description, c.private, c.theme, "            \
  "c.position, c.upvotes, c.created_ms, c.updated_ms, "                                            \
  "(SELECT count(*) FROM collection_items i WHERE i.collection_id=c.id)"

static void read_coll(db_stmt *st, db_collection *c) {
  memset(c, 0, sizeof *c);
  c->id = db_col_int64(st, 0);
  db_col_copy(c->oid, sizeof c->oid, st, 1);
  c->owner_id = db_col_int64(st, 2);
  db_col_copy(c->title, sizeof c->title, st, 3);
  db_col_copy(c->slug_title, sizeof c->slug_title, st, 4);
  db_col_copy(c->description, sizeof c->description, st, 5);
  c->is_private = (int)db_col_int64(st, 6);
  db_col_copy(c->theme, sizeof c->theme, st, 7);
  c->position = (int)db_col_int64(st, 8);
  c->upvotes = db_col_int64(st, 9);
  c->created_ms = db_col_int64(st, 10);
  c->updated_ms = db_col_int64(st, 11);
  c->nitems = db_col_int64(st, 12);
}

/* Move row `id` to index `pos` (clamped) of the rows `sel` returns (ids in order, one
 * parameter: `scope`), writing positions 0..n-1 with `upd` (position, id). pos < 0: only
 * renumber. Inside the caller's transaction. */
static int reorder(const char *sel, int64_t scope, const char *upd, int64_t id, int pos) {
  db_stmt *st = NULL;
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc = prep(sel, &st), s;
  if (rc) return rc;
  db_bind_int64(st, 1, scope);
  while ((s = db_step(st)) == DB_ROW) {
    int64_t v = db_col_int64(st, 0);
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
  if (!rc && s != DB_DONE) rc = sql_err(s, "collections");
  db_reset(st);
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
    if ((rc = prep(upd, &st))) break;
    db_bind_int64(st, 1, (int64_t)i);
    db_bind_int64(st, 2, ids[i]);
    rc = exec_done(st);
  }
  free(ids);
  return rc;
}

int db_collection_create(db_collection *c, int max_per_owner, char existing_oid[25]) {
  db_stmt *st = NULL;
  int rc = begin(), s;
  if (rc) return rc;
  if (!(rc = prep("SELECT oid FROM collections WHERE owner_id=? AND slug_title=?", &st))) {
    db_bind_int64(st, 1, c->owner_id);
    db_bind_text(st, 2, c->slug_title, -1);
    if ((s = db_step(st)) == DB_ROW) {
      db_col_copy(existing_oid, 25, st, 0);
      rc = hub_error_set(HUB_EEXISTS, "You already have a collection with this title");
    } else if (s < 0)
      rc = sql_err(s, "collections");
    db_reset(st);
  }
  if (!rc && !(rc = prep("SELECT count(*) FROM collections WHERE owner_id=?", &st))) {
    db_bind_int64(st, 1, c->owner_id);
    if ((s = db_step(st)) != DB_ROW)
      rc = sql_err(s, "collections");
    else if (db_col_int64(st, 0) >= max_per_owner)
      rc = hub_error_set(HUB_ETOOBIG, "An owner has at most %d collections", max_per_owner);
    db_reset(st);
  }
  if (!rc &&
      !(rc = prep("INSERT INTO collections(oid, owner_id, title, slug_title, description, private,"
                  " theme, position, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,"
                  " (SELECT coalesce(max(position) + 1, 0) FROM collections WHERE owner_id=?2),"
                  " ?8, ?8) RETURNING id, position",
                  &st))) {
    db_bind_text(st, 1, c->oid, -1);
    db_bind_int64(st, 2, c->owner_id);
    db_bind_text(st, 3, c->title, -1);
    db_bind_text(st, 4, c->slug_title, -1);
    db_bind_text(st, 5, c->description, -1);
    db_bind_int64(st, 6, c->is_private);
    db_bind_text(st, 7, c->theme, -1);
    db_bind_int64(st, 8, c->created_ms);
    if ((s = db_step(st)) == DB_ROW) {
      c->id = db_col_int64(st, 0);
      c->position = (int)db_col_int64(st, 1);
      c->updated_ms = c->created_ms;
      rc = exec_done(st);
    } else {
      rc = sql_err(s, "create collection");
      db_reset(st);
    }
  }
  return finish(rc);
}

static const char GET_BY_OID[] = "SELECT " COLL_COLS " FROM collections c WHERE c.oid=?";
static const char GET_BY_ID[] = "SELECT " COLL_COLS " FROM collections c WHERE c.id=?";

static int get_by(const char *sql, const char *oid, int64_t id, db_collection *out) {
  db_stmt *st = NULL;
  int rc = prep(sql, &st);
  if (rc) return rc;
  if (oid)
    db_bind_text(st, 1, oid, -1);
  else
    db_bind_int64(st, 1, id);
  int s = db_step(st);
  if (s == DB_ROW)
    read_coll(st, out);
  else if (s == DB_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Collection not found");
  else
    rc = sql_err(s, "collection");
  db_reset(st);
  return rc;
}

int db_collection_get(const char *oid, db_collection *out) {
  return get_by(GET_BY_OID, oid, 0, out);
}

int db_collection_by_id(int64_t id, db_collection *out) {
  return get_by(GET_BY_ID, NULL, id, out);
}

int db_collection_update(const db_collection *c, int new_position) {
  db_stmt *st = NULL;
  int rc = begin();
  if (rc) return rc;
  if (!(rc = prep("UPDATE collections SET title=?, slug_title=?, description=?, private=?,"
                  " theme=?, updated_ms=? WHERE id=?",
                  &st))) {
    db_bind_text(st, 1, c->title, -1);
    db_bind_text(st, 2, c->slug_title, -1);
    db_bind_text(st, 3, c->description, -1);
    db_bind_int64(st, 4, c->is_private);
    db_bind_text(st, 5, c->theme, -1);
    db_bind_int64(st, 6, c->updated_ms);
    db_bind_int64(st, 7, c->id);
    rc = exec_done(st);
  }
  if (!rc && new_position >= 0)
    rc = reorder("SELECT id FROM collections WHERE owner_id=? ORDER BY position, id", c->owner_id,
                 "UPDATE collections SET position=? WHERE id=?", c->id, new_position);
  return finish(rc);
}

int db_collection_delete(int64_t id) {
  db_stmt *st = NULL;
  int rc = begin();
  if (rc) return rc;
  int64_t owner = 0;
  if (!(rc = prep("DELETE FROM collections WHERE id=? RETURNING owner_id", &st))) {
    db_bind_int64(st, 1, id);
    int s = db_step(st);
    if (s == DB_ROW) owner = db_col_int64(st, 0);
    if (s < 0) {
      rc = sql_err(s, "collections");
      db_reset(st);
    } else
      rc = exec_done(st);
  }
  if (!rc && owner)
    rc = reorder("SELECT id FROM collections WHERE owner_id=? ORDER BY position, id", owner,
                 "UPDATE collections SET position=? WHERE id=?", 0, -1);
  return finish(rc);
}

/* The listing's SQL, built for the filters in use. Parameters are numbered as they are
 * used (?1 viewer, then kind and item, then the title term, then limit and offset; *np
 * gets the next free number), so none is left unreferenced: PostgreSQL cannot type a text
 * parameter that the statement does not mention. The title term is a case-insensitive
 * substring: instr on SQLite, strpos on PostgreSQL. */
static void list_sql(hub_buf *q, const db_collection_filter *f, int *np) {
  int n = 2;
  hub_buf_puts(q, "SELECT " COLL_COLS " FROM collections c WHERE 1=1");
  if (!f->viewer_admin)
    hub_buf_puts(q, " AND (c.private=0 OR c.owner_id=?1 OR c.owner_id IN"
                    " (SELECT org_id FROM memberships WHERE user_id=?1))");
  if (f->owner_ids) {
    hub_buf_puts(q, " AND c.owner_id IN (");
    for (size_t k = 0; k < f->nowners; k++)
      hub_buf_printf(q, "%s%lld", k ? "," : "", (long long)f->owner_ids[k]);
    hub_buf_puts(q, ")");
  }
  if (f->item_kind) {
    hub_buf_printf(q,
                   " AND c.id IN (SELECT collection_id FROM collection_items WHERE kind=?%d"
                   " AND coalesce(repo_id, sub_id)=?%d)",
                   n, n + 1);
    n += 2;
  }
  if (f->q && *f->q)
    hub_buf_printf(q, " AND %s(lower(c.title), lower(?%d)) > 0",
                   db_engine() == DB_ENGINE_POSTGRES ? "strpos" : "instr", n++);
  switch (f->sort) {
  case DB_COLL_SORT_UPVOTES:
    hub_buf_puts(q, " ORDER BY c.upvotes DESC, c.updated_ms DESC, c.id DESC");
    break;
  case DB_COLL_SORT_LAST_MODIFIED:
    hub_buf_puts(q, " ORDER BY c.updated_ms DESC, c.id DESC");
    break;
  default:
    hub_buf_puts(q, " ORDER BY c.owner_id, c.position, c.id");
  }
  hub_buf_printf(q, " LIMIT ?%d OFFSET ?%d", n, n + 1);
  *np = n;
}

int db_collection_list(const db_collection_filter *f, db_collection_cb cb, void *payload) {
  db_stmt *st = NULL;
  hub_buf q = HUB_BUF_INIT;
  int rc = 0, s, n;
  list_sql(&q, f, &n);
  if (q.failed) {
    hub_buf_dispose(&q);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  st = db_prep_text(q.ptr);
  hub_buf_dispose(&q);
  if (!st) return sql_err(0, "collections");
  int i = 2;
  db_bind_int64(st, 1, f->viewer_id);
  if (f->item_kind) {
    db_bind_text(st, i++, f->item_kind, -1);
    db_bind_int64(st, i++, f->item_ref);
  }
  if (f->q && *f->q) db_bind_text(st, i++, f->q, -1);
  db_bind_int64(st, n, f->limit);
  db_bind_int64(st, n + 1, f->offset);
  while ((s = db_step(st)) == DB_ROW) {
    db_collection c;
    read_coll(st, &c);
    if ((rc = cb(&c, payload))) break;
  }
  if (!rc && s != DB_DONE) rc = sql_err(s, "collections");
  db_prep_text_done(st);
  return rc;
}

/* ---- items ---- */

int db_collection_count_visible(int64_t collection_id, int64_t viewer_id, int viewer_admin,
                                int64_t *out) {
  db_stmt *st = NULL;
  int rc = prep("SELECT count(*) FROM collection_items i"
                " LEFT JOIN repos r ON r.id=i.repo_id LEFT JOIN collections s ON s.id=i.sub_id"
                " WHERE i.collection_id=?1 AND (?3 <> 0 OR coalesce(r.private, s.private)=0"
                " OR coalesce(r.owner_id, s.owner_id)=?2 OR coalesce(r.owner_id, s.owner_id) IN"
                " (SELECT org_id FROM memberships WHERE user_id=?2))",
                &st);
  if (rc) return rc;
  db_bind_int64(st, 1, collection_id);
  db_bind_int64(st, 2, viewer_id);
  db_bind_int64(st, 3, viewer_admin ? 1 : 0);
  int s = db_step(st);
  if (s == DB_ROW)
    *out = db_col_int64(st, 0);
  else
    rc = sql_err(s, "collection items");
  db_reset(st);
  return rc;
}

static int touch(int64_t collection_id, int64_t now) {
  db_stmt *st = NULL;
  int rc = prep("UPDATE collections SET updated_ms=? WHERE id=?", &st);
  if (rc) return rc;
  db_bind_int64(st, 1, now);
  db_bind_int64(st, 2, collection_id);
  return exec_done(st);
}

static int item_id(int64_t collection_id, const char *oid, int64_t *out) {
  db_stmt *st = NULL;
  int rc = prep("SELECT id FROM collection_items WHERE collection_id=? AND oid=?", &st);
  if (rc) return rc;
  db_bind_int64(st, 1, collection_id);
  db_bind_text(st, 2, oid, -1);
  int s = db_step(st);
  if (s == DB_ROW)
    *out = db_col_int64(st, 0);
  else if (s == DB_DONE)
    rc = hub_error_set(HUB_ENOTFOUND, "Item not found in collection");
  else
    rc = sql_err(s, "collection items");
  db_reset(st);
  return rc;
}

static const char ITEMS_SEL[] =
    "SELECT id FROM collection_items WHERE collection_id=? ORDER BY position, id";
static const char ITEMS_UPD[] = "UPDATE collection_items SET position=? WHERE id=?";

int db_collection_item_add(db_collection_item *it, const char *note, int max_items, int64_t now) {
  db_stmt *st = NULL;
  int rc = begin(), s;
  if (rc) return rc;
  int is_repo = strcmp(it->kind, "collection") != 0;
  if (!(rc = prep("SELECT count(*), coalesce(max(position) + 1, 0), sum(CASE WHEN kind=?2 AND"
                  " coalesce(repo_id, sub_id)=?3 THEN 1 ELSE 0 END) FROM collection_items"
                  " WHERE collection_id=?1",
                  &st))) {
    db_bind_int64(st, 1, it->collection_id);
    db_bind_text(st, 2, it->kind, -1);
    db_bind_int64(st, 3, it->ref_id);
    if ((s = db_step(st)) == DB_ROW) {
      if (db_col_int64(st, 2) > 0)
        rc = hub_error_set(HUB_EEXISTS, "Item already exists in this collection");
      else if (db_col_int64(st, 0) >= max_items)
        rc = hub_error_set(HUB_ETOOBIG, "A collection holds at most %d items", max_items);
      it->position = (int)db_col_int64(st, 1);
    } else
      rc = sql_err(s, "collection items");
    db_reset(st);
  }
  if (!rc && !(rc = prep("INSERT INTO collection_items(oid, collection_id, kind, repo_id, sub_id,"
                         " note, position, created_ms) VALUES(?,?,?,?,?,?,?,?) RETURNING id",
                         &st))) {
    db_new_uid(it->oid);
    db_bind_text(st, 1, it->oid, -1);
    db_bind_int64(st, 2, it->collection_id);
    db_bind_text(st, 3, it->kind, -1);
    if (is_repo)
      db_bind_int64(st, 4, it->ref_id);
    else
      db_bind_int64(st, 5, it->ref_id);
    db_bind_text(st, 6, note ? note : "", -1);
    db_bind_int64(st, 7, it->position);
    db_bind_int64(st, 8, now);
    if ((s = db_step(st)) == DB_ROW) {
      it->id = db_col_int64(st, 0);
      rc = exec_done(st);
    } else {
      rc = sql_err(s, "collection items");
      db_reset(st);
    }
  }
  if (!rc) rc = touch(it->collection_id, now);
  return finish(rc);
}

int db_collection_item_update(int64_t collection_id, const char *item_oid, const char *note,
                              int position, int64_t now) {
  db_stmt *st = NULL;
  int64_t id = 0;
  int rc = begin();
  if (rc) return rc;
  rc = item_id(collection_id, item_oid, &id);
  if (!rc && note && !(rc = prep("UPDATE collection_items SET note=? WHERE id=?", &st))) {
    db_bind_text(st, 1, note, -1);
    db_bind_int64(st, 2, id);
    rc = exec_done(st);
  }
  if (!rc && position >= 0) rc = reorder(ITEMS_SEL, collection_id, ITEMS_UPD, id, position);
  if (!rc) rc = touch(collection_id, now);
  return finish(rc);
}

int db_collection_item_delete(int64_t collection_id, const char *item_oid, int64_t now) {
  db_stmt *st = NULL;
  int64_t id = 0;
  int rc = begin();
  if (rc) return rc;
  rc = item_id(collection_id, item_oid, &id);
  if (!rc && !(rc = prep("DELETE FROM collection_items WHERE id=?", &st))) {
    db_bind_int64(st, 1, id);
    rc = exec_done(st);
  }
  if (!rc) rc = reorder(ITEMS_SEL, collection_id, ITEMS_UPD, 0, -1);
  if (!rc) rc = touch(collection_id, now);
  return finish(rc);
}

int db_collection_items(int64_t collection_id, int limit, db_collection_item_cb cb, void *payload) {
  db_stmt *st = NULL;
  int rc = prep("SELECT i.id, i.oid, i.kind, coalesce(i.repo_id, i.sub_id), i.note, i.position,"
                " i.created_ms, coalesce(r.likes, 0), coalesce(r.downloads, 0)"
                " FROM collection_items i LEFT JOIN repos r ON r.id=i.repo_id"
                " WHERE i.collection_id=? ORDER BY i.position, i.id LIMIT ?",
                &st),
      s;
  if (rc) return rc;
  db_bind_int64(st, 1, collection_id);
  db_bind_int64(st, 2, limit);
  while ((s = db_step(st)) == DB_ROW) {
    db_collection_item it;
    memset(&it, 0, sizeof it);
    it.id = db_col_int64(st, 0);
    db_col_copy(it.oid, sizeof it.oid, st, 1);
    it.collection_id = collection_id;
    db_col_copy(it.kind, sizeof it.kind, st, 2);
    it.ref_id = db_col_int64(st, 3);
    const char *n = db_col_text(st, 4);
    it.note = n ? n : "";
    it.position = (int)db_col_int64(st, 5);
    it.created_ms = db_col_int64(st, 6);
    it.likes = db_col_int64(st, 7);
    it.downloads = db_col_int64(st, 8);
    if ((rc = cb(&it, payload))) break;
  }
  if (!rc && s != DB_DONE) rc = sql_err(s, "collection items");
  db_reset(st);
  return rc;
}
