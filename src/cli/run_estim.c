// dso run on a task with an "estimator" section: learning a predictor-corrector state estimator
// (paper eq. 99) from recorded data, the corrector and the physics together
// (estimators/estimfit.h), with an EKF on the same validation episodes for comparison.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dso_internal.h"
#include "estim/estimfit.h"
#include "apps/run.h"
#include "run_util.h"

static const char* const kEstimParts[3] = {"estim", "prior", "val_rms"};

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

// result.json: the common result plus the estimator's comparison
static char* result_text(const dsoEstimFit* f, const double* u0, const dsoRunState* st,
                         const double* fig, const char* const* fig_names, int nfig, int nval,
                         dsoError* err) {
  char* base = dso_run_result_json(f->theta, u0, st->u, NULL, &st->record[st->nrecord - 1],
                                   kEstimParts, NULL, 0, 0, err);
  cJSON* root = base ? cJSON_Parse(base) : NULL;
  free(base);
  if (!root) {
    if (!err->code) dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
    return NULL;
  }
  cJSON* o = cJSON_AddObjectToObject(root, "estimator");
  cJSON_AddStringToObject(o, "corrector", dso_corrector_kind_name(f->set.corrector.kind));
  cJSON_AddNumberToObject(o, "corrector_entries", f->cor->np);
  cJSON_AddNumberToObject(o, "fitted_entries", f->p);
  cJSON_AddNumberToObject(o, "innovations", (double)f->nres);
  cJSON_AddStringToObject(o, "scored_on", nval > 0 ? "validation episodes" : "all episodes");
  cJSON* r = cJSON_AddObjectToObject(o, "rms_state_error");
  for (int k = 0; k < nfig; k++) {
    if (isfinite(fig[k])) {
      cJSON_AddNumberToObject(r, fig_names[k], fig[k]);
    } else {
      cJSON_AddNullToObject(r, fig_names[k]);
    }
  }
  char* text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text) dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
  return text;
}

// the table of the task's entries and a summary of the corrector
static void print_values(const dsoEstimFit* f, const double* u0, const double* u) {
  printf("\n%-34s %14s %14s\n", "entry", "initial", "learned");
  for (int i = 0; i < f->off_c; i++) {
    const dsoThetaEntry* e = &f->theta->entry[i];
    printf("%-34s %14.6g %14.6g%s\n", e->name, dso_theta_entry_natural(e, u0[i]),
           dso_theta_entry_natural(e, u[i]), e->fixed ? "  (fixed)" : "");
  }
  for (int i = f->off_c; i < f->off_c + f->cor->nK; i++) {
    printf("%-34s %14.6g %14.6g\n", f->theta->entry[i].name, u0[i], u[i]);
  }
  if (f->cor->np > f->cor->nK) {
    printf("(and %d network entries corrector.W*, corrector.b* in result.json)\n",
           f->cor->np - f->cor->nK);
  }
}

