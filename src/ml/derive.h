/* Everything the hub derives from a repo's content at one commit (docs/ml.md).
 *
 * Called after each change of the default branch; the result feeds repo info, the tags
 * and the search index. Content problems never fail a derive: a bad card yields
 * "cardWarnings", an unreadable model file yields "warnings", and the field is omitted. */
#ifndef HUB_ML_DERIVE_H
#define HUB_ML_DERIVE_H

#include <jansson.h>

#include "blob/blob.h"
#include "repo/repo.h"

/* Derive metadata of commit `commit_sha` (40-hex). `blobs` may be NULL (LFS files are then
 * skipped with a warning). repo_type is HUB_REPO_MODEL / DATASET / SPACE (db/db.h);
 * datasets and spaces get only the card-based fields. *out_meta is owned by the caller;
 * keys that do not apply are omitted:
 *   cardData, cardWarnings, cardText, tags, pipeline_tag, library_name, license,
 *   languages, datasets, baseModels, safetensors, gguf, config, transformersInfo,
 *   model-index, evalResults, num_parameters, warnings.
 * Errors are only those of repo_list (unknown commit → HUB_EREVISION) and OOM. */
int ml_derive(repo_handle *h, blob_store *blobs, const char *commit_sha, int repo_type,
              json_t **out_meta);

#endif
