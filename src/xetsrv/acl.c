/* Which Xet files and xorbs a repo may use (docs/xet.md, "Read scope").
 *
 * A repo reads a Xet file when it references it: the file was uploaded through the repo (a
 * shard sent with the repo's write token, or a conversion made for it: xet_sha.repo_id,
 * xet_files.repo_id, xet_repo_files), or the repo references the file's sha256 in
 * repo_objects (db/objects.h) and that sha256 link is verified. xet_repo_files is the
 * cache of the first kind plus links made by lookups that passed the second. */
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/objects.h"
#include "db/xet.h"
#include "util/error.h"
#include "xetsrv/internal.h"

int xs_sha_find_for(const char *sha, int64_t repo_id, xet_hash *file, uint64_t *size) {
  return db_xet_sha_find_for(sha, repo_id, file->b, size);
}

int xs_repo_may_read(int64_t repo_id, const xet_hash *file) {
  if (xs_repo_has(repo_id, file)) return 1;
  int yes = db_xet_repo_references(repo_id, file->b);
  if (yes) xs_queue_link(repo_id, file); /* may run on an event thread: written later */
  return yes;
}

int xs_dedup_allowed(int64_t repo_id, const xet_hash *xorb) {
  /* A xorb is offered when a file using it is readable through the token's repo, or sits
   * in a public, ungated repo (whose bytes anyone may download anyway). */
  return db_xet_dedup_allowed(repo_id, xorb->b);
}

int xs_claims_to_objects(const char *sha, const xet_hash *file) {
  return db_xet_claims_to_objects(sha, file->b);
}

int xetsrv_verified_size(const char *sha, int64_t *out_size) {
  return db_xet_verified_size(sha, out_size);
}

/* Migrations of modules "xetsrv-acl" (file -> sha256 indexes) and "xetsrv-repo-delete"
 * (Xet rows never outlive their repo's id) run with the "xetsrv" ones (db/xet.c). */
int xs_acl_open(void) {
  return 0;
}

int xetsrv_objects_migrate(void) {
  return db_xet_objects_migrate();
}
