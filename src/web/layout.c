/* Page frame (head, top bar, footer), the one CSS file and the small optional JS, error
 * pages, and the formatting helpers pages share. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "web/internal.h"

static const char CSS[] =
    ":root{--fg:#111827;--muted:#6b7280;--faint:#9ca3af;--border:#e5e7eb;--bg:#fff;"
    "--soft:#f9fafb;--soft2:#f3f4f6;--accent:#4f46e5;--accent-soft:#eef2ff;--warn:#b45309;"
    "--warn-soft:#fffbeb;--danger:#dc2626;--danger-soft:#fef2f2;--ok:#15803d;--ok-soft:#f0fdf4;"
    "--radius:10px;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace}"
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%}"
    "body{margin:0;font:15px/1.55 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif;color:var(--fg);background:var(--bg);overflow-x:hidden}"
    "a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}"
    ".wrap{max-width:1240px;margin:0 auto;padding:0 20px}"
    "main.wrap{padding-top:24px;padding-bottom:48px;min-height:70vh}"
    /* top bar */
    ".top{border-bottom:1px solid var(--border);background:rgba(255,255,255,.92);position:sticky;"
    "top:0;z-index:10;backdrop-filter:saturate(180%) blur(8px)}"
    ".top-in{display:flex;align-items:center;gap:18px;height:60px}"
    ".logo{display:flex;align-items:center;gap:8px;font-weight:700;font-size:18px;color:var(--fg)}"
    ".logo:hover{text-decoration:none}"
    ".logo-mark{width:26px;height:26px;border-radius:8px;background:linear-gradient(135deg,#fbbf24,"
    "#f97316 55%,#ec4899)}"
    ".top-search{flex:1;max-width:420px}"
    ".top-search input{width:100%;padding:8px 12px;border:1px solid "
    "var(--border);border-radius:8px;"
    "background:var(--soft);font:inherit}"
    ".top-nav{display:flex;align-items:center;gap:16px;margin-left:auto}"
    ".top-nav>a:not(.btn){color:var(--fg);font-weight:500}"
    ".menu{position:relative}.menu summary{cursor:pointer;list-style:none;font-weight:600}"
    ".menu summary::-webkit-details-marker{display:none}"
    ".menu-pop{position:absolute;right:0;top:32px;background:#fff;border:1px solid var(--border);"
    "border-radius:var(--radius);box-shadow:0 10px 30px "
    "rgba(0,0,0,.08);min-width:190px;padding:6px;"
    "z-index:20}"
    ".menu-pop a,.menu-pop button{display:block;width:100%;text-align:left;padding:7px 10px;"
    "border-radius:6px;color:var(--fg);background:none;border:0;font:inherit;cursor:pointer}"
    ".menu-pop a:hover,.menu-pop button:hover{background:var(--soft2);text-decoration:none}"
    ".foot{border-top:1px solid var(--border);color:var(--muted);font-size:13px;padding:20px 0}"
    /* buttons and forms */
    ".btn{display:inline-flex;align-items:center;gap:6px;padding:8px 14px;border-radius:8px;"
    "border:1px solid var(--border);background:#fff;color:var(--fg);font:inherit;font-weight:500;"
    "cursor:pointer;white-space:nowrap}"
    ".btn:hover{background:var(--soft2);text-decoration:none}"
    ".btn-primary{background:var(--fg);color:#fff;border-color:var(--fg)}"
    ".btn-primary:hover{background:#374151}"
    ".btn-danger{color:var(--danger);border-color:#fecaca}.btn-danger:hover{background:var(--"
    "danger-soft)}"
    ".btn-sm{padding:5px 10px;font-size:14px}"
    "label{display:block;font-weight:600;margin:14px 0 6px}"
    "input[type=text],input[type=password],input[type=search],select,textarea{width:100%;"
    "padding:9px 12px;border:1px solid "
    "var(--border);border-radius:8px;font:inherit;background:#fff}"
    "input:focus,select:focus,textarea:focus{outline:2px solid var(--accent-soft);"
    "border-color:var(--accent)}"
    ".radio{display:flex;gap:10px;align-items:flex-start;font-weight:400;margin:8px 0}"
    ".radio input{margin-top:5px}"
    ".hint{color:var(--muted);font-size:13px}"
    ".card{border:1px solid var(--border);border-radius:var(--radius);padding:20px;background:#fff}"
    ".narrow{max-width:520px;margin:24px auto}"
    ".flash{padding:12px 16px;border-radius:8px;margin:0 0 16px;border:1px solid}"
    ".flash-err{background:var(--danger-soft);border-color:#fecaca;color:#991b1b}"
    ".flash-ok{background:var(--ok-soft);border-color:#bbf7d0;color:#166534}"
    ".flash-warn{background:var(--warn-soft);border-color:#fde68a;color:#92400e}"
    /* headings, badges, chips */
    "h1{font-size:26px;margin:0 0 12px;line-height:1.25}h2{font-size:19px;margin:24px 0 10px}"
    ".muted{color:var(--muted)}.mono{font-family:var(--mono);font-size:13px}"
    ".badge{display:inline-block;font-size:12px;font-weight:600;padding:1px "
    "8px;border-radius:999px;"
    "border:1px solid var(--border);color:var(--muted);vertical-align:middle;background:#fff}"
    ".badge-lfs{color:#7c3aed;border-color:#ddd6fe;background:#f5f3ff}"
    ".badge-private{color:var(--warn);border-color:#fde68a;background:var(--warn-soft)}"
    ".badge-scan-safe{color:var(--ok);border-color:#bbf7d0;background:var(--ok-soft)}"
    ".badge-scan-caution{color:var(--warn);border-color:#fde68a;background:var(--warn-soft)}"
    ".badge-scan-unsafe{color:var(--danger);border-color:#fecaca;background:var(--danger-soft)}"
    ".chips{display:flex;flex-wrap:wrap;gap:6px}"
    ".chip{display:inline-flex;align-items:center;gap:6px;font-size:13px;padding:3px 10px;"
    "border-radius:8px;background:var(--soft2);color:var(--fg);border:1px solid transparent}"
    ".chip:hover{text-decoration:none;border-color:var(--border)}"
    ".chip.on{background:var(--accent-soft);color:var(--accent);border-color:#c7d2fe}"
    ".chip .n{color:var(--muted);font-size:12px}"
    /* repo header and tabs */
    ".repo-head{border-bottom:1px solid var(--border);margin:-24px calc(50% - 50vw) 22px;"
    "padding:22px calc(50vw - 50%) 0;background:linear-gradient(#f5f6f8,#fff)}"
    ".repo-title{display:flex;flex-wrap:wrap;align-items:center;gap:8px;font-size:21px;margin:0 0 "
    "6px;"
    "word-break:break-all}"
    ".repo-title .kind{font-size:13px;color:var(--muted);font-weight:500}"
    ".repo-title a{color:var(--fg)}.repo-title .name{font-weight:700}"
    ".tabs{display:flex;gap:4px;overflow-x:auto;margin-top:12px}"
    ".tabs a{padding:9px 14px;color:var(--muted);border-bottom:2px solid "
    "transparent;font-weight:500;"
    "white-space:nowrap}"
    ".tabs a:hover{color:var(--fg);text-decoration:none}"
    ".tabs a.on{color:var(--fg);border-color:var(--fg)}"
    ".cols{display:grid;grid-template-columns:minmax(0,1fr) 320px;gap:32px}"
    ".side section{border-bottom:1px solid var(--border);padding:0 0 16px;margin:0 0 16px}"
    ".side h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);"
    "margin:0 0 8px}"
    ".stat{display:flex;justify-content:space-between;gap:10px;font-size:14px;padding:3px 0}"
    ".stat b{font-weight:600}"
    /* tables */
    "table.list{width:100%;border-collapse:collapse;font-size:14px}"
    "table.list th{text-align:left;color:var(--muted);font-weight:500;font-size:13px;"
    "border-bottom:1px solid var(--border);padding:8px 10px}"
    "table.list td{border-bottom:1px solid var(--border);padding:8px 10px;vertical-align:top}"
    "table.list tr:hover td{background:var(--soft)}"
    ".boxed{border:1px solid var(--border);border-radius:var(--radius);overflow:hidden}"
    ".boxed table.list tr:last-child td{border-bottom:0}"
    ".num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    ".ellip{max-width:420px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    ".ico{display:inline-block;width:18px;color:var(--faint)}"
    ".scroll{overflow-x:auto}"
    /* file bar, breadcrumbs, ref switcher */
    ".bar{display:flex;flex-wrap:wrap;align-items:center;gap:10px;margin:0 0 14px}"
    ".crumbs{font-size:15px;word-break:break-all}.crumbs a{color:var(--fg)}"
    ".crumbs .sep{color:var(--faint);margin:0 4px}"
    ".refs summary{cursor:pointer;list-style:none;padding:5px 10px;border:1px solid var(--border);"
    "border-radius:8px;font-size:14px;font-weight:500;background:#fff}"
    ".refs summary::-webkit-details-marker{display:none}"
    ".refs .menu-pop{left:0;right:auto;max-height:320px;overflow:auto}"
    ".refs .grp{font-size:12px;color:var(--muted);padding:6px 10px 2px;text-transform:uppercase}"
    /* code and diff */
    ".code{border:1px solid var(--border);border-radius:var(--radius);overflow:auto;"
    "font-family:var(--mono);font-size:13px;line-height:1.6;background:#fff}"
    ".code table{border-collapse:collapse;width:100%}"
    ".code td{padding:0 12px;white-space:pre;vertical-align:top}"
    ".code td.ln{width:1%;text-align:right;color:var(--faint);user-select:none;"
    "border-right:1px solid var(--border);background:var(--soft)}"
    ".code td.ln a{color:inherit}"
    ".file-head{display:flex;flex-wrap:wrap;gap:10px;align-items:center;justify-content:space-"
    "between;"
    "padding:10px 14px;border:1px solid var(--border);border-bottom:0;border-radius:var(--radius) "
    "var(--radius) 0 0;background:var(--soft);font-size:14px}"
    ".file-head+.code,.file-head+.boxed{border-radius:0 0 var(--radius) var(--radius)}"
    ".d-add{background:#ecfdf5}.d-del{background:#fef2f2}.d-hunk{background:#eff6ff;color:#1d4ed8}"
    ".d-add td:last-child{color:#065f46}.d-del td:last-child{color:#991b1b}"
    ".diff-file{margin:0 0 22px}"
    /* listing cards */
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}"
    ".rcard{display:block;border:1px solid var(--border);border-radius:var(--radius);padding:14px "
    "16px;"
    "color:var(--fg);background:#fff;transition:box-shadow .15s,border-color .15s}"
    ".rcard:hover{text-decoration:none;border-color:#c7d2fe;box-shadow:0 4px 14px "
    "rgba(79,70,229,.08)}"
    ".rcard .t{font-weight:600;word-break:break-all}"
    ".rcard "
    ".m{color:var(--muted);font-size:13px;margin-top:4px;display:flex;flex-wrap:wrap;gap:4px 12px}"
    ".search-layout{display:grid;grid-template-columns:260px minmax(0,1fr);gap:30px}"
    ".facets h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);"
    "margin:18px 0 8px}"
    ".facets h3:first-child{margin-top:0}"
    ".list-head{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:"
    "12px;"
    "margin:0 0 14px}"
    ".list-head form{display:flex;gap:8px;flex-wrap:wrap}"
    ".list-head input[type=search]{width:260px}.list-head select{width:auto}"
    ".pager{display:flex;gap:10px;justify-content:center;margin:22px 0}"
    ".hero{padding:48px 0 30px;text-align:center}"
    ".hero h1{font-size:40px;letter-spacing:-.02em;margin-bottom:8px}"
    ".hero p{color:var(--muted);font-size:18px;margin:0 0 22px}"
    ".hero form{max-width:620px;margin:0 auto;display:flex;gap:8px}"
    ".hero input{font-size:17px;padding:12px 16px}"
    ".err{text-align:center;padding:70px 0}.err .code-n{font-size:64px;font-weight:800;"
    "color:var(--soft2);-webkit-text-stroke:1px var(--border);margin:0}"
    /* rendered markdown */
    ".md{font-size:15.5px;line-height:1.7;word-wrap:break-word}"
    ".md h1,.md h2,.md h3{line-height:1.3;margin:1.4em 0 .6em}"
    ".md h1{font-size:1.8em;border-bottom:1px solid var(--border);padding-bottom:.3em}"
    ".md h2{font-size:1.4em;border-bottom:1px solid var(--border);padding-bottom:.3em}"
    ".md>:first-child{margin-top:0}"
    ".md pre{background:var(--soft);border:1px solid var(--border);border-radius:8px;padding:14px;"
    "overflow:auto;font-size:13px;line-height:1.5}"
    ".md code{font-family:var(--mono);font-size:.88em;background:var(--soft2);padding:.15em .35em;"
    "border-radius:4px}.md pre code{background:none;padding:0}"
    ".md table{border-collapse:collapse;display:block;overflow-x:auto;margin:1em 0}"
    ".md th,.md td{border:1px solid var(--border);padding:6px 12px}"
    ".md th{background:var(--soft)}"
    ".md img{max-width:100%}.md blockquote{margin:0;padding:0 1em;color:var(--muted);"
    "border-left:4px solid var(--border)}"
    ".md ul.contains-task-list,.md li.task-list-item{list-style:none}"
    ".md hr{border:0;border-top:1px solid var(--border)}"
    ".empty{border:1px dashed "
    "var(--border);border-radius:var(--radius);padding:30px;text-align:center;"
    "color:var(--muted)}"
    ".token-once{font-family:var(--mono);font-size:14px;padding:10px 12px;background:#fff;"
    "border:1px solid #bbf7d0;border-radius:8px;word-break:break-all;user-select:all}"
    ".danger-zone{border-color:#fecaca}.card+.card{margin-top:20px}"
    ".mt0{margin-top:0}.grow{flex:1}.brk{word-break:break-all}.danger-title{color:var(--danger)}"
    ".actions{margin:0}.active-filters{margin-bottom:14px}.repo-head .wrap{padding:0}"
    ".side .hint{margin-top:6px}#file-info{border-radius:0 0 var(--radius) var(--radius)}"
    ".h-inline{font-size:18px;margin:0}.pad{padding:12px 14px;margin:0}"
    ".msg{white-space:pre-wrap;font-family:var(--mono);font-size:13px;background:var(--soft);"
    "padding:10px 12px;border-radius:8px}"
    ".add{color:var(--ok)}.del{color:var(--danger)}"
    ".profile-head{display:flex;gap:16px;align-items:center;margin:8px 0 10px}"
    ".profile-head h1{margin:0}.profile-head p{margin:2px 0 0}"
    ".avatar{width:64px;height:64px;border-radius:16px;display:flex;align-items:center;"
    "justify-content:center;font-size:28px;font-weight:700;color:#fff;text-transform:uppercase;"
    "background:linear-gradient(135deg,#6366f1,#ec4899)}"
    "@media (max-width:900px){.cols,.search-layout{grid-template-columns:1fr}"
    ".facets{order:2}.top-search{display:none}}"
    "@media (max-width:600px){.wrap{padding:0 "
    "14px}.repo-head{padding-top:18px}.top-nav{gap:10px}.top-nav>a.hide-s{display:none}.hero "
    "h1{font-size:30px}"
    ".ellip{max-width:160px}.hide-s{display:none}table.list td,table.list th{padding:7px 6px}}"
    "@media (prefers-reduced-motion:reduce){*{transition:none!important}}";

