/* libFuzzer: commit NDJSON parser. Invariants checked on success: every op path is valid,
 * oids are valid, sizes are -1 or >= 0, parentCommit is "" or 5..40 lowercase hex; the
 * streaming parser agrees with the one-shot one however the input is split. */
#include "api/ndjson.h"
#include "blob/blob.h"
#include "util/path.h"

#include <stdlib.h>
#include <string.h>

/* Fed in three pieces (split where the input says), the stream parser must agree with the
 * one-shot parse: same result code, same number of operations. */
static void check_stream(const unsigned char *data, size_t size, int want_rc, size_t want_ops) {
  size_t a = size ? data[0] % (size + 1) : 0, b = a + (size - a) / 2;
  ndjson_stream *s = NULL;
  ndjson_commit *c = NULL;
  if (ndjson_stream_new(&s, NULL, NULL)) abort();
  int rc = ndjson_stream_feed(s, (const char *)data, a);
  if (!rc) rc = ndjson_stream_feed(s, (const char *)data + a, b - a);
  if (!rc) rc = ndjson_stream_feed(s, (const char *)data + b, size - b);
  if (!rc) rc = ndjson_stream_finish(s, &c);
  if (rc != want_rc || (!rc && c->nops != want_ops) || (rc && c)) abort();
  ndjson_commit_free(c);
  ndjson_stream_free(s);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  ndjson_commit *c = NULL;
  int rc = ndjson_commit_parse(&c, (const char *)data, size);
  check_stream(data, size, rc, rc ? 0 : c->nops);
  if (rc != 0) {
    if (c) abort();
    return 0;
  }
  size_t pl = strlen(c->parent_commit);
  if (!c->summary || !c->description || (pl && (pl < 5 || pl > 40))) abort();
  for (size_t i = 0; i < pl; i++)
    if (!strchr("0123456789abcdef", c->parent_commit[i])) abort();
  for (size_t i = 0; i < c->nops; i++) {
    const ndjson_op *op = &c->ops[i];
    if (!path_valid(op->path)) abort();
    if (op->kind == NDJSON_OP_LFS_FILE && (!blob_oid_valid(op->oid) || op->size < -1)) abort();
    if (op->kind == NDJSON_OP_FILE && !op->content) abort();
  }
  ndjson_commit_free(c);
  return 0;
}
