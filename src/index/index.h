/* Derived data: what the DB keeps about a repo's content, recomputed from git after
 * every ref change (commit API and git push alike). Rebuildable at any time. */
#ifndef HUB_INDEX_INDEX_H
#define HUB_INDEX_INDEX_H

#include "db/db.h"

/* Refresh the derived data of `repo` from its git directory (head of refs/heads/main,
 * last-modified time). Call after any ref update. */
int index_repo_changed(const db_repo *repo);

#endif
