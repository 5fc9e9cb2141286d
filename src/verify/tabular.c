// Finite chains and their exact oracle.
#include "verify/tabular.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

struct dsoTabular_ {
  dsoTabKind kind;
  int ns, ntheta, nphase, na;
  dsoSetting setting;
  double gamma;
  int horizon;
  double* p0;      // (ns)
  int* terminal;   // (ns)
  // softmax
  double *logit0, *phi, *c0, *psi, *q;
  double kl_weight;
  // G-MDP (p, r shared with the D-MDP context when built from one)
  double *p, *r, *feat, *pi_old;
  double tau_h, tau_r;
  // D-MDP
  double* m;
  dsoDmdpEval eval;
  const void* ctx;
};

struct dsoTabWork_ {
  const dsoTabular* tab;
  int valid, hess;
  double* theta;  // (n) θ of the cache
  double *P, *cdf, *G, *Hl, *L, *dL, *d2L;  // per phase, see dso_tabular_eval
  // scratch for evaluation
  double *z, *mean, *g2, *pi, *ga, *hpi, *dp, *eta, *dr, *tmp;
  // scratch for the oracle
  double *A, *b, *V, *dens, *Vt, *pt, *pn, *th2, *gtmp, *gtmp2;
  lapack_int* ipiv;
};

// ---------------------------------------------------------------------------------------------
// creation

static double* dup(const double* src, long n) {
  double* d = malloc((n > 0 ? n : 1) * sizeof(double));
  if (d && src) {
    memcpy(d, src, n * sizeof(double));
  } else if (d) {
    memset(d, 0, (n > 0 ? n : 1) * sizeof(double));
  }
  return d;
}

