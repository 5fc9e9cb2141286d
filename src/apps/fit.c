// Least-squares fits of θ to recorded data: multiple-shooting system identification, sensor
// calibration and the prior as residuals, Levenberg-Marquardt, covariance (see fit.h).
#include "apps/fit.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/invdyn.h"
#include "mujoco/mj.h"
#include "core/parallel.h"
#include "mujoco/sim.h"

#define DSO_FIT_SYSID 1
#define DSO_FIT_CALIB 2

// relative size of a finite-difference step (of the entry's typical size, see typical)
#define DSO_FIT_FD 1e-4
// accepted steps that each lower the cost by less than this fraction, in a row, with an entry at
// a bound: the fit has stalled there
#define DSO_FIT_STALL_DECREASE 1e-6

// inverse-dynamics residuals of the samples of one episode within this many seconds form one
// cluster of the robust standard errors (fit.h)
#define DSO_FIT_INVDYN_CLUSTER 0.2

// item kinds
#define DSO_FIT_ITEM_WINDOW 0  // a shooting window (sysid)
#define DSO_FIT_ITEM_CALIB 1   // a block of calibration samples
#define DSO_FIT_ITEM_INVDYN 2  // a cluster of inverse-dynamics residuals (computed as one block)

// a unit of work: one shooting window (sysid) or one block of samples (calib); also a cluster of
// the robust standard errors
typedef struct {
  int kind;        // DSO_FIT_ITEM_*
  int episode;     // dataset episode
  int start, len;  // first sample and steps (sysid) or samples (calib, invdyn)
  long roff;       // first residual
  long nres;       // residuals
} dsoFitItem;

struct dsoFit_;

typedef struct {
  struct dsoFit_* f;
  int thread;
  const double* u;
  double* r;
  int parts;  // DSO_FIT_SYSID | DSO_FIT_CALIB: the items to run
  long steps, diverged;
  dsoStatus status;
  dsoError err;
} dsoFitWorker;

struct dsoFit_ {
  const mjModel* m;
  const dsoTheta* theta;
  const dsoDataset* data;
  dsoFitSettings set;
  dsoInvdyn* inv;        // the dynamics residuals when settings.invdyn is set, else NULL
  int nthread;
  dsoSim** sim;          // (nthread)
  double** ybuf;         // (nthread) x (nsensordata)
  dsoFitWorker* work;    // (nthread)
  double** qvel;         // (nepisode) filled qvel per episode, (T x nv), NULL for unused ones
  int* qpos_idx;         // recorded qpos entries (nqr)
  int* qvel_idx;         // recorded qvel entries (nvr)
  int* sens_idx;         // fitted sensor columns (nsr)
  int nqr, nvr, nsr;
  int nitem;
  dsoFitItem* item;      // (nitem)
  int* fit;              // fitted entries (nfit)
  int nfit;
  int* prior;            // fitted entries with a prior (nprior)
  int nprior;
  long nsysid, ncalib, nres;
  int* val;              // episodes for validation (nval)
  int nval;
  double* r;             // (nres) residuals at u
  double* rp;            // (nres) work
  double* rm;            // (nres) work
  double* rtry;          // (nres) residuals at the trial point
  double* rcache;        // (nres) residuals at ucache
  double* ucache;        // (n)
  int cache_valid;
  double* Jt;            // (nfit x nres) row-major: J transposed
  double* A;             // (nfit x nfit) JᵀJ
  double* Ab;            // (nfit x nfit) damped system
  double* g;             // (nfit) Jᵀr
  double* delta;         // (nfit)
  double* utry;          // (n)
  double* uwork;         // (n)
  double* lo;            // (nfit) effective bounds on the natural values (closed; see fit.h)
  double* hi;            // (nfit)
  double* vnat;          // (nfit) natural values at the Jacobian's u
  double* dvdu;          // (nfit) dv/du there
  double* dfix;          // (nfit) steps of entries moved onto a bound within a step
  double* rhs;           // (nfit) work
  double* meat;          // (nfit x nfit) covariance of the free entries (natural values)
  double* score;         // (nfit) one cluster's Jᵀr
  int* state;            // (nfit) 0 free, -1 / +1 held at the lower / upper bound in this step,
                         // -2 / +2 moved onto it by this step
  int* idx;              // (nfit) free entries of the reduced system
  double* ujac;          // (n) u of the Jacobian in Jt
  int jac_valid;
  double lambda;
  double grad_norm;
  int iter;
  int stall;             // accepted steps in a row that stalled with an entry at a bound
  int stop;              // dsoFitStop of the last step
  long steps, diverged;
};

// ---------------------------------------------------------------------------------------------
// settings

void dso_fit_settings_default(dsoFitSettings* s) {
  s->window = 100;
  s->max_iter = 50;
  s->tol = 1e-10;
  s->lambda0 = 1e-3;
  s->qpos_scale = 0.01;
  s->qvel_scale = 0.1;
  s->sensors = 1;
  s->threads = 2;
  s->jacobian = DSO_FIT_JACOBIAN_FORWARD;
  s->invdyn = NULL;
}

// ---------------------------------------------------------------------------------------------
// setup

void dso_fit_free(dsoFit* f) {
  if (!f) {
    return;
  }
  if (f->sim) {
    for (int i = 0; i < f->nthread; i++) {
      dso_sim_free(f->sim[i]);
    }
  }
  if (f->ybuf) {
    for (int i = 0; i < f->nthread; i++) {
      free(f->ybuf[i]);
    }
  }
  if (f->qvel && f->data) {
    for (int i = 0; i < f->data->nepisode; i++) {
      free(f->qvel[i]);
    }
  }
  free(f->sim);
  free(f->ybuf);
  free(f->work);
  free(f->qvel);
  free(f->qpos_idx);
  free(f->qvel_idx);
  free(f->sens_idx);
  free(f->item);
  free(f->fit);
  free(f->prior);
  free(f->val);
  free(f->r);
  free(f->rp);
  free(f->rm);
  free(f->rtry);
  free(f->rcache);
  free(f->ucache);
  free(f->Jt);
  free(f->A);
  free(f->Ab);
  free(f->g);
  free(f->delta);
  free(f->utry);
  free(f->uwork);
  free(f->lo);
  free(f->hi);
  free(f->vnat);
  free(f->dvdu);
  free(f->dfix);
  free(f->rhs);
  free(f->meat);
  free(f->score);
  free(f->state);
  free(f->idx);
  free(f->ujac);
  dso_invdyn_free(f->inv);
  free(f);
}

static int add_item(dsoFit* f, int cap, int kind, int episode, int start, int len) {
  if (f->nitem >= cap) {
    return 0;
  }
  dsoFitItem* it = &f->item[f->nitem++];
  it->kind = kind;
  it->episode = episode;
  it->start = start;
  it->len = len;
  it->roff = 0;
  it->nres = 0;
  return 1;
}

// closed bounds on the natural value that the steps respect: the entry's bounds, with an open
// end of the transform's domain (0 for log; both ends for logistic) moved inside by
// DSO_FIT_FLOOR of the initial value / the range, so that u stays finite
static void effective_bounds(double* lo, double* hi, const dsoThetaEntry* e) {
  *lo = e->lower;
  *hi = e->upper;
  if (e->transform == DSO_TRANSFORM_LOG && !(e->lower > 0)) {
    *lo = DSO_FIT_FLOOR * e->init;
  } else if (e->transform == DSO_TRANSFORM_BOUNDED) {
    double w = e->upper - e->lower;
    *lo = e->lower + DSO_FIT_FLOOR * w;
    *hi = e->upper - DSO_FIT_FLOOR * w;
  }
}

