// Learning the estimator of eq. 99 with the physics: forward-mode Jacobian of the innovations and
// Levenberg-Marquardt.
#include "estim/estimfit.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

struct dsoEstimFit_ {
  const mjModel* base;     // borrowed
  const dsoDataset* ds;    // borrowed
  dsoTheta* theta;         // layout: the task's entries, then the corrector's (owned)
  int n;                   // theta->n
  int off_c;               // index of the first corrector entry
  int p;                   // fitted entries
  int* fitted;             // (p) their indices in θ
  int* col;                // (n) column of entry i in the Jacobian, -1 when held
  dsoEstimFitSettings set; // copy with the arrays owned, sensor_std resolved
  dsoCorrector* cor;       // owned
  dsoSim* sim;             // model the estimator predicts with (owned)
  dsoDeriv* dv;            // step derivatives (owned)
  int nx, ndx, nu, ns;
  long nres;               // innovation residuals over the training episodes
  int nprior;              // prior residuals
  double lambda;           // LM damping
  double* w;               // work (one block)
};

// ---------------------------------------------------------------------------------------------
// settings

dsoStatus dso_estimfit_settings_default(dsoEstimFitSettings* s, const mjModel* m, dsoError* err) {
  memset(s, 0, sizeof(*s));
  dso_corrector_settings_default(&s->corrector);
  s->max_iter = 30;
  s->lambda0 = 1e-3;
  s->tol = 1e-10;
  s->compare_ekf = 1;
  s->weight_std = 0.1;
  s->ns = m->nsensordata;
  s->nu = m->nu;
  s->sensor_std = (double*)malloc(sizeof(double) * (size_t)(s->ns + 1));
  s->process_std = (double*)malloc(sizeof(double) * (size_t)(s->nu + 1));
  if (!s->sensor_std || !s->process_std) {
    dso_estimfit_settings_free(s);
    return dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
  }
  for (int i = 0; i < s->ns; i++) {
    s->sensor_std[i] = NAN;
  }
  for (int i = 0; i < s->nu; i++) {
    s->process_std[i] = NAN;
  }
  return DSO_OK;
}

void dso_estimfit_settings_free(dsoEstimFitSettings* s) {
  if (s) {
    free(s->sensor_std);
    free(s->process_std);
    s->sensor_std = s->process_std = NULL;
  }
}

// ---------------------------------------------------------------------------------------------
// setup

// work arrays, carved from f->w
typedef struct {
  double *x, *xt, *yh, *sd, *e, *dx, *A, *F, *Hx, *Hf, *S, *St, *De, *Gx, *Ge, *Gth, *ut;
} Work;

static Work work_of(const dsoEstimFit* f) {
  Work w;
  int nx = f->nx, n = f->ndx, ns = f->ns, p = f->p, nf = f->dv->nphys, nc = f->cor->np;
  double* q = f->w;
  w.x = q, q += nx;
  w.xt = q, q += nx;
  w.yh = q, q += ns;
  w.sd = q, q += ns;
  w.e = q, q += ns;
  w.dx = q, q += n;
  w.A = q, q += n * n;
  w.F = q, q += n * nf;
  w.Hx = q, q += ns * n;
  w.Hf = q, q += ns * nf;
  w.S = q, q += n * p;
  w.St = q, q += n * p;
  w.De = q, q += ns * p;
  w.Gx = q, q += n * n;
  w.Ge = q, q += n * ns;
  w.Gth = q, q += n * nc;
  w.ut = q;
  return w;
}

static size_t work_size(int nx, int n, int ns, int p, int nf, int nc, int nth) {
  return (size_t)(2 * nx + 3 * ns + n + 2 * n * n + n * nf + ns * n + ns * nf + 2 * n * p +
                  ns * p + n * ns + n * nc + nth + 8);
}

void dso_estimfit_free(dsoEstimFit* f) {
  if (!f) {
    return;
  }
  dso_theta_free(f->theta);
  free(f->fitted);
  free(f->col);
  dso_estimfit_settings_free(&f->set);
  dso_corrector_free(f->cor);
  dso_sim_free(f->sim);
  dso_deriv_free(f->dv);
  free(f->w);
  free(f);
}

