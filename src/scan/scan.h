/* Security scanning of one file: the engine shared by the background scan jobs and the
 * `modelhub scan FILE` command (docs/scanning.md).
 *
 * The engine reads a file through a descriptor with pread (zip central directories sit at
 * the end; nothing is mapped or loaded whole) and never executes anything it reads: pickles
 * are walked opcode by opcode, archives are listed, headers are checked against the file
 * size. Every scanner is bounded (members, expansion, opcodes, memo size, line length) by
 * scan_limits, and a hostile input is a finding or an error, never a crash.
 *
 * Report (a JSON object, owned by the caller; stored as-is per object and turned into the
 * Hub's securityFileStatus by the API):
 *   {"level": "safe" | "caution" | "suspicious" | "unsafe" | "error",   worst of the scanners
 *    "scanners": {                                 only the scanners that apply to the file
 *      "pickle":  {"status": LEVEL, "message": "...",
 *                  "imports": [{"module": "os", "name": "system", "safety": "dangerous"}, ...],
 *                  "members": ["archive/data.pkl", ...]},         pickles found and walked
 *      "archive": {"status": LEVEL, "message": "...",
 *                  "findings": [{"member": "../x", "message": "path escapes the archive",
 *                                "level": "unsafe"}]},
 *      "header":  {"status": LEVEL, "message": "...", "format": "safetensors" | "gguf"},
 *      "secrets": {"status": LEVEL, "message": "...",
 *                  "findings": [{"rule": "aws-access-key", "line": 3, "message": "..."}]},
 *      "av":      {"status": "safe" | "unsafe" | "unscanned" | "error", "message": "...",
 *                  "signature": "Eicar-Test-Signature"}}}
 * LEVEL is one of "safe", "caution", "suspicious", "unsafe", "error". Pickle import safety is
 * "innocuous" (→ safe), "suspicious" (→ suspicious) or "dangerous" (→ unsafe). Messages
 * never echo a secret. "av" is present whenever the file was offered to the AV scanner,
 * with status "unscanned" when no signature database is loaded. */
#ifndef HUB_SCAN_SCAN_H
#define HUB_SCAN_SCAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Levels, ordered: a report's level is the maximum of its scanners'. */
typedef enum {
  SCAN_SAFE = 0,
  SCAN_CAUTION = 1,
  SCAN_SUSPICIOUS = 2,
  SCAN_UNSAFE = 3,
  SCAN_ERROR = 4, /* a scanner failed on this file (I/O, limits of the scanner itself) */
} scan_level;

const char *scan_level_name(scan_level l);
/* "safe"... → level; -1 if unknown. */
int scan_level_parse(const char *name);

typedef struct {
  uint64_t zip_max_members;   /* more members → archive finding (0: 10,000) */
  uint64_t zip_max_expansion; /* total uncompressed bytes (0: 64 GiB) */
  uint32_t zip_max_ratio;     /* per-member uncompressed/compressed (0: 200) */
  uint64_t pickle_max_bytes;  /* a pickle larger than this is walked up to here (0: 1 GiB) */
  uint64_t text_max_bytes;    /* secrets: text files larger are scanned up to here (0: 16 MiB) */
  int nesting_max;            /* zips inside zips (0: 3) */
} scan_limits;

struct scan_av; /* the ClamAV engine (scan/av.h); NULL: AV reported "unscanned" */

typedef struct {
  scan_limits limits;
  struct scan_av *av;
} scan_config;

/* Scan `size` bytes of `fd` (read with pread from offset 0). `path` is the file's path in its
 * repo (or on disk for the CLI): its extension and name pick the scanners, and the content
 * confirms (magic bytes). 0 and *out set (even when findings are "unsafe"); HUB_ERROR with a
 * message only for an unreadable descriptor or OOM. Thread-safe: keeps no state but `cfg->av`,
 * which is itself thread-safe. */
int scan_fd(const scan_config *cfg, int fd, uint64_t size, const char *path, json_t **out);

/* The pickle and archive scanners only (no header, secrets or AV scanner, which read a
 * descriptor) over `len` bytes of memory: the fuzz harnesses and tests. limits may be NULL
 * (defaults). Same return contract as scan_fd. */
int scan_mem(const scan_limits *limits, const void *buf, size_t len, const char *path,
             json_t **out);

/* `modelhub scan [--json] [--clamav-db DIR] FILE...` (argv[0] is "scan"): prints each
 * file's findings, human-readable or as the report JSON. Returns the exit status: 0 all
 * clean, 1 findings (a level above safe), 2 an error (unreadable file, scanner error,
 * usage). */
int scan_cli_main(int argc, char **argv);

/* The level of a report (its "level" member); SCAN_ERROR if missing. */
scan_level scan_report_level(const json_t *report);

#endif
