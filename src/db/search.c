/* Discovery queries (docs/search.md): listings with keyset cursors, derived metadata,
 * popularity counters, likes, lineage. */
#include "db/search.h"
#include "db/internal.h"
#include "db/search_pg.h"
#include "db/stmt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/error.h"

/* ---- sort names, cursors, parameter counts ------------------------------------------ */

static const struct {
  const char *name;
  int sort;
} SORTS[] = {
    {"trendingScore", DB_SORT_TRENDING},
    {"trending", DB_SORT_TRENDING},
    {"downloads", DB_SORT_DOWNLOADS},
    {"likes", DB_SORT_LIKES},
    {"likes30d", DB_SORT_LIKES},
    {"createdAt", DB_SORT_CREATED},
    {"lastModified", DB_SORT_MODIFIED},
    {"id", DB_SORT_ID},
    {"modelId", DB_SORT_ID},
    {"num_parameters", DB_SORT_PARAMS},
};

int db_sort_parse(const char *name, int *out) {
  for (size_t i = 0; name && i < sizeof SORTS / sizeof SORTS[0]; i++)
    if (!strcmp(name, SORTS[i].name)) {
      *out = SORTS[i].sort;
      return 0;
    }
  return hub_error_set(HUB_EINVALID,
                       "Invalid sort '%s' (downloads, likes, lastModified, createdAt, "
                       "trendingScore, id, num_parameters)",
                       name ? name : "");
}

static const char B64U[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void db_cursor_encode(const db_search_cursor *c, char *out) {
  char raw[160];
  int n = snprintf(raw, sizeof raw, "v1:%d:%d:%d:%lld:%.17g:%lld", c->sort, c->dir, c->tier,
                   (long long)c->ival, c->dval, (long long)c->id);
  size_t j = 0;
  for (int i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)raw[i] << 16;
    if (i + 1 < n) v |= (unsigned char)raw[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)raw[i + 2];
    out[j++] = B64U[(v >> 18) & 63];
    out[j++] = B64U[(v >> 12) & 63];
    if (i + 1 < n) out[j++] = B64U[(v >> 6) & 63];
    if (i + 2 < n) out[j++] = B64U[v & 63];
  }
  out[j] = 0;
}

int db_cursor_decode(const char *text, db_search_cursor *out) {
  char raw[160];
  size_t len = text ? strlen(text) : 0, j = 0;
  unsigned acc = 0;
  int bits = 0;
  if (!len || len > DB_CURSOR_MAX) goto bad;
  for (size_t i = 0; i < len; i++) {
    const char *p = strchr(B64U, text[i]);
    if (!p || !text[i]) goto bad;
    acc = (acc << 6) | (unsigned)(p - B64U);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (j >= sizeof raw - 1) goto bad;
      raw[j++] = (char)((acc >> bits) & 0xff);
    }
  }
  raw[j] = 0;
  if (strlen(raw) != j) goto bad;
  db_search_cursor c;
  memset(&c, 0, sizeof c);
  long long iv, id;
  int used = 0;
  if (sscanf(raw, "v1:%d:%d:%d:%lld:%lf:%lld%n", &c.sort, &c.dir, &c.tier, &iv, &c.dval, &id,
             &used) != 6 ||
      (size_t)used != j || c.sort < DB_SORT_TRENDING || c.sort > DB_SORT_RELEVANCE ||
      (c.dir != 1 && c.dir != -1) || id <= 0 || !isfinite(c.dval))
    goto bad;
  c.ival = iv;
  c.id = id;
  *out = c;
  return 0;
bad:
  return hub_error_set(HUB_EINVALID, "Invalid cursor");
}

static int parse_count(const char *s, size_t len, int64_t *out) {
  char buf[48];
  if (!len || len >= sizeof buf) return HUB_EINVALID;
  memcpy(buf, s, len);
  buf[len] = 0;
  double mult = 1;
  char last = (char)tolower((unsigned char)buf[len - 1]);
  if (last == 'k' || last == 'm' || last == 'b' || last == 't') {
    mult = last == 'k' ? 1e3 : last == 'm' ? 1e6 : last == 'b' ? 1e9 : 1e12;
    buf[--len] = 0;
  }
  if (!len || strspn(buf, "0123456789.") != len || strchr(buf, '.') != strrchr(buf, '.') ||
      buf[0] == '.')
    return HUB_EINVALID;
  double v = strtod(buf, NULL) * mult;
  if (!(v >= 0) || v > 9.0e18) return HUB_EINVALID;
  *out = (int64_t)llround(v);
  return 0;
}

int db_num_params_parse(const char *text, int64_t *out_min, int64_t *out_max) {
  int64_t mn = -1, mx = -1;
  const char *p = text ? text : "";
  if (!*p) goto bad;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n && *p == ' ')
      p++, n--;
    while (n && p[n - 1] == ' ')
      n--;
    int64_t v;
    if (n > 4 && !strncasecmp(p, "min:", 4)) {
      if (parse_count(p + 4, n - 4, &v)) goto bad;
      mn = v;
    } else if (n > 4 && !strncasecmp(p, "max:", 4)) {
      if (parse_count(p + 4, n - 4, &v)) goto bad;
      mx = v;
    } else if (!parse_count(p, n, &v) && mn < 0) {
      mn = v;
    } else {
      goto bad;
    }
    p += n;
    while (*p == ' ')
      p++;
    if (*p == ',') {
      p++;
      if (!*p) goto bad;
    }
  }
  if (mn >= 0 && mx >= 0 && mn > mx) goto bad;
  *out_min = mn;
  *out_max = mx;
  return 0;
bad:
  return hub_error_set(HUB_EINVALID,
                       "Invalid num_parameters '%s' (e.g. min:1B,max:10B; suffixes K, M, B, T)",
                       text ? text : "");
}

/* ---- listing ---------------------------------------------------------------------- */

/* The listing SQL is one builder for both engines. Where they differ (FTS5 vs pg_trgm and
 * tsvector, INDEXED BY, CROSS JOIN as a join-order hint, json_each vs arrays) the
 * fragment is chosen here by engine; SQLite's text and plans are the ones it always had. */
static int is_pg(void) {
  return db_engine() == DB_ENGINE_POSTGRES;
}

/* SQLite's CROSS JOIN keeps the left table the outer loop; PostgreSQL has no such hint
 * (and no ON for CROSS JOIN): its planner orders joins itself. */
static const char *cross_join(void) {
  return is_pg() ? " JOIN " : " CROSS JOIN ";
}

/* Below this many candidates a filter (search term, tag) drives the query: its rows are
 * fetched and sorted. Above it, the sort index is walked and the filter checked per row,
 * which finds a page quickly because matches are then dense. */
#define DRIVE_MAX 4000

enum { B_INT, B_DBL, B_TEXT };
typedef struct {
  int kind;
  int64_t i;
  double d;
  char *s; /* owned */
} bindv;

/* Bound values of one listing: search terms, tags, cursor, plus two per scope of a
 * fine-grained viewer (AUTH_MAX_SCOPES = 16). */
#define QB_MAX_BINDS 128
typedef struct {
  hub_buf sql;
  bindv v[QB_MAX_BINDS];
  int n;
  int failed;
} qb;