// 1 if entry i is a network entry of the corrector under the weight prior
static int is_weight(const dsoEstimFit* f, int i) {
  return f->set.weight_std > 0 && i >= f->off_c + f->cor->nK;
}

static int is_fittable(const dsoThetaEntry* e) {
  return e->block == DSO_BLOCK_PHYSICS || e->block == DSO_BLOCK_SENSOR ||
         e->block == DSO_BLOCK_CORRECTOR;
}

dsoEstimFit* dso_estimfit_create(const mjModel* base, const dsoTheta* task_theta,
                                 const dsoDataset* ds, const dsoEstimFitSettings* settings,
                                 dsoError* err) {
  if (!base || !task_theta || !ds) {
    dso_error(err, DSO_ERR_INPUT, "estimator: no model, theta or dataset");
    return NULL;
  }
  int ns = base->nsensordata, nu = base->nu;
  if (ns < 1) {
    dso_error(err, DSO_ERR_INPUT, "estimator: the model has no sensors");
    return NULL;
  }
  if (ds->nq != base->nq || ds->nv != base->nv || ds->nu != nu || ds->nsensordata != ns) {
    dso_error(err, DSO_ERR_INPUT, "estimator: dataset sizes (nq %d, nv %d, nu %d, ns %d) differ "
              "from the model's (%d, %d, %d, %d)", ds->nq, ds->nv, ds->nu, ds->nsensordata,
              base->nq, base->nv, nu, ns);
    return NULL;
  }
  if (settings && (settings->ns != ns || settings->nu != nu)) {
    dso_error(err, DSO_ERR_INPUT, "estimator: settings made for another model (ns %d, nu %d)",
              settings->ns, settings->nu);
    return NULL;
  }
  for (int i = 0; i < task_theta->n; i++) {
    const dsoThetaEntry* e = &task_theta->entry[i];
    if (!e->fixed && (!is_fittable(e) || e->block == DSO_BLOCK_CORRECTOR)) {
      dso_error(err, DSO_ERR_INPUT, "estimator: theta entry %s (%s) is not learned by the "
                "estimator (it fits physics, sensor gain/offset and its corrector); mark it "
                "\"fixed\": true", e->name, dso_block_name(e->block));
      return NULL;
    }
  }
  dsoEstimFit* f = (dsoEstimFit*)calloc(1, sizeof(dsoEstimFit));
  if (!f) {
    dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
    return NULL;
  }
  f->base = base;
  f->ds = ds;
  f->nx = dso_mj_state_size(base);
  f->ndx = dso_mj_tangent_size(base);
  f->nu = nu;
  f->ns = ns;
  dsoStatus st = dso_estimfit_settings_default(&f->set, base, err);
  if (st) {
    free(f);
    return NULL;
  }
  dsoCorrectorSettings cs = f->set.corrector;
  if (settings) {
    cs = settings->corrector;
    f->set.max_iter = settings->max_iter;
    f->set.lambda0 = settings->lambda0;
    f->set.tol = settings->tol;
    f->set.compare_ekf = settings->compare_ekf;
    f->set.weight_std = settings->weight_std;
    memcpy(f->set.sensor_std, settings->sensor_std, sizeof(double) * (size_t)ns);
    memcpy(f->set.process_std, settings->process_std, sizeof(double) * (size_t)nu);
  }
  f->set.corrector = cs;
  if (!(f->set.max_iter >= 0) || !(f->set.lambda0 > 0) || !(f->set.tol >= 0)) {
    dso_error(err, DSO_ERR_INPUT, "estimator: settings need max_iter >= 0, lambda0 > 0, tol >= 0");
    dso_estimfit_free(f);
    return NULL;
  }
  // σ of the innovations and the EKF's process noise, from θ where the settings leave them open
  const int* hs = ds->has[DSO_DATA_SENSOR];
  const int* hc = ds->has[DSO_DATA_CTRL];
  for (int i = 0; i < ns; i++) {
    for (int k = 0; isnan(f->set.sensor_std[i]) && k < task_theta->n; k++) {
      const dsoThetaEntry* e = &task_theta->entry[k];
      if (e->bind.kind == DSO_BIND_SENSOR_STD && e->bind.target == i) {
        f->set.sensor_std[i] = e->init;
      }
    }
    if (isnan(f->set.sensor_std[i])) {
      if (hs[i]) {
        char col[256];
        dso_dataset_column_name(col, sizeof(col), base, DSO_DATA_SENSOR, i);
        dso_error(err, DSO_ERR_INPUT, "estimator.sensor_std: no noise std for the recorded "
                  "column %s: give estimator.sensor_std or a theta entry sensor_noise.<sensor>.std",
                  col);
        dso_estimfit_free(f);
        return NULL;
      }
      f->set.sensor_std[i] = 1.0;  // not recorded: never scored
    }
  }
  for (int a = 0; a < nu; a++) {
    if (!isnan(f->set.process_std[a])) {
      continue;
    }
    f->set.process_std[a] = 0;
    for (int k = 0; !hc[a] && k < task_theta->n; k++) {
      const dsoThetaEntry* e = &task_theta->entry[k];
      if (e->bind.kind == DSO_BIND_ACTION_STD && e->bind.target == a) {
        f->set.process_std[a] = e->init;
      }
    }
  }
  // normalization of the network's state input: mean and std of the recorded training states
  int nx = f->nx;
  double* mom = (double*)calloc((size_t)2 * nx + 1, sizeof(double));
  double* xs = (double*)calloc((size_t)nx + 1, sizeof(double));
  long cnt = 0;
  for (int k = 0; mom && xs && k < ds->nepisode; k++) {
    const dsoEpisode* ep = &ds->episode[k];
    for (int t = 0; !ep->validation && t < ep->T; t++, cnt++) {
      dso_episode_state(xs, base, ep, t);
      for (int i = 0; i < nx; i++) {
        mom[i] += xs[i];
        mom[nx + i] += xs[i] * xs[i];
      }
    }
  }
  for (int i = 0; mom && i < nx; i++) {
    double mean = cnt ? mom[i] / cnt : 0, var = cnt ? mom[nx + i] / cnt - mean * mean : 0;
    mom[i] = mean;
    mom[nx + i] = var > 1e-12 ? sqrt(var) : 1.0;
  }
  if (cnt == 0) {
    dso_error(err, DSO_ERR_INPUT, "estimator: the data has no training episode (validation 0)");
  } else if (mom && xs) {
    f->cor = dso_corrector_create(base, &cs, mom, mom + nx, f->set.sensor_std, err);
  } else {
    dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
  }
  free(mom);
  free(xs);
  if (!f->cor) {
    dso_estimfit_free(f);
    return NULL;
  }
  // θ: the task's entries, then the corrector's
  int nt = task_theta->n, nc = f->cor->np;
  dsoThetaEntry* ent = (dsoThetaEntry*)calloc((size_t)(nt + nc) + 1, sizeof(dsoThetaEntry));
  if (!ent) {
    dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
    dso_estimfit_free(f);
    return NULL;
  }
  memcpy(ent, task_theta->entry, sizeof(dsoThetaEntry) * (size_t)nt);
  dso_corrector_entries(ent + nt, nc, f->cor);
  f->theta = dso_theta_create(ent, nt + nc, err);
  free(ent);
  if (!f->theta) {
    dso_estimfit_free(f);
    return NULL;
  }
  f->n = f->theta->n;
  f->off_c = f->theta->block_start[DSO_BLOCK_CORRECTOR];
  f->fitted = (int*)calloc((size_t)f->n + 1, sizeof(int));
  f->col = (int*)calloc((size_t)f->n + 1, sizeof(int));
  f->sim = dso_sim_create(base, err);
  f->dv = f->sim ? dso_deriv_create(base, f->theta, NULL, err) : NULL;
  if (!f->fitted || !f->col || !f->sim || !f->dv) {
    if (!f->fitted || !f->col) {
      dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
    }
    dso_estimfit_free(f);
    return NULL;
  }
  for (int i = 0; i < f->n; i++) {
    const dsoThetaEntry* e = &f->theta->entry[i];
    f->col[i] = -1;
    if (!e->fixed && is_fittable(e)) {
      f->col[i] = f->p;
      f->fitted[f->p++] = i;
      f->nprior += e->has_prior || is_weight(f, i);
    }
  }
  for (int k = 0; k < ds->nepisode; k++) {
    if (dso_episode_selected(&ds->episode[k], DSO_SELECT_TRAIN) && ds->episode[k].T > 1) {
      f->nres += (long)(ds->episode[k].T - 1) * ns;
    }
  }
  f->w = (double*)calloc(work_size(nx, f->ndx, ns, f->p, f->dv->nphys, nc, f->n), sizeof(double));
  if (!f->w) {
    dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
    dso_estimfit_free(f);
    return NULL;
  }
  f->lambda = f->set.lambda0;
  return f;
}

