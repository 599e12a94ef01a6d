/* Tokens: generation, hashing, parsing of Authorization headers, permissions. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "db/db.h"
#include "util/error.h"

static char dir[] = "/tmp/mh-auth-XXXXXX";

static int setup(void **s) {
  if (!mkdtemp(dir)) return -1;
  return db_global_init(dir) || auth_init() || auth_gate_init();
}

static int teardown(void **s) {
  db_global_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_token_shape(void **s) {
  char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
  assert_int_equal(auth_token_generate(a), 0);
  assert_int_equal(auth_token_generate(b), 0);
  assert_int_equal(strlen(a), 43);
  assert_memory_equal(a, "hf_", 3);
  assert_string_not_equal(a, b);
  /* 40 base62 chars = 238 bits, over the 160 the issue requires. */
  for (int i = 3; i < 43; i++)
    assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", a[i]));
}

static void test_token_hash_is_sha256(void **s) {
  char h[65];
  auth_token_hash("abc", h);
  assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void make_user(const char *name, db_account *a) {
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  assert_int_equal(db_account_create(a), 0);
}

static void test_identify_bearer_basic_and_bad(void **s) {
  db_account u;
  make_user("alice", &u);
  char tok[AUTH_TOKEN_LEN + 1];
  assert_int_equal(auth_token_issue(u.id, "t1", PERM_WRITE, 0, tok, NULL), 0);
  hub_identity who;
  char h[300];
  snprintf(h, sizeof h, "Bearer %s", tok);
  assert_int_equal(auth_identify(h, &who), 0);
  assert_true(who.authenticated);
  assert_string_equal(who.name, "alice");
  assert_int_equal(who.token_role, PERM_WRITE);
  /* Basic: any user name, the token as password (git, git-lfs) */
  char raw[128], b64[200];
  snprintf(raw, sizeof raw, "hf_user:%s", tok);
  static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(raw), j = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)raw[i] << 16 | (i + 1 < n ? (unsigned char)raw[i + 1] << 8 : 0) |
                 (i + 2 < n ? (unsigned char)raw[i + 2] : 0);
    b64[j++] = T[v >> 18 & 63];
    b64[j++] = T[v >> 12 & 63];
    b64[j++] = i + 1 < n ? T[v >> 6 & 63] : '=';
    b64[j++] = i + 2 < n ? T[v & 63] : '=';
  }
  b64[j] = 0;
  snprintf(h, sizeof h, "Basic %s", b64);
  assert_int_equal(auth_identify(h, &who), 0);
  assert_string_equal(who.name, "alice");
  assert_int_equal(auth_identify(NULL, &who), 0);
  assert_false(who.authenticated);
  assert_int_equal(auth_identify("Bearer hf_nope", &who), HUB_EAUTH);
  assert_string_equal(hub_error_msg(), "Invalid credentials in Authorization header");
  assert_int_equal(auth_identify("Digest x", &who), HUB_EAUTH);
  assert_int_equal(auth_identify("Basic !!!!", &who), HUB_EAUTH);
  /* revoked and expired tokens stop working */
  assert_int_equal(db_token_revoke("t1", 0), 0);
  snprintf(h, sizeof h, "Bearer %s", tok);
  assert_int_equal(auth_identify(h, &who), HUB_EAUTH);
  assert_int_equal(auth_token_issue(u.id, "old", PERM_READ, db_now_ms() - 1, tok, NULL), 0);
  snprintf(h, sizeof h, "Bearer %s", tok);
  assert_int_equal(auth_identify(h, &who), HUB_EAUTH);
}

static void test_repo_permissions(void **s) {
  db_account owner, other, org;
  make_user("owner1", &owner);
  make_user("other1", &other);
  memset(&org, 0, sizeof org);
  org.kind = ACCOUNT_ORG;
  snprintf(org.name, sizeof org.name, "acme1");
  assert_int_equal(db_account_create(&org), 0);
  db_member_set(org.id, other.id, PERM_CONTRIBUTOR);
  hub_identity anon = {0}, o = {0}, x = {0};
  auth_identity_for_user(owner.id, &o);
  auth_identity_for_user(other.id, &x);
  db_repo pub = {0}, priv = {0}, orgrepo = {0};
  pub.owner_id = priv.owner_id = owner.id;
  priv.is_private = 1;
  orgrepo.owner_id = org.id;
  orgrepo.owner_is_org = 1;
  orgrepo.is_private = 1;
  assert_int_equal(auth_repo_perm(&anon, &pub), PERM_READ);
  assert_int_equal(auth_repo_perm(&anon, &priv), PERM_NONE);
  assert_int_equal(auth_repo_perm(&o, &priv), PERM_ADMIN);
  assert_int_equal(auth_repo_perm(&x, &priv), PERM_NONE);
  assert_int_equal(auth_repo_perm(&x, &orgrepo), PERM_CONTRIBUTOR);
  o.token_role = PERM_READ; /* a read token caps its user's rights */
  assert_int_equal(auth_repo_perm(&o, &priv), PERM_READ);
  int role;
  assert_int_equal(auth_role_parse("write", &role), 0);
  assert_int_equal(role, PERM_WRITE);
  assert_int_equal(auth_role_parse("owner", &role), HUB_EINVALID);
}

