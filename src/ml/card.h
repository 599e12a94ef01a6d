/* Model-card README: YAML front matter → JSON (libyaml), bounded. */
#ifndef HUB_ML_CARD_H
#define HUB_ML_CARD_H

#include <jansson.h>
#include <stddef.h>

/* Maximum nesting of YAML collections: bounds recursion on hostile cards. */
#define CARD_MAX_DEPTH 64
/* Maximum YAML events processed: bounds work (and alias blow-ups, which are refused). */
#define CARD_MAX_EVENTS 200000

/* Split "---\n<yaml>\n---\n<body>". No front matter → *yaml = NULL, *body = md.
 * Pointers borrow from md. Returns 0, or HUB_EINVALID for an unterminated block. */
int card_split(const char *md, size_t len, const char **yaml, size_t *yaml_len, const char **body,
               size_t *body_len);
/* Parse YAML (one document whose root is a mapping, or empty) into a JSON object.
 * *out is owned by the caller. HUB_EINVALID with a message naming line/column. */
int card_yaml_to_json(const char *yaml, size_t len, json_t **out);

#endif
