/* Model-card fields, file kinds and base-model relation → the Hub's tag list.
 *
 * The card (README front matter as JSON, see card.h) is read leniently: a field of the
 * wrong type is ignored, strings are kept only if short (HUB_MAX_SHORT_TEXT) and free of
 * control characters, lists are capped at ML_MAX_LIST_ITEMS. */
#ifndef HUB_ML_TAGS_H
#define HUB_ML_TAGS_H

#include <jansson.h>

/* Normalised card fields. Strings borrow from the card JSON; arrays are owned (released
 * by ml_card_facts_dispose()). Absent fields are NULL / empty arrays. */
typedef struct {
  const char *pipeline_tag;
  const char *library_name;
  const char *license;
  const char *base_model_relation; /* "finetune"|"adapter"|"quantized"|"merge" or NULL */
  json_t *tags;                    /* card `tags` */
  json_t *languages;               /* card `language` (string or list) */
  json_t *datasets;                /* card `datasets` */
  json_t *base_models;             /* card `base_model`, ids that look like "ns/name" */
} ml_card_facts;

/* Fill *out from `card` (may be NULL). HUB_ERROR on OOM (then *out holds nothing). */
int ml_card_facts_get(ml_card_facts *out, const json_t *card);
void ml_card_facts_dispose(ml_card_facts *f);

/* File kinds that become tags, in the Hub's order. */
enum {
  ML_FILE_PYTORCH = 1 << 0,     /* *.bin, *.pt, *.pth */
  ML_FILE_TF = 1 << 1,          /* *.h5 */
  ML_FILE_JAX = 1 << 2,         /* *.msgpack */
  ML_FILE_ONNX = 1 << 3,        /* *.onnx */
  ML_FILE_SAFETENSORS = 1 << 4, /* *.safetensors */
  ML_FILE_GGUF = 1 << 5,        /* *.gguf */
  ML_FILE_TENSORBOARD = 1 << 6, /* *tfevents* */
};

/* The ML_FILE_* kind of one repo path (0 for none). */
unsigned ml_file_kind(const char *path);

/* Relation of a model to its base models: the card's base_model_relation, else "adapter"
 * (has_adapter: adapter_config.json exists), "quantized" (is_quantized: GGUF files or a
 * quantization_config), "merge" (several base models), "finetune". Static string. */
const char *ml_base_relation(const ml_card_facts *card, int has_adapter, int is_quantized);

typedef struct {
  const char *library_name; /* final library (card or inferred), may be NULL */
  unsigned files;           /* ML_FILE_* bits */
  const char *model_type;   /* config.json model_type, may be NULL */
  const char *pipeline_tag; /* final pipeline tag, may be NULL */
  const char *relation;     /* base-model relation when the card names base models */
  const ml_card_facts *card;
} ml_tags_input;

/* The tag list, deduplicated, in the Hub's order: library, file formats, model_type,
 * pipeline tag, card tags, languages, "dataset:<id>", "base_model:<id>" and
 * "base_model:<relation>:<id>", "license:<x>". NULL on OOM. Owned by the caller. */
json_t *ml_tags_build(const ml_tags_input *in);

#endif
