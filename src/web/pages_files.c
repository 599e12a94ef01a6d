/* The file browser: /{repo}/tree/{rev}/{path} and /{repo}/blob/{rev}/{path}, plus the
 * branch/tag switcher shared with the history pages. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "util/error.h"
#include "web/internal.h"

/* Resolve the revision at the start of r->rest (default "main"), and the path after it. */
typedef struct {
  repo_handle *h;
  char sha[41];
  char *rev;        /* decoded revision text (owned by the request) */
  const char *path; /* decoded path, "" for the root (owned by the request) */
} web_loc;

static int locate(hub_req *r, web_loc *out) {
  memset(out, 0, sizeof *out);
  int rc = api_repo_open(r, &out->h);
  if (rc) return rc;
  if (!r->nrest || !*r->rest[0]) {
    out->rev = "main";
    out->path = "";
    return repo_resolve(out->h, "main", out->sha, NULL);
  }
  size_t used = 0;
  char *rev = NULL;
  rc = repo_resolve_segments(out->h, (const char *const *)r->rest, r->nrest, out->sha, &rev, &used);
  if (rc) return rc;
  http_cleanup_add(r, free, rev);
  out->rev = rev;
  out->path = api_join_rest(r, used, r->nrest);
  if (!out->path) return hub_error_code();
  while (*out->path == '/')
    out->path++;
  size_t pl = strlen(out->path);
  if (pl && out->path[pl - 1] == '/') { /* ".../tree/main/dir/" */
    char *p = strndup(out->path, pl - 1);
    if (!p) return hub_error_set(HUB_ERROR, "out of memory");
    http_cleanup_add(r, free, p);
    out->path = p;
  }
  return 0;
}

/* "/<repo>/<view>/<rev>/<path>" */
static void view_href(hub_buf *b, const db_repo *repo, const char *view, const char *rev,
                      const char *path) {
  web_repo_href(b, repo);
  html_f(b, "/%s/%u", view, rev);
  if (path && *path) html_f(b, "/%p", path);
}

struct refs_ctx {
  web_page *p;
  const db_repo *repo;
  const char *view, *rev;
  int kind, n;
};

static int ref_item(const repo_ref *ref, void *payload) {
  struct refs_ctx *c = payload;
  if ((int)ref->kind != c->kind || c->n >= 100) return 0;
  if (!c->n)
    html_f(&c->p->b, "<div class=\"grp\">%s</div>",
           c->kind == REPO_REF_BRANCH ? "Branches" : "Tags");
  html_f(&c->p->b, "<a href=\"");
  view_href(&c->p->b, c->repo, c->view, ref->name, NULL);
  html_f(&c->p->b, "\">%s%t</a>", strcmp(ref->name, c->rev) ? "" : "✓ ", ref->name);
  c->n++;
  return 0;
}

void web_ref_switcher(web_page *p, repo_handle *h, const db_repo *repo, const char *view,
                      const char *rev) {
  html_f(&p->b,
         "<details class=\"menu refs\"><summary title=\"Switch branch or tag\">⎇ %t ▾"
         "</summary><div class=\"menu-pop\">",
         rev);
  struct refs_ctx c = {p, repo, view, rev, REPO_REF_BRANCH, 0};
  repo_refs_list(h, ref_item, &c);
  c.kind = REPO_REF_TAG;
  c.n = 0;
  repo_refs_list(h, ref_item, &c);
  html_f(&p->b, "</div></details>");
}

static void breadcrumbs(web_page *p, const db_repo *repo, const char *rev, const char *path) {
  html_f(&p->b, "<div class=\"crumbs\"><a href=\"");
  view_href(&p->b, repo, "tree", rev, NULL);
  html_f(&p->b, "\">%t</a>", repo->name);
  const char *s = path;
  while (s && *s) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    char *upto = strndup(path, (size_t)(s - path) + n);
    char *seg = strndup(s, n);
    if (upto && seg) {
      html_f(&p->b, "<span class=\"sep\">/</span>");
      if (slash) {
        html_f(&p->b, "<a href=\"");
        view_href(&p->b, repo, "tree", rev, upto);
        html_f(&p->b, "\">%t</a>", seg);
      } else {
        html_f(&p->b, "<b>%t</b>", seg);
      }
    }
    free(upto);
    free(seg);
    s = slash ? slash + 1 : NULL;
  }
  html_f(&p->b, "</div>");
}

/* ---- tree -------------------------------------------------------------------------------- */

typedef struct {
  repo_entry e; /* path owned (strdup) */
} entry_copy;

struct list_ctx {
  entry_copy *v;
  size_t n, cap, total;
};

