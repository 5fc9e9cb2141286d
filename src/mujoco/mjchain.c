#include "mujoco/mjchain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chain/grad.h"
#include "mujoco/mj.h"
#include "mujoco/sim.h"

void dso_mjchain_settings_default(dsoMjChainSettings* s) {
  memset(s, 0, sizeof(*s));
  s->input = DSO_INPUT_STATE;
  s->divergence_penalty = 1000.0;
  dso_deriv_settings_default(&s->deriv);
  s->feature_horizon = 100;
}

// ---------------------------------------------------------------- per-thread workspace

typedef struct {
  const dsoMjChain* mc;
  dsoSim* sim;            // θ (+ this rollout's randomization) written
  double* written;        // (ntheta) the u last written into sim
  int has_written;
  double* delta;          // (ntheta) this rollout's randomization
  double* ueff;           // (ntheta) θ + delta
  dsoPolicyWork* pw;
  double* s;              // (nin) policy input
  double* mu;             // (nu) policy output
  double* hnext;          // (nh)
  double* lam;            // (max(nu, ns, ntheta)) scratch
  double* cost_work;      // (6 nv)
  double* gx;             // (ndx) cost gradient in x
  double* ga;             // (nu) cost gradient in a
  // pathwise
  dsoDeriv* deriv;
  double *A, *B, *F, *Hx, *Hu, *Hf;  // (ndx x ndx), (ndx x nu), (ndx x nphys), (ns x ndx), ...
  double *lphys, *lphys_next, *lh, *lh_next, *lap, *lap_next;  // adjoints
  double *gs, *gh, *la, *lsd;  // (nin), (nh), (nu), (ns)
  double* Js;             // (nin x ndx) ∂s/∂x for state input
  double* gn;             // (ntheta) per-rollout gradient accumulator
  double *ch_astd, *ch_gain, *ch_off, *ch_sstd;  // (nu), (ns) x 3: channel values at θ
  double* ch_u;           // (nbound) the bound entries of θ the channel values were computed at
  int ch_valid;           // 1 once ch_u holds values
  const double *mu_x, *mu_xn, *mu_theta;  // μ in w->mu was computed by the sample of (x, xn, θ)
  // policy cost terms
  double *cmu, *cmu_old, *chn;        // (nu), (nu), (nh): μ and μ_old at the cost's state
  double *gmu, *gsig, *gmu_old;       // (nu) x 3: their cost gradients
  double *cgs, *cgh;                  // (nin), (nh): cost gradient in the policy input and h
} dsoMjWork;

static double* zalloc(size_t n) {
  return (double*)calloc(n + 1, sizeof(double));
}

static void work_free(void* p) {
  dsoMjWork* w = (dsoMjWork*)p;
  if (!w) {
    return;
  }
  dso_sim_free(w->sim);
  dso_policy_work_free(w->pw);
  dso_deriv_free(w->deriv);
  double* arrays[] = {w->written, w->delta, w->ueff, w->s, w->mu, w->hnext, w->lam,
                      w->cost_work, w->gx, w->ga, w->A, w->B, w->F, w->Hx, w->Hu, w->Hf,
                      w->lphys, w->lphys_next, w->lh, w->lh_next, w->lap, w->lap_next, w->gs,
                      w->gh, w->la, w->lsd, w->Js, w->gn, w->ch_astd, w->ch_gain, w->ch_off,
                      w->ch_sstd, w->ch_u, w->cmu, w->cmu_old, w->chn, w->gmu, w->gsig,
                      w->gmu_old, w->cgs, w->cgh};
  for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
    free(arrays[i]);
  }
  free(w);
}

static void* work_create(const void* model) {
  const dsoMjChain* mc = (const dsoMjChain*)model;
  dsoMjWork* w = (dsoMjWork*)calloc(1, sizeof(dsoMjWork));
  if (!w) {
    return NULL;
  }
  dsoError err = {0};
  const mjModel* m = mc->base;
  size_t nt = (size_t)mc->theta->n, ndx = (size_t)dso_mj_tangent_size(m);
  size_t nu = (size_t)mc->nu, nh = (size_t)mc->nh, ns = (size_t)m->nsensordata;
  size_t nin = (size_t)mc->nin;
  w->mc = mc;
  w->sim = dso_sim_create(m, &err);
  w->pw = mc->policy ? dso_policy_work_create(mc->policy, &err) : NULL;
  w->deriv = dso_deriv_create(m, mc->theta, &mc->deriv, &err);
  size_t np = w->deriv ? (size_t)w->deriv->nphys : 0;
  size_t big = nt > nu ? nt : nu;
  big = big > ns ? big : ns;
  w->written = zalloc(nt);
  w->delta = zalloc(nt);
  w->ueff = zalloc(nt);
  w->s = zalloc(nin);
  w->mu = zalloc(nu);
  w->hnext = zalloc(nh);
  w->lam = zalloc(big);
  w->cost_work = zalloc(6 * (size_t)m->nv);
  w->gx = zalloc(ndx);
  w->ga = zalloc(nu);
  w->A = zalloc(ndx * ndx);
  w->B = zalloc(ndx * nu);
  w->F = zalloc(ndx * np);
  w->Hx = zalloc(ns * ndx);
  w->Hu = zalloc(ns * nu);
  w->Hf = zalloc(ns * np);
  w->lphys = zalloc(ndx);
  w->lphys_next = zalloc(ndx);
  w->lh = zalloc(nh);
  w->lh_next = zalloc(nh);
  w->lap = zalloc(nu);
  w->lap_next = zalloc(nu);
  w->gs = zalloc(nin);
  w->gh = zalloc(nh);
  w->la = zalloc(nu);
  w->lsd = zalloc(ns);
  w->Js = zalloc(nin * ndx);
  w->gn = zalloc(nt);
  w->ch_astd = zalloc(nu);
  w->ch_gain = zalloc(ns);
  w->ch_off = zalloc(ns);
  w->ch_sstd = zalloc(ns);
  w->ch_u = zalloc((size_t)mc->nbound);
  w->cmu = zalloc(nu);
  w->cmu_old = zalloc(nu);
  w->chn = zalloc(nh);
  w->gmu = zalloc(nu);
  w->gsig = zalloc(nu);
  w->gmu_old = zalloc(nu);
  w->cgs = zalloc(nin);
  w->cgh = zalloc(nh);
  if (!w->cmu || !w->cmu_old || !w->chn || !w->gmu || !w->gsig || !w->gmu_old || !w->cgs ||
      !w->cgh || !w->ch_u || !w->ch_astd || !w->ch_gain || !w->ch_off || !w->ch_sstd ||
      !w->sim || (mc->policy && !w->pw) || !w->deriv || !w->written || !w->delta || !w->ueff ||
      !w->s || !w->mu || !w->hnext || !w->lam || !w->cost_work || !w->gx || !w->ga || !w->A ||
      !w->B || !w->F || !w->Hx || !w->Hu || !w->Hf || !w->lphys || !w->lphys_next || !w->lh ||
      !w->lh_next || !w->lap || !w->lap_next || !w->gs || !w->gh || !w->la || !w->lsd ||
      !w->Js || !w->gn) {
    work_free(w);
    return NULL;
  }
  return w;
}