static dsoStatus setup_common(dsoTabular** out, dsoTabKind kind, int ns, int n, int nphase,
                              const dsoTabSetup* s, dsoError* err) {
  *out = NULL;
  if (ns < 2 || n < 1 || nphase < 1) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: need ns >= 2, ntheta >= 1, nphase >= 1 "
                     "(got %d, %d, %d)", ns, n, nphase);
  }
  if (!s) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: setup is NULL");
  }
  if (s->setting == DSO_EPISODIC && !(s->gamma > 0 && s->gamma <= 1)) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: gamma=%g must lie in (0, 1]", s->gamma);
  }
  if (s->setting != DSO_TIMEVARYING && nphase != 1) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: nphase=%d > 1 needs the time-varying setting",
                     nphase);
  }
  if (s->setting == DSO_TIMEVARYING && s->horizon < 1) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: time-varying horizon=%d must be >= 1",
                     s->horizon);
  }
  if (s->setting != DSO_EPISODIC && s->terminal) {
    for (int i = 0; i < ns; i++) {
      if (s->terminal[i]) {
        return dso_error(err, DSO_ERR_INPUT, "tabular: terminal state %d needs the episodic "
                         "setting", i);
      }
    }
  }
  if (s->setting == DSO_EPISODIC && s->gamma == 1 && !s->terminal) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: gamma = 1 needs terminal states (first exit)");
  }
  dsoTabular* t = calloc(1, sizeof(dsoTabular));
  if (!t) {
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  t->kind = kind;
  t->ns = ns;
  t->ntheta = n;
  t->nphase = nphase;
  t->setting = s->setting;
  t->gamma = s->setting == DSO_EPISODIC ? s->gamma : 1.0;
  t->horizon = s->horizon;
  t->p0 = malloc(ns * sizeof(double));
  t->terminal = calloc(ns, sizeof(int));
  if (!t->p0 || !t->terminal) {
    dso_tabular_free(t);
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  for (int i = 0; i < ns; i++) {
    t->p0[i] = 1.0 / ns;
    t->terminal[i] = s->terminal ? (s->terminal[i] != 0) : 0;
  }
  *out = t;
  if (s->p0) {
    dsoStatus st = dso_tabular_set_p0(t, s->p0, err);
    if (st) {
      dso_tabular_free(t);
      *out = NULL;
      return st;
    }
  }
  return DSO_OK;
}

dsoStatus dso_tabular_set_p0(dsoTabular* tab, const double* p0, dsoError* err) {
  double s = 0;
  for (int i = 0; i < tab->ns; i++) {
    if (!(p0[i] >= 0)) {
      return dso_error(err, DSO_ERR_INPUT, "tabular: p0[%d]=%g must be >= 0", i, p0[i]);
    }
    s += p0[i];
  }
  if (!(s > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: p0 sums to %g", s);
  }
  for (int i = 0; i < tab->ns; i++) {
    tab->p0[i] = p0[i] / s;
  }
  return DSO_OK;
}

dsoStatus dso_tabular_create_softmax(dsoTabular** out, const dsoSoftmaxSpec* sp,
                                     const dsoTabSetup* setup, dsoError* err) {
  dsoStatus st = setup_common(out, DSO_TAB_SOFTMAX, sp->ns, sp->ntheta, sp->nphase, setup, err);
  if (st) {
    return st;
  }
  dsoTabular* t = *out;
  long ns = sp->ns, n = sp->ntheta, np = sp->nphase;
  t->logit0 = dup(sp->logit0, np * ns * ns);
  t->phi = dup(sp->phi, np * n * ns * ns);
  t->c0 = dup(sp->c0, np * ns);
  t->psi = dup(sp->psi, np * ns * n);
  t->q = dup(sp->q, np * ns * n * n);
  t->kl_weight = sp->kl_weight;
  if (!t->logit0 || !t->phi || !t->c0 || !t->psi || !t->q) {
    dso_tabular_free(t);
    *out = NULL;
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  return DSO_OK;
}

static dsoStatus check_rows(const double* p, int nrow, int ns, const char* what, dsoError* err) {
  for (int i = 0; i < nrow; i++) {
    double s = 0;
    for (int j = 0; j < ns; j++) {
      if (!(p[(long)i * ns + j] >= 0)) {
        return dso_error(err, DSO_ERR_INPUT, "tabular: %s row %d has a negative entry", what, i);
      }
      s += p[(long)i * ns + j];
    }
    if (fabs(s - 1) > 1e-9) {
      return dso_error(err, DSO_ERR_INPUT, "tabular: %s row %d sums to %.12g, expected 1", what, i,
                       s);
    }
  }
  return DSO_OK;
}

dsoStatus dso_tabular_create_gmdp(dsoTabular** out, const dsoGmdpSpec* sp,
                                  const dsoTabSetup* setup, dsoError* err) {
  *out = NULL;
  if (sp->na < 1 || !sp->p || !sp->r || !sp->feat) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: G-MDP needs na >= 1, p, r and feat");
  }
  dsoStatus st = check_rows(sp->p, sp->ns * sp->na, sp->ns, "p", err);
  if (st) {
    return st;
  }
  if (sp->tau_r != 0) {
    if (!sp->pi_old) {
      return dso_error(err, DSO_ERR_INPUT, "tabular: tau_r != 0 needs pi_old");
    }
    if ((st = check_rows(sp->pi_old, sp->ns, sp->na, "pi_old", err))) {
      return st;
    }
  }
  if ((st = setup_common(out, DSO_TAB_GMDP, sp->ns, sp->ntheta, 1, setup, err))) {
    return st;
  }
  dsoTabular* t = *out;
  long ns = sp->ns, na = sp->na, n = sp->ntheta;
  t->na = sp->na;
  t->p = dup(sp->p, ns * na * ns);
  t->r = dup(sp->r, ns * na);
  t->feat = dup(sp->feat, ns * na * n);
  t->pi_old = dup(sp->pi_old, ns * na);
  t->tau_h = sp->tau_h;
  t->tau_r = sp->tau_r;
  if (!t->p || !t->r || !t->feat || !t->pi_old) {
    dso_tabular_free(t);
    *out = NULL;
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  return DSO_OK;
}

dsoStatus dso_tabular_create_dmdp(dsoTabular** out, const dsoDmdpSpec* sp,
                                  const dsoTabSetup* setup, dsoError* err) {
  *out = NULL;
  if (sp->na < 1 || !sp->m || !sp->eval) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: D-MDP needs na >= 1, m and eval");
  }
  dsoStatus st = setup_common(out, DSO_TAB_DMDP, sp->ns, sp->ntheta, 1, setup, err);
  if (st) {
    return st;
  }
  dsoTabular* t = *out;
  t->na = sp->na;
  t->m = dup(sp->m, (long)sp->ns * sp->na * sp->ntheta);
  t->eval = sp->eval;
  t->ctx = sp->ctx;
  if (!t->m) {
    dso_tabular_free(t);
    *out = NULL;
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  return DSO_OK;
}

dsoStatus dso_tabular_create_random(dsoTabular** out, int ns, int n, int nphase,
                                    const dsoTabSetup* setup, int nterminal, double scale,
                                    uint64_t seed, dsoError* err) {
  *out = NULL;
  if (ns < 2 || n < 1 || nphase < 1 || nterminal < 0 || nterminal >= ns) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: bad random chain sizes ns=%d ntheta=%d "
                     "nphase=%d nterminal=%d", ns, n, nphase, nterminal);
  }
  long np = nphase;
  double* B = malloc(np * ns * ns * sizeof(double));
  double* phi = malloc(np * n * ns * ns * sizeof(double));
  double* c0 = malloc(np * ns * sizeof(double));
  double* psi = malloc(np * ns * n * sizeof(double));
  double* q = calloc(np * ns * n * n, sizeof(double));
  int* term = calloc(ns, sizeof(int));
  if (!B || !phi || !c0 || !psi || !q || !term) {
    free(B), free(phi), free(c0), free(psi), free(q), free(term);
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  dsoRng rng;
  dso_rng_seed(&rng, seed, 0, 0);
  for (long i = 0; i < np * ns * ns; i++) B[i] = dso_rng_normal(&rng);
  for (long i = 0; i < np * n * ns * ns; i++) phi[i] = scale * dso_rng_normal(&rng);
  for (long i = 0; i < np * ns; i++) c0[i] = 2 * dso_rng_uniform(&rng);
  for (long i = 0; i < np * ns * n; i++) psi[i] = 0.2 * dso_rng_normal(&rng);
  for (long ps = 0; ps < np * ns; ps++) {
    for (int k = 0; k < n; k++) {
      q[ps * n * n + k * n + k] = 0.2 * dso_rng_uniform(&rng);
    }
  }
  for (int i = ns - nterminal; i < ns; i++) term[i] = 1;
  dsoSoftmaxSpec sp = {ns, n, nphase, B, phi, c0, psi, q, 0.0};
  dsoTabSetup s = *setup;
  if (nterminal > 0) {
    s.terminal = term;
  }
  dsoStatus st = dso_tabular_create_softmax(out, &sp, &s, err);
  free(B), free(phi), free(c0), free(psi), free(q), free(term);
  return st;
}

void dso_tabular_free(dsoTabular* t) {
  if (!t) {
    return;
  }
  free(t->p0);
  free(t->terminal);
  free(t->logit0);
  free(t->phi);
  free(t->c0);
  free(t->psi);
  free(t->q);
  free(t->p);
  free(t->r);
  free(t->feat);
  free(t->pi_old);
  free(t->m);
  free(t);
}

int dso_tabular_ns(const dsoTabular* t) { return t->ns; }
int dso_tabular_ntheta(const dsoTabular* t) { return t->ntheta; }
int dso_tabular_nphase(const dsoTabular* t) { return t->nphase; }
dsoSetting dso_tabular_setting(const dsoTabular* t) { return t->setting; }
double dso_tabular_gamma(const dsoTabular* t) { return t->gamma; }
int dso_tabular_horizon(const dsoTabular* t) { return t->horizon; }
dsoTabKind dso_tabular_kind(const dsoTabular* t) { return t->kind; }
int dso_tabular_is_terminal(const dsoTabular* t, int x) { return t->terminal[x]; }
const double* dso_tabular_p0(const dsoTabular* t) { return t->p0; }

// ---------------------------------------------------------------------------------------------
// workspace and evaluation

dsoTabWork* dso_tabular_work_create(const dsoTabular* t) {
  dsoTabWork* w = calloc(1, sizeof(dsoTabWork));
  if (!w) {
    return NULL;
  }
  long ns = t->ns, n = t->ntheta, np = t->nphase, na = t->na > 0 ? t->na : 1;
  long T = t->setting == DSO_TIMEVARYING ? t->horizon : 0;
  w->tab = t;
  w->hess = t->kind != DSO_TAB_DMDP;
  w->theta = calloc(n, sizeof(double));
  w->P = calloc(np * ns * ns, sizeof(double));
  w->cdf = calloc(np * ns * ns, sizeof(double));
  w->G = calloc(np * ns * ns * n, sizeof(double));
  w->Hl = w->hess ? calloc(np * ns * ns * n * n, sizeof(double)) : NULL;
  w->L = calloc(np * ns, sizeof(double));
  w->dL = calloc(np * ns * n, sizeof(double));
  w->d2L = w->hess ? calloc(np * ns * n * n, sizeof(double)) : NULL;
  w->z = calloc(ns > na ? ns : na, sizeof(double));
  w->mean = calloc(n, sizeof(double));
  w->g2 = calloc(n * n, sizeof(double));
  w->pi = calloc(na, sizeof(double));
  w->ga = calloc(na * n, sizeof(double));
  w->hpi = calloc(n * n, sizeof(double));
  w->dp = calloc(na * ns, sizeof(double));
  w->eta = calloc(na, sizeof(double));
  w->dr = calloc(na, sizeof(double));
  w->tmp = calloc(ns > n ? ns : n, sizeof(double));
  w->A = calloc(ns * ns, sizeof(double));
  w->b = calloc(ns, sizeof(double));
  w->V = calloc(ns, sizeof(double));
  w->dens = calloc(ns, sizeof(double));
  w->Vt = calloc((T + 1) * ns, sizeof(double));
  w->pt = calloc((T + 1) * ns, sizeof(double));
  w->pn = calloc(ns, sizeof(double));
  w->th2 = calloc(n, sizeof(double));
  w->gtmp = calloc(n, sizeof(double));
  w->gtmp2 = calloc(n, sizeof(double));
  w->ipiv = calloc(ns, sizeof(lapack_int));
  if (!w->theta || !w->P || !w->cdf || !w->G || (w->hess && (!w->Hl || !w->d2L)) || !w->L ||
      !w->dL || !w->z || !w->mean || !w->g2 || !w->pi || !w->ga || !w->hpi || !w->dp || !w->eta ||
      !w->dr || !w->tmp || !w->A || !w->b || !w->V || !w->dens || !w->Vt || !w->pt || !w->pn ||
      !w->th2 || !w->gtmp || !w->gtmp2 || !w->ipiv) {
    dso_tabular_work_free(w);
    return NULL;
  }
  return w;
}

void dso_tabular_work_free(dsoTabWork* w) {
  if (!w) {
    return;
  }
  double* arr[] = {w->theta, w->P, w->cdf, w->G, w->Hl, w->L, w->dL, w->d2L, w->z, w->mean,
                   w->g2, w->pi, w->ga, w->hpi, w->dp, w->eta, w->dr, w->tmp, w->A, w->b, w->V,
                   w->dens, w->Vt, w->pt, w->pn, w->th2, w->gtmp, w->gtmp2};
  for (size_t i = 0; i < sizeof(arr) / sizeof(arr[0]); i++) {
    free(arr[i]);
  }
  free(w->ipiv);
  free(w);
}

// softmax of z (n) in place; returns the log normalizer
static double softmax_inplace(double* z, int n) {
  double mx = z[0];
  for (int i = 1; i < n; i++) mx = z[i] > mx ? z[i] : mx;
  double s = 0;
  for (int i = 0; i < n; i++) {
    z[i] = exp(z[i] - mx);
    s += z[i];
  }
  for (int i = 0; i < n; i++) z[i] /= s;
  return mx + log(s);
}

static void eval_softmax(dsoTabWork* w, const double* th, int ph) {
  const dsoTabular* t = w->tab;
  int ns = t->ns, n = t->ntheta;
  long off = (long)ph * ns;
  for (int x = 0; x < ns; x++) {
    double* P = w->P + (off + x) * ns;
    double* G = w->G + (off + x) * ns * n;
    const double* B = t->logit0 + (off + x) * ns;
    // logits and probabilities
    for (int y = 0; y < ns; y++) {
      double z = B[y];
      for (int k = 0; k < n; k++) z += th[k] * t->phi[(((long)ph * n + k) * ns + x) * ns + y];
      P[y] = z;
    }
    softmax_inplace(P, ns);
    for (int k = 0; k < n; k++) {
      double m = 0;
      for (int y = 0; y < ns; y++) m += P[y] * t->phi[(((long)ph * n + k) * ns + x) * ns + y];
      w->mean[k] = m;
    }
    for (int y = 0; y < ns; y++) {
      for (int k = 0; k < n; k++) {
        G[y * n + k] = t->phi[(((long)ph * n + k) * ns + x) * ns + y] - w->mean[k];
      }
    }
    // ∇² ln P = -Cov_P(Φ), the same for every x'
    memset(w->g2, 0, (long)n * n * sizeof(double));
    for (int y = 0; y < ns; y++) {
      for (int k = 0; k < n; k++) {
        for (int l = 0; l < n; l++) w->g2[k * n + l] -= P[y] * G[y * n + k] * G[y * n + l];
      }
    }
    double* Hl = w->Hl + (off + x) * ns * n * n;
    for (int y = 0; y < ns; y++) memcpy(Hl + (long)y * n * n, w->g2, (long)n * n * sizeof(double));
    // cost
    const double* psi = t->psi + (off + x) * n;
    const double* q = t->q + (off + x) * n * n;
    double* dL = w->dL + (off + x) * n;
    double* d2L = w->d2L + (off + x) * n * n;
    double L = t->c0[off + x];
    for (int k = 0; k < n; k++) {
      double qk = 0;
      for (int l = 0; l < n; l++) {
        double qs = 0.5 * (q[k * n + l] + q[l * n + k]);
        qk += qs * th[l];
        d2L[k * n + l] = qs;
      }
      L += psi[k] * th[k] + 0.5 * qk * th[k];
      dL[k] = psi[k] + qk;
    }
    if (t->kl_weight != 0 && !t->terminal[x]) {
      // KL(P || p̄) with p̄ = softmax(B): ∇KL = Σ P g u, ∇²KL = Σ P (g gᵀ (u + 1) + Hl u)
      memcpy(w->z, B, ns * sizeof(double));
      double lse = softmax_inplace(w->z, ns);
      double kl = 0;
      for (int y = 0; y < ns; y++) {
        if (P[y] <= 0) continue;
        double u = log(P[y]) - (B[y] - lse);
        kl += P[y] * u;
        const double* g = G + y * n;
        for (int k = 0; k < n; k++) {
          dL[k] += t->kl_weight * P[y] * g[k] * u;
          for (int l = 0; l < n; l++) {
            d2L[k * n + l] +=
                t->kl_weight * P[y] * (g[k] * g[l] * (u + 1) + w->g2[k * n + l] * u);
          }
        }
      }
      L += t->kl_weight * kl;
    }
    w->L[off + x] = L;
  }
}

// π(.|x,θ) = softmax_a(F(x,a)ᵀθ) into w->pi and the mean feature E_π[F] into w->mean
static void policy_at(dsoTabWork* w, const dsoTabular* t, int x, const double* th) {
  int n = t->ntheta, na = t->na;
  const double* F = t->feat + (long)x * na * n;
  for (int a = 0; a < na; a++) {
    double z = 0;
    for (int k = 0; k < n; k++) z += F[a * n + k] * th[k];
    w->pi[a] = z;
  }
  softmax_inplace(w->pi, na);
  for (int k = 0; k < n; k++) {
    double m = 0;
    for (int a = 0; a < na; a++) m += w->pi[a] * F[a * n + k];
    w->mean[k] = m;
  }
}

static void eval_gmdp(dsoTabWork* w, const double* th) {
  const dsoTabular* t = w->tab;
  int ns = t->ns, n = t->ntheta, na = t->na;
  for (int x = 0; x < ns; x++) {
    policy_at(w, t, x, th);
    double* pi = w->pi;
    const double* F = t->feat + (long)x * na * n;
    for (int a = 0; a < na; a++) {
      for (int k = 0; k < n; k++) w->ga[a * n + k] = F[a * n + k] - w->mean[k];
    }
    memset(w->hpi, 0, (long)n * n * sizeof(double));  // ∇² ln π = -Cov_π(F)
    for (int a = 0; a < na; a++) {
      for (int k = 0; k < n; k++) {
        for (int l = 0; l < n; l++) w->hpi[k * n + l] -= pi[a] * w->ga[a * n + k] * w->ga[a * n + l];
      }
    }
    // P = Σ π p, ∇P = Σ π g p, ∇²P = Σ π (g gᵀ + Hπ) p
    double* P = w->P + (long)x * ns;
    double* G = w->G + (long)x * ns * n;
    double* Hl = w->Hl + (long)x * ns * n * n;
    for (int y = 0; y < ns; y++) {
      double Py = 0;
      memset(G + y * n, 0, n * sizeof(double));
      memset(Hl + (long)y * n * n, 0, (long)n * n * sizeof(double));
      for (int a = 0; a < na; a++) {
        double c = pi[a] * t->p[((long)x * na + a) * ns + y];
        Py += c;
        const double* g = w->ga + a * n;
        for (int k = 0; k < n; k++) {
          G[y * n + k] += c * g[k];
          for (int l = 0; l < n; l++) Hl[((long)y * n + k) * n + l] += c * (g[k] * g[l] + w->hpi[k * n + l]);
        }
      }
      P[y] = Py;
      if (Py > 0) {
        for (int k = 0; k < n; k++) G[y * n + k] /= Py;
        for (int k = 0; k < n; k++) {
          for (int l = 0; l < n; l++) {
            Hl[((long)y * n + k) * n + l] = Hl[((long)y * n + k) * n + l] / Py - G[y * n + k] * G[y * n + l];
          }
        }
      }
    }
    // L = Σ π r + τ_H H[π] + τ_R KL[π_old || π]
    double* dL = w->dL + (long)x * n;
    double* d2L = w->d2L + (long)x * n * n;
    double L = 0;
    memset(dL, 0, n * sizeof(double));
    memset(d2L, 0, (long)n * n * sizeof(double));
    for (int a = 0; a < na; a++) {
      double ra = t->r[(long)x * na + a];
      double lp = pi[a] > 0 ? log(pi[a]) : 0;
      // per-action weight of ∫π(.)·c: expected reward minus τ_H ln π; the entropy adds -τ_H Σ π g gᵀ
      double c = ra - t->tau_h * lp;
      L += pi[a] * c;
      const double* g = w->ga + a * n;
      for (int k = 0; k < n; k++) {
        dL[k] += pi[a] * g[k] * c;
        for (int l = 0; l < n; l++) {
          d2L[k * n + l] += pi[a] * ((g[k] * g[l] + w->hpi[k * n + l]) * c - t->tau_h * g[k] * g[l]);
        }
      }
      if (t->tau_r != 0) {
        double po = t->pi_old[(long)x * na + a];
        if (po > 0) {
          L += t->tau_r * po * (log(po) - lp);
          for (int k = 0; k < n; k++) dL[k] -= t->tau_r * po * g[k];
        }
      }
    }
    if (t->tau_r != 0) {
      for (int k = 0; k < n * n; k++) d2L[k] -= t->tau_r * w->hpi[k];
    }
    w->L[x] = L;
  }
}

static void eval_dmdp(dsoTabWork* w, const double* th) {
  const dsoTabular* t = w->tab;
  int ns = t->ns, n = t->ntheta, na = t->na;
  for (int x = 0; x < ns; x++) {
    const double* M = t->m + (long)x * na * n;
    for (int j = 0; j < na; j++) {
      double e = 0;
      for (int k = 0; k < n; k++) e += M[j * n + k] * th[k];
      w->eta[j] = e;
    }
    double* P = w->P + (long)x * ns;
    double r;
    t->eval(P, w->dp, &r, w->dr, t->ctx, x, w->eta);
    double* G = w->G + (long)x * ns * n;
    for (int y = 0; y < ns; y++) {
      for (int k = 0; k < n; k++) {
        double s = 0;
        for (int j = 0; j < na; j++) s += M[j * n + k] * w->dp[j * ns + y];
        G[y * n + k] = P[y] > 0 ? s / P[y] : 0;
      }
    }
    double* dL = w->dL + (long)x * n;
    for (int k = 0; k < n; k++) {
      double s = 0;
      for (int j = 0; j < na; j++) s += M[j * n + k] * w->dr[j];
      dL[k] = s;
    }
    w->L[x] = r;
  }
}

static void ensure(dsoTabWork* w, const double* th) {
  const dsoTabular* t = w->tab;
  int n = t->ntheta;
  if (w->valid && !memcmp(w->theta, th, n * sizeof(double))) {
    return;
  }
  if (t->kind == DSO_TAB_SOFTMAX) {
    for (int ph = 0; ph < t->nphase; ph++) eval_softmax(w, th, ph);
  } else if (t->kind == DSO_TAB_GMDP) {
    eval_gmdp(w, th);
  } else {
    eval_dmdp(w, th);
  }
  long rows = (long)t->nphase * t->ns;
  for (long i = 0; i < rows; i++) {
    double c = 0;
    for (int y = 0; y < t->ns; y++) {
      c += w->P[i * t->ns + y];
      w->cdf[i * t->ns + y] = c;
    }
  }
  memcpy(w->theta, th, n * sizeof(double));
  w->valid = 1;
}

void dso_tabular_eval(const double** P, const double** G, const double** L, const double** dL,
                      const dsoTabular* t, dsoTabWork* w, const double* theta, int ph) {
  ensure(w, theta);
  long ns = t->ns, n = t->ntheta;
  if (P) *P = w->P + ph * ns * ns;
  if (G) *G = w->G + ph * ns * ns * n;
  if (L) *L = w->L + ph * ns;
  if (dL) *dL = w->dL + ph * ns * n;
}

// ---------------------------------------------------------------------------------------------
// the chain view

static int phase_of(const dsoTabular* t, int step, int n) {
  return t->setting == DSO_TIMEVARYING ? (step + n) % t->nphase : 0;
}

static void* tab_work_create(const void* model) {
  return dso_tabular_work_create((const dsoTabular*)model);
}

static void tab_work_free(void* w) {
  dso_tabular_work_free((dsoTabWork*)w);
}

static int sample_cdf(const double* cdf, int ns, double u) {
  for (int y = 0; y < ns - 1; y++) {
    if (u < cdf[y]) return y;
  }
  return ns - 1;
}

static void tab_initial(double* x0, const void* model, void* work, int n, dsoRng* rng) {
  const dsoTabular* t = (const dsoTabular*)model;
  x0[0] = dso_rng_categorical(rng, t->p0, t->ns);
}

static int tab_sample(double* xn, const void* model, void* work, const double* x,
                      const double* theta, int step, int n, dsoRng* rng) {
  const dsoTabular* t = (const dsoTabular*)model;
  dsoTabWork* w = (dsoTabWork*)work;
  ensure(w, theta);
  int ph = phase_of(t, step, n), xi = (int)x[0];
  xn[0] = sample_cdf(w->cdf + ((long)ph * t->ns + xi) * t->ns, t->ns, dso_rng_uniform(rng));
  return 0;
}

static double tab_logp(double* grad, double* hess, const void* model, void* work,
                       const double* xn, const double* x, const double* theta, int step, int n) {
  const dsoTabular* t = (const dsoTabular*)model;
  dsoTabWork* w = (dsoTabWork*)work;
  ensure(w, theta);
  long ns = t->ns, nt = t->ntheta;
  long row = ((long)phase_of(t, step, n) * ns + (int)x[0]) * ns + (int)xn[0];
  if (grad) memcpy(grad, w->G + row * nt, nt * sizeof(double));
  if (hess) memcpy(hess, w->Hl + row * nt * nt, nt * nt * sizeof(double));
  return log(w->P[row]);
}

static double tab_cost(double* grad, double* hess, const void* model, void* work, const double* x,
                       const double* theta, int step, int n) {
  const dsoTabular* t = (const dsoTabular*)model;
  dsoTabWork* w = (dsoTabWork*)work;
  ensure(w, theta);
  long nt = t->ntheta;
  long row = (long)phase_of(t, step, n) * t->ns + (int)x[0];
  if (grad) memcpy(grad, w->dL + row * nt, nt * sizeof(double));
  if (hess) memcpy(hess, w->d2L + row * nt * nt, nt * nt * sizeof(double));
  return w->L[row];
}

static void tab_mean(double* xn, const void* model, void* work, const double* x,
                     const double* theta, int step, int n) {
  // the noise-free transition of a finite chain: its most likely next state
  const dsoTabular* t = (const dsoTabular*)model;
  dsoTabWork* w = (dsoTabWork*)work;
  ensure(w, theta);
  const double* P = w->P + ((long)phase_of(t, step, n) * t->ns + (int)x[0]) * t->ns;
  int best = 0;
  for (int y = 1; y < t->ns; y++) best = P[y] > P[best] ? y : best;
  xn[0] = best;
}

static int tab_terminal(const void* model, const double* x, int step, int n) {
  return ((const dsoTabular*)model)->terminal[(int)x[0]];
}

static const dsoChainOps kTabOps = {tab_work_create, tab_work_free, tab_initial, tab_sample,
                                    tab_logp,        tab_cost,      tab_mean,    tab_terminal,
                                    NULL};

void dso_tabular_chain(dsoChain* chain, const dsoTabular* t) {
  chain->ops = &kTabOps;
  chain->model = t;
  chain->nx = 1;
  chain->ntheta = t->ntheta;
  chain->has_hessian = t->kind != DSO_TAB_DMDP;
  chain->cost_grad_zero = 0;  // tabular costs may depend on θ (G-MDP families)
}

// ---------------------------------------------------------------------------------------------
// exact oracle

// solves A x = b in place (A: ns x ns row-major, overwritten)
static dsoStatus solve(dsoTabWork* w, double* A, double* b, int ns, dsoError* err) {
  lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, ns, 1, A, ns, w->ipiv, b, 1);
  if (info != 0) {
    return dso_error(err, DSO_ERR_NUMERIC, "tabular: singular linear system (LAPACKE_dgesv info=%d)",
                     (int)info);
  }
  return DSO_OK;
}

// V and density for episodic (ρ from t = 0) and average (d, differential V)
static dsoStatus stationary_solve(double* J, double* V, double* dens, dsoTabWork* w,
                                  const double* P, const double* L, dsoError* err) {
  const dsoTabular* t = w->tab;
  int ns = t->ns;
  double g = t->gamma;
  dsoStatus st;
  if (t->setting == DSO_EPISODIC) {
    // V = (I - γ P_N) L, P_N: transitions out of non-terminal states
    for (int x = 0; x < ns; x++) {
      for (int y = 0; y < ns; y++) {
        double pe = t->terminal[x] ? 0 : P[x * ns + y];
        w->A[x * ns + y] = (x == y) - g * pe;
      }
      V[x] = L[x];
    }
    if ((st = solve(w, w->A, V, ns, err))) return st;
    for (int x = 0; x < ns; x++) {
      for (int y = 0; y < ns; y++) {
        double pe = t->terminal[y] ? 0 : P[y * ns + x];
        w->A[x * ns + y] = (x == y) - g * pe;
      }
      dens[x] = t->p0[x];
    }
    if ((st = solve(w, w->A, dens, ns, err))) return st;
    double j = 0;
    for (int x = 0; x < ns; x++) j += t->p0[x] * V[x];
    *J = j;
    return DSO_OK;
  }
  // average: (Pᵀ - I) d = 0 with Σ d = 1 replacing the last equation
  for (int x = 0; x < ns; x++) {
    for (int y = 0; y < ns; y++) {
      w->A[x * ns + y] = x == ns - 1 ? 1.0 : P[y * ns + x] - (x == y);
    }
    dens[x] = x == ns - 1 ? 1.0 : 0.0;
  }
  if ((st = solve(w, w->A, dens, ns, err))) return st;
  double j = 0;
  for (int x = 0; x < ns; x++) j += dens[x] * L[x];
  // (I - P + 1 dᵀ) V = L - J gives the differential V with dᵀV = 0 (eq. 8)
  for (int x = 0; x < ns; x++) {
    for (int y = 0; y < ns; y++) w->A[x * ns + y] = (x == y) - P[x * ns + y] + dens[y];
    V[x] = L[x] - j;
  }
  if ((st = solve(w, w->A, V, ns, err))) return st;
  *J = j;
  return DSO_OK;
}

// Σ_x dens(x) [∇L(x) + γ Σ_x' P G V(x')] over non-terminal transitions (eqs. 30, 31)
static void theorem_sum(double* grad, const dsoTabular* t, const double* P, const double* G,
                        const double* dL, const double* V, const double* dens, double g) {
  int ns = t->ns, n = t->ntheta;
  for (int x = 0; x < ns; x++) {
    for (int k = 0; k < n; k++) grad[k] += dens[x] * dL[x * n + k];
    if (t->terminal[x]) continue;
    for (int y = 0; y < ns; y++) {
      double c = dens[x] * g * P[x * ns + y] * V[y];
      for (int k = 0; k < n; k++) grad[k] += c * G[((long)x * ns + y) * n + k];
    }
  }
}

static dsoStatus exact_tv(double* J, double* V0, double* grad, const dsoTabular* t, dsoTabWork* w,
                          const double* th) {
  int ns = t->ns, n = t->ntheta, T = t->horizon, np = t->nphase;
  ensure(w, th);
  double jsum = 0;
  if (grad) memset(grad, 0, n * sizeof(double));
  for (int c = 0; c < np; c++) {
    // backward: V_T = L_T, V_t = L_t + P_t V_{t+1} (eq. 11)
    for (int s = T; s >= 0; s--) {
      int ph = (s + c) % np;
      const double* L = w->L + (long)ph * ns;
      const double* P = w->P + (long)ph * ns * ns;
      for (int x = 0; x < ns; x++) {
        double v = L[x];
        if (s < T) {
          for (int y = 0; y < ns; y++) v += P[x * ns + y] * w->Vt[(long)(s + 1) * ns + y];
        }
        w->Vt[(long)s * ns + x] = v;
      }
    }
    // forward state distributions p_t
    memcpy(w->pt, t->p0, ns * sizeof(double));
    for (int s = 0; s < T; s++) {
      const double* P = w->P + (long)((s + c) % np) * ns * ns;
      for (int y = 0; y < ns; y++) {
        double v = 0;
        for (int x = 0; x < ns; x++) v += w->pt[(long)s * ns + x] * P[x * ns + y];
        w->pt[(long)(s + 1) * ns + y] = v;
      }
    }
    double j = 0;
    for (int x = 0; x < ns; x++) j += t->p0[x] * w->Vt[x];
    jsum += j;
    if (c == 0 && V0) memcpy(V0, w->Vt, ns * sizeof(double));
    if (grad) {
      // Theorem 3 (eq. 35) with the exact expectations
      for (int s = 0; s <= T; s++) {
        int ph = (s + c) % np;
        const double* P = w->P + (long)ph * ns * ns;
        const double* G = w->G + (long)ph * ns * ns * n;
        const double* dL = w->dL + (long)ph * ns * n;
        const double* pt = w->pt + (long)s * ns;
        for (int x = 0; x < ns; x++) {
          for (int k = 0; k < n; k++) grad[k] += pt[x] * dL[x * n + k] / np;
          if (s == T) continue;
          for (int y = 0; y < ns; y++) {
            double cf = pt[x] * P[x * ns + y] * w->Vt[(long)(s + 1) * ns + y] / np;
            for (int k = 0; k < n; k++) grad[k] += cf * G[((long)x * ns + y) * n + k];
          }
        }
      }
    }
  }
  if (J) *J = jsum / np;
  return DSO_OK;
}

dsoStatus dso_tabular_exact(double* J, double* V, double* dens, double* grad, const dsoTabular* t,
                            dsoTabWork* w, const double* th, dsoError* err) {
  if (t->setting == DSO_TIMEVARYING) {
    if (dens) memset(dens, 0, t->ns * sizeof(double));
    return exact_tv(J, V, grad, t, w, th);
  }
  ensure(w, th);
  double j;
  dsoStatus st = stationary_solve(&j, w->V, w->dens, w, w->P, w->L, err);
  if (st) return st;
  if (J) *J = j;
  if (V) memcpy(V, w->V, t->ns * sizeof(double));
  if (dens) memcpy(dens, w->dens, t->ns * sizeof(double));
  if (grad) {
    memset(grad, 0, t->ntheta * sizeof(double));
    theorem_sum(grad, t, w->P, w->G, w->dL, w->V, w->dens, t->gamma);
  }
  return DSO_OK;
}

dsoStatus dso_tabular_fisher(double* F, const dsoTabular* t, dsoTabWork* w, const double* th,
                             dsoError* err) {
  int ns = t->ns, n = t->ntheta;
  memset(F, 0, (long)n * n * sizeof(double));
  ensure(w, th);
  if (t->setting == DSO_TIMEVARYING) {
    double j;
    exact_tv(&j, NULL, NULL, t, w, th);  // leaves class nphase-1 in pt; redo per class below
    int T = t->horizon, np = t->nphase;
    for (int c = 0; c < np; c++) {
      memcpy(w->pt, t->p0, ns * sizeof(double));
      for (int s = 0; s < T; s++) {
        int ph = (s + c) % np;
        const double* P = w->P + (long)ph * ns * ns;
        const double* G = w->G + (long)ph * ns * ns * n;
        for (int x = 0; x < ns; x++) {
          for (int y = 0; y < ns; y++) {
            double cf = w->pt[(long)s * ns + x] * P[x * ns + y] / np;
            const double* g = G + ((long)x * ns + y) * n;
            for (int k = 0; k < n; k++)
              for (int l = 0; l < n; l++) F[k * n + l] += cf * g[k] * g[l];
          }
        }
        for (int y = 0; y < ns; y++) {
          double v = 0;
          for (int x = 0; x < ns; x++) v += w->pt[(long)s * ns + x] * P[x * ns + y];
          w->pt[(long)(s + 1) * ns + y] = v;
        }
      }
    }
    return DSO_OK;
  }
  double j;
  dsoStatus st = stationary_solve(&j, w->V, w->dens, w, w->P, w->L, err);
  if (st) return st;
  for (int x = 0; x < ns; x++) {
    if (t->terminal[x]) continue;
    for (int y = 0; y < ns; y++) {
      double cf = w->dens[x] * w->P[x * ns + y];
      const double* g = w->G + ((long)x * ns + y) * n;
      for (int k = 0; k < n; k++)
        for (int l = 0; l < n; l++) F[k * n + l] += cf * g[k] * g[l];
    }
  }
  return DSO_OK;
}

static const double kStencil[4] = {1.0 / 12, -8.0 / 12, 8.0 / 12, -1.0 / 12};
static const double kOffsets[4] = {-2, -1, 1, 2};

dsoStatus dso_tabular_fd_grad(double* grad, const dsoTabular* t, dsoTabWork* w, const double* th,
                              double h, dsoError* err) {
  int n = t->ntheta;
  for (int k = 0; k < n; k++) {
    double d = 0;
    for (int i = 0; i < 4; i++) {
      memcpy(w->th2, th, n * sizeof(double));
      w->th2[k] += kOffsets[i] * h;
      double j;
      dsoStatus st = dso_tabular_exact(&j, NULL, NULL, NULL, t, w, w->th2, err);
      if (st) return st;
      d += kStencil[i] * j;
    }
    grad[k] = d / h;
  }
  return DSO_OK;
}

dsoStatus dso_tabular_fd_hessian(double* hess, const dsoTabular* t, dsoTabWork* w,
                                 const double* th, double h, dsoError* err) {
  int n = t->ntheta;
  memset(hess, 0, (long)n * n * sizeof(double));
  for (int k = 0; k < n; k++) {
    for (int i = 0; i < 4; i++) {
      memcpy(w->th2, th, n * sizeof(double));
      w->th2[k] += kOffsets[i] * h;
      double j;
      // exact gradient needs th2 in the cache; copy the point because the cache owns w->theta
      memcpy(w->gtmp2, w->th2, n * sizeof(double));
      dsoStatus st = dso_tabular_exact(&j, NULL, NULL, w->gtmp, t, w, w->gtmp2, err);
      if (st) return st;
      for (int l = 0; l < n; l++) hess[k * n + l] += kStencil[i] * w->gtmp[l] / h;
    }
  }
  for (int k = 0; k < n; k++) {
    for (int l = k + 1; l < n; l++) {
      double s = 0.5 * (hess[k * n + l] + hess[l * n + k]);
      hess[k * n + l] = hess[l * n + k] = s;
    }
  }
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// MDP-side policy gradients (section 3.2)

dsoStatus dso_tabular_gmdp_policy_gradient(double* grad, const dsoTabular* t, dsoTabWork* w,
                                           const double* th, dsoError* err) {
  if (t->kind != DSO_TAB_GMDP || t->setting == DSO_TIMEVARYING) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: G-MDP policy gradient needs a G-MDP chain in "
                     "the episodic or average setting");
  }
  double j;
  dsoStatus st = dso_tabular_exact(&j, NULL, NULL, NULL, t, w, th, err);
  if (st) return st;
  int ns = t->ns, n = t->ntheta, na = t->na;
  memset(grad, 0, n * sizeof(double));
  for (int x = 0; x < ns; x++) {
    const double* F = t->feat + (long)x * na * n;
    policy_at(w, t, x, th);
    double* pi = w->pi;
    double H = 0;
    for (int a = 0; a < na; a++) H -= pi[a] > 0 ? pi[a] * log(pi[a]) : 0;
    for (int a = 0; a < na; a++) {
      // Q(x,a) = ℓ(x,a,θ) + γ Σ p v (eq. 50), ℓ = r + τ_H H + τ_R KL
      double q = t->r[(long)x * na + a] + t->tau_h * H;
      if (!t->terminal[x]) {
        for (int y = 0; y < ns; y++) q += t->gamma * t->p[((long)x * na + a) * ns + y] * w->V[y];
      }
      double lp = pi[a] > 0 ? log(pi[a]) : 0;
      for (int k = 0; k < n; k++) {
        double ga = F[a * n + k] - w->mean[k];
        // ∇π Q (eq. 49) plus π ∇ℓ: ∇H = -Σ π g ln π, ∇KL = -Σ π_old g
        double v = pi[a] * ga * q - t->tau_h * pi[a] * ga * lp;
        if (t->tau_r != 0) v -= t->tau_r * t->pi_old[(long)x * na + a] * ga;
        grad[k] += w->dens[x] * v;
      }
    }
  }
  return DSO_OK;
}

