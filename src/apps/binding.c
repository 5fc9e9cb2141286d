// Flat C API for language bindings: task accessors, the fit residuals, the chain objective and
// its pathwise gradient, and `dso run` one iteration at a time (see binding.h).
#include "dso/task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/dataset.h"
#include "apps/fit.h"
#include "config/task.h"
#include "mujoco/mj.h"
#include "mujoco/mjchain.h"
#include "chain/rollout.h"
#include "mujoco/sim.h"
#include "apps/simulate.h"
#include "mujoco/theta.h"
#include "apps/train.h"

// every entry point works on a non-NULL error record that starts clear
#define DSO_ERR_BEGIN(err) \
  dsoError err##_local = {DSO_OK, ""}; \
  if (!(err)) (err) = &err##_local; \
  dso_error_clear(err)

static dsoStatus need_task(const dsoTask* task, dsoError* err) {
  if (!task || !task->theta || !task->model) {
    return dso_error(err, DSO_ERR_INPUT, "binding: task is NULL");
  }
  return DSO_OK;
}

static dsoStatus need_finite(const dsoTheta* th, const double* u, const char* what,
                             dsoError* err) {
  if (!u) {
    return dso_error(err, DSO_ERR_INPUT, "%s: u is NULL, expected %d values", what, th->n);
  }
  for (int i = 0; i < th->n; i++) {
    if (!isfinite(u[i])) {
      return dso_error(err, DSO_ERR_INPUT, "%s: u[%d] (%s) is %g, expected a finite number",
                       what, i, th->entry[i].name, u[i]);
    }
  }
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// task

dsoTask* dso_task_open(const char* path, int skip_data, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!path || !path[0]) {
    dso_error(err, DSO_ERR_INPUT, "task: expected a file name, got %s", path ? "\"\"" : "NULL");
    return NULL;
  }
  return dso_task_load_flags(path, skip_data ? DSO_TASK_SKIP_DATA : 0, err);
}

int dso_task_kind(const dsoTask* task, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return -1;
  // the order in which dso run decides
  if (task->estimator) return DSO_TASK_KIND_ESTIMATOR;
  if (task->cost) return DSO_TASK_KIND_CHAIN;
  if (task->data || task->fit) return DSO_TASK_KIND_FIT;
  return DSO_TASK_KIND_NONE;
}

int dso_task_size(const dsoTask* task, int which, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return -1;
  const mjModel* m = task->model;
  switch (which) {
    case DSO_TASK_SIZE_NTHETA: return task->theta->n;
    case DSO_TASK_SIZE_NQ: return m->nq;
    case DSO_TASK_SIZE_NV: return m->nv;
    case DSO_TASK_SIZE_NA: return m->na;
    case DSO_TASK_SIZE_NU: return m->nu;
    case DSO_TASK_SIZE_NSENSORDATA: return m->nsensordata;
    case DSO_TASK_SIZE_NROLLOUT: return task->nrollout;
    case DSO_TASK_SIZE_HORIZON: return task->rollout.horizon;
    case DSO_TASK_SIZE_NEPISODE: return dso_dataset_nepisode(task->data);
    default: break;
  }
  dso_error(err, DSO_ERR_INPUT, "%s: size %d: expected 0 to %d (dsoTaskSize)", task->path,
            which, DSO_TASK_NSIZE - 1);
  return -1;
}

int dso_task_ntheta(const dsoTask* task, dsoError* err) {
  return dso_task_size(task, DSO_TASK_SIZE_NTHETA, err);
}

static dsoStatus check_index(const dsoTask* task, int i, dsoError* err) {
  if (need_task(task, err)) return err->code;
  if (i < 0 || i >= task->theta->n) {
    return dso_error(err, DSO_ERR_INPUT, "%s: theta entry %d: expected an index in [0, %d)",
                     task->path, i, task->theta->n);
  }
  return DSO_OK;
}

const char* dso_task_theta_name(const dsoTask* task, int i, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (check_index(task, i, err)) return NULL;
  return task->theta->entry[i].name;
}

