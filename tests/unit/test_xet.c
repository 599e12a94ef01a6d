/* Xet core: every test vector of the spec's §10 (and §3.2), format round trips, and
 * malformed-input cases. */
#include "unit.h"

#include <openssl/sha.h>
#include <stdio.h>

#include "util/error.h"
#include "util/limits.h"
#include "xet/xet.h"

/* ---------------------------------------------------------------- helpers */

static xet_hash H(const char *s) {
  xet_hash h;
  assert_int_equal(xet_hash_parse(&h, s, strlen(s)), 0);
  return h;
}

static void assert_hash(const xet_hash *h, const char *want) {
  char s[65];
  xet_hash_str(s, h);
  assert_string_equal(s, want);
}

static void assert_sha256(const void *data, size_t len, const char *want) {
  uint8_t d[32];
  char s[65];
  SHA256(data, len, d);
  for (int i = 0; i < 32; i++)
    sprintf(s + 2 * i, "%02x", d[i]);
  assert_string_equal(s, want);
}

static uint8_t *affine(size_t n, unsigned a, unsigned b) {
  uint8_t *d = malloc(n);
  assert_non_null(d);
  for (size_t i = 0; i < n; i++)
    d[i] = (uint8_t)((i * a + b) & 0xff);
  return d;
}

static uint8_t *splitmix(uint64_t seed, size_t n) {
  uint8_t *d = malloc(n + 8);
  assert_non_null(d);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    state += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state;
    z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ z >> 27) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    for (int k = 0; k < 8; k++)
      d[i + k] = (uint8_t)(z >> (8 * k));
  }
  return d;
}

/* Chunk boundaries of data fed in pieces of `piece` bytes (0 = one call). */
static size_t chunk_ends(const uint8_t *d, size_t n, size_t piece, uint64_t *ends, size_t max) {
  xet_chunker c;
  size_t k = 0, off = 0;
  xet_chunker_init(&c);
  while (off < n) {
    size_t m = piece && n - off > piece ? piece : n - off;
    const uint8_t *p = d + off;
    off += m;
    while (m > 0) {
      uint64_t cut;
      size_t used = xet_chunker_scan(&c, p, m, &cut);
      p += used;
      m -= used;
      if (cut) {
        assert_true(k < max);
        ends[k++] = c.pos;
      }
    }
  }
  uint64_t s, e;
  if (xet_chunker_finish(&c, &s, &e)) {
    assert_true(k < max);
    ends[k++] = e;
  }
  return k;
}

/* Collects the chunks the file hasher produces. */
typedef struct {
  size_t n;
  xet_node nodes[64];
  xet_xorb_builder *xb; /* optional: pack chunks into a xorb */
  int scheme;
} collected;

static int collect(const uint8_t *chunk, size_t len, const xet_hash *hash, void *payload) {
  collected *c = payload;
  assert_true(c->n < 64);
  c->nodes[c->n].hash = *hash;
  c->nodes[c->n].len = len;
  c->n++;
  if (c->xb) return xet_xorb_builder_add(c->xb, chunk, len, c->scheme);
  return 0;
}

static void hash_file(const uint8_t *d, size_t n, size_t piece, collected *c, xet_hash *fh,
                      uint8_t sha[32]) {
  xet_file_hasher *h = NULL;
  assert_int_equal(xet_file_hasher_new(&h, collect, c), 0);
  for (size_t off = 0; off < n;) {
    size_t m = n - off < piece ? n - off : piece;
    assert_int_equal(xet_file_hasher_update(h, d + off, m), 0);
    off += m;
  }
  uint64_t size = 0, chunks = 0;
  assert_int_equal(xet_file_hasher_final(h, fh, sha, &size, &chunks), 0);
  assert_int_equal(size, n);
  assert_int_equal(chunks, c->n);
  xet_file_hasher_free(h);
}

/* A tiny in-memory "store" of parsed xorbs for the lookup callback. */
typedef struct {
  size_t n;
  xet_xorb x[8];
} store;

static int store_lookup(void *payload, const xet_hash *xorb, const xet_xorb_chunk **out,
                        size_t *out_n) {
  store *s = payload;
  for (size_t i = 0; i < s->n; i++)
    if (xet_hash_eq(&s->x[i].hash, xorb)) {
      *out = s->x[i].chunks;
      *out_n = s->x[i].n_chunks;
      return 0;
    }
  return HUB_ENOTFOUND;
}

static void store_dispose(store *s) {
  for (size_t i = 0; i < s->n; i++)
    xet_xorb_dispose(&s->x[i]);
}

/* Build a xorb from consecutive pieces of `d`, parse it into the store, return its index. */
static size_t store_add(store *s, const uint8_t *d, const size_t *lens, size_t n, int scheme,
                        uint8_t **out_bytes, size_t *out_len) {
  xet_xorb_builder b;
  xet_xorb_builder_init(&b);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(xet_xorb_builder_add(&b, d, lens[i], scheme), 0);
    d += lens[i];
  }
  uint8_t *bytes;
  size_t len;
  xet_hash h;
  assert_int_equal(xet_xorb_builder_finish(&b, &bytes, &len, &h), 0);
  assert_int_equal(xet_xorb_parse(&s->x[s->n], bytes, len, &h), 0);
  if (out_bytes) {
    *out_bytes = bytes;
    *out_len = len;
  } else {
    free(bytes);
  }
  return s->n++;
}

/* A term over chunks [a, b) of stored xorb `xi`, with its verification hash. */
static xet_term make_term(const store *s, size_t xi, uint32_t a, uint32_t b) {
  xet_term t;
  memset(&t, 0, sizeof t);
  const xet_xorb *x = &s->x[xi];
  t.xorb = x->hash;
  t.chunk_start = a;
  t.chunk_end = b;
  xet_verifier v;
  xet_verifier_init(&v);
  for (uint32_t k = a; k < b; k++) {
    t.unpacked_bytes += x->chunks[k].len;
    xet_verifier_add(&v, &x->chunks[k].hash);
  }
  xet_verifier_final(&v, &t.range_hash);
  return t;
}

static xet_hash terms_file_hash(const store *s, const xet_term *t, size_t n) {
  xet_merkle m;
  xet_hash out;
  xet_merkle_init(&m);
  for (size_t i = 0; i < n; i++) {
    size_t xi = 0;
    while (!xet_hash_eq(&s->x[xi].hash, &t[i].xorb))
      xi++;
    for (uint32_t k = t[i].chunk_start; k < t[i].chunk_end; k++)
      xet_merkle_add(&m, &s->x[xi].chunks[k].hash, s->x[xi].chunks[k].len);
  }
  xet_merkle_final_file(&m, &out);
  return out;
}

static xet_cas_chunk cas_chunks_buf[64];
/* The CAS block describing stored xorb `xi` (chunks in a static buffer). */
static xet_cas make_cas(const store *s, size_t xi) {
  const xet_xorb *x = &s->x[xi];
  xet_cas c;
  memset(&c, 0, sizeof c);
  assert_true(x->n_chunks <= 64);
  c.xorb = x->hash;
  c.n_chunks = x->n_chunks;
  c.chunks = cas_chunks_buf;
  c.bytes_in_cas = (uint32_t)x->unpacked_len;
  c.bytes_on_disk = (uint32_t)x->data_len;
  for (size_t k = 0; k < x->n_chunks; k++) {
    cas_chunks_buf[k].hash = x->chunks[k].hash;
    cas_chunks_buf[k].unpacked_start = x->chunks[k].unpacked_start;
    cas_chunks_buf[k].len = x->chunks[k].len;
    cas_chunks_buf[k].flags = 0;
  }
  return c;
}

/* ------------------------------------------------------ §10.1 primitives */

