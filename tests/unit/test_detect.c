/* Unit tests for src/scan/detect.h: safetensors and GGUF header validation, secrets in text
 * files, ClamAV with a signature file of the test's own. Fixtures are built here; secrets
 * and the EICAR string are assembled at run time so no source file carries them whole. */
#include "unit.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/detect.h"

/* ---- builders --------------------------------------------------------------------- */

typedef struct {
  unsigned char b[16384];
  size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  assert_true(o->n + n <= sizeof o->b);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put_le(bytes *o, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    put(o, &c, 1);
  }
}
static void put_str(bytes *o, const char *s) {
  put_le(o, strlen(s), 8);
  put(o, s, strlen(s));
}
static void put_zero(bytes *o, size_t n) {
  for (size_t i = 0; i < n; i++)
    put_le(o, 0, 1);
}

/* A descriptor holding exactly these bytes. */
static int mkfd(const void *p, size_t n) {
  int fd = memfd_create("detect-test", 0);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  return fd;
}

static json_t *header_of(const bytes *o, size_t len, const char *path) {
  int fd = mkfd(o->b, len);
  json_t *r = scan_header(fd, len, path, NULL);
  close(fd);
  return r;
}

static const char *status(const json_t *r) {
  return json_string_value(json_object_get(r, "status"));
}
static const char *message(const json_t *r) {
  return json_string_value(json_object_get(r, "message"));
}

static void st_build(bytes *o, const char *hdr, size_t data) {
  o->n = 0;
  put_le(o, strlen(hdr), 8);
  put(o, hdr, strlen(hdr));
  put_zero(o, data);
}

#define T(name, dtype, shape, b, e)                                                                \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/* ---- safetensors -------------------------------------------------------------------- */

static void test_st_valid(void **state) {
  (void)state;
  bytes o;
  st_build(&o,
           "{\"__metadata__\":{\"format\":\"pt\"}," T("a", "F32", "[2]", 0, 8) "," T(
               "b", "U8", "[4]", 8, 12) "," T("c", "F4", "[3]", 12, 14) "}",
           14);
  json_t *r = header_of(&o, o.n, "model.safetensors");
  assert_non_null(r);
  assert_string_equal(status(r), "safe");
  assert_string_equal(json_string_value(json_object_get(r, "format")), "safetensors");
  json_decref(r);
}

static void test_st_overlap(void **state) {
  (void)state;
  bytes o;
  /* b starts inside a: a loader would hand out the same bytes twice */
  st_build(&o, "{" T("a", "F32", "[2]", 0, 8) "," T("b", "U8", "[8]", 4, 12) "}", 12);
  json_t *r = header_of(&o, o.n, "dir/model.safetensors");
  assert_non_null(r);
  assert_string_equal(status(r), "unsafe");
  assert_non_null(strstr(message(r), "overlap"));
  json_decref(r);
}

static void test_st_bounds(void **state) {
  (void)state;
  bytes o;
  /* a tensor past the end of the data section */
  st_build(&o, "{" T("a", "F32", "[4]", 0, 16) "}", 8);
  json_t *r = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(r), "unsafe");
  assert_non_null(strstr(message(r), "beyond the end"));
  json_decref(r);
  /* a header length beyond the file */
  o.n = 0;
  put_le(&o, 1000, 8);
  put(&o, "{}", 2);
  r = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(r), "unsafe");
  json_decref(r);
  /* over the 100 MB limit: never read */
  o.n = 0;
  put_le(&o, 200ull * 1000 * 1000, 8);
  put(&o, "{}", 2);
  r = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(r), "suspicious");
  json_decref(r);
  /* an element count that overflows 64 bits */
  st_build(&o, "{" T("a", "F32", "[4294967296,4294967296]", 0, 0) "}", 0);
  r = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(r), "unsafe");
  json_decref(r);
}

