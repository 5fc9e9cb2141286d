// Data-driven costs on the chain's policy and physics: L_clone and L_hybrid of paper section 5.1.
#include "mujoco/clone.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"
#include "mujoco/sim.h"

struct dsoClone_ {
  const mjModel* model;  // the base model (borrowed): joint addresses of the policy input
  const dsoTheta* theta;
  const dsoPolicy* policy;
  const dsoDataset* data;
  double gamma;
  int which;
  int nq, nv, nu, nin, ndx, nx, np;
  int nperiodic;      // periodic hinge joints of the policy input (dso_mj_input)
  int* periodic;      // (nperiodic)
  int policy_start;   // θ_μ = u[policy_start .. policy_start + np)
  int nepisode;       // training episodes N
  long nsample;       // (state, action) pairs of L_clone
  int* sigma_index;   // (nu) θ index of action_noise.<actuator>.std, -1 when absent (σ = 1)
  dsoPolicyWork* pw;
  double* s;          // (nin) policy input
  double* mu;         // (nu) policy output
  double* la;         // (nu) adjoint of the action
  double* dsig;       // (nu) ∂L/∂σ
  // hybrid
  mjModel* own;       // copy of base with the solver warm start disabled (samples are independent)
  dsoSim* sim;
  dsoDeriv* dv;
  double* B;          // (ndx x nu) ∂f/∂ctrl
  double* F;          // (ndx x nphys) ∂f/∂u_f
  double* xbar;       // (nx) recorded state x̄_t
  double* xnext;      // (nx) f(x̄_t, μ(x̄_t))
  double* xrec;       // (nx) recorded x̄_{t+1}
  double* e;          // (ndx) x̄_{t+1} ⊖ f
};

static const double kHalfLog2Pi = 0.91893853320467274178;

void dso_clone_free(dsoClone* c) {
  if (!c) return;
  free(c->sigma_index);
  free(c->periodic);
  dso_policy_work_free(c->pw);
  free(c->s);
  free(c->mu);
  free(c->la);
  free(c->dsig);
  dso_deriv_free(c->dv);
  dso_sim_free(c->sim);
  if (c->own) mj_deleteModel(c->own);
  free(c->B);
  free(c->F);
  free(c->xbar);
  free(c->xnext);
  free(c->xrec);
  free(c->e);
  free(c);
}

static double* zalloc(size_t n) { return (double*)calloc(n ? n : 1, sizeof(double)); }

// the first entry of group the dataset lacks, as an error naming its column
static dsoStatus need_group(const dsoDataset* ds, const mjModel* m, dsoDataGroup g, int n,
                            const char* why, dsoError* err) {
  for (int i = 0; i < n; i++) {
    if (!ds->has[g][i]) {
      char name[256];
      dso_dataset_column_name(name, sizeof(name), m, g, i);
      return dso_error(err, DSO_ERR_INPUT, "clone: the data has no column %s (%s)", name, why);
    }
  }
  return DSO_OK;
}

