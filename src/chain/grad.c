// Estimators of the DSO gradient, surrogate, Fisher matrix and Hessians.
#include "chain/grad.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

dsoStatus dso_grad_create(dsoGrad** out, const dsoRollout* ro, int matrices, int nfeat_max,
                          dsoError* err) {
  *out = NULL;
  dsoGrad* gr = calloc(1, sizeof(dsoGrad));
  if (!gr) {
    return dso_error(err, DSO_ERR_MEMORY, "grad: out of memory");
  }
  long n = ro->chain.ntheta, N = ro->nrollout;
  gr->n = (int)n;
  gr->nrollout = (int)N;
  gr->maxlen = ro->maxlen;
  gr->nthread = ro->set.nthread;
  gr->matrices = matrices != 0;
  // the n x n terms of Hessian and Lemma 3 passes only exist with per-rollout matrices
  gr->sq = matrices ? (int)(3 * n * n) : 0;
  gr->scratch_stride = (int)(6 * n + gr->sq + (nfeat_max > 0 ? nfeat_max : 1) + ro->chain.nx);
  gr->R = calloc(N * (ro->maxlen + 1), sizeof(double));
  gr->bhat = calloc(N * ro->maxlen, sizeof(double));
  gr->per = calloc(N * n, sizeof(double));
  gr->perval = calloc(N, sizeof(double));
  gr->perm = matrices ? calloc(N * n * n, sizeof(double)) : NULL;
  gr->scratch = calloc((long)gr->nthread * gr->scratch_stride, sizeof(double));
  if (!gr->R || !gr->bhat || !gr->per || !gr->perval || (matrices && !gr->perm) || !gr->scratch) {
    dso_grad_free(gr);
    return dso_error(err, DSO_ERR_MEMORY, "grad: out of memory for %ld rollouts", N);
  }
  *out = gr;
  return DSO_OK;
}

void dso_grad_free(dsoGrad* gr) {
  if (!gr) {
    return;
  }
  free(gr->R);
  free(gr->bhat);
  free(gr->per);
  free(gr->perval);
  free(gr->perm);
  free(gr->scratch);
  free(gr);
}

void dso_mean_se(double* mean, double* se, const double* rows, int N, int m) {
  for (int j = 0; j < m; j++) {
    double s = 0;
    for (int i = 0; i < N; i++) s += rows[(long)i * m + j];
    double mu = s / N;
    mean[j] = mu;
    if (se) {
      double v = 0;
      for (int i = 0; i < N; i++) {
        double d = rows[(long)i * m + j] - mu;
        v += d * d;
      }
      se[j] = N > 1 ? sqrt(v / (N - 1) / N) : INFINITY;
    }
  }
}

// index ranges of rollout n: cost terms t in [t0, tc), transition terms t in [t0, tp)
typedef struct {
  int t0, tc, tp;
  double scale, gs;
} dsoRange;

static dsoRange range_of(const dsoRollout* ro, int n) {
  dsoRange r;
  int T = ro->len[n];
  r.gs = dso_rollout_gamma_step(ro);
  if (ro->set.setting == DSO_AVERAGE) {
    int M = ro->set.horizon - ro->set.window - ro->set.burn_in;
    r.t0 = ro->set.burn_in;
    r.tc = ro->set.horizon - ro->set.window;
    if (r.tc > T - ro->set.window) r.tc = T - ro->set.window;  // only after a divergence
    if (r.tc < r.t0) r.tc = r.t0;
    r.tp = r.tc;
    r.scale = 1.0 / M;
  } else {
    r.t0 = 0;
    r.tc = T + 1;
    r.tp = T;
    r.scale = 1.0;
  }
  return r;
}

typedef struct {
  dsoGrad* gr;
  dsoRollout* ro;
  const dsoBaseline* bl;
  const double* alpha;
  double clip;
  int want_grad, want_hess;
} dsoPassCtx;

static double* scratch_of(dsoGrad* gr, int thread) {
  return gr->scratch + (long)thread * gr->scratch_stride;
}

