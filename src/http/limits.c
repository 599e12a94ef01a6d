/* What one client may take from everyone else: connection slots (a cap per client address),
 * time to send request headers (a deadline per connection, enforced by a watchdog thread),
 * and memory for request bodies (one process-wide budget that requests draw from).
 *
 * libmicrohttpd 0.9.75 has an idle timeout but no header deadline, and its per-IP limit
 * neither says which address hit it nor tells it apart from the global limit; so the
 * accounting lives here: the accept policy callback refuses an address at its cap, the
 * connection notifications keep the counts and a slot per connection, and the watchdog
 * shuts down the socket of a connection past its deadline (libmicrohttpd then sees the
 * peer gone and closes it on its own thread). The slot list's mutex is held both while the
 * watchdog shuts a socket down and while libmicrohttpd reports the connection closed, which
 * it does before it closes the descriptor: a reused descriptor is never shut down. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "http/internal.h"
#include "util/error.h"
#include "util/time.h"
#include "util/thread.h"

/* Warnings of one kind (refused address, header timeout) are printed at most this often. */
#define LOG_EVERY_US (10 * 1000000LL)
#define IP_BUCKETS 4096
#define WATCHDOG_TICK_MS 250

static size_t g_body_max = HUB_BODY_MEMORY_MAX;
static _Atomic size_t g_body_used;
static unsigned g_per_ip = HUB_MAX_CONNECTIONS_PER_IP;
static unsigned g_header_s = HUB_HEADER_TIMEOUT_S, g_keepalive_s = HUB_KEEPALIVE_TIMEOUT_S;
static unsigned g_conn_limit;
static _Atomic uint64_t g_refused, g_timed_out;
static _Atomic unsigned g_open;

/* ---- per-address connection counts ---------------------------------------------------- */

typedef struct ip_count {
  unsigned char addr[16];
  unsigned n;
  size_t held; /* request body bytes its requests hold in memory (http_body_hold) */
  struct ip_count *next;
} ip_count;

typedef struct conn_slot {
  struct conn_slot *prev, *next;
  int fd;
  int has_addr;
  unsigned char addr[16];
  _Atomic int keepalive;       /* waiting for a second or later request */
  _Atomic int64_t deadline_us; /* headers due by then (monotonic); 0 during a request */
} conn_slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* g_ips, g_slots */
static ip_count *g_ips[IP_BUCKETS];
static conn_slot *g_slots;

/* IPv4 as its v4-mapped IPv6 form, so one key type covers both. */
static int addr_key(const struct sockaddr *sa, unsigned char out[16]) {
  if (!sa) return 0;
  if (sa->sa_family == AF_INET) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 1;
  }
  if (sa->sa_family == AF_INET6) {
    memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 1;
  }
  return 0;
}

static void key_text(const unsigned char k[16], char *out, size_t cap) {
  static const unsigned char v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!memcmp(k, v4, 12))
    inet_ntop(AF_INET, k + 12, out, (socklen_t)cap);
  else
    inet_ntop(AF_INET6, k, out, (socklen_t)cap);
}

static ip_count **ip_find(const unsigned char k[16]) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; i++)
    h = (h ^ k[i]) * 16777619u;
  ip_count **p = &g_ips[h % IP_BUCKETS];
  while (*p && memcmp((*p)->addr, k, 16))
    p = &(*p)->next;
  return p;
}

/* ---- body memory budget --------------------------------------------------------------- */

/* One address may hold at most g_body_per_ip of the budget (MODELHUB_BODY_MEMORY_PER_IP;
 * 0 = no share): announcing 1 MiB bodies on its 256 connections and sending nothing, one
 * client could otherwise take the whole budget, and every other client's commit got 503. */
static size_t g_body_per_ip;

static conn_slot *slot_of(struct MHD_Connection *c);