void dso_estimfit_init(const dsoEstimFit* f, double* u, const double* u0_task) {
  dso_theta_init(f->theta, u);
  for (int i = 0; u0_task && i < f->off_c; i++) {
    u[i] = u0_task[i];
  }
}

// ---------------------------------------------------------------------------------------------
// the estimator's pass over the data, with the forward-mode Jacobian

static void forward_fn(void* arg) {
  dsoSim* sim = (dsoSim*)arg;
  mj_forward(dso_sim_model(sim), dso_sim_data(sim));
}

// Runs the estimator at u over the selected episodes. Outputs, each may be NULL: r and jac
// (innovation rows, jac row-major with p columns), J = Σ (e/σ)², sq = Σ state error² over
// recorded tangent components, cnt the steps, nsq the scored components.
static dsoStatus pass(dsoEstimFit* f, const double* u, dsoEpisodeSelect select, double* r,
                      double* jac, double* J, double* sq, long* cnt, long* nsq, dsoError* err) {
  dsoSim* sim = f->sim;
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  const double* qfrc = dso_sim_qfrc(sim);
  const double* gain = dso_sim_sensor_gain(sim);
  const dsoDataset* ds = f->ds;
  int n = f->ndx, ns = f->ns, nu = f->nu, p = f->p, nf = f->dv->nphys, nc = f->cor->np;
  const int* has = ds->has[DSO_DATA_SENSOR];
  const double* sig = f->set.sensor_std;
  const double* th = u + f->off_c;
  Work w = work_of(f);
  dsoStatus st = dso_sim_write(sim, f->theta, u, err);
  if (!st && jac) {
    st = dso_deriv_set_theta(f->dv, f->theta, u, err);
  }
  if (st) {
    return st;
  }
  double Jsum = 0, sqsum = 0;
  long steps = 0, nscored = 0, ir = 0;
  for (int k = 0; k < ds->nepisode; k++) {
    const dsoEpisode* ep = &ds->episode[k];
    if (!dso_episode_selected(ep, select) || ep->T < 2) {
      continue;
    }
    dso_sim_reset(sim);
    dso_episode_state(w.x, m, ep, 0);
    if (jac) {
      memset(w.S, 0, sizeof(double) * (size_t)n * p);
    }
    for (int t = 0; t + 1 < ep->T; t++) {
      // predict x̃ = f(x̂, ā_t); A and F at (x̂, ā_t)
      dso_mj_state_set(d, m, w.x);
      if (nu > 0) {
        mju_copy(d->ctrl, ep->ctrl + (size_t)t * nu, nu);
      }
      mju_copy(d->qfrc_applied, qfrc, m->nv);
      if (jac) {
        st = dso_deriv_step(f->dv, sim, w.A, NULL, NULL, nf ? w.F : NULL, err);
      }
      if (!st) st = dso_sim_step(sim, err);
      if (!st) st = dso_mj_trap(forward_fn, sim, err);
      if (!st && jac) st = dso_deriv_sensors(f->dv, sim, w.Hx, NULL, nf ? w.Hf : NULL, err);
      if (st) {
        dso_error_prefix(err, "estimator: episode %d, step %d: ", k, t);
        return st;
      }
      dso_mj_state_get(w.x, m, d);
      dso_sim_measure(sim, w.yh);
      const double* y = ep->sensordata + (size_t)(t + 1) * ns;
      for (int i = 0; i < ns; i++) {
        w.e[i] = has[i] ? y[i] - w.yh[i] : 0.0;
        double ri = w.e[i] / sig[i];
        Jsum += ri * ri;
        if (r) {
          r[ir + i] = ri;
        }
      }
      if (jac) {
        // S̃ = A S + F (F: columns of the fitted physics entries)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, p, n, 1.0, w.A, n, w.S, p, 0.0,
                    w.St, p);
        for (int q = 0; q < nf; q++) {
          int c = f->col[f->dv->index[q]];
          for (int a = 0; c >= 0 && a < n; a++) {
            w.St[a * p + c] += w.F[a * nf + q];
          }
        }
        // ∂e/∂u = −gain ⊙ (Hx S̃ + Hf) − ∂(gain ⊙ sd + offset)/∂u_h, zero on unrecorded channels
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ns, p, n, -1.0, w.Hx, n, w.St, p,
                    0.0, w.De, p);
        for (int q = 0; q < nf; q++) {
          int c = f->col[f->dv->index[q]];
          for (int i = 0; c >= 0 && i < ns; i++) {
            w.De[i * p + c] -= w.Hf[i * nf + q];
          }
        }
        for (int i = 0; i < ns; i++) {
          double gi = gain[i];
          for (int c = 0; c < p; c++) {
            w.De[i * p + c] = has[i] ? gi * w.De[i * p + c] : 0.0;
          }
        }
        for (int c = 0; c < p; c++) {
          const dsoThetaEntry* e = &f->theta->entry[f->fitted[c]];
          int i = e->bind.target;
          if (e->block != DSO_BLOCK_SENSOR || !has[i]) {
            continue;
          }
          double dvdu = dso_theta_entry_jacobian(e, u[f->fitted[c]]);
          w.De[i * p + c] -= e->bind.kind == DSO_BIND_SENSOR_GAIN
                                 ? d->sensordata[i] * dvdu : dvdu;
        }
        for (int i = 0; i < ns; i++) {
          double* row = jac + (size_t)(ir + i) * p;
          for (int c = 0; c < p; c++) {
            row[c] = w.De[i * p + c] / sig[i];
          }
        }
        // S = S̃ + Gx S̃ + Ge ∂e/∂u + Gθ
        dso_corrector_jacobian(w.Gx, w.Ge, w.Gth, f->cor, w.x, w.e, th);
        memcpy(w.S, w.St, sizeof(double) * (size_t)n * p);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, p, n, 1.0, w.Gx, n, w.St, p,
                    1.0, w.S, p);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, p, ns, 1.0, w.Ge, ns, w.De, p,
                    1.0, w.S, p);
        for (int j = 0; j < nc; j++) {
          int c = f->col[f->off_c + j];
          for (int a = 0; c >= 0 && a < n; a++) {
            w.S[a * p + c] += w.Gth[a * nc + j];
          }
        }
      }
      ir += ns;
      // correct x̂ = x̃ ⊕ g(x̃, e)
      dso_corrector_apply(w.dx, f->cor, w.x, w.e, th);
      dso_mj_state_integrate(w.x, m, w.dx, 1.0);
      int ok = isfinite(Jsum);
      for (int a = 0; a < f->nx && ok; a++) {
        ok = isfinite(w.x[a]) && fabs(w.x[a]) < 1e10;
      }
      if (!ok) {
        return dso_error(err, DSO_ERR_NUMERIC, "estimator: episode %d, step %d: estimate "
                         "diverged", k, t);
      }
      if (sq) {
        dso_episode_state(w.xt, m, ep, t + 1);
        dso_mj_state_diff(w.dx, m, w.xt, w.x);
        for (int j = 0; j < m->nv; j++) {
          int jq = m->jnt_qposadr[m->dof_jntid[j]];
          if (ds->has[DSO_DATA_QPOS][jq]) {
            sqsum += w.dx[j] * w.dx[j];
            nscored++;
          }
          if (ds->has[DSO_DATA_QVEL][j]) {
            sqsum += w.dx[m->nv + j] * w.dx[m->nv + j];
            nscored++;
          }
        }
      }
      steps++;
    }
  }
  if (steps == 0) {
    return dso_error(err, DSO_ERR_INPUT, "estimator: no selected episode has two samples");
  }
  if (J) *J = Jsum;
  if (sq) *sq = sqsum;
  if (cnt) *cnt = steps;
  if (nsq) *nsq = nscored;
  return DSO_OK;
}

