/* The pickle walker (docs/scanning.md): reads opcodes of protocols 0-5 without executing
 * anything, keeps a model of the stack and memo that is just precise enough to know the
 * operands of the import opcodes (GLOBAL, INST, STACK_GLOBAL), and records every import
 * with its safety (scan/pickle.h). String constants are kept (bounded) so that STACK_GLOBAL
 * operands pushed directly or fetched from the memo resolve; anything else on the stack is
 * an opaque value, and a STACK_GLOBAL on opaque values is an unresolved import (dangerous).
 *
 * Bounds: stack and mark depth SCAN_STACK_MAX, memo indices below SCAN_MEMO_MAX (a larger
 * index is stored nowhere: a GET of it is opaque), kept strings SCAN_ARENA_MAX bytes per
 * pickle and SCAN_NAME_MAX each (longer ones are opaque and skipped, by seeking when the
 * stream is stored), and the stream itself by pickle_max_bytes. */
#include "scan/engine.h"
#include "scan/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V_UNSET = 0, V_OTHER, V_STR, V_GLOBAL };

typedef struct {
  uint8_t kind;
  uint32_t off; /* V_STR: arena offset of a NUL-terminated string */
} val;

typedef struct {
  scan_ctx *c;
  scan_rd *r;
  val *stack;
  uint32_t sp, cap;
  uint32_t *marks;
  uint32_t nmarks, mcap;
  val *memo;
  uint32_t memo_len, memo_cap; /* slots in use (highest index + 1) */
  uint64_t memo_count;         /* distinct keys stored: MEMOIZE's next index, as in Python */
  char *arena;
  uint32_t alen, acap;
  const char *err; /* malformed: why */
  uint64_t err_at;
} walker;

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem, uint32_t max) {
  if (need <= *cap) return 0;
  if (need > max) return -1;
  uint32_t n = *cap ? *cap : 64;
  while (n < need)
    n = n > max / 2 ? max : n * 2;
  void *q = realloc(*p, (size_t)n * elem);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static int fail(walker *w, const char *why) {
  if (!w->err) {
    w->err = why;
    w->err_at = scan_rd_tell(w->r);
  }
  return -1;
}

static int push(walker *w, val v) {
  if (grow((void **)&w->stack, &w->cap, w->sp + 1, sizeof(val), SCAN_STACK_MAX))
    return fail(w, "stack deeper than the scanner's bound");
  w->stack[w->sp++] = v;
  return 0;
}

static uint32_t base(const walker *w) {
  return w->nmarks ? w->marks[w->nmarks - 1] : 0;
}

static int pop(walker *w, val *out) {
  if (w->sp <= base(w)) return fail(w, "stack underflow");
  w->sp--;
  if (out) *out = w->stack[w->sp];
  return 0;
}

static int popn(walker *w, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (pop(w, NULL)) return -1;
  return 0;
}

static int mark(walker *w) {
  if (grow((void **)&w->marks, &w->mcap, w->nmarks + 1, sizeof(uint32_t), SCAN_STACK_MAX))
    return fail(w, "marks deeper than the scanner's bound");
  w->marks[w->nmarks++] = w->sp;
  return 0;
}

/* Pop everything down to the last mark, and the mark. `first`: the first item above it. */
static int pop_mark(walker *w, val *first) {
  if (!w->nmarks) return fail(w, "no mark on the stack");
  uint32_t b = w->marks[--w->nmarks];
  if (first) {
    if (w->sp <= b) return fail(w, "empty mark");
    *first = w->stack[b];
  }
  w->sp = b;
  return 0;
}

static val str_val(walker *w, const char *s, size_t n) {
  val v = {V_OTHER, 0};
  if (n >= SCAN_NAME_MAX || memchr(s, '\0', n)) return v;
  if (grow((void **)&w->arena, &w->acap, w->alen + (uint32_t)n + 1, 1, SCAN_ARENA_MAX)) return v;
  memcpy(w->arena + w->alen, s, n);
  w->arena[w->alen + n] = '\0';
  v.kind = V_STR;
  v.off = w->alen;
  w->alen += (uint32_t)n + 1;
  return v;
}

static void record(walker *w, const char *module, const char *name, pickle_safety forced) {
  scan_ctx *c = w->c;
  pickle_safety s = forced ? forced : pickle_classify(module, name);
  char m[SCAN_NAME_MAX], n[SCAN_NAME_MAX]; /* as JSON can carry them */
  snprintf(m, sizeof m, "%s", module);
  snprintf(n, sizeof n, "%s", name);
  scan_utf8_fix(m);
  scan_utf8_fix(n);
  module = m, name = n;
  scan_level l = s == PICKLE_DANGEROUS    ? SCAN_UNSAFE
                 : s == PICKLE_SUSPICIOUS ? SCAN_SUSPICIOUS
                                          : SCAN_SAFE;
  char key[2 * SCAN_NAME_MAX + 2];
  snprintf(key, sizeof key, "%s %s", module, name);
  if (l > SCAN_SAFE) scan_ctx_pickle(c, l, "%s import %s.%s", pickle_safety_name(s), module, name);
  if (json_object_get(c->seen, key)) return;
  if (json_array_size(c->imports) >= SCAN_IMPORTS_MAX) return;
  json_t *o =
      json_pack("{s:s, s:s, s:s}", "module", module, "name", name, "safety", pickle_safety_name(s));
  if (!o || json_array_append_new(c->imports, o) || json_object_set_new(c->seen, key, json_true()))
    c->oom = 1;
}

/* A line without its '\n' into buf (NUL-terminated); *trunc when longer than the buffer
 * (the rest is consumed). -1 at the end of the stream. */
static int line(walker *w, char *buf, size_t cap, size_t *len, int *trunc) {
  size_t n = 0;
  *trunc = 0;
  for (;;) {
    int ch = scan_rd_getc(w->r);
    if (ch < 0) return fail(w, "truncated line");
    if (ch == '\n') break;
    if (n + 1 < cap)
      buf[n++] = (char)ch;
    else
      *trunc = 1;
  }
  buf[n] = '\0';
  if (n && buf[n - 1] == '\r') buf[--n] = '\0';
  *len = n;
  return 0;
}

static int skip_line(walker *w) {
  char tmp[64];
  size_t n;
  int t;
  return line(w, tmp, sizeof tmp, &n, &t);
}

static int le(walker *w, unsigned n, uint64_t *out) {
  unsigned char b[8];
  if (scan_rd_read(w->r, b, n)) return fail(w, "truncated argument");
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v |= (uint64_t)b[i] << (8 * i);
  *out = v;
  return 0;
}

/* A counted string or bytes value of length n: kept when it is a short str, skipped
 * otherwise. */
static int counted(walker *w, uint64_t n, int is_str) {
  if (is_str && n < SCAN_NAME_MAX) {
    char buf[SCAN_NAME_MAX];
    if (scan_rd_read(w->r, buf, (size_t)n)) return fail(w, "truncated string");
    return push(w, str_val(w, buf, (size_t)n));
  }
  if (scan_rd_skip(w->r, n)) return fail(w, "truncated data");
  return push(w, (val){V_OTHER, 0});
}

/* A quoted protocol-0 string (STRING) or raw-unicode-escape line (UNICODE): kept only
 * when it has no escapes (an escaped name is opaque, hence unresolved if imported). */
static int text_value(walker *w, int quoted) {
  char buf[SCAN_NAME_MAX + 4];
  size_t n;
  int t;
  if (line(w, buf, sizeof buf, &n, &t)) return -1;
  char *s = buf;
  if (quoted) {
    if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0])
      return fail(w, "STRING without quotes");
    s++, n -= 2;
  }
  if (t || memchr(s, '\\', n)) return push(w, (val){V_OTHER, 0});
  return push(w, str_val(w, s, n));
}

