#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hub_buf_init(hub_buf *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max;
}

static int grow(hub_buf *b, size_t extra) {
  if (b->failed) return -1;
  if (extra > (size_t)-1 - b->len - 1 || (b->max && b->len + extra > b->max)) {
    b->failed = 1;
    return -1;
  }
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  char *p = realloc(b->ptr, cap);
  if (!p) {
    b->failed = 1;
    return -1;
  }
  b->ptr = p;
  b->cap = cap;
  return 0;
}

int hub_buf_put(hub_buf *b, const void *data, size_t len) {
  if (grow(b, len)) return -1;
  if (len) memcpy(b->ptr + b->len, data, len);
  b->len += len;
  b->ptr[b->len] = 0;
  return 0;
}

int hub_buf_puts(hub_buf *b, const char *s) {
  return hub_buf_put(b, s, strlen(s));
}

int hub_buf_putc(hub_buf *b, char c) {
  return hub_buf_put(b, &c, 1);
}

int hub_buf_vprintf(hub_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0 || grow(b, (size_t)n)) return -1;
  vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int hub_buf_printf(hub_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = hub_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return r;
}

void hub_buf_clear(hub_buf *b) {
  b->len = 0;
  if (b->ptr) b->ptr[0] = 0;
}

char *hub_buf_detach(hub_buf *b) {
  char *p = b->ptr;
  if (!p) p = calloc(1, 1);
  b->ptr = NULL;
  b->len = b->cap = 0;
  return p;
}

void hub_buf_dispose(hub_buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}
