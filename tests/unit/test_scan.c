/* Unit tests for src/scan/: the pickle walker, the archive scanner and the dispatcher
 * (docs/scanning.md). Fixtures are built here: hand-written pickle bytes (always), zips
 * written by a small builder with zlib, and a real torch.save checkpoint when Debian's
 * /usr/bin/python3 can import torch (skipped with a message otherwise). */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "scan/pickle.h"
#include "scan/scan.h"

/* ---- builders --------------------------------------------------------------------- */

typedef struct {
  unsigned char *b;
  size_t n, cap;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  if (o->n + n > o->cap) {
    o->cap = (o->n + n) * 2 + 64;
    o->b = realloc(o->b, o->cap);
    assert_non_null(o->b);
  }
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void puts_(bytes *o, const char *s) {
  put(o, s, strlen(s));
}
static void put_le(bytes *o, uint64_t v, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    put(o, &c, 1);
  }
}
static void op(bytes *o, int c) {
  unsigned char b = (unsigned char)c;
  put(o, &b, 1);
}
static void short_unicode(bytes *o, const char *s) {
  op(o, 0x8c);
  op(o, (int)strlen(s));
  puts_(o, s);
}

typedef struct {
  bytes data, cd;
  unsigned count;
} zipw;

/* Add a member: method 0 stored / 8 deflate; `declared` overrides the uncompressed size in
 * the headers when non-zero; flags are written as given (bit 0: encrypted). */
static void zip_add(zipw *z, const char *name, const void *p, size_t n, int method, uint16_t flags,
                    uint64_t declared) {
  unsigned char *comp = NULL;
  size_t clen = n;
  if (method == 8) {
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&s, n);
    comp = malloc(cap);
    s.next_in = (unsigned char *)p;
    s.avail_in = (uInt)n;
    s.next_out = comp;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    clen = cap - s.avail_out;
    deflateEnd(&s);
  }
  uint32_t crc = (uint32_t)crc32(0, p, (uInt)n);
  uint64_t usize = declared ? declared : n;
  size_t off = z->data.n, nl = strlen(name);
  put_le(&z->data, 0x04034b50, 4);
  put_le(&z->data, 20, 2);
  put_le(&z->data, flags, 2);
  put_le(&z->data, (uint64_t)method, 2);
  put_le(&z->data, 0, 4);
  put_le(&z->data, crc, 4);
  put_le(&z->data, clen, 4);
  put_le(&z->data, usize, 4);
  put_le(&z->data, nl, 2);
  put_le(&z->data, 0, 2);
  put(&z->data, name, nl);
  put(&z->data, method == 8 ? comp : p, clen);
  put_le(&z->cd, 0x02014b50, 4);
  put_le(&z->cd, 20, 2);
  put_le(&z->cd, 20, 2);
  put_le(&z->cd, flags, 2);
  put_le(&z->cd, (uint64_t)method, 2);
  put_le(&z->cd, 0, 4);
  put_le(&z->cd, crc, 4);
  put_le(&z->cd, clen, 4);
  put_le(&z->cd, usize, 4);
  put_le(&z->cd, nl, 2);
  put_le(&z->cd, 0, 2);
  put_le(&z->cd, 0, 2);
  put_le(&z->cd, 0, 2);
  put_le(&z->cd, 0, 2);
  put_le(&z->cd, 0, 4);
  put_le(&z->cd, off, 4);
  put(&z->cd, name, nl);
  z->count++;
  free(comp);
}

/* The finished zip (owned by the caller); z is reset. With dup > 1 its central directory
 * lists every member dup times, all pointing at the same data (overlapping entries). */
