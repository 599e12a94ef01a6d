#include "ml/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/limits.h"

/* Bits per element of the dtypes the safetensors spec defines. */
static const struct {
  const char *name;
  unsigned bits;
} dtypes[] = {
    {"BOOL", 8},    {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8},
    {"F8_E8M0", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16},    {"BF16", 16},
    {"I32", 32},    {"U32", 32}, {"F32", 32}, {"I64", 64},    {"U64", 64},
    {"F64", 64},    {"C64", 64}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6},
};

static unsigned dtype_bits(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (!strcmp(dtypes[i].name, name)) return dtypes[i].bits;
  return 0;
}

int safetensors_header_len(const unsigned char first8[8], uint64_t file_size, uint64_t *out_len) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | first8[i];
  *out_len = 0;
  if (file_size < 8) return hub_error_set(HUB_EINVALID, "safetensors: file shorter than 8 bytes");
  if (n == 0) return hub_error_set(HUB_EINVALID, "safetensors: empty header");
  if (n > (uint64_t)ML_MAX_SAFETENSORS_HEADER)
    return hub_error_set(HUB_EINVALID, "safetensors: header of %llu bytes is over the limit",
                         (unsigned long long)n);
  if (n > file_size - 8)
    return hub_error_set(HUB_EINVALID, "safetensors: header length %llu beyond the file",
                         (unsigned long long)n);
  *out_len = n;
  return 0;
}

static int add_count(json_t *params, const char *dtype, int64_t n) {
  json_t *cur = json_object_get(params, dtype);
  int64_t sum = cur ? (int64_t)json_integer_value(cur) : 0;
  if (__builtin_add_overflow(sum, n, &sum))
    return hub_error_set(HUB_EINVALID, "safetensors: parameter count overflows");
  if (json_object_set_new(params, dtype, json_integer(sum)))
    return hub_error_set(HUB_ERROR, "out of memory");
  return 0;
}

/* Element count of one tensor entry, checked against its data range. */
static int tensor_count(const char *name, json_t *t, uint64_t buf_size, const char **dtype,
                        int64_t *out) {
  json_t *jd = json_object_get(t, "dtype"), *js = json_object_get(t, "shape");
  json_t *jo = json_object_get(t, "data_offsets");
  if (!json_is_object(t) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
      json_array_size(jo) != 2)
    return hub_error_set(HUB_EINVALID, "safetensors: tensor '%.100s' is malformed", name);
  json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
  if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 ||
      json_integer_value(je) < json_integer_value(jb) ||
      (uint64_t)json_integer_value(je) > buf_size)
    return hub_error_set(HUB_EINVALID, "safetensors: tensor '%.100s' has bad data_offsets", name);
  uint64_t bytes = (uint64_t)(json_integer_value(je) - json_integer_value(jb));
  int64_t n = 1;
  size_t i;
  json_t *d;
  json_array_foreach(js, i, d) {
    if (!json_is_integer(d) || json_integer_value(d) < 0 ||
        __builtin_mul_overflow(n, (int64_t)json_integer_value(d), &n))
      return hub_error_set(HUB_EINVALID, "safetensors: tensor '%.100s' has a bad shape", name);
  }
  *dtype = json_string_value(jd);
  unsigned bits = dtype_bits(*dtype);
  uint64_t have_bits, need_bits;
  if (__builtin_mul_overflow(bytes, (uint64_t)8, &have_bits))
    return hub_error_set(HUB_EINVALID, "safetensors: tensor '%.100s' is too large", name);
  if (bits ? __builtin_mul_overflow((uint64_t)n, (uint64_t)bits, &need_bits) ||
                 need_bits > have_bits || have_bits - need_bits >= 8
           : (uint64_t)n > have_bits)
    return hub_error_set(HUB_EINVALID,
                         "safetensors: tensor '%.100s' shape does not match its %llu bytes", name,
                         (unsigned long long)bytes);
  *out = n;
  return 0;
}

