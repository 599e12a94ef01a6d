/* The repo page (model card + side panel) and repo settings. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/search.h"
#include "mirror/mirror.h"
#include "ml/card.h"
#include "util/error.h"
#include "web/internal.h"

void web_repo_header(web_page *p, const db_repo *repo, const char *tab, const char *rev) {
  hub_buf *b = &p->b;
  const char *kind = repo->type == HUB_REPO_DATASET ? "Dataset"
                     : repo->type == HUB_REPO_SPACE ? "Space"
                                                    : "Model";
  char full[2 * HUB_MAX_NAME + 2];
  snprintf(full, sizeof full, "%s/%s", repo->ns, repo->name);
  html_f(b,
         "<div class=\"repo-head\"><div class=\"wrap\">"
         "<div class=\"repo-title\"><span class=\"kind\">%s:</span><a href=\"/%u\">%t</a>"
         "<span class=\"muted\">/</span><a class=\"name\" href=\"",
         kind, repo->ns, repo->ns);
  web_repo_href(b, repo);
  html_f(b,
         "\">%t</a><button class=\"btn btn-sm\" type=\"button\" data-copy=\"%a\" "
         "title=\"Copy the repo id\">Copy</button>",
         repo->name, full);
  if (repo->is_private) html_f(b, "<span class=\"badge badge-private\">private</span>");
  if (repo->gated[0]) html_f(b, "<span class=\"badge\">gated</span>");
  db_mirror_repo mirror; /* a read-only copy of an upstream hub's repo (docs/mirror.md) */
  if (mirror_enabled() && mirror_repo_of(repo, &mirror) == 0)
    html_f(b, "<span class=\"badge\" title=\"read-only copy\">mirrored from %t</span>",
           mirror.upstream);
  html_f(b, "</div><nav class=\"tabs\">");
  const char *r = rev && *rev ? rev : "main";
  html_f(b, "<a href=\"");
  web_repo_href(b, repo);
  html_f(b, "\"%s>%s card</a>", !strcmp(tab, "card") ? " class=\"on\"" : "", kind);
  html_f(b, "<a href=\"");
  web_repo_href(b, repo);
  html_f(b, "/tree/%u\"%s>Files and versions</a>", r, !strcmp(tab, "files") ? " class=\"on\"" : "");
  html_f(b, "<a href=\"");
  web_repo_href(b, repo);
  html_f(b, "/commits/%u\"%s>History</a>", r, !strcmp(tab, "commits") ? " class=\"on\"" : "");
  html_f(b, "<a href=\"");
  web_repo_href(b, repo);
  html_f(b, "/discussions\"%s>Community</a>", !strcmp(tab, "community") ? " class=\"on\"" : "");
  if (p->r->repo_perm >= PERM_ADMIN) {
    html_f(b, "<a href=\"");
    web_repo_href(b, repo);
    html_f(b, "/settings\"%s>Settings</a>", !strcmp(tab, "settings") ? " class=\"on\"" : "");
  }
  html_f(b, "</nav></div></div>");
}

/* ---- side panel ------------------------------------------------------------------------ */

static void chip_link(hub_buf *b, int type, const char *key, const char *value) {
  html_f(b, "<a class=\"chip\" href=\"/%s?%s=%u\">%t</a>", http_type_api(type), key, value, value);
}

static void stat_row(hub_buf *b, const char *label, const char *value) {
  html_f(b, "<div class=\"stat\"><span class=\"muted\">%t</span><b>%t</b></div>", label, value);
}

struct tree_ctx {
  hub_buf *b;
  int n;
  char rel[32];
  const hub_identity *who;
};

