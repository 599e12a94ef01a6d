/* Uploads: preupload/{rev} (upload mode per file) and commit/{rev} (NDJSON → one CAS). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/attrs.h"
#include "api/ndjson.h"
#include "blob/blob.h"
#include "db/objects.h"
#include "gov/gov.h"
#include "events/events.h"
#include "util/error.h"
#include "xetsrv/xetsrv.h"

/* Files at least this big go to LFS even when no .gitattributes rule names them. */
#define PREUPLOAD_LFS_MIN (10 * 1024 * 1024)

/* Callers below write permission may still open pull requests (or add to one) when they
 * are contributors; everything else needs write: the one rule, auth_may_write_ref. `rev`
 * is the revision written ("main", "refs/pr/3"), ignored for a new pull request. */
static int require_write(hub_req *r, int create_pr, const char *rev) {
  char full[HUB_MAX_PATH + 16];
  if (!create_pr && rev)
    snprintf(full, sizeof full, "%s%s", strncmp(rev, "refs/", 5) ? "refs/heads/" : "", rev);
  if (auth_may_write_ref(r->repo_perm, create_pr ? NULL : rev ? full : "refs/heads/", AUTH_REF_API))
    return 0;
  if (!r->who.authenticated)
    return hub_error_set(HUB_EAUTH, "You must be authenticated to write to %s/%s", r->repo.ns,
                         r->repo.name);
  return hub_error_set(HUB_EFORBIDDEN, "You don't have the rights to write to %s/%s%s", r->repo.ns,
                       r->repo.name,
                       r->who.token_role == PERM_READ ? " (this token is read-only)" : "");
}

/* Shared start of preupload and commit: authorize, open the repo, decode {rev}. */
static int write_prologue(hub_req *r, int create_pr, repo_handle **h, const char **rev) {
  int rc;
  if (!(*rev = api_join_rest(r, 0, r->nrest))) return hub_error_code();
  if ((rc = require_write(r, create_pr, *rev)) || (rc = api_repo_open(r, h))) return rc;
  return 0;
}

/* Text of a file at a commit, or NULL (absent / error). Owned by the request. */
static char *file_text(hub_req *r, repo_handle *h, const char *sha, const char *path) {
  void *data = NULL;
  size_t n = 0;
  if (repo_read_path(h, sha, path, &data, &n)) return NULL;
  http_cleanup_add(r, free, data);
  return data;
}

static int sample_is_binary(const char *b64) {
  if (!b64) return 0;
  size_t n = strlen(b64);
  if (n > 4096) n = 4096;
  unsigned char buf[3200];
  int m = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)(n & ~(size_t)3));
  for (int i = 0; i < m; i++) {
    /* EVP_DecodeBlock turns '=' padding into trailing zero bytes: ignore those. */
    if (buf[i] == 0 && i < m - 2) return 1;
  }
  return 0;
}

static int h_preupload(hub_req *r) {
  int create_pr = http_param_bool(r, "create_pr", 0);
  repo_handle *h;
  const char *rev;
  int rc = write_prologue(r, create_pr, &h, &rev);
  if (rc) return rc;
  char sha[41];
  if ((rc = repo_resolve(h, rev, sha, NULL))) return rc;
  json_t *b = http_body_json(r);
  if (!b) return HUB_EINVALID;
  json_t *files = json_object_get(b, "files");
  if (!json_is_array(files)) return hub_error_set(HUB_EINVALID, "files must be a list");
  const char *attrs = json_string_value(json_object_get(b, "gitAttributes"));
  if (!attrs) attrs = file_text(r, h, sha, ".gitattributes");
  const char *ignore = json_string_value(json_object_get(b, "gitIgnore"));
  if (!ignore) ignore = file_text(r, h, sha, ".gitignore");
  json_t *out = json_array(), *f;
  size_t i;
  json_array_foreach(files, i, f) {
    const char *path = json_string_value(json_object_get(f, "path"));
    if (!path) {
      json_decref(out);
      return hub_error_set(HUB_EINVALID, "files[%zu].path is required", i);
    }
    json_int_t size = json_integer_value(json_object_get(f, "size"));
    int lfs = size > 0 && (attrs_is_lfs(attrs, path) || size >= PREUPLOAD_LFS_MIN ||
                           sample_is_binary(json_string_value(json_object_get(f, "sample"))));
    json_t *oid = json_null();
    repo_entry e;
    if (repo_stat(h, sha, path, &e) == 0) {
      if (e.type == REPO_ENTRY_FILE && e.is_lfs && lfs)
        oid = json_string(e.lfs_oid);
      else if (e.type == REPO_ENTRY_FILE && !e.is_lfs && !lfs)
        oid = json_string(e.oid);
      repo_entry_dispose(&e);
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:b, s:o}", "path", path, "uploadMode",
                                         lfs ? "lfs" : "regular", "shouldIgnore",
                                         attrs_is_ignored(ignore, path), "oid", oid));
  }
  json_t *resp = json_pack("{s:o, s:s}", "files", out, "commitOid", sha);
  return http_reply_json(r, 200, resp);
}

