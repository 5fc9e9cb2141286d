// dso gradcheck TASK.json: score, pathwise and finite-difference gradients of J, entry by entry.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "dso_internal.h"

static const char* kHelp =
    "usage: dso gradcheck TASK.json [--rollouts N] [--horizon T] [--threads K] [--seed S]\n"
    "                     [--step H] [--tol R] [--no-score]\n\n"
    "Samples a batch of the task's MuJoCo chain at the initial theta and prints, for every\n"
    "theta entry, three estimates of dJ/du (u: the entry's unconstrained coordinate):\n"
    "  score     Algorithm 1 with a state baseline fitted on an earlier batch (theta_mu,\n"
    "            theta_eps, theta_h, theta_xi: parameters of the sampled densities)\n"
    "  pathwise  the adjoint pass with the batch's noise held fixed (every entry)\n"
    "  fd        centered differences of J with common random numbers, step H (default 1e-5)\n"
    "with standard errors from the spread over rollouts, the relative error of pathwise\n"
    "against fd (entries below 1% of the largest are compared to that 1%), and\n"
    "z = (score - pathwise) / se. Exit 1 when a relative error exceeds R (default 1e-4).\n"
    "The task's rollout setting must be episodic or timevarying.\n";

typedef struct {
  int rollouts, horizon, threads, score;
  long seed;
  double step, tol;
} Options;

static int parse_options(Options* o, const dsoTask* t, int argc, char** argv) {
  o->rollouts = t->nrollout;
  o->horizon = t->rollout.horizon;
  o->threads = t->rollout.nthread;
  o->seed = (long)t->rollout.seed;
  o->step = 1e-5;
  o->tol = 1e-4;
  o->score = 1;
  for (int i = 2; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--no-score")) {
      o->score = 0;
      continue;
    }
    static const char* const kValued[] = {"--rollouts", "--horizon", "--threads", "--seed",
                                          "--step", "--tol"};
    int known = 0;
    for (size_t k = 0; k < sizeof(kValued) / sizeof(kValued[0]); k++) {
      known |= !strcmp(a, kValued[k]);
    }
    if (!known) {
      fprintf(stderr, "dso gradcheck: unknown option %s; see dso gradcheck --help\n", a);
      return 0;
    }
    const char* v = dso_args_value(argc, argv, &i, "gradcheck");
    if (!v) {
      return 0;
    }
    long long seed = 0;
    int ok;
    if (!strcmp(a, "--rollouts")) {
      ok = dso_args_int32(&o->rollouts, v, 2, DSO_TASK_MAX_ROLLOUTS, "gradcheck", a);
    } else if (!strcmp(a, "--horizon")) {
      ok = dso_args_int32(&o->horizon, v, 1, DSO_TASK_MAX_HORIZON, "gradcheck", a);
    } else if (!strcmp(a, "--threads")) {
      ok = dso_args_int32(&o->threads, v, 1, 1024, "gradcheck", a);
    } else if (!strcmp(a, "--seed")) {
      ok = dso_args_int(&seed, v, 0, DSO_ARGS_MAX_SEED, "gradcheck", a);
      o->seed = (long)seed;
    } else if (!strcmp(a, "--step")) {
      ok = dso_args_double(&o->step, v, 0, 1, DSO_ARGS_OPEN_LO, "gradcheck", a);
    } else {
      ok = dso_args_double(&o->tol, v, 0, INFINITY, DSO_ARGS_OPEN_LO, "gradcheck", a);
    }
    if (!ok) {
      return 0;
    }
  }
  return 1;
}

