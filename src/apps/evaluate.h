// Evaluation of parameter values on recorded data: multiple-shooting RMS error per window length
// and per recorded channel (the L_sysid residuals of paper section 5.1, unscaled, in the channels'
// units), on the validation episodes of a dataset (all episodes when none is marked).
//
// For a window length L (steps), every evaluated episode of T samples is cut into the windows
// that start at samples 0, L, 2L, ... and end at most at sample T-1 (a shorter tail is left out,
// so that every window of a row has exactly L steps; DSO_EVAL_WHOLE is one window over the whole
// episode). Each window restarts from the recorded state exactly as a fit (fit.h) does: recorded
// qpos (entries the dataset lacks: the model's qpos0), qvel from dso_dataset_episode_qvel (lacking
// entries by central differences of the recorded qpos), act 0, and steps with the recorded ctrl of
// the previous sample (lacking: 0). After each step j = 1..L it scores, for every channel, the
// simulated value minus the recorded one of sample start + j:
//   qpos.<joint>     d->qpos entry (rad or m; quaternion entries component-wise, as the fit)
//   qvel.<joint>     d->qvel entry
//   sensor.<sensor>  gain ⊙ sensordata + offset (θ's sensor model, sim.h) after mj_forward with the
//                    recorded ctrl of that sample
// The RMS of a channel for a window length is sqrt(mean of the squared errors over all steps of
// all windows of that length that did not diverge). A window diverges when MuJoCo fails, warns of
// a bad qpos/qvel/qacc, or a state or simulated sensor value is not finite; it is counted and
// none of its steps enter the RMS. Results are deterministic (one simulator, fixed order).
#ifndef DSO_EVALUATE_H
#define DSO_EVALUATE_H

#include <mujoco/mujoco.h>

#include "config/values_file.h"
#include "dso/error.h"
#include "mujoco/dataset.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Most window lengths one evaluation takes.
#define DSO_EVAL_MAX_WINDOWS 32

// Window length that stands for the whole episode (one open-loop window from sample 0).
#define DSO_EVAL_WHOLE 0

// Evaluation settings (OSQP style): fill with dso_eval_settings_default, then change fields.
typedef struct dsoEvalSettings_ {
  int nwindow;                       // window lengths (default 6)
  int window[DSO_EVAL_MAX_WINDOWS];  // steps >= 1 or DSO_EVAL_WHOLE, distinct (default 1, 10, 50,
                                     // 100, 200, whole)
  int all_episodes;                  // 1: every episode; 0: the validation episodes, all when the
                                     // dataset marks none (default 0)
} dsoEvalSettings;

// Fills s with the defaults listed above.
void dso_eval_settings_default(dsoEvalSettings* s);

// Reads a comma-separated list of window lengths ("1,10,100,whole") into s->window and
// s->nwindow; entries are integers >= 1 or "whole"/"all"/0. source names the list in messages
// (e.g. "--windows"). On failure s is unchanged.
dsoStatus dso_eval_parse_windows(dsoEvalSettings* s, const char* list, const char* source,
                                 dsoError* err);

// An evaluation (opaque): a simulator, the window-start velocities, the result storage.
typedef struct dsoEval_ dsoEval;

// Creates an evaluation of data (recorded for m, resampled at the model timestep: data->dt ==
// m->opt.timestep) with θ laid out by theta. m, theta and data are borrowed and must outlive it;
// s may be NULL for the defaults. The channels are every recorded qpos, qvel and sensor entry.
// Returns NULL with err on failure (wrong sizes or spacing, no channel, no episode, bad windows).
dsoEval* dso_eval_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                         const dsoEvalSettings* s, dsoError* err);

// Frees an evaluation; NULL is a no-op.
void dso_eval_free(dsoEval* ev);

// Evaluates θ = u (theta->n, unconstrained coordinates; every entry finite) and keeps the result
// for dso_eval_result and dso_eval_json. Diverged windows are counted, not errors.
dsoStatus dso_eval_run(dsoEval* ev, const double* u, dsoError* err);

// Result of the last dso_eval_run; every array belongs to the evaluation.
typedef struct dsoEvalResult_ {
  int nchannel;
  const char* const* channel;  // (nchannel) canonical column names, "qpos.hinge", ...
  const int* group;            // (nchannel) dsoDataGroup of each channel
  const int* index;            // (nchannel) entry within its group
  int nwindow;
  const int* window;           // (nwindow) steps, DSO_EVAL_WHOLE for whole episodes
  const double* rms;           // (nwindow x nchannel) row-major, channel units; NaN where the row
                               // scored no window (all diverged, or every episode too short)
  const long* nwin;            // (nwindow) windows scored
  const long* ndiverged;       // (nwindow) windows that diverged
  const long* nstep;           // (nwindow) steps scored per channel
  int nepisode;
  const int* episode;          // (nepisode) evaluated episodes, indices into the dataset
  const long* episode_id;      // (nepisode) their ids (dsoEpisode.id)
  long steps;                  // mj_step calls of the last run
} dsoEvalResult;

// Fills out with views of the last result (zeros before the first run).
void dso_eval_result(const dsoEval* ev, dsoEvalResult* out);

// The last result as JSON text (malloc'd): {"episodes": [ids], "channels": [names], "windows":
// [{"steps": L or "whole", "windows": n, "diverged": k, "samples": s, "rms": {"name": x or
// null}}]}. NULL with err on failure. (Output only: evaluate_json.c.)
char* dso_eval_json(const dsoEval* ev, dsoError* err);

// The text of dso_eval_json with what `dso evaluate -o` adds after it: "task": task_path,
// "values": values (null when NULL) and "timestep": timestep (s); task_path NULL adds nothing.
// NULL with err on failure.
char* dso_eval_report_json(const dsoEval* ev, const char* task_path, const char* values,
                           double timestep, dsoError* err);

// dso_values_read_file, which reads a values file (input), is config/values_file.h.

#ifdef __cplusplus
}
#endif
#endif  // DSO_EVALUATE_H