static void test_hash_string(void **st) {
  (void)st;
  xet_hash h;
  char s[65];
  for (int i = 0; i < 32; i++)
    h.b[i] = (uint8_t)i;
  xet_hash_str(s, &h);
  assert_string_equal(s, "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918");
  xet_hash back = H(s);
  assert_true(xet_hash_eq(&back, &h));

  static const uint8_t v[32] = {22, 175, 58,  132, 4,   75,  131, 214, 190, 153, 138,
                                66, 226, 3,   153, 242, 204, 86,  80,  234, 249, 153,
                                80, 99,  159, 80,  65,  138, 236, 231, 149, 78};
  memcpy(h.b, v, 32);
  assert_hash(&h, "d6834b04843aaf16f29903e2428a99be635099f9ea5056cc4e95e7ec8a41509f");
  /* upper case accepted, bad input rejected */
  back = H("D6834B04843AAF16F29903E2428A99BE635099F9EA5056CC4E95E7EC8A41509F");
  assert_true(xet_hash_eq(&back, &h));
  assert_int_equal(xet_hash_parse(&back, "d6834b04", 8), HUB_EINVALID);
  assert_int_equal(
      xet_hash_parse(&back, "g6834b04843aaf16f29903e2428a99be635099f9ea5056cc4e95e7ec8a41509f", 64),
      HUB_EINVALID);
  /* mod / truncation words */
  for (int i = 0; i < 32; i++)
    h.b[i] = (uint8_t)i;
  assert_int_equal(xet_hash_word(&h, 0), 0x0706050403020100ULL);
  assert_int_equal(xet_hash_word(&h, 3), 0x1f1e1d1c1b1a1918ULL);
}