// writes θ + this rollout's randomization into the simulator when it changed
static int ensure_theta(dsoMjWork* w, const double* theta) {
  const dsoMjChain* mc = w->mc;
  int n = mc->theta->n, same = w->has_written;
  // only entries bound to the model, sensors or noise reach the simulator
  for (int k = 0; k < mc->nbound; k++) {
    int i = mc->bound[k];
    w->ueff[i] = theta[i] + w->delta[i];
    same &= w->ueff[i] == w->written[i];
  }
  if (same) {
    return 0;
  }
  for (int i = 0; i < n; i++) {
    w->ueff[i] = theta[i] + w->delta[i];
  }
  dsoError err = {0};
  if (dso_sim_write(w->sim, mc->theta, w->ueff, &err) != DSO_OK) {
    w->has_written = 0;
    return 1;
  }
  memcpy(w->written, w->ueff, sizeof(double) * (size_t)n);
  w->has_written = 1;
  return 0;
}

// ---------------------------------------------------------------- chain operations

static void op_initial(double* x0, const void* model, void* work, int n, dsoRng* rng) {
  const dsoMjChain* mc = (const dsoMjChain*)model;
  dsoMjWork* w = (dsoMjWork*)work;
  const mjModel* m = mc->base;
  int ntheta = mc->theta->n, ndx = dso_mj_tangent_size(m);
  memset(x0, 0, sizeof(double) * (size_t)mc->chain.nx);
  if (mc->randomize_std) {
    for (int i = 0; i < ntheta; i++) {
      w->delta[i] = mc->randomize_std[i] > 0 ? mc->randomize_std[i] * dso_rng_normal(rng) : 0;
    }
  }
  memcpy(x0, mc->init_qpos, sizeof(double) * (size_t)mc->nq);
  memcpy(x0 + mc->nq, mc->init_qvel, sizeof(double) * (size_t)mc->nv);
  double* dx = w->gx;  // scratch of size ndx
  int any = 0;
  for (int i = 0; i < ndx; i++) {
    dx[i] = mc->init_std[i] > 0 ? mc->init_std[i] * dso_rng_normal(rng) : 0;
    any |= dx[i] != 0;
  }
  if (mc->off_ref >= 0) {
    // multiple shooting: start from the recorded state of this rollout's window
    int k = n % mc->nwin;
    if (mc->cost->term[mc->cost->track].random) {
      k = (int)(dso_rng_uniform(rng) * mc->nwin);
      k = k < mc->nwin ? k : mc->nwin - 1;
    }
    const int* wk = mc->win + 3 * k;
    const dsoEpisode* ep = &mc->data->episode[wk[0]];
    const double* q = ep->qpos + (long)wk[1] * mc->nq;
    const double* v = ep->qvel + (long)wk[1] * mc->nv;
    for (int i = 0; i < mc->nq; i++) {
      if (mc->data->has[DSO_DATA_QPOS][i]) x0[i] = q[i];
    }
    for (int i = 0; i < mc->nv; i++) {
      if (mc->data->has[DSO_DATA_QVEL][i]) x0[mc->nq + i] = v[i];
    }
    x0[mc->off_ref] = k;
    x0[mc->off_ref + 1] = 0;
  }
  if (any) {
    dso_mj_state_integrate(x0, m, dx, 1.0);
  }
}

// the policy input at state x (state input, formed in w->s when some hinge angles are periodic)
// or the measurement y (sensor input)
static const double* policy_input(const dsoMjChain* mc, dsoMjWork* w, const double* x,
                                  const double* y) {
  if (mc->input != DSO_INPUT_STATE) {
    return y;
  }
  if (mc->nperiodic == 0) {
    return x;
  }
  dso_mj_input(w->s, mc->base, mc->periodic, mc->nperiodic, x);
  return w->s;
}

// one transition; noise = 0 gives the noise-free f(x, θ) of eq. 59
static int transition(double* xn, const dsoMjChain* mc, dsoMjWork* w, const double* x,
                      const double* theta, dsoRng* rng, int noise) {
  const mjModel* m = mc->base;
  int nq = mc->nq, nv = mc->nv, na = mc->na, nu = mc->nu, ns = mc->ns, nh = mc->nh;
  int nx = mc->chain.nx;
  // draw every variable of the step first, so the stream is the same whatever happens next
  double* zeta = w->lam;      // (ns) standard normals of the sensor noise
  double* xi = w->la;         // (nu) standard normals of the action noise
  for (int i = 0; i < ns; i++) {
    zeta[i] = noise ? dso_rng_normal(rng) : 0;
  }
  for (int i = 0; i < nu; i++) {
    xi[i] = noise ? dso_rng_normal(rng) : 0;
  }
  memcpy(xn, x, sizeof(double) * (size_t)nx);
  if (mc->off_ref >= 0) {
    xn[mc->off_ref + 1] += 1;  // the next reference sample
  }
  if (x[mc->off_flag] != 0) {
    return 0;  // a diverged state is terminal; stay
  }
  dsoSim* sim = w->sim;
  if (ensure_theta(w, theta)) {
    xn[mc->off_flag] = 1;
    return 0;
  }
  const mjModel* sm = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  dso_mj_state_set(d, sm, x);
  dsoError err = {0};
  double* y = xn + mc->off_y;
  double* sd = xn + mc->off_sd;
  if (ns > 0) {
    // the sensors read the state with the control still applied from the previous step
    mju_copy(d->ctrl, x + mc->off_a, nu);
    mju_copy(d->qfrc_applied, dso_sim_qfrc(sim), nv);
    mj_forward(sm, d);
    mju_copy(sd, d->sensordata, ns);
    const double* gain = dso_sim_sensor_gain(sim);
    const double* offset = dso_sim_sensor_offset(sim);
    const double* sstd = dso_sim_sensor_std(sim);
    for (int i = 0; i < ns; i++) {
      y[i] = gain[i] * sd[i] + offset[i] + sstd[i] * zeta[i];
    }
  }
  const double* s = policy_input(mc, w, x, y);
  if (mc->policy) {
    dso_policy_forward(w->mu, w->hnext, mc->policy, w->pw, s, x + mc->off_h,
                       theta + mc->policy_start);
  } else {
    memset(w->mu, 0, sizeof(double) * (size_t)nu);
  }
  // the rollout asks for ln P of this very transition next: keep μ for it
  w->mu_x = x;
  w->mu_xn = xn;
  w->mu_theta = theta;
  double* as = xn + mc->off_as;
  double* a = xn + mc->off_a;
  const double* astd = dso_sim_action_std(sim);
  for (int i = 0; i < nu; i++) {
    as[i] = w->mu[i] + astd[i] * xi[i];
    a[i] = as[i];
    if (m->actuator_ctrllimited[i]) {
      a[i] = fmin(fmax(a[i], m->actuator_ctrlrange[2 * i]), m->actuator_ctrlrange[2 * i + 1]);
    }
    if (!isfinite(as[i])) {
      xn[mc->off_flag] = 1;
      return 0;
    }
  }
  mju_copy(d->ctrl, a, nu);
  if (dso_sim_step(sim, &err) != DSO_OK) {
    memcpy(xn, x, sizeof(double) * (size_t)nx);
    xn[mc->off_flag] = 1;
    return 0;
  }
  dso_mj_state_get(xn, sm, d);
  (void)nq;
  (void)na;
  memcpy(xn + mc->off_h, w->hnext, sizeof(double) * (size_t)nh);
  return 0;
}

