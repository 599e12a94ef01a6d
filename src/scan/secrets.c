/* Credentials in text files (docs/scanning.md "Secrets").
 *
 * The file is read through pread in blocks and split into lines; every line (a long line in
 * overlapping windows of SECRETS_WINDOW bytes) goes through a fixed rule set: tokens with a
 * provider's fixed prefix and shape, PEM private keys, and high-entropy values assigned to
 * names like "password". Findings carry the rule and the line, never the value: a message
 * shows at most the rule's fixed prefix ("hf_…"). Rules with an exact format (keys and
 * tokens) are "unsafe"; the heuristic generic rule is "caution". */
#include "scan/detect.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRETS_DEFAULT_MAX (16ull * 1024 * 1024)
#define SECRETS_WINDOW 8192       /* bytes of one line looked at at once */
#define SECRETS_OVERLAP 512       /* kept from a window when a line goes on (longest match) */
#define SECRETS_MAX_LISTED 100    /* findings listed in the report; all are counted */
#define SECRETS_BINARY_PROBE 8000 /* a NUL in the first bytes: binary, skipped (as git does) */
#define GENERIC_MIN_LEN 20
#define GENERIC_MAX_LEN 512
#define GENERIC_MIN_ENTROPY 4.0
#define PEM_MIN_BASE64 40
#define RUN_CAP 600      /* longest token or value looked at (> GENERIC_MAX_LEN) */
#define ASSIGN_BUDGET 64 /* secret-like names whose values are checked, per window */

typedef enum {
  R_HF,
  R_AWS_ID,
  R_AWS_SECRET,
  R_GCP,
  R_PEM,
  R_GITHUB,
  R_GITLAB,
  R_SLACK,
  R_OPENAI,
  R_GENERIC,
  R_COUNT
} rule_id;

static const struct {
  const char *id, *desc;
  scan_level level;
} rules[R_COUNT] = {
    [R_HF] = {"hf-token", "Hugging Face token (hf_…)", SCAN_UNSAFE},
    [R_AWS_ID] = {"aws-access-key-id", "AWS access key id (AKIA…/ASIA…)", SCAN_UNSAFE},
    [R_AWS_SECRET] = {"aws-secret-access-key", "AWS secret access key assigned to a name",
                      SCAN_UNSAFE},
    [R_GCP] = {"gcp-service-account-key", "GCP service account private key", SCAN_UNSAFE},
    [R_PEM] = {"private-key", "PEM private key (-----BEGIN … PRIVATE KEY-----)", SCAN_UNSAFE},
    [R_GITHUB] = {"github-token", "GitHub token (ghp_/gho_/ghu_/ghs_/ghr_/github_pat_…)",
                  SCAN_UNSAFE},
    [R_GITLAB] = {"gitlab-token", "GitLab personal access token (glpat-…)", SCAN_UNSAFE},
    [R_SLACK] = {"slack-token", "Slack token (xox?-…)", SCAN_UNSAFE},
    [R_OPENAI] = {"openai-key", "OpenAI-style API key (sk-…)", SCAN_UNSAFE},
    [R_GENERIC] = {"generic-secret", "high-entropy value assigned to a secret-like name",
                   SCAN_CAUTION},
};

/* ---- which files ---- */

static const char *const text_exts[] = {
    "json", "yaml", "yml", "toml", "ini", "cfg", "conf", "env", "ipynb",    "py",  "sh",  "bash",
    "zsh",  "js",   "mjs", "cjs",  "ts",  "jsx", "tsx",  "md",  "markdown", "txt", "rst",
};

/* 1: text file whose secrets we look for; 2: the same, and values may be unquoted
 * (.env, INI-style files). */
static int text_kind(const char *path) {
  const char *base = path ? strrchr(path, '/') : NULL;
  base = base ? base + 1 : (path ? path : "");
  const char *ext = detect__ext(path);
  if (!strcmp(base, ".env") || !strncmp(base, ".env.", 5) || !strcasecmp(ext, "env") ||
      !strcasecmp(ext, "ini") || !strcasecmp(ext, "cfg") || !strcasecmp(ext, "conf") ||
      !strcmp(base, "credentials"))
    return 2;
  if (!strncasecmp(base, "README", 6)) return 1;
  for (size_t i = 0; i < sizeof text_exts / sizeof text_exts[0]; i++)
    if (!strcasecmp(ext, text_exts[i])) return 1;
  return 0;
}

/* ---- scanning state ---- */

