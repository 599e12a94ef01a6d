/* Collection pages: /collections/{ns} (an owner's collections, and a form to create one),
 * /collections/{ns}/{slug} (one collection), and the "Collections" panel of repo pages with
 * its "Add to collection" form. Every write goes through collections/, as the API does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "collections/collections.h"
#include "util/error.h"
#include "util/pct.h"
#include "web/internal.h"

/* The href of an item: a repo page or a collection page. */
static void item_href(hub_buf *b, json_t *it) {
  const char *type = json_string_value(json_object_get(it, "type"));
  if (type && !strcmp(type, "collection")) {
    html_f(b, "/collections/%p", json_string_value(json_object_get(it, "slug")));
    return;
  }
  db_repo repo;
  memset(&repo, 0, sizeof repo);
  const char *id = json_string_value(json_object_get(it, "id"));
  const char *slash = id ? strchr(id, '/') : NULL;
  if (!type || !slash || http_type_parse(type, &repo.type)) return;
  snprintf(repo.ns, sizeof repo.ns, "%.*s", (int)(slash - id), id);
  snprintf(repo.name, sizeof repo.name, "%s", slash + 1);
  web_repo_href(b, &repo);
}

static void collection_card(web_page *p, json_t *c) {
  json_t *items = json_object_get(c, "items");
  html_f(
      &p->b, "<a class=\"card collection theme-%a\" href=\"/collections/%p\"><h3>%t%s</h3>",
      json_string_value(json_object_get(c, "theme")), json_string_value(json_object_get(c, "slug")),
      json_string_value(json_object_get(c, "title")),
      json_is_true(json_object_get(c, "private")) ? " <span class=\"badge\">private</span>" : "");
  const char *d = json_string_value(json_object_get(c, "description"));
  if (d) html_f(&p->b, "<p class=\"muted\">%t</p>", d);
  size_t i;
  json_t *it;
  html_f(&p->b, "<ul class=\"plain\">");
  json_array_foreach(items, i, it) {
    const char *type = json_string_value(json_object_get(it, "type"));
    html_f(&p->b, "<li><span class=\"chip\">%t</span> %t</li>", type,
           json_string_value(json_object_get(it, !strcmp(type, "collection") ? "title" : "id")));
  }
  html_f(&p->b, "</ul></a>");
}

static int find_owner(hub_req *r, db_account *a) {
  char *ns = NULL;
  int rc = hub_pct_decode(&ns, r->cap[0]);
  if (!rc) rc = db_account_by_name(ns, a);
  free(ns);
  return rc ? hub_error_set(HUB_ENOTFOUND, "No such user or organization") : 0;
}

