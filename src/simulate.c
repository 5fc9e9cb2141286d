// Synthetic datasets: the task's chain run at a true θ and recorded episode by episode.
#include "simulate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mj.h"
#include "mjchain.h"
#include "sim.h"

// the entry "action_noise.<actuator>.std" with natural value std, parsed like a task entry
static dsoStatus noise_entry(dsoThetaEntry* out, const mjModel* m, int actuator, double std,
                             dsoError* err) {
  const char* name = mj_id2name(m, mjOBJ_ACTUATOR, actuator);
  if (!name || !name[0]) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: excitation: actuator #%d has no name, so it "
                     "cannot get an action_noise entry; name it or give excitation 0", actuator);
  }
  char json[DSO_NAME_LEN + 128];
  snprintf(json, sizeof(json), "{\"name\": \"action_noise.%s.std\", \"init\": %.17g}", name, std);
  return dso_task_parse_entry(out, m, json, "simulate", "excitation", err);
}

// θ layout and values (ue, unconstrained) with the excitation folded into the action noise:
// σ -> sqrt(σ² + e²) where an entry exists, new entries of std e elsewhere
static dsoTheta* excited_theta(double** ue, const dsoTask* task, const double* u, double e,
                               dsoError* err) {
  const dsoTheta* th = task->theta;
  const mjModel* m = task->model;
  int nu = m->nu, n = 0;
  dsoThetaEntry* entries = (dsoThetaEntry*)calloc((size_t)(th->n + nu) + 1, sizeof(dsoThetaEntry));
  int* covered = (int*)calloc((size_t)nu + 1, sizeof(int));
  dsoTheta* out = NULL;
  *ue = NULL;
  if (!entries || !covered) {
    dso_error(err, DSO_ERR_MEMORY, "simulate: out of memory");
    goto done;
  }
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* src = &th->entry[i];
    if (src->bind.kind == DSO_BIND_ACTION_STD) {
      double s = dso_theta_entry_natural(src, u[i]);
      covered[src->bind.target] = 1;
      if (noise_entry(&entries[n], m, src->bind.target, sqrt(s * s + e * e), err)) {
        goto done;
      }
    } else {
      entries[n] = *src;
    }
    n++;
  }
  for (int a = 0; a < nu; a++) {
    if (!covered[a] && noise_entry(&entries[n++], m, a, e, err)) {
      goto done;
    }
  }
  if (!(out = dso_theta_create(entries, n, err))) {
    goto done;
  }
  if (!(*ue = (double*)calloc((size_t)n + 1, sizeof(double)))) {
    dso_theta_free(out);
    out = NULL;
    dso_error(err, DSO_ERR_MEMORY, "simulate: out of memory");
    goto done;
  }
  // new noise entries start at their init; every other entry keeps its value from u
  dso_theta_init(out, *ue);
  for (int j = 0; j < n; j++) {
    int i = dso_theta_find(th, out->entry[j].name);
    if (i >= 0 && out->entry[j].bind.kind != DSO_BIND_ACTION_STD) {
      (*ue)[j] = u[i];
    }
  }
done:
  free(entries);
  free(covered);
  return out;
}

// first step of rollout n whose next state is flagged diverged (or its length when none is)
static int divergence_step(const dsoMjChain* mc, const dsoRollout* ro, int n) {
  for (int t = 1; t <= ro->len[n]; t++) {
    if (dso_rollout_state(ro, n, t)[mc->off_flag] != 0) {
      return t - 1;
    }
  }
  return ro->len[n];
}

typedef struct {
  const mjModel* m;
  mjData* d;
} dsoSimulateForward;

static void forward_call(void* p) {
  dsoSimulateForward* a = (dsoSimulateForward*)p;
  mj_forward(a->m, a->d);
}