typedef struct {
  int kind;
  uint64_t line;
  unsigned line_rules; /* rules already reported on this line */
  uint64_t pem_line;   /* a BEGIN … PRIVATE KEY line waiting for its base64 body */
  int pem_left;        /* lines still allowed before the body */
  int pem_gcp;
  uint64_t found;
  scan_level level;
  json_t *findings;
  int oom;
} sstate;

static void report_finding(sstate *s, rule_id r, uint64_t line, const char *name) {
  if (line == s->line) {
    if (s->line_rules & (1u << r)) return;
    s->line_rules |= 1u << r;
  }
  s->found++;
  if (rules[r].level > s->level) s->level = rules[r].level;
  if (json_array_size(s->findings) >= SECRETS_MAX_LISTED) return;
  char msg[200];
  if (name)
    snprintf(msg, sizeof msg, "%s ('%s'); the value is not shown", rules[r].desc, name);
  else
    snprintf(msg, sizeof msg, "%s; the value is not shown", rules[r].desc);
  json_t *f =
      json_pack("{s:s, s:I, s:s}", "rule", rules[r].id, "line", (json_int_t)line, "message", msg);
  if (!f || json_array_append_new(s->findings, f)) s->oom = 1;
}

static int is_word(unsigned char c) {
  return isalnum(c) || c == '_';
}

/* Length of the run from p of bytes accepted by `ok`, at most RUN_CAP: runs can start at
 * every '-' of "sk-sk-sk-…", so an uncapped run would make a window quadratic. */
static size_t run(const unsigned char *p, size_t n, int (*ok)(unsigned char)) {
  size_t k = 0;
  if (n > RUN_CAP) n = RUN_CAP;
  while (k < n && ok(p[k]))
    k++;
  return k;
}

static int c_alpha(unsigned char c) {
  return isalpha(c);
}
static int c_alnum(unsigned char c) {
  return isalnum(c);
}
static int c_upnum(unsigned char c) {
  return isupper(c) || isdigit(c);
}
static int c_word(unsigned char c) {
  return is_word(c);
}
static int c_wordash(unsigned char c) {
  return is_word(c) || c == '-';
}
static int c_alnumdash(unsigned char c) {
  return isalnum(c) || c == '-';
}
static int c_space(unsigned char c) {
  return isspace(c);
}
static int c_b64(unsigned char c) {
  return isalnum(c) || c == '+' || c == '/' || c == '=';
}

static int has(const unsigned char *p, size_t n, int (*ok)(int)) {
  for (size_t i = 0; i < n; i++)
    if (ok(p[i])) return 1;
  return 0;
}

static int contains_ci(const unsigned char *p, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (!strncasecmp((const char *)p + i, needle, m)) return 1;
  return 0;
}

static int starts(const unsigned char *p, size_t n, const char *lit) {
  size_t m = strlen(lit);
  return n >= m && !memcmp(p, lit, m);
}

/* Tokens with a fixed prefix, at a word start. */
/* Runs without '-' cannot contain another word start, so they are disjoint; a run with '-'
 * can ("sk-sk-sk-…"), and positions inside the last such run are skipped: a token starting
 * there would be a suffix of a run that was already checked. */
