/* Xet from an upstream hub (docs/mirror.md, "Xet from an upstream"): a file an upstream
 * stores in Xet is fetched through the upstream's CAS and stored here twice over — as a
 * plain LFS object (sha256 verified) for clients without Xet, and in this hub's own Xet
 * store (xorbs + a verified file reconstruction) so our CAS serves it. Clients only ever
 * see this hub: no upstream host name or token leaves this module.
 *
 * Protocol (shared/docs/xet.md §6-§7):
 *   GET {upstream}/api/{type}s/{repo}/xet-read-token/{rev}   (Bearer: the upstream token)
 *     → {casUrl, accessToken, exp}
 *   GET {casUrl}/v1/reconstructions/{xet_hash}                (Bearer: accessToken)
 *     → terms + fetch_info (xorb URLs with byte ranges)
 *   GET each fetch_info url with Range: bytes=s-e            (no credentials at all)
 * The decoded bytes are re-chunked as they arrive: their Xet file hash must equal
 * `xet_hash` (which checks every chunk hash) and their sha256 and size `sha256` / `size`.
 * Outbound requests go through net/outbound.h; private/loopback targets are allowed only
 * for URLs with the upstream's own scheme, host and port, and only when allow_private. */
#ifndef HUB_XETSRV_PULL_H
#define HUB_XETSRV_PULL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *upstream_url; /* "https://huggingface.co" (no trailing slash needed) */
  const char *token;        /* upstream token, or NULL */
  const char *repo_type;    /* "model" | "dataset" | "space" */
  const char *repo_id;      /* upstream "ns/name" */
  const char *rev;          /* upstream revision the file is read at */
  const char *xet_hash;     /* the file's Xet hash (64 hex, X-Xet-Hash / xetHash) */
  const char *sha256;       /* its LFS oid */
  uint64_t size;            /* its size */
  int64_t local_repo_id;    /* our repo that references the object afterwards (0: none) */
  int allow_private;        /* the configured upstream may be loopback/private */
  /* Optional: the file's bytes in order as they arrive, before they are verified (the pull
   * may still fail; the pull-through mirror streams them to readers). Non-zero stops the
   * pull with HUB_ERROR. */
  int (*on_data)(void *ctx, const void *data, size_t len);
  void *on_data_ctx;
} xetsrv_pull_req;

/* Fetch, verify and store one file (needs xetsrv_init: server, or a CLI that ran it).
 * Blocks on the network and writes the DB: call it from a worker thread or a job, never
 * from an HTTP event thread (their connections are read-only).
 * Idempotent: an object already stored and converted is only linked to local_repo_id.
 * HUB_EUPSTREAM when the upstream fails or answers something unusable, HUB_EINVALID when
 * the bytes do not verify (nothing is stored then), HUB_EFORBIDDEN for a refused target. */
int xetsrv_pull_file(const xetsrv_pull_req *req);

/* `modelhub xet-pull --upstream URL [--token T] [--type T] --repo NS/NAME [--rev R]
 *  --xet-hash H --sha256 S --size N [--into NS/NAME]` (after open_data()). */
int xetsrv_pull_main(int argc, char **argv);

#endif
