/* Markdown → HTML with cmark-gfm: GitHub tables, strikethrough, autolinks, task lists and
 * the tagfilter extension. Raw HTML never runs: rendering without CMARK_OPT_UNSAFE replaces
 * raw HTML blocks and inline tags with a comment and drops links/images whose URL scheme is
 * dangerous (javascript:, vbscript:, file:, non-image data:); tagfilter additionally
 * neutralises <script>, <iframe>, <style>… should raw HTML ever be allowed. */
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "web/internal.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void register_extensions(void) {
  cmark_gfm_core_extensions_ensure_registered();
}

static const char *const EXTENSIONS[] = {"table", "strikethrough", "autolink", "tasklist",
                                         "tagfilter"};

int web_markdown(hub_buf *out, const char *md, size_t len) {
  pthread_once(&g_once, register_extensions);
  int opts = CMARK_OPT_DEFAULT | CMARK_OPT_VALIDATE_UTF8 | CMARK_OPT_GITHUB_PRE_LANG;
  cmark_parser *parser = cmark_parser_new(opts);
  if (!parser) return hub_error_set(HUB_ERROR, "out of memory");
  for (size_t i = 0; i < sizeof EXTENSIONS / sizeof *EXTENSIONS; i++) {
    cmark_syntax_extension *ext = cmark_find_syntax_extension(EXTENSIONS[i]);
    if (ext) cmark_parser_attach_syntax_extension(parser, ext);
  }
  cmark_parser_feed(parser, md, len);
  cmark_node *doc = cmark_parser_finish(parser);
  char *html =
      doc ? cmark_render_html(doc, opts, cmark_parser_get_syntax_extensions(parser)) : NULL;
  int rc = 0;
  if (html) {
    hub_buf_puts(out, html);
    free(html); /* cmark's default allocator is malloc/free */
  } else {
    rc = hub_error_set(HUB_ERROR, "markdown rendering failed");
  }
  if (doc) cmark_node_free(doc);
  cmark_parser_free(parser);
  return rc;
}
