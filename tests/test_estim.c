// State estimators: the Riccati solver against closed forms, and on a linear Gaussian MuJoCo
// system (1-dof slide mass, spring and damper, Euler, noisy position sensor) the constant gain
// learned from the innovation cost of eq. 99 against the steady-state Kalman gain, plus the EKF
// baseline and input validation.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "estim/estim.h"
#include "config/estimator_section.h"
#include "estim/estimfit.h"
#include "estim/kalman.h"

static const char* kXml =
    "<mujoco><option timestep=\"0.01\" integrator=\"Euler\"/>"
    "<worldbody><body name=\"mass\"><joint name=\"slide\" type=\"slide\" axis=\"1 0 0\""
    " stiffness=\"10\" damping=\"0.5\"/>"
    "<inertial pos=\"0 0 0\" mass=\"1\" diaginertia=\"0.1 0.1 0.1\"/></body></worldbody>"
    "<actuator><motor name=\"push\" joint=\"slide\" gear=\"1\"/></actuator>"
    "<sensor><jointpos name=\"pos\" joint=\"slide\"/></sensor></mujoco>";

static const double kSigmaEps = 2.0;    // N, action (process) noise
static const double kSigmaXi = 0.01;    // m, position sensor noise
static const int kSteps = 40000;        // recorded samples

static mjModel* load(const char* xml) {
  char path[2048];
  int fd = dso_test_mkstemps(path, sizeof(path), "dso_test_estim", ".xml");
  FILE* f = fdopen(fd, "w");
  fputs(xml, f);
  fclose(f);
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  remove(path);
  assert_non_null(m);
  return m;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// 2x2 system made of two decoupled scalar ones, a = 1 and a = 0.5 (c = q = r = 1), rotated by
// 0.3 rad: P solves p² − p − 1 = 0 (p = golden ratio) and p² − 0.25 p − 1 = 0.
static void test_riccati_textbook(void** state) {
  double c = cos(0.3), s = sin(0.3);
  double Rot[4] = {c, -s, s, c};
  double d[2] = {1.0, 0.5};
  double pk[2] = {(1 + sqrt(5.0)) / 2, (0.25 + sqrt(0.0625 + 4)) / 2};  // 1.618034, 1.132782
  double A[4], Pe[4], Ke[4];
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      A[i * 2 + j] = Pe[i * 2 + j] = Ke[i * 2 + j] = 0;
      for (int k = 0; k < 2; k++) {
        A[i * 2 + j] += Rot[i * 2 + k] * d[k] * Rot[j * 2 + k];
        Pe[i * 2 + j] += Rot[i * 2 + k] * pk[k] * Rot[j * 2 + k];
        Ke[i * 2 + j] += Rot[i * 2 + k] * pk[k] / (pk[k] + 1) * Rot[j * 2 + k];
      }
    }
  }
  double C[4] = {1, 0, 0, 1}, Q[4] = {1, 0, 0, 1}, R[4] = {1, 0, 0, 1}, P[4], K[4];
  dsoError err = {0};
  int it = 0;
  assert_int_equal(dso_kalman_dare(P, &it, A, C, Q, R, 2, 2, &err), DSO_OK);
  assert_int_equal(dso_kalman_steady(K, NULL, A, C, Q, R, 2, 2, &err), DSO_OK);
  for (int i = 0; i < 4; i++) {
    assert_true(fabs(P[i] - Pe[i]) < 1e-12);
    assert_true(fabs(K[i] - Ke[i]) < 1e-12);
  }
  // scalar: x' = x + w, y = x + v, q = r = 1: K = 1/φ = 0.618034
  double one = 1, k1 = 0;
  assert_int_equal(dso_kalman_steady(&k1, NULL, &one, &one, &one, &one, 1, 1, &err), DSO_OK);
  assert_true(fabs(k1 - (sqrt(5.0) - 1) / 2) < 1e-12);
  printf("riccati: doubling steps %d, P = [%.6f %.6f; %.6f %.6f]\n", it, P[0], P[1], P[2], P[3]);
}

