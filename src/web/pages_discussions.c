/* The Community tab: a repo's discussions and pull requests, one thread with its comment
 * form, a PR's diff and its merge button. Everything goes through gov/'s operations (the
 * API's permission checks, events and audit); forms carry the session's CSRF token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov/gov.h"
#include "util/error.h"
#include "web/internal.h"

static void disc_href(hub_buf *b, const db_repo *repo, int num) {
  web_repo_href(b, repo);
  html_f(b, "/discussions");
  if (num > 0) html_f(b, "/%d", num);
}

static int load(hub_req *r) {
  int rc = web_repo_load(r, PERM_READ, 0);
  return rc;
}

static int parse_num(hub_req *r, int *num) {
  const char *s = r->ncap > 2 ? r->cap[2] : NULL;
  if (!s || !*s || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s) || atoi(s) <= 0)
    return hub_error_set(HUB_ENOTFOUND, "Discussion not found");
  *num = atoi(s);
  return 0;
}

static const char *str(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void status_badge(hub_buf *b, const char *status) {
  html_f(b, "<span class=\"badge badge-%a\">%t</span>", status, status);
}

/* ---- list ---------------------------------------------------------------------------- */

static int list_page(hub_req *r, int status_code, const char *flash) {
  const char *type = http_param(r, "type"), *status = http_param(r, "status");
  json_t *list = NULL;
  int rc = gov_disc_list(r, type, status, NULL, 0, &list);
  if (rc) return web_error_code(r, rc);
  const db_repo *repo = &r->repo;
  char title[2 * HUB_MAX_NAME + 32];
  snprintf(title, sizeof title, "Community · %s/%s", repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "community", NULL);
  hub_buf *b = &p.b;
  html_f(b, "<div class=\"wrap\" id=\"community\">");
  if (flash) html_f(b, "<div class=\"flash flash-err\">%t</div>", flash);
  html_f(b, "<div class=\"list-head\"><h2>Discussions and pull requests</h2><nav class=\"tabs\">");
  static const char *const filters[][3] = {{"all", "all", "All"},
                                           {"all", "open", "Open"},
                                           {"all", "closed", "Closed"},
                                           {"discussion", "all", "Discussions"},
                                           {"pull_request", "all", "Pull requests"}};
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
    html_f(b, "<a href=\"");
    disc_href(b, repo, 0);
    html_f(b, "?type=%u&amp;status=%u\">%t</a>", filters[i][0], filters[i][1], filters[i][2]);
  }
  html_f(b, "</nav></div><ul class=\"disc-list\">");
  size_t i;
  json_t *d, *arr = json_object_get(list, "discussions");
  json_array_foreach(arr, i, d) {
    char ago[40];
    int num = (int)json_integer_value(json_object_get(d, "num"));
    html_f(b, "<li class=\"disc\"><a href=\"");
    disc_href(b, repo, num);
    html_f(b, "\"><b>#%d</b> %t</a> ", num, str(d, "title"));
    if (json_is_true(json_object_get(d, "isPullRequest")))
      html_f(b, "<span class=\"badge\">pull request</span>");
    status_badge(b, str(d, "status"));
    snprintf(ago, sizeof ago, "%.10s", str(d, "createdAt"));
    html_f(b, " <span class=\"muted\">by %t · %t</span></li>",
           str(json_object_get(d, "author"), "name"), ago);
  }
  if (!json_array_size(arr)) html_f(b, "<li class=\"muted\">No discussions yet.</li>");
  html_f(b, "</ul>");
  if (p.logged_in) {
    html_f(b, "<form class=\"card\" id=\"new-discussion\" method=\"post\" action=\"");
    disc_href(b, repo, 0);
    html_f(b, "\"><h3>New discussion</h3>");
    web_csrf_input(&p);
    html_f(b, "<p><input type=\"text\" name=\"title\" placeholder=\"Title\" required></p>"
              "<p><textarea name=\"description\" rows=\"5\" placeholder=\"Description "
              "(Markdown)\"></textarea></p><button class=\"btn btn-primary\" "
              "type=\"submit\">Open discussion</button></form>");
  }
  html_f(b, "</div>");
  json_decref(list);
  web_page_end(&p);
  return web_page_send(&p, status_code);
}

