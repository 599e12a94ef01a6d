/* Growable byte buffer with a maximum size and a sticky failure flag.
 *
 * Invariants: `ptr` is always NUL-terminated when non-NULL (len excludes the NUL);
 * once an append fails (OOM or over `max`), `failed` stays set, further appends are
 * no-ops, and the caller checks it once at the end (libgit2 git_str style). */
#ifndef HUB_UTIL_BUF_H
#define HUB_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
  char *ptr;
  size_t len;
  size_t cap;
  size_t max; /* 0 = unlimited */
  int failed;
} hub_buf;

#define HUB_BUF_INIT                                                                               \
  { NULL, 0, 0, 0, 0 }

void hub_buf_init(hub_buf *b, size_t max);
int hub_buf_put(hub_buf *b, const void *data, size_t len);
int hub_buf_puts(hub_buf *b, const char *s);
int hub_buf_putc(hub_buf *b, char c);
int hub_buf_printf(hub_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int hub_buf_vprintf(hub_buf *b, const char *fmt, va_list ap);
void hub_buf_clear(hub_buf *b);
/* Hand the bytes to the caller (who frees them); the buffer is reset. */
char *hub_buf_detach(hub_buf *b);
void hub_buf_dispose(hub_buf *b);

#endif