dsoStatus dso_tabular_dmdp_policy_gradient(double* grad, const dsoTabular* t, dsoTabWork* w,
                                           const double* th, dsoError* err) {
  if (t->kind != DSO_TAB_DMDP || t->setting == DSO_TIMEVARYING) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: D-MDP policy gradient needs a D-MDP chain in "
                     "the episodic or average setting");
  }
  double j;
  dsoStatus st = dso_tabular_exact(&j, NULL, NULL, NULL, t, w, th, err);
  if (st) return st;
  int ns = t->ns, n = t->ntheta, na = t->na;
  memset(grad, 0, n * sizeof(double));
  for (int x = 0; x < ns; x++) {
    const double* M = t->m + (long)x * na * n;
    for (int jj = 0; jj < na; jj++) {
      double e = 0;
      for (int k = 0; k < n; k++) e += M[jj * n + k] * th[k];
      w->eta[jj] = e;
    }
    double r;
    t->eval(w->tmp, w->dp, &r, w->dr, t->ctx, x, w->eta);
    // ∇η Q = ∇η r + γ Σ_x' ∇η p(x'|x,η) v(x') (eqs. 50, 52)
    for (int jj = 0; jj < na; jj++) {
      double dq = w->dr[jj];
      if (!t->terminal[x]) {
        for (int y = 0; y < ns; y++) dq += t->gamma * w->dp[jj * ns + y] * w->V[y];
      }
      for (int k = 0; k < n; k++) grad[k] += w->dens[x] * M[jj * n + k] * dq;
    }
  }
  return DSO_OK;
}

