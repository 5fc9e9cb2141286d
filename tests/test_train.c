// Training of a MuJoCo chain task (train.h). Mechanism design (issue 5, application 3) on
// tasks/pendulum_design.json: on the same budget (iterations, rollouts, seeds) the policy alone
// and the policy with the physics (motor gear, centre of mass) both lower J, and the joint design
// ends lower, measured on a common evaluation batch (common random numbers). Reports are bitwise
// identical for 1 and 2 threads; bounds hold; fixed entries never move; a checkpointed state
// resumes bit-identically; the "train" settings parser rejects unknown keys. The score route
// (train.gradient "score") lowers J like the pathwise route and resumes bit-identically.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "mujoco/mjchain.h"
#include "chain/rollout.h"
#include "config/task.h"
#include "mujoco/theta.h"
#include "apps/train.h"
#include "config/train_section.h"

#define NITER 40
#define EVAL_ROLLOUTS 64
#define EVAL_KEY 100000

static dsoTask* load_task(void) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/pendulum_design.json", DSO_SOURCE_DIR);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(task);
  return task;
}

static void set_physics_fixed(dsoTask* task, int fixed) {
  for (int i = 0; i < task->theta->n; i++) {
    if (task->theta->entry[i].block == DSO_BLOCK_PHYSICS) task->theta->entry[i].fixed = fixed;
  }
}

static dsoTrainSettings settings(void) {
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.lr = 0.05;
  s.max_iter = NITER;
  return s;
}

// runs niter iterations from the task's initial θ; u (ntheta) receives the final θ, rep (niter)
// the reports
static void train(double* u, dsoTrainReport* rep, dsoTask* task, int nthread, int niter) {
  dsoError err = {0};
  task->rollout.nthread = nthread;
  dsoTrainSettings s = settings();
  dsoTrain* tr = dso_train_create(task, &s, &err);
  if (!tr) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(tr);
  dso_theta_init(task->theta, u);
  for (int k = 0; k < niter; k++) {
    dsoStatus st = dso_train_step(tr, u, &rep[k], &err);
    if (st) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, DSO_OK);
    assert_int_equal(rep[k].iter, k);
    assert_true(rep[k].steps > 0);
    if (getenv("DSO_TEST_VERBOSE")) {
      printf("    iter %2d J %9.4f prior %7.4f |g| %9.4f", k, rep[k].J, rep[k].prior,
             rep[k].grad_norm);
      for (int i = 0; i < task->theta->n; i++) {
        printf(" %8.4f", dso_theta_entry_natural(&task->theta->entry[i], u[i]));
      }
      printf("\n");
    }
  }
  assert_int_equal(dso_train_iter(tr), niter);
  dso_train_free(tr);
}

// J of a common evaluation batch at u (same key and seed for every design)
static double evaluate(const dsoTask* task, const double* u, double* se) {
  dsoError err = {0};
  dsoMjChain* mc = dso_task_chain(task, &err);
  assert_non_null(mc);
  dsoRolloutSettings rs = task->rollout;
  rs.seed = 12345;
  dsoRollout* ro = NULL;
  assert_int_equal(dso_rollout_create(&ro, &mc->chain, &rs, EVAL_ROLLOUTS, &err), DSO_OK);
  assert_int_equal(dso_rollout_run(ro, u, EVAL_KEY, &err), DSO_OK);
  double J = 0;
  dso_rollout_objective(&J, se, NULL, ro);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  return J;
}

static void check_bounds_and_fixed(const dsoTheta* th, const double* u) {
  double* u0 = malloc((size_t)th->n * sizeof(double));
  dso_theta_init(th, u0);
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    double v = dso_theta_entry_natural(e, u[i]);
    assert_true(isfinite(v));
    assert_true(v >= e->lower && v <= e->upper);
    if (e->fixed) assert_memory_equal(&u[i], &u0[i], sizeof(double));
  }
  free(u0);
}

