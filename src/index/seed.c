/* `modelhub dev seed-catalog N`: a synthetic catalog for the search benchmark.
 *
 * Rows go straight into the DB in large transactions; no git repositories are created.
 * Seeded repos are marked synthetic (repo_meta.synthetic = 1): repo info answers them
 * from the DB alone, with the file list stored in their meta. Distributions imitate the
 * public Hub: heavy-tailed downloads (Pareto), likes ≈ downloads / 300, a few large
 * organisations owning many repos, 65 % models / 25 % datasets / 10 % spaces, 3 %
 * private. Deterministic for a given N (fixed PRNG seed). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/search.h"
#include "index/index.h"
#include "util/error.h"

static uint64_t g_rng = 0x5eed5eed12345678ULL;

static uint64_t rnd(void) { /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1DULL;
}

static double unit(void) {
  return (double)(rnd() >> 11) / 9007199254740992.0;
}

#define PICK(arr) (arr[rnd() % (sizeof arr / sizeof arr[0])])

static const char *FAMILIES[] = {
    "llama",    "qwen",  "mistral", "gemma",   "phi",      "bert",       "roberta",   "t5",
    "whisper",  "sdxl",  "clip",    "vit",     "resnet",   "gpt2",       "falcon",    "mixtral",
    "deepseek", "yi",    "bloom",   "opt",     "bart",     "distilbert", "electra",   "xlm-roberta",
    "wav2vec2", "llava", "flux",    "e5",      "bge",      "olmo",       "starcoder", "codegen",
    "pythia",   "mpt",   "smollm",  "granite", "internlm", "baichuan",   "chatglm",   "zephyr"};
static const struct {
  const char *label;
  int64_t params;
} SIZES[] = {{"135M", 135000000},  {"360M", 360000000},  {"0.5B", 500000000},
             {"1B", 1000000000},   {"1.5B", 1500000000}, {"3B", 3000000000},
             {"7B", 7000000000},   {"8B", 8000000000},   {"13B", 13000000000},
             {"14B", 14000000000}, {"32B", 32000000000}, {"70B", 70000000000}};
static const char *SUFFIXES[] = {"instruct",  "chat", "base", "GGUF", "AWQ", "GPTQ",   "lora",
                                 "finetuned", "sft",  "dpo",  "v2",   "it",  "merged", "exl2"};
static const struct {
  const char *task, *library;
} TASKS[] = {{"text-generation", "transformers"},
             {"text-generation", "transformers"},
             {"text-generation", "transformers"},
             {"text-generation", "gguf"},
             {"text-classification", "transformers"},
             {"token-classification", "transformers"},
             {"fill-mask", "transformers"},
             {"feature-extraction", "sentence-transformers"},
             {"sentence-similarity", "sentence-transformers"},
             {"automatic-speech-recognition", "transformers"},
             {"text-to-image", "diffusers"},
             {"image-classification", "timm"},
             {"translation", "transformers"},
             {"summarization", "transformers"},
             {"image-text-to-text", "transformers"},
             {"text-generation", "peft"}};
static const char *LANGS[] = {"en", "en", "en", "en", "fr", "de",
                              "zh", "es", "ja", "ko", "ru", "ar"};
static const char *LICENSES[] = {"apache-2.0", "mit",   "llama3",       "cc-by-4.0",
                                 "other",      "gemma", "cc-by-nc-4.0", "openrail"};
static const char *DATASETS[] = {
    "squad",  "imdb",      "wikipedia",   "c4",    "the-stack", "gsm8k", "mmlu", "openwebtext",
    "alpaca", "ultrachat", "librispeech", "laion", "coco",      "glue",  "xnli", "arxiv"};
static const char *SPACE_WORDS[] = {"demo",   "chat",     "playground", "leaderboard",   "arena",
                                    "viewer", "explorer", "tts",        "whisper-webui", "comfy"};

/* Pareto(α≈1.1)-like heavy tail: most repos get a handful of downloads, a few millions. */
static int64_t heavy_tail(double scale, int64_t cap) {
  double u = unit();
  double v = scale * (pow(1.0 - u, -1.0 / 1.1) - 1.0);
  return v > (double)cap ? cap : (int64_t)v;
}

