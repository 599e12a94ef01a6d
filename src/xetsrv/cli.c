/* `modelhub storage stats` and `modelhub fsck`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "db/xet.h"
#include "util/error.h"
#include "xetsrv/internal.h"

static int stats(int argc, char **argv) {
  int as_json = argc > 2 && !strcmp(argv[2], "--json");
  db_xet_stats t;
  db_xet_stats_get(&t);
  int64_t xorbs = t.xorbs, stored = t.stored, unpacked = t.unpacked, files = t.files;
  int64_t unique_bytes = t.unique_bytes, logical = t.logical, converted = t.verified_files;
  int64_t unverified = t.unverified;
  double ratio = stored ? (double)logical / (double)stored : 0;
  if (as_json) {
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "xorbs", (json_int_t)xorbs,
                  "stored_bytes", (json_int_t)stored, "chunk_bytes", (json_int_t)unpacked, "files",
                  (json_int_t)files, "unique_file_bytes", (json_int_t)unique_bytes, "logical_bytes",
                  (json_int_t)logical, "verified_files", (json_int_t)converted, "dedup_ratio",
                  ratio, "unverified_links", (json_int_t)unverified);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return 1;
    printf("%s\n", s);
    free(s);
    return 0;
  }
  printf("logical bytes:      %lld  (files as repos hold them; a file in two repos counts twice)\n"
         "unique file bytes:  %lld  (%lld distinct Xet files)\n"
         "stored bytes:       %lld  (%lld xorbs; %lld bytes of chunks before compression)\n"
         "dedup ratio:        %.3f  (logical / stored)\n"
         "unverified links:   %lld  (sha256 claims not yet checked)\n"
         "Xet storage only: LFS-uploaded objects keep their blob in <data>/blobs as well.\n",
         (long long)logical, (long long)unique_bytes, (long long)files, (long long)stored,
         (long long)xorbs, (long long)unpacked, ratio, (long long)unverified);
  return 0;
}

typedef struct {
  int64_t bad, nx, nf, nv;
} fsck_ctx;

static int fsck_xorb(const uint8_t *h32, void *p) {
  fsck_ctx *c = p;
  xet_hash h;
  char hs[65];
  memcpy(h.b, h32, 32);
  xet_hash_str(hs, &h);
  c->nx++;
  xs_xorb x;
  blob_stream *in = NULL;
  int64_t size = 0;
  uint8_t *data = NULL;
  int rc = xs_xorb_get(&h, &x);
  if (!rc) rc = blob_open_stream(xs_blobs(), x.blob_oid, &in, &size);
  if (!rc && (size < 0 || (uint64_t)size != x.size))
    rc = hub_error_set(HUB_EINVALID, "object has %lld bytes, table says %llu", (long long)size,
                       (unsigned long long)x.size);
  if (!rc && !(data = malloc((size_t)size + 1))) rc = hub_error_set(HUB_ERROR, "out of memory");
  size_t got = 0;
  while (!rc && got < (size_t)size) {
    size_t n = 0;
    if ((rc = blob_stream_read(in, data + got, (size_t)size - got, &n))) break;
    if (!n) rc = hub_error_set(HUB_EINVALID, "object is short");
    got += n;
  }
  xet_xorb px;
  if (!rc && !(rc = xet_xorb_parse(&px, data, got, &h))) {
    if (px.n_chunks != x.n) rc = hub_error_set(HUB_EINVALID, "chunk count differs from table");
    for (size_t i = 0; !rc && i < x.n; i++)
      if (!xet_hash_eq(&px.chunks[i].hash, &x.chunks[i].hash) ||
          px.chunks[i].offset != x.chunks[i].offset || px.chunks[i].len != x.chunks[i].len ||
          px.chunks[i].stored_len != x.chunks[i].stored_len ||
          px.chunks[i].unpacked_start != x.chunks[i].unpacked_start)
        rc = hub_error_set(HUB_EINVALID, "chunk %zu differs from the table", i);
    xet_xorb_dispose(&px);
  }
  if (rc) {
    printf("BAD xorb %s: %s\n", hs, hub_error_msg());
    c->bad++;
  }
  if (in) blob_stream_close(in);
  free(data);
  xs_xorb_dispose(&x);
  return 0;
}

static int fsck_file(const uint8_t *h32, void *p) {
  fsck_ctx *c = p;
  xet_hash h, got;
  char hs[65];
  memcpy(h.b, h32, 32);
  xet_hash_str(hs, &h);
  c->nf++;
  xs_file f;
  xs_cache cache = {0};
  int rc = xs_file_get(&h, &f);
  xet_merkle m;
  xet_merkle_init(&m);
  uint64_t total = 0;
  for (size_t i = 0; !rc && i < f.n; i++) {
    xs_xorb *x = xs_cache_get(&cache, &f.terms[i].xorb);
    if (!x) {
      rc = hub_error_code();
      break;
    }
    uint64_t bytes = 0;
    if (f.terms[i].chunk_start >= f.terms[i].chunk_end || f.terms[i].chunk_end > x->n) {
      rc = hub_error_set(HUB_EINVALID, "term %zu outside its xorb", i);
      break;
    }
    for (uint32_t k = f.terms[i].chunk_start; k < f.terms[i].chunk_end; k++) {
      xet_merkle_add(&m, &x->chunks[k].hash, x->chunks[k].len);
      bytes += x->chunks[k].len;
    }
    if (bytes != f.terms[i].unpacked_bytes)
      rc = hub_error_set(HUB_EINVALID, "term %zu has %llu bytes, not %u", i,
                         (unsigned long long)bytes, f.terms[i].unpacked_bytes);
    total += bytes;
  }
  if (!rc) {
    xet_merkle_final_file(&m, &got);
    if (!xet_hash_eq(&got, &h))
      rc = hub_error_set(HUB_EINVALID, "file hash mismatch");
    else if (total != f.size)
      rc = hub_error_set(HUB_EINVALID, "size mismatch");
  }
  if (rc) {
    printf("BAD file %s: %s\n", hs, hub_error_msg());
    c->bad++;
  }
  xs_cache_dispose(&cache);
  xs_file_dispose(&f);
  return 0;
}

static void fsck_sha(const char *sha_db, const uint8_t *file32, void *p) {
  fsck_ctx *c = p;
  xet_hash h;
  memcpy(h.b, file32, 32);
  char sha[65];
  snprintf(sha, sizeof sha, "%s", sha_db);
  c->nv++;
  if (xs_verify_file(sha, &h)) {
    printf("BAD sha256 link %s: %s\n", sha, hub_error_msg());
    c->bad++;
  }
}

/* Re-read every xorb (format, chunk hashes, xorb hash, stored chunk table) and check every
 * file's terms and file hash against the stored chunk tables; --full also rebuilds each
 * file with a sha256 link and compares the digest. */