static int collect(const repo_entry *e, void *payload) {
  struct list_ctx *c = payload;
  c->total++;
  if (c->n >= WEB_MAX_TREE_ENTRIES) return 0;
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    entry_copy *v = realloc(c->v, nc * sizeof *v);
    if (!v) return hub_error_set(HUB_ERROR, "out of memory");
    c->v = v;
    c->cap = nc;
  }
  c->v[c->n].e = *e;
  c->v[c->n].e.path = strdup(e->path);
  if (!c->v[c->n].e.path) return hub_error_set(HUB_ERROR, "out of memory");
  c->n++;
  return 0;
}

static int dirs_first(const void *a, const void *b) {
  const repo_entry *x = &((const entry_copy *)a)->e, *y = &((const entry_copy *)b)->e;
  if (x->type != y->type) return x->type == REPO_ENTRY_DIR ? -1 : 1;
  return strcmp(x->path, y->path);
}

static void commit_cell(web_page *p, const db_repo *repo, const repo_commit_info *ci) {
  char ago[40];
  web_fmt_ago(ago, sizeof ago, ci->date * 1000);
  html_f(&p->b, "<td class=\"ellip hide-s\"><a class=\"muted\" href=\"");
  web_repo_href(&p->b, repo);
  html_f(&p->b, "/commit/%s\">%t</a></td><td class=\"num muted hide-s\">%t</td>", ci->id, ci->title,
         ago);
}

int web_h_tree(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 1);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  web_loc loc;
  if ((rc = locate(r, &loc))) return web_error_code(r, rc);
  repo_entry st;
  if ((rc = repo_stat(loc.h, loc.sha, loc.path, &st))) return web_error_code(r, rc);
  int is_file = st.type == REPO_ENTRY_FILE;
  repo_entry_dispose(&st);
  if (is_file) {
    hub_buf to = HUB_BUF_INIT;
    view_href(&to, &r->repo, "blob", loc.rev, loc.path);
    rc = to.failed ? HUB_ERROR : http_reply_redirect(r, 302, to.ptr);
    hub_buf_dispose(&to);
    return rc;
  }
  struct list_ctx c = {0};
  rc = repo_list(loc.h, loc.sha, loc.path, 0, collect, &c);
  if (rc) {
    for (size_t i = 0; i < c.n; i++)
      free(c.v[i].e.path);
    free(c.v);
    return web_error_code(r, rc);
  }
  qsort(c.v, c.n, sizeof *c.v, dirs_first);
  const db_repo *repo = &r->repo;
  char title[2 * HUB_MAX_NAME + HUB_MAX_PATH + 16];
  snprintf(title, sizeof title, "%s/%s at %s%s%s", repo->ns, repo->name, loc.rev,
           *loc.path ? " · " : "", loc.path);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "files", loc.rev);
  html_f(&p.b, "<div class=\"bar\">");
  web_ref_switcher(&p, loc.h, repo, "tree", loc.rev);
  breadcrumbs(&p, repo, loc.rev, loc.path);
  html_f(&p.b, "<span class=\"grow\"></span><a class=\"btn btn-sm\" href=\"");
  view_href(&p.b, repo, "commits", loc.rev, NULL);
  html_f(&p.b, "\">History</a></div>");
  repo_commit_info head;
  if (repo_last_commit_for_path(loc.h, loc.sha, loc.path, &head) == 0) {
    char ago[40];
    web_fmt_ago(ago, sizeof ago, head.date * 1000);
    html_f(&p.b, "<div class=\"file-head\"><span><b>%t</b> <a href=\"", head.author_name);
    web_repo_href(&p.b, repo);
    html_f(&p.b, "/commit/%s\">%t</a></span><span class=\"muted\"><a class=\"mono\" href=\"",
           head.id, head.title);
    web_repo_href(&p.b, repo);
    char short_id[8];
    snprintf(short_id, sizeof short_id, "%.7s", head.id);
    html_f(&p.b, "/commit/%s\">%t</a> · %t</span></div>", head.id, short_id, ago);
    repo_commit_info_dispose(&head);
  }
  html_f(&p.b, "<div class=\"boxed scroll\"><table class=\"list\" id=\"files\"><tbody>");
  if (*loc.path) {
    const char *slash = strrchr(loc.path, '/');
    char *up = strndup(loc.path, slash ? (size_t)(slash - loc.path) : 0);
    html_f(&p.b, "<tr><td colspan=\"5\"><a href=\"");
    view_href(&p.b, repo, "tree", loc.rev, up ? up : "");
    html_f(&p.b, "\">..</a></td></tr>");
    free(up);
  }
  for (size_t i = 0; i < c.n; i++) {
    const repo_entry *e = &c.v[i].e;
    const char *base = strrchr(e->path, '/');
    base = base ? base + 1 : e->path;
    int dir = e->type == REPO_ENTRY_DIR;
    html_f(&p.b, "<tr><td><span class=\"ico\">%s</span><a href=\"", dir ? "▸" : "·");
    view_href(&p.b, repo, dir ? "tree" : "blob", loc.rev, e->path);
    html_f(&p.b, "\">%t</a>%s", base,
           e->is_lfs ? " <span class=\"badge badge-lfs\" title=\"Stored with Git LFS\">LFS</span>"
                     : "");
    if (!dir) web_scan_badge(&p, e->is_lfs ? e->lfs_oid : e->oid);
    html_f(&p.b, "</td><td class=\"num\">");
    if (!dir) {
      char sz[32];
      web_fmt_size(sz, sizeof sz, e->size);
      html_f(&p.b, "%t", sz);
    }
    html_f(&p.b, "</td><td class=\"num\">");
    if (!dir) {
      html_f(&p.b, "<a href=\"");
      web_repo_href(&p.b, repo);
      html_f(&p.b,
             "/resolve/%u/%p?download=true\" title=\"Download\" aria-label=\"Download %a\">"
             "↓</a>",
             loc.rev, e->path, base);
    }
    html_f(&p.b, "</td>");
    repo_commit_info ci;
    if (i < WEB_MAX_LAST_COMMITS && repo_last_commit_for_path(loc.h, loc.sha, e->path, &ci) == 0) {
      commit_cell(&p, repo, &ci);
      repo_commit_info_dispose(&ci);
    } else {
      html_f(&p.b, "<td class=\"hide-s\"></td><td class=\"hide-s\"></td>");
    }
    html_f(&p.b, "</tr>");
  }
  if (!c.n) html_f(&p.b, "<tr><td class=\"muted\">This folder is empty.</td></tr>");
  html_f(&p.b, "</tbody></table></div>");
  if (c.total > c.n)
    html_f(&p.b, "<p class=\"hint\">Showing the first %d of %L entries.</p>", (int)c.n,
           (long long)c.total);
  for (size_t i = 0; i < c.n; i++)
    free(c.v[i].e.path);
  free(c.v);
  web_page_end(&p);
  return web_page_send(&p, 200);
}

