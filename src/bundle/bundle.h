/* bundle/: air-gapped export and import of a repository as one self-verifying file
 * (docs/mirror.md, "Export and import").
 *
 * Format (all integers big-endian):
 *   "MHBUNDL1"                 8 bytes, magic + format version
 *   manifest length            8 bytes (≤ BUNDLE_MANIFEST_MAX)
 *   manifest                   compact JSON (below)
 *   manifest sha256            32 raw bytes: sha256 of everything before it (magic,
 *                              length, manifest) — the hash over the manifest itself
 *   git bundle                 manifest.git.size bytes, sha256 manifest.git.sha256
 *   objects                    each LFS/Xet object the bundled commits point to, in
 *                              manifest.objects order, exactly `size` bytes whose sha256 is
 *                              its `oid`; then end of file (trailing bytes are refused)
 * Manifest: {"format":"modelhub-bundle","version":1,
 *   "repo":{"type":"model","id":"ns/name","private":false,"gated":""},
 *   "refs":[["refs/heads/main","<40 hex>"],...], "git":{"size":N,"sha256":"<64 hex>"},
 *   "objects":[{"oid":"<64 hex>","size":N},...], "created":<unix ms>}
 *
 * Functions return 0 or a negative HUB_E* code with hub_error_msg() set. */
#ifndef HUB_BUNDLE_BUNDLE_H
#define HUB_BUNDLE_BUNDLE_H

#include <stdint.h>

#define BUNDLE_MAGIC "MHBUNDL1"
/* Largest manifest accepted (a hostile length must not make import allocate it). */
#define BUNDLE_MANIFEST_MAX (64u * 1024 * 1024)
/* Most refs / objects one bundle may carry. */
#define BUNDLE_MAX_REFS 100000
#define BUNDLE_MAX_OBJECTS 10000000

typedef struct {
  int type;         /* HUB_REPO_MODEL, ... */
  const char *ns;   /* namespace */
  const char *name; /* repo name */
  const char *rev;  /* NULL: every ref; else the one ref (branch or tag) `rev` names */
  int out_fd;       /* where the bundle is written (a pipe is fine: written in one pass) */
} bundle_export_opts;

/* Write the bundle of a repository of the data dir (open_data() done). Works while a
 * server runs on the data dir (reads only). */
int bundle_export(const bundle_export_opts *o);

typedef struct {
  int in_fd;         /* the bundle, read in one pass (a pipe is fine) */
  int force;         /* an existing repo with other ref values: move its refs anyway */
  const char *actor; /* audit actor ("cli:<user>") */
  int quiet;
} bundle_import_opts;

/* Verify the whole bundle into <data>/tmp first, then publish its objects, then create the
 * repo and its refs in one durable transaction through the spine (events + audit).
 * An existing repo whose refs already equal the bundle's: 0 (nothing to do). Other values:
 * HUB_EEXISTS unless o->force. Works with the server stopped or running. */
int bundle_import(const bundle_import_opts *o);

/* `modelhub export` / `modelhub import` (after open_data()). */
int bundle_export_main(int argc, char **argv);
int bundle_import_main(int argc, char **argv);

#endif
