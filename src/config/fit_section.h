// The "fit" section of a task file, read into the typed settings of apps/fit.h and, under
// "inverse_dynamics", of apps/invdyn.h (private: not installed):
//   "fit": {"window": 100, "max_iter": 50, "tol": 1e-10, "lambda0": 1e-3, "qpos_scale": 0.01,
//           "qvel_scale": 0.1, "sensors": true, "threads": 2, "jacobian": "forward" | "central",
//           "inverse_dynamics": {"cutoff": 10, "order": 4, "filter_ctrl": true,
//                                "ctrl_hold": true, "skip": -1, "stride": 1, "min_speed": 0,
//                                "threads": 2, "torque_scale": 1 | {"joint": N m, ...}}}
// Unknown keys are errors listing the valid keys; every error names the file and the JSON path
// ("fit.window", "fit.inverse_dynamics.torque_scale.joint2").
#ifndef DSO_CONFIG_FIT_SECTION_H
#define DSO_CONFIG_FIT_SECTION_H

#include <cJSON.h>
#include <mujoco/mujoco.h>

#include "apps/fit.h"
#include "apps/invdyn.h"
#include "config/json.h"
#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Reads the "fit" object node (c: its context, path "fit"; node NULL: absent) into s, first set
// to the defaults.
// "inverse_dynamics" is only accepted here (dso_cfg_invdyn_settings reads it; s->invdyn stays
// NULL). On failure s holds the defaults.
dsoStatus dso_cfg_fit_settings(dsoFitSettings* s, const cJSON* node, const dsoCfg* c);

// Reads the "inverse_dynamics" object of the "fit" object node (c: the fit's context; node may
// be NULL) into s, first set to the defaults for model m. *present (may be NULL) is set to 1 when
// the object is there. Other keys of the fit object are not looked at. On failure s holds the
// defaults. Free s with dso_invdyn_settings_free after any call.
dsoStatus dso_cfg_invdyn_settings(dsoInvdynSettings* s, int* present, const mjModel* m,
                                  const cJSON* node, const dsoCfg* c);

// dso_cfg_fit_settings over JSON text (the fit object; NULL: the defaults); file (NULL: "fit")
// names the text in messages, whose paths start with "fit".
dsoStatus dso_fit_settings_from_json(dsoFitSettings* s, const char* json_text, const char* file,
                                     dsoError* err);

// dso_cfg_invdyn_settings over JSON text (the fit object; NULL: the defaults); file (NULL:
// "fit") names the text in messages. Free s with dso_invdyn_settings_free after any call.
dsoStatus dso_invdyn_settings_from_json(dsoInvdynSettings* s, int* present, const mjModel* m,
                                        const char* fit_json, const char* file, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_FIT_SECTION_H
