// Cartpole swing-up (paper section 5.2, data-augmented policy optimization): samples to reach a
// target cost with and without a behavioral-cloning cost on demonstrations.
//
//   bench_swingup [--iters K] [--target J] [--seeds S]
//       trains tasks/cartpole_swingup.json (D-MDP-style cost, pathwise gradient, Adam) and
//       tasks/cartpole_swingup_clone.json (the same + clone weight on demonstrations recorded by
//       dso_simulate from the expert tasks/experts/cartpole_swingup_mlp.json) for K iterations on
//       S training seeds each, and prints per variant and seed the environment steps (rollouts x
//       horizon x iterations) until the batch J first falls below the target, and the final J.
//   bench_swingup --hand-demos OUT.csv [--episodes N]
//       records N episodes of a hand-designed swing-up controller (energy pumping, Astrom and
//       Furuta 2000, then an LQR balance gain from a Riccati iteration on mjd_transitionFD) on
//       models/cartpole.xml: the data the expert MLP was cloned from (tasks/experts/README.md).
#define _POSIX_C_SOURCE 200809L
#define DSO_PI 3.14159265358979323846
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clone.h"
#include "dso.h"
#include "kalman.h"
#include "train.h"

#ifndef DSO_SOURCE_DIR
#define DSO_SOURCE_DIR "."
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// ---- hand-designed expert ----

// Discrete LQR gain K (1 x 4, u = -K dx, dx = (cart, angle, cart vel, angle vel)) at the upright
// state: A, B from mjd_transitionFD (centred differences, one 5 ms step of the task's model); the
// control Riccati equation P = Q + A'PA - A'PB (R + B'PB)^-1 B'PA is the filtering one of
// estimators/kalman.h on the dual system (A', B'), solved by dso_kalman_dare (doubling); then
// K = (R + B'PB)^-1 B'PA. The slider's dry friction (frictionloss) sticks the cart at rest, which
// differences see as a velocity that halves in one step; it is switched off in the copy that is
// linearized (0.02 N against the 10 N motor).
static dsoStatus lqr_gain(double* K, const mjModel* m0, mjData* d, dsoError* err) {
  double A[16], At[16], B[4], P[16], Q[16] = {0}, R = 1.0;
  mjModel* m = mj_copyModel(NULL, m0);
  for (int i = 0; i < m->nv; i++) m->dof_frictionloss[i] = 0;
  mj_resetData(m, d);
  mj_forward(m, d);
  mjd_transitionFD(m, d, 1e-6, 1, A, B, NULL, NULL);
  mj_deleteModel(m);
  Q[0] = 1.0;    // cart position (m)
  Q[5] = 10.0;   // pole angle (rad)
  Q[10] = 0.1;   // cart velocity
  Q[15] = 0.1;   // pole velocity
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < 4; j++) At[i * 4 + j] = A[j * 4 + i];
  }
  dsoStatus st = dso_kalman_dare(P, NULL, At, B, Q, &R, 4, 1, err);
  if (st) return st;
  double s = R;
  for (int j = 0; j < 4; j++) {
    double pb = 0;
    for (int i = 0; i < 4; i++) pb += P[j * 4 + i] * B[i];
    s += B[j] * pb;
  }
  for (int j = 0; j < 4; j++) {
    K[j] = 0;
    for (int i = 0; i < 4; i++) {
      for (int k = 0; k < 4; k++) K[j] += B[i] * P[i * 4 + k] * A[k * 4 + j];
    }
    K[j] /= s;
  }
  return DSO_OK;
}

#define HAND_CATCH 0.5  // |angle| (rad) below which the LQR gain takes over

// u (ctrl units, before clipping) of the hand controller at (x, th, xd, thd); th in (-pi, pi],
// 0 upright. Away from upright: energy pumping (Astrom and Furuta 2000). The pole's energy about
// the hinge, E = J thd^2 / 2 + m g l (cos th - 1), is 0 upright at rest; a cart acceleration a
// changes it at dE/dt = -m l a thd cos th, so u = k E thd cos th (E < 0 below) raises E towards 0,
// plus a weak spring that keeps the cart near the rail centre.
static double hand_control(const double* K, double x, double th, double xd, double thd) {
  if (fabs(th) < HAND_CATCH) return -(K[0] * x + K[1] * th + K[2] * xd + K[3] * thd);
  const double m = 0.2, l = 0.3, J = 0.00602 + m * l * l + 1e-4, g = 9.81;
  double E = 0.5 * J * thd * thd + m * g * l * (cos(th) - 1);
  return 5.0 * E * thd * cos(th) - 0.5 * x - 0.5 * xd;
}

