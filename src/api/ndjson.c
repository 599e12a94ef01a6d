#include "api/ndjson.h"

#include "blob/blob.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/limits.h"
#include "util/path.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ndjson_commit *c;
  size_t cap;
  size_t line; /* 1-based physical line number, for messages */
  ndjson_op_cb cb;
  void *payload;
} parser;

#define FAIL(P, CODE, ...) fail_at((P), (CODE), __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int fail_at(parser *p, int code, const char *fmt,
                                                         ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hub_error_set(code, "line %zu: %s", p->line, msg);
}

void ndjson_commit_free(ndjson_commit *c) {
  if (!c) return;
  for (size_t i = 0; i < c->nops; i++) {
    free(c->ops[i].path);
    free(c->ops[i].content);
  }
  free(c->ops);
  free(c->summary);
  free(c->description);
  free(c);
}

/* ---- strict base64 (RFC 4648 §4: standard alphabet, padded, no whitespace) ---- */

static int b64val(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

/* Decode into a new NUL-terminated buffer; NULL + *why on bad input or OOM. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len, const char **why) {
  if (n % 4) {
    *why = "base64 length is not a multiple of 4";
    return NULL;
  }
  unsigned char *out = malloc(n / 4 * 3 + 1);
  size_t o = 0;
  if (!out) {
    *why = "out of memory";
    return NULL;
  }
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char ch = (unsigned char)s[i + k];
      if (ch == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad || (v[k] = b64val(ch)) < 0) {
        *why = "invalid base64";
        free(out);
        return NULL;
      }
    }
    unsigned bits =
        (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
    /* non-zero bits under the padding mean a non-canonical encoding */
    if ((pad == 1 && (bits & 0xff)) || (pad == 2 && (bits & 0xffff))) {
      *why = "invalid base64 (non-canonical padding bits)";
      free(out);
      return NULL;
    }
    out[o++] = (unsigned char)(bits >> 16);
    if (pad < 2) out[o++] = (unsigned char)(bits >> 8);
    if (pad < 1) out[o++] = (unsigned char)bits;
  }
  out[o] = 0;
  *out_len = o;
  return out;
}

/* ---- field helpers ---- */

/* Every key of obj must be in `allowed` (NULL-terminated). */
static int only_keys(parser *p, json_t *obj, const char *what, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    const char *const *a;
    for (a = allowed; *a; a++)
      if (!strcmp(*a, k)) break;
    if (!*a) {
      char q[64];
      path_quote(q, sizeof q, k, strlen(k));
      return FAIL(p, HUB_EINVALID, "unknown key '%s' in %s", q, what);
    }
  }
  return 0;
}

/* Optional string field: NULL if absent or null; error if another type. */
static int opt_string(parser *p, json_t *obj, const char *key, const char *what, json_t **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return FAIL(p, HUB_EINVALID, "%s: \"%s\" must be a string", what, key);
  *out = v;
  return 0;
}

static int req_string(parser *p, json_t *obj, const char *key, const char *what, json_t **out) {
  int rc = opt_string(p, obj, key, what, out);
  if (rc == 0 && !*out) return FAIL(p, HUB_EINVALID, "%s: missing \"%s\"", what, key);
  return rc;
}

static char *dup_json_string(json_t *s) {
  size_t n = json_string_length(s);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, json_string_value(s), n);
    d[n] = 0;
  }
  return d;
}

static int take_path(parser *p, json_t *value, const char *what, int folder, char **out) {
  json_t *s;
  int rc;
  *out = NULL;
  if ((rc = req_string(p, value, "path", what, &s)) < 0) return rc;
  char *path = dup_json_string(s);
  if (!path) return FAIL(p, HUB_ERROR, "out of memory");
  size_t n = json_string_length(s);
  if (folder && n > 0 && path[n - 1] == '/') path[--n] = 0;
  if (path_check_n(path, n) < 0) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hub_error_msg());
    free(path);
    return FAIL(p, HUB_EINVALID, "%s: %s", what, msg);
  }
  *out = path;
  return 0;
}

/* ---- lines ---- */

static int parse_header(parser *p, json_t *value) {
  static const char *const keys[] = {"summary", "description", "parentCommit", NULL};
  json_t *summary, *desc, *parent;
  int rc;
  if (!json_is_object(value)) return FAIL(p, HUB_EINVALID, "header value must be an object");
  if ((rc = only_keys(p, value, "header", keys)) < 0 ||
      (rc = req_string(p, value, "summary", "header", &summary)) < 0 ||
      (rc = opt_string(p, value, "description", "header", &desc)) < 0 ||
      (rc = opt_string(p, value, "parentCommit", "header", &parent)) < 0)
    return rc;
  if (parent) {
    const char *h = json_string_value(parent);
    size_t n = json_string_length(parent);
    if (n < 5 || n > 40)
      return FAIL(p, HUB_EINVALID, "header: parentCommit must be 5 to 40 hex characters");
    for (size_t i = 0; i < n; i++) {
      char ch = h[i];
      if (ch >= 'A' && ch <= 'F') ch = (char)(ch - 'A' + 'a');
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
        return FAIL(p, HUB_EINVALID, "header: parentCommit must be 5 to 40 hex characters");
      p->c->parent_commit[i] = ch;
    }
    p->c->parent_commit[n] = 0;
  }
  p->c->summary = dup_json_string(summary);
  p->c->description = desc ? dup_json_string(desc) : calloc(1, 1);
  if (!p->c->summary || !p->c->description) return FAIL(p, HUB_ERROR, "out of memory");
  return 0;
}