static dsoStatus check_inputs(const mjModel* base, const dsoTheta* theta, const dsoPolicy* policy,
                              const dsoMjChainSettings* chain, const dsoDataset* data,
                              double gamma, int which, dsoError* err) {
  if (!base || !theta) return dso_error(err, DSO_ERR_INPUT, "clone: no model or theta");
  if (!(which & (DSO_CLONE_ACTIONS | DSO_CLONE_HYBRID)) ||
      (which & ~(DSO_CLONE_ACTIONS | DSO_CLONE_HYBRID))) {
    return dso_error(err, DSO_ERR_INPUT, "clone: which = %d: expected DSO_CLONE_ACTIONS and/or "
                     "DSO_CLONE_HYBRID", which);
  }
  if (!policy) {
    return dso_error(err, DSO_ERR_INPUT, "clone: the task has no \"policy\" (the data-driven "
                     "costs fit the policy's output)");
  }
  if (dso_policy_kind(policy) == DSO_POLICY_RNN) {
    return dso_error(err, DSO_ERR_INPUT, "clone: policy type rnn is not supported (its units "
                     "are not recorded in the data); expected linear or mlp");
  }
  if (chain->input != DSO_INPUT_STATE) {
    return dso_error(err, DSO_ERR_INPUT, "clone: chain.input \"sensors\" is not supported; the "
                     "data-driven costs need a policy that reads the state (chain.input \"state\")");
  }
  if (base->na > 0) {
    return dso_error(err, DSO_ERR_INPUT, "clone: the model has %d activation states, which "
                     "datasets do not record; expected none", base->na);
  }
  if (dso_mj_input_check(base, chain->periodic, chain->nperiodic, "clone: chain.periodic",
                         err)) {
    return err->code;
  }
  int nin = dso_mj_input_size(base, chain->nperiodic);
  if (dso_policy_nin(policy) != nin || dso_policy_nu(policy) != base->nu) {
    return dso_error(err, DSO_ERR_INPUT, "clone: the policy has %d inputs and %d outputs; "
                     "expected nq + nv + periodic joints = %d and nu = %d",
                     dso_policy_nin(policy), dso_policy_nu(policy), nin, base->nu);
  }
  if (!data) {
    return dso_error(err, DSO_ERR_INPUT, "clone: no data (the task needs a \"data\" section)");
  }
  if (data->nq != base->nq || data->nv != base->nv || data->nu != base->nu) {
    return dso_error(err, DSO_ERR_INPUT, "clone: the data was made for another model (nq %d nv "
                     "%d nu %d, expected %d %d %d)", data->nq, data->nv, data->nu, base->nq,
                     base->nv, base->nu);
  }
  if (!(gamma > 0 && gamma <= 1)) {
    return dso_error(err, DSO_ERR_INPUT, "clone: gamma = %g: expected a number in (0, 1]", gamma);
  }
  const char* why = (which & DSO_CLONE_ACTIONS) ? "the policy input of L_clone"
                                                : "the states of L_hybrid";
  if (need_group(data, base, DSO_DATA_QPOS, base->nq, why, err) ||
      need_group(data, base, DSO_DATA_QVEL, base->nv, why, err)) {
    return err->code;
  }
  if ((which & DSO_CLONE_ACTIONS) &&
      need_group(data, base, DSO_DATA_CTRL, base->nu, "the actions of L_clone", err)) {
    return err->code;
  }
  if ((which & DSO_CLONE_HYBRID) &&
      !(data->dt > 0 && fabs(data->dt - base->opt.timestep) <= 1e-9 * base->opt.timestep)) {
    return dso_error(err, DSO_ERR_INPUT, "clone: L_hybrid compares one model step with the next "
                     "sample: the data must be resampled at the model timestep %g s (data "
                     "\"resample\": true, \"stride\": 1); its sample spacing is %g s",
                     base->opt.timestep, data->dt);
  }
  int np = dso_policy_np(policy), ps = theta->block_start[DSO_BLOCK_POLICY];
  if (theta->block_start[DSO_BLOCK_POLICY + 1] - ps != np) {
    return dso_error(err, DSO_ERR_INPUT, "clone: theta has %d policy entries; the policy has %d",
                     theta->block_start[DSO_BLOCK_POLICY + 1] - ps, np);
  }
  return DSO_OK;
}

