// Linearly-solvable chains: exact Z, optimal chain, Z-learning, natural-gradient identity.
#include "verify/lmdp.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

static int is_term(const dsoLmdp* m, int x) {
  return m->terminal && m->terminal[x];
}

dsoStatus dso_lmdp_solve(double* z, double* Jstar, const dsoLmdp* m, dsoError* err) {
  int ns = m->ns;
  double g = m->setting == DSO_EPISODIC ? m->gamma : 1.0;
  if (m->setting == DSO_AVERAGE) {
    // principal eigenvector of diag(e^{-r}) p̄ by power iteration
    double* zn = malloc(ns * sizeof(double));
    if (!zn) return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
    for (int x = 0; x < ns; x++) z[x] = 1;
    double lam = 0;
    int it;
    for (it = 0; it < 100000; it++) {
      double mx = 0;
      for (int x = 0; x < ns; x++) {
        double s = 0;
        for (int y = 0; y < ns; y++) s += m->pbar[x * ns + y] * z[y];
        zn[x] = exp(-m->r[x]) * s;
        mx = zn[x] > mx ? zn[x] : mx;
      }
      double diff = 0;
      for (int x = 0; x < ns; x++) {
        zn[x] /= mx;
        diff = fmax(diff, fabs(zn[x] - z[x]));
        z[x] = zn[x];
      }
      lam = mx;
      if (diff < 1e-15) break;
    }
    free(zn);
    if (it == 100000) return dso_error(err, DSO_ERR_NUMERIC, "lmdp: power iteration stalled");
    if (Jstar) *Jstar = -log(lam);
    return DSO_OK;
  }
  if (g == 1) {
    // first exit: Z = e^{-r} p̄ Z at non-terminal states, Z = e^{-r} at terminal ones (linear)
    double* A = malloc((long)ns * ns * sizeof(double));
    lapack_int* ipiv = malloc(ns * sizeof(lapack_int));
    if (!A || !ipiv) {
      free(A), free(ipiv);
      return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
    }
    for (int x = 0; x < ns; x++) {
      for (int y = 0; y < ns; y++) {
        A[x * ns + y] = (x == y) - (is_term(m, x) ? 0 : exp(-m->r[x]) * m->pbar[x * ns + y]);
      }
      z[x] = is_term(m, x) ? exp(-m->r[x]) : 0;
    }
    lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, ns, 1, A, ns, ipiv, z, 1);
    free(A), free(ipiv);
    if (info != 0) return dso_error(err, DSO_ERR_NUMERIC, "lmdp: singular first-exit system");
  } else {
    // discounted: v = -ln Z, v <- r - ln Σ p̄ e^{-γ v}, a γ-contraction
    double* v = calloc(ns, sizeof(double));
    double* vn = calloc(ns, sizeof(double));
    if (!v || !vn) {
      free(v), free(vn);
      return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
    }
    int it;
    for (it = 0; it < 100000; it++) {
      double diff = 0;
      for (int x = 0; x < ns; x++) {
        if (is_term(m, x)) {
          vn[x] = m->r[x];
        } else {
          double mn = v[0];
          for (int y = 1; y < ns; y++) mn = v[y] < mn ? v[y] : mn;
          double s = 0;
          for (int y = 0; y < ns; y++) s += m->pbar[x * ns + y] * exp(-g * (v[y] - mn));
          vn[x] = m->r[x] + g * mn - log(s);
        }
        diff = fmax(diff, fabs(vn[x] - v[x]));
      }
      memcpy(v, vn, ns * sizeof(double));
      if (diff < 1e-14 * (1 + fabs(v[0]))) break;
    }
    for (int x = 0; x < ns; x++) z[x] = exp(-v[x]);
    free(v), free(vn);
  }
  if (Jstar) {
    double j = 0;
    for (int x = 0; x < ns; x++) {
      double p0 = m->p0 ? m->p0[x] : 1.0 / ns;
      j += p0 * -log(z[x]);
    }
    *Jstar = j;
  }
  return DSO_OK;
}

void dso_lmdp_optimal_chain(double* P, const dsoLmdp* m, const double* z) {
  int ns = m->ns;
  double g = m->setting == DSO_EPISODIC ? m->gamma : 1.0;
  for (int x = 0; x < ns; x++) {
    double s = 0;
    for (int y = 0; y < ns; y++) s += m->pbar[x * ns + y] * pow(z[y], g);
    for (int y = 0; y < ns; y++) P[x * ns + y] = m->pbar[x * ns + y] * pow(z[y], g) / s;
  }
}

