// Synthetic datasets: the task's chain run at a true θ and recorded episode by episode.
#include "apps/simulate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"
#include "mujoco/mjchain.h"
#include "core/rng.h"
#include "mujoco/sim.h"

#define PI 3.14159265358979323846

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
  const mjModel* sm = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  const double* qfrc = dso_sim_qfrc(sim);
  const double* gain = dso_sim_sensor_gain(sim);
  const double* offset = dso_sim_sensor_offset(sim);
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
    memset(d->warning, 0, sizeof(d->warning));
    mju_zero(d->qacc_warmstart, nv);
    mju_zero(d->xfrc_applied, 6 * m->nbody);
    d->time = ep->time[t];
    dso_mj_state_set(d, sm, x);
    mju_copy(d->ctrl, xn + mc->off_a, nu);
    mju_copy(d->qfrc_applied, qfrc, nv);
    dsoSimulateForward a = {sm, d};
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
        double noise = yc[i] - (gain[i] * sd_prev[i] + offset[i]);
        y[i] = y_nf[i] + noise;
      }
    }
  }
  return DSO_OK;
}

// multi-sine excitation of episode e: frequencies (nu x K, Hz) log-spaced over the band and
// interleaved across actuators, so that all are distinct; phases uniform from stream (seed, 1, e)
static void multisine_plan(double* freq, double* phase, int nu, uint64_t seed, int e) {
  int K = DSO_SIMULATE_MULTISINE_SINES;
  double lo = DSO_SIMULATE_MULTISINE_LO, hi = DSO_SIMULATE_MULTISINE_HI;
  dsoRng rng;
  dso_rng_seed(&rng, seed, 1, (uint64_t)e);
  for (int i = 0; i < nu; i++) {
    for (int k = 0; k < K; k++) {
      double x = (k * nu + i + 0.5) / (double)(K * nu);
      freq[i * K + k] = lo * pow(hi / lo, x);
      phase[i * K + k] = 2 * PI * dso_rng_uniform(&rng);
    }
  }
}

// scratch of record_multisine
typedef struct {
  double *x, *s, *h, *mu, *y, *dx, *freq, *phase, *zeta, *xi, *aprev;
  dsoPolicyWork* pw;
} dsoMultisineWork;

static void multisine_work_free(dsoMultisineWork* w) {
  free(w->x);
  free(w->s);
  free(w->h);
  free(w->mu);
  free(w->y);
  free(w->dx);
  free(w->freq);
  free(w->phase);
  free(w->zeta);
  free(w->xi);
  free(w->aprev);
  dso_policy_work_free(w->pw);
}

static dsoStatus multisine_work_create(dsoMultisineWork* w, const mjModel* m,
                                       const dsoMjChain* mc, dsoError* err) {
  memset(w, 0, sizeof(*w));
  size_t nx = (size_t)(m->nq + m->nv + m->na), nu = (size_t)m->nu, ns = (size_t)m->nsensordata;
  size_t K = DSO_SIMULATE_MULTISINE_SINES;
  w->x = (double*)calloc(nx + 1, sizeof(double));
  w->s = (double*)calloc((size_t)mc->nin + 1, sizeof(double));
  w->h = (double*)calloc((size_t)mc->nh + 1, sizeof(double));
  w->mu = (double*)calloc(nu + 1, sizeof(double));
  w->y = (double*)calloc(ns + 1, sizeof(double));
  w->dx = (double*)calloc((size_t)dso_mj_tangent_size(m) + 1, sizeof(double));
  w->freq = (double*)calloc(nu * K + 1, sizeof(double));
  w->phase = (double*)calloc(nu * K + 1, sizeof(double));
  w->zeta = (double*)calloc(ns + 1, sizeof(double));
  w->xi = (double*)calloc(nu + 1, sizeof(double));
  w->aprev = (double*)calloc(nu + 1, sizeof(double));
  if (!w->x || !w->s || !w->h || !w->mu || !w->y || !w->dx || !w->freq || !w->phase ||
      !w->zeta || !w->xi || !w->aprev) {
    multisine_work_free(w);
    return dso_error(err, DSO_ERR_MEMORY, "simulate: out of memory");
  }
  if (mc->policy && !(w->pw = dso_policy_work_create(mc->policy, err))) {
    multisine_work_free(w);
    return err->code;
  }
  return DSO_OK;
}

