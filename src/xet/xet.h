/* Xet chunk storage: the pure core (hashes, chunker, xorb and shard formats, reconstruction
 * planning). No I/O, no HTTP, no database: callers hand in bytes and, where stored state is
 * needed, a lookup callback. Protocol: /work/shared/docs/xet.md; notes: docs/xet.md.
 *
 * Conventions:
 * - Functions returning int give 0 or a negative HUB_E* code with hub_error_msg() set:
 *   HUB_EINVALID for malformed or lying input (bad hash, truncated LZ4, counts that do not
 *   add up), HUB_ETOOBIG over a limit of util/limits.h, HUB_ENOTFOUND when a lookup misses,
 *   HUB_ERANGE for an unsatisfiable byte range, HUB_ERROR for out-of-memory.
 * - Every count and size read from the wire is bounds- and overflow-checked before use.
 * - Structures filled by *_parse / *_build own their arrays; release them with the matching
 *   *_dispose (which also accepts a zeroed struct). Pointers into a caller's input buffer are
 *   never kept.
 * - Hashes are raw 32-byte values (xet_hash); the printable form is the §2.1 "four
 *   little-endian u64 words" string (xet_hash_str / xet_hash_parse). */
#ifndef HUB_XET_XET_H
#define HUB_XET_XET_H

#include <stddef.h>
#include <stdint.h>

#include "blake3.h"

/* Protocol constants (spec §3.1, §4, §5). Limits that bound hostile input are in
 * util/limits.h (HUB_MAX_XORB_*, HUB_MAX_SHARD_*). */
#define XET_HASH_LEN 32
#define XET_CHUNK_TARGET 65536
#define XET_CHUNK_MIN 8192
#define XET_CHUNK_MAX 131072
#define XET_CHUNK_HEADER 8
#define XET_SHARD_ENTRY 48
#define XET_SHARD_FOOTER 200

typedef struct {
  uint8_t b[XET_HASH_LEN];
} xet_hash;

/* ------------------------------------------------------------------ hash.c */

/* The §2.1 string form: 64 lowercase hex digits + NUL. */
void xet_hash_str(char out[65], const xet_hash *h);
/* Parse exactly `len` characters (must be 64 hex digits, either case). HUB_EINVALID else. */
int xet_hash_parse(xet_hash *out, const char *s, size_t len);
int xet_hash_eq(const xet_hash *a, const xet_hash *b);
int xet_hash_is_zero(const xet_hash *h);
/* Word k (0..3) of the hash as a little-endian u64: word 3 is the value used for "hash mod
 * n" (§2.1), word 0 the truncated hash of shard lookup tables. */
uint64_t xet_hash_word(const xet_hash *h, int k);

/* BLAKE3 keyed with DATA_KEY over the uncompressed chunk (§2.3). */
void xet_chunk_hash(xet_hash *out, const void *data, size_t len);
/* BLAKE3 keyed with `key` over the 32 raw bytes of `h` (§2.8). */
void xet_hmac(xet_hash *out, const xet_hash *h, const xet_hash *key);
/* The SHA-256 link (§2.7): digest bytes <-> stored shard bytes (each 8-byte group
 * reversed), so xet_hash_str() of the stored form prints the ordinary sha256 hex. */
void xet_sha256_to_hash(xet_hash *out, const uint8_t digest[32]);
void xet_hash_to_sha256(uint8_t out[32], const xet_hash *h);
/* 1 if `chunk` may enter the global-dedup index (§2.9): first chunk of a file, hash mod 1024
 * == 0, or bit 31 of its shard CAS-entry flags. */
int xet_dedup_eligible(const xet_hash *chunk, int first_of_file, uint32_t cas_flags);

/* Term verification hash (§2.6), streamed: feed the raw chunk hashes of chunks s..e-1. */
typedef struct {
  blake3_hasher h;
} xet_verifier;
void xet_verifier_init(xet_verifier *v);
void xet_verifier_add(xet_verifier *v, const xet_hash *chunk_hash);
void xet_verifier_final(xet_verifier *v, xet_hash *out);
/* One-shot form over `n` consecutive hashes. */
void xet_verification_hash(xet_hash *out, const xet_hash *chunk_hashes, size_t n);

