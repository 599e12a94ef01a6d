/* Xet storage, server side: the CAS HTTP API, the hub's Xet token routes and signals, and
 * the bridge between Xet and plain LFS/HTTP over the same bytes (shared/docs/xet.md §6-§9;
 * design notes in docs/xet.md, "Server"). The pure formats live in xet/xet.h.
 *
 * State: xorbs are objects of a second blob store rooted at <data>/xet (named by the
 * sha256 of their serialized bytes); the DB (module "xetsrv") maps xorb hash -> object and
 * chunk table, file hash -> terms, sha256 -> file hash, chunk hash -> xorb (dedup index),
 * and which repos may read which files.
 *
 * Functions return 0 or a negative HUB_E* code with hub_error_msg() set, unless noted. */
#ifndef HUB_XETSRV_XETSRV_H
#define HUB_XETSRV_XETSRV_H

#include <jansson.h>
#include <stdint.h>

#include "blob/blob.h"
#include "db/events.h"
#include "http/http.h"
#include "lfs/lfs.h"
#include "repo/repo.h"
#include "util/hub.h"

/* Migrate the module's tables, open the xorb store (<ctx->data_dir>/xet) and start the
 * background worker (LFS -> Xet conversion, sha256 verification). Keeps ctx->blobs (the
 * LFS object store built in main.c, borrowed for the process) and ctx->xet_enabled (the
 * MODELHUB_XET switch). Once, from api_init(). */
int xetsrv_init(const hub_ctx *ctx);
/* Reads Xet-backed LFS objects for code that only knows the blob store (derive). */
const blob_read_fallback *xetsrv_read_fallback(void);
/* Register the token and CAS routes (main.c) and the git-LFS batch hook (lfs/). */
int xetsrv_register(void);

/* A Xet-backed LFS object as seen from one repo. */
typedef struct {
  char hash[65]; /* file hash, §2.1 string form */
  uint64_t size;
} xetsrv_file;

/* Is the LFS object `sha256` Xet-backed for `repo` (a verified link, or one uploaded
 * through this repo)? 0 and *out, or HUB_ENOTFOUND. Records the repo's read right on the
 * file. When the object is a plain LFS blob not yet converted, queues its conversion. */
int xetsrv_lookup(const db_repo *repo, const char *sha256, xetsrv_file *out);

/* Commit check for an lfsFile: 0 and the size if `oid` is a stored LFS blob or known
 * through Xet for this repo; HUB_ENOTFOUND otherwise. */
int xetsrv_lfs_stat(const db_repo *repo, const char *oid, int64_t *out_size);

/* git-LFS batch hook, called after the request was parsed and authorized: answers
 * `transfer: "xet"` uploads, and downloads of objects that exist only as Xet files.
 * 1 = reply queued, 0 = not ours (plain LFS goes on), < 0 = error. */
int xetsrv_lfs_batch(hub_req *r, const lfs_batch_req *req);

/* Add "xetHash" to a tree / paths-info / siblings entry of `repo` when Xet-backed. */
void xetsrv_entry_json(const db_repo *repo, json_t *o, const repo_entry *e);

/* Resolve signals (§7.2): X-Xet-Hash, Link (xet-auth, xet-reconstruction-info),
 * X-Xet-Refresh-Route, on the response already queued. `commit` is the resolved sha. */
void xetsrv_add_headers(hub_req *r, const char *commit, const xetsrv_file *f);
/* 1 if the request's Accept asks for application/vnd.xet-fileinfo+json. */
int xetsrv_wants_fileinfo(hub_req *r);
/* The §7.3 file-info answer (200, JSON body); the caller adds the headers (the resolve
 * ones and xetsrv_add_headers). */
int xetsrv_reply_fileinfo(hub_req *r, const char *commit, const xetsrv_file *f, const char *etag_q);
/* Serve bytes [start, start+len) of a Xet file, rebuilt from xorbs as the client reads. */
int xetsrv_reply_bytes(hub_req *r, int status, const char *ctype, const xetsrv_file *f,
                       int64_t start, int64_t len);

/* Size of a verified Xet file with this sha256; HUB_ENOTFOUND if none. */
int xetsrv_verified_size(const char *sha, int64_t *out_size);
/* The Xet half of filling repo_objects from existing data (api/objects.c, once): verified
 * uploads become references of their uploader repos, and read links no reference
 * justifies are dropped. Run after the git pointers were recorded. */
int xetsrv_objects_migrate(void);

/* Events consumer "xet" (events_set_consumer("xet", …), set by main.c): for every event that
 * moves a ref of a repo with Xet on, queues the Xet conversion of the LFS objects the repo
 * references and its git objects name (xetsrv_lookup), so pushed objects convert without
 * waiting for a first read. Always 0 (conversion is best effort; reads queue it too). */
int xetsrv_consume(const db_event *ev, size_t n);

/* `modelhub storage stats [--json]` and `modelhub fsck [--full]` (after open_data()). */
int xetsrv_main(int argc, char **argv);

#endif