int dso_task_theta_find(const dsoTask* task, const char* name, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return -1;
  int i = name ? dso_theta_find(task->theta, name) : -1;
  if (i < 0) {
    dso_error(err, DSO_ERR_INPUT, "%s: no theta entry named '%s' (the task has %d entries%s%s)",
              task->path, name ? name : "(null)", task->theta->n,
              task->theta->n > 0 ? ", e.g. " : "",
              task->theta->n > 0 ? task->theta->entry[0].name : "");
  }
  return i;
}

dsoStatus dso_task_theta_entry(const dsoTask* task, int i, int* block, int* transform, int* fixed,
                               double* lower, double* upper, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (check_index(task, i, err)) return err->code;
  const dsoThetaEntry* e = &task->theta->entry[i];
  if (block) *block = (int)e->block;
  if (transform) *transform = (int)e->transform;
  if (fixed) *fixed = e->fixed;
  if (lower) *lower = e->lower;
  if (upper) *upper = e->upper;
  return DSO_OK;
}

dsoStatus dso_task_theta_init(const dsoTask* task, double* u, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return err->code;
  if (!u) return dso_error(err, DSO_ERR_INPUT, "theta init: u is NULL");
  dso_theta_init(task->theta, u);
  return DSO_OK;
}

dsoStatus dso_task_theta_natural(const dsoTask* task, double* v, const double* u,
                                 dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err) || need_finite(task->theta, u, "theta natural", err)) {
    return err->code;
  }
  if (!v) return dso_error(err, DSO_ERR_INPUT, "theta natural: v is NULL");
  dso_theta_natural(task->theta, v, u);
  return DSO_OK;
}

dsoStatus dso_task_theta_unconstrained(const dsoTask* task, double* u, const double* v,
                                       dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return err->code;
  if (!u || !v) return dso_error(err, DSO_ERR_INPUT, "theta unconstrained: u or v is NULL");
  int n = task->theta->n;
  double* tmp = (double*)malloc(((size_t)n + 1) * sizeof(double));
  if (!tmp) return dso_error(err, DSO_ERR_MEMORY, "theta unconstrained: out of memory");
  // convert into scratch so that u is unchanged on error
  dsoStatus st = dso_theta_unconstrained(task->theta, tmp, v, err);
  if (st == DSO_OK) memcpy(u, tmp, (size_t)n * sizeof(double));
  free(tmp);
  return st;
}

dsoStatus dso_task_prior(const dsoTask* task, double* cost, double* grad, const double* u,
                         dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err) || need_finite(task->theta, u, "prior", err)) return err->code;
  double c = dso_theta_prior(task->theta, grad, u);
  if (cost) *cost = c;
  return DSO_OK;
}

dsoStatus dso_task_simulate_csv(const dsoTask* task, const char* path, const double* u,
                                int nepisode, int horizon, uint64_t seed, double excitation,
                                int nvalidation, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return err->code;
  if (!path || !path[0]) return dso_error(err, DSO_ERR_INPUT, "simulate: expected an output path");
  if (u && need_finite(task->theta, u, "simulate", err)) return err->code;
  if (nepisode <= 0) nepisode = task->nrollout;
  if (horizon <= 0) horizon = task->rollout.horizon;
  if (seed == DSO_SEED_TASK) seed = task->rollout.seed;
  if (!(isfinite(excitation) && excitation >= 0)) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: excitation %g: expected a finite number >= 0",
                     excitation);
  }
  if (nvalidation < 0 || nvalidation > nepisode) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: validation %d: expected 0 to %d episodes",
                     nvalidation, nepisode);
  }
  // sizes no batch can hold are refused before anything is allocated
  if (dso_task_check_batch(task, nepisode, horizon, "simulate: nepisode", "horizon", err)) {
    return err->code;
  }
  dsoDataset* ds = NULL;
  dsoStatus st = dso_simulate(&ds, task, u, nepisode, horizon, seed, excitation, nvalidation, err);
  if (st == DSO_OK) st = dso_dataset_write_csv(path, ds, task->model, err);
  dso_dataset_free(ds);
  return st;
}

// ---------------------------------------------------------------------------------------------
// fit: the residual vector of fit.h, computed here because fit.h exports only the cost
// 0.5 |r|² (dso_fit_evaluate). Same items, order, scales and divergence rule as src/fit.c;
// test_binding checks 0.5 |r|² against dso_fit_evaluate.

