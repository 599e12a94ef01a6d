/* Browser sessions: a random 32-byte id in an HttpOnly, SameSite=Lax cookie (Secure when
 * the public URL is https), stored as its sha256 with an expiry; one CSRF token per
 * session, checked on every POST form. The login form itself (no session yet) uses a
 * double-submit cookie. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "db/sessions.h"
#include "util/error.h"
#include "web/internal.h"

int web_session_init(void) {
  return db_sessions_init();
}

void web_random_hex(char out[65]) {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) abort(); /* no randomness: never hand out guessable ids */
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int is_hex64(const char *s) {
  return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

const char *web_cookie(hub_req *r, const char *name, char *buf, size_t cap) {
  const char *h = http_header(r, "Cookie");
  size_t nl = strlen(name);
  while (h && *h) {
    while (*h == ' ' || *h == ';')
      h++;
    const char *end = strchr(h, ';');
    size_t len = end ? (size_t)(end - h) : strlen(h);
    if (len > nl && h[nl] == '=' && memcmp(h, name, nl) == 0) {
      size_t vl = len - nl - 1;
      if (vl >= cap) return NULL;
      memcpy(buf, h + nl + 1, vl);
      buf[vl] = 0;
      return buf;
    }
    h = end;
  }
  return NULL;
}

static int lookup(const char *id_hash, web_session *out) {
  int rc = db_session_lookup(id_hash, &out->user_id, out->csrf);
  if (rc) return rc;
  out->valid = 1;
  snprintf(out->id_hash, sizeof out->id_hash, "%s", id_hash);
  return 0;
}

int web_session_get(hub_req *r, web_session *out) {
  memset(out, 0, sizeof *out);
  char v[80];
  const char *id = web_cookie(r, WEB_SESSION_COOKIE, v, sizeof v);
  if (!is_hex64(id)) return HUB_ENOTFOUND;
  char h[65];
  auth_token_hash(id, h);
  return lookup(h, out);
}

int web_session_identify(hub_req *r, hub_identity *out) {
  int safe = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  if (!r->route || (!safe && !web__is_web_route(r->route))) return 0;
  web_session s;
  if (web_session_get(r, &s)) return 0;
  hub_identity who;
  if (auth_identity_for_user(s.user_id, &who)) return 0;
  who.token_role = PERM_WRITE; /* a browser user acts like a write token of theirs */
  snprintf(who.token_name, sizeof who.token_name, "web session");
  *out = who;
  return 0;
}

static int secure_site(hub_req *r) {
  return strncasecmp(http_base_url(r), "https://", 8) == 0;
}

void web_set_cookie(hub_req *r, const char *name, const char *value, int max_age) {
  char c[256];
  snprintf(c, sizeof c, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s", name,
           max_age < 0 ? "" : value, max_age < 0 ? 0 : max_age, secure_site(r) ? "; Secure" : "");
  http_add_header(r, "Set-Cookie", c);
}

static void free_str(void *p) {
  free(p);
}

int web_session_start(hub_req *r, int64_t user_id, char id[65]) {
  char csrf[65], h[65];
  web_random_hex(id);
  web_random_hex(csrf);
  auth_token_hash(id, h);
  int64_t now = db_now_ms();
  return db_session_create(h, user_id, csrf, now, now + (int64_t)WEB_SESSION_DAYS * 86400000);
}

int web_session_end(hub_req *r) {
  web_session s;
  if (web_session_get(r, &s)) return 0;
  return db_session_delete(s.id_hash);
}

const char *web_form(hub_req *r, const char *key) {
  if (!r->body.ptr) return NULL;
  char *v = html_form_value(r->body.ptr, r->body.len, key);
  if (v) http_cleanup_add(r, free_str, v);
  return v;
}

int web_csrf_check(hub_req *r) {
  web_session s;
  const char *got = web_form(r, "csrf");
  if (web_session_get(r, &s) || s.user_id != r->who.user_id || !got || !s.csrf[0] ||
      strlen(got) != strlen(s.csrf) || CRYPTO_memcmp(got, s.csrf, strlen(got)) != 0)
    return hub_error_set(HUB_EFORBIDDEN,
                         "This form has expired or did not come from this site. Go back, "
                         "reload the page and try again.");
  return 0;
}
