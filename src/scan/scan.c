/* The scan dispatcher (docs/scanning.md): picks the scanners of a file by its name and its
 * first bytes, runs the pickle and archive engine (pickle.c, zip.c) and the scanners of
 * scan/detect.h, and assembles the report of scan.h. */
#include "scan/scan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/detect.h"
#include "scan/engine.h"
#include "util/error.h"

static const char *const LEVEL_NAMES[] = {"safe", "caution", "suspicious", "unsafe", "error"};

const char *scan_level_name(scan_level l) {
  return (l >= SCAN_SAFE && l <= SCAN_ERROR) ? LEVEL_NAMES[l] : "error";
}

int scan_level_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i <= SCAN_ERROR; i++)
    if (strcmp(name, LEVEL_NAMES[i]) == 0) return i;
  return -1;
}

scan_level scan_report_level(const json_t *report) {
  int l = scan_level_parse(json_string_value(json_object_get(report, "level")));
  return l < 0 ? SCAN_ERROR : (scan_level)l;
}

/* ---- context ---------------------------------------------------------------------- */

void scan_utf8_fix(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    size_t n = c < 0x80                   ? 1
               : (c >= 0xc2 && c <= 0xdf) ? 2
               : (c >= 0xe0 && c <= 0xef) ? 3
               : (c >= 0xf0 && c <= 0xf4) ? 4
                                          : 0;
    size_t i = 1;
    for (; n && i < n; i++)
      if ((p[i] & 0xc0) != 0x80) break;
    /* overlong 3/4-byte forms, surrogates and code points past U+10FFFF */
    if (n == 3 && i == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) n = 0;
    if (n == 4 && i == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))) n = 0;
    if (!n || i < n) {
      *p++ = '?';
      continue;
    }
    p += n;
  }
}

int scan_ctx_init(scan_ctx *c, const scan_limits *lim) {
  memset(c, 0, sizeof *c);
  if (lim) c->lim = *lim;
  if (!c->lim.zip_max_members) c->lim.zip_max_members = 10000;
  if (!c->lim.zip_max_expansion) c->lim.zip_max_expansion = 64ull << 30;
  if (!c->lim.zip_max_ratio) c->lim.zip_max_ratio = 200;
  if (!c->lim.pickle_max_bytes) c->lim.pickle_max_bytes = 1ull << 30;
  if (!c->lim.text_max_bytes) c->lim.text_max_bytes = 16u << 20;
  if (!c->lim.nesting_max) c->lim.nesting_max = 3;
  c->imports = json_array();
  c->seen = json_object();
  c->members = json_array();
  c->findings = json_array();
  if (!c->imports || !c->seen || !c->members || !c->findings) {
    scan_ctx_dispose(c);
    return -1;
  }
  return 0;
}

void scan_ctx_dispose(scan_ctx *c) {
  json_decref(c->imports);
  json_decref(c->seen);
  json_decref(c->members);
  json_decref(c->findings);
  c->imports = c->seen = c->members = c->findings = NULL;
}

static void raise_level(scan_level *lvl, char *msg, size_t cap, scan_level l, const char *fmt,
                        va_list ap) {
  if (l < *lvl || (l == *lvl && *msg)) return;
  *lvl = l;
  vsnprintf(msg, cap, fmt, ap);
  scan_utf8_fix(msg); /* truncation may have cut a character */
}

void scan_ctx_pickle(scan_ctx *c, scan_level l, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  raise_level(&c->pickle_level, c->pickle_msg, sizeof c->pickle_msg, l, fmt, ap);
  va_end(ap);
}