struct dsoTaskFit_ {
  const dsoTask* task;
  dsoFitSettings set;     // the task's "fit" section (defaults when absent)
  dsoFit* fit;            // the library's fit: residuals, Jacobian, cost, LM steps, covariance
  int* fitted;            // (nfit) fitted θ entries, ascending
  int nfit;
  long nres;
};

void dso_task_fit_free(dsoTaskFit* f) {
  if (!f) return;
  dso_fit_free(f->fit);
  free(f->fitted);
  free(f);
}

dsoTaskFit* dso_task_fit_create(const dsoTask* task, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return NULL;
  if (!task->data) {
    dso_error(err, DSO_ERR_INPUT, "%s: a fit needs the task's \"data\" section (and its files)",
              task->path);
    return NULL;
  }
  dsoTaskFit* f = (dsoTaskFit*)calloc(1, sizeof(dsoTaskFit));
  if (!f) {
    dso_error(err, DSO_ERR_MEMORY, "fit: out of memory");
    return NULL;
  }
  f->task = task;
  dso_fit_settings_default(&f->set);
  if (task->fit) f->set = *task->fit;  // read at load; set.invdyn points into the task
  f->fit = dso_fit_create(task->model, task->theta, task->data, &f->set, err);
  f->set.invdyn = NULL;  // the fit keeps its own copy
  if (!f->fit) {
    dso_error_prefix(err, "%s: ", task->path);
    dso_task_fit_free(f);
    return NULL;
  }
  int n = task->theta->n;
  f->nres = dso_fit_nresidual(f->fit);
  f->fitted = (int*)calloc((size_t)n + 1, sizeof(int));
  dsoStatus st = f->fitted ? DSO_OK : dso_error(err, DSO_ERR_MEMORY, "fit: out of memory");
  // the fitted entries: the columns the fit's Jacobian can be nonzero in (fit.h)
  if (!st) {
    for (int i = 0; i < n; i++) {
      const dsoThetaEntry* e = &task->theta->entry[i];
      int k = e->bind.kind;
      int sensor = (k == DSO_BIND_SENSOR_GAIN || k == DSO_BIND_SENSOR_OFFSET) && f->set.sensors &&
                   e->bind.target >= 0 && e->bind.target < task->model->nsensordata &&
                   task->data->has[DSO_DATA_SENSOR][e->bind.target];
      if (!e->fixed && ((e->block == DSO_BLOCK_PHYSICS && k != DSO_BIND_NONE) || sensor)) {
        f->fitted[f->nfit++] = i;
      }
    }
  }
  if (st) {
    dso_task_fit_free(f);
    return NULL;
  }
  return f;
}

static int fit_ok(const dsoTaskFit* f, dsoError* err) {
  if (!f) {
    dso_error(err, DSO_ERR_INPUT, "binding: fit is NULL");
    return 0;
  }
  return 1;
}

int dso_task_fit_nresidual(const dsoTaskFit* f, dsoError* err) {
  DSO_ERR_BEGIN(err);
  return fit_ok(f, err) ? (int)f->nres : -1;
}

int dso_task_fit_nfitted(const dsoTaskFit* f, dsoError* err) {
  DSO_ERR_BEGIN(err);
  return fit_ok(f, err) ? f->nfit : -1;
}

dsoStatus dso_task_fit_fitted(const dsoTaskFit* f, int* index, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err)) return err->code;
  if (!index) return dso_error(err, DSO_ERR_INPUT, "fit: index is NULL");
  memcpy(index, f->fitted, (size_t)f->nfit * sizeof(int));
  return DSO_OK;
}

dsoStatus dso_task_fit_residual(dsoTaskFit* f, double* r, const double* u, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err) || need_finite(f->task->theta, u, "fit residual", err)) return err->code;
  if (!r) return dso_error(err, DSO_ERR_INPUT, "fit residual: r is NULL");
  return dso_fit_residual(f->fit, r, u, err);
}

dsoStatus dso_task_fit_jacobian(dsoTaskFit* f, double* J, double* r, const double* u,
                                dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err) || need_finite(f->task->theta, u, "fit jacobian", err)) return err->code;
  if (!J) return dso_error(err, DSO_ERR_INPUT, "fit jacobian: J is NULL");
  return dso_fit_jacobian(f->fit, J, r, u, err);
}