/* Niceties only: every page works without it. */
static const char JS[] =
    "document.addEventListener('click',function(e){\n"
    "  var b=e.target.closest('[data-copy]');\n"
    "  if(b&&navigator.clipboard){navigator.clipboard.writeText(b.getAttribute('data-copy'));\n"
    "    var "
    "t=b.textContent;b.textContent='Copied';setTimeout(function(){b.textContent=t},1200);}\n"
    "  document.querySelectorAll('details.menu[open],details.refs[open]').forEach(function(d){\n"
    "    if(!d.contains(e.target))d.removeAttribute('open');});\n"
    "});\n"
    "document.addEventListener('change',function(e){\n"
    "  if(e.target.matches('select[data-autosubmit]'))e.target.form.submit();\n"
    "});\n";

static int reply_static(hub_req *r, const char *ctype, const char *body, size_t len) {
  int rc = http_reply_data(r, 200, ctype, body, len);
  if (!rc) http_add_header(r, "Cache-Control", "public, max-age=3600");
  return rc;
}

int web_static_css(hub_req *r) {
  return reply_static(r, "text/css; charset=utf-8", CSS, sizeof CSS - 1);
}

int web_static_js(hub_req *r) {
  return reply_static(r, "text/javascript; charset=utf-8", JS, sizeof JS - 1);
}