static void qb_int(qb *q, int64_t i) {
  if (q->n >= QB_MAX_BINDS) {
    q->failed = 1;
    return;
  }
  q->v[q->n++] = (bindv){B_INT, i, 0, NULL};
}
static void qb_dbl(qb *q, double d) {
  if (q->n >= QB_MAX_BINDS) {
    q->failed = 1;
    return;
  }
  q->v[q->n++] = (bindv){B_DBL, 0, d, NULL};
}
static void qb_text(qb *q, const char *s) {
  char *c = strdup(s);
  if (!c || q->n >= QB_MAX_BINDS) {
    free(c);
    q->failed = 1;
    return;
  }
  q->v[q->n++] = (bindv){B_TEXT, 0, 0, c};
}
/* A JSON array of ids ("[1,2]", as accel.c builds them) bound as a PostgreSQL bigint[]
 * literal ("{1,2}"). */
static void qb_id_array(qb *q, const char *json) {
  size_t len = strlen(json);
  qb_text(q, json);
  if (q->failed || len < 2 || json[0] != '[' || json[len - 1] != ']') {
    q->failed = 1;
    return;
  }
  q->v[q->n - 1].s[0] = '{';
  q->v[q->n - 1].s[len - 1] = '}';
}
static void qb_dispose(qb *q) {
  hub_buf_dispose(&q->sql);
  for (int i = 0; i < q->n; i++)
    free(q->v[i].s);
}

static int qb_prepare(qb *q, db_stmt **out) {
  if (q->failed || q->sql.failed) return hub_error_set(HUB_ERROR, "out of memory");
  if (!(*out = db_prep_text(q->sql.ptr))) return HUB_ERROR;
  for (int i = 0; i < q->n; i++) {
    if (q->v[i].kind == B_INT)
      db_bind_int64(*out, i + 1, q->v[i].i);
    else if (q->v[i].kind == B_DBL)
      db_bind_double(*out, i + 1, q->v[i].d);
    else
      db_bind_text(*out, i + 1, q->v[i].s, -1);
  }
  return 0;
}

/* FTS5 phrase for the trigram id index: the whole term, quotes doubled. */
char *db__fts_phrase(const char *term) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_putc(&b, '"');
  for (const char *p = term; *p; p++) {
    if (*p == '"') hub_buf_putc(&b, '"');
    hub_buf_putc(&b, *p);
  }
  hub_buf_putc(&b, '"');
  if (b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  return hub_buf_detach(&b);
}

static int has_word_char(const char *s) {
  for (; *s; s++)
    if (isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80) return 1;
  return 0;
}

/* LIKE pattern %term% with \ escapes (terms shorter than a trigram). */
static char *like_pattern(const char *term) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_putc(&b, '%');
  for (const char *p = term; *p; p++) {
    if (*p == '%' || *p == '_' || *p == '\\') hub_buf_putc(&b, '\\');
    hub_buf_putc(&b, *p);
  }
  hub_buf_putc(&b, '%');
  if (b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  return hub_buf_detach(&b);
}

/* Candidate ids of one search term: id substring (trigram) UNION card full text. The
 * column is named rowid on both engines (callers join on c.rowid). */
static void add_term_set(qb *q, const char *term) {
  if (is_pg()) {
    char *lk = db__pg_id_like(term);
    if (!lk) q->failed = 1;
    hub_buf_puts(&q->sql,
                 "SELECT id AS rowid FROM repos WHERE " DB__PG_ID("") " LIKE ? ESCAPE '\\'");
    qb_text(q, lk ? lk : "");
    free(lk);
    if (has_word_char(term)) {
      hub_buf_puts(&q->sql, " UNION SELECT repo_id FROM repo_meta WHERE " DB__PG_CARD_MATCH(""));
      qb_text(q, term);
    }
    return;
  }
  char *ph = db__fts_phrase(term);
  if (!ph) {
    q->failed = 1;
    return;
  }
  if (strlen(term) >= 3) {
    hub_buf_puts(&q->sql, "SELECT rowid FROM repo_fts_id WHERE repo_fts_id MATCH ?");
    qb_text(q, ph);
  } else {
    char *lk = like_pattern(term);
    if (!lk) q->failed = 1;
    hub_buf_puts(&q->sql, "SELECT rowid FROM repo_fts_id WHERE name LIKE ? ESCAPE '\\'");
    qb_text(q, lk ? lk : "");
    free(lk);
  }
  if (has_word_char(term)) {
    hub_buf_puts(&q->sql, " UNION SELECT rowid FROM repo_fts_card WHERE repo_fts_card MATCH ?");
    qb_text(q, ph);
  }
  free(ph);
}

/* Steps st: 1 with a row, 0 when done; on an error 0 with *rc set. */
static int next_row(db_stmt *st, int *rc) {
  int s = db_step(st);
  if (s == DB_ROW) return 1;
  if (s != DB_DONE) *rc = s < 0 ? s : hub_error_set(HUB_ERROR, "sql: step");
  return 0;
}

/* How many candidates (capped at DRIVE_MAX) a term set or a tag yields. */
static int64_t probe(const char *term, const char *tag) {
  qb q = {HUB_BUF_INIT, {{0}}, 0, 0};
  hub_buf_puts(&q.sql, "SELECT count(*) FROM (");
  if (term)
    add_term_set(&q, term);
  else {
    hub_buf_puts(&q.sql, "SELECT repo_id FROM repo_tags WHERE tag=?");
    qb_text(&q, tag);
  }
  hub_buf_printf(&q.sql, " LIMIT %d) t", DRIVE_MAX);
  db_stmt *st = NULL;
  int64_t n = DRIVE_MAX;
  if (!qb_prepare(&q, &st) && db_step(st) == DB_ROW) n = db_col_int64(st, 0);
  db_prep_text_done(st);
  qb_dispose(&q);
  return n;
}

/* How many repos (capped at DRIVE_MAX) have this pipeline_tag. */
static int64_t probe_pipeline(const char *task) {
  db_stmt *st = is_pg() ? db_prep("SELECT count(*) FROM (SELECT 1 FROM repo_meta WHERE"
                                  " pipeline_tag=? LIMIT ?) t")
                        : db_prep("SELECT count(*) FROM (SELECT 1 FROM repo_meta INDEXED BY"
                                  " repo_meta_pipeline WHERE pipeline_tag=? LIMIT ?)");
  int64_t n = DRIVE_MAX;
  if (!st) return n;
  db_bind_text(st, 1, task, -1);
  db_bind_int64(st, 2, DRIVE_MAX);
  if (db_step(st) == DB_ROW) n = db_col_int64(st, 0);
  db_reset(st);
  return n;
}

static int64_t probe_author(int type, const char *author) {
  db_stmt *st = db_prep("SELECT count(*) FROM (SELECT 1 FROM repos WHERE type=? AND ns=?"
                        " LIMIT 4000) t");
  int64_t n = 0;
  if (!st) return 0;
  db_bind_int64(st, 1, type);
  db_bind_text(st, 2, author, -1);
  if (db_step(st) == DB_ROW) n = db_col_int64(st, 0);
  db_reset(st);
  return n;
}

