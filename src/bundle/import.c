/* `modelhub import`: verify everything into <data>/tmp, then publish (bundle.h).
 *
 * 1. Read the header and manifest, check the manifest's own sha256, then stream the git
 *    bundle and every object into the temp dir, hashing each against the manifest; the file
 *    must end right after the last object. Any flipped byte fails here: nothing published.
 * 2. Unbundle into a temp bare repo (git checks the pack), compare its refs with the
 *    manifest, check connectivity, and check that every LFS pointer of the bundled history
 *    has its object in the bundle with that size.
 * 3. Publish the objects into the blob store (content addressed, verified again on write;
 *    unreferenced objects are invisible to every repo).
 * 4. New repo: in ONE durable DB transaction (db_txn_outer_begin) the repo row, its
 *    repo_objects rows, and the ref transaction's events + audit entries (the spine's
 *    recorder runs in a savepoint of it); the git dir is renamed into place inside it. A
 *    crash before the COMMIT leaves no row (the renamed dir is unreachable); after it, the
 *    repo is complete. Existing repo: same refs → nothing to do; other refs → refused
 *    unless --force, which adds the objects and moves the refs through the ref
 *    transaction (expected = current values). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "blob/blob.h"
#include "bundle/internal.h"
#include "db/db.h"
#include "db/events.h"
#include "db/objects.h"
#include "events/events.h"
#include "repo/repo.h"
#include "util/error.h"

typedef struct {
  const char *ref;
  const char *id;
} ref_pair;

typedef struct {
  json_t *man; /* the parsed manifest (owned) */
  int type;
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1];
  int is_private;
  char gated[8];
  ref_pair *refs; /* borrowed from man */
  size_t nrefs;
  json_t *objects; /* borrowed: [{oid,size}] */
  json_t *byoid;   /* oid -> size (owned) */
  uint64_t git_size;
  const char *git_sha;
  char man_sha[65];
} manifest;

static void manifest_dispose(manifest *m) {
  free(m->refs);
  json_decref(m->man);
  json_decref(m->byoid);
}

/* Test hook (docs/mirror.md): MODELHUB_TEST_IMPORT_PAUSE=<stage> makes import print
 * "import paused at <stage>" to stderr and sleep, so a test can kill it there. */
static void pause_at(const char *stage) {
  const char *p = getenv("MODELHUB_TEST_IMPORT_PAUSE");
  if (!p || strcmp(p, stage)) return;
  fprintf(stderr, "import paused at %s\n", stage);
  fflush(stderr);
  sleep(30);
}

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > HUB_MAX_NAME || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.' ||
      strstr(s, "--") || strstr(s, ".."))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
      return 0;
  return 1;
}