static int op_sample(double* xn, const void* model, void* work, const double* x,
                     const double* theta, int t, int n, dsoRng* rng) {
  return transition(xn, (const dsoMjChain*)model, (dsoMjWork*)work, x, theta, rng, 1);
}

static void op_mean(double* xn, const void* model, void* work, const double* x,
                    const double* theta, int t, int n) {
  transition(xn, (const dsoMjChain*)model, (dsoMjWork*)work, x, theta, NULL, 0);
  ((dsoMjWork*)work)->mu_x = NULL;  // noise-free: not a sampled transition
}

#define DSO_LOG_SQRT_2PI 0.91893853320467274178

// ln N(e; 0, σ²) and its derivative in σ
static double lognormal(double e, double sigma, double* dsigma) {
  double z = e / sigma;
  if (dsigma) {
    *dsigma = (z * z - 1.0) / sigma;
  }
  return -0.5 * z * z - log(sigma) - DSO_LOG_SQRT_2PI;
}

// the per-channel noise and sensor-model values at θ (no randomization: θ_f carries no score)
static void channel_values(dsoMjWork* w, const double* theta) {
  const dsoMjChain* mc = w->mc;
  // the values change only when a bound entry does
  int same = w->ch_valid;
  for (int k = 0; same && k < mc->nbound; k++) {
    same = theta[mc->bound[k]] == w->ch_u[k];
  }
  if (same) {
    return;
  }
  for (int k = 0; k < mc->nbound; k++) {
    w->ch_u[k] = theta[mc->bound[k]];
  }
  w->ch_valid = 1;
  for (int i = 0; i < mc->nu; i++) {
    w->ch_astd[i] = 0;
  }
  for (int i = 0; i < mc->ns; i++) {
    w->ch_gain[i] = 1;
    w->ch_off[i] = 0;
    w->ch_sstd[i] = 0;
  }
  for (int k = 0; k < mc->nbound; k++) {
    int i = mc->bound[k];
    const dsoThetaEntry* e = &mc->theta->entry[i];
    int c = e->bind.target;
    double v = dso_theta_entry_natural(e, theta[i]);
    switch (e->bind.kind) {
      case DSO_BIND_ACTION_STD: w->ch_astd[c] = v; break;
      case DSO_BIND_SENSOR_GAIN: if (c < mc->ns) w->ch_gain[c] = v; break;
      case DSO_BIND_SENSOR_OFFSET: if (c < mc->ns) w->ch_off[c] = v; break;
      case DSO_BIND_SENSOR_STD: if (c < mc->ns) w->ch_sstd[c] = v; break;
      default: break;
    }
  }
}

// ln P(x'|x, θ): the density of the measurement and the action sampled in the transition; the
// gradient covers θ_μ, θ_ε, θ_h and θ_ξ (θ_f moves the support of P and has no score)
// with grad: grad += scale * ∇θ ln P, touching only the policy block and bound entries
static double logp_core(double* grad, double scale, const dsoMjChain* mc, dsoMjWork* w,
                        const double* xn, const double* x, const double* theta) {
  const dsoTheta* th = mc->theta;
  int nu = mc->nu, ns = mc->ns;
  if (xn[mc->off_flag] != 0) {
    return 0;
  }
  channel_values(w, theta);
  const double* y = xn + mc->off_y;
  const double* sd = xn + mc->off_sd;
  const double* as = xn + mc->off_as;
  double lp = 0;
  for (int i = 0; i < ns; i++) {
    if (w->ch_sstd[i] > 0) {
      lp += lognormal(y[i] - (w->ch_gain[i] * sd[i] + w->ch_off[i]), w->ch_sstd[i], NULL);
    }
  }
  const double* s = policy_input(mc, w, x, y);
  // the gradient needs the policy's activations at this transition: run the forward pass then
  if (grad || !(x == w->mu_x && xn == w->mu_xn && theta == w->mu_theta)) {
    if (mc->policy) {
      dso_policy_forward(w->mu, w->hnext, mc->policy, w->pw, s, x + mc->off_h,
                         theta + mc->policy_start);
    } else {
      memset(w->mu, 0, sizeof(double) * (size_t)nu);
    }
    w->mu_x = NULL;  // w->mu no longer holds the sampled transition's μ
  }
  for (int i = 0; i < nu; i++) {
    double sg = w->ch_astd[i];
    w->la[i] = 0;
    if (sg > 0) {
      double e = as[i] - w->mu[i];
      lp += lognormal(e, sg, NULL);
      w->la[i] = scale * e / (sg * sg);  // scale * ∂ ln N / ∂μ
    }
  }
  if (!grad) {
    return lp;
  }
  if (mc->policy) {
    memset(w->gs, 0, sizeof(double) * (size_t)mc->nin);
    memset(w->gh, 0, sizeof(double) * (size_t)mc->nh);
    memset(w->lh, 0, sizeof(double) * (size_t)mc->nh);
    dso_policy_vjp_after_forward(w->gs, w->gh, grad + mc->policy_start, mc->policy, w->pw,
                                 x + mc->off_h, theta + mc->policy_start, w->la, w->lh);
  }
  for (int k = 0; k < mc->nbound; k++) {
    int i = mc->bound[k];
    const dsoThetaEntry* e = &th->entry[i];
    int c = e->bind.target;
    double dvdu = dso_theta_entry_jacobian(e, theta[i]), ds;
    if (e->bind.kind == DSO_BIND_ACTION_STD && w->ch_astd[c] > 0) {
      lognormal(as[c] - w->mu[c], w->ch_astd[c], &ds);
      grad[i] += scale * ds * dvdu;
    } else if ((e->bind.kind == DSO_BIND_SENSOR_STD || e->bind.kind == DSO_BIND_SENSOR_GAIN ||
                e->bind.kind == DSO_BIND_SENSOR_OFFSET) && c < ns && w->ch_sstd[c] > 0) {
      double sg = w->ch_sstd[c];
      double r = y[c] - (w->ch_gain[c] * sd[c] + w->ch_off[c]);
      if (e->bind.kind == DSO_BIND_SENSOR_STD) {
        lognormal(r, sg, &ds);
        grad[i] += scale * ds * dvdu;
      } else {
        double dmean = e->bind.kind == DSO_BIND_SENSOR_GAIN ? sd[c] : 1.0;
        grad[i] += scale * r / (sg * sg) * dmean * dvdu;
      }
    }
  }
  return lp;
}

