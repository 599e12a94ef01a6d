/* mirror/: a pull-through mirror of one or more upstream hubs (docs/mirror.md).
 *
 * A repo that is not here but that an upstream admits (allow/deny patterns) is fetched on
 * its first read: its metadata from the upstream's API, its git history with `git fetch`
 * into a local bare repo (refs moved through the ref spine, kind "mirror"), and LFS
 * objects one by one when a download needs them (verified by sha256 before they are
 * stored). From then on it is an ordinary local repo, read-only, whose refs are taken from
 * upstream again once they are older than the TTL. Objects fetched from upstream form a
 * cache with a size limit and least-recently-used eviction.
 *
 * Layering: layer 4; includes events/ (ref moves) and the layers below. The router calls
 * it through http_set_repo_source (main.c wires it), lfs/ through lfs_set_fetch_hook,
 * api/ directly (resolve, info, healthz, metrics). */
#ifndef HUB_MIRROR_MIRROR_H
#define HUB_MIRROR_MIRROR_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "db/mirror.h"
#include "http/http.h"
#include "util/buf.h"
#include "util/hub.h"

/* Configuration from the command line and environment: `upstream`/`token` (--upstream,
 * MODELHUB_UPSTREAM, MODELHUB_UPSTREAM_TOKEN) for one upstream, `config_file`
 * (--mirror-config, MODELHUB_MIRROR_CONFIG) for more, `offline` (--offline,
 * MODELHUB_OFFLINE; -1 = as the file says). Any may be NULL. 0, or HUB_EINVALID with a
 * message. Without an upstream the mirror is off and every hook answers "not mine". */
int mirror_configure(const char *upstream, const char *token, const char *config_file, int offline);
/* After the data dir is open: tables, the blob store. */
int mirror_init(const hub_ctx *ctx);
int mirror_enabled(void);
int mirror_offline(void);

/* The router's repo source (http_set_repo_source). */
extern const http_repo_source mirror_repo_source;
/* lfs/'s fetch hook: a download of an object a mirrored repo names but does not hold. */
int mirror_lfs_fetch(hub_req *r, const char *oid, int64_t size);

/* The mirror row of a repo: 0 when it is mirrored, HUB_ENOTFOUND when not. */
int mirror_repo_of(const db_repo *repo, db_mirror_repo *out);
/* Make sure the mirrored repo's LFS object `oid` (`size` bytes) is stored and referenced:
 * fetched from upstream once (concurrent callers wait for the one fetch), verified. 0 when
 * it is there; HUB_EOFFLINE / HUB_EUPSTREAM / HUB_ERATELIMIT (mirror_retry_after_s()) /
 * HUB_ENOTFOUND otherwise. The object is kept from eviction until mirror_object_release.
 * `pinned` (mirror pull) keeps it from eviction for good. */
int mirror_object_ensure(const db_repo *repo, const hub_identity *who, const char *ip,
                         const char *oid, int64_t size, int pinned);
/* A download of a mirrored repo's object that is not here: join (or start) its fetch, and
 * once the first byte arrived, queue a streamed reply (`status`, bytes [start, start+len))
 * that follows the fetch as it grows — every concurrent reader streams from the one
 * transfer. Returns 1 when that reply is queued, 0 when the object turned out complete
 * (serve it from the store as usual), or an error from before the first byte. */
int mirror_object_stream(hub_req *r, const char *oid, int64_t size, int status, const char *ctype,
                         int64_t start, int64_t len);
void mirror_object_release(const char *oid);
/* A cached object is about to be served: noted for the LRU (no database write on the
 * calling thread) and kept from eviction until mirror_object_release. Check that it is
 * still stored after this call (an eviction may have just removed it). */
void mirror_object_touch(const char *oid);
/* The same as a request cleanup: releases and frees the oid copy (http_cleanup_add). */
void mirror_object_release_cb(void *oid_copy);

/* Shutdown: stop the object transfers in progress and wait (up to 10 s) for them to end. */
void mirror_stop(void);

/* Seconds until upstream may be asked again after a 429 (0 when it may). */
int mirror_retry_after_s(void);
/* Reply with `code` in the route's style, with Retry-After on a 429. */
int mirror_reply_error(hub_req *r, int code);

/* {"upstream": URL, "fetchedAt": ISO} of a mirrored repo, NULL for a local one. */
json_t *mirror_info_json(const db_repo *repo);
/* Prometheus lines (hits, misses, bytes from upstream, evictions, ...). */
void mirror_metrics(hub_buf *b);
/* Fields for /healthz: "offline", "mirror" (NULL-safe; nothing when the mirror is off). */
void mirror_health(json_t *o);

/* `modelhub mirror pull`: fetch ns/name (type HUB_REPO_*) and the LFS objects of `rev`
 * (NULL: main) whose path matches one of the `include` globs (none: all), pinned. Prints
 * progress to stdout. 0 or an error code. */
int mirror_pull(int type, const char *ns, const char *name, const char *rev,
                const char *const *include, size_t ninclude);

#endif
