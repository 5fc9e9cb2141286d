// dso run TASK.json -o OUTDIR: optimize θ and write the result, progress, checkpoint, the model
// with the identified values and plots.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "run_util.h"
#include "dso_internal.h"
#include "apps/evaluate.h"
#include "apps/fit.h"
#include "config/json.h"
#include "apps/run.h"
#include "apps/train.h"

static const char* kHelp =
    "usage: dso run TASK.json -o OUTDIR [--resume] [--max-iter N] [--values FILE.json]\n"
    "               [--data FILE.csv ...] [--truth FILE.json] [--quiet]\n\n"
    "With an \"estimator\" section: learns a state estimator (corrector and physics) from the\n"
    "task's data. With a \"cost\": optimizes the policy and any physics entries of the task's\n"
    "MuJoCo chain against its cost, the priors and the clone/hybrid costs on its data with Adam\n"
    "or natural-gradient steps on the pathwise or the score gradient (the \"train\" section:\n"
    "max_iter, lr, beta1, beta2, eps, seed, clone, hybrid, proximal_every, gradient, epochs,\n"
    "clip, optimizer, damping). Otherwise, with a \"data\" section:\n"
    "fits theta to the recorded data (system identification by multiple shooting, sensor\n"
    "calibration and the priors) with Levenberg-Marquardt (the \"fit\" section sets the window,\n"
    "iterations, scales).\n"
    "Prints a progress line per iteration and writes to OUTDIR:\n"
    "  result.json      theta by name: initial and identified values, standard errors and 95%\n"
    "                   confidence intervals, the final cost, the validation RMS\n"
    "  progress.csv     one row per iteration, rewritten atomically after every iteration\n"
    "  checkpoint.json  written atomically every iteration; --resume continues from it and\n"
    "                   ends bit-identical to an uninterrupted run\n"
    "  model.xml        the task's model file with the identified values written into its\n"
    "                   attributes (comments, default classes and layout kept; an <inertial>\n"
    "                   or <option> is added where needed; a constant force becomes a\n"
    "                   bias-only <general> actuator appended after the model's own; values\n"
    "                   without an MJCF attribute, such as sensor gains, are listed in a\n"
    "                   comment); checked to compile to the identified values\n"
    "  trajectories.csv fits: every validation episode (all episodes when none is marked)\n"
    "                   simulated open loop from its first sample with the recorded controls:\n"
    "                   episode, time, and per recorded qpos entry its recorded value and the\n"
    "                   simulated ones at the initial and at the identified theta\n"
    "  progress.png     learning curve (when gnuplot is installed; progress.gp is its script:\n"
    "                   `gnuplot progress.gp` in OUTDIR plots again)\n"
    "  trajectories.png fits: one panel per recorded qpos entry, recorded against simulated\n"
    "                   (when gnuplot is installed; script trajectories.gp)\n"
    "--values FILE.json starts from the file's values ({\"name\": value} or a result.json;\n"
    "entries it does not name keep the task's; give it again with --resume).\n"
    "--data FILE.csv (repeatable) reads the task's data from these recordings, with the task's\n"
    "\"data\" settings, instead of the files the task names.\n"
    "--truth FILE.json ({\"name\": value}) adds the true values and the errors to the table\n"
    "(for data recorded by dso simulate).\n\n"
    "OUTDIR is locked for the run (OUTDIR/.lock): a second run on it stops at once. Temporary\n"
    "files a killed run left in OUTDIR are removed. SIGINT or SIGTERM (Ctrl-C) ends the run\n"
    "after its current iteration with checkpoint.json and progress.csv written and prints the\n"
    "command that resumes it (a second signal stops at once). A step with a non-finite cost,\n"
    "gradient or theta is refused (theta kept) and counted; the run gives up after 5 in a row,\n"
    "or at once when the cost at the initial theta is not finite; non-finite values are never\n"
    "written.\n"
    "Exit status: 0 done; 1 a runtime failure, refused steps, or interrupted (resume with\n"
    "--resume); 2 bad input or OUTDIR in use or not writable.\n";

static const char* const kParts[3] = {"sysid", "calib", "prior"};
// the parts when fit.inverse_dynamics makes the dynamics residuals torque residuals
static const char* const kPartsInvdyn[3] = {"invdyn", "calib", "prior"};