static void print_design(const char* label, const dsoTheta* th, const double* u, double J,
                         double se) {
  printf("  %-12s J = %8.4f +- %.4f", label, J, se);
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (e->block == DSO_BLOCK_PHYSICS) {
      printf("  %s = %.4f", e->name, dso_theta_entry_natural(e, u[i]));
    }
  }
  printf("\n");
}

static double mean_J(const dsoTrainReport* rep, int from, int to) {
  double s = 0;
  for (int k = from; k < to; k++) s += rep[k].J;
  return s / (to - from);
}

static void test_mechanism_design(void** state) {
  (void)state;
  dsoTask* task = load_task();
  int n = task->theta->n;
  double* u0 = malloc((size_t)n * sizeof(double));
  double* up = malloc((size_t)n * sizeof(double));
  double* uj = malloc((size_t)n * sizeof(double));
  dsoTrainReport* rp = malloc(NITER * sizeof(dsoTrainReport));
  dsoTrainReport* rj = malloc(NITER * sizeof(dsoTrainReport));
  dso_theta_init(task->theta, u0);

  set_physics_fixed(task, 1);
  train(up, rp, task, 2, NITER);
  check_bounds_and_fixed(task->theta, up);
  set_physics_fixed(task, 0);
  train(uj, rj, task, 2, NITER);
  check_bounds_and_fixed(task->theta, uj);

  double se0, sep, sej;
  double J0 = evaluate(task, u0, &se0);
  double Jp = evaluate(task, up, &sep);
  double Jj = evaluate(task, uj, &sej);
  printf("  pendulum design, %d iterations x %d rollouts, evaluated on %d common rollouts:\n",
         NITER, task->nrollout, EVAL_ROLLOUTS);
  print_design("initial", task->theta, u0, J0, se0);
  print_design("policy only", task->theta, up, Jp, sep);
  print_design("joint", task->theta, uj, Jj, sej);
  printf("  training J: policy only %.4f -> %.4f, joint %.4f -> %.4f (means of first/last 5)\n",
         mean_J(rp, 0, 5), mean_J(rp, NITER - 5, NITER), mean_J(rj, 0, 5),
         mean_J(rj, NITER - 5, NITER));

  // both lower J; the joint design beats the policy alone
  assert_true(Jp < J0);
  assert_true(Jj < J0);
  assert_true(Jj < Jp);
  // also with the prior, the objective the joint run minimizes
  double Pj = dso_theta_prior(task->theta, NULL, uj), Pp = dso_theta_prior(task->theta, NULL, up);
  printf("  J + L_prior: policy only %.4f, joint %.4f\n", Jp + Pp, Jj + Pj);
  assert_true(Jj + Pj < Jp + Pp);
  assert_true(mean_J(rp, NITER - 5, NITER) < mean_J(rp, 0, 5));
  assert_true(mean_J(rj, NITER - 5, NITER) < mean_J(rj, 0, 5));
  // the policy-only run left the physics at the initial design
  for (int i = 0; i < n; i++) {
    if (task->theta->entry[i].block == DSO_BLOCK_PHYSICS) {
      assert_memory_equal(&up[i], &u0[i], sizeof(double));
    }
  }

  free(u0);
  free(up);
  free(uj);
  free(rp);
  free(rj);
  dso_task_free(task);
}

static void test_threads_bitwise(void** state) {
  (void)state;
  enum { K = 4 };
  dsoTask* task = load_task();
  int n = task->theta->n;
  double* u1 = malloc((size_t)n * sizeof(double));
  double* u2 = malloc((size_t)n * sizeof(double));
  dsoTrainReport r1[K], r2[K];
  memset(r1, 0, sizeof(r1));
  memset(r2, 0, sizeof(r2));
  train(u1, r1, task, 1, K);
  train(u2, r2, task, 2, K);
  assert_memory_equal(r1, r2, sizeof(r1));
  assert_memory_equal(u1, u2, (size_t)n * sizeof(double));
  check_bounds_and_fixed(task->theta, u1);
  free(u1);
  free(u2);
  dso_task_free(task);
}

