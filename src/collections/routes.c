/* The /api/collections routes, with the bodies huggingface_hub and @huggingface/hub send
 * (hf_api.py create_collection … delete_collection_item; docs/collections.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collections/internal.h"
#include "util/error.h"
#include "util/pct.h"

/* ---- body fields ---- */

/* A string member (NULL when absent or null); HUB_EINVALID when another type. */
static int opt_string(json_t *body, const char *key, const char **out) {
  json_t *v = json_object_get(body, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return hub_error_set(HUB_EINVALID, "'%s' must be a string", key);
  *out = json_string_value(v);
  return 0;
}

/* -1 when absent or null. */
static int opt_bool(json_t *body, const char *key, int *out) {
  json_t *v = json_object_get(body, key);
  *out = -1;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return hub_error_set(HUB_EINVALID, "'%s' must be a boolean", key);
  *out = json_is_true(v);
  return 0;
}

static int check_text(const char *what, const char *s, size_t max_chars) {
  /* Web forms are not JSON-parsed: bytes that are not UTF-8 would be stored, counted as no
   * characters, and then fail every JSON answer holding them (the listings included). */
  json_t *utf8 = s ? json_string(s) : NULL;
  if (s && !utf8) return hub_error_set(HUB_EINVALID, "%s is not valid UTF-8", what);
  json_decref(utf8);
  if (s && coll__chars(s) > max_chars)
    return hub_error_set(HUB_EINVALID, "%s is too long (at most %zu characters)", what, max_chars);
  return 0;
}

static int check_title(const char *title) {
  if (!title || !*title || strspn(title, " \t\r\n") == strlen(title))
    return hub_error_set(HUB_EINVALID, "A collection needs a title");
  return check_text("Title", title, COLLECTIONS_MAX_TITLE);
}

static int deny(hub_req *r, const db_account *owner) {
  return hub_error_set(r->who.authenticated ? HUB_EFORBIDDEN : HUB_EAUTH,
                       "You don't have write access to the collections of %s", owner->name);
}

/* The collection of the URL (cap[0]/cap[1]) for a write. */
static int load_for_write(hub_req *r, db_collection *c, db_account *owner) {
  int rc = collections_find(r, r->cap[0], r->cap[1], c, owner);
  if (rc) return rc;
  return collections_may_write(r, owner) ? 0 : deny(r, owner);
}

static int reply_collection(hub_req *r, const db_collection *c, const db_account *owner,
                            int wrapped) {
  json_t *o = collections_json(r, c, owner, COLLECTIONS_MAX_ITEMS, 1);
  if (!o) return hub_error_set(HUB_ERROR, "out of memory");
  if (wrapped) o = json_pack("{s:b, s:o}", "success", 1, "data", o);
  return http_reply_json(r, 200, o);
}

/* Read it again after a write (positions, updated time, item count). */
static int reply_fresh(hub_req *r, const char *oid, int wrapped) {
  db_collection c;
  db_account owner;
  int rc = db_collection_get(oid, &c);
  if (!rc) rc = db_account_by_id(c.owner_id, &owner);
  return rc ? rc : reply_collection(r, &c, &owner, wrapped);
}

/* ---- collections ---- */

int collections_create(hub_req *r, const char *ns, const char *title, const char *desc, int priv,
                       char slug[COLLECTIONS_SLUG_MAX]) {
  int rc;
  slug[0] = 0;
  if ((rc = check_title(title)) ||
      (rc = check_text("Description", desc, COLLECTIONS_MAX_DESCRIPTION)))
    return rc;
  db_account owner;
  if (db_account_by_name(ns, &owner))
    return hub_error_set(HUB_ENOTFOUND, "Namespace %s not found", ns);
  if (!collections_may_write(r, &owner)) return deny(r, &owner);
  db_collection c;
  memset(&c, 0, sizeof c);
  db_new_uid(c.oid);
  c.owner_id = owner.id;
  snprintf(c.title, sizeof c.title, "%s", title);
  coll__slugify(title, c.slug_title, sizeof c.slug_title);
  snprintf(c.description, sizeof c.description, "%s", desc ? desc : "");
  c.is_private = priv;
  snprintf(c.theme, sizeof c.theme, "%s", coll__themes[(unsigned char)c.oid[23] % 6]);
  c.created_ms = db_now_ms();
  char existing[25] = "";
  rc = db_collection_create(&c, COLLECTIONS_MAX_PER_OWNER, existing);
  if (rc == HUB_EEXISTS) {
    db_collection old;
    if (!db_collection_get(existing, &old))
      collections_slug(&old, &owner, slug, COLLECTIONS_SLUG_MAX);
    return hub_error_set(HUB_EEXISTS, "Collection already exists: %s", slug);
  }
  if (rc) return rc;
  collections_slug(&c, &owner, slug, COLLECTIONS_SLUG_MAX);
  coll__audit(r, "collection.create", &c, &owner,
              json_pack("{s:s, s:b}", "title", c.title, "private", c.is_private));
  return 0;
}

static int h_create(hub_req *r) {
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  const char *title, *ns, *desc;
  int priv;
  int rc;
  char slug[COLLECTIONS_SLUG_MAX];
  if ((rc = opt_string(body, "title", &title)) || (rc = opt_string(body, "namespace", &ns)) ||
      (rc = opt_string(body, "description", &desc)) || (rc = opt_bool(body, "private", &priv)))
    return rc;
  rc = collections_create(r, ns ? ns : r->who.name, title, desc, priv == 1, slug);
  if (rc == HUB_EEXISTS && slug[0]) {
    /* huggingface_hub's exists_ok reads the existing slug from the 409 body. */
    char msg[COLLECTIONS_SLUG_MAX + 64];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    rc = http_reply_json(r, 409, json_pack("{s:s, s:s}", "error", msg, "slug", slug));
    if (!rc) {
      http_add_header(r, "X-Error-Code", "Conflict");
      http_add_header(r, "X-Error-Message", msg);
    }
    return rc;
  }
  if (rc) return rc;
  return reply_fresh(r, slug + strlen(slug) - 24, 0);
}

static int h_get(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = collections_find(r, r->cap[0], r->cap[1], &c, &owner);
  return rc ? rc : reply_collection(r, &c, &owner, 0);
}

static int h_update(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = load_for_write(r, &c, &owner);
  if (rc) return rc;
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  const char *title, *desc, *theme;
  int priv, pos = -1;
  if ((rc = opt_string(body, "title", &title)) || (rc = opt_string(body, "description", &desc)) ||
      (rc = opt_string(body, "theme", &theme)) || (rc = opt_bool(body, "private", &priv)))
    return rc;
  json_t *p = json_object_get(body, "position");
  if (p && !json_is_null(p)) {
    if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 1000000)
      return hub_error_set(HUB_EINVALID, "'position' must be a non-negative integer");
    pos = (int)json_integer_value(p);
  }
  if ((title && (rc = check_title(title))) ||
      (rc = check_text("Description", desc, COLLECTIONS_MAX_DESCRIPTION)))
    return rc;
  if (theme && !coll__theme_valid(theme))
    return hub_error_set(HUB_EINVALID,
                         "Invalid theme '%s' (orange, blue, green, purple, pink or indigo)", theme);
  json_t *changed = json_object();
  if (title) {
    snprintf(c.title, sizeof c.title, "%s", title);
    coll__slugify(title, c.slug_title, sizeof c.slug_title);
    json_object_set_new(changed, "title", json_string(title));
  }
  if (desc) {
    snprintf(c.description, sizeof c.description, "%s", desc);
    json_object_set_new(changed, "description", json_true());
  }
  if (theme) {
    snprintf(c.theme, sizeof c.theme, "%s", theme);
    json_object_set_new(changed, "theme", json_string(theme));
  }
  if (priv >= 0) {
    c.is_private = priv;
    json_object_set_new(changed, "private", json_boolean(priv));
  }
  if (pos >= 0) json_object_set_new(changed, "position", json_integer(pos));
  c.updated_ms = db_now_ms();
  if ((rc = db_collection_update(&c, pos))) {
    json_decref(changed);
    return rc;
  }
  coll__audit(r, "collection.update", &c, &owner, changed);
  return reply_fresh(r, c.oid, 1);
}

