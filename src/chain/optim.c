// SGD, Adam, natural gradient and chain iteration.
#include "chain/optim.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void dso_optim_settings_default(dsoOptimSettings* s) {
  s->kind = DSO_OPT_ADAM;
  s->lr = 0.1;
  s->decay = 0;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->eps = 1e-8;
  s->damping = 1e-3;
  s->kappa = 1;
  s->prox = 0.1;
  s->clip = 0;
  s->newton_iters = 10;
  s->max_step = 0;
}

dsoStatus dso_optim_create(dsoOptim** out, int n, const dsoOptimSettings* set, dsoError* err) {
  *out = NULL;
  dsoOptimSettings s;
  if (set) {
    s = *set;
  } else {
    dso_optim_settings_default(&s);
  }
  if (n < 1 || s.kind < DSO_OPT_SGD || s.kind > DSO_OPT_NEWTON) {
    return dso_error(err, DSO_ERR_INPUT, "optim: need n >= 1 and a known kind (got %d, %d)", n,
                     (int)s.kind);
  }
  if (!(s.lr > 0) || !(s.decay >= 0) || !(s.damping >= 0) || !(s.kappa > 0 && s.kappa <= 1) ||
      !(s.prox >= 0) || !(s.clip >= 0 && s.clip < 1) || s.newton_iters < 1 || !(s.max_step >= 0)) {
    return dso_error(err, DSO_ERR_INPUT, "optim: settings out of range (lr > 0, decay >= 0, "
                     "damping >= 0, kappa in (0,1], prox >= 0, clip in [0,1), newton_iters >= 1, "
                     "max_step >= 0)");
  }
  dsoOptim* o = calloc(1, sizeof(dsoOptim));
  if (!o) return dso_error(err, DSO_ERR_MEMORY, "optim: out of memory");
  o->set = s;
  o->n = n;
  long nn = (long)n * n;
  o->m = calloc(n, sizeof(double));
  o->v = calloc(n, sizeof(double));
  o->g = calloc(n, sizeof(double));
  o->d = calloc(n, sizeof(double));
  o->alpha = calloc(n, sizeof(double));
  o->trial = calloc(n, sizeof(double));
  o->F = calloc(nn, sizeof(double));
  o->H = calloc(nn, sizeof(double));
  o->work = calloc(nn, sizeof(double));
  if (!o->m || !o->v || !o->g || !o->d || !o->alpha || !o->trial || !o->F || !o->H || !o->work) {
    dso_optim_free(o);
    return dso_error(err, DSO_ERR_MEMORY, "optim: out of memory");
  }
  *out = o;
  return DSO_OK;
}

void dso_optim_free(dsoOptim* o) {
  if (!o) return;
  free(o->m);
  free(o->v);
  free(o->g);
  free(o->d);
  free(o->alpha);
  free(o->trial);
  free(o->F);
  free(o->H);
  free(o->work);
  free(o);
}

static void cap_norm(double* d, int n, double cap) {
  if (cap <= 0) return;
  double s = 0;
  for (int k = 0; k < n; k++) s += d[k] * d[k];
  s = sqrt(s);
  if (s > cap) {
    for (int k = 0; k < n; k++) d[k] *= cap / s;
  }
}

// S̃(θ, α) + ½μ|α|² with gradient and Hessian (any output may be NULL)
static dsoStatus prox_surrogate(double* val, double* g, double* H, dsoOptim* o, dsoGrad* gr,
                                dsoRollout* ro, const double* alpha, dsoError* err) {
  dsoStatus st = dso_grad_surrogate(val, g, H, gr, ro, alpha, o->set.clip, err);
  if (st) return st;
  int n = o->n;
  double mu = o->set.prox;
  for (int k = 0; k < n; k++) {
    *val += 0.5 * mu * alpha[k] * alpha[k];
    if (g) g[k] += mu * alpha[k];
    if (H) H[k * n + k] += mu;
  }
  return DSO_OK;
}

// chain iteration (eq. 63): Levenberg-Marquardt-damped Newton on the proximal surrogate
static dsoStatus chain_iteration(dsoOptim* o, double* theta, dsoGrad* gr, dsoRollout* ro,
                                 dsoError* err) {
  int n = o->n;
  memset(o->alpha, 0, n * sizeof(double));
  double lam = o->set.damping, val;
  dsoStatus st = prox_surrogate(&val, o->g, o->H, o, gr, ro, o->alpha, err);
  if (st) return st;
  for (int it = 0; it < o->set.newton_iters; it++) {
    int accepted = 0;
    for (int tries = 0; tries < 30 && !accepted; tries++) {
      memcpy(o->work, o->H, (long)n * n * sizeof(double));
      for (int k = 0; k < n; k++) {
        o->work[k * n + k] += lam;
        o->d[k] = -o->g[k];
      }
      lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', n, 1, o->work, n, o->d, 1);
      if (info != 0) {
        lam = lam > 0 ? lam * 10 : 1e-6;
        continue;
      }
      cap_norm(o->d, n, o->set.max_step);
      for (int k = 0; k < n; k++) o->trial[k] = o->alpha[k] + o->d[k];
      double tv;
      st = prox_surrogate(&tv, NULL, NULL, o, gr, ro, o->trial, err);
      if (st) return st;
      if (tv < val) {
        memcpy(o->alpha, o->trial, n * sizeof(double));
        accepted = 1;
        lam *= 0.3;
      } else {
        lam = lam > 0 ? lam * 10 : 1e-6;
      }
    }
    if (!accepted) break;
    if ((st = prox_surrogate(&val, o->g, o->H, o, gr, ro, o->alpha, err))) return st;
  }
  for (int k = 0; k < n; k++) o->d[k] = o->set.kappa * o->alpha[k];
  return DSO_OK;
}

