/* Downloads: GET/HEAD /{prefix}{repo}/resolve/{rev}/{path} and /raw/…
 * LFS files come from the blob store by sendfile; regular files from git. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "http/range.h"
#include "index/index.h"
#include "mirror/mirror.h"
#include "security/security.h"
#include "util/error.h"
#include "xetsrv/xetsrv.h"

static const char *content_type_for(const char *path, int raw) {
  const char *dot = strrchr(path, '.');
  if (raw) return "text/plain; charset=utf-8";
  if (dot && (!strcmp(dot, ".json") || !strcmp(dot, ".jsonl")))
    return "application/json; charset=utf-8";
  if (dot && (!strcmp(dot, ".md") || !strcmp(dot, ".txt") || !strcmp(dot, ".py") ||
              !strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".jinja")))
    return "text/plain; charset=utf-8";
  if (!strcmp(path, ".gitattributes") || !strcmp(path, ".gitignore"))
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/* Does If-None-Match name our etag (quoted, possibly a list, or "*")? */
static int etag_matches(const char *inm, const char *etag) {
  if (!inm) return 0;
  if (strstr(inm, "*")) return 1;
  return strstr(inm, etag) != NULL;
}

struct dl {
  const char *etag_q; /* quoted */
  const char *sha;
  int64_t total;
  int is_lfs;
  const char *lfs_oid;
  void *data; /* regular file bytes (owned by cleanup) */
  const char *path;
  const xetsrv_file *xet; /* set when the LFS object is Xet-backed */
  int referenced;         /* the repo references the LFS object (db/objects.h) */
  int mirror_fetch;       /* a mirrored repo's object that must come from upstream */
};

static void add_common(hub_req *r, const struct dl *d) {
  http_add_header(r, "X-Repo-Commit", d->sha);
  http_add_header(r, "ETag", d->etag_q);
  http_add_header(r, "Accept-Ranges", "bytes");
  /* User files come from the page origin: never let a browser sniff one into HTML or
   * script, and should one be opened directly, run nothing in it. */
  http_add_header(r, "X-Content-Type-Options", "nosniff");
  http_add_header(r, "Content-Security-Policy", "default-src 'none'; sandbox");
  if (d->is_lfs) {
    char sz[32];
    snprintf(sz, sizeof sz, "%lld", (long long)d->total);
    http_add_header(r, "X-Linked-Etag", d->etag_q);
    http_add_header(r, "X-Linked-Size", sz);
  }
  const char *base = strrchr(d->path, '/');
  base = base ? base + 1 : d->path;
  /* Only a safe subset goes in the quoted filename; filename* carries the exact name. */
  char disp[700];
  char plain[256];
  size_t j = 0;
  for (size_t i = 0; base[i] && j < sizeof plain - 1; i++)
    plain[j++] =
        (base[i] >= 0x20 && base[i] < 0x7f && base[i] != '"' && base[i] != '\\') ? base[i] : '_';
  plain[j] = 0;
  hub_buf enc = HUB_BUF_INIT;
  for (const unsigned char *p = (const unsigned char *)base; *p && enc.len < 400; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p))
      hub_buf_putc(&enc, (char)*p);
    else
      hub_buf_printf(&enc, "%%%02X", *p);
  }
  snprintf(disp, sizeof disp, "inline; filename*=UTF-8''%s; filename=\"%s\";",
           enc.ptr ? enc.ptr : "", plain);
  hub_buf_dispose(&enc);
  if (!http_param(r, "noContentDisposition")) http_add_header(r, "Content-Disposition", disp);
  if (d->xet) xetsrv_add_headers(r, d->sha, d->xet);
}

