/* Collections: lookups, permissions and the JSON shapes the Hub's clients read
 * (huggingface_hub Collection / CollectionItem, @huggingface/hub ApiCollectionInfo). */
#include "collections/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "util/error.h"
#include "util/pct.h"
#include "util/time.h"

int collections_init(void) {
  return db_collections_init();
}

const char *const coll__themes[] = {"orange", "blue", "green", "purple", "pink", "indigo", NULL};

int coll__theme_valid(const char *t) {
  for (int i = 0; coll__themes[i]; i++)
    if (!strcmp(t, coll__themes[i])) return 1;
  return 0;
}

size_t coll__chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

void coll__slugify(const char *title, char *out, size_t cap) {
  size_t n = 0;
  int dash = 0;
  for (const unsigned char *p = (const unsigned char *)title; *p && n + 2 < cap && n < 100; p++) {
    unsigned char c = *p;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      if (dash && n) out[n++] = '-';
      out[n++] = (char)c;
      dash = 0;
    } else if (c >= 'A' && c <= 'Z') {
      if (dash && n) out[n++] = '-';
      out[n++] = (char)(c - 'A' + 'a');
      dash = 0;
    } else
      dash = 1;
  }
  out[n] = 0;
  if (!n) snprintf(out, cap, "collection");
}

void collections_slug(const db_collection *c, const db_account *owner, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s-%s", owner->name, c->slug_title, c->oid);
}

static int may_read(hub_req *r, const db_collection *c, const db_account *owner) {
  return !c->is_private || auth_ns_perm(&r->who, owner) >= PERM_READ;
}

int collections_may_write(hub_req *r, const db_account *owner) {
  return auth_ns_perm(&r->who, owner) >= PERM_WRITE;
}

int collections_find(hub_req *r, const char *ns_raw, const char *slug_raw, db_collection *out,
                     db_account *owner) {
  char *ns = NULL, *slug = NULL;
  int rc = HUB_ENOTFOUND;
  if (hub_pct_decode(&ns, ns_raw) || hub_pct_decode(&slug, slug_raw)) goto done;
  size_t n = strlen(slug);
  if (n < 24 || (n > 24 && slug[n - 25] != '-')) goto done;
  const char *oid = slug + n - 24;
  if (strspn(oid, "0123456789abcdef") != 24) goto done;
  if (db_collection_get(oid, out) || db_account_by_id(out->owner_id, owner) ||
      strcasecmp(owner->name, ns) || !may_read(r, out, owner))
    goto done;
  rc = 0;
done:
  free(ns);
  free(slug);
  return rc ? hub_error_set(HUB_ENOTFOUND, "Collection not found") : 0;
}

json_t *coll__owner_json(const db_account *a) {
  int org = a->kind == ACCOUNT_ORG;
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "_id", a->uid, "avatarUrl", "",
                        "fullname", a->fullname[0] ? a->fullname : a->name, "name", a->name, "type",
                        org ? "org" : "user", "isHf", 0, "isHfAdmin", 0, "isMod", 0);
  if (o && !org) json_object_set_new(o, "isPro", json_false());
  return o;
}

static json_t *note_json(const char *note) {
  /* The Hub keeps notes as text and renders them; here the HTML is the escaped text. */
  hub_buf h = HUB_BUF_INIT;
  for (const char *p = note; *p; p++) {
    switch (*p) {
    case '<':
      hub_buf_puts(&h, "&lt;");
      break;
    case '>':
      hub_buf_puts(&h, "&gt;");
      break;
    case '&':
      hub_buf_puts(&h, "&amp;");
      break;
    case '"':
      hub_buf_puts(&h, "&quot;");
      break;
    case '\'':
      hub_buf_puts(&h, "&#39;");
      break;
    default:
      hub_buf_putc(&h, *p);
    }
  }
  json_t *o = h.failed ? NULL : json_pack("{s:s, s:s}", "html", h.ptr ? h.ptr : "", "text", note);
  hub_buf_dispose(&h);
  return o;
}

