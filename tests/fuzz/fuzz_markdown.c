/* Markdown → HTML through the web filter (cmark-gfm, raw HTML omitted, tagfilter): whatever
 * the input, no script element and no script URL reaches the page. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "web/internal.h"

static int has(const char *hay, const char *needle) {
  return strstr(hay, needle) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hub_buf out = HUB_BUF_INIT;
  if (web_markdown(&out, (const char *)data, size) == 0 && out.ptr) {
    for (char *p = out.ptr; *p; p++)
      *p = (char)tolower((unsigned char)*p);
    if (has(out.ptr, "<script") || has(out.ptr, "href=\"javascript:") ||
        has(out.ptr, "src=\"javascript:") || has(out.ptr, "<iframe") || has(out.ptr, "<style")) {
      fprintf(stderr, "unsafe markdown output:\n%s\n", out.ptr);
      abort();
    }
  }
  hub_buf_dispose(&out);
  return 0;
}
