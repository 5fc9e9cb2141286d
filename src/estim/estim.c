// Learned constant-gain predictor-corrector (eq. 99): innovation cost, its finite-difference
// gradient and a Levenberg-Marquardt fit of the gain.
#include "estim/estim.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

void dso_estim_settings_default(dsoEstimSettings* s) {
  s->max_iter = 50;
  s->lambda0 = 1e-3;
  s->fd_step = 1e-6;
  s->tol = 1e-12;
}

void dso_estim_free(dsoEstim* es) {
  if (!es) {
    return;
  }
  dso_sim_free(es->sim);
  free(es->sigma);
  free(es->x);
  free(es->xt);
  free(es->yh);
  free(es->e);
  free(es->dx);
  free(es->Kw);
  free(es);
}

dsoEstim* dso_estim_create(const mjModel* base, const dsoTheta* theta, const double* u,
                           const double* sensor_std, dsoError* err) {
  if (!base) {
    dso_error(err, DSO_ERR_INPUT, "estim: no model");
    return NULL;
  }
  if (theta && !u) {
    dso_error(err, DSO_ERR_INPUT, "estim: a layout without values u");
    return NULL;
  }
  int ns = base->nsensordata;
  if (ns < 1) {
    dso_error(err, DSO_ERR_INPUT, "estim: the model has no sensors");
    return NULL;
  }
  for (int i = 0; sensor_std && i < ns; i++) {
    if (!(sensor_std[i] > 0) || !isfinite(sensor_std[i])) {
      dso_error(err, DSO_ERR_INPUT, "estim: sensor_std[%d]=%g must be finite and > 0", i,
                sensor_std[i]);
      return NULL;
    }
  }
  dsoEstim* es = (dsoEstim*)calloc(1, sizeof(dsoEstim));
  if (!es) {
    dso_error(err, DSO_ERR_MEMORY, "estim: out of memory");
    return NULL;
  }
  es->nx = dso_mj_state_size(base);
  es->ndx = dso_mj_tangent_size(base);
  es->nu = base->nu;
  es->ns = ns;
  es->nK = es->ndx * ns;
  es->sim = dso_sim_create(base, err);
  if (!es->sim || (theta && dso_sim_write(es->sim, theta, u, err) != DSO_OK)) {
    dso_estim_free(es);
    return NULL;
  }
  es->sigma = (double*)calloc((size_t)ns, sizeof(double));
  es->x = (double*)calloc((size_t)es->nx + 1, sizeof(double));
  es->xt = (double*)calloc((size_t)es->nx + 1, sizeof(double));
  es->yh = (double*)calloc((size_t)ns, sizeof(double));
  es->e = (double*)calloc((size_t)ns, sizeof(double));
  es->dx = (double*)calloc((size_t)es->ndx + 1, sizeof(double));
  es->Kw = (double*)calloc((size_t)es->nK + 1, sizeof(double));
  if (!es->sigma || !es->x || !es->xt || !es->yh || !es->e || !es->dx || !es->Kw) {
    dso_estim_free(es);
    dso_error(err, DSO_ERR_MEMORY, "estim: out of memory");
    return NULL;
  }
  for (int i = 0; i < ns; i++) {
    es->sigma[i] = sensor_std ? sensor_std[i] : 1.0;
  }
  return es;
}

int dso_estim_gain_name(char* buf, int len, int i, int j) {
  return snprintf(buf, (size_t)(len > 0 ? len : 0), "corrector.K[%d,%d]", i, j);
}

long dso_estim_nresidual(const dsoEstim* es, const dsoDataset* ds, dsoEpisodeSelect select) {
  long n = 0;
  for (int k = 0; es && ds && k < ds->nepisode; k++) {
    if (dso_episode_selected(&ds->episode[k], select) && ds->episode[k].T > 1) {
      n += (long)(ds->episode[k].T - 1) * es->ns;
    }
  }
  return n;
}

static void forward_fn(void* arg) {
  dsoSim* sim = (dsoSim*)arg;
  mj_forward(dso_sim_model(sim), dso_sim_data(sim));
}

static dsoStatus check_dataset(const dsoEstim* es, const dsoDataset* ds, dsoError* err) {
  if (!es || !ds) {
    return dso_error(err, DSO_ERR_INPUT, "estim: NULL estimator or dataset");
  }
  const mjModel* m = dso_sim_model(es->sim);
  if (ds->nq != m->nq || ds->nv != m->nv || ds->nu != m->nu || ds->nsensordata != es->ns) {
    return dso_error(err, DSO_ERR_INPUT,
                     "estim: dataset sizes (nq %d, nv %d, nu %d, ns %d) differ from the model's "
                     "(%d, %d, %d, %d)",
                     ds->nq, ds->nv, ds->nu, ds->nsensordata, m->nq, m->nv, m->nu, es->ns);
  }
  return DSO_OK;
}