static int h_delete(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = load_for_write(r, &c, &owner);
  if (rc || (rc = db_collection_delete(c.id))) return rc;
  coll__audit(r, "collection.delete", &c, &owner, json_pack("{s:s}", "title", c.title));
  return http_reply_json(r, 200, json_pack("{s:b}", "success", 1));
}

/* ---- items ---- */

static int resolve_repo(hub_req *r, int type, const char *id, db_collection_item *it) {
  const char *slash = strchr(id, '/');
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1];
  if (!slash || slash == id || !slash[1] || strchr(slash + 1, '/') ||
      (size_t)(slash - id) > HUB_MAX_NAME || strlen(slash + 1) > HUB_MAX_NAME)
    return hub_error_set(HUB_EINVALID, "Invalid repo id '%s' (expected namespace/name)", id);
  snprintf(ns, sizeof ns, "%.*s", (int)(slash - id), id);
  snprintf(name, sizeof name, "%s", slash + 1);
  db_repo repo;
  if (db_repo_get(type, ns, name, &repo) || auth_repo_perm(&r->who, &repo) < PERM_READ)
    return hub_error_set(HUB_EREPO, "Repository not found: %s/%s", ns, name);
  it->ref_id = repo.id;
  return 0;
}

static int resolve_item(hub_req *r, const db_collection *c, const char *type, const char *id,
                        db_collection_item *it) {
  int t;
  memset(it, 0, sizeof *it);
  it->collection_id = c->id;
  if (!type || !id || !*id) return hub_error_set(HUB_EINVALID, "'item' needs a type and an id");
  if (!strcmp(type, "model") || !strcmp(type, "dataset") || !strcmp(type, "space")) {
    http_type_parse(type, &t);
    snprintf(it->kind, sizeof it->kind, "%s", type);
    return resolve_repo(r, t, id, it);
  }
  if (!strcmp(type, "collection")) {
    const char *slash = strchr(id, '/');
    db_collection sub;
    db_account sub_owner;
    char ns[HUB_MAX_USER_NAME + 1];
    if (!slash || (size_t)(slash - id) > HUB_MAX_USER_NAME)
      return hub_error_set(HUB_ENOTFOUND, "Collection not found: %s", id);
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - id), id);
    int rc = collections_find(r, ns, slash + 1, &sub, &sub_owner);
    if (rc) return hub_error_set(HUB_ENOTFOUND, "Collection not found: %s", id);
    if (sub.id == c->id) return hub_error_set(HUB_EINVALID, "A collection cannot contain itself");
    snprintf(it->kind, sizeof it->kind, "collection");
    it->ref_id = sub.id;
    return 0;
  }
  if (!strcmp(type, "paper") || !strcmp(type, "bucket"))
    return hub_error_set(HUB_EINVALID, "Items of type '%s' are not supported on this hub", type);
  return hub_error_set(HUB_EINVALID, "Invalid item type '%s' (model, dataset, space or collection)",
                       type);
}

