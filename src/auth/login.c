/* Password logins: failure limits per client address and per account name, a bound on
 * concurrent password hashes, and the same hashing work for unknown users as for known
 * ones (docs/enterprise.md "Web login").
 *
 * Failures are counted in a fixed table (bounded memory whatever the traffic) keyed by a
 * keyed SipHash of "ip:<addr>" or "user:<name>", so crafted keys cannot pile into one
 * bucket. A key with max failures inside the window is refused until the window that
 * began with its first failure ends. When a bucket's probe range is full, the entry with
 * the fewest failures gives way: an address or account under attack keeps its count.
 * A server (`modelhub serve`, possibly one node of several) counts in the database
 * instead (db/lock.h counters), so every node sees every failure; the table is the
 * fallback of processes without the shared counters. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "db/db.h"
#include "db/lock.h"
#include "util/error.h"

#define SLOTS 4096 /* failure records kept (memory bound: ~100 KiB) */
#define PROBE 8    /* slots tried per key */
/* An address may fail this many times more than one account: the people behind one NAT
 * or reverse proxy share it. */
#define IP_FACTOR 5

typedef struct {
  uint64_t key; /* 0 = free */
  int64_t start_ms;
  int failures;
} slot;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  slot t[SLOTS];
  unsigned char sipkey[crypto_shorthash_KEYBYTES];
  int max_failures;  /* per account name; an address gets IP_FACTOR times as many */
  int64_t window_ms; /* counting window, and the longest a key stays refused */
  int max_hashing;   /* password hashes running at once */
  int64_t wait_ms;   /* how long a login waits for a hashing slot */
  int hashing;
  char dummy[crypto_pwhash_STRBYTES];
  /* counters for /metrics */
  long failed, throttled, busy, dummy_hashes;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static long env_long(const char *name, long dflt, long min, long max) {
  const char *v = getenv(name);
  char *end;
  if (!v || !*v) return dflt;
  long n = strtol(v, &end, 10);
  return *end || n < min || n > max ? dflt : n;
}

static void init_once(void) {
  if (sodium_init() < 0) abort();
  randombytes_buf(g.sipkey, sizeof g.sipkey);
  g.max_failures = (int)env_long("MODELHUB_LOGIN_MAX_FAILURES", 10, 1, 1000000);
  g.window_ms = env_long("MODELHUB_LOGIN_WINDOW", 900, 1, 86400 * 30) * 1000;
  g.max_hashing = (int)env_long("MODELHUB_LOGIN_MAX_HASHING", 4, 1, 1024);
  g.wait_ms = 2000;
  /* A real argon2id hash of a random password: unknown users are checked against it, so
   * a wrong name costs what a wrong password costs. */
  unsigned char pw[32];
  char hex[65];
  randombytes_buf(pw, sizeof pw);
  sodium_bin2hex(hex, sizeof hex, pw, sizeof pw);
  if (auth_password_hash(hex, g.dummy, sizeof g.dummy)) abort();
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t key_of(const char *kind, const char *v) {
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s:", kind);
  for (const char *p = v; *p && n < (int)sizeof buf - 1; p++)
    buf[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p); /* names are case-insensitive */
  unsigned char h[crypto_shorthash_BYTES];
  crypto_shorthash(h, (const unsigned char *)buf, (unsigned long long)n, g.sipkey);
  uint64_t k;
  memcpy(&k, h, sizeof k);
  return k ? k : 1;
}

/* The live record of key, or NULL (under g.mu). Expired records are freed on the way. */
static slot *find(uint64_t key, int64_t now) {
  for (int i = 0; i < PROBE; i++) {
    slot *s = &g.t[(key + (uint64_t)i) % SLOTS];
    if (s->key && now - s->start_ms >= g.window_ms) s->key = 0;
    if (s->key == key) return s;
  }
  return NULL;
}

/* Seconds until key may try again; 0 when it may now (under g.mu). */
static int blocked_for(uint64_t key, int limit, int64_t now) {
  slot *s = find(key, now);
  if (!s || s->failures < limit) return 0;
  int64_t left = s->start_ms + g.window_ms - now;
  return (int)((left + 999) / 1000);
}

static void add_failure(uint64_t key, int64_t now) {
  slot *s = find(key, now), *victim = NULL;
  if (!s) {
    for (int i = 0; i < PROBE; i++) {
      slot *c = &g.t[(key + (uint64_t)i) % SLOTS];
      if (!c->key) {
        victim = c;
        break;
      }
      if (!victim || c->failures < victim->failures) victim = c;
    }
    s = victim;
    s->key = key;
    s->start_ms = now;
    s->failures = 0;
  }
  s->failures++;
}

void auth_login__configure(int max_hashing, int64_t wait_ms) {
  pthread_once(&g_once, init_once);
  pthread_mutex_lock(&g.mu);
  g.max_hashing = max_hashing;
  g.wait_ms = wait_ms;
  pthread_mutex_unlock(&g.mu);
}

/* ---- counts every node shares (db/lock.h), when the process has them ------------------- */

static void shared_key(char *out, size_t cap, const char *kind, const char *v) {
  int n = snprintf(out, cap, "login:%s:", kind);
  for (const char *p = v; *p && n < (int)cap - 1; p++)
    out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p); /* names are case-insensitive */
  out[n < (int)cap ? n : (int)cap - 1] = 0;
}