static bytes zip_end_dup(zipw *z, unsigned dup) {
  bytes out = z->data;
  size_t cd_off = out.n;
  for (unsigned i = 1; i < dup; i++)
    put(&out, z->cd.b, z->cd.n);
  z->count *= dup ? dup : 1;
  z->cd.n *= dup ? dup : 1;
  put(&out, z->cd.b, z->cd.n / (dup ? dup : 1));
  put_le(&out, 0x06054b50, 4);
  put_le(&out, 0, 4);
  put_le(&out, z->count, 2);
  put_le(&out, z->count, 2);
  put_le(&out, z->cd.n, 4);
  put_le(&out, cd_off, 4);
  put_le(&out, 0, 2);
  free(z->cd.b);
  memset(z, 0, sizeof *z);
  return out;
}

/* ---- running scans ---------------------------------------------------------------- */

static char g_dir[] = "/tmp/test_scan.XXXXXX";

static bytes zip_end(zipw *z) {
  return zip_end_dup(z, 1);
}

static json_t *scan_bytes_lim(const char *name, const void *p, size_t n, const scan_limits *lim) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  scan_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (lim) cfg.limits = *lim;
  json_t *rep = NULL;
  assert_int_equal(scan_fd(&cfg, fd, n, name, &rep), 0);
  close(fd);
  unlink(path);
  assert_non_null(rep);
  /* the fd and memory paths of the engine agree on pickles and archives */
  json_t *mem = NULL;
  assert_int_equal(scan_mem(lim, p, n, name, &mem), 0);
  json_t *a = json_object_get(json_object_get(rep, "scanners"), "pickle");
  json_t *b = json_object_get(json_object_get(mem, "scanners"), "pickle");
  assert_true((!a && !b) || json_equal(a, b));
  json_decref(mem);
  return rep;
}

static json_t *scan_bytes(const char *name, const void *p, size_t n) {
  return scan_bytes_lim(name, p, n, NULL);
}

static const char *level(const json_t *rep) {
  return json_string_value(json_object_get(rep, "level"));
}
static const char *scanner_status(const json_t *rep, const char *scanner) {
  return json_string_value(
      json_object_get(json_object_get(json_object_get(rep, "scanners"), scanner), "status"));
}

/* "safety" of import module.name in the report, or NULL if not listed. */
static const char *import_safety(const json_t *rep, const char *module, const char *name) {
  json_t *imps =
      json_object_get(json_object_get(json_object_get(rep, "scanners"), "pickle"), "imports");
  size_t i;
  json_t *v;
  json_array_foreach(imps, i, v) {
    if (!strcmp(json_string_value(json_object_get(v, "module")), module) &&
        !strcmp(json_string_value(json_object_get(v, "name")), name))
      return json_string_value(json_object_get(v, "safety"));
  }
  return NULL;
}

/* Some archive finding's message contains `text` (and its member is `member` if given). */
static int has_finding(const json_t *rep, const char *member, const char *text) {
  json_t *f =
      json_object_get(json_object_get(json_object_get(rep, "scanners"), "archive"), "findings");
  size_t i;
  json_t *v;
  json_array_foreach(f, i, v) {
    if (member && strcmp(json_string_value(json_object_get(v, "member")), member)) continue;
    if (strstr(json_string_value(json_object_get(v, "message")), text)) return 1;
  }
  return 0;
}

static int has_member(const json_t *rep, const char *member) {
  json_t *m =
      json_object_get(json_object_get(json_object_get(rep, "scanners"), "pickle"), "members");
  size_t i;
  json_t *v;
  json_array_foreach(m, i, v) if (!strcmp(json_string_value(v), member)) return 1;
  return 0;
}

/* Pickle fixtures. */
static const char SAFE_P2[] = "\x80\x02"
                              "ccollections\nOrderedDict\nq\x00)Rq\x01.";
static const char OS_SYSTEM_P0[] = "cos\nsystem\n(S'echo pwned'\ntR.";