static void test_riccati_errors(void** state) {
  double A[4] = {1, 0, 0, 1}, C[2] = {1, 0}, Q[4] = {1, 0, 0, 1}, P[4], K[2];
  double Rbad = -1, R = 1, nan_A[4] = {NAN, 0, 0, 1};
  dsoError err = {0};
  assert_int_equal(dso_kalman_dare(P, NULL, A, C, Q, &Rbad, 2, 1, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "positive definite"));
  dso_error_clear(&err);
  assert_int_equal(dso_kalman_dare(P, NULL, A, C, Q, &R, 0, 1, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_kalman_dare(P, NULL, nan_A, C, Q, &R, 2, 1, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_kalman_steady(K, NULL, A, C, NULL, &R, 2, 1, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  // undetectable unstable mode: x2 grows and is not measured
  double Au[4] = {0.5, 0, 0, 1.5};
  assert_int_equal(dso_kalman_dare(P, NULL, Au, C, Q, &R, 2, 1, &err), DSO_ERR_NUMERIC);
}

// records one episode x' = f(x, ā + ε), ȳ = h(x) + ξ with fixed seeds
static dsoDataset* record(const mjModel* m, int T, uint64_t seed) {
  dsoError err = {0};
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_create(&ds, m, &err), DSO_OK);
  int k = dso_dataset_add_episode(ds, m, T, &err);
  assert_int_equal(k, 0);
  for (int g = 0; g < DSO_NDATA; g++) {
    int sizes[DSO_NDATA] = {m->nq, m->nv, m->nu, m->nsensordata};
    for (int i = 0; i < sizes[g]; i++) {
      ds->has[g][i] = 1;
    }
  }
  dsoSim* sim = dso_sim_create(m, &err);
  assert_non_null(sim);
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, 0);
  dsoEpisode* ep = &ds->episode[0];
  dso_sim_data(sim)->qpos[0] = 0.05;
  for (int t = 0; t < T; t++) {
    double abar = 0.5 * sin(2 * M_PI * 0.3 * t * m->opt.timestep);
    ep->time[t] = t * m->opt.timestep;
    ep->qpos[t] = dso_sim_data(sim)->qpos[0];
    ep->qvel[t] = dso_sim_data(sim)->qvel[0];
    ep->ctrl[t] = abar;
    dso_sim_data(sim)->ctrl[0] = abar + kSigmaEps * dso_rng_normal(&rng);
    assert_int_equal(dso_sim_step(sim, &err), DSO_OK);
    // mj_step computed the sensors at x_t
    ep->sensordata[t] = dso_sim_data(sim)->sensordata[0] + kSigmaXi * dso_rng_normal(&rng);
  }
  dso_sim_free(sim);
  return ds;
}

// A, B, C of the model (linear, so any state will do) and the steady-state Kalman gain
static void kalman_of_model(double* K, const mjModel* m) {
  dsoError err = {0};
  dsoTheta* th = dso_theta_create(NULL, 0, &err);
  assert_non_null(th);
  double u0 = 0;
  dsoSim* sim = dso_sim_create(m, &err);
  dsoDeriv* dv = dso_deriv_create(m, th, NULL, &err);
  assert_non_null(dv);
  assert_int_equal(dso_deriv_set_theta(dv, th, &u0, &err), DSO_OK);
  double A[4], B[2], C[2];
  assert_int_equal(dso_deriv_step(dv, sim, A, B, NULL, NULL, &err), DSO_OK);
  assert_int_equal(dso_deriv_sensors(dv, sim, C, NULL, NULL, &err), DSO_OK);
  double Q[4], R = kSigmaXi * kSigmaXi, P[4];
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 2; j++) {
      Q[i * 2 + j] = B[i] * kSigmaEps * kSigmaEps * B[j];
    }
  }
  assert_int_equal(dso_kalman_steady(K, P, A, C, Q, &R, 2, 1, &err), DSO_OK);
  printf("model: A = [%.6f %.6f; %.6f %.6f], B = [%.6f; %.6f], C = [%.3f %.3f]\n", A[0], A[1],
         A[2], A[3], B[0], B[1], C[0], C[1]);
  dso_deriv_free(dv);
  dso_sim_free(sim);
  dso_theta_free(th);
}

