// Policies μ(s, θ_μ): linear feedback, MLP and the brain-body recurrent network of eq. 100.
// Jacobians against centered differences (relative error in the max norm < 1e-6), vector-Jacobian
// products against Jᵀλ (1e-12), backpropagation through time of the rnn, θ entries, the seeded
// initializer, input normalization, settings from JSON, and no allocation while evaluating.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/policy_json.h"
#include "mujoco/policy.h"

//---------------------------------- allocation counter -------------------------------------------
// In the plain build the program replaces malloc (glibc allows it) to count allocations made while
// g_counting is set; AddressSanitizer owns malloc, so the sanitizer build skips the count.
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#if !defined(COUNT_ALLOCS) && defined(__GLIBC__)
#define COUNT_ALLOCS 1
#elif !defined(COUNT_ALLOCS)
#define COUNT_ALLOCS 0
#endif

static volatile int g_counting;
static volatile long g_nalloc;

#if COUNT_ALLOCS
extern void* __libc_malloc(size_t n);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* ptr, size_t n);
extern void __libc_free(void* ptr);
void* malloc(size_t n) {
  if (g_counting) g_nalloc++;
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  if (g_counting) g_nalloc++;
  return __libc_calloc(n, size);
}
void* realloc(void* ptr, size_t n) {
  if (g_counting) g_nalloc++;
  return __libc_realloc(ptr, n);
}
void free(void* ptr) { __libc_free(ptr); }
#endif

//---------------------------------- helpers ------------------------------------------------------

