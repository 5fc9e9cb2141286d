// The verification table of `dso verify`: every estimator against the exact oracle.
#include "verify/verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/baseline.h"
#include "chain/grad.h"
#include "verify/lmdp.h"
#include "core/rng.h"
#include "verify/tabular.h"

#define NMAX 8   // largest θ used here
#define SMAX 8   // largest state count used here
#define ZTOL 4.0
#define RTOL 1e-9

void dso_verify_settings_default(dsoVerifySettings* s) {
  s->seed = 1;
  s->nthread = 2;
  s->scale = 1;
}

typedef struct {
  dsoVerifyRow* rows;
  int n, cap;
} dsoTable;

static dsoStatus add_row(dsoTable* tb, dsoRowKind kind, const char* name, double exact,
                         double est, double se, double score, double tol, dsoError* err) {
  if (tb->n == tb->cap) {
    int cap = tb->cap ? 2 * tb->cap : 64;
    dsoVerifyRow* r = realloc(tb->rows, cap * sizeof(dsoVerifyRow));
    if (!r) return dso_error(err, DSO_ERR_MEMORY, "verify: out of memory");
    tb->rows = r;
    tb->cap = cap;
  }
  dsoVerifyRow* r = &tb->rows[tb->n++];
  snprintf(r->quantity, sizeof(r->quantity), "%s", name);
  r->kind = kind;
  r->exact = exact;
  r->estimate = est;
  r->stderr_ = se;
  r->score = score;
  r->tol = tol;
  if (kind == DSO_ROW_Z) r->pass = fabs(score) < tol;
  else if (kind == DSO_ROW_REL) r->pass = score < tol;
  else r->pass = score >= tol;
  return DSO_OK;
}

// one z row per component: name[k]
static dsoStatus add_z(dsoTable* tb, const char* name, const double* exact, const double* est,
                       const double* se, int n, dsoError* err) {
  char buf[96];
  for (int k = 0; k < n; k++) {
    snprintf(buf, sizeof(buf), "%s[%d]", name, k);
    double z = se[k] > 0 ? (est[k] - exact[k]) / se[k] : (est[k] == exact[k] ? 0 : INFINITY);
    dsoStatus st = add_row(tb, DSO_ROW_Z, buf, exact[k], est[k], se[k], z, ZTOL, err);
    if (st) return st;
  }
  return DSO_OK;
}

static double norm2(const double* a, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += a[k] * a[k];
  return sqrt(s);
}

// relative error ||a - b|| / ||b|| of an identity (b is the reference)
static dsoStatus add_rel(dsoTable* tb, const char* name, const double* exact, const double* est,
                         int n, double tol, dsoError* err) {
  double d = 0;
  for (int k = 0; k < n; k++) d += (est[k] - exact[k]) * (est[k] - exact[k]);
  double ne = norm2(exact, n);
  double rel = sqrt(d) / (ne > 0 ? ne : 1);
  return add_row(tb, DSO_ROW_REL, name, ne, norm2(est, n), NAN, rel, tol, err);
}

// ---------------------------------------------------------------------------------------------
// a batch of rollouts of a finite chain with its estimators

typedef struct {
  dsoTabular* tab;
  dsoRollout* ro;
  dsoGrad* gr;
  dsoBaseline* bl;
  dsoOnehot oh;
} dsoRun;

static void run_free(dsoRun* r) {
  dso_baseline_free(r->bl);
  dso_grad_free(r->gr);
  dso_rollout_free(r->ro);
  memset(r, 0, sizeof(*r));
}

// rollouts of tab; bkind < 0: no baseline; terminate: episodic discount as termination
static dsoStatus run_setup_mode(dsoRun* r, dsoTabular* tab, int N, int horizon, int window,
                                int bkind, int terminate, const dsoVerifySettings* vs,
                                uint64_t salt, dsoError* err) {
  memset(r, 0, sizeof(*r));
  r->tab = tab;
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings rs;
  dso_rollout_settings_default(&rs);
  rs.setting = dso_tabular_setting(tab);
  rs.gamma = dso_tabular_gamma(tab);
  rs.terminate = terminate;
  rs.horizon = rs.setting == DSO_TIMEVARYING ? dso_tabular_horizon(tab) : horizon;
  rs.window = window;
  rs.nthread = vs->nthread;
  rs.seed = vs->seed * 1000003ULL + salt;
  int ns = dso_tabular_ns(tab);
  r->oh.ns = ns;
  r->oh.horizon = rs.setting == DSO_TIMEVARYING ? rs.horizon : 0;
  int nfeat = r->oh.horizon > 0 ? (r->oh.horizon + 1) * ns : ns;
  dsoStatus st = dso_rollout_create(&r->ro, &ch, &rs, N, err);
  if (!st) st = dso_grad_create(&r->gr, r->ro, 1, nfeat, err);
  if (!st && bkind >= 0) {
    dsoBaselineSettings bs;
    dso_baseline_settings_default(&bs);
    bs.kind = (dsoBaselineKind)bkind;
    st = dso_baseline_create(&r->bl, nfeat, dso_baseline_onehot, &r->oh, &bs, r->ro, err);
  }
  if (st) run_free(r);
  return st;
}

