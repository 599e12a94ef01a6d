/* Parser for the commit API body (hf-api.md §5.5): newline-delimited JSON, one header line
 * then operation lines.
 *
 *   {"key":"header","value":{"summary":s,"description":s?,"parentCommit":hex?}}
 *   {"key":"file","value":{"path":p,"content":s,"encoding":"base64"|"utf-8"}}
 *   {"key":"lfsFile","value":{"path":p,"oid":hex64,"algo":"sha256"?,"size":n?,"oldPath":p?}}
 *   {"key":"deletedFile","value":{"path":p}}
 *   {"key":"deletedFolder","value":{"path":p}}      (one trailing '/' is stripped)
 *
 * Lines end in LF or CRLF; the last may lack it; blank lines are skipped. The first non-blank
 * line must be the header, and only it. Unknown keys, wrong types, bad paths (path_check_n),
 * bad base64, a non-sha256 algo, an oid that is not 64 lowercase hex, a negative size and
 * parentCommit that is not 5..40 hex are HUB_EINVALID with "line N: ..." in the message.
 * More than HUB_MAX_COMMIT_OPS operations is HUB_ETOOBIG. JSON null counts as absent for
 * optional fields. Duplicate JSON keys within one object are rejected.
 *
 * The body can be fed as it arrives (ndjson_stream_*): each line is parsed once complete,
 * and only the unfinished line is kept, at most HUB_MAX_NDJSON_LINE bytes (a longer line is
 * HUB_ETOOBIG), so memory does not grow with the body. */
#ifndef HUB_API_NDJSON_H
#define HUB_API_NDJSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  NDJSON_OP_FILE,
  NDJSON_OP_LFS_FILE,
  NDJSON_OP_DELETED_FILE,
  NDJSON_OP_DELETED_FOLDER,
} ndjson_op_kind;

typedef struct {
  ndjson_op_kind kind;
  char *path;             /* valid per path_valid(); folders without trailing '/' */
  unsigned char *content; /* FILE: decoded bytes (NUL-terminated for convenience) */
  size_t content_len;     /* FILE: length of content */
  int64_t content_off;    /* FILE: where the op callback moved content (content is NULL
                             then), for its own use; -1 while content is in memory */
  char oid[65];           /* LFS_FILE: sha256, 64 lowercase hex; "" otherwise */
  int64_t size;           /* LFS_FILE: size, or -1 when not given; -1 otherwise */
} ndjson_op;

typedef struct {
  char *summary;          /* never NULL */
  char *description;      /* never NULL; "" when absent */
  char parent_commit[41]; /* lowercase hex, 5..40 chars; "" when absent */
  ndjson_op *ops;         /* in body order */
  size_t nops;
} ndjson_commit;

/* Parse `len` bytes at `buf` (not NUL-terminated; may contain NULs, which are invalid).
 * *out is owned by the caller: free it with ndjson_commit_free(). */
int ndjson_commit_parse(ndjson_commit **out, const char *buf, size_t len);
void ndjson_commit_free(ndjson_commit *c);

/* Incremental parsing. The callback (may be NULL) sees each operation right after its line
 * is parsed; it may take a FILE op's content (free it, set content to NULL, record
 * content_off) so contents need not stay in memory. A non-zero return fails the parse with
 * that code. Errors are sticky: after one, feed and finish return it again. */
typedef struct ndjson_stream ndjson_stream;
typedef int (*ndjson_op_cb)(void *payload, ndjson_op *op);
/* *out is owned by the caller: free it with ndjson_stream_free(). */
int ndjson_stream_new(ndjson_stream **out, ndjson_op_cb cb, void *payload);
int ndjson_stream_feed(ndjson_stream *s, const char *data, size_t len);
/* Bytes of memory the unfinished line holds. */
size_t ndjson_stream_buffered(const ndjson_stream *s);
/* The body ended: parse the last line (it may lack its newline) and hand over the commit
 * (*out owned by the caller: ndjson_commit_free()). */
int ndjson_stream_finish(ndjson_stream *s, ndjson_commit **out);
void ndjson_stream_free(ndjson_stream *s);

#endif
