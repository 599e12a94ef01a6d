/* Home (/) and the search pages (/models, /datasets, /spaces) with a facet sidebar. */
#include <stdio.h>
#include <string.h>

#include "db/search.h"
#include "util/error.h"
#include "web/internal.h"

void web_repo_card(web_page *p, const void *rowp) {
  const db_search_row *row = rowp;
  const db_repo *repo = &row->repo;
  hub_buf *b = &p->b;
  html_f(b, "<a class=\"rcard\" href=\"");
  web_repo_href(b, repo);
  html_f(b, "\"><div class=\"t\">%t/%t", repo->ns, repo->name);
  if (repo->is_private) html_f(b, " <span class=\"badge badge-private\">private</span>");
  html_f(b, "</div><div class=\"m\">");
  if (row->pipeline_tag && *row->pipeline_tag) html_f(b, "<span>%t</span>", row->pipeline_tag);
  if (row->num_params > 0) {
    char n[32];
    web_fmt_params(n, sizeof n, row->num_params);
    html_f(b, "<span>%t params</span>", n);
  }
  char ago[40], dl[32], lk[32];
  web_fmt_ago(ago, sizeof ago, repo->last_modified_ms ? repo->last_modified_ms : repo->updated_ms);
  web_fmt_count(dl, sizeof dl, row->downloads);
  web_fmt_count(lk, sizeof lk, row->likes);
  html_f(b,
         "<span>Updated %t</span><span title=\"Downloads (30 days)\">↓ %t</span>"
         "<span title=\"Likes\">♥ %t</span></div></a>",
         ago, dl, lk);
}

struct grid {
  web_page *p;
  int n;
};

static int grid_cb(const db_search_row *row, void *payload) {
  struct grid *g = payload;
  web_repo_card(g->p, row);
  g->n++;
  return 0;
}

static void viewer(hub_req *r, db_search_query *q) {
  db_search_scope *sc =
      r->who.token_role == PERM_FINE_GRAINED ? http_alloc(r, sizeof *sc * AUTH_MAX_SCOPES) : NULL;
  auth_search_viewer(&r->who, q, sc);
}

int web_h_home(hub_req *r) {
  web_page p;
  web_page_begin(&p, r, "Home");
  html_f(&p.b, "<section class=\"hero\"><h1>The models your team builds, in one place.</h1>"
               "<p>Browse, version and share models and datasets on your own hub.</p>"
               "<form action=\"/models\" method=\"get\" role=\"search\">"
               "<input type=\"search\" name=\"search\" placeholder=\"Search models…\" "
               "aria-label=\"Search models\"><button class=\"btn btn-primary\" type=\"submit\">"
               "Search</button></form></section>");
  static const int types[] = {HUB_REPO_MODEL, HUB_REPO_DATASET};
  static const char *const titles[] = {"Trending models", "Trending datasets"};
  for (int i = 0; i < 2; i++) {
    db_search_query q;
    memset(&q, 0, sizeof q);
    q.type = types[i];
    q.min_params = q.max_params = -1;
    q.sort = DB_SORT_TRENDING;
    q.dir = -1;
    q.limit = i == 0 ? 12 : 6;
    viewer(r, &q);
    size_t mark = p.b.len;
    html_f(&p.b,
           "<div class=\"list-head\"><h2>%t</h2><a href=\"/%s?sort=trending\">See all →</a>"
           "</div><div class=\"grid\">",
           titles[i], http_type_api(types[i]));
    struct grid g = {&p, 0};
    db_search_cursor next;
    int more = 0;
    db_search(&q, grid_cb, &g, &next, &more);
    html_f(&p.b, "</div>");
    if (!g.n) { /* nothing to show: drop the section, keep a hint for the first one */
      p.b.len = mark;
      p.b.ptr[mark] = 0;
      if (i == 0)
        html_f(&p.b, "<div class=\"empty\">No public models yet. %s</div>",
               r->who.authenticated ? "<a href=\"/new\">Create the first one</a>."
                                    : "<a href=\"/login\">Log in</a> to create one.");
    }
  }
  web_page_end(&p);
  return web_page_send(&p, 200);
}

/* ---- search -------------------------------------------------------------------------- */

enum { K_SEARCH, K_TASK, K_LIBRARY, K_LICENSE, K_LANGUAGE, K_PARAMS, K_SORT, K_AUTHOR, K_N };
static const char *const KEYS[K_N] = {"search",   "pipeline_tag", "library", "license",
                                      "language", "params",       "sort",    "author"};

typedef struct {
  int type;
  const char *v[K_N];
} search_state;

