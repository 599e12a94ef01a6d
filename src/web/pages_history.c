/* History pages: /{repo}/commits/{rev} (paged list) and /{repo}/commit/{sha} (the commit
 * and the diff of its text files against its first parent, bounded). */
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/error.h"
#include "web/internal.h"

struct log_ctx {
  web_page *p;
  const db_repo *repo;
  int n;
};

static int commit_row(const repo_commit_info *ci, void *payload) {
  struct log_ctx *c = payload;
  hub_buf *b = &c->p->b;
  char ago[40], short_id[8];
  web_fmt_ago(ago, sizeof ago, ci->date * 1000);
  snprintf(short_id, sizeof short_id, "%.7s", ci->id);
  html_f(b, "<tr><td><a href=\"");
  web_repo_href(b, c->repo);
  html_f(b,
         "/commit/%s\"><b>%t</b></a><div class=\"hint\">%t committed %t</div></td>"
         "<td class=\"num\"><a class=\"mono\" href=\"",
         ci->id, ci->title, ci->author_name, ago);
  web_repo_href(b, c->repo);
  html_f(b, "/commit/%s\">%t</a></td><td class=\"num hide-s\"><a class=\"btn btn-sm\" href=\"",
         ci->id, short_id);
  web_repo_href(b, c->repo);
  html_f(b, "/tree/%s\" title=\"Browse the files at this commit\">Browse</a></td></tr>", ci->id);
  c->n++;
  return 0;
}

int web_h_commits(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 1);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  repo_handle *h;
  if ((rc = api_repo_open(r, &h))) return web_error_code(r, rc);
  char sha[41];
  char *rev = NULL;
  size_t used = 0;
  if (!r->nrest || !*r->rest[0])
    rc = repo_resolve(h, "main", sha, NULL);
  else
    rc = repo_resolve_segments(h, (const char *const *)r->rest, r->nrest, sha, &rev, &used);
  if (rc) return web_error_code(r, rc);
  if (rev) http_cleanup_add(r, free, rev);
  const char *shown = rev ? rev : "main";
  const char *pg = http_param(r, "p");
  long page = pg ? strtol(pg, NULL, 10) : 0;
  if (page < 0 || page > 1000000) page = 0;
  const db_repo *repo = &r->repo;
  char title[2 * HUB_MAX_NAME + 64];
  snprintf(title, sizeof title, "History of %s/%s", repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "commits", shown);
  html_f(&p.b, "<div class=\"bar\">");
  web_ref_switcher(&p, h, repo, "commits", shown);
  html_f(&p.b, "<h1 class=\"h-inline\">Commit history</h1></div>"
               "<div class=\"boxed scroll\"><table class=\"list\" id=\"commits\"><tbody>");
  struct log_ctx c = {&p, repo, 0};
  size_t total = 0;
  rc = repo_log(h, sha, (size_t)page * WEB_COMMITS_PER_PAGE, WEB_COMMITS_PER_PAGE, commit_row, &c,
                &total);
  if (!c.n) html_f(&p.b, "<tr><td class=\"muted\">No commits on this page.</td></tr>");
  html_f(&p.b, "</tbody></table></div><nav class=\"pager\">");
  if (page > 0) {
    html_f(&p.b, "<a class=\"btn\" href=\"");
    web_repo_href(&p.b, repo);
    html_f(&p.b, "/commits/%u?p=%L\">← Newer</a>", shown, (long long)page - 1);
  }
  if ((size_t)(page + 1) * WEB_COMMITS_PER_PAGE < total) {
    html_f(&p.b, "<a class=\"btn\" href=\"");
    web_repo_href(&p.b, repo);
    html_f(&p.b, "/commits/%u?p=%L\">Older →</a>", shown, (long long)page + 1);
  }
  html_f(&p.b, "</nav>");
  web_page_end(&p);
  return web_page_send(&p, 200);
}

/* ---- one commit and its diff ----------------------------------------------------------- */

struct diff_out {
  web_page *p;
  size_t bytes;
  int truncated;
};

