/* Unit tests for src/repo/ (git storage) and src/util/pct. */
#include "unit.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo/repo.h"
#include "repo/repo_internal.h"
#include "util/error.h"
#include "util/pct.h"

#define LFS_OID "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

typedef struct {
  char dir[64];
  char path[128];
  char init_sha[41];
  repo_handle *h;
} fixture;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  strcpy(f->dir, "/tmp/test_repo.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/repos/ab/cd/r1.git", f->dir);
  assert_int_equal(repo_init_bare(f->path, "hub", "hub@localhost", f->init_sha), 0);
  assert_int_equal(repo_open(&f->h, f->path), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  repo_free(f->h);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static int commit_ops(repo_handle *h, const char *ref, const repo_op *ops, size_t n,
                      const char *summary, char out[41]) {
  repo_commit_req req = {0};
  req.ref = ref;
  req.author_name = "alice";
  req.author_email = "alice@example.com";
  req.summary = summary;
  req.ops = ops;
  req.nops = n;
  return repo_commit(h, &req, out);
}

static int add_file(repo_handle *h, const char *path, const char *content, char out[41]) {
  repo_op op = {REPO_OP_ADD, path, content, strlen(content), NULL, 0};
  return commit_ops(h, "refs/heads/main", &op, 1, path, out);
}

static void head(repo_handle *h, char out[41]) {
  assert_int_equal(repo_resolve(h, "main", out, NULL), 0);
}

typedef struct {
  char paths[32][128];
  int types[32];
  size_t n;
} listing;

static int collect(const repo_entry *e, void *payload) {
  listing *l = payload;
  assert_true(l->n < 32);
  snprintf(l->paths[l->n], sizeof l->paths[0], "%s", e->path);
  l->types[l->n++] = e->type;
  return 0;
}

static int has(const listing *l, const char *path, int type) {
  size_t i;
  for (i = 0; i < l->n; i++)
    if (!strcmp(l->paths[i], path) && l->types[i] == type) return 1;
  return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_init(void **state) {
  fixture *f = *state;
  listing l = {0};
  void *data = NULL;
  size_t len = 0, total = 0;
  repo_commit_info ci;
  char sha[41], *refname = NULL;

  assert_int_equal(strlen(f->init_sha), 40);
  assert_int_equal(repo_resolve(f->h, "HEAD", sha, &refname), 0);
  assert_string_equal(sha, f->init_sha);
  assert_string_equal(refname, "refs/heads/main");
  free(refname);

  assert_int_equal(repo_list(f->h, sha, "", 0, collect, &l), 0);
  assert_int_equal(l.n, 1);
  assert_true(has(&l, ".gitattributes", REPO_ENTRY_FILE));
  assert_int_equal(repo_read_path(f->h, sha, ".gitattributes", &data, &len), 0);
  assert_int_equal(len, strlen(repo_default_gitattributes()));
  assert_memory_equal(data, repo_default_gitattributes(), len);
  assert_non_null(strstr(data, "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"));
  assert_non_null(strstr(data, "saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n"));
  assert_non_null(strstr(data, "*.gguf filter=lfs diff=lfs merge=lfs -text\n"));
  free(data);

  assert_int_equal(repo_commit_info_get(f->h, sha, &ci), 0);
  assert_string_equal(ci.title, "Initial commit");
  assert_int_equal(ci.nparents, 0);
  assert_true(ci.date > 1600000000);
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_log(f->h, sha, 0, 0, NULL, NULL, &total), 0);
  assert_int_equal(total, 1);

  assert_int_equal(repo_init_bare(f->path, "hub", "hub@localhost", NULL), HUB_EEXISTS);
  {
    repo_handle *h2 = NULL;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.git", f->dir);
    assert_int_equal(repo_open(&h2, missing), HUB_EREPO);
    assert_null(h2);
  }
}

static void test_resolve(void **state) {
  fixture *f = *state;
  char c1[41], sha[41], pr[41], conv[41], shortsha[8], *refname = NULL;
  repo_op op = {REPO_OP_ADD, "x.txt", "x", 1, NULL, 0};
  repo_commit_req req = {0};

  assert_int_equal(add_file(f->h, "a.txt", "hello", c1), 0);
  assert_int_equal(repo_tag_create(f->h, "v1", "main", "release 1", "alice", "a@x", NULL), 0);
  assert_int_equal(repo_tag_create(f->h, "light", f->init_sha, NULL, NULL, NULL, NULL), 0);

  req.ref = "refs/pr/1";
  req.create_from = "main";
  req.author_name = "bob";
  req.author_email = "bob@x";
  req.summary = "pr";
  req.ops = &op;
  req.nops = 1;
  assert_int_equal(repo_commit(f->h, &req, pr), 0);
  req.ref = "refs/convert/parquet";
  assert_int_equal(repo_commit(f->h, &req, conv), 0);

  assert_int_equal(repo_resolve(f->h, "main", sha, &refname), 0);
  assert_string_equal(sha, c1);
  assert_string_equal(refname, "refs/heads/main");
  free(refname);
  assert_int_equal(repo_resolve(f->h, "refs/heads/main", sha, NULL), 0);
  assert_string_equal(sha, c1);
  assert_int_equal(repo_resolve(f->h, "v1", sha, &refname), 0); /* annotated, peeled */
  assert_string_equal(sha, c1);
  assert_string_equal(refname, "refs/tags/v1");
  free(refname);
  assert_int_equal(repo_resolve(f->h, "refs/tags/light", sha, NULL), 0);
  assert_string_equal(sha, f->init_sha);
  memcpy(shortsha, c1, 7);
  shortsha[7] = 0;
  assert_int_equal(repo_resolve(f->h, shortsha, sha, &refname), 0);
  assert_string_equal(sha, c1);
  assert_null(refname);
  assert_int_equal(repo_resolve(f->h, f->init_sha, sha, NULL), 0);
  assert_string_equal(sha, f->init_sha);
  assert_int_equal(repo_resolve(f->h, "HEAD", sha, NULL), 0);
  assert_string_equal(sha, c1);
  assert_int_equal(repo_resolve(f->h, "refs/pr/1", sha, NULL), 0);
  assert_string_equal(sha, pr);
  assert_int_equal(repo_resolve(f->h, "refs/convert/parquet", sha, NULL), 0);
  assert_string_equal(sha, conv);

  assert_int_equal(repo_resolve(f->h, "nope", sha, NULL), HUB_EREVISION);
  assert_int_equal(repo_resolve(f->h, "refs/pr/2", sha, NULL), HUB_EREVISION);
  assert_int_equal(repo_resolve(f->h, "", sha, NULL), HUB_EREVISION);
  assert_int_equal(repo_resolve(f->h, "abc", sha, NULL), HUB_EREVISION); /* < 4 hex */
  assert_int_equal(repo_resolve(f->h, "main~1", sha, NULL), HUB_EREVISION);
  assert_int_equal(repo_resolve(f->h, "0000000000000000000000000000000000000000", sha, NULL),
                   HUB_EREVISION);
  {
    char blob[41]; /* a blob id is not a revision */
    repo_entry e;
    assert_int_equal(repo_stat(f->h, c1, "a.txt", &e), 0);
    strcpy(blob, e.oid);
    repo_entry_dispose(&e);
    assert_int_equal(repo_resolve(f->h, blob, sha, NULL), HUB_EREVISION);
  }
}

static void test_resolve_segments(void **state) {
  fixture *f = *state;
  char sha[41], pr[41], feat[41], *rev = NULL;
  size_t used = 0;
  repo_op op = {REPO_OP_ADD, "config.json", "{}", 2, NULL, 0};
  repo_commit_req req = {0};

  req.ref = "refs/pr/1";
  req.create_from = "main";
  req.author_name = "bob";
  req.author_email = "bob@x";
  req.ops = &op;
  req.nops = 1;
  assert_int_equal(repo_commit(f->h, &req, pr), 0);
  assert_int_equal(repo_branch_create(f->h, "feature/x", "main", 0, NULL), 0);
  assert_int_equal(add_file(f->h, "f.txt", "f", NULL), 0);
  req.ref = "refs/heads/feature/x";
  req.create_from = NULL;
  assert_int_equal(repo_commit(f->h, &req, feat), 0);

  {
    const char *segs[] = {"refs", "pr", "1", "config.json"};
    assert_int_equal(repo_resolve_segments(f->h, segs, 4, sha, &rev, &used), 0);
    assert_int_equal(used, 3);
    assert_string_equal(sha, pr);
    assert_string_equal(rev, "refs/pr/1");
    free(rev);
  }
  {
    const char *segs[] = {"refs%2Fpr%2F1", "config.json"};
    assert_int_equal(repo_resolve_segments(f->h, segs, 2, sha, &rev, &used), 0);
    assert_int_equal(used, 1);
    assert_string_equal(sha, pr);
    assert_string_equal(rev, "refs/pr/1");
    free(rev);
  }
  {
    const char *segs[] = {"main", "a", "b.txt"};
    char m[41];
    head(f->h, m);
    assert_int_equal(repo_resolve_segments(f->h, segs, 3, sha, NULL, &used), 0);
    assert_int_equal(used, 1);
    assert_string_equal(sha, m);
  }
  {
    const char *segs[] = {"feature", "x", "config.json"};
    assert_int_equal(repo_resolve_segments(f->h, segs, 3, sha, &rev, &used), 0);
    assert_int_equal(used, 2);
    assert_string_equal(sha, feat);
    assert_string_equal(rev, "feature/x");
    free(rev);
  }
  {
    const char *segs[] = {"feature%2Fx", "sub%2Fdir"};
    assert_int_equal(repo_resolve_segments(f->h, segs, 2, sha, NULL, &used), 0);
    assert_int_equal(used, 1);
    assert_string_equal(sha, feat);
  }
  {
    const char *segs[] = {"feature", "sub%2Fx"}; /* a %2F segment never extends a ref */
    assert_int_equal(repo_resolve_segments(f->h, segs, 2, sha, NULL, &used), HUB_EREVISION);
  }
  {
    char shortsha[9];
    const char *segs[] = {shortsha, "config.json"};
    memcpy(shortsha, pr, 8);
    shortsha[8] = 0;
    assert_int_equal(repo_resolve_segments(f->h, segs, 2, sha, NULL, &used), 0);
    assert_int_equal(used, 1);
    assert_string_equal(sha, pr);
  }
  {
    const char *segs[] = {"HEAD"};
    assert_int_equal(repo_resolve_segments(f->h, segs, 1, sha, NULL, &used), 0);
    assert_int_equal(used, 1);
  }
  {
    const char *bad[] = {"ma%zzin", "x"};
    const char *nul[] = {"ma%00in"};
    const char *unknown[] = {"nope", "x"};
    assert_int_equal(repo_resolve_segments(f->h, bad, 2, sha, NULL, &used), HUB_EINVALID);
    assert_int_equal(repo_resolve_segments(f->h, nul, 1, sha, NULL, &used), HUB_EINVALID);
    assert_int_equal(repo_resolve_segments(f->h, unknown, 2, sha, NULL, &used), HUB_EREVISION);
    assert_int_equal(repo_resolve_segments(f->h, unknown, 0, sha, NULL, &used), HUB_EREVISION);
  }
}

static void test_commit_ops(void **state) {
  fixture *f = *state;
  char c[41], prev[41];
  listing l = {0};
  void *data = NULL;
  size_t len = 0;
  repo_commit_info ci;

  assert_int_equal(add_file(f->h, "a.txt", "one", c), 0);
  assert_int_equal(add_file(f->h, "sub/dir/b.txt", "bee", c), 0);
  assert_int_equal(add_file(f->h, "a.txt", "two", c), 0); /* overwrite */
  assert_int_equal(repo_read_path(f->h, c, "a.txt", &data, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(data, "two", 3);
  free(data);
  assert_int_equal(repo_commit_info_get(f->h, c, &ci), 0);
  assert_int_equal(ci.nparents, 1);
  assert_string_equal(ci.author_name, "alice");
  repo_commit_info_dispose(&ci);

  { /* message = summary + "\n\n" + description */
    repo_op op = {REPO_OP_ADD, "c.txt", "", 0, NULL, 0};
    repo_commit_req req = {0};
    req.ref = "refs/heads/main";
    req.author_name = "alice";
    req.author_email = "a@x";
    req.summary = "Add c";
    req.description = "Longer text\nhere";
    req.time = 1700000000;
    req.ops = &op;
    req.nops = 1;
    assert_int_equal(repo_commit(f->h, &req, c), 0);
    assert_int_equal(repo_commit_info_get(f->h, "main", &ci), 0);
    assert_string_equal(ci.title, "Add c");
    assert_string_equal(ci.message, "Add c\n\nLonger text\nhere");
    assert_int_equal(ci.date, 1700000000);
    repo_commit_info_dispose(&ci);
  }
  { /* ops apply in order within one commit */
    repo_op ops[] = {{REPO_OP_ADD, "tmp.txt", "t", 1, NULL, 0},
                     {REPO_OP_DELETE_FILE, "tmp.txt", NULL, 0, NULL, 0},
                     {REPO_OP_DELETE_FILE, "a.txt", NULL, 0, NULL, 0}};
    assert_int_equal(commit_ops(f->h, "refs/heads/main", ops, 3, "ordered", c), 0);
    assert_int_equal(repo_read_path(f->h, c, "tmp.txt", &data, &len), HUB_EENTRY);
    assert_int_equal(repo_read_path(f->h, c, "a.txt", &data, &len), HUB_EENTRY);
  }
  head(f->h, prev);
  {
    repo_op op = {REPO_OP_DELETE_FILE, "a.txt", NULL, 0, NULL, 0};
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "del", c), HUB_EENTRY);
    assert_non_null(strstr(hub_error_msg(), "A file with this name doesn't exist"));
    op.path = "sub"; /* a folder is not a file */
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "del", c), HUB_EENTRY);
    head(f->h, c);
    assert_string_equal(c, prev); /* failed commits are invisible */
  }
  {
    repo_op op = {REPO_OP_DELETE_FOLDER, "sub/", NULL, 0, NULL, 0};
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "rmdir", c), 0);
    assert_int_equal(repo_list(f->h, c, "", 1, collect, &l), 0);
    assert_int_equal(l.n, 2);
    assert_true(has(&l, ".gitattributes", REPO_ENTRY_FILE));
    assert_true(has(&l, "c.txt", REPO_ENTRY_FILE));
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "rmdir", c), HUB_EENTRY);
  }
  { /* deleting the last file of a folder removes the folder */
    repo_op op = {REPO_OP_DELETE_FILE, "x/y/z.txt", NULL, 0, NULL, 0};
    assert_int_equal(add_file(f->h, "x/y/z.txt", "z", c), 0);
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "rm", c), 0);
    memset(&l, 0, sizeof l);
    assert_int_equal(repo_list(f->h, c, "", 1, collect, &l), 0);
    assert_int_equal(l.n, 2);
  }
  { /* file/folder clashes and bad input */
    assert_int_equal(add_file(f->h, "c.txt/inner", "z", NULL), HUB_EINVALID);
    assert_int_equal(add_file(f->h, "../evil", "z", NULL), HUB_EINVALID);
    assert_int_equal(add_file(f->h, ".git/config", "z", NULL), HUB_EINVALID);
    assert_int_equal(add_file(f->h, "d/e.txt", "z", NULL), 0);
    assert_int_equal(add_file(f->h, "d", "z", NULL), HUB_EINVALID);
  }
  { /* missing ref without create_from; bad ref name */
    repo_op op = {REPO_OP_ADD, "a", "a", 1, NULL, 0};
    assert_int_equal(commit_ops(f->h, "refs/heads/nope", &op, 1, "x", c), HUB_EREVISION);
    assert_int_equal(commit_ops(f->h, "refs/heads/a..b", &op, 1, "x", c), HUB_EINVALID);
    assert_int_equal(commit_ops(f->h, "main", &op, 1, "x", c), HUB_EINVALID);
  }
  { /* an empty commit is still created */
    head(f->h, prev);
    assert_int_equal(commit_ops(f->h, "refs/heads/main", NULL, 0, "empty", c), 0);
    assert_string_not_equal(c, prev);
  }
}

