/* The tensor table of a safetensors file for the blob view: names, dtypes, shapes, read
 * from the header only (never the data), bounded by WEB_MAX_ST_HEADER. */
#include <stdlib.h>
#include <string.h>

#include "ml/safetensors.h"
#include "util/error.h"
#include "web/internal.h"

/* Headers above this are not parsed for display (the format allows 100 MB). */
#define WEB_MAX_ST_HEADER (16 * 1024 * 1024)

static int emit(const char *json, size_t len, size_t max, web_tensor_cb cb, void *payload,
                size_t *out_count) {
  json_error_t err;
  json_t *h = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
  *out_count = 0;
  if (!json_is_object(h)) {
    json_decref(h);
    return hub_error_set(HUB_EINVALID, "safetensors header is not a JSON object");
  }
  const char *k;
  json_t *v;
  int rc = 0;
  size_t n = 0;
  json_object_foreach(h, k, v) {
    if (!strcmp(k, "__metadata__") || !json_is_object(v)) continue;
    n++;
    if (n > max || rc) continue;
    web_tensor t;
    memset(&t, 0, sizeof t);
    t.name = k;
    t.dtype = json_string_value(json_object_get(v, "dtype"));
    if (!t.dtype) t.dtype = "?";
    json_t *shape = json_object_get(v, "shape");
    size_t nd = json_array_size(shape);
    t.ndim = nd > 8 ? -1 : (int)nd;
    t.numel = 1;
    for (size_t i = 0; i < nd; i++) {
      json_int_t d = json_integer_value(json_array_get(shape, i));
      if (d < 0) d = 0;
      if (i < 8) t.shape[i] = d;
      if (t.numel >= 0 && d && t.numel > INT64_MAX / d)
        t.numel = -1; /* overflow: unknown */
      else if (t.numel >= 0)
        t.numel *= d;
    }
    rc = cb(&t, payload);
  }
  json_decref(h);
  *out_count = n;
  return rc;
}

int web_tensors_mem(const unsigned char *buf, size_t len, size_t max, web_tensor_cb cb,
                    void *payload, size_t *out_count) {
  uint64_t n;
  *out_count = 0;
  if (len < 8) return hub_error_set(HUB_EINVALID, "file too short for a safetensors header");
  int rc = safetensors_header_len(buf, len, &n);
  if (rc) return rc;
  return emit((const char *)buf + 8, (size_t)n, max, cb, payload, out_count);
}

static int read_full(blob_stream *s, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    size_t n = 0;
    int rc = blob_stream_read(s, (char *)buf + got, len - got, &n);
    if (rc) return rc;
    if (!n) return hub_error_set(HUB_EINVALID, "safetensors file is truncated");
    got += n;
  }
  return 0;
}

int web_tensors_blob(blob_store *store, const char *oid, size_t max, web_tensor_cb cb,
                     void *payload, size_t *out_count) {
  blob_stream *s = NULL;
  char *json = NULL;
  int64_t size = 0;
  uint64_t n = 0;
  unsigned char first8[8];
  *out_count = 0;
  int rc = blob_open_stream(store, oid, &s, &size);
  if (rc) goto done;
  if ((rc = read_full(s, first8, 8))) goto done;
  if ((rc = safetensors_header_len(first8, (uint64_t)size, &n))) goto done;
  if (n > WEB_MAX_ST_HEADER) {
    rc = hub_error_set(HUB_ETOOBIG, "safetensors header too large to display (%llu bytes)",
                       (unsigned long long)n);
    goto done;
  }
  if (!(json = malloc((size_t)n))) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = read_full(s, json, (size_t)n))) goto done;
  rc = emit(json, (size_t)n, max, cb, payload, out_count);
done:
  free(json);
  if (s) blob_stream_close(s);
  return rc;
}