static void diff_line(struct diff_out *o, const git_diff_line *l) {
  const char *cls = l->origin == GIT_DIFF_LINE_ADDITION   ? "d-add"
                    : l->origin == GIT_DIFF_LINE_DELETION ? "d-del"
                                                          : "";
  char sign[2] = {l->origin == GIT_DIFF_LINE_ADDITION   ? '+'
                  : l->origin == GIT_DIFF_LINE_DELETION ? '-'
                                                        : ' ',
                  0};
  char oldn[24] = "", newn[24] = "";
  if (l->old_lineno > 0) snprintf(oldn, sizeof oldn, "%d", l->old_lineno);
  if (l->new_lineno > 0) snprintf(newn, sizeof newn, "%d", l->new_lineno);
  size_t n = l->content_len;
  while (n && (l->content[n - 1] == '\n' || l->content[n - 1] == '\r'))
    n--;
  html_f(&o->p->b, "<tr class=\"%s\"><td class=\"ln\">%t</td><td class=\"ln\">%t</td><td>%t", cls,
         oldn, newn, sign);
  html_textn(&o->p->b, l->content, n);
  html_f(&o->p->b, "</td></tr>");
  o->bytes += n;
}

static void diff_file(struct diff_out *o, git_patch *patch) {
  const git_diff_delta *d = git_patch_get_delta(patch);
  size_t adds = 0, dels = 0;
  git_patch_line_stats(NULL, &adds, &dels, patch);
  const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
  const char *what = d->status == GIT_DELTA_ADDED     ? "added"
                     : d->status == GIT_DELTA_DELETED ? "deleted"
                     : d->status == GIT_DELTA_RENAMED ? "renamed"
                                                      : "modified";
  hub_buf *b = &o->p->b;
  html_f(b,
         "<div class=\"diff-file\"><div class=\"file-head\"><span><b class=\"mono\">%t</b> "
         "<span class=\"badge\">%s</span></span><span class=\"mono\"><span class=\"add\">+%L"
         "</span> <span class=\"del\">−%L</span></span></div>",
         path, what, (long long)adds, (long long)dels);
  if (d->flags & GIT_DIFF_FLAG_BINARY) {
    html_f(b, "<div class=\"code\"><p class=\"pad muted\">Binary file not shown.</p></div></div>");
    return;
  }
  if (o->truncated || o->bytes > WEB_MAX_DIFF_BYTES) {
    o->truncated = 1;
    html_f(b,
           "<div class=\"code\"><p class=\"pad muted\">Diff not shown: this commit's diff is too "
           "large.</p></div></div>");
    return;
  }
  html_f(b, "<div class=\"code\"><table><tbody>");
  size_t nh = git_patch_num_hunks(patch);
  for (size_t h = 0; h < nh && !o->truncated; h++) {
    const git_diff_hunk *hunk = NULL;
    size_t nl = 0;
    if (git_patch_get_hunk(&hunk, &nl, patch, h)) break;
    size_t hl = hunk->header_len;
    while (hl && hunk->header[hl - 1] == '\n')
      hl--;
    html_f(b, "<tr class=\"d-hunk\"><td class=\"ln\"></td><td class=\"ln\"></td><td>");
    html_textn(b, hunk->header, hl);
    html_f(b, "</td></tr>");
    for (size_t i = 0; i < nl; i++) {
      const git_diff_line *l = NULL;
      if (git_patch_get_line_in_hunk(&l, patch, h, i)) break;
      if (l->origin != GIT_DIFF_LINE_CONTEXT && l->origin != GIT_DIFF_LINE_ADDITION &&
          l->origin != GIT_DIFF_LINE_DELETION)
        continue;
      diff_line(o, l);
      if (o->bytes > WEB_MAX_DIFF_BYTES) {
        o->truncated = 1;
        html_f(b, "<tr><td class=\"ln\"></td><td class=\"ln\"></td><td class=\"muted\">… diff "
                  "truncated</td></tr>");
        break;
      }
    }
  }
  html_f(b, "</tbody></table></div></div>");
}