static int memo_put(walker *w, uint64_t idx) {
  if (!w->sp || w->sp <= base(w)) return fail(w, "memo put on an empty stack");
  if (idx >= SCAN_MEMO_MAX) { /* not kept: a GET of it is opaque */
    w->memo_count++;
    return 0;
  }
  if (grow((void **)&w->memo, &w->memo_cap, (uint32_t)idx + 1, sizeof(val), SCAN_MEMO_MAX))
    return fail(w, "out of memory");
  if (idx >= w->memo_len) {
    memset(w->memo + w->memo_len, 0, (size_t)(idx + 1 - w->memo_len) * sizeof(val));
    w->memo_len = (uint32_t)idx + 1;
  }
  if (w->memo[idx].kind == V_UNSET) w->memo_count++;
  w->memo[idx] = w->stack[w->sp - 1];
  return 0;
}

static int memo_get(walker *w, uint64_t idx) {
  if (idx >= SCAN_MEMO_MAX) return push(w, (val){V_OTHER, 0});
  if (idx >= w->memo_len || w->memo[idx].kind == V_UNSET) return fail(w, "memo key not found");
  return push(w, w->memo[idx]);
}

static int decimal_line(walker *w, uint64_t *out) {
  char buf[32];
  size_t n;
  int t;
  if (line(w, buf, sizeof buf, &n, &t)) return -1;
  if (t || !n) return fail(w, "bad memo index");
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] < '0' || buf[i] > '9') return fail(w, "bad memo index");
    v = v * 10 + (uint64_t)(buf[i] - '0');
    if (v > UINT32_MAX) v = UINT32_MAX;
  }
  *out = v;
  return 0;
}

