// Correctors of the learned predictor-corrector: constant gain, and gain plus an MLP.
#include "estim/corrector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

void dso_corrector_settings_default(dsoCorrectorSettings* s) {
  memset(s, 0, sizeof(*s));
  s->kind = DSO_CORRECTOR_GAIN;
  s->nhidden = 1;
  s->hidden[0] = 16;
  s->seed = 1;
  s->init_scale_out = 0.01;
}

const char* dso_corrector_kind_name(dsoCorrectorKind kind) {
  return kind == DSO_CORRECTOR_GAIN ? "gain" : kind == DSO_CORRECTOR_MLP ? "mlp" : "unknown";
}

void dso_corrector_free(dsoCorrector* c) {
  if (!c) {
    return;
  }
  dso_policy_work_free(c->w);
  dso_policy_free(c->net);
  free(c->in);
  free(c->out);
  free(c->Jin);
  free(c->Jth);
  free(c);
}

dsoCorrector* dso_corrector_create(const mjModel* m, const dsoCorrectorSettings* s,
                                   const double* x_shift, const double* x_scale,
                                   const double* sigma, dsoError* err) {
  dsoCorrectorSettings def;
  if (!s) {
    dso_corrector_settings_default(&def);
    s = &def;
  }
  if (!m || m->nsensordata < 1) {
    dso_error(err, DSO_ERR_INPUT, "corrector: %s", m ? "the model has no sensors" : "no model");
    return NULL;
  }
  if (s->kind != DSO_CORRECTOR_GAIN && s->kind != DSO_CORRECTOR_MLP) {
    dso_error(err, DSO_ERR_INPUT, "corrector: unknown kind %d", (int)s->kind);
    return NULL;
  }
  if (s->kind == DSO_CORRECTOR_MLP && m->nq != m->nv) {
    dso_error(err, DSO_ERR_INPUT, "corrector: the mlp corrector reads the predicted state and "
              "needs nq == nv (hinge and slide joints); the model has nq %d, nv %d (use the gain "
              "corrector)", m->nq, m->nv);
    return NULL;
  }
  dsoCorrector* c = (dsoCorrector*)calloc(1, sizeof(dsoCorrector));
  if (!c) {
    dso_error(err, DSO_ERR_MEMORY, "corrector: out of memory");
    return NULL;
  }
  c->kind = s->kind;
  c->nx = dso_mj_state_size(m);
  c->ndx = dso_mj_tangent_size(m);
  c->ns = m->nsensordata;
  c->nK = c->ndx * c->ns;
  c->np = c->nK;
  if (s->kind == DSO_CORRECTOR_GAIN) {
    return c;
  }
  int nin = c->nx + c->ns;
  double* shift = (double*)calloc((size_t)nin, sizeof(double));
  double* scale = (double*)calloc((size_t)nin, sizeof(double));
  c->in = (double*)calloc((size_t)nin, sizeof(double));
  c->out = (double*)calloc((size_t)c->nK, sizeof(double));
  c->Jin = (double*)calloc((size_t)c->nK * nin, sizeof(double));
  if (!shift || !scale || !c->in || !c->out || !c->Jin) {
    free(shift);
    free(scale);
    dso_corrector_free(c);
    dso_error(err, DSO_ERR_MEMORY, "corrector: out of memory");
    return NULL;
  }
  for (int i = 0; i < nin; i++) {
    double sc = i < c->nx ? (x_scale ? x_scale[i] : 1.0) : (sigma ? sigma[i - c->nx] : 1.0);
    if (!(sc > 0) || !isfinite(sc)) {
      dso_error(err, DSO_ERR_INPUT, "corrector: %s[%d]=%g must be finite and > 0",
                i < c->nx ? "x_scale" : "sigma", i < c->nx ? i : i - c->nx, sc);
      free(shift);
      free(scale);
      dso_corrector_free(c);
      return NULL;
    }
    shift[i] = i < c->nx && x_shift ? x_shift[i] : 0.0;
    scale[i] = 1.0 / sc;
  }
  dsoPolicySettings ps;
  dso_policy_settings_default(&ps);
  ps.kind = DSO_POLICY_MLP;
  ps.nhidden = s->nhidden;
  memcpy(ps.hidden, s->hidden, sizeof(ps.hidden));
  ps.seed = s->seed;
  ps.init_scale_out = s->init_scale_out;
  ps.ninput_shift = ps.ninput_scale = nin;
  ps.input_shift = shift;
  ps.input_scale = scale;
  c->net = dso_policy_create(&ps, nin, c->nK, err);
  free(shift);
  free(scale);
  if (!c->net || !(c->w = dso_policy_work_create(c->net, err))) {
    dso_error_prefix(err, "corrector: ");
    dso_corrector_free(c);
    return NULL;
  }
  c->np += dso_policy_np(c->net);
  c->Jth = (double*)calloc((size_t)c->nK * (c->np - c->nK), sizeof(double));
  if (!c->Jth) {
    dso_corrector_free(c);
    dso_error(err, DSO_ERR_MEMORY, "corrector: out of memory");
    return NULL;
  }
  return c;
}