// Checkpoint round trip: a trains `before` iterations from the task's initial θ (ua), its state
// (written to st) is restored into the fresh trainer b, and both run `after` more iterations with
// bitwise equal reports and θ (ua, ub: ntheta).
static void resume_matches(dsoTrain* a, dsoTrain* b, const dsoTheta* th, double* ua, double* ub,
                           double* st, int before, int after) {
  dsoError err = {0};
  dsoTrainReport ra, rb;
  dso_theta_init(th, ua);
  for (int k = 0; k < before; k++) assert_int_equal(dso_train_step(a, ua, &ra, &err), DSO_OK);
  dso_train_get_state(a, st);
  memcpy(ub, ua, (size_t)th->n * sizeof(double));
  assert_int_equal(dso_train_set_state(b, st, &err), DSO_OK);
  assert_int_equal(dso_train_iter(b), before);
  for (int k = 0; k < after; k++) {
    assert_int_equal(dso_train_step(a, ua, &ra, &err), DSO_OK);
    assert_int_equal(dso_train_step(b, ub, &rb, &err), DSO_OK);
    assert_memory_equal(&ra, &rb, sizeof(ra));
  }
  assert_memory_equal(ua, ub, (size_t)th->n * sizeof(double));
}

static void test_checkpoint_resume(void** state) {
  (void)state;
  dsoTask* task = load_task();
  task->rollout.nthread = 1;
  int n = task->theta->n;
  dsoError err = {0};
  dsoTrainSettings s = settings();
  double* ua = malloc((size_t)n * sizeof(double));
  double* ub = malloc((size_t)n * sizeof(double));
  dsoTrain* a = dso_train_create(task, &s, &err);
  dsoTrain* b = dso_train_create(task, &s, &err);
  assert_non_null(a);
  assert_non_null(b);
  int ns = dso_train_state_size(a);
  assert_int_equal(ns, 3 * n + 2);
  double* st = malloc((size_t)ns * sizeof(double));
  resume_matches(a, b, task->theta, ua, ub, st, 2, 2);
  // a broken state is refused
  st[ns - 1] = -1;
  dsoError e2 = {0};
  assert_int_equal(dso_train_set_state(b, st, &e2), DSO_ERR_INPUT);
  assert_non_null(strstr(e2.msg, "state["));
  free(st);
  free(ua);
  free(ub);
  dso_train_free(a);
  dso_train_free(b);
  dso_train_free(NULL);
  dso_task_free(task);
}