// OUTDIR/trajectories.csv: every validation episode simulated open loop from its first sample
// at the initial (u0) and identified (u) θ against the recording, per recorded qpos entry; then
// OUTDIR/trajectories.png. An episode that diverges at the initial θ gets empty initial cells.
static dsoStatus write_trajectories(const char* outdir, const dsoTask* task, dsoFit* fit,
                                    const double* u0, const double* u, int quiet,
                                    dsoError* err) {
  const mjModel* m = task->model;
  const dsoDataset* ds = task->data;
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
  dso_cli_join(file, sizeof(file), outdir, "trajectories.csv");
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
  for (int v = 0; !s && v < dso_fit_nvalidation(fit); v++) {
    int e = dso_fit_validation_episode(fit, v);
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
    int have0 = dso_fit_simulate(fit, u0, e, a, &ierr) == DSO_OK;
    if (!have0 && !quiet) {
      printf("trajectories.csv: no initial-theta columns for episode %ld: %s\n", ep->id,
             ierr.msg);
    }
    if ((s = dso_fit_simulate(fit, u, e, b, err))) {
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
    dso_cli_plot_trajectories(outdir, ncol, np);
  }
  free(col);
  free(names);
  free(np);
  return s;
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

// the evaluation table: RMS per recorded channel (rows) and window length (columns)
static void print_evaluation(const dsoEval* ev, const char* label) {
  dsoEvalResult r;
  dso_eval_result(ev, &r);
  printf("\nmultiple-shooting RMS at the %s theta (windows restart from the recording):\n%-28s",
         label, "channel \\ window");
  for (int w = 0; w < r.nwindow; w++) {
    char head[32];
    if (r.window[w] == DSO_EVAL_WHOLE) {
      snprintf(head, sizeof(head), "whole");
    } else {
      snprintf(head, sizeof(head), "%d", r.window[w]);
    }
    printf(" %11s", head);
  }
  printf("\n");
  for (int c = 0; c < r.nchannel; c++) {
    printf("%-28s", r.channel[c]);
    for (int w = 0; w < r.nwindow; w++) {
      printf(" %11.4g", r.rms[(size_t)w * (size_t)r.nchannel + (size_t)c]);
    }
    printf("\n");
  }
}

// --values FILE.json: the task's initial values replaced by the file's (a {"name": value} object
// or a result.json; entries it does not name keep the task's)
static dsoStatus start_from_values(dsoTask* task, const char* path, dsoError* err) {
  double* u = calloc((size_t)task->theta->n + 1, sizeof(double));
  if (!u) {
    return dso_error(err, DSO_ERR_MEMORY, "--values: out of memory");
  }
  dso_theta_init(task->theta, u);
  dsoStatus s = dso_eval_read_values(task->theta, u, path, err);
  if (!s && (s = dso_theta_set_init(task->theta, u, err))) {
    dso_error_prefix(err, "%s: ", path);
  }
  free(u);
  return s;
}

int dso_cli_run(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  const char* task_path = NULL;
  const char* outdir = NULL;
  const char* truth_path = NULL;
  const char* values_path = NULL;
  const char* data[DSO_CLI_MAX_DATA];
  int ndata = 0;
  int resume = 0, quiet = 0, max_iter = -1;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "-o")) {
      outdir = dso_args_value(argc, argv, &i, "run");
      if (!outdir || !dso_args_nonempty(outdir, "an output folder", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--truth")) {
      truth_path = dso_args_value(argc, argv, &i, "run");
      if (!truth_path || !dso_args_nonempty(truth_path, "a JSON file of true values", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--values")) {
      values_path = dso_args_value(argc, argv, &i, "run");
      if (!values_path ||
          !dso_args_nonempty(values_path, "a JSON file of starting values", "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (!strcmp(a, "--data")) {
      const char* v = dso_args_value(argc, argv, &i, "run");
      if (!v || !dso_args_nonempty(v, "a recording (CSV)", "run", a)) {
        return DSO_EXIT_INPUT;
      }
      if (ndata == DSO_CLI_MAX_DATA) {
        fprintf(stderr, "dso run: more than %d --data files\n", DSO_CLI_MAX_DATA);
        return DSO_EXIT_INPUT;
      }
      data[ndata++] = v;
    } else if (!strcmp(a, "--resume")) {
      resume = 1;
    } else if (!strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "--max-iter")) {
      const char* v = dso_args_value(argc, argv, &i, "run");
      if (!v || !dso_args_int32(&max_iter, v, 0, 1000000000, "run", a)) {
        return DSO_EXIT_INPUT;
      }
    } else if (argv[i][0] == '-' || task_path) {
      fprintf(stderr, "dso run: unexpected argument '%s'\n%s", argv[i], kHelp);
      return DSO_EXIT_INPUT;
    } else {
      task_path = argv[i];
    }
  }
  if (!task_path || !outdir) {
    fprintf(stderr, "dso run: need TASK.json and -o OUTDIR\n%s", kHelp);
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load_data(task_path, 0, data, ndata, &err);
  if (!task) {
    return dso_cli_fail("run", &err);
  }
  if (values_path && start_from_values(task, values_path, &err)) {
    dso_task_free(task);
    return dso_cli_fail("run", &err);
  }
  // one path per kind of task: estimator learning, chain optimization (a cost; the data, if
  // any, feeds data-driven terms), or a fit to recorded data
  if (task->estimator || task->cost) {
    if (truth_path) {
      fprintf(stderr, "dso run: --truth applies to fits to recorded data\n");
      dso_task_free(task);
      return DSO_EXIT_INPUT;
    }
    int st = task->estimator
                 ? dso_cli_run_estim(task, task_path, outdir, resume, quiet, max_iter)
                 : dso_cli_run_train(task, task_path, outdir, resume, quiet, max_iter);
    dso_task_free(task);
    return st;
  }
  if (!task->data) {
    fprintf(stderr, "dso run: %s: nothing to optimize: the task has neither a \"data\" section "
            "(fits) nor a \"cost\" section (chain optimization)\n", task_path);
    dso_task_free(task);
    return DSO_EXIT_INPUT;
  }
  dsoFitSettings fs;
  dso_fit_settings_default(&fs);
  if (task->fit) fs = *task->fit;  // read at load; fs.invdyn points into the task
  int invdyn = fs.invdyn != NULL;
  const char* const* parts = invdyn ? kPartsInvdyn : kParts;
  if (max_iter >= 0) {
    fs.max_iter = max_iter;
  }
  int n = task->theta->n, status = DSO_EXIT_OK;
  double* u0 = calloc((size_t)n + 1, sizeof(double));
  double* se = calloc((size_t)n + 1, sizeof(double));
  double* cov = calloc((size_t)n * (size_t)n + 1, sizeof(double));
  double* ut = calloc((size_t)n + 1, sizeof(double));
  double* se_iid = calloc((size_t)n + 1, sizeof(double));
  int* at_bound = calloc((size_t)n + 1, sizeof(int));
  dsoRunState st;
  memset(&st, 0, sizeof(st));
  dsoCliRun run;
  dso_cli_run_init(&run, task_path, outdir, max_iter, parts);
  dsoFit* fit = NULL;
  if (!u0 || !se || !cov || !ut || !se_iid || !at_bound) {
    status = DSO_EXIT_FAIL;
    goto done;
  }
  dso_theta_init(task->theta, u0);
  memcpy(ut, u0, sizeof(double) * (size_t)n);
  if (truth_path) {
    char* text = dso_read_text_file(truth_path, &err);
    if (!text || dso_theta_from_json(task->theta, ut, text, truth_path, &err)) {
      free(text);
      status = dso_cli_fail("run", &err);
      goto done;
    }
    free(text);
  }
  fit = dso_fit_create(task->model, task->theta, task->data, &fs, &err);
  if (!fit) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  status = dso_cli_start_run(&run, &st, task->theta, u0, dso_fit_lambda(fit), resume);
  if (status) {
    goto done;
  }
  dso_fit_set_lambda(fit, st.lambda);
  dsoFitReport rep;
  memset(&rep, 0, sizeof(rep));
  if (!resume || st.nrecord == 0) {
    if (dso_fit_evaluate(fit, st.u, &rep, &err)) {
      // a prior whose square overflows at the initial θ: name the entry
      int k = err.code == DSO_ERR_NUMERIC ? dso_run_bad_prior(task->theta, st.u) : -1;
      if (k >= 0) {
        const dsoThetaEntry* e = &task->theta->entry[k];
        dso_error_clear(&err);
        dso_error(&err, DSO_ERR_NUMERIC, "the cost at the initial theta is not finite: the "
                  "prior term of theta entry %s overflows (value %g, mean %g, std %g)", e->name,
                  dso_theta_entry_natural(e, st.u[k]), e->prior_mean, e->prior_std);
      }
      dso_error_prefix(&err, "%s: ", task_path);
      status = dso_cli_fail("run", &err);
      goto done;
    }
    dsoRunRecord r = {0, rep.cost, {rep.cost_sysid, rep.cost_calib, rep.cost_prior},
                      rep.grad_norm, rep.lambda, rep.steps};
    // the cost at the initial θ must be finite (a prior std of 1e-200 is not)
    if ((status = dso_cli_record(&run, &st, task->theta, &r)) != DSO_EXIT_OK) {
      goto done;
    }
  }
  if (!quiet) {
    char how[64];
    if (invdyn) {
      snprintf(how, sizeof(how), "inverse dynamics");
    } else {
      snprintf(how, sizeof(how), "window %d", fs.window);
    }
    printf("dso run %s: %d entries, %d episodes (%d validation), %s, up to %d iterations\n",
           task_path, n, dso_dataset_nepisode(task->data), dso_dataset_nvalidation(task->data),
           how, fs.max_iter);
  }
  double t0 = dso_cli_now();
  long steps0 = st.record[st.nrecord - 1].steps;
  int start = st.record[st.nrecord - 1].iter;
  int stop = DSO_FIT_RUNNING;
  while (!st.done && st.record[st.nrecord - 1].iter < fs.max_iter) {
    if (dso_cli_interrupted()) {
      break;
    }
    int done = 0;
    if (dso_fit_step(fit, st.u, &rep, &done, &err)) {
      status = dso_cli_fail("run", &err);
      goto done;
    }
    st.done = done;
    stop = rep.stop;
    st.lambda = dso_fit_lambda(fit);
    dsoRunRecord r = {st.record[st.nrecord - 1].iter + 1, rep.cost,
                      {rep.cost_sysid, rep.cost_calib, rep.cost_prior}, rep.grad_norm,
                      rep.lambda, steps0 + rep.steps};
    if ((status = dso_cli_record(&run, &st, task->theta, &r)) != DSO_EXIT_OK) {
      goto done;
    }
    if (!quiet) {
      double el = dso_cli_now() - t0;
      int it = r.iter - start;
      double eta = it > 0 ? el / it * (fs.max_iter - r.iter) : 0;
      printf("iter %3d  J %.6e  (%s %.3e  calib %.3e  prior %.3e)  |g| %.2e  lambda %.1e  "
             "%.3g steps/s  ETA %s%.0f s\n", r.iter, r.cost, parts[0], r.term[0], r.term[1],
             r.term[2],
             r.grad_norm, r.lambda, el > 0 ? (r.steps - steps0) / el : 0,
             done ? "0 (converged) " : "<= ", done ? 0.0 : eta);
      fflush(stdout);
    }
  }
  if (dso_cli_interrupted()) {
    status = dso_cli_interrupt(&run, &st);
    goto done;
  }
  // the final outputs (progress.csv and checkpoint.json are current): covariance, validation,
  // result, model, plot
  char file[4200];
  if ((status = dso_cli_check_final(&run, task->theta, st.u, &st.record[st.nrecord - 1]))) {
    goto done;
  }
  dsoError cerr = {0};
  int have_se = dso_fit_covariance(fit, st.u, cov, se, &cerr) == DSO_OK;
  if (!have_se && !quiet) {
    printf("no confidence intervals: %s\n", cerr.msg);
  }
  dsoFitSe se_kind = dso_fit_se_auto(fit, st.u);
  int have_iid = dso_fit_covariance_kind(fit, st.u, DSO_FIT_SE_IID, cov, se_iid, &cerr) == DSO_OK;
  int nbound = dso_fit_at_bound(fit, st.u, at_bound);
  int nval = dso_dataset_nvalidation(task->data);
  double* rms = calloc((size_t)(nval > 0 ? nval : dso_dataset_nepisode(task->data)) + 1,
                       sizeof(double));
  double total = 0;
  int nrms = nval > 0 ? nval : dso_dataset_nepisode(task->data);
  int qidx = 0;
  while (qidx < task->model->nq && !task->data->has[DSO_DATA_QPOS][qidx]) {
    qidx++;
  }
  dsoError verr = {0};
  int have_val = rms && qidx < task->model->nq &&
                 dso_fit_validation(fit, st.u, qidx, rms, nrms, &total, &verr) == DSO_OK;
  if (!have_val && verr.code && !quiet) {
    printf("no validation figures: %s\n", verr.msg);
  }
  // the fitted values against the initial ones on the task's recordings: multiple-shooting RMS
  // per window length and recorded channel (evaluate.h)
  char* eval_text[2] = {NULL, NULL};
  dsoError eerr = {0};
  dsoEval* ev = dso_eval_create(task->model, task->theta, task->data, NULL, &eerr);
  for (int k = 0; ev && k < 2; k++) {
    if (dso_eval_run(ev, k ? st.u : u0, &eerr) == DSO_OK) {
      eval_text[k] = dso_eval_json(ev, &eerr);
      if (!quiet && k == 1) {
        print_evaluation(ev, "identified");
      }
    } else if (!quiet) {
      printf("no %s evaluation: %s\n", k ? "identified" : "initial", eerr.msg);
    }
  }
  if (!ev && !quiet) {
    printf("no evaluation: %s\n", eerr.msg);
  }
  dso_eval_free(ev);
  char* base = dso_run_result_json(task->theta, u0, st.u, have_se ? se : NULL,
                                   &st.record[st.nrecord - 1], parts, rms,
                                   have_val ? nrms : 0, total, &err);
  dsoRunFitFacts facts = {have_iid ? se_iid : NULL, at_bound,
                          se_kind == DSO_FIT_SE_JACKKNIFE ? "jackknife" : "iid",
                          dso_fit_nwindows(fit), stop_name(stop, st.done), eval_text[0],
                          eval_text[1]};
  char* result = base ? dso_run_result_add_fit(base, task->theta, &facts, &err) : NULL;
  free(base);
  free(eval_text[0]);
  free(eval_text[1]);
  dso_cli_join(file, sizeof(file), outdir, "result.json");
  if (!result || dso_write_file_atomic(file, result, strlen(result), &err)) {
    free(result);
    free(rms);
    status = dso_cli_fail("run", &err);
    goto done;
  }
  free(result);
  dso_cli_join(file, sizeof(file), outdir, "model.xml");
  if (dso_cli_write_model(file, task, task->theta, st.u, &err)) {
    free(rms);
    status = dso_cli_fail("run", &err);
    goto done;
  }
  if (!quiet) {
    dso_cli_print_table(task->theta, "identified", u0, st.u, ut, have_se ? se : NULL, at_bound,
                        truth_path != NULL);
    if (have_se) {
      const char* jack = invdyn ? "delete-one-cluster jackknife over 0.2 s clusters of "
                                  "inverse-dynamics samples, robust to correlated residuals"
                                : "delete-one-window jackknife over the shooting windows, robust "
                                  "to correlated residuals";
      printf("standard errors: %s (classic s^2 (J'J)^-1 as se_iid in result.json)\n",
             se_kind == DSO_FIT_SE_JACKKNIFE ? jack
             : invdyn ? "classic s^2 (J'J)^-1 (too few clusters for the jackknife)"
                      : "classic s^2 (J'J)^-1 (too few windows for the jackknife)");
    }
    if (nbound > 0) {
      printf("%d entr%s at a bound (no standard error):", nbound, nbound > 1 ? "ies" : "y");
      for (int i = 0; i < n; i++) {
        if (at_bound[i]) {
          printf(" %s", task->theta->entry[i].name);
        }
      }
      printf("\n");
    }
    if (stop == DSO_FIT_STALLED_AT_BOUND) {
      printf("stopped: progress stalled with an entry at a bound\n");
    }
    if (have_val) {
      printf("RMS error of qpos[%d] on %s episodes simulated from their first sample: %.4g "
             "(", qidx, nval > 0 ? "validation" : "all", total);
      for (int k = 0; k < nrms; k++) {
        printf("%s%.4g", k ? ", " : "", rms[k]);
      }
      printf(")\n");
    }
  }
  free(rms);
  if (write_trajectories(outdir, task, fit, u0, st.u, quiet, &err)) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  if (!quiet) {
    printf("wrote %s/result.json, progress.csv, checkpoint.json, model.xml, trajectories.csv\n",
           outdir);
  }
  dso_cli_plot(outdir);
done:
  dso_cli_end_run(&run);
  dso_run_state_clear(&st);
  dso_fit_free(fit);
  free(u0);
  free(se);
  free(cov);
  free(ut);
  free(se_iid);
  free(at_bound);
  dso_task_free(task);
  return status;
}