static int hand_demos(const char* out, int nep) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/cartpole_swingup.json", DSO_SOURCE_DIR);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    return 2;
  }
  const mjModel* m = task->model;
  mjData* d = mj_makeData(m);
  double K[4];
  if (lqr_gain(K, m, d, &err)) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    return 1;
  }
  printf("LQR gain K = [%.4f %.4f %.4f %.4f] (ctrl per m, rad, m/s, rad/s), catch below |angle| "
         "%.2f rad\n", K[0], K[1], K[2], K[3], HAND_CATCH);
  dsoDataset* ds = NULL;
  if (dso_dataset_create(&ds, m, &err)) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    return 1;
  }
  const int T = task->rollout.horizon;
  dsoRng rng;
  dso_rng_seed(&rng, 2024, 0, 0);
  double Jsum = 0, work[6 * 2], sigma = 0.1;
  int all_up = 1;
  for (int n = 0; n < nep; n++) {
    int e = dso_dataset_add_episode(ds, m, T, &err);
    if (e < 0) {
      fprintf(stderr, "bench_swingup: %s\n", err.msg);
      return 1;
    }
    dsoEpisode* ep = &ds->episode[e];
    mj_resetData(m, d);
    d->qpos[0] = 0.1 * dso_rng_normal(&rng);
    d->qpos[1] = DSO_PI + 0.1 * dso_rng_normal(&rng);
    d->qvel[1] = 0.1 * dso_rng_normal(&rng);
    double J = 0;
    int up = 0, first_up = -1;
    for (int t = 0; t < T; t++) {
      double th = remainder(d->qpos[1], 2 * DSO_PI);
      double mu = hand_control(K, d->qpos[0], th, d->qvel[0], d->qvel[1]);
      double u = mu + sigma * dso_rng_normal(&rng);
      u = u > 1 ? 1 : (u < -1 ? -1 : u);
      if (fabs(th) < 0.2) {
        up++;
        if (first_up < 0) first_up = t;
      }
      ep->time[t] = t * m->opt.timestep;
      memcpy(ep->qpos + 2 * t, d->qpos, 2 * sizeof(double));
      memcpy(ep->qvel + 2 * t, d->qvel, 2 * sizeof(double));
      ep->ctrl[t] = u;
      d->ctrl[0] = u;
      mj_forward(m, d);
      dsoCostPolicy p = {&mu, &sigma, NULL, NULL};
      J += dso_cost_eval(task->cost, m, d, &u, NULL, NULL, work) +
           dso_cost_eval_policy(task->cost, m, &p, NULL, NULL, NULL);
      mj_step(m, d);
    }
    double th = remainder(d->qpos[1], 2 * DSO_PI);
    all_up &= fabs(th) < 0.2 && T - first_up == up;
    printf("episode %d: J %.3f, first within 0.2 rad of upright at step %d, %d of %d steps "
           "upright, final angle %+.4f rad, cart %+.3f m\n", n, J, first_up, up, T, th,
           d->qpos[0]);
    Jsum += J;
  }
  for (int i = 0; i < 2; i++) ds->has[DSO_DATA_QPOS][i] = ds->has[DSO_DATA_QVEL][i] = 1;
  ds->has[DSO_DATA_CTRL][0] = 1;
  int st = dso_dataset_write_csv(out, ds, m, &err) ? 1 : 0;
  if (st) fprintf(stderr, "bench_swingup: %s\n", err.msg);
  printf("demonstrations: mean J %.3f over %d episodes; %s; wrote %s\n", Jsum / nep, nep,
         all_up ? "every episode stays upright from its first arrival to the end"
                : "NOT every episode balances", out);
  dso_dataset_free(ds);
  mj_deleteData(d);
  dso_task_free(task);
  return st;
}

// trains one variant on one seed; prints steps to the target and the final J
static int run_variant(const char* name, uint64_t seed, int iters, double target) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/%s", DSO_SOURCE_DIR, name);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  if (!task || (task->train && dso_train_settings_from_json(&s, task->train, path, &err))) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    dso_task_free(task);
    return 1;
  }
  s.seed = seed;
  dsoTrain* tr = dso_train_create(task, &s, &err);
  double* u = calloc((size_t)task->theta->n, sizeof(double));
  if (!tr || !u) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    dso_task_free(task);
    free(u);
    return 1;
  }
  dso_theta_init(task->theta, u);
  long steps = 0, reached = -1;
  double best = INFINITY, last = 0, t0 = now();
  for (int k = 0; k < iters; k++) {
    dsoTrainReport rep;
    if (dso_train_step(tr, u, &rep, &err)) {
      fprintf(stderr, "bench_swingup: %s\n", err.msg);
      break;
    }
    steps += rep.steps;
    last = rep.J;
    if (rep.J < best) best = rep.J;
    if (reached < 0 && rep.J < target) reached = steps;
  }
  printf("%-30s seed %3llu  best J %.3f  last J %.3f  (%.1f s)\n", name,
         (unsigned long long)seed, best, last, now() - t0);
  if (reached >= 0) {
    printf("%-30s seed %3llu  reached after %ld steps\n", name, (unsigned long long)seed,
           reached);
  } else {
    printf("%-30s seed %3llu  not reached within %ld steps\n", name, (unsigned long long)seed,
           steps);
  }
  fflush(stdout);
  free(u);
  dso_train_free(tr);
  dso_task_free(task);
  return 0;
}

int main(int argc, char** argv) {
  const char* demos = NULL;
  int nep = 8, iters = 150, nseed = 3;
  double target = 8.0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--hand-demos") && i + 1 < argc) {
      demos = argv[++i];
    } else if (!strcmp(argv[i], "--episodes") && i + 1 < argc) {
      nep = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
      iters = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
      nseed = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--target") && i + 1 < argc) {
      target = atof(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench_swingup [--iters K] [--target J] [--seeds S] | "
              "--hand-demos OUT.csv [--episodes N]\n");
      return 2;
    }
  }
  if (demos) return hand_demos(demos, nep);
  printf("cartpole swing-up: %d iterations per run, target batch J < %.2f (hanging still: 10)\n",
         iters, target);
  for (int i = 0; i < nseed; i++) {
    uint64_t seed = 101 + (uint64_t)i;
    if (run_variant("cartpole_swingup.json", seed, iters, target) ||
        run_variant("cartpole_swingup_clone.json", seed, iters, target)) {
      return 1;
    }
  }
  return 0;
}