static const char *sort_expr(int sort) {
  switch (sort) {
  case DB_SORT_DOWNLOADS:
    return "r.downloads";
  case DB_SORT_LIKES:
    return "r.likes";
  case DB_SORT_CREATED:
    return "r.created_ms";
  case DB_SORT_MODIFIED:
    return "r.last_modified_ms";
  case DB_SORT_PARAMS:
    return "coalesce(m.num_params, 0)";
  case DB_SORT_TRENDING:
    return "r.trending";
  default:
    return "r.downloads";
  }
}

static void add_visibility(qb *q, const db_search_query *s) {
  int64_t viewer = s->viewer_id;
  if (s->viewer_admin) return;
  if (!viewer) {
    hub_buf_puts(&q->sql, " AND r.private=0");
    return;
  }
  hub_buf_puts(&q->sql, " AND (r.private=0 OR ((r.owner_id=? OR r.owner_id IN"
                        " (SELECT org_id FROM memberships WHERE user_id=?))");
  qb_int(q, viewer);
  qb_int(q, viewer);
  if (s->viewer_scoped) {
    /* A fine-grained token sees only the private repos inside its scopes. */
    hub_buf_puts(&q->sql, is_pg() ? " AND (1=0" : " AND (0"); /* no int as boolean there */
    for (size_t i = 0; i < s->nviewer_scopes; i++) {
      const db_search_scope *sc = &s->viewer_scopes[i];
      if (sc->type < 0) {
        hub_buf_puts(&q->sql, " OR lower(r.ns)=lower(?)");
      } else {
        hub_buf_puts(&q->sql, " OR (r.type=? AND lower(r.ns || '/' || r.name)=lower(?))");
        qb_int(q, sc->type);
      }
      qb_text(q, sc->id);
    }
    hub_buf_putc(&q->sql, ')');
  }
  hub_buf_puts(&q->sql, "))");
}

#define ROW_COLS                                                                                   \
  "r.id, r.uid, r.type, r.ns, r.name, r.owner_id, r.owner_is_org, r.private, r.gated,"             \
  " r.disabled, r.created_ms, r.updated_ms, r.head_sha, r.last_modified_ms, r.downloads,"          \
  " r.downloads_all, r.likes, r.trending, coalesce(m.tags, '[]'), %s,"                             \
  " coalesce(m.pipeline_tag, ''), coalesce(m.library_name, ''), coalesce(m.num_params, 0),"        \
  " coalesce(m.synthetic, 0)"

static void read_row(db_stmt *st, db_search_row *w) {
  memset(w, 0, sizeof *w);
  db__read_repo_row(st, &w->repo); /* columns 0..13 */
  w->downloads = db_col_int64(st, 14);
  w->downloads_all = db_col_int64(st, 15);
  w->likes = db_col_int64(st, 16);
  w->trending = db_col_double(st, 17);
  w->tags_json = db_col_text(st, 18);
  w->meta_json = db_col_text(st, 19);
  w->pipeline_tag = db_col_text(st, 20);
  w->library_name = db_col_text(st, 21);
  w->num_params = db_col_int64(st, 22);
  w->synthetic = (int)db_col_int64(st, 23);
  if (!w->tags_json) w->tags_json = "[]";
  if (!w->pipeline_tag) w->pipeline_tag = "";
  if (!w->library_name) w->library_name = "";
}

/* Index walked for a sort key: (type, key, id), or (type, ns, key, id) for one author.
 * Naming it (INDEXED BY) keeps every plan independent of planner statistics: a fresh
 * deployment has none, and the author indexes would otherwise tempt the planner into
 * full scans for unfiltered sorts. */
static const char *walk_index_sqlite(int sort, int author) {
  switch (sort) {
  case DB_SORT_TRENDING:
    return author ? "repos_author_trending" : "repos_sort_trending";
  case DB_SORT_DOWNLOADS:
    return author ? "repos_author_downloads" : "repos_sort_downloads";
  case DB_SORT_LIKES:
    return author ? "repos_author_likes" : "repos_sort_likes";
  case DB_SORT_CREATED:
    return author ? "repos_author_created" : "repos_sort_created";
  case DB_SORT_MODIFIED:
    return author ? "repos_author_modified" : "repos_sort_modified";
  default:
    return NULL;
  }
}

/* PostgreSQL walks the same (type, key, id) indexes, chosen by its planner: "" there. */
static const char *walk_index(int sort, int author) {
  const char *name = walk_index_sqlite(sort, author);
  return name && is_pg() ? "" : name;
}

/* How a listing finds its rows: the most selective small filter (a rare term or tag)
 * drives it, or candidate ids from the in-memory index (db/accel.c), or a sort index is
 * walked with every filter checked per row. */
typedef struct {
  int sort, dir;
  int drive_term, drive_tag;
  int drive_pipeline; /* rows of repo_meta with the pipeline_tag drive (a rare task) */
  const char *walk;   /* index name when walking */
  const db__cands *cands;
} plan;

static void choose_plan(const db_search_query *q, int sort, int dir, const db__cands *c, plan *p) {
  p->sort = sort;
  p->dir = dir;
  p->drive_term = p->drive_tag = -1;
  p->drive_pipeline = 0;
  p->walk = NULL;
  p->cands = c;
  if (c) return;
  int64_t best = DRIVE_MAX;
  /* An author's own index is a bounded walk, so only a rarer term or tag beats it.
   * Relevance order drives from the first term anyway: no probing needed. */
  if (q->author && walk_index(sort, 1) && (q->nsearch || q->ntags))
    best = probe_author(q->type, q->author);
  for (size_t i = 0; sort != DB_SORT_RELEVANCE && i < q->nsearch; i++) {
    int64_t n = probe(q->search[i], NULL);
    if (n < best) best = n, p->drive_term = (int)i, p->drive_tag = -1;
  }
  for (size_t i = 0; sort != DB_SORT_RELEVANCE && i < q->ntags; i++) {
    int64_t n = probe(NULL, q->tags[i]);
    if (n < best) best = n, p->drive_tag = (int)i, p->drive_term = -1;
  }
  /* A task few repos have: walking the sort index would test nearly every repo. */
  if (sort != DB_SORT_RELEVANCE && q->pipeline_tag && probe_pipeline(q->pipeline_tag) < best)
    p->drive_pipeline = 1, p->drive_term = p->drive_tag = -1;
  if (sort == DB_SORT_RELEVANCE && q->nsearch) p->drive_term = 0;
  if (p->drive_term < 0 && p->drive_tag < 0 && !p->drive_pipeline)
    p->walk = walk_index(sort, q->author != NULL);
}

