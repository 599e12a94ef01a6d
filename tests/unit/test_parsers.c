/* Parsers: repo paths, HTTP Range, git-lfs pointers, signed URLs, commit NDJSON. */
#include "unit.h"

#include "api/ndjson.h"
#include "auth/sign.h"
#include "http/range.h"
#include "blob/lfs_pointer.h"
#include "util/error.h"
#include "util/limits.h"
#include "util/path.h"

#define OID "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

/* ---- path ---- */

static void test_path(void **state) {
  (void)state;
  const char *good[] = {
      "a",     "README.md", "dir/sub/file.bin", ".gitattributes",     "a/.gitignore", "...",
      "a/..b", "x.git",     "héllo/wörld",      "with space/+#%.txt", ".cache/x"};
  const char *bad[] = {"",     "/a",   "a/",           "a//b",    ".",    "..",   "a/./b", "a/..",
                       "../x", ".git", "a/.GIT/b",     ".Git",    "a\\b", "a\tb", "a\nb",  "a\x7f",
                       "\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    if (!path_valid(good[i])) fail_msg("should be valid: %s", good[i]);
    assert_int_equal(path_check_n(good[i], strlen(good[i])), 0);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (path_valid(bad[i])) fail_msg("should be invalid: %s", bad[i]);
    assert_int_equal(path_check_n(bad[i], strlen(bad[i])), HUB_EINVALID);
  }
  assert_false(path_valid(NULL));
  assert_false(path_valid_n("a\0b", 3));
  assert_true(path_valid_n("abc", 2));
  assert_int_equal(path_check_n("a/../b", 6), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "'a/../b'"));
  assert_int_equal(path_check_n("x\r\ny", 4), HUB_EINVALID);
  assert_null(strchr(hub_error_msg(), '\n')); /* safe to put in a header */

  char longp[HUB_MAX_PATH + 2];
  memset(longp, 'a', sizeof longp);
  longp[HUB_MAX_PATH] = 0;
  assert_true(path_valid(longp));
  longp[HUB_MAX_PATH] = 'a';
  longp[HUB_MAX_PATH + 1] = 0;
  assert_false(path_valid(longp));

  char f1[] = "folder/", f2[] = "folder", f3[] = "/", f4[] = "a//";
  assert_int_equal(path_normalize_folder(f1), 0);
  assert_string_equal(f1, "folder");
  assert_int_equal(path_normalize_folder(f2), 0);
  assert_string_equal(f2, "folder");
  assert_int_equal(path_normalize_folder(f3), HUB_EINVALID);
  assert_int_equal(path_normalize_folder(f4), HUB_EINVALID);

  char q[8];
  path_quote(q, sizeof q, "abcdefghij", 10);
  assert_string_equal(q, "abcd...");
  path_quote(q, sizeof q, "ab\x01", 3);
  assert_string_equal(q, "ab?");
}

/* ---- range ---- */

static void expect_range(const char *h, int64_t total, int rc, int64_t s, int64_t e) {
  int64_t a = -7, b = -7;
  int got = range_parse(h, total, &a, &b);
  if (got != rc)
    fail_msg("range '%s' total %lld: rc %d, want %d", h ? h : "(null)", (long long)total, got, rc);
  if (rc == 0 && (a != s || b != e))
    fail_msg("range '%s' total %lld: %lld-%lld, want %lld-%lld", h, (long long)total, (long long)a,
             (long long)b, (long long)s, (long long)e);
}