void web_page_begin(web_page *p, hub_req *r, const char *title) {
  memset(p, 0, sizeof *p);
  p->r = r;
  hub_buf_init(&p->b, 0);
  web_session s;
  if (r->who.authenticated) {
    p->logged_in = 1;
    if (web_session_get(r, &s) == 0 && s.user_id == r->who.user_id)
      snprintf(p->csrf, sizeof p->csrf, "%s", s.csrf);
  }
  hub_buf *b = &p->b;
  html_f(b,
         "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>%t · modelhub</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
         "<script src=\"/static/app.js\" defer></script></head><body>"
         "<header class=\"top\"><div class=\"wrap top-in\">"
         "<a class=\"logo\" href=\"/\"><span class=\"logo-mark\"></span>modelhub</a>"
         "<form class=\"top-search\" action=\"/models\" method=\"get\" role=\"search\">"
         "<input type=\"search\" name=\"search\" placeholder=\"Search models…\" "
         "aria-label=\"Search models\"></form><nav class=\"top-nav\">"
         "<a href=\"/models\">Models</a><a href=\"/datasets\" class=\"hide-s\">Datasets</a>"
         "<a href=\"/spaces\" class=\"hide-s\">Spaces</a>",
         title);
  if (p->logged_in) {
    html_f(b,
           "<a class=\"btn btn-sm\" href=\"/new\">+ New</a><details class=\"menu\"><summary>%t "
           "▾</summary><div class=\"menu-pop\"><a href=\"/%u\">Profile</a>"
           "<a href=\"/new\">New repository</a><a href=\"/settings/tokens\">Access tokens</a>"
           "<a href=\"/settings/webhooks\">Webhooks</a>",
           r->who.name, r->who.name);
    if (p->csrf[0]) {
      html_f(b, "<form method=\"post\" action=\"/logout\">");
      web_csrf_input(p);
      html_f(b, "<button type=\"submit\">Log out</button></form>");
    }
    html_f(b, "</div></details>");
  } else {
    html_f(b, "<a class=\"btn btn-sm btn-primary\" href=\"/login\">Log in</a>");
  }
  html_f(b, "</nav></div></header><main class=\"wrap\">");
}