/* Filters checked per row of the source. */
static void add_filters(qb *b, const db_search_query *q, const plan *p) {
  add_visibility(b, q);
  if (q->author) {
    /* Without an author index to walk (num_parameters, relevance, a driving filter) a
     * prolific author is better served by the sort (unary + keeps the planner off the
     * (type, ns) indexes); a small one by its own rows. */
    int big = !p->walk && !p->cands && p->drive_term < 0 && p->drive_tag < 0 &&
              !p->drive_pipeline && p->sort != DB_SORT_ID &&
              probe_author(q->type, q->author) >= DRIVE_MAX;
    hub_buf_puts(&b->sql, big && !is_pg() ? " AND +r.ns=?" : " AND r.ns=?");
    qb_text(b, q->author);
  }
  for (size_t i = 0; i < q->nsearch; i++) {
    if ((int)i == p->drive_term) continue;
    if (p->cands || (p->drive_term < 0 && p->drive_tag < 0 && has_word_char(q->search[i]))) {
      /* Test the id substring per row and the card text by one FTS5 lookup per row
       * (candidates: only those the snapshot could not vouch for), or, walking the sort
       * index for a common term, against the card matches materialised once. */
      if (is_pg()) {
        char *lk = db__pg_id_like(q->search[i]);
        hub_buf_puts(&b->sql, p->cands ? " AND (c.ok=1 OR " : " AND (");
        hub_buf_puts(&b->sql, DB__PG_ID("r.") " LIKE ? ESCAPE '\\'");
        qb_text(b, lk ? lk : "");
        if (!lk) b->failed = 1;
        free(lk);
        if (has_word_char(q->search[i])) {
          hub_buf_puts(
              &b->sql,
              p->cands
                  ? " OR EXISTS (SELECT 1 FROM repo_meta cm WHERE"
                    " cm.repo_id=r.id AND " DB__PG_CARD_MATCH("cm.") ")"
                  : " OR r.id IN (SELECT repo_id FROM repo_meta WHERE " DB__PG_CARD_MATCH("") ")");
          qb_text(b, q->search[i]);
        }
        hub_buf_putc(&b->sql, ')');
        continue;
      }
      char *ph = db__fts_phrase(q->search[i]);
      hub_buf_puts(&b->sql, p->cands ? " AND (c.ok OR" : " AND (");
      hub_buf_puts(&b->sql, " instr(lower(r.ns || '/' || r.name), lower(?)) > 0");
      qb_text(b, q->search[i]);
      if (has_word_char(q->search[i])) {
        hub_buf_puts(&b->sql, p->cands ? " OR EXISTS (SELECT 1 FROM repo_fts_card WHERE"
                                         " repo_fts_card MATCH ? AND rowid=r.id))"
                                       : " OR r.id IN (SELECT rowid FROM repo_fts_card WHERE"
                                         " repo_fts_card MATCH ?))");
        qb_text(b, ph ? ph : "\"\"");
      } else {
        hub_buf_puts(&b->sql, ")");
      }
      if (!ph) b->failed = 1;
      free(ph);
      continue;
    }
    hub_buf_puts(&b->sql, " AND r.id IN (");
    add_term_set(b, q->search[i]);
    hub_buf_puts(&b->sql, ")");
  }
  for (size_t i = 0; i < q->ntags; i++) {
    if ((int)i == p->drive_tag) continue;
    hub_buf_puts(&b->sql,
                 " AND EXISTS (SELECT 1 FROM repo_tags t WHERE t.tag=? AND t.repo_id=r.id)");
    qb_text(b, q->tags[i]);
  }
  if (q->pipeline_tag) {
    hub_buf_puts(&b->sql, " AND m.pipeline_tag=?");
    qb_text(b, q->pipeline_tag);
  }
  if (q->min_params >= 0) {
    hub_buf_puts(&b->sql, " AND m.num_params>=?");
    qb_int(b, q->min_params);
  }
  if (q->max_params >= 0) {
    hub_buf_puts(&b->sql, " AND m.num_params<=?");
    qb_int(b, q->max_params);
  }
}

/* Relevance tier of a row for term (see docs/search.md). PostgreSQL compares under "C"
 * with the term lowercased in C (ASCII, as SQLite's lower()). */
static void add_tier(qb *b, const char *term) {
  if (is_pg()) {
    char *lk = db__pg_id_like(term), *lc = db__pg_lower(term);
    hub_buf_puts(&b->sql,
                 "CASE WHEN lower(r.name COLLATE \"C\")=? OR " DB__PG_ID(
                     "r.") "=? THEN 2"
                           " WHEN " DB__PG_ID("r.") " LIKE ? ESCAPE '\\' THEN 1 ELSE 0 END");
    qb_text(b, lc ? lc : "");
    qb_text(b, lc ? lc : "");
    qb_text(b, lk ? lk : "");
    if (!lk || !lc) b->failed = 1;
    free(lk);
    free(lc);
    return;
  }
  hub_buf_puts(&b->sql, "CASE WHEN lower(r.name)=lower(?) OR lower(r.ns || '/' || r.name)="
                        "lower(?) THEN 2 WHEN instr(lower(r.ns || '/' || r.name), lower(?)) > 0"
                        " THEN 1 ELSE 0 END");
  qb_text(b, term);
  qb_text(b, term);
  qb_text(b, term);
}

/* The inner query: ids and sort keys (rid, tier, skey) of at most limit + 1 rows, in
 * order. Returns the ORDER BY the outer query repeats. */