/* Add ".gitattributes" lines for LFS paths no rule covers, so git clients smudge them. */
static char *extend_attributes(hub_req *r, repo_handle *h, const char *sha, const ndjson_commit *c,
                               size_t *out_len) {
  const char *cur = file_text(r, h, sha, ".gitattributes");
  hub_buf b = HUB_BUF_INIT;
  int added = 0;
  for (size_t i = 0; i < c->nops; i++) {
    const ndjson_op *op = &c->ops[i];
    if (op->kind != NDJSON_OP_LFS_FILE || attrs_is_lfs(cur, op->path) ||
        (b.ptr && attrs_is_lfs(b.ptr, op->path)))
      continue;
    if (!added) {
      hub_buf_puts(&b, cur ? cur : "");
      if (b.len && b.ptr[b.len - 1] != '\n') hub_buf_putc(&b, '\n');
    }
    /* Escape glob characters and spaces so the line names exactly this path. */
    for (const char *p = op->path; *p; p++) {
      if (strchr("*?[]\\ \t!#", *p)) hub_buf_putc(&b, '\\');
      hub_buf_putc(&b, *p);
    }
    hub_buf_puts(&b, " filter=lfs diff=lfs merge=lfs -text\n");
    added = 1;
  }
  if (!added || b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  *out_len = b.len;
  char *s = hub_buf_detach(&b);
  http_cleanup_add(r, free, s);
  return s;
}

static void json_release(void *j) {
  json_decref(j);
}

static void free_commit(void *c) {
  ndjson_commit_free(c);
}

/* Both upload routes refuse a caller who may not write before reading the body (the start
 * call of on_body): the router only knows they need read access, since contributors may
 * upload into a pull request (?create_pr=1). */
static int on_preupload_body(hub_req *r, const char *data, size_t len) {
  return len ? 0
             : require_write(r, http_param_bool(r, "create_pr", 0), api_join_rest(r, 0, r->nrest));
}

/* ---- streamed commit bodies --------------------------------------------------------------
 * The NDJSON body is parsed line by line as it arrives (on the event thread); only the
 * unfinished line is in memory, drawn from the process-wide body budget. Decoded contents of
 * "file" operations stay in memory up to HUB_COMMIT_MEM_CONTENTS per commit; the rest are
 * appended to an unlinked spool file under <data>/tmp, and the handler writes them as blobs
 * one at a time. A commit of many inline files never needs its body in memory. */
struct commit_body {
  ndjson_stream *s;
  int fd;            /* spool of file contents, -1 until the first one */
  uint64_t spooled;  /* bytes in the spool */
  uint64_t received; /* body bytes so far */
  size_t mem;        /* decoded contents kept in memory */
};

static void commit_body_free(void *p) {
  struct commit_body *b = p;
  ndjson_stream_free(b->s);
  if (b->fd >= 0) close(b->fd);
  free(b);
}

static int open_spool(int *out) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/tmp", db_data_dir());
  /* O_TMPFILE: no name, nothing to clean up after a crash. Fallback: create + unlink. */
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    char path[4300];
    snprintf(path, sizeof path, "%s/commit-body-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
  }
  if (fd < 0)
    return hub_error_set(HUB_ERROR, "cannot create spool file in %s: %s", dir, strerror(errno));
  *out = fd;
  return 0;
}

