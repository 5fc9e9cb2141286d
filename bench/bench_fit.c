// Benchmark: Levenberg-Marquardt system identification of the two-link arm (tasks/arm_sysid.json)
// on the noise-free dataset of the main job (`dso simulate tasks/arm_sysid.json --excitation 0.6
// --validation 2 --values tasks/truth/arm_sysid.json`: 4 episodes of 500 samples, seed 5, the
// last 2 for validation), made here with the library's dso_simulate, from 9 starts:
//   init   the task's initial values
//   x1.3, x2, x0.5   every entry at that multiple of its true value
//   mix1..mix5       every entry at 0.5x or 2x of its true value, by the patterns of
//                    mixed_pattern (printed; L = 0.5x, H = 2x, in the task's entry order)
// For each start it prints the LM iterations and mj_step calls until the cost first reaches 1e-6,
// the final cost, the iterations until the fit stops, the largest relative error of an entry and
// how the fit stopped. A start converges when the final cost is <= 1e-6 and every entry is
// within 1e-4 relative of the truth. Exit status 1 when a start does not converge.
//
// With --pendulum it fits the real free-swing recording instead (tasks/pendulum_sysid.json, from
// the task's initial values, the task's settings) and prints the standard errors of every kind
// (classic s² (JᵀJ)⁻¹, window sandwich, window jackknife) beside the spread of the estimates
// fitted to each training segment alone: the standard deviation over the K segments and its
// SE of the pooled estimate, sd / sqrt(K).
//
// usage: bench_fit [--jacobian central|forward] [--max-iter N] [--only NAME] [--trace]
//        bench_fit --pendulum [--jacobian central|forward]
// (--trace prints every iteration: cost, damping, gradient norm, steps, values / truth)
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dso_internal.h"
#include "config/json.h"

#define NMIXED 5
#define DSO_BENCH_MAXN 64

// 0.5x / 2x pattern k (0..4) over n entries: alternating both ways (k = 0: LHLH..., k = 1:
// HLHL...), then a fair coin per entry from dso_rng seeded (k - 1, 0, 0) (L when uniform < 0.5)
static void mixed_pattern(char* pat, int k, int n) {
  dsoRng rng;
  dso_rng_seed(&rng, (uint64_t)(k - 1), 0, 0);
  for (int i = 0; i < n; i++) {
    pat[i] = k == 0 ? (i % 2 ? 'H' : 'L') : k == 1 ? (i % 2 ? 'L' : 'H')
             : dso_rng_uniform(&rng) < 0.5 ? 'L' : 'H';
  }
  pat[n] = 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
  int iter_1e6;     // iterations until cost <= 1e-6 (-1: never)
  long steps_1e6;   // mj_step calls until then
  int iter;         // iterations until the fit stopped
  long steps;       // mj_step calls in all
  double cost0, cost, maxrel;
  int worst;        // entry with the largest relative error
  double secs;
} dsoBenchRun;

static int run_start(dsoBenchRun* out, const dsoTask* task, const dsoDataset* ds,
                     const dsoFitSettings* fs, const double* u0, const double* vtrue,
                     int max_iter, int trace, dsoError* err) {
  const dsoTheta* th = task->theta;
  int n = th->n;
  double* u = calloc((size_t)n, sizeof(double));
  double* v = calloc((size_t)n, sizeof(double));
  memcpy(u, u0, sizeof(double) * (size_t)n);
  memset(out, 0, sizeof(*out));
  out->iter_1e6 = -1;
  dsoFit* f = dso_fit_create(task->model, th, ds, fs, err);
  dsoFitReport rep;
  int ok = f && dso_fit_evaluate(f, u, &rep, err) == DSO_OK;
  out->cost0 = ok ? rep.cost : NAN;
  double t0 = now();
  int done = 0;
  while (ok && !done && out->iter < max_iter) {
    ok = dso_fit_step(f, u, &rep, &done, err) == DSO_OK;
    if (!ok) {
      break;
    }
    out->iter++;
    if (trace) {
      dso_theta_natural(th, v, u);
      printf("  iter %3d cost %.6e lambda %.1e |g| %.2e steps %ld:", out->iter, rep.cost,
             rep.lambda, rep.grad_norm, rep.steps);
      for (int i = 0; i < n; i++) {
        printf(" %.4g", v[i] / vtrue[i]);
      }
      printf("\n");
    }
    if (out->iter_1e6 < 0 && rep.cost <= 1e-6) {
      out->iter_1e6 = out->iter;
      out->steps_1e6 = rep.steps;
    }
  }
  out->secs = now() - t0;
  if (ok) {
    out->cost = rep.cost;
    out->steps = rep.steps;
    dso_theta_natural(th, v, u);
    for (int i = 0; i < n; i++) {
      double rel = fabs(v[i] - vtrue[i]) / fabs(vtrue[i]);
      if (rel > out->maxrel || i == 0) {
        out->maxrel = rel;
        out->worst = i;
      }
    }
  }
  dso_fit_free(f);
  free(u);
  free(v);
  return ok;
}

