/* Profiles (/{user}, /{org}) listing the repos the viewer may see, and /new. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "db/search.h"
#include "util/error.h"
#include "web/internal.h"

struct list_ctx {
  web_page *p;
  int n;
};

static int card_cb(const db_search_row *row, void *payload) {
  struct list_ctx *c = payload;
  web_repo_card(c->p, row);
  c->n++;
  return 0;
}

/* One section of repos of `type` in namespace `ns`, newest changes first. */
static void repo_section(web_page *p, int type, const char *ns, const char *title) {
  hub_req *r = p->r;
  db_search_query q;
  memset(&q, 0, sizeof q);
  q.type = type;
  q.author = ns;
  q.min_params = q.max_params = -1;
  q.sort = DB_SORT_MODIFIED;
  q.dir = -1;
  q.limit = WEB_REPOS_PER_PAGE;
  db_search_scope scopes[AUTH_MAX_SCOPES];
  auth_search_viewer(&r->who, &q, scopes);
  hub_buf section = HUB_BUF_INIT;
  hub_buf saved = p->b;
  p->b = section;
  struct list_ctx c = {p, 0};
  db_search_cursor next;
  int more = 0;
  html_f(&p->b, "<div class=\"grid\">");
  db_search(&q, card_cb, &c, &next, &more);
  html_f(&p->b, "</div>");
  section = p->b;
  p->b = saved;
  if (c.n) {
    html_f(&p->b, "<h2>%t</h2>", title);
    hub_buf_put(&p->b, section.ptr, section.len);
    if (more)
      html_f(&p->b, "<p><a href=\"/%s?author=%u\">See all %t →</a></p>", http_type_api(type), ns,
             title);
  }
  hub_buf_dispose(&section);
}

int web_h_profile(hub_req *r) {
  char name[HUB_MAX_NAME + 1];
  if (strlen(r->cap[0]) >= sizeof name) return web_not_found(r);
  snprintf(name, sizeof name, "%s", r->cap[0]);
  db_account a;
  if (api_pct_decode_inplace(name) || db_account_by_name(name, &a)) return web_not_found(r);
  web_page p;
  web_page_begin(&p, r, a.name);
  char initial[2] = {a.name[0], 0};
  html_f(&p.b, "<div class=\"profile-head\"><div class=\"avatar\">%t</div><div><h1>%t</h1>",
         initial, a.fullname[0] ? a.fullname : a.name);
  html_f(&p.b, "<p class=\"muted\">%s%t · %s</p></div></div>", a.fullname[0] ? "@" : "",
         a.fullname[0] ? a.name : "", a.kind == ACCOUNT_ORG ? "Organization" : "User");
  html_f(&p.b, "<p><a href=\"/collections/%u\">Collections</a></p>", a.name);
  size_t before = p.b.len;
  repo_section(&p, HUB_REPO_MODEL, a.name, "Models");
  repo_section(&p, HUB_REPO_DATASET, a.name, "Datasets");
  repo_section(&p, HUB_REPO_SPACE, a.name, "Spaces");
  if (p.b.len == before)
    html_f(&p.b, "<div class=\"empty\">%t has no public repositories yet.</div>", a.name);
  web_page_end(&p);
  return web_page_send(&p, 200);
}

/* ---- /new ------------------------------------------------------------------------------ */

struct owners {
  web_page *p;
  const char *selected;
};

static void owner_option(const db_account *org, int role, void *payload) {
  struct owners *o = payload;
  if (role < PERM_WRITE) return;
  html_f(&o->p->b, "<option value=\"%a\"%s>%t</option>", org->name,
         o->selected && !strcmp(o->selected, org->name) ? " selected" : "", org->name);
}