static void test_lfs(void **state) {
  fixture *f = *state;
  char c[41], ptr[256], oid[65];
  repo_entry e;
  listing l = {0};
  void *data = NULL;
  size_t len = 0;
  uint64_t size = 0;
  int n;
  repo_op op = {REPO_OP_ADD_LFS, "model.safetensors", NULL, 0, LFS_OID, 548105171};

  assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "lfs", c), 0);
  n = repo_lfs_pointer_format(ptr, sizeof ptr, LFS_OID, 548105171);
  assert_true(n > 0);
  assert_int_equal(repo_stat(f->h, c, "model.safetensors", &e), 0);
  assert_int_equal(e.type, REPO_ENTRY_FILE);
  assert_true(e.is_lfs);
  assert_string_equal(e.lfs_oid, LFS_OID);
  assert_int_equal(e.size, 548105171);
  assert_int_equal(e.lfs_size, 548105171);
  assert_int_equal(e.pointer_size, (uint64_t)n);
  assert_string_equal(e.path, "model.safetensors");
  repo_entry_dispose(&e);
  assert_int_equal(repo_read_path(f->h, c, "model.safetensors", &data, &len), 0);
  assert_int_equal(len, (size_t)n);
  assert_memory_equal(data, ptr, len);
  free(data);
  assert_int_equal(repo_stat(f->h, c, ".gitattributes", &e), 0);
  assert_false(e.is_lfs);
  assert_int_equal(e.size, strlen(repo_default_gitattributes()));
  repo_entry_dispose(&e);
  assert_int_equal(repo_list(f->h, c, "model.safetensors", 0, collect, &l), 0);
  assert_int_equal(l.n, 1);

  /* pointer parsing */
  assert_int_equal(repo_lfs_pointer_parse(ptr, (size_t)n, oid, &size), 1);
  assert_int_equal(repo_lfs_pointer_parse(ptr, (size_t)n - 1, oid, &size), 0); /* no \n */
  assert_int_equal(repo_lfs_pointer_parse("hello", 5, oid, &size), 0);
  {
    const char ext[] = "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:aa\n"
                       "oid sha256:" LFS_OID "\nsize 12\n";
    const char upper[] =
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393\n"
        "size 12\n";
    const char nosize[] = "version https://git-lfs.github.com/spec/v1\noid sha256:" LFS_OID "\n";
    const char badsize[] = "version https://git-lfs.github.com/spec/v1\n"
                           "oid sha256:" LFS_OID "\nsize -1\n";
    /* pointer extensions (ext-N-name lines) are not accepted: one strict parser */
    assert_int_equal(repo_lfs_pointer_parse(ext, sizeof ext - 1, oid, &size), 0);
    assert_int_equal(repo_lfs_pointer_parse(upper, sizeof upper - 1, oid, &size), 0);
    assert_int_equal(repo_lfs_pointer_parse(nosize, sizeof nosize - 1, oid, &size), 0);
    assert_int_equal(repo_lfs_pointer_parse(badsize, sizeof badsize - 1, oid, &size), 0);
  }
  op.lfs_oid = "abc";
  assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "lfs", c), HUB_EINVALID);
}

