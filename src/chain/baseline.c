// Linear value-function baselines fitted by least squares.
#include "chain/baseline.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void dso_baseline_settings_default(dsoBaselineSettings* s) {
  s->kind = DSO_BASELINE_STATE;
  s->target = DSO_TARGET_MC;
  s->lambda = 0.9;
  s->ridge = 1e-6;
  s->forget = 0;
}

dsoStatus dso_baseline_create(dsoBaseline** out, int nfeat, dsoFeatureFn feat, const void* ctx,
                              const dsoBaselineSettings* set, const dsoRollout* ro, dsoError* err) {
  *out = NULL;
  if (nfeat < 1 || !feat) {
    return dso_error(err, DSO_ERR_INPUT, "baseline: need nfeat >= 1 (got %d) and a feature map",
                     nfeat);
  }
  dsoBaselineSettings s;
  if (set) {
    s = *set;
  } else {
    dso_baseline_settings_default(&s);
  }
  if (s.kind == DSO_BASELINE_VALUE && !ro->chain.ops->mean) {
    return dso_error(err, DSO_ERR_INPUT, "baseline: kind VALUE (eq. 59) needs the chain's "
                     "noise-free transition f(x,θ) (mean op)");
  }
  if (s.target == DSO_TARGET_TD && s.kind != DSO_BASELINE_VALUE) {
    return dso_error(err, DSO_ERR_INPUT, "baseline: TD(λ) targets need kind VALUE");
  }
  if (!(s.lambda >= 0 && s.lambda <= 1) || !(s.ridge >= 0) || !(s.forget >= 0 && s.forget < 1)) {
    return dso_error(err, DSO_ERR_INPUT, "baseline: need lambda in [0,1], ridge >= 0, forget in "
                     "[0,1) (got %g, %g, %g)", s.lambda, s.ridge, s.forget);
  }
  dsoBaseline* b = calloc(1, sizeof(dsoBaseline));
  if (!b) {
    return dso_error(err, DSO_ERR_MEMORY, "baseline: out of memory");
  }
  b->set = s;
  b->nfeat = nfeat;
  b->feat = feat;
  b->ctx = ctx;
  b->maxlen = ro->maxlen;
  long m = nfeat;
  b->omega = calloc(m, sizeof(double));
  b->A = calloc(m * m, sizeof(double));
  b->Afac = calloc(m * m, sizeof(double));
  b->rhs = calloc(m, sizeof(double));
  b->phi = calloc(m, sizeof(double));
  b->target = calloc(ro->maxlen + 2, sizeof(double));
  if (!b->omega || !b->A || !b->Afac || !b->rhs || !b->phi || !b->target) {
    dso_baseline_free(b);
    return dso_error(err, DSO_ERR_MEMORY, "baseline: out of memory");
  }
  *out = b;
  return DSO_OK;
}

void dso_baseline_free(dsoBaseline* b) {
  if (!b) {
    return;
  }
  free(b->omega);
  free(b->A);
  free(b->Afac);
  free(b->rhs);
  free(b->phi);
  free(b->target);
  free(b);
}

double dso_baseline_value(const dsoBaseline* b, double* scratch, const double* x, int t) {
  if (!b->fitted) {
    return 0;
  }
  b->feat(scratch, b->ctx, x, t);
  double v = 0;
  for (int i = 0; i < b->nfeat; i++) v += b->omega[i] * scratch[i];
  return v;
}

static void accumulate(dsoBaseline* b, const double* x, int t, double y) {
  int m = b->nfeat;
  b->feat(b->phi, b->ctx, x, t);
  for (int i = 0; i < m; i++) {
    double pi = b->phi[i];
    if (pi == 0) continue;
    b->rhs[i] += pi * y;
    for (int j = 0; j < m; j++) b->A[i * m + j] += pi * b->phi[j];
  }
}

