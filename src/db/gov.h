/* Governance's tables (module "gov"): pull requests/discussions, stage history, branch
 * protections and per-repo settings. gov/ decides; this file only stores. Writes join the
 * caller's transaction when one is open, except db_gov_protections_save (its own). */
#ifndef HUB_DB_GOV_H
#define HUB_DB_GOV_H

#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

/* Apply the "gov" module's migrations. */
int db_gov_init(void);

/* ---- protections and settings ---- */
#define DB_GOV_MAX_PATTERN 255
typedef struct {
  char pattern[DB_GOV_MAX_PATTERN + 1];
  int no_force_push, no_deletion, require_pr;
} db_gov_rule;
/* Rules in their stored order, at most max. */
int db_gov_rules(int64_t repo_id, db_gov_rule *out, size_t max, size_t *out_n);
/* (immutable_tags, stage_approver) of a repo; left as they are when it has no row. */
int db_gov_settings(int64_t repo_id, int *immutable_tags, int *stage_approver);
/* In one transaction of its own: replace the rules with rules[0..n) when replace_rules,
 * then store the settings. */
int db_gov_protections_save(int64_t repo_id, int replace_rules, const db_gov_rule *rules, size_t n,
                            int immutable_tags, int stage_approver);

/* ---- discussions ---- */
typedef struct {
  int num;
  char *title; /* malloc'd */
  char status[16];
  int is_pr;
  int64_t author_id;
  char author[HUB_MAX_USER_NAME + 1]; /* "deleted" when the account is gone */
  int64_t created_ms;
  char target[HUB_MAX_PATH + 1];
  char merged_commit[41];
  char merged_by[HUB_MAX_USER_NAME + 1];
  int64_t merged_ms;
} db_gov_discussion;
/* A new open pull request (nothing when num exists). */
int db_gov_pr_opened(int64_t repo_id, int num, const char *title, int64_t author_id,
                     const char *target_branch, int64_t now);
/* HUB_ENOTFOUND ("Discussion #num not found"); free out->title. */
int db_gov_discussion_get(int64_t repo_id, int num, db_gov_discussion *out);
/* Listing filters: is_pr < 0 = both; status "all", "open" (with drafts), "closed" (with
 * merged), "merged" or "draft"; author NULL = anyone (name, case-insensitive). */
int db_gov_discussion_count(int64_t repo_id, int is_pr, const char *status, const char *author,
                            int64_t *out);
/* Rows newest first (the row is freed after cb; a nonzero return stops and is returned). */
typedef int (*db_gov_discussion_cb)(const db_gov_discussion *d, void *payload);
int db_gov_discussion_list(int64_t repo_id, int is_pr, const char *status, const char *author,
                           int limit, int64_t offset, db_gov_discussion_cb cb, void *payload);
/* Mark merged unless it already is; *changed = rows changed (0 or 1). */
int db_gov_mark_merged(int64_t repo_id, int num, const char *sha, const char *by, int64_t now,
                       int *changed);
/* Set the status of a discussion that is not merged. */
int db_gov_set_status(int64_t repo_id, int num, const char *status, int64_t now);

/* ---- stage history ---- */
int db_gov_stage_record(int64_t repo_id, const char *stage, const char *to, const char *from,
                        const char *actor, const char *reason, int64_t now);
typedef void (*db_gov_stage_cb)(const char *commit, const char *prev, const char *actor,
                                const char *reason, int64_t ts_ms, void *payload);
/* Newest first, at most limit rows. */
int db_gov_stage_history(int64_t repo_id, const char *stage, int limit, db_gov_stage_cb cb,
                         void *payload);

#endif