dsoStatus dso_estim_run(double* r, double* cost, double* state_rms, dsoEstim* es,
                        const dsoDataset* ds, dsoEpisodeSelect select, const double* K,
                        dsoError* err) {
  dsoStatus st = check_dataset(es, ds, err);
  if (st != DSO_OK) {
    return st;
  }
  if (!K) {
    return dso_error(err, DSO_ERR_INPUT, "estim: no gain K");
  }
  dsoSim* sim = es->sim;
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  int ns = es->ns, n = es->ndx, nu = es->nu;
  const int* has = ds->has[DSO_DATA_SENSOR];
  double J = 0, sq = 0;
  long steps = 0, ir = 0;
  for (int k = 0; k < ds->nepisode; k++) {
    const dsoEpisode* ep = &ds->episode[k];
    if (!dso_episode_selected(ep, select) || ep->T < 2) {
      continue;
    }
    dso_sim_reset(sim);
    dso_episode_state(es->x, m, ep, 0);
    for (int t = 0; t + 1 < ep->T; t++) {
      // predict x̃ = f(x̂, ā_t)
      dso_mj_state_set(d, m, es->x);
      if (nu > 0) {
        mju_copy(d->ctrl, ep->ctrl + (size_t)t * nu, nu);
      }
      if ((st = dso_sim_step(sim, err)) == DSO_OK) {
        st = dso_mj_trap(forward_fn, sim, err);
      }
      if (st != DSO_OK) {
        dso_error_prefix(err, "estim: episode %d, step %d: ", k, t);
        return st;
      }
      dso_mj_state_get(es->x, m, d);
      // innovation of the measurement ȳ_{t+1} before the corrector uses it
      dso_sim_measure(sim, es->yh);
      const double* y = ep->sensordata + (size_t)(t + 1) * ns;
      for (int i = 0; i < ns; i++) {
        es->e[i] = has[i] ? y[i] - es->yh[i] : 0.0;
        double ri = es->e[i] / es->sigma[i];
        J += ri * ri;
        if (r) {
          r[ir + i] = ri;
        }
      }
      ir += ns;
      // correct x̂ = x̃ ⊕ K e
      for (int a = 0; a < n; a++) {
        double s = 0;
        for (int i = 0; i < ns; i++) {
          s += K[a * ns + i] * es->e[i];
        }
        es->dx[a] = s;
      }
      dso_mj_state_integrate(es->x, m, es->dx, 1.0);
      int ok = isfinite(J);
      for (int a = 0; a < es->nx && ok; a++) {
        ok = isfinite(es->x[a]) && fabs(es->x[a]) < 1e10;
      }
      if (!ok) {
        return dso_error(err, DSO_ERR_NUMERIC, "estim: episode %d, step %d: estimate diverged",
                         k, t);
      }
      if (state_rms) {
        dso_episode_state(es->xt, m, ep, t + 1);
        dso_mj_state_diff(es->dx, m, es->xt, es->x);
        for (int a = 0; a < n; a++) {
          sq += es->dx[a] * es->dx[a];
        }
      }
      steps++;
    }
  }
  if (steps == 0) {
    return dso_error(err, DSO_ERR_INPUT, "estim: no selected episode has two samples");
  }
  if (cost) {
    *cost = J;
  }
  if (state_rms) {
    *state_rms = sqrt(sq / ((double)steps * n));
  }
  return DSO_OK;
}

static double fd_step(const dsoEstimSettings* s, double k) {
  return s->fd_step * (fabs(k) > 1 ? fabs(k) : 1.0);
}

dsoStatus dso_estim_cost(double* cost, double* grad, dsoEstim* es, const dsoDataset* ds,
                         const double* K, const dsoEstimSettings* settings, dsoError* err) {
  dsoEstimSettings set;
  if (settings) {
    set = *settings;
  } else {
    dso_estim_settings_default(&set);
  }
  if (!cost) {
    return dso_error(err, DSO_ERR_INPUT, "estim: no cost output");
  }
  if (!(set.fd_step > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "estim: fd_step=%g must be > 0", set.fd_step);
  }
  dsoStatus st = dso_estim_run(NULL, cost, NULL, es, ds, DSO_SELECT_TRAIN, K, err);
  for (int j = 0; st == DSO_OK && grad && j < es->nK; j++) {
    double h = fd_step(&set, K[j]), jp = 0, jm = 0;
    memcpy(es->Kw, K, sizeof(double) * (size_t)es->nK);
    es->Kw[j] = K[j] + h;
    st = dso_estim_run(NULL, &jp, NULL, es, ds, DSO_SELECT_TRAIN, es->Kw, err);
    if (st == DSO_OK) {
      es->Kw[j] = K[j] - h;
      st = dso_estim_run(NULL, &jm, NULL, es, ds, DSO_SELECT_TRAIN, es->Kw, err);
    }
    grad[j] = (jp - jm) / (2 * h);
  }
  return st;
}

