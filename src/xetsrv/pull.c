/* Xet from an upstream hub (pull.h). */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/objects.h"
#include "net/outbound.h"
#include "util/error.h"
#include "xetsrv/internal.h"
#include "xetsrv/pull.h"

/* Bytes of one fetch range we hold in memory: a xorb is at most 64 MiB of records. */
#define PULL_RANGE_MAX (64u * 1024 * 1024 + 1024 * 1024)
#define PULL_JSON_MAX (16u * 1024 * 1024)

/* "scheme://host:port" prefix of a URL (the origin), into out; 0 if it has none. */
static int origin_of(const char *url, char *out, size_t cap) {
  const char *p = strstr(url, "://");
  if (!p) return 0;
  p += 3;
  size_t n = (size_t)(p - url) + strcspn(p, "/?#");
  if (n >= cap) return 0;
  memcpy(out, url, n);
  out[n] = 0;
  return 1;
}

typedef struct {
  const xetsrv_pull_req *req;
  char origin[512];
} pull_ctx;

/* Private targets only for the configured upstream's own origin. */
static void opts_for(const pull_ctx *c, const char *url, outbound_opts *o, size_t max_body) {
  char og[512];
  memset(o, 0, sizeof *o);
  o->allow_private =
      c->req->allow_private && origin_of(url, og, sizeof og) && !strcmp(og, c->origin);
  o->timeout_ms = 0;
  o->max_body = max_body;
}

static int get_json(const pull_ctx *c, const char *url, const char *bearer, json_t **out) {
  outbound_opts o;
  outbound_response resp;
  char auth[1200];
  const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
  if (bearer && *bearer) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
    hdrs[1] = auth;
  }
  opts_for(c, url, &o, PULL_JSON_MAX);
  o.timeout_ms = 60000;
  outbound_request rq = {NULL, url, hdrs, NULL, 0, NULL, NULL, NULL, NULL};
  int rc = outbound_perform(&o, &rq, &resp);
  if (!rc && (resp.status != 200 || resp.truncated))
    rc = hub_error_set(resp.status == 401 || resp.status == 403 ? HUB_EAUTH : HUB_EUPSTREAM,
                       "upstream answered %ld", resp.status);
  if (!rc) {
    *out = json_loadb(resp.body.ptr ? resp.body.ptr : "", resp.body.len, 0, NULL);
    if (!*out) rc = hub_error_set(HUB_EUPSTREAM, "upstream sent no JSON");
  }
  outbound_response_free(&resp);
  return rc;
}

/* The file as it arrives, one upstream chunk at a time: its sha256, the Merkle tree of its
 * chunk hashes (= the Xet file hash when every chunk is genuine), the LFS object, and our
 * own xorbs holding the same chunks (so the file keeps its Xet hash here). */
typedef struct {
  EVP_MD_CTX *md;
  xet_merkle merkle;
  blob_writer *w;
  xet_xorb_builder b;
  xet_term *terms;
  size_t n_terms, cap_terms;
  int64_t repo_id;
  uint64_t total;
  uint64_t size;
  int (*on_data)(void *ctx, const void *data, size_t len);
  void *on_data_ctx;
} sink_state;

static int flush_xorb(sink_state *s) {
  uint8_t *data = NULL;
  size_t len = 0, n = s->b.n_chunks;
  uint64_t bytes = s->b.unpacked_len;
  xet_hash h;
  xet_xorb x;
  int inserted, rc;
  if (!n) return 0;
  if ((rc = xet_xorb_builder_finish(&s->b, &data, &len, &h))) return rc;
  /* Parsing our own bytes gives the chunk table (and re-checks every chunk). */
  if (!(rc = xet_xorb_parse(&x, data, len, &h))) {
    rc = xs_xorb_put(&x, data, len, s->repo_id, &inserted);
    xet_xorb_dispose(&x);
  }
  free(data);
  xet_xorb_builder_init(&s->b);
  if (rc) return rc;
  if (s->n_terms == s->cap_terms) {
    size_t nc = s->cap_terms ? s->cap_terms * 2 : 8;
    xet_term *p = realloc(s->terms, nc * sizeof *p);
    if (!p) return hub_error_set(HUB_ERROR, "out of memory");
    s->terms = p;
    s->cap_terms = nc;
  }
  xet_term *t = &s->terms[s->n_terms++];
  memset(t, 0, sizeof *t);
  t->xorb = h;
  t->chunk_end = (uint32_t)n;
  t->unpacked_bytes = (uint32_t)bytes;
  return 0;
}