/* The diff of `sha` against its first parent (or the empty tree), rendered into p. */
static int render_diff(web_page *p, const char *uid, const char *sha) {
  git_repository *repo = NULL;
  git_commit *commit = NULL, *parent = NULL;
  git_tree *tree = NULL, *ptree = NULL;
  git_diff *diff = NULL;
  git_oid oid;
  char dir[4200];
  int rc = HUB_ERROR;
  db_repo_dir(uid, dir, sizeof dir);
  if (git_repository_open_bare(&repo, dir) || git_oid_fromstr(&oid, sha) ||
      git_commit_lookup(&commit, repo, &oid) || git_commit_tree(&tree, commit))
    goto done;
  if (git_commit_parentcount(commit) > 0 &&
      (git_commit_parent(&parent, commit, 0) || git_commit_tree(&ptree, parent)))
    goto done;
  git_diff_options opts;
  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  opts.context_lines = 3;
  if (git_diff_tree_to_tree(&diff, repo, ptree, tree, &opts)) goto done;
  git_diff_find_options fo;
  git_diff_find_options_init(&fo, GIT_DIFF_FIND_OPTIONS_VERSION);
  git_diff_find_similar(diff, &fo);
  size_t n = git_diff_num_deltas(diff);
  html_f(&p->b, "<h2>%L file%s changed</h2>", (long long)n, n == 1 ? "" : "s");
  struct diff_out o = {p, 0, 0};
  for (size_t i = 0; i < n && i < WEB_MAX_DIFF_FILES; i++) {
    git_patch *patch = NULL;
    if (git_patch_from_diff(&patch, diff, i) || !patch) {
      git_patch_free(patch);
      continue;
    }
    diff_file(&o, patch);
    git_patch_free(patch);
  }
  if (n > WEB_MAX_DIFF_FILES)
    html_f(&p->b, "<p class=\"hint\">%L more files not shown.</p>",
           (long long)(n - WEB_MAX_DIFF_FILES));
  rc = 0;
done:
  if (rc) {
    const git_error *e = git_error_last();
    hub_error_set(HUB_ERROR, "diff: %s", e && e->message ? e->message : "failed");
  }
  git_diff_free(diff);
  git_tree_free(ptree);
  git_tree_free(tree);
  git_commit_free(parent);
  git_commit_free(commit);
  git_repository_free(repo);
  return rc;
}

int web_h_commit(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 1);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  repo_handle *h;
  if ((rc = api_repo_open(r, &h))) return web_error_code(r, rc);
  char want[64];
  if (r->ncap < 3 || strlen(r->cap[2]) >= sizeof want ||
      strspn(r->cap[2], "0123456789abcdef") != strlen(r->cap[2]))
    return web_error_code(r, hub_error_set(HUB_EREVISION, "Invalid commit id"));
  snprintf(want, sizeof want, "%s", r->cap[2]);
  char sha[41];
  if ((rc = repo_resolve(h, want, sha, NULL))) return web_error_code(r, rc);
  repo_commit_info ci;
  if ((rc = repo_commit_info_get(h, sha, &ci))) return web_error_code(r, rc);
  const db_repo *repo = &r->repo;
  char title[400];
  snprintf(title, sizeof title, "%.120s · %s/%s", ci.title, repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "commits", NULL);
  char ago[40];
  web_fmt_ago(ago, sizeof ago, ci.date * 1000);
  html_f(&p.b, "<div class=\"card\" id=\"commit\"><h1>%t</h1>", ci.title);
  const char *body = ci.message ? strchr(ci.message, '\n') : NULL;
  while (body && (*body == '\n' || *body == '\r'))
    body++;
  if (body && *body) html_f(&p.b, "<pre class=\"msg\">%t</pre>", body);
  html_f(&p.b,
         "<div class=\"muted\"><b>%t</b> committed %t · commit <span class=\"mono\">%t</span>",
         ci.author_name, ago, ci.id);
  for (size_t i = 0; i < ci.nparents; i++) {
    html_f(&p.b, " · parent <a class=\"mono\" href=\"");
    web_repo_href(&p.b, repo);
    char short_id[8];
    snprintf(short_id, sizeof short_id, "%.7s", ci.parents[i]);
    html_f(&p.b, "/commit/%s\">%t</a>", ci.parents[i], short_id);
  }
  html_f(&p.b, " · <a href=\"");
  web_repo_href(&p.b, repo);
  html_f(&p.b, "/tree/%s\">Browse files</a></div></div>", ci.id);
  if (render_diff(&p, repo->uid, ci.id))
    html_f(&p.b, "<div class=\"flash flash-err\">The diff could not be computed.</div>");
  repo_commit_info_dispose(&ci);
  web_page_end(&p);
  return web_page_send(&p, 200);
}