static void prepare_one(void* vctx, int n, int thread) {
  dsoPassCtx* c = (dsoPassCtx*)vctx;
  dsoGrad* gr = c->gr;
  dsoRollout* ro = c->ro;
  const dsoChain* ch = &ro->chain;
  int T = ro->len[n];
  const double* cost = ro->cost + (long)n * (ro->maxlen + 1);
  double* R = gr->R + (long)n * (ro->maxlen + 1);
  double* b = gr->bhat + (long)n * ro->maxlen;
  double gs = dso_rollout_gamma_step(ro);
  if (ro->set.setting == DSO_AVERAGE) {
    int H = ro->set.window;
    double run = 0;
    for (int t = T; t >= 0; t--) {
      run += cost[t] - gr->jhat;
      if (t + H <= T) run -= cost[t + H] - gr->jhat;
      R[t] = run;
    }
  } else {
    R[T] = cost[T];
    for (int t = T - 1; t >= 0; t--) R[t] = cost[t] + gs * R[t + 1];
  }
  const dsoBaseline* bl = c->bl;
  double* s = scratch_of(gr, thread);
  double* xf = s + 6 * gr->n + gr->sq;
  double* phi = xf + ch->nx;
  for (int t = 0; t < T; t++) {
    double v = 0;
    if (bl && bl->fitted) {
      const double* xt = dso_rollout_state(ro, n, t);
      if (bl->set.kind == DSO_BASELINE_VALUE) {
        ch->ops->mean(xf, ch->model, ro->work[thread], xt, ro->theta, t, n);
        v = dso_baseline_value(bl, phi, xf, t + 1);
      } else {
        v = dso_baseline_value(bl, phi, xt, t);
      }
    }
    b[t] = v;
  }
}

dsoStatus dso_grad_prepare(dsoGrad* gr, dsoRollout* ro, const dsoBaseline* bl, dsoError* err) {
  if (ro->nrollout != gr->nrollout || ro->chain.ntheta != gr->n || ro->maxlen != gr->maxlen) {
    return dso_error(err, DSO_ERR_INPUT, "grad: workspace does not match the rollout batch");
  }
  if (bl && bl->nfeat > gr->scratch_stride - 6 * gr->n - gr->sq - ro->chain.nx) {
    return dso_error(err, DSO_ERR_INPUT, "grad: baseline has %d features, more than nfeat_max",
                     bl->nfeat);
  }
  gr->jhat = (bl && bl->fitted && ro->set.setting == DSO_AVERAGE) ? bl->jhat : 0;
  dsoPassCtx c = {gr, ro, bl, NULL, 0, 0, 0};
  dso_rollout_parallel(ro, prepare_one, &c);
  return DSO_OK;
}

static void alg1_one(void* vctx, int n, int thread) {
  dsoPassCtx* c = (dsoPassCtx*)vctx;
  dsoGrad* gr = c->gr;
  dsoRollout* ro = c->ro;
  const dsoChain* ch = &ro->chain;
  int nt = gr->n;
  double* g = gr->per + (long)n * nt;
  double* tmp = scratch_of(gr, thread);
  dsoRange r = range_of(ro, n);
  const double* R = gr->R + (long)n * (ro->maxlen + 1);
  const double* b = gr->bhat + (long)n * ro->maxlen;
  memset(g, 0, nt * sizeof(double));
  double w = 1;
  for (int t = 0; t < r.t0; t++) w *= r.gs;
  // forward form of the backward recursion of Algorithm 1: G_0 = Σ_t w_t (∇L_t + γ ∇lnP_t R̂_t)
  for (int t = r.t0; t < r.tc; t++) {
    const double* xt = dso_rollout_state(ro, n, t);
    if (!ch->cost_grad_zero) {
      ch->ops->cost(tmp, NULL, ch->model, ro->work[thread], xt, ro->theta, t, n);
      for (int k = 0; k < nt; k++) g[k] += w * tmp[k];
    }
    if (t < r.tp) {
      double adv = w * r.gs * (R[t + 1] - b[t]);
      if (ch->ops->logp_add) {
        ch->ops->logp_add(g, adv, ch->model, ro->work[thread], dso_rollout_state(ro, n, t + 1),
                          xt, ro->theta, t, n);
      } else {
        ch->ops->logp(tmp, NULL, ch->model, ro->work[thread], dso_rollout_state(ro, n, t + 1),
                      xt, ro->theta, t, n);
        for (int k = 0; k < nt; k++) g[k] += adv * tmp[k];
      }
    }
    w *= r.gs;
  }
  for (int k = 0; k < nt; k++) g[k] *= r.scale;
}

