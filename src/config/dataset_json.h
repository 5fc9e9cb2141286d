// Reading a task's "data" object (the format is in mujoco/dataset.h) into the typed dataset
// settings dsoDatasetSpec. The dataset module itself never sees JSON.
#ifndef DSO_CONFIG_DATASET_JSON_H
#define DSO_CONFIG_DATASET_JSON_H

#include "config/json.h"
#include "dso/error.h"
#include "mujoco/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

// Reads a parsed "data" object (node) into spec, which is first set to the defaults. base_dir is
// the task file's folder (files are relative to it; NULL or "": as given); c names the file and
// node's JSON path (e.g. "data") in messages. Unknown keys are errors listing the valid ones. On
// failure spec is cleared.
dsoStatus dso_cfg_read_dataset(dsoDatasetSpec* spec, const cJSON* node, const char* base_dir,
                               const dsoCfg* c);

// As dso_cfg_read_dataset for JSON text holding the "data" object at the top level; file names
// the text in messages (NULL: "(json)"), syntax errors give the line and column.
dsoStatus dso_dataset_spec_parse(dsoDatasetSpec* spec, const char* json_text,
                                 const char* base_dir, const char* file, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_DATASET_JSON_H