static void test_list(void **state) {
  fixture *f = *state;
  char c[41];
  listing l = {0};
  repo_entry e;
  repo_op ops[] = {{REPO_OP_ADD, "README.md", "# hi", 4, NULL, 0},
                   {REPO_OP_ADD, "config.json", "{}", 2, NULL, 0},
                   {REPO_OP_ADD, "sub/a.txt", "a", 1, NULL, 0},
                   {REPO_OP_ADD_LFS, "sub/deep/b.bin", NULL, 0, LFS_OID, 7}};

  assert_int_equal(commit_ops(f->h, "refs/heads/main", ops, 4, "files", c), 0);
  assert_int_equal(repo_list(f->h, c, "", 0, collect, &l), 0);
  assert_int_equal(l.n, 4);
  assert_true(has(&l, ".gitattributes", REPO_ENTRY_FILE));
  assert_true(has(&l, "README.md", REPO_ENTRY_FILE));
  assert_true(has(&l, "config.json", REPO_ENTRY_FILE));
  assert_true(has(&l, "sub", REPO_ENTRY_DIR));

  memset(&l, 0, sizeof l);
  assert_int_equal(repo_list(f->h, c, "", 1, collect, &l), 0);
  assert_int_equal(l.n, 7);
  assert_true(has(&l, "sub/a.txt", REPO_ENTRY_FILE));
  assert_true(has(&l, "sub/deep", REPO_ENTRY_DIR));
  assert_true(has(&l, "sub/deep/b.bin", REPO_ENTRY_FILE));

  memset(&l, 0, sizeof l);
  assert_int_equal(repo_list(f->h, c, "sub", 0, collect, &l), 0);
  assert_int_equal(l.n, 2);
  assert_true(has(&l, "sub/a.txt", REPO_ENTRY_FILE));
  assert_true(has(&l, "sub/deep", REPO_ENTRY_DIR));

  memset(&l, 0, sizeof l);
  assert_int_equal(repo_list(f->h, c, "sub/", 1, collect, &l), 0);
  assert_int_equal(l.n, 3);

  memset(&l, 0, sizeof l);
  assert_int_equal(repo_list(f->h, c, "sub/a.txt", 1, collect, &l), 0);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.paths[0], "sub/a.txt");

  assert_int_equal(repo_list(f->h, c, "nope", 0, collect, &l), HUB_EENTRY);
  assert_int_equal(repo_list(f->h, c, "sub/nope/x", 0, collect, &l), HUB_EENTRY);
  assert_int_equal(repo_list(f->h, "0123456789012345678901234567890123456789", "", 0, collect, &l),
                   HUB_EREVISION);

  assert_int_equal(repo_stat(f->h, c, "sub", &e), 0);
  assert_int_equal(e.type, REPO_ENTRY_DIR);
  assert_int_equal(strlen(e.oid), 40);
  assert_int_equal(e.size, 0);
  repo_entry_dispose(&e);
  assert_int_equal(repo_stat(f->h, c, "", &e), 0);
  assert_int_equal(e.type, REPO_ENTRY_DIR);
  repo_entry_dispose(&e);
  assert_int_equal(repo_stat(f->h, c, "sub/deep/b.bin", &e), 0);
  assert_true(e.is_lfs);
  assert_int_equal(e.size, 7);
  {
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(repo_read_blob(f->h, e.oid, &data, &len), 0);
    assert_int_equal(len, e.pointer_size);
    free(data);
    assert_int_equal(repo_read_blob(f->h, "0123456789012345678901234567890123456789", &data, &len),
                     HUB_EENTRY);
    assert_int_equal(repo_read_path(f->h, c, "sub", &data, &len), HUB_EENTRY);
  }
  repo_entry_dispose(&e);
  assert_int_equal(repo_stat(f->h, c, "missing", &e), HUB_EENTRY);
}