static dsoStatus run_setup(dsoRun* r, dsoTabular* tab, int N, int horizon, int window, int bkind,
                           const dsoVerifySettings* vs, uint64_t salt, dsoError* err) {
  return run_setup_mode(r, tab, N, horizon, window, bkind, 1, vs, salt, err);
}

// samples iteration `iter` at θ after fitting the baseline on iteration iter-1 (earlier batch)
static dsoStatus run_batch(dsoRun* r, const double* th, double* g, double* se, dsoError* err) {
  dsoStatus st;
  if (r->bl) {
    if ((st = dso_rollout_run(r->ro, th, 0, err))) return st;
    if ((st = dso_baseline_fit(r->bl, r->ro, err))) return st;
  }
  if ((st = dso_rollout_run(r->ro, th, 1, err))) return st;
  if ((st = dso_grad_prepare(r->gr, r->ro, r->bl, err))) return st;
  return dso_grad_algorithm1(g, se, r->gr, r->ro, err);
}

static int nbatch(double base, const dsoVerifySettings* vs) {
  int n = (int)(base * vs->scale);
  return n < 200 ? 200 : n;
}

// Theorem rows for one random softmax chain: exact vs FD, Algorithm 1 with/without baselines
static dsoStatus theorem_rows(dsoTable* tb, const char* label, dsoTabular* tab, const double* th,
                              int N, int horizon, int window, const dsoVerifySettings* vs,
                              int baselines, uint64_t salt, dsoError* err) {
  int n = dso_tabular_ntheta(tab), ns = dso_tabular_ns(tab);
  double ge[NMAX], gf[NMAX], g[NMAX], se[NMAX], J, dens[SMAX];
  char name[96];
  dsoTabWork* w = dso_tabular_work_create(tab);
  if (!w) return dso_error(err, DSO_ERR_MEMORY, "verify: out of memory");
  dsoStatus st = dso_tabular_exact(&J, NULL, dens, ge, tab, w, th, err);
  if (!st) st = dso_tabular_fd_grad(gf, tab, w, th, 1e-3, err);
  if (!st) {
    snprintf(name, sizeof(name), "%s exact grad = FD of exact J", label);
    st = add_rel(tb, name, gf, ge, n, RTOL, err);
  }
  if (!st && dso_tabular_setting(tab) == DSO_AVERAGE) {
    st = dso_tabular_set_p0(tab, dens, err);  // start at the stationary d: no burn-in bias
  }
  (void)ns;
  int kinds[3] = {-1, DSO_BASELINE_STATE, DSO_BASELINE_VALUE};
  const char* kname[3] = {"Alg.1 no baseline", "Alg.1 baseline b(x_t)", "Alg.1 baseline eq.59"};
  for (int b = 0; b < (baselines ? 3 : 1) && !st; b++) {
    if (kinds[b] == DSO_BASELINE_VALUE && dso_tabular_setting(tab) != DSO_EPISODIC) continue;
    dsoRun r;
    if ((st = run_setup(&r, tab, N, horizon, window, kinds[b], vs, salt + b, err))) break;
    st = run_batch(&r, th, g, se, err);
    if (!st) {
      snprintf(name, sizeof(name), "%s %s dJ", label, kname[b]);
      st = add_z(tb, name, ge, g, se, n, err);
    }
    run_free(&r);
  }
  dso_tabular_work_free(w);
  return st;
}

