#include "ml/text.h"

json_t *ml_text_json(const char *s, size_t len, size_t max) {
  if (len > max) {
    len = max;
    /* Drop a trailing partial character: back up over continuation bytes (at most 3)
     * to the lead byte, and drop it too unless its sequence fits entirely. */
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
      i--, back++;
    if (i > 0) {
      unsigned char lead = (unsigned char)s[i - 1];
      size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > back + 1) len = i - 1;
    }
  }
  return json_stringn(s, len); /* validates UTF-8; NULL when invalid */
}