int http_body_hold(hub_req *r, size_t bytes) {
  conn_slot *s = r->conn ? slot_of(r->conn) : NULL;
  int by_addr = s && s->has_addr;
  if (bytes <= r->body_held) {
    size_t less = r->body_held - bytes;
    if (less && by_addr) {
      pthread_mutex_lock(&g_mu);
      ip_count *e = *ip_find(s->addr);
      if (e) e->held -= less < e->held ? less : e->held;
      pthread_mutex_unlock(&g_mu);
    }
    atomic_fetch_sub(&g_body_used, less);
    r->body_held = bytes;
    return 0;
  }
  size_t more = bytes - r->body_held;
  ip_count *e = NULL;
  if (by_addr) {
    pthread_mutex_lock(&g_mu);
    e = *ip_find(s->addr);
    if (e && g_body_per_ip && (more > g_body_per_ip || e->held > g_body_per_ip - more)) {
      pthread_mutex_unlock(&g_mu);
      return hub_error_set(HUB_EBUSY,
                           "This client address holds as many request bodies in memory as one "
                           "address may (%zu bytes); retry in a few seconds",
                           g_body_per_ip);
    }
    if (e) e->held += more;
    pthread_mutex_unlock(&g_mu);
  }
  size_t cur = atomic_load(&g_body_used);
  do {
    if (more > g_body_max || cur > g_body_max - more) {
      if (e) {
        pthread_mutex_lock(&g_mu);
        ip_count *again = *ip_find(s->addr); /* still there: this connection is open */
        if (again) again->held -= more < again->held ? more : again->held;
        pthread_mutex_unlock(&g_mu);
      }
      return hub_error_set(HUB_EBUSY,
                           "The server is holding as many request bodies in memory as it may "
                           "(%zu bytes); retry in a few seconds",
                           g_body_max);
    }
  } while (!atomic_compare_exchange_weak(&g_body_used, &cur, cur + more));
  r->body_held = bytes;
  return 0;
}

void http__body_release(hub_req *r) {
  http_body_hold(r, 0);
}

/* Print at most one line per LOG_EVERY_US for a kind of event; counts the rest. */
typedef struct {
  _Atomic int64_t last_us;
  _Atomic uint64_t quiet;
} log_limiter;

static int log_allowed(log_limiter *l, uint64_t *quiet) {
  int64_t now = hub_mono_us(), last = atomic_load(&l->last_us);
  if (last && now - last < LOG_EVERY_US) {
    atomic_fetch_add(&l->quiet, 1);
    return 0;
  }
  if (!atomic_compare_exchange_strong(&l->last_us, &last, now)) {
    atomic_fetch_add(&l->quiet, 1);
    return 0;
  }
  *quiet = atomic_exchange(&l->quiet, 0);
  return 1;
}

static log_limiter g_refuse_log, g_timeout_log;

enum MHD_Result http__accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
  unsigned char k[16];
  (void)cls;
  if (!g_per_ip || addrlen < sizeof(sa_family_t) || !addr_key(addr, k)) return MHD_YES;
  pthread_mutex_lock(&g_mu);
  ip_count *e = *ip_find(k);
  unsigned n = e ? e->n : 0;
  pthread_mutex_unlock(&g_mu);
  if (n < g_per_ip) return MHD_YES;
  atomic_fetch_add(&g_refused, 1);
  uint64_t quiet = 0;
  if (log_allowed(&g_refuse_log, &quiet)) {
    char ip[INET6_ADDRSTRLEN];
    key_text(k, ip, sizeof ip);
    fprintf(stderr,
            "modelhub: refusing a connection from %s: it has %u open, the per-IP connection "
            "limit (MODELHUB_MAX_CONNECTIONS_PER_IP=%u); %llu other refusals since the last "
            "message\n",
            ip, n, g_per_ip, (unsigned long long)quiet);
  }
  return MHD_NO;
}