typedef struct {
  char name[64];
  int64_t id;
  int is_org;
} owner;

int index_seed_catalog(long n, int verbose) {
  long nowners = n / 25 + 10;
  owner *owners = calloc((size_t)nowners, sizeof *owners);
  int rc = 0;
  if (!owners) return hub_error_set(HUB_ERROR, "out of memory");
  db_bulk_mode();
  int64_t now = db_now_ms(), day = now / 86400000;
  if ((rc = db_tx("BEGIN IMMEDIATE"))) goto done;
  for (long i = 0; i < nowners; i++) {
    owners[i].is_org = i % 5 == 0;
    snprintf(owners[i].name, sizeof owners[i].name, "%s%ld", owners[i].is_org ? "org" : "user", i);
    if ((rc = db_seed_account(owners[i].name, owners[i].is_org ? ACCOUNT_ORG : ACCOUNT_USER,
                              &owners[i].id)))
      goto fail;
  }
  for (long i = 0; i < n; i++) {
    /* A few owners hold many repos: index ∝ u³. */
    double u = unit();
    owner *o = &owners[(long)(u * u * u * (double)nowners) % nowners];
    db_seed_repo_row w;
    memset(&w, 0, sizeof w);
    double t = unit();
    w.type = t < 0.65 ? HUB_REPO_MODEL : t < 0.90 ? HUB_REPO_DATASET : HUB_REPO_SPACE;
    const char *fam = PICK(FAMILIES);
    int si = (int)(rnd() % (sizeof SIZES / sizeof SIZES[0]));
    const char *suf = PICK(SUFFIXES);
    int ti = (int)(rnd() % (sizeof TASKS / sizeof TASKS[0]));
    const char *lang = PICK(LANGS), *lic = PICK(LICENSES), *ds = PICK(DATASETS);
    char name[128], uid[25], sha[41], card[512];
    if (w.type == HUB_REPO_MODEL)
      snprintf(name, sizeof name, "%s-%s-%s-%ld", fam, SIZES[si].label, suf, i);
    else if (w.type == HUB_REPO_DATASET)
      snprintf(name, sizeof name, "%s-%s-%s-%ld", ds, lang, fam, i);
    else
      snprintf(name, sizeof name, "%s-%s-%ld", fam, PICK(SPACE_WORDS), i);
    snprintf(uid, sizeof uid, "5eed%020lx", (unsigned long)i);
    for (int k = 0; k < 40; k++)
      sha[k] = "0123456789abcdef"[rnd() & 15];
    sha[40] = 0;
    w.ns = o->name;
    w.name = name;
    w.uid = uid;
    w.head_sha = sha;
    w.owner_id = o->id;
    w.owner_is_org = o->is_org;
    w.is_private = unit() < 0.03;
    w.created_ms = now - (int64_t)(unit() * 3 * 365 * 86400000.0);
    w.modified_ms = w.created_ms + (int64_t)(unit() * (double)(now - w.created_ms));
    w.downloads30 = heavy_tail(w.type == HUB_REPO_SPACE ? 0 : 20, 20000000);
    w.recent = w.downloads30 / 4;
    w.recent_age = (int64_t)(rnd() % 7);
    w.downloads_all = w.downloads30 * (1 + (int64_t)(rnd() % 12));
    w.likes = w.downloads30 / 300 + (unit() < 0.2 ? (int64_t)(rnd() % 5) : 0);
    w.day = day;
    static const double W[7] = {1.0, 0.70710678, 0.5, 0.35355339, 0.25, 0.17677670, 0.125};
    w.trending = (double)w.recent * W[w.recent_age];
    int64_t id;
    if ((rc = db_seed_repo(&w, &id))) goto fail;

    /* Derived metadata, shaped like ml_derive's. */
    json_t *tags = json_array(), *meta = json_object(), *sib = json_array();
    const char *task = TASKS[ti].task, *lib = TASKS[ti].library;
    int64_t params = 0;
    if (w.type == HUB_REPO_MODEL) {
      params = SIZES[si].params;
      json_array_append_new(tags, json_string(lib));
      int gguf = !strcmp(lib, "gguf") || !strcmp(suf, "GGUF");
      json_array_append_new(tags, json_string(gguf ? "gguf" : "safetensors"));
      json_array_append_new(tags, json_string(task));
      json_object_set_new(meta, "pipeline_tag", json_string(task));
      json_object_set_new(meta, "library_name", json_string(lib));
      json_object_set_new(meta, "num_parameters", json_integer(params));
      if (!gguf)
        json_object_set_new(meta, "safetensors",
                            json_pack("{s:{s:I}, s:I}", "parameters", "BF16", (json_int_t)params,
                                      "total", (json_int_t)params));
      json_array_append_new(sib, json_pack("{s:s}", "rfilename", "config.json"));
      json_array_append_new(
          sib, json_pack("{s:s}", "rfilename", gguf ? "model.Q4_K_M.gguf" : "model.safetensors"));
    } else if (w.type == HUB_REPO_DATASET) {
      json_array_append_new(tags, json_pack("s", "size_categories:10K<n<100K"));
      json_array_append_new(sib, json_pack("{s:s}", "rfilename", "data/train.parquet"));
    } else {
      json_array_append_new(sib, json_pack("{s:s}", "rfilename", "app.py"));
    }
    json_array_append_new(sib, json_pack("{s:s}", "rfilename", "README.md"));
    json_array_append_new(tags, json_string(lang));
    if (unit() < 0.3) json_array_append_new(tags, json_sprintf("dataset:%s", ds));
    json_array_append_new(tags, json_sprintf("license:%s", lic));
    json_object_set_new(meta, "tags", json_incref(tags));
    json_object_set_new(meta, "cardData",
                        json_pack("{s:s, s:[s]}", "license", lic, "language", lang));
    json_object_set_new(meta, "siblings", sib);
    snprintf(card, sizeof card,
             "# %s\n\nA %s %s model (%s) for %s, trained on %s. Language: %s. License: %s.\n", name,
             fam, SIZES[si].label, suf, task, ds, lang, lic);
    const char *tagv[16];
    size_t nt = 0;
    for (size_t k = 0; k < json_array_size(tags) && nt < 16; k++)
      tagv[nt++] = json_string_value(json_array_get(tags, k));
    char *meta_text = json_dumps(meta, JSON_COMPACT), *tags_text = json_dumps(tags, JSON_COMPACT);
    db_meta m = {meta_text,
                 tags_text,
                 w.type == HUB_REPO_MODEL ? task : "",
                 w.type == HUB_REPO_MODEL ? lib : "",
                 card,
                 params,
                 1,
                 tagv,
                 nt,
                 NULL,
                 0,
                 NULL};
    rc = meta_text && tags_text ? db_seed_meta(id, &m) : hub_error_set(HUB_ERROR, "oom");
    free(meta_text);
    free(tags_text);
    json_decref(tags);
    json_decref(meta);
    if (rc) goto fail;
    if ((i + 1) % 20000 == 0) {
      if ((rc = db_tx("COMMIT")) || (rc = db_tx("BEGIN IMMEDIATE"))) goto done;
      if (verbose) fprintf(stderr, "seeded %ld repos\n", i + 1);
    }
  }
  if ((rc = db_tx("COMMIT"))) goto done;
  db_kv_set("popularity_day", &day, sizeof day);
  rc = db_analyze();
  if (!rc) printf("seeded %ld repos (%ld owners)\n", n, nowners);
  goto done;
fail:
  db_tx("ROLLBACK");
done:
  free(owners);
  return rc;
}
