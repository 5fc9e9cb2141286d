// Reading a task's "policy" object into typed policy settings (mujoco/policy.h). The policy
// module itself never sees JSON; this is the only place that reads its settings from a file.
//
//   {"type": "linear" | "mlp" | "rnn", "hidden": [32, 32] (mlp), "units": 16 (rnn), "seed": 1,
//    "init_scale_out": 0.01, "input_shift": [...], "input_scale": [...]}
#ifndef DSO_CONFIG_POLICY_JSON_H
#define DSO_CONFIG_POLICY_JSON_H

#include "config/json.h"
#include "dso/error.h"
#include "mujoco/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

// Fills s from a parsed "policy" object (node) at c (file and JSON path of node, e.g. "policy").
// Starts from dso_policy_settings_default: keys that are absent keep the defaults. "type" is
// required; "hidden" applies to mlp only and "units" to rnn only; "seed" and "init_scale_out" have
// no effect on a linear policy (it starts at zero). Unknown keys, wrong types and out-of-range
// values are errors naming c's file and the key's JSON path (the lengths of input_shift /
// input_scale are checked against nin by dso_policy_create). On success free the arrays with
// dso_policy_settings_free; on failure s holds the defaults and no arrays.
dsoStatus dso_cfg_read_policy(dsoPolicySettings* s, const cJSON* node, const dsoCfg* c);

// As dso_cfg_read_policy for JSON text holding the object; file (NULL: "policy") and path (the
// JSON path of the object, e.g. "policy"; NULL: the top level) name it in messages, syntax errors
// give the line and column. NULL text is an error.
dsoStatus dso_policy_settings_from_json(dsoPolicySettings* s, const char* json_text,
                                        const char* file, const char* path, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_POLICY_JSON_H