dsoStatus dso_baseline_fit(dsoBaseline* b, const dsoRollout* ro, dsoError* err) {
  int m = b->nfeat, nx = ro->chain.nx;
  const dsoRolloutSettings* s = &ro->set;
  double gs = dso_rollout_gamma_step(ro);
  for (int i = 0; i < m * m; i++) b->A[i] *= b->set.forget;
  for (int i = 0; i < m; i++) b->rhs[i] *= b->set.forget;
  int avg = s->setting == DSO_AVERAGE;
  // average setting: Ĵ is the mean cost of the estimation window of this batch
  double jhat = 0;
  if (avg) {
    long cnt = 0;
    for (int n = 0; n < ro->nrollout; n++) {
      const double* c = ro->cost + (long)n * (ro->maxlen + 1);
      for (int t = s->burn_in; t <= ro->len[n]; t++) {
        jhat += c[t];
        cnt++;
      }
    }
    jhat = cnt ? jhat / cnt : 0;
  }
  for (int n = 0; n < ro->nrollout; n++) {
    const double* c = ro->cost + (long)n * (ro->maxlen + 1);
    int T = ro->len[n];
    double* y = b->target;
    if (avg) {
      // windowed differential returns R_t = Σ_{k=t}^{t+H-1} (L_k - Ĵ)
      int H = s->window;
      double run = 0;
      for (int t = T; t >= 0; t--) {
        run += c[t] - jhat;
        if (t + H <= T) run -= c[t + H] - jhat;
        y[t] = run;
      }
    } else if (b->set.target == DSO_TARGET_TD && b->fitted) {
      // λ-return: G_t = L_t + γ[(1-λ) V̂(x_{t+1}) + λ G_{t+1}], G_T = L_T
      double lam = b->set.lambda;
      y[T] = c[T];
      for (int t = T - 1; t >= 0; t--) {
        double vn = dso_baseline_value(b, b->phi, dso_rollout_state(ro, n, t + 1), t + 1);
        y[t] = c[t] + gs * ((1 - lam) * vn + lam * y[t + 1]);
      }
    } else {
      y[T] = c[T];
      for (int t = T - 1; t >= 0; t--) y[t] = c[t] + gs * y[t + 1];
    }
    int t0 = avg ? s->burn_in : 0;
    int t1 = avg ? s->horizon - s->window : T + 1;  // exclusive
    if (t1 > T + 1) t1 = T + 1;
    for (int t = t0; t < t1; t++) {
      if (b->set.kind == DSO_BASELINE_VALUE) {
        accumulate(b, dso_rollout_state(ro, n, t), t, y[t]);
      } else if (t < T) {
        accumulate(b, dso_rollout_state(ro, n, t), t, y[t + 1]);
      }
    }
  }
  (void)nx;
  memcpy(b->Afac, b->A, (long)m * m * sizeof(double));
  memcpy(b->omega, b->rhs, m * sizeof(double));
  for (int i = 0; i < m; i++) b->Afac[i * m + i] += b->set.ridge + 1e-12;
  lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', m, 1, b->Afac, m, b->omega, 1);
  if (info != 0) {
    memset(b->omega, 0, m * sizeof(double));
    return dso_error(err, DSO_ERR_NUMERIC, "baseline: normal equations not positive definite "
                     "(LAPACKE_dposv info=%d); increase ridge", (int)info);
  }
  b->jhat = jhat;
  b->fitted++;
  return DSO_OK;
}

int dso_baseline_state_size(const dsoBaseline* b) {
  return b->nfeat + 2 + (b->set.forget > 0 ? b->nfeat * b->nfeat + b->nfeat : 0);
}

void dso_baseline_get_state(const dsoBaseline* b, double* state) {
  int m = b->nfeat;
  memcpy(state, b->omega, (size_t)m * sizeof(double));
  state[m] = (double)b->fitted;
  state[m + 1] = b->jhat;
  if (b->set.forget > 0) {
    memcpy(state + m + 2, b->A, (size_t)m * (size_t)m * sizeof(double));
    memcpy(state + m + 2 + m * m, b->rhs, (size_t)m * sizeof(double));
  }
}

dsoStatus dso_baseline_set_state(dsoBaseline* b, const double* state, int offset, dsoError* err) {
  int m = b->nfeat, size = dso_baseline_state_size(b);
  for (int i = 0; i < size; i++) {
    double x = state[i];
    int count = i == m;
    if (!isfinite(x) || (count && !(x >= 0 && x == floor(x) && x <= 2147483647.0))) {
      return dso_error(err, DSO_ERR_INPUT, "baseline: state[%d]: expected %s, got %g",
                       offset + i, count ? "a nonnegative integer count of fitted batches"
                                         : "a finite number", x);
    }
  }
  memcpy(b->omega, state, (size_t)m * sizeof(double));
  b->fitted = (int)state[m];
  b->jhat = state[m + 1];
  if (b->set.forget > 0) {
    memcpy(b->A, state + m + 2, (size_t)m * (size_t)m * sizeof(double));
    memcpy(b->rhs, state + m + 2 + m * m, (size_t)m * sizeof(double));
  }
  return DSO_OK;
}

void dso_baseline_onehot(double* phi, const void* vctx, const double* x, int t) {
  const dsoOnehot* c = (const dsoOnehot*)vctx;
  int m = c->horizon > 0 ? (c->horizon + 1) * c->ns : c->ns;
  memset(phi, 0, m * sizeof(double));
  int tt = c->horizon > 0 ? (t < 0 ? 0 : (t > c->horizon ? c->horizon : t)) : 0;
  phi[tt * c->ns + (int)x[0]] = 1;
}
