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

enum { PERM_NONE = 0, PERM_READ = 1, PERM_CONTRIBUTOR = 2, PERM_WRITE = 3, PERM_ADMIN = 4 };

#define AUTH_TOKEN_LEN 43 /* "hf_" + 40 */

typedef struct {
  int authenticated;
  int64_t user_id;
  char name[HUB_MAX_USER_NAME + 1];
  char uid[25];
  int is_admin; /* site admin */
  int64_t token_id;
  char token_uid[25];
  char token_name[HUB_MAX_SHORT_TEXT + 1];
  int token_role;
  int64_t token_created_ms;
} hub_identity;

/* Fresh random token; out gets AUTH_TOKEN_LEN + 1 bytes. */
int auth_token_generate(char out[AUTH_TOKEN_LEN + 1]);
void auth_token_hash(const char *token, char out_hex[65]);
/* Parse an Authorization header ("Bearer X" or "Basic base64(user:X)"). NULL header →
 * anonymous (0). A header that names no valid, unexpired, unrevoked token → HUB_EAUTH.
 * Writes the token string (borrowed from the header or in tmp) to *out_token if wanted. */
int auth_identify(const char *authorization, hub_identity *out);
/* Load an identity for a user by id (used by cookies/CLI). */
int auth_identity_for_user(int64_t user_id, hub_identity *out);

/* The caller's permission on a repo (already capped by token role). */
int auth_repo_perm(const hub_identity *who, const db_repo *repo);
/* Permission on a namespace (may the caller create repos there?). */
int auth_ns_perm(const hub_identity *who, const db_account *ns);

int auth_role_parse(const char *s, int *out);
const char *auth_role_name(int perm);

/* libsodium argon2id password hashes. */
int auth_password_hash(const char *password, char *out, size_t cap);
int auth_password_verify(const char *hash, const char *password);

/* Create a token for a user and print nothing; *out_token gets the secret. */
int auth_token_issue(int64_t user_id, const char *name, int role, int64_t expires_ms,
                     char out_token[AUTH_TOKEN_LEN + 1], db_token *out_row);

#endif