static int child_cb(const db_like_row *row, void *payload) {
  struct tree_ctx *c = payload;
  /* A fine-grained token sees only the private children its scopes cover. */
  if (row->repo.is_private && c->who->token_role == PERM_FINE_GRAINED &&
      auth_repo_perm(c->who, &row->repo) < PERM_READ)
    return 0;
  if (strcmp(c->rel, row->user)) {
    if (c->n) html_f(c->b, "</div>");
    snprintf(c->rel, sizeof c->rel, "%s", row->user);
    html_f(c->b, "<div class=\"hint\">%t</div><div>", row->user);
  }
  html_f(c->b, "<div class=\"ellip\"><a href=\"");
  web_repo_href(c->b, &row->repo);
  html_f(c->b, "\">%t/%t</a></div>", row->repo.ns, row->repo.name);
  c->n++;
  return 0;
}

/* A card field that may be a string or a list, as a new list (NULL when neither). */
static json_t *as_list(json_t *v) {
  if (json_is_array(v)) return json_incref(v);
  if (json_is_string(v)) return json_pack("[O]", v);
  return NULL;
}

static void side_panel(web_page *p, const db_repo *repo, json_t *info) {
  hub_buf *b = &p->b;
  hub_req *r = p->r;
  char n[48];
  html_f(b, "<aside class=\"side\"><section>");
  web_fmt_count(n, sizeof n, json_integer_value(json_object_get(info, "downloads")));
  stat_row(b, "Downloads last month", n);
  web_fmt_count(n, sizeof n, json_integer_value(json_object_get(info, "likes")));
  stat_row(b, "Likes", n);
  char ago[40];
  web_fmt_ago(ago, sizeof ago, repo->last_modified_ms ? repo->last_modified_ms : repo->updated_ms);
  stat_row(b, "Updated", ago);
  html_f(b, "</section>");

  json_t *st = json_object_get(info, "safetensors");
  json_int_t total = json_integer_value(json_object_get(st, "total"));
  if (!total) total = json_integer_value(json_object_get(json_object_get(info, "gguf"), "total"));
  if (total > 0) {
    html_f(b, "<section><h3>Model size</h3>");
    web_fmt_params(n, sizeof n, total);
    stat_row(b, "Parameters", n);
    json_t *params = json_object_get(st, "parameters");
    const char *dt;
    json_t *cnt;
    if (json_object_size(params)) {
      html_f(b, "<div class=\"stat\"><span class=\"muted\">Tensor types</span><span "
                "class=\"chips\">");
      json_object_foreach(params, dt, cnt) html_f(b, "<span class=\"chip\">%t</span>", dt);
      html_f(b, "</span></div>");
    }
    html_f(b, "</section>");
  }

  const char *task = json_string_value(json_object_get(info, "pipeline_tag"));
  const char *lib = json_string_value(json_object_get(info, "library_name"));
  /* Card fields come from cardData as written (a string or a list). */
  json_t *cd = json_object_get(info, "cardData");
  const char *lic = json_string_value(json_object_get(cd, "license"));
  json_t *langs = as_list(json_object_get(cd, "language"));
  json_t *dsets = as_list(json_object_get(cd, "datasets"));
  if (task || lib || lic || json_array_size(langs) || json_array_size(dsets)) {
    html_f(b, "<section><h3>About</h3>");
    if (task) {
      html_f(b, "<div class=\"stat\"><span class=\"muted\">Task</span><span>");
      chip_link(b, repo->type, "pipeline_tag", task);
      html_f(b, "</span></div>");
    }
    if (lib) {
      html_f(b, "<div class=\"stat\"><span class=\"muted\">Library</span><span>");
      chip_link(b, repo->type, "library", lib);
      html_f(b, "</span></div>");
    }
    if (lic) {
      html_f(b, "<div class=\"stat\"><span class=\"muted\">License</span><span>");
      chip_link(b, repo->type, "license", lic);
      html_f(b, "</span></div>");
    }
    size_t i;
    json_t *v;
    if (json_array_size(langs)) {
      html_f(b, "<div class=\"stat\"><span class=\"muted\">Languages</span><span class=\"chips\">");
      json_array_foreach(langs, i, v) if (json_is_string(v))
          chip_link(b, repo->type, "language", json_string_value(v));
      html_f(b, "</span></div>");
    }
    if (json_array_size(dsets)) {
      html_f(b, "<div class=\"hint\">Datasets used</div>");
      /* Card ids are "ns/name" or a bare canonical name ("imdb"): both are shown, the bare
       * ones linked to a dataset search since this hub has no un-namespaced repos. */
      json_array_foreach(dsets, i, v) {
        const char *ds = json_string_value(v);
        if (!ds || !*ds) continue;
        if (strchr(ds, '/'))
          html_f(b, "<div class=\"ellip\"><a href=\"/datasets/%p\">%t</a></div>", ds, ds);
        else
          html_f(b, "<div class=\"ellip\"><a href=\"/datasets?search=%u\">%t</a></div>", ds, ds);
      }
    }
    html_f(b, "</section>");
  }
  json_decref(langs);
  json_decref(dsets);

  /* Model tree: the base models this one names, and the models naming it. */
  json_t *bases = json_object_get(info, "baseModels");
  char id[2 * HUB_MAX_NAME + 2];
  snprintf(id, sizeof id, "%s/%s", repo->ns, repo->name);
  hub_buf kids = HUB_BUF_INIT;
  struct tree_ctx tc = {&kids, 0, "", &r->who};
  if (repo->type == HUB_REPO_MODEL)
    db_lineage_children(id, r->who.authenticated ? r->who.user_id : 0,
                        r->who.authenticated && r->who.is_admin, 10, child_cb, &tc);
  if (tc.n) html_f(&kids, "</div>");
  if (json_array_size(json_object_get(bases, "models")) || tc.n) {
    html_f(b, "<section id=\"model-tree\"><h3>Model tree</h3>");
    json_t *models = json_object_get(bases, "models"), *m;
    size_t i;
    if (json_array_size(models)) {
      html_f(b, "<div class=\"hint\">Base model (%t)</div>",
             json_string_value(json_object_get(bases, "relation")));
      json_array_foreach(models, i, m) {
        const char *bid = json_string_value(json_object_get(m, "id"));
        if (bid) html_f(b, "<div class=\"ellip\"><a href=\"/%p\">%t</a></div>", bid, bid);
      }
    }
    if (tc.n) {
      html_f(b, "<div class=\"hint\">Derived models</div>");
      if (!kids.failed) hub_buf_put(b, kids.ptr, kids.len);
    }
    html_f(b, "</section>");
  }
  hub_buf_dispose(&kids);

  json_t *evals = json_object_get(info, "evalResults");
  if (json_array_size(evals)) {
    html_f(b, "<section><h3>Evaluation results</h3><div class=\"scroll\"><table class=\"list\">"
              "<thead><tr><th>Dataset</th><th>Metric</th><th class=\"num\">Value</th></tr></thead>"
              "<tbody>");
    size_t i;
    json_t *e;
    json_array_foreach(evals, i, e) {
      if (i >= 50) break;
      json_t *val = json_object_get(e, "value");
      char vs[64] = "";
      if (json_is_integer(val))
        snprintf(vs, sizeof vs, "%lld", (long long)json_integer_value(val));
      else if (json_is_real(val))
        snprintf(vs, sizeof vs, "%.4g", json_real_value(val));
      else if (json_is_string(val))
        snprintf(vs, sizeof vs, "%s", json_string_value(val));
      json_t *ds = json_object_get(e, "dataset"), *mt = json_object_get(e, "metric");
      const char *dsn = json_is_object(ds) ? json_string_value(json_object_get(ds, "name"))
                                           : json_string_value(ds);
      if (!dsn && json_is_object(ds)) dsn = json_string_value(json_object_get(ds, "type"));
      const char *mtn = json_is_object(mt) ? json_string_value(json_object_get(mt, "name"))
                                           : json_string_value(mt);
      if (!mtn && json_is_object(mt)) mtn = json_string_value(json_object_get(mt, "type"));
      html_f(b, "<tr><td>%t</td><td>%t</td><td class=\"num\">%t</td></tr>", dsn ? dsn : "",
             mtn ? mtn : "", vs);
    }
    html_f(b, "</tbody></table></div></section>");
  }

  json_t *tags = json_object_get(info, "tags");
  if (json_array_size(tags)) {
    html_f(b, "<section><h3>Tags</h3><div class=\"chips\">");
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) if (json_is_string(t))
        html_f(b, "<span class=\"chip\">%t</span>", json_string_value(t));
    html_f(b, "</div></section>");
  }
  html_f(b,
         "<section><h3>Use it</h3><div class=\"mono brk\">"
         "git clone %t/%s%t</div></section>",
         http_base_url(r), http_type_prefix(repo->type), id);
  web_collections_panel(p, repo);
  html_f(b, "</aside>");
}

