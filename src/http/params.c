/* Query parameters, percent-decoding, repo type names, caller identification. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "http/internal.h"
#include "util/error.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int http_pct_decode(char *s, int plus_is_space) {
  char *w = s;
  for (const char *p = s; *p; p++) {
    if (*p == '%') {
      int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
      if (hi < 0 || lo < 0) return -1;
      char c = (char)(hi * 16 + lo);
      if (!c) return -1;
      *w++ = c;
      p += 2;
    } else if (*p == '+' && plus_is_space) {
      *w++ = ' ';
    } else {
      *w++ = *p;
    }
  }
  *w = 0;
  return 0;
}

static int key_is(const char *k, const char *want) {
  size_t n = strlen(want);
  return strncmp(k, want, n) == 0 && (k[n] == 0 || strcmp(k + n, "[]") == 0);
}

const char *http_param(hub_req *r, const char *key) {
  for (size_t i = 0; i < r->nparams; i++)
    if (key_is(r->params[i].key, key)) return r->params[i].value;
  return NULL;
}

size_t http_params(hub_req *r, const char *key, const char **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < r->nparams && n < max; i++)
    if (key_is(r->params[i].key, key)) out[n++] = r->params[i].value;
  return n;
}

int http_param_bool(hub_req *r, const char *key, int dflt) {
  const char *v = http_param(r, key);
  if (!v) return dflt;
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !*v) return 1;
  if (!strcasecmp(v, "false") || !strcmp(v, "0")) return 0;
  return dflt;
}

const char *http_type_prefix(int t) {
  return t == HUB_REPO_DATASET ? "datasets/" : t == HUB_REPO_SPACE ? "spaces/" : "";
}

const char *http_type_api(int t) {
  return t == HUB_REPO_DATASET ? "datasets" : t == HUB_REPO_SPACE ? "spaces" : "models";
}

const char *http_type_name(int t) {
  return t == HUB_REPO_DATASET ? "dataset" : t == HUB_REPO_SPACE ? "space" : "model";
}

int http_type_parse(const char *name, int *out) {
  if (!name || !strcmp(name, "model"))
    *out = HUB_REPO_MODEL;
  else if (!strcmp(name, "dataset"))
    *out = HUB_REPO_DATASET;
  else if (!strcmp(name, "space"))
    *out = HUB_REPO_SPACE;
  else
    return hub_error_set(HUB_EINVALID, "Invalid repo type '%s' (model, dataset, space)", name);
  return 0;
}

static http_identify_fn g_cookie_identify;

void http_set_cookie_identify(http_identify_fn fn) {
  g_cookie_identify = fn;
}

int http__authenticate(hub_req *r) {
  if (r->route && (r->route->needs & NEED_OWN_AUTH)) return 0;
  const char *authz = http_header(r, "Authorization");
  /* No header: a browser session cookie, honoured only where web/ allows it (web.h). */
  if (!authz) return g_cookie_identify ? g_cookie_identify(r, &r->who) : 0;
  return auth_identify(authz, &r->who);
}
