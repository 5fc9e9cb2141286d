// Benchmark: application 4 (paper section 5.2) at full budget. Records episodes of the pendulum
// with a noisy angle encoder and an unmeasured disturbance torque (tasks/pendulum_estim.json,
// true mass 0.1476 kg and damping 0.01 N m s/rad; the task starts 40% and 50% off) and prints
// the RMS state error on the validation episodes of: an EKF with the true model, an EKF with the
// wrong model, the learned constant gain and MLP corrector with the true model, and the learned
// corrector and physics together from the wrong model; then the time of one forward-mode
// Jacobian pass against central differences of the residuals.
//   bench_estim [EPISODES=24] [HORIZON=500] [MAX_ITER=40] [HIDDEN=16] [SEED=1] [WEIGHT_STD=0.1]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dso_internal.h"
#include "config/estimator_section.h"
#include "estim/estimfit.h"
#include "apps/simulate.h"

static double now(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const dsoError* err) {
  fprintf(stderr, "bench_estim: %s\n", err->msg);
  exit(1);
}

// learns an estimator of the given kind on layout th (u0: its start) and prints its row
static double row(const char* label, const dsoTask* task, const dsoTheta* th, const double* u0,
                  const dsoDataset* ds, const char* json, int max_iter, double ref) {
  dsoError err = {0};
  dsoEstimFitSettings s;
  if (dso_estimfit_settings_from_json(&s, task->model, json, "bench", &err)) die(&err);
  dsoEstimFit* f = dso_estimfit_create(task->model, th, ds, &s, &err);
  dso_estimfit_settings_free(&s);
  if (!f) die(&err);
  double* u = calloc((size_t)dso_estimfit_n(f), sizeof(double));
  dso_estimfit_init(f, u, u0);
  int iters = 0;
  double t0 = now(), rms = 0;
  if (dso_estimfit_learn(f, u, max_iter, &iters, NULL, &err) ||
      dso_estimfit_state_rms(&rms, NULL, f, u, DSO_SELECT_VALIDATION, &err)) {
    die(&err);
  }
  printf("%-44s %9.5f %8.3f %6d %8.2f  ", label, rms, ref > 0 ? rms / ref : 1.0, iters,
         now() - t0);
  const dsoTheta* layout = dso_estimfit_theta(f);
  for (int i = 0; i < dso_estimfit_corrector_start(f); i++) {
    const dsoThetaEntry* e = &layout->entry[i];
    if (e->block == DSO_BLOCK_PHYSICS && !e->fixed) {
      printf(" %s %.5g", e->name + 8, dso_theta_entry_natural(e, u[i]));
    }
  }
  printf("\n");
  free(u);
  dso_estimfit_free(f);
  return rms;
}