static int owner_page(hub_req *r, const db_account *a, int status, const char *error) {
  json_t *list = NULL;
  int rc = collections_list_owner(r, a, &list);
  if (rc) return web_error_code(r, rc);
  char title[HUB_MAX_USER_NAME + 32];
  snprintf(title, sizeof title, "Collections · %s", a->name);
  web_page p;
  web_page_begin(&p, r, title);
  html_f(&p.b, "<h1>Collections of <a href=\"/%u\">%t</a></h1>", a->name, a->name);
  if (error) html_f(&p.b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  if (!json_array_size(list))
    html_f(&p.b, "<div class=\"empty\">%t has no collections yet.</div>", a->name);
  html_f(&p.b, "<div class=\"grid\">");
  size_t i;
  json_t *c;
  json_array_foreach(list, i, c) collection_card(&p, c);
  html_f(&p.b, "</div>");
  json_decref(list);
  if (collections_may_write(r, a)) {
    html_f(&p.b,
           "<div class=\"narrow\"><div class=\"card\"><h2 class=\"mt0\">New collection</h2>"
           "<form method=\"post\" action=\"/collections/%u\">",
           a->name);
    web_csrf_input(&p);
    html_f(&p.b,
           "<label for=\"title\">Title</label><input type=\"text\" id=\"title\" name=\"title\" "
           "required maxlength=\"%d\"><label for=\"description\">Description</label>"
           "<input type=\"text\" id=\"description\" name=\"description\" maxlength=\"%d\">"
           "<label class=\"radio\"><input type=\"checkbox\" name=\"private\" value=\"1\">"
           "<span>Private</span></label><p><button class=\"btn btn-primary\" type=\"submit\">"
           "Create collection</button></p></form></div></div>",
           COLLECTIONS_MAX_TITLE, COLLECTIONS_MAX_DESCRIPTION);
  }
  web_page_end(&p);
  return web_page_send(&p, status);
}

int web_h_collections(hub_req *r) {
  db_account a;
  int rc = find_owner(r, &a);
  return rc ? web_error_code(r, rc) : owner_page(r, &a, 200, NULL);
}

int web_h_collections_post(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  int rc = web_csrf_check(r);
  db_account a;
  if (rc || (rc = find_owner(r, &a))) return web_error_code(r, rc);
  const char *title = web_form(r, "title"), *desc = web_form(r, "description");
  const char *priv = web_form(r, "private");
  char slug[COLLECTIONS_SLUG_MAX];
  rc = collections_create(r, a.name, title ? title : "", desc && *desc ? desc : NULL,
                          priv && !strcmp(priv, "1"), slug);
  if (rc == HUB_EINVALID || rc == HUB_ETOOBIG)
    return owner_page(r, &a, rc == HUB_EINVALID ? 400 : 413, hub_error_msg());
  if (rc == HUB_EEXISTS)
    return owner_page(r, &a, 409, "You already have a collection with this title.");
  if (rc) return web_error_code(r, rc);
  hub_buf loc = HUB_BUF_INIT;
  html_f(&loc, "/collections/%p", slug);
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}

int web_h_collection(hub_req *r) {
  db_collection c;
  db_account owner;
  int rc = collections_find(r, r->cap[0], r->cap[1], &c, &owner);
  if (rc) return web_error_code(r, rc);
  json_t *o = collections_json(r, &c, &owner, COLLECTIONS_MAX_ITEMS, 1);
  if (!o) return web_error_code(r, HUB_ERROR);
  int writer = collections_may_write(r, &owner);
  const char *slug = json_string_value(json_object_get(o, "slug"));
  web_page p;
  web_page_begin(&p, r, c.title);
  html_f(&p.b,
         "<div class=\"collection-head theme-%a\"><p class=\"muted\"><a href=\"/collections/%u\">"
         "%t</a> · collection%s</p><h1>%t</h1>",
         c.theme, owner.name, owner.name,
         c.is_private ? " · <span class=\"badge\">private</span>" : "", c.title);
  if (c.description[0]) html_f(&p.b, "<p>%t</p>", c.description);
  html_f(&p.b, "</div>");
  json_t *items = json_object_get(o, "items");
  if (!json_array_size(items)) html_f(&p.b, "<div class=\"empty\">This collection is empty.</div>");
  html_f(&p.b, "<ol class=\"collection-items\">");
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *type = json_string_value(json_object_get(it, "type"));
    int sub = !strcmp(type, "collection");
    html_f(&p.b, "<li class=\"card\"><span class=\"chip\">%t</span> <a href=\"", type);
    item_href(&p.b, it);
    html_f(&p.b, "\">%t</a>", json_string_value(json_object_get(it, sub ? "title" : "id")));
    const char *note = json_string_value(json_object_get(json_object_get(it, "note"), "text"));
    if (note) html_f(&p.b, "<p class=\"note\">%t</p>", note);
    if (writer) {
      html_f(&p.b, "<form method=\"post\" action=\"/collections/%p/remove\" class=\"inline\">",
             slug);
      web_csrf_input(&p);
      html_f(&p.b,
             "<input type=\"hidden\" name=\"item\" value=\"%a\"><button class=\"btn\" "
             "type=\"submit\">Remove</button></form>",
             json_string_value(json_object_get(it, "_id")));
    }
    html_f(&p.b, "</li>");
  }
  html_f(&p.b, "</ol>");
  json_decref(o);
  web_page_end(&p);
  return web_page_send(&p, 200);
}

