/* Blob store: write/commit/verify, dedup, rejection leaves nothing behind, concurrency,
 * multipart assembly and the tmp sweep, on the "fs" backend in a temp dir. */
#include "unit.h"

#include "blob/blob.h"
#include "util/error.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELLO_OID "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define EMPTY_OID "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
  char dir[64];
  blob_store *s;
} fixture;

static void sha_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned n;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int nfiles;
static int count_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)p, (void)sb, (void)ftw;
  if (flag == FTW_F) nfiles++;
  return 0;
}

/* regular files under dir/sub */
static int count_files(fixture *f, const char *sub) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", f->dir, sub);
  nfiles = 0;
  nftw(p, count_cb, 16, FTW_PHYS);
  return nfiles;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/test_blob.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(blob_store_open(&f->s, "fs", f->dir), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  blob_store_free(f->s);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void put(blob_store *s, const void *data, size_t len, const char *want_oid,
                int64_t want_size, int want_rc) {
  blob_writer *w;
  char oid[65] = "";
  assert_int_equal(blob_writer_open(s, &w), 0);
  assert_int_equal(blob_writer_write(w, data, len), 0);
  assert_int_equal(blob_writer_size(w), (int64_t)len);
  assert_int_equal(blob_writer_commit(w, want_oid, want_size, oid), want_rc);
  if (want_rc == 0 && want_oid) assert_string_equal(oid, want_oid);
}

static void test_oid_valid(void **state) {
  (void)state;
  assert_true(blob_oid_valid(HELLO_OID));
  assert_false(blob_oid_valid(NULL));
  assert_false(blob_oid_valid(""));
  assert_false(blob_oid_valid("2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"));
  assert_false(blob_oid_valid(HELLO_OID "0"));
  assert_false(blob_oid_valid("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982"));
  assert_false(blob_oid_valid("../4dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
}

static void test_write_commit_read(void **state) {
  fixture *f = *state;
  int64_t size = -1;
  int fd = -1;
  char buf[16] = {0};
  blob_stream *st;
  size_t n;

  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), HUB_ENOTFOUND);
  put(f->s, "hello", 5, HELLO_OID, 5, 0);
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), 0);
  assert_int_equal(size, 5);
  assert_int_equal(count_files(f, "blobs/sha256/2c/f2"), 1);
  assert_int_equal(count_files(f, "tmp"), 0);

  assert_int_equal(blob_open_fd(f->s, HELLO_OID, &fd, &size), 0);
  assert_int_equal(read(fd, buf, sizeof buf), 5);
  assert_memory_equal(buf, "hello", 5);
  close(fd);

  assert_int_equal(blob_open_stream(f->s, HELLO_OID, &st, &size), 0);
  assert_int_equal(blob_stream_read(st, buf, 3, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(blob_stream_read(st, buf + 3, 10, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(blob_stream_read(st, buf, 10, &n), 0);
  assert_int_equal(n, 0);
  blob_stream_close(st);

  /* no expectations: accept whatever was written, return its oid */
  char oid[65];
  blob_writer *w;
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_commit(w, NULL, -1, oid), 0);
  assert_string_equal(oid, EMPTY_OID);
  assert_int_equal(blob_stat(f->s, EMPTY_OID, &size), 0);
  assert_int_equal(size, 0);

  assert_int_equal(blob_delete(f->s, HELLO_OID), 0);
  assert_int_equal(blob_delete(f->s, HELLO_OID), HUB_ENOTFOUND);
  assert_int_equal(blob_open_fd(f->s, HELLO_OID, &fd, &size), HUB_ENOTFOUND);
  assert_int_equal(blob_stat(f->s, "nope", &size), HUB_EINVALID);
}

static void test_large_streaming(void **state) {
  fixture *f = *state;
  size_t len = 1000003;
  unsigned char *data = malloc(len);
  char want[65], oid[65];
  blob_writer *w;
  int64_t size;
  for (size_t i = 0; i < len; i++)
    data[i] = (unsigned char)(i * 7 + (i >> 9));
  sha_hex(data, len, want);
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  /* odd chunk sizes straddle the writer's internal buffer */
  for (size_t off = 0; off < len;) {
    size_t n = (off % 3 == 0) ? 100000 : 777;
    if (n > len - off) n = len - off;
    assert_int_equal(blob_writer_write(w, data + off, n), 0);
    off += n;
  }
  assert_int_equal(blob_writer_commit(w, want, (int64_t)len, oid), 0);
  assert_int_equal(blob_stat(f->s, want, &size), 0);
  assert_int_equal(size, (int64_t)len);
  int fd;
  assert_int_equal(blob_open_fd(f->s, want, &fd, &size), 0);
  unsigned char *back = malloc(len);
  size_t got = 0;
  ssize_t r;
  while ((r = read(fd, back + got, len - got)) > 0)
    got += (size_t)r;
  close(fd);
  assert_int_equal(got, len);
  assert_memory_equal(back, data, len);
  free(back);
  free(data);
}

static void test_dedup(void **state) {
  fixture *f = *state;
  put(f->s, "hello", 5, HELLO_OID, 5, 0);
  put(f->s, "hello", 5, HELLO_OID, -1, 0);
  put(f->s, "hello", 5, NULL, -1, 0);
  assert_int_equal(count_files(f, "blobs"), 1);
  assert_int_equal(count_files(f, "tmp"), 0);
}

static void test_rejects_mismatch(void **state) {
  fixture *f = *state;
  int64_t size;
  put(f->s, "hellO", 5, HELLO_OID, 5, HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "sha256 mismatch"));
  assert_non_null(strstr(hub_error_msg(), HELLO_OID));
  put(f->s, "hello", 5, HELLO_OID, 6, HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "size mismatch"));
  put(f->s, "hello", 5, "bad", -1, HUB_EINVALID);
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), HUB_ENOTFOUND);
  assert_int_equal(count_files(f, "blobs"), 0);
  assert_int_equal(count_files(f, "tmp"), 0);

  blob_writer *w;
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_write(w, "abc", 3), 0);
  assert_int_equal(count_files(f, "tmp"), 1);
  blob_writer_abort(w);
  blob_writer_abort(NULL);
  assert_int_equal(count_files(f, "tmp"), 0);
}

