// The "estimator" section of a task file (state-estimator learning), read into the typed settings
// of estim/estimfit.h (private: not installed):
//   "estimator": {"corrector": "gain" | "mlp", "hidden": [16] (mlp), "seed": 1 (mlp),
//                 "init_scale_out": 0.01 (mlp), "weight_std": 0.1 (mlp), "max_iter": 30,
//                 "lambda0": 1e-3, "tol": 1e-10,
//                 "sensor_std": {"sensor": σ or [σ per component]},
//                 "process_std": {"actuator": σ}, "compare_ekf": true}
// Unknown keys are errors that list the valid ones; every error names the file and
// "estimator.key".
#ifndef DSO_CONFIG_ESTIMATOR_SECTION_H
#define DSO_CONFIG_ESTIMATOR_SECTION_H

#include <cJSON.h>
#include <mujoco/mujoco.h>

#include "config/json.h"
#include "dso/error.h"
#include "estim/estimfit.h"

#ifdef __cplusplus
extern "C" {
#endif

// Reads the "estimator" object node (c: its context, path "estimator"; node NULL: absent) into s,
// first set to the defaults for model m (sensor and actuator names resolve against m). On
// failure s holds no arrays (nothing to free); on success free s with
// dso_estimfit_settings_free.
dsoStatus dso_cfg_estimfit_settings(dsoEstimFitSettings* s, const mjModel* m, const cJSON* node,
                                    const dsoCfg* c);

// dso_cfg_estimfit_settings over JSON text (the estimator object; NULL: the defaults); file
// (NULL: "estimator") names the text in messages, whose paths start with "estimator".
dsoStatus dso_estimfit_settings_from_json(dsoEstimFitSettings* s, const mjModel* m,
                                          const char* json_text, const char* file, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_ESTIMATOR_SECTION_H