int dso_corrector_entries(dsoThetaEntry* out, int max, const dsoCorrector* c) {
  int k = 0;
  for (int i = 0; i < c->ndx; i++) {
    for (int j = 0; j < c->ns; j++, k++) {
      if (k < max) {
        dsoThetaEntry* e = &out[k];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, DSO_NAME_LEN, "corrector.K[%d,%d]", i, j);
        e->block = DSO_BLOCK_CORRECTOR;
        e->transform = DSO_TRANSFORM_IDENTITY;
        e->lower = -INFINITY;
        e->upper = INFINITY;
      }
    }
  }
  if (c->net && max > k) {
    // the network's entries, renamed from policy.* to corrector.*
    int np = dso_policy_np(c->net);
    int got = dso_policy_entries(out + k, max - k, c->net);
    for (int i = 0; i < got && i < np; i++) {
      dsoThetaEntry* e = &out[k + i];
      char name[DSO_NAME_LEN];
      snprintf(name, sizeof(name), "corrector.%s", e->name + strlen("policy."));
      memcpy(e->name, name, sizeof(name));
      e->block = DSO_BLOCK_CORRECTOR;
    }
  }
  return c->np;
}

// network input (x, e), in the corrector's work
static void fill_input(dsoCorrector* c, const double* x, const double* e) {
  memcpy(c->in, x, sizeof(double) * (size_t)c->nx);
  memcpy(c->in + c->nx, e, sizeof(double) * (size_t)c->ns);
}

void dso_corrector_apply(double* dx, dsoCorrector* c, const double* x, const double* e,
                         const double* th) {
  int n = c->ndx, ns = c->ns;
  if (c->net) {
    fill_input(c, x, e);
    dso_policy_forward(c->out, NULL, c->net, c->w, c->in, NULL, th + c->nK);
  }
  for (int a = 0; a < n; a++) {
    double s = 0;
    for (int i = 0; i < ns; i++) {
      s += (th[a * ns + i] + (c->net ? c->out[a * ns + i] : 0.0)) * e[i];
    }
    dx[a] = s;
  }
}

void dso_corrector_jacobian(double* Gx, double* Ge, double* Gth, dsoCorrector* c,
                            const double* x, const double* e, const double* th) {
  int n = c->ndx, ns = c->ns, np = c->np, nK = c->nK, nin = c->nx + c->ns, npn = np - nK;
  if (Gx) {
    memset(Gx, 0, sizeof(double) * (size_t)n * n);
  }
  if (Gth) {
    memset(Gth, 0, sizeof(double) * (size_t)n * np);
  }
  if (c->net) {
    fill_input(c, x, e);
    dso_policy_forward(c->out, NULL, c->net, c->w, c->in, NULL, th + nK);
    dso_policy_jacobian(c->Jin, NULL, Gth ? c->Jth : NULL, NULL, NULL, NULL, c->net, c->w, c->in,
                        NULL, th + nK);
  }
  // g_a = Σ_i (K_ai + N_ai) e_i
  for (int a = 0; a < n; a++) {
    for (int j = 0; j < ns; j++) {
      double ge = th[a * ns + j] + (c->net ? c->out[a * ns + j] : 0.0);
      for (int i = 0; c->net && i < ns; i++) {
        ge += e[i] * c->Jin[(size_t)(a * ns + i) * nin + c->nx + j];
      }
      if (Ge) {
        Ge[a * ns + j] = ge;
      }
      if (Gth) {
        Gth[(size_t)a * np + a * ns + j] = e[j];
      }
    }
    for (int i = 0; c->net && i < ns; i++) {
      const double* jin = c->Jin + (size_t)(a * ns + i) * nin;
      const double* jth = c->Jth + (size_t)(a * ns + i) * npn;
      for (int b = 0; Gx && b < n; b++) {
        Gx[a * n + b] += e[i] * jin[b];  // nq == nv: x and its tangent agree
      }
      for (int q = 0; Gth && q < npn; q++) {
        Gth[(size_t)a * np + nK + q] += e[i] * jth[q];
      }
    }
  }
}
