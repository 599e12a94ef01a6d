/* The one place where HUB_E* codes become HTTP status + X-Error-Code. */
#ifndef HUB_HTTP_ERRORS_H
#define HUB_HTTP_ERRORS_H

typedef struct {
  int status;
  const char *error_code; /* X-Error-Code value or NULL */
  const char *default_msg;
} http_error_map;

/* anonymous: the caller presented no credentials (gated → 401 instead of 403). */
http_error_map http_error_lookup(int code, int anonymous);

#endif