static double op_logp(double* grad, double* hess, const void* model, void* work,
                      const double* xn, const double* x, const double* theta, int t, int n) {
  const dsoMjChain* mc = (const dsoMjChain*)model;
  if (grad) {
    memset(grad, 0, sizeof(double) * (size_t)mc->theta->n);
  }
  (void)hess;
  return logp_core(grad, 1.0, mc, (dsoMjWork*)work, xn, x, theta);
}

static void op_logp_add(double* g, double scale, const void* model, void* work, const double* xn,
                        const double* x, const double* theta, int t, int n) {
  logp_core(g, scale, (const dsoMjChain*)model, (dsoMjWork*)work, xn, x, theta);
}

static double policy_cost(dsoMjWork* w, const double* x, const double* theta, double wt,
                          double* gth, double* lx, double* lh);

// the track term at x against its reference sample (cost.h); 0 past the window's end
static double track_cost(const dsoMjChain* mc, const mjModel* m, const mjData* d, const double* x,
                         double* gx, double* work) {
  if (mc->off_ref < 0) {
    return 0;
  }
  const int* wk = mc->win + 3 * (int)x[mc->off_ref];
  int j = (int)x[mc->off_ref + 1];
  if (j > wk[2]) {
    return 0;
  }
  const dsoEpisode* ep = &mc->data->episode[wk[0]];
  long i = wk[1] + j;
  return dso_cost_eval_track(mc->cost, m, d, ep->qpos + i * mc->nq, ep->qvel + i * mc->nv, gx,
                             work);
}

static double op_cost(double* grad, double* hess, const void* model, void* work, const double* x,
                      const double* theta, int t, int n) {
  const dsoMjChain* mc = (const dsoMjChain*)model;
  dsoMjWork* w = (dsoMjWork*)work;
  if (grad) {
    memset(grad, 0, sizeof(double) * (size_t)mc->theta->n);
  }
  if (x[mc->off_flag] != 0) {
    return mc->divergence_penalty;
  }
  if (!mc->cost) {
    return 0;
  }
  // kinematic terms see θ_f (a link length moves a site)
  if (ensure_theta(w, theta)) {
    return mc->divergence_penalty;
  }
  mjData* d = dso_sim_data(w->sim);
  const mjModel* m = dso_sim_model(w->sim);
  dso_mj_state_set(d, m, x);
  if (mc->cost->kinematics) {
    mj_kinematics(m, d);
    mj_comPos(m, d);
  }
  double c = dso_cost_eval(mc->cost, m, d, x + mc->off_a, NULL, NULL, w->cost_work);
  c += track_cost(mc, m, d, x, NULL, w->cost_work);
  if (mc->cost->policy) {
    // the policy terms depend on θ_μ and θ_ε: the score route needs their ∇θ L
    c += policy_cost(w, x, theta, 1.0, grad, NULL, NULL);
  }
  return c;
}

static int op_terminal(const void* model, const double* x, int t, int n) {
  const dsoMjChain* mc = (const dsoMjChain*)model;
  return x[mc->off_flag] != 0;
}

static const dsoChainOps kMjChainOps = {
    work_create, work_free, op_initial, op_sample, op_logp, op_cost, op_mean, op_terminal,
    op_logp_add,
};

// ---------------------------------------------------------------- creation

void dso_mjchain_free(dsoMjChain* mc) {
  if (!mc) {
    return;
  }
  if (mc->own) {
    mj_deleteModel(mc->own);
  }
  free(mc->bound);
  free(mc->periodic);
  free(mc->init_qpos);
  free(mc->init_qvel);
  free(mc->init_std);
  free(mc->randomize_std);
  free(mc->ref_u);
  free(mc->ref_sigma);
  free(mc->win);
  free(mc);
}

void dso_mjchain_set_reference(dsoMjChain* mc, const double* u_old) {
  if (!mc->ref_u) {
    return;
  }
  memmove(mc->ref_u, u_old, sizeof(double) * (size_t)mc->theta->n);
  for (int k = 0; k < mc->nbound; k++) {
    const dsoThetaEntry* e = &mc->theta->entry[mc->bound[k]];
    if (e->bind.kind == DSO_BIND_ACTION_STD) {
      mc->ref_sigma[e->bind.target] = dso_theta_entry_natural(e, u_old[mc->bound[k]]);
    }
  }
}

// checks what the policy cost terms need and sets their reference to θ's initial values
static dsoStatus policy_cost_setup(dsoMjChain* mc, dsoError* err) {
  const dsoCost* cost = mc->cost;
  if (!cost || !cost->policy) {
    return DSO_OK;
  }
  if (mc->input != DSO_INPUT_STATE) {
    return dso_error(err, DSO_ERR_INPUT, "chain: cost terms that read the policy (effort with "
                     "\"action\": \"mean\", kl, entropy, proximal) need chain.input \"state\": "
                     "with sensor input the mean at a state depends on the measurement sampled "
                     "in the transition");
  }
  mc->ref_u = zalloc((size_t)mc->theta->n);
  mc->ref_sigma = zalloc((size_t)mc->nu);
  if (!mc->ref_u || !mc->ref_sigma) {
    return dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
  }
  dso_theta_init(mc->theta, mc->ref_u);
  dso_mjchain_set_reference(mc, mc->ref_u);
  for (int i = 0; cost->noise && i < mc->nu; i++) {
    int found = 0;
    for (int k = 0; k < mc->nbound; k++) {
      const dsoThetaEntry* e = &mc->theta->entry[mc->bound[k]];
      found |= e->bind.kind == DSO_BIND_ACTION_STD && e->bind.target == i;
    }
    if (!found) {
      const char* name = mj_id2name(mc->base, mjOBJ_ACTUATOR, i);
      return dso_error(err, DSO_ERR_INPUT, "chain: cost terms kl, entropy and proximal need "
                       "action noise on every actuator; add a theta entry "
                       "\"action_noise.%s.std\"", name ? name : "(unnamed)");
    }
  }
  return DSO_OK;
}