static int parse_file(parser *p, json_t *value, ndjson_op *op) {
  static const char *const keys[] = {"path", "content", "encoding", NULL};
  json_t *content, *enc;
  int rc;
  if ((rc = only_keys(p, value, "file", keys)) < 0 ||
      (rc = take_path(p, value, "file", 0, &op->path)) < 0 ||
      (rc = req_string(p, value, "content", "file", &content)) < 0 ||
      (rc = req_string(p, value, "encoding", "file", &enc)) < 0)
    return rc;
  const char *e = json_string_value(enc);
  size_t n = json_string_length(content);
  if (!strcmp(e, "base64")) {
    const char *why = NULL;
    op->content = b64_decode(json_string_value(content), n, &op->content_len, &why);
    if (!op->content) return FAIL(p, HUB_EINVALID, "file: content: %s", why);
  } else if (!strcmp(e, "utf-8")) {
    if (!(op->content = (unsigned char *)dup_json_string(content)))
      return FAIL(p, HUB_ERROR, "out of memory");
    op->content_len = n;
  } else {
    return FAIL(p, HUB_EINVALID, "file: encoding must be \"base64\" or \"utf-8\"");
  }
  return 0;
}

static int parse_lfs_file(parser *p, json_t *value, ndjson_op *op) {
  static const char *const keys[] = {"path", "oid", "algo", "size", "oldPath", NULL};
  json_t *oid, *algo, *old, *size;
  int rc;
  if ((rc = only_keys(p, value, "lfsFile", keys)) < 0 ||
      (rc = take_path(p, value, "lfsFile", 0, &op->path)) < 0 ||
      (rc = req_string(p, value, "oid", "lfsFile", &oid)) < 0 ||
      (rc = opt_string(p, value, "algo", "lfsFile", &algo)) < 0 ||
      (rc = opt_string(p, value, "oldPath", "lfsFile", &old)) < 0) /* JS type; unused */
    return rc;
  if (algo && strcmp(json_string_value(algo), "sha256") != 0)
    return FAIL(p, HUB_EINVALID, "lfsFile: algo must be \"sha256\"");
  if (json_string_length(oid) != 64 || !blob_oid_valid(json_string_value(oid)))
    return FAIL(p, HUB_EINVALID, "lfsFile: oid must be 64 lowercase hex characters");
  memcpy(op->oid, json_string_value(oid), 65);
  size = json_object_get(value, "size");
  if (size && !json_is_null(size)) {
    if (!json_is_integer(size) || json_integer_value(size) < 0)
      return FAIL(p, HUB_EINVALID, "lfsFile: size must be a non-negative integer");
    op->size = (int64_t)json_integer_value(size);
  }
  return 0;
}

static int parse_delete(parser *p, json_t *value, ndjson_op *op, int folder) {
  static const char *const keys[] = {"path", NULL};
  const char *what = folder ? "deletedFolder" : "deletedFile";
  int rc;
  if ((rc = only_keys(p, value, what, keys)) < 0 ||
      (rc = take_path(p, value, what, folder, &op->path)) < 0)
    return rc;
  return 0;
}

static int parse_op(parser *p, const char *key, json_t *value) {
  ndjson_commit *c = p->c;
  ndjson_op *op;
  int rc;
  if (!strcmp(key, "header")) return FAIL(p, HUB_EINVALID, "header must be the first line only");
  if (!json_is_object(value)) return FAIL(p, HUB_EINVALID, "\"value\" must be an object");
  if (c->nops >= HUB_MAX_COMMIT_OPS)
    return FAIL(p, HUB_ETOOBIG, "more than %d operations in one commit", HUB_MAX_COMMIT_OPS);
  if (c->nops == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    ndjson_op *ops = realloc(c->ops, cap * sizeof *ops);
    if (!ops) return FAIL(p, HUB_ERROR, "out of memory");
    c->ops = ops;
    p->cap = cap;
  }
  op = &c->ops[c->nops];
  memset(op, 0, sizeof *op);
  op->size = -1;
  op->content_off = -1;
  c->nops++; /* counted now so ndjson_commit_free() releases partial ops */
  if (!strcmp(key, "file")) {
    op->kind = NDJSON_OP_FILE;
    rc = parse_file(p, value, op);
  } else if (!strcmp(key, "lfsFile")) {
    op->kind = NDJSON_OP_LFS_FILE;
    rc = parse_lfs_file(p, value, op);
  } else if (!strcmp(key, "deletedFile")) {
    op->kind = NDJSON_OP_DELETED_FILE;
    rc = parse_delete(p, value, op, 0);
  } else if (!strcmp(key, "deletedFolder")) {
    op->kind = NDJSON_OP_DELETED_FOLDER;
    rc = parse_delete(p, value, op, 1);
  } else {
    char q[64];
    path_quote(q, sizeof q, key, strlen(key));
    rc = FAIL(p, HUB_EINVALID, "unknown operation key '%s'", q);
  }
  if (rc == 0 && p->cb) rc = p->cb(p->payload, op);
  return rc;
}

