// The chain driver of dso_run_task (run_driver.h): Adam or natural-gradient steps on the pathwise
// or score gradient plus the data-driven and prior gradients (train.h, the task's "train"
// settings). A step the trainer refuses (a non-finite cost, gradient or step) keeps θ and is
// counted by the loop; result.json adds the refused steps.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/run.h"
#include "apps/run_driver.h"
#include "apps/train.h"
#include "mujoco/dataset.h"

// progress.csv / result.json parts. With data-driven costs: the chain objective J, the weighted
// data-driven costs (clone L_clone + hybrid L_hybrid, paper section 5.2) and L_prior, whose sum
// is the cost. Without them (the earlier format, kept): J, L_prior and the diverged rollouts.
static const char* const kTrainParts[3] = {"J", "prior", "diverged"};
static const char* const kTrainDataParts[3] = {"J", "data", "prior"};

typedef struct TrainRun_ {
  dsoTask* task;
  const char* name;
  dsoTrainSettings ts;
  int datacost;
  dsoTrain* tr;
  dsoTrainReport rep;  // of the last step
} TrainRun;

static void train_init(void* self, double* u0) {
  dso_theta_init(((TrainRun*)self)->task->theta, u0);
}

static dsoStatus train_step(void* self, double* u, const dsoRunRecord* last, dsoRunRecord* r,
                            int* done, int* refused, dsoError* err) {
  TrainRun* t = self;
  *done = 0;
  *refused = DSO_RUN_STEP_OK;
  memset(&t->rep, 0, sizeof(t->rep));
  dsoStatus s = dso_train_step(t->tr, u, &t->rep, err);
  if (s) {
    if (t->rep.refused) {
      *refused = t->rep.refused == DSO_TRAIN_REFUSED_COST ? DSO_RUN_STEP_REFUSED_COST
                                                           : DSO_RUN_STEP_REFUSED;
    }
    return s;
  }
  const dsoTrainReport* rep = &t->rep;
  // rep.steps counts this iteration's steps
  dsoRunRecord rr = {(last ? last->iter : 0) + 1, rep->J + rep->data + rep->prior,
                     {rep->J, rep->prior, rep->diverged}, rep->grad_norm, t->ts.lr,
                     (last ? last->steps : 0) + rep->steps};
  if (t->datacost) {
    rr.term[1] = rep->data;
    rr.term[2] = rep->prior;
  }
  *r = rr;
  return DSO_OK;
}

static void train_get_state(void* self, double* lambda, double* opt) {
  TrainRun* t = self;
  *lambda = 0;
  dso_train_get_state(t->tr, opt);
}

static dsoStatus train_set_state(void* self, double lambda, const double* opt, dsoError* err) {
  (void)lambda;
  TrainRun* t = self;
  return opt ? dso_train_set_state(t->tr, opt, err) : DSO_OK;
}

static void train_header(void* self, dsoRunText* tx) {
  TrainRun* t = self;
  const dsoTask* task = t->task;
  dso_run_text_printf(tx, "dso run %s: %d entries, %d rollouts x %d steps per iteration, up to "
                      "%d iterations\n", t->name, task->theta->n, task->nrollout,
                      task->rollout.horizon, t->ts.max_iter);
  if (t->ts.clone > 0 || t->ts.hybrid > 0) {
    dso_run_text_printf(tx, "data-driven costs on %d recorded episodes (%ld samples): clone "
                        "weight %g, hybrid weight %g\n",
                        dso_dataset_nepisode(task->data) - dso_dataset_nvalidation(task->data),
                        dso_dataset_nsample(task->data), t->ts.clone, t->ts.hybrid);
  }
}

