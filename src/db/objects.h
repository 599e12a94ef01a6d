/* Per-repo object references: which LFS objects (sha256 oids, with their size) a repo may
 * name and read. The blob store is global and deduplicated; this table is what scopes it.
 *
 * A repo references an object once bytes hashing to it were uploaded for that repo (LFS
 * PUT / multipart completion, a Xet upload whose sha256 the server verified, an LFS -> Xet
 * conversion), or when existing data was migrated (lfs_objects_backfill). Commits and
 * pushes may only name objects their repo references; batch downloads, signed GETs and
 * Xet reads answer only for them. Lookups are one primary-key probe on (repo_id, oid). */
#ifndef HUB_DB_OBJECTS_H
#define HUB_DB_OBJECTS_H

#include <stdint.h>

/* Record that `repo_id` references `oid` (64 lowercase hex) of `size` bytes. Idempotent;
 * an existing row keeps its size (sizes are fixed by the oid). */
int db_objects_add(int64_t repo_id, const char *oid, int64_t size);
/* 0 and *out_size (may be NULL) when the repo references `oid`; HUB_ENOTFOUND if not. */
int db_objects_get(int64_t repo_id, const char *oid, int64_t *out_size);
/* THE rule for "repo `repo_id` may name LFS object (oid, size)" in a commit — the commit
 * API (lfsFile ops, pointer-shaped files) and the pre-receive hook both ask this, nothing
 * else (docs/lfs.md, "Which objects a commit may name"). Yes when
 *   - the repo references the object with that size (repo_objects), or
 *   - the object was uploaded through this repo's own Xet token with that size (a xet_sha
 *     row of this repo, verified or not): resolve serves it from that Xet file.
 * An object stored only for another repo, or a size that differs, is a no — and both read
 * alike (no size oracle for other repos' objects). `size` < 0: any size (an lfsFile op
 * without one). 0 and *out_size (may be NULL; the referenced size), HUB_ENOTFOUND, or
 * HUB_ERROR when the database could not answer. */
int db_objects_may_reference(int64_t repo_id, const char *oid, int64_t size, int64_t *out_size);
/* Number of objects `repo_id` references (tests, stats). */
int db_objects_count(int64_t repo_id, int64_t *out);

#endif
