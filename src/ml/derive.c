#include "ml/derive.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "ml/card.h"
#include "ml/config.h"
#include "ml/eval.h"
#include "ml/gguf.h"
#include "ml/safetensors.h"
#include "ml/tags.h"
#include "ml/text.h"
#include "util/error.h"
#include "util/limits.h"

/* One file found by the scan (owned copy of what repo_list lent us). */
typedef struct {
  char *path;
  int is_lfs;
  char lfs_oid[65];
  uint64_t size;
} file_ref;

typedef struct {
  unsigned files; /* ML_FILE_* */
  unsigned hints; /* CONFIG_HAS_* */
  int has_adapter, has_model_index, has_st_config;
  file_ref readme, config, index, gguf;
  json_t *st; /* path → {"lfs": oid?, "size": n} of *.safetensors, ML_MAX_SAFETENSORS_SHARDS */
  int st_dropped;
} scan;

typedef struct {
  repo_handle *h;
  blob_store *blobs;
  const char *commit;
  json_t *warnings;
  json_t *st_seen;        /* LFS oid → [params, total] of safetensors headers parsed */
  uint64_t header_budget; /* ML_MAX_DERIVE_HEADER_BYTES, less what was parsed */
} ctx;

static void ref_set(file_ref *r, const repo_entry *e) {
  free(r->path);
  r->path = strdup(e->path);
  r->is_lfs = e->is_lfs;
  memcpy(r->lfs_oid, e->lfs_oid, sizeof r->lfs_oid);
  r->size = e->size;
}

static int is_any(const char *s, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(s, *list)) return 1;
  return 0;
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

static int scan_cb(const repo_entry *e, void *payload) {
  static const char *const tok[] = {
      "tokenizer.json", "tokenizer_config.json", "tokenizer.model",         "vocab.txt",
      "vocab.json",     "spiece.model",          "sentencepiece.bpe.model", NULL};
  scan *s = payload;
  const char *p = e->path;
  int root = !strchr(p, '/');
  if (e->type != REPO_ENTRY_FILE) return 0;
  unsigned kind = ml_file_kind(p);
  s->files |= kind;
  if (root) {
    if (!strcmp(p, "README.md"))
      ref_set(&s->readme, e);
    else if (!strcmp(p, "config.json"))
      ref_set(&s->config, e);
    else if (!strcmp(p, "adapter_config.json"))
      s->has_adapter = 1;
    else if (!strcmp(p, "model_index.json"))
      s->has_model_index = 1;
    else if (!strcmp(p, "config_sentence_transformers.json"))
      s->has_st_config = 1;
    else if (!strcmp(p, "preprocessor_config.json"))
      s->hints |= CONFIG_HAS_PREPROCESSOR;
    else if (!strcmp(p, "processor_config.json"))
      s->hints |= CONFIG_HAS_PROCESSOR;
    else if (is_any(p, tok))
      s->hints |= CONFIG_HAS_TOKENIZER;
    else if (has_suffix(p, ".safetensors.index.json") &&
             (!s->index.path || !strcmp(p, "model.safetensors.index.json")))
      ref_set(&s->index, e);
  }
  if (kind == ML_FILE_SAFETENSORS) {
    if (json_object_size(s->st) >= ML_MAX_SAFETENSORS_SHARDS) {
      s->st_dropped = 1;
      return 0;
    }
    json_t *o = json_pack("{s:I}", "size", (json_int_t)e->size);
    if (o && e->is_lfs) json_object_set_new(o, "lfs", json_string(e->lfs_oid));
    if (!o || json_object_set_new(s->st, p, o)) return hub_error_set(HUB_ERROR, "out of memory");
  }
  if (kind == ML_FILE_GGUF && (!s->gguf.path || e->size > s->gguf.size)) ref_set(&s->gguf, e);
  return 0;
}

