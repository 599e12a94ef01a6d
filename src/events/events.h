/* events/: the ref-change spine above repo/ (docs/architecture.md, "The spine").
 *
 * repo/'s ref transaction moves refs; this module is its recorder: for every committed
 * move it writes, in ONE durable database transaction (synchronous=FULL), the event row
 * (db/events.h), the hash-chained audit entry (audit/) and the derived head of the
 * default branch (sha + commit time: read-your-writes). Either all of them are written,
 * or none and the refs are put back (repo_txn_commit) — no acknowledged change without
 * its event and audit entry, no event for a change that did not happen.
 *
 * Consumers (derived metadata + search today) read the event log after the fact, each
 * with its own cursor in the database, on one dispatcher thread: a consumer that crashes
 * resumes after the last event it finished. The table of consumers is in consumers.c.
 *
 * Layering: events/ includes repo/, audit/, db/ and index/ (whose derive is a consumer);
 * it is included by api/, gov/, git/. */
#ifndef HUB_EVENTS_EVENTS_H
#define HUB_EVENTS_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "audit/audit.h"
#include "db/db.h"
#include "db/events.h"
#include "repo/repo.h"
#include "util/buf.h"

/* What a ref move is, for its event and audit entry. Borrowed for the call. */
typedef struct {
  const db_repo *repo;
  audit_ctx audit;       /* who, ip (actor "modelhub" for the server itself) */
  const char *kind;      /* event kind: "commit", "push", "merge", "stage", "branch", "tag" */
  const char *action;    /* audit action: "repo.commit", "pr.merge", ... */
  const json_t *details; /* extra audit details (borrowed, may be NULL); ref/old/new added */
  int64_t last_event;    /* out: id of the last event written */
  /* More DB work of the same change (a PR marked merged, a stage's history row), run
   * inside the same transaction after the events; non-zero fails the whole change. */
  int (*also)(void *payload);
  void *also_payload;
  /* Stored with the event for its consumers (db_event.details), borrowed, may be NULL: a
   * small object of ids and flags (consumers look the rest up). Over DB_EVENT_DETAILS_MAX
   * once serialized, the change fails (HUB_ERROR): keep it small. */
  const json_t *event_details;
} events_ctx;

int events_init(void); /* tables (db_migrate_module "events"); once at start-up */

/* repo_record_fn for repo_txn_commit / repo_commit_req.record (payload: events_ctx *). */
int events_record(repo_handle *h, const repo_ref_update *u, size_t n, void *payload);
/* A recorder for `c` (borrowed: keep c alive across the transaction). */
repo_recorder events_recorder(events_ctx *c);

/* A repository change without a ref move (delete, move, visibility): the event and audit
 * entry, and `change(payload)` — the DB change itself — in one durable transaction.
 * change may be NULL. */
int events_record_repo(events_ctx *c, int (*change)(void *payload), void *payload);

/* ---- consumers (dispatch.c, consumers.c) ---- */

/* One consumer: a name (its cursor's key) and what it does with a batch of events, oldest
 * first. 0 = done (the cursor moves past them); non-zero = try the batch again later.
 * Effects must be idempotent: a crash after the work and before the cursor moved replays
 * the batch once. */
typedef struct {
  const char *name;
  int (*consume)(const db_event *ev, size_t n);
} events_consumer;

extern events_consumer events_consumers[];
/* The work of a consumer row that lives above events/ (e.g. "xet": xetsrv_consume), handed
 * down by main.c before events_start. A row with no work is skipped (its cursor stays).
 * HUB_ENOTFOUND if consumers.c has no row of that name. */
int events_set_consumer(const char *name, int (*consume)(const db_event *ev, size_t n));
extern const size_t events_nconsumers;

/* Start the dispatcher thread (server only). Tests: MODELHUB_TEST_PAUSE_CONSUMERS=1 keeps it
 * from consuming, =<path> while that file exists (a crash between the ref move and the
 * consumers). Idempotent. */
int events_start(void);
void events_stop(void);
/* Wake the dispatcher: events were appended (by this process or a git hook). */
void events_notify(void);
/* Wait up to `ms` for consumer `name` to finish event `id` (0 if it has, 1 on timeout or
 * when consumers do not run). The API waits on derived metadata this way (bounded). */
int events_wait(const char *name, int64_t id, int ms);
/* Prometheus lines: per consumer, events behind and seconds behind the newest event. */
void events_metrics(hub_buf *b);

/* Start-up reconciliation: every ref whose value differs from the one last recorded gets
 * its event (kind "recovered", audit "repo.ref.recovered"). A repo with no recorded refs at
 * all (data from before the spine) gets its refs recorded as a baseline, without events.
 * Returns the number of events written (≥ 0). */
int events_reconcile_all(void);
/* The same for one repository (after a push whose hook could not record). `refs` (n of
 * them) limits it to those refs (NULL: all). Each ref is compared with its record while
 * holding its turn, so a commit of this process between its move and its record is not
 * taken for a change made outside. */
int events_reconcile_repo(const db_repo *repo, const char *const *refs, size_t n);
/* After a push: the same, but a ref is recorded only while git still has the value this
 * push moved it to (`news[i]` for `refs[i]`; "" = deleted). A ref another push moved on
 * meanwhile is left to that push's hook, which records it as a "push" — so a ref move gets
 * one event, never a "push" and a "recovered" one (events_record compares with event_refs
 * in its transaction, too). */
int events_reconcile_push(const db_repo *repo, const char *const *refs, const char *const *news,
                          size_t n);

#endif
