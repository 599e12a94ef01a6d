#include "ml/card.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/error.h"

static const char *line_end(const char *p, const char *end) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  return nl ? nl : end;
}

static int is_fence(const char *p, const char *e) {
  if (e > p && e[-1] == '\r') e--;
  while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  return e - p == 3 && memcmp(p, "---", 3) == 0;
}

int card_split(const char *md, size_t len, const char **yaml, size_t *ylen, const char **body,
               size_t *blen) {
  const char *end = md + len, *p = md;
  *yaml = NULL;
  *ylen = 0;
  *body = md;
  *blen = len;
  if (len >= 3 && (unsigned char)p[0] == 0xEF && len >= 6 && (unsigned char)p[1] == 0xBB &&
      (unsigned char)p[2] == 0xBF)
    p += 3; /* UTF-8 BOM */
  const char *le = line_end(p, end);
  if (!is_fence(p, le)) return 0;
  const char *start = le < end ? le + 1 : end;
  for (const char *q = start; q < end;) {
    const char *qe = line_end(q, end);
    if (is_fence(q, qe)) {
      *yaml = start;
      *ylen = (size_t)(q - start);
      *body = qe < end ? qe + 1 : end;
      *blen = (size_t)(end - *body);
      return 0;
    }
    q = qe < end ? qe + 1 : end;
  }
  return hub_error_set(HUB_EINVALID, "README.md front matter starts with '---' but never ends");
}

static json_t *scalar(const yaml_event_t *ev) {
  const char *v = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_stringn(v, n);
  if (n == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
    return json_null();
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) return json_true();
  if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) return json_false();
  if (strlen(v) == n) {
    char *e;
    errno = 0;
    long long i = strtoll(v, &e, 10);
    if (*e == 0 && errno == 0 && (v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9')))
      return json_integer(i);
    double d = strtod(v, &e);
    if (*e == 0 && errno == 0 && isfinite(d) && strspn(v, "0123456789+-.eE") == n &&
        strpbrk(v, "0123456789"))
      return json_real(d);
  }
  return json_stringn(v, n);
}

/* Parse one node starting with *ev (already read). Recursion bounded by depth. */
static int node(yaml_parser_t *p, yaml_event_t *ev, int depth, long *budget, json_t **out) {
  if (--*budget < 0) return hub_error_set(HUB_EINVALID, "YAML too large");
  if (depth > CARD_MAX_DEPTH) return hub_error_set(HUB_EINVALID, "YAML nested too deeply");
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    *out = scalar(ev);
    return *out ? 0 : HUB_ERROR;
  case YAML_ALIAS_EVENT:
    return hub_error_set(HUB_EINVALID, "YAML aliases are not supported in model cards (line %zu)",
                         ev->start_mark.line + 1);
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    json_t *c = is_map ? json_object() : json_array();
    for (;;) {
      yaml_event_t e;
      if (!yaml_parser_parse(p, &e)) {
        json_decref(c);
        return hub_error_set(HUB_EINVALID, "YAML error at line %zu, column %zu: %s",
                             p->problem_mark.line + 1, p->problem_mark.column + 1,
                             p->problem ? p->problem : "syntax error");
      }
      if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&e);
        break;
      }
      json_t *k = NULL, *v = NULL;
      int rc = node(p, &e, depth + 1, budget, &k);
      yaml_event_delete(&e);
      if (rc) {
        json_decref(c);
        return rc;
      }
      if (!is_map) {
        json_array_append_new(c, k);
        continue;
      }
      if (!yaml_parser_parse(p, &e)) {
        json_decref(k);
        json_decref(c);
        return hub_error_set(HUB_EINVALID, "YAML error at line %zu, column %zu: %s",
                             p->problem_mark.line + 1, p->problem_mark.column + 1,
                             p->problem ? p->problem : "syntax error");
      }
      rc = node(p, &e, depth + 1, budget, &v);
      yaml_event_delete(&e);
      if (rc) {
        json_decref(k);
        json_decref(c);
        return rc;
      }
      char kb[64];
      const char *key = json_string_value(k);
      if (!key) { /* non-string keys (numbers, booleans) become their text */
        char *d = json_dumps(k, JSON_ENCODE_ANY);
        snprintf(kb, sizeof kb, "%s", d ? d : "");
        free(d);
        key = kb;
      }
      json_object_set_new(c, key, v);
      json_decref(k);
    }
    *out = c;
    return 0;
  }
  default:
    return hub_error_set(HUB_EINVALID, "unexpected YAML event");
  }
}

int card_yaml_to_json(const char *yaml, size_t len, json_t **out) {
  yaml_parser_t p;
  *out = NULL;
  if (!yaml_parser_initialize(&p)) return hub_error_set(HUB_ERROR, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
  long budget = CARD_MAX_EVENTS;
  int rc = 0;
  json_t *root = NULL;
  for (;;) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      rc = hub_error_set(HUB_EINVALID, "YAML error at line %zu, column %zu: %s",
                         p.problem_mark.line + 1, p.problem_mark.column + 1,
                         p.problem ? p.problem : "syntax error");
      break;
    }
    yaml_event_type_t t = e.type;
    if (t == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&e);
      break;
    }
    if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
        t == YAML_ALIAS_EVENT) {
      if (root) {
        yaml_event_delete(&e);
        rc = hub_error_set(HUB_EINVALID, "YAML front matter must hold a single document");
        break;
      }
      rc = node(&p, &e, 0, &budget, &root);
      yaml_event_delete(&e);
      if (rc) break;
      continue;
    }
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&p);
  if (rc) {
    json_decref(root);
    return rc;
  }
  if (root && json_is_null(root)) {
    json_decref(root);
    root = NULL;
  }
  if (root && !json_is_object(root)) {
    json_decref(root);
    return hub_error_set(HUB_EINVALID, "YAML front matter must be a mapping (key: value)");
  }
  *out = root ? root : json_object();
  return 0;
}
