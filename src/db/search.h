/* Discovery store: repo listing/search, derived card metadata, popularity counters,
 * likes and base-model edges (docs/search.md).
 *
 * Visibility: every listing takes the viewer (user id, 0 = anonymous; site admin flag)
 * and keeps private repos out unless the viewer owns them or belongs to the owning org,
 * so private repos never appear in results, pages or counts for anyone else.
 *
 * Pagination is keyset-based: a listing returns, with its last row, the cursor that
 * continues after it; a cursor holds the sort key values of that row plus its id, so any
 * page costs the same as the first. Cursors travel as opaque base64url text.
 *
 * Ownership: strings in rows passed to callbacks are borrowed for the callback only;
 * db_repo_stats strings are owned by the struct (db_repo_stats_dispose). */
#ifndef HUB_DB_SEARCH_H
#define HUB_DB_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* Search terms, tag filters: bound the dynamic SQL one request can build. */
#define DB_SEARCH_MAX_TERMS 4
#define DB_SEARCH_MAX_TAGS 32
/* Encoded cursor text (base64url of a short record). */
#define DB_CURSOR_MAX 192

enum {
  DB_SORT_TRENDING = 0,
  DB_SORT_DOWNLOADS,
  DB_SORT_LIKES,
  DB_SORT_CREATED,
  DB_SORT_MODIFIED,
  DB_SORT_ID,
  DB_SORT_PARAMS,
  DB_SORT_RELEVANCE, /* search given, no sort: id matches first, then by downloads */
};

/* Sort name of the Hub API → DB_SORT_*; HUB_EINVALID for unknown names. */
int db_sort_parse(const char *name, int *out);

typedef struct {
  int sort, dir; /* dir: -1 descending, 1 ascending */
  int tier;      /* relevance tier (DB_SORT_RELEVANCE) */
  int64_t ival;  /* integer sort key */
  double dval;   /* trending score */
  int64_t id;    /* repos.id of the last row */
} db_search_cursor;

/* Encode to base64url text (out ≥ DB_CURSOR_MAX bytes). */
void db_cursor_encode(const db_search_cursor *c, char *out);
/* Decode; HUB_EINVALID for anything this server did not produce. */
int db_cursor_decode(const char *text, db_search_cursor *out);

/* "min:1B,max:10B", "min:300M", "max:7.5b", "1B" (= min): counts with K/M/B/T suffixes
 * (powers of 1000). Missing bounds are -1. HUB_EINVALID on malformed text. */
int db_num_params_parse(const char *text, int64_t *out_min, int64_t *out_max);

/* What a fine-grained token may see: a repo ("ns/name" of a type) or a namespace. */
typedef struct db_search_scope {
  int type;       /* repo type, or -1 for a whole namespace */
  const char *id; /* "ns/name", or "ns" for a namespace (case-insensitive) */
} db_search_scope;

typedef struct db_search_query {
  int type;
  const char *search[DB_SEARCH_MAX_TERMS]; /* substring of the id, or full-text in cards */
  size_t nsearch;
  const char *author;                   /* namespace */
  const char *tags[DB_SEARCH_MAX_TAGS]; /* all must match */
  size_t ntags;
  const char *pipeline_tag;
  int64_t min_params, max_params; /* -1 = unbounded */
  int sort, dir;
  size_t limit;
  const db_search_cursor *after; /* NULL = first page */
  int want_meta;                 /* fill row.meta_json */
  int64_t viewer_id;             /* 0 = anonymous */
  int viewer_admin;
  /* A fine-grained token: of the private repos the viewer may see, only those inside
   * viewer_scopes (none when nviewer_scopes is 0). Public repos are unaffected. */
  int viewer_scoped;
  const db_search_scope *viewer_scopes;
  size_t nviewer_scopes;
} db_search_query;

typedef struct {
  db_repo repo;
  int64_t downloads, downloads_all, likes;
  double trending;
  const char *tags_json;                   /* JSON array text, "[]" when not indexed */
  const char *meta_json;                   /* JSON object text, NULL unless want_meta */
  const char *pipeline_tag, *library_name; /* "" when unknown */
  int64_t num_params;
  int synthetic; /* seeded by `modelhub dev seed-catalog`: no git directory */
} db_search_row;

typedef int (*db_search_cb)(const db_search_row *row, void *payload);

/* Run a listing: cb for up to q->limit rows (a non-zero return stops and is returned).
 * *out_more is set when more rows follow; *out_next then continues after the last row. */
int db_search(const db_search_query *q, db_search_cb cb, void *payload, db_search_cursor *out_next,
              int *out_more);

/* In-memory id index for term searches (db/accel.c; docs/search.md): 0 off, 1 built by
 * a background thread when first needed (default), 2 built synchronously on first use
 * (tests). Results are the same in every mode. */
void db_search_accel_mode(int mode);
/* Start building the snapshot in the background now (server start), not at the first
 * search. */
void db_search_accel_warm(void);
/* Listings answered from the snapshot so far (tests). */
long db_search_accel_served(void);
/* Drop the current snapshot (the next search builds a new one). */
void db_search_accel_reset(void);

