/* Private to src/collections/: helpers shared by collections.c and routes.c. */
#ifndef HUB_COLLECTIONS_INTERNAL_H
#define HUB_COLLECTIONS_INTERNAL_H

#include "auth/auth.h"
#include "collections/collections.h"

/* The themes the Hub offers, NULL-terminated. */
extern const char *const coll__themes[];
int coll__theme_valid(const char *t);
/* Characters (UTF-8 code points) of s. */
size_t coll__chars(const char *s);
/* The slug's title part: lowercase ASCII letters and digits, runs of anything else as one
 * '-', at most 100 bytes; "collection" when nothing is left. */
void coll__slugify(const char *title, char *out, size_t cap);
/* ApiAuthor of an account (new reference). */
json_t *coll__owner_json(const db_account *a);
/* The fields every collection shape has (no items, no position). */
json_t *coll__summary_json(hub_req *r, const db_collection *c, const db_account *owner);
/* Fill the filter's viewer from the caller. */
void coll__viewer(hub_req *r, db_collection_filter *f);
/* Append the listing rows of f the caller may see to arr (COLLECTIONS_LIST_ITEMS items);
 * *seen (may be NULL) gets the number of rows the query returned. */
int coll__list(hub_req *r, const db_collection_filter *f, json_t *arr, int *seen);
/* Add an item to c (checked, stored, audited); the caller checked write access. */
int coll__add_item(hub_req *r, const db_collection *c, const db_account *owner, const char *type,
                   const char *id, const char *note);
/* Audit `action` on c in its owner's namespace; details stolen (may be NULL), "slug" added. */
void coll__audit(hub_req *r, const char *action, const db_collection *c, const db_account *owner,
                 json_t *details);

#endif
