/* Unit tests for src/ml/: safetensors, GGUF, config.json, tags, model-index, ml_derive. */
#include "unit.h"

#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include "blob/blob.h"
#include "db/db.h"
#include "ml/config.h"
#include "ml/derive.h"
#include "ml/eval.h"
#include "ml/gguf.h"
#include "ml/safetensors.h"
#include "ml/tags.h"
#include "ml/text.h"
#include "repo/repo.h"
#include "util/error.h"
#include "util/limits.h"

/* ---- builders --------------------------------------------------------------------- */

typedef struct {
  unsigned char b[8192];
  size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  assert_true(o->n + n <= sizeof o->b);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put_le(bytes *o, uint64_t v, unsigned n) {
  assert_true(n <= 8);
  for (unsigned i = 0; i < n; i++) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    put(o, &c, 1);
  }
}
static void put_str(bytes *o, const char *s) {
  put_le(o, strlen(s), 8);
  put(o, s, strlen(s));
}

/* safetensors file: 8-byte length + header + `data` zero bytes. */
static void st_build(bytes *o, const char *hdr, size_t data) {
  o->n = 0;
  put_le(o, strlen(hdr), 8);
  put(o, hdr, strlen(hdr));
  for (size_t i = 0; i < data; i++)
    put_le(o, 0, 1);
}

static const char *ST_HDR = "{\"__metadata__\":{\"format\":\"pt\"},"
                            "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[12,28]},"
                            "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[28,30]},"
                            "\"d\":{\"dtype\":\"X9\",\"shape\":[8],\"data_offsets\":[30,31]}}";

/* GGUF v3 with a few kv pairs (incl. arrays) and two tensors of 4x8 and 16 elements.
 * Offsets of interesting fields are returned for corruption tests. */
typedef struct {
  size_t key0_len_off, tokens_count_off;
} gguf_offs;

static void gguf_build(bytes *o, gguf_offs *offs) {
  o->n = 0;
  put(o, "GGUF", 4);
  put_le(o, 3, 4);
  put_le(o, 2, 8);  /* tensors */
  put_le(o, 10, 8); /* kvs */
  if (offs) offs->key0_len_off = o->n;
  put_str(o, "general.architecture");
  put_le(o, 8, 4);
  put_str(o, "llama");
  put_str(o, "llama.context_length");
  put_le(o, 4, 4);
  put_le(o, 4096, 4);
  put_str(o, "general.file_type");
  put_le(o, 4, 4);
  put_le(o, 15, 4);
  put_str(o, "llama.rope.freq_base");
  put_le(o, 6, 4);
  put_le(o, 0x47000000, 4);
  put_str(o, "general.flag");
  put_le(o, 7, 4);
  put_le(o, 1, 1);
  put_str(o, "tokenizer.ggml.tokens");
  put_le(o, 9, 4);
  put_le(o, 8, 4);
  if (offs) offs->tokens_count_off = o->n;
  put_le(o, 4, 8);
  put_str(o, "<unk>");
  put_str(o, "<s>");
  put_str(o, "</s>");
  put_str(o, "hi");
  put_str(o, "tokenizer.ggml.scores");
  put_le(o, 9, 4);
  put_le(o, 6, 4);
  put_le(o, 4, 8);
  for (int i = 0; i < 4; i++)
    put_le(o, 0, 4);
  put_str(o, "tokenizer.ggml.bos_token_id");
  put_le(o, 4, 4);
  put_le(o, 1, 4);
  put_str(o, "tokenizer.ggml.eos_token_id");
  put_le(o, 5, 4); /* i32 */
  put_le(o, 2, 4);
  put_str(o, "tokenizer.chat_template");
  put_le(o, 8, 4);
  put_str(o, "{% for m in messages %}{{ m.content }}{% endfor %}");
  /* tensor infos */
  put_str(o, "blk.0.w");
  put_le(o, 2, 4);
  put_le(o, 4, 8);
  put_le(o, 8, 8);
  put_le(o, 0, 4);
  put_le(o, 0, 8);
  put_str(o, "blk.0.b");
  put_le(o, 1, 4);
  put_le(o, 16, 8);
  put_le(o, 1, 4);
  put_le(o, 128, 8);
}

static int64_t jint(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  assert_true(json_is_integer(v));
  return (int64_t)json_integer_value(v);
}
static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  assert_non_null(s);
  return s;
}

/* ---- safetensors ------------------------------------------------------------------ */

static void test_safetensors_valid(void **state) {
  (void)state;
  bytes f;
  json_t *p = NULL;
  int64_t total = 0;
  st_build(&f, ST_HDR, 31);
  assert_int_equal(safetensors_parse_file(f.b, f.n, &p, &total), 0);
  assert_int_equal(jint(p, "BF16"), 7);
  assert_int_equal(jint(p, "F32"), 4);
  assert_int_equal(jint(p, "X9"), 8); /* unknown dtype counted under its name */
  assert_int_equal(total, 19);
  /* merge = sharded sum */
  int64_t t2 = total;
  assert_int_equal(safetensors_params_merge(p, &t2, p, total), 0);
  assert_int_equal(t2, 38);
  assert_int_equal(jint(p, "F32"), 8);
  json_decref(p);
  /* header-only file (no tensors) */
  st_build(&f, "{}", 0);
  assert_int_equal(safetensors_parse_file(f.b, f.n, &p, &total), 0);
  assert_int_equal(total, 0);
  json_decref(p);
}

