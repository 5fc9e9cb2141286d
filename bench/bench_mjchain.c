// Speed of MuJoCo chains, as ratios to a bare mj_step loop on the same model, one thread:
//   bare      mj_step with constant controls
//   rollout   dso_rollout_run: MLP policy, action noise, costs, ln P of every transition
//   score     Algorithm 1 on that batch (dso_grad_prepare + dso_grad_algorithm1)
//   pathwise  dso_mjchain_pathwise on that batch (A, B, df/dθ_f by differences, adjoint pass)
// on the shipped cartpole and on Debian's humanoid sample. Target: the score gradient costs at most
// 10% more than the rollout it rides on.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dso_internal.h"
#include "config/cost_json.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void bench(const char* path, const char* cost_json, int N, int T, int pathwise_n) {
  dsoError err = {0};
  mjModel* m = dso_mj_load(path, &err);
  if (!m) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  // bare loop
  mjData* d = mj_makeData(m);
  long steps = (long)N * T;
  for (int i = 0; i < m->nu; i++) {
    d->ctrl[i] = 0.1;
  }
  double t0 = now();
  for (long k = 0; k < steps; k++) {
    if (k % T == 0) {
      mj_resetData(m, d);
    }
    mj_step(m, d);
  }
  double bare = (now() - t0) / steps;
  mj_deleteData(d);

  dsoPolicySettings ps;
  dso_policy_settings_default(&ps);
  ps.kind = DSO_POLICY_MLP;
  ps.nhidden = 2;
  ps.hidden[0] = ps.hidden[1] = 32;
  dsoPolicy* pol = dso_policy_create(&ps, m->nq + m->nv + m->na, m->nu, &err);
  int np = dso_policy_np(pol), n = np + m->nu + 1;
  dsoThetaEntry* e = calloc((size_t)n, sizeof(dsoThetaEntry));
  dso_policy_entries(e, np, pol);
  for (int i = 0; i < m->nu; i++) {
    char js[256];
    const char* nm = mj_id2name(m, mjOBJ_ACTUATOR, i);
    snprintf(js, sizeof(js), "{\"name\": \"action_noise.%s.std\", \"init\": 0.1}", nm);
    dso_task_parse_entry(&e[np + i], m, js, "bench", "entry", &err);
  }
  char js[256];
  snprintf(js, sizeof(js), "{\"name\": \"physics.%s.mass\"}", mj_id2name(m, mjOBJ_BODY, 1));
  dso_task_parse_entry(&e[np + m->nu], m, js, "bench", "entry", &err);
  dsoTheta* th = dso_theta_create(e, n, &err);
  dsoCost* cost = dso_cost_from_json(m, cost_json, "bench", "cost", &err);
  dsoMjChain* mc = th && cost ? dso_mjchain_create(m, th, pol, cost, NULL, &err) : NULL;
  if (!mc) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.terminate = 0;
  rs.gamma = 0.99;
  rs.horizon = T;
  rs.nthread = 1;
  dsoRollout* ro = NULL;
  dsoGrad* gr = NULL;
  dso_rollout_create(&ro, &mc->chain, &rs, N, &err);
  dso_grad_create(&gr, ro, 0, 0, &err);
  double* u = calloc((size_t)n, sizeof(double));
  double* g = calloc((size_t)n, sizeof(double));
  dso_theta_init(th, u);
  dso_rollout_run(ro, u, 0, &err);  // warm up
  t0 = now();
  dso_rollout_run(ro, u, 1, &err);
  double roll = (now() - t0) / ro->nsamples;
  t0 = now();
  dso_grad_prepare(gr, ro, NULL, &err);
  dso_grad_algorithm1(g, NULL, gr, ro, &err);
  double score = (now() - t0) / ro->nsamples;
  // pathwise on the first pathwise_n rollouts only (it costs 2 (ndx + nu + nphys) steps per step)
  dsoRollout* rp = NULL;
  dso_rollout_create(&rp, &mc->chain, &rs, pathwise_n, &err);
  dso_rollout_run(rp, u, 1, &err);
  t0 = now();
  dsoStatus s = dso_mjchain_pathwise(g, NULL, mc, rp, &err);
  double pathw = (now() - t0) / rp->nsamples;
  if (err.code || s) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  printf("%s: nq %d nv %d nu %d, MLP 32x32 (%d parameters), %d rollouts x %d steps, 1 thread\n",
         path, m->nq, m->nv, m->nu, np, N, T);
  printf("  %-34s %12.0f steps/s  %8.2f x bare\n", "bare mj_step", 1 / bare, 1.0);
  printf("  %-34s %12.0f steps/s  %8.2f x bare\n", "rollout (policy, noise, cost, ln P)",
         1 / roll, roll / bare);
  printf("  %-34s %12.0f steps/s  %8.2f x bare\n", "score gradient (after the rollout)",
         1 / score, score / bare);
  printf("  %-34s %12.0f steps/s  %8.2f x bare\n", "pathwise gradient (after the rollout)",
         1 / pathw, pathw / bare);
  printf("  score gradient costs %.1f%% more than the rollout it rides on (target <= 10%%)\n",
         100 * score / roll);
  free(u);
  free(g);
  free(e);
  dso_grad_free(gr);
  dso_rollout_free(ro);
  dso_rollout_free(rp);
  dso_mjchain_free(mc);
  dso_cost_free(cost);
  dso_theta_free(th);
  dso_policy_free(pol);
  mj_deleteModel(m);
}

int main(int argc, char** argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 1;
  if (scale < 1) scale = 1;
  bench(DSO_SOURCE_DIR "/models/cartpole.xml",
        "[{\"term\": \"upright\", \"body\": \"pole\"}, {\"term\": \"effort\", \"weight\": 0.01}]",
        200 * scale, 200, 20);
  bench("/usr/share/mujoco/model/humanoid/humanoid.xml",
        "[{\"term\": \"upright\", \"body\": \"torso\"}, {\"term\": \"effort\", \"weight\": 0.01}]",
        20 * scale, 200, 2);
  return 0;
}
