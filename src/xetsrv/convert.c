/* Background work: converting LFS blobs into Xet form (chunks, xorbs, a file
 * reconstruction) so Xet clients can read them, and checking the sha256 a client claimed
 * for a Xet upload (§9) by rebuilding the file once. Three job kinds of the job runner
 * (docs/jobs.md): durable, retried with backoff, dead-lettered; unverified links are
 * re-queued at startup, conversions are queued whenever the object is seen unconverted
 * (commit, resolve, listings). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/objects.h"
#include "jobs/jobs.h"
#include "repo/repo.h"
#include "util/error.h"
#include "xetsrv/internal.h"

/* Job kinds (jobs/jobs.h): the key is the object's sha256, so one object is queued once;
 * a conversion that keeps failing ends dead (listed by `modelhub jobs list`) and is not
 * queued again until `modelhub jobs retry`. */
#define KIND_CONVERT "xet.convert"         /* payload: repo id */
#define KIND_VERIFY "xet.verify"           /* payload: Xet file hash */
#define KIND_MATERIALIZE "xet.materialize" /* payload: Xet file hash */
#define KIND_LINK "xet.link"               /* key: repo id + file hash; payload: the same */
#define XET_MAX_QUEUE 10000

void xs_queue_convert(const char *sha, int64_t repo_id) {
  char p[24];
  snprintf(p, sizeof p, "%lld", (long long)repo_id);
  jobs_enqueue(KIND_CONVERT, sha, p);
}

/* Claims are checked per (sha256, file): two uploads may claim one sha256 for different
 * files, and each claim needs its own check. key "<sha256>:<file hash>", payload the file. */
static void queue_check(const char *kind, const char *sha, const xet_hash *file) {
  char p[65], key[140];
  xet_hash_str(p, file);
  snprintf(key, sizeof key, "%.64s:%s", sha, p);
  jobs_enqueue(kind, key, p);
}

void xs_queue_verify(const char *sha, const xet_hash *file) {
  queue_check(KIND_VERIFY, sha, file);
}

void xs_queue_materialize(const char *sha, const xet_hash *file) {
  queue_check(KIND_MATERIALIZE, sha, file);
}

/* A repo -> Xet file link found by a reader (xs_repo_may_read, xetsrv_lookup): readers may
 * run on event threads, which never write, so the link is recorded by a job. */
void xs_queue_link(int64_t repo_id, const xet_hash *file) {
  char key[96];
  snprintf(key, sizeof key, "%lld:", (long long)repo_id);
  xet_hash_str(key + strlen(key), file);
  jobs_enqueue(KIND_LINK, key, key);
}

static int run_link(const db_job *j, void *ctx) {
  char *end = NULL;
  long long repo_id = strtoll(j->payload, &end, 10);
  xet_hash file;
  if (!end || *end != ':' || xet_hash_parse(&file, end + 1, strlen(end + 1)))
    return hub_error_set(HUB_EINVALID, "bad link job payload");
  int rc = xs_repo_link((int64_t)repo_id, &file);
  if (rc) fprintf(stderr, "xet: recording a file of repo %lld: %s\n", repo_id, hub_error_msg());
  return rc;
}

/* ---- conversion ------------------------------------------------------------------------ */

struct conv {
  xet_xorb_builder b;
  xet_term *terms;
  size_t n_terms, cap_terms;
  size_t xorb_start_chunk; /* always 0: a converted file fills its own xorbs */
  int64_t repo_id;
  uint64_t term_bytes;
};

static int flush_xorb(struct conv *c) {
  uint8_t *data = NULL;
  size_t len = 0;
  xet_hash h;
  if (!c->b.n_chunks) return 0;
  size_t n = c->b.n_chunks;
  uint64_t bytes = c->b.unpacked_len;
  int rc = xet_xorb_builder_finish(&c->b, &data, &len, &h);
  if (rc) return rc;
  xet_xorb x;
  /* Parsing our own bytes gives the chunk table (and re-checks the builder). */
  if (!(rc = xet_xorb_parse(&x, data, len, &h))) {
    int inserted;
    rc = xs_xorb_put(&x, data, len, c->repo_id, &inserted);
    xet_xorb_dispose(&x);
  }
  free(data);
  xet_xorb_builder_init(&c->b);
  if (rc) return rc;
  if (c->n_terms == c->cap_terms) {
    size_t nc = c->cap_terms ? c->cap_terms * 2 : 8;
    xet_term *p = realloc(c->terms, nc * sizeof *p);
    if (!p) return hub_error_set(HUB_ERROR, "out of memory");
    c->terms = p, c->cap_terms = nc;
  }
  xet_term *t = &c->terms[c->n_terms++];
  memset(t, 0, sizeof *t);
  t->xorb = h;
  t->chunk_start = 0;
  t->chunk_end = (uint32_t)n;
  t->unpacked_bytes = (uint32_t)bytes;
  return 0;
}

