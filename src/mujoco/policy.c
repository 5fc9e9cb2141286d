#include "mujoco/policy.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// one named matrix or vector of θ_μ
typedef struct dsoPolicyBlock_ {
  char name[8];  // "K", "W3", "bh", ...
  int rows;      // rows of a matrix, length of a vector
  int cols;      // columns of a matrix; 0 for a vector
  int off;       // first index in θ_μ
  double std;    // initial values N(0, std^2); 0 for zeros
} dsoPolicyBlock;

// rnn blocks, in layout order
enum { RNN_WI = 0, RNN_WR, RNN_WO, RNN_WD, RNN_BH, RNN_BA, RNN_NBLOCK };

struct dsoPolicy_ {
  dsoPolicyKind kind;
  int nin, nu, nh, np;
  int nlayer;               // linear and mlp: number of affine maps (W_l, b_l); rnn: 0
  int* width;               // (nlayer + 1) n_0 = nin, ..., n_nlayer = nu
  int nact;                 // sum of the hidden widths (tanh outputs kept for the backward pass)
  int maxwidth;             // largest of nin, nu, nh and the hidden widths
  int nblock;
  dsoPolicyBlock* block;    // (nblock) linear/mlp: W_l at 2l, b_l at 2l+1; rnn: RNN_* order
  double* shift;            // (nin)
  double* scale;            // (nin)
  double* init;             // (np)
};

struct dsoPolicyWork_ {
  const dsoPolicy* p;
  double* sn;     // (nin) normalized input
  double* act;    // (nact) tanh outputs x_1..x_L of the hidden layers (mlp)
  double* hn;     // (nh) next recurrent state (rnn)
  double* d0;     // (maxwidth) backward deltas, used in turn with d1
  double* d1;     // (maxwidth)
  double* gsn;    // (nin) gradient with respect to s_n
  double* seed;   // (nu + nh) unit seeds of the Jacobian rows
  double* mem;    // the single allocation the pointers above point into
};

//---------------------------------- settings -----------------------------------------------------

static const char* kKindNames[3] = {"linear", "mlp", "rnn"};

const char* dso_policy_kind_name(dsoPolicyKind kind) {
  return (kind >= DSO_POLICY_LINEAR && kind <= DSO_POLICY_RNN) ? kKindNames[kind] : "unknown";
}

void dso_policy_settings_default(dsoPolicySettings* s) {
  memset(s, 0, sizeof(*s));
  s->kind = DSO_POLICY_LINEAR;
  s->nhidden = 2;
  s->hidden[0] = 32;
  s->hidden[1] = 32;
  s->units = 16;
  s->seed = 1;
  s->init_scale_out = 0.01;
}

void dso_policy_settings_free(dsoPolicySettings* s) {
  if (!s) {
    return;
  }
  free(s->input_shift);
  free(s->input_scale);
  s->input_shift = NULL;
  s->input_scale = NULL;
  s->ninput_shift = 0;
  s->ninput_scale = 0;
}

//---------------------------------- creation -----------------------------------------------------

// small seeded Gaussian generator for the initializer: splitmix64 and Box-Muller
typedef struct dsoInitRng_ {
  uint64_t state;
  double spare;
  int has_spare;
} dsoInitRng;

static uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// uniform in the open interval (0, 1)
static double init_uniform(dsoInitRng* r) {
  return ((double)(splitmix64(&r->state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double init_normal(dsoInitRng* r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = init_uniform(r), u2 = init_uniform(r);
  double rad = sqrt(-2.0 * log(u1)), ang = 2.0 * 3.14159265358979323846 * u2;
  r->spare = rad * sin(ang);
  r->has_spare = 1;
  return rad * cos(ang);
}

void dso_policy_free(dsoPolicy* p) {
  if (!p) {
    return;
  }
  free(p->width);
  free(p->block);
  free(p->shift);
  free(p->scale);
  free(p->init);
  free(p);
}

// frees a half-built policy; err was set by the caller
static dsoPolicy* fail(dsoPolicy* p) {
  dso_policy_free(p);
  return NULL;
}

// checks the settings that do not depend on the layout
static dsoStatus check_settings(const dsoPolicySettings* s, int nin, int nu, dsoError* err) {
  if (nin < 1 || nu < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "policy: input size nin = %d and output size nu = %d must both be >= 1", nin,
                     nu);
  }
  if (s->kind < DSO_POLICY_LINEAR || s->kind > DSO_POLICY_RNN) {
    return dso_error(err, DSO_ERR_INPUT, "policy: unknown kind %d; valid: linear, mlp, rnn",
                     (int)s->kind);
  }
  if (s->kind == DSO_POLICY_MLP) {
    if (s->nhidden < 1 || s->nhidden > DSO_POLICY_MAX_HIDDEN) {
      return dso_error(err, DSO_ERR_INPUT, "policy: nhidden = %d must be in [1, %d]", s->nhidden,
                       DSO_POLICY_MAX_HIDDEN);
    }
    for (int i = 0; i < s->nhidden; i++) {
      if (s->hidden[i] < 1) {
        return dso_error(err, DSO_ERR_INPUT, "policy: hidden[%d] = %d must be >= 1", i,
                         s->hidden[i]);
      }
    }
  }
  if (s->kind == DSO_POLICY_RNN && s->units < 1) {
    return dso_error(err, DSO_ERR_INPUT, "policy: units = %d must be >= 1", s->units);
  }
  if (!(s->init_scale_out >= 0) || !isfinite(s->init_scale_out)) {
    return dso_error(err, DSO_ERR_INPUT, "policy: init_scale_out = %g must be finite and >= 0",
                     s->init_scale_out);
  }
  const char* names[2] = {"input_shift", "input_scale"};
  const double* arr[2] = {s->input_shift, s->input_scale};
  int len[2] = {s->ninput_shift, s->ninput_scale};
  for (int a = 0; a < 2; a++) {
    if (!arr[a]) {
      continue;
    }
    if (len[a] != nin) {
      return dso_error(err, DSO_ERR_INPUT, "policy: %s has %d numbers, expected nin = %d",
                       names[a], len[a], nin);
    }
    for (int j = 0; j < nin; j++) {
      if (!isfinite(arr[a][j])) {
        return dso_error(err, DSO_ERR_INPUT, "policy: %s[%d] must be finite", names[a], j);
      }
    }
  }
  return DSO_OK;
}

// appends a block to p's table; returns 0 when θ_μ would exceed INT_MAX entries
static int add_block(dsoPolicy* p, const char* name, int rows, int cols, double std,
                     long long* np) {
  dsoPolicyBlock* b = &p->block[p->nblock++];
  snprintf(b->name, sizeof(b->name), "%s", name);
  b->rows = rows;
  b->cols = cols;
  b->off = (int)*np;
  b->std = std;
  *np += (long long)rows * (cols ? cols : 1);
  return *np <= INT_MAX;
}

dsoPolicy* dso_policy_create(const dsoPolicySettings* settings, int nin, int nu, dsoError* err) {
  dsoPolicySettings def;
  if (!settings) {
    dso_policy_settings_default(&def);
    settings = &def;
  }
  if (check_settings(settings, nin, nu, err)) {
    return NULL;
  }
  dsoPolicy* p = (dsoPolicy*)calloc(1, sizeof(dsoPolicy));
  if (!p) {
    dso_error(err, DSO_ERR_MEMORY, "policy: out of memory");
    return fail(p);
  }
  p->kind = settings->kind;
  p->nin = nin;
  p->nu = nu;
  p->nh = p->kind == DSO_POLICY_RNN ? settings->units : 0;
  p->nlayer = p->kind == DSO_POLICY_LINEAR ? 1 : p->kind == DSO_POLICY_MLP ? settings->nhidden + 1
                                                                          : 0;
  int maxblock = p->kind == DSO_POLICY_RNN ? RNN_NBLOCK : 2 * p->nlayer;
  p->width = (int*)calloc((size_t)p->nlayer + 1, sizeof(int));
  p->block = (dsoPolicyBlock*)calloc((size_t)maxblock, sizeof(dsoPolicyBlock));
  p->shift = (double*)calloc((size_t)nin, sizeof(double));
  p->scale = (double*)calloc((size_t)nin, sizeof(double));
  if (!p->width || !p->block || !p->shift || !p->scale) {
    dso_error(err, DSO_ERR_MEMORY, "policy: out of memory");
    return fail(p);
  }

  // layout of θ_μ
  long long np = 0;
  int ok = 1;
  p->maxwidth = nin > nu ? nin : nu;
  if (p->kind == DSO_POLICY_RNN) {
    int nh = p->nh;
    double sd_in = 1.0 / sqrt((double)nin + (double)nh), sd_out = settings->init_scale_out * sd_in;
    ok &= add_block(p, "WI", nh, nin, sd_in, &np);
    ok &= add_block(p, "WR", nh, nh, sd_in, &np);
    ok &= add_block(p, "WO", nu, nh, sd_out, &np);
    ok &= add_block(p, "WD", nu, nin, sd_out, &np);
    ok &= add_block(p, "bh", nh, 0, 0, &np);
    ok &= add_block(p, "ba", nu, 0, 0, &np);
    p->maxwidth = nh > p->maxwidth ? nh : p->maxwidth;
  } else {
    p->width[0] = nin;
    p->width[p->nlayer] = nu;
    for (int l = 1; l < p->nlayer; l++) {
      p->width[l] = settings->hidden[l - 1];
      p->nact += p->width[l];
      p->maxwidth = p->width[l] > p->maxwidth ? p->width[l] : p->maxwidth;
    }
    for (int l = 0; l < p->nlayer; l++) {
      char wname[8], bname[8];
      double sd = 0;
      if (p->kind == DSO_POLICY_LINEAR) {
        snprintf(wname, sizeof(wname), "K");
        snprintf(bname, sizeof(bname), "k");
      } else {
        snprintf(wname, sizeof(wname), "W%d", l);
        snprintf(bname, sizeof(bname), "b%d", l);
        sd = (l == p->nlayer - 1 ? settings->init_scale_out : 1.0) / sqrt((double)p->width[l]);
      }
      ok &= add_block(p, wname, p->width[l + 1], p->width[l], sd, &np);
      ok &= add_block(p, bname, p->width[l + 1], 0, 0, &np);
    }
  }
  if (!ok) {
    dso_error(err, DSO_ERR_INPUT, "policy: %lld parameters, more than an int index allows", np);
    return fail(p);
  }
  p->np = (int)np;

  // normalization and initial values
  for (int j = 0; j < nin; j++) {
    p->shift[j] = settings->input_shift ? settings->input_shift[j] : 0.0;
    p->scale[j] = settings->input_scale ? settings->input_scale[j] : 1.0;
  }
  p->init = (double*)calloc((size_t)p->np, sizeof(double));
  if (!p->init) {
    dso_error(err, DSO_ERR_MEMORY, "policy: out of memory");
    return fail(p);
  }
  if (settings->init) {
    for (int i = 0; i < p->np; i++) {
      if (!isfinite(settings->init[i])) {
        dso_error(err, DSO_ERR_INPUT, "policy: init[%d] must be finite", i);
        return fail(p);
      }
      p->init[i] = settings->init[i];
    }
  } else {
    dsoInitRng rng = {settings->seed, 0, 0};
    for (int b = 0; b < p->nblock; b++) {
      const dsoPolicyBlock* blk = &p->block[b];
      int size = blk->rows * (blk->cols ? blk->cols : 1);
      for (int i = 0; i < size && blk->std > 0; i++) {
        p->init[blk->off + i] = blk->std * init_normal(&rng);
      }
    }
  }
  return p;
}

dsoPolicyKind dso_policy_kind(const dsoPolicy* p) { return p->kind; }
int dso_policy_nin(const dsoPolicy* p) { return p->nin; }
int dso_policy_nu(const dsoPolicy* p) { return p->nu; }
int dso_policy_nh(const dsoPolicy* p) { return p->nh; }
int dso_policy_np(const dsoPolicy* p) { return p->np; }

void dso_policy_init(double* theta, const dsoPolicy* p) {
  memcpy(theta, p->init, (size_t)p->np * sizeof(double));
}

int dso_policy_entries(dsoThetaEntry* out, int max, const dsoPolicy* p) {
  int n = 0;
  for (int b = 0; b < p->nblock && n < max; b++) {
    const dsoPolicyBlock* blk = &p->block[b];
    int cols = blk->cols ? blk->cols : 1;
    for (int i = 0; i < blk->rows * cols && n < max; i++, n++) {
      dsoThetaEntry* e = &out[n];
      memset(e, 0, sizeof(*e));
      if (blk->cols) {
        snprintf(e->name, sizeof(e->name), "policy.%s[%d,%d]", blk->name, i / cols, i % cols);
      } else {
        snprintf(e->name, sizeof(e->name), "policy.%s[%d]", blk->name, i);
      }
      e->block = DSO_BLOCK_POLICY;
      e->transform = DSO_TRANSFORM_IDENTITY;
      e->init = p->init[n];
      e->lower = -INFINITY;
      e->upper = INFINITY;
      e->bind.kind = DSO_BIND_NONE;
      e->bind.id = -1;
      e->bind.target = -1;
    }
  }
  return p->np;
}

//---------------------------------- work ---------------------------------------------------------

dsoPolicyWork* dso_policy_work_create(const dsoPolicy* p, dsoError* err) {
  dsoPolicyWork* w = (dsoPolicyWork*)calloc(1, sizeof(dsoPolicyWork));
  size_t n = 2 * (size_t)p->nin + (size_t)p->nact + 2 * (size_t)p->nh + 2 * (size_t)p->maxwidth +
             (size_t)p->nu;
  double* mem = w ? (double*)calloc(n, sizeof(double)) : NULL;
  if (!mem) {
    free(w);
    dso_error(err, DSO_ERR_MEMORY, "policy: out of memory for work (%zu doubles)", n);
    return NULL;
  }
  w->p = p;
  w->mem = mem;
  w->sn = mem;
  w->gsn = w->sn + p->nin;
  w->act = w->gsn + p->nin;
  w->hn = w->act + p->nact;
  w->d0 = w->hn + p->nh;
  w->d1 = w->d0 + p->maxwidth;
  w->seed = w->d1 + p->maxwidth;  // (nu + nh)
  return w;
}

void dso_policy_work_free(dsoPolicyWork* w) {
  if (!w) {
    return;
  }
  free(w->mem);
  free(w);
}

//---------------------------------- evaluation ---------------------------------------------------

// y = b + W x with W (m x n) row-major
static void affine(double* y, const double* W, const double* b, const double* x, int m, int n) {
  memcpy(y, b, (size_t)m * sizeof(double));
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0, W, n, x, 1, 1.0, y, 1);
}

// y += Wᵀ d with W (m x n) row-major
static void affine_t(double* y, const double* W, const double* d, int m, int n) {
  cblas_dgemv(CblasRowMajor, CblasTrans, m, n, 1.0, W, n, d, 1, 1.0, y, 1);
}

// G += d xᵀ (G: m x n) and g += d (m) for the gradient of an affine map
static void affine_grad(double* G, double* g, const double* d, const double* x, int m, int n) {
  cblas_dger(CblasRowMajor, m, n, 1.0, d, 1, x, 1, G, n);
  cblas_daxpy(m, 1.0, d, 1, g, 1);
}

// forward pass into w: s_n, the hidden activations (mlp) and h' (rnn); a (nu) when not NULL
static void forward(double* a, const dsoPolicy* p, dsoPolicyWork* w, const double* s,
                    const double* h, const double* th) {
  for (int j = 0; j < p->nin; j++) {
    w->sn[j] = (s[j] - p->shift[j]) * p->scale[j];
  }
  const dsoPolicyBlock* B = p->block;
  if (p->kind == DSO_POLICY_RNN) {
    int nh = p->nh, nin = p->nin;
    affine(w->hn, th + B[RNN_WI].off, th + B[RNN_BH].off, w->sn, nh, nin);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, nh, nh, 1.0, th + B[RNN_WR].off, nh, h, 1, 1.0,
                w->hn, 1);
    for (int i = 0; i < nh; i++) {
      w->hn[i] = tanh(w->hn[i]);
    }
    if (a) {
      affine(a, th + B[RNN_WD].off, th + B[RNN_BA].off, w->sn, p->nu, nin);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, p->nu, nh, 1.0, th + B[RNN_WO].off, nh, h, 1, 1.0,
                  a, 1);
    }
    return;
  }
  const double* x = w->sn;
  double* y = w->act;
  for (int l = 0; l < p->nlayer - 1; l++) {
    int m = p->width[l + 1];
    affine(y, th + B[2 * l].off, th + B[2 * l + 1].off, x, m, p->width[l]);
    for (int i = 0; i < m; i++) {
      y[i] = tanh(y[i]);
    }
    x = y;
    y += m;
  }
  if (a) {
    int l = p->nlayer - 1;
    affine(a, th + B[2 * l].off, th + B[2 * l + 1].off, x, p->nu, p->width[l]);
  }
}

