// The MDP families of section 2.1 on one pendulum task (tasks/pendulum_lmdp.json: balance upright,
// MLP policy and action noise std learned together), each trained on the same budget (iterations,
// rollouts, seeds) with Adam on the pathwise gradient (train.h), differing only in the policy part
// of the step cost (cost.h):
//   S-MDP  r(x) + w a²            effort of the applied control (eq. 17)
//   D-MDP  r(x) + w clip(μ)²      effort at the clipped policy mean (eq. 18)
//   L-MDP  r(x) + w_L KL(π || p̄)  passive noise σ̄ = 0.5, w_L = 2 w σ̄² so that its μ²/(2σ̄²) part
//                                  prices the mean as the effort term does (eqs. 21, 97)
//   H-MDP  r(x) + w a² − w_H H[π]  S-MDP plus an entropy bonus (eq. 19)
// with r(x) = (q − π)² + 0.01 q̇² and w = 0.01. Every final θ is then scored on one evaluation
// batch (common random numbers) with the S-MDP cost, which is what a user of the controller pays;
// the table prints that J with its standard error, the variant's own objective, the final action
// noise std and the time.
//   usage: bench_policy_costs [iterations (default 60)] [evaluation rollouts (default 256)]
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dso_internal.h"
#include "config/cost_json.h"
#include "apps/train.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#define STATE_COST                                                                              \
  "{\"term\": \"quadratic\", \"qpos\": {\"hinge\": 3.14159265}, \"qpos_weight\": {\"hinge\": 1}," \
  " \"qvel_weight\": {\"hinge\": 0.01}}"

static const char* kNames[4] = {"S-MDP", "D-MDP", "L-MDP", "H-MDP"};
static const char* kCosts[4] = {
    "[" STATE_COST ", {\"term\": \"effort\", \"weight\": 0.01}]",
    "[" STATE_COST ", {\"term\": \"effort\", \"weight\": 0.01, \"action\": \"mean\"}]",
    "[" STATE_COST ", {\"term\": \"kl\", \"weight\": 0.005, \"std\": 0.5}]",
    "[" STATE_COST ", {\"term\": \"effort\", \"weight\": 0.01},"
    " {\"term\": \"entropy\", \"weight\": 0.002}]",
};

static void die(const dsoError* err) {
  fprintf(stderr, "bench_policy_costs: %s\n", err->msg);
  exit(1);
}

// J ± se of u on the evaluation batch of chain mc (seed and key fixed: common random numbers);
// per (N) receives the rollouts' costs
static void evaluate(double* J, double* se, double* per, const dsoMjChain* mc,
                     const dsoTask* task, const double* u, int N) {
  dsoRolloutSettings rs = task->rollout;
  rs.seed = 1000;
  dsoRollout* ro = NULL;
  dsoError err = {0};
  if (dso_rollout_create(&ro, &mc->chain, &rs, N, &err) ||
      dso_rollout_run(ro, u, 7, &err)) {
    die(&err);
  }
  dso_rollout_objective(J, se, per, ro);
  dso_rollout_free(ro);
}

int main(int argc, char** argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 60;
  int neval = argc > 2 ? atoi(argv[2]) : 256;
  if (iters < 1 || neval < 2) {
    fprintf(stderr, "usage: bench_policy_costs [iterations >= 1] [evaluation rollouts >= 2]\n");
    return 2;
  }
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/pendulum_lmdp.json", DSO_SOURCE_DIR);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) die(&err);
  int n = task->theta->n;
  int istd = -1;
  for (int i = 0; i < n; i++) {
    if (task->theta->entry[i].bind.kind == DSO_BIND_ACTION_STD) istd = i;
  }
  double* u = calloc((size_t)n, sizeof(double));
  double* uf[4];
  double own[4], sec[4];
  dsoCost* task_cost = task->cost;
  dsoCost* costs[4];
  for (int v = 0; v < 4; v++) {
    costs[v] = dso_cost_from_json(task->model, kCosts[v], "bench", "cost", &err);
    if (!costs[v]) die(&err);
  }
  printf("pendulum balance (tasks/pendulum_lmdp.json), %d iterations x %d rollouts x %d steps, "
         "same seeds; evaluation: %d rollouts, S-MDP cost, common random numbers\n",
         iters, task->nrollout, task->rollout.horizon, neval);
  dsoTrainSettings ts;
  dso_train_settings_default(&ts);
  if (task->train) ts = *task->train;  // the task's "train" section, read at load
  ts.max_iter = iters;
  for (int v = 0; v < 4; v++) {
    task->cost = costs[v];
    dsoTrain* tr = dso_train_create(task, &ts, &err);
    if (!tr) die(&err);
    dso_theta_init(task->theta, u);
    double t0 = now();
    dsoTrainReport rep = {0};
    for (int k = 0; k < iters; k++) {
      if (dso_train_step(tr, u, &rep, &err)) die(&err);
    }
    sec[v] = now() - t0;
    own[v] = rep.J;
    dso_train_free(tr);
    uf[v] = malloc(sizeof(double) * (size_t)n);
    memcpy(uf[v], u, sizeof(double) * (size_t)n);
  }
  // one evaluation chain with the S-MDP cost
  task->cost = costs[0];
  dsoMjChain* mc = dso_task_chain(task, &err);
  if (!mc) die(&err);
  double J0, se0;
  double* per0 = calloc((size_t)neval, sizeof(double));
  double* per = calloc((size_t)neval, sizeof(double));
  dso_theta_init(task->theta, u);
  evaluate(&J0, &se0, per0, mc, task, u, neval);
  printf("%-6s %22s %22s %18s %10s %7s\n", "family", "J (S-MDP cost) +- se", "J - J(S-MDP) +- se",
         "own J, last batch", "noise std", "time s");
  printf("%-6s %13.3f +- %6.3f %22s %18s %10.4f %7s\n", "start", J0, se0, "-", "-",
         istd >= 0 ? dso_theta_entry_natural(&task->theta->entry[istd], u[istd]) : 0.0, "-");
  for (int v = 0; v < 4; v++) {
    double J, se, d = 0, d2 = 0;
    evaluate(&J, &se, per, mc, task, uf[v], neval);
    if (v == 0) memcpy(per0, per, sizeof(double) * (size_t)neval);
    // the paired difference to S-MDP: the same initial states and noise in every rollout
    for (int r = 0; r < neval; r++) {
      d += per[r] - per0[r];
      d2 += (per[r] - per0[r]) * (per[r] - per0[r]);
    }
    d /= neval;
    double dse = sqrt(fmax(d2 / neval - d * d, 0) / (neval - 1));
    printf("%-6s %13.3f +- %6.3f %13.3f +- %6.3f %18.3f %10.4f %7.2f\n", kNames[v], J, se, d,
           dse, own[v],
           istd >= 0 ? dso_theta_entry_natural(&task->theta->entry[istd], uf[v][istd]) : 0.0,
           sec[v]);
    free(uf[v]);
  }
  free(per0);
  free(per);
  dso_mjchain_free(mc);
  task->cost = task_cost;
  for (int v = 0; v < 4; v++) dso_cost_free(costs[v]);
  free(u);
  dso_task_free(task);
  return 0;
}
