/* The pull-through mirror's tables (module "mirror", docs/mirror.md). mirror/ decides;
 * this file only stores.
 *
 * - mirror_repos: a local repo row that is a copy of an upstream repo (read-only), with the
 *   upstream base URL, when it was first fetched and when its refs were last taken from
 *   upstream (the TTL clock).
 * - mirror_namespaces: placeholder organizations created for upstream namespaces (no
 *   members: only site admins administer them).
 * - mirror_objects: LFS objects fetched from upstream (the cache), with the last time one
 *   was served (LRU eviction) and whether `mirror pull` pinned it. */
#ifndef HUB_DB_MIRROR_H
#define HUB_DB_MIRROR_H

#include <stddef.h>
#include <stdint.h>

int db_mirror_init(void);

typedef struct {
  int64_t repo_id;
  char upstream[512];
  int64_t fetched_ms; /* first fetch */
  int64_t refs_ms;    /* refs last taken from upstream */
} db_mirror_repo;

/* 0, HUB_ENOTFOUND, or HUB_ERROR. */
int db_mirror_repo_get(int64_t repo_id, db_mirror_repo *out);
/* Insert or replace. */
int db_mirror_repo_set(const db_mirror_repo *m);
/* 1 when the account is a namespace the mirror created, else 0. */
int db_mirror_ns_is(int64_t account_id);
int db_mirror_ns_add(int64_t account_id, const char *upstream);

/* An object entered the cache (idempotent; `pinned` only ever turns on). */
int db_mirror_object_add(const char *oid, int64_t size, int pinned, int64_t now_ms);
/* 1 when the object came from upstream (is in the cache table). */
int db_mirror_object_has(const char *oid);
/* Last-use times (ms) of objects served; oids[i] is 64 hex. */
int db_mirror_objects_touch(const char (*oids)[65], const int64_t *ms, size_t n);
/* Sum of the sizes of cached objects. */
int db_mirror_objects_bytes(int64_t *out);
/* Unpinned cached objects, least recently used first, at most max. */
int db_mirror_objects_lru(char (*oids)[65], int64_t *sizes, size_t max, size_t *out_n);
/* Forget a cached object: its mirror_objects row and the references of mirrored repos.
 * *out_shared = 1 when a repo that is not a mirror still references it (keep the bytes). */
int db_mirror_object_forget(const char *oid, int *out_shared);

#endif
