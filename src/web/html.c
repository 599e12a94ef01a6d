/* Escaping helpers and the html_f page builder (see html.h). */
#include "web/html.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void esc(hub_buf *b, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep = NULL;
    switch (s[i]) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    case 0:
      rep = "\xef\xbf\xbd";
      break; /* U+FFFD: a NUL never reaches the page */
    default:
      continue;
    }
    hub_buf_put(b, s + start, i - start);
    hub_buf_puts(b, rep);
    start = i + 1;
  }
  hub_buf_put(b, s + start, n - start);
}

void html_textn(hub_buf *b, const char *s, size_t n) {
  if (s) esc(b, s, n);
}

void html_text(hub_buf *b, const char *s) {
  if (s) esc(b, s, strlen(s));
}

void html_attr(hub_buf *b, const char *s) {
  /* Same set as text: quotes of both kinds are escaped, so either quoting works. */
  if (s) esc(b, s, strlen(s));
}

static void pct(hub_buf *b, const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  if (!s) return;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      hub_buf_putc(b, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      hub_buf_put(b, e, 3);
    }
  }
}

void html_url(hub_buf *b, const char *s) {
  pct(b, s, 0);
}

void html_url_path(hub_buf *b, const char *s) {
  pct(b, s, 1);
}

void html_f(hub_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *lit = fmt;
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') continue;
    hub_buf_put(b, lit, (size_t)(p - lit));
    p++;
    switch (*p) {
    case 't':
      html_text(b, va_arg(ap, const char *));
      break;
    case 'a':
      html_attr(b, va_arg(ap, const char *));
      break;
    case 'u':
      html_url(b, va_arg(ap, const char *));
      break;
    case 'p':
      html_url_path(b, va_arg(ap, const char *));
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s) hub_buf_puts(b, s);
      break;
    }
    case 'd':
      hub_buf_printf(b, "%d", va_arg(ap, int));
      break;
    case 'L':
      hub_buf_printf(b, "%lld", va_arg(ap, long long));
      break;
    case '%':
      hub_buf_putc(b, '%');
      break;
    default: /* unknown directive: a programming error; print nothing for it */
      if (!*p) p--;
      break;
    }
    lit = p + 1;
  }
  hub_buf_puts(b, lit);
  va_end(ap);
}

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode [s, s+n) (plus = space) into a new string; NULL when malformed or %00. */
static char *form_decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *w = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      *w++ = ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < n ? hexv(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexv(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi | lo) == 0) {
        free(out);
        return NULL;
      }
      *w++ = (char)(hi * 16 + lo);
      i += 2;
    } else if (s[i]) {
      *w++ = s[i];
    } else { /* a raw NUL would cut the value short silently */
      free(out);
      return NULL;
    }
  }
  *w = 0;
  return out;
}

char *html_form_value(const char *body, size_t len, const char *key) {
  size_t kl = strlen(key);
  const char *p = body, *end = body + len;
  while (p && p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    const char *ke = eq ? eq : pe;
    if ((size_t)(ke - p) == kl && memcmp(p, key, kl) == 0)
      return eq ? form_decode(eq + 1, (size_t)(pe - eq - 1)) : form_decode("", 0);
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}