int dso_cli_run_estim(dsoTask* task, const char* task_path, const char* outdir, int resume,
                      int quiet, int max_iter) {
  dsoError err = {0};
  if (!task->data) {
    fprintf(stderr, "dso run: %s: the estimator learns from recorded data: the task needs a "
            "\"data\" section (episodes with ctrl and sensor columns, e.g. from dso simulate)\n",
            task_path);
    return DSO_EXIT_INPUT;
  }
  dsoEstimFitSettings es = *task->estimator;  // read at load; the arrays stay the task's
  if (max_iter >= 0) {
    es.max_iter = max_iter;
  }
  dsoEstimFit* f = dso_estimfit_create(task->model, task->theta, task->data, &es, &err);
  if (!f) {
    dso_error_prefix(&err, "%s: ", task_path);
    return dso_cli_fail("run", &err);
  }
  // the run's outputs name θ with the corrector: the fit's layout extends the task's
  int n = f->n, status = DSO_EXIT_OK, nval = dso_dataset_nvalidation(task->data);
  dsoEpisodeSelect sel = nval > 0 ? DSO_SELECT_VALIDATION : DSO_SELECT_ALL;
  double* u0 = calloc((size_t)n + 1, sizeof(double));
  dsoRunState st;
  memset(&st, 0, sizeof(st));
  dsoCliRun run;
  dso_cli_run_init(&run, task_path, outdir, max_iter, kEstimParts);
  char file[4200];
  char* result = NULL;
  if (!u0) {
    status = DSO_EXIT_FAIL;
    goto done;
  }
  dso_estimfit_init(f, u0, NULL);
  status = dso_cli_start_run(&run, &st, f->theta, u0, f->lambda, resume);
  if (status) {
    goto done;
  }
  f->lambda = st.lambda;
  dsoEstimFitReport rep;
  dsoError verr = {0};
  if (st.nrecord == 0) {
    if (dso_estimfit_evaluate(f, st.u, &rep, &err)) {
      dso_error_prefix(&err, "%s: ", task_path);
      status = dso_cli_fail("run", &err);
      goto done;
    }
    dsoRunRecord r = {0, rep.cost, {rep.estim, rep.prior, val_rms(f, st.u, sel, &verr)}, 0,
                      f->lambda, rep.steps};
    if ((status = dso_cli_record(&run, &st, f->theta, &r)) != DSO_EXIT_OK) {
      goto done;
    }
  }
  if (!quiet) {
    printf("dso run %s: %s corrector (%d entries), %d fitted entries, %ld innovations on %d "
           "training episodes, %d validation, up to %d iterations\n", task_path,
           dso_corrector_kind_name(f->set.corrector.kind), f->cor->np, f->p, f->nres,
           dso_dataset_nepisode(task->data) - nval, nval, f->set.max_iter);
  }
  double t0 = dso_cli_now();
  int start = st.record[st.nrecord - 1].iter;
  long steps0 = st.record[st.nrecord - 1].steps;
  while (!st.done && st.record[st.nrecord - 1].iter < f->set.max_iter) {
    if (dso_cli_interrupted()) {
      break;
    }
    int done = 0;
    if (dso_estimfit_step(f, st.u, &rep, &done, &err)) {
      dso_error_prefix(&err, "%s: iteration %d: ", task_path, st.record[st.nrecord - 1].iter + 1);
      status = dso_cli_fail("run", &err);
      goto done;
    }
    st.done = done;
    st.lambda = f->lambda;
    const dsoRunRecord* last = &st.record[st.nrecord - 1];
    dsoRunRecord r = {last->iter + 1, rep.cost, {rep.estim, rep.prior, val_rms(f, st.u, sel, &verr)},
                      rep.grad_norm, rep.lambda, last->steps + rep.steps};
    if ((status = dso_cli_record(&run, &st, f->theta, &r)) != DSO_EXIT_OK) {
      goto done;
    }
    if (!quiet) {
      double el = dso_cli_now() - t0;
      int it = r.iter - start;
      printf("iter %3d  J %.6e  (estim %.4e  prior %.3e)  val rms %.4g  |g| %.2e  lambda %.1e  "
             "%.3g steps/s  ETA %s%.0f s\n", r.iter, r.cost, r.term[0], r.term[1], r.term[2],
             r.grad_norm, r.lambda, el > 0 ? (r.steps - steps0) / el : 0,
             done ? "0 (converged) " : "<= ", done ? 0 : (it > 0 ? el / it * (f->set.max_iter - r.iter) : 0));
      fflush(stdout);
    }
  }
  if (dso_cli_interrupted()) {
    status = dso_cli_interrupt(&run, &st);
    goto done;
  }
  // progress.csv and checkpoint.json are current
  if ((status = dso_cli_check_final(&run, f->theta, st.u, &st.record[st.nrecord - 1]))) {
    goto done;
  }
  // the comparison on the validation episodes
  static const char* const kFig[4] = {"learned", "initial", "ekf_initial_model",
                                      "ekf_learned_model"};
  int nphys = 0;
  for (int i = 0; i < f->off_c; i++) {
    nphys += !f->theta->entry[i].fixed;
  }
  double fig[4] = {val_rms(f, st.u, sel, &verr), val_rms(f, u0, sel, &verr), NAN, NAN};
  if (f->set.compare_ekf) {
    fig[2] = ekf_rms(f, u0, sel, &verr);
    if (nphys) {
      fig[3] = ekf_rms(f, st.u, sel, &verr);
    }
  }
  if (verr.code && !quiet) {
    printf("some comparison figures are missing: %s\n", verr.msg);
  }
  result = result_text(f, u0, &st, fig, kFig, 4, nval, &err);
  dso_cli_join(file, sizeof(file), outdir, "result.json");
  if (!result || dso_write_file_atomic(file, result, strlen(result), &err)) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  if (nphys) {
    dso_cli_join(file, sizeof(file), outdir, "model.xml");
    if (dso_cli_write_model(file, task, f->theta, st.u, &err)) {
      status = dso_cli_fail("run", &err);
      goto done;
    }
  }
  if (!quiet) {
    print_values(f, u0, st.u);
    printf("\nRMS state error on %s episodes (qpos and qvel, tangent space):\n",
           nval > 0 ? "validation" : "all");
    const char* labels[4] = {"learned estimator", "estimator at the initial values",
                             "EKF, initial model", "EKF, learned model"};
    for (int k = 0; k < 4; k++) {
      if (isfinite(fig[k])) {
        printf("  %-32s %.5g\n", labels[k], fig[k]);
      }
    }
    printf("wrote %s/result.json, progress.csv, checkpoint.json%s\n", outdir,
           nphys ? ", model.xml" : "");
  }
  dso_cli_plot(outdir);
done:
  dso_cli_end_run(&run);
  free(result);
  dso_run_state_clear(&st);
  dso_estimfit_free(f);
  free(u0);
  return status;
}