static void test_hash_primitives(void **st) {
  (void)st;
  xet_hash h, k, out;
  xet_chunk_hash(&h, "", 0);
  assert_hash(&h, "e0f2cf784e7e5f10c34f84af150e9a5ff9664216debad915364d741049870f67");
  xet_chunk_hash(&h, "hello world", 11);
  assert_hash(&h, "4e39378b9d359f118190557a1f44130219a54e5fcfa07bd96cf50b466fe651b1");

  xet_node one = {h, 11};
  xet_xorb_hash(&out, &one, 1);
  assert_true(xet_hash_eq(&out, &h)); /* one element: the chunk hash itself */
  xet_file_hash(&out, &one, 1);
  assert_hash(&out, "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");
  xet_verification_hash(&out, &h, 1);
  assert_hash(&out, "22ef2fdcff5cea306e42ad7e15ed8a0c5e789e7d2ec34658c10d2758946847da");

  h = H("118bbac5c38b2bca9c2b7ae8307786de066696b91b2b5ccb7dbbd4608c966882");
  k = H("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  xet_hmac(&out, &h, &k);
  assert_hash(&out, "1e1f5ae2bae99fe030647a14a8c5fe6cdce57826387a7552236dfbebed533e04");

  xet_hash two[2] = {h, H("7884d4de4bcc904767362a91e97eb6c2b6bc5f3a61b640d0cad8bb1129ff0827")};
  xet_verification_hash(&out, two, 2);
  assert_hash(&out, "82d580dd3896919ef870af78b2c7bd21e67e79777922bbc8cef1fc21630c308c");
  xet_verifier v; /* streamed form agrees */
  xet_verifier_init(&v);
  xet_verifier_add(&v, &two[0]);
  xet_verifier_add(&v, &two[1]);
  xet_verifier_final(&v, &out);
  assert_hash(&out, "82d580dd3896919ef870af78b2c7bd21e67e79777922bbc8cef1fc21630c308c");

  xet_file_hash(&out, NULL, 0);
  assert_true(xet_hash_is_zero(&out));
  xet_xorb_hash(&out, NULL, 0);
  assert_true(xet_hash_is_zero(&out));
  memset(&h, 0, sizeof h);
  memset(&k, 0, sizeof k);
  xet_hmac(&out, &h, &k); /* the *wrong* empty-file hash */
  assert_hash(&out, "638a6bc391964a85939d48f008e8bdbae6a7975e7ca2d87a3ce2492f4e4d8a4c");

  /* sha256 link (§2.7) */
  uint8_t d[32], back[32];
  SHA256((const uint8_t *)"hello world", 11, d);
  xet_sha256_to_hash(&out, d);
  assert_hash(&out, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  assert_int_equal(out.b[0], 0x08);
  assert_int_equal(out.b[1], 0x3e);
  xet_hash_to_sha256(back, &out);
  assert_memory_equal(back, d, 32);

  /* dedup eligibility (§2.9): mod 1024 from bytes 24..31 */
  memset(&h, 0xab, sizeof h);
  assert_false(xet_dedup_eligible(&h, 0, 0));
  assert_true(xet_dedup_eligible(&h, 1, 0));
  assert_true(xet_dedup_eligible(&h, 0, XET_CAS_FLAG_DEDUP));
  h.b[24] = 0;
  h.b[25] = 0xfc;
  assert_true(xet_dedup_eligible(&h, 0, 0));
}

/* A direct, array-based transcription of §2.4 to cross-check the streamed Merkle. */
static void naive_root(xet_hash *out, const xet_node *in, size_t n) {
  xet_node *lv = malloc((n ? n : 1) * sizeof *lv);
  memcpy(lv, in, n * sizeof *lv);
  if (n == 0) memset(out, 0, sizeof *out);
  while (n > 1) {
    size_t w = 0, i = 0;
    while (i < n) {
      size_t rem = n - i, g;
      if (rem <= 2) {
        g = rem;
      } else {
        size_t end = rem < 9 ? rem : 9;
        g = end;
        for (size_t j = 2; j < end; j++)
          if ((lv[i + j].hash.b[24] & 3) == 0) {
            g = j + 1;
            break;
          }
      }
      blake3_hasher bh;
      static const uint8_t key[32] = {1,   126, 197, 199, 165, 71,  41,  150, 253, 148, 102,
                                      102, 180, 138, 2,   230, 93,  221, 83,  111, 55,  199,
                                      109, 210, 248, 99,  82,  230, 74,  83,  113, 63};
      blake3_hasher_init_keyed(&bh, key);
      uint64_t total = 0;
      for (size_t j = 0; j < g; j++) {
        char line[128], hs[65];
        xet_hash_str(hs, &lv[i + j].hash);
        int m = snprintf(line, sizeof line, "%s : %llu\n", hs, (unsigned long long)lv[i + j].len);
        blake3_hasher_update(&bh, line, (size_t)m);
        total += lv[i + j].len;
      }
      xet_node p;
      blake3_hasher_finalize(&bh, p.hash.b, 32);
      p.len = total;
      lv[w++] = p;
      i += g;
    }
    n = w;
  }
  if (n == 1) *out = lv[0].hash;
  free(lv);
}

static void test_merkle_streaming_matches_spec_rule(void **st) {
  (void)st;
  enum { N = 700 };
  xet_node *nodes = malloc(N * sizeof *nodes);
  for (size_t i = 0; i < N; i++) {
    uint32_t x = (uint32_t)i;
    xet_chunk_hash(&nodes[i].hash, &x, sizeof x);
    nodes[i].len = 1000 + i;
  }
  for (size_t n = 0; n <= N; n += (n < 120 ? 1 : 97)) {
    xet_hash a, b;
    xet_xorb_hash(&a, nodes, n);
    naive_root(&b, nodes, n);
    assert_true(xet_hash_eq(&a, &b));
  }
  free(nodes);
}

/* ------------------------------------------------------ §3.2 gear table */

static void test_gear_table(void **st) {
  (void)st;
  char txt[256 * 17 + 1];
  uint8_t le[2048];
  for (int i = 0; i < 256; i++) {
    sprintf(txt + 17 * i, "%016llx\n", (unsigned long long)xet_gear[i]);
    for (int k = 0; k < 8; k++)
      le[8 * i + k] = (uint8_t)(xet_gear[i] >> (8 * k));
  }
  assert_sha256(txt, 256 * 17, "880b584d4e612e1fa98cbfbbe62fff621b397800a6f7c5a37cb801c3500c4b96");
  assert_sha256(le, 2048, "e1d3936666d7ae7a977c958e9afcc75f90aaca758ce5fbe4ece61dffefe1912c");

  /* LCG scan with the test mask */
  enum { N = 100000 };
  uint8_t *d = malloc(N + 3);
  uint32_t state = 0xbecd17f & 0xffffff;
  for (size_t i = 0; i < N; i += 3) {
    state = (state * 1111 + 12345) & 0xffffff;
    d[i] = (uint8_t)state;
    d[i + 1] = (uint8_t)(state >> 8);
    d[i + 2] = (uint8_t)(state >> 16);
  }
  static const struct {
    size_t off, size;
    uint64_t h;
  } want[4] = {{0, 3598, 0x033220f080ac5f77ULL},
               {3598, 3995, 0xd06b22f324ac5f28ULL},
               {7593, 4708, 0xa3a324f81808429cULL},
               {12301, 484, 0x12a5006aa4a4425bULL}};
  uint64_t h = 0;
  size_t cuts = 0, start = 0;
  for (size_t i = 0; i < N; i++) {
    h = (h << 1) + xet_gear[d[i]];
    if ((h & 0x0000d90003530000ULL) == 0) {
      if (cuts < 4) {
        assert_int_equal(start, want[cuts].off);
        assert_int_equal(i + 1 - start, want[cuts].size);
        assert_int_equal(h, want[cuts].h);
      }
      cuts++;
      start = i + 1;
      h = 0;
    }
  }
  assert_int_equal(cuts, 44);
  assert_true(start < N); /* plus a tail: 45 pieces */
  free(d);
}

/* ------------------------------------------------------ §10.2 deterministic files */

static void test_affine_200000(void **st) {
  (void)st;
  uint8_t *d = affine(200000, 7, 13);
  uint64_t ends[8];
  assert_int_equal(chunk_ends(d, 200000, 0, ends, 8), 2);
  assert_int_equal(ends[0], 131072);
  assert_int_equal(ends[1], 200000);

  collected c = {0};
  xet_hash fh, xh;
  uint8_t sha[32];
  hash_file(d, 200000, 65536, &c, &fh, sha);
  assert_int_equal(c.n, 2);
  assert_hash(&c.nodes[0].hash, "118bbac5c38b2bca9c2b7ae8307786de066696b91b2b5ccb7dbbd4608c966882");
  assert_hash(&c.nodes[1].hash, "7884d4de4bcc904767362a91e97eb6c2b6bc5f3a61b640d0cad8bb1129ff0827");
  xet_xorb_hash(&xh, c.nodes, c.n);
  assert_hash(&xh, "f0755d96ee199d4f01e83da9fe2c38353de7fd38fb79a320a7d50be510026f74");
  assert_hash(&fh, "d88d9e0b760f32c90b7c6592b4cb85251c01bb797371e3c637087b96ac578723");
  assert_sha256(d, 200000, "261a48d2d9c2e92e4e0f97d2bbeca1d209b04ecb24fc68e78457235eda048559");
  xet_hash stored;
  xet_sha256_to_hash(&stored, sha);
  assert_hash(&stored, "261a48d2d9c2e92e4e0f97d2bbeca1d209b04ecb24fc68e78457235eda048559");
  free(d);
}

static void test_affine_1000000(void **st) {
  (void)st;
  uint8_t *d = affine(1000000, 13, 37);
  collected c = {0};
  xet_hash fh, xh;
  hash_file(d, 1000000, 1 << 20, &c, &fh, NULL);
  assert_int_equal(c.n, 8);
  for (size_t i = 0; i < 7; i++)
    assert_int_equal(c.nodes[i].len, 131072);
  assert_int_equal(c.nodes[7].len, 1000000 - 7 * 131072);
  xet_xorb_hash(&xh, c.nodes, c.n);
  assert_hash(&xh, "7be289d851485c40dcde52dbcf37a7823a5ef0bfcdf1ca1c5a32ad9594c71571");
  assert_hash(&fh, "041a50f3639f4a080a89237025d643e2a3e22935ca5d7dbc1a38f5c1e859f859");
  free(d);
}

/* ------------------------------------------------------ §10.3 chunker */

static void test_splitmix_1mb(void **st) {
  (void)st;
  static const uint64_t want_ends[19] = {84493,  134421, 144853, 243318, 271793, 336457, 467529,
                                         494581, 582000, 596735, 616815, 653164, 678202, 724510,
                                         815591, 827760, 958832, 991092, 1000000};
  static const char *want_hashes[19] = {
      "6eca1e7dadaf08cca5d82d318c800f07c2ddcec115a7e8627e5edd9605b94b8d",
      "624ea34d72a06e5d43a1b8dd10763f0d22f165992c397ed97563899b27fdd88a",
      "4411d2ec847c6e3f451a7451ff3933adb4f1c31587421b9f730b698a78313b47",
      "6342bde97433e29e0779ad33eb8040d986679040361b3cc3a06230fe60dd6c9b",
      "405253fcf15bba751adc4f507d3453273daff81ed4d8acd71c521aa1cbddc0b5",
      "4482374af7f8bebfdb5c5df0299f80128d6c58886ad7b218c562b1d74064e4cb",
      "80acc8d39c853b4b8a8c6ad7b63bf2ea68f62c2226b92f06349f92cc84d213cc",
      "a7076d7d343f711fb20fe6cd023248d8d051e8fe7d44172596cd5c7ea7edaf65",
      "44755217bbb4dadc81ea7695765230a34a2e6cb3b55f373f1de35aeba79ae92c",
      "001adc1d302d5f039278325dcbd5ec3b194f4794f1629d6f962f9f4bb78a7bff",
      "f8460a337c186f07c2e225bb287a1d3d3d686dc69d0828e99640f7d8852c5b90",
      "c9bc3da29025dc1ba562d303d815151d9a937367abb766ae842a165e8493d9fe",
      "5044339dfd65e8163bdfe642614a6be604b04d6aeacf222cf219ad287bfc5cf1",
      "163622db0fe0da93f2ef964eed4c485f3c7a9c312f8e8e8a312ab4bb8141f13e",
      "e1730534a858aa0258ad8904ef12b829b8a123a1c611250275c9ca9471e4c650",
      "1fbc6854f9185caba1e1f55393f41f83b895b18f9c99245c029025ca48f1e14b",
      "8a27b66ccf05b864b6bef6fb5c970fe894f73d2330e8e98fe7841dcdbd9e9576",
      "bc70a33e7a9ec820cac24b87023469a57bdae1bf91cc3961b95806c64a525221",
      "03e5b5f5a088269ec4b329f1e04debfac4cb54b9c0facf038f7e8e0f054be7e2",
  };
  uint8_t *d = splitmix(0, 1000000);
  assert_int_equal(d[0], 175);
  assert_int_equal(d[127], 132);
  assert_int_equal(d[111111], 118);
  assert_sha256(d, 1000000, "b3d0a1f7938cd4d8413a4dcffd4313e2e8ac0cb61cb1090eb140ea8e9154befb");

  uint64_t ends[32];
  assert_int_equal(chunk_ends(d, 1000000, 0, ends, 32), 19);
  assert_memory_equal(ends, want_ends, sizeof want_ends);

  collected c = {0};
  xet_hash fh, xh;
  hash_file(d, 1000000, 100000, &c, &fh, NULL);
  assert_int_equal(c.n, 19);
  for (size_t i = 0; i < 19; i++)
    assert_hash(&c.nodes[i].hash, want_hashes[i]);
  xet_xorb_hash(&xh, c.nodes, c.n);
  assert_hash(&xh, "6f2ce16ca5e317f0100ff0e7e5bf40a0de9032e9ee1ad04b6b8ff4e36cdfbf6c");
  assert_hash(&fh, "3d17b2d7d64a0e011b6717a52d9a16bd2c3f05b743fa8adf52a7d75dafab6d89");
  free(d);
}

static void test_const_data(void **st) {
  (void)st;
  static const uint64_t want[8] = {131072, 262144, 393216, 524288, 655360, 786432, 917504, 1000000};
  uint8_t *d = malloc(1000000);
  memset(d, 59, 1000000);
  uint64_t ends[16];
  assert_int_equal(chunk_ends(d, 1000000, 0, ends, 16), 8);
  assert_memory_equal(ends, want, sizeof want);
  free(d);
}

static void test_streaming_invariance(void **st) {
  (void)st;
  uint8_t *d = splitmix(1, 256000);
  uint64_t ref[64], alt[64];
  size_t n = chunk_ends(d, 256000, 0, ref, 64);
  assert_true(n >= 2);
  static const size_t pieces[] = {1, 37, 255, 8127, 8128, 131072};
  for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
    assert_int_equal(chunk_ends(d, 256000, pieces[i], alt, 64), n);
    assert_memory_equal(alt, ref, n * sizeof *ref);
  }
  free(d);
}

static void test_min_size_edges(void **st) {
  (void)st;
  static const uint8_t pat[128] = {
      154, 52,  42,  34,  159, 75,  126, 224, 70,  236, 12,  196, 79,  236, 178, 124, 127, 50,  99,
      178, 44,  176, 174, 126, 250, 235, 205, 174, 252, 122, 35,  10,  20,  101, 214, 69,  193, 8,
      115, 105, 158, 228, 120, 111, 136, 162, 198, 251, 211, 183, 253, 252, 164, 147, 63,  16,  186,
      162, 117, 23,  170, 36,  205, 187, 174, 76,  210, 174, 211, 175, 12,  173, 145, 59,  2,   70,
      222, 181, 159, 227, 182, 156, 189, 51,  226, 106, 24,  50,  183, 157, 140, 10,  8,   23,  212,
      70,  10,  234, 23,  33,  219, 254, 39,  236, 70,  49,  191, 116, 9,   115, 15,  101, 26,  159,
      165, 220, 15,  170, 56,  125, 92,  163, 94,  235, 38,  40,  49,  81};
  static const struct {
    size_t pad;
    uint64_t ends[8];
  } cases[] = {
      {0, {8256, 16448, 24640, 32832, 41024, 49216, 57408, 65536}},
      {1, {8320, 16576, 24832, 33088, 41344, 49600, 57856, 65536}},
      {2, {8254, 16574, 24894, 33214, 41534, 49854, 58174, 65536}},
      {24, {8272, 16480, 24688, 32896, 41104, 49312, 57520, 65536}},
      {61, {8380, 16696, 25012, 33328, 41644, 49960, 58276, 65536}},
  };
  uint8_t *d = malloc(65536);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    size_t period = 128 + cases[c].pad;
    for (size_t i = 0; i < 65536; i++)
      d[i] = i % period < 128 ? pat[i % period] : 0;
    if (cases[c].pad == 0) assert_int_equal(d[11111], 236);
    if (cases[c].pad == 1) assert_int_equal(d[11111], 50);
    uint64_t ends[16];
    assert_int_equal(chunk_ends(d, 65536, 0, ends, 16), 8);
    assert_memory_equal(ends, cases[c].ends, sizeof cases[c].ends);
    assert_int_equal(chunk_ends(d, 65536, 1, ends, 16), 8);
    assert_memory_equal(ends, cases[c].ends, sizeof cases[c].ends);
  }
  free(d);
  /* short and empty inputs */
  uint64_t ends[4];
  uint8_t small[100] = {0};
  assert_int_equal(chunk_ends(small, 100, 0, ends, 4), 1);
  assert_int_equal(ends[0], 100);
  assert_int_equal(chunk_ends(small, 0, 0, ends, 4), 0);
}