static int send_body(hub_req *r, const struct dl *d, int status, int64_t start, int64_t len,
                     const char *ctype) {
  if (d->mirror_fetch == 2) /* HEAD of a file not fetched yet: the pointer has it all */
    return http_reply_data_len(r, status, ctype, (uint64_t)len);
  if (d->mirror_fetch) { /* streamed as it arrives from upstream (mirror/) */
    int rc = mirror_object_stream(r, d->lfs_oid, d->total, status, ctype, start, len);
    if (rc == 1) return 0;
    if (rc < 0) {
      mirror_reply_error(r, rc);
      http_add_header(r, "X-Repo-Commit", d->sha);
      return 1; /* replied */
    }
  }
  if (d->is_lfs) {
    int64_t sz = 0;
    /* The shared store answers only for objects this repo references: a tree may name an
     * oid through a Xet upload whose sha256 claim is not verified yet, and the store may
     * hold another repo's bytes under that oid. */
    int rc =
        d->referenced || d->mirror_fetch ? blob_stat(api_blobs(), d->lfs_oid, &sz) : HUB_ENOTFOUND;
    if (rc == HUB_ENOTFOUND && d->xet) /* uploaded through Xet: rebuilt from its chunks */
      return xetsrv_reply_bytes(r, status, ctype, d->xet, start, len);
    if (rc == HUB_ENOTFOUND)
      return hub_error_set(HUB_EENTRY, "The LFS object for %s is missing from storage", d->path);
    if (rc) return rc;
    if (sz != d->total) return hub_error_set(HUB_ERROR, "stored object size differs from pointer");
    if (r->is_head) return http_reply_data_len(r, status, ctype, (uint64_t)len);
    return http_reply_blob(r, status, ctype, api_blobs(), d->lfs_oid, (uint64_t)start,
                           (uint64_t)len);
  }
  return http_reply_data(r, status, ctype, (const char *)d->data + start, (size_t)len);
}

/* A mirrored repo's LFS object that is not here (never fetched, or evicted) comes from
 * upstream (mirror/), on a worker: send_body streams it as it arrives. HEAD needs no
 * bytes: the pointer gives the ETag and size. 0 = go on; 1 = the request moves to a
 * worker; < 0 = error. */
static int mirror_bytes(hub_req *r, struct dl *d) {
  int64_t have = -1;
  db_mirror_repo m;
  if (!mirror_enabled() || mirror_repo_of(&r->repo, &m)) return 0;
  if (d->referenced) {
    char *held = http_strdup(r, d->lfs_oid);
    if (!held) return hub_error_set(HUB_ERROR, "out of memory");
    mirror_object_touch(held); /* kept from eviction until the request ends */
    http_cleanup_add(r, mirror_object_release_cb, held);
    if (blob_stat(api_blobs(), d->lfs_oid, &have) == 0 && have == d->total) return 0;
  }
  if (r->is_head) {
    d->mirror_fetch = 2;
    return 0;
  }
  if (http_move_to_worker(r)) return 1;
  d->mirror_fetch = 1;
  return 0;
}

