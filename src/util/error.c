#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[512];
static _Thread_local int last_code;

int hub_error_set(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  if (code == HUB_ERROR &&
      (strstr(last_msg, strerror(ENOSPC)) || strstr(last_msg, strerror(EDQUOT)) ||
       strstr(last_msg, "database or disk is full")))
    code = HUB_ENOSPC;
  last_code = code;
  return code;
}

const char *hub_error_msg(void) {
  return last_msg;
}

int hub_error_code(void) {
  return last_code;
}

void hub_error_clear(void) {
  last_msg[0] = 0;
  last_code = 0;
}
