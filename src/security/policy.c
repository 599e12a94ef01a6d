/* What the scan results mean for readers: the Hub's securityFileStatus and
 * securityRepoStatus, and the one download decision (security_may_download). Reads only:
 * these run on event threads inside a read snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/scan.h"
#include "scan/scan.h"
#include "security/internal.h"
#include "util/error.h"

static const char *const POLICIES[] = {"warn", "block", "block-unscanned"};

int security_policy_parse(const char *s) {
  for (int i = 0; s && i < 3; i++)
    if (!strcmp(s, POLICIES[i])) return i;
  return -1;
}

const char *security_policy_name(int p) {
  return p >= 0 && p < 3 ? POLICIES[p] : "warn";
}

int security_policy_for(const db_repo *repo) {
  int p = sec__site_policy;
  char org[24];
  if (repo->owner_is_org && db_scan_org_policy_get(repo->owner_id, org) == 0) {
    int o = security_policy_parse(org);
    if (o > p) p = o; /* the stricter of the two */
  }
  return p;
}

/* "module.name (safety)" for each dangerous (else suspicious) pickle import. */
static void pickle_message(const json_t *pk, const char *want, hub_buf *b) {
  size_t i;
  json_t *imp;
  json_array_foreach(json_object_get(pk, "imports"), i, imp) {
    const char *safety = json_string_value(json_object_get(imp, "safety"));
    if (!safety || strcmp(safety, want)) continue;
    hub_buf_printf(b, "%spickle import %s.%s (%s)", b->len ? ", " : "",
                   json_string_value(json_object_get(imp, "module")),
                   json_string_value(json_object_get(imp, "name")), safety);
  }
}

void sec__finding_message(const json_t *report, char *out, size_t cap) {
  const char *level = json_string_value(json_object_get(report, "level"));
  json_t *scanners = json_object_get(report, "scanners");
  hub_buf b = HUB_BUF_INIT;
  out[0] = 0;
  if (!level || !strcmp(level, "safe")) return;
  json_t *pk = json_object_get(scanners, "pickle");
  const char *ps = json_string_value(json_object_get(pk, "status"));
  if (ps && !strcmp(ps, level))
    pickle_message(pk, !strcmp(level, "unsafe") ? "dangerous" : "suspicious", &b);
  const char *name;
  json_t *sc;
  json_object_foreach(scanners, name, sc) {
    const char *st = json_string_value(json_object_get(sc, "status"));
    if (!st || strcmp(st, level) || (!strcmp(name, "pickle") && b.len)) continue;
    const char *msg = json_string_value(json_object_get(sc, "message"));
    const char *sig = json_string_value(json_object_get(sc, "signature"));
    if (!strcmp(name, "av") && sig)
      hub_buf_printf(&b, "%smalware %s", b.len ? ", " : "", sig);
    else
      hub_buf_printf(&b, "%s%s: %s", b.len ? ", " : "", name, msg ? msg : level);
  }
  snprintf(out, cap, "%s", b.ptr ? b.ptr : level);
  hub_buf_dispose(&b);
}

const char *security_finding(const char *oid, char *out, size_t cap, char level[16]) {
  db_scan_object o;
  out[0] = 0;
  level[0] = 0;
  if (db_scan_object_get(oid, &o)) return level;
  snprintf(level, 16, "%s", o.level);
  json_t *rep = o.report[0] ? json_loads(o.report, 0, NULL) : NULL;
  if (rep) sec__finding_message(rep, out, cap);
  json_decref(rep);
  db_scan_object_dispose(&o);
  return level;
}

int security_may_download(const db_repo *repo, const char *oid, const char *path) {
  int p = security_policy_for(repo);
  if (p == SECURITY_POLICY_WARN || !oid || !*oid) return 0;
  char msg[400], level[16];
  security_finding(oid, msg, sizeof msg, level);
  int unsafe = !strcmp(level, "unsafe");
  int unscanned = !level[0] || !strcmp(level, "error"); /* a failed scan is no scan */
  if (!unsafe && !(unscanned && p == SECURITY_POLICY_BLOCK_UNSCANNED)) return 0;
  if (db_scan_override_get(repo->id, oid, NULL) == 0) return 0; /* a writer let it through */
  const char *what = path && *path ? path : oid;
  if (unscanned && level[0])
    return hub_error_set(HUB_EBLOCKED,
                         "%s could not be security-scanned (%s); downloads need a successful "
                         "scan (policy block-unscanned)",
                         what, msg[0] ? msg : "scanner error");
  if (unscanned)
    return hub_error_set(HUB_EBLOCKED,
                         "%s has not been security-scanned yet; downloads wait for the scan "
                         "(policy block-unscanned). Try again shortly.",
                         what);
  return hub_error_set(HUB_EBLOCKED, "%s was flagged unsafe by the security scan: %s", what, msg);
}