void scan_ctx_archive(scan_ctx *c, scan_level l, const char *member, const char *fmt, ...) {
  char m[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  scan_utf8_fix(m);
  c->archive_applied = 1;
  if (l > c->archive_level || !*c->archive_msg) {
    if (l >= c->archive_level) {
      c->archive_level = l;
      snprintf(c->archive_msg, sizeof c->archive_msg, "%.120s%s%.120s",
               member && *member ? member : "", member && *member ? ": " : "", m);
      scan_utf8_fix(c->archive_msg);
    }
  }
  if (json_array_size(c->findings) >= SCAN_FINDINGS_MAX) return;
  json_t *o = json_pack("{s:s, s:s, s:s}", "member", member ? member : "", "message", m, "level",
                        scan_level_name(l));
  if (!o || json_array_append_new(c->findings, o)) c->oom = 1;
}

/* ---- dispatch by name and magic --------------------------------------------------- */

static int ext_is(const char *name, const char *const *exts) {
  const char *dot = strrchr(name, '.');
  const char *slash = strrchr(name, '/');
  if (!dot || (slash && dot < slash)) return 0;
  for (; *exts; exts++)
    if (strcasecmp(dot + 1, *exts) == 0) return 1;
  return 0;
}

static const char *const EXT_PICKLE[] = {"pkl", "pickle", "joblib", NULL};
static const char *const EXT_DAT[] = {"dat", NULL};
static const char *const EXT_TORCH[] = {"bin", "pt", "pth", "ckpt", NULL};
static const char *const EXT_NPY[] = {"npy", NULL};
static const char *const EXT_ZIP[] = {"zip", "npz", NULL};
static const char *const EXT_TAR[] = {"tar", NULL};

/* Open an archive member that needs random access: in place when stored, else inflated
 * into memory up to SCAN_NESTED_MEM_MAX. */
static void archive(scan_ctx *c, const char *name, scan_rd *r, const scan_src *stored, int depth,
                    int is_tar) {
  const char *prefix = depth ? name : "";
  if (depth > c->lim.nesting_max) {
    scan_ctx_archive(c, SCAN_SUSPICIOUS, name, "archive nested deeper than %d: not scanned",
                     c->lim.nesting_max);
    return;
  }
  if (stored) {
    if (is_tar)
      scan_tar(c, stored, prefix, depth);
    else
      scan_zip(c, stored, prefix, depth);
    return;
  }
  if (r->declared > SCAN_NESTED_MEM_MAX) {
    scan_ctx_archive(c, SCAN_SUSPICIOUS, name, "compressed nested archive too large to scan");
    return;
  }
  unsigned char *m = malloc(r->declared ? r->declared : 1);
  if (!m) {
    c->oom = 1;
    return;
  }
  uint64_t n = 0;
  while (n < r->declared) {
    size_t have = scan_rd__fill(r);
    if (!have) break;
    size_t k = have < r->declared - n ? have : (size_t)(r->declared - n);
    memcpy(m + n, r->buf + r->pos, k);
    r->pos += k;
    n += k;
  }
  scan_src src = {-1, m, 0, n};
  if (is_tar)
    scan_tar(c, &src, prefix, depth);
  else
    scan_zip(c, &src, prefix, depth);
  free(m);
}

void scan_member(scan_ctx *c, const char *name, scan_rd *r, const scan_src *stored, int depth) {
  if (!ext_is(name, EXT_PICKLE) && !ext_is(name, EXT_DAT) && !ext_is(name, EXT_TORCH) &&
      !ext_is(name, EXT_NPY) && !ext_is(name, EXT_ZIP) && !ext_is(name, EXT_TAR))
    return; /* not a kind of file these scanners read: not even its first bytes */
  size_t got;
  const unsigned char *p = scan_rd_peek(r, 512, &got);
  int zip = got >= 4 && (!memcmp(p, "PK\3\4", 4) || !memcmp(p, "PK\5\6", 4));
  int tar = got >= 262 && !memcmp(p + 257, "ustar", 5);
  int pk = got >= 2 && p[0] == 0x80 && p[1] <= 5;
  if (ext_is(name, EXT_PICKLE)) {
    if (zip) return archive(c, name, r, stored, depth, 0);
    int compressed = got >= 2 && ((p[0] == 0x1f && p[1] == 0x8b) || p[0] == 0x78 ||
                                  (p[0] == 'Z' && p[1] == 'F') || (p[0] == 'B' && p[1] == 'Z') ||
                                  (p[0] == 0xfd && p[1] == '7') || (p[0] == 0x04 && p[1] == 0x22));
    if (compressed) {
      c->pickle_applied = 1;
      scan_ctx_pickle(c, SCAN_SUSPICIOUS, "%s: compressed content, cannot be walked", name);
      return;
    }
    if (got) scan_pickle_stream(c, r, name);
  } else if (ext_is(name, EXT_DAT)) {
    if (pk) scan_pickle_stream(c, r, name);
  } else if (ext_is(name, EXT_TORCH)) {
    if (zip)
      archive(c, name, r, stored, depth, 0);
    else if (pk)
      scan_pickle_stream(c, r, name);
    else if (tar)
      archive(c, name, r, stored, depth, 1);
  } else if (ext_is(name, EXT_NPY)) {
    if (got >= 6 && !memcmp(p, "\x93NUMPY", 6)) scan_npy_stream(c, r, name);
  } else if (ext_is(name, EXT_ZIP)) {
    if (zip) archive(c, name, r, stored, depth, 0);
  } else if (ext_is(name, EXT_TAR)) {
    if (tar) archive(c, name, r, stored, depth, 1);
  }
}

/* ---- report ----------------------------------------------------------------------- */

static int engine(const scan_limits *lim, const scan_src *src, const char *path, json_t *scanners) {
  scan_ctx c;
  scan_rd r;
  if (scan_ctx_init(&c, lim)) return hub_error_set(HUB_ERROR, "out of memory");
  if (scan_rd_open(&r, src, 0, src->size, 0, src->size, 0, c.lim.pickle_max_bytes)) {
    scan_ctx_dispose(&c);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  char *name = strdup(path ? path : "");
  if (!name) {
    scan_rd_dispose(&r);
    scan_ctx_dispose(&c);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  scan_utf8_fix(name);
  scan_member(&c, name, &r, src, 0);
  free(name);
  int ioerr = r.ioerr;
  scan_rd_dispose(&r);
  if (ioerr && !c.pickle_applied && !c.archive_applied) {
    scan_ctx_dispose(&c);
    return hub_error_set(HUB_ERROR, "reading %s failed", path ? path : "file");
  }
  int rc = 0;
  if (c.pickle_applied) {
    if (!*c.pickle_msg)
      snprintf(c.pickle_msg, sizeof c.pickle_msg, "%llu pickle(s) walked, %zu import(s), %s",
               (unsigned long long)c.pickles, json_array_size(c.imports),
               c.pickle_level == SCAN_SAFE ? "all innocuous" : "see imports");
    if (json_object_set_new(scanners, "pickle",
                            json_pack("{s:s, s:s, s:O, s:O}", "status",
                                      scan_level_name(c.pickle_level), "message", c.pickle_msg,
                                      "imports", c.imports, "members", c.members)))
      rc = -1;
  }
  if (c.archive_applied) {
    if (!*c.archive_msg) snprintf(c.archive_msg, sizeof c.archive_msg, "no archive findings");
    if (json_object_set_new(scanners, "archive",
                            json_pack("{s:s, s:s, s:O}", "status", scan_level_name(c.archive_level),
                                      "message", c.archive_msg, "findings", c.findings)))
      rc = -1;
  }
  if (c.oom) rc = -1;
  scan_ctx_dispose(&c);
  return rc ? hub_error_set(HUB_ERROR, "out of memory") : 0;
}

static int finish(json_t *scanners, json_t **out) {
  scan_level worst = SCAN_SAFE;
  const char *k;
  json_t *v;
  json_object_foreach(scanners, k, v) {
    const char *st = json_string_value(json_object_get(v, "status"));
    int l = (st && !strcmp(st, "unscanned")) ? SCAN_SAFE : scan_level_parse(st);
    if (l < 0) l = SCAN_ERROR;
    if ((scan_level)l > worst) worst = (scan_level)l;
  }
  *out = json_pack("{s:s, s:o}", "level", scan_level_name(worst), "scanners", scanners);
  return *out ? 0 : hub_error_set(HUB_ERROR, "out of memory");
}

static void add(json_t *scanners, const char *name, json_t *obj) {
  if (obj) json_object_set_new(scanners, name, obj);
}

int scan_fd(const scan_config *cfg, int fd, uint64_t size, const char *path, json_t **out) {
  *out = NULL;
  scan_limits lim;
  memset(&lim, 0, sizeof lim);
  if (cfg) lim = cfg->limits;
  json_t *scanners = json_object();
  if (!scanners) return hub_error_set(HUB_ERROR, "out of memory");
  scan_src src = {fd, NULL, 0, size};
  int rc = engine(&lim, &src, path, scanners);
  if (rc) {
    json_decref(scanners);
    return rc;
  }
  scan_ctx c; /* limits with defaults for the detect scanners */
  if (scan_ctx_init(&c, &lim)) {
    json_decref(scanners);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  add(scanners, "header", scan_header(fd, size, path, &c.lim));
  add(scanners, "secrets", scan_secrets(fd, size, path, &c.lim));
  scan_ctx_dispose(&c);
  json_t *av = scan_av_scan(cfg ? cfg->av : NULL, fd, size);
  if (!av) {
    json_decref(scanners);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  add(scanners, "av", av);
  return finish(scanners, out);
}

int scan_mem(const scan_limits *limits, const void *buf, size_t len, const char *path,
             json_t **out) {
  *out = NULL;
  json_t *scanners = json_object();
  if (!scanners) return hub_error_set(HUB_ERROR, "out of memory");
  scan_src src = {-1, buf, 0, len};
  int rc = engine(limits, &src, path, scanners);
  if (rc) {
    json_decref(scanners);
    return rc;
  }
  return finish(scanners, out);
}