// A step whose new θ would not be finite (a step size of 1e308) or whose cost is not finite (a
// prior std of 1e-200 once the entry has left its prior mean) is refused with DSO_ERR_NUMERIC: θ
// and the trainer state stay as they were except the iteration count, which moves on to a new
// batch, and the refusal is counted.
static void test_refused_steps(void** state) {
  (void)state;
  dsoTask* task = load_task();
  task->rollout.nthread = 1;
  int n = task->theta->n;
  dsoError err = {0};
  dsoTrainSettings s = settings();
  s.lr = 1e308;
  dsoTrain* tr = dso_train_create(task, &s, &err);
  assert_non_null(tr);
  int ns = dso_train_state_size(tr);
  double* u = malloc((size_t)n * sizeof(double));
  double* u_before = malloc((size_t)n * sizeof(double));
  double* st0 = malloc((size_t)ns * sizeof(double));
  double* st1 = malloc((size_t)ns * sizeof(double));
  dso_theta_init(task->theta, u);
  // Adam's first step moves each free entry by about lr: within three steps one overflows
  int refused = 0;
  for (int k = 0; k < 3 && !refused; k++) {
    memcpy(u_before, u, (size_t)n * sizeof(double));
    dso_train_get_state(tr, st0);
    dsoTrainReport rep;
    dsoError e = {0};
    dsoStatus r = dso_train_step(tr, u, &rep, &e);
    if (r == DSO_OK) {
      assert_int_equal(rep.refused, 0);
      continue;
    }
    refused = 1;
    assert_int_equal(r, DSO_ERR_NUMERIC);
    assert_int_equal(rep.refused, DSO_TRAIN_REFUSED_STEP);
    assert_non_null(strstr(e.msg, "train.lr 1e+308"));
    assert_non_null(strstr(e.msg, "step refused"));
    assert_memory_equal(u, u_before, (size_t)n * sizeof(double));
    dso_train_get_state(tr, st1);
    assert_true(st1[3 * n + 1] == st0[3 * n + 1] + 1);  // the next call draws a new batch
    st1[3 * n + 1] = st0[3 * n + 1];
    assert_memory_equal(st1, st0, (size_t)ns * sizeof(double));
    assert_int_equal(dso_train_iter(tr), k + 1);
    assert_int_equal(dso_train_refused(tr), 1);
  }
  assert_true(refused);
  dso_train_free(tr);
  // a prior std of 1e-200 on the gear: fine at its prior mean (the initial value), not once a
  // step moved it
  int g = dso_theta_find(task->theta, "physics.torque.gear[0]");
  assert_true(g >= 0);
  task->theta->entry[g].prior_std = 1e-200;
  s = settings();
  tr = dso_train_create(task, &s, &err);
  assert_non_null(tr);
  dso_theta_init(task->theta, u);
  dsoTrainReport rep;
  assert_int_equal(dso_train_step(tr, u, &rep, &err), DSO_OK);
  assert_true(rep.prior == 0);
  memcpy(u_before, u, (size_t)n * sizeof(double));
  dso_train_get_state(tr, st0);
  assert_int_equal(dso_train_step(tr, u, &rep, &err), DSO_ERR_NUMERIC);
  assert_int_equal(rep.refused, DSO_TRAIN_REFUSED_COST);
  assert_false(isfinite(rep.prior));
  assert_non_null(strstr(err.msg, "physics.torque.gear[0]"));
  assert_non_null(strstr(err.msg, "std 1e-200"));
  assert_memory_equal(u, u_before, (size_t)n * sizeof(double));
  dso_train_get_state(tr, st1);
  assert_true(st1[3 * n + 1] == st0[3 * n + 1] + 1);
  assert_int_equal(dso_train_refused(tr), 1);
  free(u);
  free(u_before);
  free(st0);
  free(st1);
  dso_train_free(tr);
  dso_task_free(task);
}

// R-MDP schedule (paper section 4.3): a pendulum task whose cost holds a proximal term
// KL(π_old || π_θ) (cost.h) beside a state cost; written to a temporary file
static dsoTask* proximal_task(int with_proximal) {
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_train_proximal", ".json");
  assert_true(fd >= 0);
  FILE* f = fdopen(fd, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"model\": \"%s/models/pendulum.xml\", \"policy\": {\"type\": \"linear\"},\n"
          " \"chain\": {\"init_qpos\": {\"hinge\": 0.5}, \"init_std_qpos\": {\"hinge\": 0.2}},\n"
          " \"cost\": [{\"term\": \"quadratic\", \"qpos_weight\": {\"hinge\": 1}}%s],\n"
          " \"rollout\": {\"horizon\": 60, \"rollouts\": 8, \"threads\": 1, \"seed\": 4},\n"
          " \"theta\": [{\"name\": \"action_noise.torque.std\", \"init\": 0.3}]}\n",
          DSO_SOURCE_DIR, with_proximal ? ", {\"term\": \"proximal\", \"weight\": 1}" : "");
  fclose(f);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  remove(path);
  if (!task) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(task);
  return task;
}

// runs niter iterations with the given refresh period; u receives θ, J (niter) the batch J
static void train_proximal(double* u, double* J, dsoTask* task, int every, int niter) {
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.lr = 0.1;
  s.proximal_every = every;
  dsoError err = {0};
  dsoTrain* tr = dso_train_create(task, &s, &err);
  assert_non_null(tr);
  dso_theta_init(task->theta, u);
  for (int k = 0; k < niter; k++) {
    dsoTrainReport rep;
    assert_int_equal(dso_train_step(tr, u, &rep, &err), DSO_OK);
    J[k] = rep.J;
  }
  dso_train_free(tr);
}

