/* The durable event log of ref changes and repository changes, and the consumers' cursors
 * (docs/architecture.md, "The spine"). SQL only: the spine (events/) decides what to write
 * and when; these calls run inside the caller's transaction when one is open.
 *
 * - events: one row per ref move (repo, kind, ref, old → new, actor, token, time) or per
 *   repository change without a ref (delete, move, visibility: ref = "").
 * - event_refs: the value of every ref as last recorded, so start-up finds ref moves that
 *   have no event (a push cut short by a kill) by comparing it with git.
 * - event_cursors: per consumer, the id of the last event it finished. */
#ifndef HUB_DB_EVENTS_H
#define HUB_DB_EVENTS_H

#include <stdint.h>

#include "util/limits.h"

#define DB_EVENT_DETAILS_MAX 512

typedef struct {
  int64_t id;
  int64_t repo_id;
  char repo_uid[25];
  char kind[32]; /* "commit", "push", "merge", "stage", "branch", "tag", "repo.delete", ... */
  char ref[256]; /* full ref name, "" for repository changes */
  char old[41];  /* "" when the ref did not exist */
  char new_[41]; /* "" when the ref was deleted */
  char actor[HUB_MAX_USER_NAME + 1]; /* account name, "-" for the server itself */
  char token[25];                    /* token uid, "-" when none */
  int64_t ts_ms;
  /* Compact JSON object of what changed beyond the ref, "" when nothing: e.g.
   * {"num": 3} for a discussion, {"num": 3, "comment": "<id>"} for a comment,
   * {"private": true} for a visibility change, {"from": "a/b", "to": "c/d"} for a move.
   * Set through events_ctx.event_details; at most DB_EVENT_DETAILS_MAX - 1 bytes. */
  char details[DB_EVENT_DETAILS_MAX];
} db_event;

int db_events_init(void); /* module migrations ("events"); once at start-up */

/* Append one event (id and ts_ms filled in) and, for a ref event, record the ref's new value
 * in event_refs (deleted when new_ is ""). */
int db_event_append(db_event *e);
/* Events with id > after, oldest first, at most `limit`: cb per row (non-zero stops). */
typedef int (*db_event_cb)(const db_event *e, void *payload);
int db_events_after(int64_t after, int limit, db_event_cb cb, void *payload);
/* Newest first for one repo (repo_id 0 = all), id < before (0 = from the newest). */
int db_events_list(int64_t repo_id, int64_t before, int limit, db_event_cb cb, void *payload);
int db_events_last(int64_t *out_id, int64_t *out_ts_ms);
/* ts of event `id` (0 if none). */
int64_t db_event_ts(int64_t id);

/* The recorded value of `ref` of a repo ("" when none recorded). 1 if recorded, 0 if not. */
int db_event_ref_get(int64_t repo_id, const char *ref, char out[41]);
/* Every recorded ref of a repo: cb(ref, sha) (non-zero stops). */
typedef int (*db_event_ref_cb)(const char *ref, const char *sha, void *payload);
int db_event_refs_each(int64_t repo_id, db_event_ref_cb cb, void *payload);
/* Record a ref value without an event (the one-time baseline of existing repositories). */
int db_event_ref_set(int64_t repo_id, const char *ref, const char *sha);
/* Put back a ref's recorded value ("" = none recorded). */
int db_event_ref_put(int64_t repo_id, const char *ref, const char *sha);
/* 1 if an event of the repo moved `ref` away from `sha` (a later move already recorded). */
int db_event_moved_from(int64_t repo_id, const char *ref, const char *sha);
/* Forget every recorded ref of a repo (it is deleted; its id may be reused). */
int db_event_refs_clear(int64_t repo_id);
/* 1 if the repo has any recorded ref. */
int db_event_refs_any(int64_t repo_id);

/* Consumer cursors: last finished event id (0 for a new consumer, which starts at the
 * newest event when `start_at_end` — existing history is not replayed). */
int db_cursor_get(const char *consumer, int start_at_end, int64_t *out_last,
                  int64_t *out_processed);
/* Read a cursor without creating it (0, 0 when the consumer has none yet): for readers. */
int db_cursor_peek(const char *consumer, int64_t *out_last, int64_t *out_processed);
/* Advance: last = id, processed += n. */
int db_cursor_set(const char *consumer, int64_t last, int64_t n);

/* BEGIN IMMEDIATE on this thread's connection with synchronous=FULL for the transaction:
 * its COMMIT is on disk (WAL fsynced) when it returns — durable against power loss. */
int db_txn_begin_durable(void);
int db_txn_commit_durable(void); /* COMMIT; synchronous back to NORMAL */
void db_txn_rollback(void);
/* An outer durable transaction around several changes that each record through the spine
 * (bundle import: the repo row, its objects and its refs' events appear together or not at
 * all). While it is open on this thread, db_txn_begin_durable/_commit_durable/_rollback
 * work on a SAVEPOINT inside it; nothing is on disk before db_txn_outer_end(1). */
int db_txn_outer_begin(void);
int db_txn_outer_end(int commit); /* COMMIT (durable) or ROLLBACK */

#endif
