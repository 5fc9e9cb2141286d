// Steady-state Kalman gain by doubling, and an extended Kalman filter over a dsoSim.
#include "estim/kalman.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

// doubling stops when the relative change of P falls below this, or after this many steps
#define DARE_TOL 1e-14
#define DARE_MAXITER 64

// largest absolute entry (does not overflow where a sum of squares would)
static double maxabs(const double* a, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    s = fabs(a[i]) > s ? fabs(a[i]) : s;
  }
  return s;
}

static void symmetrize(double* a, int n) {
  for (int i = 0; i < n; i++) {
    for (int j = i + 1; j < n; j++) {
      double v = 0.5 * (a[i * n + j] + a[j * n + i]);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
}

static int all_finite(const double* a, int n) {
  for (int i = 0; i < n; i++) {
    if (!isfinite(a[i])) {
      return 0;
    }
  }
  return 1;
}

dsoStatus dso_kalman_dare(double* P, int* iters, const double* A, const double* C, const double* Q,
                          const double* R, int n, int m, dsoError* err) {
  if (iters) {
    *iters = 0;
  }
  if (n < 1 || m < 1) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: sizes n=%d, m=%d must be >= 1", n, m);
  }
  if (!P || !A || !C || !Q || !R) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: NULL matrix argument");
  }
  if (!all_finite(A, n * n) || !all_finite(C, m * n) || !all_finite(Q, n * n) ||
      !all_finite(R, m * m)) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: A, C, Q and R must be finite");
  }
  size_t nn = (size_t)n * n;
  double* buf = (double*)calloc(8 * nn + 3 * (size_t)m * m + (size_t)m * n + 1, sizeof(double));
  int* piv = (int*)calloc((size_t)n + (size_t)m + 1, sizeof(int));
  if (!buf || !piv) {
    free(buf);
    free(piv);
    return dso_error(err, DSO_ERR_MEMORY, "kalman: out of memory");
  }
  double *Ak = buf, *G = Ak + nn, *H = G + nn, *W = H + nn, *X = W + nn;  // X: n x 2n
  double *T = X + 2 * nn, *Hn = T + nn, *Rc = Hn + nn, *RiC = Rc + (size_t)m * m;
  dsoStatus st = DSO_OK;
  // R = L Lᵀ; RiC = R⁻¹ C
  memcpy(Rc, R, sizeof(double) * (size_t)m * m);
  memcpy(RiC, C, sizeof(double) * (size_t)m * n);
  if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', m, n, Rc, m, RiC, n) != 0) {
    st = dso_error(err, DSO_ERR_INPUT, "kalman: R (%d x %d) is not symmetric positive definite",
                   m, m);
    goto done;
  }
  // the filtering equation is the control equation of (Aᵀ, Cᵀ): A0 = Aᵀ, G0 = Cᵀ R⁻¹ C, H0 = Q
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      Ak[i * n + j] = A[j * n + i];
    }
  }
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, 1.0, C, n, RiC, n, 0.0, G, n);
  symmetrize(G, n);
  memcpy(H, Q, sizeof(double) * nn);
  symmetrize(H, n);
  int k = 0, converged = 0;
  for (k = 1; k <= DARE_MAXITER; k++) {
    // W = I + G H;  W [X1 X2] = [Ak G]
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, G, n, H, n, 0.0, W, n);
    for (int i = 0; i < n; i++) {
      W[i * n + i] += 1.0;
      memcpy(X + (size_t)i * 2 * n, Ak + (size_t)i * n, sizeof(double) * (size_t)n);
      memcpy(X + (size_t)i * 2 * n + n, G + (size_t)i * n, sizeof(double) * (size_t)n);
    }
    if (LAPACKE_dgesv(LAPACK_ROW_MAJOR, n, 2 * n, W, n, piv, X, 2 * n) != 0) {
      st = dso_error(err, DSO_ERR_NUMERIC, "kalman: singular I + G H at doubling step %d", k);
      goto done;
    }
    double* X1 = X;      // rows of stride 2n
    double* X2 = X + n;
    // H' = H + Akᵀ H X1
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, Ak, n, H, n, 0.0, T, n);
    memcpy(Hn, H, sizeof(double) * nn);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, T, n, X1, 2 * n, 1.0, Hn,
                n);
    // G' = G + Ak X2 Akᵀ
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, Ak, n, X2, 2 * n, 0.0, T,
                n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, T, n, Ak, n, 1.0, G, n);
    // A' = Ak X1
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, Ak, n, X1, 2 * n, 0.0, T,
                n);
    memcpy(Ak, T, sizeof(double) * nn);
    symmetrize(G, n);
    symmetrize(Hn, n);
    if (!all_finite(Hn, (int)nn) || !all_finite(G, (int)nn) || !all_finite(Ak, (int)nn)) {
      st = dso_error(err, DSO_ERR_NUMERIC, "kalman: doubling diverged at step %d", k);
      goto done;
    }
    for (size_t i = 0; i < nn; i++) {
      T[i] = Hn[i] - H[i];
    }
    double change = maxabs(T, (int)nn), size = maxabs(Hn, (int)nn);
    memcpy(H, Hn, sizeof(double) * nn);
    if (change <= DARE_TOL * (size > 1e-300 ? size : 1.0)) {
      converged = 1;
      break;
    }
  }
  if (!converged) {
    st = dso_error(err, DSO_ERR_NUMERIC,
                   "kalman: Riccati doubling did not converge in %d steps (is (A, C) detectable?)",
                   DARE_MAXITER);
    goto done;
  }
  memcpy(P, H, sizeof(double) * nn);
  if (iters) {
    *iters = k;
  }
