/* The CAS API under <base>/xet-cas (spec §6): xorb and shard uploads, global-dedup
 * queries, reconstructions. Callers authenticate with the access token of §7.1
 * ("xet1.<repo uid>.<r|w>.<exp>.<sig>", signed with auth/sign.h, purpose "xet-token"). */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "db/scan.h"
#include "http/range.h"
#include "auth/sign.h"
#include "util/error.h"
#include "util/limits.h"
#include "security/security.h"
#include "xetsrv/internal.h"

/* ---- auth ------------------------------------------------------------------------------- */

/* Check the bearer token; fill r->repo with the repo it was issued for. 401 for a missing,
 * bad or expired token, 403 when a write needs a read token's scope. */
static int cas_auth(hub_req *r, int need_write) {
  if (r->repo.id) return 0; /* already checked (streamed body) */
  const char *h = http_header(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7))
    return hub_error_set(HUB_EAUTH, "Missing Xet access token (Authorization: Bearer ...)");
  h += 7;
  while (*h == ' ')
    h++;
  char tok[256], *f[5];
  if (strlen(h) >= sizeof tok) return hub_error_set(HUB_EAUTH, "Invalid Xet access token");
  snprintf(tok, sizeof tok, "%s", h);
  size_t n = strlen(tok);
  while (n && tok[n - 1] == ' ')
    tok[--n] = 0;
  int k = 0;
  char *save = NULL;
  for (char *p = strtok_r(tok, ".", &save); p && k < 5; p = strtok_r(NULL, ".", &save))
    f[k++] = p;
  if (k != 5 || strcmp(f[0], "xet1") || strlen(f[1]) != 24 ||
      (strcmp(f[2], "r") && strcmp(f[2], "w")))
    return hub_error_set(HUB_EAUTH, "Invalid Xet access token");
  char subject[64];
  snprintf(subject, sizeof subject, "%s/%s", f[1], f[2]);
  /* a few seconds of clock skew are allowed (§6.1) */
  if (sign_check("xet-token", subject, f[3], f[4], (int64_t)time(NULL) - 5))
    return hub_error_set(HUB_EAUTH, "Xet access token is %s",
                         strcmp(hub_error_msg(), "expired") ? "invalid" : "expired");
  db_repo repo;
  if (db_repo_by_uid(f[1], &repo))
    return hub_error_set(HUB_EAUTH, "Xet access token for a repository that no longer exists");
  if (repo.disabled) return hub_error_set(HUB_EFORBIDDEN, "Access to this resource is disabled.");
  if (need_write && strcmp(f[2], "w"))
    return hub_error_set(HUB_EFORBIDDEN, "This Xet token only allows reads");
  r->repo = repo;
  return 0;
}

static int parse_hash_seg(const char *s, xet_hash *out) {
  if (!s || xet_hash_parse(out, s, strlen(s)))
    return hub_error_set(HUB_EINVALID, "Malformed hash in path: want 64 hex digits");
  return 0;
}

static int check_prefix(const char *p) {
  if (strcmp(p, "default") && strcmp(p, "default-merkledb"))
    return hub_error_set(HUB_EINVALID, "Unknown prefix '%.40s' (want \"default\")", p);
  return 0;
}

/* ---- uploads ------------------------------------------------------------------------- */

/* Shards are buffered (<= HUB_MAX_SHARD_BODY). Xorb records are verified as they arrive and
 * streamed into a temporary object of the xorb store, published only once the whole body
 * hashes to the xorb's name: memory per upload is one record, not the body. */
struct upload {
  hub_buf body; /* shards */
  xet_hash hash;
  int skip;            /* xorb already stored: the body is read and dropped */
  uint64_t got;        /* xorb body bytes received */
  blob_writer *w;      /* xorb records so far (temporary until committed) */
  xet_xorb_stream *xs; /* xorb verification state */
};

static void upload_free(void *p) {
  struct upload *u = p;
  hub_buf_dispose(&u->body);
  blob_writer_abort(u->w); /* NULL after a commit; else drops the temporary data */
  xet_xorb_stream_free(u->xs);
  free(u);
}

static int write_record(const uint8_t *rec, size_t len, void *p) {
  return blob_writer_write(((struct upload *)p)->w, rec, len);
}

static int xorb_rejected(int rc) {
  if (rc != HUB_EINVALID && rc != HUB_ETOOBIG) return rc;
  char msg[300];
  snprintf(msg, sizeof msg, "%s", hub_error_msg());
  return hub_error_set(HUB_EINVALID, "Xorb rejected, nothing was stored: %s", msg);
}

