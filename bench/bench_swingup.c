// Cartpole swing-up (paper section 5.2, data-augmented policy optimization): samples to reach a
// target cost with and without a behavioral-cloning cost on demonstrations.
//
//   bench_swingup [--iters K] [--target J] [--seeds S] [--first-seed F] [--task NAME]
//                 [--score [--epochs E]]
//                 [--noise-std S]
//       trains tasks/cartpole_swingup.json (D-MDP cost r(x, mu(x)), pathwise gradient, Adam) and
//       tasks/cartpole_swingup_clone.json (the same + L_clone on the hand-controller
//       demonstrations tasks/experts/cartpole_swingup_hand_demos.csv) for K iterations (default
//       300) on S training seeds (default 3; F, F + 1, ..., F = 101 unless --first-seed) each, or only the task NAME, and prints
//       per variant and seed the environment steps (rollouts x horizon x iterations) until the
//       batch J first falls below 8 (the pole leaves the bottom: mean 1 - cos angle < 1.6) and
//       below the success target J (default 4: mean 1 - cos angle < 0.8, less than a pole
//       circling at constant speed, 1; the demonstrating controller scores 3.48 under the task's
//       action noise), the best and last J.
//       Scale: J = 5 mean_t (1 - cos angle) + cart and effort terms; hanging still: 10.
//       --score trains on the score route (train.gradient "score") instead of the pathwise one;
//       --epochs E takes E Adam steps per batch on the clipped surrogate (train.epochs);
//       --noise-std S frees the action noise, starting from std S (the tasks fix it at 0.1).
//   bench_swingup --hand-demos OUT.csv [--episodes N] [--demo-noise S]
//       records N episodes (default 32) of the hand-designed swing-up controller (energy pumping,
//       Astrom and Furuta 2000, blended into a discrete LQR gain near upright) on the task's
//       model, every DEMO_EVERY-th step, and prints per episode the task's J, when the pole first
//       comes within 0.2 rad of upright and how long it stays there (tasks/experts/README.md).
//       The applied action carries N(0, S^2) noise (default 0.3, three times the task's), the
//       recorded ctrl is the controller's own action (clipped): the demonstrations visit the
//       states a noisy imitation drifts into and label them with the expert's correction
//       (noise injection as in DART, Laskey et al. 2017).
#define _POSIX_C_SOURCE 200809L
#define DSO_PI 3.14159265358979323846
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mujoco/clone.h"
#include "dso_internal.h"
#include "estim/kalman.h"
#include "apps/train.h"

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
// src/estim/kalman.h on the dual system (A', B'), solved by dso_kalman_dare (doubling); then
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

#define HAND_CATCH 0.4  // width (rad) of the blend from energy pumping to the LQR gain

// u (ctrl units, before clipping) of the hand controller at (x, th, xd, thd); th in (-pi, pi],
// 0 upright. Energy pumping (Astrom and Furuta 2000): the pole's energy about the hinge,
// E = J thd^2 / 2 + m g l (cos th - 1), is 0 upright at rest; a cart acceleration a changes it at
// dE/dt = -m l a thd cos th, so u = k E thd cos th (E < 0 below) raises E towards 0, plus a weak
// spring that keeps the cart near the rail centre. Near upright the LQR gain takes over through
// the smooth weight w = exp(-(th / HAND_CATCH)^2) (a smooth controller is easier to clone).
static double hand_control(const double* K, double x, double th, double xd, double thd) {
  const double m = 0.2, l = 0.3, J = 0.00602 + m * l * l + 1e-4, g = 9.81;
  double E = 0.5 * J * thd * thd + m * g * l * (cos(th) - 1);
  double pump = 5.0 * E * thd * cos(th) - 0.5 * x - 0.5 * xd;
  double lqr = -(K[0] * x + K[1] * th + K[2] * xd + K[3] * thd);
  double w = exp(-(th / HAND_CATCH) * (th / HAND_CATCH));
  return w * lqr + (1 - w) * pump;
}

