/* libFuzzer: commit NDJSON parser. Invariants checked on success: every op path is valid,
 * oids are valid, sizes are -1 or >= 0, parentCommit is "" or 5..40 lowercase hex. */
#include "api/ndjson.h"
#include "blob/blob.h"
#include "util/path.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  ndjson_commit *c = NULL;
  if (ndjson_commit_parse(&c, (const char *)data, size) != 0) {
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