static void p4_stack_global(bytes *o, const char *module, const char *name) {
  op(o, 0x80), op(o, 4);
  short_unicode(o, module), op(o, 0x94); /* memo 0 */
  short_unicode(o, name), op(o, 0x94);   /* memo 1 */
  op(o, '0'), op(o, '0');                /* pop both: only the memo has them now */
  op(o, 'h'), op(o, 0);                  /* BINGET 0 */
  op(o, 'h'), op(o, 1);                  /* BINGET 1 */
  op(o, 0x93);                           /* STACK_GLOBAL */
  short_unicode(o, "1+1");
  op(o, 0x85), op(o, 'R'), op(o, '.');
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_classify(void **state) {
  (void)state;
  assert_int_equal(pickle_classify("torch._utils", "_rebuild_tensor_v2"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("torch._utils", "_rebuild_parameter"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("torch", "FloatStorage"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("collections", "OrderedDict"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("_codecs", "encode"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("numpy.core.multiarray", "_reconstruct"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("numpy", "dtype"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("numpy", "ndarray"), PICKLE_INNOCUOUS);
  assert_int_equal(pickle_classify("builtins", "eval"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("__builtin__", "exec"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("builtins", "getattr"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("builtins", "open"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("builtins", "__import__"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("os", "system"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("os.path", "join"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("posix", "system"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("subprocess", "Popen"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("socket", "socket"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("runpy", "run_path"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("pickle", "loads"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("shutil", "rmtree"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("functools", "partial"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("operator", "attrgetter"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("operator", "methodcaller"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("torch._utils", "os.system"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("torch", "Tensor.__reduce_ex__"), PICKLE_DANGEROUS);
  assert_int_equal(pickle_classify("osmium", "x"), PICKLE_SUSPICIOUS); /* not "os" */
  assert_int_equal(pickle_classify("mylib.models", "Net"), PICKLE_SUSPICIOUS);
}

static void test_safe_pickle(void **state) {
  (void)state;
  json_t *r = scan_bytes("state.pkl", SAFE_P2, sizeof SAFE_P2 - 1);
  assert_string_equal(level(r), "safe");
  assert_string_equal(scanner_status(r, "pickle"), "safe");
  assert_string_equal(import_safety(r, "collections", "OrderedDict"), "innocuous");
  assert_true(has_member(r, "state.pkl"));
  json_decref(r);
}

static void test_os_system_every_protocol_shape(void **state) {
  (void)state;
  json_t *r = scan_bytes("evil.pkl", OS_SYSTEM_P0, sizeof OS_SYSTEM_P0 - 1);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  json_decref(r);
  /* the same as a raw .bin (magic 0x80) and as .joblib / .dat */
  bytes b = {0};
  static const char P2[] = "\x80\x02"
                           "cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
  put(&b, P2, sizeof P2 - 1);
  const char *names[] = {"pytorch_model.bin", "m.joblib", "m.dat", "m.pt"};
  for (size_t i = 0; i < 4; i++) {
    r = scan_bytes(names[i], b.b, b.n);
    assert_string_equal(level(r), "unsafe");
    assert_string_equal(import_safety(r, "posix", "system"), "dangerous");
    json_decref(r);
  }
  /* a .bin that is neither a pickle nor a zip: no pickle scanner */
  r = scan_bytes("weights.bin", "\x01\x02\x03\x04", 4);
  assert_null(json_object_get(json_object_get(r, "scanners"), "pickle"));
  assert_string_equal(level(r), "safe");
  json_decref(r);
  /* INST (protocol 0 instantiation) imports too */
  static const char INST[] = "(S'ls'\nisubprocess\nPopen\n.";
  r = scan_bytes("inst.pkl", INST, sizeof INST - 1);
  assert_string_equal(import_safety(r, "subprocess", "Popen"), "dangerous");
  json_decref(r);
  free(b.b);
}

static void test_stack_global_memo(void **state) {
  (void)state;
  bytes b = {0};
  p4_stack_global(&b, "builtins", "eval");
  json_t *r = scan_bytes("sg.pkl", b.b, b.n);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(import_safety(r, "builtins", "eval"), "dangerous");
  json_decref(r);
  free(b.b);
  memset(&b, 0, sizeof b);
  p4_stack_global(&b, "collections", "OrderedDict"); /* resolves to an innocuous import */
  r = scan_bytes("sg.pkl", b.b, b.n);
  assert_string_equal(level(r), "safe");
  assert_string_equal(import_safety(r, "collections", "OrderedDict"), "innocuous");
  json_decref(r);
  free(b.b);
  /* LONG_BINPUT / LONG_BINGET and BINUNICODE8 strings, in a FRAME */
  memset(&b, 0, sizeof b);
  op(&b, 0x80), op(&b, 5), op(&b, 0x95), put_le(&b, 40, 8);
  op(&b, 0x8d), put_le(&b, 2, 8), puts_(&b, "os"), op(&b, 'r'), put_le(&b, 70000, 4);
  op(&b, 0x8d), put_le(&b, 6, 8), puts_(&b, "system"), op(&b, 'r'), put_le(&b, 70001, 4);
  op(&b, '0'), op(&b, '0');
  op(&b, 'j'), put_le(&b, 70000, 4), op(&b, 'j'), put_le(&b, 70001, 4), op(&b, 0x93), op(&b, '.');
  r = scan_bytes("sg8.pkl", b.b, b.n);
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  json_decref(r);
  free(b.b);
  /* MEMOIZE's index is the number of keys stored (as in Python), not the highest + 1 */
  memset(&b, 0, sizeof b);
  op(&b, 0x80), op(&b, 4);
  short_unicode(&b, "builtins"), op(&b, 'q'), op(&b, 5); /* BINPUT 5 */
  short_unicode(&b, "eval"), op(&b, 0x94);               /* MEMOIZE: key 1 */
  op(&b, '0'), op(&b, '0'), op(&b, 'h'), op(&b, 5), op(&b, 'h'), op(&b, 1), op(&b, 0x93),
      op(&b, '.');
  r = scan_bytes("sparse.pkl", b.b, b.n);
  assert_string_equal(import_safety(r, "builtins", "eval"), "dangerous");
  json_decref(r);
  free(b.b);
  /* operands that are not string constants: unresolved, dangerous */
  memset(&b, 0, sizeof b);
  op(&b, 0x80), op(&b, 4);
  puts_(&b, "ccollections\nOrderedDict\n)R"); /* an object, not a str */
  short_unicode(&b, "system");
  op(&b, 0x93), op(&b, '.');
  r = scan_bytes("dyn.pkl", b.b, b.n);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(import_safety(r, "<unresolved>", "system"), "dangerous");
  json_decref(r);
  free(b.b);
  /* an escaped protocol-0 string is not taken at face value */
  static const char ESC[] = "S'o\\x73'\nS'system'\n\x93.";
  r = scan_bytes("esc.pkl", ESC, sizeof ESC - 1);
  assert_string_equal(level(r), "unsafe");
  json_decref(r);
}

static void test_getattr_hides_exec(void **state) {
  (void)state;
  /* getattr(__import__('builtins'), 'exec')('print(1)') */
  static const char P[] = "c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'builtins'\ntR"
                          "S'exec'\ntR(S'print(1)'\ntR.";
  json_t *r = scan_bytes("ga.pkl", P, sizeof P - 1);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(import_safety(r, "__builtin__", "getattr"), "dangerous");
  assert_string_equal(import_safety(r, "__builtin__", "__import__"), "dangerous");
  json_decref(r);
}

static void test_malformed_and_stacked(void **state) {
  (void)state;
  /* truncated after a dangerous import: still unsafe; harmless but cut: suspicious */
  json_t *r = scan_bytes("cut.pkl", "cos\nsystem\n(", 12);
  assert_string_equal(level(r), "unsafe");
  json_decref(r);
  r = scan_bytes("cut.pkl", "\x80\x02}q\x00(", 6);
  assert_string_equal(level(r), "suspicious");
  json_decref(r);
  r = scan_bytes("bad.pkl", "\x80\x02\xff", 3);
  assert_string_equal(scanner_status(r, "pickle"), "suspicious");
  json_decref(r);
  /* legacy torch.save layout: pickles back to back, the dangerous one last */
  bytes b = {0};
  puts_(&b, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."); /* magic number */
  puts_(&b, "\x80\x02K\xe9.");                                            /* protocol */
  put(&b, SAFE_P2, sizeof SAFE_P2 - 1);
  puts_(&b, "\x80\x02");
  puts_(&b, OS_SYSTEM_P0);
  puts_(&b, "\x01\x02\x03 raw storage bytes");
  r = scan_bytes("legacy.pt", b.b, b.n);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  assert_string_equal(import_safety(r, "collections", "OrderedDict"), "innocuous");
  json_decref(r);
  free(b.b);
}

static void test_big_payload_skipped(void **state) {
  (void)state;
  /* BINBYTES8 of 512 MiB in a sparse file, then a dangerous import: the payload is skipped
   * by seeking and what follows it is still walked. */
  char path[512];
  snprintf(path, sizeof path, "%s/big.pkl", g_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  bytes h = {0};
  op(&h, 0x80), op(&h, 4), op(&h, 0x8e), put_le(&h, 512ull << 20, 8);
  assert_int_equal(write(fd, h.b, h.n), (ssize_t)h.n);
  off_t tail = (off_t)h.n + (512ll << 20);
  static const char T[] = "0cos\nsystem\n.";
  assert_int_equal(pwrite(fd, T, sizeof T - 1, tail), (ssize_t)(sizeof T - 1));
  uint64_t size = (uint64_t)tail + sizeof T - 1;
  json_t *r = NULL;
  assert_int_equal(scan_fd(NULL, fd, size, "big.pkl", &r), 0);
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  json_decref(r);
  /* pickle_max_bytes: walked up to the limit only → caution */
  scan_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.limits.pickle_max_bytes = 1 << 20;
  assert_int_equal(scan_fd(&cfg, fd, size, "big.pkl", &r), 0);
  assert_string_equal(scanner_status(r, "pickle"), "caution");
  json_decref(r);
  close(fd);
  unlink(path);
  free(h.b);
}

static void test_npy_object(void **state) {
  (void)state;
  bytes b = {0};
  const char *hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
  puts_(&b, "\x93NUMPY\x01");
  op(&b, 0);
  put_le(&b, strlen(hdr) + 1, 2);
  puts_(&b, hdr);
  op(&b, '\n');
  puts_(&b, OS_SYSTEM_P0);
  json_t *r = scan_bytes("x.npy", b.b, b.n);
  assert_string_equal(level(r), "unsafe");
  json_decref(r);
  /* the same bytes after a float dtype: no pickle to walk */
  b.b[10 + 12] = 'f'; /* '|O' → '|f' */
  r = scan_bytes("x.npy", b.b, b.n);
  assert_null(json_object_get(json_object_get(r, "scanners"), "pickle"));
  json_decref(r);
  free(b.b);
}

static void test_zip_traversal_and_pickle(void **state) {
  (void)state;
  zipw z = {0};
  zip_add(&z, "archive/data.pkl", SAFE_P2, sizeof SAFE_P2 - 1, 0, 0, 0);
  zip_add(&z, "archive/data/0", "\0\0\0\0", 4, 0, 0, 0);
  zip_add(&z, "../../etc/cron.d/x", "x", 1, 0, 0, 0);
  zip_add(&z, "/abs", "x", 1, 8, 0, 0);
  bytes zb = zip_end(&z);
  json_t *r = scan_bytes("model.pt", zb.b, zb.n);
  assert_string_equal(level(r), "unsafe");
  assert_string_equal(scanner_status(r, "archive"), "unsafe");
  assert_string_equal(scanner_status(r, "pickle"), "safe");
  assert_true(has_finding(r, "../../etc/cron.d/x", "escapes"));
  assert_true(has_finding(r, "/abs", "escapes"));
  assert_true(has_member(r, "archive/data.pkl"));
  json_decref(r);
  free(zb.b);
  /* a deflated dangerous data.pkl in a .bin checkpoint */
  memset(&z, 0, sizeof z);
  zip_add(&z, "archive/data.pkl", OS_SYSTEM_P0, sizeof OS_SYSTEM_P0 - 1, 8, 0, 0);
  zb = zip_end(&z);
  r = scan_bytes("pytorch_model.bin", zb.b, zb.n);
  assert_string_equal(scanner_status(r, "pickle"), "unsafe");
  assert_string_equal(scanner_status(r, "archive"), "safe");
  json_decref(r);
  free(zb.b);
}

static void test_zip_bomb(void **state) {
  (void)state;
  size_t n = 8u << 20;
  unsigned char *zeros = calloc(1, n);
  zipw z = {0};
  zip_add(&z, "zeros.txt", zeros, n, 8, 0, 0); /* ratio ~1000:1 in the headers */
  bytes zb = zip_end(&z);
  json_t *r = scan_bytes("bomb.zip", zb.b, zb.n);
  assert_true(has_finding(r, "zeros.txt", "ratio"));
  assert_string_equal(level(r), "suspicious");
  json_decref(r);
  /* total expansion over the configured limit */
  scan_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.zip_max_expansion = 1 << 20;
  r = scan_bytes_lim("bomb.zip", zb.b, zb.n, &lim);
  assert_true(has_finding(r, NULL, "expands to more than"));
  assert_string_equal(level(r), "unsafe");
  json_decref(r);
  free(zb.b);
  /* headers that lie: declared 100 bytes, inflates to 8 MiB; caught while inflating */
  memset(&z, 0, sizeof z);
  zip_add(&z, "data.pkl", zeros, n, 8, 0, 100);
  zb = zip_end(&z);
  r = scan_bytes("lie.npz", zb.b, zb.n);
  assert_true(has_finding(r, "data.pkl", "beyond its declared size"));
  assert_string_equal(level(r), "unsafe");
  json_decref(r);
  free(zb.b);
  /* too many members */
  memset(&z, 0, sizeof z);
  for (int i = 0; i < 20; i++)
    zip_add(&z, "m.txt", "x", 1, 0, 0, 0);
  zb = zip_end(&z);
  memset(&lim, 0, sizeof lim);
  lim.zip_max_members = 10;
  r = scan_bytes_lim("many.zip", zb.b, zb.n, &lim);
  assert_true(has_finding(r, NULL, "more than the limit"));
  json_decref(r);
  free(zb.b);
  free(zeros);
}

static void test_zip_overlapping_nested(void **state) {
  (void)state;
  /* 300 central-directory entries of one stored nested zip, itself 300 entries of one
   * pickle: 90,000 member reads unless members are bounded across nesting levels. */
  zipw z = {0};
  zip_add(&z, "a.pkl", SAFE_P2, sizeof SAFE_P2 - 1, 0, 0, 0);
  bytes inner = zip_end_dup(&z, 300);
  memset(&z, 0, sizeof z);
  zip_add(&z, "inner.zip", inner.b, inner.n, 0, 0, 0);
  bytes outer = zip_end_dup(&z, 300);
  json_t *r = scan_bytes("overlap.zip", outer.b, outer.n);
  assert_true(has_finding(r, NULL, "nested archives included"));
  assert_string_equal(level(r), "suspicious");
  json_decref(r);
  free(inner.b), free(outer.b);
}

/* A zip64 archive of one stored member: saturated 32-bit fields everywhere, the real sizes
 * and offset in zip64 extra fields, a zip64 end record and its locator. */
static bytes zip64_one(const char *name, const void *p, size_t n) {
  bytes o = {0};
  size_t nl = strlen(name);
  put_le(&o, 0x04034b50, 4), put_le(&o, 45, 2), put_le(&o, 0, 2), put_le(&o, 0, 2);
  put_le(&o, 0, 4), put_le(&o, crc32(0, p, (uInt)n), 4);
  put_le(&o, 0xffffffff, 4), put_le(&o, 0xffffffff, 4), put_le(&o, nl, 2), put_le(&o, 20, 2);
  put(&o, name, nl);
  put_le(&o, 1, 2), put_le(&o, 16, 2), put_le(&o, n, 8), put_le(&o, n, 8);
  put(&o, p, n);
  size_t cd = o.n;
  put_le(&o, 0x02014b50, 4), put_le(&o, 45, 2), put_le(&o, 45, 2), put_le(&o, 0, 2);
  put_le(&o, 0, 2), put_le(&o, 0, 4), put_le(&o, crc32(0, p, (uInt)n), 4);
  put_le(&o, 0xffffffff, 4), put_le(&o, 0xffffffff, 4), put_le(&o, nl, 2), put_le(&o, 28, 2);
  put_le(&o, 0, 2), put_le(&o, 0, 2), put_le(&o, 0, 2), put_le(&o, 0, 4);
  put_le(&o, 0xffffffff, 4);
  put(&o, name, nl);
  put_le(&o, 1, 2), put_le(&o, 24, 2), put_le(&o, n, 8), put_le(&o, n, 8), put_le(&o, 0, 8);
  size_t cd_size = o.n - cd, e64 = o.n;
  put_le(&o, 0x06064b50, 4), put_le(&o, 44, 8), put_le(&o, 45, 2), put_le(&o, 45, 2);
  put_le(&o, 0, 4), put_le(&o, 0, 4), put_le(&o, 1, 8), put_le(&o, 1, 8);
  put_le(&o, cd_size, 8), put_le(&o, cd, 8);
  put_le(&o, 0x07064b50, 4), put_le(&o, 0, 4), put_le(&o, e64, 8), put_le(&o, 1, 4);
  put_le(&o, 0x06054b50, 4), put_le(&o, 0, 4), put_le(&o, 0xffff, 2), put_le(&o, 0xffff, 2);
  put_le(&o, 0xffffffff, 4), put_le(&o, 0xffffffff, 4), put_le(&o, 0, 2);
  return o;
}

static void test_zip64(void **state) {
  (void)state;
  bytes zb = zip64_one("archive/data.pkl", OS_SYSTEM_P0, sizeof OS_SYSTEM_P0 - 1);
  json_t *r = scan_bytes("model.ckpt", zb.b, zb.n);
  assert_string_equal(scanner_status(r, "archive"), "safe");
  assert_true(has_member(r, "archive/data.pkl"));
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  json_decref(r);
  free(zb.b);
}

static void test_zip_encrypted(void **state) {
  (void)state;
  zipw z = {0};
  zip_add(&z, "archive/data.pkl", "garbage", 7, 0, 1, 0);
  bytes zb = zip_end(&z);
  json_t *r = scan_bytes("enc.pt", zb.b, zb.n);
  assert_true(has_finding(r, "archive/data.pkl", "encrypted"));
  assert_string_equal(level(r), "suspicious");
  json_decref(r);
  free(zb.b);
}

static void test_zip_nested(void **state) {
  (void)state;
  zipw z = {0};
  zip_add(&z, "a/data.pkl", OS_SYSTEM_P0, sizeof OS_SYSTEM_P0 - 1, 8, 0, 0);
  bytes inner = zip_end(&z);
  memset(&z, 0, sizeof z);
  zip_add(&z, "inner.zip", inner.b, inner.n, 0, 0, 0); /* stored: read in place */
  bytes mid = zip_end(&z);
  memset(&z, 0, sizeof z);
  zip_add(&z, "mid.npz", mid.b, mid.n, 8, 0, 0); /* deflated: inflated into memory */
  bytes outer = zip_end(&z);
  json_t *r = scan_bytes("outer.zip", outer.b, outer.n);
  assert_string_equal(level(r), "unsafe");
  assert_true(has_member(r, "mid.npz/inner.zip/a/data.pkl"));
  assert_string_equal(import_safety(r, "os", "system"), "dangerous");
  json_decref(r);
  /* deeper than nesting_max: reported, not opened */
  scan_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.nesting_max = 1;
  r = scan_bytes_lim("outer.zip", outer.b, outer.n, &lim);
  assert_true(has_finding(r, "mid.npz/inner.zip", "nested deeper"));
  assert_null(import_safety(r, "os", "system"));
  json_decref(r);
  free(inner.b), free(mid.b), free(outer.b);
}

static void test_torch_save(void **state) {
  (void)state;
  if (access("/usr/bin/python3", X_OK) ||
      system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    print_message("skip: /usr/bin/python3 cannot import torch (python3-torch not installed)\n");
    skip();
  }
  char cmd[2048], zpath[512], lpath[512];
  snprintf(zpath, sizeof zpath, "%s/model.pt", g_dir);
  snprintf(lpath, sizeof lpath, "%s/legacy.pth", g_dir);
  snprintf(
      cmd, sizeof cmd,
      "/usr/bin/python3 -c \"import torch, collections; "
      "sd = collections.OrderedDict(w=torch.zeros(4, 4), b=torch.nn.Parameter(torch.ones(2))); "
      "torch.save(sd, '%s'); torch.save(sd, '%s', _use_new_zipfile_serialization=False)\"",
      zpath, lpath);
  assert_int_equal(system(cmd), 0);
  const char *paths[] = {zpath, lpath};
  for (int i = 0; i < 2; i++) {
    int fd = open(paths[i], O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    json_t *r = NULL;
    assert_int_equal(scan_fd(NULL, fd, (uint64_t)st.st_size, paths[i], &r), 0);
    close(fd);
    assert_string_equal(level(r), "safe");
    assert_string_equal(import_safety(r, "torch._utils", "_rebuild_tensor_v2"), "innocuous");
    assert_string_equal(import_safety(r, "torch._utils", "_rebuild_parameter"), "innocuous");
    json_decref(r);
    unlink(paths[i]);
  }
}

static void test_non_utf8_names(void **state) {
  (void)state;
  /* names that are not UTF-8 are reported with '?' (JSON is UTF-8), not an error */
  static const char P[] = "c\xff\xfeos\nsy\xc3stem\n.";
  json_t *r = scan_bytes("u.pkl", P, sizeof P - 1);
  assert_string_equal(import_safety(r, "??os", "sy?stem"), "suspicious");
  json_decref(r);
  /* a message truncated in the middle of a character (module of 200 'é') */
  bytes l = {0};
  op(&l, 'c');
  for (int i = 0; i < 200; i++)
    puts_(&l, "\xc3\xa9");
  puts_(&l, "\nx\n.");
  r = scan_bytes("long.pkl", l.b, l.n);
  assert_string_equal(level(r), "suspicious");
  json_decref(r);
  free(l.b);
  zipw z = {0};
  zip_add(&z, "\xff/../data.pkl", OS_SYSTEM_P0, sizeof OS_SYSTEM_P0 - 1, 0, 0, 0);
  bytes zb = zip_end(&z);
  r = scan_bytes("u.zip", zb.b, zb.n);
  assert_true(has_finding(r, "?/../data.pkl", "escapes"));
  assert_true(has_member(r, "?/../data.pkl"));
  json_decref(r);
  free(zb.b);
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(g_dir) ? 0 : -1;
}
static int teardown(void **state) {
  (void)state;
  return rmdir(g_dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_safe_pickle),
      cmocka_unit_test(test_os_system_every_protocol_shape),
      cmocka_unit_test(test_stack_global_memo),
      cmocka_unit_test(test_getattr_hides_exec),
      cmocka_unit_test(test_malformed_and_stacked),
      cmocka_unit_test(test_big_payload_skipped),
      cmocka_unit_test(test_npy_object),
      cmocka_unit_test(test_zip_traversal_and_pickle),
      cmocka_unit_test(test_zip_bomb),
      cmocka_unit_test(test_zip_overlapping_nested),
      cmocka_unit_test(test_zip64),
      cmocka_unit_test(test_zip_encrypted),
      cmocka_unit_test(test_zip_nested),
      cmocka_unit_test(test_non_utf8_names),
      cmocka_unit_test(test_torch_save),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