/* "?k=v&amp;…" of the state with key `k` set to `val` (NULL: removed). Never the cursor. */
static int state_href(hub_buf *b, const search_state *s, int k, const char *val) {
  html_f(b, "/%s", http_type_api(s->type));
  int first = 1;
  for (int i = 0; i < K_N; i++) {
    const char *v = i == k ? val : s->v[i];
    if (!v || !*v) continue;
    html_f(b, "%s%s=%u", first ? "?" : "&amp;", KEYS[i], v);
    first = 0;
  }
  return !first;
}

/* What a facet value looks like on the page (parameter buckets have labels). */
static const char *facet_label(int key, const char *value) {
  for (int i = 0; key == K_PARAMS && i < 6; i++)
    if (!strcmp(value, web_param_buckets[i].key)) return web_param_buckets[i].label;
  return value;
}

static void facet_group(web_page *p, const search_state *s, int key, const char *title,
                        const web_facet *f, size_t n) {
  if (!n && !s->v[key]) return;
  html_f(&p->b, "<h3>%t</h3><div class=\"chips\">", title);
  int shown_active = 0;
  for (size_t i = 0; i < n; i++) {
    int on = s->v[key] && !strcmp(s->v[key], f[i].value);
    shown_active |= on;
    char cnt[32];
    web_fmt_count(cnt, sizeof cnt, f[i].count);
    html_f(&p->b, "<a class=\"chip%s\" href=\"", on ? " on" : "");
    state_href(&p->b, s, key, on ? NULL : f[i].value);
    html_f(&p->b, "\" data-facet=\"%a\">%t <span class=\"n\">%t</span></a>", KEYS[key],
           facet_label(key, f[i].value), cnt);
  }
  if (s->v[key] && !shown_active) { /* active filter with no count: still removable */
    html_f(&p->b, "<a class=\"chip on\" href=\"");
    state_href(&p->b, s, key, NULL);
    html_f(&p->b, "\">%t ✕</a>", facet_label(key, s->v[key]));
  }
  html_f(&p->b, "</div>");
}

static const struct {
  const char *key, *label;
  int sort;
} SORTS[] = {
    {"trending", "Trending", DB_SORT_TRENDING},
    {"downloads", "Most downloads", DB_SORT_DOWNLOADS},
    {"likes", "Most likes", DB_SORT_LIKES},
    {"created", "Recently created", DB_SORT_CREATED},
    {"modified", "Recently updated", DB_SORT_MODIFIED},
};

