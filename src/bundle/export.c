/* `modelhub export`: one self-verifying file (bundle.h has the format). Written in one pass
 * to any fd: the git bundle is made in <data>/tmp first (its hash goes into the manifest),
 * objects are streamed from the blob store (or rebuilt from Xet) and hashed on the way. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "bundle/internal.h"
#include "db/db.h"
#include "repo/repo.h"
#include "util/error.h"
#include "util/hub.h"
#include "xetsrv/xetsrv.h"

typedef struct {
  json_t *objects; /* oid -> size, deduplicated */
} scan_ctx;

static int add_pointer(const char *oid, uint64_t size, void *payload) {
  scan_ctx *s = payload;
  json_t *have = json_object_get(s->objects, oid);
  if (have && (uint64_t)json_integer_value(have) != size)
    return hub_error_set(HUB_EINVALID, "object %s is named with two sizes", oid);
  return json_object_set_new(s->objects, oid, json_integer((json_int_t)size)) ? HUB_ERROR : 0;
}

/* "<40 hex> <ref>" lines of `git bundle list-heads` → [[ref, id], ...] sorted by ref. */
static int read_heads(const char *path, json_t *out) {
  FILE *f = fopen(path, "r");
  char line[1200];
  if (!f) return hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (strlen(line) < 42 || line[40] != ' ' || strncmp(line + 41, "refs/", 5)) continue;
    line[40] = 0;
    json_array_append_new(out, json_pack("[s, s]", line + 41, line));
  }
  fclose(f);
  return 0;
}

typedef struct {
  const char *want; /* NULL: all */
  json_t *names;
} refs_ctx;

static int each_ref(const char *ref, const char *id, void *payload) {
  refs_ctx *c = payload;
  (void)id;
  if (strncmp(ref, "refs/", 5)) return 0;
  if (!c->want || !strcmp(c->want, ref)) json_array_append_new(c->names, json_string(ref));
  return 0;
}

static int write_object(int out_fd, blob_store *view, const char *oid, uint64_t size) {
  blob_stream *s = NULL;
  int64_t have = 0;
  int rc = blob_open_stream(view, oid, &s, &have);
  if (rc) return hub_error_set(rc, "object %s is not in this hub's store", oid);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  char *buf = malloc(BUNDLE_IO_BLOCK);
  uint64_t done = 0;
  if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
    rc = hub_error_set(HUB_ERROR, "out of memory");
  if (!rc && (uint64_t)have != size)
    rc = hub_error_set(HUB_ERROR, "object %s has %lld bytes, its pointer says %llu", oid,
                       (long long)have, (unsigned long long)size);
  while (!rc) {
    size_t n = 0;
    if ((rc = blob_stream_read(s, buf, BUNDLE_IO_BLOCK, &n)) || !n) break;
    if (done + n > size) {
      rc = hub_error_set(HUB_ERROR, "object %s is longer than %llu bytes", oid,
                         (unsigned long long)size);
      break;
    }
    EVP_DigestUpdate(md, buf, n);
    done += n;
    rc = bundle__write_all(out_fd, buf, n);
  }
  if (!rc) {
    unsigned char d[32];
    unsigned dl = 0;
    char hex[65];
    EVP_DigestFinal_ex(md, d, &dl);
    bundle__hex(hex, d, 32);
    if (done != size || strcmp(hex, oid))
      rc = hub_error_set(HUB_ERROR, "object %s in this hub's store does not match its hash", oid);
  }
  free(buf);
  EVP_MD_CTX_free(md);
  blob_stream_close(s);
  return rc;
}