static int new_page(hub_req *r, int status, const char *error, const char *owner, const char *type,
                    const char *name, int priv) {
  web_page p;
  web_page_begin(&p, r, "New repository");
  html_f(&p.b, "<div class=\"narrow\"><div class=\"card\">"
               "<h1>Create a new repository</h1><p class=\"muted\">A repository holds model, "
               "dataset or Space files and their history.</p>");
  if (error) html_f(&p.b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  html_f(&p.b, "<form method=\"post\" action=\"/new\">");
  web_csrf_input(&p);
  html_f(&p.b, "<label for=\"type\">Type</label><select id=\"type\" name=\"type\">");
  static const char *const types[] = {"model", "dataset", "space"};
  static const char *const labels[] = {"Model", "Dataset", "Space"};
  for (int i = 0; i < 3; i++)
    html_f(&p.b, "<option value=\"%s\"%s>%s</option>", types[i],
           type && !strcmp(type, types[i]) ? " selected" : "", labels[i]);
  html_f(&p.b,
         "</select><label for=\"owner\">Owner</label><select id=\"owner\" name=\"owner\">"
         "<option value=\"%a\">%t</option>",
         r->who.name, r->who.name);
  struct owners o = {&p, owner};
  db_member_orgs(r->who.user_id, owner_option, &o);
  html_f(&p.b,
         "</select><label for=\"name\">Name</label><input type=\"text\" id=\"name\" name=\"name\" "
         "value=\"%a\" required maxlength=\"%d\" pattern=\"[A-Za-z0-9_.\\-]+\" "
         "placeholder=\"my-awesome-model\" autocapitalize=\"none\">"
         "<p class=\"hint\">Letters, digits, '-', '_' and '.'.</p><label>Visibility</label>"
         "<label class=\"radio\"><input type=\"radio\" name=\"visibility\" value=\"public\"%s>"
         "<span><b>Public</b><br><span class=\"hint\">Anyone can see it.</span></span></label>"
         "<label class=\"radio\"><input type=\"radio\" name=\"visibility\" value=\"private\"%s>"
         "<span><b>Private</b><br><span class=\"hint\">Only you (and your organization) can see "
         "it.</span></span></label>"
         "<p><button class=\"btn btn-primary\" type=\"submit\">Create repository</button></p>"
         "</form></div></div>",
         name ? name : "", HUB_MAX_NAME, priv ? "" : " checked", priv ? " checked" : "");
  web_page_end(&p);
  return web_page_send(&p, status);
}

int web_h_new(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  return new_page(r, 200, NULL, http_param(r, "owner"), http_param(r, "type"), NULL, 0);
}

int web_h_new_post(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  int rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  const char *owner = web_form(r, "owner"), *type = web_form(r, "type");
  const char *name = web_form(r, "name"), *vis = web_form(r, "visibility");
  int priv = vis && !strcmp(vis, "private");
  int t;
  if (!type || http_type_parse(type, &t)) type = "model", t = HUB_REPO_MODEL;
  if (!name || !*name)
    return new_page(r, 400, "Choose a name for the repository.", owner, type, name, priv);
  json_t *body = json_pack("{s:s, s:s, s:b}", "name", name, "type", type, "private", priv);
  if (body && owner && *owner && strcmp(owner, r->who.name))
    json_object_set_new(body, "organization", json_string(owner));
  rc = web_call_api(r, api_repo_routes, "POST", "/api/repos/create", body);
  if (rc) {
    int status = rc == HUB_EEXISTS                           ? 409
                 : rc == HUB_EFORBIDDEN                      ? 403
                 : rc == HUB_EINVALID || rc == HUB_ENOTFOUND ? 400
                                                             : 500;
    const char *msg = rc == HUB_EEXISTS ? "You already have a repository with that name."
                      : status == 500   ? "The repository could not be created."
                                        : hub_error_msg();
    return new_page(r, status, msg, owner, type, name, priv);
  }
  hub_buf loc = HUB_BUF_INIT;
  db_repo made;
  memset(&made, 0, sizeof made);
  made.type = t;
  snprintf(made.ns, sizeof made.ns, "%s", owner && *owner ? owner : r->who.name);
  snprintf(made.name, sizeof made.name, "%s", name);
  web_repo_href(&loc, &made);
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}