static int on_chunk(const uint8_t *chunk, size_t len, const xet_hash *hash, void *payload) {
  struct conv *c = payload;
  int rc = xet_xorb_builder_add(&c->b, chunk, len, XET_SCHEME_LZ4);
  if (rc == HUB_ETOOBIG) {
    if ((rc = flush_xorb(c))) return rc;
    rc = xet_xorb_builder_add(&c->b, chunk, len, XET_SCHEME_LZ4);
  }
  return rc;
}

int xs_convert_blob(const char *sha, int64_t repo_id) {
  xet_hash f;
  if (xs_sha_find(sha, 0, &f, NULL) == 0) return xs_repo_link(repo_id, &f); /* already done */
  blob_stream *in = NULL;
  int64_t size = 0;
  xet_file_hasher *fh = NULL;
  struct conv c;
  memset(&c, 0, sizeof c);
  c.repo_id = repo_id;
  xet_xorb_builder_init(&c.b);
  uint8_t *buf = malloc(1 << 20);
  int rc = buf ? blob_open_stream(xs_lfs_blobs(), sha, &in, &size) : HUB_ERROR;
  if (!rc) rc = xet_file_hasher_new(&fh, on_chunk, &c);
  while (!rc) {
    size_t n = 0;
    if ((rc = blob_stream_read(in, buf, 1 << 20, &n)) || !n) break;
    rc = xet_file_hasher_update(fh, buf, n);
  }
  xet_file f_out;
  memset(&f_out, 0, sizeof f_out);
  uint8_t digest[32];
  uint64_t total = 0;
  if (!rc) rc = xet_file_hasher_final(fh, &f_out.file_hash, digest, &total, NULL);
  if (!rc) rc = flush_xorb(&c);
  if (!rc) {
    xet_sha256_to_hash(&f_out.sha256, digest);
    char got[65];
    xet_hash_str(got, &f_out.sha256);
    if (strcmp(got, sha) || total != (uint64_t)size)
      rc = hub_error_set(HUB_EINVALID, "LFS object %s does not hash to its name", sha);
  }
  if (!rc) {
    f_out.flags = XET_FILE_FLAG_VERIFY | XET_FILE_FLAG_META;
    f_out.n_terms = c.n_terms;
    f_out.terms = c.terms;
    f_out.size = total;
    xet_shard s;
    memset(&s, 0, sizeof s);
    s.n_files = 1;
    s.files = &f_out;
    int any_new;
    rc = xs_shard_record(&s, repo_id, 1, &any_new);
  }
  if (in) blob_stream_close(in);
  xet_file_hasher_free(fh);
  xet_xorb_builder_dispose(&c.b);
  free(c.terms);
  free(buf);
  return rc;
}

/* ---- verification -------------------------------------------------------------------- */

int xs_verify_file(const char *sha, const xet_hash *file) {
  xs_reader *rd = NULL;
  xs_file f;
  int rc = xs_file_get(file, &f);
  if (rc) return rc;
  uint64_t size = f.size;
  xs_file_dispose(&f);
  if ((rc = xs_reader_open(&rd, file, 0, size))) return rc;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  uint8_t *buf = malloc(1 << 20);
  if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
    rc = hub_error_set(HUB_ERROR, "out of memory");
  while (!rc) {
    size_t n = 0;
    if ((rc = xs_reader_read(rd, buf, 1 << 20, &n)) || !n) break;
    EVP_DigestUpdate(md, buf, n);
  }
  unsigned char d[32];
  unsigned dl = 0;
  if (!rc && EVP_DigestFinal_ex(md, d, &dl) == 1) {
    char hex[65];
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (strcmp(hex, sha)) rc = hub_error_set(HUB_EINVALID, "content hashes to %s", hex);
  }
  EVP_MD_CTX_free(md);
  free(buf);
  xs_reader_free(rd);
  return rc;
}

/* ---- Xet -> LFS (repos with Xet off) --------------------------------------------------- */