// prior residuals (v − mean)/std of the fitted entries with a prior, rows of jac after nres; *bad
// receives the first entry whose residual or Jacobian entry is not finite, or -1
static double prior_rows(const dsoEstimFit* f, double* r, double* jac, const double* u,
                         int* bad) {
  double sum = 0;
  *bad = -1;
  int k = 0;
  for (int c = 0; c < f->p; c++) {
    int i = f->fitted[c];
    const dsoThetaEntry* e = &f->theta->entry[i];
    if (!e->has_prior && !is_weight(f, i)) {
      continue;
    }
    double v = dso_theta_entry_natural(e, u[i]);
    double mean = e->has_prior ? e->prior_mean : 0.0;
    double sd = e->has_prior ? e->prior_std : f->set.weight_std;
    double ri = (v - mean) / sd;
    double ji = dso_theta_entry_jacobian(e, u[i]) / sd;
    if (*bad < 0 && (!isfinite(ri) || !isfinite(ri * ri) || !isfinite(ji))) {
      *bad = i;
    }
    sum += ri * ri;
    if (r) {
      r[f->nres + k] = ri;
    }
    if (jac) {
      double* row = jac + (size_t)(f->nres + k) * f->p;
      memset(row, 0, sizeof(double) * (size_t)f->p);
      row[c] = ji;
    }
    k++;
  }
  return 0.5 * sum;
}

