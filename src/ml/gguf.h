/* GGUF (llama.cpp model files, versions 2 and 3): metadata facts from a file prefix.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
 * kv pairs (key = u64 length + bytes, u32 value type, value), then tensor infos (name,
 * u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset), then tensor data.
 *
 * The parser reads only the buffer it is given and never allocates by a count taken from
 * the file: big arrays (the tokenizer vocabulary) are bounds-checked and skipped. Every
 * malformed input is HUB_EINVALID with a message; a buffer that ends before the tensor
 * infos do is HUB_EINVALID with "truncated" in the message. *out is owned by the caller:
 *   {"architecture": "llama", "context_length": 4096, "total": <parameters>,
 *    "file_type": 15, "quantization": "Q4_K_M", "chat_template": "...",
 *    "bos_token": "<s>", "eos_token": "</s>"}
 * Keys whose source is missing (or not valid UTF-8) are omitted, except "total". */
#ifndef HUB_ML_GGUF_H
#define HUB_ML_GGUF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

/* Nesting of GGUF arrays of arrays accepted: bounds recursion. */
#define GGUF_MAX_ARRAY_DEPTH 4
/* Dimensions of one tensor (ggml has 4). */
#define GGUF_MAX_DIMS 8
/* Metadata key length (real keys are < 100 bytes). */
#define GGUF_MAX_KEY 65535

/* Parse the first `len` bytes of a GGUF file. */
int gguf_parse(const unsigned char *buf, size_t len, json_t **out);

/* Same, knowing the whole file has `file_size` bytes: a length or count reaching past
 * file_size is reported as a lie, one reaching past `len` only as truncation, which sets
 * *out_truncated (so a caller may retry with a longer prefix). */
int gguf__parse_prefix(const unsigned char *buf, size_t len, uint64_t file_size, json_t **out,
                       int *out_truncated);

/* llama.cpp's name for a general.file_type value ("Q4_K_M" for 15), or NULL. Static. */
const char *gguf_file_type_name(uint64_t file_type);

/* Parse object `oid` of the blob store, reading a growing prefix of at most
 * ML_MAX_GGUF_PREFIX bytes. */
int gguf_read(blob_store *s, const char *oid, json_t **out);

#endif