/* Merkle aggregation (§2.4), streamed with O(depth) memory: add (hash, length) leaves in
 * order, then take the root. The root of 0 leaves is the zero hash, of 1 leaf the leaf. */
#define XET_MERKLE_LEVELS 64 /* groups have >= 3 members except a level's tail: depth < 45 */
typedef struct {
  xet_hash hash;
  uint64_t len;
} xet_node;
typedef struct {
  xet_node pend[XET_MERKLE_LEVELS][9]; /* nodes of each level not yet grouped */
  uint8_t npend[XET_MERKLE_LEVELS];
  uint64_t count[XET_MERKLE_LEVELS]; /* nodes ever added to each level */
  int depth;                         /* levels in use */
} xet_merkle;
void xet_merkle_init(xet_merkle *m);
void xet_merkle_add(xet_merkle *m, const xet_hash *h, uint64_t len);
/* Leaves added so far. */
uint64_t xet_merkle_leaves(const xet_merkle *m);
/* Finish: *out = root hash, *out_len (may be NULL) = total length. `m` is spent. */
void xet_merkle_final(xet_merkle *m, xet_hash *out, uint64_t *out_len);
/* Finish as a file hash (§2.5): zero for no chunks, else BLAKE3(zero key, root). */
void xet_merkle_final_file(xet_merkle *m, xet_hash *out);
/* One-shot forms: xorb hash and file hash of a chunk list. */
void xet_xorb_hash(xet_hash *out, const xet_node *chunks, size_t n);
void xet_file_hash(xet_hash *out, const xet_node *chunks, size_t n);

/* --------------------------------------------------------------- chunker.c */

/* Content-defined chunker (§3.3), streaming: feed any piece sizes, same boundaries. */
typedef struct {
  uint64_t h;
  uint64_t pos;   /* absolute offset of the next byte */
  uint64_t start; /* absolute offset where the current chunk began */
} xet_chunker;
void xet_chunker_init(xet_chunker *c);
/* Scan `data[0..len)`, stopping right after the first boundary. Returns how many bytes
 * were consumed; *out_chunk_len is the length of the chunk that ended at the last consumed
 * byte (it began at c->pos - *out_chunk_len), or 0 if no chunk ended. Call again with the
 * rest until all input is consumed. */
size_t xet_chunker_scan(xet_chunker *c, const uint8_t *data, size_t len, uint64_t *out_chunk_len);
/* End of input: 1 and the final chunk's [*start, *end) if one is pending, else 0. */
int xet_chunker_finish(xet_chunker *c, uint64_t *out_start, uint64_t *out_end);
/* GEAR[256] of §3.2 (exposed for the table test vector). */
extern const uint64_t xet_gear[256];

/* File hasher: chunks a stream, hashes every chunk, keeps the Merkle state and the sha256,
 * and hands each chunk to `cb` (which may be NULL), e.g. to pack it into a xorb. Holds at
 * most one chunk (XET_CHUNK_MAX bytes) in memory, so any file size streams through. */
typedef int (*xet_chunk_fn)(const uint8_t *chunk, size_t len, const xet_hash *hash, void *payload);
typedef struct xet_file_hasher xet_file_hasher;
/* *out is owned by the caller; free with xet_file_hasher_free(). */
int xet_file_hasher_new(xet_file_hasher **out, xet_chunk_fn cb, void *payload);
/* Returns the callback's non-zero code unchanged. */
int xet_file_hasher_update(xet_file_hasher *fh, const void *data, size_t len);
/* Flush the last chunk and write the file hash, the sha256 digest (may be NULL), the size
 * and chunk count (may be NULL). */
int xet_file_hasher_final(xet_file_hasher *fh, xet_hash *out_file_hash, uint8_t out_sha256[32],
                          uint64_t *out_size, uint64_t *out_chunks);
void xet_file_hasher_free(xet_file_hasher *fh);

/* -------------------------------------------------------------- lz4group.c */

enum { XET_SCHEME_NONE = 0, XET_SCHEME_LZ4 = 1, XET_SCHEME_BG4 = 2 };