static int upload_begin(hub_req *r, int is_xorb, struct upload **out) {
  int rc = cas_auth(r, 1);
  if (rc) return rc;
  struct upload *u = calloc(1, sizeof *u);
  if (!u) return hub_error_set(HUB_ERROR, "out of memory");
  http_cleanup_add(r, upload_free, u);
  size_t max = is_xorb ? (size_t)HUB_MAX_XORB_BODY : (size_t)HUB_MAX_SHARD_BODY;
  hub_buf_init(&u->body, max);
  if (is_xorb) {
    if ((rc = check_prefix(r->cap[0])) || (rc = parse_hash_seg(r->cap[1], &u->hash))) return rc;
    u->skip = xs_xorb_exists(&u->hash);
  }
  const char *cl = http_header(r, "Content-Length");
  if (cl && strtoull(cl, NULL, 10) > max)
    return hub_error_set(HUB_ETOOBIG, "Body too large (limit %zu bytes)", max);
  if (is_xorb && !u->skip) {
    if ((rc = blob_writer_open(xs_blobs(), &u->w)) ||
        (rc = xet_xorb_stream_new(&u->xs, write_record, u)))
      return rc;
  }
  r->state = u;
  *out = u;
  return 0;
}

static int on_xorb_body(hub_req *r, const char *data, size_t len) {
  struct upload *u = r->state;
  int rc;
  if (!u && (rc = upload_begin(r, 1, &u))) return rc;
  if (u->skip) return 0;
  if (len > (uint64_t)HUB_MAX_XORB_BODY - u->got)
    rc = hub_error_set(HUB_ETOOBIG, "Body too large (limit %ld bytes)", (long)HUB_MAX_XORB_BODY);
  else
    rc = xorb_rejected(xet_xorb_stream_feed(u->xs, (const uint8_t *)data, len));
  u->got += len;
  if (rc) { /* the rest of the body is discarded: free the disk now */
    blob_writer_abort(u->w);
    u->w = NULL;
  }
  return rc;
}

static int on_shard_body(hub_req *r, const char *data, size_t len) {
  struct upload *u = r->state;
  int rc;
  if (!u && (rc = upload_begin(r, 0, &u))) return rc;
  if (len && (rc = http_body_hold(r, u->body.len + len))) return rc; /* process-wide budget */
  if (hub_buf_put(&u->body, data, len))
    return hub_error_set(HUB_ETOOBIG, "Body too large (limit %zu bytes)", u->body.max);
  return 0;
}

static int reply_json(hub_req *r, json_t *o) {
  return http_reply_json(r, 200, o);
}

/* POST /v1/xorbs/{prefix}/{hash} (§4.4) */
static int h_xorb_post(hub_req *r) {
  struct upload *u = r->state;
  int rc;
  if (!u && (rc = upload_begin(r, 1, &u))) return rc;
  if (u->skip) return reply_json(r, json_pack("{s:b}", "was_inserted", 0));
  if (!u->got) return hub_error_set(HUB_EINVALID, "Xorb rejected: empty body");
  xet_xorb x;
  if ((rc = xorb_rejected(xet_xorb_stream_finish(u->xs, &x, &u->hash)))) return rc;
  int inserted = 0;
  blob_writer *w = u->w;
  u->w = NULL; /* committed or aborted (and freed) by xs_xorb_put_writer */
  rc = xs_xorb_put_writer(&x, w, r->repo.id, &inserted);
  xet_xorb_dispose(&x);
  if (rc) return rc;
  return reply_json(r, json_pack("{s:b}", "was_inserted", inserted));
}

/* HEAD|GET /v1/xorbs/{prefix}/{hash} */
static int h_xorb_head(hub_req *r) {
  xet_hash h;
  xs_xorb x;
  int rc = cas_auth(r, 0);
  if (rc || (rc = check_prefix(r->cap[0])) || (rc = parse_hash_seg(r->cap[1], &h))) return rc;
  if (!r->is_head) return hub_error_set(HUB_EMETHOD, "Use HEAD (or POST to upload)");
  if ((rc = xs_xorb_get(&h, &x))) return rc;
  uint64_t size = x.size;
  xs_xorb_dispose(&x);
  return http_reply_data_len(r, 200, "application/octet-stream", size);
}