static const char *build_inner(qb *b, const db_search_query *q, const plan *p) {
  int sort = p->sort, dir = p->dir;
  const char *e = sort_expr(sort), *term0 = q->nsearch ? q->search[0] : NULL;
  hub_buf_puts(&b->sql, "SELECT r.id AS rid");
  if (sort == DB_SORT_RELEVANCE) {
    hub_buf_puts(&b->sql, ", ");
    add_tier(b, term0);
    hub_buf_puts(&b->sql, " AS tier, r.downloads AS skey");
  } else if (sort == DB_SORT_ID) {
    hub_buf_puts(&b->sql, ", 0 AS tier, 0 AS skey");
  } else {
    hub_buf_printf(&b->sql, ", 0 AS tier, %s AS skey", e);
  }
  if (p->cands && is_pg()) {
    /* The JSON arrays of ids as bigint[] literals: [1,2] -> {1,2}. */
    hub_buf_puts(&b->sql, " FROM (SELECT cid, 1 AS ok FROM unnest(?::bigint[]) cid UNION ALL"
                          " SELECT cid, 0 FROM unnest(?::bigint[]) cid) c JOIN repos r ON"
                          " r.id=c.cid");
    qb_id_array(b, p->cands->known_json);
    qb_id_array(b, p->cands->check_json);
  } else if (p->cands) {
    hub_buf_puts(&b->sql, " FROM (SELECT value AS cid, 1 AS ok FROM json_each(?) UNION ALL"
                          " SELECT value, 0 FROM json_each(?)) c CROSS JOIN repos r ON r.id=c.cid");
    qb_text(b, p->cands->known_json);
    qb_text(b, p->cands->check_json);
  } else if (p->drive_term >= 0) {
    hub_buf_puts(&b->sql, " FROM (");
    add_term_set(b, q->search[p->drive_term]);
    hub_buf_printf(&b->sql, ") c%srepos r ON r.id=c.rowid", cross_join());
  } else if (p->drive_tag >= 0) {
    hub_buf_printf(&b->sql, " FROM repo_tags c%srepos r ON r.id=c.repo_id", cross_join());
  } else if (p->drive_pipeline) {
    hub_buf_printf(&b->sql, " FROM repo_meta c%s%srepos r ON r.id=c.repo_id",
                   is_pg() ? "" : " INDEXED BY repo_meta_pipeline", cross_join());
  } else if (p->walk && *p->walk) {
    hub_buf_printf(&b->sql, " FROM repos r INDEXED BY %s", p->walk);
  } else {
    hub_buf_puts(&b->sql, " FROM repos r");
  }
  int need_meta =
      q->pipeline_tag || q->min_params >= 0 || q->max_params >= 0 || sort == DB_SORT_PARAMS;
  if (need_meta) /* CROSS: repos stays the outer loop (the source above decides the order). */
    hub_buf_puts(&b->sql, sort == DB_SORT_PARAMS && !q->pipeline_tag && q->min_params < 0 &&
                                  q->max_params < 0
                              ? " LEFT JOIN repo_meta m ON m.repo_id=r.id"
                          : is_pg() ? " JOIN repo_meta m ON m.repo_id=r.id"
                                    : " CROSS JOIN repo_meta m ON m.repo_id=r.id");
  hub_buf_puts(&b->sql, " WHERE r.type=?");
  qb_int(b, q->type);
  if (p->drive_tag >= 0) {
    hub_buf_puts(&b->sql, " AND c.tag=?");
    qb_text(b, q->tags[p->drive_tag]);
  }
  if (p->drive_pipeline) {
    hub_buf_puts(&b->sql, " AND c.pipeline_tag=?");
    qb_text(b, q->pipeline_tag);
  }
  add_filters(b, q, p);
  const char *cmp = dir < 0 ? "<" : ">", *ord = dir < 0 ? "DESC" : "ASC";
  const db_search_cursor *a = q->after;
  const char *outer_order;
  if (sort == DB_SORT_ID) {
    if (a) {
      hub_buf_printf(
          &b->sql, " AND (r.ns, r.name, r.id) %s (SELECT ns, name, id FROM repos WHERE id=?)", cmp);
      qb_int(b, a->id);
    }
    hub_buf_printf(&b->sql, " ORDER BY r.ns %s, r.name %s, r.id %s", ord, ord, ord);
    outer_order = dir < 0 ? "r.ns DESC, r.name DESC, r.id DESC" : "r.ns, r.name, r.id";
  } else if (sort == DB_SORT_RELEVANCE) {
    if (a && is_pg()) { /* no output-column names in WHERE there */
      hub_buf_puts(&b->sql, " AND (");
      add_tier(b, term0);
      hub_buf_puts(&b->sql, ", r.downloads, r.id) < (?, ?, ?)");
      qb_int(b, a->tier);
      qb_int(b, a->ival);
      qb_int(b, a->id);
    } else if (a) {
      hub_buf_puts(&b->sql, " AND (tier, r.downloads, r.id) < (?, ?, ?)");
      qb_int(b, a->tier);
      qb_int(b, a->ival);
      qb_int(b, a->id);
    }
    hub_buf_puts(&b->sql, " ORDER BY tier DESC, r.downloads DESC, r.id DESC");
    outer_order = "k.tier DESC, k.skey DESC, k.rid DESC";
  } else {
    if (a) {
      hub_buf_printf(&b->sql, " AND (%s, r.id) %s (?, ?)", e, cmp);
      if (sort == DB_SORT_TRENDING)
        qb_dbl(b, a->dval);
      else
        qb_int(b, a->ival);
      qb_int(b, a->id);
    }
    hub_buf_printf(&b->sql, " ORDER BY %s %s, r.id %s", e, ord, ord);
    outer_order = dir < 0 ? "k.skey DESC, k.rid DESC" : "k.skey, k.rid";
  }
  hub_buf_puts(&b->sql, " LIMIT ?");
  qb_int(b, (int64_t)q->limit + 1);
  return outer_order;
}

int db__search_keys(const db_search_query *q, int sort, int dir, const db__cands *c, db__key *out,
                    size_t *n) {
  qb b = {HUB_BUF_INIT, {{0}}, 0, 0};
  plan p;
  choose_plan(q, sort, dir, c, &p);
  build_inner(&b, q, &p);
  db_stmt *st = NULL;
  int rc = qb_prepare(&b, &st);
  *n = 0;
  while (!rc && next_row(st, &rc)) {
    out[*n].id = db_col_int64(st, 0);
    out[*n].tier = (int)db_col_int64(st, 1);
    out[*n].skey = db_col_int64(st, 2);
    ++*n;
  }
  db_prep_text_done(st);
  qb_dispose(&b);
  return rc;
}

static void cursor_of(const db_search_row *w, int sort, int dir, int tier, db_search_cursor *c) {
  memset(c, 0, sizeof *c);
  c->sort = sort;
  c->dir = dir;
  c->id = w->repo.id;
  c->tier = tier;
  switch (sort) {
  case DB_SORT_LIKES:
    c->ival = w->likes;
    break;
  case DB_SORT_CREATED:
    c->ival = w->repo.created_ms;
    break;
  case DB_SORT_MODIFIED:
    c->ival = w->repo.last_modified_ms;
    break;
  case DB_SORT_PARAMS:
    c->ival = w->num_params;
    break;
  case DB_SORT_TRENDING:
    c->dval = w->trending;
    break;
  default:
    c->ival = w->downloads;
    break;
  }
}

int db__search_rows(const db_search_query *q, int sort, int dir, const db__cands *c,
                    db_search_cb cb, void *payload, db_search_cursor *out_next, int *out_more) {
  qb b = {HUB_BUF_INIT, {{0}}, 0, 0};
  db_stmt *st = NULL;
  plan p;
  choose_plan(q, sort, dir, c, &p);
  /* Outer query: full columns of the inner query's rows only. */
  hub_buf_puts(&b.sql, "SELECT ");
  hub_buf_printf(&b.sql, ROW_COLS, q->want_meta ? "m.meta" : "NULL");
  hub_buf_puts(&b.sql, ", k.tier FROM (");
  const char *outer_order = build_inner(&b, q, &p);
  hub_buf_printf(&b.sql,
                 ") k%srepos r ON r.id=k.rid LEFT JOIN repo_meta m ON m.repo_id=r.id"
                 " ORDER BY ",
                 cross_join());
  hub_buf_puts(&b.sql, outer_order);
  int rc = qb_prepare(&b, &st);
  size_t n = 0;
  while (!rc && next_row(st, &rc)) {
    if (n == q->limit) {
      *out_more = 1;
      break;
    }
    db_search_row w;
    read_row(st, &w);
    cursor_of(&w, sort, dir, (int)db_col_int64(st, 24), out_next);
    n++;
    rc = cb(&w, payload);
  }
  db_prep_text_done(st);
  qb_dispose(&b);
  return rc;
}

int db_search(const db_search_query *q, db_search_cb cb, void *payload, db_search_cursor *out_next,
              int *out_more) {
  int sort = q->sort, dir = sort == DB_SORT_RELEVANCE ? -1 : (q->dir > 0 ? 1 : -1);
  *out_more = 0;
  if (q->after && (q->after->sort != sort || q->after->dir != dir))
    return hub_error_set(HUB_EINVALID, "Cursor does not match this sort");
  int handled = 0;
  int rc = db__accel_search(q, sort, dir, cb, payload, out_next, out_more, &handled);
  if (handled) return rc;
  *out_more = 0;
  return db__search_rows(q, sort, dir, NULL, cb, payload, out_next, out_more);
}

/* ---- repo info ---------------------------------------------------------------------- */

