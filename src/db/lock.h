/* State several nodes must agree on, kept in the database (docs/scale-out.md, "Several
 * nodes"): leases (a named lock with an owner and an expiry, taken and renewed by one node
 * at a time), the per-(repo, ref) publishing lock built on them, and first-writer-wins kv
 * values. Written in portable SQL on the statement layer (db/stmt.h), so it behaves the
 * same on SQLite (several processes on one file) and on PostgreSQL (several machines).
 *
 * A lease is not a fence: a holder stalled past its expiry may find that another node took
 * it. Every use here is guarded by something else as well (the git ref CAS for ref moves,
 * idempotent consumers for the event dispatcher): the lease keeps nodes from racing, the
 * guard keeps a lost race from losing data. Expiries compare wall clocks of different
 * nodes: keep them in sync (NTP) to well under the lease lengths used (seconds). */
#ifndef HUB_DB_LOCK_H
#define HUB_DB_LOCK_H

#include <stddef.h>
#include <stdint.h>

/* Create the "nodes" schema module (the leases table). Until it has run in this process,
 * db_repo_lock / db_repo_unlock do nothing (single-process tools and unit tests). */
int db_locks_init(void);
/* This process's owner name for leases: "host:pid:random", fixed for the process. */
const char *db_node_id(void);

/* Take or renew lease `name` for ttl_ms: 1 when this node holds it now, 0 when another
 * node holds it (unexpired), <0 on a database error. Before db_locks_init (a single
 * process: CLI tools, unit tests) always 1. */
int db_lease_take(const char *name, int64_t ttl_ms);
/* Give up lease `name` if this node holds it (0, or <0 on a database error). */
int db_lease_drop(const char *name);

/* The cross-node turn on (repo, ref): wait up to wait_ms for it (0, HUB_ERETRY when it
 * stayed busy, <0 on a database error). `repo_key` names the repository the same way on
 * every node (its uid). Held as a lease of DB_REPO_LOCK_TTL_MS: a node that dies holding
 * it delays others by at most that long. Within one process the caller already holds the
 * in-process turn, so a node takes each (repo, ref) once at a time. */
#define DB_REPO_LOCK_TTL_MS 15000
int db_repo_lock(const char *repo_key, const char *ref, int64_t wait_ms);
void db_repo_unlock(const char *repo_key, const char *ref);

/* Maintenance of a repository (`git gc`, `pack-refs --prune`) against ref moves on other
 * nodes: pack-refs copies loose refs into packed-refs and then deletes the loose files, so
 * a branch another node deleted in between comes back. Within a process the repository's
 * in-process ref lock keeps them apart (repo_ref_lock); across nodes maintenance holds the
 * lease "maint:<repo_key>" and waits for other nodes' turns on the repo's refs
 * (db_repo_lock) to end, and a turn taken while another node's maintenance lease runs
 * gives itself up and waits. begin: 0 when maintenance may run (renew the lease every few
 * seconds while it does; end drops it), HUB_ERETRY when another node maintains the repo or
 * its ref turns did not end within wait_ms. Before db_locks_init: always 0. */
#define DB_MAINT_LEASE_TTL_MS 15000
int db_repo_maint_begin(const char *repo_key, int64_t wait_ms);
int db_repo_maint_renew(const char *repo_key);
void db_repo_maint_end(const char *repo_key);

/* Failure counters every node adds to (login throttling): `key`'s count within a window
 * that starts at its first failure and lasts window_ms. add: one more failure (a count
 * whose window ran out starts again at 1); get: the count and the window's start (0 and
 * 0 when none runs); clear: forget the key. Before db_locks_init: HUB_EUNSUPPORTED, and
 * callers count in memory. */
int db_counter_add(const char *key, int64_t window_ms);
int db_counter_get(const char *key, int64_t window_ms, int *out_n, int64_t *out_start_ms);
int db_counter_clear(const char *key);

/* Store `len` bytes under kv `key` unless a value is there already; either way `val` gets
 * the stored value (first writer wins: two nodes starting at once agree on one value). */
int db_kv_claim(const char *key, void *val, size_t len);
#endif
