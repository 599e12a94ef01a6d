/* The Xet store's tables (modules "xetsrv", "xetsrv-acl", "xetsrv-repo-delete"): xorbs,
 * files, sha256 links, the dedup index, repo read links and per-repo settings. xetsrv/ owns
 * the formats; this module only stores them. Hashes are raw 32-byte values (`h32`); chunk
 * tables and term lists are the packed byte arrays xetsrv/store.c builds.
 *
 * Functions return 0 or a negative HUB_E* code with hub_error_msg() set, unless noted. */
#ifndef HUB_DB_XET_H
#define HUB_DB_XET_H

#include <stddef.h>
#include <stdint.h>

#define DB_XET_HASH_LEN 32

/* Run the modules' migrations (idempotent). */
int db_xet_migrate(void);

/* A write transaction (BEGIN IMMEDIATE) around several calls below (a shard's files);
 * db_xet_txn_end commits when rc is 0, else rolls back, and returns rc or the commit error. */
int db_xet_txn_begin(void);
int db_xet_txn_end(int rc);

/* Per-repo switch: 1 unless a row turns it off (1 as well when the DB cannot answer). */
int db_xet_enabled(int64_t repo_id);
int db_xet_set_enabled(int64_t repo_id, int on);

/* ---- xorbs ---- */
int db_xet_xorb_exists(const uint8_t *h32); /* 1 / 0 */
/* HUB_ENOTFOUND (no message) if not stored; *chunks is a malloc'd copy of the packed table. */
int db_xet_xorb_get(const uint8_t *h32, char blob_oid[65], uint64_t *size, size_t *n_chunks,
                    uint8_t **chunks, size_t *chunks_len);
/* Insert a xorb row and its dedup-eligible chunks (`dedup`, n_dedup hashes of 32 bytes,
 * added only when the row is new) in one transaction; *inserted = 1 if the row is new. */
int db_xet_xorb_insert(const uint8_t *h32, const char *blob_oid, int64_t size, int64_t n_chunks,
                       int64_t unpacked, const uint8_t *chunks, size_t chunks_len, int64_t repo_id,
                       const uint8_t *dedup, size_t n_dedup, int *inserted);

/* ---- files and sha256 links ---- */
/* HUB_ENOTFOUND ("Unknown file"); *terms is a malloc'd copy (NULL when empty). */
int db_xet_file_get(const uint8_t *h32, uint64_t *size, uint8_t **terms, size_t *terms_len);
/* INSERT OR IGNORE; *is_new = 1 if the row is new. */
int db_xet_file_insert(const uint8_t *h32, int64_t size, const uint8_t *terms, size_t terms_len,
                       int64_t repo_id, int *is_new);
int db_xet_file_xorb_add(const uint8_t *xorb32, const uint8_t *file32);
int db_xet_dedup_add(const uint8_t *chunk32, const uint8_t *xorb32);
/* Upsert a sha256 -> file link (verified only ever goes up). */
int db_xet_sha_add(const char *sha, const uint8_t *file32, int64_t size, int verified,
                   int64_t repo_id);
/* sha256 -> file, a verified link or one made by `repo_id` (0 = verified only). */
int db_xet_sha_find(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size);
/* Like db_xet_sha_find for one repo: its own link, or a verified link whose sha256 the repo
 * references in repo_objects with the same size. HUB_ENOTFOUND ("not Xet-backed"). */
int db_xet_sha_find_for(const char *sha, int64_t repo_id, uint8_t *file32, uint64_t *size);
int db_xet_sha_set_verified(const char *sha, const uint8_t *file32, int ok);
int db_xet_verified_size(const char *sha, int64_t *out_size); /* HUB_ENOTFOUND */
int db_xet_unverified(void (*cb)(const char *sha, const uint8_t *file32, int64_t repo_id, void *p),
                      void *p);
/* Every uploader repo of a verified (sha, file) link references the object. */
int db_xet_claims_to_objects(const char *sha, const uint8_t *file32);
/* Verified uploads become references; read links no reference justifies are dropped. */
int db_xet_objects_migrate(void);

/* ---- repo read links and dedup ---- */
int db_xet_repo_has(int64_t repo_id, const uint8_t *file32); /* 1 / 0 */
int db_xet_repo_link(int64_t repo_id, const uint8_t *file32);
/* 1 if a verified sha256 of `file` is referenced by the repo (same size). */
int db_xet_repo_references(int64_t repo_id, const uint8_t *file32);
/* 1 if a file using `xorb` is linked to `repo_id` or sits in a public, ungated repo. */
int db_xet_dedup_allowed(int64_t repo_id, const uint8_t *xorb32);
/* Hash lists: cb per row, up to `limit` rows; a cb result != 0 stops and is returned. */
typedef int (*db_xet_hash_cb)(const uint8_t *h32, void *p);
int db_xet_dedup_xorbs(const uint8_t *chunk32, int limit, db_xet_hash_cb cb, void *p);
int db_xet_xorb_files(const uint8_t *xorb32, int limit, db_xet_hash_cb cb, void *p);

/* ---- `modelhub storage stats` and `modelhub fsck` ---- */
typedef struct {
  int64_t xorbs, stored, unpacked;    /* xorb rows, their bytes, chunk bytes before compression */
  int64_t files, unique_bytes;        /* distinct files and their bytes */
  int64_t logical;                    /* file bytes as repos hold them (xet_repo_files) */
  int64_t verified_files, unverified; /* files with a verified sha256; unverified links */
} db_xet_stats;
void db_xet_stats_get(db_xet_stats *out); /* 0 for what cannot be read */
/* Every xorb / file hash (cb as for the hash lists), every distinct (sha256, file) link. */
int db_xet_each_xorb(db_xet_hash_cb cb, void *p);
int db_xet_each_file(db_xet_hash_cb cb, void *p);
int db_xet_each_sha_link(void (*cb)(const char *sha, const uint8_t *file32, void *p), void *p);

#endif