// copies rollout n into episode ep (horizon rows); sim (θ written) computes every row's
// measurement at (x_t, a_t) as the fit's calibration residual does; when the chain samples y
// (chain_y set) its noise draw is kept: y = gain ⊙ sensordata(x_t, a_t) + offset + (y_chain -
// gain ⊙ sensordata(x_t, a_{t-1}) - offset), bitwise y_chain where the two sensor values agree
static dsoStatus record_episode(dsoEpisode* ep, const mjModel* m, const dsoMjChain* mc,
                                const dsoRollout* ro, int n, dsoSim* sim, int chain_y,
                                double* y_nf, dsoError* err) {
  int nq = m->nq, nv = m->nv, nu = m->nu, ns = m->nsensordata;
  for (int t = 0; t < ep->T; t++) {
    const double* x = dso_rollout_state(ro, n, t);
    const double* xn = dso_rollout_state(ro, n, t + 1);
    ep->time[t] = t * m->opt.timestep;
    memcpy(ep->qpos + (size_t)t * nq, x, sizeof(double) * (size_t)nq);
    memcpy(ep->qvel + (size_t)t * nv, x + nq, sizeof(double) * (size_t)nv);
    memcpy(ep->ctrl + (size_t)t * nu, xn + mc->off_a, sizeof(double) * (size_t)nu);
    if (ns == 0) {
      continue;
    }
    // the state x_t with its own control a_t, inputs and solver start as fit.c sets them
    mjData* d = sim->d;
    memset(d->warning, 0, sizeof(d->warning));
    mju_zero(d->qacc_warmstart, nv);
    mju_zero(d->xfrc_applied, 6 * m->nbody);
    d->time = ep->time[t];
    dso_mj_state_set(d, sim->m, x);
    mju_copy(d->ctrl, xn + mc->off_a, nu);
    mju_copy(d->qfrc_applied, sim->qfrc, nv);
    dsoSimulateForward a = {sim->m, d};
    dsoStatus st = dso_mj_trap(forward_call, &a, err);
    if (st) {
      dso_error_prefix(err, "simulate: episode %d, sample %d: measuring: ", n, t);
      return st;
    }
    double* y = ep->sensordata + (size_t)t * ns;
    dso_sim_measure(sim, y_nf);
    if (!chain_y) {
      memcpy(y, y_nf, sizeof(double) * (size_t)ns);
      continue;
    }
    const double* yc = xn + mc->off_y;
    const double* sd_prev = xn + mc->off_sd;  // sensordata the chain read, with a_{t-1}
    for (int i = 0; i < ns; i++) {
      if (d->sensordata[i] == sd_prev[i]) {
        y[i] = yc[i];
      } else {
        double noise = yc[i] - (sim->sensor_gain[i] * sd_prev[i] + sim->sensor_offset[i]);
        y[i] = y_nf[i] + noise;
      }
    }
  }
  return DSO_OK;
}

