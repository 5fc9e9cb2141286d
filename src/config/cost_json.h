// Reading a task's "cost" array (the term format is in mujoco/cost.h) into typed term specs
// (dsoCostTermSpec) and creating the cost from them with dso_cost_create. Model elements are
// looked up by name here; the cost module never sees JSON.
#ifndef DSO_CONFIG_COST_JSON_H
#define DSO_CONFIG_COST_JSON_H

#include <mujoco/mujoco.h>

#include "config/json.h"
#include "dso/error.h"
#include "mujoco/cost.h"

#ifdef __cplusplus
extern "C" {
#endif

// Creates the cost of a parsed "cost" array (node) against model m; c names the file and the
// array's JSON path (e.g. "cost") in messages, which name the offending term as "cost[i]..."
// (unknown keys, unknown terms, elements the model lacks, out-of-range values, a second track
// term). Returns NULL with c->err set on failure.
dsoCost* dso_cfg_read_cost(const mjModel* m, const cJSON* node, const dsoCfg* c);

// As dso_cfg_read_cost for JSON text holding the array; file and path (NULL: the top level) name
// it in messages, syntax errors give the line and column.
dsoCost* dso_cost_from_json(const mjModel* m, const char* json_text, const char* file,
                            const char* path, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_COST_JSON_H