static int stop_cb(const repo_entry *e, void *payload) {
  (void)e;
  return ++*(int *)payload == 2 ? 42 : 0;
}

static void test_list_stop(void **state) {
  fixture *f = *state;
  char c[41];
  int n = 0;
  repo_op ops[] = {{REPO_OP_ADD, "a", "a", 1, NULL, 0}, {REPO_OP_ADD, "b", "b", 1, NULL, 0}};
  assert_int_equal(commit_ops(f->h, "refs/heads/main", ops, 2, "ab", c), 0);
  assert_int_equal(repo_list(f->h, c, "", 1, stop_cb, &n), 42);
  assert_int_equal(n, 2);
}

static void test_parent_pin(void **state) {
  fixture *f = *state;
  char c1[41], c2[41], pin[8];
  repo_op op = {REPO_OP_ADD, "p.txt", "p", 1, NULL, 0};
  repo_commit_req req = {0};

  head(f->h, c1);
  req.ref = "refs/heads/main";
  req.author_name = "alice";
  req.author_email = "a@x";
  req.summary = "pinned";
  req.ops = &op;
  req.nops = 1;
  memcpy(pin, c1, 7);
  pin[7] = 0;
  req.parent_pin = pin;
  assert_int_equal(repo_commit(f->h, &req, c2), 0);
  req.parent_pin = c1; /* now stale */
  assert_int_equal(repo_commit(f->h, &req, NULL), HUB_ECONFLICT);
  assert_string_equal(hub_error_msg(),
                      "The branch was updated since you opened this page. Please refresh and "
                      "try again.");
  req.parent_pin = c2;
  assert_int_equal(repo_commit(f->h, &req, NULL), 0);
  req.parent_pin = "abcd"; /* too short */
  assert_int_equal(repo_commit(f->h, &req, NULL), HUB_EINVALID);
  req.parent_pin = "zzzzzzz";
  assert_int_equal(repo_commit(f->h, &req, NULL), HUB_EINVALID);
}