int coll__add_item(hub_req *r, const db_collection *c, const db_account *owner, const char *type,
                   const char *id, const char *note) {
  db_collection_item it;
  int rc = check_text("Note", note, COLLECTIONS_MAX_NOTE);
  if (rc || (rc = resolve_item(r, c, type, id, &it))) return rc;
  if ((rc = db_collection_item_add(&it, note, COLLECTIONS_MAX_ITEMS, db_now_ms()))) return rc;
  coll__audit(r, "collection.item.add", c, owner,
              json_pack("{s:s, s:s, s:s}", "item", it.oid, "type", it.kind, "id", id));
  return 0;
}

int collections_add_item(hub_req *r, const char *ns_raw, const char *slug_raw, const char *type,
                         const char *id, const char *note) {
  db_collection c;
  db_account owner;
  int rc = collections_find(r, ns_raw, slug_raw, &c, &owner);
  if (rc) return rc;
  if (!collections_may_write(r, &owner)) return deny(r, &owner);
  return coll__add_item(r, &c, &owner, type, id, note);
}

static int h_item_add(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = load_for_write(r, &c, &owner);
  if (rc) return rc;
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  json_t *item = json_object_get(body, "item");
  const char *type = NULL, *id = NULL, *note = NULL;
  if (!json_is_object(item)) return hub_error_set(HUB_EINVALID, "'item' must be an object");
  if ((rc = opt_string(item, "type", &type)) || (rc = opt_string(item, "id", &id)) ||
      (rc = opt_string(body, "note", &note)) ||
      (rc = coll__add_item(r, &c, &owner, type, id, note)))
    return rc;
  return reply_fresh(r, c.oid, 0);
}