static void test_st_inconsistent(void **state) {
  (void)state;
  bytes o;
  struct {
    const char *hdr;
    size_t data;
    const char *level, *needle;
  } cases[] = {
      {"{" T("a", "F32", "[3]", 0, 8) "}", 8, "caution", "dtype and shape"},
      {"{" T("a", "F32", "[2]", 4, 12) "}", 12, "caution", "not contiguous"},
      {"{" T("a", "F32", "[2]", 0, 8) "}", 10, "caution", "after the last tensor"},
      {"{\"a\":{\"dtype\":\"F32\"}}", 0, "caution", "lacks"},
      {"{" T("a", "Q9", "[2]", 0, 8) "}", 8, "caution", "unknown dtype"},
      {"{\"__metadata__\":{\"n\":1}}", 0, "caution", "__metadata__"},
      {"[1]", 0, "caution", "not a JSON object"},
      {"{\"a\":", 0, "caution", "not valid JSON"},
      {"{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 0, 8) "}", 8, "suspicious",
       "duplicate"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    st_build(&o, cases[i].hdr, cases[i].data);
    json_t *r = header_of(&o, o.n, "M.SafeTensors");
    assert_non_null(r);
    if (strcmp(status(r), cases[i].level) || !strstr(message(r), cases[i].needle))
      fail_msg("case %zu: %s: %s", i, status(r), message(r));
    json_decref(r);
  }
  /* text (an LFS pointer under the model's name): not safetensors, nothing points anywhere */
  o.n = 0;
  const char *ptr = "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n";
  put(&o, ptr, strlen(ptr));
  json_t *t = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(t), "caution");
  assert_non_null(strstr(message(t), "starts with text"));
  json_decref(t);
  /* shorter than 8 bytes */
  o.n = 0;
  put(&o, "abc", 3);
  json_t *r = header_of(&o, o.n, "m.safetensors");
  assert_string_equal(status(r), "caution");
  json_decref(r);
}

/* ---- GGUF ----------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  uint32_t ndims, type;
  uint64_t dims[6], offset;
} gt;

/* GGUF v3: general.architecture, general.alignment = align, then the tensor infos, padding
 * to the alignment, and `data` zero bytes. */
static void gguf_build(bytes *o, uint32_t align, const gt *ts, size_t nt, size_t data) {
  o->n = 0;
  put(o, "GGUF", 4);
  put_le(o, 3, 4);
  put_le(o, nt, 8);
  put_le(o, 3, 8);
  put_str(o, "general.architecture");
  put_le(o, 8, 4);
  put_str(o, "llama");
  put_str(o, "general.alignment");
  put_le(o, 4, 4);
  put_le(o, align, 4);
  put_str(o, "tokenizer.ggml.tokens");
  put_le(o, 9, 4);
  put_le(o, 8, 4);
  put_le(o, 2, 8);
  put_str(o, "<s>");
  put_str(o, "</s>");
  for (size_t i = 0; i < nt; i++) {
    put_str(o, ts[i].name);
    put_le(o, ts[i].ndims, 4);
    for (uint32_t d = 0; d < ts[i].ndims && d < 6; d++)
      put_le(o, ts[i].dims[d], 8);
    put_le(o, ts[i].type, 4);
    put_le(o, ts[i].offset, 8);
  }
  while (o->n % align)
    put_le(o, 0, 1);
  put_zero(o, data);
}

static void test_gguf_valid(void **state) {
  (void)state;
  bytes o;
  gt ts[] = {{"tok_embd.weight", 2, 0, {4, 2}, 0},    /* F32: 32 bytes */
             {"blk.0.attn_q.weight", 1, 8, {64}, 32}, /* Q8_0: 2 blocks of 34 = 68 bytes */
             {"output_norm", 1, 1, {4}, 128}};        /* F16: 8 bytes, aligned to 32 */
  gguf_build(&o, 32, ts, 3, 136);
  json_t *r = header_of(&o, o.n, "models/tiny.gguf");
  assert_non_null(r);
  if (strcmp(status(r), "safe")) fail_msg("%s: %s", status(r), message(r));
  assert_string_equal(json_string_value(json_object_get(r, "format")), "gguf");
  json_decref(r);
  /* found by its magic under another name too */
  r = header_of(&o, o.n, "weights.bin");
  assert_non_null(r);
  assert_string_equal(status(r), "safe");
  json_decref(r);
}

static void test_gguf_truncated(void **state) {
  (void)state;
  bytes o;
  gt ts[] = {{"a", 2, 0, {4, 2}, 0}, {"b", 1, 0, {8}, 32}};
  gguf_build(&o, 32, ts, 2, 64);
  /* cut inside the tensor data: tensor b points past the end */
  json_t *r = header_of(&o, o.n - 10, "t.gguf");
  assert_string_equal(status(r), "unsafe");
  assert_non_null(strstr(message(r), "beyond the end"));
  json_decref(r);
  /* cut inside the metadata: a string length points past the end */
  for (size_t cut = 5; cut < 120; cut += 7) {
    r = header_of(&o, cut, "t.gguf");
    assert_non_null(r);
    if (strcmp(status(r), "unsafe")) fail_msg("cut %zu: %s: %s", cut, status(r), message(r));
    json_decref(r);
  }
}