// backward pass of a linear or mlp policy after forward(): g_s += (da/ds)ᵀ lam, g_th += ...
static void layered_backward(double* g_s, double* g_th, const dsoPolicy* p, dsoPolicyWork* w,
                             const double* th, const double* lam) {
  const dsoPolicyBlock* B = p->block;
  const double* delta = lam;  // gradient with respect to the output of layer l
  const double* xl = w->act + p->nact;  // one past the input of the last layer
  for (int l = p->nlayer - 1; l >= 0; l--) {
    int m = p->width[l + 1], n = p->width[l];
    xl = l ? xl - n : w->sn;  // input x_l of layer l
    if (g_th) {
      affine_grad(g_th + B[2 * l].off, g_th + B[2 * l + 1].off, delta, xl, m, n);
    }
    if (l == 0 && !g_s) {
      return;
    }
    double* dx = delta == w->d0 ? w->d1 : w->d0;
    memset(dx, 0, (size_t)n * sizeof(double));
    affine_t(dx, th + B[2 * l].off, delta, m, n);
    if (l > 0) {
      for (int i = 0; i < n; i++) {
        dx[i] *= 1.0 - xl[i] * xl[i];  // through the tanh that produced x_l
      }
    }
    delta = dx;
  }
  for (int j = 0; j < p->nin; j++) {
    g_s[j] += p->scale[j] * delta[j];
  }
}