void web_csrf_input(web_page *p) {
  html_f(&p->b, "<input type=\"hidden\" name=\"csrf\" value=\"%a\">", p->csrf);
}

void web_page_end(web_page *p) {
  html_f(&p->b,
         "</main><footer class=\"foot\"><div class=\"wrap\">modelhub %t · a self-hosted model hub "
         "· <a href=\"/models\">Models</a> · <a href=\"/datasets\">Datasets</a></div></footer>"
         "</body></html>",
         HUB_VERSION);
}

int web_page_send(web_page *p, int status) {
  int rc;
  if (p->b.failed)
    rc = hub_error_set(HUB_ERROR, "out of memory rendering page");
  else
    rc = http_reply_data(p->r, status, "text/html; charset=utf-8", p->b.ptr, p->b.len);
  hub_buf_dispose(&p->b);
  if (rc) return rc;
  hub_req *r = p->r;
  /* Defence in depth: even a script that slipped into a page could not run inline. */
  http_add_header(r, "Content-Security-Policy",
                  "default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
                  "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                  "form-action 'self'");
  http_add_header(r, "X-Content-Type-Options", "nosniff");
  http_add_header(r, "Referrer-Policy", "same-origin");
  http_add_header(r, "Cache-Control", "private, no-cache");
  return 0;
}

int web_error(hub_req *r, int status, const char *title, const char *detail) {
  web_page p;
  char num[16];
  snprintf(num, sizeof num, "%d", status);
  web_page_begin(&p, r, title);
  html_f(&p.b, "<div class=\"err\"><p class=\"code-n\">%t</p><h1>%t</h1>", num, title);
  if (detail) html_f(&p.b, "<p class=\"muted\">%t</p>", detail);
  if (status == 404 && !r->who.authenticated)
    html_f(&p.b,
           "<p class=\"muted\">If it is private, <a href=\"/login\">log in</a> to see it.</p>");
  html_f(&p.b, "<p><a class=\"btn\" href=\"/\">Back to home</a></p></div>");
  web_page_end(&p);
  return web_page_send(&p, status);
}

int web_not_found(hub_req *r) {
  return web_error(r, 404, "Page not found", "Sorry, we can't find the page you are looking for.");
}

int web_error_code(hub_req *r, int code) {
  if (r->nsegs && !strcmp(r->segs[0], "api")) /* JSON for (unknown) API paths */
    return hub_error_set(HUB_ENOTFOUND, "Sorry, we can't find the page you are looking for.");
  /* Rendered once, after the handler returns: http_reply_error → web__error_page. */
  return code < 0 ? code : hub_error_set(HUB_ERROR, "page failed without an error code");
}

int web__error_page(hub_req *r, int code, int status, const char *title, const char *msg) {
  if (r->nsegs && !strcmp(r->segs[0], "api")) return 1; /* unknown API paths: Hub JSON */
  switch (code) {
  case HUB_EREPO:
    return web_error(r, status, "Repository not found",
                     "It does not exist, or you do not have access to it.");
  case HUB_EREVISION:
    return web_error(r, status, "Revision not found", msg);
  case HUB_EENTRY:
    return web_error(r, status, "File not found", msg);
  case HUB_ENOTFOUND:
    return web_not_found(r);
  case HUB_EAUTH: {
    hub_buf loc = HUB_BUF_INIT;
    html_f(&loc, "/login?next=%p", r->path);
    int rc = loc.failed ? HUB_ERROR : web_redirect(r, loc.ptr);
    hub_buf_dispose(&loc);
    return rc;
  }
  case HUB_EGATED:
    return web_error(r, status, "This repository is gated", msg);
  case HUB_EEXISTS:
    return web_error(r, status, "Already exists", msg);
  default:
    if (status == 500) /* the details are in the log (http_reply_error) */
      return web_error(r, 500, "Something went wrong", "The error was logged. Please try again.");
    return web_error(r, status, title, msg);
  }
}

void web_fmt_size(char *out, size_t cap, uint64_t n) {
  static const char *u[] = {"kB", "MB", "GB", "TB", "PB"};
  if (n < 1000) {
    snprintf(out, cap, "%llu Bytes", (unsigned long long)n);
    return;
  }
  double v = (double)n / 1000;
  int i = 0;
  while (v >= 1000 && i < 4)
    v /= 1000, i++;
  snprintf(out, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void web_fmt_count(char *out, size_t cap, int64_t n) {
  if (n < 1000)
    snprintf(out, cap, "%lld", (long long)n);
  else if (n < 1000000)
    snprintf(out, cap, "%.1fk", (double)n / 1e3);
  else if (n < 1000000000)
    snprintf(out, cap, "%.1fM", (double)n / 1e6);
  else
    snprintf(out, cap, "%.1fB", (double)n / 1e9);
}

void web_fmt_params(char *out, size_t cap, int64_t n) {
  if (n < 1000)
    snprintf(out, cap, "%lld", (long long)n);
  else if (n < 1000000)
    snprintf(out, cap, "%.1fk", (double)n / 1e3);
  else if (n < 1000000000)
    snprintf(out, cap, "%.0fM", (double)n / 1e6);
  else if (n < 1000000000000LL)
    snprintf(out, cap, "%.2fB", (double)n / 1e9);
  else
    snprintf(out, cap, "%.2fT", (double)n / 1e12);
}

void web_fmt_ago(char *out, size_t cap, int64_t ms) {
  int64_t s = (db_now_ms() - ms) / 1000;
  if (ms <= 0)
    snprintf(out, cap, "never");
  else if (s < 60)
    snprintf(out, cap, "just now");
  else if (s < 3600)
    snprintf(out, cap, "%lld minute%s ago", (long long)(s / 60), s < 120 ? "" : "s");
  else if (s < 86400)
    snprintf(out, cap, "%lld hour%s ago", (long long)(s / 3600), s < 7200 ? "" : "s");
  else if (s < 86400 * 31)
    snprintf(out, cap, "%lld day%s ago", (long long)(s / 86400), s < 172800 ? "" : "s");
  else {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%b %d, %Y", &tm);
  }
}

void web_repo_href(hub_buf *b, const db_repo *repo) {
  const char *pre = http_type_prefix(repo->type); /* "datasets/" etc.: literal */
  html_f(b, "/%s%u/%u", pre, repo->ns, repo->name);
}