/* Org management: the member role, capped by a read token, and for a fine-grained token
 * by its scope on the org (only an "admin" scope manages it). Site-admin powers only
 * with a write token. */
static void test_org_role_and_token_powers(void **s) {
  db_account boss, site, org;
  make_user("boss2", &boss);
  memset(&site, 0, sizeof site);
  snprintf(site.name, sizeof site.name, "site2");
  site.is_admin = 1;
  assert_int_equal(db_account_create(&site), 0);
  memset(&org, 0, sizeof org);
  org.kind = ACCOUNT_ORG;
  snprintf(org.name, sizeof org.name, "acme2");
  assert_int_equal(db_account_create(&org), 0);
  db_member_set(org.id, boss.id, PERM_ADMIN);
  hub_identity b;
  auth_identity_for_user(boss.id, &b);
  b.token_role = PERM_WRITE;
  assert_int_equal(auth_org_role(&b, &org), PERM_ADMIN);
  assert_true(auth_full_credential(&b));
  b.token_role = PERM_READ;
  assert_int_equal(auth_org_role(&b, &org), PERM_READ);
  assert_false(auth_full_credential(&b));
  b.token_role = PERM_FINE_GRAINED;
  assert_int_equal(auth_scopes_parse("[{\"type\":\"repo\",\"name\":\"acme2/x\","
                                     "\"permission\":\"write\"}]",
                                     b.scopes, &b.nscopes),
                   0);
  assert_int_equal(auth_org_role(&b, &org), PERM_NONE); /* a repo scope is not the org */
  assert_int_equal(auth_scopes_parse("[{\"type\":\"org\",\"name\":\"ACME2\","
                                     "\"permission\":\"write\"}]",
                                     b.scopes, &b.nscopes),
                   0);
  assert_int_equal(auth_org_role(&b, &org), PERM_WRITE);
  assert_int_equal(auth_scopes_parse("[{\"type\":\"org\",\"name\":\"acme2\","
                                     "\"permission\":\"admin\"}]",
                                     b.scopes, &b.nscopes),
                   0);
  assert_int_equal(auth_org_role(&b, &org), PERM_ADMIN);
  assert_false(auth_full_credential(&b));
  assert_int_equal(auth_scopes_parse("[{\"type\":\"org\",\"name\":\"acme2\","
                                     "\"permission\":\"owner\"}]",
                                     b.scopes, &b.nscopes),
                   HUB_EINVALID);
  /* A site admin's read token is an ordinary user's read token. */
  char tok[AUTH_TOKEN_LEN + 1], hdr[64];
  hub_identity a;
  assert_int_equal(auth_token_issue(site.id, "r", PERM_READ, 0, tok, NULL), 0);
  snprintf(hdr, sizeof hdr, "Bearer %s", tok);
  assert_int_equal(auth_identify(hdr, &a), 0);
  assert_false(a.is_admin);
  assert_int_equal(auth_org_role(&a, &org), PERM_NONE);
  assert_int_equal(auth_token_issue(site.id, "w", PERM_WRITE, 0, tok, NULL), 0);
  snprintf(hdr, sizeof hdr, "Bearer %s", tok);
  assert_int_equal(auth_identify(hdr, &a), 0);
  assert_true(a.is_admin);
  assert_int_equal(auth_org_role(&a, &org), PERM_ADMIN);
}

/* Login limits: N failures per account lock it (not others), a success clears the
 * account's count; with every hashing slot taken a login is refused, not queued forever. */