// runs and records episode e (ep->T rows) under multi-sine excitation: the chain's initial state
// (mean and init_std), its policy on its input, the action noise of θ and the sines; sim has θ
// written (sensor gains, offsets, deviations, action deviations, constant forces)
static dsoStatus record_multisine(dsoEpisode* ep, const mjModel* m, const dsoMjChain* mc,
                                  dsoSim* sim, const double* uc, double excitation,
                                  uint64_t seed, int e, dsoMultisineWork* w, dsoError* err) {
  int nq = m->nq, nv = m->nv, na = m->na, nu = m->nu, ns = m->nsensordata;
  int K = DSO_SIMULATE_MULTISINE_SINES, ndx = dso_mj_tangent_size(m);
  double amp = excitation * sqrt(2.0 / K);  // RMS excitation per actuator
  const mjModel* sm = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  const double* qfrc = dso_sim_qfrc(sim);
  const double* sstd = dso_sim_sensor_std(sim);
  const double* astd = dso_sim_action_std(sim);
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, (uint64_t)e);
  multisine_plan(w->freq, w->phase, nu, seed, e);
  // initial state: the chain's mean, perturbed by init_std in the tangent space
  mj_resetData(sm, d);
  mju_copy(d->qpos, mc->init_qpos, nq);
  mju_copy(d->qvel, mc->init_qvel, nv);
  for (int i = 0; i < ndx; i++) {
    w->dx[i] = mc->init_std[i] > 0 ? mc->init_std[i] * dso_rng_normal(&rng) : 0;
  }
  mj_integratePos(sm, d->qpos, w->dx, 1.0);
  for (int i = 0; i < nv; i++) {
    d->qvel[i] += w->dx[nv + i];
  }
  for (int i = 0; i < na; i++) {
    d->act[i] += w->dx[2 * nv + i];
  }
  memset(w->h, 0, sizeof(double) * (size_t)mc->nh);
  memset(w->aprev, 0, sizeof(double) * (size_t)nu);
  for (int t = 0; t < ep->T; t++) {
    double time = t * m->opt.timestep;
    for (int i = 0; i < ns; i++) {
      w->zeta[i] = dso_rng_normal(&rng);
    }
    for (int i = 0; i < nu; i++) {
      w->xi[i] = dso_rng_normal(&rng);
    }
    dso_mj_state_get(w->x, sm, d);
    // the policy's input: the state, or the measurement under the previous control
    const double* s = w->s;
    mju_copy(d->ctrl, w->aprev, nu);
    mju_copy(d->qfrc_applied, qfrc, nv);
    dsoSimulateForward fw = {sm, d};
    dsoStatus st = dso_mj_trap(forward_call, &fw, err);
    if (st) {
      dso_error_prefix(err, "simulate: episode %d, sample %d: ", e, t);
      return st;
    }
    if (mc->input == DSO_INPUT_STATE) {
      dso_mj_input(w->s, m, mc->periodic, mc->nperiodic, w->x);
    } else {
      dso_sim_measure(sim, w->s);
      for (int i = 0; i < ns; i++) {
        w->s[i] += sstd[i] * w->zeta[i];
      }
    }
    if (mc->policy) {
      dso_policy_forward(w->mu, w->h, mc->policy, w->pw, s, w->h, uc + mc->policy_start);
    } else {
      memset(w->mu, 0, sizeof(double) * (size_t)nu);
    }
    double* a = ep->ctrl + (size_t)t * nu;
    for (int i = 0; i < nu; i++) {
      double sig = 0;
      for (int k = 0; k < K; k++) {
        sig += sin(2 * PI * w->freq[i * K + k] * time + w->phase[i * K + k]);
      }
      a[i] = w->mu[i] + astd[i] * w->xi[i] + amp * sig;
      if (!isfinite(a[i])) {
        return dso_error(err, DSO_ERR_NUMERIC, "simulate: episode %d diverged at step %d (t = "
                         "%g s): the control of actuator %d is not finite", e, t, time, i);
      }
      if (m->actuator_ctrllimited[i]) {
        a[i] = fmin(fmax(a[i], m->actuator_ctrlrange[2 * i]), m->actuator_ctrlrange[2 * i + 1]);
      }
    }
    ep->time[t] = time;
    mju_copy(ep->qpos + (size_t)t * nq, d->qpos, nq);
    mju_copy(ep->qvel + (size_t)t * nv, d->qvel, nv);
    // the row's measurement at (x_t, a_t), with this step's noise draw
    mju_copy(d->ctrl, a, nu);
    if (ns > 0) {
      if ((st = dso_mj_trap(forward_call, &fw, err))) {
        dso_error_prefix(err, "simulate: episode %d, sample %d: measuring: ", e, t);
        return st;
      }
      double* y = ep->sensordata + (size_t)t * ns;
      dso_sim_measure(sim, y);
      for (int i = 0; i < ns; i++) {
        y[i] += sstd[i] * w->zeta[i];
      }
    }
    mju_copy(w->aprev, a, nu);
    st = dso_sim_step(sim, err);
    int finite = 1;
    for (int i = 0; i < nq + nv; i++) {
      finite &= isfinite(i < nq ? d->qpos[i] : d->qvel[i - nq]) != 0;
    }
    if (st || !finite) {
      return dso_error(err, DSO_ERR_NUMERIC, "simulate: episode %d diverged at step %d of %d (t "
                       "= %g s); lower the excitation or the horizon, or check theta", e, t,
                       ep->T, time);
    }
  }
  return DSO_OK;
}