done:
  free(buf);
  free(piv);
  return st;
}

dsoStatus dso_kalman_gain(double* K, const double* P, const double* C, const double* R, int n,
                          int m, dsoError* err) {
  if (n < 1 || m < 1) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: sizes n=%d, m=%d must be >= 1", n, m);
  }
  if (!K || !P || !C || !R) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: NULL matrix argument");
  }
  double* S = (double*)calloc((size_t)m * m + 2 * (size_t)m * n + 1, sizeof(double));
  if (!S) {
    return dso_error(err, DSO_ERR_MEMORY, "kalman: out of memory");
  }
  double *CP = S + (size_t)m * m, *CPt = CP + (size_t)m * n;
  // CP = C P (m x n); S = CP Cᵀ + R; solve S X = CP, K = Xᵀ (P symmetric)
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, C, n, P, n, 0.0, CP, n);
  memcpy(S, R, sizeof(double) * (size_t)m * m);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, n, 1.0, CP, n, C, n, 1.0, S, m);
  symmetrize(S, m);
  memcpy(CPt, CP, sizeof(double) * (size_t)m * n);
  if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', m, n, S, m, CPt, n) != 0) {
    free(S);
    return dso_error(err, DSO_ERR_NUMERIC,
                     "kalman: innovation covariance C P Cᵀ + R is not positive definite");
  }
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < m; j++) {
      K[i * m + j] = CPt[j * n + i];
    }
  }
  free(S);
  return DSO_OK;
}

dsoStatus dso_kalman_steady(double* K, double* P, const double* A, const double* C,
                            const double* Q, const double* R, int n, int m, dsoError* err) {
  if (n < 1 || m < 1) {
    return dso_error(err, DSO_ERR_INPUT, "kalman: sizes n=%d, m=%d must be >= 1", n, m);
  }
  double* Pw = (double*)calloc((size_t)n * n, sizeof(double));
  if (!Pw) {
    return dso_error(err, DSO_ERR_MEMORY, "kalman: out of memory");
  }
  dsoStatus st = dso_kalman_dare(Pw, NULL, A, C, Q, R, n, m, err);
  if (st == DSO_OK) {
    st = dso_kalman_gain(K, Pw, C, R, n, m, err);
  }
  if (st == DSO_OK && P) {
    memcpy(P, Pw, sizeof(double) * (size_t)n * n);
  }
  free(Pw);
  return st;
}

// ---------------------------------------------------------------------------------------------
// extended Kalman filter

void dso_ekf_free(dsoEkf* ekf) {
  if (!ekf) {
    return;
  }
  dso_deriv_free(ekf->dv);
  dso_sim_free(ekf->sim);
  dso_theta_free(ekf->own_theta);
  free(ekf->x);
  free(ekf->P);
  free(ekf->ctrl_var);
  free(ekf->sensor_var);
  free(ekf->q_extra);
  free(ekf->A);
  free(ekf->B);
  free(ekf->H);
  free(ekf->S);
  free(ekf->K);
  free(ekf->T1);
  free(ekf->T2);
  free(ekf->e);
  free(ekf->yh);
  free(ekf->dx);
  free(ekf->idx);
  free(ekf);
}