static void warn(ctx *c, const char *path) {
  json_t *w = json_sprintf("%s: %s", path, hub_error_msg());
  if (!w) w = json_string("a model file could not be read (message is not UTF-8)");
  if (w && json_array_size(c->warnings) < ML_MAX_LIST_ITEMS)
    json_array_append_new(c->warnings, w);
  else
    json_decref(w);
}

/* Whole git blob at `path` of at most `max` bytes (LFS pointers are not followed). */
static int read_small(ctx *c, const file_ref *r, size_t max, void **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  if (r->is_lfs) return hub_error_set(HUB_EUNSUPPORTED, "stored in LFS, not read");
  if (r->size > max) return hub_error_set(HUB_ETOOBIG, "over %zu bytes, not read", max);
  return repo_read_path(c->h, c->commit, r->path, buf, len);
}

/* Parameters of one safetensors file (LFS through the blob store, else the git blob). */
static int st_file(ctx *c, const char *path, const json_t *info, json_t **params, int64_t *total) {
  const char *oid = json_string_value(json_object_get(info, "lfs"));
  if (oid) {
    /* Many paths may name one object (shards with equal content): parse it once. */
    json_t *seen = json_object_get(c->st_seen, oid);
    int rc;
    if (seen) {
      *params = json_deep_copy(json_array_get(seen, 0));
      *total = json_integer_value(json_array_get(seen, 1));
      return *params ? 0 : hub_error_set(HUB_ERROR, "out of memory");
    }
    if (!c->blobs) return hub_error_set(HUB_EUNSUPPORTED, "no blob store");
    rc = safetensors_read_params_budget(c->blobs, oid, &c->header_budget, params, total);
    if (!rc && c->st_seen)
      json_object_set_new(c->st_seen, oid, json_pack("[O,I]", *params, (json_int_t)*total));
    return rc;
  }
  file_ref r = {(char *)path, 0, "", (uint64_t)json_integer_value(json_object_get(info, "size"))};
  void *buf = NULL;
  size_t len = 0;
  int rc = read_small(c, &r, (size_t)ML_MAX_GGUF_PREFIX, &buf, &len);
  if (!rc) rc = safetensors_parse_file(buf, len, params, total);
  free(buf);
  return rc;
}

/* The shard set: distinct weight_map values of the index, else model.safetensors, else every
 * root *.safetensors. A set (object) of paths; NULL with a warning when unusable. */
static json_t *st_shards(ctx *c, const scan *s) {
  json_t *set = json_object();
  if (!set) return NULL;
  if (s->index.path) {
    void *buf = NULL;
    size_t len = 0;
    json_t *idx = NULL;
    int rc = read_small(c, &s->index, ML_MAX_SMALL_FILE, &buf, &len);
    if (!rc) idx = json_loadb(buf, len, 0, NULL); /* json_is_* are macros: no side effects */
    if (!rc && !json_is_object(idx)) rc = hub_error_set(HUB_EINVALID, "not a JSON object");
    json_t *wm = json_object_get(idx, "weight_map");
    if (!rc && !json_is_object(wm)) rc = hub_error_set(HUB_EINVALID, "no weight_map");
    const char *k;
    json_t *v;
    json_object_foreach(rc ? NULL : wm, k, v) {
      const char *f = json_string_value(v);
      if (!f || (!json_object_get(set, f) && json_object_size(set) >= ML_MAX_SAFETENSORS_SHARDS)) {
        rc = hub_error_set(HUB_EINVALID, "bad or too many shards in weight_map");
        break;
      }
      json_object_set_new(set, f, json_true());
    }
    free(buf);
    json_decref(idx);
    if (rc) {
      warn(c, s->index.path);
      json_decref(set);
      return NULL;
    }
    return set;
  }
  if (json_object_get(s->st, "model.safetensors")) {
    json_object_set_new(set, "model.safetensors", json_true());
    return set;
  }
  const char *k;
  json_t *v;
  json_object_foreach(s->st, k, v) if (!strchr(k, '/')) json_object_set_new(set, k, json_true());
  return set;
}