dsoClone* dso_clone_create(const mjModel* base, const dsoTheta* theta, const dsoPolicy* policy,
                           const dsoMjChainSettings* chain, const dsoDataset* data,
                           double gamma, int which, const dsoDerivSettings* deriv,
                           dsoError* err) {
  dsoMjChainSettings def;
  if (!chain) {
    dso_mjchain_settings_default(&def);
    chain = &def;
  }
  if (check_inputs(base, theta, policy, chain, data, gamma, which, err)) return NULL;
  dsoClone* c = (dsoClone*)calloc(1, sizeof(dsoClone));
  if (!c) {
    dso_error(err, DSO_ERR_MEMORY, "clone: out of memory");
    return NULL;
  }
  c->model = base;
  c->theta = theta;
  c->policy = policy;
  c->data = data;
  c->gamma = gamma;
  c->which = which;
  c->nq = base->nq;
  c->nv = base->nv;
  c->nu = base->nu;
  c->nperiodic = chain->nperiodic;
  c->nin = dso_mj_input_size(base, c->nperiodic);
  c->nx = dso_mj_state_size(base);
  c->ndx = dso_mj_tangent_size(base);
  c->np = dso_policy_np(policy);
  c->policy_start = theta->block_start[DSO_BLOCK_POLICY];
  for (int n = 0; n < data->nepisode; n++) {
    const dsoEpisode* ep = &data->episode[n];
    if (ep->validation) continue;
    c->nepisode++;
    c->nsample += ep->T;
  }
  int need = (which & DSO_CLONE_HYBRID) ? 2 : 1;
  int longest = 0;
  for (int n = 0; n < data->nepisode; n++) {
    if (!data->episode[n].validation && data->episode[n].T > longest) {
      longest = data->episode[n].T;
    }
  }
  if (c->nepisode == 0 || longest < need) {
    dso_error(err, DSO_ERR_INPUT, "clone: the data has no training episode with at least %d "
              "samples (%d episodes, %d of them validation)", need, data->nepisode,
              dso_dataset_nvalidation(data));
    dso_clone_free(c);
    return NULL;
  }
  c->sigma_index = (int*)malloc((size_t)(c->nu > 0 ? c->nu : 1) * sizeof(int));
  c->s = zalloc((size_t)c->nin);
  c->periodic = (int*)malloc(sizeof(int) * (size_t)(c->nperiodic > 0 ? c->nperiodic : 1));
  if (c->periodic && c->nperiodic > 0) {
    memcpy(c->periodic, chain->periodic, sizeof(int) * (size_t)c->nperiodic);
  }
  c->mu = zalloc((size_t)c->nu);
  c->la = zalloc((size_t)c->nu);
  c->dsig = zalloc((size_t)c->nu);
  c->pw = dso_policy_work_create(policy, err);
  if (!c->sigma_index || !c->s || !c->periodic || !c->mu || !c->la || !c->dsig || !c->pw) {
    dso_error(err, DSO_ERR_MEMORY, "clone: out of memory");
    dso_clone_free(c);
    return NULL;
  }
  for (int i = 0; i < c->nu; i++) c->sigma_index[i] = -1;
  for (int k = 0; k < theta->n; k++) {
    const dsoBinding* b = &theta->entry[k].bind;
    if (b->kind == DSO_BIND_ACTION_STD && b->target >= 0 && b->target < c->nu) {
      c->sigma_index[b->target] = k;
    }
  }
  if (which & DSO_CLONE_HYBRID) {
    c->own = mj_copyModel(NULL, base);
    if (!c->own) {
      dso_error(err, DSO_ERR_MEMORY, "clone: cannot copy the model");
      dso_clone_free(c);
      return NULL;
    }
    c->own->opt.disableflags |= mjDSBL_WARMSTART;
    c->sim = dso_sim_create(c->own, err);
    c->dv = c->sim ? dso_deriv_create(c->own, theta, deriv, err) : NULL;
    if (!c->dv) {
      dso_clone_free(c);
      return NULL;
    }
    size_t nphys = (size_t)c->dv->nphys;
    c->B = zalloc((size_t)c->ndx * (size_t)c->nu);
    c->F = zalloc((size_t)c->ndx * nphys);
    c->xbar = zalloc((size_t)c->nx);
    c->xnext = zalloc((size_t)c->nx);
    c->xrec = zalloc((size_t)c->nx);
    c->e = zalloc((size_t)c->ndx);
    if (!c->B || !c->F || !c->xbar || !c->xnext || !c->xrec || !c->e) {
      dso_error(err, DSO_ERR_MEMORY, "clone: out of memory");
      dso_clone_free(c);
      return NULL;
    }
  }
  return c;
}

int dso_clone_nepisode(const dsoClone* c) { return c->nepisode; }

long dso_clone_nsample(const dsoClone* c) { return c->nsample; }

// s = x̄_t = (qpos, qvel) of sample t of ep
static void recorded_state(double* s, const dsoClone* c, const dsoEpisode* ep, int t) {
  memcpy(s, ep->qpos + (size_t)t * c->nq, (size_t)c->nq * sizeof(double));
  memcpy(s + c->nq, ep->qvel + (size_t)t * c->nv, (size_t)c->nv * sizeof(double));
}

dsoStatus dso_clone_cost(double* L, double* g, dsoClone* c, const double* u, dsoError* err) {
  if (!(c->which & DSO_CLONE_ACTIONS)) {
    return dso_error(err, DSO_ERR_INPUT, "clone: created without DSO_CLONE_ACTIONS");
  }
  const dsoTheta* th = c->theta;
  const double* tmu = u + c->policy_start;
  int nu = c->nu;
  if (g) memset(g, 0, (size_t)th->n * sizeof(double));
  memset(c->dsig, 0, (size_t)nu * sizeof(double));
  double sum = 0, lnsig = 0, w = 1.0 / c->nepisode;
  // σ and Σ ln σ + ½ ln 2π per sample
  for (int i = 0; i < nu; i++) {
    int k = c->sigma_index[i];
    double sig = k >= 0 ? dso_theta_entry_natural(&th->entry[k], u[k]) : 1.0;
    if (!(sig > 0 && isfinite(sig))) {
      return dso_error(err, DSO_ERR_NUMERIC, "clone: action noise std of actuator %d is %g; "
                       "expected a finite number > 0", i, sig);
    }
    lnsig += log(sig) + kHalfLog2Pi;
  }
  for (int n = 0; n < c->data->nepisode; n++) {
    const dsoEpisode* ep = &c->data->episode[n];
    if (ep->validation) continue;
    double gt = w;
    for (int t = 0; t < ep->T; t++, gt *= c->gamma) {
      recorded_state(c->s, c, ep, t);
      dso_mj_input(c->s, c->model, c->periodic, c->nperiodic, c->s);
      dso_policy_forward(c->mu, NULL, c->policy, c->pw, c->s, NULL, tmu);
      const double* abar = ep->ctrl + (size_t)t * nu;
      double q = 0;
      for (int i = 0; i < nu; i++) {
        int k = c->sigma_index[i];
        double sig = k >= 0 ? dso_theta_entry_natural(&th->entry[k], u[k]) : 1.0;
        double r = (abar[i] - c->mu[i]) / sig;
        q += 0.5 * r * r;
        // ∂/∂μ_i of ½ r² = -r / σ; ∂/∂σ of ½ r² + ln σ = (1 - r²) / σ
        c->la[i] = -gt * r / sig;
        c->dsig[i] += gt * (1.0 - r * r) / sig;
      }
      sum += gt * (q + lnsig);
      if (g) {
        dso_policy_vjp_after_forward(NULL, NULL, g + c->policy_start, c->policy, c->pw, NULL, tmu,
                                     c->la, NULL);
      }
    }
  }
  if (!isfinite(sum)) {
    return dso_error(err, DSO_ERR_NUMERIC, "clone: L_clone is not finite (policy output or "
                     "recorded actions)");
  }
  if (g) {
    for (int i = 0; i < nu; i++) {
      int k = c->sigma_index[i];
      if (k >= 0) g[k] += c->dsig[i] * dso_theta_entry_jacobian(&th->entry[k], u[k]);
    }
  }
  *L = sum;
  return DSO_OK;
}