/* ---- the Hub's shapes ---- */

static json_t *scanner_copy(json_t *scanners, const char *name) {
  json_t *s = json_object_get(scanners, name);
  return s ? json_deep_copy(s) : json_null();
}

static json_t *pickle_status(json_t *scanners) {
  json_t *pk = json_object_get(scanners, "pickle");
  if (!pk) return json_null();
  json_t *imports = json_array();
  size_t i;
  json_t *imp;
  json_array_foreach(json_object_get(pk, "imports"), i, imp) json_array_append_new(
      imports, json_pack("{s:O?, s:O?, s:O?}", "module", json_object_get(imp, "module"), "name",
                         json_object_get(imp, "name"), "safety", json_object_get(imp, "safety")));
  json_t *o =
      json_pack("{s:O?, s:o}", "status", json_object_get(pk, "status"), "pickleImports", imports);
  json_t *msg = json_object_get(pk, "message");
  if (o && json_is_string(msg)) json_object_set(o, "message", msg);
  return o ? o : json_null();
}

json_t *security_file_status(const char *oid) {
  db_scan_object o;
  if (db_scan_object_get(oid, &o))
    return json_pack("{s:s, s:{s:s}, s:n}", "status", "unscanned", "avScan", "status", "unscanned",
                     "pickleImportScan");
  json_t *rep = o.report[0] ? json_loads(o.report, 0, NULL) : NULL;
  json_t *out;
  if (!rep) {
    out = json_pack("{s:s, s:{s:s}, s:n}", "status", "queued", "avScan", "status", "queued",
                    "pickleImportScan");
  } else {
    json_t *sc = json_object_get(rep, "scanners");
    json_t *av = json_object_get(sc, "av");
    out = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "status", o.level, "avScan",
                    av ? json_deep_copy(av) : json_pack("{s:s}", "status", "unscanned"),
                    "pickleImportScan", pickle_status(sc), "headerScan", scanner_copy(sc, "header"),
                    "secretsScan", scanner_copy(sc, "secrets"), "archiveScan",
                    scanner_copy(sc, "archive"));
    json_t *with = json_object_get(rep, "scannedWith");
    if (out && with) json_object_set(out, "scannedWith", with);
    if (out && !strcmp(o.state, "queued")) json_object_set_new(out, "rescanQueued", json_true());
    json_decref(rep);
  }
  db_scan_object_dispose(&o);
  return out;
}

static int add_issue(int64_t repo_id, const char *path, const char *oid, const char *level,
                     void *payload) {
  (void)repo_id, (void)oid;
  json_array_append_new(payload, json_pack("{s:s, s:s}", "path", path, "level", level));
  return 0;
}

json_t *security_repo_status(const db_repo *repo) {
  int64_t pending = 0;
  json_t *issues = json_array();
  db_scan_repo_pending(repo->id, &pending);
  db_scan_issues(repo->id, 1000, add_issue, issues);
  return json_pack("{s:b, s:o}", "scansDone", pending == 0, "filesWithIssues", issues);
}

/* ---- metrics ---- */

void security_metrics(hub_buf *b) {
  int64_t queued = 0, per[5];
  db_scan_counts(&queued, per);
  hub_buf_printf(b,
                 "# HELP modelhub_scan_queue_depth Objects waiting for their security scan.\n"
                 "# TYPE modelhub_scan_queue_depth gauge\n"
                 "modelhub_scan_queue_depth %lld\n"
                 "# HELP modelhub_scan_objects Scanned objects by level (all nodes).\n"
                 "# TYPE modelhub_scan_objects gauge\n",
                 (long long)queued);
  for (int i = 0; i < 5; i++)
    hub_buf_printf(b, "modelhub_scan_objects{level=\"%s\"} %lld\n", scan_level_name((scan_level)i),
                   (long long)per[i]);
  sec__metrics_counters(b);
}