/* "safetensors": {"parameters", "total"}, or NULL (nothing found or a shard unreadable). */
static json_t *st_facts(ctx *c, const scan *s, int64_t *out_total) {
  json_t *set = st_shards(c, s), *params = json_object(), *res = NULL;
  int64_t total = 0;
  const char *k;
  json_t *v;
  if (!set || !params || !json_object_size(set)) goto done;
  json_object_foreach(set, k, v) {
    json_t *info = json_object_get(s->st, k), *p = NULL;
    int64_t t = 0;
    int rc = info ? st_file(c, k, info, &p, &t)
                  : hub_error_set(HUB_ENOTFOUND, "shard named by the index is missing");
    if (!rc) rc = safetensors_params_merge(params, &total, p, t);
    json_decref(p);
    if (rc) {
      warn(c, k);
      goto done;
    }
  }
  res = json_pack("{s:O,s:I}", "parameters", params, "total", (json_int_t)total);
  *out_total = total;
done:
  json_decref(params);
  json_decref(set);
  return res;
}

static json_t *gguf_facts(ctx *c, const scan *s) {
  json_t *g = NULL;
  int rc;
  if (!s->gguf.path) return NULL;
  if (s->gguf.is_lfs) {
    rc = c->blobs ? gguf_read(c->blobs, s->gguf.lfs_oid, &g)
                  : hub_error_set(HUB_EUNSUPPORTED, "no blob store");
  } else {
    void *buf = NULL;
    size_t len = 0;
    rc = read_small(c, &s->gguf, (size_t)ML_MAX_GGUF_PREFIX, &buf, &len);
    if (!rc) rc = gguf_parse(buf, len, &g);
    free(buf);
  }
  if (rc) warn(c, s->gguf.path);
  return g;
}

/* cardData / cardText / cardWarnings from README.md; *out_card borrows meta's cardData. */
static void card_facts(ctx *c, const scan *s, json_t *meta, json_t **out_card) {
  void *buf = NULL;
  size_t len = 0, ylen = 0, blen = 0;
  const char *yaml = NULL, *body = NULL;
  json_t *data = NULL, *w = json_array();
  *out_card = NULL;
  int rc = read_small(c, &s->readme, ML_MAX_SMALL_FILE, &buf, &len);
  if (!rc) rc = card_split(buf, len, &yaml, &ylen, &body, &blen);
  if (!rc && yaml) rc = card_yaml_to_json(yaml, ylen, &data);
  if (rc && w) json_array_append_new(w, json_sprintf("README.md: %s", hub_error_msg()));
  if (data) {
    json_object_set_new(meta, "cardData", data);
    *out_card = data;
  }
  if (body) {
    json_t *t = ml_text_json(body, blen, ML_MAX_CARD_TEXT);
    if (t)
      json_object_set_new(meta, "cardText", t);
    else if (w)
      json_array_append_new(w, json_string("README.md: text is not valid UTF-8"));
  }
  if (json_array_size(w)) json_object_set(meta, "cardWarnings", w);
  json_decref(w);
  free(buf);
}

static const char *infer_library(const scan *s, const json_t *config) {
  if (s->has_st_config) return "sentence-transformers";
  if (json_array_size(json_object_get(config, "architectures"))) return "transformers";
  if (s->has_adapter) return "peft";
  if (s->has_model_index) return "diffusers";
  if (s->files & ML_FILE_GGUF) return "gguf";
  return NULL;
}

static void set_str(json_t *o, const char *k, const char *v) {
  if (v) json_object_set_new(o, k, json_string(v));
}

static void set_list(json_t *o, const char *k, json_t *arr) {
  if (json_array_size(arr)) json_object_set(o, k, arr);
}