dsoStatus dso_lmdp_create_chain(dsoTabular** out, const dsoLmdp* m, const double* feat, int n,
                                dsoError* err) {
  *out = NULL;
  int ns = m->ns;
  double g = m->setting == DSO_EPISODIC ? m->gamma : 1.0;
  double* B = malloc((long)ns * ns * sizeof(double));
  double* phi = malloc((long)n * ns * ns * sizeof(double));
  if (!B || !phi) {
    free(B), free(phi);
    return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
  }
  for (int x = 0; x < ns; x++) {
    for (int y = 0; y < ns; y++) {
      if (!(m->pbar[x * ns + y] > 0)) {
        free(B), free(phi);
        return dso_error(err, DSO_ERR_INPUT, "lmdp: pbar[%d][%d] must be positive", x, y);
      }
      B[x * ns + y] = log(m->pbar[x * ns + y]);
      // P ∝ p̄ Z^γ = p̄ exp(-γ θᵀφ(x')) (eq. 89)
      for (int k = 0; k < n; k++) phi[((long)k * ns + x) * ns + y] = -g * feat[y * n + k];
    }
  }
  dsoSoftmaxSpec sp = {ns, n, 1, B, phi, m->r, NULL, NULL, 1.0};
  dsoTabSetup su = {m->setting, m->gamma, 0, m->p0, m->terminal};
  dsoStatus st = dso_tabular_create_softmax(out, &sp, &su, err);
  free(B), free(phi);
  return st;
}

dsoStatus dso_lmdp_policy_gradient(double* grad, const dsoLmdp* m, const dsoTabular* tab,
                                   dsoTabWork* w, const double* theta, dsoError* err) {
  int ns = m->ns, n = dso_tabular_ntheta(tab);
  double* V = malloc(2 * ns * sizeof(double));
  if (!V) return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
  double* dens = V + ns;
  double J;
  dsoStatus st = dso_tabular_exact(&J, V, dens, NULL, tab, w, theta, err);
  if (st) {
    free(V);
    return st;
  }
  const double *P, *G;
  dso_tabular_eval(&P, &G, NULL, NULL, tab, w, theta, 0);
  double g = dso_tabular_gamma(tab);
  memset(grad, 0, n * sizeof(double));
  for (int x = 0; x < ns; x++) {
    if (is_term(m, x)) continue;
    for (int y = 0; y < ns; y++) {
      double pxy = P[x * ns + y];
      // eq. 54: ∇P (ln(P/p̄) + v(x')); in the episodic form the value is discounted by γ
      double c = dens[x] * pxy * (log(pxy / m->pbar[x * ns + y]) + g * V[y]);
      for (int k = 0; k < n; k++) grad[k] += c * G[((long)x * ns + y) * n + k];
    }
  }
  free(V);
  return DSO_OK;
}

dsoStatus dso_lmdp_compatible_omega(double* omega, const dsoLmdp* m, const double* feat,
                                    const dsoTabular* tab, dsoTabWork* w, const double* theta,
                                    dsoError* err) {
  if (m->setting != DSO_AVERAGE) {
    return dso_error(err, DSO_ERR_INPUT, "lmdp: the compatible-feature identity is stated for the "
                     "average setting");
  }
  int ns = m->ns, n = dso_tabular_ntheta(tab);
  long rows = (long)ns * ns;
  double* A = malloc(rows * n * sizeof(double));
  double* b = malloc((rows > n ? rows : n) * sizeof(double));
  double* V = malloc(2 * ns * sizeof(double));
  double* fbar = malloc(n * sizeof(double));
  if (!A || !b || !V || !fbar) {
    free(A), free(b), free(V), free(fbar);
    return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
  }
  double J;
  dsoStatus st = dso_tabular_exact(&J, V, V + ns, NULL, tab, w, theta, err);
  if (!st) {
    const double* P;
    dso_tabular_eval(&P, NULL, NULL, NULL, tab, w, theta, 0);
    for (int x = 0; x < ns; x++) {
      double vbar = 0;
      for (int k = 0; k < n; k++) fbar[k] = 0;
      for (int y = 0; y < ns; y++) {
        vbar += P[x * ns + y] * V[y];
        for (int k = 0; k < n; k++) fbar[k] += P[x * ns + y] * feat[y * n + k];
      }
      for (int y = 0; y < ns; y++) {
        double sw = sqrt(V[ns + x] * P[x * ns + y]);
        long row = (long)x * ns + y;
        for (int k = 0; k < n; k++) A[row * n + k] = sw * (feat[y * n + k] - fbar[k]);
        b[row] = sw * (V[y] - vbar);
      }
    }
    lapack_int info = LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', (lapack_int)rows, n, 1, A, n, b, 1);
    if (info != 0) {
      st = dso_error(err, DSO_ERR_NUMERIC, "lmdp: compatible least squares failed (info=%d)",
                     (int)info);
    } else {
      memcpy(omega, b, n * sizeof(double));
    }
  }
  free(A), free(b), free(V), free(fbar);
  return st;
}