/* ------------------------------------------------------ §10.6 golden hello world */

static const char HELLO_XORB[] = "4e39378b9d359f118190557a1f44130219a54e5fcfa07bd96cf50b466fe651b1";

static void test_golden_hello_world(void **st) {
  (void)st;
  store s = {0};
  uint8_t *xb;
  size_t xl;
  size_t len = 11;
  size_t xi = store_add(&s, (const uint8_t *)"hello world", &len, 1, XET_SCHEME_LZ4, &xb, &xl);
  static const uint8_t want_xorb[19] = {0x00, 0x0b, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 'h', 'e',
                                        'l',  'l',  'o',  ' ',  'w',  'o',  'r',  'l',  'd'};
  assert_int_equal(xl, 19); /* LZ4 does not shrink 11 bytes: stored raw */
  assert_memory_equal(xb, want_xorb, 19);
  assert_hash(&s.x[xi].hash, HELLO_XORB);

  /* the upload shard, no footer (xet-core style) */
  xet_term t = make_term(&s, xi, 0, 1);
  assert_hash(&t.range_hash, "22ef2fdcff5cea306e42ad7e15ed8a0c5e789e7d2ec34658c10d2758946847da");
  xet_file f;
  memset(&f, 0, sizeof f);
  f.file_hash = terms_file_hash(&s, &t, 1);
  assert_hash(&f.file_hash, "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");
  assert_int_equal(f.file_hash.b[0], 0xfd);
  assert_int_equal(f.file_hash.b[1], 0x5c);
  f.flags = XET_FILE_FLAG_VERIFY | XET_FILE_FLAG_META;
  f.n_terms = 1;
  f.terms = &t;
  uint8_t digest[32];
  SHA256((const uint8_t *)"hello world", 11, digest);
  xet_sha256_to_hash(&f.sha256, digest);
  xet_cas cas = make_cas(&s, xi);
  assert_int_equal(cas.bytes_on_disk, 19);
  xet_shard sh;
  memset(&sh, 0, sizeof sh);
  sh.n_files = 1;
  sh.files = &f;
  sh.n_cas = 1;
  sh.cas = &cas;
  uint8_t *bytes;
  size_t blen;
  assert_int_equal(xet_shard_serialize(&bytes, &blen, &sh), 0);
  assert_int_equal(blen, 432);
  assert_sha256(bytes, blen, "b1c3cab94a28e349ae48136a6db0c374e232d587398d6ade5d04dbcb19918278");
  static const uint8_t xorb_raw_prefix[8] = {0x11, 0x9f, 0x35, 0x9d, 0x8b, 0x37, 0x39, 0x4e};
  assert_memory_equal(bytes + 96, xorb_raw_prefix, 8);
  assert_memory_equal(bytes + 288, xorb_raw_prefix, 8);
  static const uint8_t sha_prefix[8] = {0x08, 0x3e, 0x4d, 0x93, 0xb9, 0x27, 0x4d, 0xb9};
  assert_memory_equal(bytes + 192, sha_prefix, 8);

  /* parse it back and validate it against the store */
  xet_shard p;
  assert_int_equal(xet_shard_parse(&p, bytes, blen), 0);
  assert_int_equal(p.has_footer, 0);
  assert_int_equal(p.n_files, 1);
  assert_int_equal(p.files[0].size, 11);
  assert_int_equal(p.files[0].n_terms, 1);
  assert_hash(&p.files[0].terms[0].xorb, HELLO_XORB);
  assert_hash(&p.files[0].sha256,
              "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  assert_int_equal(p.n_cas, 1);
  assert_int_equal(p.cas[0].bytes_on_disk, 19);
  assert_int_equal(xet_shard_check(&p, XET_CHECK_REQUIRE_SHA256, store_lookup, &s), 0);
  uint8_t *again;
  size_t alen;
  assert_int_equal(xet_shard_serialize(&again, &alen, &p), 0);
  assert_int_equal(alen, blen);
  assert_memory_equal(again, bytes, blen);
  free(again);

  /* reconstruction for Range: bytes=6-10 */
  xet_recon r;
  assert_int_equal(xet_reconstruct(&r, p.files[0].terms, 1, 11, 6, 10, store_lookup, &s), 0);
  assert_int_equal(r.offset_into_first_range, 6);
  assert_int_equal(r.n_terms, 1);
  assert_hash(&r.terms[0].xorb, HELLO_XORB);
  assert_int_equal(r.terms[0].unpacked_len, 11);
  assert_int_equal(r.terms[0].chunk_start, 0);
  assert_int_equal(r.terms[0].chunk_end, 1);
  assert_int_equal(r.n_fetch, 1);
  assert_int_equal(r.fetch[0].byte_start, 0);
  assert_int_equal(r.fetch[0].byte_end, 18);
  xet_recon_dispose(&r);
  assert_int_equal(xet_reconstruct(&r, p.files[0].terms, 1, 11, 11, 20, store_lookup, &s),
                   HUB_ERANGE);

  xet_shard_dispose(&p);
  free(bytes);
  free(xb);
  store_dispose(&s);
}

/* ------------------------------------------------------ xorb format */

static void test_bg4(void **st) {
  (void)st;
  for (size_t n = 0; n < 23; n++) {
    uint8_t src[32] = {0}, g[32], back[32];
    for (size_t i = 0; i < n; i++)
      src[i] = (uint8_t)(i * 7 + 1);
    xet_bg4_group(g, src, n);
    if (n == 5) { /* groups of 2,1,1,1: [0,4][1][2][3] */
      static const uint8_t want[5] = {1, 29, 8, 15, 22};
      assert_memory_equal(g, want, 5);
    }
    xet_bg4_ungroup(back, g, n);
    assert_memory_equal(back, src, n);
  }
}

static void test_xorb_roundtrip(void **st) {
  (void)st;
  /* a compressible Float32 ramp (BG4), an affine file (LZ4) and random data (raw) */
  enum { N = 5815 + 131072 + 40000 + 1 };
  uint8_t *d = malloc(N);
  for (size_t i = 0; i < 5815 / 4 + 1; i++) {
    float v = (float)i * 0.25f;
    memcpy(d + 4 * i < d + 5815 - 3 ? d + 4 * i : d + 5812, &v, 4);
  }
  uint8_t *a = affine(131072, 7, 13), *r = splitmix(3, 40001);
  memcpy(d + 5815, a, 131072);
  memcpy(d + 5815 + 131072, r, 40001);
  static const size_t lens[] = {5815, 131072, 40000, 1};
  static const int schemes[] = {XET_SCHEME_BG4, XET_SCHEME_LZ4, XET_SCHEME_LZ4, XET_SCHEME_BG4};
  xet_xorb_builder b;
  xet_xorb_builder_init(&b);
  xet_node nodes[4];
  size_t off = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(xet_xorb_builder_add(&b, d + off, lens[i], schemes[i]), 0);
    xet_chunk_hash(&nodes[i].hash, d + off, lens[i]);
    nodes[i].len = lens[i];
    off += lens[i];
  }
  uint8_t *bytes;
  size_t len;
  xet_hash h, want;
  assert_int_equal(xet_xorb_builder_finish(&b, &bytes, &len, &h), 0);
  xet_xorb_hash(&want, nodes, 4);
  assert_true(xet_hash_eq(&h, &want));
  assert_int_equal(bytes[4], XET_SCHEME_BG4);
  assert_memory_equal(bytes + 8, "\x04\x22\x4d\x18", 4); /* LZ4 frame magic */

  xet_xorb x;
  assert_int_equal(xet_xorb_parse(&x, bytes, len, &h), 0);
  assert_int_equal(x.n_chunks, 4);
  assert_int_equal(x.unpacked_len, N);
  assert_int_equal(x.data_len, len);
  assert_int_equal(x.chunks[2].unpacked_start, 5815 + 131072);
  assert_true(x.chunks[2].stored_len == 8 + 40000); /* random: stored raw */
  /* record-by-record decode gives the original bytes back */
  uint8_t *out = malloc(XET_CHUNK_MAX);
  xet_decoder *dec;
  assert_int_equal(xet_decoder_new(&dec), 0);
  off = 0;
  for (size_t i = 0; i < 4; i++) {
    size_t ulen, rlen;
    /* a frame cut short leaves the reused decoder usable */
    assert_int_equal(xet_payload_decode(dec, XET_SCHEME_LZ4, bytes + x.chunks[1].offset + 8,
                                        x.chunks[1].stored_len - 8 - 20, out, 131072),
                     HUB_EINVALID);
    assert_int_equal(xet_record_decode(dec, bytes + x.chunks[i].offset, len - x.chunks[i].offset,
                                       out, &ulen, &rlen),
                     0);
    assert_int_equal(ulen, lens[i]);
    assert_int_equal(rlen, x.chunks[i].stored_len);
    assert_memory_equal(out, d + off, ulen);
    off += ulen;
  }
  xet_xorb_dispose(&x);

  /* an XETBLOB footer ends the chunk records and is ignored */
  uint8_t *withf = malloc(len + 100);
  memcpy(withf, bytes, len);
  memcpy(withf + len, "XETBLOB\x01", 8);
  memset(withf + len + 8, 0, 92);
  assert_int_equal(xet_xorb_parse(&x, withf, len + 100, &h), 0);
  assert_int_equal(x.had_footer, 1);
  assert_int_equal(x.data_len, len);
  xet_xorb_dispose(&x);

  xet_decoder_free(dec);
  free(withf);
  free(out);
  free(bytes);
  free(a);
  free(r);
  free(d);
}

