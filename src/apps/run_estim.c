// The estimator driver of dso_run_task (run_driver.h): learns a predictor-corrector state
// estimator (paper eq. 99) from recorded data, the corrector and the physics together
// (estim/estimfit.h, the task's "estimator" settings), with an EKF on the same validation
// episodes for comparison. The run's θ is the fit's layout, which extends the task's.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/run.h"
#include "apps/run_driver.h"
#include "estim/estimfit.h"
#include "mujoco/dataset.h"

static const char* const kEstimParts[3] = {"estim", "prior", "val_rms"};

typedef struct EstimRun_ {
  dsoTask* task;
  const char* name;
  dsoEstimFit* f;
  int nval;
  dsoEpisodeSelect sel;
  dsoError verr;  // the last validation failure (the figure is then NaN)
} EstimRun;

// state RMS on the validation episodes (all episodes when none is for validation); NAN when the
// data records no state
static double val_rms(dsoEstimFit* f, const double* u, dsoEpisodeSelect sel, dsoError* err) {
  double rms = NAN;
  if (dso_estimfit_state_rms(&rms, NULL, f, u, sel, err)) {
    return NAN;
  }
  return rms;
}

static double ekf_rms(dsoEstimFit* f, const double* u, dsoEpisodeSelect sel, dsoError* err) {
  double rms = NAN;
  if (dso_estimfit_ekf_rms(&rms, f, u, sel, err)) {
    return NAN;
  }
  return rms;
}

static void estim_init(void* self, double* u0) {
  dso_estimfit_init(((EstimRun*)self)->f, u0, NULL);
}

static dsoStatus estim_evaluate(void* self, const double* u, dsoRunRecord* r, dsoError* err) {
  EstimRun* e = self;
  dsoEstimFitReport rep;
  memset(&rep, 0, sizeof(rep));
  if (dso_estimfit_evaluate(e->f, u, &rep, err)) {
    dso_error_prefix(err, "%s: ", e->name);
    return err->code;
  }
  dsoRunRecord rr = {0, rep.cost, {rep.estim, rep.prior, val_rms(e->f, u, e->sel, &e->verr)}, 0,
                     dso_estimfit_lambda(e->f), rep.steps};
  *r = rr;
  return DSO_OK;
}

static dsoStatus estim_step(void* self, double* u, const dsoRunRecord* last, dsoRunRecord* r,
                            int* done, int* refused, dsoError* err) {
  EstimRun* e = self;
  *refused = DSO_RUN_STEP_OK;
  dsoEstimFitReport rep;
  memset(&rep, 0, sizeof(rep));
  int it = (last ? last->iter : 0) + 1;
  if (dso_estimfit_step(e->f, u, &rep, done, err)) {
    dso_error_prefix(err, "%s: iteration %d: ", e->name, it);
    return err->code;
  }
  dsoRunRecord rr = {it, rep.cost, {rep.estim, rep.prior, val_rms(e->f, u, e->sel, &e->verr)},
                     rep.grad_norm, rep.lambda, (last ? last->steps : 0) + rep.steps};
  *r = rr;
  return DSO_OK;
}

static void estim_get_state(void* self, double* lambda, double* opt) {
  (void)opt;
  *lambda = dso_estimfit_lambda(((EstimRun*)self)->f);
}

static dsoStatus estim_set_state(void* self, double lambda, const double* opt, dsoError* err) {
  (void)opt;
  EstimRun* e = self;
  dsoStatus s = dso_estimfit_set_lambda(e->f, lambda, err);  // a checkpoint's lambda
  if (s) {
    dso_error_prefix(err, "%s: ", e->name);
  }
  return s;
}

static void estim_header(void* self, dsoRunText* t) {
  EstimRun* e = self;
  const dsoEstimFit* f = e->f;
  const dsoEstimFitSettings* set = dso_estimfit_settings(f);
  dso_run_text_printf(t, "dso run %s: %s corrector (%d entries), %d fitted entries, %ld "
                      "innovations on %d training episodes, %d validation, up to %d "
                      "iterations\n", e->name, dso_corrector_kind_name(set->corrector.kind),
                      dso_estimfit_corrector(f)->np, dso_estimfit_nfitted(f),
                      dso_estimfit_nres(f), dso_dataset_nepisode(e->task->data) - e->nval,
                      e->nval, set->max_iter);
}

static void estim_iteration(void* self, dsoRunText* t, const dsoRunRecord* r, int done,
                            double rate, double eta) {
  (void)self;
  dso_run_text_printf(t, "iter %3d  J %.6e  (estim %.4e  prior %.3e)  val rms %.4g  |g| %.2e  "
                      "lambda %.1e  %.3g steps/s  ETA %s%.0f s\n", r->iter, r->cost, r->term[0],
                      r->term[1], r->term[2], r->grad_norm, r->lambda, rate,
                      done ? "0 (converged) " : "<= ", done ? 0 : eta);
}

// result.json: the common result plus the estimator's comparison
static char* result_text(const dsoEstimFit* f, const double* u0, const dsoRunState* st,
                         const double* fig, const char* const* fig_names, int nfig, int nval,
                         dsoError* err) {
  char* base = dso_run_result_json(dso_estimfit_theta(f), u0, st->u, NULL,
                                   &st->record[st->nrecord - 1], kEstimParts, NULL, 0, 0, err);
  const dsoCorrector* cor = dso_estimfit_corrector(f);
  dsoRunEstimFacts facts = {
      .corrector = dso_corrector_kind_name(cor->kind),
      .corrector_entries = cor->np,
      .fitted_entries = dso_estimfit_nfitted(f),
      .innovations = (double)dso_estimfit_nres(f),
      .scored_on = nval > 0 ? "validation episodes" : "all episodes",
      .nfig = nfig,
      .fig = fig,
      .fig_name = fig_names,
  };
  char* text = base ? dso_run_result_add_estimator(base, &facts, err) : NULL;
  free(base);
  return text;
}

