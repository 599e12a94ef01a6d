/* Xet hashes (spec §2): string form, keyed BLAKE3 chunk/HMAC/verification hashes, the
 * streaming Merkle aggregation behind xorb and file hashes, and the sha256 link. */
#include "xet/xet.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

static const uint8_t DATA_KEY[32] = {102, 151, 245, 119, 91,  149, 80,  222, 49,  53,  203,
                                     172, 165, 151, 24,  28,  157, 228, 33,  16,  155, 235,
                                     43,  88,  180, 208, 176, 75,  147, 173, 242, 41};
static const uint8_t INTERNAL_NODE_KEY[32] = {1,   126, 197, 199, 165, 71,  41,  150, 253, 148, 102,
                                              102, 180, 138, 2,   230, 93,  221, 83,  111, 55,  199,
                                              109, 210, 248, 99,  82,  230, 74,  83,  113, 63};
static const uint8_t VERIFICATION_KEY[32] = {127, 24,  87,  214, 206, 86,  237, 102, 18,  127, 249,
                                             19,  231, 165, 195, 243, 164, 205, 38,  213, 181, 219,
                                             73,  230, 65,  36,  152, 127, 40,  251, 148, 195};
static const uint8_t ZERO_KEY[32] = {0};

static void keyed(xet_hash *out, const uint8_t key[32], const void *data, size_t len) {
  blake3_hasher h;
  blake3_hasher_init_keyed(&h, key);
  blake3_hasher_update(&h, data, len);
  blake3_hasher_finalize(&h, out->b, XET_HASH_LEN);
}

void xet_hash_str(char out[65], const xet_hash *h) {
  static const char hex[] = "0123456789abcdef";
  char *p = out;
  for (int k = 0; k < 4; k++)
    for (int j = 7; j >= 0; j--) {
      uint8_t v = h->b[8 * k + j];
      *p++ = hex[v >> 4];
      *p++ = hex[v & 15];
    }
  *p = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int xet_hash_parse(xet_hash *out, const char *s, size_t len) {
  if (len != 64) return hub_error_set(HUB_EINVALID, "xet hash must be 64 hex digits");
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 8; j++) {
      int hi = hexval(s[16 * k + 2 * j]), lo = hexval(s[16 * k + 2 * j + 1]);
      if (hi < 0 || lo < 0) return hub_error_set(HUB_EINVALID, "xet hash must be hex");
      out->b[8 * k + 7 - j] = (uint8_t)(hi << 4 | lo);
    }
  return 0;
}

int xet_hash_eq(const xet_hash *a, const xet_hash *b) {
  return memcmp(a->b, b->b, XET_HASH_LEN) == 0;
}

int xet_hash_is_zero(const xet_hash *h) {
  static const xet_hash zero;
  return xet_hash_eq(h, &zero);
}

uint64_t xet_hash_word(const xet_hash *h, int k) {
  assert(k >= 0 && k < 4);
  uint64_t w = 0;
  for (int j = 7; j >= 0; j--)
    w = w << 8 | h->b[8 * k + j];
  return w;
}

void xet_chunk_hash(xet_hash *out, const void *data, size_t len) {
  keyed(out, DATA_KEY, data, len);
}

void xet_hmac(xet_hash *out, const xet_hash *h, const xet_hash *key) {
  keyed(out, key->b, h->b, XET_HASH_LEN);
}

void xet_sha256_to_hash(xet_hash *out, const uint8_t digest[32]) {
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 8; j++)
      out->b[8 * k + j] = digest[8 * k + 7 - j];
}

void xet_hash_to_sha256(uint8_t out[32], const xet_hash *h) {
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 8; j++)
      out[8 * k + j] = h->b[8 * k + 7 - j];
}

int xet_dedup_eligible(const xet_hash *chunk, int first_of_file, uint32_t cas_flags) {
  return first_of_file || (xet_hash_word(chunk, 3) & 1023) == 0 ||
         (cas_flags & XET_CAS_FLAG_DEDUP) != 0;
}

void xet_verifier_init(xet_verifier *v) {
  blake3_hasher_init_keyed(&v->h, VERIFICATION_KEY);
}

void xet_verifier_add(xet_verifier *v, const xet_hash *chunk_hash) {
  blake3_hasher_update(&v->h, chunk_hash->b, XET_HASH_LEN);
}

void xet_verifier_final(xet_verifier *v, xet_hash *out) {
  blake3_hasher_finalize(&v->h, out->b, XET_HASH_LEN);
}