/* Validate and record the buffered shard (§5.6); *any_new = 1 if a file was new. */
static int shard_ingest(hub_req *r, int *any_new, size_t *n_items) {
  struct upload *u = r->state;
  int rc;
  if (!u && (rc = upload_begin(r, 0, &u))) return rc;
  xet_shard s;
  xs_cache cache = {0};
  char msg[300];
  if (!u->body.len) return hub_error_set(HUB_EINVALID, "Shard rejected: empty body");
  if ((rc = xet_shard_parse(&s, (const uint8_t *)u->body.ptr, u->body.len))) {
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    return hub_error_set(HUB_EINVALID, "Shard rejected: %s", msg);
  }
  rc = xet_shard_check(&s, XET_CHECK_REQUIRE_SHA256, xs_cache_lookup, &cache);
  xs_cache_dispose(&cache);
  if (rc == HUB_EINVALID || rc == HUB_ENOTFOUND || rc == HUB_ETOOBIG) {
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    xet_shard_dispose(&s);
    return hub_error_set(HUB_EINVALID, "Shard rejected, nothing was recorded: %s", msg);
  }
  *any_new = 0;
  *n_items = s.n_files + s.n_cas;
  if (!rc) rc = xs_shard_record(&s, r->repo.id, 0, any_new);
  /* The sha256 claims are checked once by rebuilding each file; where Xet is off, that
   * rebuild is stored as the plain LFS object the repo serves from then on. */
  int plain = !xs_enabled(r->repo.id);
  for (size_t i = 0; !rc && i < s.n_files; i++) {
    if (!(s.files[i].flags & XET_FILE_FLAG_META)) continue;
    char sha[65];
    xet_hash_str(sha, &s.files[i].sha256);
    if (plain)
      xs_queue_materialize(sha, &s.files[i].file_hash);
    else
      xs_queue_verify(sha, &s.files[i].file_hash);
  }
  xet_shard_dispose(&s);
  return rc;
}

/* POST /v1/shards: 200 {"result": 0|1} */
static int h_shard_post(hub_req *r) {
  int any_new = 0;
  size_t n = 0;
  int rc = shard_ingest(r, &any_new, &n);
  if (rc) return rc;
  return reply_json(r, json_pack("{s:i}", "result", any_new ? 1 : 0));
}

/* POST /v2/shards (§6.2): the same work, answered as the NDJSON event stream xet-core reads
 * (validating, committing, then the terminal result). Nothing is sent before the shard is
 * recorded, so a failure is an ordinary error status (400 is fatal for the client, 5xx is
 * retried) and never a 404, which would make the client upload the shard again on v1. */
static int h_shard_post_v2(hub_req *r) {
  int any_new = 0;
  size_t n = 0;
  int rc = shard_ingest(r, &any_new, &n);
  if (rc) return rc;
  char body[400];
  snprintf(body, sizeof body,
           "{\"type\":\"validating\",\"verified\":0,\"total\":%zu}\n"
           "{\"type\":\"validating\",\"verified\":%zu,\"total\":%zu}\n"
           "{\"type\":\"committing\",\"stage\":\"uploading\"}\n"
           "{\"type\":\"committing\",\"stage\":\"syncing\"}\n"
           "{\"type\":\"result\",\"result\":%d}\n",
           n, n, n, any_new ? 1 : 0);
  return http_reply_data(r, 200, "application/x-ndjson", body, strlen(body));
}

/* Telemetry is dropped, but only a token holder may send it, and only so much: the start
 * call decides before any body byte is read (an anonymous endless body cost bandwidth). */
#define TELEMETRY_MAX_BODY (1024 * 1024)
static int on_discard(hub_req *r, const char *data, size_t len) {
  int rc = cas_auth(r, 0);
  if (rc) return rc;
  size_t *got = r->state;
  if (!got) {
    if (!(got = http_alloc(r, sizeof *got))) return hub_error_set(HUB_ERROR, "out of memory");
    *got = 0;
    r->state = got;
  }
  if (len > TELEMETRY_MAX_BODY - *got)
    return hub_error_set(HUB_ETOOBIG, "Telemetry body too large (limit %d bytes)",
                         TELEMETRY_MAX_BODY);
  *got += len;
  return 0;
}

static int h_telemetry(hub_req *r) {
  int rc = cas_auth(r, 0);
  if (rc) return rc;
  return http_reply_data(r, 204, NULL, "", 0);
}