// cuts the training episodes of data into the track term's windows
static dsoStatus track_setup(dsoMjChain* mc, const dsoDataset* data, dsoError* err) {
  const dsoCost* cost = mc->cost;
  if (mc->off_ref < 0) {
    return DSO_OK;
  }
  const mjModel* m = mc->base;
  if (dso_cost_track_check(cost, m, data, "chain", err)) return err->code;
  int ti = cost->track, W = cost->term[ti].window;
  if (!(data->dt > 0) || fabs(data->dt - m->opt.timestep) > 1e-9 * m->opt.timestep) {
    return dso_error(err, DSO_ERR_INPUT, "chain: cost[%d]: the track term compares step t with "
                     "sample t: the data must be resampled onto the model timestep %g s "
                     "(data.resample true, data.stride 1); its spacing is %g s", ti,
                     m->opt.timestep, data->dt);
  }
  // two passes: count, then fill
  for (int pass = 0; pass < 2; pass++) {
    int k = 0;
    for (int e = 0; e < data->nepisode; e++) {
      const dsoEpisode* ep = &data->episode[e];
      int steps = ep->T - 1;
      if (ep->validation || steps < 1) continue;
      int len = W > 0 ? W : steps;
      for (int s0 = 0; s0 < steps; s0 += len, k++) {
        if (pass) {
          mc->win[3 * k] = e;
          mc->win[3 * k + 1] = s0;
          mc->win[3 * k + 2] = s0 + len <= steps ? len : steps - s0;
        }
      }
    }
    if (!pass) {
      if (k == 0) {
        return dso_error(err, DSO_ERR_INPUT, "chain: cost[%d]: the data has no training episode "
                         "with two samples or more to track", ti);
      }
      mc->nwin = k;
      mc->win = (int*)calloc((size_t)3 * (size_t)k, sizeof(int));
      if (!mc->win) {
        return dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
      }
    }
  }
  mc->data = data;
  return DSO_OK;
}

static double* copy_or_default(const double* src, int n, const double* dflt) {
  double* out = zalloc((size_t)n);
  if (out) {
    if (src) {
      memcpy(out, src, sizeof(double) * (size_t)n);
    } else if (dflt) {
      memcpy(out, dflt, sizeof(double) * (size_t)n);
    }
  }
  return out;
}

dsoMjChain* dso_mjchain_create(const mjModel* base, const dsoTheta* theta,
                               const dsoPolicy* policy, const dsoCost* cost,
                               const dsoMjChainSettings* settings, dsoError* err) {
  dsoMjChainSettings def;
  if (!settings) {
    dso_mjchain_settings_default(&def);
    settings = &def;
  }
  if (settings->input != DSO_INPUT_STATE && settings->input != DSO_INPUT_SENSORS) {
    dso_error(err, DSO_ERR_INPUT, "chain: unknown policy input %d", (int)settings->input);
    return NULL;
  }
  if (!isfinite(settings->divergence_penalty)) {
    dso_error(err, DSO_ERR_INPUT, "chain: divergence_penalty must be finite");
    return NULL;
  }
  int has_sensor_entries = 0;
  for (int i = 0; i < theta->n; i++) {
    dsoBlock b = theta->entry[i].block;
    has_sensor_entries |= b == DSO_BLOCK_SENSOR || b == DSO_BLOCK_SENSOR_NOISE;
  }
  dsoMjChain* mc = (dsoMjChain*)calloc(1, sizeof(dsoMjChain));
  if (!mc) {
    dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
    return NULL;
  }
  // the chain's steps are functions of (x, a, θ) alone: no solver warm start carried between
  // steps, rollouts or threads (it would make results depend on what ran before)
  mc->own = mj_copyModel(NULL, base);
  if (!mc->own) {
    free(mc);
    dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
    return NULL;
  }
  mc->own->opt.disableflags |= mjDSBL_WARMSTART;
  base = mc->own;
  mc->base = base;
  mc->theta = theta;
  mc->policy = policy;
  mc->cost = cost;
  mc->input = settings->input;
  mc->divergence_penalty = settings->divergence_penalty;
  mc->deriv = settings->deriv;
  mc->feature_horizon = settings->feature_horizon > 0 ? settings->feature_horizon : 100;
  mc->nq = base->nq;
  mc->nv = base->nv;
  mc->na = base->na;
  mc->nu = base->nu;
  mc->nh = policy ? dso_policy_nh(policy) : 0;
  mc->ns = (settings->input == DSO_INPUT_SENSORS || has_sensor_entries) ? base->nsensordata : 0;
  if (settings->nperiodic > 0) {
    if (settings->input != DSO_INPUT_STATE) {
      dso_mjchain_free(mc);
      dso_error(err, DSO_ERR_INPUT, "chain: periodic joints shape the state input; the policy "
                "reads sensors");
      return NULL;
    }
    if (dso_mj_input_check(base, settings->periodic, settings->nperiodic, "chain.periodic",
                           err)) {
      dso_mjchain_free(mc);
      return NULL;
    }
    mc->periodic = (int*)malloc(sizeof(int) * (size_t)settings->nperiodic);
    if (!mc->periodic) {
      dso_mjchain_free(mc);
      dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
      return NULL;
    }
    memcpy(mc->periodic, settings->periodic, sizeof(int) * (size_t)settings->nperiodic);
    mc->nperiodic = settings->nperiodic;
  }
  mc->nin = settings->input == DSO_INPUT_STATE ? dso_mj_input_size(base, mc->nperiodic)
                                               : base->nsensordata;
  if (settings->input == DSO_INPUT_SENSORS && base->nsensordata == 0) {
    dso_mjchain_free(mc);
    dso_error(err, DSO_ERR_INPUT, "chain: the policy reads sensors but the model has none");
    return NULL;
  }
  int np = 0;
  if (policy) {
    np = dso_policy_np(policy);
    if (dso_policy_nin(policy) != mc->nin || dso_policy_nu(policy) != base->nu) {
      dso_error(err, DSO_ERR_INPUT,
                "chain: the policy maps %d inputs to %d outputs; the model needs %d inputs (%s) "
                "and %d outputs (actuators)", dso_policy_nin(policy), dso_policy_nu(policy),
                mc->nin,
                settings->input == DSO_INPUT_STATE ? "nq + nv + na + periodic joints"
                                                   : "nsensordata",
                base->nu);
      dso_mjchain_free(mc);
      return NULL;
    }
  }
  int npol = theta->block_start[DSO_BLOCK_POLICY + 1] - theta->block_start[DSO_BLOCK_POLICY];
  if (npol != np) {
    dso_error(err, DSO_ERR_INPUT, "chain: theta has %d policy entries, the policy has %d "
              "parameters", npol, np);
    dso_mjchain_free(mc);
    return NULL;
  }
  mc->policy_start = theta->block_start[DSO_BLOCK_POLICY];
  int off = base->nq + base->nv + base->na;
  mc->off_h = off;
  off += mc->nh;
  mc->off_sd = off;
  off += mc->ns;
  mc->off_y = off;
  off += mc->ns;
  mc->off_as = off;
  off += mc->nu;
  mc->off_a = off;
  off += mc->nu;
  mc->off_flag = off;
  off += 1;
  mc->off_ref = -1;
  if (cost && cost->track >= 0) {
    mc->off_ref = off;
    off += 2;
  }
  int ndx = dso_mj_tangent_size(base);
  mc->init_qpos = copy_or_default(settings->init_qpos, base->nq, base->qpos0);
  mc->init_qvel = copy_or_default(settings->init_qvel, base->nv, NULL);
  mc->init_std = copy_or_default(settings->init_std, ndx, NULL);
  if (settings->randomize_std) {
    mc->randomize_std = copy_or_default(settings->randomize_std, theta->n, NULL);
    for (int i = 0; mc->randomize_std && i < theta->n; i++) {
      double sd = mc->randomize_std[i];
      if (!(sd >= 0) || !isfinite(sd) ||
          (sd > 0 && theta->entry[i].block != DSO_BLOCK_PHYSICS)) {
        dso_error(err, DSO_ERR_INPUT, "%s: randomization std %g must be finite, >= 0, and only "
                  "physics entries can be randomized", theta->entry[i].name, sd);
        dso_mjchain_free(mc);
        return NULL;
      }
    }
  }
  if (!mc->init_qpos || !mc->init_qvel || !mc->init_std ||
      (settings->randomize_std && !mc->randomize_std)) {
    dso_mjchain_free(mc);
    dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
    return NULL;
  }
  for (int i = 0; i < ndx; i++) {
    if (!(mc->init_std[i] >= 0) || !isfinite(mc->init_std[i])) {
      dso_mjchain_free(mc);
      dso_error(err, DSO_ERR_INPUT, "chain: init_std[%d] must be finite and >= 0", i);
      return NULL;
    }
  }
  mc->bound = (int*)calloc((size_t)theta->n + 1, sizeof(int));
  if (!mc->bound) {
    dso_mjchain_free(mc);
    dso_error(err, DSO_ERR_MEMORY, "chain: out of memory");
    return NULL;
  }
  for (int i = 0; i < theta->n; i++) {
    if (theta->entry[i].bind.kind != DSO_BIND_NONE) {
      mc->bound[mc->nbound++] = i;
    }
  }
  if (policy_cost_setup(mc, err) || track_setup(mc, settings->data, err)) {
    dso_mjchain_free(mc);
    return NULL;
  }
  mc->chain.ops = &kMjChainOps;
  // r(x, a) has no θ (θ_f moves it only through the pathwise route); policy terms read θ_μ, θ_ε
  mc->chain.cost_grad_zero = !(cost && cost->policy);
  mc->chain.model = mc;
  mc->chain.nx = off;
  mc->chain.ntheta = theta->n;
  mc->chain.has_hessian = 0;
  return mc;
}