// fixed-seed test data: splitmix64, uniform in (-1, 1)
static uint64_t g_rng = 12345;
static double unif(void) {
  uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return 2.0 * ((double)(z >> 11) / 9007199254740992.0) - 1.0;
}
static void fill(double* x, int n, double scale) {
  for (int i = 0; i < n; i++) x[i] = scale * unif();
}
static double* vec(int n) {
  double* x = (double*)calloc(n > 0 ? (size_t)n : 1, sizeof(double));
  assert_non_null(x);
  return x;
}
static double maxabs(const double* x, int n) {
  double m = 0;
  for (int i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

static dsoPolicy* make(dsoPolicyKind kind, int nin, int nu, int nh_or_layers, const int* hidden,
                       int normalize) {
  dsoPolicySettings s;
  dso_policy_settings_default(&s);
  s.kind = kind;
  s.init_scale_out = 1.0;
  if (kind == DSO_POLICY_MLP) {
    s.nhidden = nh_or_layers;
    for (int i = 0; i < nh_or_layers; i++) s.hidden[i] = hidden[i];
  }
  if (kind == DSO_POLICY_RNN) s.units = nh_or_layers;
  double shift[16], scale[16];
  if (normalize) {
    for (int j = 0; j < nin; j++) {
      shift[j] = 0.3 * j - 0.5;
      scale[j] = 0.5 + 0.25 * j;
    }
    s.input_shift = shift;
    s.input_scale = scale;
    s.ninput_shift = s.ninput_scale = nin;
  }
  dsoError err = {0};
  dsoPolicy* p = dso_policy_create(&s, nin, nu, &err);
  if (!p) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(p);
  return p;
}

// the three kinds used by the derivative tests (with input normalization for mlp and rnn)
static dsoPolicy* make_kind(int k) {
  static const int hidden[2] = {5, 4};
  if (k == 0) return make(DSO_POLICY_LINEAR, 4, 3, 0, NULL, 0);
  if (k == 1) return make(DSO_POLICY_MLP, 4, 3, 2, hidden, 1);
  return make(DSO_POLICY_RNN, 4, 3, 5, NULL, 1);
}

// random point (s, h, θ): θ = init + noise so that every weight matters
static void point(double* s, double* h, double* th, const dsoPolicy* p) {
  fill(s, dso_policy_nin(p), 1.5);
  fill(h, dso_policy_nh(p), 0.8);
  dso_policy_init(th, p);
  for (int i = 0; i < dso_policy_np(p); i++) th[i] += 0.4 * unif();
}

// a policy (owned), its work, its sizes and a random point (s, h, θ)
typedef struct {
  dsoPolicy* p;
  dsoPolicyWork* w;
  int nin, nu, nh, np;
  double *s, *h, *th;
} fixture;

static fixture fixture_open(dsoPolicy* p) {
  fixture f = {p, NULL, dso_policy_nin(p), dso_policy_nu(p), dso_policy_nh(p), dso_policy_np(p),
               NULL, NULL, NULL};
  dsoError err = {0};
  f.w = dso_policy_work_create(p, &err);
  assert_non_null(f.w);
  f.s = vec(f.nin);
  f.h = vec(f.nh);
  f.th = vec(f.np);
  point(f.s, f.h, f.th, p);
  return f;
}

static void fixture_close(fixture* f) {
  free(f->s), free(f->h), free(f->th);
  dso_policy_work_free(f->w);
  dso_policy_free(f->p);
}

// relative error of J against F in the max norm
static double relerr(const double* J, const double* F, int n) {
  double d = 0;
  for (int i = 0; i < n; i++) d = fmax(d, fabs(J[i] - F[i]));
  double m = maxabs(J, n);
  return m > 0 ? d / m : d;
}

//---------------------------------- tests --------------------------------------------------------

static void test_linear_exact(void** state) {
  // dyadic values: every product and sum is exact in double whatever the summation order
  double th[8] = {1, -2, 0.5, 3, 0.25, -1, /* k */ 0.5, -4};
  double s[3] = {2, -1, 4};
  dsoPolicySettings set;
  dso_policy_settings_default(&set);
  set.init = th;
  dsoError err = {0};
  dsoPolicy* p = dso_policy_create(&set, 3, 2, &err);
  assert_non_null(p);
  assert_int_equal(dso_policy_kind(p), DSO_POLICY_LINEAR);
  assert_int_equal(dso_policy_np(p), 8);
  assert_int_equal(dso_policy_nh(p), 0);
  assert_int_equal(dso_policy_nin(p), 3);
  assert_int_equal(dso_policy_nu(p), 2);
  double init[8];
  dso_policy_init(init, p);
  assert_memory_equal(init, th, sizeof(th));
  dsoPolicyWork* w = dso_policy_work_create(p, &err);
  double a[2], hn[1] = {-7};
  dso_policy_forward(a, hn, p, w, s, NULL, th);
  for (int i = 0; i < 2; i++) {
    double expect = th[6 + i];
    for (int j = 0; j < 3; j++) expect += th[3 * i + j] * s[j];
    assert_true(a[i] == expect);
  }
  assert_true(hn[0] == -7);  // static kinds leave hnext alone
  // da/ds = K, da/dθ = [s 0 | 1 0; 0 s | 0 1]
  double J[6], Jt[16];
  dso_policy_jacobian(J, NULL, Jt, NULL, NULL, NULL, p, w, s, NULL, th);
  assert_memory_equal(J, th, sizeof(J));
  double expect[16] = {2, -1, 4, 0, 0, 0, 1, 0, 0, 0, 0, 2, -1, 4, 0, 1};
  assert_memory_equal(Jt, expect, sizeof(Jt));
  dso_policy_work_free(w);
  dso_policy_free(p);

  // default initial values are zeros
  p = dso_policy_create(NULL, 3, 2, &err);
  assert_non_null(p);
  dso_policy_init(init, p);
  assert_true(maxabs(init, 8) == 0);
  dso_policy_free(p);
}

// checks every Jacobian of p (freed here) against centered differences of the forward pass
static void check_fd(dsoPolicy* p) {
  fixture f = fixture_open(p);
  int nin = f.nin, nu = f.nu, nh = f.nh, np = f.np;
  dsoPolicyWork* w = f.w;
  double *s = f.s, *h = f.h, *th = f.th;
  int nvar[3] = {nin, nh, np};
  double* var[3] = {s, h, th};
  for (int v = 0; v < 3; v++) {
    int n = nvar[v];
    if (!n) continue;
    double *Ja = vec(nu * n), *Jh = vec(nh * n), *Fa = vec(nu * n), *Fh = vec(nh * n);
    double *ap = vec(nu), *am = vec(nu), *hp = vec(nh), *hm = vec(nh);
    double* out[6] = {NULL};
    out[v] = Ja;
    out[3 + v] = Jh;
    dso_policy_jacobian(out[0], out[1], out[2], out[3], out[4], out[5], p, w, s, h, th);
    const double eps = 1e-5;
    for (int j = 0; j < n; j++) {
      double x0 = var[v][j];
      var[v][j] = x0 + eps;
      dso_policy_forward(ap, hp, p, w, s, h, th);
      var[v][j] = x0 - eps;
      dso_policy_forward(am, hm, p, w, s, h, th);
      var[v][j] = x0;
      for (int i = 0; i < nu; i++) Fa[i * n + j] = (ap[i] - am[i]) / (2 * eps);
      for (int i = 0; i < nh; i++) Fh[i * n + j] = (hp[i] - hm[i]) / (2 * eps);
    }
    double ea = relerr(Ja, Fa, nu * n), eh = relerr(Jh, Fh, nh * n);
    if (ea >= 1e-6 || eh >= 1e-6) {
      fprintf(stderr, "%s: variable %d: relative error a %.3g, h' %.3g\n",
              dso_policy_kind_name(dso_policy_kind(p)), v, ea, eh);
    }
    assert_true(ea < 1e-6);
    assert_true(eh < 1e-6);
    assert_true(maxabs(Ja, nu * n) > 0);
    if (nh) assert_true(maxabs(Jh, nh * n) > 0);
    free(Ja), free(Jh), free(Fa), free(Fh), free(ap), free(am), free(hp), free(hm);
  }
  fixture_close(&f);
}

static void test_jacobians_fd(void** state) {
  for (int k = 0; k < 3; k++) check_fd(make_kind(k));
  // a deeper mlp with one wide layer and a single output
  static const int hidden[3] = {7, 3, 6};
  check_fd(make(DSO_POLICY_MLP, 2, 1, 3, hidden, 0));
}

static void test_vjp_equals_jacobian(void** state) {
  for (int k = 0; k < 3; k++) {
    fixture f = fixture_open(make_kind(k));
    const dsoPolicy* p = f.p;
    dsoPolicyWork* w = f.w;
    int nin = f.nin, nu = f.nu, nh = f.nh, np = f.np;
    double *s = f.s, *h = f.h, *th = f.th;
    double *Jas = vec(nu * nin), *Jah = vec(nu * nh), *Jat = vec(nu * np);
    double *Jhs = vec(nh * nin), *Jhh = vec(nh * nh), *Jht = vec(nh * np);
    dso_policy_jacobian(Jas, Jah, Jat, Jhs, Jhh, Jht, p, w, s, h, th);
    double *la = vec(nu), *lh = vec(nh);
    fill(la, nu, 1.0);
    fill(lh, nh, 1.0);
    // start from nonzero values: the vjp accumulates
    double *gs = vec(nin), *gh = vec(nh), *gt = vec(np), *gs0 = vec(nin), *gh0 = vec(nh),
           *gt0 = vec(np);
    fill(gs0, nin, 1.0);
    fill(gh0, nh, 1.0);
    fill(gt0, np, 1.0);
    memcpy(gs, gs0, nin * sizeof(double));
    memcpy(gh, gh0, nh * sizeof(double));
    memcpy(gt, gt0, np * sizeof(double));
    dso_policy_vjp(gs, nh ? gh : NULL, gt, p, w, s, h, th, la, nh ? lh : NULL);
    int nvar[3] = {nin, nh, np};
    double *g[3] = {gs, gh, gt}, *g0[3] = {gs0, gh0, gt0};
    double *JA[3] = {Jas, Jah, Jat}, *JH[3] = {Jhs, Jhh, Jht};
    for (int v = 0; v < 3; v++) {
      for (int j = 0; j < nvar[v]; j++) {
        double e = g0[v][j];
        for (int i = 0; i < nu; i++) e += JA[v][i * nvar[v] + j] * la[i];
        for (int i = 0; i < nh; i++) e += JH[v][i * nvar[v] + j] * lh[i];
        assert_true(fabs(g[v][j] - e) <= 1e-12 * fmax(1.0, fabs(e)));
      }
    }
    // NULL outputs are skipped and a NULL lam_h counts as zero
    memcpy(gt, gt0, np * sizeof(double));
    dso_policy_vjp(NULL, NULL, gt, p, w, s, h, th, la, NULL);
    for (int j = 0; j < np; j++) {
      double e = gt0[j];
      for (int i = 0; i < nu; i++) e += Jat[i * np + j] * la[i];
      assert_true(fabs(gt[j] - e) <= 1e-12 * fmax(1.0, fabs(e)));
    }
    free(Jas), free(Jah), free(Jat), free(Jhs), free(Jhh), free(Jht), free(la), free(lh);
    free(gs), free(gh), free(gt), free(gs0), free(gh0), free(gt0);
    fixture_close(&f);
  }
}

// a T-step rnn rollout with loss Σ_t c_tᵀ a_t + dᵀ h_T
enum { T_BPTT = 6 };
typedef struct {
  const dsoPolicy* p;
  dsoPolicyWork* w;
  double S[T_BPTT * 4], C[T_BPTT * 3], H[(T_BPTT + 1) * 5], d[5];  // s_t, c_t, h_t, d
  double* th;
} bpttCase;

static double rnn_loss(const bpttCase* c) {
  int nin = dso_policy_nin(c->p), nu = dso_policy_nu(c->p), nh = dso_policy_nh(c->p);
  double a[3], h[5];
  memcpy(h, c->H, nh * sizeof(double));
  double L = 0;
  for (int t = 0; t < T_BPTT; t++) {
    dso_policy_forward(a, h, c->p, c->w, c->S + t * nin, h, c->th);  // h' overwrites h
    for (int i = 0; i < nu; i++) L += c->C[t * nu + i] * a[i];
  }
  for (int i = 0; i < nh; i++) L += c->d[i] * h[i];
  return L;
}

// centered differences of the loss with respect to x (n values inside c)
static void rnn_loss_fd(double* fd, double* x, int n, const bpttCase* c) {
  const double eps = 1e-5;
  for (int j = 0; j < n; j++) {
    double x0 = x[j];
    x[j] = x0 + eps;
    double lp = rnn_loss(c);
    x[j] = x0 - eps;
    double lm = rnn_loss(c);
    x[j] = x0;
    fd[j] = (lp - lm) / (2 * eps);
  }
}

static void test_rnn_through_time(void** state) {
  bpttCase c;
  c.p = make_kind(2);
  int nin = dso_policy_nin(c.p), nu = dso_policy_nu(c.p), nh = dso_policy_nh(c.p),
      np = dso_policy_np(c.p);
  dsoError err = {0};
  c.w = dso_policy_work_create(c.p, &err);
  c.th = vec(np);
  double *g = vec(np), *fd = vec(np), lam[5], tmp[5], fdh[5], a[3];
  point(c.S, c.H, c.th, c.p);
  fill(c.S, T_BPTT * nin, 1.5);
  fill(c.C, T_BPTT * nu, 1.0);
  fill(c.d, nh, 1.0);
  for (int t = 0; t < T_BPTT; t++) {
    dso_policy_forward(a, c.H + (t + 1) * nh, c.p, c.w, c.S + t * nin, c.H + t * nh, c.th);
  }
  // adjoint pass: λ_T = d; λ_t = (dh'/dh)ᵀ λ_{t+1} + (da/dh)ᵀ c_t; g += the θ parts
  memcpy(lam, c.d, nh * sizeof(double));
  for (int t = T_BPTT - 1; t >= 0; t--) {
    memset(tmp, 0, nh * sizeof(double));
    dso_policy_vjp(NULL, tmp, g, c.p, c.w, c.S + t * nin, c.H + t * nh, c.th, c.C + t * nu, lam);
    memcpy(lam, tmp, nh * sizeof(double));
  }
  rnn_loss_fd(fd, c.th, np, &c);
  assert_true(relerr(g, fd, np) < 1e-6);
  rnn_loss_fd(fdh, c.H, nh, &c);  // with respect to h_0
  assert_true(relerr(lam, fdh, nh) < 1e-6);
  free(c.th), free(g), free(fd);
  dso_policy_work_free(c.w);
  dso_policy_free((dsoPolicy*)c.p);
}

static int find(const dsoThetaEntry* e, int n, const char* name) {
  for (int i = 0; i < n; i++) {
    if (!strcmp(e[i].name, name)) return i;
  }
  fail_msg("no entry %s", name);
  return -1;
}

static void test_entries(void** state) {
  static const int hidden[2] = {5, 4};
  struct {
    dsoPolicy* p;
    int np;
    const char* first[4];
    int at[4];
  } c[3] = {
      {make(DSO_POLICY_LINEAR, 4, 3, 0, NULL, 0), 3 * 4 + 3,
       {"policy.K[0,0]", "policy.K[1,0]", "policy.k[0]", "policy.k[2]"}, {0, 4, 12, 14}},
      {make(DSO_POLICY_MLP, 4, 3, 2, hidden, 0), 5 * 4 + 5 + 4 * 5 + 4 + 3 * 4 + 3,
       {"policy.W0[0,1]", "policy.b0[0]", "policy.W1[3,4]", "policy.b2[2]"}, {1, 20, 44, 63}},
      {make(DSO_POLICY_RNN, 4, 3, 5, NULL, 0), 5 * 4 + 5 * 5 + 3 * 5 + 3 * 4 + 5 + 3,
       {"policy.WR[0,0]", "policy.WO[0,0]", "policy.WD[2,3]", "policy.ba[0]"}, {20, 45, 71, 77}},
  };
  for (int k = 0; k < 3; k++) {
    dsoPolicy* p = c[k].p;
    int np = dso_policy_np(p);
    assert_int_equal(np, c[k].np);
    assert_int_equal(dso_policy_entries(NULL, 0, p), np);
    dsoThetaEntry* e = (dsoThetaEntry*)calloc(np + 1, sizeof(dsoThetaEntry));
    snprintf(e[np].name, sizeof(e[np].name), "sentinel");
    assert_int_equal(dso_policy_entries(e, np, p), np);
    assert_string_equal(e[np].name, "sentinel");
    double* init = vec(np);
    dso_policy_init(init, p);
    for (int i = 0; i < np; i++) {
      assert_int_equal(e[i].block, DSO_BLOCK_POLICY);
      assert_int_equal(e[i].transform, DSO_TRANSFORM_IDENTITY);
      assert_int_equal(e[i].bind.kind, DSO_BIND_NONE);
      assert_true(e[i].lower == -INFINITY && e[i].upper == INFINITY);
      assert_int_equal(e[i].has_prior, 0);
      assert_int_equal(e[i].fixed, 0);
      assert_true(e[i].init == init[i]);
    }
    for (int q = 0; q < 4; q++) assert_string_equal(e[c[k].at[q]].name, c[k].first[q]);
    assert_string_equal(e[np - 1].name, k == 0 ? "policy.k[2]" : k == 1 ? "policy.b2[2]"
                                                                         : "policy.ba[2]");
    // unique names: the layout accepts them
    dsoError err = {0};
    dsoTheta* T = dso_theta_create(e, np, &err);
    assert_non_null(T);
    dso_theta_free(T);
    // a short buffer gets the first entries only
    memset(e, 0, sizeof(dsoThetaEntry) * 2);
    assert_int_equal(dso_policy_entries(e, 1, p), np);
    assert_true(e[0].name[0] != 0 && e[1].name[0] == 0);
    free(e);
    free(init);
    dso_policy_free(p);
  }
}

// eq. 100 by name: the action reads the current h, h' = tanh(W_I s + W_R h + b_h)
static void test_rnn_names_eq100(void** state) {
  dsoPolicy* p = make(DSO_POLICY_RNN, 2, 2, 4, NULL, 0);
  int np = dso_policy_np(p);
  dsoThetaEntry* e = (dsoThetaEntry*)calloc(np, sizeof(dsoThetaEntry));
  dso_policy_entries(e, np, p);
  double* th = vec(np);
  th[find(e, np, "policy.WD[1,0]")] = 2.0;
  th[find(e, np, "policy.ba[0]")] = 0.5;
  th[find(e, np, "policy.WO[0,3]")] = -1.5;
  th[find(e, np, "policy.WI[2,1]")] = 0.7;
  th[find(e, np, "policy.WR[3,0]")] = 1.1;
  th[find(e, np, "policy.bh[1]")] = -0.2;
  dsoError err = {0};
  dsoPolicyWork* w = dso_policy_work_create(p, &err);
  double s[2] = {0.3, -0.9}, h[4] = {0.4, 0.1, -0.6, 0.8}, a[2], hn[4];
  dso_policy_forward(a, hn, p, w, s, h, th);
  assert_true(fabs(a[0] - (0.5 - 1.5 * h[3])) < 1e-15);
  assert_true(fabs(a[1] - 2.0 * s[0]) < 1e-15);
  assert_true(fabs(hn[0]) < 1e-15);
  assert_true(fabs(hn[1] - tanh(-0.2)) < 1e-15);
  assert_true(fabs(hn[2] - tanh(0.7 * s[1])) < 1e-15);
  assert_true(fabs(hn[3] - tanh(1.1 * h[0])) < 1e-15);
  // in place: hnext may be h
  double a2[2];
  dso_policy_forward(a2, h, p, w, s, h, th);
  assert_memory_equal(a2, a, sizeof(a));
  assert_memory_equal(h, hn, sizeof(hn));
  free(th);
  free(e);
  dso_policy_work_free(w);
  dso_policy_free(p);
}

// mean and variance of n values
static void moments(double* mean, double* var, const double* x, int n) {
  double m = 0, v = 0;
  for (int i = 0; i < n; i++) m += x[i];
  m /= n;
  for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = v / (n - 1);
}

// checks that n values are N(0, sd^2): mean and variance within 4 standard errors
static void check_normal(const double* x, int n, double sd) {
  double m, v;
  moments(&m, &v, x, n);
  assert_true(fabs(m) < 4 * sd / sqrt(n));
  assert_true(fabs(v / (sd * sd) - 1) < 4 * sqrt(2.0 / (n - 1)));
}

static void test_initializer(void** state) {
  dsoPolicySettings s;
  dso_policy_settings_default(&s);
  s.kind = DSO_POLICY_MLP;
  s.nhidden = 1;
  s.hidden[0] = 300;
  s.seed = 42;
  s.init_scale_out = 0.5;
  dsoError err = {0};
  dsoPolicy* p = dso_policy_create(&s, 400, 50, &err);
  assert_non_null(p);
  int np = dso_policy_np(p);
  double *th = vec(np), *th2 = vec(np);
  dso_policy_init(th, p);
  check_normal(th, 300 * 400, 1.0 / sqrt(400.0));                             // W0
  assert_true(maxabs(th + 300 * 400, 300) == 0);                              // b0
  check_normal(th + 300 * 401, 50 * 300, 0.5 / sqrt(300.0));                  // W1
  assert_true(maxabs(th + 300 * 401 + 50 * 300, 50) == 0);                    // b1
  // the same seed gives the same values, another seed others
  dsoPolicy* q = dso_policy_create(&s, 400, 50, &err);
  dso_policy_init(th2, q);
  assert_memory_equal(th, th2, np * sizeof(double));
  dso_policy_free(q);
  s.seed = 43;
  q = dso_policy_create(&s, 400, 50, &err);
  dso_policy_init(th2, q);
  assert_true(th[0] != th2[0] && th[np - 51] != th2[np - 51]);
  dso_policy_free(q);
  dso_policy_free(p);
  free(th), free(th2);

  // rnn: W_I, W_R ~ N(0, 1/(nin + nh)); W_O, W_D scaled by init_scale_out; biases zero
  s.kind = DSO_POLICY_RNN;
  s.units = 120;
  s.init_scale_out = 0.01;
  p = dso_policy_create(&s, 80, 30, &err);
  assert_non_null(p);
  np = dso_policy_np(p);
  th = vec(np);
  dso_policy_init(th, p);
  double sd = 1.0 / sqrt(200.0);
  check_normal(th, 120 * 80 + 120 * 120, sd);
  check_normal(th + 120 * 200, 30 * 200, 0.01 * sd);
  assert_true(maxabs(th + 120 * 200 + 30 * 200, 150) == 0);
  assert_int_equal(np, 120 * 200 + 30 * 200 + 150);
  dso_policy_free(p);
  free(th);
}

static void test_normalization(void** state) {
  for (int k = 1; k < 3; k++) {
    dsoPolicy* p = make_kind(k);  // with shift and scale
    int nin = dso_policy_nin(p), nu = dso_policy_nu(p), nh = dso_policy_nh(p),
        np = dso_policy_np(p);
    static const int hidden[2] = {5, 4};
    dsoPolicy* q = k == 1 ? make(DSO_POLICY_MLP, 4, 3, 2, hidden, 0)
                          : make(DSO_POLICY_RNN, 4, 3, 5, NULL, 0);
    dsoError err = {0};
    dsoPolicyWork *wp = dso_policy_work_create(p, &err), *wq = dso_policy_work_create(q, &err);
    double *s = vec(nin), *sn = vec(nin), *h = vec(nh), *th = vec(np);
    point(s, h, th, p);
    for (int j = 0; j < nin; j++) sn[j] = (s[j] - (0.3 * j - 0.5)) * (0.5 + 0.25 * j);
    double ap[3], aq[3], hp[5], hq[5];
    dso_policy_forward(ap, hp, p, wp, s, h, th);
    dso_policy_forward(aq, hq, q, wq, sn, h, th);
    assert_memory_equal(ap, aq, sizeof(double) * nu);
    if (nh) assert_memory_equal(hp, hq, sizeof(double) * nh);
    double *Jp = vec(nu * nin), *Jq = vec(nu * nin);
    dso_policy_jacobian(Jp, NULL, NULL, NULL, NULL, NULL, p, wp, s, h, th);
    dso_policy_jacobian(Jq, NULL, NULL, NULL, NULL, NULL, q, wq, sn, h, th);
    for (int i = 0; i < nu; i++) {
      for (int j = 0; j < nin; j++) {
        assert_true(fabs(Jp[i * nin + j] - Jq[i * nin + j] * (0.5 + 0.25 * j)) < 1e-15);
      }
    }
    free(s), free(sn), free(h), free(th), free(Jp), free(Jq);
    dso_policy_work_free(wp);
    dso_policy_work_free(wq);
    dso_policy_free(p);
    dso_policy_free(q);
  }
}

static void expect_create_error(const dsoPolicySettings* s, int nin, int nu, const char* what) {
  dsoError err = {0};
  assert_null(dso_policy_create(s, nin, nu, &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  if (!strstr(err.msg, what)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, what);
}

static void test_create_errors(void** state) {
  dsoPolicySettings s;
  dso_policy_settings_default(&s);
  expect_create_error(&s, 0, 2, "nin = 0");
  expect_create_error(&s, 3, -1, "nu = -1");
  s.kind = (dsoPolicyKind)7;
  expect_create_error(&s, 3, 2, "unknown kind 7");
  s.kind = DSO_POLICY_MLP;
  s.nhidden = 0;
  expect_create_error(&s, 3, 2, "nhidden = 0");
  s.nhidden = 2;
  s.hidden[1] = 0;
  expect_create_error(&s, 3, 2, "hidden[1] = 0");
  s.hidden[1] = 8;
  s.init_scale_out = NAN;
  expect_create_error(&s, 3, 2, "init_scale_out");
  s.init_scale_out = 0.01;
  s.kind = DSO_POLICY_RNN;
  s.units = 0;
  expect_create_error(&s, 3, 2, "units = 0");
  s.units = 4;
  double shift[2] = {0, 1}, scale[3] = {1, INFINITY, 1};
  s.input_shift = shift;
  s.ninput_shift = 2;
  expect_create_error(&s, 3, 2, "input_shift has 2 numbers, expected nin = 3");
  s.input_shift = NULL;
  s.ninput_shift = 0;
  s.input_scale = scale;
  s.ninput_scale = 3;
  expect_create_error(&s, 3, 2, "input_scale[1] must be finite");
  s.input_scale = NULL;
  s.ninput_scale = 0;
  s.kind = DSO_POLICY_LINEAR;
  double init[8] = {0, 0, 0, 0, 0, NAN, 0, 0};
  s.init = init;
  expect_create_error(&s, 3, 2, "init[5] must be finite");
  // frees of NULL are no-ops
  dso_policy_free(NULL);
  dso_policy_work_free(NULL);
  dso_policy_settings_free(NULL);
}

static void test_settings_json(void** state) {
  dsoPolicySettings s;
  dsoError err = {0};
  const char* mlp =
      "{\"type\": \"mlp\", \"hidden\": [64, 32, 8], \"seed\": 7, \"init_scale_out\": 0.1,\n"
      " \"input_shift\": [1, 2], \"input_scale\": [0.5, 0.25]}";
  assert_int_equal(dso_policy_settings_from_json(&s, mlp, "task.json", "policy", &err), DSO_OK);
  assert_int_equal(s.kind, DSO_POLICY_MLP);
  assert_int_equal(s.nhidden, 3);
  assert_int_equal(s.hidden[0], 64);
  assert_int_equal(s.hidden[2], 8);
  assert_true(s.seed == 7);
  assert_true(s.init_scale_out == 0.1);
  assert_int_equal(s.ninput_shift, 2);
  assert_int_equal(s.ninput_scale, 2);
  assert_true(s.input_shift[1] == 2 && s.input_scale[1] == 0.25);
  dsoPolicy* p = dso_policy_create(&s, 2, 3, &err);
  assert_non_null(p);
  assert_int_equal(dso_policy_np(p), 64 * 3 + 32 * 65 + 8 * 33 + 3 * 9);
  dso_policy_free(p);
  p = dso_policy_create(&s, 3, 3, &err);  // nin does not match the arrays
  assert_null(p);
  assert_non_null(strstr(err.msg, "input_shift has 2 numbers, expected nin = 3"));
  dso_policy_settings_free(&s);
  assert_null(s.input_shift);
  assert_null(s.input_scale);

  err = (dsoError){0};
  assert_int_equal(dso_policy_settings_from_json(&s, "{\"type\": \"rnn\", \"units\": 5}",
                                                 "task.json", "policy", &err),
                   DSO_OK);
  assert_int_equal(s.kind, DSO_POLICY_RNN);
  assert_int_equal(s.units, 5);
  assert_true(s.seed == 1 && s.init_scale_out == 0.01);
  assert_null(s.input_shift);
  dso_policy_settings_free(&s);
  assert_int_equal(dso_policy_settings_from_json(&s, "{\"type\": \"linear\", \"seed\": 0}",
                                                 "task.json", "policy", &err),
                   DSO_OK);
  assert_int_equal(s.kind, DSO_POLICY_LINEAR);
  assert_true(s.seed == 0);
  dso_policy_settings_free(&s);
}

// settings written in C (no JSON) give the policy that the config layer reads from the
// equivalent "policy" object: the same layout, initial θ_μ and output, bit for bit
static void test_settings_typed(void** state) {
  double shift[2] = {1, 2}, scale[2] = {0.5, 0.25};
  dsoPolicySettings typed;
  dso_policy_settings_default(&typed);
  typed.kind = DSO_POLICY_MLP;
  typed.nhidden = 3;
  typed.hidden[0] = 6;
  typed.hidden[1] = 5;
  typed.hidden[2] = 4;
  typed.seed = 7;
  typed.init_scale_out = 0.1;
  typed.input_shift = shift;
  typed.ninput_shift = 2;
  typed.input_scale = scale;
  typed.ninput_scale = 2;
  dsoPolicySettings read;
  dsoError err = {0};
  assert_int_equal(dso_policy_settings_from_json(
                       &read, "{\"type\": \"mlp\", \"hidden\": [6, 5, 4], \"seed\": 7, "
                       "\"init_scale_out\": 0.1, \"input_shift\": [1, 2], "
                       "\"input_scale\": [0.5, 0.25]}", "task.json", "policy", &err),
                   DSO_OK);
  dsoPolicy* p[2] = {dso_policy_create(&typed, 2, 3, &err), dso_policy_create(&read, 2, 3, &err)};
  dso_policy_settings_free(&read);
  assert_non_null(p[0]);
  assert_non_null(p[1]);
  int np = dso_policy_np(p[0]);
  assert_int_equal(np, dso_policy_np(p[1]));
  assert_int_equal(np, 6 * 3 + 5 * 7 + 4 * 6 + 3 * 5);
  double th[2][128], a[2][3], s[2] = {0.3, -1.2};
  assert_true(np <= 128);
  dsoThetaEntry e[2][128];
  for (int k = 0; k < 2; k++) {
    dso_policy_init(th[k], p[k]);
    assert_int_equal(dso_policy_entries(e[k], 128, p[k]), np);
    dsoPolicyWork* w = dso_policy_work_create(p[k], &err);
    assert_non_null(w);
    dso_policy_forward(a[k], NULL, p[k], w, s, NULL, th[k]);
    dso_policy_work_free(w);
  }
  assert_memory_equal(th[0], th[1], sizeof(double) * (size_t)np);
  assert_memory_equal(a[0], a[1], sizeof(a[0]));
  for (int i = 0; i < np; i++) {
    assert_string_equal(e[0][i].name, e[1][i].name);
  }
  assert_true(a[0][0] != 0);
  dso_policy_free(p[0]);
  dso_policy_free(p[1]);
}

static void test_settings_json_bad(void** state) {
  static const struct {
    const char* json;
    const char* what;
  } bad[] = {
      {"{\"type\": \"mlp\", \"hiden\": [3]}",
       "policy: unknown key \"hiden\"; valid keys: type, hidden, units, seed, init_scale_out, "
       "input_shift, input_scale"},
      {"{\"hidden\": [3]}", "policy: \"type\" is required"},
      {"{\"type\": \"cnn\"}",
       "policy.type: unknown policy type \"cnn\"; valid types: linear, mlp, rnn"},
      {"{\"type\": 3}", "policy.type: expected a string, got a number"},
      {"{\"type\": \"mlp\", \"hidden\": [32, -1]}",
       "policy.hidden[1]: expected an integer in [1, 1048576], got -1"},
      {"{\"type\": \"mlp\", \"hidden\": []}",
       "policy.hidden: expected an array of 1 to 16 layer sizes, got an empty array"},
      {"{\"type\": \"mlp\", \"hidden\": 32}",
       "policy.hidden: expected an array of 1 to 16 layer sizes, got a number"},
      {"{\"type\": \"mlp\", \"hidden\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}", "got 17 layers"},
      {"{\"type\": \"rnn\", \"hidden\": [4]}",
       "policy.hidden: applies to type \"mlp\" only (type is \"rnn\")"},
      {"{\"type\": \"linear\", \"units\": 4}",
       "policy.units: applies to type \"rnn\" only (type is \"linear\")"},
      {"{\"type\": \"rnn\", \"units\": 2.5}", "policy.units: expected an integer in [1, "},
      {"{\"type\": \"linear\", \"seed\": -3}", "policy.seed: expected an integer in [0, "},
      {"{\"type\": \"mlp\", \"init_scale_out\": \"big\"}",
       "policy.init_scale_out: expected a finite number, got a string"},
      {"{\"type\": \"mlp\", \"init_scale_out\": -1}",
       "policy.init_scale_out: expected a number >= 0, got -1"},
      {"{\"type\": \"linear\", \"input_shift\": [1, \"x\"]}",
       "policy.input_shift[1]: expected a finite number, got a string"},
      {"{\"type\": \"linear\", \"input_scale\": {}}",
       "policy.input_scale: expected a non-empty array of numbers, got an object"},
      {"{\"type\": \"linear\", \"input_shift\": [1, 2], \"input_scale\": [1]}",
       "policy.input_scale: has 1 numbers but input_shift has 2"},
      {"[1, 2]", "policy: expected an object, got an array"},
      {"{\"type\": \"linear\",\n \"seed\": }", "line 2"},
      {"{\"type\": \"linear\", \"type\": \"mlp\"}", "key \"type\" appears twice"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dsoPolicySettings s;
    dsoError err = {0};
    dsoStatus st = dso_policy_settings_from_json(&s, bad[i].json, "task.json", "policy", &err);
    assert_int_equal(st, DSO_ERR_INPUT);
    assert_int_equal(err.code, DSO_ERR_INPUT);
    if (!strstr(err.msg, bad[i].what) || strncmp(err.msg, "task.json: ", 11)) {
      fail_msg("case %d: message \"%s\" lacks \"%s\"", (int)i, err.msg, bad[i].what);
    }
    // on failure s holds the defaults and no arrays
    assert_int_equal(s.kind, DSO_POLICY_LINEAR);
    assert_null(s.input_shift);
    assert_null(s.input_scale);
  }
}

static void test_no_allocation(void** state) {
  if (!COUNT_ALLOCS) {
    skip();
  }
  for (int k = 0; k < 3; k++) {
    fixture f = fixture_open(make_kind(k));
    const dsoPolicy* p = f.p;
    dsoPolicyWork* w = f.w;
    int nin = f.nin, nu = f.nu, nh = f.nh, np = f.np;
    double *s = f.s, *h = f.h, *th = f.th, *a = vec(nu), *hn = vec(nh);
    double *Jt = vec(nu * np), *Ht = vec(nh * np), *gt = vec(np), *gs = vec(nin), *gh = vec(nh);
    double *la = vec(nu), *lh = vec(nh);
    dsoError err = {0};
    fill(la, nu, 1);
    fill(lh, nh, 1);
    dso_policy_forward(a, hn, p, w, s, h, th);  // warm up the BLAS
    g_nalloc = 0;
    g_counting = 1;
    for (int r = 0; r < 3; r++) {
      dso_policy_forward(a, hn, p, w, s, h, th);
      dso_policy_jacobian(NULL, NULL, Jt, NULL, NULL, Ht, p, w, s, h, th);
      dso_policy_vjp(gs, gh, gt, p, w, s, h, th, la, lh);
    }
    g_counting = 0;
    assert_int_equal(g_nalloc, 0);
    // the counter works
    g_counting = 1;
    dsoPolicyWork* w2 = dso_policy_work_create(p, &err);
    g_counting = 0;
    assert_true(g_nalloc > 0);
    dso_policy_work_free(w2);
    free(a), free(hn), free(Jt), free(Ht), free(gt), free(gs), free(gh), free(la), free(lh);
    fixture_close(&f);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear_exact),       cmocka_unit_test(test_jacobians_fd),
      cmocka_unit_test(test_vjp_equals_jacobian), cmocka_unit_test(test_rnn_through_time),
      cmocka_unit_test(test_entries),            cmocka_unit_test(test_rnn_names_eq100),
      cmocka_unit_test(test_initializer),        cmocka_unit_test(test_normalization),
      cmocka_unit_test(test_create_errors),      cmocka_unit_test(test_settings_json),
      cmocka_unit_test(test_settings_json_bad),  cmocka_unit_test(test_no_allocation),
      cmocka_unit_test(test_settings_typed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