static int h_download(hub_req *r, int raw) {
  repo_handle *h;
  char sha[41];
  const char *path;
  int rc = api_rev_and_path(r, &h, sha, &path);
  if (rc) return rc;
  repo_entry e;
  memset(&e, 0, sizeof e);
  if (!*path || (rc = repo_stat(h, sha, path, &e)) || e.type != REPO_ENTRY_FILE) {
    if (!rc) repo_entry_dispose(&e);
    hub_error_set(HUB_EENTRY, "Entry not found");
    http_reply_error(r, HUB_EENTRY);
    http_add_header(r, "X-Repo-Commit", sha);
    return 0;
  }
  /* The scan policy (docs/scanning.md): a file flagged unsafe, or not scanned yet under
   * block-unscanned, is withheld unless a writer overrode it. */
  if ((rc = security_may_download(&r->repo, e.is_lfs ? e.lfs_oid : e.oid, path))) {
    repo_entry_dispose(&e);
    return rc;
  }
  struct dl d = {0};
  xetsrv_file xf;
  char etag[80];
  d.sha = sha;
  d.path = path;
  d.is_lfs = e.is_lfs && !raw;
  if (d.is_lfs) {
    snprintf(etag, sizeof etag, "\"%s\"", e.lfs_oid);
    d.lfs_oid = e.lfs_oid;
    d.total = (int64_t)e.lfs_size;
    if (xetsrv_lookup(&r->repo, e.lfs_oid, &xf) == 0 && xf.size == e.lfs_size) d.xet = &xf;
    int64_t ref = -1;
    d.referenced = db_objects_get(r->repo.id, e.lfs_oid, &ref) == 0 && ref == d.total;
    if (!d.xet && (rc = mirror_bytes(r, &d))) {
      repo_entry_dispose(&e);
      return rc > 0 ? 0 : rc; /* 1: runs again on a worker */
    }
  } else {
    snprintf(etag, sizeof etag, "\"%s\"", e.oid);
    size_t n = 0;
    if ((rc = repo_read_blob(h, e.oid, &d.data, &n))) {
      repo_entry_dispose(&e);
      return rc;
    }
    http_cleanup_add(r, free, d.data);
    d.total = (int64_t)n;
  }
  d.etag_q = etag;
  const char *ctype = d.is_lfs ? "application/octet-stream" : content_type_for(path, raw);
  if (etag_matches(http_header(r, "If-None-Match"), etag)) {
    rc = http_reply_data(r, 304, NULL, "", 0);
    if (!rc) add_common(r, &d);
    repo_entry_dispose(&e);
    return rc;
  }
  if (d.xet && xetsrv_wants_fileinfo(r)) { /* JS fileDownloadInfo (xet.md §7.3) */
    rc = xetsrv_reply_fileinfo(r, sha, d.xet, etag);
    if (!rc) add_common(r, &d);
    repo_entry_dispose(&e);
    return rc;
  }
  /* --blob-redirect: an LFS file in an object store is a 302 to a presigned URL, with the
   * headers clients read (X-Repo-Commit, X-Linked-*); the client sends its Range there. */
  if (d.is_lfs && d.referenced && d.total > 0 && blob_redirect_seconds() > 0) {
    int64_t sz = -1;
    rc = blob_stat(api_blobs(), d.lfs_oid, &sz);
    if (!rc && sz == d.total)
      rc = http_reply_blob_redirect(r, api_blobs(), d.lfs_oid, NULL);
    else if (!rc || rc == HUB_ENOTFOUND)
      rc = HUB_EUNSUPPORTED; /* send_body decides */
    if (rc != HUB_EUNSUPPORTED) {
      if (!rc) {
        add_common(r, &d);
        if (!r->is_head) index_download_count(&r->repo, path);
      }
      repo_entry_dispose(&e);
      return rc;
    }
  }
  const char *range = http_header(r, "Range");
  int64_t s = 0, en = d.total - 1;
  int pr = range ? range_parse(range, d.total, &s, &en) : RANGE_IGNORE;
  char cr[96];
  if (range && d.total == 0 && pr != RANGE_IGNORE) {
    /* JS fileDownloadInfo needs Content-Range even for empty files (hf-api.md §4.3). */
    rc = http_reply_data(r, 200, ctype, "", 0);
    if (!rc) {
      add_common(r, &d);
      http_add_header(r, "Content-Range", "bytes */0");
    }
  } else if (pr == HUB_ERANGE) {
    snprintf(cr, sizeof cr, "bytes */%lld", (long long)d.total);
    hub_error_set(HUB_ERANGE, "Requested range not satisfiable: %s (size %lld)", range,
                  (long long)d.total);
    rc = http_reply_error(r, HUB_ERANGE);
    if (!rc) {
      http_add_header(r, "Content-Range", cr);
      http_add_header(r, "X-Repo-Commit", sha);
    }
  } else if (pr == 0) {
    rc = send_body(r, &d, 206, s, en - s + 1, ctype);
    if (!rc) {
      snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)s, (long long)en,
               (long long)d.total);
      add_common(r, &d);
      http_add_header(r, "Content-Range", cr);
    }
  } else {
    rc = send_body(r, &d, 200, 0, d.total, ctype);
    if (!rc) add_common(r, &d);
  }
  if (!rc && !raw && pr != HUB_ERANGE) index_download_count(&r->repo, path);
  if (rc > 0) rc = 0; /* send_body replied with an error itself */
  repo_entry_dispose(&e);
  return rc;
}

static int h_resolve(hub_req *r) {
  return h_download(r, 0);
}

static int h_raw(hub_req *r) {
  return h_download(r, 1);
}

const hub_route api_resolve_routes[] = {
    {"GET", "{prefix}/{repo}/resolve/{*}", h_resolve, NEED_REPO_FILES | RUN_INLINE, BODY_NONE, NULL,
     0},
    {"GET", "{prefix}/{repo}/raw/{*}", h_raw, NEED_REPO_FILES | RUN_INLINE, BODY_NONE, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
