#include "util/pct.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hub_pct_decode_n(char **out, const char *s, size_t len) {
  char *res = NULL;
  size_t i, o = 0;

  *out = NULL;
  if (len == SIZE_MAX) return hub_error_set(HUB_EINVALID, "segment too long");
  res = malloc(len + 1);
  if (!res) return hub_error_set(HUB_ERROR, "out of memory");
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0) goto bad;
    if (c == '%') {
      int hi, lo;
      if (len - i < 3) goto bad;
      hi = hexval((unsigned char)s[i + 1]);
      lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) goto bad;
      res[o++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      res[o++] = (char)c;
    }
  }
  res[o] = 0;
  *out = res;
  return 0;
bad:
  free(res);
  return hub_error_set(HUB_EINVALID, "Invalid percent-encoding in URL");
}

int hub_pct_decode(char **out, const char *s) {
  return hub_pct_decode_n(out, s, strlen(s));
}

int hub_pct_encode(hub_buf *b, const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      hub_buf_putc(b, (char)c);
    } else {
      char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
      hub_buf_put(b, esc, 3);
    }
  }
  return b->failed ? -1 : 0;
}