int bundle_export(const bundle_export_opts *o) {
  char tmp[4200] = "", gitdir[4200], path[4400], scan[4400], heads[4400], sha[65];
  db_repo repo;
  repo_handle *h = NULL, *sh = NULL;
  blob_store *store = NULL, *view = NULL;
  json_t *names = json_array(), *refs = json_array(), *objs = json_object(), *man = NULL;
  json_t *olist = json_array();
  char *text = NULL;
  const char **args = NULL;
  uint64_t gsize = 0;
  int rc;

  if (!names || !refs || !objs || !olist) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = db_repo_get(o->type, o->ns, o->name, &repo))) {
    rc = hub_error_set(HUB_EREPO, "no %s repository %s/%s", bundle__type_name(o->type), o->ns,
                       o->name);
    goto done;
  }
  db_repo_dir(repo.uid, gitdir, sizeof gitdir);
  if ((rc = repo_open(&h, gitdir))) goto done;
  refs_ctx rcx = {NULL, names};
  char *full = NULL;
  if (o->rev) {
    char id[41];
    if ((rc = repo_resolve(h, o->rev, id, &full))) goto done;
    if (!full) {
      rc =
          hub_error_set(HUB_EINVALID, "@%s: name a branch or tag (a commit id has no ref)", o->rev);
      goto done;
    }
    rcx.want = full;
  }
  rc = repo_refs_each_raw(h, each_ref, &rcx);
  free(full);
  if (rc) goto done;
  if (!json_array_size(names)) {
    rc = hub_error_set(HUB_EREVISION, "nothing to export");
    goto done;
  }

  /* The git part, then the refs it really holds (refs may move while we run). */
  if ((rc = bundle__tmpdir("export-", tmp, sizeof tmp))) goto done;
  snprintf(path, sizeof path, "%s/git.bundle", tmp);
  size_t nn = json_array_size(names);
  args = calloc(nn + 6, sizeof *args);
  if (!args) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  size_t k = 0;
  args[k++] = "-C";
  args[k++] = gitdir;
  args[k++] = "bundle";
  args[k++] = "create";
  args[k++] = path;
  for (size_t i = 0; i < nn; i++)
    args[k++] = json_string_value(json_array_get(names, i));
  args[k] = NULL;
  if ((rc = bundle__git(args, -1))) goto done;
  snprintf(heads, sizeof heads, "%s/heads", tmp);
  int hfd = open(heads, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (hfd < 0) {
    rc = hub_error_set(HUB_ERROR, "open %s: %s", heads, strerror(errno));
    goto done;
  }
  const char *lh[] = {"bundle", "list-heads", path, NULL};
  rc = bundle__git(lh, hfd);
  close(hfd);
  if (rc || (rc = read_heads(heads, refs))) goto done;
  if ((rc = bundle__file_sha256(path, sha, &gsize))) goto done;

  /* The LFS objects of exactly the bundled history: unbundle it into a scratch repo. */
  snprintf(scan, sizeof scan, "%s/scan.git", tmp);
  const char *init[] = {"init", "--bare", "-q", scan, NULL};
  const char *unb[] = {"-C", scan, "bundle", "unbundle", path, NULL};
  if ((rc = bundle__git(init, -1)) || (rc = bundle__git(unb, -1))) goto done;
  if ((rc = repo_open(&sh, scan))) goto done;
  scan_ctx sc = {objs};
  if ((rc = repo_lfs_pointers_each(sh, add_pointer, &sc))) goto done;
  const char *oid;
  json_t *v;
  json_object_foreach(objs, oid, v) {
    json_array_append_new(olist,
                          json_pack("{s:s, s:I}", "oid", oid, "size", json_integer_value(v)));
  }

  man = json_pack("{s:s, s:i, s:{s:s, s:s++, s:b, s:s}, s:O, s:{s:I, s:s}, s:O, s:I}", "format",
                  "modelhub-bundle", "version", 1, "repo", "type", bundle__type_name(repo.type),
                  "id", repo.ns, "/", repo.name, "private", repo.is_private, "gated", repo.gated,
                  "refs", refs, "git", "size", (json_int_t)gsize, "sha256", sha, "objects", olist,
                  "created", (json_int_t)db_now_ms());
  text = man ? json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (!text) {
    rc = hub_error_set(HUB_ERROR, "manifest: out of memory");
    goto done;
  }
  size_t ml = strlen(text);
  if (ml > BUNDLE_MANIFEST_MAX) {
    rc = hub_error_set(HUB_ETOOBIG, "manifest of %zu bytes is over the limit", ml);
    goto done;
  }
  unsigned char hdr[16], d[32];
  unsigned dl = 0;
  memcpy(hdr, BUNDLE_MAGIC, 8);
  for (int i = 0; i < 8; i++)
    hdr[8 + i] = (unsigned char)((uint64_t)ml >> (56 - 8 * i));
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || !EVP_DigestUpdate(md, hdr, 16) ||
      !EVP_DigestUpdate(md, text, ml) || EVP_DigestFinal_ex(md, d, &dl) != 1)
    rc = hub_error_set(HUB_ERROR, "sha256");
  EVP_MD_CTX_free(md);
  if (rc || (rc = bundle__write_all(o->out_fd, hdr, 16)) ||
      (rc = bundle__write_all(o->out_fd, text, ml)) || (rc = bundle__write_all(o->out_fd, d, 32)))
    goto done;
  int gfd = open(path, O_RDONLY | O_CLOEXEC);
  if (gfd < 0) {
    rc = hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
    goto done;
  }
  rc = bundle__copy(gfd, o->out_fd, gsize, NULL);
  close(gfd);
  if (rc) goto done;

  /* Objects: plain LFS blobs, or files stored only in Xet (rebuilt as they stream). */
  if ((rc = blob_store_open_at(&store, ""))) goto done;
  if (json_array_size(olist)) {
    hub_ctx ctx = {db_data_dir(), store, NULL, NULL, 0, 1};
    if ((rc = xetsrv_init(&ctx))) goto done;
    view = blob_store_view(store, xetsrv_read_fallback(), (void *)(intptr_t)repo.id);
    if (!view) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      goto done;
    }
  }
  for (size_t i = 0; i < json_array_size(olist) && !rc; i++) {
    json_t *e = json_array_get(olist, i);
    rc = write_object(o->out_fd, view, json_string_value(json_object_get(e, "oid")),
                      (uint64_t)json_integer_value(json_object_get(e, "size")));
  }

done:
  if (view) blob_store_view_free(view);
  blob_store_free(store);
  repo_free(sh);
  repo_free(h);
  free(args);
  free(text);
  json_decref(man);
  json_decref(names);
  json_decref(refs);
  json_decref(objs);
  json_decref(olist);
  if (*tmp) bundle__rmtree(tmp);
  return rc;
}