int dso_mjchain_nfeat(const dsoMjChain* mc) {
  return 3 + 2 * (mc->nq + mc->nv + mc->na);
}

void dso_mjchain_features(double* phi, const void* ctx, const double* x, int t) {
  const dsoMjChain* mc = (const dsoMjChain*)ctx;
  int ns = mc->nq + mc->nv + mc->na;
  double tau = (double)t / mc->feature_horizon;
  phi[0] = 1;
  phi[1] = tau;
  phi[2] = tau * tau;
  for (int i = 0; i < ns; i++) {
    phi[3 + i] = x[i];
    phi[3 + ns + i] = x[i] * x[i];
  }
}

int dso_mjchain_diverged(const dsoMjChain* mc, const dsoRollout* ro) {
  int count = 0;
  for (int n = 0; n < ro->nrollout; n++) {
    count += dso_rollout_state(ro, n, ro->len[n])[mc->off_flag] != 0;
  }
  return count;
}

// ---------------------------------------------------------------- pathwise gradient

typedef struct {
  const dsoMjChain* mc;
  dsoRollout* ro;
  double* per;     // (N x ntheta) per-rollout gradients
  dsoStatus* status;  // (N)
} dsoPathCtx;

// y += Mᵀ v for M (rows x cols), row-major
static void add_mtv(double* y, const double* M, const double* v, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    double vr = v[r];
    if (vr != 0) {
      const double* row = M + (long)r * cols;
      for (int c = 0; c < cols; c++) {
        y[c] += row[c] * vr;
      }
    }
  }
}

