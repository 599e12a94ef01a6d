/* The hub context: what one running hub is built from. main.c (cmd_serve) fills it once,
 * before any module starts, and passes it down to the module init functions (api_init,
 * which hands it on to lfs_init and xetsrv_init); modules keep what they need from it and
 * never look it up upward. It lives in util/ so every layer may name it; the pointers are
 * borrowed for the process (main.c owns them). See docs/architecture.md, "Hub context". */
#ifndef HUB_UTIL_HUB_H
#define HUB_UTIL_HUB_H

#include <stddef.h>

struct blob_store;

typedef struct hub_ctx {
  const char *data_dir;          /* <data>: the DB, repos/, blobs/, xet/, tmp/ */
  struct blob_store *blobs;      /* the LFS object store (blob/), opened on <data> */
  const char *public_url;        /* base URL for links without a trailing slash; NULL: Host */
  const unsigned char *sign_key; /* the URL-signing key (kept in the DB, same on every node) */
  size_t sign_key_len;
  int xet_enabled; /* 0 when MODELHUB_XET turns Xet off everywhere */
} hub_ctx;

#endif