/* ---- the ref transaction (txn.c) ---- */

typedef struct {
  int calls, fail;
  size_t n;
  repo_ref_update u[4];
  char refs[4][64];
} recorder_log;

static int record_cb(repo_handle *h, const repo_ref_update *u, size_t n, void *payload) {
  recorder_log *l = payload;
  (void)h;
  l->calls++;
  l->n = n;
  for (size_t i = 0; i < n && i < 4; i++) {
    l->u[i] = u[i];
    snprintf(l->refs[i], sizeof l->refs[i], "%s", u[i].ref);
  }
  return l->fail ? hub_error_set(HUB_ERROR, "record failed") : 0;
}

static int ref_exists(repo_handle *h, const char *ref) {
  char sha[41];
  return repo_resolve(h, ref, sha, NULL) == 0;
}

static void test_txn(void **state) {
  fixture *f = *state;
  char c1[41], main_now[41];
  recorder_log log = {0};
  repo_recorder rec = {record_cb, &log};
  repo_txn *t = NULL;

  assert_int_equal(add_file(f->h, "a.txt", "a", c1), 0);
  /* A wrong expectation moves nothing and records nothing. */
  assert_int_equal(repo_txn_begin(&t, f->h), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/x", "", c1), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/main", f->init_sha, f->init_sha), 0);
  assert_int_equal(repo_txn_commit(t, &rec, NULL, NULL), HUB_ECONFLICT);
  repo_txn_free(t);
  assert_int_equal(log.calls, 0);
  assert_false(ref_exists(f->h, "refs/heads/x"));
  /* A failing recorder puts every ref back: all or nothing. */
  log.fail = 1;
  assert_int_equal(repo_txn_begin(&t, f->h), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/x", "", c1), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/main", c1, f->init_sha), 0);
  assert_int_equal(repo_txn_commit(t, &rec, NULL, NULL), HUB_ERROR);
  repo_txn_free(t);
  assert_int_equal(log.calls, 1);
  assert_false(ref_exists(f->h, "refs/heads/x"));
  head(f->h, main_now);
  assert_string_equal(main_now, c1);
  /* Applied: the recorder sees each move with its old and new value. */
  log.fail = 0;
  assert_int_equal(repo_txn_begin(&t, f->h), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/main", NULL, f->init_sha), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/x", "", c1), 0);
  assert_int_equal(repo_txn_update(t, "refs/heads/x", "", c1), HUB_EINVALID); /* twice */
  assert_int_equal(repo_txn_commit(t, &rec, NULL, NULL), 0);
  repo_txn_free(t);
  assert_int_equal(log.n, 2);
  assert_string_equal(log.refs[0], "refs/heads/main"); /* name order */
  assert_string_equal(log.u[0].old, c1);
  assert_string_equal(log.u[0].new_, f->init_sha);
  assert_string_equal(log.refs[1], "refs/heads/x");
  assert_string_equal(log.u[1].old, "");
  /* Delete: "" new value; a missing ref → HUB_EREVISION. */
  assert_int_equal(repo_ref_delete(f->h, "refs/heads/x", &rec), 0);
  assert_string_equal(log.u[0].new_, "");
  assert_string_equal(log.u[0].old, c1);
  assert_int_equal(repo_ref_delete(f->h, "refs/heads/x", &rec), HUB_EREVISION);
}

/* A commit whose record fails is not visible: the ref goes back. */
static void test_commit_record_fails(void **state) {
  fixture *f = *state;
  char before[41], after[41];
  recorder_log log = {0};
  repo_recorder rec = {record_cb, &log};
  repo_op op = {REPO_OP_ADD, "r.txt", "r", 1, NULL, 0};
  repo_commit_req req = {0};

  head(f->h, before);
  req.ref = "refs/heads/main";
  req.author_name = "alice";
  req.author_email = "a@x";
  req.summary = "recorded";
  req.ops = &op;
  req.nops = 1;
  req.record = &rec;
  log.fail = 1;
  assert_int_equal(repo_commit(f->h, &req, NULL), HUB_ERROR);
  head(f->h, after);
  assert_string_equal(after, before);
  log.fail = 0;
  assert_int_equal(repo_commit(f->h, &req, after), 0);
  assert_int_equal(log.calls, 2);
  assert_string_equal(log.u[0].old, before);
  assert_string_equal(log.u[0].new_, after);
}

typedef struct {
  const char *path;
  int idx;
  int rc;
} worker;

static void *commit_worker(void *arg) {
  worker *w = arg;
  repo_handle *h = NULL;
  char path[32], content[32];

  snprintf(path, sizeof path, "c/file_%02d.txt", w->idx);
  snprintf(content, sizeof content, "content %d\n", w->idx);
  w->rc = repo_open(&h, w->path);
  if (w->rc == 0) w->rc = add_file(h, path, content, NULL);
  repo_free(h);
  return NULL;
}

