// Every public function of include/dso/ with err == NULL: on good input each returns what it
// returns with an error record (same values, DSO_OK), and on bad input (NULL handles, bad paths,
// bad indices and sizes, NULL or non-finite arrays, out-of-range settings) its failure value,
// without crashing. The data of the fit task are simulated into a scratch folder under the
// build folder.
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dso/dso.h"
#include "test_util.h"

// |a - b| <= tol
#define assert_near(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

static char g_dir[2048];      // scratch folder under the build folder
static char g_fit[2304];      // a fit task (arm2 with data g_csv)
static char g_csv[2304];      // its data
static char g_none[2304];     // a task with nothing to optimize
static char g_bad[2304];      // a malformed task file
static char g_chain[2304];    // a chain task of the repository

#define NTH 3

static int write_file(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static int setup(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_dir, sizeof(g_dir), "null_err") != 0) return -1;
  snprintf(g_fit, sizeof(g_fit), "%s/fit.json", g_dir);
  snprintf(g_csv, sizeof(g_csv), "%s/fit.csv", g_dir);
  snprintf(g_none, sizeof(g_none), "%s/none.json", g_dir);
  snprintf(g_bad, sizeof(g_bad), "%s/bad.json", g_dir);
  snprintf(g_chain, sizeof(g_chain), "%s/tasks/pendulum_design.json", DSO_SOURCE_DIR);
  char text[8192];
  snprintf(text, sizeof(text),
           "{\"model\": \"%s/models/arm2.xml\",\n"
           " \"data\": {\"files\": \"%s\"},\n"
           " \"fit\": {\"window\": 20, \"threads\": 1, \"max_iter\": 3},\n"
           " \"rollout\": {\"horizon\": 40, \"rollouts\": 2, \"seed\": 3},\n"
           " \"theta\": [\n"
           "  {\"name\": \"physics.upper_arm.mass\", \"init\": 1.0, \"bounds\": [0.1, 10],\n"
           "   \"prior\": {\"mean\": 0.9, \"std\": 0.2}},\n"
           "  {\"name\": \"physics.elbow.damping\", \"init\": 0.03},\n"
           "  {\"name\": \"physics.shoulder.armature\", \"init\": 0.005, \"fixed\": true}\n"
           " ]}\n",
           DSO_SOURCE_DIR, g_csv);
  if (write_file(g_fit, text) != 0) return -1;
  snprintf(text, sizeof(text),
           "{\"model\": \"%s/models/arm2.xml\",\n"
           " \"theta\": [{\"name\": \"physics.elbow.damping\", \"init\": 0.03}]}\n",
           DSO_SOURCE_DIR);
  if (write_file(g_none, text) != 0) return -1;
  if (write_file(g_bad, "{\"model\": ") != 0) return -1;
  // the fit task's data, simulated at its initial θ
  dsoError err = {0};
  dsoTask* t = dso_task_open(g_fit, 1, &err);
  dsoStatus st = t ? dso_task_simulate_csv(t, g_csv, NULL, 2, 40, 5, 0.5, 0, &err) : err.code;
  if (st) fprintf(stderr, "%s\n", err.msg);
  dso_task_free(t);
  return st ? -1 : 0;
}

static int teardown(void** state) {
  (void)state;
  dso_test_rmtree(g_dir);
  return 0;
}

// error.h and version.h
static void test_error_and_version(void** state) {
  (void)state;
  assert_int_equal(dso_error(NULL, DSO_ERR_IO, "file %s", "x"), DSO_ERR_IO);
  assert_int_equal(dso_error(NULL, DSO_ERR_NUMERIC, "%d", 1), DSO_ERR_NUMERIC);
  dso_error_prefix(NULL, "%s: ", "context");
  dso_error_clear(NULL);
  // the same calls on a record
  dsoError err = {0};
  assert_int_equal(dso_error(&err, DSO_ERR_IO, "file %s", "x"), DSO_ERR_IO);
  dso_error_prefix(&err, "%s: ", "context");
  assert_string_equal(err.msg, "context: file x");
  dso_error_clear(&err);
  assert_int_equal(err.code, DSO_OK);
  assert_string_equal(err.msg, "");
  for (int c = DSO_OK; c <= DSO_ERR_INTERNAL; c++) {
    assert_non_null(dso_status_string((dsoStatus)c));
    assert_string_not_equal(dso_status_string((dsoStatus)c), "unknown status");
  }
  assert_string_equal(dso_status_string((dsoStatus)99), "unknown status");
  assert_string_equal(dso_status_string((dsoStatus)-1), "unknown status");
  assert_int_equal(dso_version_number(), DSO_VERSION_NUMBER);
  assert_non_null(dso_version_string());
}