static void test_gguf_bad(void **state) {
  (void)state;
  bytes o;
  json_t *r;
  gt overlap[] = {{"a", 1, 0, {16}, 0}, {"b", 1, 0, {8}, 32}}; /* a is 64 bytes */
  gguf_build(&o, 32, overlap, 2, 96);
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "unsafe");
  assert_non_null(strstr(message(r), "overlap"));
  json_decref(r);

  gt misaligned[] = {{"a", 1, 0, {4}, 8}};
  gguf_build(&o, 32, misaligned, 1, 64);
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "caution");
  assert_non_null(strstr(message(r), "aligned"));
  json_decref(r);

  gt dims[] = {{"a", 5, 0, {1, 1, 1, 1, 1}, 0}};
  gguf_build(&o, 32, dims, 1, 64);
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "unsafe");
  assert_non_null(strstr(message(r), "dimensions"));
  json_decref(r);

  gt ovf[] = {{"a", 2, 0, {1ull << 40, 1ull << 40}, 0}};
  gguf_build(&o, 32, ovf, 1, 64);
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "unsafe");
  json_decref(r);

  gguf_build(&o, 24, misaligned, 1, 64); /* alignment not a power of two */
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "caution");
  json_decref(r);

  /* version 4, bad magic, absurd counts */
  gguf_build(&o, 32, NULL, 0, 0);
  o.b[4] = 4;
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "caution");
  json_decref(r);
  gguf_build(&o, 32, NULL, 0, 0);
  o.b[0] = 'X';
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "caution");
  json_decref(r);
  assert_null(header_of(&o, o.n, "x.bin")); /* no magic, other name: not a header file */
  gguf_build(&o, 32, NULL, 0, 0);
  o.b[15] = 0x7f; /* 2^62-ish tensors */
  r = header_of(&o, o.n, "x.gguf");
  assert_string_equal(status(r), "suspicious");
  json_decref(r);
}

/* ---- secrets -------------------------------------------------------------------------- */

static json_t *secrets_of(const char *text, const char *path) {
  int fd = mkfd(text, strlen(text));
  json_t *r = scan_secrets(fd, strlen(text), path, NULL);
  close(fd);
  return r;
}

/* The single finding of rule `rule`; fails unless there is exactly one. */
static json_t *finding(json_t *r, const char *rule) {
  json_t *found = NULL, *f;
  size_t i;
  json_array_foreach(json_object_get(r, "findings"), i, f) {
    if (!strcmp(json_string_value(json_object_get(f, "rule")), rule)) {
      if (found) fail_msg("two findings of %s", rule);
      found = f;
    }
  }
  if (!found) fail_msg("no finding of %s in %s", rule, json_dumps(r, 0));
  return found;
}

static void test_secrets_cloud_key(void **state) {
  (void)state;
  char key[32], text[512];
  snprintf(key, sizeof key, "AKIA%s", "Z7QX3MPLW2RTY4NB");
  snprintf(text, sizeof text,
           "# My model\n\nUse it with:\n\n    aws_access_key_id = %s\n"
           "    aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
           key);
  json_t *r = secrets_of(text, "README.md");
  assert_non_null(r);
  assert_string_equal(status(r), "unsafe");
  json_t *f = finding(r, "aws-access-key-id");
  assert_int_equal(json_integer_value(json_object_get(f, "line")), 5);
  assert_int_equal(json_array_size(json_object_get(r, "findings")), 1); /* EXAMPLE ignored */
  char *dump = json_dumps(r, 0);
  assert_null(strstr(dump, key));
  assert_null(strstr(dump, "Z7QX3MPL"));
  free(dump);
  json_decref(r);
}