static void test_concurrent(void **state) {
  fixture *f = *state;
  enum { N = 20 };
  pthread_t th[N];
  worker w[N];
  listing l = {0};
  size_t total = 0;
  char c[41];
  int i;

  for (i = 0; i < N; i++) {
    w[i].path = f->path;
    w[i].idx = i;
    w[i].rc = -99;
    assert_int_equal(pthread_create(&th[i], NULL, commit_worker, &w[i]), 0);
  }
  for (i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  for (i = 0; i < N; i++)
    assert_int_equal(w[i].rc, 0);
  head(f->h, c);
  assert_int_equal(repo_log(f->h, c, 0, 0, NULL, NULL, &total), 0);
  assert_int_equal(total, N + 1);
  assert_int_equal(repo_list(f->h, c, "c", 0, collect, &l), 0);
  assert_int_equal(l.n, N);
}

/* 50 threads commit without a pinned parent to one branch, each through its own handle:
 * they queue per ref instead of racing, so every one lands (no "kept moving"). */
static void test_concurrent_50(void **state) {
  fixture *f = *state;
  enum { N = 50 };
  pthread_t th[N];
  worker w[N];
  size_t total = 0;
  char c[41];
  int i;

  for (i = 0; i < N; i++) {
    w[i].path = f->path;
    w[i].idx = i;
    w[i].rc = -99;
    assert_int_equal(pthread_create(&th[i], NULL, commit_worker, &w[i]), 0);
  }
  for (i = 0; i < N; i++)
    pthread_join(th[i], NULL);
  for (i = 0; i < N; i++)
    assert_int_equal(w[i].rc, 0);
  head(f->h, c);
  assert_int_equal(repo_log(f->h, c, 0, 0, NULL, NULL, &total), 0);
  assert_int_equal(total, N + 1);
}

/* A lock file with this age (seconds back from now). */
static void make_lock(const char *path, int age) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs("0000000000000000000000000000000000000000\n", fp);
  fclose(fp);
  struct timespec t[2];
  clock_gettime(CLOCK_REALTIME, &t[0]);
  t[0].tv_sec -= age;
  t[1] = t[0];
  assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static int count_lock(const char *gitdir, const char *rel, int removed, void *payload) {
  (void)gitdir;
  assert_true(removed);
  assert_true(!strcmp(rel, "refs/heads/dev.lock") || !strcmp(rel, "packed-refs.lock"));
  (*(int *)payload)++;
  return 0;
}

/* A crash between creating and renaming refs/heads/<b>.lock must not block the branch:
 * a commit that meets the stale lock removes it; one a live process in the repo may hold
 * is left alone; repo_locks_sweep (start-up, fsck) finds and removes stale ones. */
static void test_stale_lock(void **state) {
  fixture *f = *state;
  char lock[256], lock2[256], lock3[256], c[41];
  int n = 0, pipefd[2];
  pid_t pid;

  snprintf(lock, sizeof lock, "%s/refs/heads/main.lock", f->path);
  make_lock(lock, 60);
  assert_int_equal(add_file(f->h, "after-crash.txt", "x", c), 0);
  assert_int_equal(access(lock, F_OK), -1);

  /* Young: may belong to a writer that is just moving the ref. */
  make_lock(lock, 0);
  assert_int_equal(repo__lock_file_stale(lock, f->path), 0);
  /* Old, but a process works in the repository (like git receive-pack DIR). */
  make_lock(lock, 60);
  assert_int_equal(pipe(pipefd), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char b;
    close(pipefd[1]);
    if (chdir(f->path)) _exit(1);
    (void)!read(pipefd[0], &b, 1); /* until the parent closes the pipe */
    _exit(0);
  }
  close(pipefd[0]);
  for (int i = 0; i < 200; i++) { /* wait for the child's chdir */
    char link[64], cwd[512];
    snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
    ssize_t k = readlink(link, cwd, sizeof cwd - 1);
    if (k > 0 && (cwd[k] = 0, strstr(cwd, "r1.git"))) break;
    usleep(5000);
  }
  assert_int_equal(repo__lock_file_stale(lock, f->path), 0);
  close(pipefd[1]);
  waitpid(pid, NULL, 0);
  assert_int_equal(repo__lock_file_stale(lock, f->path), 1);
  unlink(lock);
  assert_int_equal(repo__lock_file_stale(lock, f->path), -1);

  /* Sweep: two stale locks removed, a young one kept. */
  snprintf(lock, sizeof lock, "%s/refs/heads/dev.lock", f->path);
  snprintf(lock2, sizeof lock2, "%s/packed-refs.lock", f->path);
  snprintf(lock3, sizeof lock3, "%s/refs/tags/v1.lock", f->path);
  make_lock(lock, 60);
  make_lock(lock2, 60);
  make_lock(lock3, 0);
  assert_int_equal(repo_locks_sweep(f->path, count_lock, &n), 2);
  assert_int_equal(n, 2);
  assert_int_equal(access(lock, F_OK), -1);
  assert_int_equal(access(lock2, F_OK), -1);
  assert_int_equal(access(lock3, F_OK), 0);
  assert_int_equal(repo_locks_sweep(f->path, NULL, NULL), 0);
  unlink(lock3);
}

static void test_path_valid(void **state) {
  (void)state;
  assert_int_equal(repo_path_valid("sub/dir/file.txt"), 0);
  assert_int_equal(repo_path_valid(".gitattributes"), 0);
  assert_int_equal(repo_path_valid("a/.github/x"), 0);
  assert_int_equal(repo_path_valid("..a/b.."), 0);
  assert_int_equal(repo_path_valid("with space+plus"), 0);
  assert_int_equal(repo_path_valid(".."), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a/../b"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a/./b"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("/abs"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a//b"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a/"), HUB_EINVALID);
  assert_int_equal(repo_path_valid(".git/config"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("x/.GIT/y"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("x/.Git"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a\\b"), HUB_EINVALID);
  assert_int_equal(repo_path_valid("a\nb"), HUB_EINVALID);
  assert_int_equal(repo_path_valid(""), HUB_EINVALID);
  assert_int_equal(repo_path_valid(NULL), HUB_EINVALID);
  {
    char long_path[2000];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = 0;
    assert_int_equal(repo_path_valid(long_path), HUB_EINVALID);
  }
}

/* Names NTFS or HFS+ would read as ".git" (git's verify_path): 400, never an internal error
 * from libgit2's own tree-entry check. */
static void test_path_dotgit_aliases(void **state) {
  fixture *f = *state;
  static const char *const bad[] = {"git~1/config",
                                    "GIT~1/hooks/x",
                                    ".git./x",
                                    ".git /x",
                                    ".git. . /x",
                                    ".git:stream",
                                    "a/.GIT./b",
                                    "a/git~1",
                                    ".g\xe2\x80\x8cit/config",
                                    "\xef\xbb\xbf.git/x",
                                    NULL};
  char c[41];
  for (size_t i = 0; bad[i]; i++) {
    repo_op op = {REPO_OP_ADD, bad[i], "x", 1, NULL, 0};
    assert_int_equal(repo_path_valid(bad[i]), HUB_EINVALID);
    assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "alias", c), HUB_EINVALID);
  }
  assert_int_equal(repo_path_valid(".gitx/a"), 0);
  assert_int_equal(repo_path_valid("git~2/a"), 0);
  assert_int_equal(repo_path_valid("a.git/b"), 0);
  assert_int_equal(repo_path_valid(".github/x"), 0);
}

typedef struct {
  char refs[16][64];
  char targets[16][41];
  int kinds[16];
  size_t n;
} refset;

static int collect_ref(const repo_ref *r, void *payload) {
  refset *s = payload;
  assert_true(s->n < 16);
  snprintf(s->refs[s->n], sizeof s->refs[0], "%s", r->ref);
  strcpy(s->targets[s->n], r->target);
  s->kinds[s->n++] = r->kind;
  return 0;
}

static int find_ref(const refset *s, const char *ref) {
  size_t i;
  for (i = 0; i < s->n; i++)
    if (!strcmp(s->refs[i], ref)) return (int)i;
  return -1;
}

static void test_branch_tag(void **state) {
  fixture *f = *state;
  char c1[41], sha[41];
  refset s = {0};
  int i, pr = 0;
  repo_op op = {REPO_OP_ADD, "x", "x", 1, NULL, 0};
  repo_commit_req req = {0};

  assert_int_equal(add_file(f->h, "a.txt", "a", c1), 0);
  assert_int_equal(repo_branch_create(f->h, "dev", f->init_sha, 0, NULL), 0);
  assert_int_equal(repo_branch_exists(f->h, "dev"), 1);
  assert_int_equal(repo_branch_exists(f->h, "nope"), 0);
  assert_int_equal(repo_branch_create(f->h, "dev", "main", 0, NULL), HUB_EEXISTS);
  assert_int_equal(repo_resolve(f->h, "dev", sha, NULL), 0);
  assert_string_equal(sha, f->init_sha);
  assert_int_equal(repo_branch_create(f->h, "refs/heads/dev", "main", 1, NULL), 0);
  assert_int_equal(repo_resolve(f->h, "dev", sha, NULL), 0);
  assert_string_equal(sha, c1);
  assert_int_equal(repo_branch_create(f->h, "bad name", "main", 0, NULL), HUB_EINVALID);
  assert_int_equal(repo_branch_create(f->h, "a..b", "main", 0, NULL), HUB_EINVALID);
  assert_int_equal(repo_branch_create(f->h, "HEAD", "main", 0, NULL), HUB_EINVALID);
  assert_int_equal(repo_branch_create(f->h, "x", "nope", 0, NULL), HUB_EREVISION);

  assert_int_equal(repo_tag_create(f->h, "v1", "main", "Release", "alice", "a@x", NULL), 0);
  assert_int_equal(repo_tag_create(f->h, "v0", f->init_sha, NULL, NULL, NULL, NULL), 0);
  assert_int_equal(repo_tag_create(f->h, "v1", "main", NULL, NULL, NULL, NULL), HUB_EEXISTS);
  assert_int_equal(repo_tag_create(f->h, "v2", "main", "msg", NULL, NULL, NULL), HUB_EINVALID);

  req.ref = "refs/pr/1";
  req.create_from = "main";
  req.author_name = "bob";
  req.author_email = "b@x";
  req.ops = &op;
  req.nops = 1;
  assert_int_equal(repo_next_pr_number(f->h, &pr), 0);
  assert_int_equal(pr, 1);
  assert_int_equal(repo_commit(f->h, &req, NULL), 0);
  req.ref = "refs/pr/7";
  assert_int_equal(repo_commit(f->h, &req, NULL), 0);
  req.ref = "refs/convert/parquet";
  assert_int_equal(repo_commit(f->h, &req, NULL), 0);
  assert_int_equal(repo_next_pr_number(f->h, &pr), 0);
  assert_int_equal(pr, 8);

  assert_int_equal(repo_refs_list(f->h, collect_ref, &s), 0);
  assert_int_equal(s.n, 7); /* dev main v0 v1 parquet pr/1 pr/7 */
  i = find_ref(&s, "refs/heads/main");
  assert_true(i >= 0);
  assert_int_equal(s.kinds[i], REPO_REF_BRANCH);
  assert_string_equal(s.targets[i], c1);
  i = find_ref(&s, "refs/tags/v1");
  assert_true(i >= 0);
  assert_int_equal(s.kinds[i], REPO_REF_TAG);
  assert_string_equal(s.targets[i], c1); /* peeled */
  i = find_ref(&s, "refs/convert/parquet");
  assert_true(i >= 0);
  assert_int_equal(s.kinds[i], REPO_REF_CONVERT);
  i = find_ref(&s, "refs/pr/7");
  assert_true(i >= 0);
  assert_int_equal(s.kinds[i], REPO_REF_PR);

  assert_int_equal(repo_branch_delete(f->h, "dev", NULL), 0);
  assert_int_equal(repo_branch_exists(f->h, "dev"), 0);
  assert_int_equal(repo_branch_delete(f->h, "dev", NULL), HUB_EREVISION);
  assert_int_equal(repo_tag_delete(f->h, "v1", NULL), 0);
  assert_int_equal(repo_tag_delete(f->h, "v1", NULL), HUB_EREVISION);
  assert_int_equal(repo_resolve(f->h, "v1", sha, NULL), HUB_EREVISION);
  assert_int_equal(repo_ref_delete(f->h, "refs/pr/7", NULL), 0);
  assert_int_equal(repo_next_pr_number(f->h, &pr), 0);
  assert_int_equal(pr, 2);
}

typedef struct {
  char titles[16][32];
  size_t n;
} titles;

static int collect_title(const repo_commit_info *c, void *payload) {
  titles *t = payload;
  assert_true(t->n < 16);
  snprintf(t->titles[t->n++], sizeof t->titles[0], "%s", c->title);
  return 0;
}

static void test_log(void **state) {
  fixture *f = *state;
  char c[41], name[16];
  titles t = {0};
  size_t total = 0;
  int i;

  for (i = 1; i <= 5; i++) {
    snprintf(name, sizeof name, "f%d", i);
    assert_int_equal(add_file(f->h, name, name, c), 0);
  }
  assert_int_equal(repo_log(f->h, c, 0, 0, collect_title, &t, &total), 0);
  assert_int_equal(total, 6);
  assert_int_equal(t.n, 6);
  assert_string_equal(t.titles[0], "f5");
  assert_string_equal(t.titles[5], "Initial commit");

  memset(&t, 0, sizeof t);
  assert_int_equal(repo_log(f->h, c, 1, 2, collect_title, &t, &total), 0);
  assert_int_equal(total, 6);
  assert_int_equal(t.n, 2);
  assert_string_equal(t.titles[0], "f4");
  assert_string_equal(t.titles[1], "f3");

  memset(&t, 0, sizeof t);
  assert_int_equal(repo_log(f->h, c, 4, 10, collect_title, &t, NULL), 0);
  assert_int_equal(t.n, 2);
  memset(&t, 0, sizeof t);
  assert_int_equal(repo_log(f->h, c, 10, 10, collect_title, &t, &total), 0);
  assert_int_equal(t.n, 0);
  assert_int_equal(total, 6);
  assert_int_equal(repo_log(f->h, "nope", 0, 1, collect_title, &t, &total), HUB_EREVISION);
}

static void test_last_commit(void **state) {
  fixture *f = *state;
  char ca[41], cb[41], cc[41];
  repo_commit_info ci;

  assert_int_equal(add_file(f->h, "dir/a.txt", "a", ca), 0);
  assert_int_equal(add_file(f->h, "b.txt", "b", cb), 0);
  assert_int_equal(add_file(f->h, "c.txt", "c", cc), 0);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, "dir/a.txt", &ci), 0);
  assert_string_equal(ci.id, ca);
  assert_string_equal(ci.title, "dir/a.txt");
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, "dir", &ci), 0);
  assert_string_equal(ci.id, ca);
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, "b.txt", &ci), 0);
  assert_string_equal(ci.id, cb);
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, ".gitattributes", &ci), 0);
  assert_string_equal(ci.id, f->init_sha);
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, "", &ci), 0);
  assert_string_equal(ci.id, cc);
  repo_commit_info_dispose(&ci);
  assert_int_equal(repo_last_commit_for_path(f->h, cc, "nope", &ci), HUB_EENTRY);
  assert_int_equal(repo_last_commit_for_path(f->h, ca, "b.txt", &ci), HUB_EENTRY);
}