static int hex_ok(const char *s, size_t n) {
  if (!s || strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

static int cmp_ref(const void *a, const void *b) {
  return strcmp(((const ref_pair *)a)->ref, ((const ref_pair *)b)->ref);
}

static int bad(const char *what) {
  return hub_error_set(HUB_EINVALID, "bundle refused: %s", what);
}

static int manifest_parse(manifest *m, const char *text, size_t len) {
  json_error_t je;
  json_t *repo, *refs, *git, *objs;
  const char *type = NULL, *id = NULL, *fmt = NULL, *gated = "";
  int version = 0, priv = 0;
  m->man = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!m->man) return bad("the manifest is not JSON");
  if (json_unpack(m->man, "{s:s, s:i, s:o, s:o, s:o, s:o}", "format", &fmt, "version", &version,
                  "repo", &repo, "refs", &refs, "git", &git, "objects", &objs) ||
      strcmp(fmt, "modelhub-bundle") || version != 1)
    return bad("not a modelhub bundle manifest of version 1");
  if (json_unpack(repo, "{s:s, s:s, s?b, s?s}", "type", &type, "id", &id, "private", &priv, "gated",
                  &gated) ||
      bundle__type_parse(type, &m->type))
    return bad("manifest: bad repo");
  const char *slash = strchr(id, '/');
  if (!slash || (size_t)(slash - id) > HUB_MAX_NAME || strlen(slash + 1) > HUB_MAX_NAME)
    return bad("manifest: bad repo id");
  snprintf(m->ns, sizeof m->ns, "%.*s", (int)(slash - id), id);
  snprintf(m->name, sizeof m->name, "%s", slash + 1);
  if (!name_ok(m->ns) || !name_ok(m->name)) return bad("manifest: bad repo id");
  if (strcmp(gated, "") && strcmp(gated, "auto") && strcmp(gated, "manual"))
    return bad("manifest: bad gated value");
  m->is_private = priv;
  snprintf(m->gated, sizeof m->gated, "%s", gated);
  json_int_t gsize = -1;
  if (json_unpack(git, "{s:I, s:s}", "size", &gsize, "sha256", &m->git_sha) || gsize <= 0 ||
      !hex_ok(m->git_sha, 64))
    return bad("manifest: bad git entry");
  m->git_size = (uint64_t)gsize;
  if (!json_is_array(refs) || !json_array_size(refs) || json_array_size(refs) > BUNDLE_MAX_REFS)
    return bad("manifest: bad refs");
  m->nrefs = json_array_size(refs);
  m->refs = calloc(m->nrefs, sizeof *m->refs);
  if (!m->refs) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < m->nrefs; i++) {
    ref_pair *p = &m->refs[i];
    if (json_unpack(json_array_get(refs, i), "[s, s]", &p->ref, &p->id) ||
        strncmp(p->ref, "refs/", 5) || strlen(p->ref) > 250 || !hex_ok(p->id, 40))
      return bad("manifest: bad ref");
  }
  qsort(m->refs, m->nrefs, sizeof *m->refs, cmp_ref);
  for (size_t i = 1; i < m->nrefs; i++)
    if (!strcmp(m->refs[i - 1].ref, m->refs[i].ref)) return bad("manifest: a ref is listed twice");
  if (!json_is_array(objs) || json_array_size(objs) > BUNDLE_MAX_OBJECTS)
    return bad("manifest: bad objects");
  m->objects = objs;
  m->byoid = json_object();
  if (!m->byoid) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < json_array_size(objs); i++) {
    const char *oid = NULL;
    json_int_t size = -1;
    if (json_unpack(json_array_get(objs, i), "{s:s, s:I}", "oid", &oid, "size", &size) ||
        !hex_ok(oid, 64) || size < 0 || json_object_get(m->byoid, oid))
      return bad("manifest: bad object entry");
    json_object_set_new(m->byoid, oid, json_integer(size));
  }
  return 0;
}

/* The declared sizes must fit the temp dir's free space: a bundle that lies about them (or
 * is simply too big) is refused before it fills the disk a running server writes to. */
static int check_space(const char *tmp, const manifest *m) {
  uint64_t need = m->git_size;
  for (size_t i = 0; i < json_array_size(m->objects); i++) {
    uint64_t s =
        (uint64_t)json_integer_value(json_object_get(json_array_get(m->objects, i), "size"));
    if (need > UINT64_MAX - s) return bad("the declared sizes need more temp space than exists");
    need += s;
  }
  struct statvfs fs;
  if (statvfs(tmp, &fs)) return hub_error_set(HUB_ERROR, "statvfs %s: %s", tmp, strerror(errno));
  uint64_t avail = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
  if (need > avail)
    return hub_error_set(HUB_EINVALID,
                         "bundle refused: it declares %llu bytes and the temp space of %s "
                         "has %llu free",
                         (unsigned long long)need, tmp, (unsigned long long)avail);
  return 0;
}