dsoFit* dso_fit_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                       const dsoFitSettings* s, dsoError* err) {
  dsoFitSettings set;
  if (s) {
    set = *s;
  } else {
    dso_fit_settings_default(&set);
  }
  if (!m || !theta || !data) {
    dso_error(err, DSO_ERR_INPUT, "fit: model, theta and data are required");
    return NULL;
  }
  if (set.window < 1) {
    dso_error(err, DSO_ERR_INPUT, "fit: window is %d, expected at least 1 step", set.window);
    return NULL;
  }
  if (set.threads < 1 || set.threads > DSO_FIT_MAX_THREADS) {
    dso_error(err, DSO_ERR_INPUT, "fit: threads is %d, expected 1 to %d", set.threads,
              DSO_FIT_MAX_THREADS);
    return NULL;
  }
  if (!(set.qpos_scale > 0) || !(set.qvel_scale > 0) || !(set.lambda0 > 0) || !(set.tol >= 0)) {
    dso_error(err, DSO_ERR_INPUT,
              "fit: qpos_scale, qvel_scale and lambda0 must be positive and tol non-negative");
    return NULL;
  }
  if (data->nq != m->nq || data->nv != m->nv || data->nu != m->nu ||
      data->nsensordata != m->nsensordata) {
    dso_error(err, DSO_ERR_INPUT,
              "fit: the dataset was made for a model with nq %d, nv %d, nu %d, nsensordata %d; "
              "this model has %d, %d, %d, %d",
              data->nq, data->nv, data->nu, data->nsensordata, m->nq, m->nv, m->nu,
              m->nsensordata);
    return NULL;
  }
  if (data->nepisode < 1) {
    dso_error(err, DSO_ERR_INPUT, "fit: the dataset has no episodes");
    return NULL;
  }
  if (!(fabs(data->dt - m->opt.timestep) <= 1e-9 * m->opt.timestep)) {
    dso_error(err, DSO_ERR_INPUT,
              "fit: the dataset's sample spacing is %g s, expected the model timestep %g s "
              "(resample the data with stride 1)",
              data->dt, m->opt.timestep);
    return NULL;
  }
  dsoFit* f = (dsoFit*)calloc(1, sizeof(dsoFit));
  if (!f) {
    dso_error(err, DSO_ERR_MEMORY, "fit: out of memory");
    return NULL;
  }
  f->m = m;
  f->theta = theta;
  f->data = data;
  f->set = set;
  f->lambda = set.lambda0;
  int n = theta->n, nq = m->nq, nv = m->nv, ns = m->nsensordata;
  int nep = data->nepisode, nval = dso_dataset_nvalidation(data);
  int ntrain = nval == nep ? 0 : nep - nval;
  if (nval == 0) {
    nval = nep;  // validation on the training episodes
  }
  if (ntrain == 0) {
    dso_error(err, DSO_ERR_INPUT, "fit: every episode of the dataset is a validation episode");
    dso_fit_free(f);
    return NULL;
  }

  // recorded entries
  f->qpos_idx = (int*)calloc((size_t)nq + 1, sizeof(int));
  f->qvel_idx = (int*)calloc((size_t)nv + 1, sizeof(int));
  f->sens_idx = (int*)calloc((size_t)ns + 1, sizeof(int));
  f->fit = (int*)calloc((size_t)n + 1, sizeof(int));
  f->prior = (int*)calloc((size_t)n + 1, sizeof(int));
  f->val = (int*)calloc((size_t)nval + 1, sizeof(int));
  f->qvel = (double**)calloc((size_t)nep, sizeof(double*));
  if (!f->qpos_idx || !f->qvel_idx || !f->sens_idx || !f->fit || !f->prior || !f->val ||
      !f->qvel) {
    goto oom;
  }
  for (int i = 0; i < nq; i++) {
    if (data->has[DSO_DATA_QPOS][i]) {
      f->qpos_idx[f->nqr++] = i;
    }
  }
  for (int i = 0; i < nv; i++) {
    if (data->has[DSO_DATA_QVEL][i]) {
      f->qvel_idx[f->nvr++] = i;
    }
  }
  if (set.sensors) {
    for (int i = 0; i < ns; i++) {
      if (data->has[DSO_DATA_SENSOR][i]) {
        f->sens_idx[f->nsr++] = i;
      }
    }
  }

  // fitted entries: physics, and sensor gain/offset of fitted sensor columns
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->fixed) {
      continue;
    }
    int fitted = 0;
    if (e->block == DSO_BLOCK_PHYSICS && e->bind.kind != DSO_BIND_NONE) {
      fitted = 1;
    } else if ((e->bind.kind == DSO_BIND_SENSOR_GAIN || e->bind.kind == DSO_BIND_SENSOR_OFFSET) &&
               set.sensors && e->bind.target >= 0 && e->bind.target < ns &&
               data->has[DSO_DATA_SENSOR][e->bind.target]) {
      fitted = 1;
    }
    if (fitted) {
      f->fit[f->nfit++] = i;
      if (e->has_prior) {
        f->prior[f->nprior++] = i;
      }
    }
  }
  if (f->nfit == 0) {
    dso_error(err, DSO_ERR_INPUT,
              "fit: theta has no entry to fit (non-fixed physics entries, or sensor gains and "
              "offsets of recorded sensor columns)");
    dso_fit_free(f);
    return NULL;
  }

  // inverse dynamics instead of multiple shooting
  if (set.invdyn) {
    f->inv = dso_invdyn_create(m, theta, data, set.invdyn, err);
    if (!f->inv) {
      dso_fit_free(f);
      return NULL;
    }
  }

  // episodes: filled qvel, items, validation list
  {
    int cap = f->inv ? dso_invdyn_nresidual(f->inv) / (nv > 0 ? nv : 1) : 0, W = set.window;
    for (int e = 0; e < nep; e++) {
      const dsoEpisode* ep = &data->episode[e];
      if (nval != nep ? ep->validation : 0) {
        continue;
      }
      cap += (f->inv ? 0 : (ep->T - 1 + W - 1) / W) + (ep->T + W - 1) / W;
    }
    f->item = (dsoFitItem*)calloc((size_t)cap + 1, sizeof(dsoFitItem));
    double* dq = (double*)calloc((size_t)nv + 1, sizeof(double));
    if (!f->item || !dq) {
      free(dq);
      goto oom;
    }
    int iv = 0;
    for (int e = 0; e < nep; e++) {
      const dsoEpisode* ep = &data->episode[e];
      int is_val = ep->validation || nval == nep;
      if (is_val) {
        f->val[iv++] = e;
      }
      f->qvel[e] = (double*)calloc((size_t)ep->T * nv + 1, sizeof(double));
      if (!f->qvel[e]) {
        free(dq);
        goto oom;
      }
      if (dso_dataset_episode_qvel(f->qvel[e], dq, m, data, e, err)) {
        free(dq);
        dso_fit_free(f);
        return NULL;
      }
    }
    f->nval = iv;
    // inverse-dynamics clusters (in the block's residual order: episode, sample, dof): the
    // samples of one episode within the same DSO_FIT_INVDYN_CLUSTER seconds
    if (f->inv) {
      int ns_inv = dso_invdyn_nresidual(f->inv) / (nv > 0 ? nv : 1);
      long last_block = -1;
      int last_ep = -1;
      for (int i = 0; i < ns_inv; i++) {
        int t = 0, e = dso_invdyn_sample(f->inv, i, &t);
        long block = (long)floor(t * data->dt / DSO_FIT_INVDYN_CLUSTER);
        if (e != last_ep || block != last_block) {
          add_item(f, cap, DSO_FIT_ITEM_INVDYN, e, i, 0);
          last_ep = e;
          last_block = block;
        }
        dsoFitItem* it = &f->item[f->nitem - 1];
        it->len++;
        it->nres += nv;
      }
    }
    // sysid windows (or the inverse-dynamics clusters above) first, then calibration blocks, in
    // episode order
    for (int pass = 0; pass < 2; pass++) {
      for (int e = 0; e < nep; e++) {
        const dsoEpisode* ep = &data->episode[e];
        if (ep->validation && nval != nep) {
          continue;
        }
        if (pass == 0) {
          if (f->inv || f->nqr + f->nvr == 0) {
            break;
          }
          for (int k = 0; k < ep->T - 1; k += W) {
            int len = ep->T - 1 - k < W ? ep->T - 1 - k : W;
            add_item(f, cap, DSO_FIT_ITEM_WINDOW, e, k, len);
          }
        } else {
          if (f->nsr == 0) {
            break;
          }
          for (int k = 0; k < ep->T; k += W) {
            add_item(f, cap, DSO_FIT_ITEM_CALIB, e, k, ep->T - k < W ? ep->T - k : W);
          }
        }
      }
    }
    free(dq);
    long off = 0;
    for (int i = 0; i < f->nitem; i++) {
      dsoFitItem* it = &f->item[i];
      it->roff = off;
      if (it->kind != DSO_FIT_ITEM_INVDYN) {
        it->nres = (long)(it->kind == DSO_FIT_ITEM_CALIB ? f->nsr : f->nqr + f->nvr) * it->len;
      }
      off += it->nres;
      if (it->kind == DSO_FIT_ITEM_CALIB) {
        f->ncalib += it->nres;
      } else {
        f->nsysid += it->nres;
      }
    }
    f->nres = off + f->nprior;
  }
  if (f->nres == 0 || f->nres > 2000000000L / (f->nfit + 1)) {
    dso_error(err, DSO_ERR_INPUT,
              f->nres ? "fit: too many residuals (%ld); use a shorter dataset"
                      : "fit: no residuals (%ld): the dataset records no qpos, qvel or fitted "
                        "sensor column of the training episodes",
              f->nres);
    dso_fit_free(f);
    return NULL;
  }

  // per-thread simulators
  f->nthread = set.threads;
  f->sim = (dsoSim**)calloc((size_t)f->nthread, sizeof(dsoSim*));
  f->ybuf = (double**)calloc((size_t)f->nthread, sizeof(double*));
  f->work = (dsoFitWorker*)calloc((size_t)f->nthread, sizeof(dsoFitWorker));
  if (!f->sim || !f->ybuf || !f->work) {
    goto oom;
  }
  for (int t = 0; t < f->nthread; t++) {
    f->sim[t] = dso_sim_create(m, err);
    if (!f->sim[t]) {
      dso_fit_free(f);
      return NULL;
    }
    dso_sim_model(f->sim[t])->opt.disableflags |= mjDSBL_WARMSTART;
    f->ybuf[t] = (double*)calloc((size_t)ns + 1, sizeof(double));
    if (!f->ybuf[t]) {
      goto oom;
    }
  }
  size_t R = (size_t)f->nres, P = (size_t)f->nfit;
  f->r = (double*)calloc(R, sizeof(double));
  f->rp = (double*)calloc(R, sizeof(double));
  f->rm = (double*)calloc(R, sizeof(double));
  f->rtry = (double*)calloc(R, sizeof(double));
  f->rcache = (double*)calloc(R, sizeof(double));
  f->Jt = (double*)calloc(R * P, sizeof(double));
  f->A = (double*)calloc(P * P, sizeof(double));
  f->Ab = (double*)calloc(P * P, sizeof(double));
  f->g = (double*)calloc(P, sizeof(double));
  f->delta = (double*)calloc(P, sizeof(double));
  f->ucache = (double*)calloc((size_t)n + 1, sizeof(double));
  f->utry = (double*)calloc((size_t)n + 1, sizeof(double));
  f->uwork = (double*)calloc((size_t)n + 1, sizeof(double));
  f->lo = (double*)calloc(P, sizeof(double));
  f->hi = (double*)calloc(P, sizeof(double));
  f->vnat = (double*)calloc(P, sizeof(double));
  f->dvdu = (double*)calloc(P, sizeof(double));
  f->dfix = (double*)calloc(P, sizeof(double));
  f->rhs = (double*)calloc(P, sizeof(double));
  f->meat = (double*)calloc(P * P, sizeof(double));
  f->score = (double*)calloc(P, sizeof(double));
  f->state = (int*)calloc(P, sizeof(int));
  f->idx = (int*)calloc(P, sizeof(int));
  f->ujac = (double*)calloc((size_t)n + 1, sizeof(double));
  if (!f->r || !f->rp || !f->rm || !f->rtry || !f->rcache || !f->Jt || !f->A || !f->Ab || !f->g ||
      !f->delta || !f->ucache || !f->utry || !f->uwork || !f->lo || !f->hi || !f->vnat ||
      !f->dvdu || !f->dfix || !f->rhs || !f->meat || !f->score || !f->state || !f->idx ||
      !f->ujac) {
    goto oom;
  }
  for (int a = 0; a < f->nfit; a++) {
    effective_bounds(&f->lo[a], &f->hi[a], &theta->entry[f->fit[a]]);
  }
  return f;