/* Who may write which ref: one rule for the commit API, LFS/Xet routes and git pushes. */
static void test_may_write_ref(void **s) {
  (void)s;
  /* API: writers anywhere; contributors on a new PR or an existing refs/pr/ ref. */
  assert_true(auth_may_write_ref(PERM_WRITE, "refs/heads/main", AUTH_REF_API));
  assert_true(auth_may_write_ref(PERM_CONTRIBUTOR, NULL, AUTH_REF_API));
  assert_true(auth_may_write_ref(PERM_CONTRIBUTOR, "refs/pr/3", AUTH_REF_API));
  assert_false(auth_may_write_ref(PERM_CONTRIBUTOR, "refs/heads/main", AUTH_REF_API));
  assert_false(auth_may_write_ref(PERM_CONTRIBUTOR, "refs/heads/refs/pr/3", AUTH_REF_API));
  assert_false(auth_may_write_ref(PERM_READ, "refs/pr/3", AUTH_REF_API));
  assert_false(auth_may_write_ref(PERM_READ, NULL, AUTH_REF_API));
  /* Push: write, branches, tags and pull request refs (open PRs only: gov_check_push). */
  assert_true(auth_may_write_ref(PERM_WRITE, "refs/heads/dev", AUTH_REF_PUSH));
  assert_true(auth_may_write_ref(PERM_ADMIN, "refs/tags/v1", AUTH_REF_PUSH));
  assert_true(auth_may_write_ref(PERM_WRITE, "refs/pr/1", AUTH_REF_PUSH));
  assert_false(auth_may_write_ref(PERM_CONTRIBUTOR, "refs/pr/1", AUTH_REF_PUSH));
  assert_false(auth_may_write_ref(PERM_ADMIN, "refs/stages/prod", AUTH_REF_PUSH));
  assert_false(auth_may_write_ref(PERM_CONTRIBUTOR, "refs/heads/dev", AUTH_REF_PUSH));
  assert_false(auth_may_write_ref(PERM_WRITE, NULL, AUTH_REF_PUSH));
}

static void test_login_limits(void **s) {
  assert_int_equal(auth_login_throttled("10.0.0.1", "Mallory"), 0);
  for (int i = 0; i < 3; i++)
    auth_login_result("10.0.0.1", "mallory", 0);
  int wait = auth_login_throttled("10.0.0.2", "MALLORY"); /* names are case-insensitive */
  assert_true(wait > 0 && wait <= 60);
  assert_int_equal(auth_login_throttled("10.0.0.2", "trent"), 0);
  auth_login_result("10.0.0.3", "peggy", 0);
  auth_login_result("10.0.0.3", "peggy", 0);
  auth_login_result("10.0.0.3", "peggy", 1);
  auth_login_result("10.0.0.3", "peggy", 0);
  assert_int_equal(auth_login_throttled("10.0.0.4", "peggy"), 0);
  /* 5 x 3 failures from one address lock it for every name */
  for (int i = 0; i < 15; i++) {
    char u[32];
    snprintf(u, sizeof u, "spray%d", i);
    auth_login_result("10.0.0.5", u, 0);
  }
  assert_true(auth_login_throttled("10.0.0.5", "victor") > 0);
  assert_int_equal(auth_login_throttled("10.0.0.6", "victor"), 0);
  /* the dummy hash path fails like a wrong password */
  assert_int_equal(auth_login_verify(NULL, "x"), HUB_EAUTH);
  assert_int_equal(auth_login_verify("", "x"), HUB_EAUTH);
}

static pthread_barrier_t g_bar;
static void *hash_once(void *arg) {
  pthread_barrier_wait(&g_bar);
  *(int *)arg = auth_login_verify(NULL, "pw");
  return NULL;
}

static void test_login_hashing_bound(void **s) {
  auth_login__configure(1, 0);
  pthread_t t[4];
  int rc[4];
  pthread_barrier_init(&g_bar, NULL, 4);
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, hash_once, &rc[i]);
  int busy = 0, failed = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    busy += rc[i] == HUB_ERETRY;
    failed += rc[i] == HUB_EAUTH;
  }
  pthread_barrier_destroy(&g_bar);
  assert_int_equal(busy + failed, 4);
  assert_true(busy >= 1 && failed >= 1);
  auth_login__configure(4, 2000);
  hub_buf b = HUB_BUF_INIT;
  auth_login_metrics(&b);
  assert_non_null(strstr(b.ptr, "modelhub_login_busy_total "));
  hub_buf_dispose(&b);
}

int main(void) {
  setenv("MODELHUB_LOGIN_MAX_FAILURES", "3", 1);
  setenv("MODELHUB_LOGIN_WINDOW", "60", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_shape),
      cmocka_unit_test(test_token_hash_is_sha256),
      cmocka_unit_test(test_identify_bearer_basic_and_bad),
      cmocka_unit_test(test_repo_permissions),
      cmocka_unit_test(test_org_role_and_token_powers),
      cmocka_unit_test(test_may_write_ref),
      cmocka_unit_test(test_login_limits),
      cmocka_unit_test(test_login_hashing_bound),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
