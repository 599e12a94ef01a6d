#include "ml/eval.h"

#include "util/limits.h"

/* obj[k1] if a string, else obj[k2] if a string, else NULL (borrowed). */
static json_t *str_of(const json_t *obj, const char *k1, const char *k2) {
  json_t *v = json_object_get(obj, k1);
  if (json_is_string(v)) return v;
  v = k2 ? json_object_get(obj, k2) : NULL;
  return json_is_string(v) ? v : NULL;
}

json_t *ml_eval_results(const json_t *model_index) {
  json_t *out = json_array();
  size_t i, j, k;
  json_t *model, *res, *m;
  if (!out) return NULL;
  json_array_foreach(model_index, i, model) {
    json_array_foreach(json_object_get(model, "results"), j, res) {
      json_t *task = str_of(json_object_get(res, "task"), "type", "name");
      json_t *ds = str_of(json_object_get(res, "dataset"), "type", "name");
      json_array_foreach(json_object_get(res, "metrics"), k, m) {
        json_t *metric = str_of(m, "type", "name"), *value = json_object_get(m, "value");
        if (!metric || !(json_is_number(value) || json_is_string(value) || json_is_boolean(value)))
          continue;
        if (json_array_size(out) >= ML_MAX_LIST_ITEMS) return out;
        json_t *e = json_pack("{s:O?,s:O?,s:O,s:O}", "task", task, "dataset", ds, "metric", metric,
                              "value", value);
        if (!e || json_array_append_new(out, e)) {
          json_decref(out);
          return NULL;
        }
      }
    }
  }
  return out;
}
