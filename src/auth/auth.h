/* Identities, tokens and permissions.
 *
 * Tokens are "hf_" + 40 base62 characters (238 bits of randomness); only their sha256
 * is stored. Permissions are ordered: none < read < contributor < write < admin. A
 * token's role caps what its user may do. */
#ifndef HUB_AUTH_AUTH_H
#define HUB_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/gate.h"
#include "util/buf.h"

enum { PERM_NONE = 0, PERM_READ = 1, PERM_CONTRIBUTOR = 2, PERM_WRITE = 3, PERM_ADMIN = 4 };

#define AUTH_TOKEN_LEN 43 /* "hf_" + 40 */
/* Scopes one fine-grained token may carry: bounds parsing and per-request checks. */
#define AUTH_MAX_SCOPES 16
/* A fine-grained token's role: its scopes say what it may read or write. */
#define PERM_FINE_GRAINED 5

/* A scope names a repo or a namespace ("namespace", or "org"/"user" for the same thing
 * spelled the Hub's way). Its permission caps the user's own rights there: read reads,
 * write may do what the user may on the repos (settings included), admin additionally
 * manages the org itself (members, audit log). A scope never grants rights the user lacks. */
enum { SCOPE_REPO = 0, SCOPE_NAMESPACE = 1 };
typedef struct {
  int kind;                        /* SCOPE_REPO or SCOPE_NAMESPACE */
  int repo_type;                   /* SCOPE_REPO only */
  char name[2 * HUB_MAX_NAME + 2]; /* "ns/name" or "ns" */
  int perm;                        /* PERM_READ, PERM_WRITE or PERM_ADMIN */
} auth_scope;

typedef struct {
  int authenticated;
  int64_t user_id;
  char name[HUB_MAX_USER_NAME + 1];
  char uid[25];
  /* Site admin powers: only for a credential that carries them (a write token, a web
   * session, the CLI). A site admin's read or fine-grained token acts as an ordinary user. */
  int is_admin;
  int64_t token_id;
  char token_uid[25];
  char token_name[HUB_MAX_SHORT_TEXT + 1];
  int token_role;
  int64_t token_created_ms;
  int nscopes; /* fine-grained tokens only */
  auth_scope scopes[AUTH_MAX_SCOPES];
} hub_identity;

/* Fresh random token; out gets AUTH_TOKEN_LEN + 1 bytes. */
int auth_token_generate(char out[AUTH_TOKEN_LEN + 1]);
void auth_token_hash(const char *token, char out_hex[65]);
/* Parse an Authorization header ("Bearer X" or "Basic base64(user:X)"). NULL header →
 * anonymous (0). A header that names no valid, unexpired, unrevoked token → HUB_EAUTH.
 * Writes the token string (borrowed from the header or in tmp) to *out_token if wanted. */
int auth_identify(const char *authorization, hub_identity *out);
/* Write the token last-use times auth_identify noted (it runs on threads that never write;
 * the times are kept to the minute). Called in the background and before tokens are
 * listed. Not on an event thread. */
int auth_token_touch_flush(void);
/* Load an identity for a user by id (used by cookies/CLI). */
int auth_identity_for_user(int64_t user_id, hub_identity *out);

/* The caller's permission on a repo, capped by the token's role and scopes. */
int auth_repo_perm(const hub_identity *who, const db_repo *repo);
/* Who may write which ref: the one rule, used by the commit API, the LFS batch and Xet
 * token routes and the git pre-receive hook. `perm` is the caller's auth_repo_perm();
 * `ref` the full ref written, or NULL for a new pull request (create_pr).
 * - AUTH_REF_API (commit API, LFS/Xet uploads): write on any ref; a contributor on a new
 *   pull request or an existing refs/pr/ *.
 * - AUTH_REF_PUSH (git push): write, and only on refs/heads/, refs/tags/ and refs/pr/ (an
 *   open pull request's ref: gov_check_push refuses the rest; refs/convert/ and
 *   refs/stages/ belong to the server).
 * Returns 1 when allowed, 0 when not. */