/* Popularity and derived metadata of one repo, for repo info (one indexed query). */
typedef struct {
  int64_t downloads, downloads_all, likes, children;
  double trending;
  char *meta_json; /* NULL when the repo was never indexed */
  char *tags_json;
  char pipeline_tag[HUB_MAX_SHORT_TEXT + 1];
  char library_name[HUB_MAX_SHORT_TEXT + 1];
  int synthetic;
} db_repo_stats;
int db_repo_stats_get(const db_repo *repo, int64_t viewer_id, int viewer_admin, db_repo_stats *out);
void db_repo_stats_dispose(db_repo_stats *s);
/* A router's repo lookup: the row by name (like db_repo_get) and, when stats is non-NULL,
 * its db_repo_stats for the viewer, in one statement. On PostgreSQL, outside a begun
 * transaction, it runs before this thread's pending read snapshot, and concurrent callers
 * asking for the same row and viewer share one query: each waits for the next query sent
 * after its call, one query per row at a time; answers younger than db_write_fence_ms()
 * are reused, which the write fences make safe (db.h, db/flight.c).
 * HUB_EREPO when there is no such repo. stats, when given, is the caller's to dispose. */
int db_repo_get_shared(int type, const char *ns, const char *name, int64_t viewer_id,
                       int viewer_admin, db_repo *out, db_repo_stats *stats);
/* Since start: queries db_repo_get_shared sent, callers that shared one, and callers
 * answered from the cache (metrics, tests). */
void db_repo_shared_counts(long *queries, long *shared, long *cached);

/* Derived metadata of a repo's default branch, stored in one transaction: meta row,
 * tag filter rows, full-text row and base-model edges all replace the previous ones. */
typedef struct {
  const char *meta_json, *tags_json, *pipeline_tag, *library_name, *card_text;
  int64_t num_params;
  int synthetic;
  const char *const *tags; /* filter tags */
  size_t ntags;
  const char *const *bases; /* base model ids ("ns/name") */
  size_t nbases;
  const char *relation; /* finetune | adapter | quantized | merge */
} db_meta;
int db_meta_store(int64_t repo_id, const db_meta *m);
/* Forget the derived metadata (default branch deleted). */
int db_meta_clear(int64_t repo_id);

/* Downloads: add batched counts for `day` (days since the epoch, UTC) and refresh the
 * counters (30-day, all-time, trending) of those repos, in one transaction. */
typedef struct {
  int64_t repo_id;
  int64_t n;
} db_count;
int db_downloads_add(const db_count *counts, size_t n, int64_t day);
/* Recompute 30-day downloads and trending of the given repos (ids == NULL: every repo
 * whose counters can have changed since `day - 1`, i.e. with downloads or likes in the
 * windows). */
int db_popularity_refresh(const int64_t *ids, size_t n, int64_t day);

/* Likes (idempotent). *out_changed says whether the state flipped. */
int db_like_set(int64_t user_id, int64_t repo_id, int on, int *out_changed);
typedef struct {
  db_repo repo;
  int64_t created_ms;
  const char *user, *fullname; /* likers listing */
} db_like_row;
typedef int (*db_like_cb)(const db_like_row *row, void *payload);
/* Repos a user likes, newest first, visible to the viewer. Cursor: (created_ms, repo id)
 * carried in ival / id. */
int db_user_likes(int64_t user_id, int64_t viewer_id, int viewer_admin, size_t limit,
                  const db_search_cursor *after, db_like_cb cb, void *payload,
                  db_search_cursor *out_next, int *out_more);
/* Users who like a repo, newest first. */
int db_repo_likers(int64_t repo_id, size_t limit, const db_search_cursor *after, db_like_cb cb,
                   void *payload, db_search_cursor *out_next, int *out_more);

/* Models naming `base_id` as a base model, visible to the viewer: cb per child with
 * its relation (in row.user). Newest first, at most `limit` per relation. */
int db_lineage_children(const char *base_id, int64_t viewer_id, int viewer_admin, size_t limit,
                        db_like_cb cb, void *payload);

/* Every repo id (for reindex), in id order. */
typedef int (*db_repo_cb)(const db_repo *repo, void *payload);
int db_repo_each(db_repo_cb cb, void *payload);

/* Bulk loading for `modelhub dev seed-catalog` (one writer, no other traffic). */
int db_tx(const char *verb); /* "BEGIN IMMEDIATE" / "COMMIT" / "ROLLBACK" */
int db_seed_account(const char *name, int kind, int64_t *out_id);
typedef struct {
  int type;
  const char *ns, *name, *uid, *head_sha;
  int64_t owner_id;
  int owner_is_org, is_private;
  int64_t created_ms, modified_ms;
  int64_t downloads30, downloads_all, likes, recent, recent_age;
  int64_t day;
  double trending;
} db_seed_repo_row;
int db_seed_repo(const db_seed_repo_row *row, int64_t *out_id);
/* db_meta_store's rows without its transaction (the caller holds one). */
int db_seed_meta(int64_t repo_id, const db_meta *m);
/* synchronous=OFF and a large page cache on this connection (bulk loads only). */
int db_bulk_mode(void);
/* Refresh planner statistics after a bulk load. */
int db_analyze(void);

#endif