static void slot_open(struct MHD_Connection *c, void **socket_context) {
  conn_slot *s = calloc(1, sizeof *s);
  *socket_context = s;
  if (!s) return; /* not counted: libmicrohttpd still serves it */
  const union MHD_ConnectionInfo *fd =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  const union MHD_ConnectionInfo *ca =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  s->fd = fd ? fd->connect_fd : -1;
  s->has_addr = ca && addr_key(ca->client_addr, s->addr);
  atomic_store(&s->deadline_us, s->fd >= 0 ? hub_mono_us() + (int64_t)g_header_s * 1000000 : 0);
  pthread_mutex_lock(&g_mu);
  s->next = g_slots;
  if (g_slots) g_slots->prev = s;
  g_slots = s;
  if (s->has_addr) {
    ip_count **p = ip_find(s->addr);
    if (!*p && (*p = calloc(1, sizeof **p))) memcpy((*p)->addr, s->addr, 16);
    if (*p)
      (*p)->n++;
    else
      s->has_addr = 0;
  }
  pthread_mutex_unlock(&g_mu);
  atomic_fetch_add(&g_open, 1);
}

static void slot_close(void **socket_context) {
  conn_slot *s = *socket_context;
  if (!s) return;
  *socket_context = NULL;
  pthread_mutex_lock(&g_mu);
  if (s->prev)
    s->prev->next = s->next;
  else
    g_slots = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->has_addr) {
    ip_count **p = ip_find(s->addr), *e = *p;
    if (e && --e->n == 0) {
      *p = e->next;
      free(e);
    }
  }
  pthread_mutex_unlock(&g_mu);
  atomic_fetch_sub(&g_open, 1);
  free(s);
}

void http__conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    slot_open(c, socket_context);
  else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
    slot_close(socket_context);
}

static conn_slot *slot_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}

void http__conn_request_begin(struct MHD_Connection *c) {
  conn_slot *s = slot_of(c);
  if (s) atomic_store(&s->deadline_us, 0);
}

void http__conn_request_end(struct MHD_Connection *c) {
  conn_slot *s = slot_of(c);
  if (!s || s->fd < 0) return;
  s->keepalive = 1;
  atomic_store(&s->deadline_us, hub_mono_us() + (int64_t)g_keepalive_s * 1000000);
}

/* ---- watchdog ---------------------------------------------------------------------------- */

static pthread_t g_watchdog;
static int g_watchdog_running, g_watchdog_stop;
static pthread_mutex_t g_wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wd_cv = PTHREAD_COND_INITIALIZER;

static void sweep(void) {
  int64_t now = hub_mono_us();
  unsigned slow = 0;
  pthread_mutex_lock(&g_mu);
  for (conn_slot *s = g_slots; s; s = s->next) {
    int64_t due = atomic_load(&s->deadline_us);
    if (!due || now < due) continue;
    /* The request may have begun since the load: then it loses its connection, as it
     * would have a moment earlier. */
    if (!atomic_compare_exchange_strong(&s->deadline_us, &due, 0)) continue;
    shutdown(s->fd, SHUT_RDWR);
    atomic_fetch_add(&g_timed_out, 1);
    if (!s->keepalive) slow++;
  }
  pthread_mutex_unlock(&g_mu);
  uint64_t quiet = 0;
  if (slow && log_allowed(&g_timeout_log, &quiet))
    fprintf(stderr,
            "modelhub: closed %u connection(s) that sent no complete request headers within "
            "%us (MODELHUB_HEADER_TIMEOUT); %llu more since the last message\n",
            slow, g_header_s, (unsigned long long)quiet);
}

static void *watchdog_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&g_wd_mu);
  while (!g_watchdog_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g_wd_cv, &g_wd_mu, &until);
    if (g_watchdog_stop) break;
    pthread_mutex_unlock(&g_wd_mu);
    sweep();
    pthread_mutex_lock(&g_wd_mu);
  }
  pthread_mutex_unlock(&g_wd_mu);
  return NULL;
}

int http__watchdog_start(void) {
  if (hub_thread_start("http-watchdog", watchdog_main, NULL, &g_watchdog)) return HUB_ERROR;
  g_watchdog_running = 1;
  return 0;
}

void http__watchdog_stop(void) {
  if (!g_watchdog_running) return;
  pthread_mutex_lock(&g_wd_mu);
  g_watchdog_stop = 1;
  pthread_cond_signal(&g_wd_cv);
  pthread_mutex_unlock(&g_wd_mu);
  pthread_join(g_watchdog, NULL);
  g_watchdog_running = 0;
}

