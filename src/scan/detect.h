/* The scanners besides pickles and archives (docs/scanning.md): header validation of
 * safetensors and GGUF files, secrets in text files, and malware through libclamav.
 * Each returns its scanner object of the report (scan.h: {"status", "message", ...}) or NULL
 * when it does not apply to this file (wrong kind of file, by name and content). All read
 * through pread on `fd` and are bounded by `limits`. */
#ifndef HUB_SCAN_DETECT_H
#define HUB_SCAN_DETECT_H

#include <jansson.h>
#include <stdint.h>

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
 * that reports every file "unscanned"). Never fails for a missing database; NULL on OOM. */
struct scan_av *scan_av_open(const char *dbdir);
/* Reload the databases if files in the directory changed since the last load (cheap stat
 * check; call it periodically). 1 if reloaded, 0 if unchanged, <0 on a failed reload (the
 * previous engine stays in use). Thread-safe with concurrent scans. */
int scan_av_reload_if_changed(struct scan_av *av);
/* Signatures loaded (0: none, scans report "unscanned"). */
unsigned scan_av_signatures(const struct scan_av *av);
void scan_av_close(struct scan_av *av);
/* {"status": "safe"|"unsafe"|"unscanned"|"error", "message", "signature"?}; never NULL but on
 * OOM. av may be NULL ("unscanned"). */
json_t *scan_av_scan(struct scan_av *av, int fd, uint64_t size);

#endif
