// The "train" section of a task file, read into the typed settings of apps/train.h (private: not
// installed):
//   "train": {"max_iter": 50, "lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "seed": 0,
//             "clone": 1.0, "hybrid": 0.0, "proximal_every": 0,
//             "gradient": "pathwise" | "score", "epochs": 1, "clip": 0.2,
//             "optimizer": "adam" | "natural", "damping": 0.01}
// Absent keys keep the defaults. Unknown keys, wrong types and out-of-range values (checked by
// dso_train_settings_check) are errors naming the file and the JSON path ("train.lr").
#ifndef DSO_CONFIG_TRAIN_SECTION_H
#define DSO_CONFIG_TRAIN_SECTION_H

#include <cJSON.h>

#include "apps/train.h"
#include "config/json.h"
#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Reads the "train" object node (c: its context, path "train"; node NULL: absent) into s, first
// set to the defaults. On failure s holds the defaults.
dsoStatus dso_cfg_train_settings(dsoTrainSettings* s, const cJSON* node, const dsoCfg* c);

// dso_cfg_train_settings over JSON text (the train object; NULL is an error); file (NULL:
// "train") names the text in messages, whose paths start with "train".
dsoStatus dso_train_settings_from_json(dsoTrainSettings* s, const char* json_text,
                                       const char* file, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_TRAIN_SECTION_H