static void test_secrets_rules(void **state) {
  (void)state;
  char text[4096];
  const char *b64 = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
  int n =
      snprintf(text, sizeof text,
               "import os\n"                                                       /* 1 */
               "HF = \"hf_%s\"\n"                                                  /* 2 */
               "gh = 'ghp_%s'\n"                                                   /* 3 */
               "gl = \"glpat-%s\"\n"                                               /* 4 */
               "slack = \"xoxb-%s\"\n"                                             /* 5 */
               "openai = \"sk-%s\"\n"                                              /* 6 */
               "key = '''-----BEGIN RSA PRIVATE KEY-----\n"                        /* 7 */
               "%s\n"                                                              /* 8 */
               "-----END RSA PRIVATE KEY-----'''\n"                                /* 9 */
               "sa = {\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n%s\\n\"}\n" /* 10 */
               "db_password = \"%s\"\n"                                            /* 11 */
               "aws_secret_access_key = %s\n"                                      /* 12 */
               "password = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\n" /* 13: low entropy */
               "# -----BEGIN PRIVATE KEY----- goes here\n" /* 14: no body */
               "task-%s\n",                                /* 15: not sk- */
               "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0UvWxYz12",
               "Ab1Cd2Ef3Gh4Ij5Kl6Mn", "1234567890-0987654321-AbCdEfGh",
               "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0UvWx", b64, b64, "Zq8#xP2!vL9@mK4$wR7&nB3^",
               "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzz1234", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0UvWx");
  assert_true(n > 0 && (size_t)n < sizeof text);
  json_t *r = secrets_of(text, "src/train.py");
  assert_non_null(r);
  assert_string_equal(status(r), "unsafe");
  struct {
    const char *rule;
    int line;
  } want[] = {{"hf-token", 2},
              {"github-token", 3},
              {"gitlab-token", 4},
              {"slack-token", 5},
              {"openai-key", 6},
              {"private-key", 7},
              {"gcp-service-account-key", 10},
              {"generic-secret", 11},
              {"aws-secret-access-key", 12}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    json_t *f = finding(r, want[i].rule);
    assert_int_equal(json_integer_value(json_object_get(f, "line")), want[i].line);
  }
  assert_int_equal(json_array_size(json_object_get(r, "findings")), 9);
  char *dump = json_dumps(r, 0);
  assert_null(strstr(dump, "AbCdEfGh"));
  assert_null(strstr(dump, "Ab1Cd2"));
  assert_null(strstr(dump, "Zq8#"));
  assert_null(strstr(dump, "MIIE"));
  free(dump);
  json_decref(r);
}

static void test_secrets_generic(void **state) {
  (void)state;
  /* unquoted values count in .env files only; tokenizer special tokens are not secrets */
  const char *env = "API_KEY=Zq8xP2vL9mK4wR7nB3tY6uJ1\nDEBUG=1\n";
  json_t *r = secrets_of(env, ".env");
  assert_string_equal(status(r), "caution");
  json_t *f = finding(r, "generic-secret");
  assert_int_equal(json_integer_value(json_object_get(f, "line")), 1);
  assert_non_null(strstr(json_string_value(json_object_get(f, "message")), "API_KEY"));
  json_decref(r);
  r = secrets_of(env, "notes.txt");
  assert_string_equal(status(r), "safe");
  json_decref(r);
  const char *tok = "{\"pad_token\": \"Zq8xP2vL9mK4wR7nB3tY6uJ1\",\n"
                    " \"tokenizer_class\": \"PreTrainedTokenizerFastXYZ1234\",\n"
                    " \"auth_token\": \"Zq8xP2vL9mK4wR7nB3tY6uJ1\"}\n";
  r = secrets_of(tok, "tokenizer_config.json");
  assert_string_equal(status(r), "caution");
  f = finding(r, "generic-secret");
  assert_int_equal(json_integer_value(json_object_get(f, "line")), 3);
  assert_int_equal(json_array_size(json_object_get(r, "findings")), 1);
  json_decref(r);
}

static void test_secrets_scope(void **state) {
  (void)state;
  char key[32];
  snprintf(key, sizeof key, "AKIA%s", "Z7QX3MPLW2RTY4NB");
  /* not a text file by name, or binary by content: not scanned */
  int fd = mkfd(key, strlen(key));
  assert_null(scan_secrets(fd, strlen(key), "model.bin", NULL));
  close(fd);
  char bin[64] = "x\0y ";
  memcpy(bin + 4, key, strlen(key));
  fd = mkfd(bin, sizeof bin);
  assert_null(scan_secrets(fd, sizeof bin, "notes.txt", NULL));
  close(fd);
  /* a long single line is scanned in windows: the key far into it is found on line 1 */
  size_t n = 50000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'a', n);
  for (size_t i = 100; i < n; i += 997)
    big[i] = ' ';
  memcpy(big + 30000, " ", 1);
  memcpy(big + 30001, key, strlen(key));
  big[30001 + strlen(key)] = ' ';
  big[n] = 0;
  json_t *r = secrets_of(big, "data.json");
  assert_string_equal(status(r), "unsafe");
  assert_int_equal(json_integer_value(json_object_get(finding(r, "aws-access-key-id"), "line")), 1);
  json_decref(r);
  /* text_max_bytes bounds what is read */
  scan_limits lim = {0};
  lim.text_max_bytes = 1000;
  fd = mkfd(big, n);
  r = scan_secrets(fd, n, "data.json", &lim);
  assert_string_equal(status(r), "safe");
  assert_non_null(strstr(message(r), "first 1000 bytes"));
  json_decref(r);
  close(fd);
  free(big);
}

