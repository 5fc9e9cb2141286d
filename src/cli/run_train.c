// dso run on a task with a cost: chain optimization (mechanism design, policy optimization).
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dso_internal.h"
#include "config/json.h"
#include "apps/run.h"
#include "run_util.h"
#include "apps/train.h"

// progress.csv / result.json parts. With data-driven costs: the chain objective J, the weighted
// data-driven costs (clone L_clone + hybrid L_hybrid, paper section 5.2) and L_prior, whose sum
// is the cost. Without them (the earlier format, kept): J, L_prior and the diverged rollouts.
static const char* const kTrainParts[3] = {"J", "prior", "diverged"};
static const char* const kTrainDataParts[3] = {"J", "data", "prior"};

// result.json: the common result plus the refused steps
static char* result_text(const dsoTheta* theta, const double* u0, const dsoRunState* st,
                         const char* const* parts, dsoError* err) {
  char* base = dso_run_result_json(theta, u0, st->u, NULL,
                                   st->nrecord ? &st->record[st->nrecord - 1] : NULL, parts, NULL,
                                   0, 0, err);
  cJSON* root = base ? cJSON_Parse(base) : NULL;
  free(base);
  if (!root) {
    if (!err->code) dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
    return NULL;
  }
  cJSON_AddNumberToObject(root, "refused_steps", st->refused);
  char* text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text) dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
  return text;
}