static void test_proximal_schedule(void** state) {
  (void)state;
  dsoTask* plain = proximal_task(0);
  dsoTask* prox = proximal_task(1);
  int n = prox->theta->n;
  assert_int_equal(plain->theta->n, n);
  double u0[8], u1[8], up[8], J0[6], J1[6], Jp[6];
  assert_true(n <= 8);
  train_proximal(u0, J0, plain, 0, 6);
  // refreshed before every batch, θ_old = θ: the term and its gradient vanish (KL of a density
  // from itself), so the run follows the plain one up to rounding (the σ part of the gradient,
  // 1/σ − σ_old²/σ³, is zero only to rounding, and Adam and the pendulum amplify it: 3e-12
  // relative in J after 5 iterations)
  train_proximal(u1, J1, prox, 1, 6);
  for (int k = 0; k < 6; k++) {
    assert_true(fabs(J1[k] - J0[k]) <= 1e-9 * fabs(J0[k]));
  }
  for (int i = 0; i < n; i++) assert_true(fabs(u1[i] - u0[i]) <= 1e-8 * (1 + fabs(u0[i])));
  // never refreshed, θ_old stays the initial θ: the term pulls θ back and the run departs
  train_proximal(up, Jp, prox, 0, 6);
  assert_true(Jp[0] == J0[0]);  // θ = θ_old at the start
  double dmax = 0;
  for (int i = 0; i < n; i++) dmax = fmax(dmax, fabs(up[i] - u0[i]));
  printf("proximal: refreshed every batch |dJ| <= 1e-9 J; held at the start, |du| = %.3g\n",
         dmax);
  assert_true(dmax > 1e-4);
  // the reference is part of the trainer state: resumed across a refresh, bitwise identical
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.lr = 0.1;
  s.proximal_every = 3;
  dsoError err = {0};
  dsoTrain* a = dso_train_create(prox, &s, &err);
  dsoTrain* b = dso_train_create(prox, &s, &err);
  assert_non_null(a);
  assert_non_null(b);
  double ua[8], ub[8], st[3 * 8 + 2];
  assert_int_equal(dso_train_state_size(a), 3 * n + 2);
  resume_matches(a, b, prox->theta, ua, ub, st, 4, 4);
  dso_train_free(a);
  dso_train_free(b);
  dso_task_free(plain);
  dso_task_free(prox);
}

// The score route (train.gradient "score": Algorithm 1 with a state baseline fitted on the
// earlier batches, eq. 59) on the pendulum task of proximal_task(0): it lowers J as the pathwise
// route does on the same budget; several Adam steps per batch on the clipped surrogate of eq. 66
// (train.epochs) get further on the same batches, and so do natural-gradient steps
// (train.optimizer "natural"); reports are bitwise identical for 1 and 2 threads; the baseline
// is part of the trainer state, so a run resumed from a checkpoint stays bit-identical; a free
// physics entry, which the action density does not depend on, is refused by name.
static void run_opt(double* u, double* J, dsoTask* task, dsoTrainGradient route, int epochs,
                    dsoTrainOptimizer opt, double lr, int nthread, int niter) {
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.lr = lr;
  s.gradient = route;
  s.epochs = epochs;
  s.optimizer = opt;
  task->rollout.nthread = nthread;
  dsoError err = {0};
  dsoTrain* tr = dso_train_create(task, &s, &err);
  if (!tr) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(tr);
  dso_theta_init(task->theta, u);
  for (int k = 0; k < niter; k++) {
    dsoTrainReport rep;
    dsoStatus st = dso_train_step(tr, u, &rep, &err);
    if (st) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, DSO_OK);
    J[k] = rep.J;
  }
  dso_train_free(tr);
}

static void run_route(double* u, double* J, dsoTask* task, dsoTrainGradient route, int epochs,
                      int nthread, int niter) {
  run_opt(u, J, task, route, epochs, DSO_TRAIN_ADAM, 0.05, nthread, niter);
}