static int global_lines(walker *w) {
  char mod[SCAN_NAME_MAX], name[SCAN_NAME_MAX];
  size_t n1, n2;
  int t1, t2;
  if (line(w, mod, sizeof mod, &n1, &t1) || line(w, name, sizeof name, &n2, &t2)) return -1;
  if (t1 || t2)
    record(w, t1 ? "<too long>" : mod, t2 ? "<too long>" : name, PICKLE_DANGEROUS);
  else
    record(w, mod, name, 0);
  return 0;
}

/* One pickle, up to STOP: 1 at STOP, -1 malformed/truncated. */
static int walk_one(walker *w) {
  uint64_t a;
  val v, v2;
  for (;;) {
    int op = scan_rd_getc(w->r);
    if (op < 0) return fail(w, "truncated pickle (no STOP)");
    int rc = 0;
    switch (op) {
    case '.': /* STOP */
      return 1;
    case '(':
      rc = mark(w);
      break;
    case '0':
      rc = pop(w, NULL);
      break;
    case '1':
      rc = pop_mark(w, NULL);
      break;
    case '2':
      if (w->sp <= base(w)) return fail(w, "DUP on an empty stack");
      rc = push(w, w->stack[w->sp - 1]);
      break;
    case 'F':
    case 'I':
    case 'L': /* FLOAT INT LONG */
      rc = skip_line(w) || push(w, (val){V_OTHER, 0});
      break;
    case 'J':
      rc = le(w, 4, &a) || push(w, (val){V_OTHER, 0});
      break;
    case 'K':
      rc = le(w, 1, &a) || push(w, (val){V_OTHER, 0});
      break;
    case 'M':
      rc = le(w, 2, &a) || push(w, (val){V_OTHER, 0});
      break;
    case 'G':
      rc = le(w, 8, &a) || push(w, (val){V_OTHER, 0});
      break;
    case 'N':
    case '}':
    case ']':
    case ')':
    case 0x88:
    case 0x89:
    case 0x8f:
    case 0x97:
      rc = push(w, (val){V_OTHER, 0});
      break;
    case 'P':
      rc = skip_line(w) || push(w, (val){V_OTHER, 0});
      break; /* PERSID */
    case 'Q':
    case 0x98: /* BINPERSID READONLY_BUFFER */
      rc = pop(w, NULL) || push(w, (val){V_OTHER, 0});
      break;
    case 'R':
    case 0x81: /* REDUCE NEWOBJ */
      rc = popn(w, 2) || push(w, (val){V_OTHER, 0});
      break;
    case 0x92:
      rc = popn(w, 3) || push(w, (val){V_OTHER, 0});
      break; /* NEWOBJ_EX */
    case 'S':
      rc = text_value(w, 1);
      break;
    case 'V':
      rc = text_value(w, 0);
      break;
    case 'T': /* BINSTRING: signed 4-byte length, str under the default encoding */
      if (le(w, 4, &a)) return -1;
      if (a & 0x80000000u) return fail(w, "negative BINSTRING length");
      rc = counted(w, a, 1);
      break;
    case 'U':
      rc = le(w, 1, &a) || counted(w, a, 1);
      break; /* SHORT_BINSTRING */
    case 'X':
      rc = le(w, 4, &a) || counted(w, a, 1);
      break; /* BINUNICODE */
    case 0x8c:
      rc = le(w, 1, &a) || counted(w, a, 1);
      break; /* SHORT_BINUNICODE */
    case 0x8d:
      rc = le(w, 8, &a) || counted(w, a, 1);
      break; /* BINUNICODE8 */
    case 'B':
      rc = le(w, 4, &a) || counted(w, a, 0);
      break; /* BINBYTES */
    case 'C':
      rc = le(w, 1, &a) || counted(w, a, 0);
      break; /* SHORT_BINBYTES */
    case 0x8e:
    case 0x96:
      rc = le(w, 8, &a) || counted(w, a, 0);
      break; /* BINBYTES8 BYTEARRAY8 */
    case 0x8a:
      rc = le(w, 1, &a) || counted(w, a, 0);
      break;   /* LONG1 */
    case 0x8b: /* LONG4 */
      if (le(w, 4, &a)) return -1;
      if (a & 0x80000000u) return fail(w, "negative LONG4 length");
      rc = counted(w, a, 0);
      break;
    case 'a':
      rc = pop(w, NULL);
      break; /* APPEND */
    case 'b':
      rc = pop(w, NULL);
      break; /* BUILD */
    case 's':
      rc = popn(w, 2);
      break; /* SETITEM */
    case 'e':
    case 'u':
    case 0x90:
      rc = pop_mark(w, NULL);
      break; /* APPENDS SETITEMS ADDITEMS */
    case 'd':
    case 'l':
    case 't':
    case 0x91: /* DICT LIST TUPLE FROZENSET */
      rc = pop_mark(w, NULL) || push(w, (val){V_OTHER, 0});
      break;
    case 0x85:
      rc = popn(w, 1) || push(w, (val){V_OTHER, 0});
      break;
    case 0x86:
      rc = popn(w, 2) || push(w, (val){V_OTHER, 0});
      break;
    case 0x87:
      rc = popn(w, 3) || push(w, (val){V_OTHER, 0});
      break;
    case 'c':
      rc = global_lines(w) || push(w, (val){V_GLOBAL, 0});
      break;  /* GLOBAL */
    case 'i': /* INST: import, then instantiate with the marked items */
      rc = global_lines(w) || pop_mark(w, NULL) || push(w, (val){V_OTHER, 0});
      break;
    case 'o': /* OBJ: the class is the first marked item (imported by an earlier opcode) */
      rc = pop_mark(w, &v) || push(w, (val){V_OTHER, 0});
      break;
    case 0x93: /* STACK_GLOBAL: module and name must be string constants */
      if (pop(w, &v2) || pop(w, &v)) return -1;
      if (v.kind == V_STR && v2.kind == V_STR)
        record(w, w->arena + v.off, w->arena + v2.off, 0);
      else
        record(w, v.kind == V_STR ? w->arena + v.off : "<unresolved>",
               v2.kind == V_STR ? w->arena + v2.off : "<unresolved>", PICKLE_DANGEROUS);
      rc = push(w, (val){V_GLOBAL, 0});
      break;
    case 0x82:
    case 0x83:
    case 0x84: { /* EXT1 EXT2 EXT4: the copyreg extension registry */
      if (le(w, op == 0x82 ? 1 : op == 0x83 ? 2 : 4, &a)) return -1;
      char code[24];
      snprintf(code, sizeof code, "%llu", (unsigned long long)a);
      record(w, "<extension>", code, PICKLE_DANGEROUS);
      rc = push(w, (val){V_GLOBAL, 0});
      break;
    }
    case 'g':
      rc = decimal_line(w, &a) || memo_get(w, a);
      break;
    case 'h':
      rc = le(w, 1, &a) || memo_get(w, a);
      break;
    case 'j':
      rc = le(w, 4, &a) || memo_get(w, a);
      break;
    case 'p':
      rc = decimal_line(w, &a) || memo_put(w, a);
      break;
    case 'q':
      rc = le(w, 1, &a) || memo_put(w, a);
      break;
    case 'r':
      rc = le(w, 4, &a) || memo_put(w, a);
      break;
    case 0x94: /* MEMOIZE */
      rc = memo_put(w, w->memo_count);
      break;
    case 0x80: /* PROTO */
      if (le(w, 1, &a)) return -1;
      if (a > 5) return fail(w, "unsupported pickle protocol");
      break;
    case 0x95:
      rc = le(w, 8, &a);
      break; /* FRAME: a length hint only */
    default:
      return fail(w, "unknown opcode");
    }
    if (rc) return fail(w, "malformed");
  }
}