static void test_range(void **state) {
  (void)state;
  expect_range("bytes=0-0", 100, 0, 0, 0);
  expect_range("bytes=0-99", 100, 0, 0, 99);
  expect_range("bytes=10-20", 100, 0, 10, 20);
  expect_range("bytes=0-100000", 100, 0, 0, 99); /* clamped */
  expect_range("bytes=8-", 100, 0, 8, 99);
  expect_range("bytes=99-", 100, 0, 99, 99);
  expect_range("bytes=-10", 100, 0, 90, 99);
  expect_range("bytes=-100", 100, 0, 0, 99);
  expect_range("bytes=-1000", 100, 0, 0, 99); /* suffix longer than file: whole */
  expect_range("Bytes=1-2", 100, 0, 1, 2);
  expect_range(" bytes=1-2 ", 100, 0, 1, 2);
  expect_range("bytes= 1-2", 100, 0, 1, 2);
  expect_range("bytes=5-99999999999999999999999", 100, 0, 5, 99); /* saturates */
  expect_range("bytes=-99999999999999999999999", 100, 0, 0, 99);
  /* unsatisfiable */
  expect_range("bytes=100-", 100, HUB_ERANGE, 0, 0);
  expect_range("bytes=100-200", 100, HUB_ERANGE, 0, 0);
  expect_range("bytes=99999999999999999999999-", 100, HUB_ERANGE, 0, 0);
  expect_range("bytes=-0", 100, HUB_ERANGE, 0, 0);
  expect_range("bytes=0-0", 0, HUB_ERANGE, 0, 0); /* empty file: caller special-cases */
  expect_range("bytes=0-", 0, HUB_ERANGE, 0, 0);
  expect_range("bytes=-5", 0, HUB_ERANGE, 0, 0);
  /* ignored: send the whole body */
  const char *ignore[] = {NULL,          "",           "bytes",      "bytes=",      "bytes=-",
                          "bytes=a-b",   "bytes=1",    "bytes=5-1",  "items=0-1",   "bytes=0-1,2-3",
                          "bytes=0-1 x", "bytes=+1-2", "bytes=1--2", "bytes=0x1-2", "bytes =0-1",
                          "bytes=1-2-",  "bytes=- 5",  "bytesx=1-2"};
  for (size_t i = 0; i < sizeof ignore / sizeof *ignore; i++)
    expect_range(ignore[i], 100, RANGE_IGNORE, 0, 0);
}

/* ---- lfs pointer ---- */

static const char PTR[] = "version https://git-lfs.github.com/spec/v1\n"
                          "oid sha256:" OID "\n"
                          "size 12345\n";

static int parse_ptr(const char *s, int64_t *size) {
  char oid[65];
  return lfs_pointer_parse(s, strlen(s), oid, size);
}