// the policy terms of the cost at state x (cost.h) from π(·|x,θ) and π_old(·|x): returns their
// value; gth (ntheta) += wt ∂L/∂θ (θ_μ through the policy's vector-Jacobian product, θ_ε), lx
// (ndx) += wt ∂L/∂x through μ(s(x)) and μ_old(s(x)), lh (nh) += wt ∂L/∂h; each may be NULL
static double policy_cost(dsoMjWork* w, const double* x, const double* theta, double wt,
                          double* gth, double* lx, double* lh) {
  const dsoMjChain* mc = w->mc;
  const dsoCost* cost = mc->cost;
  const dsoPolicy* pol = mc->policy;
  int nu = mc->nu, nh = mc->nh, ps = mc->policy_start;
  const double* h = x + mc->off_h;
  channel_values(w, theta);
  dsoCostPolicy p = {w->cmu, w->ch_astd, NULL, mc->ref_sigma};
  const double* s = policy_input(mc, w, x, NULL);
  // the reference mean first: the activations of the current policy stay in pw for its vjp
  if (cost->reference) {
    if (pol) {
      dso_policy_forward(w->cmu_old, w->chn, pol, w->pw, s, h, mc->ref_u + ps);
    } else {
      memset(w->cmu_old, 0, sizeof(double) * (size_t)nu);
    }
    p.mu_old = w->cmu_old;
  }
  if (pol) {
    dso_policy_forward(w->cmu, w->chn, pol, w->pw, s, h, theta + ps);
  } else {
    memset(w->cmu, 0, sizeof(double) * (size_t)nu);
  }
  int want_x = lx || lh, grad = gth || want_x;
  double v = dso_cost_eval_policy(cost, mc->base, &p, grad ? w->gmu : NULL,
                                  grad ? w->gsig : NULL, want_x ? w->gmu_old : NULL);
  if (!grad) {
    return v;
  }
  for (int i = 0; i < nu; i++) {
    w->gmu[i] *= wt;
    w->gmu_old[i] *= wt;
  }
  if (pol) {
    memset(w->cgs, 0, sizeof(double) * (size_t)mc->nin);
    memset(w->cgh, 0, sizeof(double) * (size_t)nh);
    dso_policy_vjp_after_forward(want_x ? w->cgs : NULL, want_x ? w->cgh : NULL,
                                 gth ? gth + ps : NULL, pol, w->pw, h, theta + ps, w->gmu, NULL);
    if (want_x && cost->reference) {
      // μ_old reads the same state: its θ_old is constant, only s and h move
      dso_policy_vjp(w->cgs, w->cgh, NULL, pol, w->pw, s, h, mc->ref_u + ps, w->gmu_old, NULL);
    }
  }
  if (gth) {
    for (int k = 0; k < mc->nbound; k++) {
      int i = mc->bound[k];
      const dsoThetaEntry* e = &mc->theta->entry[i];
      if (e->bind.kind == DSO_BIND_ACTION_STD) {
        gth[i] += wt * w->gsig[e->bind.target] * dso_theta_entry_jacobian(e, theta[i]);
      }
    }
  }
  if (pol && lx) {
    dso_mj_input_jacobian(w->Js, mc->base, mc->periodic, mc->nperiodic, x);
    add_mtv(lx, w->Js, w->cgs, mc->nin, dso_mj_tangent_size(mc->base));
  }
  if (pol && lh) {
    for (int i = 0; i < nh; i++) {
      lh[i] += w->cgh[i];
    }
  }
  return v;
}

// cost of x on simulator p (its own θ), kinematics computed when the cost needs them
static double cost_on(dsoSim* p, const dsoMjChain* mc, const double* x, double* gx, double* ga,
                      double* work) {
  const mjModel* m = dso_sim_model(p);
  mjData* d = dso_sim_data(p);
  dso_mj_state_set(d, m, x);
  if (mc->cost->kinematics) {
    mj_kinematics(m, d);
    mj_comPos(m, d);
  }
  double c = dso_cost_eval(mc->cost, m, d, x + mc->off_a, gx, ga, work);
  return c + track_cost(mc, m, d, x, gx, work);
}

// cost gradient at state x: lphys += wt ∂r/∂x, lap += wt ∂r/∂a, and g += wt ∂r/∂θ_f for costs
// that read positions (a link length moves a site), by differences over the perturbed simulators
static void add_cost_gradient(dsoMjWork* w, const double* x, const double* theta, double wt,
                              double* g) {
  const dsoMjChain* mc = w->mc;
  if (!mc->cost || x[mc->off_flag] != 0) {
    return;
  }
  if (mc->cost->policy) {
    policy_cost(w, x, theta, wt, g, w->lphys, w->lh);
  }
  int ndx = dso_mj_tangent_size(dso_sim_model(w->sim));
  cost_on(w->sim, mc, x, w->gx, w->ga, w->cost_work);
  for (int i = 0; i < ndx; i++) {
    w->lphys[i] += wt * w->gx[i];
  }
  for (int i = 0; i < mc->nu; i++) {
    w->lap[i] += wt * w->ga[i];
  }
  if (mc->cost->kinematics) {
    const dsoDeriv* dv = w->deriv;
    for (int k = 0; k < dv->nphys; k++) {
      double cp = cost_on(dv->plus[k], mc, x, NULL, NULL, w->cost_work);
      double cm = dv->minus[k] ? cost_on(dv->minus[k], mc, x, NULL, NULL, w->cost_work)
                               : cost_on(dv->nominal, mc, x, NULL, NULL, w->cost_work);
      g[dv->index[k]] += wt * (cp - cm) / (dv->minus[k] ? 2 * dv->hu[k] : dv->hu[k]);
    }
  }
}