/* Rendered cards by README blob id: the same bytes always render the same HTML, so a
 * popular card is rendered once rather than on every view (a 200 KB README costs
 * milliseconds of cmark-gfm). Small, process-wide, bounded by WEB_MAX_README per entry. */
#define CARD_CACHE 32
static struct {
  char oid[41];
  char *html;
  size_t len;
} g_cards[CARD_CACHE];
static unsigned g_cards_next;
static pthread_mutex_t g_cards_mu = PTHREAD_MUTEX_INITIALIZER;

static int card_cache_get(const char *oid, hub_buf *out) {
  int hit = 0;
  pthread_mutex_lock(&g_cards_mu);
  for (int i = 0; i < CARD_CACHE && !hit; i++)
    if (g_cards[i].html && !strcmp(g_cards[i].oid, oid)) {
      hub_buf_put(out, g_cards[i].html, g_cards[i].len);
      hit = 1;
    }
  pthread_mutex_unlock(&g_cards_mu);
  return hit;
}

static void card_cache_put(const char *oid, const char *html, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, html, len);
  copy[len] = 0;
  pthread_mutex_lock(&g_cards_mu);
  unsigned i = g_cards_next++ % CARD_CACHE;
  free(g_cards[i].html);
  snprintf(g_cards[i].oid, sizeof g_cards[i].oid, "%s", oid);
  g_cards[i].html = copy;
  g_cards[i].len = len;
  pthread_mutex_unlock(&g_cards_mu);
}