/* ndjson op callback: move a file's contents to the spool once the in-memory share is used. */
static int spill(void *payload, ndjson_op *op) {
  struct commit_body *b = payload;
  int rc;
  if (op->kind != NDJSON_OP_FILE || !op->content_len) return 0;
  if (op->content_len <= (size_t)HUB_COMMIT_MEM_CONTENTS - b->mem) {
    b->mem += op->content_len;
    return 0;
  }
  if (b->fd < 0 && (rc = open_spool(&b->fd))) return rc;
  for (size_t off = 0; off < op->content_len;) {
    ssize_t w = pwrite(b->fd, op->content + off, op->content_len - off, (off_t)(b->spooled + off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return hub_error_set(HUB_ERROR, "writing commit spool: %s", strerror(errno));
    off += (size_t)w;
  }
  op->content_off = (int64_t)b->spooled;
  b->spooled += op->content_len;
  free(op->content);
  op->content = NULL;
  return 0;
}

static int on_commit_body(hub_req *r, const char *data, size_t len) {
  struct commit_body *b = r->state;
  int rc;
  if (!b) { /* the start call, before any body byte is read */
    if ((rc = require_write(r, http_param_bool(r, "create_pr", 0), api_join_rest(r, 0, r->nrest))))
      return rc;
    if (!(b = calloc(1, sizeof *b))) return hub_error_set(HUB_ERROR, "out of memory");
    b->fd = -1;
    http_cleanup_add(r, commit_body_free, b);
    r->state = b;
    if ((rc = ndjson_stream_new(&b->s, spill, b))) return rc;
  }
  if (len > (uint64_t)HUB_MAX_COMMIT_BODY - b->received)
    return hub_error_set(HUB_ETOOBIG,
                         "Commit body too large (limit %ld bytes); upload large files through LFS",
                         (long)HUB_MAX_COMMIT_BODY);
  b->received += len;
  /* The unfinished line may grow by the chunk, and parsing a line copies it about twice
   * more (the JSON string, the decoded contents). */
  size_t line = ndjson_stream_buffered(b->s) + len;
  if ((rc = http_body_hold(r, 3 * line + b->mem))) return rc;
  rc = ndjson_stream_feed(b->s, data, len);
  http_body_hold(r, ndjson_stream_buffered(b->s) + b->mem); /* shrinking cannot fail */
  return rc;
}

/* A spooled file's contents, written as a blob: op->oid gets its id for REPO_OP_ADD_BLOB. */
static int unspool(repo_handle *h, const struct commit_body *b, ndjson_op *op) {
  unsigned char *buf = malloc(op->content_len);
  if (!buf) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = 0;
  for (size_t off = 0; off < op->content_len && !rc;) {
    ssize_t n = pread(b->fd, buf + off, op->content_len - off, (off_t)op->content_off + (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      rc = hub_error_set(HUB_ERROR, "reading commit spool: %s", n ? strerror(errno) : "short");
    else
      off += (size_t)n;
  }
  if (!rc) rc = repo_blob_write(h, buf, op->content_len, op->oid);
  free(buf);
  return rc;
}

/* May this commit name LFS object (oid, size)? The one rule the pre-receive hook applies
 * too (db_objects_may_reference, docs/lfs.md); size < 0: any. On yes, xetsrv queues the
 * object's Xet conversion when the repo has Xet on (its answer is not the rule). */
static int lfs_may_reference(hub_req *r, const char *oid, int64_t size, int64_t *have) {
  int rc = db_objects_may_reference(r->repo.id, oid, size, have);
  int64_t unused;
  if (rc) return rc;
  xetsrv_lfs_stat(&r->repo, oid, &unused);
  return 0;
}

/* A "file" whose bytes are a git-lfs pointer is served as that LFS object (repo/tree.c):
 * it may only name an object this repo references, exactly as an lfsFile op — else any
 * sha256 known to be in the store could be read back through a repo of one's own. */
static int check_pointer_file(hub_req *r, const struct commit_body *b, const ndjson_op *op) {
  if (op->content_len >= REPO_LFS_POINTER_MAX) return 0;
  char small[REPO_LFS_POINTER_MAX];
  const void *data = op->content;
  if (!data && op->content_len) { /* spooled */
    for (size_t off = 0; off < op->content_len;) {
      ssize_t n =
          pread(b->fd, small + off, op->content_len - off, (off_t)op->content_off + (off_t)off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return hub_error_set(HUB_ERROR, "reading commit spool: %s", n ? strerror(errno) : "short");
      off += (size_t)n;
    }
    data = small;
  }
  char oid[65];
  uint64_t size = 0;
  int64_t have = 0;
  if (!data || !repo_lfs_pointer_parse(data, op->content_len, oid, &size)) return 0;
  /* A size past INT64_MAX matches nothing (it must not read as "any size"). */
  int rc = lfs_may_reference(r, oid, size > INT64_MAX ? INT64_MAX : (int64_t)size, &have);
  if (rc && rc != HUB_ENOTFOUND) return rc;
  if (rc)
    return hub_error_set(HUB_EINVALID,
                         "'%s' is an LFS pointer to an object that was not uploaded to this "
                         "repository; upload it first",
                         op->path);
  return 0;
}

typedef struct {
  hub_req *r;
  const char *ref; /* "refs/pr/N": the number may change when two PRs race for it */
  const char *title, *target;
} pr_open;

static int pr_open_record(void *payload) {
  pr_open *p = payload;
  return gov_pr_opened(&p->r->repo, &p->r->who, atoi(p->ref + strlen("refs/pr/")), p->title,
                       p->target);
}

/* PR and discussion numbers are shared: past both the refs/pr/ refs and the discussions. */
static int next_pr_number(hub_req *r, repo_handle *h, int *out) {
  int n = 0, rc = repo_next_pr_number(h, out);
  if (!rc) rc = gov_next_num(&r->repo, &n);
  if (!rc && n > *out) *out = n;
  return rc;
}

static int h_commit(hub_req *r) {
  int create_pr = http_param_bool(r, "create_pr", 0);
  repo_handle *h;
  const char *rev;
  int rc = write_prologue(r, create_pr, &h, &rev);
  if (rc) return rc;
  struct commit_body *b = r->state;
  if (!b) return hub_error_set(HUB_ERROR, "commit body was not started");
  ndjson_commit *c = NULL;
  if ((rc = ndjson_stream_finish(b->s, &c))) return rc;
  http_cleanup_add(r, free_commit, c);
  if (c->nops == 0 && !create_pr)
    return hub_error_set(HUB_EINVALID, "A commit needs at least one operation");

  char base[41], ref[256], pr_target[256];
  char *refname = NULL;
  if ((rc = repo_resolve(h, rev, base, &refname))) return rc;
  int is_branch =
      refname && (!strncmp(refname, "refs/heads/", 11) || !strncmp(refname, "refs/pr/", 8));
  if (!create_pr && !is_branch) {
    free(refname);
    return hub_error_set(HUB_EINVALID, "Cannot commit to '%s': not a branch", rev);
  }
  int pr_num = 0;
  if (create_pr) {
    if ((rc = next_pr_number(r, h, &pr_num))) {
      free(refname);
      return rc;
    }
    snprintf(ref, sizeof ref, "refs/pr/%d", pr_num);
    /* The PR targets the branch it started from (the default branch for a commit id). */
    snprintf(pr_target, sizeof pr_target, "%s",
             refname && !strncmp(refname, "refs/heads/", 11) ? refname + 11 : "main");
  } else {
    snprintf(ref, sizeof ref, "%s", refname);
  }
  free(refname);
  /* The resolved ref (a tag name could shadow "refs/pr/…" text): the rule again. */
  if (!create_pr && (rc = require_write(r, 0, ref))) return rc;
  if (!create_pr && (rc = gov_check_commit(&r->repo, ref))) return rc;
  if (!create_pr && (rc = gov_check_pr_commit(&r->repo, &r->who, r->repo_perm, ref))) return rc;

  repo_op *ops = calloc(c->nops + 1, sizeof *ops);
  if (!ops) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, free, ops);
  size_t n = 0;
  for (size_t i = 0; i < c->nops; i++) {
    ndjson_op *op = &c->ops[i];
    repo_op *o = &ops[n++];
    o->path = op->path;
    switch (op->kind) {
    case NDJSON_OP_FILE:
      o->kind = REPO_OP_ADD;
      o->data = op->content;
      o->len = op->content_len;
      if ((rc = check_pointer_file(r, b, op))) return rc;
      if (!op->content && op->content_len) { /* spooled: written now, one file at a time */
        if ((rc = unspool(h, b, op))) return rc;
        o->kind = REPO_OP_ADD_BLOB;
        o->lfs_oid = op->oid;
      }
      break;
    case NDJSON_OP_LFS_FILE: {
      int64_t have = 0;
      /* Only objects this repo references (uploaded to it, or already in it): an oid
       * stored for another repo is not enough; a wrong size reads the same. */
      rc = lfs_may_reference(r, op->oid, op->size >= 0 ? op->size : -1, &have);
      if (rc && rc != HUB_ENOTFOUND) return rc;
      if (rc)
        return hub_error_set(HUB_EINVALID,
                             "LFS object %s for '%s' was not uploaded to this repository "
                             "with that size; upload it first",
                             op->oid, op->path);
      o->kind = REPO_OP_ADD_LFS;
      o->lfs_oid = op->oid;
      o->lfs_size = (uint64_t)have;
      break;
    }
    case NDJSON_OP_DELETED_FILE:
      o->kind = REPO_OP_DELETE_FILE;
      break;
    case NDJSON_OP_DELETED_FOLDER:
      o->kind = REPO_OP_DELETE_FOLDER;
      break;
    }
  }
  size_t alen = 0;
  char *attrs = extend_attributes(r, h, base, c, &alen);
  if (attrs) ops[n++] = (repo_op){REPO_OP_ADD, ".gitattributes", attrs, alen, NULL, 0};

  char email[HUB_MAX_USER_NAME + 32];
  snprintf(email, sizeof email, "%s@users.noreply.modelhub", r->who.name);
  repo_commit_req req = {0};
  req.ref = ref;
  req.parent_pin = c->parent_commit[0] ? c->parent_commit : NULL;
  req.create_from = create_pr ? base : NULL;
  req.author_name = r->who.name;
  req.author_email = email;
  req.summary = c->summary[0] ? c->summary : "Upload files";
  req.description = c->description;
  req.ops = ops;
  req.nops = n;
  char sha[41];
  req.must_create = create_pr;
  /* The spine records the move (event, audit entry, derived head) before we answer. */
  json_t *det = json_pack("{s:i}", "files", (int)c->nops);
  http_cleanup_add(r, json_release, det);
  events_ctx ev = {
      &r->repo, {&r->who, NULL, http_client_ip(r)}, "commit", "repo.commit", det, 0, NULL, NULL,
      NULL};
  /* A new pull request's discussion is written with its ref's event: no PR ref without it. */
  pr_open po = {r, ref, req.summary, pr_target};
  /* For the spine's consumers (webhooks): a pull request opened (docs/governance.md). */
  json_t *evd = NULL;
  if (create_pr) {
    ev.also = pr_open_record;
    ev.also_payload = &po;
    evd = json_pack("{s:i, s:s, s:b}", "num", pr_num, "action", "create", "isPullRequest", 1);
    http_cleanup_add(r, json_release, evd);
    ev.event_details = evd;
  }
  repo_recorder rec = events_recorder(&ev);
  req.record = &rec;
  rc = repo_commit(h, &req, sha);
  /* Two PRs opened at once may pick the same number: the loser takes the next one. */
  for (int tries = 0; create_pr && rc == HUB_EEXISTS && tries < 20; tries++) {
    if ((rc = next_pr_number(r, h, &pr_num))) return rc;
    snprintf(ref, sizeof ref, "refs/pr/%d", pr_num);
    json_object_set_new(evd, "num", json_integer(pr_num));
    rc = repo_commit(h, &req, sha);
  }
  if (rc) return rc;
  /* Derived metadata (card data, tags) follows on the event consumer; wait a little for
   * it so the answer usually sees it (never for the parsing itself). */
  if (!strcmp(ref, "refs/heads/main")) events_wait("index", ev.last_event, API_DERIVE_WAIT_MS);

  const char *url = api_repo_url(r, &r->repo);
  char curl[4096], prurl[4096];
  snprintf(curl, sizeof curl, "%s/commit/%s", url, sha);
  json_t *o = json_pack("{s:b, s:s, s:s, s:n}", "success", 1, "commitOid", sha, "commitUrl", curl,
                        "hookOutput");
  if (create_pr) {
    snprintf(prurl, sizeof prurl, "%s/discussions/%d", url, pr_num);
    json_object_set_new(o, "pullRequestUrl", json_string(prurl));
  } else {
    json_object_set_new(o, "pullRequestUrl", json_null());
  }
  return http_reply_json(r, 200, o);
}

const hub_route api_commit_routes[] = {
    {"POST", "/api/{type}/{repo}/preupload/{*}", h_preupload, NEED_REPO_READ, BODY_JSON,
     on_preupload_body, HUB_MAX_PREUPLOAD_BODY},
    {"POST", "/api/{type}/{repo}/commit/{*}", h_commit, NEED_REPO_READ, BODY_STREAM, on_commit_body,
     0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
