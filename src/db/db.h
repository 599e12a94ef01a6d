/* Metadata store: SQLite in WAL mode (the default) or PostgreSQL (db/stmt.h, --db), one
 * connection per thread, versioned migrations.
 *
 * All SQL lives behind this header; nothing outside src/db sees an engine's handles.
 * Strings in the structs below are copied in (fixed buffers sized by util/limits.h).
 * Times are unix milliseconds. */
#ifndef HUB_DB_DB_H
#define HUB_DB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

enum { HUB_REPO_MODEL = 0, HUB_REPO_DATASET = 1, HUB_REPO_SPACE = 2 };
enum { ACCOUNT_USER = 0, ACCOUNT_ORG = 1 };

typedef struct {
  int64_t id;
  char uid[25];
  int kind;
  char name[HUB_MAX_USER_NAME + 1];
  char fullname[HUB_MAX_SHORT_TEXT + 1];
  char email[HUB_MAX_SHORT_TEXT + 1];
  char password_hash[160];
  int is_admin;
  int64_t created_ms;
} db_account;

typedef struct {
  int64_t id;
  char uid[25];
  int64_t user_id;
  char name[HUB_MAX_SHORT_TEXT + 1];
  int role; /* PERM_READ / PERM_WRITE */
  int64_t created_ms, last_used_ms, expires_ms;
  int revoked;
  char scopes[4096]; /* JSON, fine-grained tokens only */
} db_token;

typedef struct {
  int64_t id;
  char uid[25]; /* immutable; names the git dir */
  int type;
  char ns[HUB_MAX_NAME + 1];
  char name[HUB_MAX_NAME + 1];
  int64_t owner_id;
  int owner_is_org;
  int is_private;
  char gated[8]; /* "" | "auto" | "manual" */
  int disabled;
  int64_t created_ms, updated_ms;
  char head_sha[41];        /* derived: head of refs/heads/main ("" if unknown) */
  int64_t last_modified_ms; /* derived: commit time of head_sha */
} db_repo;

/* Open (creating) <data_dir>/modelhub.db, or the PostgreSQL database db_engine_select
 * chose, and migrate the core schema (module "core"); call once before threads. */
int db_global_init(const char *data_dir);
void db_global_shutdown(void);
/* Per-module schema versions: apply steps[version..nsteps) of `module`, each in its own
 * transaction, recording the version in schema_modules. Modules own their tables, so
 * they evolve without touching one shared list. Call once at startup (any thread). */
int db_migrate_module(const char *module, const char *const *steps, int nsteps);
const char *db_data_dir(void);
/* <data>/repos/ab/cd/<uid>.git: where a repo's bare git directory lives. */
void db_repo_dir(const char *uid, char *out, size_t cap);

/* One read snapshot for several statements: each statement outside a transaction opens
 * and closes its own WAL read lock (a mutex and fcntl calls each time). The HTTP layer
 * wraps GET/HEAD request handling in begin/end. Writes inside still work (the
 * transaction upgrades; best-effort writes there may see SQLITE_BUSY). No-ops if a
 * transaction is already open. */
void db_read_begin(void);
void db_read_end(void);

/* Write fences (PostgreSQL; no-ops on SQLite). A node answers router lookups of repo rows
 * from a cache whose entries are younger than db_write_fence_ms() (db_repo_get_shared,
 * MODELHUB_REPO_CACHE_MS, default DB_REPO_CACHE_MS_DEFAULT; 0 turns both off). So that no
 * node serves a row older than a change someone was already told about, whatever tells
 * of a change waits that long after committing it: db_write_fence before a request's
 * answer (until that long after this thread's last committed change), db_visibility_wait
 * before telling of changes read from the database (webhooks: that long from now), and
 * a process that wrote waits at exit (CLI commands, git hooks). docs/scale-out.md. */
#define DB_REPO_CACHE_MS_DEFAULT 5
int db_write_fence_ms(void);
/* Set the cache age and fence (tests; MODELHUB_REPO_CACHE_MS otherwise). */
void db_repo_cache_set_ms(int ms);
void db_write_fence(void);
void db_visibility_wait(void);

/* Transactions on this thread's connection (db_tx_* of db/stmt.h; the error message is
 * set on failure). db_begin_immediate takes the write lock at once. */
int db_begin_immediate(void);
int db_commit(void);
void db_rollback(void);
/* 1 inside a transaction (a caller's, or a read snapshot), 0 in autocommit mode. */
int db_in_transaction(void);
/* 1 inside a transaction that has not written (a read snapshot, db_read_begin): it cannot
 * be relied on to become a write transaction. */
int db_in_read_snapshot(void);
/* Run fn(arg) without waiting for the write lock when outside a transaction (busy timeout 0
 * for the call, then back to the default). *busy says whether it failed because another
 * connection held the lock. Returns fn's result. */
int db_try_without_waiting(int (*fn)(void *arg), void *arg, int *busy);
/* The last error message of this thread's connection (SQLite's; on PostgreSQL the
 * statement layer's last error). */
