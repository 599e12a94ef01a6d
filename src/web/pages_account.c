/* Accounts in the browser: /login, /logout, /settings/tokens (create: shown once; revoke). */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "util/error.h"
#include "web/internal.h"

/* A post-login target: a path on this site only. Browsers drop tabs and newlines from a
 * Location and read '\\' as '/', so "/\t/evil.com" would become "//evil.com": any control
 * character or backslash refuses it, and so does a leading "//". */
static const char *safe_next(const char *next) {
  if (!next || next[0] != '/' || next[1] == '/') return "/";
  for (const unsigned char *p = (const unsigned char *)next; *p; p++)
    if (*p < 0x20 || *p == 0x7f || *p == '\\') return "/";
  return next;
}

static int login_page(hub_req *r, int status, const char *error, const char *user,
                      const char *next) {
  char tok[80];
  const char *have = web_cookie(r, WEB_LOGIN_CSRF_COOKIE, tok, sizeof tok);
  char fresh[65];
  if (!have || strlen(have) != 64) {
    web_random_hex(fresh);
    have = fresh;
  }
  web_page p;
  web_page_begin(&p, r, "Log in");
  html_f(&p.b, "<div class=\"narrow\"><div class=\"card\"><h1>Log in</h1>"
               "<p class=\"muted\">Welcome back to modelhub.</p>");
  if (error) html_f(&p.b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  html_f(&p.b,
         "<form method=\"post\" action=\"/login\">"
         "<input type=\"hidden\" name=\"csrf\" value=\"%a\">"
         "<input type=\"hidden\" name=\"next\" value=\"%a\">"
         "<label for=\"username\">Username</label>"
         "<input type=\"text\" id=\"username\" name=\"username\" value=\"%a\" "
         "autocomplete=\"username\" autocapitalize=\"none\" required autofocus>"
         "<label for=\"password\">Password</label>"
         "<input type=\"password\" id=\"password\" name=\"password\" "
         "autocomplete=\"current-password\" required>"
         "<p><button class=\"btn btn-primary\" type=\"submit\">Log in</button></p></form>"
         "<p class=\"hint\">No password yet? An administrator sets one with "
         "<code>modelhub user add NAME --password-stdin</code>.</p></div></div>",
         have, safe_next(next), user ? user : "");
  web_page_end(&p);
  int rc = web_page_send(&p, status);
  if (!rc) web_set_cookie(r, WEB_LOGIN_CSRF_COOKIE, have, 3600);
  return rc;
}

/* 429 (too many failures) or 503 (too many logins hashing at once), with Retry-After. */
static int login_refused(hub_req *r, int status, int retry_after_s, const char *user,
                         const char *next) {
  char msg[160], ra[24];
  if (status == 429)
    snprintf(msg, sizeof msg, "Too many failed logins. Try again in %d minute%s.",
             (retry_after_s + 59) / 60, (retry_after_s + 59) / 60 == 1 ? "" : "s");
  else
    snprintf(msg, sizeof msg, "The server is busy logging others in. Try again in a moment.");
  int rc = login_page(r, status, msg, user, next);
  if (rc) return rc;
  snprintf(ra, sizeof ra, "%d", retry_after_s);
  http_add_header(r, "Retry-After", ra);
  return 0;
}

int web_h_login(hub_req *r) {
  const char *next = http_param(r, "next");
  if (r->who.authenticated) return web_redirect(r, safe_next(next));
  return login_page(r, 200, NULL, NULL, next);
}

int web_h_login_post(hub_req *r) {
  const char *user = web_form(r, "username"), *pw = web_form(r, "password");
  const char *csrf = web_form(r, "csrf"), *next = web_form(r, "next");
  char tok[80];
  const char *want = web_cookie(r, WEB_LOGIN_CSRF_COOKIE, tok, sizeof tok);
  if (!csrf || !want || strlen(want) != 64 || strcmp(csrf, want))
    return login_page(r, 403, "Your login form expired. Please try again.", user, next);
  if (!user || !*user || !pw || !*pw)
    return login_page(r, 400, "Enter your username and password.", user, next);
  db_account a;
  const char *ip = http_client_ip(r);
  audit_ctx ctx = {NULL, user, ip};
  char target[HUB_MAX_USER_NAME + 8];
  snprintf(target, sizeof target, "user:%.*s", HUB_MAX_USER_NAME, user);
  /* Too many failures from this address or for this account: refuse before hashing. */
  int wait_s = auth_login_throttled(ip, user);
  if (wait_s > 0) return login_refused(r, 429, wait_s, user, next);
  /* Unknown names are checked against a dummy hash: the same work as a wrong password. */
  int known =
      strlen(user) <= HUB_MAX_USER_NAME && !db_account_by_name(user, &a) && a.kind == ACCOUNT_USER;
  int rc = auth_login_verify(known ? a.password_hash : NULL, pw);
  if (rc == HUB_ERETRY) return login_refused(r, 503, 1, user, next);
  auth_login_result(ip, user, rc == 0);
  if (rc) {
    audit_log(&ctx, "user.login_failed", "", target, json_pack("{s:s}", "via", "web"));
    return login_page(r, 401, "Invalid username or password.", user, next);
  }
  char id[65];
  rc = web_session_start(r, a.id, id);
  if (rc) return web_error_code(r, rc);
  hub_identity who;
  if (auth_identity_for_user(a.id, &who) == 0) {
    ctx.who = &who;
    ctx.actor_name = NULL;
  }
  snprintf(target, sizeof target, "user:%s", a.name);
  audit_log(&ctx, "user.login", a.name, target, json_pack("{s:s}", "via", "web"));
  rc = web_redirect(r, safe_next(next));
  if (rc) return rc;
  web_set_cookie(r, WEB_SESSION_COOKIE, id, WEB_SESSION_DAYS * 86400);
  web_set_cookie(r, WEB_LOGIN_CSRF_COOKIE, "", -1);
  return 0;
}

int web_h_logout_post(hub_req *r) {
  int rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  web_session_end(r);
  rc = web_redirect(r, "/");
  if (!rc) web_set_cookie(r, WEB_SESSION_COOKIE, "", -1);
  return rc;
}

/* ---- tokens -------------------------------------------------------------------------- */

struct tok_list {
  web_page *p;
  int n;
};

static void token_row(const db_token *t, const char *user, void *payload) {
  struct tok_list *l = payload;
  web_page *p = l->p;
  char created[40], used[40];
  web_fmt_ago(created, sizeof created, t->created_ms);
  web_fmt_ago(used, sizeof used, t->last_used_ms);
  const char *role = t->role == PERM_FINE_GRAINED ? "fine-grained" : auth_role_name(t->role);
  html_f(&p->b,
         "<tr><td><b>%t</b><div class=\"hint mono\">%t</div></td><td>%t</td>"
         "<td class=\"hide-s\">%t</td><td class=\"hide-s\">%t</td><td class=\"num\">",
         t->name, t->uid, role, created, used);
  if (t->revoked) {
    html_f(&p->b, "<span class=\"badge\">revoked</span>");
  } else {
    html_f(&p->b, "<form method=\"post\" action=\"/settings/tokens/%u/revoke\">", t->uid);
    web_csrf_input(p);
    html_f(&p->b,
           "<button class=\"btn btn-sm btn-danger\" type=\"submit\" "
           "aria-label=\"Revoke %a\">Revoke</button></form>",
           t->name);
  }
  html_f(&p->b, "</td></tr>");
  l->n++;
}

static int tokens_page(hub_req *r, int status, const char *new_token, const char *new_name,
                       const char *error, const char *notice) {
  web_page p;
  web_page_begin(&p, r, "Access tokens");
  html_f(&p.b,
         "<h1>Access tokens</h1><p class=\"muted\">Tokens let git, <code>huggingface_hub"
         "</code> and scripts act as <b>%t</b>. Treat them like passwords.</p>",
         r->who.name);
  if (error) html_f(&p.b, "<div class=\"flash flash-err\" role=\"alert\">%t</div>", error);
  if (notice) html_f(&p.b, "<div class=\"flash flash-ok\">%t</div>", notice);
  if (new_token)
    html_f(&p.b,
           "<div class=\"flash flash-ok\" id=\"new-token\"><p><b>Token “%t” created.</b> Copy it "
           "now: it will not be shown again.</p><div class=\"token-once\">%t</div>"
           "<p><button class=\"btn btn-sm\" type=\"button\" data-copy=\"%a\">Copy</button></p>"
           "</div>",
           new_name, new_token, new_token);
  html_f(&p.b, "<div class=\"card\"><h2 class=\"mt0\">Create a new token</h2>"
               "<form method=\"post\" action=\"/settings/tokens\">");
  web_csrf_input(&p);
  html_f(&p.b,
         "<label for=\"tname\">Name</label><input type=\"text\" id=\"tname\" name=\"name\" "
         "maxlength=\"%d\" required placeholder=\"e.g. laptop\">"
         "<label>Role</label>"
         "<label class=\"radio\"><input type=\"radio\" name=\"role\" value=\"read\" checked>"
         "<span><b>Read</b><br><span class=\"hint\">Download from repos you can read."
         "</span></span></label>"
         "<label class=\"radio\"><input type=\"radio\" name=\"role\" value=\"write\">"
         "<span><b>Write</b><br><span class=\"hint\">Also push and create repos.</span>"
         "</span></label>"
         "<p><button class=\"btn btn-primary\" type=\"submit\">Create token</button></p>"
         "</form></div><h2>Your tokens</h2><div class=\"boxed scroll\"><table class=\"list\">"
         "<thead><tr><th>Name</th><th>Role</th><th class=\"hide-s\">Created</th>"
         "<th class=\"hide-s\">Last used</th><th></th></tr></thead><tbody>",
         HUB_MAX_SHORT_TEXT);
  struct tok_list l = {&p, 0};
  auth_token_touch_flush(); /* the last-use times noted by recent requests */
  db_token_list(r->who.user_id, token_row, &l);
  if (!l.n) html_f(&p.b, "<tr><td colspan=\"5\" class=\"muted\">No tokens yet.</td></tr>");
  html_f(&p.b, "</tbody></table></div>");
  web_page_end(&p);
  return web_page_send(&p, status);
}

int web_h_tokens(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  if (!auth_full_credential(&r->who))
    return web_error_code(
        r,
        hub_error_set(HUB_EFORBIDDEN, "Managing tokens needs a write token or a browser session"));
  const char *notice = http_param(r, "revoked") ? "Token revoked." : NULL;
  return tokens_page(r, 200, NULL, NULL, NULL, notice);
}

static void token_audit(hub_req *r, const char *action, const char *uid, json_t *details) {
  audit_ctx ctx = {&r->who, NULL, http_client_ip(r)};
  char target[40];
  snprintf(target, sizeof target, "token:%s", uid);
  audit_log(&ctx, action, r->who.name, target, details);
}

int web_h_tokens_post(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  if (!auth_full_credential(&r->who))
    return web_error_code(
        r,
        hub_error_set(HUB_EFORBIDDEN, "Managing tokens needs a write token or a browser session"));
  int rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  const char *name = web_form(r, "name"), *role = web_form(r, "role");
  int perm = role && !strcmp(role, "write") ? PERM_WRITE : PERM_READ;
  if (!name || !*name || strlen(name) > HUB_MAX_SHORT_TEXT)
    return tokens_page(r, 400, NULL, NULL, "Give the token a name (at most 100 characters).", NULL);
  char tok[AUTH_TOKEN_LEN + 1];
  db_token row;
  if ((rc = auth_token_issue(r->who.user_id, name, perm, 0, tok, &row)))
    return tokens_page(r, 500, NULL, NULL, "The token could not be created.", NULL);
  token_audit(r, "token.create", row.uid,
              json_pack("{s:s, s:s, s:s}", "name", row.name, "role", auth_role_name(row.role),
                        "via", "web"));
  return tokens_page(r, 200, tok, row.name, NULL, NULL);
}

int web_h_token_revoke_post(hub_req *r) {
  if (!r->who.authenticated) return web_error_code(r, HUB_EAUTH);
  if (!auth_full_credential(&r->who))
    return web_error_code(
        r,
        hub_error_set(HUB_EFORBIDDEN, "Managing tokens needs a write token or a browser session"));
  int rc = web_csrf_check(r);
  if (rc) return web_error_code(r, rc);
  char id[64];
  snprintf(id, sizeof id, "%s", r->cap[0]);
  if (strspn(id, "0123456789abcdef") != strlen(id) || !*id)
    return tokens_page(r, 400, NULL, NULL, "Unknown token.", NULL);
  /* Only the caller's own tokens, even for site admins (they have the API for others). */
  if ((rc = db_token_revoke(id, r->who.user_id)))
    return tokens_page(r, 404, NULL, NULL, "Unknown token.", NULL);
  token_audit(r, "token.revoke", id, json_pack("{s:s}", "via", "web"));
  return web_redirect(r, "/settings/tokens?revoked=1");
}
