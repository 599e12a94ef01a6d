/* In-memory id index for term searches at catalog scale (docs/search.md, "Term search").
 *
 * A search term matches a repo id by substring, and FTS5 trigram queries for a common
 * term cost milliseconds at a million repos (every trigram's doclist is read), as does
 * walking the downloads index with a table lookup per row. This module keeps a snapshot
 * of every repo's lowercase id and 30-day downloads, per type, in (downloads desc, id desc)
 * order, so the first matches of a term in relevance or downloads order are found by
 * scanning memory for as long as it takes to see a page of them.
 *
 * The snapshot only proposes candidates; SQL decides. The snapshot is taken at
 * repo_seq.n = S; every change to an id, downloads or card text sets that repo's
 * repos.chg above S (migration 4 triggers). A request reads repo_seq in its own read
 * transaction: if it is older than S the snapshot is not used. Otherwise a repo is either
 * unchanged since S (its snapshot id and downloads are the request's) or in the small
 * changed set, which is passed to SQL to test like any row. The walk collects unchanged
 * matches in order up to a boundary; SQL applies every filter (visibility, tags, …) to
 * candidates + changed rows and orders them; the page is exact when its last row is not
 * after the boundary (any repo missing from the candidates comes after the boundary) or
 * the walk saw every match. Otherwise the walk goes further, and past a budget the SQL
 * plan answers.
 *
 * Card text: a repo also matches when its card contains the term as a phrase. Those
 * matches (one FTS5 query) are kept per term as a bitmap over repo ids in the snapshot;
 * they stay exact for unchanged repos because a card change moves the repo into the
 * changed set. Relevance order needs them only once the id tiers of a term run out.
 *
 * The snapshot is rebuilt by a background thread (one at a time) when the changed set
 * grows; past DB_ACCEL_MAX_CHANGED changed repos requests use SQL until it is ready. */
#include "db/internal.h"
#include "db/search_pg.h"
#include "db/stmt.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/thread.h"

#define NTYPES 3
/* Changed repos a request can test one by one; more and the SQL plan answers. */
#define MAX_CHANGED 64
/* A rebuild starts (in the background) once this many repos changed. */
#define REBUILD_CHANGED 16
/* Candidates a request may collect before handing over to the SQL plan. */
#define MAX_CANDIDATES 2048
/* Snapshot entries a request may scan (~20 ns each); a term too rare to fill a page
 * within it is left to the FTS5 plan, which is cheap for rare terms. */
#define WALK_BUDGET 100000
/* Id matches probed (lazily, in rowid order) to estimate how common a term is. */
#define PROBE 64
/* Id sets (card phrases, tags) kept per snapshot; past that a request builds a private
 * one. Each is max_id / 8 bytes (125 KB at a million repos). */
#define MAX_ID_SETS 64
/* Repos whose downloads moved since the snapshot that a delta version may list; past
 * DELTA_REBUILD a rebuild starts, past DELTA_MAX the SQL plans answer until it is done. */
#define DELTA_REBUILD 20000
#define DELTA_MAX 200000
/* Terms whose common/rare estimate is remembered per snapshot. */
#define MAX_TERM_NOTES 256
#define MAX_TERM 256

typedef struct {
  int64_t id, dl;      /* repo id, 30-day downloads */
  uint64_t sig;        /* one bit per hashed byte pair of the id (see pairs_sig) */
  uint32_t off;        /* lowercase "ns/name" in the arena */
  uint16_t len, slash; /* its length, offset of the '/' */
} entry;

typedef struct {
  entry *e;        /* in (downloads desc, id desc) order */
  uint32_t *names; /* open addressing on the name part: position + 1, 0 empty */
  size_t n, cap, names_mask;
} acc_type;

/* A set of repo ids as a bitmap (ids <= max_id): the repos whose card contains a phrase
 * (SET_CARD) or that carry a tag (SET_TAG), read once per snapshot and cached in it. */
enum { SET_CARD, SET_TAG };
typedef struct id_set {
  int kind;
  char key[MAX_TERM + 1];
  uint8_t *bits;
  struct id_set *next;
} id_set;

/* Whether a term is common enough to walk the snapshot for (common_term), per term. */
typedef struct {
  char term[MAX_TERM + 1];
  int common;
} term_note;

typedef struct {
  int64_t seq, max_id;
  acc_type t[NTYPES];
  uint32_t *where; /* by id <= max_id: type << 30 | array position; UINT32_MAX if none */
  char *arena;
  size_t alen, acap;
  int refs, retired;        /* under g_mu */
  pthread_mutex_t cards_mu; /* sets and notes */
  id_set *sets;
  int nsets;
  term_note notes[MAX_TERM_NOTES];
  int nnotes;
  struct dl_delta *delta, *delta_prev; /* newest two, each holding a reference */
} snap;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static snap *g_cur;
static int g_building;
static time_t g_last_build;
/* Seconds between rebuilds: 20x the last build's duration, so on a busy catalog (every
 * downloads flush changes repos) rebuilding costs at most ~5 % of a core; in between,
 * listings with too many changed repos use the SQL plans. */
static double g_build_interval = 1;
static int g_mode = 1;
static long g_served; /* listings answered from the snapshot (tests), under g_mu */

long db_search_accel_served(void) {
  pthread_mutex_lock(&g_mu);
  long n = g_served;
  pthread_mutex_unlock(&g_mu);
  return n;
}

void db_search_accel_mode(int mode) {
  pthread_mutex_lock(&g_mu);
  g_mode = mode;
  pthread_mutex_unlock(&g_mu);
}

/* ---- snapshot ----------------------------------------------------------------------- */

static void delta_drop(struct dl_delta *d);

static void snap_free(snap *s) {
  if (!s) return;
  if (s->delta) delta_drop(s->delta);
  if (s->delta_prev) delta_drop(s->delta_prev);
  free(s->where);
  for (int t = 0; t < NTYPES; t++) {
    free(s->t[t].e);
    free(s->t[t].names);
  }
  for (id_set *c = s->sets, *next; c; c = next) {
    next = c->next;
    free(c->bits);
    free(c);
  }
  pthread_mutex_destroy(&s->cards_mu);
  free(s->arena);
  free(s);
}