// backward pass of an rnn policy after forward()
static void rnn_backward(double* g_s, double* g_h, double* g_th, const dsoPolicy* p,
                         dsoPolicyWork* w, const double* h, const double* th,
                         const double* lam_a, const double* lam_h) {
  const dsoPolicyBlock* B = p->block;
  int nin = p->nin, nu = p->nu, nh = p->nh;
  if (g_s) {
    memset(w->gsn, 0, (size_t)nin * sizeof(double));
  }
  if (lam_a) {
    if (g_th) {
      affine_grad(g_th + B[RNN_WD].off, g_th + B[RNN_BA].off, lam_a, w->sn,
                  nu, nin);
      cblas_dger(CblasRowMajor, nu, nh, 1.0, lam_a, 1, h, 1, g_th + B[RNN_WO].off, nh);
    }
    if (g_s) affine_t(w->gsn, th + B[RNN_WD].off, lam_a, nu, nin);
    if (g_h) affine_t(g_h, th + B[RNN_WO].off, lam_a, nu, nh);
  }
  if (lam_h) {
    double* delta = w->d0;  // gradient with respect to the pre-activation of h'
    for (int i = 0; i < nh; i++) {
      delta[i] = lam_h[i] * (1.0 - w->hn[i] * w->hn[i]);
    }
    if (g_th) {
      affine_grad(g_th + B[RNN_WI].off, g_th + B[RNN_BH].off, delta, w->sn, nh, nin);
      cblas_dger(CblasRowMajor, nh, nh, 1.0, delta, 1, h, 1, g_th + B[RNN_WR].off, nh);
    }
    if (g_s) affine_t(w->gsn, th + B[RNN_WI].off, delta, nh, nin);
    if (g_h) affine_t(g_h, th + B[RNN_WR].off, delta, nh, nh);
  }
  if (g_s) {
    for (int j = 0; j < nin; j++) {
      g_s[j] += p->scale[j] * w->gsn[j];
    }
  }
}