// a refused step: counted, θ and the optimizer state unchanged
static dsoStatus refuse(dsoOptim* o, dsoError* err, const char* what, int k, double v) {
  o->refused++;
  return dso_error(err, DSO_ERR_NUMERIC, "optim: step %ld: %s %d is %g; step refused, theta "
                   "and optimizer state kept", o->iter, what, k, v);
}

dsoStatus dso_optim_step(dsoOptim* o, double* theta, dsoGrad* gr, dsoRollout* ro, dsoError* err) {
  int n = o->n;
  if (n != ro->chain.ntheta) {
    return dso_error(err, DSO_ERR_INPUT, "optim: n=%d does not match the chain's ntheta=%d", n,
                     ro->chain.ntheta);
  }
  const dsoOptimSettings* s = &o->set;
  double lr = s->lr / (1 + s->decay * (double)o->iter);
  dsoStatus st = DSO_OK;
  if (s->kind != DSO_OPT_NEWTON) {
    if ((st = dso_grad_algorithm1(o->g, NULL, gr, ro, err))) return st;
    for (int k = 0; k < n; k++) {
      if (!isfinite(o->g[k])) return refuse(o, err, "gradient component", k, o->g[k]);
    }
  }
  // adam: the new moments go to alpha (m) and trial (v) until the step is accepted
  switch (s->kind) {
    case DSO_OPT_SGD:
      for (int k = 0; k < n; k++) o->d[k] = -lr * o->g[k];
      break;
    case DSO_OPT_ADAM: {
      double t = (double)(o->iter + 1);
      for (int k = 0; k < n; k++) {
        o->alpha[k] = s->beta1 * o->m[k] + (1 - s->beta1) * o->g[k];
        o->trial[k] = s->beta2 * o->v[k] + (1 - s->beta2) * o->g[k] * o->g[k];
        double mh = o->alpha[k] / (1 - pow(s->beta1, t));
        double vh = o->trial[k] / (1 - pow(s->beta2, t));
        o->d[k] = -lr * mh / (sqrt(vh) + s->eps);
        if (!isfinite(o->alpha[k]) || !isfinite(o->trial[k])) {
          return refuse(o, err, "Adam moment of component", k, o->trial[k]);
        }
      }
      break;
    }
    case DSO_OPT_NATURAL:
      if ((st = dso_grad_fisher(o->F, NULL, gr, ro, err))) return st;
      if ((st = dso_natural_direction(o->d, o->F, o->g, n, s->damping, o->work, err))) return st;
      for (int k = 0; k < n; k++) o->d[k] *= -lr;
      break;
    case DSO_OPT_NEWTON:
      if ((st = chain_iteration(o, theta, gr, ro, err))) return st;
      break;
  }
  if (s->kind != DSO_OPT_NEWTON) cap_norm(o->d, n, s->max_step);
  for (int k = 0; k < n; k++) {
    if (!isfinite(o->d[k])) return refuse(o, err, "step component", k, o->d[k]);
    if (!isfinite(theta[k] + o->d[k])) return refuse(o, err, "new theta component", k,
                                                     theta[k] + o->d[k]);
  }
  if (s->kind == DSO_OPT_ADAM) {
    memcpy(o->m, o->alpha, (size_t)n * sizeof(double));
    memcpy(o->v, o->trial, (size_t)n * sizeof(double));
  }
  for (int k = 0; k < n; k++) theta[k] += o->d[k];
  o->iter++;
  return DSO_OK;
}

dsoStatus dso_optim_run(long* iters, dsoOptim* o, double* theta, dsoRollout* ro, dsoGrad* gr,
                        dsoBaseline* bl, long maxiter, dsoOptimMonitor monitor, void* ctx,
                        dsoError* err) {
  long it;
  dsoStatus st = DSO_OK;
  for (it = 0; it < maxiter; it++) {
    if ((st = dso_rollout_run(ro, theta, (uint64_t)it, err))) break;
    if ((st = dso_grad_prepare(gr, ro, bl, err))) break;
    if ((st = dso_optim_step(o, theta, gr, ro, err))) break;
    if (bl && (st = dso_baseline_fit(bl, ro, err))) break;
    if (monitor && monitor(ctx, it, theta, ro)) {
      it++;
      break;
    }
  }
  if (iters) *iters = it;
  return st;
}