/* Step 1: header, manifest, git bundle and objects into `tmp`, each checked. */
static int receive(int fd, const char *tmp, manifest *m) {
  unsigned char hdr[16], want[32], got[32];
  unsigned dl = 0;
  char *text = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = md ? 0 : hub_error_set(HUB_ERROR, "out of memory");
  if (!rc) rc = bundle__read_exact(fd, hdr, sizeof hdr);
  if (!rc && memcmp(hdr, BUNDLE_MAGIC, 8)) rc = bad("not a modelhub bundle (bad magic)");
  uint64_t ml = 0;
  for (int i = 0; i < 8 && !rc; i++)
    ml = ml << 8 | hdr[8 + i];
  if (!rc && (ml == 0 || ml > BUNDLE_MANIFEST_MAX)) rc = bad("manifest length out of range");
  if (!rc && !(text = malloc(ml))) rc = hub_error_set(HUB_ERROR, "out of memory");
  if (!rc) rc = bundle__read_exact(fd, text, ml);
  if (!rc) rc = bundle__read_exact(fd, want, sizeof want);
  if (!rc && (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || !EVP_DigestUpdate(md, hdr, 16) ||
              !EVP_DigestUpdate(md, text, ml) || EVP_DigestFinal_ex(md, got, &dl) != 1))
    rc = hub_error_set(HUB_ERROR, "sha256");
  if (!rc && memcmp(want, got, 32)) rc = bad("the manifest does not match its sha256");
  if (!rc) {
    bundle__hex(m->man_sha, got, 32);
    rc = manifest_parse(m, text, ml);
  }
  free(text);
  if (!rc) rc = check_space(tmp, m);
  /* The git bundle, then each object, into files of the temp dir. */
  for (size_t i = 0; !rc && i <= json_array_size(m->objects); i++) {
    char path[4400], hex[65];
    const char *expect;
    uint64_t size;
    if (i == 0) {
      snprintf(path, sizeof path, "%s/git.bundle", tmp);
      expect = m->git_sha;
      size = m->git_size;
    } else {
      json_t *e = json_array_get(m->objects, i - 1);
      expect = json_string_value(json_object_get(e, "oid"));
      size = (uint64_t)json_integer_value(json_object_get(e, "size"));
      snprintf(path, sizeof path, "%s/objects/%s", tmp, expect);
    }
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
      rc = hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
      break;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) rc = hub_error_set(HUB_ERROR, "sha256");
    if (!rc) rc = bundle__copy(fd, out, size, md);
    close(out);
    if (!rc && EVP_DigestFinal_ex(md, got, &dl) != 1) rc = hub_error_set(HUB_ERROR, "sha256");
    if (!rc) {
      bundle__hex(hex, got, 32);
      if (strcmp(hex, expect))
        rc = i == 0 ? bad("the git bundle does not match its sha256")
                    : hub_error_set(HUB_EINVALID,
                                    "bundle refused: object %s does not match its sha256", expect);
    }
  }
  if (!rc) { /* nothing may follow the last object */
    char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
      ;
    if (r != 0) rc = bad("trailing bytes after the last object");
  }
  EVP_MD_CTX_free(md);
  return rc;
}