dsoStatus dso_grad_algorithm1(double* g, double* se, dsoGrad* gr, dsoRollout* ro, dsoError* err) {
  dsoPassCtx c = {gr, ro, NULL, NULL, 0, 0, 0};
  dso_rollout_parallel(ro, alg1_one, &c);
  double* s = scratch_of(gr, 0);
  dso_mean_se(g, s, gr->per, gr->nrollout, gr->n);
  double var = 0;
  for (int k = 0; k < gr->n; k++) {
    var += s[k] * s[k] * gr->nrollout;
    if (se) se[k] = s[k];
  }
  gr->variance = var;
  for (int k = 0; k < gr->n; k++) {
    if (!isfinite(g[k])) {
      return dso_error(err, DSO_ERR_NUMERIC, "grad: Algorithm 1 gave a non-finite component %d", k);
    }
  }
  return DSO_OK;
}

static void surrogate_one(void* vctx, int n, int thread) {
  dsoPassCtx* c = (dsoPassCtx*)vctx;
  dsoGrad* gr = c->gr;
  dsoRollout* ro = c->ro;
  const dsoChain* ch = &ro->chain;
  int nt = gr->n;
  double* s = scratch_of(gr, thread);
  double* th = s;            // θ + α
  double* gl = s + nt;       // ∇ of one term
  double* hl = s + 3 * nt;   // ∇² of one term
  double* g = gr->per + (long)n * nt;
  double* H = c->want_hess ? gr->perm + (long)n * nt * nt : NULL;
  for (int k = 0; k < nt; k++) th[k] = ro->theta[k] + c->alpha[k];
  dsoRange r = range_of(ro, n);
  const double* R = gr->R + (long)n * (ro->maxlen + 1);
  const double* b = gr->bhat + (long)n * ro->maxlen;
  const double* lp0 = ro->logp + (long)n * ro->maxlen;
  if (c->want_grad) memset(g, 0, nt * sizeof(double));
  if (H) memset(H, 0, (long)nt * nt * sizeof(double));
  double val = 0, w = 1;
  for (int t = 0; t < r.t0; t++) w *= r.gs;
  for (int t = r.t0; t < r.tc; t++) {
    const double* xt = dso_rollout_state(ro, n, t);
    // L̂_t^n(θ, α) = L(x_t, θ + α)
    val += w * ch->ops->cost(c->want_grad ? gl : NULL, H ? hl : NULL, ch->model, ro->work[thread],
                             xt, th, t, n);
    if (c->want_grad) for (int k = 0; k < nt; k++) g[k] += w * gl[k];
    if (H) for (int k = 0; k < nt * nt; k++) H[k] += w * hl[k];
    if (t < r.tp) {
      // P̂_{t,t+1}^n(θ, α) = P(x_{t+1}|x_t, θ+α) / P(x_{t+1}|x_t, θ), R̂ = R_{t+1} - b_t (eq. 65)
      double lp = ch->ops->logp(c->want_grad ? gl : NULL, H ? hl : NULL, ch->model,
                                ro->work[thread], dso_rollout_state(ro, n, t + 1), xt, th, t, n);
      double ratio = exp(lp - lp0[t]);
      double rhat = R[t + 1] - b[t];
      double term = ratio * rhat;
      int active = 1;
      if (c->clip > 0) {
        double rc = ratio < 1 - c->clip ? 1 - c->clip : (ratio > 1 + c->clip ? 1 + c->clip : ratio);
        if (rc * rhat > term) {
          term = rc * rhat;
          active = 0;  // the clipped branch is constant in α
        }
      }
      double cw = w * r.gs;
      val += cw * term;
      if (active) {
        // ∇P̂ = P̂ ∇lnP, ∇²P̂ = P̂ (∇lnP ∇lnPᵀ + ∇²lnP)
        double f = cw * ratio * rhat;
        if (c->want_grad) for (int k = 0; k < nt; k++) g[k] += f * gl[k];
        if (H) {
          for (int k = 0; k < nt; k++)
            for (int l = 0; l < nt; l++) H[k * nt + l] += f * (gl[k] * gl[l] + hl[k * nt + l]);
        }
      }
    }
    w *= r.gs;
  }
  gr->perval[n] = val * r.scale;
  if (c->want_grad) for (int k = 0; k < nt; k++) g[k] *= r.scale;
  if (H) for (int k = 0; k < nt * nt; k++) H[k] *= r.scale;
}

