// The fit driver of dso_run_task (run_driver.h): Levenberg-Marquardt on the task's recorded data
// (fit.h, the task's "fit" settings), then standard errors, validation, the evaluation tables,
// result.json, model.xml and trajectories.csv.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/evaluate.h"
#include "apps/fit.h"
#include "apps/run.h"
#include "apps/run_driver.h"
#include "config/json.h"
#include "config/values_file.h"
#include "core/io.h"
#include "mujoco/dataset.h"

static const char* const kParts[3] = {"sysid", "calib", "prior"};
// the parts when fit.inverse_dynamics makes the dynamics residuals torque residuals
static const char* const kPartsInvdyn[3] = {"invdyn", "calib", "prior"};

typedef struct FitRun_ {
  dsoTask* task;
  const char* name;
  dsoFitSettings fs;
  int invdyn;
  int n;
  dsoFit* fit;
  double* ut;       // (n) true values (the initial ones without truth)
  int truth;
  int stop;         // rep.stop of the last step in this process
  int have_steps0;  // steps0 taken
  long steps0;      // steps of the row the first step of this process started from
} FitRun;

static void fit_init(void* self, double* u0) {
  FitRun* f = self;
  dso_theta_init(f->task->theta, u0);
  if (!f->truth) memcpy(f->ut, u0, sizeof(double) * (size_t)f->n);
}

static dsoStatus fit_evaluate(void* self, const double* u, dsoRunRecord* r, dsoError* err) {
  FitRun* f = self;
  dsoFitReport rep;
  memset(&rep, 0, sizeof(rep));
  if (dso_fit_evaluate(f->fit, u, &rep, err)) {
    // a prior whose square overflows at the initial θ: name the entry
    int k = err->code == DSO_ERR_NUMERIC ? dso_run_bad_prior(f->task->theta, u) : -1;
    if (k >= 0) {
      const dsoThetaEntry* e = &f->task->theta->entry[k];
      dso_error_clear(err);
      dso_error(err, DSO_ERR_NUMERIC, "the cost at the initial theta is not finite: the "
                "prior term of theta entry %s overflows (value %g, mean %g, std %g)", e->name,
                dso_theta_entry_natural(e, u[k]), e->prior_mean, e->prior_std);
    }
    dso_error_prefix(err, "%s: ", f->name);
    return err->code;
  }
  dsoRunRecord rr = {0, rep.cost, {rep.cost_sysid, rep.cost_calib, rep.cost_prior},
                     rep.grad_norm, rep.lambda, rep.steps};
  *r = rr;
  return DSO_OK;
}

static dsoStatus fit_step(void* self, double* u, const dsoRunRecord* last, dsoRunRecord* r,
                          int* done, int* refused, dsoError* err) {
  FitRun* f = self;
  *refused = DSO_RUN_STEP_OK;
  if (!f->have_steps0) {
    f->steps0 = last ? last->steps : 0;
    f->have_steps0 = 1;
  }
  dsoFitReport rep;
  memset(&rep, 0, sizeof(rep));
  if (dso_fit_step(f->fit, u, &rep, done, err)) {
    return err->code;
  }
  f->stop = rep.stop;
  dsoRunRecord rr = {(last ? last->iter : 0) + 1, rep.cost,
                     {rep.cost_sysid, rep.cost_calib, rep.cost_prior}, rep.grad_norm,
                     rep.lambda, f->steps0 + rep.steps};
  *r = rr;
  return DSO_OK;
}

static void fit_get_state(void* self, double* lambda, double* opt) {
  (void)opt;
  *lambda = dso_fit_lambda(((FitRun*)self)->fit);
}

static dsoStatus fit_set_state(void* self, double lambda, const double* opt, dsoError* err) {
  (void)opt;
  return dso_fit_set_lambda(((FitRun*)self)->fit, lambda, err);
}

