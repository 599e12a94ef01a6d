/* Collections' tables (module "collections"): curated lists of repos and other collections,
 * owned by a user or an org. collections/ decides who may do what; this file only stores.
 * Each write runs in a transaction of its own. */
#ifndef HUB_DB_COLLECTIONS_H
#define HUB_DB_COLLECTIONS_H

#include <stddef.h>
#include <stdint.h>

/* Byte sizes of the stored text (collections/ bounds them in characters below these). */
#define DB_COLL_TITLE_BYTES 512
#define DB_COLL_DESC_BYTES 1024

/* Apply the "collections" module's migrations. */
int db_collections_init(void);

typedef struct {
  int64_t id;
  char oid[25]; /* 24 hex: the public id, the slug's tail */
  int64_t owner_id;
  char title[DB_COLL_TITLE_BYTES];
  char slug_title[DB_COLL_TITLE_BYTES]; /* the slug's middle, from the title */
  char description[DB_COLL_DESC_BYTES];
  int is_private;
  char theme[16];
  int position; /* in the owner's list, from 0 */
  int64_t upvotes;
  int64_t created_ms, updated_ms;
  int64_t nitems; /* filled by reads */
} db_collection;

/* Insert c (fills id, position = last of the owner's list). HUB_EEXISTS when the owner has a
 * collection with the same slug_title: *existing_oid (25 bytes) names it; HUB_ETOOBIG when
 * the owner already has max_per_owner collections. */
int db_collection_create(db_collection *c, int max_per_owner, char existing_oid[25]);
/* By public id; HUB_ENOTFOUND ("Collection not found"). */
int db_collection_get(const char *oid, db_collection *out);
/* By row id (items that name a collection); HUB_ENOTFOUND. */
int db_collection_by_id(int64_t id, db_collection *out);
/* Store title/slug_title/description/private/theme of c and its updated_ms; when
 * new_position >= 0, move it to that index of the owner's list (clamped), renumbering. */
int db_collection_update(const db_collection *c, int new_position);
int db_collection_delete(int64_t id);

/* Listing filters. Rows the viewer may not see (private ones of other namespaces) are left
 * out by the query; collections/ checks the rest (token scopes) again. */
typedef struct {
  const int64_t *owner_ids; /* NULL = any */
  size_t nowners;
  const char *item_kind; /* "model", "dataset", "space", "collection" or NULL */
  int64_t item_ref;      /* repos.id or collections.id of that item */
  const char *q;         /* title substring, or NULL */
  int sort;              /* DB_COLL_SORT_* */
  int64_t viewer_id;     /* 0 = anonymous */
  int viewer_admin;
  int64_t offset;
  int limit;
} db_collection_filter;
enum { DB_COLL_SORT_POSITION = 0, DB_COLL_SORT_LAST_MODIFIED, DB_COLL_SORT_UPVOTES };
/* Items of collection_id whose target viewer_id (0: anonymous) may see by identity: public
 * repos and collections, the viewer's own, those of orgs the viewer belongs to; every item
 * when viewer_admin. */
int db_collection_count_visible(int64_t collection_id, int64_t viewer_id, int viewer_admin,
                                int64_t *out);
/* Calls cb per row in order; a nonzero return stops and is returned. */
typedef int (*db_collection_cb)(const db_collection *c, void *payload);
int db_collection_list(const db_collection_filter *f, db_collection_cb cb, void *payload);

/* ---- items ---- */
typedef struct {
  int64_t id;
  char oid[25];
  int64_t collection_id;
  char kind[16];    /* model, dataset, space, collection */
  int64_t ref_id;   /* repos.id or collections.id */
  const char *note; /* borrowed for the callback / until the next call ("" = none) */
  int position;
  int64_t created_ms;
  int64_t likes, downloads; /* repos only */
} db_collection_item;

/* Append an item (position = last); HUB_EEXISTS when the same (kind, ref) is there,
 * HUB_ETOOBIG past max_items. Fills it->id, oid, position. Touches the collection. */
int db_collection_item_add(db_collection_item *it, const char *note, int max_items, int64_t now);
/* HUB_ENOTFOUND ("Item not found in collection"). note may be NULL (left alone);
 * position < 0 = left alone. */
int db_collection_item_update(int64_t collection_id, const char *item_oid, const char *note,
                              int position, int64_t now);
int db_collection_item_delete(int64_t collection_id, const char *item_oid, int64_t now);
typedef int (*db_collection_item_cb)(const db_collection_item *it, void *payload);
/* Items by position, at most limit. */
int db_collection_items(int64_t collection_id, int limit, db_collection_item_cb cb, void *payload);

#endif