dsoStatus dso_grad_surrogate(double* value, double* grad, double* hess, dsoGrad* gr, dsoRollout* ro,
                             const double* alpha, double clip, dsoError* err) {
  if (hess && (!gr->matrices || !ro->chain.has_hessian)) {
    return dso_error(err, DSO_ERR_INPUT, "grad: the surrogate Hessian needs per-rollout matrices "
                     "and a chain with second derivatives");
  }
  dsoPassCtx c = {gr, ro, NULL, alpha, clip, grad != NULL || hess != NULL, hess != NULL};
  dso_rollout_parallel(ro, surrogate_one, &c);
  int N = gr->nrollout, n = gr->n;
  double v = 0;
  for (int i = 0; i < N; i++) v += gr->perval[i];
  *value = v / N;
  if (grad) dso_mean_se(grad, NULL, gr->per, N, n);
  if (hess) dso_mean_se(hess, NULL, gr->perm, N, n * n);
  if (!isfinite(*value)) {
    return dso_error(err, DSO_ERR_NUMERIC, "grad: surrogate is not finite");
  }
  return DSO_OK;
}

static void fisher_one(void* vctx, int n, int thread) {
  dsoPassCtx* c = (dsoPassCtx*)vctx;
  dsoGrad* gr = c->gr;
  dsoRollout* ro = c->ro;
  const dsoChain* ch = &ro->chain;
  int nt = gr->n;
  double* g = scratch_of(gr, thread);
  double* F = gr->perm + (long)n * nt * nt;
  memset(F, 0, (long)nt * nt * sizeof(double));
  dsoRange r = range_of(ro, n);
  double div = 1;
  if (ro->set.setting == DSO_EPISODIC && ro->set.terminate) div = ro->set.gamma;
  double w = 1;
  for (int t = 0; t < r.t0; t++) w *= r.gs;
  for (int t = r.t0; t < r.tp; t++) {
    ch->ops->logp(g, NULL, ch->model, ro->work[thread], dso_rollout_state(ro, n, t + 1),
                  dso_rollout_state(ro, n, t), ro->theta, t, n);
    double f = w * r.scale / div;
    for (int k = 0; k < nt; k++)
      for (int l = 0; l < nt; l++) F[k * nt + l] += f * g[k] * g[l];
    w *= r.gs;
  }
}

dsoStatus dso_grad_fisher(double* F, double* se, dsoGrad* gr, dsoRollout* ro, dsoError* err) {
  if (!gr->matrices) {
    return dso_error(err, DSO_ERR_INPUT, "grad: the Fisher matrix needs per-rollout matrices");
  }
  dsoPassCtx c = {gr, ro, NULL, NULL, 0, 0, 0};
  dso_rollout_parallel(ro, fisher_one, &c);
  dso_mean_se(F, se, gr->perm, gr->nrollout, gr->n * gr->n);
  return DSO_OK;
}

