/* The documented import lists of the pickle scanner (docs/scanning.md "Pickle imports").
 * An entry matches a module exactly, or a submodule of it ("os" matches "os.path"), and a
 * name exactly or any name ("*"). Dangerous is checked first, then innocuous; anything else
 * is suspicious. */
#include "scan/pickle.h"

#include <string.h>

typedef struct {
  const char *module;
  const char *name; /* "*": any */
} entry;

static const entry DANGEROUS[] = {
    {"builtins", "eval"},
    {"builtins", "exec"},
    {"builtins", "execfile"},
    {"builtins", "compile"},
    {"builtins", "getattr"},
    {"builtins", "setattr"},
    {"builtins", "delattr"},
    {"builtins", "open"},
    {"builtins", "__import__"},
    {"builtins", "globals"},
    {"builtins", "locals"},
    {"builtins", "vars"},
    {"builtins", "input"},
    {"builtins", "breakpoint"},
    {"builtins", "apply"},
    {"builtins", "file"},
    {"os", "*"},
    {"posix", "*"},
    {"nt", "*"},
    {"subprocess", "*"},
    {"socket", "*"},
    {"runpy", "*"},
    {"pickle", "*"},
    {"_pickle", "*"},
    {"cPickle", "*"},
    {"dill", "*"},
    {"shutil", "*"},
    {"sys", "*"},
    {"importlib", "*"},
    {"imp", "*"},
    {"ctypes", "*"},
    {"pty", "*"},
    {"code", "*"},
    {"codeop", "*"},
    {"commands", "*"},
    {"marshal", "*"},
    {"types", "*"},
    {"multiprocessing", "*"},
    {"webbrowser", "*"},
    {"http", "*"},
    {"httplib", "*"},
    {"urllib", "*"},
    {"urllib2", "*"},
    {"requests", "*"},
    {"asyncio", "*"},
    {"pdb", "*"},
    {"bdb", "*"},
    {"timeit", "*"},
    {"functools", "partial"},
    {"operator", "attrgetter"},
    {"operator", "methodcaller"},
    {"torch.serialization", "load"},
    {"torch", "load"},
    {"numpy.testing._private.utils", "runstring"},
};

static const entry INNOCUOUS[] = {
    {"collections", "OrderedDict"},
    {"collections", "defaultdict"},
    {"collections", "Counter"},
    {"collections", "deque"},
    {"builtins", "set"},
    {"builtins", "frozenset"},
    {"builtins", "list"},
    {"builtins", "dict"},
    {"builtins", "tuple"},
    {"builtins", "bytes"},
    {"builtins", "bytearray"},
    {"builtins", "slice"},
    {"builtins", "range"},
    {"builtins", "int"},
    {"builtins", "float"},
    {"builtins", "complex"},
    {"builtins", "bool"},
    {"builtins", "str"},
    {"builtins", "object"},
    {"copyreg", "_reconstructor"},
    {"copy_reg", "_reconstructor"},
    {"_codecs", "encode"},
    {"torch._utils", "_rebuild_tensor"},
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_tensor_v3"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch._utils", "_rebuild_qtensor"},
    {"torch._utils", "_rebuild_sparse_tensor"},
    {"torch._utils", "_rebuild_device_tensor_from_numpy"},
    {"torch._tensor", "_rebuild_from_type_v2"},
    {"torch", "Tensor"},
    {"torch", "Size"},
    {"torch", "device"},
    {"torch.nn.parameter", "Parameter"},
    {"torch", "UntypedStorage"},
    {"torch", "TypedStorage"},
    {"torch", "FloatStorage"},
    {"torch", "DoubleStorage"},
    {"torch", "HalfStorage"},
    {"torch", "BFloat16Storage"},
    {"torch", "LongStorage"},
    {"torch", "IntStorage"},
    {"torch", "ShortStorage"},
    {"torch", "CharStorage"},
    {"torch", "ByteStorage"},
    {"torch", "BoolStorage"},
    {"torch", "ComplexFloatStorage"},
    {"torch", "ComplexDoubleStorage"},
    {"torch", "QInt8Storage"},
    {"torch", "QUInt8Storage"},
    {"torch", "QInt32Storage"},
    {"torch", "QUInt4x2Storage"},
    {"torch", "QUInt2x4Storage"},
    {"torch", "float16"},
    {"torch", "float32"},
    {"torch", "float64"},
    {"torch", "bfloat16"},
    {"torch", "half"},
    {"torch", "float"},
    {"torch", "double"},
    {"torch", "int8"},
    {"torch", "int16"},
    {"torch", "int32"},
    {"torch", "int64"},
    {"torch", "uint8"},
    {"torch", "bool"},
    {"torch", "complex64"},
    {"torch", "complex128"},
    {"torch", "float8_e4m3fn"},
    {"torch", "float8_e5m2"},
    {"torch", "contiguous_format"},
    {"torch", "channels_last"},
    {"torch", "preserve_format"},
    {"torch", "strided"},
    {"torch", "sparse_coo"},
    {"numpy", "dtype"},
    {"numpy", "ndarray"},
    {"numpy.core.multiarray", "_reconstruct"},
    {"numpy.core.multiarray", "scalar"},
    {"numpy._core.multiarray", "_reconstruct"},
    {"numpy._core.multiarray", "scalar"},
    {"numpy.core.numeric", "_frombuffer"},
    {"numpy._core.numeric", "_frombuffer"},
};

static int module_matches(const char *pat, const char *module) {
  size_t n = strlen(pat);
  return strncmp(pat, module, n) == 0 && (module[n] == '\0' || module[n] == '.');
}

static int in_list(const entry *l, size_t n, const char *module, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(l[i].name, "*") == 0) {
      if (module_matches(l[i].module, module)) return 1;
    } else if (strcmp(l[i].module, module) == 0 && strcmp(l[i].name, name) == 0) {
      return 1;
    }
  }
  return 0;
}

pickle_safety pickle_classify(const char *module, const char *name) {
  if (!module || !name) return PICKLE_DANGEROUS;
  if (strcmp(module, "__builtin__") == 0 || strcmp(module, "__builtins__") == 0)
    module = "builtins";
  if (in_list(DANGEROUS, sizeof DANGEROUS / sizeof *DANGEROUS, module, name))
    return PICKLE_DANGEROUS;
  /* A dotted name is an attribute path walked at load time (protocol 4+ find_class):
   * one that passes through a dunder, a dangerous module or a dangerous builtin reaches
   * whatever it names ("_utils.os.system", "Tensor.__reduce_ex__.__globals__"). */
  if (strchr(name, '.')) {
    char part[128];
    const char *p = name;
    while (*p) {
      size_t n = strcspn(p, ".");
      if (n >= sizeof part || (n >= 2 && p[0] == '_' && p[1] == '_')) return PICKLE_DANGEROUS;
      memcpy(part, p, n);
      part[n] = '\0';
      if (in_list(DANGEROUS, sizeof DANGEROUS / sizeof *DANGEROUS, part, "") ||
          in_list(DANGEROUS, sizeof DANGEROUS / sizeof *DANGEROUS, "builtins", part))
        return PICKLE_DANGEROUS;
      p += n;
      if (*p) p++;
    }
  }
  if (in_list(INNOCUOUS, sizeof INNOCUOUS / sizeof *INNOCUOUS, module, name))
    return PICKLE_INNOCUOUS;
  return PICKLE_SUSPICIOUS;
}

const char *pickle_safety_name(pickle_safety s) {
  return s == PICKLE_INNOCUOUS ? "innocuous" : s == PICKLE_SUSPICIOUS ? "suspicious" : "dangerous";
}
