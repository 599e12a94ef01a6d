/* Gated repos: access requests and whether a caller may read a gated repo's files. */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "db/gate.h"
#include "util/error.h"

int auth_gate_init(void) {
  return db_gate_init();
}

int auth_gate_status(int64_t repo_id, int64_t user_id, char out[16]) {
  return db_gate_status(repo_id, user_id, out);
}

int auth_gate_allows(const hub_identity *who, const db_repo *repo, int perm) {
  if (!repo->gated[0] || perm >= PERM_WRITE) return 1; /* writers and admins are never gated */
  if (!who->authenticated) return 0;
  if (auth_repo_member(who, repo)) return 1; /* the owner's own people are never gated */
  char status[16];
  auth_gate_status(repo->id, who->user_id, status);
  return !strcmp(status, "accepted");
}

int auth_gate_set(int64_t repo_id, int64_t user_id, const char *status, const char *fields,
                  const char *decided_by, const char *reason) {
  return db_gate_set(repo_id, user_id, status, fields, decided_by, reason);
}

int auth_gate_list(int64_t repo_id, const char *status, auth_gate_cb cb, void *payload) {
  return db_gate_list(repo_id, status, cb, payload);
}