static char *dup_col(db_stmt *st, int col) {
  const char *s = db_col_text(st, col);
  return s ? strdup(s) : NULL;
}

/* The stats columns of repo info, after the repo row's (db__read_stats reads them). The
 * children count's parameters: ?1 the viewer, ?2 admin. */
#define STATS_COLS                                                                                 \
  "r.downloads, r.downloads_all, r.likes, r.trending, m.meta, m.tags,"                             \
  " m.pipeline_tag, m.library_name, m.synthetic,"                                                  \
  " CASE WHEN r.type=0 THEN (SELECT count(*) FROM model_edges e JOIN repos c ON"                   \
  "  c.id=e.child_id WHERE e.base=r.ns||'/'||r.name AND (c.private=0 OR ?2<>0 OR"                  \
  "  c.owner_id=?1 OR c.owner_id IN (SELECT org_id FROM memberships WHERE user_id=?1)))"           \
  " ELSE 0 END"

static void read_stats(db_stmt *st, int col, db_repo_stats *out) {
  out->downloads = db_col_int64(st, col + 0);
  out->downloads_all = db_col_int64(st, col + 1);
  out->likes = db_col_int64(st, col + 2);
  out->trending = db_col_double(st, col + 3);
  out->meta_json = dup_col(st, col + 4);
  out->tags_json = dup_col(st, col + 5);
  db_col_copy(out->pipeline_tag, sizeof out->pipeline_tag, st, col + 6);
  db_col_copy(out->library_name, sizeof out->library_name, st, col + 7);
  out->synthetic = (int)db_col_int64(st, col + 8);
  out->children = db_col_int64(st, col + 9);
}

int db_repo_stats_get(const db_repo *repo, int64_t viewer, int admin, db_repo_stats *out) {
  static const char *SQL =
      "SELECT " STATS_COLS " FROM repos r LEFT JOIN repo_meta m ON m.repo_id=r.id WHERE r.id=?3";
  memset(out, 0, sizeof *out);
  db_stmt *st = db_prep(SQL);
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, viewer);
  db_bind_int64(st, 2, admin);
  db_bind_int64(st, 3, repo->id);
  int s = db_step(st);
  if (s == DB_ROW) read_stats(st, 0, out);
  db_reset(st);
  if (s == DB_ROW) return 0;
  if (s == DB_DONE) return hub_error_set(HUB_EREPO, "Repository not found");
  return s;
}

int db__repo_get_with_stats(int type, const char *ns, const char *name, int64_t viewer, int admin,
                            void *out_row, void *out_stats) {
  db_repo *out = out_row;
  db_repo_stats *stats = out_stats;
  static const char *SQL = "SELECT " DB_REPO_COLS_R ", " STATS_COLS
                           " FROM repos r LEFT JOIN repo_meta m ON m.repo_id=r.id"
                           " WHERE r.type=?3 AND r.ns=?4 AND r.name=?5";
  memset(stats, 0, sizeof *stats);
  db_stmt *st = db_prep(SQL);
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, viewer);
  db_bind_int64(st, 2, admin);
  db_bind_int64(st, 3, type);
  db_bind_text(st, 4, ns, -1);
  db_bind_text(st, 5, name, -1);
  int s = db_step(st);
  if (s == DB_ROW) {
    db__read_repo_row(st, out);
    read_stats(st, 14, stats);
  }
  db_reset(st);
  if (s == DB_ROW) return 0;
  if (s == DB_DONE) return hub_error_set(HUB_EREPO, "Repository not found");
  return s;
}

void db_repo_stats_dispose(db_repo_stats *s) {
  free(s->meta_json);
  free(s->tags_json);
  s->meta_json = s->tags_json = NULL;
}

/* ---- derived metadata ------------------------------------------------------------- */

int db_tx(const char *verb) {
  int rc = 0;
  if (!strcmp(verb, "BEGIN IMMEDIATE"))
    rc = db_begin_immediate();
  else if (!strcmp(verb, "COMMIT"))
    rc = db_commit();
  else if (!strcmp(verb, "ROLLBACK"))
    db_rollback();
  else
    return hub_error_set(HUB_EINVALID, "db_tx: unknown verb '%s'", verb);
  if (rc) return hub_error_set(HUB_ERROR, "sql %s: %s", verb, db_errmsg());
  return 0;
}

static int exec_id(const char *sql, int64_t id) {
  db_stmt *st = db_prep(sql);
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, id);
  return db_step_done(st);
}

int db_meta_store(int64_t repo_id, const db_meta *m) {
  int rc;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) return rc;
  if ((rc = db_seed_meta(repo_id, m))) {
    db_tx("ROLLBACK");
    return rc;
  }
  return db_tx("COMMIT");
}

int db_seed_meta(int64_t repo_id, const db_meta *m) {
  int rc = HUB_ERROR;
  db_stmt *st =
      db_prep("INSERT INTO repo_meta(repo_id, meta, tags, pipeline_tag, library_name, num_params,"
              " card_text, synthetic) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(repo_id) DO UPDATE SET"
              " meta=excluded.meta, tags=excluded.tags, pipeline_tag=excluded.pipeline_tag,"
              " library_name=excluded.library_name, num_params=excluded.num_params,"
              " card_text=excluded.card_text, synthetic=excluded.synthetic");
  if (!st) goto fail;
  db_bind_int64(st, 1, repo_id);
  db_bind_text(st, 2, m->meta_json ? m->meta_json : "{}", -1);
  db_bind_text(st, 3, m->tags_json ? m->tags_json : "[]", -1);
  db_bind_text(st, 4, m->pipeline_tag ? m->pipeline_tag : "", -1);
  db_bind_text(st, 5, m->library_name ? m->library_name : "", -1);
  db_bind_int64(st, 6, m->num_params);
  db_bind_text(st, 7, m->card_text ? m->card_text : "", -1);
  db_bind_int64(st, 8, m->synthetic);
  if ((rc = db_step_done(st))) goto fail;
  if ((rc = exec_id("DELETE FROM repo_tags WHERE repo_id=?", repo_id))) goto fail;
  if ((rc = exec_id("DELETE FROM model_edges WHERE child_id=?", repo_id))) goto fail;
  for (size_t i = 0; i < m->ntags; i++) {
    db_stmt *t = db_prep("INSERT OR IGNORE INTO repo_tags(tag, repo_id) VALUES(?,?)");
    if (!t) goto fail;
    db_bind_text(t, 1, m->tags[i], -1);
    db_bind_int64(t, 2, repo_id);
    if ((rc = db_step_done(t))) goto fail;
  }
  for (size_t i = 0; i < m->nbases; i++) {
    db_stmt *e =
        db_prep("INSERT OR IGNORE INTO model_edges(base, child_id, relation) VALUES(?,?,?)");
    if (!e) goto fail;
    db_bind_text(e, 1, m->bases[i], -1);
    db_bind_int64(e, 2, repo_id);
    db_bind_text(e, 3, m->relation ? m->relation : "finetune", -1);
    if ((rc = db_step_done(e))) goto fail;
  }
  return 0;
fail:
  return rc ? rc : HUB_ERROR;
}