int dso_cli_gradcheck(int argc, char** argv) {
  if (dso_cli_wants_help(argc, argv)) {
    fputs(kHelp, stdout);
    return DSO_EXIT_OK;
  }
  if (argc < 2) {
    fputs(kHelp, stderr);
    return DSO_EXIT_INPUT;
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load(argv[1], &err);
  if (!task) {
    return dso_cli_fail("gradcheck", &err);
  }
  Options o;
  if (!parse_options(&o, task, argc, argv)) {
    dso_task_free(task);
    return DSO_EXIT_INPUT;
  }
  if (dso_task_check_batch(task, o.rollouts, o.horizon,
                           o.rollouts != task->nrollout ? "--rollouts" : "rollout.rollouts",
                           o.horizon != task->rollout.horizon ? "--horizon" : "rollout.horizon",
                           &err)) {
    dso_task_free(task);
    return dso_cli_fail("gradcheck", &err);
  }
  if (task->rollout.setting == DSO_AVERAGE) {
    fprintf(stderr, "dso gradcheck: %s: rollout.setting: the pathwise route needs the episodic "
            "or timevarying setting\n", argv[1]);
    dso_task_free(task);
    return DSO_EXIT_INPUT;
  }
  task->chain.feature_horizon = o.horizon;
  dsoMjChain* mc = dso_task_chain(task, &err);
  dsoRolloutSettings rs = task->rollout;
  rs.horizon = o.horizon;
  rs.nthread = o.threads;
  rs.seed = (uint64_t)o.seed;
  int n = task->theta->n, N = o.rollouts;
  double* u = calloc((size_t)n + 1, sizeof(double));
  double* up = calloc((size_t)n + 1, sizeof(double));
  double* gp = calloc((size_t)n + 1, sizeof(double));
  double* sep = calloc((size_t)n + 1, sizeof(double));
  double* gs = calloc((size_t)n + 1, sizeof(double));
  double* ses = calloc((size_t)n + 1, sizeof(double));
  double* fd = calloc((size_t)n + 1, sizeof(double));
  double* sefd = calloc((size_t)n + 1, sizeof(double));
  double* jp = calloc((size_t)N + 1, sizeof(double));
  double* jm = calloc((size_t)N + 1, sizeof(double));
  dsoRollout* ro = NULL;
  dsoGrad* gr = NULL;
  dsoBaseline* bl = NULL;
  int status = DSO_EXIT_OK;
  if (!mc || !u || !up || !gp || !sep || !gs || !ses || !fd || !sefd || !jp || !jm ||
      dso_rollout_create(&ro, &mc->chain, &rs, N, &err) ||
      dso_grad_create(&gr, ro, 0, dso_mjchain_nfeat(mc), &err) ||
      dso_baseline_create(&bl, dso_mjchain_nfeat(mc), dso_mjchain_features, mc, NULL, ro, &err)) {
    status = err.code ? dso_cli_fail("gradcheck", &err) : DSO_EXIT_FAIL;
    goto done;
  }
  dso_theta_init(task->theta, u);
  // the score route: baseline fitted on batch 0, Algorithm 1 on batch 1
  if (o.score) {
    if (dso_rollout_run(ro, u, 0, &err) || dso_baseline_fit(bl, ro, &err) ||
        dso_rollout_run(ro, u, 1, &err) || dso_grad_prepare(gr, ro, bl, &err) ||
        dso_grad_algorithm1(gs, ses, gr, ro, &err)) {
      status = dso_cli_fail("gradcheck", &err);
      goto done;
    }
  } else if (dso_rollout_run(ro, u, 1, &err)) {
    status = dso_cli_fail("gradcheck", &err);
    goto done;
  }
  double J, seJ;
  dso_rollout_objective(&J, &seJ, NULL, ro);
  int diverged = dso_mjchain_diverged(mc, ro);
  if (dso_mjchain_pathwise(gp, sep, mc, ro, &err)) {
    status = dso_cli_fail("gradcheck", &err);
    goto done;
  }
  // centered differences of J with the same random numbers (batch 1 again)
  for (int i = 0; i < n; i++) {
    memcpy(up, u, sizeof(double) * (size_t)n);
    up[i] = u[i] + o.step;
    double dummy;
    if (dso_rollout_run(ro, up, 1, &err)) break;
    dso_rollout_objective(&dummy, NULL, jp, ro);
    up[i] = u[i] - o.step;
    if (dso_rollout_run(ro, up, 1, &err)) break;
    dso_rollout_objective(&dummy, NULL, jm, ro);
    for (int r = 0; r < N; r++) {
      jp[r] = (jp[r] - jm[r]) / (2 * o.step);
    }
    dso_mean_se(&fd[i], &sefd[i], jp, N, 1);
  }
  if (err.code) {
    status = dso_cli_fail("gradcheck", &err);
    goto done;
  }
  double scale = 0;
  for (int i = 0; i < n; i++) {
    scale = fmax(scale, fabs(fd[i]));
  }
  printf("task %s: %d rollouts x %d steps, %d threads, seed %ld; J = %.6g +- %.2g; %d diverged\n",
         argv[1], N, o.horizon, o.threads, o.seed, J, seJ, diverged);
  printf("%-34s %24s %24s %24s %10s %8s\n", "entry", "score +- se", "pathwise +- se",
         "fd +- se", "rel(pw,fd)", "z(sc,pw)");
  double worst = 0, worstz = 0;
  int nbad = 0;
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &task->theta->entry[i];
    int has_score = e->block != DSO_BLOCK_PHYSICS && e->block != DSO_BLOCK_CORRECTOR;
    double rel = fabs(gp[i] - fd[i]) / fmax(fabs(fd[i]), 1e-2 * scale);
    if (!(scale > 0)) {
      rel = fabs(gp[i] - fd[i]);
    }
    worst = fmax(worst, rel);
    nbad += rel > o.tol;
    char sc[64] = "-", zs[32] = "-";
    if (has_score && o.score) {
      double z = (gs[i] - gp[i]) / sqrt(ses[i] * ses[i] + sep[i] * sep[i] + 1e-300);
      worstz = fmax(worstz, fabs(z));
      snprintf(sc, sizeof(sc), "%.6g +- %.2g", gs[i], ses[i]);
      snprintf(zs, sizeof(zs), "%.2f", z);
    }
    char pw[64], fs[64];
    snprintf(pw, sizeof(pw), "%.6g +- %.2g", gp[i], sep[i]);
    snprintf(fs, sizeof(fs), "%.6g +- %.2g", fd[i], sefd[i]);
    printf("%-34s %24s %24s %24s %10.2e %8s%s\n", e->name, sc, pw, fs, rel, zs,
           rel > o.tol ? "  FAIL" : "");
  }
  printf("worst relative error pathwise vs fd: %.2e (tolerance %.0e); worst |z| score vs "
         "pathwise: %.2f; %d of %d entries over tolerance\n", worst, o.tol, worstz, nbad, n);
  status = nbad ? DSO_EXIT_FAIL : DSO_EXIT_OK;
done:
  dso_baseline_free(bl);
  dso_grad_free(gr);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  free(u);
  free(up);
  free(gp);
  free(sep);
  free(gs);
  free(ses);
  free(fd);
  free(sefd);
  free(jp);
  free(jm);
  dso_task_free(task);
  return status;
}
