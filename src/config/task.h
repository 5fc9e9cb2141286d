// Task files (tasks/*.json): the model and the θ entries to optimize, read into plain C structs.
//
//   {
//     "description": "free text",
//     "model": "../models/pendulum.xml",          // relative to the task file
//     "policy": {"type": "mlp", "hidden": [16]},  // see policy.h; θ_μ entries come first
//     "chain": {"input": "state", "periodic": ["hinge"], "divergence_penalty": 1000,
//               "init_qpos": {"hinge": 0.5}, "init_qvel": {}, "init_std_qpos": {"hinge": 0.1},
//               "init_std_qvel": {}, "randomize": {"physics.pole.mass": 0.05},
//               "fd": {"eps_state": 1e-6, "eps_theta": 1e-6, "centered": true}},
//     "cost": [{"term": "upright", "body": "pole"}],  // see cost.h
//     "data": {"files": "recording.csv", "columns": {...}},  // see dataset.h
//     "fit": {...},                               // settings of data-driven fits (fit.h)
//     "train": {...},                             // settings of chain optimization (train.h)
//     "estimator": {...},                         // state-estimator learning (estim/estimfit.h)
//     "rollout": {"setting": "episodic", "gamma": 0.99, "terminate": false, "horizon": 200,
//                 "rollouts": 64, "threads": 2, "seed": 1},
//     "theta": [
//       {"name": "physics.pole.mass", "init": 0.2, "transform": "log",
//        "bounds": [0.01, 1.0], "prior": {"mean": 0.15, "std": 0.05}, "fixed": false},
//       {"name": "action_noise.torque.std", "init": 0.1},
//       {"name": "policy.W0[0,1]", "init": 0.3}     // refines an entry of the policy
//     ]
//   }
//
// Unknown keys are errors that list the valid keys; every error names the file and JSON path.
#ifndef DSO_CONFIG_TASK_H
#define DSO_CONFIG_TASK_H

#include <mujoco/mujoco.h>

#include "mujoco/cost.h"
#include "mujoco/dataset.h"
#include "dso/error.h"
#include "dso/task.h"
#include "mujoco/mjchain.h"
#include "mujoco/policy.h"
#include "chain/rollout.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// The settings of the run sections (apps/fit.h, apps/invdyn.h, apps/train.h, estim/estimfit.h).
struct dsoFitSettings_;
struct dsoInvdynSettings_;
struct dsoTrainSettings_;
struct dsoEstimFitSettings_;

// A loaded task. Everything is owned by the task.
typedef struct dsoTask_ {
  char* path;          // the task file as given
  char* model_path;    // the model file, resolved against the task file's folder
  char* description;   // "" when absent
  mjModel* model;      // the model as compiled from model_path (θ not written)
  dsoTheta* theta;     // the θ layout resolved against model
  dsoPolicy* policy;   // the "policy" section; NULL when absent (actions are noise only)
  dsoCost* cost;       // the "cost" section; NULL when absent (zero cost)
  dsoMjChainSettings chain;      // the "chain" section; its arrays point into the task
  dsoRolloutSettings rollout;    // the "rollout" section
  int nrollout;                  // rollouts per batch (rollout.rollouts, default 64)
  double* chain_arrays;          // storage of chain.init_qpos, init_qvel, init_std, randomize_std
  int* chain_periodic;           // storage of chain.periodic (joint ids); NULL when none
  dsoDataset* data;              // the "data" section, loaded; NULL when absent
  // the run sections, read at load into the settings of their modules (config/*_section.h);
  // each NULL when the task has no such section
  struct dsoFitSettings_* fit;          // "fit" (dsoFitSettings, fit.h); fit->invdyn is invdyn
  struct dsoInvdynSettings_* invdyn;    // "fit": {"inverse_dynamics": ..} (dsoInvdynSettings,
                                        // invdyn.h)
  struct dsoTrainSettings_* train;      // "train" (dsoTrainSettings, train.h)
  struct dsoEstimFitSettings_* estimator;  // "estimator" (dsoEstimFitSettings, estim/estimfit.h):
                                        // state-estimator learning
} dsoTask;

// Upper limits on the sizes a task (or a CLI option that overrides it) may ask for, so that a
// typo gives an error naming the field instead of an allocation that fails or exhausts memory.
#define DSO_TASK_MAX_ROLLOUTS 1000000        // rollout.rollouts
#define DSO_TASK_MAX_HORIZON 10000000        // rollout.horizon, burn_in, window (steps)
#define DSO_TASK_MAX_POLICY_PARAMS 1000000   // entries of θ_μ (policy.hidden, policy.units)
#define DSO_TASK_MAX_BATCH_GB 4.0            // memory of one batch of rollouts, GB (1e9 bytes)

// Loads and validates a task file. Returns NULL with err naming the file, JSON path and what was
// expected on failure.
dsoTask* dso_task_load(const char* path, dsoError* err);

// Flags of dso_task_load_flags.
enum { DSO_TASK_SKIP_DATA = 1 };  // validate the "data" section's settings but read no file

// As dso_task_load; flags DSO_TASK_SKIP_DATA leaves task->data NULL (for `dso simulate`, which
// writes the data a task will read).
dsoTask* dso_task_load_flags(const char* path, int flags, dsoError* err);

// As dso_task_load_flags, but with ndata_files > 0 the task's data are read from the files
// data_files (paths as given, not relative to the task) with the settings of the task's "data"
// section (column map, derived columns, resampling; the defaults when the task has none) in
// place of the files it names: the same task on other recordings, or on data written where the
// caller chooses (`dso run --data`, `dso check --data`). data_files may be NULL when ndata_files
// is 0.
dsoTask* dso_task_load_data(const char* path, int flags, const char* const* data_files,
                            int ndata_files, dsoError* err);

// Checks that one batch of nrollout rollouts of horizon steps of the task's chain stays within
// DSO_TASK_MAX_BATCH_GB (states, costs and log-densities per step, per-rollout gradients). On
// failure err says "<rollouts_name> N x <horizon_name> T: one batch would hold about X GB ...",
// naming the two settings (e.g. "rollout.rollouts", "rollout.horizon" or "--rollouts", ...).
dsoStatus dso_task_check_batch(const dsoTask* task, long long nrollout, long long horizon,
                               const char* rollouts_name, const char* horizon_name,
                               dsoError* err);

// dso_task_free (frees a task; NULL is a no-op) is declared in dso/task.h.

// Creates the MuJoCo chain the task describes (model, θ, policy, cost, chain settings). The chain
// borrows from the task, which must outlive it. Returns NULL with err set on failure.
dsoMjChain* dso_task_chain(const dsoTask* task, dsoError* err);

// Parses one θ entry (a JSON object, as text) against model m: used by dso_task_load and by
// programs that build θ without a task file. file and path name the entry in messages.
dsoStatus dso_task_parse_entry(dsoThetaEntry* out, const mjModel* m, const char* json_text,
                               const char* file, const char* path, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_TASK_H