static void walker_reset(walker *w) {
  w->sp = w->nmarks = w->memo_len = w->alen = 0;
  w->memo_count = 0;
  w->err = NULL;
}

void scan_pickle_stream(scan_ctx *c, scan_rd *r, const char *member) {
  walker w;
  memset(&w, 0, sizeof w);
  w.c = c;
  w.r = r;
  c->pickle_applied = 1;
  if (json_array_size(c->members) < SCAN_MEMBERS_MAX &&
      json_array_append_new(c->members, json_string(member)))
    c->oom = 1;
  uint64_t n = 0;
  for (;;) {
    walker_reset(&w);
    int rc = walk_one(&w);
    n++;
    c->pickles++;
    if (rc < 0) {
      if (r->ioerr) {
        scan_ctx_pickle(c, SCAN_ERROR, "%s: read error", member);
      } else if (r->limited) {
        scan_ctx_pickle(c, SCAN_CAUTION, "%s: walked the first %llu bytes only", member,
                        (unsigned long long)r->limit);
      } else if (r->bomb) {
        scan_ctx_archive(c, SCAN_UNSAFE, member,
                         "member inflates beyond its declared size or ratio");
      } else if (n == 1) { /* a later "pickle" that breaks is trailing data (legacy storages) */
        scan_ctx_pickle(c, SCAN_SUSPICIOUS, "%s: malformed pickle at byte %llu: %s", member,
                        (unsigned long long)w.err_at, w.err);
      }
      break;
    }
    /* Legacy torch.save: magic, protocol, sys_info and data pickles back to back. */
    size_t got;
    const unsigned char *p = scan_rd_peek(r, 2, &got);
    if (got < 2 || p[0] != 0x80 || p[1] > 5) break;
  }
  free(w.stack);
  free(w.marks);
  free(w.memo);
  free(w.arena);
}

