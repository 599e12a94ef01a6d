/* Private to src/gov/: helpers shared by discussions.c, stages.c, protect.c, merge.c. */
#ifndef HUB_GOV_INTERNAL_H
#define HUB_GOV_INTERNAL_H

#include <git2.h>
#include <jansson.h>

#include "db/discussions.h"
#include "db/gov.h"
#include "gov/gov.h"
#include "repo/repo.h"

/* ---- gov.c ------------------------------------------------------------------------- */

/* Open the repo's bare git directory with libgit2 (governance reads and moves refs outside
 * repo/'s vocabulary: refs/stages/, merges). *out is owned by the caller. */
int gov__git_open(const db_repo *repo, git_repository **out);
/* HUB_ERROR with libgit2's last message ("<what>: <message>"). */
int gov__git_error(const char *what);
/* Another writer holds the ref lock (GIT_ELOCKED): sleep a little and return 0 to try
 * again, or HUB_ERETRY (with a message naming ref) after GOV_MAX_LOCK_WAITS waits. */
int gov__lock_wait(unsigned *waits, const char *ref);
/* A positive decimal number in a raw URL segment; anything else → HUB_ENOTFOUND. */
int gov__parse_num(const char *seg, int *out);
/* Audit an event of this request on its repo. details is borrowed (may be NULL). */
void gov__audit(hub_req *r, const char *action, json_t *details);
/* The request's repository, opened for this request (closed when it ends). */
int gov__repo_open(hub_req *r, repo_handle **out);
/* 403 (or 401 for anonymous callers) with message "<msg> on ns/name". */
int gov__deny(hub_req *r, const char *what);

/* ---- protect.c ---------------------------------------------------------------------- */

typedef db_gov_rule gov_rule;
_Static_assert(GOV_MAX_PATTERN == DB_GOV_MAX_PATTERN, "gov rules are stored by db/gov.h");

/* The union of every rule matching `branch` (short name): *out_matched = 0 when none. */
int gov__branch_policy(int64_t repo_id, const char *branch, gov_rule *out, int *out_matched);
/* The permission needed to move stages (PERM_ADMIN unless stageApprovers = "write"). */
int gov__stage_approver(int64_t repo_id);

/* ---- merge.c ------------------------------------------------------------------------ */

typedef struct {
  char old_sha[41];  /* target before */
  char new_sha[41];  /* target after (== old_sha when nothing was left to merge) */
  char head_sha[41]; /* the PR head merged */
  int fast_forward;
  int noop; /* the PR head was already in the target */
} gov_merge_result;

/* Merge `pr_ref` into `target_ref` by CAS on target_ref: fast-forward when possible, else a
 * merge commit (author/email, message), through the ref transaction (h, recorded by
 * `rec`; out is filled before the recorder runs). Retries lost races up to GOV_MAX_RETRIES times
 * (then HUB_ERETRY). Conflicts → HUB_EEXISTS naming the files; a missing ref →
 * HUB_EREVISION. */
int gov__merge(git_repository *g, repo_handle *h, const repo_recorder *rec, const char *target_ref,
               const char *pr_ref, const char *author, const char *email, const char *message,
               gov_merge_result *out);
/* Paths that would conflict merging pr_ref into target_ref (nothing is written), appended to
 * `files` as strings, at most GOV_MAX_CONFLICTS. */
int gov__conflicts(git_repository *g, const char *target_ref, const char *pr_ref, json_t *files);

/* ---- discussions.c / thread.c ------------------------------------------------------- */

typedef db_gov_discussion gov_disc;
/* The hf-api §7.2 list item of a discussion. */
json_t *gov__disc_json(const db_repo *repo, const gov_disc *d);
/* Append the thread of d (stored events and the commits of its PR ref, in order) to arr. */
int gov__thread(const db_repo *repo, const gov_disc *d, git_repository *g, json_t *arr);
/* The PR's diff as git prints it (base: merge-base with the target, or with the target's
 * commit before the merge once merged), at most GOV_MAX_DIFF bytes. *out owned. */
int gov__pr_diff(const db_repo *repo, const gov_disc *d, git_repository *g, char **out);
/* May the caller post (comment, open, rename)? Signed in, not with a read-only token. */
int gov__may_post(hub_req *r);
/* Record a discussion change on the spine: event kind/details, audit action/details and
 * change(payload) in one durable transaction. */
int gov__record(hub_req *r, const char *kind, const char *action, json_t *audit_details,
                json_t *event_details, int (*change)(void *payload), void *payload);
/* A stored status-change event (inside a transaction). */
int gov__status_row(int64_t repo_id, int num, int64_t author_id, const char *status, int64_t now);

/* ---- route handlers ----------------------------------------------------------------- */

int gov__h_discussions(hub_req *r);
int gov__h_discussion(hub_req *r);
int gov__h_merge(hub_req *r);
int gov__h_status(hub_req *r);
int gov__h_create(hub_req *r);
int gov__h_comment(hub_req *r);
int gov__h_comment_edit(hub_req *r);
int gov__h_comment_hide(hub_req *r);
int gov__h_title(hub_req *r);
int gov__h_stages(hub_req *r);
int gov__h_stage(hub_req *r);
int gov__h_stage_put(hub_req *r);
int gov__h_stage_delete(hub_req *r);
int gov__h_protections(hub_req *r);
int gov__h_protections_put(hub_req *r);

#endif
