/* Browser sessions (table web_sessions, module "web"): only the sha256 of the id is stored. */
#ifndef HUB_DB_SESSIONS_H
#define HUB_DB_SESSIONS_H

#include <stdint.h>

/* Apply the "web" module's migrations. */
int db_sessions_init(void);
/* The unexpired session with this id hash: its user and CSRF token. HUB_ENOTFOUND. */
int db_session_lookup(const char *id_hash, int64_t *user_id, char csrf[65]);
/* Drop expired sessions, then store a new one expiring at expires_ms. */
int db_session_create(const char *id_hash, int64_t user_id, const char *csrf, int64_t now,
                      int64_t expires_ms);
int db_session_delete(const char *id_hash);

#endif
