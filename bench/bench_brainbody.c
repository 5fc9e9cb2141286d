// Benchmark: brain-body dynamics (paper section 5.2, eq. 100) on the pendulum that sees only its
// noisy joint angle. Trains, with the task's own Adam settings (train.h) and the full budget,
//   rnn + body     tasks/pendulum_brainbody.json: recurrent policy, hinge damping and motor gear
//   static + body  tasks/pendulum_brainbody_static.json: linear policy, same design entries
//   rnn            the recurrent task with the design entries held at the pendulum as built
//   static         the static task with the design entries held
// for several training seeds each, and prints per configuration: the batch J at iteration
// milestones (mean over seeds), then the final θ evaluated on one common batch (same seed and
// iteration key for every configuration): J ± standard error per seed, L_prior, the design values,
// the samples (simulated transitions) used and the wall time; and the mean over seeds ± its
// standard error (the spread of the training seeds).
//
//   bench_brainbody [iterations (task's train.max_iter)] [seeds (3)] [eval rollouts (256)]
//
// Exit status 1 when a run fails.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dso_internal.h"
#include "apps/train.h"

#define MAX_SEEDS 32
#define EVAL_SEED 424242
#define EVAL_KEY 1000000

typedef struct {
  const char* label;
  const char* task;
  int design;  // 1: physics entries free, 0: held at their initial values
} dsoConfig;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// J ± se of the common evaluation batch at u
static dsoStatus evaluate(double* J, double* se, const dsoTask* task, const double* u, int nroll,
                          dsoError* err) {
  dsoMjChain* mc = dso_task_chain(task, err);
  if (!mc) return err->code;
  dsoRolloutSettings rs = task->rollout;
  rs.seed = EVAL_SEED;
  dsoRollout* ro = NULL;
  dsoStatus st = dso_rollout_create(&ro, &mc->chain, &rs, nroll, err);
  if (!st) st = dso_rollout_run(ro, u, EVAL_KEY, err);
  if (!st) dso_rollout_objective(J, se, NULL, ro);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  return st;
}

static double mean_se(double* se, const double* x, int n) {
  double m = 0, v = 0;
  for (int i = 0; i < n; i++) m += x[i];
  m /= n;
  for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
  *se = n > 1 ? sqrt(v / (n - 1) / n) : 0;
  return m;
}

static int bench(const dsoConfig* c, int niter, int nseed, int neval) {
  static const int kMilestones[] = {1, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 1000};
  const int nmile = (int)(sizeof(kMilestones) / sizeof(kMilestones[0]));
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DSO_SOURCE_DIR, c->task);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) {
    fprintf(stderr, "bench_brainbody: %s\n", err.msg);
    return 1;
  }
  dsoTrainSettings set;
  dso_train_settings_default(&set);
  if (task->train) set = *task->train;  // the task's "train" section, read at load
  if (niter <= 0) niter = set.max_iter;
  int n = task->theta->n, np = 0;
  for (int i = 0; i < n; i++) {
    dsoThetaEntry* e = &task->theta->entry[i];
    if (e->block == DSO_BLOCK_PHYSICS && !c->design) e->fixed = 1;
    if (e->block == DSO_BLOCK_POLICY) np++;
  }
  double* u = malloc((size_t)n * sizeof(double));
  double* Jit = calloc((size_t)niter, sizeof(double));  // (niter) batch J summed over seeds
  double Jev[MAX_SEEDS], Pev[MAX_SEEDS], Tev[MAX_SEEDS];
  int fail = 0;
  long steps_all = 0;
  printf("\n%s: %s, %d policy entries, physics %s; %d iterations x %d rollouts x %d steps, "
         "lr %g, %d seeds\n",
         c->label, c->task, np, c->design ? "optimized" : "held", niter, task->nrollout,
         task->rollout.horizon, set.lr, nseed);
  for (int s = 0; s < nseed && !fail; s++) {
    dsoTrainSettings ss = set;
    ss.seed = task->rollout.seed + (uint64_t)s;
    dsoTrain* tr = dso_train_create(task, &ss, &err);
    if (!tr) {
      fail = 1;
      break;
    }
    dso_theta_init(task->theta, u);
    long steps = 0;
    double t0 = now();
    for (int k = 0; k < niter; k++) {
      dsoTrainReport rep;
      if (dso_train_step(tr, u, &rep, &err) != DSO_OK) {
        fail = 1;
        break;
      }
      Jit[k] += rep.J;
      steps += rep.steps;
    }
    double secs = now() - t0;
    steps_all += steps;
    dso_train_free(tr);
    double se = 0;
    if (fail || evaluate(&Jev[s], &se, task, u, neval, &err) != DSO_OK) {
      fail = 1;
      break;
    }
    Pev[s] = dso_theta_prior(task->theta, NULL, u);
    Tev[s] = Jev[s] + Pev[s];
    printf("  seed %-3llu final J = %8.4f +- %.4f  L_prior = %7.4f  J + L_prior = %8.4f ",
           (unsigned long long)ss.seed, Jev[s], se, Pev[s], Tev[s]);
    for (int i = 0; i < n; i++) {
      const dsoThetaEntry* e = &task->theta->entry[i];
      if (e->block == DSO_BLOCK_PHYSICS) {
        printf(" %s = %.3g", e->name, dso_theta_entry_natural(e, u[i]));
      }
    }
    printf("  samples %ld  %.1f s\n", steps, secs);
  }
  if (fail) {
    fprintf(stderr, "bench_brainbody: %s: %s\n", c->label, err.msg);
  } else {
    printf("  batch J (mean over seeds) at iteration:");
    int last = 0;
    for (int m = 0; m < nmile && kMilestones[m] <= niter; m++) {
      last = kMilestones[m];
      printf(" %d: %.3f", last, Jit[last - 1] / nseed);
    }
    if (last != niter) printf(" %d: %.3f", niter, Jit[niter - 1] / nseed);
    double sj, sp, st;
    double mj = mean_se(&sj, Jev, nseed), mp = mean_se(&sp, Pev, nseed);
    double mt = mean_se(&st, Tev, nseed);
    printf("\n  %s: final J on %d common rollouts, mean over %d seeds: %.4f +- %.4f; "
           "L_prior %.4f +- %.4f; J + L_prior %.4f +- %.4f; samples per run %ld%s\n",
           c->label, neval, nseed, mj, sj, mp, sp, mt, st, steps_all / nseed,
           nseed > 1 ? "" : " (one seed: no spread over seeds)");
  }
  free(u);
  free(Jit);
  dso_task_free(task);
  return fail;
}

int main(int argc, char** argv) {
  int niter = argc > 1 ? atoi(argv[1]) : 0;
  int nseed = argc > 2 ? atoi(argv[2]) : 3;
  int neval = argc > 3 ? atoi(argv[3]) : 256;
  if (niter < 0 || nseed < 1 || nseed > MAX_SEEDS || neval < 2) {
    fprintf(stderr, "usage: bench_brainbody [iterations] [seeds 1..%d] [eval rollouts >= 2]\n",
            MAX_SEEDS);
    return 2;
  }
  const dsoConfig configs[] = {
      {"rnn + body", "tasks/pendulum_brainbody.json", 1},
      {"static + body", "tasks/pendulum_brainbody_static.json", 1},
      {"rnn", "tasks/pendulum_brainbody.json", 0},
      {"static", "tasks/pendulum_brainbody_static.json", 0},
  };
  int fail = 0;
  for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
    fail |= bench(&configs[i], niter, nseed, neval);
  }
  return fail;
}
