/* gov/: repository governance — pull requests, named stages, protected branches and
 * immutable tags (docs/governance.md). The module's whole interface.
 *
 * - Pull requests: the commit API's create_pr=1 commits onto refs/pr/N and calls
 *   gov_pr_opened(); the discussions table records N (title, author, target branch,
 *   status). Merging moves the target branch by compare-and-swap: a fast-forward when the
 *   target is an ancestor of the PR head, else a libgit2 merge commit (conflicts → 409).
 * - Stages: refs/stages/<name> (revision resolution tries them after branches and tags), moved
 *   only by repo admins through the API, with a DB history (who, why, from, to, when).
 * - Protections: per-repo rules {pattern, noForcePush, noDeletion, requirePullRequest} for
 *   branches, and an immutableTags flag; enforced by the commit API, the branch/tag API and
 *   the git pre-receive hook through the gov_check_* calls below. Nobody bypasses them (site
 *   and repo admins included); admins change the rules instead, which is audited.
 *
 * All functions return 0 or a negative HUB_E* code with a message (util/error.h). */
#ifndef HUB_GOV_GOV_H
#define HUB_GOV_GOV_H

#include <stdint.h>

#include <jansson.h>

#include "auth/auth.h"
#include "db/db.h"
#include "http/http.h"
#include "util/buf.h"

/* Discussions per page of GET /discussions (hf-api.md §7.2 clients paginate by `p`). */
#define GOV_PAGE 50
/* Protection rules per repo: bounds the work every push and commit does matching them. */
#define GOV_MAX_RULES 100
/* Branch pattern length (a glob over a branch name). */
#define GOV_MAX_PATTERN 255
/* Stage name: [a-z0-9_-]{1,64}. */
#define GOV_MAX_STAGE 64
/* Stage-move reason, bytes: bounds the history table. */
#define GOV_MAX_REASON 1024
/* History entries returned by GET /stages/{name}. */
#define GOV_MAX_HISTORY 200
/* Attempts at a merge or a stage move when the ref moves under it (lost CAS race). */
#define GOV_MAX_RETRIES 50
/* Waits (1-8 ms each) for a ref lock another writer holds before answering 409 (retry). */
#define GOV_MAX_LOCK_WAITS 1000
/* Conflicting paths named in a merge-conflict message / filesWithConflicts. */
#define GOV_MAX_CONFLICTS 50
/* Discussion title, bytes. */
#define GOV_MAX_TITLE 300
/* Comment (and description) text, bytes: bounds rows and rendering. */
#define GOV_MAX_COMMENT (64 * 1024)
/* Events of one thread returned by GET /discussions/{num} (comments, changes, commits). */
#define GOV_MAX_THREAD 2000
/* Commits listed per move of a PR ref (a push of a long history shows its newest ones). */
#define GOV_MAX_PR_COMMITS 100
/* Bytes of a PR's diff returned by GET /discussions/{num}?diff=1 (cut beyond). */
#define GOV_MAX_DIFF (1024 * 1024)

/* Routes under /api/{type}/{repo}/: discussions[/{num}[/merge|status|title|comment[/{id}/
 * edit|hide]]], stages[/{name}], protections. Registered by main.c. */
extern const hub_route gov_routes[];

/* Create the module's tables (db_migrate_module "gov" and "discussions"); once at startup. */
int gov_init(void);
/* Base URL for the links of gov_discussion_json (NULL: links are paths). Borrowed. */
void gov_set_public_url(const char *url);
/* The Markdown renderer of comments (web/ hands down its safe one; without it comments
 * render as escaped text). Appends HTML to out. */
typedef int (*gov_markdown_fn)(hub_buf *out, const char *md, size_t len);
void gov_set_markdown(gov_markdown_fn fn);

/* ---- discussions and pull requests (docs/governance.md) ---- */
/* The next free discussion / PR number of a repo (numbers are shared by both). */
int gov_next_num(const db_repo *repo, int *out);
/* The webhook shapes of discussion `num` of `repo` (*disc: {id, num, title, url {web, api},
 * status, author {id, name}, isPullRequest, changes {base}?}) and, when comment_id is
 * given, of that comment (*comment: {id, author {id, name}, hidden, content, url {web}});
 * either out may be NULL. Owned by the caller. HUB_ENOTFOUND when either is missing. */
int gov_discussion_json(const db_repo *repo, int num, const char *comment_id, json_t **disc,
                        json_t **comment);
/* The request-level operations behind the API routes, for callers with their own routes
 * (web/): the request's r->repo, r->repo_perm and r->who are used and permissions are
 * checked here; *out gets the API's JSON answer (owned). */
int gov_disc_list(hub_req *r, const char *type, const char *status, const char *author, long page,
                  json_t **out);
int gov_disc_details(hub_req *r, int num, int with_diff, json_t **out);
int gov_disc_create(hub_req *r, const char *title, const char *description, int pull_request,
                    json_t **out);
int gov_disc_comment(hub_req *r, int num, const char *text, json_t **out);
int gov_disc_set_status(hub_req *r, int num, const char *status, const char *comment, json_t **out);
int gov_disc_merge(hub_req *r, int num, const char *comment, json_t **out);

/* Record pull request `num` just opened on `repo` by `who` (title = commit summary;
 * target_branch = short branch name it started from). Idempotent per (repo, num). */
int gov_pr_opened(const db_repo *repo, const hub_identity *who, int num, const char *title,
                  const char *target_branch);

/* May a direct (non-PR) commit move `refname` ("refs/heads/x", "refs/pr/N")? HUB_EFORBIDDEN
 * when a rule matching the branch requires pull requests. */
int gov_check_commit(const db_repo *repo, const char *refname);
/* May `who` (repo permission `perm`) commit to `refname`? For "refs/pr/N" below write
 * access: only the PR's author, and only while it is open or a draft (HUB_EFORBIDDEN). */
int gov_check_pr_commit(const db_repo *repo, const hub_identity *who, int perm,
                        const char *refname);
/* May branch `name` (short or refs/heads/...) be deleted (deletion=1) or overwritten
 * (deletion=0: a non-fast-forward move)? HUB_EFORBIDDEN when a rule forbids it. */
int gov_check_branch_change(const db_repo *repo, const char *name, int deletion);
/* May tag `name` (short or refs/tags/...) be deleted or moved? HUB_EFORBIDDEN when the
 * repo's tags are immutable. */
int gov_check_tag_change(const db_repo *repo, const char *name);

/* The pre-receive check of one pushed ref update, run in the `modelhub hook` process
 * (MODELHUB_DATA in the environment; the DB is opened on first use). `git` is the
 * repository opened through git's quarantine environment (new objects visible); the repo
 * is found by the uid its directory is named after. Ids are 40-hex, all zeros for
 * create/delete. HUB_EFORBIDDEN with a one-line message for the pusher when a protection
 * forbids the update; other failures reject too (fail closed). */
struct git_repository;
int gov_check_push(struct git_repository *git, const char *refname, const char *old_id,
                   const char *new_id);

#endif