// opening: bad paths fail with NULL, good ones give the same task as with a record
static void test_open(void** state) {
  (void)state;
  char dir[2304];
  snprintf(dir, sizeof(dir), "%s/tasks", DSO_SOURCE_DIR);
  const char* bad[] = {NULL, "", "/nonexistent/task.json", dir, g_bad, g_csv};
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    for (int skip = 0; skip <= 1; skip++) {
      assert_null(dso_task_open(bad[k], skip, NULL));
      dsoError err = {0};
      assert_null(dso_task_open(bad[k], skip, &err));
      assert_int_not_equal(err.code, DSO_OK);
      assert_true(err.msg[0] != '\0');
    }
  }
  dsoTask* t = dso_task_open(g_fit, 0, NULL);
  assert_non_null(t);
  assert_int_equal(dso_task_kind(t, NULL), DSO_TASK_KIND_FIT);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NEPISODE, NULL), 2);
  dso_task_free(t);
  t = dso_task_open(g_fit, 1, NULL);  // no data read
  assert_non_null(t);
  assert_int_equal(dso_task_size(t, DSO_TASK_SIZE_NEPISODE, NULL), 0);
  dso_task_free(t);
}

// every task accessor: NULL task, bad index, good input (same results with and without err)
static void test_task_accessors(void** state) {
  (void)state;
  double x[NTH] = {0}, y[NTH] = {0}, c = 0;
  int i = 0, j = 0, f = 0;
  // NULL task
  assert_int_equal(dso_task_kind(NULL, NULL), -1);
  for (int w = -1; w <= DSO_TASK_NSIZE; w++) assert_int_equal(dso_task_size(NULL, w, NULL), -1);
  assert_int_equal(dso_task_ntheta(NULL, NULL), -1);
  assert_null(dso_task_theta_name(NULL, 0, NULL));
  assert_int_equal(dso_task_theta_find(NULL, "physics.elbow.damping", NULL), -1);
  assert_int_equal(dso_task_theta_entry(NULL, 0, &i, &j, &f, x, y, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_init(NULL, x, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_natural(NULL, y, x, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_unconstrained(NULL, x, y, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_prior(NULL, &c, x, y, NULL), DSO_ERR_INPUT);
  dso_task_free(NULL);

  dsoTask* t = dso_task_open(g_fit, 0, NULL);
  assert_non_null(t);
  dsoError err = {0};
  // sizes: every valid one equals its value with a record, unknown ones fail
  for (int w = 0; w < DSO_TASK_NSIZE; w++) {
    int a = dso_task_size(t, w, NULL);
    assert_true(a >= 0);
    assert_int_equal(dso_task_size(t, w, &err), a);
    assert_int_equal(err.code, DSO_OK);
  }
  const int bad_size[] = {-1, DSO_TASK_NSIZE, INT_MAX, INT_MIN};
  for (size_t k = 0; k < 4; k++) {
    assert_int_equal(dso_task_size(t, bad_size[k], NULL), -1);
    assert_int_equal(dso_task_size(t, bad_size[k], &err), -1);
    assert_int_equal(err.code, DSO_ERR_INPUT);
  }
  assert_int_equal(dso_task_ntheta(t, NULL), NTH);
  // names and entries: good indices, then bad ones
  for (int k = 0; k < NTH; k++) {
    const char* name = dso_task_theta_name(t, k, NULL);
    assert_non_null(name);
    assert_int_equal(dso_task_theta_find(t, name, NULL), k);
    assert_int_equal(dso_task_theta_entry(t, k, &i, &j, &f, &x[0], &y[0], NULL), DSO_OK);
    assert_int_equal(f, k == 2);
    assert_int_equal(dso_task_theta_entry(t, k, NULL, NULL, NULL, NULL, NULL, NULL), DSO_OK);
  }
  const int bad_index[] = {-1, NTH, INT_MAX, INT_MIN};
  for (size_t k = 0; k < 4; k++) {
    assert_null(dso_task_theta_name(t, bad_index[k], NULL));
    assert_int_equal(dso_task_theta_entry(t, bad_index[k], &i, &j, &f, x, y, NULL),
                     DSO_ERR_INPUT);
    assert_null(dso_task_theta_name(t, bad_index[k], &err));
    assert_int_equal(err.code, DSO_ERR_INPUT);
  }
  assert_int_equal(dso_task_theta_find(t, "physics.nothing.mass", NULL), -1);
  assert_int_equal(dso_task_theta_find(t, "", NULL), -1);
  assert_int_equal(dso_task_theta_find(t, NULL, NULL), -1);

  // θ conversions and the prior
  double u[NTH], v[NTH], u2[NTH], g[NTH], g2[NTH], c2 = 0;
  assert_int_equal(dso_task_theta_init(t, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_init(t, u, NULL), DSO_OK);
  assert_int_equal(dso_task_theta_natural(t, v, u, NULL), DSO_OK);
  assert_near(v[0], 1.0, 1e-12);
  assert_int_equal(dso_task_theta_unconstrained(t, u2, v, NULL), DSO_OK);
  for (int k = 0; k < NTH; k++) assert_near(u2[k], u[k], 1e-12);
  assert_int_equal(dso_task_prior(t, &c, g, u, NULL), DSO_OK);
  assert_int_equal(dso_task_prior(t, &c2, g2, u, &err), DSO_OK);
  assert_true(c == c2 && c > 0);
  assert_memory_equal(g, g2, sizeof(g));
  assert_int_equal(dso_task_prior(t, NULL, NULL, u, NULL), DSO_OK);
  // NULL and non-finite arrays, values outside the bounds (u is then unchanged)
  assert_int_equal(dso_task_theta_natural(t, NULL, u, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_natural(t, v, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_unconstrained(t, NULL, v, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_theta_unconstrained(t, u2, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_prior(t, &c, g, NULL, NULL), DSO_ERR_INPUT);
  double un[NTH] = {0, NAN, 0}, vb[NTH] = {100.0, 0.03, 0.005};
  assert_int_equal(dso_task_theta_natural(t, v, un, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_prior(t, &c, NULL, un, NULL), DSO_ERR_INPUT);
  memcpy(u2, u, sizeof(u));
  assert_int_not_equal(dso_task_theta_unconstrained(t, u2, vb, NULL), DSO_OK);
  assert_memory_equal(u2, u, sizeof(u));
  vb[0] = NAN;
  assert_int_not_equal(dso_task_theta_unconstrained(t, u2, vb, NULL), DSO_OK);
  assert_memory_equal(u2, u, sizeof(u));
  dso_task_free(t);
}

// simulate: bad task, path and settings fail; a good call writes the file
static void test_simulate(void** state) {
  (void)state;
  char out[2304], nodir[2304];
  snprintf(out, sizeof(out), "%s/sim.csv", g_dir);
  snprintf(nodir, sizeof(nodir), "%s/no/such/folder/sim.csv", g_dir);
  assert_int_equal(dso_task_simulate_csv(NULL, out, NULL, 2, 10, 1, 0, 0, NULL), DSO_ERR_INPUT);
  dsoTask* t = dso_task_open(g_fit, 1, NULL);
  assert_non_null(t);
  double u[NTH], un[NTH] = {NAN, 0, 0};
  dso_task_theta_init(t, u, NULL);
  assert_int_equal(dso_task_simulate_csv(t, NULL, u, 2, 10, 1, 0, 0, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, "", u, 2, 10, 1, 0, 0, NULL), DSO_ERR_INPUT);
  assert_int_not_equal(dso_task_simulate_csv(t, nodir, u, 2, 10, 1, 0, 0, NULL), DSO_OK);
  assert_int_equal(dso_task_simulate_csv(t, out, un, 2, 10, 1, 0, 0, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, out, u, 2, 10, 1, -1, 0, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, out, u, 2, 10, 1, NAN, 0, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, out, u, 2, 10, 1, 0, 3, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, out, u, 2, 10, 1, 0, -1, NULL), DSO_ERR_INPUT);
  // sizes no batch can hold are refused before any allocation
  assert_int_equal(dso_task_simulate_csv(t, out, u, INT_MAX, INT_MAX, 1, 0, 0, NULL),
                   DSO_ERR_INPUT);
  assert_int_equal(dso_task_simulate_csv(t, out, u, 1000000, 10000, 1, 0, 0, NULL),
                   DSO_ERR_INPUT);
  dsoError err = {0};
  assert_int_equal(dso_task_simulate_csv(t, out, u, 1000000, 10000, 1, 0, 0, &err),
                   DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "nepisode 1000000"));
  assert_int_equal(dso_task_simulate_csv(t, out, NULL, 2, 10, 1, 0.1, 1, NULL), DSO_OK);
  FILE* f = fopen(out, "r");
  assert_non_null(f);
  fclose(f);
  dso_task_free(t);
}

// the fit handle: NULL handle, a task without data, NULL arrays, good calls
static void test_fit(void** state) {
  (void)state;
  double x[NTH] = {0}, c = 0;
  int i = 0;
  assert_null(dso_task_fit_create(NULL, NULL));
  assert_int_equal(dso_task_fit_nresidual(NULL, NULL), -1);
  assert_int_equal(dso_task_fit_nfitted(NULL, NULL), -1);
  assert_int_equal(dso_task_fit_fitted(NULL, &i, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_residual(NULL, x, x, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_jacobian(NULL, x, x, x, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_cost(NULL, &c, NULL, x, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_step(NULL, x, &c, &i, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_covariance(NULL, NULL, x, x, NULL), DSO_ERR_INPUT);
  dso_task_fit_free(NULL);

  dsoTask* nodata = dso_task_open(g_fit, 1, NULL);
  assert_non_null(nodata);
  assert_null(dso_task_fit_create(nodata, NULL));
  dso_task_free(nodata);

  dsoTask* t = dso_task_open(g_fit, 0, NULL);
  assert_non_null(t);
  dsoTaskFit* fit = dso_task_fit_create(t, NULL);
  assert_non_null(fit);
  int nr = dso_task_fit_nresidual(fit, NULL);
  int nf = dso_task_fit_nfitted(fit, NULL);
  assert_true(nr > 0);
  assert_int_equal(nf, 2);  // the armature is fixed
  int idx[NTH] = {-1, -1, -1};
  assert_int_equal(dso_task_fit_fitted(fit, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_fitted(fit, idx, NULL), DSO_OK);
  assert_true(idx[0] == 0 && idx[1] == 1);
  double u[NTH], un[NTH] = {0, INFINITY, 0};
  dso_task_theta_init(t, u, NULL);
  double* r = calloc((size_t)nr, sizeof(double));
  double* r2 = calloc((size_t)nr, sizeof(double));
  double* J = calloc((size_t)nr * NTH, sizeof(double));
  assert_true(r && r2 && J);
  assert_int_equal(dso_task_fit_residual(fit, NULL, u, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_residual(fit, r, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_residual(fit, r, un, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_residual(fit, r, u, NULL), DSO_OK);
  dsoError err = {0};
  assert_int_equal(dso_task_fit_residual(fit, r2, u, &err), DSO_OK);
  assert_memory_equal(r, r2, (size_t)nr * sizeof(double));
  double half = 0;
  for (int k = 0; k < nr; k++) half += 0.5 * r[k] * r[k];
  double cost = 0, parts[3];
  assert_int_equal(dso_task_fit_cost(fit, &cost, parts, u, NULL), DSO_OK);
  assert_near(cost, half, 1e-9 * (1 + half));
  assert_int_equal(dso_task_fit_cost(fit, NULL, NULL, u, NULL), DSO_OK);
  assert_int_equal(dso_task_fit_cost(fit, &cost, NULL, un, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_jacobian(fit, NULL, r, u, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_jacobian(fit, J, NULL, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_jacobian(fit, J, NULL, u, NULL), DSO_OK);
  double se[NTH], cov[NTH * NTH];
  assert_int_equal(dso_task_fit_covariance(fit, cov, se, NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_covariance(fit, cov, se, u, NULL), DSO_OK);
  assert_true(isfinite(se[0]) && se[0] > 0);
  assert_int_equal(dso_task_fit_covariance(fit, NULL, NULL, u, NULL), DSO_OK);
  int done = -1;
  assert_int_equal(dso_task_fit_step(fit, NULL, &c, &done, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_step(fit, un, &c, &done, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_fit_step(fit, u, &c, &done, NULL), DSO_OK);
  assert_true(c <= cost && (done == 0 || done == 1));
  assert_int_equal(dso_task_fit_step(fit, u, NULL, NULL, NULL), DSO_OK);
  free(r);
  free(r2);
  free(J);
  dso_task_fit_free(fit);
  dso_task_free(t);
}

// the chain objective: NULL handle, bad sizes and iteration, NULL and non-finite u, good calls
static void test_chain_cost(void** state) {
  (void)state;
  double c = 0;
  double x[1] = {0};
  assert_null(dso_task_chain_cost_create(NULL, 2, 2, 1, NULL));
  assert_int_equal(dso_task_chain_cost_eval(NULL, &c, NULL, NULL, NULL, NULL, x, 0, NULL),
                   DSO_ERR_INPUT);
  dso_task_chain_cost_free(NULL);
  dsoTask* t = dso_task_open(g_chain, 0, NULL);
  assert_non_null(t);
  assert_null(dso_task_chain_cost_create(t, 1, 10, 1, NULL));  // standard errors need 2
  assert_null(dso_task_chain_cost_create(t, INT_MAX, INT_MAX, 1, NULL));  // no batch holds it
  dsoError err0 = {0};
  assert_null(dso_task_chain_cost_create(t, 1000000, 10000, 1, &err0));
  assert_int_equal(err0.code, DSO_ERR_INPUT);
  assert_non_null(strstr(err0.msg, "nrollout 1000000"));
  dsoTaskChainCost* cc = dso_task_chain_cost_create(t, 4, 30, 7, NULL);
  assert_non_null(cc);
  int n = dso_task_ntheta(t, NULL);
  double* u = calloc((size_t)n, sizeof(double));
  double* g = calloc((size_t)n, sizeof(double));
  double* g2 = calloc((size_t)n, sizeof(double));
  assert_true(u && g && g2);
  dso_task_theta_init(t, u, NULL);
  double J = NAN, Jse = NAN, J2 = NAN;
  int div = -1;
  assert_int_equal(dso_task_chain_cost_eval(cc, &J, &Jse, g, NULL, &div, NULL, 0, NULL),
                   DSO_ERR_INPUT);
  assert_int_equal(dso_task_chain_cost_eval(cc, &J, &Jse, g, NULL, &div, u, -1, NULL),
                   DSO_ERR_INPUT);
  assert_int_equal(dso_task_chain_cost_eval(cc, &J, &Jse, g, NULL, &div, u, 0, NULL), DSO_OK);
  assert_true(isfinite(J) && isfinite(Jse) && div == 0);
  dsoError err = {0};
  assert_int_equal(dso_task_chain_cost_eval(cc, &J2, NULL, g2, NULL, NULL, u, 0, &err), DSO_OK);
  assert_true(J2 == J);  // common random numbers: same key, same sample
  assert_memory_equal(g, g2, (size_t)n * sizeof(double));
  assert_int_equal(dso_task_chain_cost_eval(cc, NULL, NULL, NULL, NULL, NULL, u, 1, NULL),
                   DSO_OK);
  u[0] = NAN;
  assert_int_equal(dso_task_chain_cost_eval(cc, &J, NULL, NULL, NULL, NULL, u, 0, NULL),
                   DSO_ERR_INPUT);
  free(u);
  free(g);
  free(g2);
  dso_task_chain_cost_free(cc);
  dso_task_free(t);
}

// the run handle: NULL, tasks with nothing to optimize or without data, good fit steps
static void test_run(void** state) {
  (void)state;
  double x[NTH] = {0}, c = 0;
  int done = 0;
  assert_null(dso_task_run_create(NULL, NULL));
  assert_int_equal(dso_task_run_max_iter(NULL, NULL), -1);
  assert_int_equal(dso_task_run_step(NULL, x, &c, &done, NULL), DSO_ERR_INPUT);
  dso_task_run_free(NULL);
  dsoTask* none = dso_task_open(g_none, 0, NULL);
  assert_non_null(none);
  assert_int_equal(dso_task_kind(none, NULL), DSO_TASK_KIND_NONE);
  assert_null(dso_task_run_create(none, NULL));
  dso_task_free(none);
  dsoTask* nodata = dso_task_open(g_fit, 1, NULL);
  assert_non_null(nodata);
  assert_null(dso_task_run_create(nodata, NULL));
  dso_task_free(nodata);

  dsoTask* t = dso_task_open(g_fit, 0, NULL);
  assert_non_null(t);
  dsoTaskRun* run = dso_task_run_create(t, NULL);
  assert_non_null(run);
  assert_int_equal(dso_task_run_max_iter(run, NULL), 3);
  double u[NTH], un[NTH] = {0, 0, NAN};
  dso_task_theta_init(t, u, NULL);
  assert_int_equal(dso_task_run_step(run, NULL, &c, &done, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_run_step(run, un, &c, &done, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_task_run_step(run, u, &c, &done, NULL), DSO_OK);
  assert_true(isfinite(c));
  assert_int_equal(dso_task_run_step(run, u, NULL, NULL, NULL), DSO_OK);
  dso_task_run_free(run);
  dso_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_and_version), cmocka_unit_test(test_open),
      cmocka_unit_test(test_task_accessors),    cmocka_unit_test(test_simulate),
      cmocka_unit_test(test_fit),               cmocka_unit_test(test_chain_cost),
      cmocka_unit_test(test_run),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
