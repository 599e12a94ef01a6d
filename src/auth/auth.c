#include "auth/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/search.h"
#include "db/stmt.h"
#include "util/error.h"

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int auth_token_generate(char out[AUTH_TOKEN_LEN + 1]) {
  memcpy(out, "hf_", 3);
  for (int i = 3; i < AUTH_TOKEN_LEN;) {
    unsigned char b[64];
    if (RAND_bytes(b, sizeof b) != 1) return hub_error_set(HUB_ERROR, "no randomness");
    /* Rejection sampling keeps the alphabet uniform: 248 = 4 * 62. */
    for (size_t k = 0; k < sizeof b && i < AUTH_TOKEN_LEN; k++)
      if (b[k] < 248) out[i++] = B62[b[k] % 62];
  }
  out[AUTH_TOKEN_LEN] = 0;
  return 0;
}

void auth_token_hash(const char *token, char out_hex[65]) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    snprintf(out_hex + 2 * i, 3, "%02x", md[i]);
}

static void identity_of(const db_account *a, hub_identity *out) {
  memset(out, 0, sizeof *out);
  out->authenticated = 1;
  out->user_id = a->id;
  snprintf(out->name, sizeof out->name, "%s", a->name);
  snprintf(out->uid, sizeof out->uid, "%s", a->uid);
  out->is_admin = a->is_admin;
  out->token_role = PERM_ADMIN;
}

static int load_identity(const db_token *t, const db_account *a, hub_identity *out) {
  identity_of(a, out);
  out->token_id = t->id;
  snprintf(out->token_uid, sizeof out->token_uid, "%s", t->uid);
  snprintf(out->token_name, sizeof out->token_name, "%s", t->name);
  out->token_role = t->role;
  out->token_created_ms = t->created_ms;
  /* Site-admin powers need a token that carries them: a read token only reads and a
   * fine-grained token only does what its scopes say, for an admin as for anyone. */
  if (t->role != PERM_WRITE) out->is_admin = 0;
  if (t->role == PERM_FINE_GRAINED && auth_scopes_parse(t->scopes, out->scopes, &out->nscopes) != 0)
    return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
  return 0;
}

/* Token last-use times waiting to be written: identification runs on event threads, which
 * never write (db_thread_readonly). Bounded: past it a use is dropped (the next one, a
 * minute later at most, records it again). */
#define TOUCH_PENDING_MAX 1024
static pthread_mutex_t g_touch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { int64_t id, now_ms; } g_touch[TOUCH_PENDING_MAX];
static size_t g_ntouch;

static void touch_defer(int64_t id, int64_t now_ms) {
  pthread_mutex_lock(&g_touch_mu);
  size_t i = 0;
  while (i < g_ntouch && g_touch[i].id != id)
    i++;
  if (i < TOUCH_PENDING_MAX) {
    g_touch[i].id = id;
    g_touch[i].now_ms = now_ms;
    if (i == g_ntouch) g_ntouch++;
  }
  pthread_mutex_unlock(&g_touch_mu);
}

int auth_token_touch_flush(void) {
  int64_t ids[64], times[64];
  int rc = 0;
  for (;;) { /* a few at a time, without holding the lock over the writes */
    size_t n = 0;
    pthread_mutex_lock(&g_touch_mu);
    while (g_ntouch && n < 64) {
      g_ntouch--;
      ids[n] = g_touch[g_ntouch].id;
      times[n++] = g_touch[g_ntouch].now_ms;
    }
    pthread_mutex_unlock(&g_touch_mu);
    if (!n) return rc;
    for (size_t i = 0; i < n; i++)
      if (db_token_touch(ids[i], times[i])) rc = HUB_ERROR;
  }
}

static int identify_token(const char *tok, size_t len, hub_identity *out) {
  char buf[256];
  if (len == 0 || len >= sizeof buf)
    return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
  memcpy(buf, tok, len);
  buf[len] = 0;
  char hash[65];
  auth_token_hash(buf, hash);
  sodium_memzero(buf, sizeof buf);
  db_token t;
  db_account a;
  int rc = db_token_identity_shared(hash, &t, &a);
  /* A database that cannot answer (503) is not a wrong token: no 401 that makes a client
   * drop or re-prompt for good credentials. */
  if (rc && rc != HUB_ENOTFOUND) return rc;
  if (rc || t.revoked)
    return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
  int64_t now = db_now_ms();
  if (t.expires_ms && t.expires_ms <= now)
    return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
  /* The last-use time is kept to the minute and written in the background
   * (auth_token_touch_flush): identification runs on event threads, which never write. */
  if (t.last_used_ms < now - 60000) touch_defer(t.id, now);
  return load_identity(&t, &a, out);
}