typedef struct {
  blob_store *s;
  const unsigned char *data;
  size_t len;
  const char *oid;
  int rc;
} thread_arg;

static void *writer_thread(void *p) {
  thread_arg *a = p;
  blob_writer *w;
  char oid[65];
  a->rc = blob_writer_open(a->s, &w);
  for (size_t off = 0; a->rc == 0 && off < a->len; off += 4096) {
    size_t n = a->len - off < 4096 ? a->len - off : 4096;
    a->rc = blob_writer_write(w, a->data + off, n);
  }
  if (a->rc == 0) a->rc = blob_writer_commit(w, a->oid, (int64_t)a->len, oid);
  return NULL;
}

static void test_concurrent_same_content(void **state) {
  fixture *f = *state;
  enum { N = 8 };
  size_t len = 300000;
  unsigned char *data = malloc(len);
  char oid[65];
  pthread_t t[N];
  thread_arg a[N];
  for (size_t i = 0; i < len; i++)
    data[i] = (unsigned char)(i ^ (i >> 8));
  sha_hex(data, len, oid);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      a[i] = (thread_arg){f->s, data, len, oid, -99};
      assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
      pthread_join(t[i], NULL);
      assert_int_equal(a[i].rc, 0);
    }
    assert_int_equal(count_files(f, "blobs"), 1);
    assert_int_equal(count_files(f, "tmp"), 0);
    if (round == 1) assert_int_equal(blob_delete(f->s, oid), 0);
  }
  free(data);
}

static void put_part(blob_store *s, const char *oid, unsigned n, const char *data, int rc_want) {
  blob_writer *w;
  char etag[65], want[65];
  int rc = blob_parts_writer_open(s, oid, n, &w);
  assert_int_equal(rc, rc_want);
  if (rc) return;
  assert_int_equal(blob_writer_write(w, data, strlen(data)), 0);
  assert_int_equal(blob_parts_writer_commit(w, etag), 0);
  sha_hex(data, strlen(data), want);
  assert_string_equal(etag, want);
}