static void card_render(hub_buf *b, const void *data, size_t len);

/* README.md at the head, rendered; front matter is metadata, not text. */
static void card_body(web_page *p, repo_handle *h, const char *sha, json_t *info) {
  hub_buf *b = &p->b;
  void *data = NULL;
  size_t len = 0;
  repo_entry e;
  json_t *warn = json_object_get(info, "cardWarnings");
  if (json_array_size(warn))
    html_f(b, "<div class=\"flash flash-warn\">The card's metadata has problems: %t</div>",
           json_string_value(json_array_get(warn, 0)) ? json_string_value(json_array_get(warn, 0))
                                                      : "see README.md");
  char blob_oid[41];
  int is_file = 0;
  if (h && sha[0] && repo_stat(h, sha, "README.md", &e) == 0) {
    is_file = e.type == REPO_ENTRY_FILE;
    memcpy(blob_oid, e.oid, sizeof blob_oid);
    repo_entry_dispose(&e);
  }
  if (is_file && card_cache_get(blob_oid, b)) return;
  if (!is_file || repo_read_blob(h, blob_oid, &data, &len)) {
    html_f(b, "<div class=\"empty\"><h2 class=\"mt0\">No card yet</h2>"
              "<p>Add a <code>README.md</code> to describe this repository.</p></div>");
    return;
  }
  hub_buf html = HUB_BUF_INIT;
  card_render(&html, data, len);
  free(data);
  if (!html.failed && html.ptr) {
    hub_buf_put(b, html.ptr, html.len);
    card_cache_put(blob_oid, html.ptr, html.len);
  }
  hub_buf_dispose(&html);
}