int web_h_search(hub_req *r) {
  search_state s;
  memset(&s, 0, sizeof s);
  http_type_parse(!strcmp(r->segs[0], "datasets") ? "dataset"
                  : !strcmp(r->segs[0], "spaces") ? "space"
                                                  : "model",
                  &s.type);
  for (int i = 0; i < K_N; i++) {
    s.v[i] = http_param(r, KEYS[i]);
    if (s.v[i] && (!*s.v[i] || strlen(s.v[i]) > 200)) s.v[i] = NULL;
  }
  db_search_query q;
  memset(&q, 0, sizeof q);
  q.type = s.type;
  q.min_params = q.max_params = -1;
  q.limit = WEB_REPOS_PER_PAGE;
  viewer(r, &q);
  if (s.v[K_SEARCH]) q.search[q.nsearch++] = s.v[K_SEARCH];
  q.author = s.v[K_AUTHOR];
  q.pipeline_tag = s.v[K_TASK];
  char lic[220];
  if (s.v[K_LIBRARY]) q.tags[q.ntags++] = s.v[K_LIBRARY];
  if (s.v[K_LICENSE]) {
    snprintf(lic, sizeof lic, "license:%s", s.v[K_LICENSE]);
    q.tags[q.ntags++] = lic;
  }
  if (s.v[K_LANGUAGE]) q.tags[q.ntags++] = s.v[K_LANGUAGE];
  for (int i = 0; s.v[K_PARAMS] && i < 6; i++)
    if (!strcmp(s.v[K_PARAMS], web_param_buckets[i].key)) {
      q.min_params = web_param_buckets[i].min;
      q.max_params = web_param_buckets[i].max;
    }
  q.sort = s.v[K_SEARCH] ? DB_SORT_RELEVANCE : DB_SORT_TRENDING;
  int sort_i = -1;
  for (size_t i = 0; s.v[K_SORT] && i < sizeof SORTS / sizeof *SORTS; i++)
    if (!strcmp(s.v[K_SORT], SORTS[i].key)) sort_i = (int)i, q.sort = SORTS[i].sort;
  if (sort_i < 0) s.v[K_SORT] = NULL;
  q.dir = -1;
  db_search_cursor after;
  const char *cur = http_param(r, "cursor");
  if (cur && db_cursor_decode(cur, &after) == 0) q.after = &after;

  const char *title = s.type == HUB_REPO_DATASET ? "Datasets"
                      : s.type == HUB_REPO_SPACE ? "Spaces"
                                                 : "Models";
  web_page p;
  web_page_begin(&p, r, title);
  html_f(&p.b, "<div class=\"search-layout\"><aside class=\"facets\">");
  web_facets f;
  if (web_facets_get(s.type, &f) == 0) {
    if (s.type == HUB_REPO_MODEL)
      facet_group(&p, &s, K_TASK, "Tasks", f.f[WEB_FACET_TASK], f.n[WEB_FACET_TASK]);
    facet_group(&p, &s, K_LIBRARY, "Libraries", f.f[WEB_FACET_LIBRARY], f.n[WEB_FACET_LIBRARY]);
    facet_group(&p, &s, K_LICENSE, "Licenses", f.f[WEB_FACET_LICENSE], f.n[WEB_FACET_LICENSE]);
    facet_group(&p, &s, K_LANGUAGE, "Languages", f.f[WEB_FACET_LANGUAGE], f.n[WEB_FACET_LANGUAGE]);
    if (s.type == HUB_REPO_MODEL) {
      web_facet pf[6];
      size_t np = 0;
      for (int i = 0; i < 6; i++)
        if (f.params[i] || (s.v[K_PARAMS] && !strcmp(s.v[K_PARAMS], web_param_buckets[i].key))) {
          snprintf(pf[np].value, sizeof pf[np].value, "%s", web_param_buckets[i].key);
          pf[np++].count = f.params[i];
        }
      facet_group(&p, &s, K_PARAMS, "Parameters", pf, np);
    }
  }
  html_f(&p.b,
         "</aside><section><div class=\"list-head\"><h1>%t</h1>"
         "<form method=\"get\" action=\"/%s\">",
         title, http_type_api(s.type));
  for (int i = 0; i < K_N; i++)
    if (i != K_SEARCH && i != K_SORT && s.v[i])
      html_f(&p.b, "<input type=\"hidden\" name=\"%s\" value=\"%a\">", KEYS[i], s.v[i]);
  html_f(&p.b,
         "<input type=\"search\" name=\"search\" value=\"%a\" placeholder=\"Filter by name"
         "\" aria-label=\"Filter by name\"><select name=\"sort\" aria-label=\"Sort\" "
         "data-autosubmit>",
         s.v[K_SEARCH] ? s.v[K_SEARCH] : "");
  if (s.v[K_SEARCH]) html_f(&p.b, "<option value=\"\">Most relevant</option>");
  for (size_t i = 0; i < sizeof SORTS / sizeof *SORTS; i++)
    html_f(&p.b, "<option value=\"%s\"%s>%s</option>", SORTS[i].key,
           (int)i == sort_i || (sort_i < 0 && !s.v[K_SEARCH] && i == 0) ? " selected" : "",
           SORTS[i].label);
  html_f(&p.b, "</select><button class=\"btn\" type=\"submit\">Apply</button></form></div>");
  /* Active filters as removable chips. */
  int any = 0;
  for (int i = 0; i < K_N; i++) {
    if (i == K_SORT || !s.v[i]) continue;
    if (!any) html_f(&p.b, "<div class=\"chips active-filters\">");
    any = 1;
    html_f(&p.b, "<a class=\"chip on\" href=\"");
    state_href(&p.b, &s, i, NULL);
    html_f(&p.b, "\" title=\"Remove filter\">%s: %t ✕</a>", KEYS[i], facet_label(i, s.v[i]));
  }
  if (any) html_f(&p.b, "</div>");
  struct grid g = {&p, 0};
  db_search_cursor next;
  int more = 0;
  html_f(&p.b, "<div class=\"grid\" id=\"results\">");
  int rc = db_search(&q, grid_cb, &g, &next, &more);
  html_f(&p.b, "</div>");
  if (rc)
    html_f(&p.b, "<div class=\"flash flash-err\">%t</div>", hub_error_msg());
  else if (!g.n)
    html_f(&p.b, "<div class=\"empty\">No results. Try fewer filters.</div>");
  html_f(&p.b, "<nav class=\"pager\">");
  if (q.after) {
    html_f(&p.b, "<a class=\"btn\" href=\"");
    state_href(&p.b, &s, -1, NULL);
    html_f(&p.b, "\">← First page</a>");
  }
  if (more) {
    char c[DB_CURSOR_MAX];
    db_cursor_encode(&next, c);
    html_f(&p.b, "<a class=\"btn\" rel=\"next\" href=\"");
    int has_q = state_href(&p.b, &s, -1, NULL);
    html_f(&p.b, "%scursor=%u\">Next page →</a>", has_q ? "&amp;" : "?", c);
  }
  html_f(&p.b, "</nav></section></div>");
  web_page_end(&p);
  return web_page_send(&p, 200);
}
