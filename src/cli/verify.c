// dso verify: runs the verification of the DSO estimators on seeded random finite chains and prints
// the table (quantity, exact, estimate, stderr, z / relative error / ratio, pass).
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"
#include "verify/verify.h"

static void verify_usage(FILE* out) {
  fprintf(out,
          "usage: dso verify [--seed N] [--threads N] [--scale X] [--failed]\n\n"
          "Checks every DSO estimator against the exact oracle of random finite chains:\n"
          "Theorems 1-3 (with and without baselines), eq. 67, eq. 76, Lemma 3, the Fisher matrix,\n"
          "the S/D and L/D MDP equivalences, the S-, D-, H-, R- and L-MDP policy gradients,\n"
          "Lemma 4, Z-learning, the natural-gradient identity and the variance reduction.\n\n"
          "  --seed N     seed of the chains and rollouts (default 1)\n"
          "  --threads N  worker threads (default 2; results do not depend on it)\n"
          "  --scale X    multiplies the batch sizes (default 1)\n"
          "  --failed     print only the rows that fail\n\n"
          "Rows: 'z' rows pass if |z| < 4 standard errors, 'rel' rows if the relative error is\n"
          "below the tolerance (1e-9 for exact identities), 'ratio' rows if the variance ratio\n"
          "is at least the tolerance. Exit status 0 if every row passes, 1 otherwise.\n");
}

int dso_cli_verify(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    verify_usage(stdout);
    return DSO_EXIT_OK;
  }
  dsoVerifySettings vs;
  dso_verify_settings_default(&vs);
  int only_failed = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--failed")) {
      only_failed = 1;
      continue;
    }
    if (strcmp(a, "--seed") && strcmp(a, "--threads") && strcmp(a, "--scale")) {
      fprintf(stderr, "dso verify: unknown argument '%s'\n", a);
      verify_usage(stderr);
      return DSO_EXIT_INPUT;
    }
    const char* v = dso_args_value(argc, argv, &i, "verify");
    long long seed = 0;
    int ok = v != NULL;
    if (ok && !strcmp(a, "--seed")) {
      ok = dso_args_int(&seed, v, 0, DSO_ARGS_MAX_SEED, "verify", a);
      vs.seed = (uint64_t)seed;
    } else if (ok && !strcmp(a, "--threads")) {
      ok = dso_args_int32(&vs.nthread, v, 1, 1024, "verify", a);
    } else if (ok) {
      ok = dso_args_double(&vs.scale, v, 0, 100, DSO_ARGS_OPEN_LO, "verify", a);
    }
    if (!ok) {
      return DSO_EXIT_INPUT;
    }
  }
  dsoError err = {0};
  dsoVerifyRow* rows = NULL;
  int n = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  dsoStatus st = dso_verify_run(&rows, &n, &vs, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (st) return dso_cli_fail("verify", &err);
  static const char* kKind[3] = {"z", "rel", "ratio"};
  printf("%-52s %13s %13s %10s %5s %10s %8s  %s\n", "quantity", "exact", "estimate", "stderr",
         "kind", "score", "tol", "result");
  int nfail = 0;
  for (int i = 0; i < n; i++) {
    const dsoVerifyRow* r = &rows[i];
    nfail += !r->pass;
    if (only_failed && r->pass) continue;
    char se[32];
    if (r->kind == DSO_ROW_Z) {
      snprintf(se, sizeof(se), "%10.3g", r->stderr_);
    } else {
      snprintf(se, sizeof(se), "%10s", "-");
    }
    printf("%-52s %13.6g %13.6g %s %5s %10.3g %8.2g  %s\n", r->quantity, r->exact, r->estimate, se,
           kKind[r->kind], r->score, r->tol, r->pass ? "pass" : "FAIL");
  }
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("\n%d rows, %d passed, %d failed (seed %llu, %d threads, scale %g, %.2f s)\n", n, n - nfail,
         nfail, (unsigned long long)vs.seed, vs.nthread, vs.scale, secs);
  dso_verify_free(rows);
  return nfail ? DSO_EXIT_FAIL : DSO_EXIT_OK;
}