static dsoStatus pathwise_one(const dsoMjChain* mc, dsoMjWork* w, dsoRollout* ro, int n,
                              double* g) {
  const mjModel* m = mc->base;
  const dsoTheta* th = mc->theta;
  int ndx = dso_mj_tangent_size(m), nu = mc->nu, nh = mc->nh, ns = mc->ns;
  int T = ro->len[n];
  double step = dso_rollout_gamma_step(ro);
  const double* theta = ro->theta;
  dsoError err = {0};
  memset(g, 0, sizeof(double) * (size_t)th->n);
  // this rollout's randomization, drawn first from its stream as op_initial does
  if (mc->randomize_std) {
    dsoRng rng;
    dso_rng_seed(&rng, ro->set.seed, ro->iteration, (uint64_t)n);
    for (int i = 0; i < th->n; i++) {
      w->delta[i] = mc->randomize_std[i] > 0 ? mc->randomize_std[i] * dso_rng_normal(&rng) : 0;
    }
  }
  if (ensure_theta(w, theta)) {
    return DSO_ERR_NUMERIC;
  }
  dsoStatus s = dso_deriv_set_theta(w->deriv, th, w->ueff, &err);
  if (s) {
    return s;
  }
  channel_values(w, theta);
  dsoDeriv* dv = w->deriv;
  dsoSim* sim = w->sim;
  mjData* d = dso_sim_data(sim);
  memset(w->lphys, 0, sizeof(double) * (size_t)ndx);
  memset(w->lap, 0, sizeof(double) * (size_t)nu);
  memset(w->lh, 0, sizeof(double) * (size_t)nh);
  double wt = pow(step, T);
  add_cost_gradient(w, dso_rollout_state(ro, n, T), theta, wt, g);
  for (int t = T - 1; t >= 0; t--) {
    const double* xt = dso_rollout_state(ro, n, t);
    const double* xn = dso_rollout_state(ro, n, t + 1);
    wt /= step;
    // the adjoint of state t + 1 moves to *_next
    double* tmp;
    tmp = w->lphys_next; w->lphys_next = w->lphys; w->lphys = tmp;
    tmp = w->lap_next; w->lap_next = w->lap; w->lap = tmp;
    tmp = w->lh_next; w->lh_next = w->lh; w->lh = tmp;
    memset(w->lphys, 0, sizeof(double) * (size_t)ndx);
    memset(w->lap, 0, sizeof(double) * (size_t)nu);
    memset(w->lh, 0, sizeof(double) * (size_t)nh);
    if (xn[mc->off_flag] == 0) {
      const double* as = xn + mc->off_as;
      const double* a = xn + mc->off_a;
      const double* y = xn + mc->off_y;
      const double* sd = xn + mc->off_sd;
      // A, B, ∂f/∂θ_f of the step from x_t under a_t
      dso_mj_state_set(d, m, xt);
      mju_copy(d->ctrl, a, nu);
      s = dso_deriv_step(dv, sim, w->A, w->B, NULL, w->F, &err);
      if (s) {
        return s;
      }
      // λ_a = λ_a' + Bᵀ λ_x', through the clipping
      mju_copy(w->la, w->lap_next, nu);
      add_mtv(w->la, w->B, w->lphys_next, ndx, nu);
      for (int i = 0; i < nu; i++) {
        if (m->actuator_ctrllimited[i] && (as[i] < m->actuator_ctrlrange[2 * i] ||
                                           as[i] > m->actuator_ctrlrange[2 * i + 1])) {
          w->la[i] = 0;
        }
      }
      const double* sin = policy_input(mc, w, xt, y);
      memset(w->gs, 0, sizeof(double) * (size_t)mc->nin);
      memset(w->gh, 0, sizeof(double) * (size_t)nh);
      w->mu_x = NULL;
      if (mc->policy) {
        dso_policy_forward(w->mu, w->hnext, mc->policy, w->pw, sin, xt + mc->off_h,
                           theta + mc->policy_start);
        dso_policy_vjp_after_forward(w->gs, w->gh, g + mc->policy_start, mc->policy, w->pw,
                                     xt + mc->off_h, theta + mc->policy_start, w->la,
                                     w->lh_next);
      } else {
        memset(w->mu, 0, sizeof(double) * (size_t)nu);
      }
      // λ_x = Aᵀ λ_x'; g_f += Fᵀ λ_x'
      add_mtv(w->lphys, w->A, w->lphys_next, ndx, ndx);
      mju_zero(w->lam, dv->nphys);
      add_mtv(w->lam, w->F, w->lphys_next, ndx, dv->nphys);
      for (int k = 0; k < dv->nphys; k++) {
        g[dv->index[k]] += w->lam[k];
      }
      if (mc->input == DSO_INPUT_STATE) {
        dso_mj_input_jacobian(w->Js, m, mc->periodic, mc->nperiodic, xt);
        add_mtv(w->lphys, w->Js, w->gs, mc->nin, ndx);
      } else {
        // y = gain ⊙ sd + offset + σ ⊙ ζ, sd = sensors(x_t, a_{t-1}, θ_f)
        for (int i = 0; i < th->n; i++) {
          const dsoThetaEntry* e = &th->entry[i];
          int c = e->bind.target;
          double dvdu = dso_theta_entry_jacobian(e, theta[i]);
          if (e->bind.kind == DSO_BIND_SENSOR_GAIN && c < ns) {
            g[i] += w->gs[c] * sd[c] * dvdu;
          } else if (e->bind.kind == DSO_BIND_SENSOR_OFFSET && c < ns) {
            g[i] += w->gs[c] * dvdu;
          } else if (e->bind.kind == DSO_BIND_SENSOR_STD && c < ns && w->ch_sstd[c] > 0) {
            double zeta = (y[c] - (w->ch_gain[c] * sd[c] + w->ch_off[c])) / w->ch_sstd[c];
            g[i] += w->gs[c] * zeta * dvdu;
          }
        }
        for (int c = 0; c < ns; c++) {
          w->lsd[c] = w->ch_gain[c] * w->gs[c];
        }
        dso_mj_state_set(d, m, xt);
        mju_copy(d->ctrl, xt + mc->off_a, nu);
        s = dso_deriv_sensors(dv, sim, w->Hx, w->Hu, w->Hf, &err);
        if (s) {
          return s;
        }
        add_mtv(w->lphys, w->Hx, w->lsd, ns, ndx);
        add_mtv(w->lap, w->Hu, w->lsd, ns, nu);
        mju_zero(w->lam, dv->nphys);
        add_mtv(w->lam, w->Hf, w->lsd, ns, dv->nphys);
        for (int k = 0; k < dv->nphys; k++) {
          g[dv->index[k]] += w->lam[k];
        }
      }
      // action noise a_s = μ + σ ξ: ∂a_s/∂u = ξ dσ/du
      for (int i = 0; i < th->n; i++) {
        const dsoThetaEntry* e = &th->entry[i];
        int c = e->bind.target;
        if (e->bind.kind == DSO_BIND_ACTION_STD && w->ch_astd[c] > 0) {
          double xi = (as[c] - w->mu[c]) / w->ch_astd[c];
          g[i] += w->la[c] * xi * dso_theta_entry_jacobian(e, theta[i]);
        }
      }
      mju_copy(w->lh, w->gh, nh);
    }
    add_cost_gradient(w, xt, theta, wt, g);
  }
  return DSO_OK;
}

static void pathwise_worker(void* vctx, int n, int thread) {
  dsoPathCtx* ctx = (dsoPathCtx*)vctx;
  dsoMjWork* w = (dsoMjWork*)ctx->ro->work[thread];
  ctx->status[n] = pathwise_one(ctx->mc, w, ctx->ro, n,
                                ctx->per + (long)n * ctx->mc->theta->n);
}

dsoStatus dso_mjchain_pathwise(double* g, double* se, const dsoMjChain* mc, dsoRollout* ro,
                               dsoError* err) {
  if (ro->chain.model != mc) {
    return dso_error(err, DSO_ERR_INPUT, "pathwise: the rollout batch was not sampled from this "
                     "chain");
  }
  if (ro->set.setting == DSO_AVERAGE) {
    return dso_error(err, DSO_ERR_INPUT, "pathwise: the average-cost setting is not supported; "
                     "use the episodic or time-varying setting");
  }
  int N = ro->nrollout, nt = mc->theta->n;
  double* per = (double*)calloc((size_t)N * (size_t)nt + 1, sizeof(double));
  dsoStatus* status = (dsoStatus*)calloc((size_t)N + 1, sizeof(dsoStatus));
  if (!per || !status) {
    free(per);
    free(status);
    return dso_error(err, DSO_ERR_MEMORY, "pathwise: out of memory");
  }
  dsoPathCtx ctx = {mc, ro, per, status};
  dso_rollout_parallel(ro, pathwise_worker, &ctx);
  dsoStatus s = DSO_OK;
  for (int n = 0; n < N && !s; n++) {
    if (status[n]) {
      s = dso_error(err, status[n], "pathwise: derivatives failed on rollout %d", n);
    }
  }
  if (!s) {
    dso_mean_se(g, se, per, N, nt);
  }
  free(per);
  free(status);
  return s;
}