dsoStatus dso_estimfit_residuals(dsoEstimFit* f, double* r, double* jac, const double* u,
                                 dsoEstimFitReport* rep, dsoError* err) {
  double J = 0;
  long cnt = 0;
  dsoStatus st = pass(f, u, DSO_SELECT_TRAIN, r, jac, &J, NULL, &cnt, NULL, err);
  if (st) {
    return st;
  }
  int bad = -1;
  double prior = prior_rows(f, r, jac, u, &bad);
  if (bad >= 0) {
    const dsoThetaEntry* e = &f->theta->entry[bad];
    return dso_error(err, DSO_ERR_NUMERIC, "estimator: theta entry %s: its prior residual (v - "
                     "mean) / std is not finite at v = %g (std %g: a std this small overflows)",
                     e->name, dso_theta_entry_natural(e, u[bad]),
                     e->has_prior ? e->prior_std : f->set.weight_std);
  }
  if (!isfinite(J) || !isfinite(0.5 * J + prior)) {
    return dso_error(err, DSO_ERR_NUMERIC, "estimator: the cost is not finite (estim %g, prior "
                     "%g)", 0.5 * J, prior);
  }
  if (rep) {
    memset(rep, 0, sizeof(*rep));
    rep->estim = 0.5 * J;
    rep->prior = prior;
    rep->cost = rep->estim + prior;
    rep->lambda = f->lambda;
    rep->steps = cnt;
    rep->nres = f->nres;
  }
  return DSO_OK;
}