// fits u (from the task's initial values) to the training episodes of ds; returns 0 on failure
static int fit_pendulum(double* u, dsoFitReport* rep, const dsoTask* task, const dsoDataset* ds,
                        const dsoFitSettings* fs, double* se3, dsoError* err) {
  const dsoTheta* th = task->theta;
  dso_theta_init(th, u);
  dsoFit* f = dso_fit_create(task->model, th, ds, fs, err);
  int ok = f != NULL, done = 0;
  while (ok && !done && rep->iter < fs->max_iter) {
    ok = dso_fit_step(f, u, rep, &done, err) == DSO_OK;
  }
  const dsoFitSe kinds[3] = {DSO_FIT_SE_IID, DSO_FIT_SE_SANDWICH, DSO_FIT_SE_JACKKNIFE};
  for (int k = 0; ok && se3 && k < 3; k++) {
    ok = dso_fit_covariance_kind(f, u, kinds[k], NULL, se3 + (size_t)k * th->n, err) == DSO_OK;
  }
  if (ok && se3) {
    printf("  %d windows, %d entries at a bound, default standard error: %s\n",
           dso_fit_nwindows(f), rep->nbound,
           dso_fit_se_auto(f, u) == DSO_FIT_SE_JACKKNIFE ? "jackknife" : "iid");
  }
  dso_fit_free(f);
  return ok;
}