dsoStatus dso_task_fit_cost(dsoTaskFit* f, double* cost, double* parts, const double* u,
                            dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err) || need_finite(f->task->theta, u, "fit cost", err)) return err->code;
  dsoFitReport rep;
  if (dso_fit_evaluate(f->fit, u, &rep, err)) return err->code;
  if (!isfinite(rep.cost)) {
    return dso_error(err, DSO_ERR_NUMERIC, "%s: fit cost is %g", f->task->path, rep.cost);
  }
  if (cost) *cost = rep.cost;
  if (parts) {
    parts[0] = rep.cost_sysid;
    parts[1] = rep.cost_calib;
    parts[2] = rep.cost_prior;
  }
  return DSO_OK;
}

dsoStatus dso_task_fit_step(dsoTaskFit* f, double* u, double* cost, int* done, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err) || need_finite(f->task->theta, u, "fit step", err)) return err->code;
  dsoFitReport rep;
  int d = 0;
  if (dso_fit_step(f->fit, u, &rep, &d, err)) return err->code;
  if (cost) *cost = rep.cost;
  if (done) *done = d;
  return DSO_OK;
}

dsoStatus dso_task_fit_covariance(dsoTaskFit* f, double* cov, double* se, const double* u,
                                  dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!fit_ok(f, err) || need_finite(f->task->theta, u, "fit covariance", err)) return err->code;
  return dso_fit_covariance(f->fit, u, cov, se, err);
}

// ---------------------------------------------------------------------------------------------
// chain objective

struct dsoTaskChainCost_ {
  const dsoTask* task;
  dsoMjChain* mc;
  dsoRollout* ro;
};

void dso_task_chain_cost_free(dsoTaskChainCost* cc) {
  if (!cc) return;
  dso_rollout_free(cc->ro);
  dso_mjchain_free(cc->mc);
  free(cc);
}

dsoTaskChainCost* dso_task_chain_cost_create(const dsoTask* task, int nrollout, int horizon,
                                             uint64_t seed, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (need_task(task, err)) return NULL;
  if (task->rollout.setting == DSO_AVERAGE) {
    dso_error(err, DSO_ERR_INPUT, "%s: rollout.setting: the pathwise gradient needs the episodic "
              "or timevarying setting", task->path);
    return NULL;
  }
  dsoTaskChainCost* cc = (dsoTaskChainCost*)calloc(1, sizeof(dsoTaskChainCost));
  if (!cc) {
    dso_error(err, DSO_ERR_MEMORY, "chain cost: out of memory");
    return NULL;
  }
  cc->task = task;
  dsoRolloutSettings rs = task->rollout;
  if (horizon > 0) rs.horizon = horizon;
  if (seed != DSO_SEED_TASK) rs.seed = seed;
  int N = nrollout > 0 ? nrollout : task->nrollout;
  if (N < 2) {
    dso_error(err, DSO_ERR_INPUT, "%s: chain cost: %d rollouts, expected at least 2 (standard "
              "errors need two)", task->path, N);
    free(cc);
    return NULL;
  }
  if (dso_task_check_batch(task, N, rs.horizon, "chain cost: nrollout", "horizon", err)) {
    free(cc);
    return NULL;
  }
  if (!(cc->mc = dso_task_chain(task, err)) ||
      dso_rollout_create(&cc->ro, &cc->mc->chain, &rs, N, err)) {
    dso_error_prefix(err, "%s: ", task->path);
    dso_task_chain_cost_free(cc);
    return NULL;
  }
  return cc;
}

dsoStatus dso_task_chain_cost_eval(dsoTaskChainCost* cc, double* J, double* Jse, double* grad,
                                   double* grad_se, int* diverged, const double* u,
                                   int iteration, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!cc) return dso_error(err, DSO_ERR_INPUT, "binding: chain cost is NULL");
  const dsoTheta* th = cc->task->theta;
  if (need_finite(th, u, "chain cost", err)) return err->code;
  if (iteration < 0) {
    return dso_error(err, DSO_ERR_INPUT, "chain cost: iteration %d: expected >= 0", iteration);
  }
  if (dso_rollout_run(cc->ro, u, (uint64_t)iteration, err)) return err->code;
  double j = 0, jse = 0;
  dso_rollout_objective(&j, &jse, NULL, cc->ro);
  if (!isfinite(j)) {
    return dso_error(err, DSO_ERR_NUMERIC, "%s: chain cost: J is %g", cc->task->path, j);
  }
  if (grad) {
    if (dso_mjchain_pathwise(grad, grad_se, cc->mc, cc->ro, err)) return err->code;
    for (int i = 0; i < th->n; i++) {
      if (!isfinite(grad[i])) {
        return dso_error(err, DSO_ERR_NUMERIC, "%s: chain cost: gradient of %s is %g",
                         cc->task->path, th->entry[i].name, grad[i]);
      }
    }
  }
  if (J) *J = j;
  if (Jse) *Jse = jse;
  if (diverged) *diverged = dso_mjchain_diverged(cc->mc, cc->ro);
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// run