static void test_pct(void **state) {
  char *s = NULL;
  hub_buf b = HUB_BUF_INIT;
  (void)state;

  assert_int_equal(hub_pct_decode(&s, "refs%2Fpr%2F1"), 0);
  assert_string_equal(s, "refs/pr/1");
  free(s);
  assert_int_equal(hub_pct_decode(&s, "a+b%20c%2b%2B"), 0);
  assert_string_equal(s, "a+b c++");
  free(s);
  assert_int_equal(hub_pct_decode(&s, ""), 0);
  assert_string_equal(s, "");
  free(s);
  assert_int_equal(hub_pct_decode(&s, "%00"), HUB_EINVALID);
  assert_null(s);
  assert_int_equal(hub_pct_decode(&s, "abc%"), HUB_EINVALID);
  assert_int_equal(hub_pct_decode(&s, "abc%4"), HUB_EINVALID);
  assert_int_equal(hub_pct_decode(&s, "%g1"), HUB_EINVALID);
  assert_int_equal(hub_pct_decode_n(&s, "ab%2Fcd", 5), 0); /* "ab%2F" */
  assert_string_equal(s, "ab/");
  free(s);
  assert_int_equal(hub_pct_decode_n(&s, "ab%2Fcd", 4), HUB_EINVALID);

  assert_int_equal(hub_pct_encode(&b, "sub dir/a+b#c~d", 1), 0);
  assert_string_equal(b.ptr, "sub%20dir/a%2Bb%23c~d");
  hub_buf_clear(&b);
  assert_int_equal(hub_pct_encode(&b, "refs/pr/1", 0), 0);
  assert_string_equal(b.ptr, "refs%2Fpr%2F1");
  hub_buf_dispose(&b);
}