/* .npy: "\x93NUMPY", major, minor, header length (2 bytes in v1, 4 in v2/v3), then a
 * Python dict literal. An object dtype ('O' in 'descr') means a pickle follows. */
void scan_npy_stream(scan_ctx *c, scan_rd *r, const char *member) {
  unsigned char pre[10];
  if (scan_rd_read(r, pre, 8) || memcmp(pre, "\x93NUMPY", 6)) return;
  uint64_t hl;
  if (pre[6] == 1) {
    if (scan_rd_read(r, pre + 8, 2)) return;
    hl = pre[8] | (uint64_t)pre[9] << 8;
  } else {
    unsigned char b[4];
    if (scan_rd_read(r, b, 4)) return;
    hl = b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24;
  }
  if (hl > 1u << 20) {
    scan_ctx_pickle(c, SCAN_SUSPICIOUS, "%s: .npy header of %llu bytes", member,
                    (unsigned long long)hl);
    return;
  }
  char *h = malloc(hl + 1);
  if (!h) {
    c->oom = 1;
    return;
  }
  int object = 0;
  if (scan_rd_read(r, h, (size_t)hl) == 0) {
    h[hl] = '\0';
    /* A quoted type string: optional byte-order char, then 'O' and digits. */
    const char *d = strstr(h, "'descr'");
    for (const char *p = d; p && *p && *p != '}'; p++) {
      if (*p != '\'' && *p != '"') continue;
      const char *q = p + 1;
      if (*q == '<' || *q == '>' || *q == '|' || *q == '=') q++;
      if (*q == 'O') {
        q++;
        while (*q >= '0' && *q <= '9')
          q++;
        if (*q == *p) object = 1;
      }
      const char *end = strchr(p + 1, *p); /* skip to the closing quote */
      if (!end) break;
      p = end;
    }
  }
  free(h);
  if (object) scan_pickle_stream(c, r, member);
}
