/* The scan service (docs/scanning.md, "The scan service and policy"): every distinct object
 * a ref change brings in — LFS/Xet files by sha256, files stored in git by blob sha1 — is
 * scanned once, by a background job of kind "scan.object" (scan/scan.h's engine), never on a
 * request path. Results are stored per oid (db/scan.h) and shown the Hub's way
 * (securityFileStatus, securityRepoStatus); a download policy per site and per organization
 * decides, in ONE function (security_may_download), whether a file may be served.
 *
 * Layering: layer 2; includes scan/, blob/, db/ (below) and its peers repo/, jobs/, audit/.
 * The event consumer ("scan") and the Xet read fallback are handed down by main.c. */
#ifndef HUB_SECURITY_SECURITY_H
#define HUB_SECURITY_SECURITY_H

#include <jansson.h>
#include <stdint.h>

#include "blob/blob.h"
#include "db/db.h"
#include "db/events.h"
#include "util/buf.h"

typedef enum {
  SECURITY_POLICY_WARN = 0,            /* findings are shown, nothing is withheld */
  SECURITY_POLICY_BLOCK = 1,           /* files scanned "unsafe" are withheld */
  SECURITY_POLICY_BLOCK_UNSCANNED = 2, /* ... and files not scanned yet */
} security_policy;

/* "warn" | "block" | "block-unscanned" → policy, -1 if unknown. */
int security_policy_parse(const char *s);
const char *security_policy_name(int p);

/* Tables, the job kind "scan.object", the site policy (MODELHUB_SCAN_POLICY) and the AV
 * engine (MODELHUB_CLAMAV_DB or <data>/clamav, loaded lazily by the first job). `blobs` is
 * the LFS object store (borrowed for the process; NULL: CLI without a store). */
int security_init(blob_store *blobs);
/* Xet-backed objects are read through this fallback (ctx: the repo id), set by main.c. */
void security_set_read_fallback(const blob_read_fallback *fb);
/* Queued objects without a live job get one (after a crash between note and enqueue). */
void security_resume(void);
void security_shutdown(void);

/* Event consumer "scan" (events_set_consumer, main.c): walks the tree of every ref a batch
 * moved (bounded) and queues a scan.object job for every object not scanned yet. */
int security_consume(const db_event *ev, size_t n);

/* The one download decision: 0 = serve; HUB_EBLOCKED with a message naming the finding
 * (or "not scanned yet") under the effective policy of the repo (the stricter of the site
 * policy and its organization's), unless a writer of the repo overrode it for this object.
 * `oid`: sha256 for LFS/Xet files, git blob sha1 otherwise; `path` (may be NULL) names the
 * file in the message. Reads only: safe on an event thread. */
int security_may_download(const db_repo *repo, const char *oid, const char *path);
/* The policy in force for a repo. */
int security_policy_for(const db_repo *repo);

/* securityFileStatus of an object (Hub shape; new reference). Never NULL but on OOM. */
json_t *security_file_status(const char *oid);
/* securityRepoStatus: {scansDone, filesWithIssues: [{path, level}]} (new reference). */
json_t *security_repo_status(const db_repo *repo);
/* A short message for the finding of a scanned object ("pickle import os.system
 * (dangerous)"), "" when none; out ≥ 256. Returns the level name ("" when not scanned). */
const char *security_finding(const char *oid, char *out, size_t cap, char level[16]);

/* `modelhub scan --rescan [--all|--av]`: re-queue objects (all; or AV-unscanned/stale ones,
 * the default --av). Prints how many were queued. */
int security_rescan_main(int argc, char **argv);

/* Prometheus lines: queue depth, objects/bytes/seconds scanned, objects per level. */
void security_metrics(hub_buf *b);

#endif