// the multi-sine kind: every episode by record_multisine on the chain's own model
static dsoStatus simulate_multisine(dsoDataset** out, const dsoTask* task, const dsoMjChain* mc,
                                    const dsoTheta* th, const double* uc, int nepisode,
                                    int horizon, uint64_t seed, double excitation,
                                    int nvalidation, dsoError* err) {
  const mjModel* m = task->model;
  dsoSim* sim = NULL;
  dsoDataset* ds = NULL;
  dsoMultisineWork w;
  dsoStatus st = multisine_work_create(&w, m, mc, err);
  if (st) {
    return st;
  }
  if (!(sim = dso_sim_create(mc->base, err)) || dso_sim_write(sim, th, uc, err) ||
      dso_dataset_create(&ds, m, err)) {
    st = err->code;
    goto done;
  }
  ds->dt = m->opt.timestep;
  for (int e = 0; e < nepisode; e++) {
    int k = dso_dataset_add_episode(ds, m, horizon, err);
    if (k < 0) {
      st = err->code;
      goto done;
    }
    dsoEpisode* ep = &ds->episode[k];
    ep->validation = e >= nepisode - nvalidation;
    if ((st = record_multisine(ep, m, mc, sim, uc, excitation, seed, e, &w, err))) {
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
  dso_sim_free(sim);
  multisine_work_free(&w);
  return st;
}

dsoStatus dso_simulate(dsoDataset** out, const dsoTask* task, const double* u, int nepisode,
                       int horizon, uint64_t seed, double excitation, int nvalidation,
                       dsoError* err) {
  return dso_simulate_kind(out, task, u, nepisode, horizon, seed, excitation,
                           DSO_EXCITATION_WHITE, nvalidation, err);
}

dsoStatus dso_simulate_kind(dsoDataset** out, const dsoTask* task, const double* u, int nepisode,
                            int horizon, uint64_t seed, double excitation,
                            dsoExcitationKind kind, int nvalidation, dsoError* err) {
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
  if (kind != DSO_EXCITATION_WHITE && kind != DSO_EXCITATION_MULTISINE) {
    return dso_error(err, DSO_ERR_INPUT, "simulate: unknown excitation kind %d", (int)kind);
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
  if (excitation > 0 && kind == DSO_EXCITATION_WHITE) {
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
  if (kind == DSO_EXCITATION_MULTISINE) {
    st = simulate_multisine(out, task, mc, th, uc, nepisode, horizon, seed, excitation,
                            nvalidation, err);
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