static void fit_header(void* self, dsoRunText* t) {
  FitRun* f = self;
  char how[64];
  if (f->invdyn) {
    snprintf(how, sizeof(how), "inverse dynamics");
  } else {
    snprintf(how, sizeof(how), "window %d", f->fs.window);
  }
  dso_run_text_printf(t, "dso run %s: %d entries, %d episodes (%d validation), %s, up to %d "
                      "iterations\n", f->name, f->n, dso_dataset_nepisode(f->task->data),
                      dso_dataset_nvalidation(f->task->data), how, f->fs.max_iter);
}

static void fit_iteration(void* self, dsoRunText* t, const dsoRunRecord* r, int done,
                          double rate, double eta) {
  FitRun* f = self;
  dso_run_text_printf(t, "iter %3d  J %.6e  (%s %.3e  calib %.3e  prior %.3e)  |g| %.2e  "
                      "lambda %.1e  %.3g steps/s  ETA %s%.0f s\n", r->iter, r->cost,
                      f->invdyn ? kPartsInvdyn[0] : kParts[0], r->term[0], r->term[1],
                      r->term[2], r->grad_norm, r->lambda, rate,
                      done ? "0 (converged) " : "<= ", done ? 0.0 : eta);
}

// why the fit stopped, for result.json
static const char* stop_name(int stop, int done) {
  switch (stop) {
    case DSO_FIT_CONVERGED: return "converged";
    case DSO_FIT_STALLED_AT_BOUND: return "stalled_at_bound";
    case DSO_FIT_NO_DECREASE: return "no_decrease";
    default: return done ? "converged" : "max_iter";
  }
}

static dsoRunStop fit_stop(void* self, int done) {
  switch (((FitRun*)self)->stop) {
    case DSO_FIT_CONVERGED: return DSO_RUN_STOP_CONVERGED;
    case DSO_FIT_STALLED_AT_BOUND: return DSO_RUN_STOP_STALLED_AT_BOUND;
    case DSO_FIT_NO_DECREASE: return DSO_RUN_STOP_NO_DECREASE;
    default: return done ? DSO_RUN_STOP_CONVERGED : DSO_RUN_STOP_MAX_ITER;
  }
}

// the evaluation table: RMS per recorded channel (rows) and window length (columns)
static void note_evaluation(dsoRunCtx* ctx, const dsoEval* ev, const char* label) {
  dsoEvalResult r;
  dso_eval_result(ev, &r);
  dso_run_note(ctx, "\nmultiple-shooting RMS at the %s theta (windows restart from the "
               "recording):\n%-28s", label, "channel \\ window");
  for (int w = 0; w < r.nwindow; w++) {
    char head[32];
    if (r.window[w] == DSO_EVAL_WHOLE) {
      snprintf(head, sizeof(head), "whole");
    } else {
      snprintf(head, sizeof(head), "%d", r.window[w]);
    }
    dso_run_note(ctx, " %11s", head);
  }
  dso_run_note(ctx, "\n");
  for (int c = 0; c < r.nchannel; c++) {
    dso_run_note(ctx, "%-28s", r.channel[c]);
    for (int w = 0; w < r.nwindow; w++) {
      dso_run_note(ctx, " %11.4g", r.rms[(size_t)w * (size_t)r.nchannel + (size_t)c]);
    }
    dso_run_note(ctx, "\n");
  }
}