static void card_render(hub_buf *b, const void *data, size_t len) {
  char oid[65];
  uint64_t lsize;
  if (repo_lfs_pointer_parse(data, len, oid, &lsize)) {
    html_f(b, "<div class=\"empty\">README.md is stored with Git LFS and cannot be shown.</div>");
    return;
  }
  const char *yaml = NULL, *body = NULL;
  size_t ylen = 0, blen = 0;
  if (card_split(data, len, &yaml, &ylen, &body, &blen)) {
    body = data; /* unterminated front matter: show the whole text */
    blen = len;
  }
  int cut = blen > WEB_MAX_README;
  html_f(b, "<article class=\"md\" id=\"card\">");
  web_markdown(b, body, cut ? WEB_MAX_README : blen);
  html_f(b, "</article>");
  if (cut)
    html_f(b,
           "<div class=\"flash flash-warn\">This card is long: only the first %d kB are "
           "shown.</div>",
           WEB_MAX_README / 1024);
}

int web_h_repo(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 0);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  const db_repo *repo = &r->repo;
  json_t *info = api_repo_json(r, repo, NULL, 0);
  if (!info) return web_error_code(r, hub_error_code() ? hub_error_code() : HUB_ERROR);
  repo_handle *h = NULL;
  char sha[41] = "";
  const char *s = json_string_value(json_object_get(info, "sha"));
  if (s && strlen(s) == 40) memcpy(sha, s, 41);
  int files_ok = auth_gate_allows(&r->who, repo, r->repo_perm);
  if (files_ok && api_repo_open(r, &h)) h = NULL;
  char title[2 * HUB_MAX_NAME + 2];
  snprintf(title, sizeof title, "%s/%s", repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "card", NULL);
  html_f(&p.b, "<div class=\"cols\"><div>");
  web_scan_banner(&p, repo); /* files flagged by the security scan */
  if (!files_ok)
    html_f(&p.b, "<div class=\"flash flash-warn\">This repository is gated: its files are "
                 "available once the authors accept your access request.</div>");
  card_body(&p, files_ok ? h : NULL, sha, info);
  html_f(&p.b, "</div>");
  side_panel(&p, repo, info);
  html_f(&p.b, "</div>");
  json_decref(info);
  web_page_end(&p);
  return web_page_send(&p, 200);
}

/* ---- settings ---------------------------------------------------------------------------- */