dsoEkf* dso_ekf_create(const mjModel* base, const dsoTheta* theta, const double* u,
                       const double* ctrl_std, const double* sensor_std, dsoError* err) {
  if (!base) {
    dso_error(err, DSO_ERR_INPUT, "ekf: no model");
    return NULL;
  }
  if (theta && !u) {
    dso_error(err, DSO_ERR_INPUT, "ekf: a layout without values u");
    return NULL;
  }
  int nu = base->nu, ns = base->nsensordata;
  if (ns < 1) {
    dso_error(err, DSO_ERR_INPUT, "ekf: the model has no sensors");
    return NULL;
  }
  if (nu > 0 && !ctrl_std) {
    dso_error(err, DSO_ERR_INPUT, "ekf: ctrl_std (nu=%d) is NULL", nu);
    return NULL;
  }
  if (!sensor_std) {
    dso_error(err, DSO_ERR_INPUT, "ekf: sensor_std (nsensordata=%d) is NULL", ns);
    return NULL;
  }
  for (int i = 0; i < nu; i++) {
    if (!(ctrl_std[i] >= 0) || !isfinite(ctrl_std[i])) {
      dso_error(err, DSO_ERR_INPUT, "ekf: ctrl_std[%d]=%g must be finite and >= 0", i,
                ctrl_std[i]);
      return NULL;
    }
  }
  for (int i = 0; i < ns; i++) {
    if (!(sensor_std[i] > 0) || !isfinite(sensor_std[i])) {
      dso_error(err, DSO_ERR_INPUT, "ekf: sensor_std[%d]=%g must be finite and > 0", i,
                sensor_std[i]);
      return NULL;
    }
  }
  dsoEkf* ekf = (dsoEkf*)calloc(1, sizeof(dsoEkf));
  if (!ekf) {
    dso_error(err, DSO_ERR_MEMORY, "ekf: out of memory");
    return NULL;
  }
  ekf->nx = dso_mj_state_size(base);
  ekf->ndx = dso_mj_tangent_size(base);
  ekf->nu = nu;
  ekf->ns = ns;
  if (!theta) {
    ekf->own_theta = dso_theta_create(NULL, 0, err);
    if (!ekf->own_theta) {
      dso_ekf_free(ekf);
      return NULL;
    }
    theta = ekf->own_theta;
  }
  ekf->theta = theta;
  double zero = 0;
  const double* uu = u ? u : &zero;
  ekf->sim = dso_sim_create(base, err);
  if (!ekf->sim || dso_sim_write(ekf->sim, theta, uu, err) != DSO_OK) {
    dso_ekf_free(ekf);
    return NULL;
  }
  ekf->dv = dso_deriv_create(base, theta, NULL, err);
  if (!ekf->dv || dso_deriv_set_theta(ekf->dv, theta, uu, err) != DSO_OK) {
    dso_ekf_free(ekf);
    return NULL;
  }
  size_t nx = (size_t)ekf->nx, ndx = (size_t)ekf->ndx, snu = (size_t)nu, sns = (size_t)ns;
  ekf->x = (double*)calloc(nx + 1, sizeof(double));
  ekf->P = (double*)calloc(ndx * ndx + 1, sizeof(double));
  ekf->ctrl_var = (double*)calloc(snu + 1, sizeof(double));
  ekf->sensor_var = (double*)calloc(sns + 1, sizeof(double));
  ekf->q_extra = (double*)calloc(ndx + 1, sizeof(double));
  ekf->A = (double*)calloc(ndx * ndx + 1, sizeof(double));
  ekf->B = (double*)calloc(ndx * snu + 1, sizeof(double));
  ekf->H = (double*)calloc(sns * ndx + 1, sizeof(double));
  ekf->S = (double*)calloc(sns * sns + 1, sizeof(double));
  ekf->K = (double*)calloc(ndx * sns + 1, sizeof(double));
  ekf->T1 = (double*)calloc(ndx * (ndx > sns ? ndx : sns) + 1, sizeof(double));
  ekf->T2 = (double*)calloc(ndx * (ndx > sns ? ndx : sns) + 1, sizeof(double));
  ekf->e = (double*)calloc(sns + 1, sizeof(double));
  ekf->yh = (double*)calloc(sns + 1, sizeof(double));
  ekf->dx = (double*)calloc(ndx + 1, sizeof(double));
  ekf->idx = (int*)calloc(sns + 1, sizeof(int));
  if (!ekf->x || !ekf->P || !ekf->ctrl_var || !ekf->sensor_var || !ekf->q_extra || !ekf->A ||
      !ekf->B || !ekf->H || !ekf->S || !ekf->K || !ekf->T1 || !ekf->T2 || !ekf->e || !ekf->yh ||
      !ekf->dx || !ekf->idx) {
    dso_ekf_free(ekf);
    dso_error(err, DSO_ERR_MEMORY, "ekf: out of memory");
    return NULL;
  }
  for (int i = 0; i < nu; i++) {
    ekf->ctrl_var[i] = ctrl_std[i] * ctrl_std[i];
  }
  for (int i = 0; i < ns; i++) {
    ekf->sensor_var[i] = sensor_std[i] * sensor_std[i];
  }
  dso_sim_reset(ekf->sim);
  dso_mj_state_get(ekf->x, dso_sim_model(ekf->sim), dso_sim_data(ekf->sim));
  return ekf;
}