// std of the demonstrations' initial cart position, pole angle and velocities (wider than the
// task's 0.1 so that the demonstrations cover states a cloned policy drifts into)
#define DEMO_STD 0.3
// every DEMO_EVERY-th step is recorded (L_clone needs state-action pairs, not consecutive steps;
// this keeps the committed file small)
#define DEMO_EVERY 4

static int hand_demos(const char* out, int nep, double sigma) {
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
  printf("LQR gain K = [%.4f %.4f %.4f %.4f] (ctrl per m, rad, m/s, rad/s), blend width "
         "%.2f rad\n", K[0], K[1], K[2], K[3], HAND_CATCH);
  dsoDataset* ds = NULL;
  if (dso_dataset_create(&ds, m, &err)) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    return 1;
  }
  const int T = task->rollout.horizon;
  dsoRng rng;
  dso_rng_seed(&rng, 2024, 0, 0);
  double Jsum = 0, work[6 * 2];
  int nstay = 0, nend = 0;  // episodes that stay upright from their first arrival / end upright
  for (int n = 0; n < nep; n++) {
    int e = dso_dataset_add_episode(ds, m, T / DEMO_EVERY, &err);
    if (e < 0) {
      fprintf(stderr, "bench_swingup: %s\n", err.msg);
      return 1;
    }
    dsoEpisode* ep = &ds->episode[e];
    mj_resetData(m, d);
    d->qpos[0] = DEMO_STD * dso_rng_normal(&rng);
    d->qpos[1] = DSO_PI + DEMO_STD * dso_rng_normal(&rng);
    d->qvel[0] = DEMO_STD * dso_rng_normal(&rng);
    d->qvel[1] = DEMO_STD * dso_rng_normal(&rng);
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
      if (t % DEMO_EVERY == 0 && t / DEMO_EVERY < ep->T) {
        int k = t / DEMO_EVERY;
        ep->time[k] = t * m->opt.timestep;
        memcpy(ep->qpos + 2 * k, d->qpos, 2 * sizeof(double));
        memcpy(ep->qvel + 2 * k, d->qvel, 2 * sizeof(double));
        ep->ctrl[k] = mu > 1 ? 1 : (mu < -1 ? -1 : mu);  // the label: the expert's action
      }
      d->ctrl[0] = u;
      mj_forward(m, d);
      dsoCostPolicy p = {&mu, &sigma, NULL, NULL};
      J += dso_cost_eval(task->cost, m, d, &u, NULL, NULL, work) +
           dso_cost_eval_policy(task->cost, m, &p, NULL, NULL, NULL);
      mj_step(m, d);
    }
    double th = remainder(d->qpos[1], 2 * DSO_PI);
    int stays = first_up >= 0 && T - first_up == up;
    nstay += stays;
    nend += fabs(th) < 0.2;
    printf("episode %d: J %.3f, first within 0.2 rad of upright at step %d, %d of %d steps "
           "upright, final angle %+.4f rad, cart %+.3f m\n", n, J, first_up, up, T, th,
           d->qpos[0]);
    Jsum += J;
  }
  for (int i = 0; i < 2; i++) ds->has[DSO_DATA_QPOS][i] = ds->has[DSO_DATA_QVEL][i] = 1;
  ds->has[DSO_DATA_CTRL][0] = 1;
  int st = dso_dataset_write_csv(out, ds, m, &err) ? 1 : 0;
  if (st) fprintf(stderr, "bench_swingup: %s\n", err.msg);
  printf("demonstrations: mean J %.3f over %d episodes; %d end within 0.2 rad of upright, %d "
         "stay there from their first arrival to the end; wrote %s\n", Jsum / nep, nep, nend,
         nstay, out);
  dso_dataset_free(ds);
  mj_deleteData(d);
  dso_task_free(task);
  return st;
}

#define SWING_TARGET 8.0  // J below which the pole no longer hangs (mean 1 - cos angle < 1.6)