int db_meta_clear(int64_t repo_id) {
  int rc;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) return rc;
  if ((rc = exec_id("DELETE FROM repo_meta WHERE repo_id=?", repo_id)) ||
      (rc = exec_id("DELETE FROM repo_tags WHERE repo_id=?", repo_id)) ||
      (rc = exec_id("DELETE FROM model_edges WHERE child_id=?", repo_id))) {
    db_tx("ROLLBACK");
    return rc;
  }
  return db_tx("COMMIT");
}

/* ---- popularity --------------------------------------------------------------------- */

/* trendingScore = Σ over the last 7 days of downloads(day) · 0.5^(age/2)
 *               + 10 · likes given in the last 7 days (docs/search.md). */
#define TRENDING_SQL                                                                               \
  "UPDATE repos SET downloads=(SELECT coalesce(sum(n), 0) FROM downloads_daily"                    \
  " WHERE repo_id=repos.id AND day>?1-30),"                                                        \
  " trending=(SELECT coalesce(sum(n * CASE ?1-day WHEN 0 THEN 1.0 WHEN 1 THEN 0.70710678"          \
  " WHEN 2 THEN 0.5 WHEN 3 THEN 0.35355339 WHEN 4 THEN 0.25 WHEN 5 THEN 0.17677670"                \
  " ELSE 0.125 END), 0) FROM downloads_daily WHERE repo_id=repos.id AND day>?1-7)"                 \
  " + 10.0 * (SELECT count(*) FROM likes WHERE repo_id=repos.id AND created_ms>?2)"

static int refresh_one(int64_t id, int64_t day) {
  db_stmt *st = db_prep(TRENDING_SQL " WHERE id=?3");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, day);
  db_bind_int64(st, 2, db_now_ms() - 7LL * 86400000);
  db_bind_int64(st, 3, id);
  return db_step_done(st);
}

int db_downloads_add(const db_count *c, size_t n, int64_t day) {
  int rc;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) return rc;
  for (size_t i = 0; i < n; i++) {
    db_stmt *st = db_prep("INSERT INTO downloads_daily(repo_id, day, n) SELECT id, ?, ?"
                          " FROM repos WHERE id=? ON CONFLICT(repo_id, day) DO UPDATE"
                          " SET n=downloads_daily.n+excluded.n");
    if (!st) goto fail;
    db_bind_int64(st, 1, day);
    db_bind_int64(st, 2, c[i].n);
    db_bind_int64(st, 3, c[i].repo_id);
    if ((rc = db_step_done(st))) goto fail;
    db_stmt *u = db_prep("UPDATE repos SET downloads_all=downloads_all+? WHERE id=?");
    if (!u) goto fail;
    db_bind_int64(u, 1, c[i].n);
    db_bind_int64(u, 2, c[i].repo_id);
    if ((rc = db_step_done(u))) goto fail;
    if ((rc = refresh_one(c[i].repo_id, day))) goto fail;
  }
  return db_tx("COMMIT");
fail:
  db_tx("ROLLBACK");
  return rc ? rc : HUB_ERROR;
}

int db_popularity_refresh(const int64_t *ids, size_t n, int64_t day) {
  int rc;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) return rc;
  if (ids) {
    for (size_t i = 0; i < n; i++)
      if ((rc = refresh_one(ids[i], day))) goto fail;
  } else {
    /* Counters change by themselves only when a day leaves a window: repos with downloads
     * in the last 31 days, likes in the last 8, or a stale non-zero score. */
    db_stmt *st =
        db_prep(TRENDING_SQL " WHERE id IN (SELECT repo_id FROM downloads_daily WHERE day>?1-32"
                             " UNION SELECT repo_id FROM likes WHERE created_ms>?2-86400000"
                             " UNION SELECT id FROM repos WHERE trending>0 AND type>=0)");
    if (!st) goto fail;
    db_bind_int64(st, 1, day);
    db_bind_int64(st, 2, db_now_ms() - 7LL * 86400000);
    if ((rc = db_step_done(st))) goto fail;
  }
  return db_tx("COMMIT");
fail:
  db_tx("ROLLBACK");
  return rc ? rc : HUB_ERROR;
}

/* ---- likes -------------------------------------------------------------------------- */

int db_like_set(int64_t user_id, int64_t repo_id, int on, int *out_changed) {
  int rc;
  *out_changed = 0;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) return rc;
  db_stmt *st =
      on ? db_prep("INSERT OR IGNORE INTO likes(user_id, repo_id, created_ms) VALUES(?,?,?)")
         : db_prep("DELETE FROM likes WHERE user_id=? AND repo_id=?");
  if (!st) goto fail;
  db_bind_int64(st, 1, user_id);
  db_bind_int64(st, 2, repo_id);
  if (on) db_bind_int64(st, 3, db_now_ms());
  if ((rc = db_step_done(st))) goto fail;
  if (db_changes() > 0) {
    *out_changed = 1;
    db_stmt *u = db_prep("UPDATE repos SET likes=(SELECT count(*) FROM likes WHERE"
                         " repo_id=?1) WHERE id=?1");
    if (!u) goto fail;
    db_bind_int64(u, 1, repo_id);
    if ((rc = db_step_done(u))) goto fail;
  }
  return db_tx("COMMIT");
fail:
  db_tx("ROLLBACK");
  return rc ? rc : HUB_ERROR;
}

#define REPO_ROW_COLS DB_REPO_COLS_R

/* Shared loop of the like listings: column 14 created_ms, 15 user, 16 fullname. */
static int like_rows(db_stmt *st, size_t limit, db_like_cb cb, void *payload,
                     db_search_cursor *out_next, int *out_more) {
  size_t n = 0;
  int rc = 0;
  *out_more = 0;
  while (!rc && next_row(st, &rc)) {
    if (n == limit) {
      *out_more = 1;
      break;
    }
    db_like_row w;
    db__read_repo_row(st, &w.repo);
    w.created_ms = db_col_int64(st, 14);
    w.user = db_col_text(st, 15);
    w.fullname = db_col_text(st, 16);
    memset(out_next, 0, sizeof *out_next);
    out_next->sort = DB_SORT_CREATED;
    out_next->dir = -1;
    out_next->ival = w.created_ms;
    out_next->id = db_col_int64(st, 17);
    n++;
    if ((rc = cb(&w, payload))) break;
  }
  db_reset(st);
  return rc;
}

int db_user_likes(int64_t user_id, int64_t viewer, int admin, size_t limit,
                  const db_search_cursor *after, db_like_cb cb, void *payload,
                  db_search_cursor *out_next, int *out_more) {
  db_stmt *st =
      db_prep("SELECT " REPO_ROW_COLS ", l.created_ms, '', '', r.id FROM likes l JOIN repos r ON"
              " r.id=l.repo_id WHERE l.user_id=?1 AND (l.created_ms, l.repo_id) < (?2, ?3)"
              " AND (r.private=0 OR ?4<>0 OR (?5 != 0 AND (r.owner_id=?5 OR r.owner_id IN"
              " (SELECT org_id FROM memberships WHERE user_id=?5))))"
              " ORDER BY l.created_ms DESC, l.repo_id DESC LIMIT ?6");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, user_id);
  db_bind_int64(st, 2, after ? after->ival : INT64_MAX);
  db_bind_int64(st, 3, after ? after->id : INT64_MAX);
  db_bind_int64(st, 4, admin);
  db_bind_int64(st, 5, viewer);
  db_bind_int64(st, 6, (int64_t)limit + 1);
  return like_rows(st, limit, cb, payload, out_next, out_more);
}