static void train_iteration(void* self, dsoRunText* tx, const dsoRunRecord* r, int done,
                            double rate, double eta) {
  (void)done;
  TrainRun* t = self;
  const dsoTrainReport* rep = &t->rep;
  dso_run_text_printf(tx, "iter %3d  J %.6e +- %.2g  ", r->iter, rep->J, rep->Jse);
  if (t->ts.clone > 0) dso_run_text_printf(tx, "clone %.4e  ", rep->clone);
  if (t->ts.hybrid > 0) dso_run_text_printf(tx, "hybrid %.4e  ", rep->hybrid);
  dso_run_text_printf(tx, "prior %.3e  |g| %.2e  %d diverged  %.3g steps/s  ETA %.0f s\n",
                      rep->prior, rep->grad_norm, rep->diverged, rate, eta);
}

// result.json: the common result plus the refused steps
static char* result_text(const dsoTheta* theta, const double* u0, const dsoRunState* st,
                         const char* const* parts, dsoError* err) {
  char* base = dso_run_result_json(theta, u0, st->u, NULL,
                                   st->nrecord ? &st->record[st->nrecord - 1] : NULL, parts, NULL,
                                   0, 0, err);
  char* text = base ? dso_run_result_add_train(base, st->refused, err) : NULL;
  free(base);
  return text;
}

static dsoStatus train_report(void* self, dsoRunCtx* ctx, const double* u0, const dsoRunState* st,
                              dsoRunText* wrote, dsoError* err) {
  TrainRun* t = self;
  const dsoTheta* theta = t->task->theta;
  char* result = result_text(theta, u0, st, t->datacost ? kTrainDataParts : kTrainParts, err);
  dsoStatus s = result ? dso_run_write_text(ctx, "result.json", result, err) : err->code;
  free(result);
  if (s || (s = dso_run_write_model(ctx, t->task, theta, st->u, err))) {
    return s;
  }
  dsoRunText tab = {0};
  dso_run_table(&tab, theta, "final", u0, st->u, u0, NULL, NULL, 0);
  dso_run_note(ctx, "%s", tab.s ? tab.s : "");
  dso_run_text_free(&tab);
  if (st->refused > 0) {
    dso_run_note(ctx, "%d step%s refused (non-finite cost, gradient or step; theta kept)\n",
                 st->refused, st->refused > 1 ? "s" : "");
  }
  dso_run_text_printf(wrote, "wrote %s/result.json, progress.csv, checkpoint.json, model.xml\n",
                      dso_run_ctx_outdir(ctx));
  return DSO_OK;
}

static dsoRunStop train_stop(void* self, int done) {
  (void)self;
  (void)done;
  return DSO_RUN_STOP_MAX_ITER;
}

static void train_destroy(void* self) {
  TrainRun* t = self;
  if (!t) return;
  dso_train_free(t->tr);
  free(t);
}

static const dsoRunOps kTrainOps = {
    .init = train_init,
    .step = train_step,
    .get_state = train_get_state,
    .set_state = train_set_state,
    .header = train_header,
    .iteration = train_iteration,
    .report = train_report,
    .stop = train_stop,
    .destroy = train_destroy,
};

dsoStatus dso_run_train_driver(dsoRunDriver* d, dsoTask* task, const dsoRunOptions* o,
                               const char* name, dsoError* err) {
  TrainRun* t = calloc(1, sizeof(TrainRun));
  if (!t) return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  t->task = task;
  t->name = name;
  dso_train_settings_default(&t->ts);
  if (task->train) t->ts = *task->train;  // read at load
  if (o->max_iter >= 0) t->ts.max_iter = o->max_iter;
  t->datacost = t->ts.clone > 0 || t->ts.hybrid > 0;
  t->tr = dso_train_create(task, &t->ts, err);
  if (!t->tr) {
    free(t);
    return err->code ? err->code : dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  }
  memset(d, 0, sizeof(*d));
  d->ops = &kTrainOps;
  d->self = t;
  d->kind = DSO_TASK_KIND_CHAIN;
  d->theta = task->theta;
  d->parts = t->datacost ? kTrainDataParts : kTrainParts;
  d->max_iter = t->ts.max_iter;
  d->lambda = 0;
  d->nopt = dso_train_state_size(t->tr);
  snprintf(d->refuse_setting, sizeof(d->refuse_setting), "train.lr %g", t->ts.lr);
  return DSO_OK;
}