// the table of the task's entries and a summary of the corrector
static void note_values(dsoRunCtx* ctx, const dsoEstimFit* f, const double* u0,
                        const double* u) {
  const dsoTheta* th = dso_estimfit_theta(f);
  const dsoCorrector* cor = dso_estimfit_corrector(f);
  int off_c = dso_estimfit_corrector_start(f);
  dso_run_note(ctx, "\n%-34s %14s %14s\n", "entry", "initial", "learned");
  for (int i = 0; i < off_c; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    dso_run_note(ctx, "%-34s %14.6g %14.6g%s\n", e->name, dso_theta_entry_natural(e, u0[i]),
                 dso_theta_entry_natural(e, u[i]), e->fixed ? "  (fixed)" : "");
  }
  for (int i = off_c; i < off_c + cor->nK; i++) {
    dso_run_note(ctx, "%-34s %14.6g %14.6g\n", th->entry[i].name, u0[i], u[i]);
  }
  if (cor->np > cor->nK) {
    dso_run_note(ctx, "(and %d network entries corrector.W*, corrector.b* in result.json)\n",
                 cor->np - cor->nK);
  }
}

static dsoStatus estim_report(void* self, dsoRunCtx* ctx, const double* u0, const dsoRunState* st,
                              dsoRunText* wrote, dsoError* err) {
  EstimRun* e = self;
  dsoEstimFit* f = e->f;
  const double* u = st->u;
  // the comparison on the validation episodes
  static const char* const kFig[4] = {"learned", "initial", "ekf_initial_model",
                                      "ekf_learned_model"};
  const dsoTheta* th = dso_estimfit_theta(f);
  int nphys = 0;
  for (int i = 0; i < dso_estimfit_corrector_start(f); i++) {
    nphys += !th->entry[i].fixed;
  }
  double fig[4] = {val_rms(f, u, e->sel, &e->verr), val_rms(f, u0, e->sel, &e->verr), NAN, NAN};
  if (dso_estimfit_settings(f)->compare_ekf) {
    fig[2] = ekf_rms(f, u0, e->sel, &e->verr);
    if (nphys) {
      fig[3] = ekf_rms(f, u, e->sel, &e->verr);
    }
  }
  if (e->verr.code) {
    dso_run_note(ctx, "some comparison figures are missing: %s\n", e->verr.msg);
  }
  char* result = result_text(f, u0, st, fig, kFig, 4, e->nval, err);
  dsoStatus s = result ? dso_run_write_text(ctx, "result.json", result, err) : err->code;
  free(result);
  if (s) {
    return s;
  }
  if (nphys && (s = dso_run_write_model(ctx, e->task, th, u, err))) {
    return s;
  }
  note_values(ctx, f, u0, u);
  dso_run_note(ctx, "\nRMS state error on %s episodes (qpos and qvel, tangent space):\n",
               e->nval > 0 ? "validation" : "all");
  const char* labels[4] = {"learned estimator", "estimator at the initial values",
                           "EKF, initial model", "EKF, learned model"};
  for (int k = 0; k < 4; k++) {
    if (isfinite(fig[k])) {
      dso_run_note(ctx, "  %-32s %.5g\n", labels[k], fig[k]);
    }
  }
  dso_run_text_printf(wrote, "wrote %s/result.json, progress.csv, checkpoint.json%s\n",
                      dso_run_ctx_outdir(ctx), nphys ? ", model.xml" : "");
  return DSO_OK;
}

static dsoRunStop estim_stop(void* self, int done) {
  (void)self;
  return done ? DSO_RUN_STOP_CONVERGED : DSO_RUN_STOP_MAX_ITER;
}

static void estim_destroy(void* self) {
  EstimRun* e = self;
  if (!e) return;
  dso_estimfit_free(e->f);
  free(e);
}

static const dsoRunOps kEstimOps = {
    .init = estim_init,
    .evaluate = estim_evaluate,
    .step = estim_step,
    .get_state = estim_get_state,
    .set_state = estim_set_state,
    .header = estim_header,
    .iteration = estim_iteration,
    .report = estim_report,
    .stop = estim_stop,
    .destroy = estim_destroy,
};

dsoStatus dso_run_estim_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                               const char* name, dsoError* err) {
  if (!task->data) {
    return dso_error(err, DSO_ERR_INPUT, "%s: the estimator learns from recorded data: the task "
                     "needs a \"data\" section (episodes with ctrl and sensor columns, e.g. from "
                     "dso simulate)", name);
  }
  EstimRun* e = calloc(1, sizeof(EstimRun));
  if (!e) return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  e->task = task;
  e->name = name;
  dsoEstimFitSettings es = *task->estimator;  // read at load; the arrays stay the task's
  if (o->max_iter >= 0) es.max_iter = o->max_iter;
  e->f = dso_estimfit_create(task->model, task->theta, task->data, &es, err);
  if (!e->f) {
    free(e);
    dso_error_prefix(err, "%s: ", name);
    return err->code;
  }
  e->nval = dso_dataset_nvalidation(task->data);
  e->sel = e->nval > 0 ? DSO_SELECT_VALIDATION : DSO_SELECT_ALL;
  memset(d, 0, sizeof(*d));
  d->ops = &kEstimOps;
  d->self = e;
  d->kind = DSO_TASK_KIND_ESTIMATOR;
  d->theta = dso_estimfit_theta(e->f);
  d->parts = kEstimParts;
  d->max_iter = dso_estimfit_settings(e->f)->max_iter;
  d->lambda = dso_estimfit_lambda(e->f);
  return DSO_OK;
}