static void token_rules(sstate *s, const unsigned char *l, size_t n) {
  size_t dash_end = 0;
  for (size_t i = 0; i < n; i++) {
    if (i && is_word(l[i - 1])) continue;
    const unsigned char *p = l + i;
    size_t left = n - i, k;
    int dashed = i < dash_end;
    switch (p[0]) {
    case 'h': /* hf_ + 34 letters, mixed case */
      if (starts(p, left, "hf_") && (k = run(p + 3, left - 3, c_alpha)) == 34 &&
          has(p + 3, 34, isupper) && has(p + 3, 34, islower))
        report_finding(s, R_HF, s->line, NULL);
      break;
    case 'A': /* AKIA/ASIA + 16 of [A-Z0-9]; the documented examples contain EXAMPLE */
      if ((starts(p, left, "AKIA") || starts(p, left, "ASIA")) &&
          run(p + 4, left - 4, c_upnum) == 16 && (left == 20 || !isalnum(p[20])) &&
          !contains_ci(p, 20, "EXAMPLE"))
        report_finding(s, R_AWS_ID, s->line, NULL);
      break;
    case 'g':
      if ((starts(p, left, "ghp_") || starts(p, left, "gho_") || starts(p, left, "ghu_") ||
           starts(p, left, "ghs_") || starts(p, left, "ghr_")) &&
          run(p + 4, left - 4, c_alnum) >= 36)
        report_finding(s, R_GITHUB, s->line, NULL);
      else if (starts(p, left, "github_pat_") && run(p + 11, left - 11, c_word) >= 50)
        report_finding(s, R_GITHUB, s->line, NULL);
      else if (!dashed && starts(p, left, "glpat-")) {
        dash_end = i + 6 + (k = run(p + 6, left - 6, c_wordash));
        if (k >= 20) report_finding(s, R_GITLAB, s->line, NULL);
      }
      break;
    case 'x': /* xox[baprs]- + at least 10 of [A-Za-z0-9-] with a digit */
      if (!dashed && left > 5 && starts(p, left, "xox") && p[3] && strchr("baprs", p[3]) &&
          p[4] == '-') {
        dash_end = i + 5 + (k = run(p + 5, left - 5, c_alnumdash));
        if (k >= 10 && has(p + 5, k, isdigit)) report_finding(s, R_SLACK, s->line, NULL);
      }
      break;
    case 's': /* sk- + at least 32 of [A-Za-z0-9_-] with upper, lower and digits */
      if (!dashed && starts(p, left, "sk-")) {
        dash_end = i + 3 + (k = run(p + 3, left - 3, c_wordash));
        if (k >= 32 && has(p + 3, k, isupper) && has(p + 3, k, islower) && has(p + 3, k, isdigit))
          report_finding(s, R_OPENAI, s->line, NULL);
      }
      break;
    }
  }
}

/* After a PEM header: skip quotes, blanks and literal "\n" escapes; 1 if a base64 body of
 * at least PEM_MIN_BASE64 characters follows on the same line. */
static int pem_body_follows(const unsigned char *p, size_t n) {
  size_t i = 0;
  for (;;) {
    while (i < n && (isspace(p[i]) || p[i] == '"' || p[i] == '\''))
      i++;
    if (i + 1 < n && p[i] == '\\' && (p[i + 1] == 'n' || p[i + 1] == 'r')) {
      i += 2;
      continue;
    }
    if (i + 2 < n && p[i] == '\\' && p[i + 1] == '\\' && p[i + 2] == 'n') {
      i += 3;
      continue;
    }
    break;
  }
  return run(p + i, n - i, c_b64) >= PEM_MIN_BASE64;
}

/* "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----" (or "PRIVATE KEY BLOCK-----", PGP). */
static void pem_rules(sstate *s, const unsigned char *l, size_t n) {
  /* a pending header from an earlier line: is this line its body? */
  if (s->pem_line && s->pem_line != s->line) {
    size_t i = run(l, n, c_space);
    if (i < n && (l[i] == '"' || l[i] == '\'')) i++;
    if (run(l + i, n - i, c_b64) >= PEM_MIN_BASE64) {
      report_finding(s, s->pem_gcp ? R_GCP : R_PEM, s->pem_line, NULL);
      s->pem_line = 0;
    } else if (i == n || starts(l + i, n - i, "Proc-Type:") || starts(l + i, n - i, "DEK-Info:") ||
               starts(l + i, n - i, "Comment:") || starts(l + i, n - i, "Version:")) {
      if (--s->pem_left <= 0) s->pem_line = 0;
    } else {
      s->pem_line = 0;
    }
  }
  static const char begin[] = "-----BEGIN ";
  size_t bl = sizeof begin - 1;
  for (size_t i = 0; i + bl <= n; i++) {
    if (memcmp(l + i, begin, bl)) continue;
    size_t j = i + bl, k = j;
    while (k < n && (isupper(l[k]) || isdigit(l[k]) || l[k] == ' '))
      k++;
    /* the run ends after "...PRIVATE KEY" (or "...PRIVATE KEY BLOCK") */
    size_t m = k - j;
    const unsigned char *w = l + j;
    int pk = (m >= 11 && !memcmp(w + m - 11, "PRIVATE KEY", 11)) ||
             (m >= 17 && !memcmp(w + m - 17, "PRIVATE KEY BLOCK", 17));
    if (!pk || !starts(l + k, n - k, "-----")) continue;
    /* GCP service account JSON: "private_key": "-----BEGIN PRIVATE KEY-----\n..." */
    size_t back = i < 64 ? i : 64;
    int gcp = contains_ci(l + i - back, back, "\"private_key\"");
    if (pem_body_follows(l + k + 5, n - k - 5)) {
      report_finding(s, gcp ? R_GCP : R_PEM, s->line, NULL);
    } else {
      s->pem_line = s->line;
      s->pem_left = 3;
      s->pem_gcp = gcp;
    }
    i = k;
  }
}

