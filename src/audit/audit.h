/* Append-only, hash-chained audit log of security-relevant events.
 *
 * Every entry stores the hash of the previous one: hash = sha256(prev_hash | id | ts |
 * actor | token | ip | action | namespace | target | details). An edited, removed or
 * reordered entry breaks the chain, and the head (last id + hash) is also kept apart so
 * removing the newest entries is detected too (`modelhub audit verify`). */
#ifndef HUB_AUDIT_AUDIT_H
#define HUB_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "auth/auth.h"

typedef struct {
  const hub_identity *who; /* NULL or anonymous = "-" (e.g. a failed login) */
  const char *actor_name;  /* overrides who->name when set (CLI, failed logins) */
  const char *ip;          /* source address or NULL ("cli") */
} audit_ctx;

int audit_init(void); /* creates the tables (module migrations); once at startup */

/* Append one event. `ns` is the namespace it concerns (org or user; "" for site-wide),
 * `target` what it acted on (e.g. "model:acme/bert", "token:<id>", "user:bob"),
 * `details` an object (stolen: released here; may be NULL). Outside a transaction the entry
 * is appended in one of its own. Inside one (the ref spine, events/) it is part of it: a
 * failure is returned and the caller rolls back the change it records (fail closed).
 * Tests: MODELHUB_TEST_AUDIT_FAIL=<action prefix> makes those appends fail. */
int audit_log(const audit_ctx *ctx, const char *action, const char *ns, const char *target,
              json_t *details);

typedef struct {
  const char *ns;             /* NULL = all (site admins) */
  const char *action;         /* NULL = any; prefix match ("repo." matches repo.create) */
  const char *actor;          /* NULL = any */
  int64_t since_ms, until_ms; /* 0 = open */
  int64_t before_id;          /* 0 = newest first from the top; else entries with id < before_id */
  int limit;
} audit_query;

/* Entries as JSON objects, newest first. *out owned by the caller. */
int audit_list(const audit_query *q, json_t **out);
/* Walk the whole chain. 0 if intact; HUB_ECONFLICT with a message naming the first bad
 * entry otherwise. *out_count gets the number of entries checked. */
int audit_verify(int64_t *out_count);

#endif