/* "<40 hex> <ref>" lines from `git bundle unbundle` must be exactly the manifest's refs. */
static int check_heads(const char *path, const manifest *m) {
  FILE *f = fopen(path, "r");
  char line[1200];
  size_t n = 0;
  int rc = 0;
  /* Each manifest ref once: a bundle listing one ref twice and another not at all would
   * otherwise count as equal. */
  if (!f) return hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
  unsigned char *seen = calloc(m->nrefs, 1);
  if (!seen) {
    fclose(f);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  while (!rc && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (strlen(line) < 42 || line[40] != ' ') continue;
    line[40] = 0;
    ref_pair key = {line + 41, NULL};
    ref_pair *p = bsearch(&key, m->refs, m->nrefs, sizeof *m->refs, cmp_ref);
    if (!p || strcmp(p->id, line) || seen[p - m->refs]++)
      rc = bad("the git bundle's refs differ from the manifest");
    n++;
  }
  fclose(f);
  free(seen);
  if (!rc && n != m->nrefs) rc = bad("the git bundle's refs differ from the manifest");
  return rc;
}

static int pointer_known(const char *oid, uint64_t size, void *payload) {
  const manifest *m = payload;
  json_t *v = json_object_get(m->byoid, oid);
  if (!v || (uint64_t)json_integer_value(v) != size)
    return hub_error_set(HUB_EINVALID, "bundle refused: LFS object %s (%llu bytes) is not in it",
                         oid, (unsigned long long)size);
  return 0;
}

/* Step 2: the temp git repository. */
static int unpack_git(const char *tmp, const manifest *m, char *gitdir, size_t cap) {
  char bpath[4400], heads[4400];
  repo_handle *h = NULL;
  snprintf(gitdir, cap, "%s/repo.git", tmp);
  snprintf(bpath, sizeof bpath, "%s/git.bundle", tmp);
  snprintf(heads, sizeof heads, "%s/heads", tmp);
  const char *init[] = {"init", "--bare", "-q", "--initial-branch=main", gitdir, NULL};
  const char *unb[] = {"-C", gitdir, "bundle", "unbundle", bpath, NULL};
  int rc = bundle__git(init, -1);
  if (rc) return rc;
  int hfd = open(heads, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (hfd < 0) return hub_error_set(HUB_ERROR, "open %s: %s", heads, strerror(errno));
  rc = bundle__git(unb, hfd);
  close(hfd);
  if (rc) return hub_error_set(HUB_EINVALID, "bundle refused: %s", hub_error_msg());
  if ((rc = check_heads(heads, m))) return rc;
  /* Every ref's history complete (a bundle with prerequisites is refused here). */
  const char **rl = calloc(m->nrefs + 7, sizeof *rl);
  if (!rl) return hub_error_set(HUB_ERROR, "out of memory");
  size_t k = 0;
  rl[k++] = "-C";
  rl[k++] = gitdir;
  rl[k++] = "rev-list";
  rl[k++] = "--objects";
  rl[k++] = "--quiet";
  for (size_t i = 0; i < m->nrefs; i++)
    rl[k++] = m->refs[i].id;
  rc = bundle__git(rl, -1);
  free(rl);
  if (rc)
    return hub_error_set(HUB_EINVALID, "bundle refused: incomplete history: %s", hub_error_msg());
  if ((rc = repo_open(&h, gitdir))) return rc;
  rc = repo_lfs_pointers_each(h, pointer_known, (void *)m);
  repo_free(h);
  return rc;
}

/* Step 3: objects into the blob store. */
static int publish_objects(const char *tmp, const manifest *m, blob_store *store) {
  for (size_t i = 0; i < json_array_size(m->objects); i++) {
    json_t *e = json_array_get(m->objects, i);
    const char *oid = json_string_value(json_object_get(e, "oid"));
    int64_t size = json_integer_value(json_object_get(e, "size")), have = -1;
    if (blob_stat(store, oid, &have) == 0 && have == size) continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/objects/%s", tmp, oid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
    blob_writer *w = NULL;
    char *buf = malloc(BUNDLE_IO_BLOCK);
    int rc = buf ? blob_writer_open(store, &w) : hub_error_set(HUB_ERROR, "out of memory");
    ssize_t r;
    while (!rc && (r = read(fd, buf, BUNDLE_IO_BLOCK)) != 0) {
      if (r < 0) {
        if (errno == EINTR) continue;
        rc = hub_error_set(HUB_ERROR, "read %s: %s", path, strerror(errno));
        break;
      }
      rc = blob_writer_write(w, buf, (size_t)r);
    }
    char out[65];
    if (!rc)
      rc = blob_writer_commit(w, oid, size, out);
    else
      blob_writer_abort(w);
    free(buf);
    close(fd);
    unlink(path);
    if (rc) return rc;
  }
  return 0;
}

static int add_objects(int64_t repo_id, const manifest *m) {
  for (size_t i = 0; i < json_array_size(m->objects); i++) {
    json_t *e = json_array_get(m->objects, i);
    int rc = db_objects_add(repo_id, json_string_value(json_object_get(e, "oid")),
                            json_integer_value(json_object_get(e, "size")));
    if (rc) return rc;
  }
  return 0;
}

typedef struct {
  const manifest *m;
  json_t *current; /* ref -> id of the existing repo */
} cur_ctx;

static int collect_ref(const char *ref, const char *id, void *payload) {
  return json_object_set_new(payload, ref, json_string(id)) ? HUB_ERROR : 0;
}

/* Move the manifest's refs: expected "" (new repo) or the current values (--force), in
 * transactions of at most REPO_TXN_MAX_UPDATES refs, each recorded by the spine. */
static int move_refs(repo_handle *h, db_repo *repo, const manifest *m, json_t *current,
                     const char *actor) {
  json_t *det = json_pack("{s:s, s:I}", "bundle", m->man_sha, "objects",
                          (json_int_t)json_array_size(m->objects));
  json_t *evd = json_pack("{s:s}", "bundle", m->man_sha);
  int rc = det && evd ? 0 : hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; !rc && i < m->nrefs; i += REPO_TXN_MAX_UPDATES) {
    repo_txn *t = NULL;
    size_t queued = 0;
    if ((rc = repo_txn_begin(&t, h))) break;
    for (size_t j = i; !rc && j < m->nrefs && j < i + REPO_TXN_MAX_UPDATES; j++) {
      const char *cur =
          current ? json_string_value(json_object_get(current, m->refs[j].ref)) : NULL;
      if (cur && !strcmp(cur, m->refs[j].id)) continue;
      rc = repo_txn_update(t, m->refs[j].ref, cur ? cur : "", m->refs[j].id);
      queued++;
    }
    if (!rc && queued) {
      events_ctx ev = {repo, {NULL, actor, NULL}, "import", "repo.import", det, 0, NULL, NULL, evd};
      repo_recorder rec = events_recorder(&ev);
      rc = repo_txn_commit(t, &rec, NULL, NULL);
    }
    repo_txn_free(t);
  }
  json_decref(det);
  json_decref(evd);
  return rc;
}

static int fsync_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return hub_error_set(HUB_ERROR, "open %s: %s", path, strerror(errno));
  int rc = fsync(fd) ? hub_error_set(HUB_ERROR, "fsync %s: %s", path, strerror(errno)) : 0;
  close(fd);
  return rc;
}

