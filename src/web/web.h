/* web/: the server-rendered HTML pages (docs/web.md), the module's whole interface.
 *
 * Pages follow huggingface.co's URL scheme (/{ns}/{name}, /{ns}/{name}/tree/{rev}/{path},
 * /datasets/…, /models?search=…). Browsers authenticate with a session cookie set by
 * /login; every POST form carries the session's CSRF token. */
#ifndef HUB_WEB_WEB_H
#define HUB_WEB_WEB_H

#include "http/http.h"

/* Create the module's tables (sessions) and register the web route table. Call once,
 * after every API / git / resolve table: web patterns like "/{ns}/{name}" and the
 * catch-all 404 page must match last. */
int web_register(void);

/* Identify the caller from the session cookie, for requests without an Authorization
 * header (called by the router's http__authenticate). The cookie is honoured on web routes
 * (any method: their POST handlers check the CSRF token) and on GET/HEAD of other routes
 * (so /resolve downloads of private files work in the browser); elsewhere — JSON API
 * writes — it is ignored, so a cross-site form cannot reach the API with the cookie.
 * A cookie identity acts like a write token of its user. No cookie, an unknown or
 * expired session → anonymous (0). Never fails the request. */
int web_session_identify(hub_req *r, hub_identity *out);

#endif