static void test_parts(void **state) {
  fixture *f = *state;
  const char *whole = "part one|part two|part three";
  char oid[65], out[65];
  int64_t size;
  sha_hex(whole, strlen(whole), oid);

  put_part(f->s, oid, 0, "x", HUB_EINVALID);
  put_part(f->s, oid, 10001, "x", HUB_EINVALID);
  put_part(f->s, "xyz", 1, "x", HUB_EINVALID);
  put_part(f->s, oid, 2, "WRONG", 0);
  put_part(f->s, oid, 1, "part one|", 0);
  /* missing part 3: parts stay so the client can send it */
  assert_int_equal(blob_parts_assemble(f->s, oid, 3, (int64_t)strlen(whole), out), HUB_ENOTFOUND);
  assert_non_null(strstr(hub_error_msg(), "part 3"));
  assert_int_equal(count_files(f, "tmp/parts"), 2);
  put_part(f->s, oid, 2, "part two|", 0); /* replaces the wrong one */
  put_part(f->s, oid, 3, "part three", 0);
  assert_int_equal(count_files(f, "tmp/parts"), 3);
  assert_int_equal(blob_parts_assemble(f->s, oid, 3, (int64_t)strlen(whole) + 1, out),
                   HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "size mismatch"));
  /* a failed verification drops the parts */
  assert_int_equal(count_files(f, "tmp"), 0);

  put_part(f->s, oid, 1, "part one|", 0);
  put_part(f->s, oid, 2, "part two|", 0);
  put_part(f->s, oid, 3, "part three", 0);
  assert_int_equal(blob_parts_assemble(f->s, oid, 3, (int64_t)strlen(whole), out), 0);
  assert_string_equal(out, oid);
  assert_int_equal(blob_stat(f->s, oid, &size), 0);
  assert_int_equal(size, (int64_t)strlen(whole));
  assert_int_equal(count_files(f, "tmp"), 0);
  struct stat st;
  char p[256];
  snprintf(p, sizeof p, "%s/tmp/parts/%s", f->dir, oid);
  assert_int_equal(stat(p, &st), -1);
  /* assembling again after a concurrent winner: already stored → success */
  assert_int_equal(blob_parts_assemble(f->s, oid, 3, (int64_t)strlen(whole), out), 0);
  assert_int_equal(blob_parts_assemble(f->s, oid, 0, -1, out), HUB_EINVALID);

  /* wrong content for the oid */
  char other[65];
  sha_hex("zzz", 3, other);
  put_part(f->s, other, 1, "yyy", 0);
  assert_int_equal(blob_parts_assemble(f->s, other, 1, -1, out), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "sha256 mismatch"));
  assert_int_equal(blob_stat(f->s, other, &size), HUB_ENOTFOUND);
  put_part(f->s, other, 1, "zzz", 0);
  assert_int_equal(blob_parts_remove(f->s, other), 0);
  assert_int_equal(blob_parts_remove(f->s, other), 0);
  assert_int_equal(count_files(f, "tmp"), 0);
}

/* Parts keyed by an upload id: two uploads of one object keep separate parts, and an
 * object already stored is no shortcut (the upload must prove its bytes). */
static void test_parts_upload(void **state) {
  fixture *f = *state;
  const char *whole = "alpha|beta";
  char oid[65], up_a[65], up_b[65], out[65];
  int64_t size;
  sha_hex(whole, strlen(whole), oid);
  sha_hex("upload a", 8, up_a);
  sha_hex("upload b", 8, up_b);
  put_part(f->s, up_a, 1, "alpha|", 0);
  put_part(f->s, up_a, 2, "beta", 0);
  put_part(f->s, up_b, 1, "EVIL!!", 0); /* another upload of the same object */
  assert_int_equal(blob_parts_assemble_upload(f->s, up_a, oid, 2, (int64_t)strlen(whole), out), 0);
  assert_string_equal(out, oid);
  assert_int_equal(blob_stat(f->s, oid, &size), 0);
  /* the object exists now, but upload b has no part 2: no success without the bytes */
  assert_int_equal(blob_parts_assemble_upload(f->s, up_b, oid, 2, (int64_t)strlen(whole), out),
                   HUB_ENOTFOUND);
  char up_c[65];
  sha_hex("upload c", 8, up_c);
  assert_int_equal(blob_parts_assemble_upload(f->s, up_c, oid, 2, (int64_t)strlen(whole), out),
                   HUB_ENOTFOUND);
  assert_int_equal(blob_parts_assemble_upload(f->s, "nope", oid, 2, -1, out), HUB_EINVALID);
  assert_int_equal(blob_parts_remove(f->s, up_b), 0);
  assert_int_equal(count_files(f, "tmp"), 0);
}