int web_h_collection_remove_post(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  int rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  const char *item = web_form(r, "item");
  if (!item || strlen(item) != 24) return web_error_code(r, hub_error_set(HUB_EINVALID, "No item"));
  r->cap[2] = http_strdup(r, item);
  r->ncap = 3;
  rc = web_call_api(r, collections_routes, "DELETE", "/api/collections/{ns}/{slug}/items/{item}",
                    json_object());
  if (rc) return web_error_code(r, rc);
  hub_buf loc = HUB_BUF_INIT;
  html_f(&loc, "/collections/%s/%s", r->cap[0], r->cap[1]); /* raw segments, as requested */
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}

/* ---- the repo page's panel ---- */

void web_collections_panel(web_page *p, const db_repo *repo) {
  hub_req *r = p->r;
  hub_buf *b = &p->b;
  json_t *in = NULL, *mine = NULL;
  /* Collections holding this repo that the viewer may see (one listing page). */
  char item[2 * HUB_MAX_NAME + 16];
  snprintf(item, sizeof item, "%s/%s/%s", http_type_api(repo->type), repo->ns, repo->name);
  collections_containing(r, item, 10, &in);
  if (r->who.authenticated) collections_writable(r, 100, &mine);
  if (!json_array_size(in) && !json_array_size(mine)) {
    if (r->who.authenticated)
      html_f(b,
             "<section><h3>Collections</h3><p><a href=\"/collections/%u\">Create a collection"
             "</a> to add this repository to it.</p></section>",
             r->who.name);
    goto done;
  }
  html_f(b, "<section><h3>Collections</h3>");
  size_t i;
  json_t *c;
  if (json_array_size(in)) {
    html_f(b, "<ul class=\"plain in-collections\">");
    json_array_foreach(in, i, c) html_f(b, "<li><a href=\"/collections/%p\">%t</a></li>",
                                        json_string_value(json_object_get(c, "slug")),
                                        json_string_value(json_object_get(c, "title")));
    html_f(b, "</ul>");
  }
  if (json_array_size(mine)) {
    html_f(b, "<form method=\"post\" action=\"");
    web_repo_href(b, repo);
    html_f(b, "/add-to-collection\">");
    web_csrf_input(p);
    html_f(b, "<label for=\"collection\">Add to collection</label>"
              "<select id=\"collection\" name=\"collection\">");
    json_array_foreach(mine, i, c)
        html_f(b, "<option value=\"%a\">%t</option>", json_string_value(json_object_get(c, "slug")),
               json_string_value(json_object_get(c, "title")));
    html_f(b,
           "</select><input type=\"text\" name=\"note\" aria-label=\"Note\" "
           "placeholder=\"Note (optional)\" maxlength=\"%d\"><p><button class=\"btn\" "
           "type=\"submit\">Add to collection</button></p></form>",
           COLLECTIONS_MAX_NOTE);
  }
  html_f(b, "</section>");
done:
  json_decref(in);
  json_decref(mine);
}

int web_h_add_to_collection_post(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 0);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  if ((rc = web_csrf_check(r))) return web_error_code(r, rc);
  const char *slug = web_form(r, "collection"), *note = web_form(r, "note");
  const char *slash = slug ? strchr(slug, '/') : NULL;
  if (!slash) return web_error_code(r, hub_error_set(HUB_EINVALID, "Choose a collection"));
  char ns[HUB_MAX_USER_NAME + 1], id[2 * HUB_MAX_NAME + 2];
  if ((size_t)(slash - slug) > HUB_MAX_USER_NAME)
    return web_error_code(r, hub_error_set(HUB_ENOTFOUND, "Collection not found"));
  snprintf(ns, sizeof ns, "%.*s", (int)(slash - slug), slug);
  snprintf(id, sizeof id, "%s/%s", r->repo.ns, r->repo.name);
  rc = collections_add_item(r, ns, slash + 1, http_type_name(r->repo.type), id,
                            note && *note ? note : NULL);
  if (rc && rc != HUB_EEXISTS) return web_error_code(r, rc);
  hub_buf loc = HUB_BUF_INIT;
  web_repo_href(&loc, &r->repo);
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}
