/* Gated repos' access requests (table gate_requests, module "gate"). auth/gate.c decides;
 * this file only stores. */
#ifndef HUB_DB_GATE_H
#define HUB_DB_GATE_H

#include <stdint.h>

/* Apply the "gate" module's migrations. */
int db_gate_init(void);
/* The request's status ("" = none) into out. */
int db_gate_status(int64_t repo_id, int64_t user_id, char out[16]);
/* Insert or update a request; fields NULL keeps the stored fields ('{}' when new). */
int db_gate_set(int64_t repo_id, int64_t user_id, const char *status, const char *fields,
                const char *decided_by, const char *reason);
typedef struct {
  const char *user, *fullname, *email, *status, *fields, *decided_by, *reason;
  int64_t created_ms;
} db_gate_request;
typedef void (*db_gate_cb)(const db_gate_request *req, void *payload);
/* Requests of a repo with `status`, oldest first (strings borrowed for the callback). */
int db_gate_list(int64_t repo_id, const char *status, db_gate_cb cb, void *payload);

#endif