void dso_tabular_smdp_as_dmdp(double* p, double* dp, double* r, double* dr, const void* vctx,
                              int x, const double* eta) {
  const dsoSmdpAsDmdp* c = (const dsoSmdpAsDmdp*)vctx;
  int ns = c->ns, na = c->na;
  // π̃(a|η) = softmax(η); ∂π̃_a/∂η_j = π̃_a (δ_aj - π̃_j)
  double mx = eta[0], s = 0;
  for (int a = 1; a < na; a++) mx = eta[a] > mx ? eta[a] : mx;
  for (int a = 0; a < na; a++) s += exp(eta[a] - mx);
  double rbar = 0;
  for (int y = 0; y < ns; y++) p[y] = 0;
  for (int a = 0; a < na; a++) {
    double pa = exp(eta[a] - mx) / s;
    rbar += pa * c->r[(long)x * na + a];
    for (int y = 0; y < ns; y++) p[y] += pa * c->p[((long)x * na + a) * ns + y];
  }
  *r = rbar;
  for (int j = 0; j < na; j++) {
    double pj = exp(eta[j] - mx) / s;
    dr[j] = pj * (c->r[(long)x * na + j] - rbar);
    for (int y = 0; y < ns; y++) dp[j * ns + y] = pj * (c->p[((long)x * na + j) * ns + y] - p[y]);
  }
}