/* Reusable chunk decoder (LZ4 context + BG4 scratch). One per thread/parse; *out is owned
 * by the caller, free with xet_decoder_free(). */
typedef struct xet_decoder xet_decoder;
int xet_decoder_new(xet_decoder **out);
void xet_decoder_free(xet_decoder *d);
/* Decode one chunk payload of `scheme` into out[0..n) where n is the header's uncompressed
 * size (<= XET_CHUNK_MAX). The LZ4 frame must fill `src` exactly and decode to exactly n
 * bytes; anything else (truncation, trailing bytes, bad frame) is HUB_EINVALID. `dec` may be
 * NULL (a temporary decoder is used). */
int xet_payload_decode(xet_decoder *dec, int scheme, const uint8_t *src, size_t src_len,
                       uint8_t *out, size_t n);
/* Encode `n` bytes with `scheme` into *out (malloc'd, caller frees). If the result would not
 * be strictly smaller than n, stores raw instead; *out_scheme says which was used. */
int xet_payload_encode(int scheme, const uint8_t *src, size_t n, uint8_t **out, size_t *out_len,
                       int *out_scheme);
/* BG4 byte grouping (§4.2): group / ungroup n bytes between two distinct buffers. */
void xet_bg4_group(uint8_t *dst, const uint8_t *src, size_t n);
void xet_bg4_ungroup(uint8_t *dst, const uint8_t *src, size_t n);

/* ------------------------------------------------------------------ xorb.c */

/* One chunk of a stored xorb: what the xorb_chunks table keeps (spec §1). */
typedef struct {
  xet_hash hash;           /* chunk hash (of the uncompressed bytes) */
  uint32_t offset;         /* byte offset of the chunk header in the serialized xorb */
  uint32_t stored_len;     /* 8 + compressed_size */
  uint32_t len;            /* uncompressed size */
  uint32_t unpacked_start; /* cumulative uncompressed offset of the chunk in the xorb */
} xet_xorb_chunk;

typedef struct {
  xet_hash hash;          /* xorb hash (Merkle root of the chunks) */
  size_t n_chunks;        /* 1..HUB_MAX_XORB_CHUNKS */
  xet_xorb_chunk *chunks; /* owned */
  uint64_t data_len;      /* bytes of chunk records (a trailing XETBLOB footer excluded) */
  uint64_t unpacked_len;  /* sum of uncompressed sizes */
  int had_footer;         /* an XETBLOB footer followed the records (ignored) */
} xet_xorb;

/* Parse and fully verify an uploaded xorb body (§4.4): every record decoded, every chunk
 * hashed, chunk count and sizes bounded, and the xorb hash compared with `expected` (NULL =
 * accept any; the computed one is in out->hash). A trailing XETBLOB footer ends the records
 * and is ignored. HUB_EINVALID (mismatch, malformed, truncated LZ4), HUB_ETOOBIG. */
int xet_xorb_parse(xet_xorb *out, const uint8_t *data, size_t len, const xet_hash *expected);
void xet_xorb_dispose(xet_xorb *x);

/* The same checks over a body that arrives in pieces of any size (an upload streamed to
 * storage): each complete chunk record is handed to `cb` (may be NULL), which can write it
 * out; an XETBLOB footer and whatever follows are not. Memory: one record (<= 8 + 256 KiB),
 * one decoded chunk and the chunk table. *out is owned by the caller. */
typedef int (*xet_record_fn)(const uint8_t *rec, size_t len, void *payload);
typedef struct xet_xorb_stream xet_xorb_stream;
int xet_xorb_stream_new(xet_xorb_stream **out, xet_record_fn cb, void *payload);
/* Returns cb's non-zero code unchanged; once failed, the stream stays failed. */
int xet_xorb_stream_feed(xet_xorb_stream *s, const uint8_t *data, size_t len);
/* End of body: the checks of xet_xorb_parse that need all of it (stray bytes, no chunks, the
 * xorb hash against `expected`, NULL = any). Fills *out (chunk table moved into it). */