oom:
  dso_fit_free(f);
  dso_error(err, DSO_ERR_MEMORY, "fit: out of memory");
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// residuals

// sets sim's data to the recorded state of sample t of episode e (ctrl of the same sample)
static void set_recorded(dsoFit* f, dsoSim* sim, int e, int t) {
  const dsoEpisode* ep = &f->data->episode[e];
  const mjModel* m = dso_sim_model(sim);
  dso_sim_set_recorded(sim, ep->time[t], ep->qpos + (size_t)t * m->nq,
                       f->qvel[e] + (size_t)t * m->nv, ep->ctrl + (size_t)t * m->nu);
}

static void run_window(dsoFitWorker* w, const dsoFitItem* it) {
  dsoFit* f = w->f;
  dsoSim* sim = f->sim[w->thread];
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  const dsoEpisode* ep = &f->data->episode[it->episode];
  int per = f->nqr + f->nvr;
  double* r = w->r + it->roff;
  double iqs = 1.0 / f->set.qpos_scale, ivs = 1.0 / f->set.qvel_scale;
  set_recorded(f, sim, it->episode, it->start);
  for (int j = 1; j <= it->len; j++) {
    int t = it->start + j;
    mju_copy(d->ctrl, ep->ctrl + (size_t)(t - 1) * m->nu, m->nu);
    dsoError e = {0};
    dsoStatus st = dso_sim_step(sim, &e);
    w->steps++;
    double* rj = r + (size_t)(j - 1) * per;
    if (st != DSO_OK) {  // a MuJoCo error, bad warning or non-finite state (dso_mj_step)
      for (long k = 0; k < (long)(it->len - j + 1) * per; k++) {
        rj[k] = DSO_FIT_DIVERGED;
      }
      w->diverged++;
      return;
    }
    const double* qp = ep->qpos + (size_t)t * m->nq;
    const double* qv = ep->qvel + (size_t)t * m->nv;
    for (int k = 0; k < f->nqr; k++) {
      int i = f->qpos_idx[k];
      rj[k] = (d->qpos[i] - qp[i]) * iqs;
    }
    for (int k = 0; k < f->nvr; k++) {
      int i = f->qvel_idx[k];
      rj[f->nqr + k] = (d->qvel[i] - qv[i]) * ivs;
    }
  }
}