// OUTDIR/trajectories.csv: every validation episode simulated open loop from its first sample
// at the initial (u0) and identified (u) θ against the recording, per recorded qpos entry; then
// OUTDIR/trajectories.png. An episode that diverges at the initial θ gets empty initial cells.
static dsoStatus write_trajectories(dsoRunCtx* ctx, FitRun* f, const double* u0,
                                    const double* u, dsoError* err) {
  const mjModel* m = f->task->model;
  const dsoDataset* ds = f->task->data;
  int nq = m->nq, ncol = 0;
  int* col = calloc((size_t)nq + 1, sizeof(int));
  char(*names)[128] = calloc((size_t)nq + 1, sizeof(*names));
  const char** np = calloc((size_t)nq + 1, sizeof(char*));
  if (!col || !names || !np) {
    free(col);
    free(names);
    free(np);
    return dso_error(err, DSO_ERR_MEMORY, "trajectories: out of memory");
  }
  for (int i = 0; i < nq; i++) {
    if (ds->has[DSO_DATA_QPOS][i]) {
      dso_dataset_column_name(names[ncol], sizeof(names[ncol]), m, DSO_DATA_QPOS, i);
      np[ncol] = names[ncol];
      col[ncol++] = i;
    }
  }
  char file[4200];
  dso_run_join(file, sizeof(file), dso_run_ctx_outdir(ctx), "trajectories.csv");
  dsoAtomicFile* af = dso_atomic_open(file, err);
  dsoStatus s = af ? DSO_OK : err->code;
  if (af) {
    dso_atomic_printf(af, err, "episode,time");
    for (int k = 0; k < ncol; k++) {
      dso_atomic_printf(af, err, ",%s.recorded,%s.initial,%s.identified", names[k], names[k],
                        names[k]);
    }
    dso_atomic_printf(af, err, "\n");
  }
  double *a = NULL, *b = NULL;
  for (int v = 0; !s && v < dso_fit_nvalidation(f->fit); v++) {
    int e = dso_fit_validation_episode(f->fit, v);
    const dsoEpisode* ep = dso_dataset_episode(ds, e);
    size_t size = (size_t)ep->T * (size_t)nq + 1;
    free(a);
    free(b);
    a = malloc(size * sizeof(double));
    b = malloc(size * sizeof(double));
    if (!a || !b) {
      s = dso_error(err, DSO_ERR_MEMORY, "trajectories: out of memory");
      break;
    }
    dsoError ierr = {0};
    int have0 = dso_fit_simulate(f->fit, u0, e, a, &ierr) == DSO_OK;
    if (!have0) {
      dso_run_note(ctx, "trajectories.csv: no initial-theta columns for episode %ld: %s\n",
                   ep->id, ierr.msg);
    }
    if ((s = dso_fit_simulate(f->fit, u, e, b, err))) {
      break;
    }
    for (int t = 0; t < ep->T; t++) {
      dso_atomic_printf(af, err, "%ld,%.17g", ep->id, ep->time[t]);
      for (int k = 0; k < ncol; k++) {
        size_t o = (size_t)t * (size_t)nq + (size_t)col[k];
        dso_atomic_printf(af, err, ",%.17g,", ep->qpos[o]);
        if (have0) {
          dso_atomic_printf(af, err, "%.17g", a[o]);
        }
        dso_atomic_printf(af, err, ",%.17g", b[o]);
      }
      dso_atomic_printf(af, err, "\n");
    }
  }
  free(a);
  free(b);
  if (af) {
    if (s) {
      dso_atomic_abort(af);
    } else {
      s = dso_atomic_commit(af, err);
    }
  }
  if (!s) {
    dso_run_add_file(ctx, "trajectories.csv");
    dso_run_plot_trajectories(ctx, ncol, np);
  }
  free(col);
  free(names);
  free(np);
  return s;
}