static void expect_st_invalid(const char *hdr, size_t data) {
  bytes f;
  json_t *p = (json_t *)1;
  int64_t total = 1;
  st_build(&f, hdr, data);
  assert_int_equal(safetensors_parse_file(f.b, f.n, &p, &total), HUB_EINVALID);
  assert_null(p);
  assert_int_equal(total, 0);
}

static void test_safetensors_invalid(void **state) {
  (void)state;
  bytes f;
  json_t *p = NULL;
  int64_t total;
  uint64_t n;
  /* truncated: fewer than 8 bytes, or the data/header cut short */
  st_build(&f, ST_HDR, 31);
  assert_int_equal(safetensors_parse_file(f.b, 5, &p, &total), HUB_EINVALID);
  for (size_t cut = 0; cut < f.n; cut++) {
    assert_int_not_equal(safetensors_parse_file(f.b, cut, &p, &total), 0);
    assert_null(p);
  }
  /* lying header length */
  unsigned char first8[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  assert_int_equal(safetensors_header_len(first8, 1000, &n), HUB_EINVALID);
  memset(first8, 0, 8);
  first8[0] = 100;
  assert_int_equal(safetensors_header_len(first8, 107, &n), HUB_EINVALID);
  assert_int_equal(safetensors_header_len(first8, 108, &n), 0);
  assert_int_equal(n, 100);
  assert_int_equal(safetensors_header_len(first8, 7, &n), HUB_EINVALID);
  uint64_t big = (uint64_t)ML_MAX_SAFETENSORS_HEADER + 1;
  for (int i = 0; i < 8; i++)
    first8[i] = (unsigned char)(big >> (8 * i));
  assert_int_equal(safetensors_header_len(first8, UINT64_MAX, &n), HUB_EINVALID);
  memset(first8, 0, 8);
  assert_int_equal(safetensors_header_len(first8, 100, &n), HUB_EINVALID); /* N = 0 */
  /* huge shapes overflow int64 */
  expect_st_invalid("{\"a\":{\"dtype\":\"X\",\"shape\":[4294967296,4294967296,4],"
                    "\"data_offsets\":[0,1]}}",
                    1);
  expect_st_invalid("{\"a\":{\"dtype\":\"X\",\"shape\":[99999999999999999999],"
                    "\"data_offsets\":[0,1]}}",
                    1);
  /* absurd: more elements than bits for an unknown dtype; negative dim; mismatch */
  expect_st_invalid("{\"a\":{\"dtype\":\"X\",\"shape\":[9],\"data_offsets\":[0,1]}}", 1);
  expect_st_invalid("{\"a\":{\"dtype\":\"F16\",\"shape\":[-1],\"data_offsets\":[0,2]}}", 2);
  expect_st_invalid("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
  expect_st_invalid("{\"a\":{\"dtype\":\"F16\",\"shape\":[1.5],\"data_offsets\":[0,2]}}", 2);
  /* offsets beyond the file / reversed */
  expect_st_invalid("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 3);
  expect_st_invalid("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}}", 3);
  expect_st_invalid("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 3);
  /* bad JSON, wrong types, duplicate names */
  expect_st_invalid("{\"a\":", 0);
  expect_st_invalid("[1,2]", 0);
  expect_st_invalid("{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
  expect_st_invalid("{\"__metadata__\":[]}", 0);
  expect_st_invalid("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                    1);
}

/* ---- GGUF ------------------------------------------------------------------------- */

static void test_gguf_valid(void **state) {
  (void)state;
  bytes f;
  json_t *g = NULL;
  gguf_build(&f, NULL);
  assert_int_equal(gguf_parse(f.b, f.n, &g), 0);
  assert_string_equal(jstr(g, "architecture"), "llama");
  assert_int_equal(jint(g, "context_length"), 4096);
  assert_int_equal(jint(g, "total"), 48);
  assert_int_equal(jint(g, "file_type"), 15);
  assert_string_equal(jstr(g, "quantization"), "Q4_K_M");
  assert_string_equal(jstr(g, "bos_token"), "<s>");
  assert_string_equal(jstr(g, "eos_token"), "</s>");
  assert_string_equal(jstr(g, "chat_template"),
                      "{% for m in messages %}{{ m.content }}{% endfor %}");
  json_decref(g);
  assert_string_equal(gguf_file_type_name(1), "F16");
  assert_null(gguf_file_type_name(5));
  assert_null(gguf_file_type_name(100000));
}

static void test_gguf_truncated(void **state) {
  (void)state;
  bytes f;
  json_t *g = NULL;
  gguf_build(&f, NULL);
  for (size_t cut = 0; cut < f.n; cut++) {
    int trunc = 0;
    assert_int_equal(gguf_parse(f.b, cut, &g), HUB_EINVALID);
    assert_null(g);
    assert_non_null(strstr(hub_error_msg(), cut < 4 ? "truncated" : "truncated"));
    /* knowing the full size: still truncation, not a lie */
    assert_int_equal(gguf__parse_prefix(f.b, cut, f.n, &g, &trunc), HUB_EINVALID);
    assert_int_equal(trunc, 1);
  }
}

static void test_gguf_lies(void **state) {
  (void)state;
  bytes f;
  gguf_offs o;
  json_t *g = NULL;
  int trunc;
  /* lying key length */
  gguf_build(&f, &o);
  for (int i = 0; i < 8; i++)
    f.b[o.key0_len_off + i] = 0xff;
  assert_int_equal(gguf_parse(f.b, f.n, &g), HUB_EINVALID);
  f.b[o.key0_len_off + 7] = 0x00;
  assert_int_equal(gguf_parse(f.b, f.n, &g), HUB_EINVALID);
  /* lying string length (key of 1000 bytes in a short file): a lie when the size is known */
  gguf_build(&f, &o);
  f.b[o.key0_len_off] = 0xe8, f.b[o.key0_len_off + 1] = 0x03;
  assert_int_equal(gguf__parse_prefix(f.b, f.n, f.n, &g, &trunc), HUB_EINVALID);
  assert_int_equal(trunc, 0);
  assert_non_null(strstr(hub_error_msg(), "more bytes than the file has"));
  /* huge array counts */
  uint64_t counts[] = {UINT64_MAX, 1ULL << 62, 1ULL << 32, 5};
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
    gguf_build(&f, &o);
    for (int i = 0; i < 8; i++)
      f.b[o.tokens_count_off + i] = (unsigned char)(counts[c] >> (8 * i));
    assert_int_equal(gguf_parse(f.b, f.n, &g), HUB_EINVALID);
    assert_null(g);
  }
  /* bad magic, versions */
  gguf_build(&f, NULL);
  f.b[0] = 'X';
  assert_int_equal(gguf_parse(f.b, f.n, &g), HUB_EINVALID);
  gguf_build(&f, NULL);
  f.b[4] = 1;
  assert_int_equal(gguf_parse(f.b, f.n, &g), HUB_EINVALID);
  f.b[4] = 2; /* v2 has the same layout */
  assert_int_equal(gguf_parse(f.b, f.n, &g), 0);
  json_decref(g);
  /* absurd tensor dims */
  bytes t = {{0}, 0};
  put(&t, "GGUF", 4);
  put_le(&t, 3, 4);
  put_le(&t, 1, 8);
  put_le(&t, 0, 8);
  put_str(&t, "w");
  put_le(&t, 3, 4);
  put_le(&t, 1ULL << 32, 8);
  put_le(&t, 1ULL << 32, 8);
  put_le(&t, 4, 8);
  put_le(&t, 0, 4);
  put_le(&t, 0, 8);
  assert_int_equal(gguf_parse(t.b, t.n, &g), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "overflow"));
  t.b[4 + 4 + 16 + 8 + 1] = 99; /* n_dims 99 */
  assert_int_equal(gguf_parse(t.b, t.n, &g), HUB_EINVALID);
  /* unknown value type, deep nesting */
  bytes u = {{0}, 0};
  put(&u, "GGUF", 4);
  put_le(&u, 3, 4);
  put_le(&u, 0, 8);
  put_le(&u, 1, 8);
  put_str(&u, "k");
  put_le(&u, 13, 4);
  put_le(&u, 0, 8);
  assert_int_equal(gguf_parse(u.b, u.n, &g), HUB_EINVALID);
  u.n = 4 + 4 + 16 + 9;
  put_le(&u, 9, 4);
  for (int i = 0; i < 10; i++) {
    put_le(&u, 9, 4);
    put_le(&u, 1, 8);
  }
  assert_int_equal(gguf_parse(u.b, u.n, &g), HUB_EINVALID);
  /* empty file: no tensors, no kvs */
  bytes e = {{0}, 0};
  put(&e, "GGUF", 4);
  put_le(&e, 3, 4);
  put_le(&e, 0, 8);
  put_le(&e, 0, 8);
  assert_int_equal(gguf_parse(e.b, e.n, &g), 0);
  assert_int_equal(jint(g, "total"), 0);
  assert_null(json_object_get(g, "architecture"));
  json_decref(g);
}

static void test_text(void **state) {
  (void)state;
  json_t *s = ml_text_json("h\xc3\xa9llo", 6, 2); /* cut inside é */
  assert_string_equal(json_string_value(s), "h");
  json_decref(s);
  s = ml_text_json("h\xc3\xa9llo", 6, 3);
  assert_string_equal(json_string_value(s), "h\xc3\xa9");
  json_decref(s);
  assert_null(ml_text_json("a\xff", 2, 10));
}

/* ---- config.json ------------------------------------------------------------------ */

static void check_config(const char *text, unsigned hints, const char *auto_model,
                         const char *pipeline, const char *processor) {
  json_t *cfg = NULL, *ti = NULL;
  assert_int_equal(config_parse(text, strlen(text), hints, &cfg, &ti), 0);
  assert_non_null(cfg);
  if (!auto_model) {
    assert_null(ti);
  } else {
    assert_string_equal(jstr(ti, "auto_model"), auto_model);
    if (pipeline)
      assert_string_equal(jstr(ti, "pipeline_tag"), pipeline);
    else
      assert_null(json_object_get(ti, "pipeline_tag"));
    if (processor)
      assert_string_equal(jstr(ti, "processor"), processor);
    else
      assert_null(json_object_get(ti, "processor"));
  }
  json_decref(cfg);
  json_decref(ti);
}

static void test_config(void **state) {
  (void)state;
  check_config("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}",
               CONFIG_HAS_TOKENIZER, "AutoModelForCausalLM", "text-generation", "AutoTokenizer");
  check_config("{\"architectures\":[\"GPT2LMHeadModel\"]}", 0, "AutoModelForCausalLM",
               "text-generation", NULL);
  check_config("{\"architectures\":[\"BertForSequenceClassification\"]}", 0,
               "AutoModelForSequenceClassification", "text-classification", NULL);
  check_config("{\"architectures\":[\"BertForMaskedLM\"]}", 0, "AutoModelForMaskedLM", "fill-mask",
               NULL);
  check_config("{\"architectures\":[\"BertForTokenClassification\"]}", 0,
               "AutoModelForTokenClassification", "token-classification", NULL);
  check_config("{\"architectures\":[\"BertForQuestionAnswering\"]}", 0,
               "AutoModelForQuestionAnswering", "question-answering", NULL);
  check_config("{\"architectures\":[\"BertModel\"],\"model_type\":\"bert\"}", 0, "AutoModel",
               "feature-extraction", NULL);
  check_config("{\"architectures\":[\"T5ForConditionalGeneration\"],\"model_type\":\"t5\"}",
               CONFIG_HAS_TOKENIZER, "AutoModelForSeq2SeqLM", "text2text-generation",
               "AutoTokenizer");
  check_config("{\"architectures\":[\"WhisperForConditionalGeneration\"],"
               "\"model_type\":\"whisper\"}",
               CONFIG_HAS_TOKENIZER | CONFIG_HAS_PREPROCESSOR, "AutoModelForSpeechSeq2Seq",
               "automatic-speech-recognition", "AutoProcessor");
  check_config("{\"architectures\":[\"LlavaForConditionalGeneration\"],\"vision_config\":{}}", 0,
               "AutoModelForImageTextToText", "image-text-to-text", NULL);
  check_config("{\"architectures\":[\"ViTForImageClassification\"]}", CONFIG_HAS_PREPROCESSOR,
               "AutoModelForImageClassification", "image-classification", "AutoImageProcessor");
  check_config("{\"architectures\":[\"CLIPModel\"],\"model_type\":\"clip\"}", 0,
               "AutoModelForZeroShotImageClassification", "zero-shot-image-classification", NULL);
  check_config("{\"architectures\":[\"BertForMultipleChoice\"]}", 0, "AutoModelForMultipleChoice",
               NULL, NULL);
  /* unknown, missing, odd types: config without transformersInfo */
  check_config("{\"architectures\":[\"Foo\", 3, \"Model\"]}", 0, NULL, NULL, NULL);
  check_config("{\"model_type\":\"llama\"}", 0, NULL, NULL, NULL);
  check_config("{\"architectures\":\"LlamaForCausalLM\"}", 0, NULL, NULL, NULL);
  /* first recognised architecture wins */
  check_config("{\"architectures\":[\"Foo\",\"MistralForCausalLM\"]}", 0, "AutoModelForCausalLM",
               "text-generation", NULL);
  /* the subset */
  json_t *cfg = NULL, *ti = NULL;
  const char *q = "{\"architectures\":[\"A\"],\"model_type\":\"m\",\"hidden_size\":4,"
                  "\"quantization_config\":{\"quant_method\":\"gptq\",\"bits\":4,\"x\":{}}}";
  assert_int_equal(config_parse(q, strlen(q), 0, &cfg, &ti), 0);
  assert_null(ti);
  assert_null(json_object_get(cfg, "hidden_size"));
  assert_string_equal(jstr(cfg, "model_type"), "m");
  assert_int_equal(json_array_size(json_object_get(cfg, "architectures")), 1);
  json_t *qc = json_object_get(cfg, "quantization_config");
  assert_string_equal(jstr(qc, "quant_method"), "gptq");
  assert_int_equal(jint(qc, "bits"), 4);
  assert_null(json_object_get(qc, "x"));
  json_decref(cfg);
  assert_int_equal(config_parse("[1]", 3, 0, &cfg, &ti), HUB_EINVALID);
  assert_int_equal(config_parse("{", 1, 0, &cfg, &ti), HUB_EINVALID);
  assert_null(cfg);
}

/* ---- tags / eval ------------------------------------------------------------------ */

static void test_tags(void **state) {
  (void)state;
  const char *card_json =
      "{\"library_name\":\"transformers\",\"pipeline_tag\":\"text-generation\","
      "\"tags\":[\"chat\",\"safetensors\",7,\"bad\\ntag\"],\"license\":\"apache-2.0\","
      "\"language\":[\"en\",\"fr\"],\"datasets\":\"wikitext\","
      "\"base_model\":[\"org/base\",\"not a repo id\"],\"base_model_relation\":\"bogus\"}";
  json_t *card = json_loads(card_json, 0, NULL);
  assert_non_null(card);
  ml_card_facts f;
  assert_int_equal(ml_card_facts_get(&f, card), 0);
  assert_string_equal(f.license, "apache-2.0");
  assert_null(f.base_model_relation);
  assert_int_equal(json_array_size(f.base_models), 1);
  assert_int_equal(json_array_size(f.datasets), 1);
  const char *rel = ml_base_relation(&f, 0, 0);
  assert_string_equal(rel, "finetune");
  assert_string_equal(ml_base_relation(&f, 1, 1), "adapter");
  assert_string_equal(ml_base_relation(&f, 0, 1), "quantized");
  ml_tags_input in = {
      "transformers", ML_FILE_SAFETENSORS | ML_FILE_PYTORCH, "llama", "text-generation", rel, &f};
  json_t *tags = ml_tags_build(&in);
  const char *want[] = {"transformers",
                        "pytorch",
                        "safetensors",
                        "llama",
                        "text-generation",
                        "chat",
                        "en",
                        "fr",
                        "dataset:wikitext",
                        "base_model:org/base",
                        "base_model:finetune:org/base",
                        "license:apache-2.0"};
  size_t nwant = sizeof want / sizeof *want;
  assert_int_equal(json_array_size(tags), nwant);
  for (size_t i = 0; i < nwant; i++)
    assert_string_equal(json_string_value(json_array_get(tags, i)), want[i]);
  json_decref(tags);
  ml_card_facts_dispose(&f);
  json_decref(card);
  /* no card at all */
  assert_int_equal(ml_card_facts_get(&f, NULL), 0);
  ml_tags_input in2 = {NULL, ML_FILE_GGUF, NULL, NULL, NULL, &f};
  tags = ml_tags_build(&in2);
  assert_int_equal(json_array_size(tags), 1);
  json_decref(tags);
  ml_card_facts_dispose(&f);
  /* file kinds */
  assert_int_equal(ml_file_kind("a/b/model.safetensors"), ML_FILE_SAFETENSORS);
  assert_int_equal(ml_file_kind("pytorch_model.bin"), ML_FILE_PYTORCH);
  assert_int_equal(ml_file_kind("x.gguf"), ML_FILE_GGUF);
  assert_int_equal(ml_file_kind("onnx/model.onnx"), ML_FILE_ONNX);
  assert_int_equal(ml_file_kind("runs/events.out.tfevents.1.host"), ML_FILE_TENSORBOARD);
  assert_int_equal(ml_file_kind("README.md"), 0);
}

static void test_eval(void **state) {
  (void)state;
  const char *mi = "[{\"name\":\"m\",\"results\":[{\"task\":{\"type\":\"text-classification\"},"
                   "\"dataset\":{\"name\":\"GLUE\",\"type\":\"glue\"},\"metrics\":["
                   "{\"type\":\"accuracy\",\"value\":0.9},{\"name\":\"F1\",\"value\":\"88\"},"
                   "{\"type\":\"bad\",\"value\":[1]},{\"value\":1}]}, 7]}, \"x\"]";
  json_t *j = json_loads(mi, 0, NULL);
  assert_non_null(j);
  json_t *ev = ml_eval_results(j);
  assert_int_equal(json_array_size(ev), 2);
  json_t *e0 = json_array_get(ev, 0);
  assert_string_equal(jstr(e0, "task"), "text-classification");
  assert_string_equal(jstr(e0, "dataset"), "glue");
  assert_string_equal(jstr(e0, "metric"), "accuracy");
  assert_true(json_is_real(json_object_get(e0, "value")));
  json_decref(ev);
  json_decref(j);
  ev = ml_eval_results(NULL);
  assert_int_equal(json_array_size(ev), 0);
  json_decref(ev);
}

/* ---- derive (real git repo + blob store) ------------------------------------------ */

typedef struct {
  char dir[64];
  char path[128];
  repo_handle *h;
  blob_store *blobs;
} fixture;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  strcpy(f->dir, "/tmp/test_ml.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/repos/r.git", f->dir);
  assert_int_equal(repo_init_bare(f->path, "hub", "hub@localhost", NULL), 0);
  assert_int_equal(repo_open(&f->h, f->path), 0);
  assert_int_equal(blob_store_open(&f->blobs, "fs", f->dir), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  repo_free(f->h);
  blob_store_free(f->blobs);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void commit(fixture *f, const repo_op *ops, size_t n, char sha[41]) {
  repo_commit_req req = {0};
  req.ref = "refs/heads/main";
  req.author_name = "alice";
  req.author_email = "alice@example.com";
  req.summary = "files";
  req.ops = ops;
  req.nops = n;
  assert_int_equal(repo_commit(f->h, &req, sha), 0);
}

static void put_blob(fixture *f, const bytes *b, char oid[65]) {
  blob_writer *w = NULL;
  assert_int_equal(blob_writer_open(f->blobs, &w), 0);
  assert_int_equal(blob_writer_write(w, b->b, b->n), 0);
  assert_int_equal(blob_writer_commit(w, NULL, -1, oid), 0);
}

static const char *README = "---\n"
                            "license: apache-2.0\n"
                            "language:\n- en\n"
                            "datasets: [wikitext]\n"
                            "base_model: org/base\n"
                            "tags: [chat]\n"
                            "model-index:\n"
                            "- name: m\n"
                            "  results:\n"
                            "  - task: {type: text-generation}\n"
                            "    dataset: {name: Wiki, type: wikitext}\n"
                            "    metrics:\n"
                            "    - {type: perplexity, value: 12.5}\n"
                            "---\n"
                            "# My model\n\nHello.\n";

static const char *CONFIG = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\"}";

static void test_derive_model(void **state) {
  fixture *f = *state;
  bytes st, gg;
  char sha[41];
  json_t *m = NULL;
  st_build(&st, ST_HDR, 31);
  gguf_build(&gg, NULL);
  repo_op ops[] = {
      {REPO_OP_ADD, "README.md", README, strlen(README), NULL, 0},
      {REPO_OP_ADD, "config.json", CONFIG, strlen(CONFIG), NULL, 0},
      {REPO_OP_ADD, "tokenizer.json", "{}", 2, NULL, 0},
      {REPO_OP_ADD, "model.safetensors", st.b, st.n, NULL, 0},
      {REPO_OP_ADD, "q/model-Q4_K_M.gguf", gg.b, gg.n, NULL, 0},
  };
  commit(f, ops, sizeof ops / sizeof *ops, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_MODEL, &m), 0);
  char *dump = json_dumps(m, JSON_INDENT(1));
  if (getenv("ML_TEST_DUMP")) printf("%s\n", dump);
  free(dump);
  assert_string_equal(jstr(json_object_get(m, "cardData"), "license"), "apache-2.0");
  assert_string_equal(jstr(m, "cardText"), "# My model\n\nHello.\n");
  assert_null(json_object_get(m, "cardWarnings"));
  assert_null(json_object_get(m, "warnings"));
  assert_string_equal(jstr(m, "library_name"), "transformers");
  assert_string_equal(jstr(m, "pipeline_tag"), "text-generation");
  assert_string_equal(jstr(m, "license"), "apache-2.0");
  assert_string_equal(json_string_value(json_array_get(json_object_get(m, "languages"), 0)), "en");
  json_t *bm = json_object_get(m, "baseModels");
  assert_string_equal(jstr(bm, "relation"), "quantized"); /* a GGUF file is present */
  assert_string_equal(jstr(json_array_get(json_object_get(bm, "models"), 0), "id"), "org/base");
  json_t *safet = json_object_get(m, "safetensors");
  assert_int_equal(jint(safet, "total"), 19);
  assert_int_equal(jint(json_object_get(safet, "parameters"), "BF16"), 7);
  json_t *g = json_object_get(m, "gguf");
  assert_string_equal(jstr(g, "architecture"), "llama");
  assert_int_equal(jint(g, "total"), 48);
  assert_int_equal(jint(m, "num_parameters"), 19);
  assert_string_equal(jstr(json_object_get(m, "transformersInfo"), "auto_model"),
                      "AutoModelForCausalLM");
  assert_string_equal(jstr(json_object_get(m, "transformersInfo"), "processor"), "AutoTokenizer");
  assert_string_equal(jstr(json_object_get(m, "config"), "model_type"), "llama");
  assert_true(json_is_array(json_object_get(m, "model-index")));
  json_t *ev = json_array_get(json_object_get(m, "evalResults"), 0);
  assert_string_equal(jstr(ev, "metric"), "perplexity");
  const char *want[] = {"transformers",
                        "safetensors",
                        "gguf",
                        "llama",
                        "text-generation",
                        "chat",
                        "en",
                        "dataset:wikitext",
                        "base_model:org/base",
                        "base_model:quantized:org/base",
                        "license:apache-2.0"};
  json_t *tags = json_object_get(m, "tags");
  assert_int_equal(json_array_size(tags), sizeof want / sizeof *want);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    assert_string_equal(json_string_value(json_array_get(tags, i)), want[i]);
  json_decref(m);

  /* bad YAML: no cardData, a warning, everything else still derived */
  const char *bad = "---\nlicense: [unclosed\n---\nbody\n";
  repo_op op2 = {REPO_OP_ADD, "README.md", bad, strlen(bad), NULL, 0};
  commit(f, &op2, 1, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_MODEL, &m), 0);
  assert_null(json_object_get(m, "cardData"));
  assert_int_equal(json_array_size(json_object_get(m, "cardWarnings")), 1);
  assert_string_equal(jstr(m, "cardText"), "body\n");
  assert_int_equal(jint(json_object_get(m, "safetensors"), "total"), 19);
  assert_null(json_object_get(m, "baseModels"));
  json_decref(m);

  /* unknown commit */
  assert_int_equal(
      ml_derive(f->h, f->blobs, "0123456789012345678901234567890123456789", HUB_REPO_MODEL, &m),
      HUB_EREVISION);
  assert_null(m);
}

static void test_derive_sharded_lfs(void **state) {
  fixture *f = *state;
  bytes s1, s2, gg, bad;
  char o1[65], o2[65], og[65], ob[65], sha[41];
  json_t *m = NULL;
  st_build(&s1, "{\"a\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[0,20]}}", 20);
  st_build(&s2,
           "{\"b\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
           "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[10,14]}}",
           14);
  gguf_build(&gg, NULL);
  st_build(&bad, "{\"a\":", 0);
  put_blob(f, &s1, o1);
  put_blob(f, &s2, o2);
  put_blob(f, &gg, og);
  put_blob(f, &bad, ob);
  const char *idx = "{\"metadata\":{},\"weight_map\":{\"a\":\"model-1.safetensors\","
                    "\"b\":\"model-2.safetensors\",\"c\":\"model-2.safetensors\"}}";
  const char *card = "---\nlibrary_name: peft\nbase_model: [a/x, b/y]\n---\n";
  repo_op ops[] = {
      {REPO_OP_ADD, "README.md", card, strlen(card), NULL, 0},
      {REPO_OP_ADD, "model.safetensors.index.json", idx, strlen(idx), NULL, 0},
      {REPO_OP_ADD_LFS, "model-1.safetensors", NULL, 0, o1, s1.n},
      {REPO_OP_ADD_LFS, "model-2.safetensors", NULL, 0, o2, s2.n},
      {REPO_OP_ADD_LFS, "sub/unused.safetensors", NULL, 0, ob, bad.n},
      {REPO_OP_ADD_LFS, "a.gguf", NULL, 0, og, gg.n},
  };
  commit(f, ops, sizeof ops / sizeof *ops, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_MODEL, &m), 0);
  json_t *safet = json_object_get(m, "safetensors");
  assert_int_equal(jint(safet, "total"), 16);
  assert_int_equal(jint(json_object_get(safet, "parameters"), "F16"), 15);
  assert_int_equal(jint(json_object_get(safet, "parameters"), "F32"), 1);
  assert_int_equal(jint(json_object_get(m, "gguf"), "context_length"), 4096);
  assert_string_equal(jstr(m, "library_name"), "peft");
  assert_string_equal(jstr(json_object_get(m, "baseModels"), "relation"), "quantized");
  json_decref(m);
  /* without a blob store: LFS files are skipped with warnings, nothing fails */
  assert_int_equal(ml_derive(f->h, NULL, sha, HUB_REPO_MODEL, &m), 0);
  assert_null(json_object_get(m, "safetensors"));
  assert_null(json_object_get(m, "gguf"));
  assert_int_equal(json_array_size(json_object_get(m, "warnings")), 2);
  json_decref(m);
  /* a shard named by the index is missing: safetensors omitted with a warning */
  const char *idx2 = "{\"weight_map\":{\"a\":\"model-1.safetensors\",\"z\":\"nope.safetensors\"}}";
  repo_op op2 = {REPO_OP_ADD, "model.safetensors.index.json", idx2, strlen(idx2), NULL, 0};
  commit(f, &op2, 1, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_MODEL, &m), 0);
  assert_null(json_object_get(m, "safetensors"));
  assert_int_equal(jint(m, "num_parameters"), 48); /* falls back to the GGUF total */
  json_decref(m);
  /* direct blob-store readers */
  json_t *p = NULL, *g = NULL;
  int64_t total = 0;
  assert_int_equal(safetensors_read_params(f->blobs, o2, &p, &total), 0);
  assert_int_equal(total, 6);
  json_decref(p);
  assert_int_equal(safetensors_read_params(f->blobs, ob, &p, &total), HUB_EINVALID);
  assert_int_equal(safetensors_read_params(f->blobs, og, &p, &total), HUB_EINVALID);
  assert_int_equal(gguf_read(f->blobs, og, &g), 0);
  assert_int_equal(jint(g, "total"), 48);
  json_decref(g);
  assert_int_equal(gguf_read(f->blobs, o1, &g), HUB_EINVALID);
}

/* Reads through a view's fallback are counted: the fallback store holds the object. */
typedef struct {
  blob_store *src;
  int opens;
} counting;

static int count_open(void *ctx, const char *oid, blob_stream **out, int64_t *out_size) {
  counting *c = ctx;
  c->opens++;
  return blob_open_stream(c->src, oid, out, out_size);
}

/* One commit naming one safetensors object from 50 shard paths: the header is read and
 * parsed once (by oid), and still counted once per shard. */
static void test_derive_same_object_once(void **state) {
  fixture *f = *state;
  bytes st;
  char oid[65], sha[41], dir[128], names[50][40];
  repo_op ops[51];
  json_t *m = NULL, *wm = json_object();
  counting cnt = {NULL, 0};
  static const blob_read_fallback fb = {count_open, NULL};

  snprintf(dir, sizeof dir, "%s/other", f->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(blob_store_open(&cnt.src, "fs", dir), 0);
  st_build(&st, "{\"a\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[0,20]}}", 20);
  blob_writer *w = NULL;
  assert_int_equal(blob_writer_open(cnt.src, &w), 0);
  assert_int_equal(blob_writer_write(w, st.b, st.n), 0);
  assert_int_equal(blob_writer_commit(w, NULL, -1, oid), 0);
  for (int i = 0; i < 50; i++) {
    snprintf(names[i], sizeof names[i], "model-%05d-of-00050.safetensors", i + 1);
    char t[16];
    snprintf(t, sizeof t, "t%d", i);
    json_object_set_new(wm, t, json_string(names[i]));
    ops[i] = (repo_op){REPO_OP_ADD_LFS, names[i], NULL, 0, oid, st.n};
  }
  json_t *idx = json_pack("{s:o}", "weight_map", wm);
  char *idx_text = json_dumps(idx, JSON_COMPACT);
  ops[50] =
      (repo_op){REPO_OP_ADD, "model.safetensors.index.json", idx_text, strlen(idx_text), NULL, 0};
  commit(f, ops, 51, sha);
  blob_store *view = blob_store_view(f->blobs, &fb, &cnt);
  assert_non_null(view);
  assert_int_equal(ml_derive(f->h, view, sha, HUB_REPO_MODEL, &m), 0);
  assert_int_equal(cnt.opens, 1);
  assert_int_equal(jint(json_object_get(m, "safetensors"), "total"), 500);
  json_decref(m);
  blob_store_view_free(view);
  blob_store_free(cnt.src);
  free(idx_text);
  json_decref(idx);
}

static void test_derive_dataset(void **state) {
  fixture *f = *state;
  char sha[41];
  json_t *m = NULL;
  repo_op ops[] = {
      {REPO_OP_ADD, "README.md", README, strlen(README), NULL, 0},
      {REPO_OP_ADD, "config.json", CONFIG, strlen(CONFIG), NULL, 0},
  };
  commit(f, ops, 2, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_DATASET, &m), 0);
  assert_non_null(json_object_get(m, "cardData"));
  assert_null(json_object_get(m, "config"));
  assert_null(json_object_get(m, "library_name"));
  assert_string_equal(jstr(m, "license"), "apache-2.0");
  json_t *tags = json_object_get(m, "tags");
  assert_string_equal(json_string_value(json_array_get(tags, 0)), "chat");
  json_decref(m);
  /* no README at all */
  repo_op del = {REPO_OP_DELETE_FILE, "README.md", NULL, 0, NULL, 0};
  commit(f, &del, 1, sha);
  assert_int_equal(ml_derive(f->h, f->blobs, sha, HUB_REPO_MODEL, &m), 0);
  assert_null(json_object_get(m, "cardData"));
  assert_null(json_object_get(m, "cardText"));
  assert_string_equal(jstr(m, "library_name"), "transformers");
  json_decref(m);
}

/* A GGUF whose vocabulary is larger than gguf_read's first 1 MB prefix: it must grow. */
static void test_gguf_read_grows(void **state) {
  fixture *f = *state;
  size_t ntok = 200000, cap = 64 + ntok * 16 + 256, n = 0;
  unsigned char *b = malloc(cap);
  assert_non_null(b);
#define PUT_LE(v, k)                                                                               \
  do {                                                                                             \
    for (unsigned i_ = 0; i_ < (k); i_++)                                                          \
      b[n++] = (unsigned char)((uint64_t)(v) >> (8 * i_));                                         \
  } while (0)
#define PUT_STR(s)                                                                                 \
  do {                                                                                             \
    PUT_LE(strlen(s), 8);                                                                          \
    memcpy(b + n, s, strlen(s));                                                                   \
    n += strlen(s);                                                                                \
  } while (0)
  memcpy(b, "GGUF", 4);
  n = 4;
  PUT_LE(3, 4);
  PUT_LE(1, 8);
  PUT_LE(2, 8);
  PUT_STR("tokenizer.ggml.tokens");
  PUT_LE(9, 4);
  PUT_LE(8, 4);
  PUT_LE(ntok, 8);
  for (size_t i = 0; i < ntok; i++) {
    char t[16];
    snprintf(t, sizeof t, "t%07zu", i);
    PUT_STR(t);
  }
  PUT_STR("tokenizer.ggml.eos_token_id");
  PUT_LE(4, 4);
  PUT_LE(ntok - 1, 4);
  PUT_STR("w");
  PUT_LE(1, 4);
  PUT_LE(7, 8);
  PUT_LE(0, 4);
  PUT_LE(0, 8);
#undef PUT_STR
#undef PUT_LE
  assert_true(n > 2 * 1024 * 1024 && n <= cap);
  blob_writer *w = NULL;
  char oid[65];
  json_t *g = NULL;
  assert_int_equal(blob_writer_open(f->blobs, &w), 0);
  assert_int_equal(blob_writer_write(w, b, n), 0);
  assert_int_equal(blob_writer_commit(w, NULL, -1, oid), 0);
  assert_int_equal(gguf_read(f->blobs, oid, &g), 0);
  assert_int_equal(jint(g, "total"), 7);
  assert_string_equal(jstr(g, "eos_token"), "t0199999");
  json_decref(g);
  /* the in-memory parser over the first 1 MB only: truncated */
  assert_int_equal(gguf_parse(b, 1024 * 1024, &g), HUB_EINVALID);
  assert_non_null(strstr(hub_error_msg(), "truncated"));
  free(b);
}

int main(void) {
  assert_int_equal(repo_global_init(), 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_safetensors_valid),
      cmocka_unit_test(test_safetensors_invalid),
      cmocka_unit_test(test_gguf_valid),
      cmocka_unit_test(test_gguf_truncated),
      cmocka_unit_test(test_gguf_lies),
      cmocka_unit_test(test_text),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_tags),
      cmocka_unit_test(test_eval),
      cmocka_unit_test_setup_teardown(test_derive_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_derive_sharded_lfs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_derive_same_object_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_derive_dataset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gguf_read_grows, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  repo_global_shutdown();
  return rc;
}