// the real pendulum: standard errors against the spread over segments
static int pendulum(int jacobian) {
  dsoError err = {0};
  dsoTask* task = dso_task_load(DSO_SOURCE_DIR "/tasks/pendulum_sysid.json", &err);
  if (!task) {
    fprintf(stderr, "bench_fit: %s\n", err.msg);
    return 1;
  }
  const dsoTheta* th = task->theta;
  const dsoDataset* ds = task->data;
  int n = th->n, status = 0, K = 0;
  dsoFitSettings fs;
  double* u = calloc((size_t)n, sizeof(double));
  double* v = calloc((size_t)n, sizeof(double));
  double* se3 = calloc((size_t)n * 3, sizeof(double));
  double* seg = calloc((size_t)n * (size_t)ds->nepisode, sizeof(double));
  dsoDataset* one = NULL;
  dso_fit_settings_default(&fs);
  if (task->fit) fs = *task->fit;  // the task's "fit" section, read at load
  if (jacobian >= 0) {
    fs.jacobian = jacobian;
  }
  dsoFitReport rep;
  memset(&rep, 0, sizeof(rep));
  double t0 = now();
  printf("pendulum_sysid (real data): all training segments, window %d, up to %d iterations\n",
         fs.window, fs.max_iter);
  if (!fit_pendulum(u, &rep, task, ds, &fs, se3, &err)) {
    fprintf(stderr, "bench_fit: %s\n", err.msg);
    status = 1;
    goto done;
  }
  printf("  cost %.6g after %d iterations (stop %d), %ld mj_step, %.1f s\n", rep.cost, rep.iter,
         rep.stop, rep.steps, now() - t0);
  dso_theta_natural(th, v, u);
  // each training segment alone
  for (int e = 0; e < ds->nepisode; e++) {
    const dsoEpisode* ep = &ds->episode[e];
    if (ep->validation) {
      continue;
    }
    if (dso_dataset_create(&one, task->model, &err) != DSO_OK ||
        dso_dataset_add_episode(one, task->model, ep->T, &err) < 0) {
      fprintf(stderr, "bench_fit: %s\n", err.msg);
      status = 1;
      goto done;
    }
    const mjModel* m = task->model;
    dsoEpisode* o = &one->episode[0];
    memcpy(o->time, ep->time, sizeof(double) * (size_t)ep->T);
    memcpy(o->qpos, ep->qpos, sizeof(double) * (size_t)ep->T * m->nq);
    memcpy(o->qvel, ep->qvel, sizeof(double) * (size_t)ep->T * m->nv);
    memcpy(o->ctrl, ep->ctrl, sizeof(double) * (size_t)ep->T * m->nu);
    memcpy(o->sensordata, ep->sensordata, sizeof(double) * (size_t)ep->T * m->nsensordata);
    int len[DSO_NDATA] = {m->nq, m->nv, m->nu, m->nsensordata};
    for (int g = 0; g < DSO_NDATA; g++) {
      memcpy(one->has[g], ds->has[g], sizeof(int) * (size_t)len[g]);
    }
    one->dt = ds->dt;
    dsoFitReport r1;
    memset(&r1, 0, sizeof(r1));
    double* us = seg + (size_t)K * n;
    if (!fit_pendulum(us, &r1, task, one, &fs, NULL, &err)) {
      fprintf(stderr, "bench_fit: segment %ld: %s\n", ep->id, err.msg);
      status = 1;
      goto done;
    }
    dso_theta_natural(th, us, us);
    printf("  segment %ld alone: cost %.6g after %d iterations, %d at a bound\n", ep->id,
           r1.cost, r1.iter, r1.nbound);
    dso_dataset_free(one);
    one = NULL;
    K++;
  }
  printf("  %-28s %12s %10s %10s %10s %10s %10s %7s\n", "entry", "value", "se iid", "sandwich",
         "jackknife", "seg sd", "sd/sqrt(K)", "ratio");
  for (int i = 0; i < n; i++) {
    if (th->entry[i].fixed) {
      continue;
    }
    double mean = 0, var = 0;
    for (int k = 0; k < K; k++) {
      mean += seg[(size_t)k * n + i] / K;
    }
    for (int k = 0; k < K; k++) {
      double d = seg[(size_t)k * n + i] - mean;
      var += d * d / (K > 1 ? K - 1 : 1);
    }
    double spread = sqrt(var / K);
    printf("  %-28s %12.6g %10.3g %10.3g %10.3g %10.3g %10.3g %7.1f  (segments:",
           th->entry[i].name, v[i], se3[i], se3[n + i], se3[2 * n + i], sqrt(var), spread,
           spread / se3[i]);
    for (int k = 0; k < K; k++) {
      printf(" %.4g", seg[(size_t)k * n + i]);
    }
    printf(")\n");
  }
  printf("  (ratio: sd/sqrt(K) over the classic se; NaN se: the entry is at a bound)\n");
done:
  dso_dataset_free(one);
  free(u);
  free(v);
  free(se3);
  free(seg);
  dso_task_free(task);
  return status;
}

