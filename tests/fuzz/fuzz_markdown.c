/* Markdown → HTML through the web filter (cmark-gfm, raw HTML omitted, tagfilter): whatever
 * the input, nothing in the rendered HTML can run script. The output is tokenised like a
 * browser would see it (comments, tags, attributes; text between tags is inert) and the
 * harness aborts on
 *   - an element that runs or loads active content (script, iframe, style, object, …),
 *   - any event-handler attribute (a name starting with "on": onerror=, onload=, …),
 *   - a URL attribute (href, src, action, …) whose value, after entity decoding and with
 *     the whitespace/control characters a browser ignores removed, uses a script scheme
 *     (javascript:, vbscript:) or a data: URL other than an image,
 *   - a tag left open at the end of the output (the rest of the page would be inside it). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "web/internal.h"

static const char *g_html;

static void unsafe(const char *why, const char *at, size_t len) {
  fprintf(stderr, "unsafe markdown output: %s: \"%.*s\"\nwhole output:\n%s\n", why,
          (int)(len > 200 ? 200 : len), at, g_html);
  abort();
}

static int name_is(const char *p, size_t n, const char *want) {
  return strlen(want) == n && !strncasecmp(p, want, n);
}

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Elements that run script or load active content; cmark never has a reason to emit them. */
static int dangerous_element(const char *p, size_t n) {
  static const char *const bad[] = {"script",   "iframe", "frame",     "frameset", "style",
                                    "object",   "embed",  "applet",    "base",     "meta",
                                    "link",     "form",   "svg",       "math",     "template",
                                    "noscript", "xmp",    "plaintext", "textarea", "title"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (name_is(p, n, bad[i])) return 1;
  return 0;
}

static int url_attribute(const char *p, size_t n) {
  static const char *const urls[] = {"href", "src",  "action", "formaction", "poster", "background",
                                     "data", "cite", "srcset", "xlink:href", "lowsrc", "dynsrc"};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    if (name_is(p, n, urls[i])) return 1;
  return 0;
}

/* Decode the HTML character references a browser decodes in an attribute value (numeric ones
 * and the few named ones that spell URL punctuation), drop what the URL parser ignores (ASCII
 * whitespace and control characters), lowercase, and keep the first `cap - 1` bytes. */
static void url_prefix(const char *v, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap;) {
    unsigned long c = (unsigned char)v[i];
    if (c == '&') {
      size_t j = i + 1;
      if (j < n && v[j] == '#') {
        int hex = j + 1 < n && (v[j + 1] == 'x' || v[j + 1] == 'X');
        j += hex ? 2 : 1;
        unsigned long val = 0;
        size_t d0 = j;
        while (j < n && (hex ? isxdigit((unsigned char)v[j]) : isdigit((unsigned char)v[j]))) {
          if (val < 0x110000)
            val = val * (hex ? 16 : 10) +
                  (unsigned long)(isdigit((unsigned char)v[j])
                                      ? v[j] - '0'
                                      : tolower((unsigned char)v[j]) - 'a' + 10);
          j++;
        }
        if (j > d0) {
          if (j < n && v[j] == ';') j++;
          c = val;
          i = j;
          goto emit;
        }
      } else {
        static const struct {
          const char *name;
          char ch;
        } named[] = {{"colon;", ':'}, {"tab;", '\t'}, {"newline;", '\n'}, {"amp;", '&'},
                     {"sol;", '/'},   {"lpar;", '('}, {"rpar;", ')'},     {"quot;", '"'}};
        for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
          size_t l = strlen(named[k].name);
          if (n - j >= l && !strncasecmp(v + j, named[k].name, l)) {
            c = (unsigned char)named[k].ch;
            i = j + l;
            goto emit;
          }
        }
      }
    }
    i++;
  emit:
    if (c <= 0x20 || c == 0x7f) continue; /* ignored by the URL parser at the start/inside */
    out[o++] = c < 0x80 ? (char)tolower((int)c) : '?';
  }
  out[o] = 0;
}

static void check_url(const char *v, size_t n) {
  char u[64];
  url_prefix(v, n, u, sizeof u);
  if (!strncmp(u, "javascript:", 11) || !strncmp(u, "vbscript:", 9))
    unsafe("script URL in an attribute", v, n);
  if (!strncmp(u, "data:", 5) && strncmp(u, "data:image/png", 14) &&
      strncmp(u, "data:image/gif", 14) && strncmp(u, "data:image/jpeg", 15) &&
      strncmp(u, "data:image/webp", 15))
    unsafe("non-image data: URL in an attribute", v, n);
}

/* p points just after '<' + tag name; returns the position after the closing '>'. */
static const char *check_attributes(const char *p, const char *tag, size_t tag_len) {
  for (;;) {
    while (is_space(*p) || *p == '/')
      p++;
    if (!*p) unsafe("tag not closed at the end of the output", tag, tag_len);
    if (*p == '>') return p + 1;
    const char *name = p;
    while (*p && !is_space(*p) && *p != '=' && *p != '>' && *p != '/')
      p++;
    size_t name_len = (size_t)(p - name);
    if (name_len >= 2 && !strncasecmp(name, "on", 2))
      unsafe("event-handler attribute", name, name_len);
    while (is_space(*p))
      p++;
    if (*p != '=') continue;
    p++;
    while (is_space(*p))
      p++;
    const char *val;
    size_t val_len;
    if (*p == '"' || *p == '\'') {
      char q = *p++;
      val = p;
      while (*p && *p != q)
        p++;
      if (!*p) unsafe("attribute value not closed", name, name_len);
      val_len = (size_t)(p - val);
      p++;
    } else {
      val = p;
      while (*p && !is_space(*p) && *p != '>')
        p++;
      val_len = (size_t)(p - val);
    }
    if (url_attribute(name, name_len)) check_url(val, val_len);
  }
}

static void check_html(const char *s) {
  const char *p = s;
  while ((p = strchr(p, '<')) != NULL) {
    if (!strncmp(p, "<!--", 4)) {
      const char *end = strstr(p + 4, "-->");
      if (!end) unsafe("comment not closed", p, strlen(p));
      p = end + 3;
      continue;
    }
    const char *q = p + 1;
    if (*q == '/') q++;
    if (!isalpha((unsigned char)*q)) {
      /* "<" followed by neither a letter nor "/letter" is text to a browser, except
       * "<!" / "<?" which open bogus comments cmark never writes. */
      if (*q == '!' || *q == '?') unsafe("markup declaration", p, strlen(p));
      p++;
      continue;
    }
    const char *name = q;
    while (isalnum((unsigned char)*q) || *q == '-' || *q == ':')
      q++;
    size_t name_len = (size_t)(q - name);
    if (dangerous_element(name, name_len)) unsafe("dangerous element", p, name_len + 2);
    p = check_attributes(q, p, name_len + 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hub_buf out = HUB_BUF_INIT;
  if (web_markdown(&out, (const char *)data, size) == 0 && out.ptr) {
    g_html = out.ptr;
    check_html(out.ptr);
  }
  hub_buf_dispose(&out);
  return 0;
}