/* ---- configuration ------------------------------------------------------------------------ */

/* A non-negative integer from the environment, or dflt (with a warning when malformed). */
static unsigned long long env_num(const char *name, unsigned long long dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end || *v == '-') {
    fprintf(stderr, "modelhub: ignoring %s=%s (want a number)\n", name, v);
    return dflt;
  }
  return n;
}

unsigned http__limits_init(void) {
  g_body_max = (size_t)env_num("MODELHUB_BODY_MEMORY_MAX", HUB_BODY_MEMORY_MAX);
  g_body_per_ip = (size_t)env_num("MODELHUB_BODY_MEMORY_PER_IP", g_body_max / 2);
  g_per_ip = (unsigned)env_num("MODELHUB_MAX_CONNECTIONS_PER_IP", HUB_MAX_CONNECTIONS_PER_IP);
  g_header_s = (unsigned)env_num("MODELHUB_HEADER_TIMEOUT", HUB_HEADER_TIMEOUT_S);
  g_keepalive_s = (unsigned)env_num("MODELHUB_KEEPALIVE_TIMEOUT", HUB_KEEPALIVE_TIMEOUT_S);
  if (!g_header_s) g_header_s = 1;
  if (!g_keepalive_s) g_keepalive_s = 1;
  /* Connections need descriptors (and requests a few more: spools, blobs, git pipes): take
   * the hard limit, then leave a quarter of it to requests. */
  struct rlimit rl;
  unsigned long long nofile = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
      rl.rlim_cur = want;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    nofile = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
  }
  unsigned long long lim = nofile > 256 ? (nofile - 128) * 3 / 4 : 64;
  if (lim > HUB_MAX_CONNECTIONS) lim = HUB_MAX_CONNECTIONS;
  lim = env_num("MODELHUB_MAX_CONNECTIONS", lim);
  if (lim < 16) lim = 16;
  if (lim > nofile) lim = nofile;
  g_conn_limit = (unsigned)lim;
  if (g_per_ip && (unsigned long long)g_per_ip * 4 > lim)
    fprintf(stderr,
            "modelhub: warning: %u connections in all but %u per client address: a few "
            "clients can take every slot (raise the descriptor limit or "
            "MODELHUB_MAX_CONNECTIONS, or lower MODELHUB_MAX_CONNECTIONS_PER_IP)\n",
            g_conn_limit, g_per_ip);
  return g_conn_limit;
}

unsigned http__limits_per_ip(void) {
  return g_per_ip;
}

void http__limits_metrics(hub_buf *out) {
  hub_buf_printf(out,
                 "# HELP modelhub_body_memory_bytes Request body bytes held in memory.\n"
                 "# TYPE modelhub_body_memory_bytes gauge\n"
                 "modelhub_body_memory_bytes %zu\n"
                 "# HELP modelhub_body_memory_limit_bytes MODELHUB_BODY_MEMORY_MAX.\n"
                 "# TYPE modelhub_body_memory_limit_bytes gauge\n"
                 "modelhub_body_memory_limit_bytes %zu\n"
                 "# HELP modelhub_connections_open Open client connections.\n"
                 "# TYPE modelhub_connections_open gauge\n"
                 "modelhub_connections_open %u\n"
                 "# HELP modelhub_connections_refused_total Connections refused at the per-IP "
                 "cap.\n"
                 "# TYPE modelhub_connections_refused_total counter\n"
                 "modelhub_connections_refused_total %llu\n"
                 "# HELP modelhub_connections_timed_out_total Connections closed for sending no "
                 "complete request headers in time.\n"
                 "# TYPE modelhub_connections_timed_out_total counter\n"
                 "modelhub_connections_timed_out_total %llu\n",
                 atomic_load(&g_body_used), g_body_max, atomic_load(&g_open),
                 (unsigned long long)atomic_load(&g_refused),
                 (unsigned long long)atomic_load(&g_timed_out));
}