static int h_item_update(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = load_for_write(r, &c, &owner);
  if (rc) return rc;
  json_t *body = http_body_json(r);
  if (!body) return HUB_EINVALID;
  const char *note;
  int pos = -1;
  if ((rc = opt_string(body, "note", &note)) ||
      (rc = check_text("Note", note, COLLECTIONS_MAX_NOTE)))
    return rc;
  json_t *p = json_object_get(body, "position");
  if (p && !json_is_null(p)) {
    if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 1000000)
      return hub_error_set(HUB_EINVALID, "'position' must be a non-negative integer");
    pos = (int)json_integer_value(p);
  }
  if ((rc = db_collection_item_update(c.id, r->cap[2], note, pos, db_now_ms()))) return rc;
  json_t *d = json_pack("{s:s}", "item", r->cap[2]);
  if (note) json_object_set_new(d, "note", json_true());
  if (pos >= 0) json_object_set_new(d, "position", json_integer(pos));
  coll__audit(r, "collection.item.update", &c, &owner, d);
  return reply_fresh(r, c.oid, 1);
}

static int h_item_delete(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = load_for_write(r, &c, &owner);
  if (rc || (rc = db_collection_item_delete(c.id, r->cap[2], db_now_ms()))) return rc;
  coll__audit(r, "collection.item.remove", &c, &owner, json_pack("{s:s}", "item", r->cap[2]));
  return http_reply_json(r, 200, json_pack("{s:b}", "success", 1));
}

/* ---- listing ---- */

/* `Link: <…/api/collections?…&cursor=N>; rel="next"` with the request's other parameters. */
static void next_link(hub_req *r, int64_t cursor) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_printf(&b, "<%s/api/collections?", http_base_url(r));
  for (size_t i = 0; i < r->nparams; i++) {
    if (!strcmp(r->params[i].key, "cursor")) continue;
    hub_pct_encode(&b, r->params[i].key, 0);
    hub_buf_putc(&b, '=');
    hub_pct_encode(&b, r->params[i].value ? r->params[i].value : "", 0);
    hub_buf_putc(&b, '&');
  }
  hub_buf_printf(&b, "cursor=%lld>; rel=\"next\"", (long long)cursor);
  if (!b.failed) http_add_header(r, "Link", b.ptr);
  hub_buf_dispose(&b);
}

/* The item filter "models/ns/name", "datasets/…", "spaces/…" or "collections/ns/slug".
 * *none = 1 when it names nothing the caller can see (papers, missing or hidden items). */
static int item_filter(hub_req *r, const char *item, db_collection_filter *f, int *none) {
  static const struct {
    const char *prefix, *kind;
  } K[] = {{"models/", "model"},           {"datasets/", "dataset"}, {"spaces/", "space"},
           {"collections/", "collection"}, {"papers/", NULL},        {"buckets/", NULL}};
  for (size_t k = 0; k < sizeof K / sizeof K[0]; k++) {
    size_t n = strlen(K[k].prefix);
    if (strncmp(item, K[k].prefix, n)) continue;
    if (!K[k].kind) {
      *none = 1;
      return 0;
    }
    db_collection c;
    memset(&c, 0, sizeof c);
    db_collection_item it;
    int rc = resolve_item(r, &c, K[k].kind, item + n, &it);
    if (rc == HUB_EINVALID) return rc;
    if (rc) {
      *none = 1;
      return 0;
    }
    f->item_kind = K[k].kind;
    f->item_ref = it.ref_id;
    return 0;
  }
  return hub_error_set(HUB_EINVALID,
                       "Invalid item filter '%s' (models/…, datasets/…, spaces/… or "
                       "collections/…)",
                       item);
}