/* The model-only fields. */
static void model_facts(ctx *c, const scan *s, const ml_card_facts *card, json_t *cardData,
                        json_t *meta) {
  json_t *config = NULL, *tinfo = NULL;
  if (s->config.path) {
    void *buf = NULL;
    size_t len = 0;
    int rc = read_small(c, &s->config, ML_MAX_SMALL_FILE, &buf, &len);
    if (!rc) rc = config_parse(buf, len, s->hints, &config, &tinfo);
    if (rc) warn(c, s->config.path);
    free(buf);
  }
  const char *library = card->library_name ? card->library_name : infer_library(s, config);
  const char *pipeline = card->pipeline_tag
                             ? card->pipeline_tag
                             : json_string_value(json_object_get(tinfo, "pipeline_tag"));
  int quantized = (s->files & ML_FILE_GGUF) || json_object_get(config, "quantization_config");
  const char *relation = NULL;
  if (json_array_size(card->base_models)) {
    relation = ml_base_relation(card, s->has_adapter, quantized);
    json_t *models = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(card->base_models, i, id)
        json_array_append_new(models, json_pack("{s:O}", "id", id));
    json_object_set_new(meta, "baseModels",
                        json_pack("{s:s,s:o}", "relation", relation, "models", models));
  }
  ml_tags_input ti = {library,  s->files, json_string_value(json_object_get(config, "model_type")),
                      pipeline, relation, card};
  json_object_set_new(meta, "tags", ml_tags_build(&ti));
  set_str(meta, "pipeline_tag", pipeline);
  set_str(meta, "library_name", library);
  if (config) json_object_set(meta, "config", config);
  if (tinfo) json_object_set(meta, "transformersInfo", tinfo);

  int64_t st_total = 0;
  json_t *st = (s->files & ML_FILE_SAFETENSORS) ? st_facts(c, s, &st_total) : NULL;
  json_t *g = gguf_facts(c, s);
  if (st) json_object_set_new(meta, "safetensors", st);
  if (g) json_object_set_new(meta, "gguf", g);
  if (st)
    json_object_set_new(meta, "num_parameters", json_integer(st_total));
  else if (json_is_integer(json_object_get(g, "total")))
    json_object_set(meta, "num_parameters", json_object_get(g, "total"));

  json_t *mi = json_object_get(cardData, "model-index");
  if (mi) {
    json_object_set(meta, "model-index", mi);
    json_t *ev = ml_eval_results(mi);
    if (json_array_size(ev)) json_object_set(meta, "evalResults", ev);
    json_decref(ev);
  }
  json_decref(config);
  json_decref(tinfo);
}

int ml_derive(repo_handle *h, blob_store *blobs, const char *commit_sha, int repo_type,
              json_t **out_meta) {
  scan s;
  ml_card_facts card;
  ctx c = {h, blobs, commit_sha, json_array(), json_object(), (uint64_t)ML_MAX_DERIVE_HEADER_BYTES};
  json_t *meta = json_object(), *cardData = NULL;
  int rc = 0, have_card = 0;
  memset(&s, 0, sizeof s);
  *out_meta = NULL;
  s.st = json_object();
  if (!meta || !s.st || !c.warnings) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  if ((rc = repo_list(h, commit_sha, "", 1, scan_cb, &s))) goto done;
  if (s.readme.path) card_facts(&c, &s, meta, &cardData);
  if ((rc = ml_card_facts_get(&card, cardData))) goto done;
  have_card = 1;
  if (repo_type == HUB_REPO_MODEL) {
    model_facts(&c, &s, &card, cardData, meta);
  } else {
    ml_tags_input ti = {NULL, 0, NULL, NULL, NULL, &card};
    json_object_set_new(meta, "tags", ml_tags_build(&ti));
  }
  set_str(meta, "license", card.license);
  set_list(meta, "languages", card.languages);
  set_list(meta, "datasets", card.datasets);
  if (s.st_dropped)
    json_array_append_new(c.warnings, json_string("too many *.safetensors files; some ignored"));
  set_list(meta, "warnings", c.warnings);
  *out_meta = meta;
  meta = NULL;
done:
  if (have_card) ml_card_facts_dispose(&card);
  free(s.readme.path);
  free(s.config.path);
  free(s.index.path);
  free(s.gguf.path);
  json_decref(s.st);
  json_decref(c.warnings);
  json_decref(c.st_seen);
  json_decref(meta);
  return rc;
}