int auth_identify(const char *h, hub_identity *out) {
  memset(out, 0, sizeof *out);
  if (!h || !*h) return 0;
  while (*h == ' ')
    h++;
  if (strncasecmp(h, "Bearer ", 7) == 0) {
    h += 7;
    while (*h == ' ')
      h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
      n--;
    return identify_token(h, n, out);
  }
  if (strncasecmp(h, "Basic ", 6) == 0) {
    h += 6;
    while (*h == ' ')
      h++;
    size_t n = strlen(h);
    if (n > 1024) return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
    unsigned char dec[800];
    int m = EVP_DecodeBlock(dec, (const unsigned char *)h, (int)n);
    if (m < 0) return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
    /* EVP_DecodeBlock counts '=' padding as zero bytes; drop them. */
    while (n && h[n - 1] == '=' && m > 0)
      n--, m--;
    dec[m] = 0;
    char *colon = memchr(dec, ':', (size_t)m);
    if (!colon) return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
    const char *pw = colon + 1;
    size_t pwlen = (size_t)m - (size_t)(colon + 1 - (char *)dec);
    /* git asks anonymously first and some helpers send an empty password: that is
     * "no credentials", not bad ones. */
    if (pwlen == 0) return 0;
    int rc = identify_token(pw, pwlen, out);
    sodium_memzero(dec, sizeof dec);
    return rc;
  }
  return hub_error_set(HUB_EAUTH, "Invalid credentials in Authorization header");
}

int auth_identity_for_user(int64_t user_id, hub_identity *out) {
  db_account a;
  int rc = db_account_by_id(user_id, &a);
  if (rc) return rc;
  identity_of(&a, out);
  return 0;
}

/* Module "auth" (db_migrate): append steps, never edit one. */
static const db_migration AUTH_STEPS[] = {
    {.sql = "ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';"},
};

int auth_init(void) {
  return db_migrate("auth", AUTH_STEPS, (int)(sizeof AUTH_STEPS / sizeof AUTH_STEPS[0]));
}

int auth_scopes_parse(const char *js, auth_scope *out, int *n) {
  *n = 0;
  json_error_t err;
  json_t *arr = json_loads(js && *js ? js : "[]", 0, &err), *s;
  size_t i;
  if (!json_is_array(arr)) {
    json_decref(arr);
    return hub_error_set(HUB_EINVALID, "scopes must be a JSON list");
  }
  if (json_array_size(arr) > AUTH_MAX_SCOPES) {
    json_decref(arr);
    return hub_error_set(HUB_EINVALID, "at most %d scopes per token", AUTH_MAX_SCOPES);
  }
  json_array_foreach(arr, i, s) {
    const char *type = json_string_value(json_object_get(s, "type"));
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *perm = json_string_value(json_object_get(s, "permission"));
    const char *rt = json_string_value(json_object_get(s, "repoType"));
    auth_scope *sc = &out[*n];
    memset(sc, 0, sizeof *sc);
    if (!type || !name || !*name || strlen(name) >= sizeof sc->name || !perm ||
        (strcmp(perm, "read") && strcmp(perm, "write") && strcmp(perm, "admin")) ||
        (strcmp(type, "repo") && strcmp(type, "namespace") && strcmp(type, "org") &&
         strcmp(type, "user"))) {
      json_decref(arr);
      return hub_error_set(HUB_EINVALID,
                           "scope %zu: need type repo|namespace|org|user, name and "
                           "permission read|write|admin",
                           i);
    }
    sc->kind = strcmp(type, "repo") ? SCOPE_NAMESPACE : SCOPE_REPO;
    sc->perm = !strcmp(perm, "read") ? PERM_READ : !strcmp(perm, "write") ? PERM_WRITE : PERM_ADMIN;
    sc->repo_type = !rt || !strcmp(rt, "model") ? HUB_REPO_MODEL
                    : !strcmp(rt, "dataset")    ? HUB_REPO_DATASET
                                                : HUB_REPO_SPACE;
    if (sc->kind == SCOPE_REPO && !strchr(name, '/')) {
      json_decref(arr);
      return hub_error_set(HUB_EINVALID, "scope %zu: a repo scope names ns/name", i);
    }
    snprintf(sc->name, sizeof sc->name, "%s", name);
    (*n)++;
  }
  json_decref(arr);
  return 0;
}

