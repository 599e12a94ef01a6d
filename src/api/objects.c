/* Filling the per-repo object table (db/objects.h) from data written before it existed.
 *
 * Runs once, at the first server start after core migration 8, and is recorded as kv
 * "objects_backfill" = "1" when it completes (a crash half way just runs it again: every
 * step is idempotent). Every LFS pointer blob in a repo's git object database (any ref,
 * any history) whose object is stored with that size, as an LFS blob or a verified Xet
 * file, becomes a reference of that repo; then the Xet half (xetsrv_objects_migrate). */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "blob/blob.h"
#include "db/db.h"
#include "db/objects.h"
#include "db/search.h"
#include "util/error.h"
#include "xetsrv/xetsrv.h"

#define BACKFILL_KEY "objects_backfill"

struct fill {
  int64_t repo_id;
  size_t added;
};

static int add_pointer(const char *oid, uint64_t size, void *payload) {
  struct fill *f = payload;
  int64_t have = -1;
  if (blob_stat(api_blobs(), oid, &have) != 0 || (uint64_t)have != size) {
    if (xetsrv_verified_size(oid, &have) != 0 || (uint64_t)have != size) return 0;
  }
  int rc = db_objects_add(f->repo_id, oid, (int64_t)size);
  if (!rc) f->added++;
  return rc;
}

static int fill_repo(const db_repo *repo, void *payload) {
  size_t *total = payload;
  char dir[4200];
  repo_handle *h = NULL;
  struct fill f = {repo->id, 0};
  db_repo_dir(repo->uid, dir, sizeof dir);
  if (repo_open(&h, dir)) {
    hub_error_clear(); /* no git dir (never initialised): nothing to reference */
    return 0;
  }
  int rc = db_tx("BEGIN IMMEDIATE");
  if (!rc) rc = repo_lfs_pointers_each(h, add_pointer, &f);
  if (!rc)
    rc = db_tx("COMMIT");
  else
    db_tx("ROLLBACK");
  repo_free(h);
  *total += f.added;
  return rc;
}

int api_objects_backfill(void) {
  char done[8];
  size_t n = 0, total = 0;
  if (db_kv_get(BACKFILL_KEY, done, sizeof done, &n) == 0 && n == 1 && done[0] == '1') return 0;
  int rc = db_repo_each(fill_repo, &total);
  if (!rc) rc = xetsrv_objects_migrate();
  if (!rc) rc = db_kv_set(BACKFILL_KEY, "1", 1);
  if (rc) return rc;
  fprintf(stderr, "objects: recorded %zu LFS references from existing repositories\n", total);
  return 0;
}