static int emit(sink_state *s, const uint8_t *p, size_t n) {
  xet_hash ch;
  if (s->total + n > s->size)
    return hub_error_set(HUB_EINVALID, "upstream file is longer than %llu bytes",
                         (unsigned long long)s->size);
  s->total += n;
  xet_chunk_hash(&ch, p, n);
  xet_merkle_add(&s->merkle, &ch, n);
  EVP_DigestUpdate(s->md, p, n);
  int rc = blob_writer_write(s->w, p, n);
  if (!rc && s->on_data && s->on_data(s->on_data_ctx, p, n))
    rc = hub_error_set(HUB_ERROR, "xet pull: stopped by the reader");
  if (!rc) rc = xet_xorb_builder_add(&s->b, p, n, XET_SCHEME_LZ4);
  if (rc == HUB_ETOOBIG && !(rc = flush_xorb(s)))
    rc = xet_xorb_builder_add(&s->b, p, n, XET_SCHEME_LZ4);
  return rc;
}

/* One fetched range (records of chunks [r_start, ...) of a xorb) kept for the next term. */
typedef struct {
  char url[4096];
  uint64_t chunk_start;
  hub_buf data;
} range_cache;

static int fetch_range(const pull_ctx *c, range_cache *rc_, const char *url, uint64_t cstart,
                       uint64_t bs, uint64_t be) {
  if (be < bs || be - bs + 1 > PULL_RANGE_MAX)
    return hub_error_set(HUB_EUPSTREAM, "upstream fetch range out of bounds");
  if (!strcmp(rc_->url, url) && rc_->chunk_start == cstart && rc_->data.len == be - bs + 1)
    return 0;
  hub_buf_dispose(&rc_->data);
  rc_->url[0] = 0;
  char range[80];
  snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)bs,
           (unsigned long long)be);
  const char *hdrs[] = {range, NULL}; /* no credentials: the URL authorises itself */
  outbound_opts o;
  outbound_response resp;
  opts_for(c, url, &o, (size_t)(be - bs + 2));
  outbound_request rq = {NULL, url, hdrs, NULL, 0, NULL, NULL, NULL, NULL};
  int rc = outbound_perform(&o, &rq, &resp);
  if (!rc && ((resp.status != 206 && resp.status != 200) || resp.truncated ||
              resp.body.len != be - bs + 1))
    rc = hub_error_set(HUB_EUPSTREAM, "upstream xorb range answered %ld with %zu bytes",
                       resp.status, resp.body.len);
  if (!rc) {
    rc_->data = resp.body;
    memset(&resp.body, 0, sizeof resp.body);
    snprintf(rc_->url, sizeof rc_->url, "%s", url);
    rc_->chunk_start = cstart;
  }
  outbound_response_free(&resp);
  return rc;
}

