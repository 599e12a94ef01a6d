/* The audit log's rows (table audit_log, module "audit"). audit/audit.c builds and checks
 * the hash chain; this file only stores. Appends join the caller's transaction when one
 * is open (see audit_log). */
#ifndef HUB_DB_AUDIT_H
#define HUB_DB_AUDIT_H

#include <stdint.h>

typedef struct {
  int64_t id, ts_ms;
  const char *actor, *token, *ip, *action, *ns, *target, *details, *prev_hash, *hash;
} db_audit_row;

/* Apply the "audit" module's migrations. */
int db_audit_init(void);
/* The newest entry's id and hash: 1 if there is one, 0 if the log is empty. */
int db_audit_head(int64_t *id, char hash[65]);
/* Insert one row. HUB_ERROR without a message on failure (read db_errmsg). */
int db_audit_insert(const db_audit_row *row);
/* Rows to cb (strings borrowed for the call); a nonzero return stops and is returned. */
typedef int (*db_audit_cb)(const db_audit_row *row, void *payload);
/* Newest first, filtered: ns, action (prefix) and actor when non-NULL, since/until/before
 * when nonzero; at most limit rows (100 when <= 0). */
int db_audit_list(const char *ns, const char *action, const char *actor, int64_t since_ms,
                  int64_t until_ms, int64_t before_id, int limit, db_audit_cb cb, void *payload);
/* Every row, oldest first. */
int db_audit_each(db_audit_cb cb, void *payload);

#endif
