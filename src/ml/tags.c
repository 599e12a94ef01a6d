#include "ml/tags.h"

#include <string.h>

#include "util/error.h"
#include "util/limits.h"

/* A short printable string (no control characters), else NULL. */
static const char *short_str(const json_t *v) {
  const char *s = json_string_value(v);
  if (!s || !*s || json_string_length(v) > HUB_MAX_SHORT_TEXT) return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7F) return NULL;
  return strlen(s) == json_string_length(v) ? s : NULL;
}

/* A card field that may be a string or a list of strings, as an array of usable strings. */
static json_t *str_list(const json_t *v, int (*ok)(const char *)) {
  json_t *arr = json_array();
  if (!arr) return NULL;
  if (json_is_string(v)) {
    const char *s = short_str(v);
    if (s && (!ok || ok(s))) json_array_append_new(arr, json_string(s));
    return arr;
  }
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    const char *s = short_str(e);
    if (s && (!ok || ok(s)) && json_array_size(arr) < ML_MAX_LIST_ITEMS)
      json_array_append_new(arr, json_string(s));
  }
  return arr;
}

/* A Hub repo id: "name" or "ns/name" of [A-Za-z0-9._-]. */
static int repo_id_ok(const char *s) {
  size_t n = strlen(s), slash = 0;
  if (n > 2 * HUB_MAX_NAME + 1 || s[0] == '/' || s[n - 1] == '/') return 0;
  for (const char *p = s; *p; p++) {
    if (*p == '/') {
      if (++slash > 1) return 0;
    } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '.' || *p == '_' || *p == '-'))
      return 0;
  }
  return 1;
}

static const char *const relations[] = {"finetune", "adapter", "quantized", "merge"};

int ml_card_facts_get(ml_card_facts *out, const json_t *card) {
  memset(out, 0, sizeof *out);
  out->pipeline_tag = short_str(json_object_get(card, "pipeline_tag"));
  out->library_name = short_str(json_object_get(card, "library_name"));
  json_t *lic = json_object_get(card, "license");
  out->license = short_str(json_is_array(lic) ? json_array_get(lic, 0) : lic);
  const char *rel = short_str(json_object_get(card, "base_model_relation"));
  for (size_t i = 0; rel && i < sizeof relations / sizeof *relations; i++)
    if (!strcmp(rel, relations[i])) out->base_model_relation = relations[i];
  out->tags = str_list(json_object_get(card, "tags"), NULL);
  out->languages = str_list(json_object_get(card, "language"), NULL);
  out->datasets = str_list(json_object_get(card, "datasets"), NULL);
  out->base_models = str_list(json_object_get(card, "base_model"), repo_id_ok);
  if (!out->tags || !out->languages || !out->datasets || !out->base_models) {
    ml_card_facts_dispose(out);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  return 0;
}

void ml_card_facts_dispose(ml_card_facts *f) {
  json_decref(f->tags);
  json_decref(f->languages);
  json_decref(f->datasets);
  json_decref(f->base_models);
  memset(f, 0, sizeof *f);
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

unsigned ml_file_kind(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (has_suffix(base, ".safetensors")) return ML_FILE_SAFETENSORS;
  if (has_suffix(base, ".gguf")) return ML_FILE_GGUF;
  if (has_suffix(base, ".onnx")) return ML_FILE_ONNX;
  if (has_suffix(base, ".bin") || has_suffix(base, ".pt") || has_suffix(base, ".pth"))
    return ML_FILE_PYTORCH;
  if (has_suffix(base, ".h5")) return ML_FILE_TF;
  if (has_suffix(base, ".msgpack")) return ML_FILE_JAX;
  if (strstr(base, "tfevents")) return ML_FILE_TENSORBOARD;
  return 0;
}

const char *ml_base_relation(const ml_card_facts *card, int has_adapter, int is_quantized) {
  if (card->base_model_relation) return card->base_model_relation;
  if (has_adapter) return "adapter";
  if (is_quantized) return "quantized";
  if (json_array_size(card->base_models) > 1) return "merge";
  return "finetune";
}

/* Append prefix + value (prefix may be NULL) unless value is empty or the tag is already
 * present (`seen` is the set). */
static void add(json_t *tags, json_t *seen, const char *prefix, const char *value) {
  char t[2 * HUB_MAX_SHORT_TEXT + 64];
  if (!value || !*value || json_array_size(tags) >= ML_MAX_LIST_ITEMS) return;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++)
    if (*p < 0x20 || *p == 0x7F) return;
  snprintf(t, sizeof t, "%s%s", prefix ? prefix : "", value);
  if (json_object_get(seen, t)) return;
  json_object_set_new(seen, t, json_true());
  json_array_append_new(tags, json_string(t));
}

static void add_list(json_t *tags, json_t *seen, const char *prefix, const json_t *list) {
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) add(tags, seen, prefix, json_string_value(e));
}

json_t *ml_tags_build(const ml_tags_input *in) {
  static const struct {
    unsigned bit;
    const char *tag;
  } kinds[] = {{ML_FILE_PYTORCH, "pytorch"},
               {ML_FILE_TF, "tf"},
               {ML_FILE_JAX, "jax"},
               {ML_FILE_ONNX, "onnx"},
               {ML_FILE_SAFETENSORS, "safetensors"},
               {ML_FILE_GGUF, "gguf"},
               {ML_FILE_TENSORBOARD, "tensorboard"}};
  json_t *tags = json_array(), *seen = json_object();
  if (!tags || !seen) {
    json_decref(tags);
    json_decref(seen);
    return NULL;
  }
  const ml_card_facts *c = in->card;
  add(tags, seen, NULL, in->library_name);
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (in->files & kinds[i].bit) add(tags, seen, NULL, kinds[i].tag);
  add(tags, seen, NULL, in->model_type);
  add(tags, seen, NULL, in->pipeline_tag);
  if (c) {
    add_list(tags, seen, NULL, c->tags);
    add_list(tags, seen, NULL, c->languages);
    add_list(tags, seen, "dataset:", c->datasets);
    add_list(tags, seen, "base_model:", c->base_models);
    if (in->relation) {
      char pre[64];
      snprintf(pre, sizeof pre, "base_model:%s:", in->relation);
      add_list(tags, seen, pre, c->base_models);
    }
    add(tags, seen, "license:", c->license);
  }
  json_decref(seen);
  return tags;
}