void dso_ekf_reset(dsoEkf* ekf, const double* x0, const double* P0) {
  memcpy(ekf->x, x0, sizeof(double) * (size_t)ekf->nx);
  size_t nn = (size_t)ekf->ndx * ekf->ndx;
  if (P0) {
    memcpy(ekf->P, P0, sizeof(double) * nn);
  } else {
    memset(ekf->P, 0, sizeof(double) * nn);
  }
}

static void forward_fn(void* arg) {
  dsoSim* sim = (dsoSim*)arg;
  mj_forward(dso_sim_model(sim), dso_sim_data(sim));
}

dsoStatus dso_ekf_step(dsoEkf* ekf, const double* ctrl, const double* y, const int* mask,
                       double* innov, dsoError* err) {
  dsoSim* sim = ekf->sim;
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  int n = ekf->ndx, nu = ekf->nu, ns = ekf->ns;
  dsoStatus st;
  // predict: A, B at (x, ctrl), then the step
  dso_mj_state_set(d, m, ekf->x);
  if (nu > 0) {
    mju_copy(d->ctrl, ctrl, nu);
  }
  mju_copy(d->qfrc_applied, dso_sim_qfrc(sim), m->nv);
  if ((st = dso_deriv_step(ekf->dv, sim, ekf->A, ekf->B, NULL, NULL, err)) != DSO_OK) {
    return st;
  }
  if ((st = dso_sim_step(sim, err)) != DSO_OK) {
    return st;
  }
  dso_mj_state_get(ekf->x, m, d);
  // P = A P Aᵀ + B diag(var) Bᵀ + diag(q_extra)
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, ekf->A, n, ekf->P, n, 0.0,
              ekf->T1, n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, ekf->T1, n, ekf->A, n, 0.0,
              ekf->P, n);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < nu; k++) {
        s += ekf->B[i * nu + k] * ekf->ctrl_var[k] * ekf->B[j * nu + k];
      }
      ekf->P[i * n + j] += s;
    }
    ekf->P[i * n + i] += ekf->q_extra[i];
  }
  // measure the prediction and its Jacobian
  if ((st = dso_mj_trap(forward_fn, sim, err)) != DSO_OK) {
    return st;
  }
  dso_sim_measure(sim, ekf->yh);
  if ((st = dso_deriv_sensors(ekf->dv, sim, ekf->H, NULL, NULL, err)) != DSO_OK) {
    return st;
  }
  const double* gain = dso_sim_sensor_gain(sim);
  int mu = 0;
  for (int i = 0; i < ns; i++) {
    double e = (!mask || mask[i]) ? y[i] - ekf->yh[i] : 0.0;
    if (innov) {
      innov[i] = e;
    }
    if (!mask || mask[i]) {
      ekf->idx[mu] = i;
      ekf->e[mu] = e;
      // rows of the used channels, scaled by the sensor gain, packed to the top of H
      for (int j = 0; j < n; j++) {
        ekf->H[mu * n + j] = gain[i] * ekf->H[i * n + j];
      }
      mu++;
    }
  }
  if (mu == 0) {
    symmetrize(ekf->P, n);
    return DSO_OK;
  }
  // S = H P Hᵀ + R;  K = P Hᵀ S⁻¹ (solve S Kᵀ = H P)
  double *HP = ekf->T1, *Kt = ekf->T2;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mu, n, n, 1.0, ekf->H, n, ekf->P, n, 0.0,
              HP, n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mu, mu, n, 1.0, HP, n, ekf->H, n, 0.0,
              ekf->S, mu);
  for (int i = 0; i < mu; i++) {
    ekf->S[i * mu + i] += ekf->sensor_var[ekf->idx[i]];
  }
  memcpy(Kt, HP, sizeof(double) * (size_t)mu * n);
  if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', mu, n, ekf->S, mu, Kt, n) != 0) {
    return dso_error(err, DSO_ERR_NUMERIC, "ekf: innovation covariance not positive definite");
  }
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < mu; j++) {
      ekf->K[i * mu + j] = Kt[j * n + i];
      s += Kt[j * n + i] * ekf->e[j];
    }
    ekf->dx[i] = s;
  }
  dso_mj_state_integrate(ekf->x, m, ekf->dx, 1.0);
  // P = P - K H P  (HP still holds H P), then symmetrized
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, mu, -1.0, ekf->K, mu, HP, n, 1.0,
              ekf->P, n);
  symmetrize(ekf->P, n);
  if (!all_finite(ekf->x, ekf->nx) || !all_finite(ekf->P, n * n)) {
    return dso_error(err, DSO_ERR_NUMERIC, "ekf: estimate is not finite");
  }
  return DSO_OK;
}

