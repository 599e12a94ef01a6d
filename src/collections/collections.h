/* collections/: curated lists of models, datasets, spaces and other collections, owned by a
 * user or an org, as the Hub's collections API has them (docs/collections.md).
 *
 * - A collection is named by its slug "{owner}/{title-slugified}-{24 hex id}"; only the id
 *   is looked up (the title part may be stale after a rename), the owner must match.
 * - The owner (a user, or a member with write in the owning org) writes it; a private one
 *   is invisible (404) to everyone else, and listings leave it out. Items pointing at repos
 *   or collections the reader cannot see are left out of what that reader gets.
 * - Every write is audited (collection.create|update|delete, collection.item.add|update|
 *   remove) in the owner's namespace.
 *
 * Functions return 0 or a negative HUB_E* code with a message (util/error.h). */
#ifndef HUB_COLLECTIONS_COLLECTIONS_H
#define HUB_COLLECTIONS_COLLECTIONS_H

#include <jansson.h>

#include "db/collections.h"
#include "db/db.h"
#include "http/http.h"

/* Title length in characters (the slug is built from it). */
#define COLLECTIONS_MAX_TITLE 100
/* Description length in characters (the Hub's limit, as huggingface_hub documents it). */
#define COLLECTIONS_MAX_DESCRIPTION 150
/* Note length in characters (the Hub's limit). */
#define COLLECTIONS_MAX_NOTE 500
/* Items in one collection: bounds every read of a collection and every reorder. */
#define COLLECTIONS_MAX_ITEMS 1000
/* Collections of one owner: bounds every reorder of the owner's list (past it 413). */
#define COLLECTIONS_MAX_PER_OWNER 1000
/* Items shown per collection in listings (the Hub truncates to 4). */
#define COLLECTIONS_LIST_ITEMS 4
/* Collections per listing page (a Link: rel="next" header leads on). */
#define COLLECTIONS_PAGE 100
/* Owners / items named in one listing query. */
#define COLLECTIONS_MAX_FILTERS 20

/* /api/collections[...] routes. Registered by main.c. */
extern const hub_route collections_routes[];

/* Create the module's tables (db_migrate_module "collections"); once at start-up. */
int collections_init(void);

/* The collection named by the raw slug segments ns/slug (percent-encoded as in the URL)
 * that the caller may read, and its owner. HUB_ENOTFOUND otherwise. */
int collections_find(hub_req *r, const char *ns_raw, const char *slug_raw, db_collection *out,
                     db_account *owner);
/* The caller may write the collections of `owner` (PERM_WRITE in that namespace). */
int collections_may_write(hub_req *r, const db_account *owner);
/* A collection as GET /api/collections/{slug} answers it (new reference, NULL when out of
 * memory): items the caller may see, at most max_items; "position" when with_position. */
json_t *collections_json(hub_req *r, const db_collection *c, const db_account *owner, int max_items,
                         int with_position);
/* "{owner}/{slug_title}-{oid}" into out (≥ HUB_MAX_USER_NAME + DB_COLL_TITLE_BYTES + 27). */
void collections_slug(const db_collection *c, const db_account *owner, char *out, size_t cap);
#define COLLECTIONS_SLUG_MAX (HUB_MAX_USER_NAME + DB_COLL_TITLE_BYTES + 32)

/* Create a collection as POST /api/collections does (checks, audit); slug gets its slug, or
 * with HUB_EEXISTS the slug of the owner's collection with the same title. */
int collections_create(hub_req *r, const char *ns, const char *title, const char *desc, int priv,
                       char slug[COLLECTIONS_SLUG_MAX]);
/* Collections holding `item` ("models/ns/name", …) that the caller may see, newest first, at
 * most max, as the listing answers them. */
int collections_containing(hub_req *r, const char *item, int max, json_t **out);
/* Collections of `owner` the caller may see, by position: an array as the listing answers
 * it (COLLECTIONS_LIST_ITEMS items each). */
int collections_list_owner(hub_req *r, const db_account *owner, json_t **out);
/* Collections the caller may add items to (own, and those of orgs where the caller has
 * write), at most `max`: [{slug, title}]. */
int collections_writable(hub_req *r, int max, json_t **out);
/* Add an item as POST /api/collections/{slug}/items does (checks, audit). */
int collections_add_item(hub_req *r, const char *ns_raw, const char *slug_raw, const char *type,
                         const char *id, const char *note);

#endif