void xet_verification_hash(xet_hash *out, const xet_hash *chunk_hashes, size_t n) {
  keyed(out, VERIFICATION_KEY, chunk_hashes, n * sizeof *chunk_hashes);
}

/* ---- Merkle aggregation ----
 * Each level keeps at most 9 pending nodes. Once 9 are pending the next group is decided
 * no matter what follows (the cut rule looks at positions 2..8 only), so it is hashed into
 * one parent for the level above. At the end, each level's remainder is cut with the full
 * rule (tail groups of 1-2 included) bottom-up; the first level that received exactly one
 * node in total holds the root. */

/* Size of the group starting at nodes[0] when `n` nodes remain (n >= 1) (§2.4). */
static int cut_len(const xet_node *nodes, int n) {
  if (n <= 2) return n;
  int end = n < 9 ? n : 9;
  for (int i = 2; i < end; i++)
    if ((xet_hash_word(&nodes[i].hash, 3) & 3) == 0) return i + 1;
  return end;
}

static void parent_of(xet_node *out, const xet_node *nodes, int n) {
  blake3_hasher h;
  blake3_hasher_init_keyed(&h, INTERNAL_NODE_KEY);
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    char line[64 + 3 + 21 + 1];
    xet_hash_str(line, &nodes[i].hash);
    int m = snprintf(line + 64, sizeof line - 64, " : %llu\n", (unsigned long long)nodes[i].len);
    blake3_hasher_update(&h, line, 64 + (size_t)m);
    total += nodes[i].len;
  }
  blake3_hasher_finalize(&h, out->hash.b, XET_HASH_LEN);
  out->len = total;
}

void xet_merkle_init(xet_merkle *m) {
  memset(m->npend, 0, sizeof m->npend);
  memset(m->count, 0, sizeof m->count);
  m->depth = 1;
}

static void push(xet_merkle *m, int level, const xet_node *node);

/* Hash the first `g` pending nodes of `level` into a parent one level up. */
static void emit(xet_merkle *m, int level, int g) {
  xet_node parent;
  parent_of(&parent, m->pend[level], g);
  int rest = m->npend[level] - g;
  memmove(m->pend[level], m->pend[level] + g, (size_t)rest * sizeof(xet_node));
  m->npend[level] = (uint8_t)rest;
  push(m, level + 1, &parent);
}

static void push(xet_merkle *m, int level, const xet_node *node) {
  assert(level < XET_MERKLE_LEVELS);
  if (level >= m->depth) m->depth = level + 1;
  m->pend[level][m->npend[level]++] = *node;
  m->count[level]++;
  if (m->npend[level] == 9) emit(m, level, cut_len(m->pend[level], 9));
}

void xet_merkle_add(xet_merkle *m, const xet_hash *h, uint64_t len) {
  xet_node n = {*h, len};
  push(m, 0, &n);
}

uint64_t xet_merkle_leaves(const xet_merkle *m) {
  return m->count[0];
}

void xet_merkle_final(xet_merkle *m, xet_hash *out, uint64_t *out_len) {
  if (m->count[0] == 0) {
    memset(out, 0, sizeof *out);
    if (out_len) *out_len = 0;
    return;
  }
  for (int level = 0;; level++) {
    assert(level < XET_MERKLE_LEVELS);
    if (m->count[level] == 1) { /* the only node this level ever had: the root */
      *out = m->pend[level][0].hash;
      if (out_len) *out_len = m->pend[level][0].len;
      return;
    }
    while (m->npend[level] > 0)
      emit(m, level, cut_len(m->pend[level], m->npend[level]));
  }
}

void xet_merkle_final_file(xet_merkle *m, xet_hash *out) {
  if (m->count[0] == 0) {
    memset(out, 0, sizeof *out);
    return;
  }
  xet_hash root;
  xet_merkle_final(m, &root, NULL);
  keyed(out, ZERO_KEY, root.b, XET_HASH_LEN);
}

void xet_xorb_hash(xet_hash *out, const xet_node *chunks, size_t n) {
  xet_merkle m;
  xet_merkle_init(&m);
  for (size_t i = 0; i < n; i++)
    xet_merkle_add(&m, &chunks[i].hash, chunks[i].len);
  xet_merkle_final(&m, out, NULL);
}

void xet_file_hash(xet_hash *out, const xet_node *chunks, size_t n) {
  xet_merkle m;
  xet_merkle_init(&m);
  for (size_t i = 0; i < n; i++)
    xet_merkle_add(&m, &chunks[i].hash, chunks[i].len);
  xet_merkle_final_file(&m, out);
}