dsoStatus dso_estimfit_evaluate(dsoEstimFit* f, const double* u, dsoEstimFitReport* rep,
                                dsoError* err) {
  return dso_estimfit_residuals(f, NULL, NULL, u, rep, err);
}

// holds u inside the bounds of entry i (natural values)
static void clamp_entry(const dsoThetaEntry* e, double* u) {
  if (e->transform == DSO_TRANSFORM_BOUNDED) {
    return;
  }
  double v = dso_theta_entry_natural(e, *u);
  double c = v < e->lower ? e->lower : v > e->upper ? e->upper : v;
  if (c != v && (e->transform == DSO_TRANSFORM_IDENTITY || c > 0)) {
    *u = e->transform == DSO_TRANSFORM_IDENTITY ? c : log(c);
  }
}

dsoStatus dso_estimfit_step(dsoEstimFit* f, double* u, dsoEstimFitReport* rep, int* done,
                            dsoError* err) {
  int p = f->p;
  long m = f->nres + f->nprior;
  size_t sm = (size_t)m, sp = (size_t)p;
  *done = 0;
  if (p == 0) {
    *done = 1;
    return dso_estimfit_evaluate(f, u, rep, err);
  }
  double* r = (double*)malloc(sizeof(double) * (sm * (sp + 1) + 2 * sp * sp + 2 * sp + 1));
  if (!r) {
    return dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory (%ld residuals x %d)", m, p);
  }
  double *jac = r + sm, *JtJ = jac + sm * sp, *M = JtJ + sp * sp, *g = M + sp * sp, *dl = g + sp;
  Work w = work_of(f);
  dsoEstimFitReport r0;
  dsoStatus st = dso_estimfit_residuals(f, r, jac, u, &r0, err);
  if (st) {
    free(r);
    return st;
  }
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, p, (int)m, 1.0, jac, p, 0.0, JtJ, p);
  cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, p, 1.0, jac, p, r, 1, 0.0, g, 1);
  double gn = cblas_dnrm2(p, g, 1);
  for (int c = 0; c < p && isfinite(gn); c++) {
    if (!isfinite(g[c]) || !isfinite(JtJ[c * p + c])) {
      gn = INFINITY;
    }
  }
  if (!isfinite(gn)) {
    // a non-finite gradient is never a step: u and the damping stay
    int c = 0;
    while (c < p - 1 && isfinite(g[c]) && isfinite(JtJ[c * p + c])) {
      c++;
    }
    free(r);
    return dso_error(err, DSO_ERR_NUMERIC, "estimator: the gradient of theta entry %s is not "
                     "finite; no step taken", f->theta->entry[f->fitted[c]].name);
  }
  long steps = r0.steps;
  double J = r0.cost;
  dsoEstimFitReport best = r0;
  int accepted = 0;
  for (int tries = 0; tries < 16 && !accepted; tries++) {
    memcpy(M, JtJ, sizeof(double) * sp * sp);
    for (int a = 0; a < p; a++) {
      double d = JtJ[a * p + a];
      M[a * p + a] += f->lambda * (d > 0 ? d : 1.0);
      dl[a] = -g[a];
    }
    if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', p, 1, M, p, dl, 1) != 0) {
      f->lambda *= 10;
      continue;
    }
    memcpy(w.ut, u, sizeof(double) * (size_t)f->n);
    for (int c = 0; c < p; c++) {
      int i = f->fitted[c];
      w.ut[i] += dl[c];
      clamp_entry(&f->theta->entry[i], &w.ut[i]);
    }
    dsoError local = {0};
    dsoEstimFitReport rt;
    dsoStatus ts = dso_estimfit_evaluate(f, w.ut, &rt, &local);
    if (ts == DSO_OK) {
      steps += rt.steps;
    }
    int finite = ts == DSO_OK && isfinite(rt.cost);
    for (int i = 0; finite && i < f->n; i++) {
      finite = isfinite(w.ut[i]);
    }
    if (finite && rt.cost < J) {
      accepted = 1;
      best = rt;
    } else if (ts != DSO_OK && ts != DSO_ERR_NUMERIC) {
      st = dso_error(err, ts, "%s", local.msg);
      break;
    } else {
      f->lambda *= 10;
    }
  }
  if (!st && accepted) {
    memcpy(u, w.ut, sizeof(double) * (size_t)f->n);
    f->lambda = f->lambda / 10 > 1e-12 ? f->lambda / 10 : 1e-12;
    *done = J - best.cost <= f->set.tol * best.cost;
  } else if (!st) {
    *done = 1;  // no damping gives descent: a minimum to round-off
  }
  if (rep) {
    *rep = best;
    rep->grad_norm = gn;
    rep->lambda = f->lambda;
    rep->steps = steps;
  }
  free(r);
  return st;
}

