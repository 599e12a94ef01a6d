/* config.json (transformers) → the Hub's "config" subset and "transformersInfo".
 *
 * "config" keeps: "architectures" (strings), "model_type", and "quantization_config"
 * reduced to its scalar members (quant_method, bits, load_in_4bit, ...).
 * "transformersInfo" is {"auto_model": "AutoModelFor...", "pipeline_tag"?: "...",
 * "processor"?: "Auto..."}, inferred from the first architecture whose class-name suffix is
 * known (*ForCausalLM → AutoModelForCausalLM + text-generation, ...; docs/ml.md). auto_model
 * is always present when transformersInfo is. The processor comes from which
 * tokenizer/preprocessor files the repo holds, passed as CONFIG_HAS_* hints. */
#ifndef HUB_ML_CONFIG_H
#define HUB_ML_CONFIG_H

#include <jansson.h>
#include <stddef.h>

enum {
  CONFIG_HAS_TOKENIZER = 1,    /* tokenizer.json / tokenizer_config.json / vocab files */
  CONFIG_HAS_PREPROCESSOR = 2, /* preprocessor_config.json */
  CONFIG_HAS_PROCESSOR = 4,    /* processor_config.json */
};

/* Architecture names kept, and their length: bounds the subset a hostile config yields. */
#define CONFIG_MAX_ARCHITECTURES 16

/* Parse config.json text. Not a JSON object → HUB_EINVALID. *out_config is always set on
 * success; *out_tinfo is NULL when no architecture is recognised. Both owned by the
 * caller. */
int config_parse(const char *text, size_t len, unsigned hints, json_t **out_config,
                 json_t **out_tinfo);

/* {auto_model, pipeline_tag} for one architecture class name (and its config's
 * model_type, may be NULL; has_vision: the config has a vision_config). 0 if unknown. */
int config_auto_model(const char *arch, const char *model_type, int has_vision,
                      const char **out_auto, const char **out_pipeline);

#endif