static void run_calib(dsoFitWorker* w, const dsoFitItem* it) {
  dsoFit* f = w->f;
  dsoSim* sim = f->sim[w->thread];
  double* y = f->ybuf[w->thread];
  const dsoEpisode* ep = &f->data->episode[it->episode];
  int ns = dso_sim_model(sim)->nsensordata;
  const double* sstd = dso_sim_sensor_std(sim);
  double* r = w->r + it->roff;
  for (int j = 0; j < it->len; j++) {
    int t = it->start + j;
    set_recorded(f, sim, it->episode, t);
    dsoError e = {0};
    double* rj = r + (size_t)j * f->nsr;
    if (dso_sim_forward(sim, &e) != DSO_OK) {
      for (int k = 0; k < f->nsr; k++) {
        rj[k] = DSO_FIT_DIVERGED;
      }
      w->diverged++;
      continue;
    }
    dso_sim_measure(sim, y);
    const double* yr = ep->sensordata + (size_t)t * ns;
    for (int k = 0; k < f->nsr; k++) {
      int i = f->sens_idx[k];
      double sd = sstd[i] > 0 ? sstd[i] : 1.0;
      double v = (yr[i] - y[i]) / sd;
      rj[k] = isfinite(v) ? v : DSO_FIT_DIVERGED;
    }
  }
}

// one thread's share of the items: thread t of nt runs items [nitem t / nt, nitem (t+1) / nt)
static void worker_block(void* ctx, int t, int thread) {
  (void)thread;
  dsoFitWorker* w = &((dsoFitWorker*)ctx)[t];
  dsoFit* f = w->f;
  w->status = dso_sim_write(f->sim[w->thread], f->theta, w->u, &w->err);
  if (w->status != DSO_OK) {
    return;
  }
  int nt = f->nthread < f->nitem ? f->nthread : f->nitem;
  int begin = (int)((long)f->nitem * w->thread / nt);
  int end = (int)((long)f->nitem * (w->thread + 1) / nt);
  for (int i = begin; i < end; i++) {
    const dsoFitItem* it = &f->item[i];
    if (it->kind == DSO_FIT_ITEM_CALIB && (w->parts & DSO_FIT_CALIB)) {
      run_calib(w, it);
    } else if (it->kind == DSO_FIT_ITEM_WINDOW && (w->parts & DSO_FIT_SYSID)) {
      run_window(w, it);
    }
  }
}

