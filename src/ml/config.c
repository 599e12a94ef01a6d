#include "ml/config.h"

#include <string.h>

#include "ml/text.h"
#include "util/error.h"
#include "util/limits.h"

/* Class-name suffix → Auto class and pipeline, most specific first ("...Model" last). */
static const struct {
  const char *suffix, *auto_model, *pipeline;
} suffixes[] = {
    {"ForCausalLM", "AutoModelForCausalLM", "text-generation"},
    {"ForSequenceClassification", "AutoModelForSequenceClassification", "text-classification"},
    {"ForMaskedLM", "AutoModelForMaskedLM", "fill-mask"},
    {"ForTokenClassification", "AutoModelForTokenClassification", "token-classification"},
    {"ForDocumentQuestionAnswering", "AutoModelForDocumentQuestionAnswering",
     "document-question-answering"},
    {"ForTableQuestionAnswering", "AutoModelForTableQuestionAnswering", "table-question-answering"},
    {"ForQuestionAnswering", "AutoModelForQuestionAnswering", "question-answering"},
    {"ForMultipleChoice", "AutoModelForMultipleChoice", NULL},
    {"ForPreTraining", "AutoModelForPreTraining", NULL},
    {"ForNextSentencePrediction", "AutoModelForNextSentencePrediction", NULL},
    {"ForImageClassification", "AutoModelForImageClassification", "image-classification"},
    {"ForObjectDetection", "AutoModelForObjectDetection", "object-detection"},
    {"ForSemanticSegmentation", "AutoModelForSemanticSegmentation", "image-segmentation"},
    {"ForUniversalSegmentation", "AutoModelForUniversalSegmentation", "image-segmentation"},
    {"ForInstanceSegmentation", "AutoModelForInstanceSegmentation", "image-segmentation"},
    {"ForDepthEstimation", "AutoModelForDepthEstimation", "depth-estimation"},
    {"ForVideoClassification", "AutoModelForVideoClassification", "video-classification"},
    {"ForImageSuperResolution", "AutoModelForImageToImage", "image-to-image"},
    {"ForMaskedImageModeling", "AutoModelForMaskedImageModeling", NULL},
    {"ForCTC", "AutoModelForCTC", "automatic-speech-recognition"},
    {"ForAudioFrameClassification", "AutoModelForAudioFrameClassification", NULL},
    {"ForAudioClassification", "AutoModelForAudioClassification", "audio-classification"},
    {"ForXVector", "AutoModelForAudioXVector", NULL},
    {"ForTextToSpectrogram", "AutoModelForTextToSpectrogram", "text-to-audio"},
    {"ForTextToWaveform", "AutoModelForTextToWaveform", "text-to-audio"},
    {"ForImageTextToText", "AutoModelForImageTextToText", "image-text-to-text"},
    {"ForVision2Seq", "AutoModelForVision2Seq", "image-text-to-text"},
    {"ForSpeechSeq2Seq", "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"},
    {"ForSeq2SeqLM", "AutoModelForSeq2SeqLM", "text2text-generation"},
    {"MTModel", "AutoModelForSeq2SeqLM", "text2text-generation"}, /* MarianMTModel */
    {"LMHeadModel", "AutoModelForCausalLM", "text-generation"},   /* GPT2LMHeadModel */
    {"Model", "AutoModel", "feature-extraction"},
};

/* model_type values whose *ForConditionalGeneration is a speech seq2seq model. */
static const char *const speech_types[] = {
    "whisper",      "speech_to_text",  "speech-encoder-decoder",
    "seamless_m4t", "seamless_m4t_v2", "moonshine"};
/* model_type values whose bare *Model is a CLIP-style zero-shot image classifier. */
static const char *const clip_types[] = {"clip", "siglip", "siglip2", "chinese_clip", "altclip"};

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n > m && !strcmp(s + n - m, suf); /* n > m: a bare "Model" is no class */
}

static int in_list(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; s && i < n; i++)
    if (!strcmp(s, list[i])) return 1;
  return 0;
}

int config_auto_model(const char *arch, const char *model_type, int has_vision,
                      const char **out_auto, const char **out_pipeline) {
  *out_auto = *out_pipeline = NULL;
  if (ends_with(arch, "ForConditionalGeneration")) {
    if (in_list(model_type, speech_types, sizeof speech_types / sizeof *speech_types)) {
      *out_auto = "AutoModelForSpeechSeq2Seq";
      *out_pipeline = "automatic-speech-recognition";
    } else if (has_vision) {
      *out_auto = "AutoModelForImageTextToText";
      *out_pipeline = "image-text-to-text";
    } else {
      *out_auto = "AutoModelForSeq2SeqLM";
      *out_pipeline = "text2text-generation";
    }
    return 1;
  }
  if (ends_with(arch, "Model") && !ends_with(arch, "LMHeadModel") &&
      in_list(model_type, clip_types, sizeof clip_types / sizeof *clip_types)) {
    *out_auto = "AutoModelForZeroShotImageClassification";
    *out_pipeline = "zero-shot-image-classification";
    return 1;
  }
  if (model_type && !strcmp(model_type, "t5") && ends_with(arch, "LMHeadModel")) {
    *out_auto = "AutoModelForSeq2SeqLM"; /* legacy T5WithLMHeadModel */
    *out_pipeline = "text2text-generation";
    return 1;
  }
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
    if (ends_with(arch, suffixes[i].suffix)) {
      *out_auto = suffixes[i].auto_model;
      *out_pipeline = suffixes[i].pipeline;
      return 1;
    }
  return 0;
}