int web_h_discussions(hub_req *r) {
  int rc = load(r);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  return list_page(r, 200, NULL);
}

/* ---- one thread ---------------------------------------------------------------------- */

static void render_diff(hub_buf *b, const char *diff) {
  html_f(b, "<h3>Files changed</h3><div class=\"code\" id=\"pr-diff\"><table><tbody>");
  const char *line = diff;
  while (*line) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    const char *cls = "";
    if (!strncmp(line, "+++", 3) || !strncmp(line, "---", 3) || !strncmp(line, "diff ", 5))
      cls = " class=\"d-hunk\"";
    else if (line[0] == '+')
      cls = " class=\"d-add\"";
    else if (line[0] == '-')
      cls = " class=\"d-del\"";
    else if (line[0] == '@')
      cls = " class=\"d-hunk\"";
    html_f(b, "<tr%s><td>", cls);
    html_textn(b, line, n);
    html_f(b, "</td></tr>");
    line += n + (nl ? 1 : 0);
  }
  html_f(b, "</tbody></table></div>");
}

static void render_event(hub_buf *b, json_t *e) {
  const char *type = str(e, "type"), *who = str(json_object_get(e, "author"), "name");
  json_t *data = json_object_get(e, "data");
  char when[20];
  snprintf(when, sizeof when, "%.16s", str(e, "createdAt"));
  if (!strcmp(type, "comment")) {
    json_t *latest = json_object_get(data, "latest");
    html_f(b, "<div class=\"card comment\" id=\"%a\"><div class=\"muted\"><b>%t</b> · %t%s</div>",
           str(e, "id"), who, when,
           json_is_true(json_object_get(data, "edited")) ? " · edited" : "");
    if (json_is_true(json_object_get(data, "hidden")))
      html_f(b, "<p class=\"muted\">This comment has been hidden</p>");
    else /* rendered by web_markdown (raw HTML replaced, dangerous URLs dropped) */
      html_f(b, "<div class=\"markdown\">%s</div>", str(latest, "html"));
    html_f(b, "</div>");
  } else if (!strcmp(type, "status-change")) {
    html_f(b, "<div class=\"event muted\"><b>%t</b> changed the status to ", who);
    status_badge(b, str(data, "status"));
    html_f(b, " · %t</div>", when);
  } else if (!strcmp(type, "title-change")) {
    html_f(b, "<div class=\"event muted\"><b>%t</b> renamed “%t” to “%t” · %t</div>", who,
           str(data, "from"), str(data, "to"), when);
  } else if (!strcmp(type, "commit")) {
    char short_id[8];
    snprintf(short_id, sizeof short_id, "%.7s", str(data, "oid"));
    html_f(b,
           "<div class=\"event muted\"><b>%t</b> pushed <span class=\"mono\">%t</span> %t · "
           "%t</div>",
           who, short_id, str(data, "subject"), when);
  }
}

static void post_form(web_page *p, const db_repo *repo, int num, const char *action,
                      const char *fields, const char *button) {
  html_f(&p->b, "<form method=\"post\" class=\"inline\" action=\"");
  disc_href(&p->b, repo, num);
  html_f(&p->b, "/%s\">", action);
  web_csrf_input(p);
  html_f(&p->b, "%s<button class=\"btn\" type=\"submit\">%t</button></form>", fields, button);
}