/* Decode chunks [from, to) of the cached range into the sink. */
static int decode_chunks(range_cache *r, xet_decoder *dec, uint8_t *out, uint64_t from, uint64_t to,
                         uint64_t want_bytes, sink_state *s) {
  size_t off = 0;
  uint64_t idx = r->chunk_start, got = 0;
  while (idx < to) {
    size_t n = 0, rec = 0;
    if (off >= r->data.len) return hub_error_set(HUB_EUPSTREAM, "upstream range ends early");
    int rc = xet_record_decode(dec, (const uint8_t *)r->data.ptr + off, r->data.len - off, out, &n,
                               &rec);
    if (rc)
      return hub_error_set(HUB_EINVALID, "upstream chunk does not decode: %s", hub_error_msg());
    if (idx >= from) {
      if ((rc = emit(s, out, n))) return rc;
      got += n;
    }
    off += rec;
    idx++;
  }
  if (got != want_bytes)
    return hub_error_set(HUB_EINVALID, "upstream term has %llu bytes, not %llu",
                         (unsigned long long)got, (unsigned long long)want_bytes);
  return 0;
}

static int u64_of(json_t *o, const char *k, uint64_t *out) {
  json_t *v = json_object_get(o, k);
  if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int fetch_file(const pull_ctx *c, json_t *recon, sink_state *s) {
  json_t *terms = json_object_get(recon, "terms"), *fi = json_object_get(recon, "fetch_info");
  uint64_t skip = 0;
  if (!json_is_array(terms) || !json_is_object(fi) ||
      u64_of(recon, "offset_into_first_range", &skip) || skip)
    return hub_error_set(HUB_EUPSTREAM, "upstream reconstruction is not a whole-file answer");
  range_cache cache;
  memset(&cache, 0, sizeof cache);
  xet_decoder *dec = NULL;
  uint8_t *out = malloc(XET_CHUNK_MAX);
  int rc = out ? xet_decoder_new(&dec) : hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; !rc && i < json_array_size(terms); i++) {
    json_t *t = json_array_get(terms, i), *range = json_object_get(t, "range");
    const char *xorb = json_string_value(json_object_get(t, "hash"));
    uint64_t ts, te, ulen;
    if (!xorb || u64_of(range, "start", &ts) || u64_of(range, "end", &te) || te <= ts ||
        u64_of(t, "unpacked_length", &ulen)) {
      rc = hub_error_set(HUB_EUPSTREAM, "upstream reconstruction: bad term");
      break;
    }
    json_t *entries = json_object_get(fi, xorb), *e;
    size_t k;
    json_t *found = NULL;
    json_array_foreach(entries, k, e) {
      uint64_t es, ee;
      json_t *er = json_object_get(e, "range");
      if (!u64_of(er, "start", &es) && !u64_of(er, "end", &ee) && es <= ts && ee >= te) {
        found = e;
        break;
      }
    }
    uint64_t cs, bs, be;
    const char *url = found ? json_string_value(json_object_get(found, "url")) : NULL;
    json_t *ur = found ? json_object_get(found, "url_range") : NULL;
    if (!url || u64_of(json_object_get(found, "range"), "start", &cs) || u64_of(ur, "start", &bs) ||
        u64_of(ur, "end", &be)) {
      rc = hub_error_set(HUB_EUPSTREAM, "upstream reconstruction: no fetch range for a term");
      break;
    }
    if (!(rc = fetch_range(c, &cache, url, cs, bs, be)))
      rc = decode_chunks(&cache, dec, out, ts, te, ulen, s);
  }
  hub_buf_dispose(&cache.data);
  xet_decoder_free(dec);
  free(out);
  return rc;
}