static void backward(double* g_s, double* g_h, double* g_th, const dsoPolicy* p,
                     dsoPolicyWork* w, const double* h, const double* th, const double* lam_a,
                     const double* lam_h) {
  if (p->kind == DSO_POLICY_RNN) {
    rnn_backward(g_s, g_h, g_th, p, w, h, th, lam_a, lam_h);
  } else if (lam_a) {
    layered_backward(g_s, g_th, p, w, th, lam_a);
  }
}

void dso_policy_forward(double* a, double* hnext, const dsoPolicy* p, dsoPolicyWork* w,
                        const double* s, const double* h, const double* theta) {
  forward(a, p, w, s, h, theta);
  if (hnext && p->nh) {
    memcpy(hnext, w->hn, (size_t)p->nh * sizeof(double));
  }
}

void dso_policy_vjp(double* g_s, double* g_h, double* g_theta, const dsoPolicy* p,
                    dsoPolicyWork* w, const double* s, const double* h, const double* theta,
                    const double* lam_a, const double* lam_h) {
  forward(NULL, p, w, s, h, theta);
  backward(g_s, p->nh ? g_h : NULL, g_theta, p, w, h, theta, lam_a, p->nh ? lam_h : NULL);
}

void dso_policy_vjp_after_forward(double* g_s, double* g_h, double* g_theta, const dsoPolicy* p,
                                  dsoPolicyWork* w, const double* h, const double* theta,
                                  const double* lam_a, const double* lam_h) {
  backward(g_s, p->nh ? g_h : NULL, g_theta, p, w, h, theta, lam_a, p->nh ? lam_h : NULL);
}