static int parse_line(parser *p, const char *s, size_t n) {
  static const char *const keys[] = {"key", "value", NULL};
  json_error_t jerr;
  json_t *root = NULL, *key, *value;
  int rc;
  root = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return FAIL(p, HUB_EINVALID, "invalid JSON: %s", jerr.text);
  if (!json_is_object(root)) {
    rc = FAIL(p, HUB_EINVALID, "expected a JSON object");
    goto done;
  }
  if ((rc = only_keys(p, root, "line", keys)) < 0 ||
      (rc = req_string(p, root, "key", "line", &key)) < 0)
    goto done;
  if (!(value = json_object_get(root, "value"))) {
    rc = FAIL(p, HUB_EINVALID, "missing \"value\"");
    goto done;
  }
  if (!p->c->summary) {
    if (strcmp(json_string_value(key), "header") != 0) {
      rc = FAIL(p, HUB_EINVALID, "first line must be the header ({\"key\":\"header\",...})");
      goto done;
    }
    rc = parse_header(p, value);
  } else {
    rc = parse_op(p, json_string_value(key), value);
  }
done:
  json_decref(root);
  return rc;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

/* One physical line, without its '\n'. */
static int one_line(parser *p, const char *s, size_t n) {
  p->line++;
  if (n && s[n - 1] == '\r') n--;
  return is_blank(s, n) ? 0 : parse_line(p, s, n);
}

struct ndjson_stream {
  parser p;
  hub_buf line; /* the unfinished line */
  int rc;       /* sticky error */
};

int ndjson_stream_new(ndjson_stream **out, ndjson_op_cb cb, void *payload) {
  ndjson_stream *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s || !(s->p.c = calloc(1, sizeof *s->p.c))) {
    free(s);
    return hub_error_set(HUB_ERROR, "out of memory");
  }
  s->p.cb = cb;
  s->p.payload = payload;
  *out = s;
  return 0;
}

static int too_long(ndjson_stream *s) {
  return hub_error_set(HUB_ETOOBIG,
                       "line %zu: longer than %ld bytes; upload large files through LFS "
                       "(preupload answers \"lfs\" for them)",
                       s->p.line + 1, (long)HUB_MAX_NDJSON_LINE);
}

int ndjson_stream_feed(ndjson_stream *s, const char *data, size_t len) {
  if (s->rc) return s->rc;
  while (len) {
    const char *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) : len;
    if (take > (size_t)HUB_MAX_NDJSON_LINE - s->line.len) return s->rc = too_long(s);
    if (!nl || s->line.len) {
      if (hub_buf_put(&s->line, data, take))
        return s->rc = hub_error_set(HUB_ERROR, "out of memory");
      if (!nl) return 0;
    }
    /* A complete line: parsed in place unless it began in an earlier chunk. */
    int rc = s->line.len ? one_line(&s->p, s->line.ptr, s->line.len) : one_line(&s->p, data, take);
    /* Keep a small buffer for the next lines; give a big one back. */
    if (s->line.cap > 64 * 1024)
      hub_buf_dispose(&s->line);
    else
      hub_buf_clear(&s->line);
    if (rc) return s->rc = rc;
    data += take + 1;
    len -= take + 1;
  }
  return 0;
}

size_t ndjson_stream_buffered(const ndjson_stream *s) {
  return s->line.ptr ? s->line.cap : 0;
}

int ndjson_stream_finish(ndjson_stream *s, ndjson_commit **out) {
  *out = NULL;
  if (s->rc) return s->rc;
  if (s->line.len && (s->rc = one_line(&s->p, s->line.ptr, s->line.len))) return s->rc;
  hub_buf_dispose(&s->line);
  if (!s->p.c->summary)
    return s->rc = hub_error_set(HUB_EINVALID, "commit body has no header line");
  *out = s->p.c;
  s->p.c = NULL;
  s->rc = HUB_ERROR; /* handed over: nothing more to parse */
  return 0;
}

void ndjson_stream_free(ndjson_stream *s) {
  if (!s) return;
  ndjson_commit_free(s->p.c);
  hub_buf_dispose(&s->line);
  free(s);
}

int ndjson_commit_parse(ndjson_commit **out, const char *buf, size_t len) {
  ndjson_stream *s = NULL;
  *out = NULL;
  int rc = ndjson_stream_new(&s, NULL, NULL);
  if (rc == 0 && (rc = ndjson_stream_feed(s, buf, len)) == 0) rc = ndjson_stream_finish(s, out);
  ndjson_stream_free(s);
  return rc;
}