int xetsrv_pull_file(const xetsrv_pull_req *req) {
  pull_ctx c = {req, ""};
  json_t *tok = NULL, *recon = NULL;
  char url[4096], got[65];
  xet_hash want_file, have_file, known;
  sink_state s;
  int rc = 0;

  memset(&s, 0, sizeof s);
  if (!req->upstream_url || !req->repo_type || !req->repo_id || !req->rev || !req->xet_hash ||
      !req->sha256 || !blob_oid_valid(req->sha256) ||
      xet_hash_parse(&want_file, req->xet_hash, strlen(req->xet_hash)) || req->local_repo_id <= 0)
    return hub_error_set(HUB_EINVALID, "xet pull: bad arguments");
  if (!xs_lfs_blobs()) return hub_error_set(HUB_ERROR, "xet pull: the Xet store is not open");
  if (!origin_of(req->upstream_url, c.origin, sizeof c.origin))
    return hub_error_set(HUB_EINVALID, "xet pull: bad upstream URL");
  /* Already here as a verified Xet file: only the local repo's references are missing. */
  if (xs_sha_find(req->sha256, 0, &known, NULL) == 0) {
    rc = xs_repo_link(req->local_repo_id, &known);
    if (!rc) rc = db_objects_add(req->local_repo_id, req->sha256, (int64_t)req->size);
    return rc;
  }

  size_t ul = strlen(req->upstream_url);
  while (ul && req->upstream_url[ul - 1] == '/')
    ul--;
  snprintf(url, sizeof url, "%.*s/api/%ss/%s/xet-read-token/%s", (int)ul, req->upstream_url,
           req->repo_type, req->repo_id, req->rev);
  if ((rc = get_json(&c, url, req->token, &tok))) goto done;
  const char *cas = json_string_value(json_object_get(tok, "casUrl"));
  const char *access = json_string_value(json_object_get(tok, "accessToken"));
  if (!cas || !access || strncmp(cas, "http", 4)) {
    rc = hub_error_set(HUB_EUPSTREAM, "upstream xet-read-token answer lacks casUrl/accessToken");
    goto done;
  }
  size_t cl = strlen(cas);
  while (cl && cas[cl - 1] == '/')
    cl--;
  snprintf(url, sizeof url, "%.*s/v1/reconstructions/%s", (int)cl, cas, req->xet_hash);
  if ((rc = get_json(&c, url, access, &recon))) goto done;

  s.size = req->size;
  s.repo_id = req->local_repo_id;
  s.on_data = req->on_data;
  s.on_data_ctx = req->on_data_ctx;
  xet_merkle_init(&s.merkle);
  xet_xorb_builder_init(&s.b);
  if (!(s.md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = blob_writer_open(xs_lfs_blobs(), &s.w)) || (rc = fetch_file(&c, recon, &s)) ||
      (rc = flush_xorb(&s)))
    goto done;
  uint8_t digest[32];
  unsigned dl = 0;
  EVP_DigestFinal_ex(s.md, digest, &dl);
  xet_merkle_final_file(&s.merkle, &have_file);
  xet_hash sha;
  xet_sha256_to_hash(&sha, digest);
  xet_hash_str(got, &sha);
  if (s.total != req->size || !xet_hash_eq(&have_file, &want_file) || strcmp(got, req->sha256)) {
    rc = hub_error_set(HUB_EINVALID,
                       "xet pull: the upstream bytes do not match the file's hashes (size %s, "
                       "Xet file hash %s, sha256 %s)",
                       s.total == req->size ? "ok" : "differs",
                       xet_hash_eq(&have_file, &want_file) ? "ok" : "differs",
                       strcmp(got, req->sha256) ? "differs" : "ok");
    goto done;
  }
  /* Plain LFS bytes for clients without Xet, then the file in our Xet index (verified: we
   * hashed every byte), then the local repo's reference. */
  rc = blob_writer_commit(s.w, req->sha256, (int64_t)req->size, got);
  s.w = NULL;
  if (rc) goto done;
  xet_file f;
  xet_shard sh;
  int any_new = 0;
  memset(&f, 0, sizeof f);
  memset(&sh, 0, sizeof sh);
  f.file_hash = want_file;
  f.flags = XET_FILE_FLAG_VERIFY | XET_FILE_FLAG_META;
  f.n_terms = s.n_terms;
  f.terms = s.terms;
  f.sha256 = sha;
  f.size = s.total;
  sh.n_files = 1;
  sh.files = &f;
  if ((rc = xs_shard_record(&sh, req->local_repo_id, 1, &any_new))) goto done;
  rc = db_objects_add(req->local_repo_id, req->sha256, (int64_t)req->size);

done:
  if (s.w) blob_writer_abort(s.w);
  EVP_MD_CTX_free(s.md);
  xet_xorb_builder_dispose(&s.b);
  free(s.terms);
  json_decref(tok);
  json_decref(recon);
  return rc;
}