const char *db_errmsg(void);

/* This thread only reads from now on: its connection refuses every write (SQLite: PRAGMA
 * query_only, and an authorizer that logs "write on a read-only thread" with the table to
 * stderr; PostgreSQL: default_transaction_read_only), so a write that slipped onto it fails loudly
 * instead of waiting for the write lock. The HTTP layer calls it on its event threads: the handlers
 * they run (RUN_INLINE, RUN_INLINE_TRY) and the router's checks never write; writes go to worker
 * threads or background queues. */
void db_thread_readonly(void);
/* 1 on a thread that called db_thread_readonly (writers hand their work to another thread). */
int db_thread_is_readonly(void);

/* A budget for this thread's queries from now on: `steps` SQLite virtual-machine steps
 * and `usec` microseconds of the thread's CPU time (steps == 0: no limit, the default). Past
 * either, every statement fails with SQLITE_INTERRUPT and db_budget_exceeded() is true, until the
 * next db_budget_set. On PostgreSQL the budget is statement_timeout = usec (wall time, per
 * statement; steps are not counted). The HTTP layer runs read-only handlers on an event thread
 * under a budget and moves them to a worker thread when they exceed it (RUN_INLINE_TRY). */
void db_budget_set(long steps, long usec);
int db_budget_exceeded(void);

/* Random 24-hex id (the Hub's _id shape). out must hold 25 bytes. */
void db_new_uid(char out[25]);
int64_t db_now_ms(void);

/* Key/value settings (server secrets etc.). */
int db_kv_get(const char *key, void *out, size_t cap, size_t *out_len);
int db_kv_set(const char *key, const void *val, size_t len);

/* Accounts (users and orgs share one namespace). */
int db_account_create(db_account *acc); /* fills id, uid, created_ms; HUB_EEXISTS */
int db_account_by_name(const char *name, db_account *out); /* HUB_ENOTFOUND */
int db_account_by_id(int64_t id, db_account *out);
int db_account_count(int kind, int64_t *out);
int db_account_set_password(int64_t id, const char *hash);
typedef void (*db_member_cb)(const db_account *org, int role, void *payload);
int db_member_set(int64_t org_id, int64_t user_id, int role);
int db_member_remove(int64_t org_id, int64_t user_id);
int db_member_role(int64_t org_id, int64_t user_id, int *out_role); /* PERM_NONE if none */
int db_member_orgs(int64_t user_id, db_member_cb cb, void *payload);
/* Members of an org (the callback's account is the user). */
int db_org_members(int64_t org_id, db_member_cb cb, void *payload);

/* Tokens: only the sha256 of the secret is stored. */
int db_token_create(db_token *tok, const char *hash_hex);
int db_token_by_hash(const char *hash_hex, db_token *out); /* HUB_ENOTFOUND */
/* A token and its owner's account (password hash left empty) in one statement;
 * HUB_ENOTFOUND. _shared: what a request's identification calls — on PostgreSQL, outside
 * a begun transaction, answered from the node's cache when younger than
 * db_write_fence_ms() (safe for the reason repo rows are: db/flight.c). */
int db_token_identity(const char *hash_hex, db_token *tok, db_account *acc);
int db_token_identity_shared(const char *hash_hex, db_token *tok, db_account *acc);
/* Identifications answered from that cache since start (metrics). */
long db_token_cache_hits(void);
int db_token_touch(int64_t id, int64_t now_ms);
typedef void (*db_token_cb)(const db_token *tok, const char *user, void *payload);
int db_token_list(int64_t user_id_or_0, db_token_cb cb, void *payload);
int db_token_revoke(const char *uid_or_name, int64_t user_id_or_0); /* HUB_ENOTFOUND */

/* Repos. */
int db_repo_create(db_repo *repo); /* fills id, uid, times; HUB_EEXISTS */
int db_repo_get(int type, const char *ns, const char *name, db_repo *out); /* HUB_ENOTFOUND */
int db_repo_by_id(int64_t id, db_repo *out);
/* By the immutable uid (signed LFS URLs name repos by uid so renames keep them valid). */
int db_repo_by_uid(const char *uid, db_repo *out); /* HUB_EREPO */
int db_repo_delete(int64_t id);
/* Rename; the old name then redirects. HUB_EEXISTS if the target is taken. */
int db_repo_move(int64_t id, int64_t new_owner_id, int new_owner_is_org, const char *new_ns,
                 const char *new_name);
int db_repo_redirect(int type, const char *ns, const char *name, db_repo *out);
int db_repo_update(const db_repo *repo); /* private, gated, disabled */
int db_repo_touch(int64_t id, int64_t updated_ms);
/* Record the derived head of the default branch (index/ keeps it in step with git). */
int db_repo_set_head(int64_t id, const char *sha, int64_t last_modified_ms);
int db_repo_count(int64_t *out);

#endif