dsoStatus dso_estim_learn(double* K, double* cost, int* iters, dsoEstim* es, const dsoDataset* ds,
                          const dsoEstimSettings* settings, dsoError* err) {
  dsoEstimSettings set;
  if (settings) {
    set = *settings;
  } else {
    dso_estim_settings_default(&set);
  }
  if (iters) {
    *iters = 0;
  }
  dsoStatus st = check_dataset(es, ds, err);
  if (st != DSO_OK) {
    return st;
  }
  if (!K) {
    return dso_error(err, DSO_ERR_INPUT, "estim: no gain K");
  }
  if (set.max_iter < 0 || !(set.lambda0 > 0) || !(set.fd_step > 0) || !(set.tol >= 0)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "estim: settings need max_iter >= 0, lambda0 > 0, fd_step > 0, tol >= 0 "
                     "(got %d, %g, %g, %g)",
                     set.max_iter, set.lambda0, set.fd_step, set.tol);
  }
  long nr = dso_estim_nresidual(es, ds, DSO_SELECT_TRAIN);
  if (nr == 0) {
    return dso_error(err, DSO_ERR_INPUT, "estim: no training episode has two samples");
  }
  int p = es->nK;
  size_t snr = (size_t)nr, sp = (size_t)p;
  double* r = (double*)calloc(snr * (sp + 3), sizeof(double));
  double* small = (double*)calloc(3 * sp * sp + 4 * sp, sizeof(double));
  if (!r || !small) {
    free(r);
    free(small);
    return dso_error(err, DSO_ERR_MEMORY, "estim: out of memory (%ld residuals x %d)", nr, p);
  }
  double *rp = r + snr, *rm = rp + snr, *Jac = rm + snr;  // Jac: (nr x p) column-major blocks
  double *JtJ = small, *M = JtJ + sp * sp, *g = M + sp * sp, *step = g + sp, *Kt = step + sp;
  double J = 0, lambda = set.lambda0;
  int it = 0;
  st = dso_estim_run(r, &J, NULL, es, ds, DSO_SELECT_TRAIN, K, err);
  for (it = 0; st == DSO_OK && it < set.max_iter; it++) {
    // Jacobian of the residuals by central differences, column j stored contiguously
    for (int j = 0; j < p && st == DSO_OK; j++) {
      double h = fd_step(&set, K[j]);
      memcpy(Kt, K, sizeof(double) * sp);
      Kt[j] = K[j] + h;
      st = dso_estim_run(rp, NULL, NULL, es, ds, DSO_SELECT_TRAIN, Kt, err);
      if (st == DSO_OK) {
        Kt[j] = K[j] - h;
        st = dso_estim_run(rm, NULL, NULL, es, ds, DSO_SELECT_TRAIN, Kt, err);
      }
      double* col = Jac + (size_t)j * snr;
      for (long t = 0; t < nr; t++) {
        col[t] = (rp[t] - rm[t]) / (2 * h);
      }
    }
    if (st != DSO_OK) {
      break;
    }
    for (int a = 0; a < p; a++) {
      const double* ca = Jac + (size_t)a * snr;
      double s = 0;
      for (long t = 0; t < nr; t++) {
        s += ca[t] * r[t];
      }
      g[a] = s;
      for (int b = 0; b <= a; b++) {
        const double* cb = Jac + (size_t)b * snr;
        double q = 0;
        for (long t = 0; t < nr; t++) {
          q += ca[t] * cb[t];
        }
        JtJ[a * p + b] = q;
        JtJ[b * p + a] = q;
      }
    }
    // damped steps until one lowers J
    int accepted = 0;
    double Jnew = J;
    for (int tries = 0; tries < 30 && !accepted; tries++) {
      memcpy(M, JtJ, sizeof(double) * sp * sp);
      for (int a = 0; a < p; a++) {
        M[a * p + a] += lambda * (JtJ[a * p + a] > 0 ? JtJ[a * p + a] : 1.0);
        step[a] = -g[a];
      }
      if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', p, 1, M, p, step, 1) != 0) {
        lambda *= 10;
        continue;
      }
      for (int a = 0; a < p; a++) {
        Kt[a] = K[a] + step[a];
      }
      dsoError local = {0};
      dsoStatus ts = dso_estim_run(rp, &Jnew, NULL, es, ds, DSO_SELECT_TRAIN, Kt, &local);
      if (ts == DSO_OK && Jnew < J) {
        accepted = 1;
      } else if (ts != DSO_OK && ts != DSO_ERR_NUMERIC) {
        st = dso_error(err, ts, "%s", local.msg);
        break;
      } else {
        lambda *= 10;
      }
    }
    if (st != DSO_OK || !accepted) {
      break;  // no descent step at any damping: a minimum to round-off
    }
    double drop = J - Jnew;
    memcpy(K, Kt, sizeof(double) * sp);
    memcpy(r, rp, sizeof(double) * snr);
    J = Jnew;
    lambda = lambda / 10 > 1e-12 ? lambda / 10 : 1e-12;
    if (drop <= set.tol * J) {
      it++;
      break;
    }
  }
  if (cost) {
    *cost = J;
  }
  if (iters) {
    *iters = it;
  }
  free(r);
  free(small);
  return st;
}