static int settings_page(hub_req *r, int status, const char *error, const char *notice) {
  const db_repo *repo = &r->repo;
  char title[2 * HUB_MAX_NAME + 16];
  snprintf(title, sizeof title, "Settings · %s/%s", repo->ns, repo->name);
  char full[2 * HUB_MAX_NAME + 2];
  snprintf(full, sizeof full, "%s/%s", repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "settings", NULL);
  hub_buf *b = &p.b;
  html_f(b, "<div>");
  if (error) html_f(b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  if (notice) html_f(b, "<div class=\"flash flash-ok\">%t</div>", notice);
  html_f(b, "<div class=\"card\"><h2 class=\"mt0\">Visibility and access</h2>"
            "<form method=\"post\" action=\"");
  web_repo_href(b, repo);
  html_f(b, "/settings\">");
  web_csrf_input(&p);
  html_f(b,
         "<label class=\"radio\"><input type=\"radio\" name=\"visibility\" value=\"public\"%s>"
         "<span><b>Public</b><br><span class=\"hint\">Anyone can see and download it.</span>"
         "</span></label><label class=\"radio\"><input type=\"radio\" name=\"visibility\" "
         "value=\"private\"%s><span><b>Private</b><br><span class=\"hint\">Only you and members "
         "of its organization.</span></span></label>"
         "<label for=\"gated\">Access requests (gating)</label><select id=\"gated\" name=\"gated\">"
         "<option value=\"\"%s>Not gated</option><option value=\"auto\"%s>Gated, approved "
         "automatically</option><option value=\"manual\"%s>Gated, approved manually</option>"
         "</select><p class=\"hint\">Gated repos keep their card public; files need an accepted "
         "request.</p><p><button class=\"btn btn-primary\" type=\"submit\">Save</button></p>"
         "</form></div>",
         repo->is_private ? "" : " checked", repo->is_private ? " checked" : "",
         !repo->gated[0] ? " selected" : "", !strcmp(repo->gated, "auto") ? " selected" : "",
         !strcmp(repo->gated, "manual") ? " selected" : "");
  html_f(b,
         "<div class=\"card danger-zone\"><h2 class=\"mt0 danger-title\">Delete this "
         "repository</h2><p>This cannot be undone: files "
         "and history are removed. Type <b class=\"mono\">%t</b> to confirm.</p>"
         "<form method=\"post\" action=\"",
         full);
  web_repo_href(b, repo);
  html_f(b, "/delete\">");
  web_csrf_input(&p);
  html_f(b,
         "<input type=\"text\" name=\"confirm\" aria-label=\"Repository name\" "
         "autocomplete=\"off\" placeholder=\"%a\" required><p><button class=\"btn btn-danger\" "
         "type=\"submit\">I understand, delete this repository</button></p></form></div></div>",
         full);
  web_page_end(&p);
  return web_page_send(&p, status);
}

int web_h_settings(hub_req *r) {
  int rc = web_repo_load(r, PERM_ADMIN, 0);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  return settings_page(r, 200, NULL, http_param(r, "saved") ? "Settings saved." : NULL);
}

int web_h_settings_post(hub_req *r) {
  int rc = web_repo_load(r, PERM_ADMIN, 0);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  if ((rc = web_csrf_check(r))) return web_error_code(r, rc);
  const char *vis = web_form(r, "visibility"), *gated = web_form(r, "gated");
  json_t *body = json_object();
  if (vis && (!strcmp(vis, "public") || !strcmp(vis, "private")))
    json_object_set_new(body, "visibility", json_string(vis));
  if (gated)
    json_object_set_new(body, "gated",
                        !strcmp(gated, "auto") || !strcmp(gated, "manual") ? json_string(gated)
                                                                           : json_false());
  rc = web_call_api(r, api_repo_routes, "PUT", "/api/{type}/{repo}/settings", body);
  if (rc) return settings_page(r, 400, hub_error_msg(), NULL);
  hub_buf loc = HUB_BUF_INIT;
  web_repo_href(&loc, &r->repo);
  hub_buf_puts(&loc, "/settings?saved=1");
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}

int web_h_delete_post(hub_req *r) {
  int rc = web_repo_load(r, PERM_ADMIN, 0);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  if ((rc = web_csrf_check(r))) return web_error_code(r, rc);
  char full[2 * HUB_MAX_NAME + 2];
  snprintf(full, sizeof full, "%s/%s", r->repo.ns, r->repo.name);
  const char *confirm = web_form(r, "confirm");
  if (!confirm || strcmp(confirm, full))
    return settings_page(r, 400, "The name you typed does not match; nothing was deleted.", NULL);
  char ns[HUB_MAX_NAME + 1];
  snprintf(ns, sizeof ns, "%s", r->repo.ns);
  json_t *body = json_pack("{s:s, s:s}", "name", full, "type", http_type_name(r->repo.type));
  rc = web_call_api(r, api_repo_routes, "DELETE", "/api/repos/delete", body);
  if (rc) return settings_page(r, 500, "The repository could not be deleted.", NULL);
  hub_buf loc = HUB_BUF_INIT;
  html_f(&loc, "/%u", ns);
  rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}