static int is_image_pipeline(const char *p) {
  static const char *const img[] = {"image-classification",
                                    "object-detection",
                                    "image-segmentation",
                                    "depth-estimation",
                                    "video-classification",
                                    "image-to-image",
                                    "zero-shot-image-classification"};
  return in_list(p, img, sizeof img / sizeof *img);
}

static const char *processor_for(const char *pipeline, unsigned hints) {
  int tok = hints & CONFIG_HAS_TOKENIZER, pre = hints & CONFIG_HAS_PREPROCESSOR;
  if ((hints & CONFIG_HAS_PROCESSOR) || (tok && pre)) return "AutoProcessor";
  if (tok) return "AutoTokenizer";
  if (pre) return is_image_pipeline(pipeline) ? "AutoImageProcessor" : "AutoFeatureExtractor";
  return NULL;
}

/* quantization_config reduced to scalar members with short keys. */
static json_t *quant_subset(json_t *q) {
  json_t *o = json_object();
  const char *k;
  json_t *v;
  if (!o) return NULL;
  json_object_foreach(q, k, v) {
    if (strlen(k) > 64 || json_object_size(o) >= 32) continue;
    if (json_is_string(v)) {
      json_t *s = ml_text_json(json_string_value(v), json_string_length(v), HUB_MAX_SHORT_TEXT);
      if (s) json_object_set_new(o, k, s);
    } else if (json_is_number(v) || json_is_boolean(v)) {
      json_object_set(o, k, v);
    }
  }
  return o;
}

int config_parse(const char *text, size_t len, unsigned hints, json_t **out_config,
                 json_t **out_tinfo) {
  json_error_t jerr;
  json_t *root = NULL, *cfg = NULL, *archs = NULL, *tinfo = NULL;
  int rc = 0;
  *out_config = *out_tinfo = NULL;
  root = json_loadb(text, len, 0, &jerr);
  if (!json_is_object(root)) {
    rc = hub_error_set(HUB_EINVALID, "config.json: not a JSON object%s%s", root ? "" : ": ",
                       root ? "" : jerr.text);
    goto done;
  }
  if (!(cfg = json_object()) || !(archs = json_array())) {
    rc = hub_error_set(HUB_ERROR, "out of memory");
    goto done;
  }
  json_t *ja = json_object_get(root, "architectures"), *jm = json_object_get(root, "model_type");
  const char *model_type = NULL;
  if (json_is_string(jm) && json_string_length(jm) <= HUB_MAX_SHORT_TEXT &&
      strlen(json_string_value(jm)) == json_string_length(jm)) {
    model_type = json_string_value(jm);
    json_object_set_new(cfg, "model_type", json_string(model_type));
  }
  int has_vision = json_is_object(json_object_get(root, "vision_config"));
  const char *auto_model = NULL, *pipeline = NULL;
  size_t i;
  json_t *a;
  json_array_foreach(ja, i, a) {
    const char *s = json_string_value(a);
    if (!s || json_string_length(a) > HUB_MAX_SHORT_TEXT || strlen(s) != json_string_length(a))
      continue;
    if (json_array_size(archs) < CONFIG_MAX_ARCHITECTURES)
      json_array_append_new(archs, json_string(s));
    if (!auto_model) config_auto_model(s, model_type, has_vision, &auto_model, &pipeline);
  }
  if (json_array_size(archs)) json_object_set(cfg, "architectures", archs);
  json_t *q = json_object_get(root, "quantization_config");
  if (json_is_object(q)) json_object_set_new(cfg, "quantization_config", quant_subset(q));
  if (auto_model) {
    if (!(tinfo = json_object())) {
      rc = hub_error_set(HUB_ERROR, "out of memory");
      goto done;
    }
    json_object_set_new(tinfo, "auto_model", json_string(auto_model));
    if (pipeline) json_object_set_new(tinfo, "pipeline_tag", json_string(pipeline));
    const char *proc = processor_for(pipeline, hints);
    if (proc) json_object_set_new(tinfo, "processor", json_string(proc));
  }
  *out_config = cfg;
  *out_tinfo = tinfo;
  cfg = tinfo = NULL;
done:
  json_decref(tinfo);
  json_decref(cfg);
  json_decref(archs);
  json_decref(root);
  return rc;
}