dsoStatus dso_estimfit_learn(dsoEstimFit* f, double* u, int max_iter, int* iters,
                             dsoEstimFitReport* rep, dsoError* err) {
  int it = 0, done = 0;
  max_iter = max_iter < 0 ? f->set.max_iter : max_iter;
  dsoStatus st = DSO_OK;
  dsoEstimFitReport r;
  memset(&r, 0, sizeof(r));
  while (!st && !done && it < max_iter) {
    st = dso_estimfit_step(f, u, &r, &done, err);
    it += st == DSO_OK;
  }
  if (iters) {
    *iters = it;
  }
  if (rep) {
    *rep = r;
  }
  return st;
}

dsoTheta* dso_estimfit_hold(const dsoTheta* theta, const double* u, dsoError* err) {
  dsoThetaEntry* ent = (dsoThetaEntry*)calloc((size_t)theta->n + 1, sizeof(dsoThetaEntry));
  if (!ent) {
    dso_error(err, DSO_ERR_MEMORY, "estimator: out of memory");
    return NULL;
  }
  for (int i = 0; i < theta->n; i++) {
    ent[i] = theta->entry[i];
    ent[i].init = dso_theta_entry_natural(&ent[i], u[i]);
    ent[i].fixed = 1;
  }
  dsoTheta* out = dso_theta_create(ent, theta->n, err);
  free(ent);
  return out;
}