static void test_learned_gain_reaches_kalman(void** state) {
  double t0 = now();
  mjModel* m = load(kXml);
  dsoDataset* ds = record(m, kSteps, 7);
  double Kk[2];
  kalman_of_model(Kk, m);
  dsoError err = {0};
  double sig = kSigmaXi;
  dsoEstim* es = dso_estim_create(m, NULL, NULL, &sig, &err);
  assert_non_null(es);
  assert_int_equal(es->nK, 2);
  char name[64];
  dso_estim_gain_name(name, sizeof name, 1, 0);
  assert_string_equal(name, "corrector.K[1,0]");
  // finite-difference gradient vanishes at the learned gain, not at K = 0
  double K[2] = {0, 0}, J0 = 0, g0[2], J = 0, g[2];
  assert_int_equal(dso_estim_cost(&J0, g0, es, ds, K, NULL, &err), DSO_OK);
  int iters = 0;
  assert_int_equal(dso_estim_learn(K, &J, &iters, es, ds, NULL, &err), DSO_OK);
  assert_int_equal(dso_estim_cost(&J, g, es, ds, K, NULL, &err), DSO_OK);
  long nr = dso_estim_nresidual(es, ds, DSO_SELECT_TRAIN);
  assert_int_equal(nr, kSteps - 1);
  double rms_l = 0, rms_k = 0, rms_0 = 0, Jk = 0;
  assert_int_equal(dso_estim_run(NULL, &Jk, &rms_k, es, ds, DSO_SELECT_ALL, Kk, &err), DSO_OK);
  assert_int_equal(dso_estim_run(NULL, NULL, &rms_l, es, ds, DSO_SELECT_ALL, K, &err), DSO_OK);
  double zero[2] = {0, 0};
  assert_int_equal(dso_estim_run(NULL, NULL, &rms_0, es, ds, DSO_SELECT_ALL, zero, &err), DSO_OK);
  // the EKF on the same data converges to the same gain
  double cs = kSigmaEps, rms_e = 0;
  dsoEkf* ekf = dso_ekf_create(m, NULL, NULL, &cs, &sig, &err);
  assert_non_null(ekf);
  long cnt = 0;
  assert_int_equal(dso_ekf_state_rms(&rms_e, &cnt, ekf, ds, DSO_SELECT_ALL, &err), DSO_OK);
  assert_int_equal(cnt, kSteps - 1);
  double ke[2] = {ekf->K[0], ekf->K[1]};
  double e0 = 100 * (K[0] - Kk[0]) / Kk[0], e1 = 100 * (K[1] - Kk[1]) / Kk[1];
  printf("estim: %d steps, LM iterations %d, J/N: K=0 %.4f, learned %.4f, Kalman %.4f\n", kSteps,
         iters, J0 / nr, J / nr, Jk / nr);
  printf("gain   learned       Kalman        error   EKF (final)\n");
  printf("K[0,0] %.6e  %.6e  %+.2f%%  %.6e\n", K[0], Kk[0], e0, ke[0]);
  printf("K[1,0] %.6e  %.6e  %+.2f%%  %.6e\n", K[1], Kk[1], e1, ke[1]);
  printf("gradient: at K=0 [%.3g %.3g], at learned [%.3g %.3g]\n", g0[0], g0[1], g[0], g[1]);
  printf("state RMS: no correction %.5f, learned %.5f, Kalman %.5f, EKF %.5f\n", rms_0, rms_l,
         rms_k, rms_e);
  assert_true(fabs(e0) < 5 && fabs(e1) < 5);
  assert_true(J <= Jk);
  assert_true(fabs(ke[0] - Kk[0]) < 1e-3 * fabs(Kk[0]));
  assert_true(fabs(ke[1] - Kk[1]) < 1e-3 * fabs(Kk[1]));
  assert_true(rms_l < 1.05 * rms_k && rms_l < rms_0);
  assert_true(fabs(rms_e - rms_k) < 0.05 * rms_k);
  // the same gain by the joint learner (estimfit.h: forward-mode Jacobian, LM), no physics entries
  dsoTheta* th = dso_theta_create(NULL, 0, &err);
  dsoEstimFitSettings fs;
  assert_int_equal(dso_estimfit_settings_from_json(&fs, m, "{\"sensor_std\": {\"pos\": 0.01}}",
                                                   "test", &err), DSO_OK);
  dsoEstimFit* fit = dso_estimfit_create(m, th, ds, &fs, &err);
  dso_estimfit_settings_free(&fs);
  assert_non_null(fit);
  double Kf[2] = {0, 0};
  int fit_iters = 0;
  assert_int_equal(dso_estimfit_learn(fit, Kf, 30, &fit_iters, NULL, &err), DSO_OK);
  double f0 = 100 * (Kf[0] - Kk[0]) / Kk[0], f1 = 100 * (Kf[1] - Kk[1]) / Kk[1];
  printf("estimfit (forward mode, %d iterations): K [%.6e %.6e], errors %+.2f%% %+.2f%%, "
         "against the finite-difference learner %.1e %.1e\n", fit_iters, Kf[0], Kf[1], f0, f1,
         fabs(Kf[0] - K[0]) / fabs(K[0]), fabs(Kf[1] - K[1]) / fabs(K[1]));
  assert_true(fabs(f0) < 5 && fabs(f1) < 5);
  assert_true(fabs(Kf[0] - K[0]) < 1e-4 * fabs(K[0]) && fabs(Kf[1] - K[1]) < 1e-4 * fabs(K[1]));
  dso_estimfit_free(fit);
  dso_theta_free(th);
  dso_ekf_free(ekf);
  dso_estim_free(es);
  dso_dataset_free(ds);
  mj_deleteModel(m);
  printf("test time %.2f s\n", now() - t0);
}

