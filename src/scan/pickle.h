/* Pickle import classification (docs/scanning.md "Pickle imports"). The walker itself is
 * internal (scan/engine.h: scan_pickle_stream). */
#ifndef HUB_SCAN_PICKLE_H
#define HUB_SCAN_PICKLE_H

typedef enum {
  PICKLE_INNOCUOUS = 0,
  PICKLE_SUSPICIOUS = 1,
  PICKLE_DANGEROUS = 2,
} pickle_safety;

/* Safety of importing `module`.`name` (module "__builtin__" is read as "builtins", like
 * Python 3's fix_imports). Unknown imports are suspicious. */
pickle_safety pickle_classify(const char *module, const char *name);
/* "innocuous", "suspicious", "dangerous". */
const char *pickle_safety_name(pickle_safety s);

#endif