dsoStatus dso_estimfit_state_rms(double* rms, long* count, dsoEstimFit* f, const double* u,
                                 dsoEpisodeSelect select, dsoError* err) {
  double sq = 0;
  long cnt = 0, nsq = 0;
  dsoStatus st = pass(f, u, select, NULL, NULL, NULL, &sq, &cnt, &nsq, err);
  if (st) {
    return st;
  }
  if (nsq == 0) {
    return dso_error(err, DSO_ERR_INPUT, "estimator: the data records no qpos or qvel to score "
                     "the state estimate against");
  }
  *rms = sqrt(sq / (double)nsq);
  if (count) {
    *count = cnt;
  }
  return DSO_OK;
}

dsoStatus dso_estimfit_ekf_rms(double* rms, dsoEstimFit* f, const double* u,
                               dsoEpisodeSelect select, dsoError* err) {
  dsoEkf* ekf = dso_ekf_create(f->base, f->theta, u, f->set.process_std, f->set.sensor_std, err);
  if (!ekf) {
    return err->code;
  }
  dsoStatus st = dso_ekf_state_rms(rms, NULL, ekf, f->ds, select, err);
  dso_ekf_free(ekf);
  return st;
}

// ---------------------------------------------------------------------------------------------
// accessors

const dsoTheta* dso_estimfit_theta(const dsoEstimFit* f) {
  return f->theta;
}

int dso_estimfit_n(const dsoEstimFit* f) {
  return f->n;
}

int dso_estimfit_corrector_start(const dsoEstimFit* f) {
  return f->off_c;
}

const dsoCorrector* dso_estimfit_corrector(const dsoEstimFit* f) {
  return f->cor;
}

const dsoEstimFitSettings* dso_estimfit_settings(const dsoEstimFit* f) {
  return &f->set;
}

int dso_estimfit_nfitted(const dsoEstimFit* f) {
  return f->p;
}

const int* dso_estimfit_fitted(const dsoEstimFit* f) {
  return f->fitted;
}

long dso_estimfit_nres(const dsoEstimFit* f) {
  return f->nres;
}

int dso_estimfit_nprior(const dsoEstimFit* f) {
  return f->nprior;
}

double dso_estimfit_lambda(const dsoEstimFit* f) {
  return f->lambda;
}

dsoStatus dso_estimfit_set_lambda(dsoEstimFit* f, double lambda, dsoError* err) {
  if (!(lambda > 0) || !isfinite(lambda)) {
    return dso_error(err, DSO_ERR_INPUT, "estimator: damping lambda is %g; expected a finite "
                     "value > 0", lambda);
  }
  f->lambda = lambda;
  return DSO_OK;
}