static void test_lfs_pointer(void **state) {
  (void)state;
  char oid[65];
  int64_t size = -1;
  assert_int_equal(lfs_pointer_parse(PTR, strlen(PTR), oid, &size), 0);
  assert_string_equal(oid, OID);
  assert_int_equal(size, 12345);
  assert_int_equal(
      parse_ptr("version https://hawser.github.com/spec/v1\noid sha256:" OID "\nsize 0\n", &size),
      0);
  assert_int_equal(size, 0);
  assert_int_equal(parse_ptr("version https://git-lfs.github.com/spec/v1\noid sha256:" OID
                             "\nsize 9223372036854775807\n",
                             &size),
                   0);
  assert_int_equal(size, INT64_MAX);

  const char *bad[] = {
      "",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12345",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12345\n\n",
      "version https://git-lfs.github.com/spec/v1\r\noid sha256:" OID "\r\nsize 1\r\n",
      "version https://git-lfs.github.com/spec/v2\noid sha256:" OID "\nsize 1\n",
      "version https://git-lfs.github.com/spec/v1\noid sha1:" OID "\nsize 1\n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "0\nsize 1\n",
      "version https://git-lfs.github.com/spec/v1\noid "
      "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824\nsize 1\n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize -1\n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 01\n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize \n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 9223372036854775808\n",
      "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize  1\n",
      "version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:" OID "\n",
      "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:" OID "\noid sha256:" OID
      "\nsize 1\n",
      "oid sha256:" OID "\nsize 1\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (parse_ptr(bad[i], &size) != HUB_EINVALID) fail_msg("accepted bad pointer #%zu", i);
  /* not NUL-terminated, and a NUL inside */
  assert_int_equal(lfs_pointer_parse(PTR, strlen(PTR) - 1, oid, &size), HUB_EINVALID);
  char withnul[sizeof PTR];
  memcpy(withnul, PTR, sizeof PTR);
  withnul[strlen(PTR) - 2] = 0;
  assert_int_equal(lfs_pointer_parse(withnul, strlen(PTR), oid, &size), HUB_EINVALID);

  hub_buf b = HUB_BUF_INIT;
  assert_int_equal(lfs_pointer_format(&b, OID, 12345), 0);
  assert_string_equal(b.ptr, PTR);
  assert_int_equal(lfs_pointer_parse(b.ptr, b.len, oid, &size), 0);
  assert_int_equal(lfs_pointer_format(&b, "x", 1), HUB_EINVALID);
  assert_int_equal(lfs_pointer_format(&b, OID, -1), HUB_EINVALID);
  hub_buf_dispose(&b);
  hub_buf_init(&b, 10);
  assert_int_equal(lfs_pointer_format(&b, OID, 1), HUB_ERROR);
  hub_buf_dispose(&b);
}

/* ---- signed URLs ---- */

static void get_param(const char *q, const char *name, char *out, size_t cap) {
  const char *p = strstr(q, name);
  assert_non_null(p);
  p += strlen(name);
  size_t n = strcspn(p, "&");
  assert_true(n < cap);
  memcpy(out, p, n);
  out[n] = 0;
}

static void test_sign(void **state) {
  (void)state;
  unsigned char key[32];
  for (int i = 0; i < 32; i++)
    key[i] = (unsigned char)i;
  assert_int_equal(sign_init(key, 8), HUB_EINVALID);
  assert_int_equal(sign_init(key, sizeof key), 0);

  hub_buf q = HUB_BUF_INIT;
  const char *subj = "repo42/" OID "/12345";
  assert_int_equal(sign_make(&q, "lfs-put", subj, 1000), 0);
  assert_non_null(strstr(q.ptr, "exp=1000&sig="));
  assert_int_equal(strlen(q.ptr), strlen("exp=1000&sig=") + 64);
  char exp[32], sig[80];
  get_param(q.ptr, "exp=", exp, sizeof exp);
  get_param(q.ptr, "sig=", sig, sizeof sig);

  assert_int_equal(sign_check("lfs-put", subj, exp, sig, 999), 0);
  assert_int_equal(sign_check("lfs-put", subj, exp, sig, 1000), 0);
  /* expired */
  assert_int_equal(sign_check("lfs-put", subj, exp, sig, 1001), HUB_EAUTH);
  assert_string_equal(hub_error_msg(), "expired");
  /* tampered: purpose, subject, expiry, signature */
  assert_int_equal(sign_check("lfs-get", subj, exp, sig, 0), HUB_EAUTH);
  assert_string_equal(hub_error_msg(), "invalid signature");
  assert_int_equal(sign_check("lfs-put", "repo42/" OID "/12346", exp, sig, 0), HUB_EAUTH);
  assert_int_equal(sign_check("lfs-put", subj, "1001", sig, 0), HUB_EAUTH);
  assert_string_equal(hub_error_msg(), "invalid signature");
  assert_int_equal(sign_check("lfs-put", subj, "01000", sig, 0), HUB_EAUTH);
  assert_int_equal(sign_check("lfs-put", subj, "", sig, 0), HUB_EAUTH);
  assert_int_equal(sign_check("lfs-put", subj, "99999999999999999999", sig, 0), HUB_EAUTH);
  char bad[80];
  strcpy(bad, sig);
  bad[10] = bad[10] == '0' ? '1' : '0';
  assert_int_equal(sign_check("lfs-put", subj, exp, bad, 0), HUB_EAUTH);
  strcpy(bad, sig);
  bad[63] = 0;
  assert_int_equal(sign_check("lfs-put", subj, exp, bad, 0), HUB_EAUTH);
  strcpy(bad, sig);
  strcat(bad, "0");
  assert_int_equal(sign_check("lfs-put", subj, exp, bad, 0), HUB_EAUTH);
  for (char *c = bad; *c; c++)
    if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
  bad[64] = 0;
  assert_int_equal(sign_check("lfs-put", subj, exp, bad, 0), HUB_EAUTH);
  assert_int_equal(sign_check("lfs-put", subj, NULL, sig, 0), HUB_EAUTH);
  assert_int_equal(sign_check("lfs-put", subj, exp, NULL, 0), HUB_EAUTH);
  /* a different key invalidates */
  key[0] ^= 1;
  assert_int_equal(sign_init(key, sizeof key), 0);
  assert_int_equal(sign_check("lfs-put", subj, exp, sig, 0), HUB_EAUTH);
  /* bad inputs to make */
  assert_int_equal(sign_make(&q, "", subj, 1), HUB_EINVALID);
  assert_int_equal(sign_make(&q, "p", "", 1), HUB_EINVALID);
  assert_int_equal(sign_make(&q, "p", "s", -1), HUB_EINVALID);
  hub_buf_dispose(&q);
}

/* ---- ndjson ---- */

#define HDR "{\"key\":\"header\",\"value\":{\"summary\":\"Add files\",\"description\":\"\"}}"

static ndjson_commit *parse_ok(const char *s) {
  ndjson_commit *c = NULL;
  int rc = ndjson_commit_parse(&c, s, strlen(s));
  if (rc) fail_msg("parse failed (%d): %s", rc, hub_error_msg());
  return c;
}

static void parse_bad(const char *s, int want_rc, const char *want_msg) {
  ndjson_commit *c = (ndjson_commit *)1;
  int rc = ndjson_commit_parse(&c, s, strlen(s));
  if (rc != want_rc) fail_msg("rc %d want %d for: %s (msg: %s)", rc, want_rc, s, hub_error_msg());
  assert_null(c);
  if (want_msg && !strstr(hub_error_msg(), want_msg))
    fail_msg("message '%s' lacks '%s'", hub_error_msg(), want_msg);
}

static void test_ndjson_good(void **state) {
  (void)state;
  /* Python style: trailing newline on every line */
  ndjson_commit *c = parse_ok(
      "{\"key\": \"header\", \"value\": {\"summary\": \"Upload\", \"description\": \"body\", "
      "\"parentCommit\": \"ABCDEF1234\"}}\n"
      "{\"key\": \"file\", \"value\": {\"path\": \"README.md\", \"content\": \"aGVsbG8=\", "
      "\"encoding\": \"base64\"}}\n"
      "{\"key\": \"lfsFile\", \"value\": {\"path\": \"model.bin\", \"algo\": \"sha256\", \"oid\": "
      "\"" OID "\", \"size\": 12345}}\n"
      "{\"key\": \"lfsFile\", \"value\": {\"path\": \"copy.bin\", \"algo\": \"sha256\", \"oid\": "
      "\"" OID "\"}}\n"
      "{\"key\": \"deletedFile\", \"value\": {\"path\": \"old.txt\"}}\n"
      "{\"key\": \"deletedFolder\", \"value\": {\"path\": \"logs/\"}}\n");
  assert_string_equal(c->summary, "Upload");
  assert_string_equal(c->description, "body");
  assert_string_equal(c->parent_commit, "abcdef1234");
  assert_int_equal(c->nops, 5);
  assert_int_equal(c->ops[0].kind, NDJSON_OP_FILE);
  assert_string_equal(c->ops[0].path, "README.md");
  assert_int_equal(c->ops[0].content_len, 5);
  assert_memory_equal(c->ops[0].content, "hello", 5);
  assert_int_equal(c->ops[1].kind, NDJSON_OP_LFS_FILE);
  assert_string_equal(c->ops[1].oid, OID);
  assert_int_equal(c->ops[1].size, 12345);
  assert_int_equal(c->ops[2].size, -1);
  assert_int_equal(c->ops[3].kind, NDJSON_OP_DELETED_FILE);
  assert_int_equal(c->ops[4].kind, NDJSON_OP_DELETED_FOLDER);
  assert_string_equal(c->ops[4].path, "logs");
  ndjson_commit_free(c);

  /* JS style: no trailing newline, utf-8 encoding, oldPath; CRLF and blank lines */
  c = parse_ok("\r\n  \n{\"key\":\"header\",\"value\":{\"summary\":\"t\"}}\r\n\r\n"
               "{\"key\":\"file\",\"value\":{\"path\":\"a/b.txt\",\"content\":\"h\\u00e9\","
               "\"encoding\":\"utf-8\"}}\r\n"
               "{\"key\":\"file\",\"value\":{\"path\":\"empty\",\"content\":\"\","
               "\"encoding\":\"base64\"}}\n"
               "{\"key\":\"lfsFile\",\"value\":{\"path\":\"x\",\"oid\":\"" OID "\","
               "\"size\":0,\"oldPath\":\"y\"}}");
  assert_string_equal(c->summary, "t");
  assert_string_equal(c->description, "");
  assert_string_equal(c->parent_commit, "");
  assert_int_equal(c->nops, 3);
  assert_int_equal(c->ops[0].content_len, 3);
  assert_string_equal((char *)c->ops[0].content, "h\xc3\xa9");
  assert_int_equal(c->ops[1].content_len, 0);
  assert_int_equal(c->ops[2].size, 0);
  ndjson_commit_free(c);

  /* header only, nulls for optional fields, base64 of each padding length */
  c = parse_ok("{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"description\":null,"
               "\"parentCommit\":null}}\n"
               "{\"key\":\"file\",\"value\":{\"path\":\"p1\",\"content\":\"YQ==\",\"encoding\":"
               "\"base64\"}}\n"
               "{\"key\":\"file\",\"value\":{\"path\":\"p2\",\"content\":\"YWI=\",\"encoding\":"
               "\"base64\"}}\n"
               "{\"key\":\"file\",\"value\":{\"path\":\"p3\",\"content\":\"YWJj+/"
               "8A\",\"encoding\":\"base64\"}}\n");
  assert_int_equal(c->nops, 3);
  assert_memory_equal(c->ops[0].content, "a", 1);
  assert_memory_equal(c->ops[1].content, "ab", 2);
  assert_int_equal(c->ops[2].content_len, 6);
  assert_memory_equal(c->ops[2].content, "abc\xfb\xff\x00", 6);
  ndjson_commit_free(c);
  c = parse_ok(HDR);
  assert_int_equal(c->nops, 0);
  ndjson_commit_free(c);
  ndjson_commit_free(NULL);
}

static void test_ndjson_bad(void **state) {
  (void)state;
  parse_bad("", HUB_EINVALID, "no header");
  parse_bad("\n\r\n  \n", HUB_EINVALID, "no header");
  parse_bad("{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\"}}\n" HDR, HUB_EINVALID,
            "line 1: first line must be the header");
  parse_bad(HDR "\n" HDR, HUB_EINVALID, "line 2: header must be the first line");
  parse_bad(HDR "\n\n{\"key\":\"file\",", HUB_EINVALID, "line 3: invalid JSON");
  parse_bad(HDR "\n[1]", HUB_EINVALID, "line 2: expected a JSON object");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\"},\"extra\":1}", HUB_EINVALID,
            "line 2: unknown key 'extra'");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\",\"force\":true}}",
            HUB_EINVALID, "unknown key 'force' in deletedFile");
  parse_bad(HDR "\n{\"key\":\"renamedFile\",\"value\":{\"path\":\"a\"}}", HUB_EINVALID,
            "unknown operation key 'renamedFile'");
  parse_bad(HDR "\n{\"key\":\"deletedFile\"}", HUB_EINVALID, "missing \"value\"");
  parse_bad(HDR "\n{\"value\":{}}", HUB_EINVALID, "missing \"key\"");
  parse_bad(HDR "\n{\"key\":1,\"value\":{}}", HUB_EINVALID, "\"key\" must be a string");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":[]}", HUB_EINVALID, "must be an object");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\"},\"key\":\"x\"}",
            HUB_EINVALID, "invalid JSON");
  /* header */
  parse_bad("{\"key\":\"header\",\"value\":{\"description\":\"\"}}", HUB_EINVALID,
            "missing \"summary\"");
  parse_bad("{\"key\":\"header\",\"value\":{\"summary\":1}}", HUB_EINVALID, "must be a string");
  parse_bad("{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"x\":1}}", HUB_EINVALID,
            "unknown key 'x' in header");
  parse_bad("{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"parentCommit\":\"abcd\"}}",
            HUB_EINVALID, "parentCommit");
  parse_bad("{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"parentCommit\":\"abcdeg\"}}",
            HUB_EINVALID, "parentCommit");
  parse_bad("{\"key\":\"header\",\"value\":{\"summary\":\"s\",\"parentCommit\":"
            "\"0123456789012345678901234567890123456789a\"}}",
            HUB_EINVALID, "parentCommit");
  parse_bad("{\"key\":\"header\",\"value\":\"s\"}", HUB_EINVALID, "header value");
  /* paths */
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"../etc/passwd\"}}", HUB_EINVALID,
            "line 2: deletedFile: invalid path '../etc/passwd'");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\".git/config\"}}", HUB_EINVALID,
            "'.git/config'");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\\u0000b\"}}", HUB_EINVALID,
            "invalid JSON");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a/\"}}", HUB_EINVALID,
            "empty segment");
  parse_bad(HDR "\n{\"key\":\"deletedFolder\",\"value\":{\"path\":\"/\"}}", HUB_EINVALID,
            "invalid path");
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{}}", HUB_EINVALID, "missing \"path\"");
  /* file */
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"aGVsbG8\","
                "\"encoding\":\"base64\"}}",
            HUB_EINVALID, "multiple of 4");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"aGV sbG8\","
                "\"encoding\":\"base64\"}}",
            HUB_EINVALID, "invalid base64");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"a=Vs\","
                "\"encoding\":\"base64\"}}",
            HUB_EINVALID, "invalid base64");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"YR==\","
                "\"encoding\":\"base64\"}}",
            HUB_EINVALID, "non-canonical");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"YQ==YQ==\","
                "\"encoding\":\"base64\"}}",
            HUB_EINVALID, "invalid base64");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"x\","
                "\"encoding\":\"latin1\"}}",
            HUB_EINVALID, "encoding must be");
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"x\"}}", HUB_EINVALID,
            "missing \"encoding\"");
  /* lfsFile */
  parse_bad(HDR "\n{\"key\":\"lfsFile\",\"value\":{\"path\":\"a\",\"oid\":\"" OID "\","
                "\"algo\":\"sha1\"}}",
            HUB_EINVALID, "algo must be \"sha256\"");
  parse_bad(HDR "\n{\"key\":\"lfsFile\",\"value\":{\"path\":\"a\",\"oid\":\"abc\"}}", HUB_EINVALID,
            "oid must be 64");
  parse_bad(HDR "\n{\"key\":\"lfsFile\",\"value\":{\"path\":\"a\",\"oid\":\"" OID "\","
                "\"size\":-1}}",
            HUB_EINVALID, "size must be");
  parse_bad(HDR "\n{\"key\":\"lfsFile\",\"value\":{\"path\":\"a\",\"oid\":\"" OID "\","
                "\"size\":1.5}}",
            HUB_EINVALID, "size must be");
  parse_bad(HDR "\n{\"key\":\"lfsFile\",\"value\":{\"path\":\"a\",\"oid\":\"" OID "\","
                "\"size\":\"12\"}}",
            HUB_EINVALID, "size must be");
  /* raw NUL and invalid UTF-8 in the body */
  const char nul[] = HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\0b\"}}";
  ndjson_commit *c = NULL;
  assert_int_equal(ndjson_commit_parse(&c, nul, sizeof nul - 1), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "line 2"));
  parse_bad(HDR "\n{\"key\":\"deletedFile\",\"value\":{\"path\":\"\xff\"}}", HUB_EINVALID,
            "invalid JSON");
}