// residuals r (nres) at u of the parts (DSO_FIT_SYSID | DSO_FIT_CALIB; the prior always); the
// slices of the other part are left as they are. Each item writes its own slice, so the result
// does not depend on the number of threads. Full evaluations are cached.
static dsoStatus residuals_part(dsoFit* f, double* r, const double* u, int parts, dsoError* err) {
  int full = parts == (DSO_FIT_SYSID | DSO_FIT_CALIB);
  const dsoTheta* th = f->theta;
  for (int i = 0; i < th->n; i++) {
    if (!isfinite(u[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "fit: %s: u is not finite", th->entry[i].name);
    }
  }
  if (full && f->cache_valid && memcmp(u, f->ucache, sizeof(double) * (size_t)th->n) == 0) {
    if (r != f->rcache) {
      memcpy(r, f->rcache, sizeof(double) * (size_t)f->nres);
    }
    return DSO_OK;
  }
  if (f->inv && (parts & DSO_FIT_SYSID)) {
    // the torque residuals of the whole block at once (its own threads)
    dsoInvdynInfo before, after;
    dso_invdyn_info(f->inv, &before);
    dsoStatus st = dso_invdyn_residual(f->inv, u, r, NULL, err);
    dso_invdyn_info(f->inv, &after);
    f->steps += after.calls - before.calls;
    if (st != DSO_OK) {
      return st;
    }
  }
  int nt = f->nthread < f->nitem ? f->nthread : f->nitem;
  if (nt < 1) {
    nt = 1;
  }
  for (int t = 0; t < nt; t++) {
    dsoFitWorker* w = &f->work[t];
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->thread = t;
    w->u = u;
    w->r = r;
    w->parts = parts;
  }
  if (f->nitem == 0) {
    // prior only: still write θ once for the sensor deviations
    f->work[0].status = dso_sim_write(f->sim[0], th, u, &f->work[0].err);
  } else {
    dso_parallel_for(nt, nt, worker_block, f->work);
  }
  for (int t = 0; t < nt; t++) {
    dsoFitWorker* w = &f->work[t];
    f->steps += w->steps;
    f->diverged += w->diverged;
    if (w->status != DSO_OK) {
      dso_error(err, w->status, "fit: %s", w->err.msg);
      return w->status;
    }
  }
  double* rp = r + f->nsysid + f->ncalib;
  for (int k = 0; k < f->nprior; k++) {
    const dsoThetaEntry* e = &th->entry[f->prior[k]];
    double v = dso_theta_entry_natural(e, u[f->prior[k]]);
    double x = (v - e->prior_mean) / e->prior_std;
    if (!isfinite(x)) {
      return dso_error(err, DSO_ERR_NUMERIC,
                       "fit: %s: the prior residual (value %g - mean %g) / std %g is not finite",
                       e->name, v, e->prior_mean, e->prior_std);
    }
    rp[k] = x;
  }
  if (!full) {
    return DSO_OK;
  }
  memcpy(f->ucache, u, sizeof(double) * (size_t)th->n);
  if (r != f->rcache) {
    memcpy(f->rcache, r, sizeof(double) * (size_t)f->nres);
  }
  f->cache_valid = 1;
  return DSO_OK;
}

static dsoStatus residuals(dsoFit* f, double* r, const double* u, dsoError* err) {
  return residuals_part(f, r, u, DSO_FIT_SYSID | DSO_FIT_CALIB, err);
}

static double sumsq(const double* r, long n) {
  double s = 0;
  for (long i = 0; i < n; i++) {
    s += r[i] * r[i];
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Levenberg-Marquardt, in the natural values v of the fitted entries

// unconstrained coordinate of natural value v (inside the entry's domain)
static double to_u(const dsoThetaEntry* e, double v) {
  if (e->transform == DSO_TRANSFORM_LOG) {
    return log(v);
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED) {
    return log((v - e->lower) / (e->upper - v));
  }
  return v;
}

// typical size of fitted entry a at natural value v: finite-difference steps are DSO_FIT_FD of it
static double typical(const dsoFit* f, int a, double v) {
  const dsoThetaEntry* e = &f->theta->entry[f->fit[a]];
  if (e->transform == DSO_TRANSFORM_LOG) {
    return fabs(v) + 0.01 * e->init;
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED) {
    return fabs(v) + 0.01 * (e->upper - e->lower);
  }
  return 1.0 + fabs(v);
}

// -1 / +1 when fitted entry a at natural value v sits on its lower / upper effective bound
static int bound_side(const dsoFit* f, int a, double v) {
  double tol = 1e-6 * DSO_FIT_FD * typical(f, a, v);
  if (v <= f->lo[a] + tol) {
    return -1;
  }
  if (v >= f->hi[a] - tol) {
    return 1;
  }
  return 0;
}

int dso_fit_at_bound(const dsoFit* f, const double* u, int* flags) {
  int n = f->theta->n, count = 0;
  if (flags) {
    memset(flags, 0, sizeof(int) * (size_t)n);
  }
  for (int a = 0; a < f->nfit; a++) {
    int i = f->fit[a];
    int side = bound_side(f, a, dso_theta_entry_natural(&f->theta->entry[i], u[i]));
    count += side != 0;
    if (flags) {
      flags[i] = side;
    }
  }
  return count;
}

static void fill_report(const dsoFit* f, dsoFitReport* rep, const double* r, const double* u) {
  if (!rep) {
    return;
  }
  memset(rep, 0, sizeof(*rep));
  rep->cost_sysid = 0.5 * sumsq(r, f->nsysid);
  rep->cost_calib = 0.5 * sumsq(r + f->nsysid, f->ncalib);
  rep->cost_prior = 0.5 * sumsq(r + f->nsysid + f->ncalib, f->nprior);
  rep->cost = rep->cost_sysid + rep->cost_calib + rep->cost_prior;
  rep->iter = f->iter;
  rep->grad_norm = f->grad_norm;
  rep->lambda = f->lambda;
  rep->steps = f->steps;
  rep->nresidual = (int)f->nres;
  rep->nfitted = f->nfit;
  rep->diverged = f->diverged;
  rep->nbound = dso_fit_at_bound(f, u, NULL);
  rep->stop = f->stop;
}

// residuals at u into f->r, refusing a non-finite cost
static dsoStatus residuals_finite(dsoFit* f, const double* u, double* cost, dsoError* err) {
  dsoStatus st = residuals(f, f->r, u, err);
  if (st != DSO_OK) {
    return st;
  }
  *cost = 0.5 * sumsq(f->r, f->nres);
  if (!isfinite(*cost)) {
    return dso_error(err, DSO_ERR_NUMERIC,
                     "fit: the cost is not finite (%g) at this θ; a residual overflows", *cost);
  }
  return DSO_OK;
}

dsoStatus dso_fit_evaluate(dsoFit* f, const double* u, dsoFitReport* rep, dsoError* err) {
  double cost = 0;
  dsoStatus st = residuals_finite(f, u, &cost, err);
  if (st != DSO_OK) {
    return st;
  }
  fill_report(f, rep, f->r, u);
  return DSO_OK;
}

// Jacobian of r in the natural values (transposed, nfit x nres) at u by finite differences
// (forward or central by the settings; one-sided inward at a bound), and f->vnat, f->dvdu;
// f->r holds r(u) on return. Reused while u is the same. The steps of r(u) itself are not
// counted: u was evaluated before (the accepted trial of the last step, dso_fit_evaluate, or
// the run a checkpoint resumes), so that a resumed fit counts the same steps as an
// uninterrupted one
static dsoStatus jacobian(dsoFit* f, const double* u, dsoError* err) {
  const dsoTheta* th = f->theta;
  int n = th->n;
  size_t R = (size_t)f->nres;
  double cost = 0;
  long steps0 = f->steps;
  dsoStatus st = residuals_finite(f, u, &cost, err);
  f->steps = steps0;
  if (st != DSO_OK) {
    return st;
  }
  for (int a = 0; a < f->nfit; a++) {
    const dsoThetaEntry* e = &th->entry[f->fit[a]];
    f->vnat[a] = dso_theta_entry_natural(e, u[f->fit[a]]);
    f->dvdu[a] = dso_theta_entry_jacobian(e, u[f->fit[a]]);
  }
  if (f->jac_valid && memcmp(u, f->ujac, sizeof(double) * (size_t)n) == 0) {
    return DSO_OK;
  }
  f->jac_valid = 0;
  memcpy(f->uwork, u, sizeof(double) * (size_t)n);
  for (int a = 0; a < f->nfit; a++) {
    int i = f->fit[a];
    const dsoThetaEntry* e = &th->entry[i];
    double v = f->vnat[a], h = DSO_FIT_FD * typical(f, a, v);
    int up = v + h <= f->hi[a], down = v - h >= f->lo[a];
    int central = f->set.jacobian == DSO_FIT_JACOBIAN_CENTRAL && up && down;
    double sgn = up || !down ? 1.0 : -1.0;
    // sensor gains and offsets do not move the simulated windows
    int sensor = e->block == DSO_BLOCK_SENSOR;
    int parts = sensor ? DSO_FIT_CALIB : DSO_FIT_SYSID | DSO_FIT_CALIB;
    if (sensor) {
      memcpy(f->rp, f->r, sizeof(double) * (size_t)f->nsysid);
      memcpy(f->rm, f->r, sizeof(double) * (size_t)f->nsysid);
    }
    f->uwork[i] = to_u(e, v + sgn * h);
    double hp = dso_theta_entry_natural(e, f->uwork[i]) - v, hm = 0;
    st = residuals_part(f, f->rp, f->uwork, parts, err);
    const double* rm = f->r;
    if (st == DSO_OK && central) {
      f->uwork[i] = to_u(e, v - h);
      hm = dso_theta_entry_natural(e, f->uwork[i]) - v;
      st = residuals_part(f, f->rm, f->uwork, parts, err);
      rm = f->rm;
    }
    f->uwork[i] = u[i];
    if (st != DSO_OK) {
      return st;
    }
    if (!(hp != hm) || !isfinite(hp - hm)) {
      return dso_error(err, DSO_ERR_NUMERIC,
                       "fit: %s: no finite-difference step fits at value %g (bounds %g, %g)",
                       e->name, v, f->lo[a], f->hi[a]);
    }
    double* row = f->Jt + (size_t)a * R;
    double ih = 1.0 / (hp - hm);
    for (size_t k = 0; k < R; k++) {
      row[k] = (f->rp[k] - rm[k]) * ih;
      if (!isfinite(row[k])) {
        return dso_error(err, DSO_ERR_NUMERIC,
                         "fit: %s: the Jacobian is not finite at residual %zu (value %g)",
                         e->name, k, v);
      }
    }
  }
  memcpy(f->ujac, u, sizeof(double) * (size_t)n);
  f->jac_valid = 1;
  return DSO_OK;
}

int dso_fit_nresidual(const dsoFit* f) {
  return f ? (int)f->nres : 0;
}

dsoStatus dso_fit_residual(dsoFit* f, double* r, const double* u, dsoError* err) {
  if (!f || !r || !u) {
    return dso_error(err, DSO_ERR_INPUT, "fit residual: fit, r and u are required");
  }
  double cost = 0;
  dsoStatus st = residuals_finite(f, u, &cost, err);
  if (st != DSO_OK) {
    return st;
  }
  memcpy(r, f->r, sizeof(double) * (size_t)f->nres);
  return DSO_OK;
}

dsoStatus dso_fit_jacobian(dsoFit* f, double* J, double* r, const double* u, dsoError* err) {
  if (!f || !J || !u) {
    return dso_error(err, DSO_ERR_INPUT, "fit jacobian: fit, J and u are required");
  }
  dsoStatus st = jacobian(f, u, err);
  if (st != DSO_OK) {
    return st;
  }
  int n = f->theta->n;
  size_t R = (size_t)f->nres;
  memset(J, 0, sizeof(double) * R * (size_t)n);
  // d r / d u = d r / d v * dv/du per fitted entry
  for (int a = 0; a < f->nfit; a++) {
    const double* row = f->Jt + (size_t)a * R;
    int i = f->fit[a];
    for (size_t k = 0; k < R; k++) {
      J[k * (size_t)n + (size_t)i] = row[k] * f->dvdu[a];
    }
  }
  if (r) {
    memcpy(r, f->r, sizeof(double) * R);
  }
  return DSO_OK;
}

// JᵀJ into f->A and Jᵀr into f->g
static void normal_equations(dsoFit* f) {
  int P = f->nfit;
  int R = (int)f->nres;
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, P, R, 1.0, f->Jt, R, 0.0, f->A, P);
  for (int a = 0; a < P; a++) {
    for (int b = 0; b < a; b++) {
      f->A[a * P + b] = f->A[b * P + a];
    }
  }
  cblas_dgemv(CblasRowMajor, CblasNoTrans, P, R, 1.0, f->Jt, R, f->r, 1, 0.0, f->g, 1);
  double gn = 0;
  for (int a = 0; a < P; a++) {
    gn += f->g[a] * f->g[a];
  }
  f->grad_norm = sqrt(gn);
}

// damped step δ (f->delta, natural values) at damping lam: entries held on a bound (state ±1)
// do not move; the reduced system (A_FF + lam diag A_FF) δ_F = -g_F - A_FB δ_B is solved
// again with every entry the step would carry past a bound moved exactly onto it (state ±2);
// returns 0 when the system is not positive definite
static int damped_step(dsoFit* f, double lam) {
  int P = f->nfit;
  double maxdiag = 0;
  for (int a = 0; a < P; a++) {
    maxdiag = fmax(maxdiag, f->A[a * P + a]);
    if (f->state[a] == 2 || f->state[a] == -2) {
      f->state[a] = 0;
    }
    f->dfix[a] = 0;
  }
  for (int pass = 0; pass <= P; pass++) {
    int nf = 0;
    for (int a = 0; a < P; a++) {
      if (f->state[a] == 0) {
        f->idx[nf++] = a;
      }
    }
    for (int x = 0; x < nf; x++) {
      int a = f->idx[x];
      double r = -f->g[a];
      for (int b = 0; b < P; b++) {
        r -= f->A[a * P + b] * f->dfix[b];
      }
      f->rhs[x] = r;
      for (int y = 0; y < nf; y++) {
        f->Ab[x * nf + y] = f->A[a * P + f->idx[y]];
      }
      f->Ab[x * nf + x] += lam * fmax(f->A[a * P + a], 1e-12 * maxdiag + 1e-300);
    }
    if (nf > 0 && LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', nf, 1, f->Ab, nf, f->rhs, 1) != 0) {
      return 0;
    }
    for (int a = 0; a < P; a++) {
      f->delta[a] = f->dfix[a];
    }
    int moved = 0;
    for (int x = 0; x < nf; x++) {
      int a = f->idx[x];
      double d = f->rhs[x], v = f->vnat[a];
      if (!isfinite(d)) {
        return 0;
      }
      if (v + d < f->lo[a]) {
        f->dfix[a] = f->lo[a] - v;
        f->state[a] = -2;
        moved = 1;
      } else if (v + d > f->hi[a]) {
        f->dfix[a] = f->hi[a] - v;
        f->state[a] = 2;
        moved = 1;
      }
      f->delta[a] = d;
    }
    if (!moved) {
      return 1;
    }
  }
  for (int a = 0; a < P; a++) {
    f->delta[a] = f->dfix[a];
  }
  return 1;
}

dsoStatus dso_fit_step(dsoFit* f, double* u, dsoFitReport* rep, int* done, dsoError* err) {
  int n = f->theta->n, P = f->nfit;
  *done = 0;
  f->stop = DSO_FIT_RUNNING;
  dsoStatus st = jacobian(f, u, err);
  if (st != DSO_OK) {
    return st;
  }
  normal_equations(f);
  double cost0 = 0.5 * sumsq(f->r, f->nres);
  // entries on a bound that the gradient pushes outwards are held for this step
  double gfree = 0;
  for (int a = 0; a < P; a++) {
    int side = bound_side(f, a, f->vnat[a]);
    f->state[a] = (side < 0 && f->g[a] > 0) || (side > 0 && f->g[a] < 0) ? side : 0;
    if (!f->state[a]) {
      gfree += f->g[a] * f->g[a];
    }
  }
  if (gfree == 0 || cost0 == 0) {
    *done = 1;
    f->stop = DSO_FIT_CONVERGED;
    fill_report(f, rep, f->r, u);
    return DSO_OK;
  }
  for (int tries = 0; tries < 60; tries++) {
    double lam = f->lambda;
    if (damped_step(f, lam)) {
      double dmax = 0;
      for (int a = 0; a < P; a++) {
        dmax = fmax(dmax, fabs(f->delta[a]) / typical(f, a, f->vnat[a]));
      }
      if (dmax < 1e-14) {
        *done = 1;
        f->stop = DSO_FIT_CONVERGED;
        fill_report(f, rep, f->r, u);
        return DSO_OK;
      }
      memcpy(f->utry, u, sizeof(double) * (size_t)n);
      for (int a = 0; a < P; a++) {
        int i = f->fit[a];
        double v = f->vnat[a] + f->delta[a];
        v = v < f->lo[a] ? f->lo[a] : (v > f->hi[a] ? f->hi[a] : v);
        f->utry[i] = f->delta[a] == 0 ? u[i] : to_u(&f->theta->entry[i], v);
      }
      st = residuals(f, f->rtry, f->utry, err);
      if (st != DSO_OK) {
        return st;
      }
      double cost = 0.5 * sumsq(f->rtry, f->nres);
      // a non-finite trial cost is a failed trial, never a success
      if (isfinite(cost) && cost < cost0) {
        memcpy(u, f->utry, sizeof(double) * (size_t)n);
        memcpy(f->r, f->rtry, sizeof(double) * (size_t)f->nres);
        // tenfold down (Nielsen's gain-ratio rule took 5-40% more iterations on arm_sysid and
        // the real pendulum)
        f->lambda = fmax(lam * 0.1, 1e-12);
        f->iter++;
        double rel = (cost0 - cost) / cost0;
        int nbound = dso_fit_at_bound(f, u, NULL);
        f->stall = nbound > 0 && rel < DSO_FIT_STALL_DECREASE ? f->stall + 1 : 0;
        if (rel < f->set.tol || dmax < 1e-12) {
          *done = 1;
          f->stop = DSO_FIT_CONVERGED;
        } else if (f->stall >= DSO_FIT_STALL_STEPS) {
          *done = 1;
          f->stop = DSO_FIT_STALLED_AT_BOUND;
        }
        fill_report(f, rep, f->r, u);
        return DSO_OK;
      }
    }
    f->lambda = lam * 10;
    if (f->lambda > 1e16) {
      break;
    }
  }
  // no decrease possible
  f->lambda = fmin(f->lambda, 1e16);
  *done = 1;
  f->stop = DSO_FIT_NO_DECREASE;
  fill_report(f, rep, f->r, u);
  return DSO_OK;
}

double dso_fit_lambda(const dsoFit* f) {
  return f->lambda;
}

dsoStatus dso_fit_set_lambda(dsoFit* f, double lambda, dsoError* err) {
  if (!(lambda > 0) || !isfinite(lambda)) {
    return dso_error(err, DSO_ERR_INPUT, "fit: damping lambda is %g; expected a finite value > 0",
                     lambda);
  }
  f->lambda = lambda;
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// covariance

int dso_fit_nwindows(const dsoFit* f) {
  return f ? f->nitem : 0;
}

// free entries (fitted, not on a bound) into f->idx; returns their count
static int free_entries(dsoFit* f) {
  int nf = 0;
  for (int a = 0; a < f->nfit; a++) {
    if (!bound_side(f, a, f->vnat[a])) {
      f->idx[nf++] = a;
    }
  }
  return nf;
}

dsoFitSe dso_fit_se_auto(const dsoFit* f, const double* u) {
  int nf = 0;
  for (int a = 0; a < f->nfit; a++) {
    int i = f->fit[a];
    nf += !bound_side(f, a, dso_theta_entry_natural(&f->theta->entry[i], u[i]));
  }
  return f->nitem >= 2 * nf && f->nitem >= 2 ? DSO_FIT_SE_JACKKNIFE : DSO_FIT_SE_IID;
}

dsoStatus dso_fit_covariance(dsoFit* f, const double* u, double* cov, double* se, dsoError* err) {
  return dso_fit_covariance_kind(f, u, DSO_FIT_SE_AUTO, cov, se, err);
}

dsoStatus dso_fit_covariance_kind(dsoFit* f, const double* u, dsoFitSe kind, double* cov,
                                  double* se, dsoError* err) {
  int n = f->theta->n, P = f->nfit;
  if (kind == DSO_FIT_SE_AUTO) {
    kind = dso_fit_se_auto(f, u);
  }
  if (kind != DSO_FIT_SE_IID && kind != DSO_FIT_SE_SANDWICH && kind != DSO_FIT_SE_JACKKNIFE) {
    return dso_error(err, DSO_ERR_INPUT, "fit covariance: unknown kind %d", (int)kind);
  }
  dsoStatus st = jacobian(f, u, err);
  if (st != DSO_OK) {
    return st;
  }
  normal_equations(f);
  int nf = free_entries(f);
  int G = f->nitem + f->nprior;
  if (f->nres <= nf) {
    return dso_error(err, DSO_ERR_INPUT,
                     "fit covariance: %ld residuals for %d free fitted entries, need more "
                     "residuals", f->nres, nf);
  }
  if (kind != DSO_FIT_SE_IID && G < 2) {
    return dso_error(err, DSO_ERR_INPUT,
                     "fit covariance: the window sandwich needs at least 2 windows, have %d", G);
  }
  double s2 = sumsq(f->r, f->nres) / (double)(f->nres - nf);
  // correlation form of the free block: C = D^-1/2 A_FF D^-1/2
  double* C = f->Ab;
  double* w = f->delta;
  char names[DSO_ERROR_LEN] = "";
  size_t len = 0;
  int singular = 0;
  for (int x = 0; x < nf; x++) {
    int a = f->idx[x];
    if (!(f->A[a * P + a] > 0)) {
      singular = 1;
      len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0, "%s%s",
                              len ? ", " : "", f->theta->entry[f->fit[a]].name);
    }
  }
  if (!singular && nf > 0) {
    for (int x = 0; x < nf; x++) {
      for (int y = 0; y < nf; y++) {
        int a = f->idx[x], b = f->idx[y];
        C[x * nf + y] = f->A[a * P + b] / sqrt(f->A[a * P + a] * f->A[b * P + b]);
      }
    }
    // eigenvalues (ascending) and vectors of C; near-zero ones name the entries of their vectors
    double* V = (double*)malloc(sizeof(double) * (size_t)nf * nf);
    if (!V) {
      return dso_error(err, DSO_ERR_MEMORY, "fit covariance: out of memory");
    }
    memcpy(V, C, sizeof(double) * (size_t)nf * nf);
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', nf, V, nf, w);
    if (info != 0) {
      free(V);
      return dso_error(err, DSO_ERR_NUMERIC, "fit covariance: eigen decomposition failed (%d)",
                       (int)info);
    }
    for (int k = 0; k < nf; k++) {
      if (w[k] > 1e-12 * w[nf - 1]) {
        continue;
      }
      singular = 1;
      for (int x = 0; x < nf; x++) {
        if (fabs(V[x * nf + k]) > 0.3) {
          len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0,
                                  "%s%s", len ? ", " : "",
                                  f->theta->entry[f->fit[f->idx[x]]].name);
        }
      }
    }
    free(V);
  }
  if (singular) {
    return dso_error(err, DSO_ERR_NUMERIC,
                     "fit covariance: JᵀJ is singular; the data do not identify: %s", names);
  }
  // C^-1 (full, symmetric), then (A_FF)^-1 = D^-1/2 C^-1 D^-1/2 into C
  if (nf > 0 && (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', nf, C, nf) != 0 ||
                 LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', nf, C, nf) != 0)) {
    return dso_error(err, DSO_ERR_NUMERIC, "fit covariance: JᵀJ is not positive definite");
  }
  for (int x = 0; x < nf; x++) {
    for (int y = 0; y < x; y++) {
      C[x * nf + y] = C[y * nf + x];
    }
  }
  for (int x = 0; x < nf; x++) {
    for (int y = 0; y < nf; y++) {
      int a = f->idx[x], b = f->idx[y];
      C[x * nf + y] /= sqrt(f->A[a * P + a] * f->A[b * P + b]);
    }
  }
  // V_F into f->meat: s² A⁻¹ (iid), A⁻¹ (Σ_c s_c s_cᵀ) A⁻¹ G / (G - 1) (sandwich) or
  // Σ_c (A - A_c)⁻¹ s_c s_cᵀ (A - A_c)⁻¹ (G - 1) / G (jackknife) over the clusters c: the windows
  // and calibration blocks, and each prior residual
  double* Vf = f->meat;
  memset(Vf, 0, sizeof(double) * (size_t)nf * nf);
  if (kind == DSO_FIT_SE_IID) {
    for (int k = 0; k < nf * nf; k++) {
      Vf[k] = s2 * C[k];
    }
  } else {
    // per cluster c its score s_c = J_cᵀ r_c; the sandwich adds A⁻¹ s_c, the jackknife the
    // change (A - A_c)⁻¹ s_c of θ when the cluster is left out (one Gauss-Newton step), with
    // A_c = J_cᵀ J_c (A⁻¹ s_c where A - A_c is singular)
    int jack = kind == DSO_FIT_SE_JACKKNIFE;
    double* B = (double*)calloc((size_t)nf * nf + 1, sizeof(double));
    double* wv = (double*)calloc((size_t)nf + 1, sizeof(double));
    if (!B || !wv) {
      free(B);
      free(wv);
      return dso_error(err, DSO_ERR_MEMORY, "fit covariance: out of memory");
    }
    size_t R = (size_t)f->nres;
    for (int c = 0; c < G; c++) {
      long r0, r1;
      if (c < f->nitem) {
        const dsoFitItem* it = &f->item[c];
        r0 = it->roff;
        r1 = r0 + it->nres;
      } else {
        r0 = f->nsysid + f->ncalib + (c - f->nitem);
        r1 = r0 + 1;
      }
      for (int x = 0; x < nf; x++) {
        const double* row = f->Jt + (size_t)f->idx[x] * R;
        double sc = 0;
        for (long k = r0; k < r1; k++) {
          sc += row[k] * f->r[k];
        }
        f->score[x] = sc;
      }
      int solved = 0;
      if (jack) {
        for (int x = 0; x < nf; x++) {
          const double* rx = f->Jt + (size_t)f->idx[x] * R;
          for (int y = x; y < nf; y++) {
            const double* ry = f->Jt + (size_t)f->idx[y] * R;
            double ac = 0;
            for (long k = r0; k < r1; k++) {
              ac += rx[k] * ry[k];
            }
            B[x * nf + y] = f->A[f->idx[x] * P + f->idx[y]] - ac;
          }
          wv[x] = f->score[x];
        }
        solved = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', nf, 1, B, nf, wv, 1) == 0;
      }
      if (!solved) {
        cblas_dsymv(CblasRowMajor, CblasUpper, nf, 1.0, C, nf, f->score, 1, 0.0, wv, 1);
      }
      cblas_dger(CblasRowMajor, nf, nf, 1.0, wv, 1, wv, 1, Vf, nf);
    }
    double corr = jack ? (double)(G - 1) / G : (double)G / (G - 1);
    for (int k = 0; k < nf * nf; k++) {
      Vf[k] *= corr;
    }
    free(B);
    free(wv);
  }
  if (cov) {
    memset(cov, 0, sizeof(double) * (size_t)n * n);
  }
  if (se) {
    for (int a = 0; a < P; a++) {
      se[f->fit[a]] = NAN;  // on a bound, overwritten below for the free entries
    }
    for (int i = 0; i < n; i++) {
      int fitted = 0;
      for (int a = 0; a < P && !fitted; a++) {
        fitted = f->fit[a] == i;
      }
      if (!fitted) {
        se[i] = 0;
      }
    }
  }
  for (int x = 0; x < nf; x++) {
    int a = f->idx[x];
    for (int y = 0; y < nf; y++) {
      int b = f->idx[y];
      double c = 0.5 * (Vf[x * nf + y] + Vf[y * nf + x]);
      if (cov) {
        cov[(size_t)f->fit[a] * n + f->fit[b]] = c / (f->dvdu[a] * f->dvdu[b]);
      }
    }
    if (se) {
      se[f->fit[a]] = sqrt(Vf[x * nf + x]);
    }
  }
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// validation

int dso_fit_nvalidation(const dsoFit* f) {
  return f ? f->nval : 0;
}

// simulates episode e from its first sample with the recorded controls, open loop, in sim (θ
// written); qpos (T x nq, may be NULL) receives every sample, row 0 the recorded start; *sumsq
// (may be NULL) the sum over samples 1..T-1 of the squared error of qpos entry qidx
static dsoStatus simulate_episode(dsoFit* f, dsoSim* sim, int e, double* qpos, int qidx,
                                  double* sumsq, dsoError* err) {
  const dsoEpisode* ep = &f->data->episode[e];
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  set_recorded(f, sim, e, 0);
  if (qpos) {
    mju_copy(qpos, d->qpos, m->nq);
  }
  double s = 0;
  for (int t = 1; t < ep->T; t++) {
    mju_copy(d->ctrl, ep->ctrl + (size_t)(t - 1) * m->nu, m->nu);
    dsoError e2 = {0};
    dsoStatus st = dso_sim_step(sim, &e2);
    f->steps++;
    if (st != DSO_OK) {
      return dso_error(err, DSO_ERR_NUMERIC, "fit: episode %ld diverged at sample %d of %d "
                       "(simulated open loop from its first sample)", ep->id, t, ep->T);
    }
    if (qpos) {
      mju_copy(qpos + (size_t)t * m->nq, d->qpos, m->nq);
    }
    if (qidx >= 0) {
      double x = d->qpos[qidx] - ep->qpos[(size_t)t * m->nq + qidx];
      s += x * x;
    }
  }
  if (sumsq) {
    *sumsq = s;
  }
  return DSO_OK;
}

int dso_fit_validation_episode(const dsoFit* f, int v) {
  return f && v >= 0 && v < f->nval ? f->val[v] : -1;
}

dsoStatus dso_fit_simulate(dsoFit* f, const double* u, int episode, double* qpos,
                           dsoError* err) {
  if (episode < 0 || episode >= f->data->nepisode) {
    return dso_error(err, DSO_ERR_INPUT, "fit: episode %d outside [0, %d)", episode,
                     f->data->nepisode);
  }
  dsoSim* sim = f->sim[0];
  dsoStatus st = dso_sim_write(sim, f->theta, u, err);
  return st ? st : simulate_episode(f, sim, episode, qpos, -1, NULL, err);
}

dsoStatus dso_fit_validation(dsoFit* f, const double* u, int qpos_index, double* rms, int nrms,
                             double* total, dsoError* err) {
  const mjModel* m0 = f->m;
  if (qpos_index < 0 || qpos_index >= m0->nq) {
    return dso_error(err, DSO_ERR_INPUT, "fit validation: qpos index %d outside [0, %d)",
                     qpos_index, m0->nq);
  }
  if (!f->data->has[DSO_DATA_QPOS][qpos_index]) {
    return dso_error(err, DSO_ERR_INPUT, "fit validation: qpos entry %d is not recorded",
                     qpos_index);
  }
  if (rms && nrms < f->nval) {
    return dso_error(err, DSO_ERR_INPUT, "fit validation: rms has room for %d episodes, need %d",
                     nrms, f->nval);
  }
  dsoSim* sim = f->sim[0];
  dsoStatus st = dso_sim_write(sim, f->theta, u, err);
  if (st != DSO_OK) {
    return st;
  }
  double sall = 0;
  long nall = 0;
  for (int v = 0; v < f->nval; v++) {
    int e = f->val[v];
    const dsoEpisode* ep = &f->data->episode[e];
    double s = 0;
    st = simulate_episode(f, sim, e, NULL, qpos_index, &s, err);
    if (st != DSO_OK) {
      return st;
    }
    sall += s;
    nall += ep->T - 1;
    if (rms) {
      rms[v] = ep->T > 1 ? sqrt(s / (ep->T - 1)) : 0;
    }
  }
  if (total) {
    *total = nall ? sqrt(sall / nall) : 0;
  }
  return DSO_OK;
}
