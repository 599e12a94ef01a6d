#include "ml/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "ml/text.h"
#include "util/error.h"
#include "util/limits.h"

enum {
  T_U8 = 0,
  T_I8,
  T_U16,
  T_I16,
  T_U32,
  T_I32,
  T_F32,
  T_BOOL,
  T_STRING,
  T_ARRAY,
  T_U64,
  T_I64,
  T_F64,
  T_COUNT
};

/* Fixed size of each scalar type; 0 for string and array. */
static const unsigned type_size[T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* llama.cpp's llama_ftype values (general.file_type), as llama-quantize names them. */
static const char *const ftype_names[] = {
    [0] = "F32",           [1] = "F16",       [2] = "Q4_0",    [3] = "Q4_1",
    [4] = "Q4_1_SOME_F16", [7] = "Q8_0",      [8] = "Q5_0",    [9] = "Q5_1",
    [10] = "Q2_K",         [11] = "Q3_K_S",   [12] = "Q3_K_M", [13] = "Q3_K_L",
    [14] = "Q4_K_S",       [15] = "Q4_K_M",   [16] = "Q5_K_S", [17] = "Q5_K_M",
    [18] = "Q6_K",         [19] = "IQ2_XXS",  [20] = "IQ2_XS", [21] = "Q2_K_S",
    [22] = "IQ3_XS",       [23] = "IQ3_XXS",  [24] = "IQ1_S",  [25] = "IQ4_NL",
    [26] = "IQ3_S",        [27] = "IQ3_M",    [28] = "IQ2_S",  [29] = "IQ2_M",
    [30] = "IQ4_XS",       [31] = "IQ1_M",    [32] = "BF16",   [33] = "Q4_0_4_4",
    [34] = "Q4_0_4_8",     [35] = "Q4_0_8_8", [36] = "TQ1_0",  [37] = "TQ2_0",
    [38] = "MXFP4_MOE",
};

const char *gguf_file_type_name(uint64_t ft) {
  return ft < sizeof ftype_names / sizeof ftype_names[0] ? ftype_names[ft] : NULL;
}

typedef struct {
  const unsigned char *p;
  size_t len, off;
  uint64_t file_size; /* UINT64_MAX when unknown */
  int truncated;
} cursor;

/* Ensure n more bytes are available. */
static int need(cursor *c, uint64_t n, const char *what) {
  if (n <= c->len - c->off) return 0;
  if (c->file_size != UINT64_MAX && (n > c->file_size || c->off > c->file_size - n))
    return hub_error_set(HUB_EINVALID, "GGUF: %s at byte %zu claims more bytes than the file has",
                         what, c->off);
  c->truncated = 1;
  return hub_error_set(HUB_EINVALID, "GGUF: truncated at byte %zu (reading %s)", c->off, what);
}

static uint64_t le(const unsigned char *p, unsigned n) {
  uint64_t v = 0;
  while (n--)
    v = (v << 8) | p[n];
  return v;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
  int rc = need(c, 4, what);
  if (rc) return rc;
  *v = (uint32_t)le(c->p + c->off, 4);
  c->off += 4;
  return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
  int rc = need(c, 8, what);
  if (rc) return rc;
  *v = le(c->p + c->off, 8);
  c->off += 8;
  return 0;
}

/* A string: *s borrows from the buffer. */
static int rd_str(cursor *c, const char **s, uint64_t *n, const char *what) {
  int rc = rd_u64(c, n, what);
  if (rc) return rc;
  if ((rc = need(c, *n, what))) return rc;
  *s = (const char *)c->p + c->off;
  c->off += (size_t)*n;
  return 0;
}

/* Skip n elements of a fixed size. */
static int skip_fixed(cursor *c, uint64_t n, unsigned size, const char *what) {
  uint64_t bytes;
  if (__builtin_mul_overflow(n, (uint64_t)size, &bytes))
    return hub_error_set(HUB_EINVALID, "GGUF: %s count %llu is absurd", what,
                         (unsigned long long)n);
  int rc = need(c, bytes, what);
  if (rc) return rc;
  c->off += (size_t)bytes;
  return 0;
}

/* One decoded value (only what the facts need). */
typedef struct {
  uint32_t type;
  int is_int;
  uint64_t u;    /* integer value (negative ones are not useful here) */
  const char *s; /* T_STRING */
  uint64_t slen;
  uint32_t elem_type; /* T_ARRAY */
  uint64_t count;
  size_t elems_off; /* offset of the first array element */
} value;

static int rd_value(cursor *c, uint32_t type, int depth, value *v);

static int skip_array(cursor *c, uint32_t et, uint64_t n, int depth) {
  if (et >= T_COUNT) return hub_error_set(HUB_EINVALID, "GGUF: unknown array element type %u", et);
  if (type_size[et]) return skip_fixed(c, n, type_size[et], "array");
  if (et == T_ARRAY && depth >= GGUF_MAX_ARRAY_DEPTH)
    return hub_error_set(HUB_EINVALID, "GGUF: arrays nested too deeply");
  /* Each string (array) element takes at least 8 (12) bytes: a count that cannot fit is
   * refused before looping (skip_fixed then fails with the right message). */
  unsigned min = et == T_STRING ? 8 : 12;
  if (n > (c->len - c->off) / min) return skip_fixed(c, n, min, "array");
  int rc;
  for (uint64_t i = 0; i < n; i++) {
    value ev;
    if ((rc = rd_value(c, et, depth + 1, &ev))) return rc;
  }
  return 0;
}

static int rd_value(cursor *c, uint32_t type, int depth, value *v) {
  int rc;
  memset(v, 0, sizeof *v);
  v->type = type;
  if (type >= T_COUNT) return hub_error_set(HUB_EINVALID, "GGUF: unknown value type %u", type);
  if (type == T_STRING) return rd_str(c, &v->s, &v->slen, "string value");
  if (type == T_ARRAY) {
    if ((rc = rd_u32(c, &v->elem_type, "array type"))) return rc;
    if ((rc = rd_u64(c, &v->count, "array count"))) return rc;
    v->elems_off = c->off;
    return skip_array(c, v->elem_type, v->count, depth);
  }
  unsigned sz = type_size[type];
  if ((rc = need(c, sz, "value"))) return rc;
  uint64_t raw = le(c->p + c->off, sz);
  c->off += sz;
  if (type == T_F32 || type == T_F64) return 0;
  v->is_int = 1;
  /* Sign-extend the signed types, then keep only non-negative values. */
  int64_t sv = type == T_I8    ? (int8_t)raw
               : type == T_I16 ? (int16_t)raw
               : type == T_I32 ? (int32_t)raw
                               : (int64_t)raw;
  if ((type == T_I8 || type == T_I16 || type == T_I32 || type == T_I64) && sv < 0) v->is_int = 0;
  v->u = raw;
  if (type == T_I8 || type == T_I16 || type == T_I32) v->u = (uint64_t)sv;
  return 0;
}

static int key_is(const char *k, uint64_t n, const char *lit) {
  return n == strlen(lit) && !memcmp(k, lit, n);
}

#define CTX_SUFFIX ".context_length"
#define MAX_CTX_KEYS 8

typedef struct {
  const char *arch;
  uint64_t arch_len;
  const char *ctx_key[MAX_CTX_KEYS]; /* "<arch>.context_length" keys seen */
  uint64_t ctx_key_len[MAX_CTX_KEYS], ctx_val[MAX_CTX_KEYS];
  int nctx;
  int has_ft, has_bos, has_eos, has_tokens;
  uint64_t ft, bos, eos;
  const char *tmpl;
  uint64_t tmpl_len;
  uint64_t ntokens;
  size_t tokens_off;
} facts;

static void note_kv(facts *f, const char *k, uint64_t kn, const value *v) {
  size_t sl = strlen(CTX_SUFFIX);
  if (v->type == T_STRING && key_is(k, kn, "general.architecture")) {
    f->arch = v->s;
    f->arch_len = v->slen;
  } else if (v->is_int && key_is(k, kn, "general.file_type")) {
    f->has_ft = 1;
    f->ft = v->u;
  } else if (v->type == T_STRING && key_is(k, kn, "tokenizer.chat_template")) {
    f->tmpl = v->s;
    f->tmpl_len = v->slen;
  } else if (v->is_int && key_is(k, kn, "tokenizer.ggml.bos_token_id")) {
    f->has_bos = 1;
    f->bos = v->u;
  } else if (v->is_int && key_is(k, kn, "tokenizer.ggml.eos_token_id")) {
    f->has_eos = 1;
    f->eos = v->u;
  } else if (v->type == T_ARRAY && v->elem_type == T_STRING &&
             key_is(k, kn, "tokenizer.ggml.tokens")) {
    f->has_tokens = 1;
    f->ntokens = v->count;
    f->tokens_off = v->elems_off;
  } else if (v->is_int && kn > sl && !memcmp(k + kn - sl, CTX_SUFFIX, sl) &&
             f->nctx < MAX_CTX_KEYS) {
    f->ctx_key[f->nctx] = k;
    f->ctx_key_len[f->nctx] = kn - sl;
    f->ctx_val[f->nctx++] = v->u;
  }
}

/* Token `id` of the (already bounds-checked) vocabulary array, as JSON, or NULL. */
static json_t *token_text(const cursor *c0, const facts *f, uint64_t id) {
  if (!f->has_tokens || id >= f->ntokens) return NULL;
  cursor c = *c0;
  c.off = f->tokens_off;
  const char *s = NULL;
  uint64_t n = 0;
  for (uint64_t i = 0; i <= id; i++)
    if (rd_str(&c, &s, &n, "token")) return NULL;
  return ml_text_json(s, (size_t)n, HUB_MAX_SHORT_TEXT);
}

static void set_opt(json_t *o, const char *k, json_t *v) {
  if (v) json_object_set_new(o, k, v);
}

int gguf__parse_prefix(const unsigned char *buf, size_t len, uint64_t file_size, json_t **out,
                       int *out_truncated) {
  cursor c = {buf, len, 0, file_size, 0};
  facts f;
  json_t *o = NULL;
  uint32_t version = 0;
  uint64_t ntensors = 0, nkv = 0;
  int64_t total = 0;
  int rc;
  memset(&f, 0, sizeof f);
  *out = NULL;
  if (out_truncated) *out_truncated = 0;
  if ((rc = need(&c, 4, "magic"))) goto done;
  if (memcmp(buf, "GGUF", 4)) {
    rc = hub_error_set(HUB_EINVALID, "GGUF: bad magic");
    goto done;
  }
  c.off = 4;
  if ((rc = rd_u32(&c, &version, "version"))) goto done;
  if (version != 2 && version != 3) {
    rc = hub_error_set(HUB_EINVALID, "GGUF: unsupported version %u%s", version,
                       (version & 0xFFFF) == 0 ? " (big-endian files are not supported)" : "");
    goto done;
  }
  if ((rc = rd_u64(&c, &ntensors, "tensor count")) || (rc = rd_u64(&c, &nkv, "kv count")))
    goto done;
  /* Loops below consume >= 13 (kv) / >= 24 (tensor) bytes per item, so they end within the
   * buffer whatever the counts say. */
  for (uint64_t i = 0; i < nkv; i++) {
    const char *k;
    uint64_t kn;
    uint32_t type;
    value v;
    if ((rc = rd_u64(&c, &kn, "key length"))) goto done;
    if (kn > GGUF_MAX_KEY) {
      rc = hub_error_set(HUB_EINVALID, "GGUF: key of %llu bytes is absurd", (unsigned long long)kn);
      goto done;
    }
    if ((rc = need(&c, kn, "key"))) goto done;
    k = (const char *)buf + c.off;
    c.off += (size_t)kn;
    if ((rc = rd_u32(&c, &type, "value type")) || (rc = rd_value(&c, type, 0, &v))) goto done;
    note_kv(&f, k, kn, &v);
  }
  for (uint64_t i = 0; i < ntensors; i++) {
    const char *name;
    uint64_t nn, dim;
    uint32_t ndims, gtype;
    int64_t n = 1;
    if ((rc = rd_str(&c, &name, &nn, "tensor name")) || (rc = rd_u32(&c, &ndims, "n_dims")))
      goto done;
    if (ndims > GGUF_MAX_DIMS) {
      rc = hub_error_set(HUB_EINVALID, "GGUF: tensor with %u dimensions", ndims);
      goto done;
    }
    for (uint32_t d = 0; d < ndims; d++) {
      if ((rc = rd_u64(&c, &dim, "tensor dims"))) goto done;
      if (dim > INT64_MAX || __builtin_mul_overflow(n, (int64_t)dim, &n)) {
        rc = hub_error_set(HUB_EINVALID, "GGUF: tensor shape overflows");
        goto done;
      }
    }
    if ((rc = rd_u32(&c, &gtype, "tensor type")) || (rc = rd_u64(&c, &dim, "tensor offset")))
      goto done;
    if (__builtin_add_overflow(total, n, &total)) {
      rc = hub_error_set(HUB_EINVALID, "GGUF: parameter count overflows");
      goto done;
    }
  }
  if (!(o = json_object())) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if (f.arch) {
    set_opt(o, "architecture", ml_text_json(f.arch, (size_t)f.arch_len, HUB_MAX_SHORT_TEXT));
    for (int i = 0; i < f.nctx; i++)
      if (f.ctx_key_len[i] == f.arch_len && !memcmp(f.ctx_key[i], f.arch, f.arch_len) &&
          f.ctx_val[i] <= INT64_MAX) {
        json_object_set_new(o, "context_length", json_integer((json_int_t)f.ctx_val[i]));
        break;
      }
  }
  json_object_set_new(o, "total", json_integer(total));
  if (f.has_ft && f.ft <= INT64_MAX) {
    json_object_set_new(o, "file_type", json_integer((json_int_t)f.ft));
    const char *q = gguf_file_type_name(f.ft);
    if (q) json_object_set_new(o, "quantization", json_string(q));
  }
  if (f.tmpl)
    set_opt(o, "chat_template", ml_text_json(f.tmpl, (size_t)f.tmpl_len, ML_MAX_CHAT_TEMPLATE));
  if (f.has_bos) set_opt(o, "bos_token", token_text(&c, &f, f.bos));
  if (f.has_eos) set_opt(o, "eos_token", token_text(&c, &f, f.eos));
  *out = o;
  o = NULL;
done:
  if (out_truncated) *out_truncated = c.truncated;
  json_decref(o);
  return rc;
}

int gguf_parse(const unsigned char *buf, size_t len, json_t **out) {
  return gguf__parse_prefix(buf, len, UINT64_MAX, out, NULL);
}

int gguf_read(blob_store *s, const char *oid, json_t **out) {
  blob_stream *st = NULL;
  unsigned char *buf = NULL;
  int64_t size = 0;
  size_t have = 0, want = 1024 * 1024;
  int rc, truncated = 0;
  *out = NULL;
  if ((rc = blob_open_stream(s, oid, &st, &size))) goto done;
  size_t limit =
      (uint64_t)size < (uint64_t)ML_MAX_GGUF_PREFIX ? (size_t)size : (size_t)ML_MAX_GGUF_PREFIX;
  /* Read a growing prefix (1 MB, 8 MB, 64 MB): most files' metadata fits in the first. */
  for (;;) {
    if (want > limit) want = limit;
    unsigned char *nb = realloc(buf, want ? want : 1);
    if (!nb) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      goto done;
    }
    buf = nb;
    while (have < want) {
      size_t got = 0;
      if ((rc = blob_stream_read(st, buf + have, want - have, &got))) goto done;
      if (!got) break;
      have += got;
    }
    rc = gguf__parse_prefix(buf, have, (uint64_t)size, out, &truncated);
    if (!rc || !truncated || have < want || want >= limit) break;
    want *= 8;
  }
done:
  free(buf);
  if (st) blob_stream_close(st);
  return rc;
}