int main(int argc, char** argv) {
  int episodes = argc > 1 ? atoi(argv[1]) : 24, horizon = argc > 2 ? atoi(argv[2]) : 500;
  int max_iter = argc > 3 ? atoi(argv[3]) : 40, hidden = argc > 4 ? atoi(argv[4]) : 16;
  unsigned long seed = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
  double wstd = argc > 6 ? atof(argv[6]) : 0.1;
  dsoError err = {0};
  dsoTask* task = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/pendulum_estim.json",
                                      DSO_TASK_SKIP_DATA, &err);
  if (!task) die(&err);
  int n = task->theta->n;
  double* u0 = calloc((size_t)n, sizeof(double));
  double* ut = calloc((size_t)n, sizeof(double));
  dso_theta_init(task->theta, u0);
  memcpy(ut, u0, sizeof(double) * (size_t)n);
  const char* truth = "{\"physics.arm.mass\": 0.1476, \"physics.hinge.damping\": 0.01}";
  if (dso_theta_from_json(task->theta, ut, truth, "truth", &err)) die(&err);
  dsoDataset* ds = NULL;
  int nval = episodes / 3 > 0 ? episodes / 3 : 1;
  if (dso_simulate(&ds, task, ut, episodes, horizon, seed, 0, nval, &err)) die(&err);
  int dist = mj_name2id(task->model, mjOBJ_ACTUATOR, "disturbance");
  ds->has[DSO_DATA_CTRL][dist] = 0;  // the disturbance is not recorded
  for (int k = 0; k < ds->nepisode; k++) {
    for (int t = 0; t < ds->episode[k].T; t++) {
      ds->episode[k].ctrl[(size_t)t * task->model->nu + dist] = 0;
    }
  }
  dsoTheta* held = dso_estimfit_hold(task->theta, ut, &err);
  if (!held) die(&err);
  printf("pendulum_estim: %d episodes x %d steps (%d validation), sensor noise 0.03 rad, "
         "disturbance 0.03 N m, seed %lu\n", episodes, horizon, nval, seed);
  printf("%-44s %9s %8s %6s %8s  %s\n", "estimator", "RMS", "/EKF", "iters", "time s",
         "learned physics");
  // the EKFs: one with the true model, one with the task's (wrong) initial values
  double ekf[2];
  for (int k = 0; k < 2; k++) {
    dsoEstimFitSettings s;
    if (dso_estimfit_settings_from_json(&s, task->model, NULL, "bench", &err)) die(&err);
    dsoEstimFit* f = dso_estimfit_create(task->model, k ? task->theta : held, ds, &s, &err);
    dso_estimfit_settings_free(&s);
    if (!f) die(&err);
    double* u = calloc((size_t)dso_estimfit_n(f), sizeof(double));
    dso_estimfit_init(f, u, k ? u0 : ut);
    double t0 = now();
    if (dso_estimfit_ekf_rms(&ekf[k], f, u, DSO_SELECT_VALIDATION, &err)) die(&err);
    printf("%-44s %9.5f %8.3f %6s %8.2f\n", k ? "EKF, wrong model (mass +40%, damping -50%)"
           : "EKF, true model", ekf[k], ekf[k] / ekf[0], "-", now() - t0);
    free(u);
    dso_estimfit_free(f);
  }
  char mlp[256];
  snprintf(mlp, sizeof(mlp), "{\"corrector\": \"mlp\", \"hidden\": [%d], \"weight_std\": %g}",
           hidden, wstd);
  row("constant gain, true model", task, held, ut, ds, "{\"corrector\": \"gain\"}", max_iter,
      ekf[0]);
  row("MLP corrector, true model", task, held, ut, ds, mlp, max_iter, ekf[0]);
  row("constant gain + physics, from the wrong model", task, task->theta, u0, ds,
      "{\"corrector\": \"gain\"}", max_iter, ekf[0]);
  row("MLP corrector + physics, from the wrong model", task, task->theta, u0, ds, mlp, max_iter,
      ekf[0]);
  // one Jacobian pass: forward mode against central differences (2 p passes)
  dsoEstimFitSettings s;
  if (dso_estimfit_settings_from_json(&s, task->model, mlp, "bench", &err)) die(&err);
  dsoEstimFit* f = dso_estimfit_create(task->model, task->theta, ds, &s, &err);
  dso_estimfit_settings_free(&s);
  if (!f) die(&err);
  long m = dso_estimfit_nres(f) + dso_estimfit_nprior(f);
  int p = dso_estimfit_nfitted(f);
  double* u = calloc((size_t)dso_estimfit_n(f), sizeof(double));
  double* r = calloc((size_t)m * (size_t)(p + 1), sizeof(double));
  dso_estimfit_init(f, u, u0);
  double t0 = now();
  if (dso_estimfit_residuals(f, r, r + m, u, NULL, &err)) die(&err);
  double tf = now() - t0;
  t0 = now();
  for (int c = 0; c < 2 * p; c++) {
    if (dso_estimfit_residuals(f, r, NULL, u, NULL, &err)) die(&err);
  }
  double td = now() - t0;
  printf("Jacobian of %ld residuals x %d entries: forward mode %.3f s, central differences "
         "%.3f s (%.1fx)\n", m, p, tf, td, td / tf);
  free(r);
  free(u);
  dso_estimfit_free(f);
  dso_theta_free(held);
  dso_dataset_free(ds);
  free(u0);
  free(ut);
  dso_task_free(task);
  return 0;
}