// the final outputs (progress.csv and checkpoint.json are current): covariance, validation,
// result, model, trajectories
static dsoStatus fit_report(void* self, dsoRunCtx* ctx, const double* u0, const dsoRunState* st,
                            dsoRunText* wrote, dsoError* err) {
  FitRun* f = self;
  dsoTask* task = f->task;
  const double* u = st->u;
  int n = f->n;
  dsoStatus s = DSO_OK;
  double* se = calloc((size_t)n + 1, sizeof(double));
  double* cov = calloc((size_t)n * (size_t)n + 1, sizeof(double));
  double* se_iid = calloc((size_t)n + 1, sizeof(double));
  int* at_bound = calloc((size_t)n + 1, sizeof(int));
  int nval = dso_dataset_nvalidation(task->data);
  int nrms = nval > 0 ? nval : dso_dataset_nepisode(task->data);
  double* rms = calloc((size_t)nrms + 1, sizeof(double));
  char* eval_text[2] = {NULL, NULL};
  char *base = NULL, *result = NULL;
  if (!se || !cov || !se_iid || !at_bound || !rms) {
    s = dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
    goto done;
  }
  dsoError cerr = {0};
  int have_se = dso_fit_covariance(f->fit, u, cov, se, &cerr) == DSO_OK;
  if (!have_se) {
    dso_run_note(ctx, "no confidence intervals: %s\n", cerr.msg);
  }
  dsoFitSe se_kind = dso_fit_se_auto(f->fit, u);
  int have_iid =
      dso_fit_covariance_kind(f->fit, u, DSO_FIT_SE_IID, cov, se_iid, &cerr) == DSO_OK;
  int nbound = dso_fit_at_bound(f->fit, u, at_bound);
  double total = 0;
  int qidx = 0;
  while (qidx < task->model->nq && !task->data->has[DSO_DATA_QPOS][qidx]) {
    qidx++;
  }
  dsoError verr = {0};
  int have_val = qidx < task->model->nq &&
                 dso_fit_validation(f->fit, u, qidx, rms, nrms, &total, &verr) == DSO_OK;
  if (!have_val && verr.code) {
    dso_run_note(ctx, "no validation figures: %s\n", verr.msg);
  }
  // the fitted values against the initial ones on the task's recordings: multiple-shooting RMS
  // per window length and recorded channel (evaluate.h)
  dsoError eerr = {0};
  dsoEval* ev = dso_eval_create(task->model, task->theta, task->data, NULL, &eerr);
  for (int k = 0; ev && k < 2; k++) {
    if (dso_eval_run(ev, k ? u : u0, &eerr) == DSO_OK) {
      eval_text[k] = dso_eval_json(ev, &eerr);
      if (k == 1) {
        note_evaluation(ctx, ev, "identified");
      }
    } else {
      dso_run_note(ctx, "no %s evaluation: %s\n", k ? "identified" : "initial", eerr.msg);
    }
  }
  if (!ev) {
    dso_run_note(ctx, "no evaluation: %s\n", eerr.msg);
  }
  dso_eval_free(ev);
  base = dso_run_result_json(task->theta, u0, u, have_se ? se : NULL, &st->record[st->nrecord - 1],
                             f->invdyn ? kPartsInvdyn : kParts, rms, have_val ? nrms : 0, total,
                             err);
  dsoRunFitFacts facts = {have_iid ? se_iid : NULL, at_bound,
                          se_kind == DSO_FIT_SE_JACKKNIFE ? "jackknife" : "iid",
                          dso_fit_nwindows(f->fit), stop_name(f->stop, st->done), eval_text[0],
                          eval_text[1]};
  result = base ? dso_run_result_add_fit(base, task->theta, &facts, err) : NULL;
  if (!result) {
    s = err->code ? err->code : dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
    goto done;
  }
  if ((s = dso_run_write_text(ctx, "result.json", result, err)) ||
      (s = dso_run_write_model(ctx, task, task->theta, u, err))) {
    goto done;
  }
  dsoRunText tab = {0};
  dso_run_table(&tab, task->theta, "identified", u0, u, f->ut, have_se ? se : NULL, at_bound,
                f->truth);
  dso_run_note(ctx, "%s", tab.s ? tab.s : "");
  dso_run_text_free(&tab);
  if (have_se) {
    const char* jack = f->invdyn ? "delete-one-cluster jackknife over 0.2 s clusters of "
                                   "inverse-dynamics samples, robust to correlated residuals"
                                 : "delete-one-window jackknife over the shooting windows, "
                                   "robust to correlated residuals";
    dso_run_note(ctx, "standard errors: %s (classic s^2 (J'J)^-1 as se_iid in result.json)\n",
                 se_kind == DSO_FIT_SE_JACKKNIFE ? jack
                 : f->invdyn ? "classic s^2 (J'J)^-1 (too few clusters for the jackknife)"
                             : "classic s^2 (J'J)^-1 (too few windows for the jackknife)");
  }
  if (nbound > 0) {
    dso_run_note(ctx, "%d entr%s at a bound (no standard error):", nbound,
                 nbound > 1 ? "ies" : "y");
    for (int i = 0; i < n; i++) {
      if (at_bound[i]) {
        dso_run_note(ctx, " %s", task->theta->entry[i].name);
      }
    }
    dso_run_note(ctx, "\n");
  }
  if (f->stop == DSO_FIT_STALLED_AT_BOUND) {
    dso_run_note(ctx, "stopped: progress stalled with an entry at a bound\n");
  }
  if (have_val) {
    dso_run_note(ctx, "RMS error of qpos[%d] on %s episodes simulated from their first sample: "
                 "%.4g (", qidx, nval > 0 ? "validation" : "all", total);
    for (int k = 0; k < nrms; k++) {
      dso_run_note(ctx, "%s%.4g", k ? ", " : "", rms[k]);
    }
    dso_run_note(ctx, ")\n");
  }
  if ((s = write_trajectories(ctx, f, u0, u, err))) {
    goto done;
  }
  dso_run_text_printf(wrote, "wrote %s/result.json, progress.csv, checkpoint.json, model.xml, "
                      "trajectories.csv\n", dso_run_ctx_outdir(ctx));
done:
  free(base);
  free(result);
  free(eval_text[0]);
  free(eval_text[1]);
  free(se);
  free(cov);
  free(se_iid);
  free(at_bound);
  free(rms);
  return s;
}

