/* The scan service's tables (docs/scanning.md, "The scan service and policy"). SQL only:
 * security/ decides what to scan and what to allow.
 *
 * - scan_objects: one row per distinct object by oid — a sha256 (LFS / Xet file) or a git
 *   blob sha1 (files stored in git) — with its state (queued | done), its level and the
 *   engine's report (scan.h), the AV database it was scanned with and how often it was.
 * - scan_paths: which repo names which object under which path (hints for the job, which
 *   needs a repo to read the bytes from and a name to pick scanners; and for the per-repo
 *   status).
 * - scan_overrides: per repo and object, a writer's audited decision to let a blocked
 *   file through.
 * - scan_org_policy: an organization's download policy (warn | block | block-unscanned).
 * - scan_trees: per repo, git trees already walked (the consumer's diff). */
#ifndef HUB_DB_SCAN_H
#define HUB_DB_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define DB_SCAN_OID_MAX 64
#define DB_SCAN_PATH_MAX 1024

typedef struct {
  char oid[DB_SCAN_OID_MAX + 1];
  char state[8];  /* "queued" | "done" */
  char level[16]; /* "" while queued; "safe" ... "error" */
  char av_status[16];
  int64_t size, av_sigs, scans, scanned_ms;
  char *report; /* JSON text (malloc'd, "" when none); free with db_scan_object_dispose */
} db_scan_object;

int db_scan_init(void); /* module "scan" migrations; once at start-up */

/* Record that repo names `oid` at `path` and, if the object is new, queue it (state
 * "queued"). *out_state gets "queued" or "done" (the object's state after the call). */
int db_scan_note(int64_t repo_id, const char *oid, int64_t size, const char *path,
                 char out_state[8]);
/* Trees (git tree sha1) of a repo whose every file was noted: a later walk skips them. A
 * tree is immutable by oid, so an unchanged directory costs one lookup. 1 if marked. */
int db_scan_tree_seen(int64_t repo_id, const char *tree_oid);
int db_scan_tree_mark(int64_t repo_id, const char *tree_oid);
/* HUB_ENOTFOUND when the object was never seen. */
int db_scan_object_get(const char *oid, db_scan_object *out);
void db_scan_object_dispose(db_scan_object *o);
/* Store a finished scan: state done, scans + 1. */
int db_scan_object_done(const char *oid, int64_t size, const char *level, const char *report,
                        const char *av_status, int64_t av_sigs);
/* Drop a queued object no repo names any more (its repos were deleted): a repo that names it
 * later queues it afresh. */
int db_scan_object_forget(const char *oid);
/* Some repo naming the object and one of its paths (the latest new hint). HUB_ENOTFOUND. */
int db_scan_hint(const char *oid, int64_t *out_repo_id, char *path, size_t cap);
/* Repos and paths that name an object: cb per row (non-zero stops). */
typedef int (*db_scan_path_cb)(int64_t repo_id, const char *path, void *payload);
int db_scan_paths_of(const char *oid, db_scan_path_cb cb, void *payload);

/* Put objects back to "queued" for a rescan: all of them (av_only = 0), or those whose AV
 * result is not final ("unscanned", "error") or was made with another database than
 * `av_sigs` signatures (av_only = 1). cb(oid, repo_id of a hint) per requeued object. */
typedef int (*db_scan_oid_cb)(const char *oid, int64_t repo_id, void *payload);
int db_scan_requeue(int av_only, int64_t av_sigs, db_scan_oid_cb cb, void *payload);
/* Every queued object (to re-offer them to the job runner at start-up). */
int db_scan_queued_each(db_scan_oid_cb cb, void *payload);

/* Files of a repo with a finished scan above "safe": cb(path, oid, level) (non-zero stops),
 * at most `limit`. repo_id 0 = every repo (the admin list; repo_id passed to cb). */
typedef int (*db_scan_issue_cb)(int64_t repo_id, const char *path, const char *oid,
                                const char *level, void *payload);
int db_scan_issues(int64_t repo_id, int limit, db_scan_issue_cb cb, void *payload);
/* Objects of a repo still queued. */
int db_scan_repo_pending(int64_t repo_id, int64_t *out);

/* Every object (admin listing), oldest first, at most `limit`: cb per row (non-zero stops). */
typedef int (*db_scan_object_cb)(const char *oid, const char *state, const char *level,
                                 int64_t scans, void *payload);
int db_scan_objects_each(int limit, db_scan_object_cb cb, void *payload);

/* Counts for /metrics: queued objects, and done objects per level (index: scan_level). */
int db_scan_counts(int64_t *queued, int64_t per_level[5]);

/* Every sha256 linked to Xet file `file32` (32 bytes): cb(sha) (non-zero stops, returned). */
int db_scan_xet_file_check(const uint8_t *file32, int (*cb)(const char *sha, void *payload),
                           void *payload);

/* ---- overrides ---- */
typedef struct {
  char actor[64];
  char reason[512];
  char path[DB_SCAN_PATH_MAX + 1];
  int64_t created_ms;
} db_scan_override;
int db_scan_override_get(int64_t repo_id, const char *oid, db_scan_override *out); /* ENOTFOUND */
int db_scan_override_set(int64_t repo_id, const char *oid, const char *path, const char *actor,
                         const char *reason);
int db_scan_override_delete(int64_t repo_id, const char *oid); /* HUB_ENOTFOUND */

/* ---- organization policy ---- */
/* "" when the org has none. */
int db_scan_org_policy_get(int64_t account_id, char out[24]);
int db_scan_org_policy_set(int64_t account_id, const char *policy, const char *actor);

#endif
