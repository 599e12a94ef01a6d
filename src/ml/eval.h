/* Model-card "model-index" → the Hub's "evalResults" list. */
#ifndef HUB_ML_EVAL_H
#define HUB_ML_EVAL_H

#include <jansson.h>

/* Flatten model-index ([{name, results: [{task: {type}, dataset: {type, name}, metrics:
 * [{type, name, value}]}]}]) to [{"task", "dataset", "metric", "value"}, ...]: one dict per
 * metric, at most ML_MAX_LIST_ITEMS; entries missing a metric type/name or a scalar value
 * are skipped. Always an array (possibly empty); NULL only on OOM. Owned by the caller. */
json_t *ml_eval_results(const json_t *model_index);

#endif