dsoStatus dso_clone_hybrid(double* L, double* g, dsoClone* c, const double* u, dsoError* err) {
  if (!(c->which & DSO_CLONE_HYBRID)) {
    return dso_error(err, DSO_ERR_INPUT, "clone: created without DSO_CLONE_HYBRID");
  }
  const dsoTheta* th = c->theta;
  const double* tmu = u + c->policy_start;
  int nu = c->nu, ndx = c->ndx, nphys = c->dv->nphys;
  const mjModel* m = dso_sim_model(c->sim);
  mjData* d = dso_sim_data(c->sim);
  if (g) memset(g, 0, (size_t)th->n * sizeof(double));
  if (dso_sim_write(c->sim, th, u, err)) return err->code;
  if (g && dso_deriv_set_theta(c->dv, th, u, err)) return err->code;
  double sum = 0, w = 1.0 / c->nepisode;
  for (int n = 0; n < c->data->nepisode; n++) {
    const dsoEpisode* ep = &c->data->episode[n];
    if (ep->validation) continue;
    double gt = w;
    for (int t = 0; t + 1 < ep->T; t++, gt *= c->gamma) {
      recorded_state(c->xbar, c, ep, t);
      recorded_state(c->xrec, c, ep, t + 1);
      dso_mj_input(c->s, m, c->periodic, c->nperiodic, c->xbar);
      dso_policy_forward(c->mu, NULL, c->policy, c->pw, c->s, NULL, tmu);
      dso_mj_state_set(d, m, c->xbar);
      memcpy(d->ctrl, c->mu, (size_t)nu * sizeof(double));
      d->time = ep->time[t];
      if (g && dso_deriv_step(c->dv, c->sim, NULL, c->B, NULL, c->F, err)) {
        dso_error_prefix(err, "clone: episode %d, step %d: ", n, t);
        return err->code;
      }
      if (dso_sim_step(c->sim, err)) {
        dso_error_prefix(err, "clone: L_hybrid: episode %d, step %d: ", n, t);
        return err->code;
      }
      dso_mj_state_get(c->xnext, m, d);
      dso_mj_state_diff(c->e, m, c->xnext, c->xrec);
      double q = 0;
      for (int r = 0; r < ndx; r++) q += c->e[r] * c->e[r];
      sum += gt * q;
      if (!g) continue;
      // ∂/∂f of ‖x̄' ⊖ f‖² = -2 e (exact for hinge and slide joints)
      for (int r = 0; r < ndx; r++) c->e[r] *= -2.0 * gt;
      for (int i = 0; i < nu; i++) {
        double a = 0;
        for (int r = 0; r < ndx; r++) a += c->B[r * nu + i] * c->e[r];
        c->la[i] = a;
      }
      dso_policy_vjp_after_forward(NULL, NULL, g + c->policy_start, c->policy, c->pw, NULL, tmu,
                                   c->la, NULL);
      for (int k = 0; k < nphys; k++) {
        double a = 0;
        for (int r = 0; r < ndx; r++) a += c->F[r * nphys + k] * c->e[r];
        g[c->dv->index[k]] += a;
      }
    }
  }
  if (!isfinite(sum)) {
    return dso_error(err, DSO_ERR_NUMERIC, "clone: L_hybrid is not finite");
  }
  *L = sum;
  return DSO_OK;
}