/* GET /v1/chunks/{prefix}/{chunk} (§5.8) */
static int h_chunk(hub_req *r) {
  xet_hash h, *xs = NULL, key;
  size_t nx = 0, total = 0;
  int rc = cas_auth(r, 0);
  if (rc || (rc = check_prefix(r->cap[0])) || (rc = parse_hash_seg(r->cap[1], &h))) return rc;
  if ((rc = xs_dedup_xorbs(&h, &xs, &nx))) return rc;
  xs_cache cache = {0};
  xet_cas *cas = calloc(nx, sizeof *cas);
  size_t nc = 0;
  if (!cas) rc = hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; !rc && i < nx; i++) {
    /* Only xorbs the token's repo could read anyway (acl.c): a dedup answer must not tell
     * whether a private repo holds a chunk. */
    if (!xs_dedup_allowed(r->repo.id, &xs[i])) continue;
    xs_xorb *x = xs_cache_get(&cache, &xs[i]);
    if (!x) continue; /* vanished: just offer the others */
    if (total + x->n > XS_DEDUP_MAX_CHUNKS) break;
    xet_cas_chunk *ch = calloc(x->n, sizeof *ch);
    if (!ch) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      break;
    }
    uint64_t sum = 0;
    for (size_t k = 0; k < x->n; k++) {
      ch[k].hash = x->chunks[k].hash;
      ch[k].unpacked_start = x->chunks[k].unpacked_start;
      ch[k].len = x->chunks[k].len;
      sum += x->chunks[k].len;
    }
    cas[nc].xorb = x->hash;
    cas[nc].bytes_in_cas = (uint32_t)sum;
    cas[nc].bytes_on_disk = (uint32_t)x->size;
    cas[nc].n_chunks = x->n;
    cas[nc].chunks = ch;
    nc++;
    total += x->n;
  }
  uint8_t *out = NULL;
  size_t out_len = 0;
  if (!rc && !nc) rc = hub_error_set(HUB_ENOTFOUND, "Chunk not found");
  uint64_t now = (uint64_t)time(NULL);
  if (!rc) rc = xs_dedup_key(&key, now); /* one key per period: cached shards share it */
  if (!rc) rc = xet_shard_build_dedup(&out, &out_len, cas, nc, &key, now, now + XS_DEDUP_TTL_S);
  for (size_t i = 0; i < nc; i++)
    free(cas[i].chunks);
  free(cas);
  free(xs);
  xs_cache_dispose(&cache);
  if (rc) return rc;
  rc = http_reply_data(r, 200, "application/octet-stream", out, out_len);
  free(out);
  return rc;
}

/* ---- reconstructions (§6.4) -------------------------------------------------------------- */

static int scan_check(const char *sha, void *payload) {
  return security_may_download(payload, sha, NULL);
}

static int load_file_for(hub_req *r, xs_file *f) {
  xet_hash h;
  int rc = cas_auth(r, 0);
  if (rc || (rc = parse_hash_seg(r->cap[0], &h))) return rc;
  /* Only files the token's repo references (§9 read ACL; acl.c). */
  if (!xs_repo_may_read(r->repo.id, &h) || xs_file_get(&h, f))
    return hub_error_set(HUB_ENOTFOUND, "File not found");
  /* The scan policy (docs/scanning.md) over every sha256 this file stands for. */
  if ((rc = db_scan_xet_file_check(h.b, scan_check, &r->repo))) xs_file_dispose(f);
  return rc;
}

static json_t *range_obj(uint64_t s, uint64_t e) {
  return json_pack("{s:I, s:I}", "start", (json_int_t)s, "end", (json_int_t)e);
}