static void test_input_errors(void** state) {
  mjModel* m = load(kXml);
  dsoError err = {0};
  double bad = 0, sig = 0.01;
  assert_null(dso_estim_create(m, NULL, NULL, &bad, &err));
  assert_non_null(strstr(err.msg, "sensor_std[0]"));
  dso_error_clear(&err);
  assert_null(dso_ekf_create(m, NULL, NULL, NULL, &sig, &err));
  assert_non_null(strstr(err.msg, "ctrl_std"));
  dso_error_clear(&err);
  mjModel* m2 = load(
      "<mujoco><worldbody><body><joint type=\"slide\"/><geom size=\"0.1\"/></body></worldbody>"
      "</mujoco>");
  assert_null(dso_estim_create(m2, NULL, NULL, NULL, &err));
  assert_non_null(strstr(err.msg, "no sensors"));
  dso_error_clear(&err);
  // dataset of another model
  dsoEstim* es = dso_estim_create(m, NULL, NULL, &sig, &err);
  assert_non_null(es);
  dsoDataset* ds = NULL;
  assert_int_equal(dso_dataset_create(&ds, m2, &err), DSO_OK);
  double K[2] = {0, 0}, J = 0;
  assert_int_equal(dso_estim_cost(&J, NULL, es, ds, K, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "dataset sizes"));
  dso_error_clear(&err);
  dso_dataset_free(ds);
  // no episodes of two samples
  assert_int_equal(dso_dataset_create(&ds, m, &err), DSO_OK);
  assert_int_equal(dso_estim_learn(K, &J, NULL, es, ds, NULL, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  dsoEstimSettings set;
  dso_estim_settings_default(&set);
  set.fd_step = 0;
  assert_int_equal(dso_dataset_add_episode(ds, m, 3, &err), 0);
  assert_int_equal(dso_estim_learn(K, &J, NULL, es, ds, &set, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "fd_step"));
  dso_error_clear(&err);
  // a gain that makes the estimate diverge is reported, not returned
  double Kbig[2] = {1e6, 1e8};
  ds->episode[0].sensordata[1] = 1;
  ds->episode[0].sensordata[2] = -1;
  ds->has[DSO_DATA_SENSOR][0] = 1;
  assert_int_equal(dso_estim_run(NULL, &J, NULL, es, ds, DSO_SELECT_ALL, Kbig, &err),
                   DSO_ERR_NUMERIC);
  assert_non_null(strstr(err.msg, "diverged"));
  dso_dataset_free(ds);
  dso_estim_free(es);
  // the mlp corrector's input scales (x_scale over the state, sigma over the sensors) must be
  // finite and > 0;
  // the message is made before the half-built corrector is freed
  dso_error_clear(&err);
  dsoCorrectorSettings cs;
  dso_corrector_settings_default(&cs);
  cs.kind = DSO_CORRECTOR_MLP;  // the gain corrector has no input scales
  double xs[2] = {1, -1};
  assert_null(dso_corrector_create(m, &cs, NULL, xs, NULL, &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  assert_string_equal(err.msg, "corrector: x_scale[1]=-1 must be finite and > 0");
  dso_error_clear(&err);
  double nan_sigma[1] = {NAN};
  assert_null(dso_corrector_create(m, &cs, NULL, NULL, nan_sigma, &err));
  assert_string_equal(err.msg, "corrector: sigma[0]=nan must be finite and > 0");
  dso_error_clear(&err);
  dso_estim_free(NULL);
  dso_ekf_free(NULL);
  mj_deleteModel(m2);
  mj_deleteModel(m);
}

// the "estimator" section is read at load into typed settings for the task's model
// (config/estimator_section.h), held as task->estimator; a sensor the model lacks stops the load
static void test_task_section(void** state) {
  (void)state;
  dsoError err = {0};
  dsoTask* t = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/pendulum_estim.json",
                                   DSO_TASK_SKIP_DATA, &err);
  if (!t) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(t);
  const dsoEstimFitSettings* es = t->estimator;
  assert_non_null(es);
  assert_int_equal(es->corrector.kind, DSO_CORRECTOR_MLP);
  assert_int_equal(es->corrector.nhidden, 1);
  assert_int_equal(es->corrector.hidden[0], 16);
  assert_int_equal(es->max_iter, 30);
  assert_true(es->weight_std == 0.1 && es->compare_ekf);  // defaults
  assert_int_equal(es->ns, t->model->nsensordata);
  assert_int_equal(es->nu, t->model->nu);
  assert_true(isnan(es->sensor_std[0]) && isnan(es->process_std[1]));
  assert_null(t->fit);
  assert_null(t->train);
  dso_task_free(t);

  char path[1024], text[1024];
  int fd = dso_test_mkstemps(path, sizeof(path), "estim_task", ".json");
  assert_true(fd >= 0);
  snprintf(text, sizeof(text), "{\"model\": \"%s/models/pendulum_noisy.xml\", \"estimator\": "
           "{\"sensor_std\": {\"hinge_vel\": 0.1}}}", DSO_SOURCE_DIR);
  assert_int_equal(write(fd, text, strlen(text)), (long)strlen(text));
  close(fd);
  assert_null(dso_task_load(path, &err));
  char expect[2048];
  snprintf(expect, sizeof(expect), "%s: estimator.sensor_std.hinge_vel: no sensor of that name; "
           "valid: hinge_pos", path);
  assert_string_equal(err.msg, expect);
  remove(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_riccati_textbook),
      cmocka_unit_test(test_riccati_errors),
      cmocka_unit_test(test_learned_gain_reaches_kalman),
      cmocka_unit_test(test_input_errors),
      cmocka_unit_test(test_task_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