int xs_materialize_file(const char *sha, const xet_hash *file) {
  int64_t have = 0;
  if (blob_stat(xs_lfs_blobs(), sha, &have) == 0) return xs_verify_file(sha, file); /* stored */
  xs_reader *rd = NULL;
  blob_writer *w = NULL;
  xs_file f;
  int rc = xs_file_get(file, &f);
  if (rc) return rc;
  uint64_t size = f.size;
  xs_file_dispose(&f);
  uint8_t *buf = malloc(1 << 20);
  if (!buf) return hub_error_set(HUB_ERROR, "out of memory");
  if (!(rc = xs_reader_open(&rd, file, 0, size))) rc = blob_writer_open(xs_lfs_blobs(), &w);
  while (!rc) {
    size_t n = 0;
    if ((rc = xs_reader_read(rd, buf, 1 << 20, &n)) || !n) break;
    rc = blob_writer_write(w, buf, n);
  }
  free(buf);
  xs_reader_free(rd);
  if (rc) {
    blob_writer_abort(w);
    return rc == HUB_EINVALID ? hub_error_set(HUB_ERROR, "rebuilding the file failed") : rc;
  }
  /* The store checks the bytes against the name: a false sha256 claim is HUB_EINVALID. */
  return blob_writer_commit(w, sha, (int64_t)size, NULL);
}

/* ---- the job handlers ----------------------------------------------------------------- */

static int run_convert(const db_job *j, void *ctx) {
  int rc = xs_convert_blob(j->key, strtoll(j->payload, NULL, 10));
  if (rc) fprintf(stderr, "xet: converting LFS object %s failed: %s\n", j->key, hub_error_msg());
  return rc;
}

/* Verification and materialization: a false sha256 claim is an outcome (the link is
 * removed), not a failure; other errors are retried. */
static int run_check(const db_job *j, void *ctx) {
  int materialize = ctx != NULL;
  xet_hash file;
  char sha[65];
  snprintf(sha, sizeof sha, "%.64s", j->key); /* "<sha256>:<file>" (or a bare sha256) */
  if (xet_hash_parse(&file, j->payload, strlen(j->payload)))
    return hub_error_set(HUB_EINVALID, "bad file hash in job payload");
  int rc = materialize ? xs_materialize_file(sha, &file) : xs_verify_file(sha, &file);
  if (rc == HUB_EINVALID) {
    fprintf(stderr, "xet: sha256 claim %s of an upload is false (%s); link removed\n", sha,
            hub_error_msg());
    xs_sha_set_verified(sha, &file, 0);
    return 0;
  }
  if (rc == 0) {
    if (xs_sha_set_verified(sha, &file, 1) == 0) xs_claims_to_objects(sha, &file);
    return 0;
  }
  fprintf(stderr, "xet: %s %s failed: %s\n", materialize ? "storing as LFS" : "verifying", sha,
          hub_error_msg());
  return rc;
}

static void requeue(const char *sha, const xet_hash *file, int64_t repo_id, void *p) {
  if (xs_enabled(repo_id))
    xs_queue_verify(sha, file);
  else
    xs_queue_materialize(sha, file);
}

int xs_worker_start(void) {
  static const jobs_kind kinds[] = {
      {KIND_CONVERT, run_convert, NULL, 1, XET_MAX_QUEUE, 3, 2000},
      {KIND_VERIFY, run_check, NULL, 1, XET_MAX_QUEUE, 5, 2000},
      {KIND_MATERIALIZE, run_check, (void *)1, 1, XET_MAX_QUEUE, 5, 2000},
      {KIND_LINK, run_link, NULL, 1, XET_MAX_QUEUE, 3, 1000},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (jobs_register(&kinds[i])) return HUB_ERROR;
  xs_unverified(requeue, NULL);
  return 0;
}

/* ---- events consumer "xet" (xetsrv.h) -------------------------------------------------- */

static int convert_pointer(const char *oid, uint64_t size, void *payload) {
  const db_repo *repo = payload;
  xetsrv_file f;
  int64_t ref = 0;
  /* Only what the repo references with that size; lookup queues the conversion. */
  if (db_objects_get(repo->id, oid, &ref) == 0 && (uint64_t)ref == size)
    xetsrv_lookup(repo, oid, &f);
  return 0;
}

int xetsrv_consume(const db_event *ev, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int seen = 0;
    if (!ev[i].ref[0] || !ev[i].new_[0] || !xs_enabled(ev[i].repo_id)) continue;
    for (size_t j = 0; j < i && !seen; j++) /* one walk per repo and batch */
      seen = ev[j].repo_id == ev[i].repo_id && ev[j].ref[0] && ev[j].new_[0];
    db_repo repo;
    repo_handle *h = NULL;
    char dir[4200];
    if (seen || db_repo_by_id(ev[i].repo_id, &repo)) continue;
    db_repo_dir(repo.uid, dir, sizeof dir);
    if (repo_open(&h, dir)) continue;
    repo_lfs_pointers_each(h, convert_pointer, &repo);
    repo_free(h);
  }
  return 0;
}
