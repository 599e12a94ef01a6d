/* HTML output through escaping helpers named by their output context (cgit html.h).
 *
 * Every byte that did not come from a string literal in src/web/ reaches a page through
 * one of these: html_text (element content), html_attr (inside a double-quoted attribute
 * value), html_url (one URL component: a path segment or a query key/value) or
 * html_url_path (a '/'-separated path whose segments are encoded like html_url).
 * URL output holds only [A-Za-z0-9-._~%/], so it is also safe inside an attribute. None of
 * them makes a user string into a URL scheme: pages only build hrefs that start with a
 * literal "/" or "?".
 *
 * html_f() is the page builder: a printf-like formatter whose directives name the context,
 *   %t text   %a attribute   %u URL component   %p URL path   %s trusted literal markup
 *   %d int    %L long long   %%
 * %s is for markup the caller wrote (or that html_* already escaped), never user input.
 * A NULL string argument prints nothing. All appends go to a hub_buf (sticky failure). */
#ifndef HUB_WEB_HTML_H
#define HUB_WEB_HTML_H

#include <stddef.h>

#include "util/buf.h"

void html_text(hub_buf *b, const char *s);
void html_textn(hub_buf *b, const char *s, size_t n);
void html_attr(hub_buf *b, const char *s);
void html_url(hub_buf *b, const char *s);
void html_url_path(hub_buf *b, const char *s);
void html_f(hub_buf *b, const char *fmt, ...);

/* Decode application/x-www-form-urlencoded `body` (len bytes) and return a malloc()ed copy
 * of the value of `key` (first occurrence), or NULL when absent or malformed. */
char *html_form_value(const char *body, size_t len, const char *key);

#endif