dsoStatus dso_simulate(dsoDataset** out, const dsoTask* task, const double* u, int nepisode,
                       int horizon, uint64_t seed, double excitation, int nvalidation,
                       dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  if (!out) {
    return dso_error(err, DSO_ERR_INPUT, "dso_simulate: no output pointer");
  }
  *out = NULL;
  if (!task || !task->model || !task->theta) {
    return dso_error(err, DSO_ERR_INPUT, "dso_simulate: no task");
  }
  if (nepisode < 1 || horizon < 1) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: %s=%d must be >= 1",
                     nepisode < 1 ? "episodes" : "horizon", nepisode < 1 ? nepisode : horizon);
  }
  if (!(excitation >= 0) || !isfinite(excitation)) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: excitation=%g must be finite and >= 0",
                     excitation);
  }
  if (nvalidation < 0 || nvalidation > nepisode) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: validation=%d must be in [0, %d] (the "
                     "number of episodes)", nvalidation, nepisode);
  }
  const mjModel* m = task->model;
  int n = task->theta->n;
  dsoStatus st = DSO_OK;
  double* u0 = (double*)calloc((size_t)n + 1, sizeof(double));
  double* ue = NULL;
  dsoTheta* th_exc = NULL;
  dsoMjChain* mc = NULL;
  dsoRollout* ro = NULL;
  dsoSim* sim = NULL;
  dsoDataset* ds = NULL;
  double* y_nf = NULL;  // (nsensordata) noise-free measurement of one row
  if (!u0) {
    st = dso_error(err, DSO_ERR_MEMORY, "simulate: out of memory");
    goto done;
  }
  if (u) {
    memcpy(u0, u, sizeof(double) * (size_t)n);
  } else {
    dso_theta_init(task->theta, u0);
  }
  for (int i = 0; i < n; i++) {
    if (!isfinite(u0[i])) {
      st = dso_error(err, DSO_ERR_INPUT, "simulate: theta entry %s: value is not finite",
                     task->theta->entry[i].name);
      goto done;
    }
  }
  const dsoTheta* th = task->theta;
  const double* uc = u0;
  if (excitation > 0) {
    if (!(th_exc = excited_theta(&ue, task, u0, excitation, err))) {
      st = err->code;
      goto done;
    }
    th = th_exc;
    uc = ue;
  }
  // the task's chain at exactly θ: no domain randomization
  dsoMjChainSettings cs = task->chain;
  cs.randomize_std = NULL;
  if (!(mc = dso_mjchain_create(m, th, task->policy, task->cost, &cs, err))) {
    st = err->code;
    goto done;
  }
  dsoRolloutSettings rs = task->rollout;
  rs.setting = DSO_EPISODIC;
  rs.terminate = 0;
  rs.horizon = horizon;
  rs.seed = seed;
  if (!(rs.gamma > 0 && rs.gamma <= 1)) {
    rs.gamma = 1;
  }
  if ((st = dso_rollout_create(&ro, &mc->chain, &rs, nepisode, err))) {
    goto done;
  }
  dsoError run_err = {0};
  dsoStatus run_st = dso_rollout_run(ro, uc, 0, &run_err);
  int ndiv = 0, first = -1;
  for (int e = 0; e < nepisode; e++) {
    if (ro->end[e] == DSO_END_DIVERGED || ro->len[e] != horizon) {
      first = first < 0 ? e : first;
      ndiv++;
    }
  }
  if (ndiv) {
    int k = divergence_step(mc, ro, first);
    st = dso_error(err, DSO_ERR_NUMERIC, "simulate: episode %d diverged at step %d of %d (t = %g "
                   "s; %d of %d episodes diverged); lower the noise or the horizon, or check "
                   "theta", first, k, horizon, k * m->opt.timestep, ndiv, nepisode);
    goto done;
  }
  if (run_st) {
    *err = run_err;
    st = run_st;
    goto done;
  }
  if (mc->ns != 0 && mc->ns != m->nsensordata) {
    st = dso_error(err, DSO_ERR_INTERNAL, "simulate: chain measures %d of %d sensor values",
                   mc->ns, m->nsensordata);
    goto done;
  }
  // the task's own model (solver warm start as the fit has it), θ written
  if (m->nsensordata > 0) {
    if (!(sim = dso_sim_create(m, err)) || dso_sim_write(sim, th, uc, err)) {
      st = err->code;
      goto done;
    }
    if (!(y_nf = (double*)calloc((size_t)m->nsensordata, sizeof(double)))) {
      st = dso_error(err, DSO_ERR_MEMORY, "simulate: out of memory");
      goto done;
    }
  }
  if ((st = dso_dataset_create(&ds, m, err))) {
    goto done;
  }
  ds->dt = m->opt.timestep;  // sampled at every step: ready for dso_fit_create
  for (int e = 0; e < nepisode; e++) {
    int k = dso_dataset_add_episode(ds, m, horizon, err);
    if (k < 0) {
      st = err->code;
      goto done;
    }
    dsoEpisode* ep = &ds->episode[k];
    ep->validation = e >= nepisode - nvalidation;
    if ((st = record_episode(ep, m, mc, ro, e, sim, mc->ns > 0, y_nf, err))) {
      goto done;
    }
  }
  int sizes[DSO_NDATA] = {m->nq, m->nv, m->nu, m->nsensordata};
  for (int g = 0; g < DSO_NDATA; g++) {
    for (int i = 0; i < sizes[g]; i++) {
      ds->has[g][i] = 1;
    }
  }
  *out = ds;
  ds = NULL;
done:
  dso_dataset_free(ds);
  free(y_nf);
  dso_sim_free(sim);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  dso_theta_free(th_exc);
  free(ue);
  free(u0);
  return st;
}
