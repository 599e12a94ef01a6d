/* Hub JSON API: route tables and the helpers shared by their handlers. */
#ifndef HUB_API_API_H
#define HUB_API_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "repo/repo.h"

/* Longest a ref change waits for the "index" event consumer before answering, so derived
 * metadata is usually there (docs/architecture.md, "The spine"). */
#define API_DERIVE_WAIT_MS HUB_DERIVE_WAIT_MS

extern const hub_route api_account_routes[];
extern const hub_route api_repo_routes[];
extern const hub_route api_system_routes[];
extern const hub_route api_info_routes[];
extern const hub_route api_list_routes[]; /* list.c: listings, likes, lineage */
/* Copy derived-metadata keys (cardData, config, safetensors, …) from meta_json into o:
 * all of them, or only those named in only[]. */
void api_meta_fields(json_t *o, const char *meta_json, int want_all, const char *const *only,
                     size_t nonly);

/* Full repo object (hf-api.md §3.5) at `rev` (NULL = HEAD); NULL with an error set. */
json_t *api_repo_json(hub_req *r, const db_repo *repo, const char *rev, int blobs);

extern const hub_route api_resolve_routes[];
extern const hub_route api_tree_routes[];
extern const hub_route api_refs_routes[];
extern const hub_route api_commit_routes[];
extern const hub_route api_org_routes[];
extern const hub_route api_gate_routes[];
extern const hub_route api_token_routes[];
extern const hub_route api_scan_routes[]; /* scan.c: overrides, org scan policy, admin list */
/* In-place percent-decoding of a path segment (no '+' → space); -1 if malformed. */
int api_pct_decode_inplace(char *s);

/* Module start-up before serving, given the hub context main.c built (util/hub.h: the LFS
 * object store, borrowed for the process, which api_blobs() returns to api/ and web/
 * handlers; the signing key; the data dir). Passes it on to lfs/ and xetsrv/, which never
 * reach up for it. */
struct blob_store;
struct hub_ctx;
int api_init(const struct hub_ctx *ctx);
/* Fill the per-repo object table from existing repos once (api/objects.c; api_init). */
int api_objects_backfill(void);
struct blob_store *api_blobs(void);
/* The blob store as the request's repo sees it: LFS objects, plus files that live only as
 * Xet chunks (read through the Xet fallback, scoped to r->repo). Freed with the request. */
struct blob_store *api_repo_blobs(hub_req *r);
/* Add `Link: <abs url with cursor-key=value>; rel="next"` carrying every other query
 * parameter of this request. */
void api_next_link(hub_req *r, const char *cursor_key, const char *value);
/* JSON for a tree entry (hf-api.md §4.1); lastCommit added when expand. */
json_t *api_entry_json(hub_req *r, repo_handle *h, const char *commit, const repo_entry *e,
                       int expand);

/* Fields of POST /api/repos/create (strings borrowed from the JSON). */
typedef struct {
  const char *name;
  const char *organization; /* NULL = the caller */
  int type;
  int is_private; /* -1 absent, 0, 1 */
} api_create_body;
int api_create_body_parse(json_t *body, api_create_body *out);

/* Append an audit event for this request's caller (actor, token id, source IP). `details`
 * is stolen (may be NULL). Namespace defaults to r->repo.ns. */
void api_audit(hub_req *r, const char *action, const char *target, json_t *details);
/* "model:ns/name" style target for a repo. out ≥ 2*HUB_MAX_NAME + 16. */
void api_repo_target(const db_repo *repo, char *out, size_t cap);

/* The request's repo (r->repo), from this thread's small handle cache. Borrowed: valid
 * for the request. api_repo_forget drops a cached handle (repo deleted). */
void api_repo_forget(const char *uid);
int api_repo_open(hub_req *r, repo_handle **out);
/* "2026-08-20T11:44:43.000Z" from unix milliseconds; out ≥ 32 bytes. */
void api_iso_time(int64_t ms, char *out);
json_t *api_iso_json(int64_t ms);
/* Repo name rule of the Hub clients: [A-Za-z0-9_.-]{1,96}, no "--" or "..", not starting
 * or ending with '-' or '.'. */
int api_name_valid(const char *name);
/* "<base>/<prefix>ns/name" */
char *api_repo_url(hub_req *r, const db_repo *repo);
/* Open the request's repo and resolve the revision at the start of r->rest (hf-api.md
 * §1.2); *out_path (may be NULL) gets the decoded in-repo path that follows ("" if none). */
int api_rev_and_path(hub_req *r, repo_handle **h, char sha[41], const char **out_path);
/* Decode the raw rest segments [from, nrest) joined by '/', e.g. a revision. */
char *api_join_rest(hub_req *r, size_t from, size_t upto);

#endif
