/* Security scan results on pages (docs/scanning.md, "The scan service and policy"): a badge
 * per file in the tree and on the file page (the finding and the pickle imports in its
 * title), a banner on the repo page when files have issues, and the site admin's list of
 * flagged files across repos (/admin/-/scans). */
#include <stdio.h>
#include <string.h>

#include "db/scan.h"
#include "security/security.h"
#include "web/internal.h"

void web_scan_badge(web_page *p, const char *oid) {
  json_t *st = security_file_status(oid);
  const char *s = json_string_value(json_object_get(st, "status"));
  if (!s) s = "unscanned";
  const char *cls = !strcmp(s, "safe")                                 ? "safe"
                    : !strcmp(s, "caution")                            ? "caution"
                    : !strcmp(s, "suspicious") || !strcmp(s, "unsafe") ? "unsafe"
                    : !strcmp(s, "error")                              ? "caution"
                                                                       : "unscanned";
  char msg[400], level[16];
  hub_buf t = HUB_BUF_INIT;
  security_finding(oid, msg, sizeof msg, level);
  hub_buf_printf(&t, "Security scan: %s%s%s", s, msg[0] ? " — " : "", msg);
  size_t i;
  json_t *imp;
  json_t *imports = json_object_get(json_object_get(st, "pickleImportScan"), "pickleImports");
  if (json_array_size(imports)) hub_buf_puts(&t, "\nPickle imports:");
  json_array_foreach(imports, i, imp) {
    if (i >= 20) {
      hub_buf_printf(&t, "\n… %zu more", json_array_size(imports) - 20);
      break;
    }
    hub_buf_printf(&t, "\n%s.%s (%s)", json_string_value(json_object_get(imp, "module")),
                   json_string_value(json_object_get(imp, "name")),
                   json_string_value(json_object_get(imp, "safety")));
  }
  html_f(&p->b, " <span class=\"badge badge-scan-%s\" title=\"%a\">%t</span>", cls,
         t.ptr ? t.ptr : s, !strcmp(cls, "unscanned") ? "unscanned" : s);
  hub_buf_dispose(&t);
  json_decref(st);
}

void web_scan_banner(web_page *p, const db_repo *repo) {
  json_t *rs = security_repo_status(repo);
  json_t *issues = json_object_get(rs, "filesWithIssues");
  size_t n = json_array_size(issues), i;
  json_t *f;
  if (n) {
    html_f(&p->b,
           "<div class=\"flash flash-warn\" id=\"scan-banner\"><b>Security scan:</b> "
           "%d file%s with issues: ",
           (int)n, n == 1 ? "" : "s");
    json_array_foreach(issues, i, f) {
      if (i >= 5) {
        html_f(&p->b, " …");
        break;
      }
      html_f(&p->b, "%s%t (%t)", i ? ", " : "", json_string_value(json_object_get(f, "path")),
             json_string_value(json_object_get(f, "level")));
    }
    html_f(&p->b, ". Policy: %t.</div>", security_policy_name(security_policy_for(repo)));
  }
  json_decref(rs);
}

static int flagged_row(int64_t repo_id, const char *path, const char *oid, const char *level,
                       void *payload) {
  web_page *p = payload;
  db_repo repo;
  if (db_repo_by_id(repo_id, &repo)) return 0;
  char msg[400], lv[16];
  security_finding(oid, msg, sizeof msg, lv);
  int over = db_scan_override_get(repo_id, oid, NULL) == 0;
  html_f(&p->b, "<tr><td><a href=\"");
  web_repo_href(&p->b, &repo);
  html_f(&p->b,
         "\">%t/%t</a></td><td class=\"mono\">%t</td><td><span class=\"badge "
         "badge-scan-%s\">%t</span></td><td>%t</td><td>%s</td></tr>",
         repo.ns, repo.name, path,
         !strcmp(level, "caution") || !strcmp(level, "error") ? "caution" : "unsafe", level, msg,
         over ? "overridden" : "");
  return 0;
}

int web_h_admin_scans(hub_req *r) {
  if (!r->who.is_admin) return web_not_found(r);
  web_page p;
  int64_t queued = 0, per[5];
  db_scan_counts(&queued, per);
  web_page_begin(&p, r, "Security scans");
  html_f(&p.b,
         "<h1>Security scans</h1><p class=\"hint\">Site policy: %t · %L object(s) "
         "waiting for a scan · %L unsafe, %L suspicious, %L caution.</p>",
         security_policy_name(security_policy_for(&(db_repo){0})), (long long)queued,
         (long long)per[3], (long long)per[2], (long long)per[1]);
  html_f(&p.b, "<div class=\"boxed scroll\"><table class=\"list\" id=\"flagged\"><thead><tr>"
               "<th>Repository</th><th>File</th><th>Level</th><th>Finding</th><th></th></tr>"
               "</thead><tbody>");
  size_t before = p.b.len;
  db_scan_issues(0, 1000, flagged_row, &p);
  if (p.b.len == before)
    html_f(&p.b, "<tr><td colspan=\"5\" class=\"muted\">No flagged files.</td></tr>");
  html_f(&p.b, "</tbody></table></div>");
  web_page_end(&p);
  return web_page_send(&p, 200);
}