static int mkparents(const char *dir) {
  char p[4200];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0750) && errno != EEXIST)
      return hub_error_set(HUB_ERROR, "mkdir %s: %s", p, strerror(errno));
    *s = '/';
  }
  return 0;
}

/* Step 4, new repo: everything visible in one durable transaction. */
static int create_repo(const manifest *m, const char *tmpgit, const db_account *owner,
                       const char *actor, db_repo *out) {
  char dir[4200], parent[4600];
  repo_handle *h = NULL;
  int moved = 0, rc;
  memset(out, 0, sizeof *out);
  out->type = m->type;
  snprintf(out->ns, sizeof out->ns, "%s", m->ns);
  snprintf(out->name, sizeof out->name, "%s", m->name);
  out->owner_id = owner->id;
  out->owner_is_org = owner->kind == ACCOUNT_ORG;
  out->is_private = m->is_private;
  snprintf(out->gated, sizeof out->gated, "%s", m->gated);
  if ((rc = db_txn_outer_begin())) return rc;
  if ((rc = db_repo_create(out))) goto fail;
  db_repo_dir(out->uid, dir, sizeof dir);
  /* For sweep_stale: the uid whose git dir this import is about to put in repos/. */
  snprintf(parent, sizeof parent, "%s", tmpgit);
  *strrchr(parent, '/') = 0;
  snprintf(parent + strlen(parent), sizeof parent - strlen(parent), "/pending");
  FILE *pf = fopen(parent, "w");
  if (!pf || fprintf(pf, "%s\n", out->uid) < 0 || fflush(pf) || fsync(fileno(pf))) {
    if (pf) fclose(pf);
    rc = hub_error_set(HUB_ERROR, "write %s: %s", parent, strerror(errno));
    goto fail;
  }
  fclose(pf);
  if ((rc = mkparents(dir))) goto fail;
  if (rename(tmpgit, dir)) {
    rc = hub_error_set(HUB_ERROR, "rename into %s: %s", dir, strerror(errno));
    goto fail;
  }
  moved = 1;
  snprintf(parent, sizeof parent, "%s", dir);
  *strrchr(parent, '/') = 0;
  if ((rc = fsync_dir(parent)) || (rc = add_objects(out->id, m))) goto fail;
  if ((rc = repo_open(&h, dir))) goto fail;
  if ((rc = move_refs(h, out, m, NULL, actor))) goto fail;
  repo_free(h);
  h = NULL;
  pause_at("commit");
  if ((rc = db_txn_outer_end(1))) goto fail_after;
  return 0;
fail:
  repo_free(h);
  db_txn_outer_end(0);
fail_after:
  if (moved) bundle__rmtree(dir);
  return rc;
}

/* Temp dirs of imports that died (kill -9, power cut): each live import holds an flock on
 * its dir's ".lock"; a dir whose lock can be taken is stale and removed, with the git dir
 * it had renamed into repos/ when no repo row names it (the crash came before COMMIT). */
static void sweep_stale(void) {
  char root[4200], dir[4600], p[4800], orphan[4200];
  snprintf(root, sizeof root, "%s/tmp", db_data_dir());
  DIR *d = opendir(root);
  struct dirent *e;
  if (!d) return;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "import-", 7)) continue;
    snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
    snprintf(p, sizeof p, "%s/.lock", dir);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0) { /* died before taking its lock: stale once a minute old */
      if (stat(dir, &st) || time(NULL) - st.st_mtime < 60) continue;
    } else if (flock(fd, LOCK_EX | LOCK_NB)) {
      close(fd);
      continue; /* a live import */
    }
    snprintf(p, sizeof p, "%s/pending", dir);
    FILE *f = fopen(p, "r");
    if (f) {
      db_repo r;
      char uid[64] = "";
      if (fgets(uid, sizeof uid, f) && (uid[strcspn(uid, "\n")] = 0, strlen(uid) == 24) &&
          db_repo_by_uid(uid, &r)) {
        db_repo_dir(uid, orphan, sizeof orphan);
        bundle__rmtree(orphan);
      }
      fclose(f);
    }
    bundle__rmtree(dir);
    if (fd >= 0) close(fd);
  }
  closedir(d);
}