static dsoStatus random_theta(double* th, int n, dsoRng* rng) {
  for (int k = 0; k < n; k++) th[k] = 0.5 * dso_rng_normal(rng);
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// sections

static dsoStatus sec_theorems(dsoTable* tb, const dsoVerifySettings* vs, dsoError* err) {
  dsoRng rng;
  dso_rng_seed(&rng, vs->seed, 1, 0);
  int n = 3, ns = 5;
  double th[NMAX];
  random_theta(th, n, &rng);
  dsoStatus st;
  dsoTabular* tab = NULL;
  // Theorem 1, discounted (termination with probability 1-γ)
  dsoTabSetup s1 = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  st = dso_tabular_create_random(&tab, ns, n, 1, &s1, 0, 0.7, vs->seed + 11, err);
  if (!st) st = theorem_rows(tb, "Thm1 g=0.9", tab, th, nbatch(20000, vs), 400, 0, vs, 1, 1, err);
  dso_tabular_free(tab);
  tab = NULL;
  // Theorem 1, first exit (γ = 1, one terminal state)
  dsoTabSetup s2 = {DSO_EPISODIC, 1.0, 0, NULL, NULL};
  if (!st) st = dso_tabular_create_random(&tab, ns, n, 1, &s2, 1, 0.7, vs->seed + 12, err);
  if (!st) st = theorem_rows(tb, "Thm1 first-exit", tab, th, nbatch(20000, vs), 2000, 0, vs, 1, 4,
                             err);
  dso_tabular_free(tab);
  tab = NULL;
  // Theorem 2, average cost (window H = 20)
  dsoTabSetup s3 = {DSO_AVERAGE, 1.0, 0, NULL, NULL};
  if (!st) st = dso_tabular_create_random(&tab, ns, n, 1, &s3, 0, 0.7, vs->seed + 13, err);
  if (!st) st = theorem_rows(tb, "Thm2 average", tab, th, nbatch(4000, vs), 120, 20, vs, 1, 7, err);
  dso_tabular_free(tab);
  tab = NULL;
  // Theorem 3, time-varying with 3 phases cycling over t and rollouts
  dsoTabSetup s4 = {DSO_TIMEVARYING, 1.0, 6, NULL, NULL};
  if (!st) st = dso_tabular_create_random(&tab, ns, n, 3, &s4, 0, 0.7, vs->seed + 14, err);
  if (!st) st = theorem_rows(tb, "Thm3 time-varying", tab, th, nbatch(30000, vs), 0, 0, vs, 1, 10,
                             err);
  dso_tabular_free(tab);
  return st;
}

// eq. 67, eq. 76, clipping, Fisher (eq. 72), Lemma 3
static dsoStatus sec_surrogate(dsoTable* tb, const dsoVerifySettings* vs, dsoError* err) {
  dsoRng rng;
  dso_rng_seed(&rng, vs->seed, 2, 0);
  int n = 3, ns = 5;
  double th[NMAX], g[NMAX], se[NMAX], sg[NMAX], H[NMAX * NMAX], zero[NMAX] = {0};
  double a[NMAX], fd[NMAX * NMAX], tmp[NMAX], v;
  random_theta(th, n, &rng);
  dsoTabSetup s1 = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dsoTabular* tab = NULL;
  dsoRun r;
  memset(&r, 0, sizeof(r));
  dsoTabWork* w = NULL;
  dsoStatus st = dso_tabular_create_random(&tab, ns, n, 1, &s1, 0, 0.7, vs->seed + 21, err);
  if (!st) st = run_setup(&r, tab, nbatch(20000, vs), 400, 0, DSO_BASELINE_STATE, vs, 20, err);
  if (!st) st = run_batch(&r, th, g, se, err);
  // eq. 67: ∇α S̃ at α = 0 (eq. 68) equals Algorithm 1 on the same batch
  if (!st) st = dso_grad_surrogate(&v, sg, H, r.gr, r.ro, zero, 0, err);
  if (!st) st = add_rel(tb, "eq.67 grad S~ (eq.68) = Alg.1", g, sg, n, RTOL, err);
  // and by central differences of the value of S̃ (eq. 66) in α
  const double h = 1e-4;
  for (int k = 0; k < n && !st; k++) {
    double vp = 0, vm = 0;
    memset(a, 0, sizeof(a));
    a[k] = h;
    st = dso_grad_surrogate(&vp, NULL, NULL, r.gr, r.ro, a, 0, err);
    a[k] = -h;
    if (!st) st = dso_grad_surrogate(&vm, NULL, NULL, r.gr, r.ro, a, 0, err);
    tmp[k] = (vp - vm) / (2 * h);
  }
  if (!st) st = add_rel(tb, "eq.67 FD of S~ (eq.66) = Alg.1 [FD tol]", g, tmp, n, 1e-6, err);
  // eq. 76: the surrogate Hessian equals the α-derivative of eq. 68 at a perturbed α
  for (int k = 0; k < n; k++) a[k] = 0.05 * (k + 1);
  double Ha[NMAX * NMAX];
  if (!st) st = dso_grad_surrogate(&v, NULL, Ha, r.gr, r.ro, a, 0, err);
  for (int k = 0; k < n && !st; k++) {
    double gp[NMAX], gm[NMAX], ap[NMAX];
    memcpy(ap, a, sizeof(ap));
    ap[k] += h;
    st = dso_grad_surrogate(&v, gp, NULL, r.gr, r.ro, ap, 0, err);
    ap[k] -= 2 * h;
    if (!st) st = dso_grad_surrogate(&v, gm, NULL, r.gr, r.ro, ap, 0, err);
    for (int l = 0; l < n; l++) fd[k * n + l] = (gp[l] - gm[l]) / (2 * h);
  }
  if (!st) st = add_rel(tb, "eq.76 Hess S~ = FD of eq.68 [FD tol]", fd, Ha, n * n, 1e-6, err);
  // PPO clipping: at α = 0 all ratios are 1 and clipping changes nothing; far away it bounds S̃
  if (!st) st = dso_grad_surrogate(&v, tmp, NULL, r.gr, r.ro, zero, 0.2, err);
  if (!st) st = add_rel(tb, "PCO clipped grad S~ at a=0 = Alg.1", g, tmp, n, RTOL, err);
  // Fisher matrix (eq. 72)
  double F[NMAX * NMAX], Fse[NMAX * NMAX], Fe[NMAX * NMAX];
  if (!st && !(w = dso_tabular_work_create(tab))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_grad_fisher(F, Fse, r.gr, r.ro, err);
  if (!st) st = dso_tabular_fisher(Fe, tab, w, th, err);
  for (int k = 0; k < n && !st; k++) {
    for (int l = k; l < n && !st; l++) {
      char name[96];
      snprintf(name, sizeof(name), "eq.72 Fisher F[%d][%d]", k, l);
      double z = (F[k * n + l] - Fe[k * n + l]) / Fse[k * n + l];
      st = add_row(tb, DSO_ROW_Z, name, Fe[k * n + l], F[k * n + l], Fse[k * n + l], z, ZTOL, err);
    }
  }
  // natural-gradient step: the damped solve reproduces F⁻¹g when multiplied back
  if (!st) {
    double d[NMAX], back[NMAX], scratch[NMAX * NMAX];
    st = dso_natural_direction(d, F, g, n, 0, scratch, err);
    for (int k = 0; k < n && !st; k++) {
      back[k] = 0;
      for (int l = 0; l < n; l++) back[k] += F[k * n + l] * d[l];
    }
    if (!st) st = add_rel(tb, "natural step: F (F^-1 g) = g (LAPACKE)", g, back, n, RTOL, err);
  }
  run_free(&r);
  dso_tabular_work_free(w);
  dso_tabular_free(tab);
  tab = NULL;
  w = NULL;
  if (st) return st;
  // Lemma 3: unbiased time-varying Hessian (eq. 80 with ∇²ℒ as the last term)
  dsoTabSetup s4 = {DSO_TIMEVARYING, 1.0, 4, NULL, NULL};
  st = dso_tabular_create_random(&tab, ns, n, 2, &s4, 0, 0.5, vs->seed + 22, err);
  if (!st) st = run_setup(&r, tab, nbatch(100000, vs), 0, 0, -1, vs, 21, err);
  if (!st) st = run_batch(&r, th, g, se, err);
  double He[NMAX * NMAX], Hs[NMAX * NMAX], Hse[NMAX * NMAX];
  if (!st && !(w = dso_tabular_work_create(tab))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_grad_hessian_lemma3(Hs, Hse, r.gr, r.ro, err);
  if (!st) st = dso_tabular_fd_hessian(He, tab, w, th, 1e-3, err);
  for (int k = 0; k < n && !st; k++) {
    for (int l = k; l < n && !st; l++) {
      char name[96];
      snprintf(name, sizeof(name), "Lemma3 Hessian H[%d][%d]", k, l);
      double z = (Hs[k * n + l] - He[k * n + l]) / Hse[k * n + l];
      st = add_row(tb, DSO_ROW_Z, name, He[k * n + l], Hs[k * n + l], Hse[k * n + l], z, ZTOL, err);
    }
  }
  run_free(&r);
  dso_tabular_work_free(w);
  dso_tabular_free(tab);
  return st;
}

static void random_rows(double* p, int rows, int ns, double spread, dsoRng* rng) {
  for (int i = 0; i < rows; i++) {
    double s = 0;
    for (int y = 0; y < ns; y++) {
      p[i * ns + y] = exp(spread * dso_rng_normal(rng));
      s += p[i * ns + y];
    }
    for (int y = 0; y < ns; y++) p[i * ns + y] /= s;
  }
}

// compare the DSO chains (P, L), J and ∇J of two finite chains at θ
static dsoStatus same_dso(dsoTable* tb, const char* label, const dsoTabular* a, const dsoTabular* b,
                          const double* th, dsoError* err) {
  int ns = dso_tabular_ns(a), n = dso_tabular_ntheta(a);
  dsoTabWork* wa = dso_tabular_work_create(a);
  dsoTabWork* wb = dso_tabular_work_create(b);
  dsoStatus st = (!wa || !wb) ? dso_error(err, DSO_ERR_MEMORY, "verify: oom") : DSO_OK;
  char name[96];
  if (!st) {
    const double *Pa, *Pb, *La, *Lb;
    dso_tabular_eval(&Pa, NULL, &La, NULL, a, wa, th, 0);
    dso_tabular_eval(&Pb, NULL, &Lb, NULL, b, wb, th, 0);
    snprintf(name, sizeof(name), "%s: same P", label);
    st = add_rel(tb, name, Pa, Pb, ns * ns, RTOL, err);
    snprintf(name, sizeof(name), "%s: same L", label);
    if (!st) st = add_rel(tb, name, La, Lb, ns, RTOL, err);
  }
  double Ja, Jb, ga[NMAX], gb[NMAX];
  if (!st) st = dso_tabular_exact(&Ja, NULL, NULL, ga, a, wa, th, err);
  if (!st) st = dso_tabular_exact(&Jb, NULL, NULL, gb, b, wb, th, err);
  snprintf(name, sizeof(name), "%s: same J", label);
  if (!st) st = add_rel(tb, name, &Ja, &Jb, 1, RTOL, err);
  snprintf(name, sizeof(name), "%s: same dJ", label);
  if (!st) st = add_rel(tb, name, ga, gb, n, RTOL, err);
  dso_tabular_work_free(wa);
  dso_tabular_work_free(wb);
  return st;
}

// sections 2.1, 2.2 and 3.2: MDP families, equivalences, policy gradients
static dsoStatus sec_mdp(dsoTable* tb, const dsoVerifySettings* vs, dsoError* err) {
  dsoRng rng;
  dso_rng_seed(&rng, vs->seed, 3, 0);
  enum { NS = 5, NA = 3, N = 3 };
  double p[NS * NA * NS], r[NS * NA], feat[NS * NA * N], piold[NS * NA], th[NMAX];
  random_rows(p, NS * NA, NS, 1.0, &rng);
  for (int i = 0; i < NS * NA; i++) r[i] = 2 * dso_rng_uniform(&rng);
  for (int i = 0; i < NS * NA * N; i++) feat[i] = dso_rng_normal(&rng);
  random_rows(piold, NS, NA, 1.0, &rng);
  random_theta(th, N, &rng);
  dsoTabSetup su = {DSO_EPISODIC, 0.9, 0, NULL, NULL};
  dsoTabular *S = NULL, *D = NULL, *Hm = NULL, *R = NULL;
  dsoGmdpSpec gs = {NS, NA, N, p, r, feat, 0, 0, NULL};
  dsoStatus st = dso_tabular_create_gmdp(&S, &gs, &su, err);
  // the D-MDP of eq. 26: action η = logits, μ(x,θ) = F(x)θ
  dsoSmdpAsDmdp ctx = {NS, NA, p, r};
  dsoDmdpSpec ds = {NS, NA, N, feat, dso_tabular_smdp_as_dmdp, &ctx};
  if (!st) st = dso_tabular_create_dmdp(&D, &ds, &su, err);
  if (!st) st = same_dso(tb, "S-MDP/D-MDP eqs.27-28", S, D, th, err);
  dsoTabWork* w = NULL;
  double ge[NMAX], gp[NMAX];
  if (!st && !(w = dso_tabular_work_create(S))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_tabular_exact(NULL, NULL, NULL, ge, S, w, th, err);
  if (!st) st = dso_tabular_gmdp_policy_gradient(gp, S, w, th, err);
  if (!st) st = add_rel(tb, "S-MDP policy gradient eq.49 = DSO Thm1", ge, gp, N, RTOL, err);
  dso_tabular_work_free(w);
  w = NULL;
  if (!st && !(w = dso_tabular_work_create(D))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_tabular_exact(NULL, NULL, NULL, ge, D, w, th, err);
  if (!st) st = dso_tabular_dmdp_policy_gradient(gp, D, w, th, err);
  if (!st) st = add_rel(tb, "D-MDP policy gradient eq.52 = DSO Thm1", ge, gp, N, RTOL, err);
  dso_tabular_work_free(w);
  w = NULL;
  // sampled DSO gradient of the S-MDP (eq. 17 chain)
  if (!st) st = theorem_rows(tb, "S-MDP", S, th, nbatch(20000, vs), 400, 0, vs, 0, 30, err);
  // H- and R-MDPs (eqs. 19, 20): exact ∇J vs FD and MDP-side gradient
  dsoGmdpSpec hs = gs, rs = gs;
  hs.tau_h = -0.5;
  rs.tau_r = 0.7;
  rs.pi_old = piold;
  if (!st) st = dso_tabular_create_gmdp(&Hm, &hs, &su, err);
  if (!st) st = dso_tabular_create_gmdp(&R, &rs, &su, err);
  dsoTabular* fam[2] = {Hm, R};
  const char* fname[2] = {"H-MDP eq.19", "R-MDP eq.20"};
  for (int i = 0; i < 2 && !st; i++) {
    double gf[NMAX];
    char name[96];
    if (!(w = dso_tabular_work_create(fam[i]))) {
      st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
      break;
    }
    st = dso_tabular_exact(NULL, NULL, NULL, ge, fam[i], w, th, err);
    if (!st) st = dso_tabular_fd_grad(gf, fam[i], w, th, 1e-3, err);
    snprintf(name, sizeof(name), "%s exact grad = FD of exact J", fname[i]);
    if (!st) st = add_rel(tb, name, gf, ge, N, RTOL, err);
    if (!st) st = dso_tabular_gmdp_policy_gradient(gp, fam[i], w, th, err);
    snprintf(name, sizeof(name), "%s policy gradient = DSO Thm1", fname[i]);
    if (!st) st = add_rel(tb, name, ge, gp, N, RTOL, err);
    dso_tabular_work_free(w);
    w = NULL;
  }
  dso_tabular_free(S);
  dso_tabular_free(D);
  dso_tabular_free(Hm);
  dso_tabular_free(R);
  if (st) return st;
  // L-MDP / D-MDP (eqs. 23-24), average cost; and the L-MDP policy gradient (eq. 54)
  double B[NS * NS], U[NA * NS * NS], M[NS * NA * N], rl[NS], pbar[NS * NS], phi[N * NS * NS];
  for (int i = 0; i < NS * NS; i++) B[i] = dso_rng_normal(&rng);
  for (int i = 0; i < NA * NS * NS; i++) U[i] = dso_rng_normal(&rng);
  for (int i = 0; i < NS * NA * N; i++) M[i] = 0.7 * dso_rng_normal(&rng);
  for (int i = 0; i < NS; i++) rl[i] = 2 * dso_rng_uniform(&rng);
  for (int x = 0; x < NS; x++) {
    double s = 0;
    for (int y = 0; y < NS; y++) s += exp(B[x * NS + y]);
    for (int y = 0; y < NS; y++) pbar[x * NS + y] = exp(B[x * NS + y]) / s;
    for (int k = 0; k < N; k++) {
      for (int y = 0; y < NS; y++) {
        double v = 0;
        for (int j = 0; j < NA; j++) v += M[(x * NA + j) * N + k] * U[(j * NS + x) * NS + y];
        phi[(k * NS + x) * NS + y] = v;
      }
    }
  }
  dsoTabSetup sa = {DSO_AVERAGE, 1.0, 0, NULL, NULL};
  dsoSoftmaxSpec ls = {NS, N, 1, B, phi, rl, NULL, NULL, 1.0};
  dsoLmdpAsDmdp lctx = {NS, NA, B, U, rl};
  dsoDmdpSpec lds = {NS, NA, N, M, dso_lmdp_as_dmdp, &lctx};
  dsoTabular *L = NULL, *LD = NULL;
  st = dso_tabular_create_softmax(&L, &ls, &sa, err);
  if (!st) st = dso_tabular_create_dmdp(&LD, &lds, &sa, err);
  if (!st) st = same_dso(tb, "L-MDP/D-MDP eqs.23-24 (avg)", L, LD, th, err);
  dsoLmdp lm = {NS, pbar, rl, NULL, NULL, DSO_AVERAGE, 1.0};
  if (!st && !(w = dso_tabular_work_create(L))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_tabular_exact(NULL, NULL, NULL, ge, L, w, th, err);
  if (!st) st = dso_lmdp_policy_gradient(gp, &lm, L, w, th, err);
  if (!st) st = add_rel(tb, "L-MDP policy gradient eq.54 = DSO Thm2", ge, gp, N, RTOL, err);
  dso_tabular_work_free(w);
  w = NULL;
  if (!st && !(w = dso_tabular_work_create(LD))) st = dso_error(err, DSO_ERR_MEMORY, "verify: oom");
  if (!st) st = dso_tabular_dmdp_policy_gradient(gp, LD, w, th, err);
  if (!st) st = add_rel(tb, "D-MDP (eq.23) policy gradient eq.52 = Thm2", ge, gp, N, RTOL, err);
  dso_tabular_work_free(w);
  if (!st) st = theorem_rows(tb, "L-MDP avg", L, th, nbatch(4000, vs), 120, 20, vs, 0, 31, err);
  dso_tabular_free(L);
  dso_tabular_free(LD);
  return st;
}

// section 4.7: Lemma 4, Z-learning, natural-gradient identity
static dsoStatus sec_lmdp(dsoTable* tb, const dsoVerifySettings* vs, dsoError* err) {
  dsoRng rng;
  dso_rng_seed(&rng, vs->seed, 4, 0);
  enum { NS = 6, N = 3 };
  double pbar[NS * NS], r[NS], onehot[NS * NS], z[NS], th[NS], g[NS], zero[NS] = {0};
  int term[NS] = {0, 0, 0, 0, 0, 1};
  random_rows(pbar, NS, NS, 1.0, &rng);
  for (int x = 0; x < NS; x++) r[x] = 2 * dso_rng_uniform(&rng);
  for (int i = 0; i < NS * NS; i++) onehot[i] = (i % (NS + 1)) == 0;
  dsoStatus st = DSO_OK;
  const char* lname[3] = {"Lemma4 discounted g=0.9", "Lemma4 first-exit", "Lemma4 average (eigen)"};
  for (int c = 0; c < 3 && !st; c++) {
    dsoLmdp m = {NS, pbar, r, c == 1 ? term : NULL, NULL, c == 2 ? DSO_AVERAGE : DSO_EPISODIC,
                 c == 0 ? 0.9 : 1.0};
    double Jstar, J, g0[NS];
    char name[96];
    st = dso_lmdp_solve(z, &Jstar, &m, err);
    dsoTabular* tab = NULL;
    dsoTabWork* w = NULL;
    if (!st) st = dso_lmdp_create_chain(&tab, &m, onehot, NS, err);
    if (!st && !(w = dso_tabular_work_create(tab))) st = dso_error(err, DSO_ERR_MEMORY, "oom");
    for (int x = 0; x < NS; x++) th[x] = -log(z[x]);  // θ* = V* = -ln Z
    if (!st) st = dso_tabular_exact(&J, NULL, NULL, g, tab, w, th, err);
    snprintf(name, sizeof(name), "%s: J(P*) eq.84 = J* eq.85", lname[c]);
    if (!st) st = add_rel(tb, name, &Jstar, &J, 1, RTOL, err);
    // the optimal chain is stationary: |∇J(θ*)| relative to |∇J(0)|
    if (!st) st = dso_tabular_exact(NULL, NULL, NULL, g0, tab, w, zero, err);
    if (!st) {
      snprintf(name, sizeof(name), "%s: |dJ(theta*)|/|dJ(0)| = 0", lname[c]);
      double rel = norm2(g, NS) / norm2(g0, NS);
      st = add_row(tb, DSO_ROW_REL, name, 0, norm2(g, NS), NAN, rel, RTOL, err);
    }
    // the chain of eq. 89 at θ* is the optimal chain of eq. 84
    if (!st) {
      double Popt[NS * NS];
      const double* P;
      dso_lmdp_optimal_chain(Popt, &m, z);
      dso_tabular_eval(&P, NULL, NULL, NULL, tab, w, th, 0);
      snprintf(name, sizeof(name), "%s: eq.89 at theta* = eq.84", lname[c]);
      double Pn[NS * NS];
      for (int i = 0; i < NS * NS; i++) Pn[i] = term[i / NS] && c == 1 ? Popt[i] : P[i];
      st = add_rel(tb, name, Popt, Pn, NS * NS, RTOL, err);
    }
    dso_tabular_work_free(w);
    dso_tabular_free(tab);
    if (st || c != 1) continue;
    // Z-learning on the first-exit problem
    const char* zname[3] = {"Z-learning baseline eq.92 [rel tol]", "Z-learning greedy eq.94",
                            "Z-learning double sampling [rel tol]"};
    long steps[3] = {(long)(2e6 * vs->scale), (long)(2e5 * vs->scale), (long)(2e6 * vs->scale)};
    double tol[3] = {0.03, RTOL, 0.03};
    for (int mode = 0; mode < 3 && !st; mode++) {
      double zl[NS];
      st = dso_lmdp_zlearn(zl, &m, (dsoZlearnMode)mode, steps[mode] < 20000 ? 20000 : steps[mode],
                           0, 50, vs->seed + 40, err);
      if (!st) st = add_rel(tb, zname[mode], z, zl, NS, tol[mode], err);
    }
  }
  if (st) return st;
  // natural-gradient identity F⁻¹∇J = θ - ω with compatible features (average setting)
  double feat[NS * N], F[N * N], gJ[N], om[N], d[N], diff[N], scratch[N * N];
  for (int i = 0; i < NS * N; i++) feat[i] = dso_rng_normal(&rng);
  random_theta(th, N, &rng);
  dsoLmdp m = {NS, pbar, r, NULL, NULL, DSO_AVERAGE, 1.0};
  dsoTabular* tab = NULL;
  dsoTabWork* w = NULL;
  st = dso_lmdp_create_chain(&tab, &m, feat, N, err);
  if (!st && !(w = dso_tabular_work_create(tab))) st = dso_error(err, DSO_ERR_MEMORY, "oom");
  if (!st) st = dso_tabular_exact(NULL, NULL, NULL, gJ, tab, w, th, err);
  if (!st) st = dso_tabular_fisher(F, tab, w, th, err);
  if (!st) st = dso_natural_direction(d, F, gJ, N, 0, scratch, err);
  if (!st) st = dso_lmdp_compatible_omega(om, &m, feat, tab, w, th, err);
  for (int k = 0; k < N; k++) diff[k] = th[k] - om[k];
  if (!st) st = add_rel(tb, "natural gradient F^-1 dJ = theta - omega", diff, d, N, RTOL, err);
  dso_tabular_work_free(w);
  dso_tabular_free(tab);
  return st;
}

// variance with and without baseline on long-horizon chains: episodic γ = 0.99 with explicit
// weights γ^t (terminate = 0, horizon 1500: truncation γ^1500 < 3e-7), and average cost with a
// window of 100 steps
static dsoStatus sec_variance(dsoTable* tb, const dsoVerifySettings* vs, dsoError* err) {
  dsoRng rng;
  dso_rng_seed(&rng, vs->seed, 5, 0);
  int n = 3, ns = 5;
  double th[NMAX], g[NMAX], se[NMAX], ge[NMAX], var[3], dens[SMAX];
  random_theta(th, n, &rng);
  dsoStatus st = DSO_OK;
  for (int c = 0; c < 2 && !st; c++) {
    dsoTabSetup su = {c == 0 ? DSO_EPISODIC : DSO_AVERAGE, 0.99, 0, NULL, NULL};
    dsoTabular* tab = NULL;
    dsoTabWork* w = NULL;
    st = dso_tabular_create_random(&tab, ns, n, 1, &su, 0, 0.7, vs->seed + 51 + c, err);
    if (!st && !(w = dso_tabular_work_create(tab))) st = dso_error(err, DSO_ERR_MEMORY, "oom");
    if (!st) st = dso_tabular_exact(NULL, NULL, dens, ge, tab, w, th, err);
    if (!st && c == 1) st = dso_tabular_set_p0(tab, dens, err);
    int kinds[3] = {-1, DSO_BASELINE_STATE, DSO_BASELINE_VALUE};
    const char* kname[3] = {"no baseline", "baseline b(x_t)", "baseline eq.59"};
    const char* label = c == 0 ? "g=0.99 weights" : "average H=100";
    int nk = c == 0 ? 3 : 2;
    for (int b = 0; b < nk && !st; b++) {
      dsoRun r;
      char name[96];
      int N = nbatch(2000, vs);
      st = run_setup_mode(&r, tab, N, c == 0 ? 1500 : 400, 100, kinds[b], 0, vs, 50 + 3 * c + b,
                          err);
      if (st) break;
      st = run_batch(&r, th, g, se, err);
      var[b] = r.gr->variance;
      snprintf(name, sizeof(name), "%s Alg.1 %s dJ", label, kname[b]);
      if (!st) st = add_z(tb, name, ge, g, se, n, err);
      run_free(&r);
    }
    // ratio rows: per-rollout variance (trace of the covariance) without / with the baseline
    for (int b = 1; b < nk && !st; b++) {
      char name[96];
      snprintf(name, sizeof(name), "variance none/%s, %s", kname[b], label);
      st = add_row(tb, DSO_ROW_RATIO, name, var[b], var[0], NAN, var[0] / var[b], 2.0, err);
    }
    dso_tabular_work_free(w);
    dso_tabular_free(tab);
  }
  return st;
}

dsoStatus dso_verify_run(dsoVerifyRow** rows, int* nrows, const dsoVerifySettings* set,
                         dsoError* err) {
  *rows = NULL;
  *nrows = 0;
  dsoVerifySettings vs;
  if (set) {
    vs = *set;
  } else {
    dso_verify_settings_default(&vs);
  }
  if (vs.nthread < 1 || !(vs.scale > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "verify: need nthread >= 1 and scale > 0 (got %d, %g)",
                     vs.nthread, vs.scale);
  }
  dsoTable tb = {NULL, 0, 0};
  dsoStatus st = sec_theorems(&tb, &vs, err);
  if (!st) st = sec_surrogate(&tb, &vs, err);
  if (!st) st = sec_mdp(&tb, &vs, err);
  if (!st) st = sec_lmdp(&tb, &vs, err);
  if (!st) st = sec_variance(&tb, &vs, err);
  if (st) {
    free(tb.rows);
    return st;
  }
  *rows = tb.rows;
  *nrows = tb.n;
  return DSO_OK;
}

void dso_verify_free(dsoVerifyRow* rows) {
  free(rows);
}