// row i of an (rows x cols) matrix, or NULL
static double* row(double* M, int i, int cols) { return M ? M + (size_t)i * cols : NULL; }

void dso_policy_jacobian(double* da_ds, double* da_dh, double* da_dtheta, double* dh_ds,
                         double* dh_dh, double* dh_dtheta, const dsoPolicy* p, dsoPolicyWork* w,
                         const double* s, const double* h, const double* theta) {
  int nin = p->nin, nu = p->nu, nh = p->nh, np = p->np;
  if (!nh) {
    da_dh = dh_ds = dh_dh = dh_dtheta = NULL;
  }
  double* out[6] = {da_ds, da_dh, da_dtheta, dh_ds, dh_dh, dh_dtheta};
  size_t size[6] = {(size_t)nu * nin, (size_t)nu * nh, (size_t)nu * np,
                    (size_t)nh * nin, (size_t)nh * nh, (size_t)nh * np};
  for (int k = 0; k < 6; k++) {
    if (out[k]) memset(out[k], 0, size[k] * sizeof(double));
  }
  forward(NULL, p, w, s, h, theta);
  // row r of every Jacobian is the vector-Jacobian product with the unit seed e_r
  double* seed = w->seed;
  memset(seed, 0, (size_t)(nu + nh) * sizeof(double));
  if (da_ds || da_dh || da_dtheta) {
    for (int i = 0; i < nu; i++) {
      seed[i] = 1.0;
      backward(row(da_ds, i, nin), row(da_dh, i, nh), row(da_dtheta, i, np), p, w, h, theta, seed,
               NULL);
      seed[i] = 0.0;
    }
  }
  if (dh_ds || dh_dh || dh_dtheta) {
    for (int i = 0; i < nh; i++) {
      seed[nu + i] = 1.0;
      backward(row(dh_ds, i, nin), row(dh_dh, i, nh), row(dh_dtheta, i, np), p, w, h, theta,
               NULL, seed + nu);
      seed[nu + i] = 0.0;
    }
  }
}