static void test_score_route(void** state) {
  (void)state;
  enum { K = 60, KS = 15, KN = 30 };
  dsoTask* task = load_task();
  set_physics_fixed(task, 1);
  int n = task->theta->n;
  assert_true(n <= 16);
  double u0[16], us[16], up[16], u1[16], Js[K], Jp[K], J1[K];
  dso_theta_init(task->theta, u0);
  run_route(us, Js, task, DSO_TRAIN_SCORE, 1, 2, K);
  run_route(up, Jp, task, DSO_TRAIN_PATHWISE, 1, 2, K);
  double se0, ses, sep;
  double E0 = evaluate(task, u0, &se0), Es = evaluate(task, us, &ses), Ep = evaluate(task, up, &sep);
  printf("  pendulum, %d iterations x %d rollouts: J (common evaluation batch) initial %.4f +- "
         "%.4f, score route %.4f +- %.4f, pathwise route %.4f +- %.4f\n", K, task->nrollout, E0,
         se0, Es, ses, Ep, sep);
  // both routes lower J by far more than the evaluation noise; the score route, the noisier
  // estimate, ends within a factor 1.5 of the pathwise route's excess over zero cost
  assert_true(Es < E0 - 10 * (se0 + ses));
  assert_true(Ep < E0 - 10 * (se0 + sep));
  assert_true(Es < 1.5 * Ep);
  // Proximal Chain Optimization: 4 Adam steps per batch on the clipped surrogate (eq. 66) get
  // further on the same KS batches than one step each
  double ua1[16], ue[16], Ja1[KS], Je[KS], ue1[16], Je1[KS];
  run_route(ua1, Ja1, task, DSO_TRAIN_SCORE, 1, 2, KS);
  run_route(ue, Je, task, DSO_TRAIN_SCORE, 4, 2, KS);
  double sea1, see, Ea1 = evaluate(task, ua1, &sea1), Ee = evaluate(task, ue, &see);
  printf("  after %d batches: 1 step per batch %.4f +- %.4f, 4 surrogate steps per batch (clip "
         "0.2) %.4f +- %.4f\n", KS, Ea1, sea1, Ee, see);
  assert_true(Ee < Ea1 - 4 * (sea1 + see));
  run_route(ue1, Je1, task, DSO_TRAIN_SCORE, 4, 1, KS);
  assert_memory_equal(Je1, Je, sizeof(Je));
  assert_memory_equal(ue1, ue, (size_t)n * sizeof(double));
  // natural gradient (section 4.4, eq. 72 Fisher, damped solve over the free entries) against Adam
  // on the same KN batches
  double un[16], Jn[KN], ua30[16], Ja30[KN], un1[16], Jn1[KN];
  run_opt(un, Jn, task, DSO_TRAIN_SCORE, 1, DSO_TRAIN_NATURAL, 0.3, 2, KN);
  run_route(ua30, Ja30, task, DSO_TRAIN_SCORE, 1, 2, KN);
  double sen, sea30, En = evaluate(task, un, &sen), Ea30 = evaluate(task, ua30, &sea30);
  printf("  after %d batches: natural gradient (lr 0.3) %.4f +- %.4f, Adam %.4f +- %.4f\n", KN, En,
         sen, Ea30, sea30);
  assert_true(En < Ea30 - 4 * (sen + sea30));
  run_opt(un1, Jn1, task, DSO_TRAIN_SCORE, 1, DSO_TRAIN_NATURAL, 0.3, 1, KN);
  assert_memory_equal(Jn1, Jn, sizeof(Jn));
  assert_memory_equal(un1, un, (size_t)n * sizeof(double));
  // bitwise identical for 1 and 2 threads
  run_route(u1, J1, task, DSO_TRAIN_SCORE, 1, 1, K);
  assert_memory_equal(J1, Js, sizeof(Js));
  assert_memory_equal(u1, us, (size_t)n * sizeof(double));
  // checkpoint: the baseline travels in the state
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.gradient = DSO_TRAIN_SCORE;
  s.epochs = 3;
  dsoError err = {0};
  dsoTrain* a = dso_train_create(task, &s, &err);
  dsoTrain* b = dso_train_create(task, &s, &err);
  assert_non_null(a);
  assert_non_null(b);
  int ns = dso_train_state_size(a);
  assert_true(ns > 3 * n + 2);
  double* st = malloc((size_t)ns * sizeof(double));
  double ua[16], ub[16];
  dsoTrainReport ra;
  resume_matches(a, b, task->theta, ua, ub, st, 3, 3);
  // without the baseline part the resumed run would differ: a zeroed baseline is not the same
  // state (the check that the baseline is really in it)
  dsoTrain* c = dso_train_create(task, &s, &err);
  assert_non_null(c);
  dso_train_get_state(a, st);
  for (int i = 3 * n + 2; i < ns; i++) st[i] = 0;
  assert_int_equal(dso_train_set_state(c, st, &err), DSO_OK);
  double uc[16];
  memcpy(uc, ua, sizeof(ua));
  dsoTrainReport rc;
  assert_int_equal(dso_train_step(a, ua, &ra, &err), DSO_OK);
  assert_int_equal(dso_train_step(c, uc, &rc, &err), DSO_OK);
  assert_true(memcmp(ua, uc, (size_t)n * sizeof(double)) != 0);
  // a broken baseline part is refused, naming its index
  st[3 * n + 2] = NAN;
  dsoError e1 = {0};
  assert_int_equal(dso_train_set_state(b, st, &e1), DSO_ERR_INPUT);
  char want[32];
  snprintf(want, sizeof(want), "state[%d]", 3 * n + 2);
  assert_non_null(strstr(e1.msg, want));
  free(st);
  dso_train_free(a);
  dso_train_free(b);
  dso_train_free(c);
  // the average-cost setting: the score route takes it, the pathwise route is refused at creation
  task->rollout.setting = DSO_AVERAGE;
  task->rollout.burn_in = 50;
  task->rollout.window = 50;
  double uv[16], Jv[10];
  run_route(uv, Jv, task, DSO_TRAIN_SCORE, 4, 2, 10);
  printf("  average-cost setting, score route, 4 steps per batch: batch J %.4f -> %.4f\n", Jv[0],
         Jv[9]);
  assert_true(Jv[9] < 0.5 * Jv[0]);
  dsoTrainSettings sp;
  dso_train_settings_default(&sp);
  dsoError e3 = {0};
  assert_null(dso_train_create(task, &sp, &e3));
  assert_non_null(strstr(e3.msg, "rollout.setting"));
  task->rollout.setting = DSO_EPISODIC;
  // a free physics entry has no score gradient
  dsoTask* design = task;
  set_physics_fixed(design, 0);
  dsoError e2 = {0};
  assert_null(dso_train_create(design, &s, &e2));
  assert_int_equal(e2.code, DSO_ERR_INPUT);
  assert_non_null(strstr(e2.msg, "train.gradient"));
  assert_non_null(strstr(e2.msg, "physics."));
  set_physics_fixed(design, 1);
  dsoTrain* d = dso_train_create(design, &s, &err);
  assert_non_null(d);
  dso_train_free(d);
  dso_task_free(design);
}