static int h_recon(hub_req *r, int v2) {
  xs_file f;
  int rc = load_file_for(r, &f);
  if (rc) return rc;
  const char *hdr = http_header(r, "Range");
  int64_t s = 0, e = (int64_t)f.size - 1;
  int pr = hdr ? range_parse(hdr, (int64_t)f.size, &s, &e) : RANGE_IGNORE;
  if (pr == HUB_ERANGE || (f.size == 0 && hdr && pr != RANGE_IGNORE)) {
    unsigned long long size = (unsigned long long)f.size;
    xs_file_dispose(&f);
    return hub_error_set(HUB_ERANGE, "Range not satisfiable (file size %llu)", size);
  }
  json_t *terms = json_array(), *fetch = json_object();
  json_t *o = json_pack("{s:I, s:o, s:o}", "offset_into_first_range", (json_int_t)0, "terms", terms,
                        v2 ? "xorbs" : "fetch_info", fetch);
  if (!o) {
    xs_file_dispose(&f);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  if (f.size == 0) {
    xs_file_dispose(&f);
    return http_reply_json(r, 200, o);
  }
  xet_recon rec;
  xs_cache cache = {0};
  rc = xet_reconstruct(&rec, f.terms, f.n, f.size, (uint64_t)s, (uint64_t)e, xs_cache_lookup,
                       &cache);
  xs_cache_dispose(&cache);
  xs_file_dispose(&f);
  if (rc) {
    json_decref(o);
    return rc;
  }
  json_object_set_new(o, "offset_into_first_range",
                      json_integer((json_int_t)rec.offset_into_first_range));
  char hs[65];
  for (size_t i = 0; i < rec.n_terms; i++) {
    xet_hash_str(hs, &rec.terms[i].xorb);
    json_array_append_new(terms,
                          json_pack("{s:s, s:I, s:o}", "hash", hs, "unpacked_length",
                                    (json_int_t)rec.terms[i].unpacked_len, "range",
                                    range_obj(rec.terms[i].chunk_start, rec.terms[i].chunk_end)));
  }
  int64_t exp = (int64_t)time(NULL) + xs_xfer_ttl();
  for (size_t i = 0; !rc && i < rec.n_fetch; i++) {
    const xet_recon_fetch *fe = &rec.fetch[i];
    hub_buf url = HUB_BUF_INIT;
    xet_hash_str(hs, &fe->xorb);
    if ((rc = xs_xfer_url(r, &url, &fe->xorb, fe->byte_start, fe->byte_end, exp))) break;
    json_t *arr = json_object_get(fetch, hs);
    if (!arr) json_object_set_new(fetch, hs, arr = json_array());
    json_t *ent;
    if (v2)
      ent = json_pack("{s:s, s:[{s:o, s:o}]}", "url", url.ptr, "ranges", "chunks",
                      range_obj(fe->chunk_start, fe->chunk_end), "bytes",
                      range_obj(fe->byte_start, fe->byte_end));
    else
      ent = json_pack("{s:o, s:s, s:o}", "range", range_obj(fe->chunk_start, fe->chunk_end), "url",
                      url.ptr, "url_range", range_obj(fe->byte_start, fe->byte_end));
    hub_buf_dispose(&url);
    if (!ent || json_array_append_new(arr, ent)) rc = hub_error_set(HUB_ERROR, "out of memory");
  }
  xet_recon_dispose(&rec);
  if (rc) {
    json_decref(o);
    return rc;
  }
  return http_reply_json(r, 200, o);
}

static int h_recon_v1(hub_req *r) {
  return h_recon(r, 0);
}
static int h_recon_v2(hub_req *r) {
  return h_recon(r, 1);
}

/* HEAD|GET /v1/files/{file} */
static int h_file_head(hub_req *r) {
  xs_file f;
  int rc = load_file_for(r, &f);
  if (rc) return rc;
  if (!r->is_head) {
    xs_file_dispose(&f);
    return hub_error_set(HUB_EMETHOD, "Use HEAD: the answer is the file size in Content-Length");
  }
  uint64_t size = f.size;
  xs_file_dispose(&f);
  return http_reply_data_len(r, 200, "application/octet-stream", size);
}

#define CAS XS_CAS_PREFIX
const hub_route xs_cas_routes[] = {
    /* body_max: the handlers enforce these themselves; declared for the router's sake */
    {"POST", CAS "/v1/xorbs/{x}/{x}", h_xorb_post, NEED_OWN_AUTH, BODY_STREAM, on_xorb_body,
     HUB_MAX_XORB_BODY},
    {"GET", CAS "/v1/xorbs/{x}/{x}", h_xorb_head, NEED_OWN_AUTH, BODY_NONE, NULL, 0},
    {"POST", CAS "/v1/shards", h_shard_post, NEED_OWN_AUTH, BODY_STREAM, on_shard_body,
     HUB_MAX_SHARD_BODY},
    {"POST", CAS "/v2/shards", h_shard_post_v2, NEED_OWN_AUTH, BODY_STREAM, on_shard_body,
     HUB_MAX_SHARD_BODY},
    {"GET", CAS "/v1/chunks/{x}/{x}", h_chunk, NEED_OWN_AUTH, BODY_NONE, NULL, 0},
    {"GET", CAS "/v1/reconstructions/{x}", h_recon_v1, NEED_OWN_AUTH, BODY_NONE, NULL, 0},
    {"GET", CAS "/v2/reconstructions/{x}", h_recon_v2, NEED_OWN_AUTH, BODY_NONE, NULL, 0},
    {"GET", CAS "/v1/files/{x}", h_file_head, NEED_OWN_AUTH, BODY_NONE, NULL, 0},
    {"POST", CAS "/v1/telemetry", h_telemetry, NEED_OWN_AUTH, BODY_STREAM, on_discard, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