static int group_setup(void **state) {
  (void)state;
  return repo_global_init();
}

static int group_teardown(void **state) {
  (void)state;
  repo_global_shutdown();
  return 0;
}

/* Contents written ahead (repo_blob_write), then committed by id: how the commit API
 * avoids holding every inline file in memory. */
static void test_add_blob(void **state) {
  fixture *f = *state;
  char blob[41], sha[41];
  assert_int_equal(repo_blob_write(f->h, "spooled\n", 8, blob), 0);
  repo_op op = {REPO_OP_ADD_BLOB, "dir/b.txt", NULL, 0, blob, 0};
  assert_int_equal(commit_ops(f->h, "refs/heads/main", &op, 1, "by id", sha), 0);
  void *data = NULL;
  size_t n = 0;
  assert_int_equal(repo_read_path(f->h, sha, "dir/b.txt", &data, &n), 0);
  assert_int_equal(n, 8);
  assert_memory_equal(data, "spooled\n", 8);
  free(data);
  /* An id that is not a blob of this repo is refused; nothing moves. */
  repo_op bad = {REPO_OP_ADD_BLOB, "c.txt", NULL, 0, "0123456789012345678901234567890123456789", 0};
  char after[41];
  assert_int_equal(commit_ops(f->h, "refs/heads/main", &bad, 1, "bad", after), HUB_EINVALID);
  head(f->h, after);
  assert_string_equal(after, sha);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_init, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resolve_segments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_ops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_add_blob, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lfs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_stop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parent_pin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_txn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_record_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_50, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_lock, setup, teardown),
      cmocka_unit_test(test_path_valid),
      cmocka_unit_test_setup_teardown(test_path_dotgit_aliases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_branch_tag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_commit, setup, teardown),
      cmocka_unit_test(test_pct),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