static uint32_t hash_bytes(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

/* A 64-bit signature of the byte pairs in s: an id can contain the term only if it has
 * every pair of the term, so most ids are rejected by one AND. */
static uint64_t pairs_sig(const char *s, size_t n) {
  uint64_t sig = 0;
  for (size_t i = 0; i + 1 < n; i++)
    sig |= 1ull << ((((unsigned char)s[i] * 31u) ^ (unsigned char)s[i + 1]) & 63);
  return sig;
}

static int grow(acc_type *a) {
  size_t cap = a->cap ? a->cap * 2 : 4096;
  entry *e = realloc(a->e, cap * sizeof *e);
  if (!e) return -1;
  a->e = e;
  a->cap = cap;
  return 0;
}

/* Append one repo: lowercase "ns/name" into the arena. */
static int add_entry(snap *s, acc_type *a, int64_t id, int64_t dl, const char *ns,
                     const char *name) {
  size_t nl = strlen(ns), ml = strlen(name), len = nl + 1 + ml;
  if (len > UINT16_MAX || s->alen + len > UINT32_MAX) return -1;
  if (a->n == a->cap && grow(a)) return -1;
  if (s->alen + len > s->acap) {
    size_t cap = s->acap ? s->acap * 2 : 1 << 20;
    while (cap < s->alen + len)
      cap *= 2;
    char *p = realloc(s->arena, cap);
    if (!p) return -1;
    s->arena = p;
    s->acap = cap;
  }
  char *dst = s->arena + s->alen;
  for (size_t i = 0; i < nl; i++)
    dst[i] = (char)tolower((unsigned char)ns[i]);
  dst[nl] = '/';
  for (size_t i = 0; i < ml; i++)
    dst[nl + 1 + i] = (char)tolower((unsigned char)name[i]);
  a->e[a->n++] =
      (entry){id, dl, pairs_sig(dst, len), (uint32_t)s->alen, (uint16_t)len, (uint16_t)nl};
  s->alen += len;
  if (id > s->max_id) s->max_id = id;
  return 0;
}

static int index_names(snap *s, acc_type *a) {
  size_t cap = 16;
  while (cap < a->n * 2)
    cap *= 2;
  a->names = calloc(cap, sizeof *a->names);
  if (!a->names) return -1;
  a->names_mask = cap - 1;
  for (size_t i = 0; i < a->n; i++) {
    const char *nm = s->arena + a->e[i].off + a->e[i].slash + 1;
    size_t h = hash_bytes(nm, (size_t)(a->e[i].len - a->e[i].slash - 1)) & a->names_mask;
    while (a->names[h])
      h = (h + 1) & a->names_mask;
    a->names[h] = (uint32_t)i + 1;
  }
  return 0;
}

static int cmp_entry(const void *x, const void *y) {
  const entry *a = x, *b = y;
  if (a->dl != b->dl) return a->dl > b->dl ? -1 : 1;
  return a->id > b->id ? -1 : a->id < b->id;
}

/* Rows of one page of load() on PostgreSQL, whose client reads a whole result into
 * memory: pages keep that bounded. */
#define LOAD_PAGE 65536

/* One sequential scan of repos (an index-ordered read would look up every row), then
 * each type sorted in memory. PostgreSQL: keyset pages in id order, in the caller's
 * read transaction (one snapshot). */
static int load(snap *s) {
  int pg = db_engine() == DB_ENGINE_POSTGRES, rc = 0, r = DB_DONE;
  int64_t last = 0;
  size_t got;
  do {
    db_stmt *st = pg ? db_prep("SELECT id, type, ns, name, downloads FROM repos WHERE id>?"
                               " ORDER BY id LIMIT 65536")
                     : db_prep("SELECT id, type, ns, name, downloads FROM repos");
    if (!st) return -1;
    if (pg) db_bind_int64(st, 1, last);
    got = 0;
    while (!rc && (r = db_step(st)) == DB_ROW) {
      int type = (int)db_col_int64(st, 1);
      last = db_col_int64(st, 0);
      got++;
      if (type < 0 || type >= NTYPES) continue;
      rc = add_entry(s, &s->t[type], last, db_col_int64(st, 4), db_col_text(st, 2),
                     db_col_text(st, 3));
    }
    if (!rc && r != DB_DONE) rc = -1;
    db_reset(st);
  } while (!rc && pg && got == LOAD_PAGE);
  for (int t = 0; !rc && t < NTYPES; t++) {
    acc_type *a = &s->t[t];
    if (a->n) qsort(a->e, a->n, sizeof *a->e, cmp_entry);
    rc = index_names(s, a);
  }
  if (!rc && !(s->where = malloc(((size_t)s->max_id + 1) * sizeof *s->where))) rc = -1;
  if (!rc) {
    memset(s->where, 0xff, ((size_t)s->max_id + 1) * sizeof *s->where);
    for (int t = 0; t < NTYPES; t++)
      for (size_t i = 0; i < s->t[t].n; i++)
        s->where[s->t[t].e[i].id] = (uint32_t)t << 30 | (uint32_t)i;
  }
  return rc;
}

static int64_t read_seq(void) {
  db_stmt *st = db_prep("SELECT n FROM repo_seq");
  int64_t n = -1;
  if (st && db_step(st) == DB_ROW) n = db_col_int64(st, 0);
  if (st) db_reset(st);
  return n;
}

/* One read transaction: the sequence number and the rows it describes. */
static snap *snap_build(void) {
  snap *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->cards_mu, NULL);
  int own = !db_in_transaction();
  if (own) db_read_begin();
  s->seq = read_seq();
  int rc = s->seq < 0;
  if (!rc) rc = load(s);
  if (own) db_read_end();
  if (rc) {
    snap_free(s);
    return NULL;
  }
  return s;
}

static void install(snap *s) {
  pthread_mutex_lock(&g_mu);
  snap *old = g_cur;
  g_cur = s;
  g_building = 0;
  if (old) {
    old->retired = 1;
    if (!old->refs) snap_free(old);
  }
  pthread_mutex_unlock(&g_mu);
}