dsoStatus dso_tabular_gmdp_optimum(double* Jstar, const dsoTabular* t, double tol, dsoError* err) {
  if (t->kind != DSO_TAB_GMDP || t->tau_h != 0 || t->tau_r != 0 ||
      t->setting == DSO_TIMEVARYING) {
    return dso_error(err, DSO_ERR_INPUT, "tabular: value iteration needs an S-MDP (tau = 0) in "
                     "the episodic or average setting");
  }
  int ns = t->ns, na = t->na;
  double* v = calloc(ns, sizeof(double));
  double* vn = calloc(ns, sizeof(double));
  if (!v || !vn) {
    free(v), free(vn);
    return dso_error(err, DSO_ERR_MEMORY, "tabular: out of memory");
  }
  double g = t->gamma, gain = 0;
  int it;
  for (it = 0; it < 1000000; it++) {
    double diff = 0;
    for (int x = 0; x < ns; x++) {
      double best = INFINITY;
      for (int a = 0; a < na; a++) {
        double q = t->r[(long)x * na + a];
        if (!t->terminal[x]) {
          for (int y = 0; y < ns; y++) q += g * t->p[((long)x * na + a) * ns + y] * v[y];
        }
        best = q < best ? q : best;
      }
      vn[x] = best;
    }
    if (t->setting == DSO_AVERAGE) {
      // relative value iteration: the gain is the change at the reference state 0
      gain = vn[0] - v[0];
      double ref = vn[0];
      for (int x = 0; x < ns; x++) vn[x] -= ref;
    }
    for (int x = 0; x < ns; x++) {
      double d = fabs(vn[x] - v[x]);
      diff = d > diff ? d : diff;
      v[x] = vn[x];
    }
    if (diff < tol) break;
  }
  if (t->setting == DSO_AVERAGE) {
    *Jstar = gain;
  } else {
    double j = 0;
    for (int x = 0; x < ns; x++) j += t->p0[x] * v[x];
    *Jstar = j;
  }
  free(v);
  free(vn);
  if (it == 1000000) {
    return dso_error(err, DSO_ERR_NUMERIC, "tabular: value iteration did not converge");
  }
  return DSO_OK;
}
