/* Discussion threads (module "discussions"): the events of a discussion or pull request
 * that git does not hold — comments (with their edit history), status changes, title
 * changes — in the order they happened. Commits pushed to a PR come from the event log
 * (db/events.h: moves of refs/pr/N). Writes join the caller's transaction when one is open.
 *
 * Ordering: every row gets `seq`, the id the next spine event will get (the discussion's
 * own event is appended in the same transaction), so threads merge with PR ref events in
 * spine order. */
#ifndef HUB_DB_DISCUSSIONS_H
#define HUB_DB_DISCUSSIONS_H

#include <stdint.h>

#include "util/limits.h"

/* Apply the "discussions" module's migrations (after db_gov_init: it extends gov_discussions). */
int db_disc_init(void);

/* The next free discussion number of a repo (1 + the highest used; PR refs are checked by
 * the caller). */
int db_disc_next_num(int64_t repo_id, int *out);
/* A new discussion row; HUB_EEXISTS when num is taken. status "open" or "draft". */
int db_disc_insert(int64_t repo_id, int num, const char *title, const char *status, int is_pr,
                   int64_t author_id, const char *target_branch, int64_t now);
int db_disc_set_title(int64_t repo_id, int num, const char *title, int64_t now);
/* The target's commit before a merge (shows a merged PR's diff). */
int db_disc_set_merge_prev(int64_t repo_id, int num, const char *sha);
int db_disc_merge_prev(int64_t repo_id, int num, char out[41]);

/* One stored thread event. type "comment", "status-change", "title-change". */
typedef struct {
  char uid[25];
  char type[16];
  int64_t seq;
  int64_t author_id;
  char author[HUB_MAX_USER_NAME + 1]; /* "deleted" when the account is gone */
  int64_t created_ms, updated_ms;
  char *raw;  /* comments: latest content (malloc'd, "" when hidden) */
  char *data; /* JSON text (malloc'd): status/title data, a comment's edit history */
  int hidden;
  int edits;
  char editor[HUB_MAX_USER_NAME + 1]; /* last editor ("" when never edited) */
  char hidden_by[HUB_MAX_USER_NAME + 1];
} db_disc_event;
void db_disc_event_dispose(db_disc_event *e);

/* Append an event (uid filled by the caller). raw may be NULL for non-comments. */
int db_disc_event_add(int64_t repo_id, int num, const char *uid, const char *type,
                      int64_t author_id, const char *raw, const char *data, int64_t now);
/* HUB_ENOTFOUND when the discussion has no such event. Dispose out. */
int db_disc_event_get(int64_t repo_id, int num, const char *uid, db_disc_event *out);
/* A comment's new content (raw), its history (data) and the editor. */
int db_disc_comment_edit(int64_t repo_id, int num, const char *uid, const char *raw,
                         const char *history, int64_t editor_id, int64_t now);
/* Hide a comment for good: its content and history are dropped. */
int db_disc_comment_hide(int64_t repo_id, int num, const char *uid, int64_t by_id, int64_t now);
/* Events of a discussion in order (the row is disposed after cb; non-zero stops). */
typedef int (*db_disc_event_cb)(const db_disc_event *e, void *payload);
int db_disc_events_each(int64_t repo_id, int num, db_disc_event_cb cb, void *payload);

/* Spine events that moved `ref` of a repo, oldest first (at most limit). */
typedef struct {
  int64_t id;
  char kind[32];
  char old[41], new_[41];
  char actor[HUB_MAX_USER_NAME + 1];
  int64_t ts_ms;
} db_disc_ref_move;
typedef int (*db_disc_ref_cb)(const db_disc_ref_move *m, void *payload);
int db_disc_ref_moves(int64_t repo_id, const char *ref, int limit, db_disc_ref_cb cb,
                      void *payload);

#endif
