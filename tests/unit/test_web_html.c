/* web/: escaping helpers by output context (text, attribute, URL), the html_f page builder,
 * form decoding, and the Markdown filter (no raw HTML or script URLs get through). */
#include "unit.h"

#include <ctype.h>

#include "util/buf.h"
#include "web/html.h"
#include "web/internal.h"

static char *text(const char *s) {
  hub_buf b = HUB_BUF_INIT;
  html_text(&b, s);
  return hub_buf_detach(&b);
}

static char *attr(const char *s) {
  hub_buf b = HUB_BUF_INIT;
  html_attr(&b, s);
  return hub_buf_detach(&b);
}

static char *url(const char *s, int path) {
  hub_buf b = HUB_BUF_INIT;
  if (path)
    html_url_path(&b, s);
  else
    html_url(&b, s);
  return hub_buf_detach(&b);
}

#define EXPECT(fn, in, want)                                                                       \
  do {                                                                                             \
    char *got_ = fn;                                                                               \
    assert_non_null(got_);                                                                         \
    assert_string_equal(got_, want);                                                               \
    free(got_);                                                                                    \
    (void)(in);                                                                                    \
  } while (0)

static void test_text(void **state) {
  (void)state;
  EXPECT(text("plain"), 0, "plain");
  EXPECT(text("<script>alert('x')</script>"), 0, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
  EXPECT(text("a & b \"c\""), 0, "a &amp; b &quot;c&quot;");
  EXPECT(text("&amp;"), 0, "&amp;amp;"); /* entities are not passed through */
  EXPECT(text("héllo — 日本"), 0, "héllo — 日本");
  EXPECT(text(""), 0, "");
  hub_buf b = HUB_BUF_INIT;
  html_text(&b, NULL); /* NULL prints nothing */
  html_textn(&b, "a\0<b", 4);
  assert_string_equal(b.ptr, "a\xef\xbf\xbd&lt;b");
  hub_buf_dispose(&b);
}

static void test_attr(void **state) {
  (void)state;
  EXPECT(attr("\" onmouseover=\"alert(1)"), 0, "&quot; onmouseover=&quot;alert(1)");
  EXPECT(attr("' autofocus onfocus='x"), 0, "&#39; autofocus onfocus=&#39;x");
  EXPECT(attr("</a><script>"), 0, "&lt;/a&gt;&lt;script&gt;");
}

/* Every byte value alone and in context: the output never holds a raw < > " ' and every &
 * starts one of our entities. */
static void test_hostile_bytes(void **state) {
  (void)state;
  char in[512];
  size_t n = 0;
  for (int c = 1; c < 256; c++) {
    in[n++] = (char)c;
    if (c % 7 == 0) in[n++] = '<';
  }
  in[n] = 0;
  for (int mode = 0; mode < 2; mode++) {
    char *out = mode ? attr(in) : text(in);
    assert_null(strpbrk(out, "<>\"'"));
    for (char *a = strchr(out, '&'); a; a = strchr(a + 1, '&'))
      assert_true(!strncmp(a, "&amp;", 5) || !strncmp(a, "&lt;", 4) || !strncmp(a, "&gt;", 4) ||
                  !strncmp(a, "&quot;", 6) || !strncmp(a, "&#39;", 5));
    free(out);
  }
  char *u = url(in, 0);
  assert_int_equal(strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%"),
                   strlen(u));
  free(u);
}

static void test_url(void **state) {
  (void)state;
  EXPECT(url("a b/c?d=e&f#g%", 0), 0, "a%20b%2Fc%3Fd%3De%26f%23g%25");
  EXPECT(url("a b/c?d", 1), 0, "a%20b/c%3Fd");
  EXPECT(url("javascript:alert(1)", 0), 0, "javascript%3Aalert%281%29");
  EXPECT(url("\"><script>", 1), 0, "%22%3E%3Cscript%3E");
  EXPECT(url("héllo", 0), 0, "h%C3%A9llo");
  EXPECT(url("A-z_0.9~", 0), 0, "A-z_0.9~");
}

static void test_builder(void **state) {
  (void)state;
  hub_buf b = HUB_BUF_INIT;
  html_f(&b, "<a href=\"/%u/%p?q=%u\" title=\"%a\">%t</a>%s %d %L 100%%", "a b", "x/y z", "&",
         "\"t\"", "<b>", "<i>ok</i>", -3, 1LL << 40);
  assert_string_equal(b.ptr, "<a href=\"/a%20b/x/y%20z?q=%26\" title=\"&quot;t&quot;\">&lt;b&gt;"
                             "</a><i>ok</i> -3 1099511627776 100%");
  hub_buf_clear(&b);
  html_f(&b, "[%t|%a|%u|%p|%s]", NULL, NULL, NULL, NULL, NULL);
  assert_string_equal(b.ptr, "[||||]");
  hub_buf_dispose(&b);
}

static void test_form(void **state) {
  (void)state;
  const char *body = "csrfx=no&csrf=ab%2Bc+d&empty=&flag&bad=%zz&nul=%00x&plus=a%2B%2b";
  char *v = html_form_value(body, strlen(body), "csrf");
  assert_string_equal(v, "ab+c d");
  free(v);
  v = html_form_value(body, strlen(body), "empty");
  assert_string_equal(v, "");
  free(v);
  v = html_form_value(body, strlen(body), "flag");
  assert_string_equal(v, "");
  free(v);
  assert_null(html_form_value(body, strlen(body), "bad"));
  assert_null(html_form_value(body, strlen(body), "nul"));
  assert_null(html_form_value(body, strlen(body), "missing"));
  assert_null(html_form_value(body, strlen(body), "csr"));
  v = html_form_value(body, strlen(body), "plus");
  assert_string_equal(v, "a++");
  free(v);
  assert_null(html_form_value("a=%4", 4, "a"));   /* truncated escape */
  assert_null(html_form_value("a=x\0y", 5, "a")); /* raw NUL */
}

static char *md(const char *s) {
  hub_buf b = HUB_BUF_INIT;
  assert_int_equal(web_markdown(&b, s, strlen(s)), 0);
  return hub_buf_detach(&b);
}

static void test_markdown(void **state) {
  (void)state;
  char *h = md("| a | b |\n|---|---|\n| c1 | ~~d~~ |\n\n- [x] done\n- [ ] todo\n\nsee "
               "https://example.org\n");
  assert_non_null(strstr(h, "<table>"));
  assert_non_null(strstr(h, "<td>c1</td>"));
  assert_non_null(strstr(h, "<del>d</del>"));
  assert_non_null(strstr(h, "type=\"checkbox\""));
  assert_non_null(strstr(h, "<a href=\"https://example.org\">"));
  free(h);
  static const char *const hostile[] = {
      "<script>alert(1)</script>",
      "x <script>alert(1)</script> y",
      "<SCRIPT SRC=//evil></SCRIPT>",
      "<img src=x onerror=alert(1)>",
      "<iframe src=\"javascript:alert(1)\"></iframe>",
      "[a](javascript:alert(1))",
      "[a](JaVaScRiPt:alert(1))",
      "![i](javascript:alert(1))",
      "<javascript:alert(1)>",
      "[a](vbscript:msgbox(1))",
      "<a href=\"javascript:x\">y</a>",
      "```\n<script>in code</script>\n```",
      "<style>body{display:none}</style>",
      "[x]: javascript:alert(1)\n\n[y][x]",
  };
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    h = md(hostile[i]);
    for (char *p = h; *p; p++)
      *p = (char)tolower((unsigned char)*p);
    if (strstr(h, "<script") || strstr(h, "<iframe") || strstr(h, "<img src=\"x\" onerror") ||
        strstr(h, "href=\"javascript") || strstr(h, "src=\"javascript") ||
        strstr(h, "href=\"vbscript") || strstr(h, "<style") || strstr(h, "onerror="))
      fail_msg("unsafe output for %s: %s", hostile[i], h);
    free(h);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text),          cmocka_unit_test(test_attr),
      cmocka_unit_test(test_hostile_bytes), cmocka_unit_test(test_url),
      cmocka_unit_test(test_builder),       cmocka_unit_test(test_form),
      cmocka_unit_test(test_markdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