static void share_url(hub_req *r, const char *slug, char *out, size_t cap) {
  snprintf(out, cap, "%s/collections/%s", http_base_url(r), slug);
}

struct items_ctx {
  hub_req *r;
  json_t *arr;
  int max;
};

static json_t *repo_item(hub_req *r, const db_collection_item *it) {
  db_repo repo;
  if (db_repo_by_id(it->ref_id, &repo) || auth_repo_perm(&r->who, &repo) < PERM_READ) return NULL;
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", repo.ns, repo.name);
  int64_t lm = repo.last_modified_ms ? repo.last_modified_ms : repo.updated_ms;
  return json_pack(
      "{s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:I, s:I, s:b, s:o}", "id", id, "author", repo.ns,
      "repoType", http_type_name(repo.type), "private", repo.is_private, "type",
      http_type_name(repo.type), "gated", repo.gated[0] ? json_string(repo.gated) : json_false(),
      "lastModified", hub_iso_json(lm), "likes", (json_int_t)it->likes, "downloads",
      (json_int_t)it->downloads, "isLikedByUser", 0, "createdAt", hub_iso_json(repo.created_ms));
}

/* A collection as an item of another, or as a row of the listing (without items). */
json_t *coll__summary_json(hub_req *r, const db_collection *c, const db_account *owner) {
  char slug[COLLECTIONS_SLUG_MAX], url[COLLECTIONS_SLUG_MAX + 512];
  collections_slug(c, owner, slug, sizeof slug);
  share_url(r, slug, url, sizeof url);
  json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:s, s:b, s:I, s:b, s:o, s:s, s:s}", "slug", slug,
                        "title", c->title, "lastUpdated", hub_iso_json(c->updated_ms), "owner",
                        coll__owner_json(owner), "theme", c->theme, "private", c->is_private,
                        "upvotes", (json_int_t)c->upvotes, "isUpvotedByUser", 0, "gating",
                        json_false(), "shareUrl", url, "url", url);
  if (o && c->description[0]) json_object_set_new(o, "description", json_string(c->description));
  return o;
}

static json_t *collection_item(hub_req *r, const db_collection_item *it) {
  db_collection c;
  db_account owner;
  if (db_collection_by_id(it->ref_id, &c) || db_account_by_id(c.owner_id, &owner) ||
      !may_read(r, &c, &owner))
    return NULL;
  /* Not c.nitems: items of private repos or collections this reader cannot see stay
   * uncounted, as they stay unlisted. */
  db_collection_filter v;
  int64_t n = 0;
  coll__viewer(r, &v);
  if (db_collection_count_visible(c.id, v.viewer_id, v.viewer_admin, &n)) return NULL;
  json_t *o = coll__summary_json(r, &c, &owner);
  if (o) {
    json_object_set_new(o, "id", json_string(c.oid));
    json_object_set_new(o, "numberItems", json_integer(n));
  }
  return o;
}

static int item_row(const db_collection_item *it, void *payload) {
  struct items_ctx *x = payload;
  if ((int)json_array_size(x->arr) >= x->max) return 1;
  json_t *o = strcmp(it->kind, "collection") ? repo_item(x->r, it) : collection_item(x->r, it);
  if (!o) return 0; /* gone or not visible to this reader */
  json_object_set_new(o, "_id", json_string(it->oid));
  json_object_set_new(o, "position", json_integer(it->position));
  json_object_set_new(o, "type", json_string(it->kind));
  if (it->note[0]) json_object_set_new(o, "note", note_json(it->note));
  json_array_append_new(x->arr, o);
  return 0;
}

json_t *collections_json(hub_req *r, const db_collection *c, const db_account *owner, int max_items,
                         int with_position) {
  json_t *o = coll__summary_json(r, c, owner);
  struct items_ctx x = {r, json_array(), max_items};
  if (!o || !x.arr) goto fail;
  /* Hidden items are skipped, so read past max_items (bounded by the collection's size). */
  int rc = db_collection_items(c->id, COLLECTIONS_MAX_ITEMS, item_row, &x);
  if (rc < 0) goto fail;
  json_object_set_new(o, "items", x.arr);
  if (with_position) json_object_set_new(o, "position", json_integer(c->position));
  return o;
fail:
  json_decref(o);
  json_decref(x.arr);
  return NULL;
}