static int fsck(int argc, char **argv) {
  int full = argc > 1 && !strcmp(argv[1], "--full");
  fsck_ctx c = {0};
  if (db_xet_each_xorb(fsck_xorb, &c) < 0) return 1;
  if (db_xet_each_file(fsck_file, &c) < 0) return 1;
  if (full) db_xet_each_sha_link(fsck_sha, &c);
  int64_t bad = c.bad, nx = c.nx, nf = c.nf, nv = c.nv;
  printf("checked %lld xorbs, %lld files", (long long)nx, (long long)nf);
  if (full) printf(", %lld sha256 links", (long long)nv);
  printf("; %lld problems\n", (long long)bad);
  return bad ? 1 : 0;
}

/* storage hash FILE: chunk and hash a local file as an uploader would (Xet file hash,
 * sha256, chunk count) and report the throughput. */
static int hash_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  xet_file_hasher *fh = NULL;
  uint8_t *buf = malloc(1 << 20), digest[32];
  int rc = buf ? xet_file_hasher_new(&fh, NULL, NULL) : HUB_ERROR;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t n;
  while (!rc && (n = fread(buf, 1, 1 << 20, f)) > 0)
    rc = xet_file_hasher_update(fh, buf, n);
  xet_hash h;
  uint64_t size = 0, chunks = 0;
  if (!rc) rc = xet_file_hasher_final(fh, &h, digest, &size, &chunks);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  fclose(f);
  free(buf);
  xet_file_hasher_free(fh);
  if (rc) {
    fprintf(stderr, "modelhub: %s\n", hub_error_msg());
    return 1;
  }
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  char hs[65];
  xet_hash_str(hs, &h);
  printf("xet file hash: %s\nsha256:        ", hs);
  for (int i = 0; i < 32; i++)
    printf("%02x", digest[i]);
  printf("\nsize: %llu bytes, %llu chunks, %.3f s, %.1f MB/s\n", (unsigned long long)size,
         (unsigned long long)chunks, s, s > 0 ? (double)size / s / 1e6 : 0.0);
  return 0;
}

/* storage xet on|off NS/NAME [--type model|dataset|space] */
static int set_xet(int argc, char **argv) {
  int type = HUB_REPO_MODEL;
  const char *id = argc > 3 ? argv[3] : NULL;
  for (int i = 4; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--type") && http_type_parse(argv[i + 1], &type)) return 2;
  const char *slash = id ? strchr(id, '/') : NULL;
  if (!slash || (strcmp(argv[2], "on") && strcmp(argv[2], "off"))) {
    fprintf(stderr, "usage: modelhub storage xet on|off NS/NAME [--type model|dataset|space]\n");
    return 2;
  }
  char ns[HUB_MAX_NAME + 1];
  snprintf(ns, sizeof ns, "%.*s", (int)(slash - id), id);
  db_repo repo;
  if (db_repo_get(type, ns, slash + 1, &repo)) {
    fprintf(stderr, "modelhub: no such repo %s\n", id);
    return 1;
  }
  if (xs_set_enabled(repo.id, !strcmp(argv[2], "on"))) {
    fprintf(stderr, "modelhub: %s\n", hub_error_msg());
    return 1;
  }
  printf("Xet storage %s for %s\n", strcmp(argv[2], "on") ? "disabled" : "enabled", id);
  return 0;
}

int xetsrv_main(int argc, char **argv) {
  if (xs_store_open(db_data_dir())) {
    fprintf(stderr, "modelhub: xet store: %s\n", hub_error_msg());
    return 1;
  }
  if (!strcmp(argv[0], "fsck")) return fsck(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "stats")) return stats(argc, argv);
  if (argc >= 3 && !strcmp(argv[1], "xet")) return set_xet(argc, argv);
  if (argc == 3 && !strcmp(argv[1], "hash")) return hash_file(argv[2]);
  fprintf(stderr, "usage: modelhub storage stats [--json]\n"
                  "       modelhub storage xet on|off NS/NAME [--type model|dataset|space]\n"
                  "       modelhub storage hash FILE\n"
                  "       modelhub fsck [--full]\n");
  return 2;
}