static int thread_page(hub_req *r, int num, int status_code, const char *flash) {
  json_t *d = NULL;
  int rc = gov_disc_details(r, num, 1, &d);
  if (rc) return web_error_code(r, rc);
  const db_repo *repo = &r->repo;
  char title[GOV_MAX_TITLE + 2 * HUB_MAX_NAME + 16];
  snprintf(title, sizeof title, "%s · %s/%s", str(d, "title"), repo->ns, repo->name);
  web_page p;
  web_page_begin(&p, r, title);
  web_repo_header(&p, repo, "community", NULL);
  hub_buf *b = &p.b;
  const char *status = str(d, "status");
  int is_pr = json_is_true(json_object_get(d, "isPullRequest"));
  html_f(b, "<div class=\"wrap\" id=\"discussion\">");
  if (flash) html_f(b, "<div class=\"flash flash-err\">%t</div>", flash);
  html_f(b, "<h1>%t <span class=\"muted\">#%d</span></h1><p>", str(d, "title"), num);
  status_badge(b, status);
  html_f(b, " <span class=\"muted\">%s opened by %t</span></p>",
         is_pr ? "Pull request" : "Discussion", str(json_object_get(d, "author"), "name"));
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(d, "events"), i, e) render_event(b, e);
  const char *diff = str(d, "diff");
  if (is_pr && *diff) render_diff(b, diff);
  if (p.logged_in) {
    html_f(b, "<div class=\"card\" id=\"actions\">");
    html_f(b, "<form method=\"post\" id=\"comment-form\" action=\"");
    disc_href(b, repo, num);
    html_f(b, "/comment\">");
    web_csrf_input(&p);
    html_f(b, "<p><textarea name=\"comment\" rows=\"4\" placeholder=\"Leave a comment (Markdown)\" "
              "required></textarea></p><button class=\"btn btn-primary\" "
              "type=\"submit\">Comment</button></form>");
    int is_author =
        r->who.user_id && !strcmp(str(json_object_get(d, "author"), "name"), r->who.name);
    if (strcmp(status, "merged") && (is_author || r->repo_perm >= PERM_WRITE)) {
      if (!strcmp(status, "closed"))
        post_form(&p, repo, num, "status", "<input type=\"hidden\" name=\"status\" value=\"open\">",
                  "Reopen");
      else
        post_form(&p, repo, num, "status",
                  "<input type=\"hidden\" name=\"status\" value=\"closed\">", "Close");
    }
    if (is_pr && !strcmp(status, "open") && r->repo_perm >= PERM_WRITE)
      post_form(&p, repo, num, "merge", "", "Merge");
    html_f(b, "</div>");
  }
  html_f(b, "</div>");
  json_decref(d);
  web_page_end(&p);
  return web_page_send(&p, status_code);
}

int web_h_discussion(hub_req *r) {
  int num, rc = load(r);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  if ((rc = parse_num(r, &num))) return web_error_code(r, rc);
  return thread_page(r, num, 200, NULL);
}

/* ---- forms --------------------------------------------------------------------------- */

static int back_to(hub_req *r, int num) {
  hub_buf loc = HUB_BUF_INIT;
  disc_href(&loc, &r->repo, num);
  int rc = loc.failed ? hub_error_set(HUB_ERROR, "out of memory") : web_redirect(r, loc.ptr);
  hub_buf_dispose(&loc);
  return rc;
}

/* Load, CSRF, and the discussion number for the POST forms. */
static int form_prologue(hub_req *r, int *num) {
  int rc = load(r);
  if (rc) return rc;
  if ((rc = web_csrf_check(r))) return rc;
  return num ? parse_num(r, num) : 0;
}

int web_h_discussion_new_post(hub_req *r) {
  json_t *out = NULL;
  int rc = form_prologue(r, NULL);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  rc = gov_disc_create(r, web_form(r, "title"), web_form(r, "description"), 0, &out);
  if (rc) return list_page(r, 400, hub_error_msg());
  int num = (int)json_integer_value(json_object_get(out, "num"));
  json_decref(out);
  return back_to(r, num);
}

int web_h_discussion_post(hub_req *r) {
  json_t *out = NULL;
  int num, rc = form_prologue(r, &num);
  if (rc == 1) return 0;
  if (rc) return web_error_code(r, rc);
  const char *action = r->ncap > 3 ? r->cap[3] : "";
  if (!strcmp(action, "comment"))
    rc = gov_disc_comment(r, num, web_form(r, "comment"), &out);
  else if (!strcmp(action, "status"))
    rc = gov_disc_set_status(r, num, web_form(r, "status"), NULL, &out);
  else if (!strcmp(action, "merge"))
    rc = gov_disc_merge(r, num, NULL, &out);
  else
    return web_error_code(r, hub_error_set(HUB_ENOTFOUND, "Not found"));
  json_decref(out);
  if (rc == HUB_ENOTFOUND) return web_error_code(r, rc);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return thread_page(r, num, rc == HUB_EFORBIDDEN || rc == HUB_EAUTH ? 403 : 400, msg);
  }
  return back_to(r, num);
}