static void lemma3_one(void* vctx, int n, int thread) {
  dsoPassCtx* c = (dsoPassCtx*)vctx;
  dsoGrad* gr = c->gr;
  dsoRollout* ro = c->ro;
  const dsoChain* ch = &ro->chain;
  int nt = gr->n;
  double* s = scratch_of(gr, thread);
  double* dK = s;            // ∇𝒦
  double* dL = s + nt;       // ∇ℒ
  double* g = s + 2 * nt;    // one term
  double* h = s + 3 * nt;    // one term's Hessian
  double* H = gr->perm + (long)n * nt * nt;  // accumulates ∇²𝒦 then the estimate
  double* HL = s + 3 * nt + nt * nt;          // ∇²ℒ
  memset(dK, 0, 2 * nt * sizeof(double));
  memset(H, 0, (long)nt * nt * sizeof(double));
  memset(HL, 0, (long)nt * nt * sizeof(double));
  int T = ro->len[n];
  double Lsum = 0;
  for (int t = 0; t <= T; t++) {
    const double* xt = dso_rollout_state(ro, n, t);
    Lsum += ch->ops->cost(g, h, ch->model, ro->work[thread], xt, ro->theta, t, n);
    for (int k = 0; k < nt; k++) dL[k] += g[k];
    for (int k = 0; k < nt * nt; k++) HL[k] += h[k];
    if (t < T) {
      ch->ops->logp(g, h, ch->model, ro->work[thread], dso_rollout_state(ro, n, t + 1), xt,
                    ro->theta, t, n);
      for (int k = 0; k < nt; k++) dK[k] += g[k];
      for (int k = 0; k < nt * nt; k++) H[k] += h[k];
    }
  }
  // eq. 80 with the corrected last term: (∇𝒦∇𝒦ᵀ + ∇²𝒦)ℒ + ∇𝒦∇ℒᵀ + ∇ℒ∇𝒦ᵀ + ∇²ℒ
  for (int k = 0; k < nt; k++) {
    for (int l = 0; l < nt; l++) {
      H[k * nt + l] = (dK[k] * dK[l] + H[k * nt + l]) * Lsum + dK[k] * dL[l] + dL[k] * dK[l] +
                      HL[k * nt + l];
    }
  }
}

dsoStatus dso_grad_hessian_lemma3(double* H, double* se, dsoGrad* gr, dsoRollout* ro,
                                  dsoError* err) {
  const dsoRolloutSettings* s = &ro->set;
  int ok = s->setting == DSO_TIMEVARYING ||
           (s->setting == DSO_EPISODIC && !s->terminate && s->gamma == 1);
  if (!ok) {
    return dso_error(err, DSO_ERR_INPUT, "grad: Lemma 3 needs the time-varying setting (or first "
                     "exit with gamma = 1 and terminate = 0)");
  }
  if (!gr->matrices || !ro->chain.has_hessian) {
    return dso_error(err, DSO_ERR_INPUT, "grad: Lemma 3 needs per-rollout matrices and a chain "
                     "with second derivatives");
  }
  dsoPassCtx c = {gr, ro, NULL, NULL, 0, 0, 0};
  dso_rollout_parallel(ro, lemma3_one, &c);
  dso_mean_se(H, se, gr->perm, gr->nrollout, gr->n * gr->n);
  return DSO_OK;
}

dsoStatus dso_natural_direction(double* d, const double* F, const double* g, int n, double damping,
                                double* scratch, dsoError* err) {
  memcpy(scratch, F, (long)n * n * sizeof(double));
  for (int k = 0; k < n; k++) scratch[k * n + k] += damping;
  memcpy(d, g, n * sizeof(double));
  lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', n, 1, scratch, n, d, 1);
  if (info != 0) {
    memset(d, 0, n * sizeof(double));
    return dso_error(err, DSO_ERR_NUMERIC, "grad: damped Fisher matrix is not positive definite "
                     "(LAPACKE_dposv info=%d); increase the damping", (int)info);
  }
  return DSO_OK;
}