/* ---- ClamAV ----------------------------------------------------------------------------- */

static char tmpdir[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int av_setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/detect-av-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int av_teardown(void **state) {
  (void)state;
  return nftw(tmpdir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* The EICAR test string, from two halves. */
static void eicar(char out[80]) {
  snprintf(out, 80, "%s%s", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-",
           "ANTIVIRUS-TEST-FILE!$H+H*");
}

/* An .ndb signature file matching `text` anywhere in any file. */
static void write_sig(const char *file, const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", tmpdir, file);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "%s:0:*:", name);
  for (const char *p = text; *p; p++)
    fprintf(f, "%02x", (unsigned char)*p);
  fprintf(f, "\n");
  assert_int_equal(fclose(f), 0);
}

static json_t *av_of(struct scan_av *av, const char *text) {
  int fd = mkfd(text, strlen(text));
  json_t *r = scan_av_scan(av, fd, strlen(text));
  close(fd);
  assert_non_null(r);
  return r;
}

static void test_av_eicar(void **state) {
  (void)state;
  char e[80];
  eicar(e);
  write_sig("test.ndb", "Eicar-Test-Signature", e);
  struct scan_av *av = scan_av_open(tmpdir);
  assert_non_null(av);
  assert_int_equal(scan_av_signatures(av), 1);
  json_t *r = av_of(av, e);
  assert_string_equal(status(r), "unsafe");
  assert_non_null(
      strstr(json_string_value(json_object_get(r, "signature")), "Eicar-Test-Signature"));
  json_decref(r);
  r = av_of(av, "an innocent README\n");
  assert_string_equal(status(r), "safe");
  json_decref(r);
  scan_av_close(av);
  /* a size limit below the file: not scanned, and the report says why */
  av = scan_av_open_limits(tmpdir, 16);
  r = av_of(av, e);
  assert_string_equal(status(r), "unscanned");
  assert_non_null(strstr(message(r), "limit"));
  json_decref(r);
  scan_av_close(av);
  /* a limit over libclamav's own cap (2 GiB - 3, past which it calls files clean unread)
   * is capped: a 3 GiB file is "unscanned", not "safe" */
  av = scan_av_open_limits(tmpdir, 1ull << 40);
  int fd = mkfd(e, strlen(e));
  r = scan_av_scan(av, fd, 3ull << 30);
  close(fd);
  assert_string_equal(status(r), "unscanned");
  json_decref(r);
  scan_av_close(av);
}

static void test_av_no_database(void **state) {
  (void)state;
  char e[80];
  eicar(e);
  struct scan_av *av = scan_av_open(NULL);
  json_t *r = av_of(av, e);
  assert_string_equal(status(r), "unscanned");
  assert_non_null(strstr(message(r), "no malware signature database"));
  json_decref(r);
  assert_int_equal(scan_av_reload_if_changed(av), 0);
  scan_av_close(av);
  r = av_of(NULL, e);
  assert_string_equal(status(r), "unscanned");
  json_decref(r);
  /* an empty directory (and a missing one) are "no database", not a failure */
  av = scan_av_open(tmpdir);
  assert_non_null(av);
  assert_int_equal(scan_av_signatures(av), 0);
  r = av_of(av, e);
  assert_string_equal(status(r), "unscanned");
  json_decref(r);
  scan_av_close(av);
  /* a malformed signature file: still "unscanned", and the message says the load failed */
  char bad[128];
  snprintf(bad, sizeof bad, "%s/broken.ndb", tmpdir);
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fputs("not a signature\n", f);
  assert_int_equal(fclose(f), 0);
  av = scan_av_open(tmpdir);
  assert_non_null(av);
  r = av_of(av, e);
  assert_string_equal(status(r), "unscanned");
  assert_non_null(strstr(message(r), "failed to load"));
  json_decref(r);
  scan_av_close(av);
  av = scan_av_open("/nonexistent/modelhub-clamav");
  assert_non_null(av);
  r = av_of(av, e);
  assert_string_equal(status(r), "unscanned");
  json_decref(r);
  scan_av_close(av);
}

static void test_av_reload(void **state) {
  (void)state;
  char e[80];
  eicar(e);
  struct scan_av *av = scan_av_open(tmpdir); /* empty */
  assert_int_equal(scan_av_reload_if_changed(av), 0);
  write_sig("eicar.ndb", "Eicar-Test-Signature", e);
  assert_int_equal(scan_av_reload_if_changed(av), 1);
  assert_int_equal(scan_av_reload_if_changed(av), 0);
  json_t *r = av_of(av, e);
  assert_string_equal(status(r), "unsafe");
  json_decref(r);
  const char *other = "modelhub test payload 42";
  r = av_of(av, other);
  assert_string_equal(status(r), "safe");
  json_decref(r);
  /* a second signature file: picked up without reopening */
  write_sig("more.ndb", "Modelhub-Test-Payload", other);
  assert_int_equal(scan_av_reload_if_changed(av), 1);
  assert_int_equal(scan_av_signatures(av), 2);
  r = av_of(av, other);
  assert_string_equal(status(r), "unsafe");
  assert_non_null(
      strstr(json_string_value(json_object_get(r, "signature")), "Modelhub-Test-Payload"));
  json_decref(r);
  scan_av_close(av);
}

/* Scans running while the engine is swapped: each finishes on the engine it started with,
 * and every engine (old or new) has the EICAR signature. */
typedef struct {
  struct scan_av *av;
  int unsafe, runs;
} scanner_arg;

static void *scanner(void *p) {
  scanner_arg *a = p;
  char e[80];
  eicar(e);
  for (int i = 0; i < 30; i++) {
    int fd = mkfd(e, strlen(e));
    json_t *r = scan_av_scan(a->av, fd, strlen(e));
    close(fd);
    a->runs++;
    if (r && !strcmp(status(r), "unsafe")) a->unsafe++;
    json_decref(r);
  }
  return NULL;
}

static void test_av_reload_concurrent(void **state) {
  (void)state;
  char e[80];
  eicar(e);
  write_sig("eicar.ndb", "Eicar-Test-Signature", e);
  struct scan_av *av = scan_av_open(tmpdir);
  scanner_arg args[2] = {{av, 0, 0}, {av, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, scanner, &args[i]), 0);
  for (int i = 0; i < 4; i++) {
    char file[32], text[32];
    snprintf(file, sizeof file, "extra%d.ndb", i);
    snprintf(text, sizeof text, "modelhub payload %d", i);
    write_sig(file, "Modelhub-Extra", text);
    assert_int_equal(scan_av_reload_if_changed(av), 1);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(args[i].unsafe, args[i].runs);
  assert_int_equal(scan_av_signatures(av), 5);
  scan_av_close(av);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_st_valid),
      cmocka_unit_test(test_st_overlap),
      cmocka_unit_test(test_st_bounds),
      cmocka_unit_test(test_st_inconsistent),
      cmocka_unit_test(test_gguf_valid),
      cmocka_unit_test(test_gguf_truncated),
      cmocka_unit_test(test_gguf_bad),
      cmocka_unit_test(test_secrets_cloud_key),
      cmocka_unit_test(test_secrets_rules),
      cmocka_unit_test(test_secrets_generic),
      cmocka_unit_test(test_secrets_scope),
      cmocka_unit_test_setup_teardown(test_av_eicar, av_setup, av_teardown),
      cmocka_unit_test_setup_teardown(test_av_no_database, av_setup, av_teardown),
      cmocka_unit_test_setup_teardown(test_av_reload, av_setup, av_teardown),
      cmocka_unit_test_setup_teardown(test_av_reload_concurrent, av_setup, av_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