/* ---- blob -------------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcasecmp(s + a - b, suf);
}

static int looks_binary(const char *d, size_t n) {
  return memchr(d, 0, n < 8000 ? n : 8000) != NULL;
}

struct tensor_ctx {
  web_page *p;
};

static int tensor_row(const web_tensor *t, void *payload) {
  struct tensor_ctx *c = payload;
  hub_buf *b = &c->p->b;
  html_f(b,
         "<tr><td class=\"mono\">%t</td><td><span class=\"chip\">%t</span></td><td class=\"mono\">",
         t->name, t->dtype);
  if (t->ndim < 0) {
    html_f(b, "(more than 8 dimensions)");
  } else {
    html_f(b, "[");
    for (int i = 0; i < t->ndim; i++)
      html_f(b, "%s%L", i ? ", " : "", (long long)t->shape[i]);
    html_f(b, "]");
  }
  char n[32] = "?";
  if (t->numel >= 0) web_fmt_params(n, sizeof n, t->numel);
  html_f(b, "</td><td class=\"num\">%t</td></tr>", n);
  return 0;
}

static void tensor_table(web_page *p, const repo_entry *e, const void *data, size_t len) {
  size_t count = 0;
  hub_buf rows = HUB_BUF_INIT;
  hub_buf saved = p->b;
  p->b = rows;
  struct tensor_ctx c = {p};
  int rc = e->is_lfs ? web_tensors_blob(api_repo_blobs(p->r), e->lfs_oid, WEB_MAX_TENSORS,
                                        tensor_row, &c, &count)
                     : web_tensors_mem(data, len, WEB_MAX_TENSORS, tensor_row, &c, &count);
  rows = p->b;
  p->b = saved;
  if (rc) {
    html_f(&p->b,
           "<div class=\"flash flash-warn\">The safetensors header could not be read: %t"
           "</div>",
           hub_error_msg());
  } else {
    html_f(&p->b,
           "<h2>Tensors <span class=\"muted\">(%L)</span></h2><div class=\"boxed scroll\">"
           "<table class=\"list\" id=\"tensors\"><thead><tr><th>Name</th><th>Type</th>"
           "<th>Shape</th><th class=\"num\">Parameters</th></tr></thead><tbody>",
           (long long)count);
    if (!rows.failed) hub_buf_put(&p->b, rows.ptr, rows.len);
    html_f(&p->b, "</tbody></table></div>");
    if (count > WEB_MAX_TENSORS)
      html_f(&p->b, "<p class=\"hint\">Showing the first %d tensors.</p>", WEB_MAX_TENSORS);
  }
  hub_buf_dispose(&rows);
}

static void text_view(web_page *p, const char *d, size_t n) {
  html_f(&p->b, "<div class=\"code\" id=\"code\"><table><tbody>");
  size_t line = 1;
  const char *s = d, *end = d + n;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
    html_f(&p->b, "<tr id=\"L%L\"><td class=\"ln\"><a href=\"#L%L\">%L</a></td><td>",
           (long long)line, (long long)line, (long long)line);
    html_textn(&p->b, s, len && s[len - 1] == '\r' ? len - 1 : len);
    html_f(&p->b, "</td></tr>");
    line++;
    s = nl ? nl + 1 : end;
  }
  html_f(&p->b, "</tbody></table></div>");
}

int web_h_blob(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 1);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  web_loc loc;
  if ((rc = locate(r, &loc))) return web_error_code(r, rc);
  repo_entry e;
  if ((rc = repo_stat(loc.h, loc.sha, loc.path, &e))) return web_error_code(r, rc);
  const db_repo *repo = &r->repo;
  if (e.type == REPO_ENTRY_DIR) {
    repo_entry_dispose(&e);
    hub_buf to = HUB_BUF_INIT;
    view_href(&to, repo, "tree", loc.rev, loc.path);
    rc = to.failed ? HUB_ERROR : http_reply_redirect(r, 302, to.ptr);
    hub_buf_dispose(&to);
    return rc;
  }
  void *data = NULL;
  size_t len = 0;
  if (!e.is_lfs && (rc = repo_read_blob(loc.h, e.oid, &data, &len))) {
    repo_entry_dispose(&e);
    return web_error_code(r, rc);
  }
  char title[2 * HUB_MAX_NAME + HUB_MAX_PATH + 16];
  snprintf(title, sizeof title, "%s · %s/%s", loc.path, repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "files", loc.rev);
  html_f(&p.b, "<div class=\"bar\">");
  web_ref_switcher(&p, loc.h, repo, "tree", loc.rev);
  breadcrumbs(&p, repo, loc.rev, loc.path);
  html_f(&p.b, "</div>");
  char sz[32];
  web_fmt_size(sz, sizeof sz, e.size);
  html_f(&p.b, "<div class=\"file-head\"><span>%t%s", sz,
         e.is_lfs ? " · <span class=\"badge badge-lfs\">LFS</span>" : "");
  web_scan_badge(&p, e.is_lfs ? e.lfs_oid : e.oid);
  html_f(&p.b, "</span><span class=\"bar actions\"><a class=\"btn btn-sm\" href=\"");
  web_repo_href(&p.b, repo);
  html_f(&p.b,
         "/resolve/%u/%p\">Raw</a><a class=\"btn btn-sm btn-primary\" id=\"download\" "
         "href=\"",
         loc.rev, loc.path);
  web_repo_href(&p.b, repo);
  html_f(&p.b, "/resolve/%u/%p?download=true\">↓ Download</a></span></div>", loc.rev, loc.path);
  int safetensors = ends_with(loc.path, ".safetensors");
  if (e.is_lfs || (data && looks_binary(data, len)) || safetensors) {
    char sha[65];
    if (e.is_lfs) {
      snprintf(sha, sizeof sha, "%s", e.lfs_oid);
    } else {
      unsigned char d[SHA256_DIGEST_LENGTH];
      SHA256(data, len, d);
      for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(sha + 2 * i, 3, "%02x", d[i]);
    }
    html_f(&p.b, "<div class=\"card\" id=\"file-info\">");
    if (e.is_lfs)
      html_f(&p.b, "<p>This file is stored with <b>Git LFS</b>. It is too big to display, but you "
                   "can still download it.</p>");
    else if (!safetensors)
      html_f(&p.b, "<p>This is a binary file and is not shown.</p>");
    html_f(&p.b,
           "<div class=\"stat\"><span class=\"muted\">Size</span><b>%t</b></div>"
           "<div class=\"stat\"><span class=\"muted\">SHA256</span><span class=\"mono "
           "brk\">%t</span></div>",
           sz, sha);
    if (e.is_lfs) {
      char ps[32];
      web_fmt_size(ps, sizeof ps, e.pointer_size);
      html_f(&p.b, "<div class=\"stat\"><span class=\"muted\">Pointer size</span><b>%t</b></div>",
             ps);
    }
    html_f(&p.b, "</div>");
    if (safetensors) tensor_table(&p, &e, data, len);
  } else {
    int cut = len > WEB_MAX_TEXT_VIEW;
    text_view(&p, data, cut ? WEB_MAX_TEXT_VIEW : len);
    if (cut)
      html_f(&p.b,
             "<p class=\"hint\">The file is large: only the first %d kB are shown. Download "
             "it to see everything.</p>",
             WEB_MAX_TEXT_VIEW / 1024);
  }
  free(data);
  repo_entry_dispose(&e);
  web_page_end(&p);
  return web_page_send(&p, 200);
}
