/* UTF-8 text → JSON strings, bounded (shared by the ml/ parsers). */
#ifndef HUB_ML_TEXT_H
#define HUB_ML_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* A JSON string holding the first at most `max` bytes of s[0..len), cut back to a
 * character boundary. NULL if that prefix is not valid UTF-8 (or contains NUL) or on OOM.
 * Owned by the caller. */
json_t *ml_text_json(const char *s, size_t len, size_t max);

#endif