int bundle_import(const bundle_import_opts *o) {
  char tmp[4200] = "", tmpgit[4400], objdir[4400], dir[4200];
  manifest m;
  blob_store *store = NULL;
  repo_handle *h = NULL;
  json_t *current = NULL;
  db_repo repo;
  db_account owner;
  int rc, lockfd = -1;
  memset(&m, 0, sizeof m);
  sweep_stale();
  if ((rc = bundle__tmpdir("import-", tmp, sizeof tmp))) return rc;
  char lockp[4400];
  snprintf(lockp, sizeof lockp, "%s/.lock", tmp);
  lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockfd < 0 || flock(lockfd, LOCK_EX)) {
    rc = hub_error_set(HUB_ERROR, "lock %s: %s", lockp, strerror(errno));
    goto done;
  }
  snprintf(objdir, sizeof objdir, "%s/objects", tmp);
  if (mkdir(objdir, 0700)) {
    rc = hub_error_set(HUB_ERROR, "mkdir %s: %s", objdir, strerror(errno));
    goto done;
  }
  if ((rc = receive(o->in_fd, tmp, &m))) goto done;
  if ((rc = unpack_git(tmp, &m, tmpgit, sizeof tmpgit))) goto done;
  pause_at("verified");
  if ((rc = blob_store_open_at(&store, ""))) goto done;
  if ((rc = publish_objects(tmp, &m, store))) goto done;
  pause_at("objects");

  if (db_repo_get(m.type, m.ns, m.name, &repo) == 0) {
    /* Existing repo: compare refs. */
    db_repo_dir(repo.uid, dir, sizeof dir);
    current = json_object();
    if (!current) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      goto done;
    }
    if ((rc = repo_open(&h, dir)) || (rc = repo_refs_each_raw(h, collect_ref, current))) goto done;
    size_t differ = 0;
    for (size_t i = 0; i < m.nrefs; i++) {
      const char *cur = json_string_value(json_object_get(current, m.refs[i].ref));
      if (!cur || strcmp(cur, m.refs[i].id)) differ++;
    }
    if (differ && !o->force) {
      rc = hub_error_set(HUB_EEXISTS,
                         "%s %s/%s exists with %zu ref(s) that differ from the bundle; "
                         "--force moves them",
                         bundle__type_name(m.type), m.ns, m.name, differ);
      goto done;
    }
    /* The objects first (a reference grants reads of identical bytes only), then the refs. */
    if ((rc = add_objects(repo.id, &m))) goto done;
    if (differ) {
      /* Objects only: unbundle writes the pack and no ref. */
      char bpath[4400];
      snprintf(bpath, sizeof bpath, "%s/git.bundle", tmp);
      const char *unb[] = {"-C", dir, "bundle", "unbundle", bpath, NULL};
      rc = bundle__git(unb, -1);
      if (rc || (rc = move_refs(h, &repo, &m, current, o->actor))) goto done;
      if (!o->quiet)
        printf("updated %zu ref(s) of %s %s/%s\n", differ, bundle__type_name(m.type), m.ns, m.name);
    } else if (!o->quiet) {
      printf("%s %s/%s already has the bundle's refs: nothing to do\n", bundle__type_name(m.type),
             m.ns, m.name);
    }
    goto done;
  }
  if (db_account_by_name(m.ns, &owner)) {
    rc = hub_error_set(HUB_ENOTFOUND,
                       "namespace '%s' does not exist on this hub: create the user "
                       "or organization first",
                       m.ns);
    goto done;
  }
  if ((rc = create_repo(&m, tmpgit, &owner, o->actor, &repo))) goto done;
  if (!o->quiet)
    printf("imported %s %s/%s: %zu ref(s), %zu object(s)\n", bundle__type_name(m.type), m.ns,
           m.name, m.nrefs, json_array_size(m.objects));

done:
  repo_free(h);
  json_decref(current);
  blob_store_free(store);
  manifest_dispose(&m);
  bundle__rmtree(tmp);
  if (lockfd >= 0) close(lockfd);
  return rc;
}