int safetensors_parse_header(const char *json, size_t len, uint64_t file_size, json_t **out_params,
                             int64_t *out_total) {
  json_t *root = NULL, *params = NULL;
  json_error_t jerr;
  int64_t total = 0;
  int rc = 0;
  *out_params = NULL;
  *out_total = 0;
  if (len > (uint64_t)ML_MAX_SAFETENSORS_HEADER || file_size < 8 || len > file_size - 8)
    return hub_error_set(HUB_EINVALID, "safetensors: header length beyond the file");
  uint64_t buf_size = file_size - 8 - len;
  root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(root)) {
    rc = hub_error_set(HUB_EINVALID, "safetensors: header is not a JSON object: %s",
                       root ? "wrong type" : jerr.text);
    goto done;
  }
  params = json_object();
  if (!params) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  const char *name;
  json_t *t;
  json_object_foreach(root, name, t) {
    if (!strcmp(name, "__metadata__")) {
      if (!json_is_object(t)) {
        rc = hub_error_set(HUB_EINVALID, "safetensors: __metadata__ is not an object");
        goto done;
      }
      continue;
    }
    const char *dtype = NULL;
    int64_t n = 0;
    if ((rc = tensor_count(name, t, buf_size, &dtype, &n))) goto done;
    if ((rc = add_count(params, dtype, n))) goto done;
    if (__builtin_add_overflow(total, n, &total)) {
      rc = hub_error_set(HUB_EINVALID, "safetensors: parameter count overflows");
      goto done;
    }
  }
  *out_params = params;
  *out_total = total;
  params = NULL;
done:
  json_decref(params);
  json_decref(root);
  return rc;
}

int safetensors_parse_file(const unsigned char *buf, size_t len, json_t **out_params,
                           int64_t *out_total) {
  uint64_t n;
  *out_params = NULL;
  *out_total = 0;
  if (len < 8) return hub_error_set(HUB_EINVALID, "safetensors: file shorter than 8 bytes");
  int rc = safetensors_header_len(buf, len, &n);
  if (rc) return rc;
  return safetensors_parse_header((const char *)buf + 8, (size_t)n, len, out_params, out_total);
}

/* Read exactly `len` bytes; a short object is corrupt input. */
static int read_full(blob_stream *st, unsigned char *p, size_t len) {
  while (len) {
    size_t got = 0;
    int rc = blob_stream_read(st, p, len, &got);
    if (rc) return rc;
    if (got == 0) return hub_error_set(HUB_EINVALID, "safetensors: object ended early");
    p += got;
    len -= got;
  }
  return 0;
}

int safetensors_read_params(blob_store *s, const char *oid, json_t **out_params,
                            int64_t *out_total) {
  uint64_t unlimited = UINT64_MAX;
  return safetensors_read_params_budget(s, oid, &unlimited, out_params, out_total);
}

int safetensors_read_params_budget(blob_store *s, const char *oid, uint64_t *budget,
                                   json_t **out_params, int64_t *out_total) {
  blob_stream *st = NULL;
  unsigned char first8[8], *hdr = NULL;
  int64_t size = 0;
  uint64_t n = 0;
  *out_params = NULL;
  *out_total = 0;
  int rc = blob_open_stream(s, oid, &st, &size);
  if (rc) goto done;
  if (size < 8) {
    rc = hub_error_set(HUB_EINVALID, "safetensors: file shorter than 8 bytes");
    goto done;
  }
  if ((rc = read_full(st, first8, 8))) goto done;
  if ((rc = safetensors_header_len(first8, (uint64_t)size, &n))) goto done;
  if (n > *budget) {
    rc = hub_error_set(HUB_ETOOBIG,
                       "safetensors headers of this commit are over %lld bytes, "
                       "not read",
                       (long long)ML_MAX_DERIVE_HEADER_BYTES);
    goto done;
  }
  *budget -= n;
  hdr = malloc((size_t)n); /* n <= ML_MAX_SAFETENSORS_HEADER */
  if (!hdr) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = read_full(st, hdr, (size_t)n))) goto done;
  rc =
      safetensors_parse_header((const char *)hdr, (size_t)n, (uint64_t)size, out_params, out_total);
done:
  free(hdr);
  if (st) blob_stream_close(st);
  return rc;
}

int safetensors_params_merge(json_t *into, int64_t *total, const json_t *from, int64_t from_total) {
  const char *k;
  json_t *v;
  int rc;
  json_object_foreach((json_t *)from, k, v) {
    if ((rc = add_count(into, k, (int64_t)json_integer_value(v)))) return rc;
  }
  if (__builtin_add_overflow(*total, from_total, total))
    return hub_error_set(HUB_EINVALID, "safetensors: parameter count overflows");
  return 0;
}
