// A program on dso's public API only (<dso/dso.h>), built against an installed dso by
// check_install.sh (ctest example_c): opens the task given as argv[1], prints θ by name with
// its natural values, evaluates the task's objective at the initial θ through the flat API (the
// fit cost of a task with data, the chain objective and its pathwise gradient of a task with a
// cost) and the prior, and checks that a bad call fails with a message.
#include <dso/dso.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char* what, const dsoError* err) {
  fprintf(stderr, "example: %s: %s (%s)\n", what, err->msg, dso_status_string(err->code));
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: example TASK.json\n");
    return 2;
  }
  // the headers compiled against and the library linked must agree
  if (dso_version_number() != DSO_VERSION_NUMBER) {
    fprintf(stderr, "example: headers %d, library %d (%s)\n", DSO_VERSION_NUMBER,
            dso_version_number(), dso_version_string());
    return 1;
  }
  printf("dso %s\n", dso_version_string());

  dsoError err = {0};
  dsoTask* task = dso_task_open(argv[1], 0, &err);
  if (!task) return fail("open", &err);
  int rc = 1;
  int n = dso_task_ntheta(task, &err);
  int kind = dso_task_kind(task, &err);
  double* u = n > 0 ? calloc((size_t)n, sizeof(double)) : NULL;
  double* v = n > 0 ? calloc((size_t)n, sizeof(double)) : NULL;
  double* grad = n > 0 ? calloc((size_t)n, sizeof(double)) : NULL;
  if (n <= 0 || kind < 0 || !u || !v || !grad) {
    fprintf(stderr, "example: %s: ntheta %d, kind %d\n", argv[1], n, kind);
    goto done;
  }
  printf("%s: kind %d, %d θ entries, nq %d, nu %d\n", argv[1], kind, n,
         dso_task_size(task, DSO_TASK_SIZE_NQ, NULL), dso_task_size(task, DSO_TASK_SIZE_NU, NULL));

  // θ at its initial values: unconstrained u and natural v
  if (dso_task_theta_init(task, u, &err) || dso_task_theta_natural(task, v, u, &err)) {
    fail("theta", &err);
    goto done;
  }
  for (int i = 0; i < n && i < 8; i++) {
    printf("  %-36s %12.6g\n", dso_task_theta_name(task, i, NULL), v[i]);
  }
  if (n > 8) printf("  ... (%d more)\n", n - 8);

  double prior = NAN;
  if (dso_task_prior(task, &prior, NULL, u, &err)) {
    fail("prior", &err);
    goto done;
  }
  printf("prior cost %.6g\n", prior);

  if (kind == DSO_TASK_KIND_FIT) {
    dsoTaskFit* fit = dso_task_fit_create(task, &err);
    double cost = NAN;
    if (!fit || dso_task_fit_cost(fit, &cost, NULL, u, &err)) {
      dso_task_fit_free(fit);
      fail("fit", &err);
      goto done;
    }
    printf("fit: %d residuals, cost 0.5|r|^2 = %.6g\n", dso_task_fit_nresidual(fit, NULL), cost);
    dso_task_fit_free(fit);
    if (!isfinite(cost)) goto done;
  } else if (kind == DSO_TASK_KIND_CHAIN) {
    // 8 rollouts of 100 steps, seed 1: a small batch
    dsoTaskChainCost* cc = dso_task_chain_cost_create(task, 8, 100, 1, &err);
    double J = NAN, Jse = NAN;
    if (!cc || dso_task_chain_cost_eval(cc, &J, &Jse, grad, NULL, NULL, u, 0, &err)) {
      dso_task_chain_cost_free(cc);
      fail("chain cost", &err);
      goto done;
    }
    double g2 = 0;
    for (int i = 0; i < n; i++) g2 += grad[i] * grad[i];
    printf("chain: J = %.6g +- %.3g, |dJ/du| = %.6g\n", J, Jse, sqrt(g2));
    dso_task_chain_cost_free(cc);
  }

  // a bad call fails with a status and a message naming what is wrong
  if (dso_task_theta_find(task, "no.such.entry", &err) != -1 || err.code != DSO_ERR_INPUT ||
      !strstr(err.msg, "no.such.entry")) {
    fprintf(stderr, "example: an unknown θ name was not refused (%s)\n", err.msg);
    goto done;
  }
  printf("refused as expected: %s\n", err.msg);
  rc = 0;
done:
  free(u);
  free(v);
  free(grad);
  dso_task_free(task);
  return rc;
}
