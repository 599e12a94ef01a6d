/* The scanners besides pickles and archives (docs/scanning.md): header validation of
 * safetensors and GGUF files, secrets in text files, and malware through libclamav.
 * Each returns its scanner object of the report (scan.h: {"status", "message", ...}) or NULL
 * when it does not apply to this file (wrong kind of file, by name and content). All read
 * through pread on `fd` and are bounded by `limits`. */
#ifndef HUB_SCAN_DETECT_H
#define HUB_SCAN_DETECT_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan/scan.h"

/* safetensors: header length, JSON, dtype/shape/offsets contiguous, in bounds,
 * non-overlapping, size = dtype size × shape; GGUF: magic, version, counts, string lengths,
 * tensor offsets and alignment within the file. {"status", "message", "format"}. */
json_t *scan_header(int fd, uint64_t size, const char *path, const scan_limits *limits);

/* Credentials in text files (config, notebooks, scripts, READMEs) by the documented rule
 * set: {"status", "message", "findings": [{"rule", "line", "message"}]}, never the secret. */
json_t *scan_secrets(int fd, uint64_t size, const char *path, const scan_limits *limits);

/* ---- ClamAV ---- */

/* Load the signature databases of `dbdir` (NULL or a directory without databases: an engine
 * that reports every file "unscanned"). Never fails for a missing database; NULL on OOM.
 * Signatures are whatever libclamav loads from the directory (.cvd/.cld from freshclam, or
 * .ndb/.hdb/... written by hand). Files over 1 GiB are reported "unscanned". */
struct scan_av *scan_av_open(const char *dbdir);
/* The same with another size limit (0: 1 GiB; at most 2 GiB - 3, libclamav's own cap): a
 * larger file is "unscanned" for AV, with a message saying so. */
struct scan_av *scan_av_open_limits(const char *dbdir, uint64_t max_filesize);
/* Reload the databases if database files in the directory were added or changed since the
 * last load (cl_statchkdir: a cheap stat of the directory; call it periodically). 1 if reloaded, 0
 * if unchanged, <0 on a failed reload (the previous engine stays in use). Thread-safe with
 * concurrent scans. */
int scan_av_reload_if_changed(struct scan_av *av);
/* Signatures loaded (0: none, scans report "unscanned"). */
unsigned scan_av_signatures(const struct scan_av *av);
void scan_av_close(struct scan_av *av);
/* {"status": "safe"|"unsafe"|"unscanned"|"error", "message", "signature"?}; never NULL but on
 * OOM. av may be NULL ("unscanned"). */
json_t *scan_av_scan(struct scan_av *av, int fd, uint64_t size);

/* ---- shared by the scanners (semi-private) ---- */

/* pread until n bytes or the end of the file: bytes read, -1 on an I/O error. */
ssize_t detect__pread_full(int fd, void *buf, size_t n, uint64_t off);
/* The extension of path's last component without the dot ("" if none; ".env" has none). */
const char *detect__ext(const char *path);

#endif