static void fit_destroy(void* self) {
  FitRun* f = self;
  if (!f) return;
  dso_fit_free(f->fit);
  free(f->ut);
  free(f);
}

static const dsoRunOps kFitOps = {
    .init = fit_init,
    .evaluate = fit_evaluate,
    .step = fit_step,
    .get_state = fit_get_state,
    .set_state = fit_set_state,
    .header = fit_header,
    .iteration = fit_iteration,
    .report = fit_report,
    .stop = fit_stop,
    .destroy = fit_destroy,
};

dsoStatus dso_run_fit_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                             const char* name, dsoError* err) {
  if (!task->data) {
    return dso_error(err, DSO_ERR_INPUT, "%s: nothing to optimize: the task has neither a "
                     "\"data\" section (fits) nor a \"cost\" section (chain optimization)", name);
  }
  FitRun* f = calloc(1, sizeof(FitRun));
  if (!f) return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  f->task = task;
  f->name = name;
  dso_fit_settings_default(&f->fs);
  if (task->fit) f->fs = *task->fit;  // read at load; fs.invdyn points into the task
  f->invdyn = f->fs.invdyn != NULL;
  if (o->max_iter >= 0) f->fs.max_iter = o->max_iter;
  f->n = task->theta->n;
  f->stop = DSO_FIT_RUNNING;
  f->ut = calloc((size_t)f->n + 1, sizeof(double));
  if (!f->ut) {
    fit_destroy(f);
    return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  }
  if (o->truth) {
    dso_theta_init(task->theta, f->ut);
    if (dso_values_read_file(task->theta, f->ut, o->truth, err)) {
      fit_destroy(f);
      return err->code;
    }
    f->truth = 1;
  }
  f->fit = dso_fit_create(task->model, task->theta, task->data, &f->fs, err);
  if (!f->fit) {
    fit_destroy(f);
    return err->code;
  }
  memset(d, 0, sizeof(*d));
  d->ops = &kFitOps;
  d->self = f;
  d->kind = DSO_TASK_KIND_FIT;
  d->theta = task->theta;
  d->parts = f->invdyn ? kPartsInvdyn : kParts;
  d->max_iter = f->fs.max_iter;
  d->lambda = dso_fit_lambda(f->fit);
  return DSO_OK;
}
