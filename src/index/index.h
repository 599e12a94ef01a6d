/* Derived data: what the DB keeps about a repo's content, recomputed from git after
 * every ref change (commit API and git push alike). Rebuildable at any time
 * (`modelhub reindex`). Also the download counters (docs/search.md). */
#ifndef HUB_INDEX_INDEX_H
#define HUB_INDEX_INDEX_H

#include "db/db.h"

/* Refresh the derived data of `repo` from its git directory now: head of refs/heads/main,
 * last-modified time, and the metadata ml_derive() finds at that head (card data, tags,
 * search text, base-model edges). For `modelhub reindex`; the server's ref moves go
 * through the spine (events/), whose "index" consumer is index_consume. A derive problem
 * is logged and never fails the caller. */
int index_repo_changed(const db_repo *repo);
/* The "index" consumer of the event log (events/consumers.c): derive the metadata of every
 * repo whose refs/heads/main moved in the batch. Idempotent. */
#include "db/events.h"
int index_consume(const db_event *ev, size_t n);

/* Count a download of `path` if it is the repo's "query file" (config.json of a model,
 * any .gguf file, any dataset file but README.md/.gitattributes). Only bumps an
 * in-memory counter under a mutex: safe and cheap on the download path. */
void index_download_count(const db_repo *repo, const char *path);
/* 1 if a GET/HEAD of `path` counts as a download of a repo of `type`. */
int index_is_query_file(int type, const char *path);

/* Start the background thread that flushes download counts every second and refreshes
 * popularity daily; the last counts are flushed at exit. Idempotent. */
int index_start(void);
/* Flush pending download counts now (tests, shutdown). */
int index_flush(void);

/* `modelhub reindex`: rebuild the derived data of every repo. */
int index_reindex_all(int verbose);
/* `modelhub dev seed-catalog N`: N synthetic repos straight into the DB (benchmarks). */
int index_seed_catalog(long n, int verbose);

/* CLI dispatch for "reindex" and "dev ..." (argv[0] is the command). */
int index_main(int argc, char **argv);

/* Where derive reads LFS objects the blob store lacks (Xet-backed files); `ctx` given to
 * the fallback is the repo id (as intptr_t). Set once at startup, before serving. */
void index_set_read_fallback(const void *blob_read_fallback);

#endif