// the "train" section is read at load into typed settings (config/train_section.h), held by the
// task as task->train (NULL without the section); absent keys keep the defaults
static void test_task_section(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/cartpole_swingup_score.json",
                                   DSO_TASK_SKIP_DATA, &err);
  if (!t) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(t);
  assert_non_null(t->train);
  assert_int_equal(t->train->max_iter, 1000);
  assert_true(t->train->lr == 0.01 && t->train->clip == 0.2);
  assert_int_equal(t->train->gradient, DSO_TRAIN_SCORE);
  assert_int_equal(t->train->epochs, 10);
  assert_int_equal(t->train->optimizer, DSO_TRAIN_ADAM);  // the default
  assert_true(t->train->beta2 == 0.999);
  assert_null(t->fit);
  assert_null(t->estimator);
  assert_int_equal(dso_train_settings_check(t->train, t->path, &err), DSO_OK);
  dso_task_free(t);
  // the typed check names the key and the file
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  s.beta1 = 1;
  assert_int_equal(dso_train_settings_check(&s, "x.json", &err), DSO_ERR_INPUT);
  assert_string_equal(err.msg, "x.json: train.beta1: expected a number in [0, 1), got 1");
}

static void test_settings_json(void** state) {
  (void)state;
  dsoTrainSettings s;
  dsoError err = {0};
  assert_int_equal(dso_train_settings_from_json(
                       &s, "{\"max_iter\": 7, \"lr\": 0.2, \"beta1\": 0.5, \"seed\": 9}", "t.json",
                       &err),
                   DSO_OK);
  assert_int_equal(s.max_iter, 7);
  assert_true(s.lr == 0.2 && s.beta1 == 0.5 && s.beta2 == 0.999 && s.seed == 9);
  dsoError e1 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"rate\": 1}", "t.json", &e1),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e1.msg, "t.json"));
  assert_non_null(strstr(e1.msg, "rate"));
  dsoError e2 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"lr\": -1}", "t.json", &e2), DSO_ERR_INPUT);
  assert_non_null(strstr(e2.msg, "train.lr"));
  dsoError e3 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"max_iter\": 2.5}", "t.json", &e3),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e3.msg, "max_iter"));
  assert_true(s.lr == 0.05 && s.max_iter == 100);  // defaults on error
  assert_int_equal(dso_train_settings_from_json(&s, "{\"proximal_every\": 4}", "t.json", &err),
                   DSO_OK);
  assert_int_equal(s.proximal_every, 4);
  dsoError e4 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"proximal_every\": -1}", "t.json", &e4),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e4.msg, "train.proximal_every"));
  assert_int_equal(dso_train_settings_from_json(&s, "{\"gradient\": \"score\"}", "t.json", &err),
                   DSO_OK);
  assert_int_equal(s.gradient, DSO_TRAIN_SCORE);
  assert_int_equal(dso_train_settings_from_json(&s, "{}", "t.json", &err), DSO_OK);
  assert_int_equal(s.gradient, DSO_TRAIN_PATHWISE);
  dsoError e5 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"gradient\": \"reinforce\"}", "t.json",
                                                &e5),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e5.msg, "train.gradient"));
  assert_non_null(strstr(e5.msg, "reinforce"));
  dsoError e6 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"gradient\": 1}", "t.json", &e6),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e6.msg, "gradient"));
  assert_int_equal(dso_train_settings_from_json(
                       &s, "{\"gradient\": \"score\", \"epochs\": 8, \"clip\": 0.1}", "t.json",
                       &err),
                   DSO_OK);
  assert_true(s.epochs == 8 && s.clip == 0.1);
  dsoError e7 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"epochs\": 4}", "t.json", &e7),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e7.msg, "train.epochs"));
  assert_non_null(strstr(e7.msg, "score"));
  dsoError e8 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"gradient\": \"score\", \"clip\": 1}",
                                                "t.json", &e8),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e8.msg, "train.clip"));
  dsoError e9 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"epochs\": 0}", "t.json", &e9),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e9.msg, "epochs"));
  assert_int_equal(dso_train_settings_from_json(
                       &s, "{\"gradient\": \"score\", \"optimizer\": \"natural\", "
                           "\"damping\": 0.1}", "t.json", &err),
                   DSO_OK);
  assert_true(s.optimizer == DSO_TRAIN_NATURAL && s.damping == 0.1);
  dsoError e10 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"optimizer\": \"natural\"}", "t.json",
                                                &e10),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e10.msg, "train.optimizer"));
  assert_non_null(strstr(e10.msg, "score"));
  dsoError e11 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"optimizer\": \"lbfgs\"}", "t.json",
                                                &e11),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e11.msg, "lbfgs"));
  dsoError e12 = {0};
  assert_int_equal(dso_train_settings_from_json(&s, "{\"damping\": 0}", "t.json", &e12),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(e12.msg, "train.damping"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_settings_json),
      cmocka_unit_test(test_task_section),
      cmocka_unit_test(test_checkpoint_resume),
      cmocka_unit_test(test_refused_steps),
      cmocka_unit_test(test_proximal_schedule),
      cmocka_unit_test(test_score_route),
      cmocka_unit_test(test_threads_bitwise),
      cmocka_unit_test(test_mechanism_design),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