/* Most a fine-grained token's scopes allow on (type, ns, name); -1 if none covers it. */
static int scope_cap(const hub_identity *who, int type, const char *ns, const char *name) {
  int best = -1;
  for (int i = 0; i < who->nscopes; i++) {
    const auth_scope *s = &who->scopes[i];
    int hit;
    if (s->kind == SCOPE_NAMESPACE) {
      hit = !strcasecmp(s->name, ns);
    } else {
      size_t nl = strlen(ns);
      hit = s->repo_type == type && name && !strncasecmp(s->name, ns, nl) && s->name[nl] == '/' &&
            !strcasecmp(s->name + nl + 1, name);
    }
    if (hit && s->perm > best) best = s->perm;
  }
  return best;
}

static int cap_by_token(const hub_identity *who, int perm) {
  int cap = who->token_role ? who->token_role : PERM_ADMIN;
  /* A write token may do everything its user may; a read token only reads. */
  if (cap >= PERM_WRITE) return perm;
  return perm < cap ? perm : cap;
}

static int base_perm(const hub_identity *who, int64_t owner_id, int owner_is_org) {
  if (!who->authenticated) return PERM_NONE;
  if (who->is_admin) return PERM_ADMIN;
  if (!owner_is_org) return owner_id == who->user_id ? PERM_ADMIN : PERM_NONE;
  int role = PERM_NONE;
  db_member_role(owner_id, who->user_id, &role);
  return role;
}

int auth_may_write_ref(int perm, const char *ref, int via) {
  if (via == AUTH_REF_PUSH)
    return perm >= PERM_WRITE && ref &&
           (!strncmp(ref, "refs/heads/", 11) || !strncmp(ref, "refs/tags/", 10) ||
            !strncmp(ref, "refs/pr/", 8));
  if (perm >= PERM_WRITE) return 1;
  return perm >= PERM_CONTRIBUTOR && (!ref || !strncmp(ref, "refs/pr/", 8));
}

int auth_repo_perm(const hub_identity *who, const db_repo *repo) {
  int p = base_perm(who, repo->owner_id, repo->owner_is_org);
  if (who->token_role == PERM_FINE_GRAINED) {
    int cap = scope_cap(who, repo->type, repo->ns, repo->name);
    if (cap < 0) return PERM_NONE; /* outside every scope: not even public reads */
    /* A write scope gives what the user has; a read scope only reads. */
    if (cap < PERM_WRITE && p > cap) p = cap;
  } else {
    p = cap_by_token(who, p);
  }
  if (p < PERM_READ && !repo->is_private) p = PERM_READ;
  return p;
}

int auth_repo_member(const hub_identity *who, const db_repo *repo) {
  return base_perm(who, repo->owner_id, repo->owner_is_org) >= PERM_READ;
}

int auth_out_of_scope(const hub_identity *who, const db_repo *repo) {
  return who->authenticated && who->token_role == PERM_FINE_GRAINED &&
         scope_cap(who, repo->type, repo->ns, repo->name) < 0;
}

int auth_ns_perm(const hub_identity *who, const db_account *ns) {
  int p = base_perm(who, ns->id, ns->kind == ACCOUNT_ORG);
  if (who->token_role == PERM_FINE_GRAINED) {
    int cap = scope_cap(who, -1, ns->name, NULL);
    if (cap < 0) return PERM_NONE;
    return cap < PERM_WRITE && p > cap ? cap : p;
  }
  return cap_by_token(who, p);
}

int auth_org_role(const hub_identity *who, const db_account *org) {
  int p = base_perm(who, org->id, 1);
  if (who->token_role == PERM_FINE_GRAINED) {
    int cap = scope_cap(who, -1, org->name, NULL); /* namespace scopes only */
    if (cap < 0) return PERM_NONE;
    return p > cap ? cap : p;
  }
  return who->token_role == PERM_READ && p > PERM_READ ? PERM_READ : p;
}