void dso_episode_state(double* x, const mjModel* m, const dsoEpisode* ep, int t) {
  memcpy(x, ep->qpos + (size_t)t * m->nq, sizeof(double) * (size_t)m->nq);
  memcpy(x + m->nq, ep->qvel + (size_t)t * m->nv, sizeof(double) * (size_t)m->nv);
  for (int i = 0; i < m->na; i++) {
    x[m->nq + m->nv + i] = 0;
  }
}

int dso_episode_selected(const dsoEpisode* ep, dsoEpisodeSelect select) {
  return select == DSO_SELECT_ALL || (select == DSO_SELECT_TRAIN && !ep->validation) ||
         (select == DSO_SELECT_VALIDATION && ep->validation);
}

dsoStatus dso_ekf_state_rms(double* rms, long* count, dsoEkf* ekf, const dsoDataset* ds,
                            dsoEpisodeSelect select, dsoError* err) {
  if (rms) {
    *rms = NAN;
  }
  if (count) {
    *count = 0;
  }
  if (!ekf || !ds || !rms) {
    return dso_error(err, DSO_ERR_INPUT, "ekf: NULL filter, dataset or output");
  }
  const mjModel* m = dso_sim_model(ekf->sim);
  if (ds->nq != m->nq || ds->nv != m->nv || ds->nu != m->nu || ds->nsensordata != ekf->ns) {
    return dso_error(err, DSO_ERR_INPUT,
                     "ekf: dataset sizes (nq %d, nv %d, nu %d, ns %d) differ from the model's "
                     "(%d, %d, %d, %d)",
                     ds->nq, ds->nv, ds->nu, ds->nsensordata, m->nq, m->nv, m->nu, ekf->ns);
  }
  int nx = ekf->nx, n = ekf->ndx;
  double* xt = (double*)calloc((size_t)nx + (size_t)n + 1, sizeof(double));
  if (!xt) {
    return dso_error(err, DSO_ERR_MEMORY, "ekf: out of memory");
  }
  double* dx = xt + nx;
  double sum = 0;
  long steps = 0;
  dsoStatus st = DSO_OK;
  for (int k = 0; k < ds->nepisode && st == DSO_OK; k++) {
    const dsoEpisode* ep = &ds->episode[k];
    if (!dso_episode_selected(ep, select)) {
      continue;
    }
    dso_episode_state(xt, m, ep, 0);
    dso_sim_reset(ekf->sim);
    dso_ekf_reset(ekf, xt, NULL);
    for (int t = 0; t + 1 < ep->T; t++) {
      st = dso_ekf_step(ekf, ep->ctrl + (size_t)t * m->nu,
                        ep->sensordata + (size_t)(t + 1) * ekf->ns, ds->has[DSO_DATA_SENSOR],
                        NULL, err);
      if (st != DSO_OK) {
        dso_error_prefix(err, "episode %d, step %d: ", k, t);
        break;
      }
      dso_episode_state(xt, m, ep, t + 1);
      dso_mj_state_diff(dx, m, xt, ekf->x);
      for (int i = 0; i < n; i++) {
        sum += dx[i] * dx[i];
      }
      steps++;
    }
  }
  free(xt);
  if (st != DSO_OK) {
    return st;
  }
  if (steps == 0) {
    return dso_error(err, DSO_ERR_INPUT, "ekf: no selected episode has two samples");
  }
  *rms = sqrt(sum / ((double)steps * n));
  if (count) {
    *count = steps;
  }
  return DSO_OK;
}