// the chain path: Adam (or natural-gradient steps) on the pathwise or score gradient plus the
// data-driven and prior gradients. A step the trainer refuses (a non-finite cost, gradient or
// step) keeps θ and is counted; the run gives up after DSO_CLI_MAX_REFUSED in a row, or at once
// when the cost or gradient at the initial θ is not finite.
int dso_cli_run_train(dsoTask* task, const char* task_path, const char* outdir, int resume,
                     int quiet, int max_iter) {
  dsoError err = {0};
  dsoTrainSettings ts;
  dso_train_settings_default(&ts);
  if (task->train) ts = *task->train;  // read at load
  if (max_iter >= 0) {
    ts.max_iter = max_iter;
  }
  int datacost = ts.clone > 0 || ts.hybrid > 0;
  const char* const* parts = datacost ? kTrainDataParts : kTrainParts;
  int n = task->theta->n, status = DSO_EXIT_OK;
  double* u0 = calloc((size_t)n + 1, sizeof(double));
  dsoTrain* tr = dso_train_create(task, &ts, &err);
  dsoRunState st;
  memset(&st, 0, sizeof(st));
  dsoCliRun run;
  dso_cli_run_init(&run, task_path, outdir, max_iter, parts);
  double* opt = tr ? calloc((size_t)dso_train_state_size(tr) + 1, sizeof(double)) : NULL;
  char file[4200];
  char* result = NULL;
  if (!tr || !u0 || !opt) {
    status = err.code ? dso_cli_fail("run", &err) : DSO_EXIT_FAIL;
    goto done;
  }
  dso_theta_init(task->theta, u0);
  status = dso_cli_start_run(&run, &st, task->theta, u0, 0, resume);
  if (status) {
    goto done;
  }
  if (st.nopt && st.nopt != dso_train_state_size(tr)) {
    fprintf(stderr, "dso run: --resume: %s holds %d optimizer values, expected %d (a checkpoint "
            "of another task or version)\n", run.checkpoint, st.nopt, dso_train_state_size(tr));
    status = DSO_EXIT_INPUT;
    goto done;
  }
  if (st.nopt && dso_train_set_state(tr, st.opt, &err)) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  if (!quiet) {
    printf("dso run %s: %d entries, %d rollouts x %d steps per iteration, up to %d iterations\n",
           task_path, n, task->nrollout, task->rollout.horizon, ts.max_iter);
    if (ts.clone > 0 || ts.hybrid > 0) {
      printf("data-driven costs on %d recorded episodes (%ld samples): clone weight %g, hybrid "
             "weight %g\n", dso_dataset_nepisode(task->data) - dso_dataset_nvalidation(task->data),
             dso_dataset_nsample(task->data), ts.clone, ts.hybrid);
    }
  }
  double t0 = dso_cli_now();
  int start = st.nrecord ? st.record[st.nrecord - 1].iter : 0;
  long steps0 = st.nrecord ? st.record[st.nrecord - 1].steps : 0;
  int refused_run = 0;  // refused steps in a row
  while ((st.nrecord ? st.record[st.nrecord - 1].iter : 0) < ts.max_iter) {
    if (dso_cli_interrupted()) {
      break;
    }
    dsoTrainReport rep;
    dsoStatus ss = dso_train_step(tr, st.u, &rep, &err);
    if (ss && rep.refused) {
      // θ and the optimizer state kept, the batch skipped: the checkpoint holds the new count
      st.refused++;
      refused_run++;
      dso_train_get_state(tr, opt);
      int first = st.nrecord == 0;
      if (!quiet) {
        printf("iter %3d  step refused (%d in a row): %s\n",
               (st.nrecord ? st.record[st.nrecord - 1].iter : 0) + 1, refused_run, err.msg);
        fflush(stdout);
      }
      if (dso_run_state_set_opt(&st, opt, dso_train_state_size(tr), &err)) {
        status = dso_cli_fail("run", &err);
        goto done;
      }
      if ((status = dso_cli_save(&run, &st, task->theta)) != DSO_EXIT_OK) {
        goto done;
      }
      if (first && rep.refused == DSO_TRAIN_REFUSED_COST) {
        fprintf(stderr, "dso run: %s: the first batch, at the initial theta, is refused: %s\n",
                task_path, err.msg);
        status = DSO_EXIT_FAIL;
        goto done;
      }
      if (refused_run >= DSO_CLI_MAX_REFUSED) {
        fprintf(stderr, "dso run: %s: %d steps in a row refused with train.lr %g (the last: "
                "%s); theta stays at iteration %d in %s; result.json not written\n", task_path,
                refused_run, ts.lr, err.msg, st.nrecord ? st.record[st.nrecord - 1].iter : 0,
                run.checkpoint);
        status = DSO_EXIT_FAIL;
        goto done;
      }
      dso_error_clear(&err);
      continue;
    }
    if (ss) {
      status = dso_cli_fail("run", &err);
      goto done;
    }
    refused_run = 0;
    dso_train_get_state(tr, opt);
    // rep.steps counts this iteration's steps
    long before = st.nrecord ? st.record[st.nrecord - 1].steps : 0;
    dsoRunRecord r = {(st.nrecord ? st.record[st.nrecord - 1].iter : 0) + 1,
                      rep.J + rep.data + rep.prior, {rep.J, rep.prior, rep.diverged},
                      rep.grad_norm, ts.lr, before + rep.steps};
    if (datacost) {
      r.term[1] = rep.data;
      r.term[2] = rep.prior;
    }
    if (dso_run_state_set_opt(&st, opt, dso_train_state_size(tr), &err)) {
      status = dso_cli_fail("run", &err);
      goto done;
    }
    if ((status = dso_cli_record(&run, &st, task->theta, &r)) != DSO_EXIT_OK) {
      goto done;
    }
    if (!quiet) {
      double el = dso_cli_now() - t0;
      int it = r.iter - start;
      printf("iter %3d  J %.6e +- %.2g  ", r.iter, rep.J, rep.Jse);
      if (ts.clone > 0) printf("clone %.4e  ", rep.clone);
      if (ts.hybrid > 0) printf("hybrid %.4e  ", rep.hybrid);
      printf("prior %.3e  |g| %.2e  %d diverged  %.3g steps/s  ETA %.0f s\n", rep.prior,
             rep.grad_norm, rep.diverged, el > 0 ? (r.steps - steps0) / el : 0,
             it > 0 ? el / it * (ts.max_iter - r.iter) : 0);
      fflush(stdout);
    }
  }
  if (dso_cli_interrupted()) {
    status = dso_cli_interrupt(&run, &st);
    goto done;
  }
  if ((status = dso_cli_check_final(&run, task->theta, st.u,
                                    st.nrecord ? &st.record[st.nrecord - 1] : NULL))) {
    goto done;
  }
  if (!(result = result_text(task->theta, u0, &st, parts, &err))) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  dso_cli_join(file, sizeof(file), outdir, "result.json");
  if (dso_write_file_atomic(file, result, strlen(result), &err)) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  dso_cli_join(file, sizeof(file), outdir, "model.xml");
  if (dso_cli_write_model(file, task, task->theta, st.u, &err)) {
    status = dso_cli_fail("run", &err);
    goto done;
  }
  if (!quiet) {
    dso_cli_print_table(task->theta, "final", u0, st.u, u0, NULL, NULL, 0);
    if (st.refused > 0) {
      printf("%d step%s refused (non-finite cost, gradient or step; theta kept)\n", st.refused,
             st.refused > 1 ? "s" : "");
    }
    printf("wrote %s/result.json, progress.csv, checkpoint.json, model.xml\n", outdir);
  }
  dso_cli_plot(outdir);
done:
  dso_cli_end_run(&run);
  free(result);
  dso_run_state_clear(&st);
  dso_train_free(tr);
  free(opt);
  free(u0);
  return status;
}