int db_repo_likers(int64_t repo_id, size_t limit, const db_search_cursor *after, db_like_cb cb,
                   void *payload, db_search_cursor *out_next, int *out_more) {
  db_stmt *st =
      db_prep("SELECT " REPO_ROW_COLS ", l.created_ms, a.name, a.fullname, a.id FROM likes l JOIN"
              " accounts a ON a.id=l.user_id JOIN repos r ON r.id=l.repo_id WHERE l.repo_id=?1 AND"
              " (l.created_ms, l.user_id) < (?2, ?3) ORDER BY l.created_ms DESC, l.user_id DESC"
              " LIMIT ?4");
  if (!st) return HUB_ERROR;
  db_bind_int64(st, 1, repo_id);
  db_bind_int64(st, 2, after ? after->ival : INT64_MAX);
  db_bind_int64(st, 3, after ? after->id : INT64_MAX);
  db_bind_int64(st, 4, (int64_t)limit + 1);
  return like_rows(st, limit, cb, payload, out_next, out_more);
}

int db_lineage_children(const char *base_id, int64_t viewer, int admin, size_t limit, db_like_cb cb,
                        void *payload) {
  db_stmt *st = db_prep(
      "SELECT " REPO_ROW_COLS ", r.created_ms, e.relation, '' FROM model_edges e JOIN repos r"
      " ON r.id=e.child_id WHERE e.base=?1 AND (r.private=0 OR ?2<>0 OR (?3 != 0 AND"
      " (r.owner_id=?3 OR r.owner_id IN (SELECT org_id FROM memberships WHERE user_id=?3))))"
      " ORDER BY e.relation, r.downloads DESC, r.id DESC");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, base_id, -1);
  db_bind_int64(st, 2, admin);
  db_bind_int64(st, 3, viewer);
  char rel[64] = "";
  size_t in_rel = 0;
  int rc = 0;
  while (!rc && next_row(st, &rc)) {
    db_like_row w;
    db__read_repo_row(st, &w.repo);
    w.created_ms = db_col_int64(st, 14);
    w.user = db_col_text(st, 15);
    w.fullname = "";
    if (!w.user) w.user = "";
    if (strcmp(rel, w.user)) {
      snprintf(rel, sizeof rel, "%s", w.user);
      in_rel = 0;
    }
    if (in_rel++ >= limit) continue;
    if ((rc = cb(&w, payload))) break;
  }
  db_reset(st);
  return rc;
}

int db_repo_each(db_repo_cb cb, void *payload) {
  /* A batch is read and the statement reset before the callbacks run (they use other
   * statements, maybe this one again). */
  int64_t last = 0;
  int rc = 0;
  for (;;) {
    db_stmt *st = db_prep("SELECT " REPO_ROW_COLS " FROM repos r LEFT JOIN repo_meta m ON"
                          " m.repo_id=r.id WHERE r.id>? AND coalesce(m.synthetic, 0)=0"
                          " ORDER BY r.id LIMIT 256");
    if (!st) return HUB_ERROR;
    db_repo batch[256];
    int n = 0;
    db_bind_int64(st, 1, last);
    while (n < 256 && db_step(st) == DB_ROW)
      db__read_repo_row(st, &batch[n++]);
    db_reset(st);
    for (int i = 0; i < n && !rc; i++)
      rc = cb(&batch[i], payload);
    if (rc || n < 256) break;
    last = batch[n - 1].id;
  }
  return rc;
}

/* ---- bulk seeding ------------------------------------------------------------------- */

int db_seed_account(const char *name, int kind, int64_t *out_id) {
  db_stmt *st = db_prep("INSERT INTO accounts(uid, kind, name, created_ms) VALUES(?,?,?,?)"
                        " ON CONFLICT(name) DO UPDATE SET kind=accounts.kind RETURNING id");
  if (!st) return HUB_ERROR;
  char uid[25];
  db_new_uid(uid);
  db_bind_text(st, 1, uid, -1);
  db_bind_int64(st, 2, kind);
  db_bind_text(st, 3, name, -1);
  db_bind_int64(st, 4, db_now_ms());
  int s = db_step(st);
  if (s == DB_ROW) *out_id = db_col_int64(st, 0);
  db_reset(st);
  return s == DB_ROW ? 0 : s < 0 ? s : hub_error_set(HUB_ERROR, "seed account: no row");
}

int db_seed_repo(const db_seed_repo_row *w, int64_t *out_id) {
  db_stmt *st =
      db_prep("INSERT INTO repos(uid, type, ns, name, owner_id, owner_is_org, private, created_ms,"
              " updated_ms, head_sha, last_modified_ms, downloads, downloads_all, likes, trending)"
              " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
  if (!st) return HUB_ERROR;
  db_bind_text(st, 1, w->uid, -1);
  db_bind_int64(st, 2, w->type);
  db_bind_text(st, 3, w->ns, -1);
  db_bind_text(st, 4, w->name, -1);
  db_bind_int64(st, 5, w->owner_id);
  db_bind_int64(st, 6, w->owner_is_org);
  db_bind_int64(st, 7, w->is_private);
  db_bind_int64(st, 8, w->created_ms);
  db_bind_int64(st, 9, w->modified_ms);
  db_bind_text(st, 10, w->head_sha, -1);
  db_bind_int64(st, 11, w->modified_ms);
  db_bind_int64(st, 12, w->downloads30);
  db_bind_int64(st, 13, w->downloads_all);
  db_bind_int64(st, 14, w->likes);
  db_bind_double(st, 15, w->trending);
  int rc = db_step(st);
  int64_t id = rc == DB_ROW ? db_col_int64(st, 0) : 0;
  db_reset(st);
  if (rc != DB_ROW) return rc < 0 ? rc : hub_error_set(HUB_ERROR, "seed repo: no row");
  *out_id = id;
  /* Two daily rows keep the counters consistent with the trending formula. */
  int64_t older = w->downloads30 - w->recent;
  for (int k = 0; k < 2; k++) {
    int64_t n = k ? older : w->recent;
    if (n <= 0) continue;
    db_stmt *d = db_prep("INSERT INTO downloads_daily(repo_id, day, n) VALUES(?,?,?)"
                         " ON CONFLICT(repo_id, day) DO UPDATE SET n=downloads_daily.n+excluded.n");
    if (!d) return HUB_ERROR;
    db_bind_int64(d, 1, id);
    db_bind_int64(d, 2, k ? w->day - 20 : w->day - w->recent_age);
    db_bind_int64(d, 3, n);
    if ((rc = db_step_done(d))) return rc;
  }
  return 0;
}

int db_bulk_mode(void) {
  /* PostgreSQL: commits of this session stop waiting for the WAL flush. */
  db_exec(is_pg() ? "SET synchronous_commit TO off"
                  : "PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;");
  return 0;
}

int db_analyze(void) {
  return db_exec(is_pg() ? "ANALYZE" : "ANALYZE; PRAGMA optimize;");
}