/* ---- assignments: name = "value" ---- */

static double entropy(const unsigned char *p, size_t n) {
  unsigned cnt[256] = {0};
  double h = 0;
  for (size_t i = 0; i < n; i++)
    cnt[p[i]]++;
  for (int c = 0; c < 256; c++)
    if (cnt[c]) {
      double q = (double)cnt[c] / (double)n;
      h -= q * log2(q);
    }
  return h;
}

/* Special tokens of tokenizer configs ("pad_token": ...) are not credentials. */
static int token_name_is_secret(const char *id) {
  static const char *const special[] = {"pad",   "bos", "eos", "unk", "sep",   "cls",   "mask",
                                        "start", "end", "eot", "eom", "image", "audio", "video"};
  if (strstr(id, "tokenizer") || strstr(id, "tokens") || strstr(id, "token_id") ||
      strstr(id, "token_type"))
    return 0;
  size_t n = strlen(id);
  if (n < 5 || strcmp(id + n - 5, "token"))
    return strstr(id, "access_token") || strstr(id, "auth_token") || strstr(id, "api_token") ||
           strstr(id, "bearer_token");
  for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
    size_t m = strlen(special[i]);
    if (n == m + 6 && !strncmp(id, special[i], m) && id[m] == '_') return 0;
  }
  return 1;
}

static int generic_name(const char *id) {
  return strstr(id, "password") || strstr(id, "passwd") || strstr(id, "secret") ||
         strstr(id, "api_key") || strstr(id, "apikey") || strstr(id, "api-key") ||
         strstr(id, "access_key") || strstr(id, "accesskey") || strstr(id, "private_key") ||
         (strstr(id, "token") && token_name_is_secret(id));
}

static int value_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && !strchr("\"'`<>{}()[]|\\,;", c);
}

static void assignment_rules(sstate *s, const unsigned char *l, size_t n) {
  int budget = ASSIGN_BUDGET;
  for (size_t j = 0; j < n && budget > 0; j++) {
    if (l[j] != '=' && l[j] != ':') continue;
    size_t v = j + 1;
    if (l[j] == '=' && ((j && strchr("=!<>", l[j - 1])) || (v < n && l[v] == '='))) continue;
    if (l[j] == ':' && v < n && l[v] == ':') {
      j++;
      continue;
    }
    if (v < n && (l[v] == '=' || l[v] == '>')) v++; /* := and => */
    /* the name before: [quote] ident [quote] blanks */
    size_t k = j;
    while (k && (l[k - 1] == ' ' || l[k - 1] == '\t'))
      k--;
    if (k && (l[k - 1] == '"' || l[k - 1] == '\'' || l[k - 1] == '`')) k--;
    if (k && l[k - 1] == '\\') k--;
    size_t e = k;
    while (k && (is_word(l[k - 1]) || l[k - 1] == '-' || l[k - 1] == '.') && e - k < 64)
      k--;
    if (e - k < 5) continue; /* shorter than any secret-like name ("token") */
    char id[72], norm[72];
    size_t il = 0, nl = 0;
    for (size_t i = k; i < e; i++) {
      char c = (char)tolower(l[i]);
      id[il++] = c;
      if (c != '_' && c != '-' && c != '.') norm[nl++] = c;
    }
    id[il] = norm[nl] = 0;
    int aws = strstr(norm, "secretaccesskey") || strstr(norm, "awssecret");
    if (!aws && !generic_name(id)) continue;
    budget--;
    /* the value after: blanks [\][quote] value [quote] */
    while (v < n && (l[v] == ' ' || l[v] == '\t'))
      v++;
    int quoted = 0;
    if (v + 1 < n && l[v] == '\\' && (l[v + 1] == '"' || l[v + 1] == '\'')) v++;
    if (v < n && (l[v] == '"' || l[v] == '\'' || l[v] == '`')) quoted = 1, v++;
    size_t vl = run(l + v, n - v, value_char);
    if (quoted) {
      size_t end = v + vl;
      if (end >= n || !(l[end] == '"' || l[end] == '\'' || l[end] == '`' || l[end] == '\\'))
        continue; /* not the whole quoted string: spaces or odd characters inside */
    }
    const unsigned char *val = l + v;
    if (aws && vl == 40 && run(val, vl, c_b64) == 40 && !contains_ci(val, vl, "EXAMPLE")) {
      report_finding(s, R_AWS_SECRET, s->line, NULL);
      continue;
    }
    if (!quoted && s->kind != 2) continue;
    if (vl < GENERIC_MIN_LEN || vl > GENERIC_MAX_LEN || !generic_name(id)) continue;
    if (contains_ci(val, vl, "example") || contains_ci(val, vl, "://") || val[0] == '$' ||
        val[0] == '%')
      continue;
    if (entropy(val, vl) < GENERIC_MIN_ENTROPY) continue;
    char shown[48];
    size_t sl = 0;
    for (size_t i = k; i < e && sl < 40; i++)
      shown[sl++] = (char)l[i];
    shown[sl] = 0;
    report_finding(s, R_GENERIC, s->line, shown);
  }
}