int collections_containing(hub_req *r, const char *item, int max, json_t **out) {
  db_collection_filter f;
  int none = 0, rc;
  memset(&f, 0, sizeof f);
  coll__viewer(r, &f);
  f.sort = DB_COLL_SORT_LAST_MODIFIED;
  f.limit = max;
  *out = json_array();
  if (!*out) return hub_error_set(HUB_ERROR, "out of memory");
  if ((rc = item_filter(r, item, &f, &none)) || none) return rc;
  return coll__list(r, &f, *out, NULL);
}

static int h_list(hub_req *r) {
  db_collection_filter f;
  memset(&f, 0, sizeof f);
  coll__viewer(r, &f);
  const char *owners[COLLECTIONS_MAX_FILTERS], *items[2];
  int64_t ids[COLLECTIONS_MAX_FILTERS];
  size_t no = http_params(r, "owner", owners, COLLECTIONS_MAX_FILTERS), nid = 0;
  size_t ni = http_params(r, "item", items, 2);
  int none = 0, rc;
  for (size_t i = 0; i < no; i++) {
    db_account a;
    if (!db_account_by_name(owners[i], &a)) ids[nid++] = a.id;
  }
  if (no) {
    f.owner_ids = ids;
    f.nowners = nid;
    none = !nid;
  }
  if (ni > 1) return hub_error_set(HUB_EINVALID, "Only one 'item' filter is supported");
  if (ni && (rc = item_filter(r, items[0], &f, &none))) return rc;
  const char *sort = http_param(r, "sort");
  if (!sort || !*sort)
    f.sort = no ? DB_COLL_SORT_POSITION : DB_COLL_SORT_LAST_MODIFIED;
  else if (!strcmp(sort, "lastModified"))
    f.sort = DB_COLL_SORT_LAST_MODIFIED;
  else if (!strcmp(sort, "upvotes") || !strcmp(sort, "trending"))
    f.sort = DB_COLL_SORT_UPVOTES;
  else
    return hub_error_set(HUB_EINVALID, "Invalid sort '%s' (lastModified, trending or upvotes)",
                         sort);
  f.q = http_param(r, "q");
  const char *lim = http_param(r, "limit"), *cur = http_param(r, "cursor");
  long l = lim ? strtol(lim, NULL, 10) : 0;
  f.limit = l < 1 || l > COLLECTIONS_PAGE ? COLLECTIONS_PAGE : (int)l;
  if (cur && *cur) {
    if (strspn(cur, "0123456789") != strlen(cur) || strlen(cur) > 12)
      return hub_error_set(HUB_EINVALID, "Invalid cursor");
    f.offset = strtoll(cur, NULL, 10);
  }
  json_t *arr = json_array();
  int seen = 0;
  if (!arr) return hub_error_set(HUB_ERROR, "out of memory");
  if (!none && (rc = coll__list(r, &f, arr, &seen))) {
    json_decref(arr);
    return rc;
  }
  rc = http_reply_json(r, 200, arr);
  if (!rc && seen == f.limit) next_link(r, f.offset + seen);
  return rc;
}

const hub_route collections_routes[] = {
    {"GET", "/api/collections", h_list, NEED_NONE, BODY_NONE, NULL, 0},
    {"POST", "/api/collections", h_create, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"GET", "/api/collections/{ns}/{slug}", h_get, NEED_NONE, BODY_NONE, NULL, 0},
    {"PATCH", "/api/collections/{ns}/{slug}", h_update, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"DELETE", "/api/collections/{ns}/{slug}", h_delete, NEED_LOGIN, BODY_NONE, NULL, 0},
    {"POST", "/api/collections/{ns}/{slug}/items", h_item_add, NEED_LOGIN, BODY_JSON, NULL, 0},
    {"PATCH", "/api/collections/{ns}/{slug}/items/{item}", h_item_update, NEED_LOGIN, BODY_JSON,
     NULL, 0},
    {"DELETE", "/api/collections/{ns}/{slug}/items/{item}", h_item_delete, NEED_LOGIN, BODY_NONE,
     NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
