/* Internals of the pickle and archive scanners (docs/scanning.md), shared by scan.c,
 * pickle.c, zip.c and rd.c. Not used outside src/scan/.
 *
 * A scan_src is random-access bytes (a descriptor range read with pread, or memory); a
 * scan_rd is a forward byte stream over a range of a source, stored or inflated, with a
 * bounded buffer, cheap skips (a seek when stored) and a byte limit. scan_ctx collects what
 * the pickle and archive scanners found in one file (its members included). */
#ifndef HUB_SCAN_ENGINE_H
#define HUB_SCAN_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "scan/scan.h"

/* Hard bounds of the engine itself (not configurable). */
#define SCAN_RD_BUF (64 * 1024)             /* stream buffer */
#define SCAN_NAME_MAX 512                   /* module/name/string constants kept by the walker */
#define SCAN_STACK_MAX (1u << 20)           /* pickle stack entries */
#define SCAN_MEMO_MAX (1u << 20)            /* memo slots (index range) */
#define SCAN_ARENA_MAX (16u * 1024 * 1024)  /* bytes of string constants kept per pickle */
#define SCAN_IMPORTS_MAX 1000               /* distinct imports listed */
#define SCAN_FINDINGS_MAX 200               /* archive findings listed */
#define SCAN_MEMBERS_MAX 1000               /* pickle members listed */
#define SCAN_NESTED_MEM_MAX (64u << 20)     /* a deflated nested archive is inflated up to this */
#define SCAN_INFLATE_RATIO_FLOOR (1u << 20) /* ratio checked once this much came out */

typedef struct {
  int fd;                   /* -1 when mem is used */
  const unsigned char *mem; /* or NULL */
  uint64_t base;            /* offset of byte 0 in fd / mem */
  uint64_t size;
} scan_src;

/* Exactly n bytes at off: 0, or -1 if out of range or unreadable. */
int scan_src_read(const scan_src *s, uint64_t off, void *buf, size_t n);

typedef struct scan_rd {
  const scan_src *src;
  uint64_t off, end; /* next raw byte and end of the raw range in src */
  z_stream *z;       /* inflating when set */
  unsigned char *zin;
  uint64_t declared; /* inflate: the declared uncompressed size */
  uint32_t max_ratio;
  uint64_t produced; /* bytes delivered into buf so far (stream position of buf end) */
  uint64_t limit;    /* EOF after this many stream bytes (limited is set) */
  unsigned char *buf;
  size_t pos, len;
  int eof;     /* no more bytes */
  int limited; /* stopped at limit */
  int ioerr;   /* read failure */
  int bomb;    /* 1: expands beyond declared size, 2: ratio over the limit, 3: corrupt deflate */
} scan_rd;

/* 0, or -1 on OOM. method 0 (stored) or 8 (deflate); clen is the raw length in src. */
int scan_rd_open(scan_rd *r, const scan_src *src, uint64_t off, uint64_t clen, int method,
                 uint64_t declared, uint32_t max_ratio, uint64_t limit);
void scan_rd_dispose(scan_rd *r);
/* Refill: bytes available after the call (0 at end). */
size_t scan_rd__fill(scan_rd *r);
static inline int scan_rd_getc(scan_rd *r) {
  if (r->pos < r->len || scan_rd__fill(r)) return r->buf[r->pos++];
  return -1;
}
/* Exactly n bytes or -1. */
int scan_rd_read(scan_rd *r, void *dst, size_t n);
/* Skip n bytes (a seek for stored data); -1 if the stream ended first. */
int scan_rd_skip(scan_rd *r, uint64_t n);
/* Up to n (<= SCAN_RD_BUF/2) bytes buffered without consuming them; *got is how many. */
const unsigned char *scan_rd_peek(scan_rd *r, size_t n, size_t *got);
/* Stream position (bytes consumed). */
static inline uint64_t scan_rd_tell(const scan_rd *r) {
  return r->produced - (r->len - r->pos);
}

typedef struct {
  scan_limits lim; /* defaults filled in */
  json_t *imports; /* [{"module","name","safety"}] distinct */
  json_t *seen;    /* "module name" → true, to keep imports distinct */
  json_t *members; /* pickle members walked */
  json_t *findings;
  scan_level pickle_level, archive_level;
  int pickle_applied, archive_applied;
  char pickle_msg[256], archive_msg[256]; /* first notable message of each scanner */
  uint64_t pickles;                       /* pickles walked */
  /* Bounds over the whole file, nested archives included (overlapping zip entries can make
   * one member be read many times): members listed ≤ zip_max_members, bytes read through
   * member streams ≤ pickle_max_bytes. */
  uint64_t members_total, stream_used;
  int members_reported, budget_reported;
  int oom;
} scan_ctx;

/* Replace every byte of s that is not part of valid UTF-8 with '?', in place: names from
 * files go into JSON, which must be UTF-8. */
void scan_utf8_fix(char *s);

int scan_ctx_init(scan_ctx *c, const scan_limits *lim);
void scan_ctx_dispose(scan_ctx *c);
/* Raise a scanner's level and keep its first message at that level. */
void scan_ctx_pickle(scan_ctx *c, scan_level l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void scan_ctx_archive(scan_ctx *c, scan_level l, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Scan one file or member by its name and its first bytes: pickles, npy, zip, tar, or
 * nothing. `r` is the member's stream; `src`/`off`/`len` its raw bytes when it is stored
 * (random access for nested archives), or src NULL when it is compressed. */
void scan_member(scan_ctx *c, const char *name, scan_rd *r, const scan_src *stored, int depth);

/* Walk the pickle(s) of r from its position: consecutive pickles while the next one starts
 * with PROTO (legacy torch.save). Records imports, levels and `member`. */
void scan_pickle_stream(scan_ctx *c, scan_rd *r, const char *member);
/* .npy: header; object arrays → the pickle after it. */
void scan_npy_stream(scan_ctx *c, scan_rd *r, const char *member);
/* Zip (central directory, member checks, .pkl/.npy/nested members) and tar. */
void scan_zip(scan_ctx *c, const scan_src *src, const char *prefix, int depth);
void scan_tar(scan_ctx *c, const scan_src *src, const char *prefix, int depth);

#endif