static void test_ndjson_limit(void **state) {
  (void)state;
  const char *line = "{\"key\":\"deletedFile\",\"value\":{\"path\":\"a\"}}\n";
  size_t ll = strlen(line), n = (size_t)HUB_MAX_COMMIT_OPS + 1;
  char *body = malloc(strlen(HDR) + 1 + ll * n + 1);
  size_t o = 0;
  memcpy(body, HDR "\n", strlen(HDR) + 1);
  o = strlen(HDR) + 1;
  for (size_t i = 0; i < n; i++, o += ll)
    memcpy(body + o, line, ll);
  ndjson_commit *c = NULL;
  assert_int_equal(ndjson_commit_parse(&c, body, o), HUB_ETOOBIG);
  assert_int_equal(ndjson_commit_parse(&c, body, o - ll), 0);
  assert_int_equal(c->nops, HUB_MAX_COMMIT_OPS);
  ndjson_commit_free(c);
  free(body);
}

/* The op callback moves a file's contents out, as the commit handler does. */
static int take_content(void *payload, ndjson_op *op) {
  size_t *taken = payload;
  if (op->kind != NDJSON_OP_FILE) return 0;
  *taken += op->content_len;
  free(op->content);
  op->content = NULL;
  op->content_off = 7;
  return 0;
}