static void scan_window(sstate *s, const unsigned char *l, size_t n) {
  token_rules(s, l, n);
  pem_rules(s, l, n);
  assignment_rules(s, l, n);
}

json_t *scan_secrets(int fd, uint64_t size, const char *path, const scan_limits *limits) {
  int kind = text_kind(path);
  if (!kind) return NULL;
  uint64_t max = limits && limits->text_max_bytes ? limits->text_max_bytes : SECRETS_DEFAULT_MAX;
  uint64_t todo = size < max ? size : max;
  unsigned char *blk = NULL, *lb = NULL;
  json_t *out = NULL;
  sstate s = {kind, 1, 0, 0, 0, 0, 0, SCAN_SAFE, json_array(), 0};
  size_t len = 0;
  int read_failed = 0;
  if (!s.findings || !(blk = malloc(64 * 1024)) || !(lb = malloc(SECRETS_WINDOW))) goto done;
  for (uint64_t off = 0; off < todo && !s.oom;) {
    size_t want = todo - off < 64 * 1024 ? (size_t)(todo - off) : 64 * 1024;
    ssize_t got = detect__pread_full(fd, blk, want, off);
    if (got <= 0) {
      read_failed = 1;
      break;
    }
    if (off < SECRETS_BINARY_PROBE &&
        memchr(blk, 0,
               (size_t)got < SECRETS_BINARY_PROBE - off ? (size_t)got
                                                        : SECRETS_BINARY_PROBE - off)) {
      json_decref(s.findings); /* binary: not a text file after all */
      free(blk);
      free(lb);
      return NULL;
    }
    for (ssize_t i = 0; i < got; i++) {
      unsigned char c = blk[i];
      if (c == '\n') {
        scan_window(&s, lb, len);
        s.line++;
        s.line_rules = 0;
        len = 0;
        continue;
      }
      if (len == SECRETS_WINDOW) { /* a long line: scan it in overlapping windows */
        scan_window(&s, lb, len);
        memmove(lb, lb + len - SECRETS_OVERLAP, SECRETS_OVERLAP);
        len = SECRETS_OVERLAP;
      }
      lb[len++] = c;
    }
    off += (uint64_t)got;
  }
  if (len) scan_window(&s, lb, len);
  if (s.oom) goto done;
  char msg[300];
  if (read_failed) {
    out = json_pack("{s:s, s:s, s:o}", "status", "error", "message", "the file could not be read",
                    "findings", s.findings);
    s.findings = NULL;
    goto done;
  }
  int n = 0;
  if (s.found) {
    n = snprintf(msg, sizeof msg, "%llu possible secret%s found:", (unsigned long long)s.found,
                 s.found == 1 ? "" : "s");
    size_t i;
    json_t *f;
    json_array_foreach(s.findings, i, f) {
      if (i == 3 || n >= 200) {
        n += snprintf(msg + n, sizeof msg - (size_t)n, " …");
        break;
      }
      n += snprintf(msg + n, sizeof msg - (size_t)n, "%s %s (line %lld)", i ? "," : "",
                    json_string_value(json_object_get(f, "rule")),
                    (long long)json_integer_value(json_object_get(f, "line")));
    }
  } else {
    n = snprintf(msg, sizeof msg, "no secrets found");
  }
  if (todo < size && n >= 0 && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, " (only the first %llu bytes were scanned)",
             (unsigned long long)todo);
  out = json_pack("{s:s, s:s, s:o}", "status", scan_level_name(s.level), "message", msg, "findings",
                  s.findings);
  s.findings = NULL;
done:
  json_decref(s.findings);
  free(blk);
  free(lb);
  return out;
}