int xet_xorb_stream_finish(xet_xorb_stream *s, xet_xorb *out, const xet_hash *expected);
void xet_xorb_stream_free(xet_xorb_stream *s);

/* Decode the chunk record at data[0..avail) (e.g. inside a fetched byte range) into
 * out[0..XET_CHUNK_MAX). *out_len = uncompressed size, *out_rec_len = 8 + compressed size.
 * Hashes are not checked (the stored xorb was verified on upload). `dec` may be NULL, but
 * pass one when decoding many records. */
int xet_record_decode(xet_decoder *dec, const uint8_t *data, size_t avail, uint8_t *out,
                      size_t *out_len, size_t *out_rec_len);

/* Xorb builder: append chunks, then take the serialized bytes and the hash. */
typedef struct {
  uint8_t *data;
  size_t len, cap;
  xet_merkle merkle;
  size_t n_chunks;
  uint64_t unpacked_len;
} xet_xorb_builder;
void xet_xorb_builder_init(xet_xorb_builder *b);
/* Append one chunk (1..XET_CHUNK_MAX bytes) compressed with `scheme` (raw when that is not
 * smaller). HUB_ETOOBIG when the xorb would exceed the chunk-count or byte limits. */
int xet_xorb_builder_add(xet_xorb_builder *b, const uint8_t *chunk, size_t len, int scheme);
/* Hand over the bytes (*out owned by the caller, free()) and the xorb hash; resets `b`. */
int xet_xorb_builder_finish(xet_xorb_builder *b, uint8_t **out, size_t *out_len,
                            xet_hash *out_hash);
void xet_xorb_builder_dispose(xet_xorb_builder *b);

/* ----------------------------------------------------------------- shard.c */

#define XET_FILE_FLAG_VERIFY 0x80000000u
#define XET_FILE_FLAG_META 0x40000000u
#define XET_CAS_FLAG_DEDUP 0x80000000u

/* One term of a file reconstruction. */
typedef struct {
  xet_hash xorb;
  uint32_t flags;
  uint32_t unpacked_bytes;
  uint32_t chunk_start, chunk_end; /* half-open chunk-index range */
  xet_hash range_hash;             /* verification entry (zero if the file has none) */
} xet_term;

/* One file reconstruction: file hash -> terms, plus the sha256 link. */
typedef struct {
  xet_hash file_hash;
  uint32_t flags; /* XET_FILE_FLAG_* */
  size_t n_terms;
  xet_term *terms; /* borrowed from the owning xet_shard */
  xet_hash sha256; /* stored form (§2.7); meaningful iff flags & XET_FILE_FLAG_META */
  uint64_t size;   /* sum of the terms' unpacked bytes */
} xet_file;

typedef struct {
  xet_hash hash;           /* chunk hash (HMACed in dedup shards with a non-zero key) */
  uint32_t unpacked_start; /* chunk_byte_range_start: cumulative uncompressed offset */
  uint32_t len;            /* unpacked_segment_bytes */
  uint32_t flags;          /* bit 31: global-dedup hint */
} xet_cas_chunk;

typedef struct {
  xet_hash xorb;
  uint32_t flags;
  uint32_t bytes_in_cas;  /* sum of chunk sizes (checked) */
  uint32_t bytes_on_disk; /* informational, not validated */
  size_t n_chunks;
  xet_cas_chunk *chunks; /* borrowed from the owning xet_shard */
} xet_cas;

typedef struct {
  uint64_t version; /* 1 */
  uint64_t file_info_offset, cas_info_offset;
  uint64_t file_lookup_offset, file_lookup_n;
  uint64_t xorb_lookup_offset, xorb_lookup_n;
  uint64_t chunk_lookup_offset, chunk_lookup_n;
  xet_hash hmac_key; /* zero = chunk hashes are raw */
  uint64_t created, expiry;
  uint64_t stored_bytes_on_disk, materialized_bytes, stored_bytes;
  uint64_t footer_offset;
} xet_shard_footer;

typedef struct {
  int has_footer;
  xet_shard_footer footer;
  size_t n_files;
  xet_file *files;
  size_t n_cas;
  xet_cas *cas;
  /* storage behind files[].terms and cas[].chunks */
  xet_term *term_store;
  xet_cas_chunk *chunk_store;
} xet_shard;

