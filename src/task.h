// Task files (tasks/*.json): the model and the θ entries to optimize, read into plain C structs.
//
//   {
//     "description": "free text",
//     "model": "../models/pendulum.xml",          // relative to the task file
//     "theta": [
//       {"name": "physics.pole.mass", "init": 0.2, "transform": "log",
//        "bounds": [0.01, 1.0], "prior": {"mean": 0.15, "std": 0.05}, "fixed": false},
//       {"name": "action_noise.torque.std", "init": 0.1}
//     ]
//   }
//
// Unknown keys are errors that list the valid keys; every error names the file and JSON path.
#ifndef DSO_TASK_H
#define DSO_TASK_H

#include <mujoco/mujoco.h>

#include "error.h"
#include "theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// A loaded task. Everything is owned by the task.
typedef struct dsoTask_ {
  char* path;          // the task file as given
  char* model_path;    // the model file, resolved against the task file's folder
  char* description;   // "" when absent
  mjModel* model;      // the model as compiled from model_path (θ not written)
  dsoTheta* theta;     // the θ layout resolved against model
} dsoTask;

// Loads and validates a task file. Returns NULL with err naming the file, JSON path and what was
// expected on failure.
dsoTask* dso_task_load(const char* path, dsoError* err);

// Frees a task; NULL is a no-op.
void dso_task_free(dsoTask* task);

// Parses one θ entry (a JSON object, as text) against model m: used by dso_task_load and by
// programs that build θ without a task file. file and path name the entry in messages.
dsoStatus dso_task_parse_entry(dsoThetaEntry* out, const mjModel* m, const char* json_text,
                               const char* file, const char* path, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_TASK_H