/* ---- `modelhub xet-pull` ---------------------------------------------------------------- */

static const char *pull_usage =
    "usage: modelhub xet-pull --upstream URL [--token T] [--type model|dataset|space]\n"
    "           --repo NS/NAME [--rev REV] --xet-hash H --sha256 S --size N --into NS/NAME\n"
    "           [--allow-private]\n"
    "  fetches one Xet file of an upstream hub through its CAS, verifies it, and stores it\n"
    "  here as an LFS object and in this hub's Xet store, referenced by the local repo\n"
    "  --into (of the same type); --allow-private lets the upstream be a loopback/private\n"
    "  address (docs/mirror.md)\n";

int xetsrv_pull_main(int argc, char **argv) {
  xetsrv_pull_req req;
  const char *into = NULL, *size = NULL;
  memset(&req, 0, sizeof req);
  req.repo_type = "model";
  req.rev = "main";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(pull_usage, stdout);
      return 0;
    }
    if (!strcmp(a, "--allow-private")) {
      req.allow_private = 1;
      continue;
    }
    if (!v) {
      fputs(pull_usage, stderr);
      return 2;
    }
    i++;
    if (!strcmp(a, "--upstream"))
      req.upstream_url = v;
    else if (!strcmp(a, "--token"))
      req.token = v;
    else if (!strcmp(a, "--type"))
      req.repo_type = v;
    else if (!strcmp(a, "--repo"))
      req.repo_id = v;
    else if (!strcmp(a, "--rev"))
      req.rev = v;
    else if (!strcmp(a, "--xet-hash"))
      req.xet_hash = v;
    else if (!strcmp(a, "--sha256"))
      req.sha256 = v;
    else if (!strcmp(a, "--size"))
      size = v;
    else if (!strcmp(a, "--into"))
      into = v;
    else {
      fprintf(stderr, "modelhub xet-pull: unexpected argument '%s'\n%s", a, pull_usage);
      return 2;
    }
  }
  int type = !strcmp(req.repo_type, "dataset") ? HUB_REPO_DATASET
             : !strcmp(req.repo_type, "space") ? HUB_REPO_SPACE
             : !strcmp(req.repo_type, "model") ? HUB_REPO_MODEL
                                               : -1;
  char *end = NULL;
  unsigned long long n = size ? strtoull(size, &end, 10) : 0;
  const char *slash = into ? strchr(into, '/') : NULL;
  if (type < 0 || !req.upstream_url || !req.repo_id || !req.xet_hash || !req.sha256 || !size ||
      *end || !slash || (size_t)(slash - into) > HUB_MAX_NAME) {
    fputs(pull_usage, stderr);
    return 2;
  }
  req.size = n;
  char ns[HUB_MAX_NAME + 1];
  snprintf(ns, sizeof ns, "%.*s", (int)(slash - into), into);
  db_repo repo;
  if (db_repo_get(type, ns, slash + 1, &repo)) {
    fprintf(stderr, "modelhub xet-pull: no %s repository %s\n", req.repo_type, into);
    return 1;
  }
  req.local_repo_id = repo.id;
  blob_store *store = NULL;
  int rc = blob_store_open_at(&store, "");
  if (!rc) {
    hub_ctx ctx = {db_data_dir(), store, NULL, NULL, 0, 1};
    rc = xetsrv_init(&ctx);
  }
  if (!rc) rc = xetsrv_pull_file(&req);
  if (rc)
    fprintf(stderr, "modelhub xet-pull: %s\n", hub_error_msg());
  else
    printf("stored %s (%llu bytes) for %s\n", req.sha256, n, into);
  blob_store_free(store);
  return rc ? 1 : 0;
}