/* The streamed parser: any split of the body gives the one-shot result, hands on exactly
 * the record bytes (not a footer), and rejects what the one-shot parser rejects. */
struct sink {
  uint8_t *buf;
  size_t len;
};
static int sink_rec(const uint8_t *rec, size_t len, void *p) {
  struct sink *k = p;
  memcpy(k->buf + k->len, rec, len);
  k->len += len;
  return 0;
}

static int stream_parse(const uint8_t *data, size_t len, size_t piece, const xet_hash *want,
                        xet_xorb *out, struct sink *k) {
  xet_xorb_stream *s;
  assert_int_equal(xet_xorb_stream_new(&s, sink_rec, k), 0);
  int rc = 0;
  k->len = 0;
  for (size_t off = 0; !rc && off < len; off += piece)
    rc = xet_xorb_stream_feed(s, data + off, len - off < piece ? len - off : piece);
  if (!rc) rc = xet_xorb_stream_finish(s, out, want);
  xet_xorb_stream_free(s);
  return rc;
}

static void test_xorb_stream(void **st) {
  (void)st;
  uint8_t *a = affine(131072, 7, 13), *r = splitmix(5, 200000);
  xet_xorb_builder b;
  xet_xorb_builder_init(&b);
  assert_int_equal(xet_xorb_builder_add(&b, a, 131072, XET_SCHEME_LZ4), 0);
  assert_int_equal(xet_xorb_builder_add(&b, r, 100000, XET_SCHEME_NONE), 0);
  assert_int_equal(xet_xorb_builder_add(&b, r + 100000, 7, XET_SCHEME_NONE), 0);
  assert_int_equal(xet_xorb_builder_add(&b, a + 5, 70000, XET_SCHEME_BG4), 0);
  uint8_t *x;
  size_t len;
  xet_hash h;
  assert_int_equal(xet_xorb_builder_finish(&b, &x, &len, &h), 0);
  uint8_t *withf = malloc(len + 100);
  memcpy(withf, x, len);
  memcpy(withf + len, "XETBLOB\x01", 8);
  memset(withf + len + 8, 7, 92);
  struct sink k = {malloc(len + 100), 0};
  xet_xorb one, got;
  assert_int_equal(xet_xorb_parse(&one, x, len, &h), 0);
  static const size_t pieces[] = {1, 3, 7, 8, 9, 4096, 65536, 131081, 1 << 30};
  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
    for (int f = 0; f < 2; f++) {
      k.len = 0;
      assert_int_equal(stream_parse(f ? withf : x, f ? len + 100 : len, pieces[i], &h, &got, &k),
                       0);
      assert_int_equal(got.n_chunks, one.n_chunks);
      assert_memory_equal(got.chunks, one.chunks, one.n_chunks * sizeof *one.chunks);
      assert_int_equal(got.data_len, len);
      assert_int_equal(got.had_footer, f);
      assert_int_equal(k.len, len); /* the records, never the footer */
      assert_memory_equal(k.buf, x, len);
      xet_xorb_dispose(&got);
    }
    /* cut short (mid-header, mid-payload), wrong hash, a stray tail */
    assert_int_equal(stream_parse(x, len - 1, pieces[i], &h, &got, &k), HUB_EINVALID);
    assert_int_equal(stream_parse(x, 5, pieces[i], NULL, &got, &k), HUB_EINVALID);
    assert_non_null(strstr(hub_error_msg(), "stray"));
    xet_hash other = h;
    other.b[3] ^= 1;
    assert_int_equal(stream_parse(x, len, pieces[i], &other, &got, &k), HUB_EINVALID);
    assert_non_null(strstr(hub_error_msg(), "mismatch"));
    uint8_t *tail = malloc(len + 3);
    memcpy(tail, x, len);
    memset(tail + len, 0, 3);
    assert_int_equal(stream_parse(tail, len + 3, pieces[i], NULL, &got, &k), HUB_EINVALID);
    free(tail);
  }
  /* a bad header fails the stream, and it stays failed */
  xet_xorb_stream *s;
  assert_int_equal(xet_xorb_stream_new(&s, NULL, NULL), 0);
  assert_int_equal(xet_xorb_stream_feed(s, x, 4), 0);
  assert_int_equal(xet_xorb_stream_feed(s, (const uint8_t *)"\x07\x07\x07\x07", 4), HUB_EINVALID);
  assert_int_equal(xet_xorb_stream_feed(s, x, len), HUB_EINVALID); /* stays failed */
  xet_xorb_stream_free(s);
  xet_xorb_dispose(&one);
  free(k.buf);
  free(withf);
  free(x);
  free(a);
  free(r);
}