int main(int argc, char** argv) {
  const char* jac = NULL;
  const char* only = NULL;
  int max_iter = 200, trace = 0, pend = 0;
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--jacobian") && a + 1 < argc) {
      jac = argv[++a];
    } else if (!strcmp(argv[a], "--max-iter") && a + 1 < argc) {
      max_iter = atoi(argv[++a]);
    } else if (!strcmp(argv[a], "--pendulum")) {
      pend = 1;
    } else if (!strcmp(argv[a], "--trace")) {
      trace = 1;
    } else if (!strcmp(argv[a], "--only") && a + 1 < argc) {
      only = argv[++a];
    } else {
      fprintf(stderr, "usage: bench_fit [--jacobian central|forward] [--max-iter N] "
                      "[--only NAME] [--trace] [--pendulum]\n");
      return 2;
    }
  }
  if (pend) {
    return pendulum(!jac ? -1 : strcmp(jac, "central") ? DSO_FIT_JACOBIAN_FORWARD
                                                         : DSO_FIT_JACOBIAN_CENTRAL);
  }
  dsoError err = {0};
  dsoTask* task = dso_task_load_flags(DSO_SOURCE_DIR "/tasks/arm_sysid.json", DSO_TASK_SKIP_DATA,
                                      &err);
  if (!task) {
    fprintf(stderr, "bench_fit: %s\n", err.msg);
    return 1;
  }
  const dsoTheta* th = task->theta;
  int n = th->n;
  if (n > DSO_BENCH_MAXN) {
    fprintf(stderr, "bench_fit: the task has %d entries, at most %d expected\n", n,
            DSO_BENCH_MAXN);
    dso_task_free(task);
    return 1;
  }
  double* ut = calloc((size_t)n, sizeof(double));
  double* vt = calloc((size_t)n, sizeof(double));
  double* u0 = calloc((size_t)n, sizeof(double));
  double* v0 = calloc((size_t)n, sizeof(double));
  dso_theta_init(th, ut);
  char* text = dso_read_text_file(DSO_SOURCE_DIR "/tasks/truth/arm_sysid.json", &err);
  dsoDataset* ds = NULL;
  dsoFitSettings fs;
  int status = 0;
  if (!text ||
      dso_theta_from_json(th, ut, text, "tasks/truth/arm_sysid.json", &err) != DSO_OK ||
      dso_simulate(&ds, task, ut, 4, 500, 5, 0.6, 2, &err) != DSO_OK) {
    fprintf(stderr, "bench_fit: %s\n", err.msg);
    status = 1;
    goto done;
  }
  dso_fit_settings_default(&fs);
  if (task->fit) fs = *task->fit;  // the task's "fit" section, read at load
  if (jac) {
    if (strcmp(jac, "forward") && strcmp(jac, "central")) {
      fprintf(stderr, "bench_fit: --jacobian: expected forward or central, got %s\n", jac);
      status = 2;
      goto done;
    }
    fs.jacobian = strcmp(jac, "central") ? DSO_FIT_JACOBIAN_FORWARD : DSO_FIT_JACOBIAN_CENTRAL;
  }
  ds->dt = task->model->opt.timestep;  // one sample per step, as the CSV of the main job reads
  dso_theta_natural(th, vt, ut);
  printf("arm_sysid: %d entries, %d episodes x 500 samples (2 validation), window %d, %d "
         "threads, up to %d iterations (the task allows %d)%s%s\n",
         n, ds->nepisode, fs.window, fs.threads, max_iter, fs.max_iter, jac ? ", jacobian " : "",
         jac ? jac : "");
  printf("%-6s %-10s %10s %6s %9s %10s %6s %9s %9s %-30s %6s\n", "start", "pattern", "cost0",
         "it1e-6", "steps1e-6", "cost", "iter", "steps", "max rel", "worst entry", "secs");
  int nok = 0, nrun = 0;
  for (int s = 0; s < 4 + NMIXED; s++) {
    char name[16], pat[DSO_BENCH_MAXN + 1] = "";
    if (s == 0) {
      snprintf(name, sizeof(name), "init");
      dso_theta_init(th, u0);
    } else {
      if (s > 3) {
        mixed_pattern(pat, s - 4, n);
      }
      for (int i = 0; i < n; i++) {
        double k = s == 1 ? 1.3 : s == 2 ? 2.0 : s == 3 ? 0.5 : pat[i] == 'L' ? 0.5 : 2;
        v0[i] = k * vt[i];
      }
      if (s <= 3) {
        snprintf(name, sizeof(name), "x%g", s == 1 ? 1.3 : s == 2 ? 2.0 : 0.5);
      } else {
        snprintf(name, sizeof(name), "mix%d", s - 3);
      }
      if (dso_theta_unconstrained(th, u0, v0, &err) != DSO_OK) {
        fprintf(stderr, "bench_fit: start %s: %s\n", name, err.msg);
        status = 1;
        goto done;
      }
    }
    if (only && strcmp(only, name)) {
      continue;
    }
    dsoBenchRun r;
    dso_error_clear(&err);
    int ok = run_start(&r, task, ds, &fs, u0, vt, max_iter, trace, &err);
    nrun++;
    int conv = ok && r.cost <= 1e-6 && r.maxrel <= 1e-4;
    nok += conv;
    printf("%-6s %-10s %10.4g %6d %9ld %10.3g %6d %9ld %9.2e %-30s %6.2f %s\n", name, pat,
           r.cost0, r.iter_1e6, r.iter_1e6 > 0 ? r.steps_1e6 : -1L, r.cost, r.iter, r.steps,
           r.maxrel, th->entry[r.worst].name, r.secs,
           !ok ? err.msg : conv ? "converged" : "NOT converged");
    fflush(stdout);
  }
  printf("%d of %d starts converged (cost <= 1e-6, every entry within 1e-4 relative)\n", nok,
         nrun);
  status = nok == nrun ? 0 : 1;
done:
  free(text);
  free(ut);
  free(vt);
  free(u0);
  free(v0);
  dso_dataset_free(ds);
  dso_task_free(task);
  return status;
}