static void *build_thread(void *arg) {
  (void)arg;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  snap *s = snap_build();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (s) {
    fprintf(stderr, "modelhub: search index: %zu repos in %.0f ms\n",
            s->t[0].n + s->t[1].n + s->t[2].n,
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    pthread_mutex_lock(&g_mu);
    g_build_interval = took * 20 > 1 ? took * 20 : 1;
    pthread_mutex_unlock(&g_mu);
    install(s);
  } else {
    pthread_mutex_lock(&g_mu);
    g_building = 0;
    pthread_mutex_unlock(&g_mu);
  }
  db_global_shutdown(); /* this thread's connection */
  return NULL;
}

/* Start a background rebuild unless one runs or the last one started less than
 * g_build_interval ago. Caller holds g_mu. */
static void request_build_locked(void) {
  time_t now = time(NULL);
  if (g_building || g_mode != 1 || (double)(now - g_last_build) < g_build_interval) return;
  if (!hub_thread_start("search-index-build", build_thread, NULL, NULL)) {
    g_building = 1;
    g_last_build = now;
  }
}

static void request_build(void) {
  pthread_mutex_lock(&g_mu);
  request_build_locked();
  pthread_mutex_unlock(&g_mu);
}

static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

/* MODELHUB_SEARCH_INDEX=0 turns the index off (comparisons, diagnosis). */
static void read_env(void) {
  const char *e = getenv("MODELHUB_SEARCH_INDEX");
  if (e && !strcmp(e, "0")) g_mode = 0;
}

void db_search_accel_warm(void) {
  pthread_once(&g_env_once, read_env);
  pthread_mutex_lock(&g_mu);
  if (!g_cur) request_build_locked();
  pthread_mutex_unlock(&g_mu);
}

static snap *acquire(void) {
  pthread_once(&g_env_once, read_env);
  pthread_mutex_lock(&g_mu);
  if (!g_cur && g_mode == 2) {
    pthread_mutex_unlock(&g_mu);
    snap *s = snap_build(); /* tests: synchronously, on the caller's connection */
    if (s) install(s);
    pthread_mutex_lock(&g_mu);
  }
  snap *s = g_mode ? g_cur : NULL;
  if (s)
    s->refs++;
  else if (g_mode == 1)
    request_build_locked();
  pthread_mutex_unlock(&g_mu);
  return s;
}

static void release(snap *s) {
  pthread_mutex_lock(&g_mu);
  if (!--s->refs && s->retired) snap_free(s);
  pthread_mutex_unlock(&g_mu);
}

void db_search_accel_reset(void) {
  pthread_mutex_lock(&g_mu);
  snap *s = g_cur;
  g_cur = NULL;
  if (s) {
    s->retired = 1;
    if (!s->refs) snap_free(s);
  }
  pthread_mutex_unlock(&g_mu);
}

/* The ids of a set as a bitmap over ids <= max_id (ids above are new since the snapshot,
 * hence in the changed set). Repos unchanged since the snapshot have the card and tags
 * they had then (a change of either stamps repos.chg), so a set read at any time after
 * the snapshot is exact for them. Cached in the snapshot; when the cache is full the
 * bitmap is the caller's (*own = 1) to free. */
static uint8_t *set_bits(snap *s, int kind, const char *key, int *own) {
  *own = 0;
  pthread_mutex_lock(&s->cards_mu);
  for (id_set *c = s->sets; c; c = c->next)
    if (c->kind == kind && !strcmp(c->key, key)) {
      pthread_mutex_unlock(&s->cards_mu);
      return c->bits;
    }
  pthread_mutex_unlock(&s->cards_mu);
  if (strlen(key) > MAX_TERM) return NULL;
  id_set *c = calloc(1, sizeof *c);
  /* Card phrases: FTS5 takes the quoted phrase, PostgreSQL's query function the term. */
  int pg = db_engine() == DB_ENGINE_POSTGRES;
  char *ph = kind == SET_CARD && !pg ? db__fts_phrase(key) : NULL;
  db_stmt *st = kind != SET_CARD ? db_prep("SELECT repo_id FROM repo_tags WHERE tag=?")
                : pg ? db_prep("SELECT repo_id FROM repo_meta WHERE " DB__PG_CARD_MATCH(""))
                     : db_prep("SELECT rowid FROM repo_fts_card WHERE repo_fts_card MATCH ?");
  if (!c || (kind == SET_CARD && !pg && !ph) || !st ||
      !(c->bits = calloc((size_t)(s->max_id / 8 + 1), 1)))
    goto fail;
  c->kind = kind;
  snprintf(c->key, sizeof c->key, "%s", key);
  db_bind_text(st, 1, ph ? ph : key, -1);
  int r;
  while ((r = db_step(st)) == DB_ROW) {
    int64_t id = db_col_int64(st, 0);
    if (id > 0 && id <= s->max_id) c->bits[id / 8] |= (uint8_t)(1u << (id % 8));
  }
  db_reset(st);
  st = NULL;
  if (r != DB_DONE) goto fail;
  free(ph);
  uint8_t *bits = c->bits;
  /* Published bitmaps live as long as the snapshot (readers hold no lock). */
  pthread_mutex_lock(&s->cards_mu);
  if (s->nsets < MAX_ID_SETS) {
    c->next = s->sets;
    s->sets = c;
    s->nsets++;
    c = NULL;
  }
  pthread_mutex_unlock(&s->cards_mu);
  if (c) {
    *own = 1;
    free(c);
  }
  return bits;
fail:
  if (st) db_reset(st);
  free(ph);
  if (c) free(c->bits);
  free(c);
  return NULL;
}

static int has_bit(const uint8_t *bits, int64_t id) {
  return bits[id / 8] >> (id % 8) & 1;
}

/* ---- downloads moved since the snapshot ---------------------------------------------
 *
 * The downloads flusher changes repos' 30-day downloads every second on a busy hub, so
 * the snapshot's order goes stale quickly. Such a change stamps repos.dchg (migration 6),
 * not repos.chg: the repo's id, card and tags are still the snapshot's, only its place
 * in the order moved. A delta version lists, for one repo_seq value, every repo whose
 * downloads changed since the snapshot with its current downloads, sorted like the
 * snapshot; the walk merges it with the snapshot's array (skipping the moved entries
 * there), so the order stays exact. A version is built from the previous one plus the
 * rows stamped since, once per sequence value (the newest two are kept: a request whose
 * read transaction is a step older than the newest still finds its own). */

typedef struct {
  int64_t id, dl;
  uint32_t pos; /* in the snapshot array of its type */
  uint32_t type;
} moved;

typedef struct dl_delta {
  int64_t seq;
  int refs;         /* under the snapshot's cards_mu */
  moved *m[NTYPES]; /* per type, in (downloads desc, id desc) order */
  size_t n[NTYPES];
  moved *by_id; /* all of them by id, for the current downloads of one repo */
  size_t total;
  uint8_t *bits; /* ids with an entry */
} dl_delta;

static void delta_free(dl_delta *d) {
  for (int t = 0; t < NTYPES; t++)
    free(d->m[t]);
  free(d->by_id);
  free(d->bits);
  free(d);
}

/* Caller holds the snapshot's cards_mu (or is the snapshot's last user). */
static void delta_drop(dl_delta *d) {
  if (--d->refs == 0) delta_free(d);
}

static int cmp_moved_id(const void *x, const void *y) {
  const moved *a = x, *b = y;
  return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_moved_order(const void *x, const void *y) {
  const moved *a = x, *b = y;
  if (a->dl != b->dl) return a->dl > b->dl ? -1 : 1;
  return a->id > b->id ? -1 : a->id < b->id;
}

/* The version for `seq` from `base` (or the snapshot when NULL) and the rows stamped
 * since, read in the caller's transaction. NULL when too many moved (a rebuild is due). */
static dl_delta *delta_build(snap *s, const dl_delta *base, int64_t seq) {
  dl_delta *d = calloc(1, sizeof *d);
  size_t cap = (base ? base->total : 0) + 256, n = 0;
  moved *all = malloc(cap * sizeof *all);
  db_stmt *st = db_engine() == DB_ENGINE_POSTGRES
                    ? db_prep("SELECT id, type, downloads FROM repos WHERE dchg>?")
                    : db_prep("SELECT id, type, downloads FROM repos INDEXED BY repos_dchg"
                              " WHERE dchg>?");
  if (!d || !all || !st || !(d->bits = calloc((size_t)(s->max_id / 8 + 1), 1))) goto fail;
  d->seq = seq;
  d->refs = 1;
  db_bind_int64(st, 1, base ? base->seq : s->seq);
  int r;
  while ((r = db_step(st)) == DB_ROW) {
    int64_t id = db_col_int64(st, 0);
    int type = (int)db_col_int64(st, 1);
    /* A repo new since the snapshot, or of another type now, is in the changed set. */
    if (id <= 0 || id > s->max_id || s->where[id] == UINT32_MAX ||
        (int)(s->where[id] >> 30) != type || has_bit(d->bits, id))
      continue;
    if (n == cap) {
      if (cap >= DELTA_MAX) goto fail;
      moved *p = realloc(all, (cap *= 2) * sizeof *p);
      if (!p) goto fail;
      all = p;
    }
    all[n++] = (moved){id, db_col_int64(st, 2), s->where[id] & 0x3fffffffu, (uint32_t)type};
    d->bits[id / 8] |= (uint8_t)(1u << (id % 8));
  }
  db_reset(st);
  st = NULL;
  if (r != DB_DONE) goto fail;
  for (size_t i = 0; base && i < base->total; i++) {
    int64_t id = base->by_id[i].id;
    if (has_bit(d->bits, id)) continue; /* moved again: the row just read is current */
    if (n == cap) {
      moved *p = realloc(all, (cap *= 2) * sizeof *p);
      if (!p) goto fail;
      all = p;
    }
    all[n++] = base->by_id[i];
    d->bits[id / 8] |= (uint8_t)(1u << (id % 8));
  }
  d->total = n;
  for (size_t i = 0; i < n; i++)
    d->n[all[i].type]++;
  for (int t = 0; t < NTYPES; t++)
    if (d->n[t] && !(d->m[t] = malloc(d->n[t] * sizeof(moved)))) goto fail;
  size_t fill[NTYPES] = {0};
  for (size_t i = 0; i < n; i++)
    d->m[all[i].type][fill[all[i].type]++] = all[i];
  for (int t = 0; t < NTYPES; t++)
    if (d->n[t]) qsort(d->m[t], d->n[t], sizeof(moved), cmp_moved_order);
  qsort(all, n, sizeof *all, cmp_moved_id);
  d->by_id = all;
  return d;
fail:
  if (st) db_reset(st);
  free(all);
  if (d) {
    d->by_id = NULL;
    delta_free(d);
  }
  return NULL;
}

/* The version for the caller's transaction (repo_seq == seq), with a reference to drop;
 * NULL to leave the request to SQL. */
static dl_delta *delta_acquire(snap *s, int64_t seq) {
  pthread_mutex_lock(&s->cards_mu);
  dl_delta *base = NULL;
  for (int k = 0; k < 2; k++) {
    dl_delta *d = k ? s->delta_prev : s->delta;
    if (d && d->seq == seq) {
      d->refs++;
      pthread_mutex_unlock(&s->cards_mu);
      return d;
    }
  }
  if (s->delta && s->delta->seq > seq) { /* this transaction predates both versions */
    pthread_mutex_unlock(&s->cards_mu);
    return NULL;
  }
  if ((base = s->delta)) base->refs++;
  pthread_mutex_unlock(&s->cards_mu);
  dl_delta *d = delta_build(s, base, seq);
  pthread_mutex_lock(&s->cards_mu);
  if (base) delta_drop(base);
  if (d && (!s->delta || s->delta->seq < d->seq)) {
    if (s->delta_prev) delta_drop(s->delta_prev);
    s->delta_prev = s->delta;
    s->delta = d;
    d->refs++;
  }
  pthread_mutex_unlock(&s->cards_mu);
  /* A failed build wants a rebuild, unless the request's work budget stopped it. */
  if ((!d && !db_budget_exceeded()) || (d && d->total > DELTA_REBUILD)) request_build();
  return d;
}

static void delta_release(snap *s, dl_delta *d) {
  pthread_mutex_lock(&s->cards_mu);
  delta_drop(d);
  pthread_mutex_unlock(&s->cards_mu);
}

/* Binary search shared by the snapshot array and the side list: the first position whose
 * (downloads, id) sorts after (dl, id) in descending order (strictly, or with or_equal
 * also (dl, id) itself). key(list, i) gives the i-th key. */
typedef void (*key_fn)(const void *list, size_t i, int64_t *dl, int64_t *id);

static size_t key_after(const void *list, size_t n, key_fn key, int64_t dl, int64_t id,
                        int or_equal) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int64_t mdl, mid_id;
    key(list, mid, &mdl, &mid_id);
    int past = mdl < dl || (mdl == dl && (or_equal ? mid_id <= id : mid_id < id));
    if (past)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static void moved_key(const void *list, size_t i, int64_t *dl, int64_t *id) {
  const moved *m = list;
  *dl = m[i].dl;
  *id = m[i].id;
}

static size_t moved_after(const moved *m, size_t n, int64_t dl, int64_t id, int or_equal) {
  return key_after(m, n, moved_key, dl, id, or_equal);
}

/* ---- walking the snapshot in listing order ----------------------------------------- */

typedef struct {
  int tier;   /* relevance tier; 0 in downloads order */
  int64_t dl; /* downloads */
  int64_t id;
} wkey;

/* a comes after b in the listing's order (relevance: all keys descending). */
static int after(const wkey *a, const wkey *b, int dir) {
  if (a->tier != b->tier) return a->tier < b->tier;
  if (a->dl != b->dl) return dir < 0 ? a->dl < b->dl : a->dl > b->dl;
  return dir < 0 ? a->id < b->id : a->id > b->id;
}

typedef struct {
  const snap *s;
  const acc_type *a;
  const char *term; /* lowercase */
  size_t tlen;
  uint64_t sig;          /* pairs_sig of the term */
  const char *name_part; /* after the first '/' of the term, or the whole term */
  int relevance, dir;
  const uint8_t *card;                     /* NULL: no card matches to consider (yet) */
  const uint8_t *tags[DB_SEARCH_MAX_TAGS]; /* every candidate carries all of these */
  size_t ntags;
  uint8_t *owned[DB_SEARCH_MAX_TAGS + 1]; /* private bitmaps (a full set cache) to free */
  size_t nowned;
  int card_applies; /* the term has a word character: cards can match */
  const int64_t *changed;
  size_t nchanged;
  const dl_delta *delta; /* downloads moved since the snapshot */
  const moved *side;     /* this type's moved entries, in snapshot order */
  size_t nside;
  /* state */
  int tier;      /* relevance: 2, 1, 0; -1 done */
  size_t *exact; /* tier 2 positions, in listing order */
  int64_t *exact_dl;
  size_t nexact, xi;
  /* Walk positions in the array (b) and the side list (m). Descending walks: the next
   * index. Ascending (downloads, dir > 0): how many are left, taken from the end. */
  size_t b, m;
  size_t bstart[3], mstart[3]; /* relevance: where tiers 1 and 0 begin (after the cursor) */
  size_t scanned;
} walker;

static int is_changed(const walker *w, int64_t id) {
  size_t lo = 0, hi = w->nchanged;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (w->changed[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < w->nchanged && w->changed[lo] == id;
}

static int is_moved(const walker *w, int64_t id) {
  return w->delta && id <= w->s->max_id && has_bit(w->delta->bits, id);
}

/* Current downloads of the entry at array position i. */
static int64_t dl_now(const walker *w, size_t i) {
  int64_t id = w->a->e[i].id;
  if (!is_moved(w, id)) return w->a->e[i].dl;
  moved key = {.id = id};
  const moved *m = bsearch(&key, w->delta->by_id, w->delta->total, sizeof key, cmp_moved_id);
  return m ? m->dl : w->a->e[i].dl;
}

static const char *str_at(const walker *w, size_t i) {
  return w->s->arena + w->a->e[i].off;
}

/* memchr for the first byte then memcmp: glibc's memmem prepares its tables on every
 * call, which costs more than the search in a 30-byte id. */
static int id_match(const walker *w, size_t i) {
  if ((w->a->e[i].sig & w->sig) != w->sig) return 0;
  const char *p = str_at(w, i), *end = p + w->a->e[i].len - w->tlen + 1;
  if (w->a->e[i].len < w->tlen) return 0;
  while (p < end && (p = memchr(p, w->term[0], (size_t)(end - p)))) {
    if (!memcmp(p + 1, w->term + 1, w->tlen - 1)) return 1;
    p++;
  }
  return 0;
}

/* Relevance tier 2: the name or the whole id equals the term. */
static int exact_match(const walker *w, size_t i) {
  const char *p = str_at(w, i);
  size_t len = w->a->e[i].len, sl = w->a->e[i].slash;
  if (len - sl - 1 == w->tlen && !memcmp(p + sl + 1, w->term, w->tlen)) return 1;
  return len == w->tlen && !memcmp(p, w->term, len);
}

static int card_match(const walker *w, size_t i) {
  int64_t id = w->a->e[i].id;
  return w->card && id <= w->s->max_id && has_bit(w->card, id);
}

/* A set's bitmap for the walker, which frees it at the end if it is private. */
static const uint8_t *walker_set(walker *w, snap *s, int kind, const char *key) {
  int own = 0;
  uint8_t *bits = set_bits(s, kind, key, &own);
  if (bits && own) w->owned[w->nowned++] = bits;
  return bits;
}

/* The filter tags, checked here so that SQL sees only candidates that pass them. */
static int tags_match(const walker *w, size_t i) {
  int64_t id = w->a->e[i].id;
  for (size_t t = 0; t < w->ntags; t++)
    if (id > w->s->max_id || !has_bit(w->tags[t], id)) return 0;
  return 1;
}

static void entry_key(const void *list, size_t i, int64_t *dl, int64_t *id) {
  const acc_type *a = list;
  *dl = a->e[i].dl;
  *id = a->e[i].id;
}

/* key_after over a type's snapshot array. */
static size_t first_after(const acc_type *a, int64_t dl, int64_t id, int or_equal) {
  return key_after(a, a->n, entry_key, dl, id, or_equal);
}

typedef struct {
  int64_t dl, id;
  size_t pos;
} ex_key;

static int cmp_ex(const void *x, const void *y) { /* listing order: descending */
  const ex_key *a = x, *b = y;
  if (a->dl != b->dl) return a->dl > b->dl ? -1 : 1;
  return a->id > b->id ? -1 : a->id < b->id;
}

/* Tier 2 candidates through the name hash: names equal to the term, or to its part after
 * the '/' (then the whole id must equal it), in listing order by current downloads. */
static int collect_exact(walker *w) {
  const acc_type *a = w->a;
  size_t cap = 16, n = 0;
  ex_key *k = malloc(cap * sizeof *k);
  if (!k) return -1;
  const char *nm = w->name_part;
  size_t nl = w->tlen - (size_t)(nm - w->term);
  size_t h = hash_bytes(nm, nl) & a->names_mask;
  for (; a->names[h]; h = (h + 1) & a->names_mask) {
    size_t i = a->names[h] - 1;
    if (!exact_match(w, i) || !tags_match(w, i) || is_changed(w, a->e[i].id)) continue;
    if (n == cap) {
      ex_key *p = realloc(k, (cap *= 2) * sizeof *p);
      if (!p) {
        free(k);
        return -1;
      }
      k = p;
    }
    k[n++] = (ex_key){dl_now(w, i), a->e[i].id, i};
  }
  qsort(k, n, sizeof *k, cmp_ex);
  w->exact = malloc((n ? n : 1) * sizeof *w->exact);
  w->exact_dl = malloc((n ? n : 1) * sizeof *w->exact_dl);
  if (!w->exact || !w->exact_dl) {
    free(k);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    w->exact[i] = k[i].pos;
    w->exact_dl[i] = k[i].dl;
  }
  w->nexact = n;
  free(k);
  return 0;
}

static int walker_init(walker *w, const db_search_cursor *c) {
  const acc_type *a = w->a;
  if (w->delta) {
    int t = (int)(a - w->s->t);
    w->side = w->delta->m[t];
    w->nside = w->delta->n[t];
  }
  if (!w->relevance) {
    if (w->dir < 0) {
      w->b = c ? first_after(a, c->ival, c->id, 0) : 0;
      w->m = c ? moved_after(w->side, w->nside, c->ival, c->id, 0) : 0;
    } else { /* ascending: walk both lists backwards from just before the cursor */
      w->b = c ? first_after(a, c->ival, c->id, 1) : a->n;
      w->m = c ? moved_after(w->side, w->nside, c->ival, c->id, 1) : w->nside;
    }
    w->tier = 0;
    return 0;
  }
  const char *slash = memchr(w->term, '/', w->tlen);
  w->name_part = slash ? slash + 1 : w->term;
  if (collect_exact(w)) return -1;
  int ct = c ? c->tier : 3;
  w->tier = ct >= 2 ? 2 : ct;
  if (ct == 2)
    while (w->xi < w->nexact) {
      int64_t dl = w->exact_dl[w->xi], id = a->e[w->exact[w->xi]].id;
      if (dl < c->ival || (dl == c->ival && id < c->id)) break;
      w->xi++;
    }
  size_t at = c && ct <= 1 ? first_after(a, c->ival, c->id, 0) : 0;
  size_t mat = c && ct <= 1 ? moved_after(w->side, w->nside, c->ival, c->id, 0) : 0;
  w->bstart[1] = ct == 1 ? at : 0;
  w->mstart[1] = ct == 1 ? mat : 0;
  w->bstart[0] = ct == 0 ? at : 0;
  w->mstart[0] = ct == 0 ? mat : 0;
  if (w->tier < 2) {
    w->b = w->bstart[w->tier];
    w->m = w->mstart[w->tier];
  }
  return 0;
}

/* Next entry in listing order, merging the array (minus moved entries) with the side
 * list of moved ones: 0 when both are exhausted. */
static int walk_step(walker *w, size_t *out, int64_t *dl) {
  const acc_type *a = w->a;
  if (w->dir < 0 || w->relevance) {
    while (w->b < a->n && is_moved(w, a->e[w->b].id))
      w->b++;
    int hb = w->b < a->n, hm = w->m < w->nside;
    if (!hb && !hm) return 0;
    const entry *e = hb ? &a->e[w->b] : NULL;
    const moved *mv = hm ? &w->side[w->m] : NULL;
    if (mv && (!e || mv->dl > e->dl || (mv->dl == e->dl && mv->id > e->id))) {
      *out = mv->pos;
      *dl = mv->dl;
      w->m++;
    } else {
      *out = w->b;
      *dl = e->dl;
      w->b++;
    }
    return 1;
  }
  while (w->b > 0 && is_moved(w, a->e[w->b - 1].id))
    w->b--;
  int hb = w->b > 0, hm = w->m > 0;
  if (!hb && !hm) return 0;
  const entry *e = hb ? &a->e[w->b - 1] : NULL;
  const moved *mv = hm ? &w->side[w->m - 1] : NULL;
  if (mv && (!e || mv->dl < e->dl || (mv->dl == e->dl && mv->id < e->id))) {
    *out = mv->pos;
    *dl = mv->dl;
    w->m--;
  } else {
    *out = w->b - 1;
    *dl = e->dl;
    w->b--;
  }
  return 1;
}

enum { W_DONE = 0, W_ENTRY = 1, W_NEED_CARD = 2, W_BUDGET = 3 };

/* Next unchanged match in listing order: *out is its array position, *k its key. */
static int walker_next(walker *w, size_t *out, wkey *k) {
  const acc_type *a = w->a;
  size_t i;
  int64_t dl;
  if (!w->relevance) {
    while (walk_step(w, &i, &dl)) {
      if (++w->scanned > WALK_BUDGET) return W_BUDGET;
      if ((id_match(w, i) || card_match(w, i)) && tags_match(w, i) && !is_changed(w, a->e[i].id)) {
        *out = i;
        *k = (wkey){0, dl, a->e[i].id};
        return W_ENTRY;
      }
    }
    return W_DONE;
  }
  while (w->tier >= 0) {
    if (w->tier == 2) {
      if (w->xi < w->nexact) {
        i = w->exact[w->xi];
        *out = i;
        *k = (wkey){2, w->exact_dl[w->xi], a->e[i].id};
        w->xi++;
        return W_ENTRY;
      }
      w->tier = 1;
      w->b = w->bstart[1];
      w->m = w->mstart[1];
      continue;
    }
    if (w->tier == 0 && !w->card) {
      if (!w->card_applies) return W_DONE;
      return W_NEED_CARD;
    }
    while (walk_step(w, &i, &dl)) {
      if (++w->scanned > WALK_BUDGET) return W_BUDGET;
      int hit =
          w->tier == 1 ? id_match(w, i) && !exact_match(w, i) : card_match(w, i) && !id_match(w, i);
      if (hit && tags_match(w, i) && !is_changed(w, a->e[i].id)) {
        *out = i;
        *k = (wkey){w->tier, dl, a->e[i].id};
        return W_ENTRY;
      }
    }
    if (w->tier-- == 0) break;
    w->b = w->bstart[0];
    w->m = w->mstart[0];
  }
  w->tier = -1;
  return W_DONE;
}

/* ---- answering a listing ------------------------------------------------------------- */

static int eligible(const db_search_query *q, int sort) {
  if (q->nsearch != 1 || q->author || q->type < 0 || q->type >= NTYPES) return 0;
  if (sort != DB_SORT_RELEVANCE && sort != DB_SORT_DOWNLOADS) return 0;
  size_t n = strlen(q->search[0]);
  if (!n || n > MAX_TERM) return 0;
  for (const char *p = q->search[0]; *p; p++)
    if ((unsigned char)*p >= 0x80) return 0; /* SQL lower() and FTS5 folding agree on ASCII */
  return 1;
}

static int has_word_char(const char *s) {
  for (; *s; s++)
    if (isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80) return 1;
  return 0;
}

/* Ids changed since the snapshot (sorted), or -1 when more than MAX_CHANGED. */
static int read_changed(int64_t seq, int64_t *out, size_t *n) {
  db_stmt *st = db_engine() == DB_ENGINE_POSTGRES
                    ? db_prep("SELECT id FROM (SELECT id FROM repos WHERE chg>? LIMIT ?) t"
                              " ORDER BY id")
                    : db_prep("SELECT id FROM (SELECT id FROM repos INDEXED BY repos_chg"
                              " WHERE chg>? LIMIT ?) ORDER BY id");
  if (!st) return -1;
  db_bind_int64(st, 1, seq);
  db_bind_int64(st, 2, MAX_CHANGED + 1);
  *n = 0;
  int r;
  while ((r = db_step(st)) == DB_ROW && *n <= MAX_CHANGED)
    out[(*n)++] = db_col_int64(st, 0);
  db_reset(st);
  return r == DB_DONE || r == DB_ROW ? 0 : -1;
}

static char *ids_json(const int64_t *ids, size_t n) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_putc(&b, '[');
  for (size_t i = 0; i < n; i++)
    hub_buf_printf(&b, i ? ",%lld" : "%lld", (long long)ids[i]);
  hub_buf_putc(&b, ']');
  if (b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  return hub_buf_detach(&b);
}

typedef struct {
  int64_t *ids;
  size_t n, cap;
} idvec;

static int idvec_push(idvec *v, int64_t id) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 64;
    int64_t *p = realloc(v->ids, cap * sizeof *p);
    if (!p) return -1;
    v->ids = p;
    v->cap = cap;
  }
  v->ids[v->n++] = id;
  return 0;
}

/* Collect candidates until SQL's first limit + 1 rows among them are provably the
 * listing's (see the top of the file). Fills page with their ids, in order. */
static int find_page(snap *s, walker *w, const db_search_query *q, int sort, int dir,
                     const char *changed_json, idvec *page) {
  idvec cand = {0};
  db__key *keys = malloc((q->limit + 1) * sizeof *keys);
  size_t want = (q->limit + 1) + (q->limit + 1) / 4 + 4;
  /* Tags are checked in the walk; these filters only by SQL, on more candidates. */
  if (q->pipeline_tag || q->min_params >= 0 || q->max_params >= 0) want *= 8;
  wkey last = {3, 0, 0};
  int done = 0, rc = keys ? 0 : -1;
  while (!rc) {
    while (!done && cand.n < want) {
      size_t i;
      int r = walker_next(w, &i, &last);
      if (r == W_DONE)
        done = 1;
      else if (r == W_BUDGET)
        rc = DB_ACCEL_DECLINED;
      else if (r == W_NEED_CARD && !(w->card = walker_set(w, s, SET_CARD, q->search[0])))
        rc = DB_ACCEL_DECLINED;
      else if (r == W_ENTRY && idvec_push(&cand, w->a->e[i].id))
        rc = -1;
      if (rc) break;
    }
    if (rc) break;
    char *known = ids_json(cand.ids, cand.n);
    db__cands c = {known, changed_json};
    size_t n = 0;
    rc = known ? db__search_keys(q, sort, dir, &c, keys, &n) : -1;
    free(known);
    if (rc) break;
    wkey lastrow = n ? (wkey){sort == DB_SORT_RELEVANCE ? keys[n - 1].tier : 0, keys[n - 1].skey,
                              keys[n - 1].id}
                     : last;
    if (done || (n == q->limit + 1 && !after(&lastrow, &last, dir))) {
      for (size_t k = 0; k < n && !rc; k++)
        rc = idvec_push(page, keys[k].id);
      break;
    }
    if (cand.n >= MAX_CANDIDATES) rc = DB_ACCEL_DECLINED;
    want = want * 4 > MAX_CANDIDATES ? MAX_CANDIDATES : want * 4;
  }
  free(cand.ids);
  free(keys);
  return rc;
}

/* Whether walking the snapshot suits the term: a lazy FTS5 scan of its first PROBE id
 * matches (cheap when the term is common) estimates their density. A rarer term is left
 * to the SQL plan, which drives from its few matches. Terms under a trigram are common. */
static int common_term_probe(const db_search_query *q);

/* The estimate depends on the catalog, not the request: remembered per snapshot. */
static int common_term(snap *s, const db_search_query *q) {
  const char *term = q->search[0];
  if (strlen(term) < 3) return 1;
  if (strlen(term) > MAX_TERM) return 0;
  pthread_mutex_lock(&s->cards_mu);
  for (int i = 0; i < s->nnotes; i++)
    if (!strcmp(s->notes[i].term, term)) {
      int common = s->notes[i].common;
      pthread_mutex_unlock(&s->cards_mu);
      return common;
    }
  pthread_mutex_unlock(&s->cards_mu);
  int common = common_term_probe(q);
  if (db_budget_exceeded()) return 0; /* interrupted: not an estimate to remember */
  pthread_mutex_lock(&s->cards_mu);
  if (s->nnotes < MAX_TERM_NOTES) {
    snprintf(s->notes[s->nnotes].term, sizeof s->notes[0].term, "%s", term);
    s->notes[s->nnotes++].common = common;
  }
  pthread_mutex_unlock(&s->cards_mu);
  return common;
}

/* PostgreSQL reads the first matches of the trigram LIKE in physical order (about id
 * order: repos are appended), which serves the same estimate. */
static int common_term_probe(const db_search_query *q) {
  const char *term = q->search[0];
  int pg = db_engine() == DB_ENGINE_POSTGRES;
  char *ph = pg ? db__pg_id_like(term) : db__fts_phrase(term);
  db_stmt *st =
      pg ? db_prep("SELECT count(*), min(id), max(id) FROM (SELECT id FROM repos WHERE " DB__PG_ID(
               "") " LIKE ? ESCAPE '\\' LIMIT ?) t")
         : db_prep("SELECT count(*), min(rowid), max(rowid) FROM (SELECT rowid FROM"
                   " repo_fts_id WHERE repo_fts_id MATCH ? LIMIT ?)");
  if (!ph || !st) {
    free(ph);
    return 0;
  }
  db_bind_text(st, 1, ph, -1);
  db_bind_int64(st, 2, PROBE);
  int ok = 0;
  if (db_step(st) == DB_ROW && (int)db_col_int64(st, 0) == PROBE) {
    double span = (double)(db_col_int64(st, 2) - db_col_int64(st, 1) + 1);
    ok = (double)(q->limit + 1) * span / PROBE <= WALK_BUDGET / 2;
  }
  db_reset(st);
  free(ph);
  return ok;
}

static int answer(snap *s, const db_search_query *q, int sort, int dir, db_search_cb cb,
                  void *payload, db_search_cursor *out_next, int *out_more, int *handled) {
  int64_t changed[MAX_CHANGED + 1];
  size_t nchanged = 0;
  int64_t seq = read_seq();
  if (seq < s->seq || read_changed(s->seq, changed, &nchanged)) return DB_ACCEL_DECLINED;
  if (nchanged >= REBUILD_CHANGED) request_build();
  if (nchanged > MAX_CHANGED || !common_term(s, q)) return DB_ACCEL_DECLINED;
  dl_delta *delta = delta_acquire(s, seq);
  if (!delta) return DB_ACCEL_DECLINED;
  char term[MAX_TERM + 1];
  size_t tlen = strlen(q->search[0]);
  for (size_t i = 0; i <= tlen; i++)
    term[i] = (char)tolower((unsigned char)q->search[0][i]);
  walker w = {.s = s,
              .a = &s->t[q->type],
              .term = term,
              .tlen = tlen,
              .sig = pairs_sig(term, tlen),
              .relevance = sort == DB_SORT_RELEVANCE,
              .dir = dir,
              .card_applies = has_word_char(term),
              .changed = changed,
              .nchanged = nchanged,
              .delta = delta};
  int rc = 0;
  for (size_t t = 0; t < q->ntags && !rc; t++)
    if (!(w.tags[w.ntags++] = walker_set(&w, s, SET_TAG, q->tags[t]))) rc = DB_ACCEL_DECLINED;
  if (!rc && walker_init(&w, q->after)) rc = -1;
  /* Downloads order interleaves card-only matches: they are needed from the start. */
  if (!rc && !w.relevance && w.card_applies &&
      !(w.card = walker_set(&w, s, SET_CARD, q->search[0])))
    rc = DB_ACCEL_DECLINED;
  char *changed_json = rc ? NULL : ids_json(changed, nchanged);
  idvec page = {0};
  if (!rc) rc = changed_json ? find_page(s, &w, q, sort, dir, changed_json, &page) : -1;
  if (!rc) {
    *handled = 1; /* rows reach cb from here on: no falling back after this */
    char *known = ids_json(page.ids, page.n);
    db__cands c = {known, "[]"};
    rc = known ? db__search_rows(q, sort, dir, &c, cb, payload, out_next, out_more) : -1;
    free(known);
  }
  free(page.ids);
  free(changed_json);
  free(w.exact);
  free(w.exact_dl);
  for (size_t i = 0; i < w.nowned; i++)
    free(w.owned[i]);
  delta_release(s, delta);
  return rc;
}

int db__accel_search(const db_search_query *q, int sort, int dir, db_search_cb cb, void *payload,
                     db_search_cursor *out_next, int *out_more, int *handled) {
  *handled = 0;
  if (!eligible(q, sort)) return DB_ACCEL_DECLINED;
  snap *s = acquire();
  if (!s) return DB_ACCEL_DECLINED;
  /* Sequence number, changed set, candidates and rows from one snapshot. */
  int own = !db_in_transaction();
  if (own) db_read_begin();
  int rc = answer(s, q, sort, dir, cb, payload, out_next, out_more, handled);
  if (own) db_read_end();
  pthread_mutex_lock(&g_mu);
  g_served += *handled;
  pthread_mutex_unlock(&g_mu);
  release(s);
  return rc;
}