static void test_xorb_bad(void **st) {
  (void)st;
  uint8_t *d = affine(50000, 7, 13);
  xet_xorb_builder b;
  xet_xorb_builder_init(&b);
  assert_int_equal(xet_xorb_builder_add(&b, d, 50000, XET_SCHEME_LZ4), 0);
  assert_int_equal(xet_xorb_builder_add(&b, (const uint8_t *)"hello world", 11, XET_SCHEME_NONE),
                   0);
  uint8_t *x;
  size_t len;
  xet_hash h;
  assert_int_equal(xet_xorb_builder_finish(&b, &x, &len, &h), 0);
  size_t clen = (size_t)x[1] | (size_t)x[2] << 8 | (size_t)x[3] << 16;
  assert_int_equal(len, 8 + clen + 8 + 11);
  xet_xorb out;
  uint8_t *c = malloc(len);

  /* wrong expected hash */
  xet_hash other = h;
  other.b[0] ^= 1;
  assert_int_equal(xet_xorb_parse(&out, x, len, &other), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "mismatch"));
  /* a flipped byte of raw chunk data: the content no longer hashes to h */
  memcpy(c, x, len);
  c[len - 1] ^= 0x20;
  assert_int_equal(xet_xorb_parse(&out, c, len, &h), HUB_EINVALID);
  /* truncated LZ4 frame: shrink the payload, keep the records consistent */
  for (size_t cut = 1; cut < clen; cut += clen / 7 + 1) {
    memcpy(c, x, 8 + clen - cut);
    c[1] = (uint8_t)(clen - cut);
    c[2] = (uint8_t)((clen - cut) >> 8);
    c[3] = (uint8_t)((clen - cut) >> 16);
    assert_int_equal(xet_xorb_parse(&out, c, 8 + clen - cut, NULL), HUB_EINVALID);
  }
  /* the body itself cut short */
  for (size_t n = 1; n < len; n += 997)
    assert_int_equal(xet_xorb_parse(&out, x, n, NULL), HUB_EINVALID);
  /* LZ4 decoding to fewer / more bytes than the header says */
  memcpy(c, x, len);
  c[5] = (uint8_t)(50000 - 1);
  c[6] = (uint8_t)((50000 - 1) >> 8);
  assert_int_equal(xet_xorb_parse(&out, c, len, NULL), HUB_EINVALID);
  memcpy(c, x, len);
  c[5] = (uint8_t)(50000 + 1);
  c[6] = (uint8_t)((50000 + 1) >> 8);
  assert_int_equal(xet_xorb_parse(&out, c, len, NULL), HUB_EINVALID);
  /* header fields: version, scheme, sizes */
  memcpy(c, x, len);
  c[0] = 1;
  assert_int_equal(xet_xorb_parse(&out, c, len, NULL), HUB_EINVALID);
  memcpy(c, x, len);
  c[4] = 3;
  assert_int_equal(xet_xorb_parse(&out, c, len, NULL), HUB_EINVALID);
  static const uint8_t zero_size[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(xet_xorb_parse(&out, zero_size, 8, NULL), HUB_EINVALID);
  static const uint8_t huge[8] = {0, 1, 0, 0, 0, 0x01, 0x00, 0x02}; /* 131073 bytes */
  assert_int_equal(xet_xorb_parse(&out, huge, 8, NULL), HUB_EINVALID);
  /* raw chunk whose sizes disagree */
  static const uint8_t rawbad[10] = {0, 2, 0, 0, 0, 3, 0, 0, 'a', 'b'};
  assert_int_equal(xet_xorb_parse(&out, rawbad, 10, NULL), HUB_EINVALID);
  /* empty body, stray tail bytes */
  assert_int_equal(xet_xorb_parse(&out, x, 0, NULL), HUB_EINVALID);
  memcpy(c, x, len);
  assert_int_equal(xet_xorb_parse(&out, c, len, &h), 0);
  xet_xorb_dispose(&out);
  uint8_t *tail = malloc(len + 3);
  memcpy(tail, x, len);
  memset(tail + len, 0, 3);
  assert_int_equal(xet_xorb_parse(&out, tail, len + 3, NULL), HUB_EINVALID);
  free(tail);
  /* trailing garbage after the LZ4 end mark inside the payload */
  uint8_t *extra = malloc(len + 4);
  memcpy(extra, x, 8 + clen);
  memcpy(extra + 8 + clen, "\0\0\0\0", 4);
  memcpy(extra + 8 + clen + 4, x + 8 + clen, len - 8 - clen);
  extra[1] = (uint8_t)(clen + 4);
  extra[2] = (uint8_t)((clen + 4) >> 8);
  assert_int_equal(xet_xorb_parse(&out, extra, len + 4, NULL), HUB_EINVALID);
  free(extra);

  /* too many chunks */
  xet_xorb_builder_init(&b);
  for (int i = 0; i < HUB_MAX_XORB_CHUNKS; i++)
    assert_int_equal(xet_xorb_builder_add(&b, (const uint8_t *)"a", 1, XET_SCHEME_NONE), 0);
  assert_int_equal(xet_xorb_builder_add(&b, (const uint8_t *)"a", 1, XET_SCHEME_NONE), HUB_ETOOBIG);
  uint8_t *many;
  size_t mlen;
  assert_int_equal(xet_xorb_builder_finish(&b, &many, &mlen, &h), 0);
  assert_int_equal(xet_xorb_parse(&out, many, mlen, &h), 0);
  assert_int_equal(out.n_chunks, HUB_MAX_XORB_CHUNKS);
  xet_xorb_dispose(&out);
  uint8_t *more = malloc(mlen + 9);
  memcpy(more, many, mlen);
  memcpy(more + mlen, "\0\1\0\0\0\1\0\0a", 9);
  assert_int_equal(xet_xorb_parse(&out, more, mlen + 9, NULL), HUB_ETOOBIG);
  free(more);
  free(many);

  free(c);
  free(x);
  free(d);
}

/* ------------------------------------------------------ shard format */