int auth_full_credential(const hub_identity *who) {
  return who->authenticated && (who->token_role == PERM_WRITE || who->token_role == PERM_ADMIN);
}

void auth_search_viewer(const hub_identity *who, db_search_query *q, db_search_scope *sc) {
  q->viewer_id = who->authenticated ? who->user_id : 0;
  q->viewer_admin = who->authenticated && who->is_admin;
  q->viewer_scoped = who->authenticated && who->token_role == PERM_FINE_GRAINED;
  q->viewer_scopes = sc;
  q->nviewer_scopes = 0;
  for (int i = 0; sc && q->viewer_scoped && i < who->nscopes && i < AUTH_MAX_SCOPES; i++) {
    const auth_scope *s = &who->scopes[i];
    sc[i].type = s->kind == SCOPE_REPO ? s->repo_type : -1;
    sc[i].id = s->name;
    q->nviewer_scopes++;
  }
}

int auth_token_issue_scoped(int64_t user_id, const char *name, const char *scopes_json,
                            int64_t expires_ms, char out_token[AUTH_TOKEN_LEN + 1],
                            db_token *out_row) {
  auth_scope sc[AUTH_MAX_SCOPES];
  int n, rc;
  if ((rc = auth_scopes_parse(scopes_json, sc, &n))) return rc;
  if (n == 0) return hub_error_set(HUB_EINVALID, "a fine-grained token needs at least one scope");
  db_token t;
  memset(&t, 0, sizeof t);
  t.user_id = user_id;
  snprintf(t.name, sizeof t.name, "%s", name);
  t.role = PERM_FINE_GRAINED;
  t.expires_ms = expires_ms;
  if (strlen(scopes_json) >= sizeof t.scopes) return hub_error_set(HUB_EINVALID, "scopes too long");
  snprintf(t.scopes, sizeof t.scopes, "%s", scopes_json);
  if ((rc = auth_token_generate(out_token))) return rc;
  char hash[65];
  auth_token_hash(out_token, hash);
  if ((rc = db_token_create(&t, hash))) return rc;
  if (out_row) *out_row = t;
  return 0;
}

int auth_role_parse(const char *s, int *out) {
  static const char *names[] = {"none", "read", "contributor", "write", "admin"};
  for (int i = 1; i < 5; i++)
    if (s && strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  return hub_error_set(HUB_EINVALID, "unknown role '%s' (read, contributor, write, admin)",
                       s ? s : "");
}

const char *auth_role_name(int perm) {
  static const char *names[] = {"none", "read", "contributor", "write", "admin", "fineGrained"};
  return perm >= 0 && perm <= 5 ? names[perm] : "none";
}

int auth_password_hash(const char *password, char *out, size_t cap) {
  if (cap < crypto_pwhash_STRBYTES) return hub_error_set(HUB_ERROR, "hash buffer too small");
  if (sodium_init() < 0) return hub_error_set(HUB_ERROR, "libsodium init failed");
  if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return hub_error_set(HUB_ERROR, "out of memory hashing password");
  return 0;
}

int auth_password_verify(const char *hash, const char *password) {
  if (!hash || !*hash) return hub_error_set(HUB_EAUTH, "Invalid username or password");
  if (crypto_pwhash_str_verify(hash, password, strlen(password)) != 0)
    return hub_error_set(HUB_EAUTH, "Invalid username or password");
  return 0;
}

int auth_token_issue(int64_t user_id, const char *name, int role, int64_t expires_ms,
                     char out_token[AUTH_TOKEN_LEN + 1], db_token *out_row) {
  db_token t;
  memset(&t, 0, sizeof t);
  t.user_id = user_id;
  snprintf(t.name, sizeof t.name, "%s", name);
  t.role = role;
  t.expires_ms = expires_ms;
  int rc = auth_token_generate(out_token);
  if (rc) return rc;
  char hash[65];
  auth_token_hash(out_token, hash);
  if ((rc = db_token_create(&t, hash))) return rc;
  if (out_row) *out_row = t;
  return 0;
}