/* Parse and structurally validate a shard (§5.1-5.5 and the self-contained rules of §5.6):
 * tag, version 2, footer_size 0/200, bookends, exact section bounds, footer version 1, no
 * unknown file flags, term ranges start < end, empty files only as (zero hash, 0 terms),
 * CAS blocks of 1..8192 chunks whose sizes and offsets add up to bytes_in_cas. Does not
 * consult stored xorbs (see xet_shard_check). HUB_EINVALID / HUB_ETOOBIG. */
int xet_shard_parse(xet_shard *out, const uint8_t *data, size_t len);
void xet_shard_dispose(xet_shard *s);

/* Serialize `s` (file and CAS sections; footer iff s->has_footer, whose offsets, and the
 * lookup offsets set to footer_offset with counts 0, are computed here; the other footer
 * fields are copied). File flags come from s->files[].flags. *out is malloc'd. */
int xet_shard_serialize(uint8_t **out, size_t *out_len, const xet_shard *s);

/* Global-dedup reply (§5.8): a footer shard with no files and the given CAS blocks whose
 * chunk hashes are replaced by hmac(hash, key). `created`/`expiry` are unix seconds. */
int xet_shard_build_dedup(uint8_t **out, size_t *out_len, const xet_cas *cas, size_t n_cas,
                          const xet_hash *key, uint64_t created, uint64_t expiry);

/* Stored state lookup: the chunk list of xorb `xorb` (borrowed until the next call), or
 * HUB_ENOTFOUND. Any other negative code is propagated. */
typedef int (*xet_xorb_lookup_fn)(void *payload, const xet_hash *xorb,
                                  const xet_xorb_chunk **out_chunks, size_t *out_n);

enum { XET_CHECK_REQUIRE_SHA256 = 1 };
/* Upload validation against stored xorbs (§5.6 items 3-4): verification entries present
 * (and the sha256 ext when XET_CHECK_REQUIRE_SHA256), each term's xorb known with an
 * in-range chunk range, matching unpacked bytes and verification hash, the file hash
 * recomputed over all terms; each CAS block equal to the stored xorb. A missing xorb is
 * HUB_EINVALID naming it. Bounded by HUB_MAX_SHARD_CHUNK_REFS chunk visits. */
int xet_shard_check(const xet_shard *s, unsigned flags, xet_xorb_lookup_fn lookup, void *payload);

/* Distinct xorbs referenced by terms or CAS blocks, sorted by raw bytes. *out malloc'd. */
int xet_shard_xorbs(const xet_shard *s, xet_hash **out, size_t *out_n);

/* ----------------------------------------------------------------- recon.c */

typedef struct {
  xet_hash xorb;
  uint32_t chunk_start, chunk_end; /* half-open */
  uint64_t unpacked_len;
} xet_recon_term;

/* A byte range of one xorb to fetch; covers chunks [chunk_start, chunk_end). */
typedef struct {
  xet_hash xorb;
  uint32_t chunk_start, chunk_end;
  uint64_t byte_start, byte_end; /* inclusive, as in the JSON */
} xet_recon_fetch;

typedef struct {
  uint64_t offset_into_first_range;
  size_t n_terms;
  xet_recon_term *terms;
  size_t n_fetch;
  xet_recon_fetch *fetch; /* sorted by (xorb bytes, chunk_start); overlaps and adjacent
                             ranges of one xorb coalesced */
} xet_recon;

/* Plan the reconstruction of bytes [first, last] (inclusive; the caller clamps `last` to
 * size-1) of a file of `size` bytes made of `terms` (§6.4). HUB_ERANGE if first > last or
 * first >= size; HUB_EINVALID if the stored terms disagree with the stored xorbs. */
int xet_reconstruct(xet_recon *out, const xet_term *terms, size_t n_terms, uint64_t size,
                    uint64_t first, uint64_t last, xet_xorb_lookup_fn lookup, void *payload);
void xet_recon_dispose(xet_recon *r);

#endif