// trains one variant on one seed; prints steps to the target and the final J
// route of the gradient of J and, when noise_std > 0, the action noise made free from that
// initial std (the score route needs exploration; the tasks fix it at 0.1)
static dsoTrainGradient g_route = DSO_TRAIN_PATHWISE;  // --score: DSO_TRAIN_SCORE
static double g_noise_std = 0;
static int g_epochs = 0;  // > 0: Adam steps per batch on the clipped surrogate (score route)

static int run_variant(const char* name, uint64_t seed, int iters, double target) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/%s", DSO_SOURCE_DIR, name);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  if (!task) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    return 1;
  }
  if (task->train) s = *task->train;  // the task's "train" section, read at load
  s.seed = seed;
  if (g_route == DSO_TRAIN_SCORE) s.gradient = g_route;  // else the task's own route
  if (g_epochs > 0) s.epochs = g_epochs;
  if (g_noise_std > 0) {
    for (int i = 0; i < task->theta->n; i++) {
      dsoThetaEntry* e = &task->theta->entry[i];
      if (e->block == DSO_BLOCK_ACTION_NOISE) {
        e->init = g_noise_std;
        e->fixed = 0;
      }
    }
  }
  dsoTrain* tr = dso_train_create(task, &s, &err);
  double* u = calloc((size_t)task->theta->n, sizeof(double));
  if (!tr || !u) {
    fprintf(stderr, "bench_swingup: %s\n", err.msg);
    dso_task_free(task);
    free(u);
    return 1;
  }
  dso_theta_init(task->theta, u);
  long steps = 0, reached = -1, swung = -1;
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
    if (swung < 0 && rep.J < SWING_TARGET) swung = steps;
  }
  printf("%-30s seed %3llu  best J %.3f  last J %.3f  (%.1f s)\n", name,
         (unsigned long long)seed, best, last, now() - t0);
  printf("%-30s seed %3llu  J < %.1f after %s%ld steps, J < %.1f after %s%ld steps\n", name,
         (unsigned long long)seed, SWING_TARGET, swung < 0 ? "> " : "", swung < 0 ? steps : swung,
         target, reached < 0 ? "> " : "", reached < 0 ? steps : reached);
  fflush(stdout);
  free(u);
  dso_train_free(tr);
  dso_task_free(task);
  return 0;
}

int main(int argc, char** argv) {
  const char* demos = NULL;
  const char* only = NULL;
  int nep = 32, iters = 300, nseed = 3;
  double target = 4.0, demo_noise = 0.3;
  uint64_t seed0 = 101;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--hand-demos") && i + 1 < argc) {
      demos = argv[++i];
    } else if (!strcmp(argv[i], "--episodes") && i + 1 < argc) {
      nep = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--demo-noise") && i + 1 < argc) {
      demo_noise = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
      iters = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--first-seed") && i + 1 < argc) {
      seed0 = (uint64_t)atoll(argv[++i]);
    } else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
      nseed = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--task") && i + 1 < argc) {
      only = argv[++i];
    } else if (!strcmp(argv[i], "--score")) {
      g_route = DSO_TRAIN_SCORE;
    } else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) {
      g_epochs = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--noise-std") && i + 1 < argc) {
      g_noise_std = atof(argv[++i]);
    } else if (!strcmp(argv[i], "--target") && i + 1 < argc) {
      target = atof(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench_swingup [--iters K] [--target J] [--seeds S] [--task NAME] "
              "[--score [--epochs E]] [--noise-std S] [--first-seed F] | "
              "--hand-demos OUT.csv [--episodes N]\n");
      return 2;
    }
  }
  if (demos) return hand_demos(demos, nep, demo_noise);
  printf("cartpole swing-up: %d iterations per run, targets batch J < %.1f (swung up) and J < %.2f "
         "(success; hanging still: 10, demonstrating controller: 3.48)\n", iters, SWING_TARGET, target);
  for (int i = 0; i < nseed; i++) {
    uint64_t seed = seed0 + (uint64_t)i;
    if (only) {
      if (run_variant(only, seed, iters, target)) return 1;
    } else if (run_variant("cartpole_swingup.json", seed, iters, target) ||
               run_variant("cartpole_swingup_clone.json", seed, iters, target)) {
      return 1;
    }
  }
  return 0;
}
