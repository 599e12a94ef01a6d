/* libFuzzer: X-Forwarded-For behind trusted proxies (http/forwarded.h). Input: the trusted
 * list, the peer and the header, separated by newlines. The client found must be an
 * address of the header (or the peer, untouched), and fit the buffer. */
#include "http/forwarded.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  char *trusted = buf, *peer = "", *xff = NULL;
  char *nl = strchr(trusted, '\n');
  if (nl) {
    *nl = 0;
    peer = nl + 1;
    if ((nl = strchr(peer, '\n'))) {
      *nl = 0;
      xff = nl + 1;
    }
  }
  char out[64];
  memset(out, 'x', sizeof out);
  int got = http_forwarded_client(trusted, peer, xff, out, sizeof out);
  if (got) {
    if (!memchr(out, 0, sizeof out)) abort();        /* NUL-terminated within the buffer */
    if (!xff || !*out || !strstr(xff, out)) abort(); /* one of the header's hops */
  } else if (out[0] != 'x') {
    abort(); /* untouched */
  }
  free(buf);
  return 0;
}