/* Seconds until the shared key may try again; 0 when it may now; <0 without shared counts. */
static int shared_blocked_for(const char *kind, const char *v, int limit) {
  char key[256];
  int n = 0;
  int64_t start = 0;
  shared_key(key, sizeof key, kind, v);
  if (db_counter_get(key, g.window_ms, &n, &start) < 0) return -1;
  if (n < limit) return 0;
  int64_t left = start + g.window_ms - db_now_ms();
  return left > 0 ? (int)((left + 999) / 1000) : 0;
}

int auth_login_throttled(const char *ip, const char *user) {
  pthread_once(&g_once, init_once);
  /* Several nodes: the counts live in the database, so a client cannot multiply its
   * attempts by the number of nodes behind the load balancer. */
  int sa = shared_blocked_for("ip", ip, IP_FACTOR * g.max_failures), sb;
  if (sa >= 0 && (sb = shared_blocked_for("user", user, g.max_failures)) >= 0) {
    pthread_mutex_lock(&g.mu);
    if (sa || sb) g.throttled++;
    pthread_mutex_unlock(&g.mu);
    return sa > sb ? sa : sb;
  }
  int64_t now = now_ms();
  pthread_mutex_lock(&g.mu);
  int a = blocked_for(key_of("ip", ip), IP_FACTOR * g.max_failures, now);
  int b = blocked_for(key_of("user", user), g.max_failures, now);
  if (a || b) g.throttled++;
  pthread_mutex_unlock(&g.mu);
  return a > b ? a : b;
}

void auth_login_result(const char *ip, const char *user, int ok) {
  pthread_once(&g_once, init_once);
  char kip[256], kuser[256];
  shared_key(kip, sizeof kip, "ip", ip);
  shared_key(kuser, sizeof kuser, "user", user);
  if (ok ? db_counter_clear(kuser) == 0
         : db_counter_add(kip, g.window_ms) == 0 && db_counter_add(kuser, g.window_ms) == 0) {
    if (!ok) {
      pthread_mutex_lock(&g.mu);
      g.failed++;
      pthread_mutex_unlock(&g.mu);
    }
    return;
  }
  int64_t now = now_ms();
  pthread_mutex_lock(&g.mu);
  if (ok) {
    slot *s = find(key_of("user", user), now);
    if (s) s->key = 0; /* the account's count restarts; the address keeps its own */
  } else {
    add_failure(key_of("ip", ip), now);
    add_failure(key_of("user", user), now);
    g.failed++;
  }
  pthread_mutex_unlock(&g.mu);
}

int auth_login_verify(const char *hash, const char *password) {
  pthread_once(&g_once, init_once);
  struct timespec until;
  pthread_mutex_lock(&g.mu);
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += g.wait_ms / 1000;
  until.tv_nsec += (g.wait_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  int rc = 0;
  while (g.hashing >= g.max_hashing && rc == 0)
    rc = pthread_cond_timedwait(&g.cv, &g.mu, &until);
  if (g.hashing >= g.max_hashing) {
    g.busy++;
    pthread_mutex_unlock(&g.mu);
    return hub_error_set(HUB_ERETRY, "Too many logins at once. Try again in a moment.");
  }
  g.hashing++;
  int dummy = !hash || !*hash;
  if (dummy) g.dummy_hashes++;
  pthread_mutex_unlock(&g.mu);
  /* Unknown user or no password set: the same work against the dummy hash, then fail. */
  int ok = crypto_pwhash_str_verify(dummy ? g.dummy : hash, password, strlen(password)) == 0;
  pthread_mutex_lock(&g.mu);
  g.hashing--;
  pthread_cond_signal(&g.cv);
  pthread_mutex_unlock(&g.mu);
  if (dummy || !ok) return hub_error_set(HUB_EAUTH, "Invalid username or password");
  return 0;
}

void auth_login_metrics(hub_buf *out) {
  pthread_mutex_lock(&g.mu);
  long failed = g.failed, throttled = g.throttled, busy = g.busy, dummy = g.dummy_hashes;
  pthread_mutex_unlock(&g.mu);
  hub_buf_printf(out,
                 "# HELP modelhub_login_failures_total Failed password logins.\n"
                 "# TYPE modelhub_login_failures_total counter\nmodelhub_login_failures_total %ld\n"
                 "# HELP modelhub_login_throttled_total Logins refused by the failure limit.\n"
                 "# TYPE modelhub_login_throttled_total counter\n"
                 "modelhub_login_throttled_total %ld\n"
                 "# HELP modelhub_login_busy_total Logins refused: too many password hashes "
                 "running.\n# TYPE modelhub_login_busy_total counter\nmodelhub_login_busy_total "
                 "%ld\n"
                 "# HELP modelhub_login_dummy_hashes_total Unknown-user logins checked against "
                 "the dummy hash.\n# TYPE modelhub_login_dummy_hashes_total counter\n"
                 "modelhub_login_dummy_hashes_total %ld\n",
                 failed, throttled, busy, dummy);
}
