/* X-Forwarded-For behind trusted proxies (forwarded.h). */
#include "http/forwarded.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int http_forwarded_listed(const char *list, const char *ip, size_t il) {
  if (il > 7 && !strncmp(ip, "::ffff:", 7) && memchr(ip + 7, '.', il - 7)) ip += 7, il -= 7;
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    if (n && n == il && !memcmp(p, ip, n)) return 1;
    p += n;
  }
  return 0;
}

static int is_ip(const char *s, size_t n) {
  char buf[64];
  unsigned char bin[16];
  if (!n || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  return inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1;
}

int http_forwarded_client(const char *trusted, const char *peer, const char *xff, char *out,
                          size_t cap) {
  if (!trusted || !*trusted || !xff || !cap) return 0;
  if (!http_forwarded_listed(trusted, peer, strlen(peer))) return 0;
  int got = 0;
  size_t end = strlen(xff);
  while (end > 0) {
    size_t start = end;
    while (start > 0 && xff[start - 1] != ',')
      start--;
    size_t a = start, b = end;
    while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
      a++;
    while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
      b--;
    if (!is_ip(xff + a, b - a)) break; /* the last good hop stays the client */
    snprintf(out, cap, "%.*s", (int)(b - a), xff + a);
    got = 1;
    if (!http_forwarded_listed(trusted, xff + a, b - a)) break;
    end = start ? start - 1 : 0;
  }
  return got;
}