static void make_file(fixture *f, const char *rel, time_t age) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", f->dir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "junk", 4), 4);
  close(fd);
  struct timespec ts[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
  assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void test_sweep(void **state) {
  fixture *f = *state;
  char p[256];
  int removed = -1;
  /* leftovers of a SIGKILLed write and of an abandoned multipart upload */
  make_file(f, "tmp/w-0123456789abcdef0123456789abcdef.tmp", 7200);
  make_file(f, "tmp/w-fresh.tmp", 0);
  snprintf(p, sizeof p, "%s/tmp/parts/" HELLO_OID, f->dir);
  assert_int_equal(mkdir(p, 0755), 0);
  make_file(f, "tmp/parts/" HELLO_OID "/1", 7200);
  make_file(f, "tmp/parts/" HELLO_OID "/2", 7200);
  struct timespec ts[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
  assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
  /* a temp file is never visible as an object */
  int64_t size;
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), HUB_ENOTFOUND);

  assert_int_equal(blob_store_sweep_tmp(f->s, 3600, &removed), 0);
  assert_int_equal(removed, 3);
  assert_int_equal(count_files(f, "tmp"), 1);
  struct stat st;
  assert_int_equal(stat(p, &st), -1);
  /* an in-flight writer is not swept */
  blob_writer *w;
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_write(w, "hello", 5), 0);
  assert_int_equal(blob_store_sweep_tmp(f->s, 3600, &removed), 0);
  assert_int_equal(removed, 0);
  assert_int_equal(blob_writer_commit(w, HELLO_OID, 5, NULL), 0);
}

static void test_open_errors(void **state) {
  (void)state;
  blob_store *s = NULL;
  assert_int_equal(blob_store_open(&s, "s3", "/tmp"), HUB_EINVALID);
  assert_null(s);
  assert_int_equal(blob_store_open(&s, "fs", ""), HUB_EINVALID);
  assert_int_not_equal(blob_store_open(&s, "fs", "/proc/nonexistent/x"), 0);
}

/* Readers follow a write through the writer's own temp file (the mirror's streams). */
static void test_read_fd(void **state) {
  fixture *f = *state;
  blob_writer *w;
  int fd = -1;
  char buf[16] = "";
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_read_fd(w, &fd), 0);
  assert_int_equal(blob_writer_write(w, "hel", 3), 0);
  assert_int_equal(blob_writer_flush(w), 0);
  assert_int_equal(pread(fd, buf, sizeof buf, 0), 3);
  assert_memory_equal(buf, "hel", 3);
  assert_int_equal(blob_writer_write(w, "lo", 2), 0);
  assert_int_equal(blob_writer_commit(w, HELLO_OID, 5, NULL), 0);
  assert_int_equal(pread(fd, buf, sizeof buf, 0), 5); /* the same file, now published */
  assert_memory_equal(buf, "hello", 5);
  close(fd);
  int64_t size = 0;
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), 0);
  assert_int_equal(size, 5);
}

/* blob_writer_verify checks what was written so far without finishing the writer: the
 * digest goes on, and the commit checks again. */
static void test_verify(void **state) {
  fixture *f = *state;
  blob_writer *w;
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_write(w, "hel", 3), 0);
  assert_int_equal(blob_writer_verify(w, HELLO_OID, 5), HUB_EINVALID); /* short */
  assert_int_equal(blob_writer_write(w, "lo", 2), 0);
  char other[65];
  sha_hex("hellp", 5, other);
  assert_int_equal(blob_writer_verify(w, other, 5), HUB_EINVALID);
  assert_int_equal(blob_writer_verify(w, HELLO_OID, 5), 0);
  assert_int_equal(blob_writer_verify(w, HELLO_OID, 5), 0); /* repeatable */
  int64_t size = 0;
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), HUB_ENOTFOUND); /* nothing published */
  assert_int_equal(blob_writer_commit(w, HELLO_OID, 5, NULL), 0);
  assert_int_equal(blob_stat(f->s, HELLO_OID, &size), 0);
  /* a writer that verified wrong still refuses at its commit */
  assert_int_equal(blob_writer_open(f->s, &w), 0);
  assert_int_equal(blob_writer_write(w, "hellp", 5), 0);
  assert_int_equal(blob_writer_verify(w, HELLO_OID, 5), HUB_EINVALID);
  assert_int_equal(blob_writer_commit(w, HELLO_OID, 5, NULL), HUB_EINVALID);
  hub_error_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oid_valid),
      cmocka_unit_test_setup_teardown(test_write_commit_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_streaming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejects_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_same_content, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_parts_upload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_fd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
      cmocka_unit_test(test_open_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
