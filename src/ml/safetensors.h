/* safetensors: parameter counts from the file header (docs/ml.md).
 *
 * Layout: 8-byte little-endian u64 N, then N bytes of JSON
 *   {"__metadata__": {...}, "<tensor>": {"dtype": "BF16", "shape": [..],
 *    "data_offsets": [begin, end]}, ...}
 * then the data buffer (offsets are relative to its start).
 *
 * Contract: every function returns 0 or HUB_EINVALID (hostile/corrupt input, message set)
 * or the code of a failing callee (blob store, HUB_ERROR on OOM). Parameter objects map a
 * dtype name to an element count ({"BF16": 123}); unknown dtypes are counted under their
 * own name. *out objects are owned by the caller (json_decref). */
#ifndef HUB_ML_SAFETENSORS_H
#define HUB_ML_SAFETENSORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

/* The header length N from the first 8 bytes of a file of `file_size` bytes. Rejects
 * N == 0, N > file_size - 8 and N > ML_MAX_SAFETENSORS_HEADER. */
int safetensors_header_len(const unsigned char first8[8], uint64_t file_size, uint64_t *out_len);

/* Parse the N-byte JSON header of a file of `file_size` bytes. Each tensor's element count
 * is the product of its shape (overflow-checked); offsets must satisfy
 * begin <= end <= file_size - 8 - len; for known dtypes end - begin must equal the tensor's
 * byte size, for unknown ones it must hold at least one bit per element. */
int safetensors_parse_header(const char *json, size_t len, uint64_t file_size, json_t **out_params,
                             int64_t *out_total);

/* Both steps over a whole file held in memory (git blobs, fuzzing). */
int safetensors_parse_file(const unsigned char *buf, size_t len, json_t **out_params,
                           int64_t *out_total);

/* Both steps reading object `oid` from the blob store: exactly 8 bytes, then N bytes. */
int safetensors_read_params(blob_store *s, const char *oid, json_t **out_params,
                            int64_t *out_total);

/* The same with a budget: a header longer than *budget bytes is not read (HUB_ETOOBIG);
 * a read one is subtracted from *budget. */
int safetensors_read_params_budget(blob_store *s, const char *oid, uint64_t *budget,
                                   json_t **out_params, int64_t *out_total);

/* Add `from` (a parameter object) into `into`, per dtype and into *total (shards of one
 * model). HUB_EINVALID if a sum would overflow int64. */
int safetensors_params_merge(json_t *into, int64_t *total, const json_t *from, int64_t from_total);

#endif