static void test_ndjson_stream(void **state) {
  (void)state;
  const char *body = HDR "\r\n\n{\"key\":\"file\",\"value\":{\"path\":\"a.txt\",\"content\":"
                         "\"aGVsbG8=\",\"encoding\":\"base64\"}}\n"
                         "{\"key\":\"deletedFolder\",\"value\":{\"path\":\"d/\"}}";
  /* Fed one byte at a time: the same result as a one-shot parse. */
  ndjson_stream *s = NULL;
  size_t taken = 0;
  assert_int_equal(ndjson_stream_new(&s, take_content, &taken), 0);
  for (size_t i = 0; body[i]; i++)
    assert_int_equal(ndjson_stream_feed(s, body + i, 1), 0);
  assert_true(ndjson_stream_buffered(s) > 0); /* the last line has no newline yet */
  ndjson_commit *c = NULL;
  assert_int_equal(ndjson_stream_finish(s, &c), 0);
  ndjson_stream_free(s);
  assert_string_equal(c->summary, "Add files");
  assert_int_equal(c->nops, 2);
  assert_int_equal(c->ops[0].kind, NDJSON_OP_FILE);
  assert_null(c->ops[0].content);
  assert_int_equal(c->ops[0].content_len, 5);
  assert_int_equal(c->ops[0].content_off, 7);
  assert_int_equal(taken, 5);
  assert_int_equal(c->ops[1].kind, NDJSON_OP_DELETED_FOLDER);
  assert_string_equal(c->ops[1].path, "d");
  ndjson_commit_free(c);

  /* A line longer than HUB_MAX_NDJSON_LINE fails as it grows, and the error sticks. */
  assert_int_equal(ndjson_stream_new(&s, NULL, NULL), 0);
  assert_int_equal(ndjson_stream_feed(s, HDR "\n{", strlen(HDR) + 2), 0);
  size_t chunk = 1024 * 1024, fed = 0;
  char *a = malloc(chunk);
  memset(a, 'a', chunk);
  int rc = 0;
  while (!rc && fed <= (size_t)HUB_MAX_NDJSON_LINE) {
    rc = ndjson_stream_feed(s, a, chunk);
    fed += chunk;
  }
  free(a);
  assert_int_equal(rc, HUB_ETOOBIG);
  assert_non_null(strstr(hub_error_msg(), "line 2"));
  assert_int_equal(ndjson_stream_feed(s, "\n", 1), HUB_ETOOBIG);
  assert_int_equal(ndjson_stream_finish(s, &c), HUB_ETOOBIG);
  assert_null(c);
  ndjson_stream_free(s);

  /* An unfinished last line is parsed when the body ends (an invalid one here). */
  parse_bad(HDR "\n{\"key\":\"file\",\"value\":{\"path\":\"a\",\"content\":\"\",\"encoding\":"
                "\"utf-8\"}}\n{",
            HUB_EINVALID, "line 3");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path),         cmocka_unit_test(test_range),
      cmocka_unit_test(test_lfs_pointer),  cmocka_unit_test(test_sign),
      cmocka_unit_test(test_ndjson_good),  cmocka_unit_test(test_ndjson_bad),
      cmocka_unit_test(test_ndjson_limit), cmocka_unit_test(test_ndjson_stream),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