struct dsoTaskRun_ {
  const dsoTask* task;
  int kind;             // DSO_TASK_KIND_FIT or _CHAIN
  int max_iter;
  dsoFit* fit;          // fit tasks
  dsoTrain* train;      // chain tasks
};

void dso_task_run_free(dsoTaskRun* run) {
  if (!run) return;
  dso_fit_free(run->fit);
  dso_train_free(run->train);
  free(run);
}

dsoTaskRun* dso_task_run_create(const dsoTask* task, dsoError* err) {
  DSO_ERR_BEGIN(err);
  int kind = dso_task_kind(task, err);
  if (kind < 0) return NULL;
  if (kind != DSO_TASK_KIND_FIT && kind != DSO_TASK_KIND_CHAIN) {
    dso_error(err, DSO_ERR_INPUT, "%s: run: %s", task->path,
              kind == DSO_TASK_KIND_ESTIMATOR
                  ? "estimator tasks are not supported by the binding (use dso run)"
                  : "nothing to optimize: the task has neither a \"data\" nor a \"cost\" section");
    return NULL;
  }
  dsoTaskRun* run = (dsoTaskRun*)calloc(1, sizeof(dsoTaskRun));
  if (!run) {
    dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
    return NULL;
  }
  run->task = task;
  run->kind = kind;
  if (kind == DSO_TASK_KIND_FIT) {
    dsoFitSettings fs;
    dso_fit_settings_default(&fs);
    if (task->fit) fs = *task->fit;  // read at load, with its inverse dynamics
    if (!task->data) {
      dso_error(err, DSO_ERR_INPUT, "%s: run: a fit needs the task's data (load it with data)",
                task->path);
    } else {
      run->max_iter = fs.max_iter;
      if (!(run->fit = dso_fit_create(task->model, task->theta, task->data, &fs, err))) {
        dso_error_prefix(err, "%s: ", task->path);
      }
    }
    if (!run->fit) {
      dso_task_run_free(run);
      return NULL;
    }
  } else {
    dsoTrainSettings ts;
    dso_train_settings_default(&ts);
    if (task->train) ts = *task->train;  // read at load
    run->max_iter = ts.max_iter;
    run->train = dso_train_create(task, &ts, err);
    if (!run->train) {
      dso_task_run_free(run);
      return NULL;
    }
  }
  return run;
}

int dso_task_run_max_iter(const dsoTaskRun* run, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!run) {
    dso_error(err, DSO_ERR_INPUT, "binding: run is NULL");
    return -1;
  }
  return run->max_iter;
}

dsoStatus dso_task_run_step(dsoTaskRun* run, double* u, double* cost, int* done, dsoError* err) {
  DSO_ERR_BEGIN(err);
  if (!run) return dso_error(err, DSO_ERR_INPUT, "binding: run is NULL");
  if (need_finite(run->task->theta, u, "run", err)) return err->code;
  double c = 0;
  int d = 0;
  if (run->fit) {
    dsoFitReport rep;
    if (dso_fit_step(run->fit, u, &rep, &d, err)) return err->code;
    c = rep.cost;
  } else {
    dsoTrainReport rep;
    if (dso_train_step(run->train, u, &rep, err)) return err->code;
    c = rep.J + rep.data + rep.prior;
  }
  if (!isfinite(c)) {
    return dso_error(err, DSO_ERR_NUMERIC, "%s: run: cost is %g", run->task->path, c);
  }
  if (cost) *cost = c;
  if (done) *done = d;
  return DSO_OK;
}