dsoStatus dso_lmdp_zlearn(double* z, const dsoLmdp* m, dsoZlearnMode mode, long nsteps,
                          int restart, double c, uint64_t seed, dsoError* err) {
  if (m->setting != DSO_EPISODIC) {
    return dso_error(err, DSO_ERR_INPUT, "lmdp: Z-learning is implemented for the episodic setting");
  }
  int ns = m->ns;
  double g = m->gamma;
  long* visits = calloc(ns, sizeof(long));
  double* prow = malloc(ns * sizeof(double));
  double* p0 = malloc(ns * sizeof(double));
  if (!visits || !prow || !p0) {
    free(visits), free(prow), free(p0);
    return dso_error(err, DSO_ERR_MEMORY, "lmdp: out of memory");
  }
  for (int x = 0; x < ns; x++) {
    z[x] = is_term(m, x) ? exp(-m->r[x]) : 1.0;
    p0[x] = m->p0 ? m->p0[x] : 1.0 / ns;
  }
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, (uint64_t)mode);
  int x = dso_rng_categorical(&rng, p0, ns);
  int len = 0;
  for (long s = 0; s < nsteps; s++) {
    if (is_term(m, x) || (restart > 0 && len >= restart)) {
      x = dso_rng_categorical(&rng, p0, ns);
      len = 0;
      continue;
    }
    const double* pb = m->pbar + (long)x * ns;
    double target;
    int next;
    if (mode == DSO_ZLEARN_BASELINE) {
      next = dso_rng_categorical(&rng, pb, ns);
      target = exp(-m->r[x]) * pow(z[next], g);
    } else {
      // current chain P(.|x,θ) ∝ p̄ Z^γ (eq. 89 with tabular energy θ = -ln Z)
      double s1 = 0;
      for (int y = 0; y < ns; y++) {
        prow[y] = pb[y] * pow(z[y], g);
        s1 += prow[y];
      }
      if (mode == DSO_ZLEARN_GREEDY) {
        target = exp(-m->r[x]) * s1;  // eqs. 93-94: the normalizer G[Z^γ](x)
      } else {
        int y = dso_rng_categorical(&rng, pb, ns);
        target = exp(-m->r[x]) * pow(z[y], g);
      }
      for (int y = 0; y < ns; y++) prow[y] /= s1;
      next = dso_rng_categorical(&rng, prow, ns);
    }
    visits[x]++;
    double eta = mode == DSO_ZLEARN_GREEDY ? 1.0 : c / (c + (double)visits[x]);
    z[x] += eta * (target - z[x]);
    x = next;
    len++;
  }
  free(visits), free(prow), free(p0);
  return DSO_OK;
}

void dso_lmdp_as_dmdp(double* p, double* dp, double* r, double* dr, const void* vctx, int x,
                      const double* eta) {
  const dsoLmdpAsDmdp* c = (const dsoLmdpAsDmdp*)vctx;
  int ns = c->ns, na = c->na;
  const double* B = c->logit0 + (long)x * ns;
  double mx = -INFINITY, mb = -INFINITY;
  for (int y = 0; y < ns; y++) {
    double zl = B[y];
    for (int j = 0; j < na; j++) zl += eta[j] * c->u[((long)j * ns + x) * ns + y];
    p[y] = zl;
    mx = zl > mx ? zl : mx;
    mb = B[y] > mb ? B[y] : mb;
  }
  double s = 0, sb = 0;
  for (int y = 0; y < ns; y++) {
    p[y] = exp(p[y] - mx);
    s += p[y];
    sb += exp(B[y] - mb);
  }
  double lsb = mb + log(sb);
  double kl = 0;
  for (int y = 0; y < ns; y++) {
    p[y] /= s;
    kl += p[y] * (log(p[y]) - (B[y] - lsb));
  }
  *r = c->r[x] + kl;  // eq. 23
  for (int j = 0; j < na; j++) {
    const double* U = c->u + ((long)j * ns + x) * ns;
    double ubar = 0;
    for (int y = 0; y < ns; y++) ubar += p[y] * U[y];
    double d = 0;
    for (int y = 0; y < ns; y++) {
      dp[j * ns + y] = p[y] * (U[y] - ubar);
      d += dp[j * ns + y] * (log(p[y]) - (B[y] - lsb));
    }
    dr[j] = d;
  }
}