/* ---- listings for pages ---- */

struct list_ctx {
  hub_req *r;
  json_t *arr;
  int slugs_only;
  int seen; /* rows the query returned, visible or not */
};

static int list_row(const db_collection *c, void *payload) {
  struct list_ctx *x = payload;
  db_account owner;
  x->seen++;
  if (db_account_by_id(c->owner_id, &owner) || !may_read(x->r, c, &owner)) return 0;
  json_t *o;
  if (x->slugs_only) {
    char slug[COLLECTIONS_SLUG_MAX];
    collections_slug(c, &owner, slug, sizeof slug);
    o = json_pack("{s:s, s:s}", "slug", slug, "title", c->title);
  } else
    o = collections_json(x->r, c, &owner, COLLECTIONS_LIST_ITEMS, 0);
  if (!o) return hub_error_set(HUB_ERROR, "out of memory");
  json_array_append_new(x->arr, o);
  return 0;
}

void coll__viewer(hub_req *r, db_collection_filter *f) {
  f->viewer_id = r->who.authenticated ? r->who.user_id : 0;
  f->viewer_admin = r->who.authenticated && r->who.is_admin;
}

int coll__list(hub_req *r, const db_collection_filter *f, json_t *arr, int *seen) {
  struct list_ctx x = {r, arr, 0, 0};
  int rc = db_collection_list(f, list_row, &x);
  if (seen) *seen = x.seen;
  return rc;
}

int collections_list_owner(hub_req *r, const db_account *owner, json_t **out) {
  db_collection_filter f;
  memset(&f, 0, sizeof f);
  coll__viewer(r, &f);
  f.owner_ids = &owner->id;
  f.nowners = 1;
  f.limit = COLLECTIONS_PAGE;
  *out = json_array();
  if (!*out) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = coll__list(r, &f, *out, NULL);
  if (rc) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

struct orgs_ctx {
  int64_t ids[COLLECTIONS_MAX_FILTERS];
  size_t n;
  hub_req *r;
};

static void org_row(const db_account *org, int role, void *payload) {
  struct orgs_ctx *o = payload;
  (void)role;
  if (o->n < COLLECTIONS_MAX_FILTERS && auth_ns_perm(&o->r->who, org) >= PERM_WRITE)
    o->ids[o->n++] = org->id;
}

int collections_writable(hub_req *r, int max, json_t **out) {
  *out = json_array();
  if (!*out) return hub_error_set(HUB_ERROR, "out of memory");
  if (!r->who.authenticated) return 0;
  struct orgs_ctx o = {{0}, 0, r};
  db_account me;
  if (!db_account_by_id(r->who.user_id, &me) && collections_may_write(r, &me)) o.ids[o.n++] = me.id;
  db_member_orgs(r->who.user_id, org_row, &o);
  if (!o.n) return 0;
  db_collection_filter f;
  memset(&f, 0, sizeof f);
  coll__viewer(r, &f);
  f.owner_ids = o.ids;
  f.nowners = o.n;
  f.limit = max;
  struct list_ctx x = {r, *out, 1, 0};
  return db_collection_list(&f, list_row, &x);
}

/* ---- audit ---- */

void coll__audit(hub_req *r, const char *action, const db_collection *c, const db_account *owner,
                 json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char target[64];
  snprintf(target, sizeof target, "collection:%s", c->oid);
  char slug[COLLECTIONS_SLUG_MAX];
  collections_slug(c, owner, slug, sizeof slug);
  if (!details) details = json_object();
  if (details) json_object_set_new(details, "slug", json_string(slug));
  audit_log(&ctx, action, owner->name, target, details);
}