/* The §5.7 JS-style shard: 200000-byte affine file in one 2-chunk xorb, with a footer. */
static void build_js_like(store *s, uint8_t **out, size_t *out_len, size_t *xi) {
  uint8_t *d = affine(200000, 7, 13);
  static const size_t lens[2] = {131072, 68928};
  *xi = store_add(s, d, lens, 2, XET_SCHEME_LZ4, NULL, NULL);
  assert_hash(&s->x[*xi].hash, "f0755d96ee199d4f01e83da9fe2c38353de7fd38fb79a320a7d50be510026f74");
  static xet_term t;
  t = make_term(s, *xi, 0, 2);
  assert_hash(&t.range_hash, "82d580dd3896919ef870af78b2c7bd21e67e79777922bbc8cef1fc21630c308c");
  static xet_file f;
  memset(&f, 0, sizeof f);
  f.file_hash = terms_file_hash(s, &t, 1);
  f.flags = XET_FILE_FLAG_VERIFY | XET_FILE_FLAG_META;
  f.n_terms = 1;
  f.terms = &t;
  uint8_t digest[32];
  SHA256(d, 200000, digest);
  xet_sha256_to_hash(&f.sha256, digest);
  static xet_cas cas;
  cas = make_cas(s, *xi);
  xet_shard sh;
  memset(&sh, 0, sizeof sh);
  sh.n_files = 1;
  sh.files = &f;
  sh.n_cas = 1;
  sh.cas = &cas;
  sh.has_footer = 1;
  sh.footer.created = 1700000000;
  sh.footer.stored_bytes_on_disk = cas.bytes_on_disk;
  sh.footer.stored_bytes = 200000;
  assert_int_equal(xet_shard_serialize(out, out_len, &sh), 0);
  free(d);
}

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void test_shard_roundtrip(void **st) {
  (void)st;
  store s = {0};
  uint8_t *b;
  size_t len, xi;
  build_js_like(&s, &b, &len, &xi);
  assert_int_equal(len, 680);
  assert_int_equal(le64(b + 40), 200);
  assert_int_equal(le64(b + 480), 1);        /* footer version */
  assert_int_equal(le64(b + 480 + 8), 48);   /* file_info_offset */
  assert_int_equal(le64(b + 480 + 16), 288); /* cas_info_offset */
  assert_int_equal(le64(b + 480 + 192), 480);

  xet_shard p;
  assert_int_equal(xet_shard_parse(&p, b, len), 0);
  assert_int_equal(p.has_footer, 1);
  assert_int_equal(p.footer.cas_info_offset, 288);
  assert_int_equal(p.footer.created, 1700000000);
  assert_int_equal(p.n_files, 1);
  assert_int_equal(p.files[0].size, 200000);
  assert_hash(&p.files[0].file_hash,
              "d88d9e0b760f32c90b7c6592b4cb85251c01bb797371e3c637087b96ac578723");
  assert_hash(&p.files[0].sha256,
              "261a48d2d9c2e92e4e0f97d2bbeca1d209b04ecb24fc68e78457235eda048559");
  assert_int_equal(p.cas[0].n_chunks, 2);
  assert_hash(&p.cas[0].chunks[0].hash,
              "118bbac5c38b2bca9c2b7ae8307786de066696b91b2b5ccb7dbbd4608c966882");
  assert_int_equal(p.cas[0].chunks[1].unpacked_start, 131072);
  assert_int_equal(p.cas[0].chunks[1].len, 68928);
  assert_int_equal(xet_shard_check(&p, XET_CHECK_REQUIRE_SHA256, store_lookup, &s), 0);
  xet_hash *xs;
  size_t nx;
  assert_int_equal(xet_shard_xorbs(&p, &xs, &nx), 0);
  assert_int_equal(nx, 1);
  assert_true(xet_hash_eq(&xs[0], &s.x[xi].hash));
  free(xs);
  uint8_t *again;
  size_t alen;
  assert_int_equal(xet_shard_serialize(&again, &alen, &p), 0);
  assert_int_equal(alen, len);
  assert_memory_equal(again, b, len);
  free(again);
  xet_shard_dispose(&p);

  /* lookup tables between the CAS bookend and the footer are skipped */
  uint8_t *lk = malloc(len + 24);
  memcpy(lk, b, 480);
  memset(lk + 480, 0x5a, 24);
  memcpy(lk + 504, b + 480, 200);
  assert_int_equal(xet_shard_parse(&p, lk, len + 24), 0);
  xet_shard_dispose(&p);
  free(lk);

  /* an empty-file shard (zero hash, no terms) */
  xet_file ef;
  memset(&ef, 0, sizeof ef);
  ef.flags = XET_FILE_FLAG_VERIFY;
  xet_shard es;
  memset(&es, 0, sizeof es);
  es.n_files = 1;
  es.files = &ef;
  uint8_t *eb;
  size_t el;
  assert_int_equal(xet_shard_serialize(&eb, &el, &es), 0);
  assert_int_equal(el, 48 * 4);
  assert_int_equal(xet_shard_parse(&p, eb, el), 0);
  assert_int_equal(p.n_files, 1);
  assert_int_equal(p.files[0].size, 0);
  assert_int_equal(xet_shard_check(&p, 0, store_lookup, &s), 0);
  /* no sha256 ext: rejected where the commit needs one */
  assert_int_equal(xet_shard_check(&p, XET_CHECK_REQUIRE_SHA256, store_lookup, &s), HUB_EINVALID);
  p.files[0].flags = 0; /* no verification entries: always rejected */
  assert_int_equal(xet_shard_check(&p, 0, store_lookup, &s), HUB_EINVALID);
  xet_shard_dispose(&p);
  free(eb);

  free(b);
  store_dispose(&s);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void test_shard_bad(void **st) {
  (void)st;
  store s = {0};
  uint8_t *b, *c;
  size_t len, xi;
  xet_shard p;
  build_js_like(&s, &b, &len, &xi);
  c = malloc(len + 48);
#define MUT(stmt, want)                                                                            \
  do {                                                                                             \
    memcpy(c, b, len);                                                                             \
    stmt;                                                                                          \
    assert_int_equal(xet_shard_parse(&p, c, len), want);                                           \
  } while (0)
  MUT(c[0] ^= 1, HUB_EINVALID);             /* tag */
  MUT(c[32] = 3, HUB_EINVALID);             /* version */
  MUT(c[40] = 100, HUB_EINVALID);           /* footer_size */
  MUT(c[480] = 2, HUB_EINVALID);            /* footer version */
  MUT(put32(c + 48 + 36, 2), HUB_EINVALID); /* file: more terms than entries follow */
  MUT(put32(c + 48 + 36, 0xffffffffu), HUB_EINVALID);
  MUT(put32(c + 48 + 36, 0), HUB_EINVALID);          /* non-zero hash with no terms */
  MUT(c[48 + 35] |= 0x01, HUB_EINVALID);             /* unknown file flag */
  MUT(put32(c + 96 + 40, 2), HUB_EINVALID);          /* term start == end */
  MUT(put32(c + 96 + 44, 9000), HUB_EINVALID);       /* term end beyond any xorb */
  MUT(put32(c + 96 + 36, 1), HUB_EINVALID);          /* term bytes < chunk count */
  MUT(put32(c + 96 + 36, 0x7fffffff), HUB_EINVALID); /* term bytes > 2 x 128 KiB */
  MUT(put32(c + 288 + 36, 3), HUB_EINVALID);         /* CAS: more chunks than entries follow */
  MUT(put32(c + 288 + 36, 0), HUB_EINVALID);         /* CAS: zero chunks */
  MUT(put32(c + 288 + 40, 200001), HUB_EINVALID);    /* CAS: bytes_in_cas lies */
  MUT(put32(c + 384 + 32, 131071), HUB_EINVALID);    /* CAS: chunk offsets do not add up */
  MUT(put32(c + 384 + 36, 0), HUB_EINVALID);         /* CAS: zero-size chunk */
  MUT(memset(c + 240, 0, 32), HUB_EINVALID);         /* no file bookend */
  MUT(memset(c + 432, 0, 32), HUB_EINVALID);         /* no CAS bookend */
#undef MUT
  /* every truncation fails */
  for (size_t n = 0; n < len; n++)
    assert_int_equal(xet_shard_parse(&p, b, n), HUB_EINVALID);
  /* footer_size 0 but bytes follow the CAS bookend */
  memcpy(c, b, len);
  c[40] = 0;
  assert_int_equal(xet_shard_parse(&p, c, len), HUB_EINVALID);
  assert_int_equal(xet_shard_parse(&p, c, 480), 0);
  xet_shard_dispose(&p);

  /* structurally fine, but lies checked against the store */
#define CHECK(stmt, want)                                                                          \
  do {                                                                                             \
    memcpy(c, b, len);                                                                             \
    stmt;                                                                                          \
    assert_int_equal(xet_shard_parse(&p, c, len), 0);                                              \
    assert_int_equal(xet_shard_check(&p, XET_CHECK_REQUIRE_SHA256, store_lookup, &s), want);       \
    xet_shard_dispose(&p);                                                                         \
  } while (0)
  CHECK((void)0, 0);
  CHECK(c[144] ^= 1, HUB_EINVALID);                                        /* verification hash */
  CHECK(c[48] ^= 1, HUB_EINVALID);                                         /* file hash */
  CHECK(put32(c + 96 + 36, 199999), HUB_EINVALID);                         /* term bytes */
  CHECK((put32(c + 96 + 40, 1), put32(c + 96 + 36, 68928)), HUB_EINVALID); /* other range */
  CHECK(c[96] ^= 1, HUB_EINVALID);                                         /* unknown xorb */
  CHECK(c[336] ^= 1, HUB_EINVALID);                                        /* CAS chunk hash */
#undef CHECK
  free(c);
  free(b);
  store_dispose(&s);
}

static void test_dedup_shard(void **st) {
  (void)st;
  store s = {0};
  uint8_t *d = affine(200000, 7, 13);
  static const size_t lens[2] = {131072, 68928};
  size_t xi = store_add(&s, d, lens, 2, XET_SCHEME_LZ4, NULL, NULL);
  xet_cas cas = make_cas(&s, xi);
  cas.chunks[0].flags = XET_CAS_FLAG_DEDUP;
  xet_hash key = H("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  uint8_t *b;
  size_t len;
  assert_int_equal(xet_shard_build_dedup(&b, &len, &cas, 1, &key, 1000, 1000 + 604800), 0);
  assert_int_equal(len, 488);
  static const uint64_t want_footer[9] = {1, 48, 96, 288, 0, 288, 0, 288, 0};
  for (int i = 0; i < 9; i++)
    assert_int_equal(le64(b + 288 + 8 * i), want_footer[i]);
  assert_int_equal(le64(b + 288 + 192), 288);
  xet_shard p;
  assert_int_equal(xet_shard_parse(&p, b, len), 0);
  assert_int_equal(p.n_files, 0);
  assert_int_equal(p.n_cas, 1);
  assert_true(xet_hash_eq(&p.footer.hmac_key, &key));
  assert_int_equal(p.footer.expiry, 1000 + 604800);
  assert_hash(&p.cas[0].chunks[0].hash,
              "1e1f5ae2bae99fe030647a14a8c5fe6cdce57826387a7552236dfbebed533e04");
  assert_int_equal(p.cas[0].chunks[0].flags, XET_CAS_FLAG_DEDUP);
  assert_int_equal(p.cas[0].chunks[1].unpacked_start, 131072);
  xet_shard_dispose(&p);
  free(b);
  free(d);
  store_dispose(&s);
}

/* ------------------------------------------------------ reconstruction */

static void test_reconstruct(void **st) {
  (void)st;
  store s = {0};
  uint8_t *d = splitmix(7, 400000);
  static const size_t la[4] = {100000, 50000, 30000, 20000}; /* xorb A: 200000 bytes */
  static const size_t lb[2] = {120000, 80000};               /* xorb B: 200000 bytes */
  size_t a = store_add(&s, d, la, 4, XET_SCHEME_LZ4, NULL, NULL);
  size_t bi = store_add(&s, d + 200000, lb, 2, XET_SCHEME_NONE, NULL, NULL);
  /* file: A[0,2) B[0,2) A[1,4)  -> 150000 + 200000 + 100000 = 450000 bytes */
  xet_term t[3] = {make_term(&s, a, 0, 2), make_term(&s, bi, 0, 2), make_term(&s, a, 1, 4)};
  xet_recon r;
  assert_int_equal(xet_reconstruct(&r, t, 3, 450000, 0, 449999, store_lookup, &s), 0);
  assert_int_equal(r.offset_into_first_range, 0);
  assert_int_equal(r.n_terms, 3);
  assert_int_equal(r.terms[2].unpacked_len, 100000);
  /* A[0,2) and A[1,4) coalesce into A[0,4); B[0,2) */
  assert_int_equal(r.n_fetch, 2);
  for (size_t i = 0; i < 2; i++) {
    const xet_recon_fetch *f = &r.fetch[i];
    const xet_xorb *x = xet_hash_eq(&f->xorb, &s.x[a].hash) ? &s.x[a] : &s.x[bi];
    assert_int_equal(f->chunk_start, 0);
    assert_int_equal(f->chunk_end, x->n_chunks);
    assert_int_equal(f->byte_start, 0);
    assert_int_equal(f->byte_end, x->data_len - 1);
  }
  xet_recon_dispose(&r);

  /* a slice from inside A chunk 1 to inside B chunk 0 */
  assert_int_equal(xet_reconstruct(&r, t, 3, 450000, 120000, 200000, store_lookup, &s), 0);
  assert_int_equal(r.offset_into_first_range, 20000);
  assert_int_equal(r.n_terms, 2);
  assert_int_equal(r.terms[0].chunk_start, 1);
  assert_int_equal(r.terms[0].chunk_end, 2);
  assert_int_equal(r.terms[0].unpacked_len, 50000);
  assert_int_equal(r.terms[1].chunk_start, 0);
  assert_int_equal(r.terms[1].chunk_end, 1);
  assert_int_equal(r.terms[1].unpacked_len, 120000);
  for (size_t i = 0; i < r.n_fetch; i++) {
    const xet_recon_fetch *f = &r.fetch[i];
    const xet_xorb *x = xet_hash_eq(&f->xorb, &s.x[a].hash) ? &s.x[a] : &s.x[bi];
    assert_int_equal(f->byte_start, x->chunks[f->chunk_start].offset);
    assert_int_equal(f->byte_end, x->chunks[f->chunk_end - 1].offset +
                                      x->chunks[f->chunk_end - 1].stored_len - 1);
  }
  xet_recon_dispose(&r);

  /* huge end clamps; start past the end is 416 */
  assert_int_equal(xet_reconstruct(&r, t, 3, 450000, 449999, UINT64_MAX - 1, store_lookup, &s), 0);
  assert_int_equal(r.n_terms, 1);
  assert_int_equal(r.terms[0].chunk_start, 3);
  assert_int_equal(r.offset_into_first_range, 19999);
  xet_recon_dispose(&r);
  assert_int_equal(xet_reconstruct(&r, t, 3, 450000, 450000, 450000, store_lookup, &s), HUB_ERANGE);
  /* stored terms disagreeing with the stored xorb */
  t[1].unpacked_bytes++;
  assert_int_equal(xet_reconstruct(&r, t, 3, 450001, 0, 400000, store_lookup, &s), HUB_EINVALID);
  free(d);
  store_dispose(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash_string),
      cmocka_unit_test(test_hash_primitives),
      cmocka_unit_test(test_merkle_streaming_matches_spec_rule),
      cmocka_unit_test(test_gear_table),
      cmocka_unit_test(test_affine_200000),
      cmocka_unit_test(test_affine_1000000),
      cmocka_unit_test(test_splitmix_1mb),
      cmocka_unit_test(test_const_data),
      cmocka_unit_test(test_streaming_invariance),
      cmocka_unit_test(test_min_size_edges),
      cmocka_unit_test(test_golden_hello_world),
      cmocka_unit_test(test_bg4),
      cmocka_unit_test(test_xorb_roundtrip),
      cmocka_unit_test(test_xorb_stream),
      cmocka_unit_test(test_xorb_bad),
      cmocka_unit_test(test_shard_roundtrip),
      cmocka_unit_test(test_shard_bad),
      cmocka_unit_test(test_dedup_shard),
      cmocka_unit_test(test_reconstruct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