enum { AUTH_REF_API = 0, AUTH_REF_PUSH = 1 };
int auth_may_write_ref(int perm, const char *ref, int via);
/* 1 when a fine-grained token's scopes do not cover this repo at all (→ a clear 403). */
int auth_out_of_scope(const hub_identity *who, const db_repo *repo);
/* Parse scopes JSON ([{"type":"repo","repoType":"model","name":"ns/n","permission":"read"},
 * {"type":"namespace","name":"acme","permission":"write"}]) into out. HUB_EINVALID. */
int auth_scopes_parse(const char *json, auth_scope *out, int *n);
/* Create tables/columns this module owns (token scopes). Once at startup. */
int auth_init(void);
/* Permission on a namespace (may the caller create repos there?). */
int auth_ns_perm(const hub_identity *who, const db_account *ns);
/* The caller's role in an org for managing the org itself (members list: read; member
 * changes and the org audit log: admin): the member role (admin for site admins), capped
 * by a read token at read and by a fine-grained token's namespace scope on the org (none:
 * PERM_NONE; admin powers need an "admin" scope). */
int auth_org_role(const hub_identity *who, const db_account *org);
/* 1 for a credential that carries all its user's powers: a write token, a web session or
 * the CLI. Only these may list, create or revoke tokens. */
int auth_full_credential(const hub_identity *who);
/* Fill a listing's viewer (user id, site-admin flag, and a fine-grained token's scopes,
 * which limit the private repos it may see). sc is storage for the scopes (NULL: no
 * private repo for a fine-grained token); its strings are borrowed from who, which must
 * outlive the listing. */
struct db_search_query;
struct db_search_scope;
void auth_search_viewer(const hub_identity *who, struct db_search_query *q,
                        struct db_search_scope *sc);

int auth_role_parse(const char *s, int *out);
const char *auth_role_name(int perm);

/* Gated repos (auth/gate.c). Access requests are "pending", "accepted" or "rejected". */
int auth_gate_init(void);
/* 1 if the caller owns the repo's namespace or is a member of its org (any role). */
int auth_repo_member(const hub_identity *who, const db_repo *repo);
/* 1 if the caller may read the files of `repo` given their permission `perm`. */
int auth_gate_allows(const hub_identity *who, const db_repo *repo, int perm);
int auth_gate_status(int64_t repo_id, int64_t user_id, char out[16]); /* "" = none */
int auth_gate_set(int64_t repo_id, int64_t user_id, const char *status, const char *fields_json,
                  const char *decided_by, const char *reason);
typedef db_gate_request auth_gate_request;
typedef db_gate_cb auth_gate_cb;
int auth_gate_list(int64_t repo_id, const char *status, auth_gate_cb cb, void *payload);

/* libsodium argon2id password hashes. */
int auth_password_hash(const char *password, char *out, size_t cap);
int auth_password_verify(const char *hash, const char *password);

/* Password logins (auth/login.c). Limits: MODELHUB_LOGIN_MAX_FAILURES failures per account
 * name (five times that per client address) within MODELHUB_LOGIN_WINDOW seconds, then refused
 * until the window ends; MODELHUB_LOGIN_MAX_HASHING password hashes at once. */
/* Seconds the caller must wait before trying (ip, user) again; 0 when it may try now. */
int auth_login_throttled(const char *ip, const char *user);
/* Count a failed login against the address and the account; a success clears the
 * account's count. */
void auth_login_result(const char *ip, const char *user, int ok);
/* Check a password against hash, or against a dummy hash when hash is NULL or "" (unknown
 * user, no password set: the same work, then HUB_EAUTH). Waits up to two seconds for a
 * hashing slot; HUB_ERETRY when none frees up. */
int auth_login_verify(const char *hash, const char *password);
/* Tests: hashing slots and how long a login waits for one. */
void auth_login__configure(int max_hashing, int64_t wait_ms);
/* Prometheus lines for the login counters. */
void auth_login_metrics(hub_buf *out);

/* Create a token for a user and print nothing; *out_token gets the secret. */
int auth_token_issue(int64_t user_id, const char *name, int role, int64_t expires_ms,
                     char out_token[AUTH_TOKEN_LEN + 1], db_token *out_row);
/* Same, for a fine-grained token with scopes JSON (validated). */
int auth_token_issue_scoped(int64_t user_id, const char *name, const char *scopes_json,
                            int64_t expires_ms, char out_token[AUTH_TOKEN_LEN + 1],
                            db_token *out_row);

#endif
