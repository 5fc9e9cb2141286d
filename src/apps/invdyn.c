// Inverse-dynamics identification: torque residuals from filtered recorded motion and their
// Jacobian (see invdyn.h).
#include "apps/invdyn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/filter.h"
#include "core/parallel.h"
#include "mujoco/mj.h"
#include "mujoco/sim.h"

struct dsoInvdyn_;

// one thread's share: samples [begin, end) and its own model copy
typedef struct {
  struct dsoInvdyn_* inv;
  dsoSim* sim;
  double* u;        // (n) perturbed copy of u
  double* rbuf;     // (nv) residuals of one sample
  int begin, end;
  const double* u_in;
  double* r;
  double* J;
  int cur;          // sample being evaluated (for messages)
  long calls, bad;
  dsoStatus status;
  dsoError err;
} dsoInvdynWorker;

struct dsoInvdyn_ {
  const mjModel* m;
  const dsoTheta* theta;
  const dsoDataset* data;
  dsoInvdynSettings set;  // copy; torque_scale owned
  int skip;               // resolved
  double* iscale;         // (nv) 1 / torque_scale
  int nep;
  int* slot;              // (data->nepisode) index into the kinematics, -1 for unused episodes
  double** q;             // (nep) (T x nv) filtered positions
  double** qd;            // (nep) (T x nv)
  double** qdd;           // (nep) (T x nv)
  double** ctrl;          // (nep) (T x nu) controls as used (filtered when set.filter_ctrl)
  int nsample;
  int* samp_ep;           // (nsample) dataset episode
  int* samp_t;            // (nsample) sample within it
  char* keep;             // (nsample x nv) 1: residual used, 0: dof slower than min_speed (r = 0)
  int nres;
  char* fitted;           // (n) 1 for fitted entries
  int* fd;                // fitted entries done by finite differences (nfd)
  int nfd;
  int* an;                // fitted entries done analytically (nan)
  int nan;
  int nfit;
  int nthread;
  dsoInvdynWorker* work;  // (nthread)
  long calls, bad;
};

// ---------------------------------------------------------------------------------------------
// settings

dsoStatus dso_invdyn_settings_default(dsoInvdynSettings* s, const mjModel* m, dsoError* err) {
  memset(s, 0, sizeof(*s));
  s->cutoff = 10;
  s->order = 4;
  s->filter_ctrl = 1;
  s->ctrl_hold = 1;
  s->skip = -1;
  s->stride = 1;
  s->min_speed = 0;
  s->threads = 2;
  s->nv = m->nv;
  s->torque_scale = (double*)malloc(sizeof(double) * ((size_t)m->nv + 1));
  if (!s->torque_scale) {
    return dso_error(err, DSO_ERR_MEMORY, "inverse dynamics settings: out of memory");
  }
  for (int i = 0; i < m->nv; i++) {
    s->torque_scale[i] = 1.0;
  }
  return DSO_OK;
}

void dso_invdyn_settings_free(dsoInvdynSettings* s) {
  if (!s) {
    return;
  }
  free(s->torque_scale);
  s->torque_scale = NULL;
}

// ---------------------------------------------------------------------------------------------
// setup

void dso_invdyn_free(dsoInvdyn* inv) {
  if (!inv) {
    return;
  }
  if (inv->work) {
    for (int t = 0; t < inv->nthread; t++) {
      dso_sim_free(inv->work[t].sim);
      free(inv->work[t].u);
      free(inv->work[t].rbuf);
    }
  }
  for (int k = 0; k < inv->nep; k++) {
    if (inv->q) {
      free(inv->q[k]);
    }
    if (inv->qd) {
      free(inv->qd[k]);
    }
    if (inv->qdd) {
      free(inv->qdd[k]);
    }
    if (inv->ctrl) {
      free(inv->ctrl[k]);
    }
  }
  free(inv->set.torque_scale);
  free(inv->iscale);
  free(inv->slot);
  free(inv->q);
  free(inv->qd);
  free(inv->qdd);
  free(inv->ctrl);
  free(inv->samp_ep);
  free(inv->samp_t);
  free(inv->keep);
  free(inv->fitted);
  free(inv->fd);
  free(inv->an);
  free(inv->work);
  free(inv);
}

static dsoStatus check_settings(const dsoInvdynSettings* s, const mjModel* m, dsoError* err) {
  if (!(s->cutoff >= 0) || !isfinite(s->cutoff)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: cutoff is %g Hz, expected a number >= 0 (0: no filter)",
                     s->cutoff);
  }
  if (s->order < 1 || s->order > DSO_FILTER_MAX_ORDER) {
    return dso_error(err, DSO_ERR_INPUT, "inverse dynamics: order is %d, expected 1 to %d",
                     s->order, DSO_FILTER_MAX_ORDER);
  }
  if (s->skip < -1 || s->stride < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: skip is %d and stride %d, expected skip >= -1 (-1: "
                     "automatic) and stride >= 1",
                     s->skip, s->stride);
  }
  if (!(s->min_speed >= 0) || !isfinite(s->min_speed)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: min_speed is %g, expected a finite number >= 0",
                     s->min_speed);
  }
  if (s->threads < 1 || s->threads > DSO_INVDYN_MAX_THREADS) {
    return dso_error(err, DSO_ERR_INPUT, "inverse dynamics: threads is %d, expected 1 to %d",
                     s->threads, DSO_INVDYN_MAX_THREADS);
  }
  if (s->torque_scale) {
    if (s->nv != m->nv) {
      return dso_error(err, DSO_ERR_INPUT,
                       "inverse dynamics: torque_scale has %d entries, the model has nv %d",
                       s->nv, m->nv);
    }
    for (int i = 0; i < m->nv; i++) {
      if (!(s->torque_scale[i] > 0) || !isfinite(s->torque_scale[i])) {
        return dso_error(err, DSO_ERR_INPUT,
                         "inverse dynamics: torque_scale[%d] is %g, expected a finite number > 0",
                         i, s->torque_scale[i]);
      }
    }
  }
  return DSO_OK;
}

static dsoStatus check_model_data(const mjModel* m, const dsoDataset* data, dsoError* err) {
  for (int j = 0; j < m->njnt; j++) {
    if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) {
      const char* name = mj_id2name(m, mjOBJ_JOINT, j);
      return dso_error(err, DSO_ERR_INPUT,
                       "inverse dynamics: joint %d (%s) is a %s joint; only hinge and slide "
                       "joints are supported",
                       j, name ? name : "unnamed", m->jnt_type[j] == mjJNT_BALL ? "ball" : "free");
    }
  }
  if (m->na > 0) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: the model has %d actuator activation states; only "
                     "actuators without dynamics (na = 0) are supported",
                     m->na);
  }
  if (data->nq != m->nq || data->nv != m->nv || data->nu != m->nu ||
      data->nsensordata != m->nsensordata) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: the dataset was made for a model with nq %d, nv %d, nu "
                     "%d, nsensordata %d; this model has %d, %d, %d, %d",
                     data->nq, data->nv, data->nu, data->nsensordata, m->nq, m->nv, m->nu,
                     m->nsensordata);
  }
  if (!(data->dt > 0) || !isfinite(data->dt)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: the dataset has no uniform sample spacing (dt %g s); "
                     "resample it (data.resample true)",
                     data->dt);
  }
  for (int i = 0; i < m->nq; i++) {
    if (!data->has[DSO_DATA_QPOS][i]) {
      char name[256];
      dso_dataset_column_name(name, sizeof(name), m, DSO_DATA_QPOS, i);
      return dso_error(err, DSO_ERR_INPUT,
                       "inverse dynamics: the dataset does not record %s; every joint position "
                       "is needed",
                       name);
    }
  }
  return DSO_OK;
}

// filtered q and its derivatives for episode e into slot k
static dsoStatus episode_kinematics(dsoInvdyn* inv, int e, int k, const dsoButter* bf,
                                    double* work, dsoError* err) {
  const dsoEpisode* ep = &inv->data->episode[e];
  int nv = inv->m->nv, T = ep->T;
  double dt = inv->data->dt;
  double* q = inv->q[k];
  for (int i = 0; i < nv; i++) {
    dsoStatus st = DSO_OK;
    if (bf) {
      st = dso_filtfilt(q + i, nv, ep->qpos + i, nv, T, bf, work, err);
    } else {
      for (int t = 0; t < T; t++) {
        q[(size_t)t * nv + i] = ep->qpos[(size_t)t * nv + i];
      }
    }
    if (st == DSO_OK) {
      st = dso_diff1(inv->qd[k] + i, nv, q + i, nv, T, dt, err);
    }
    if (st == DSO_OK) {
      st = dso_diff2(inv->qdd[k] + i, nv, q + i, nv, T, dt, err);
    }
    if (st != DSO_OK) {
      dso_error_prefix(err, "inverse dynamics: episode %ld, qpos entry %d: ", ep->id, i);
      return st;
    }
  }
  // controls: held ones averaged over the two steps around each sample (what the central
  // differences see), then through the same filter, so that both sides see the same band
  int nu = inv->m->nu;
  double* c = inv->ctrl[k];
  for (int i = 0; i < nu; i++) {
    dsoStatus st = DSO_OK;
    for (int t = 0; t < T; t++) {
      double v = ep->ctrl[(size_t)t * nu + i];
      if (inv->set.ctrl_hold && t > 0) {
        v = 0.5 * (v + ep->ctrl[(size_t)(t - 1) * nu + i]);
      }
      c[(size_t)t * nu + i] = v;
    }
    if (bf && inv->set.filter_ctrl) {
      st = dso_filtfilt(c + i, nu, c + i, nu, T, bf, work, err);
    }
    if (st != DSO_OK) {
      dso_error_prefix(err, "inverse dynamics: episode %ld, ctrl entry %d: ", ep->id, i);
      return st;
    }
  }
  return DSO_OK;
}

// keep flags of the samples of kinematics slot k
static void update_keep(dsoInvdyn* inv, int k) {
  int nv = inv->m->nv;
  for (int s = 0; s < inv->nsample; s++) {
    if (inv->slot[inv->samp_ep[s]] != k) {
      continue;
    }
    const double* qd = inv->qd[k] + (size_t)inv->samp_t[s] * nv;
    for (int i = 0; i < nv; i++) {
      inv->keep[(size_t)s * nv + i] = !(fabs(qd[i]) < inv->set.min_speed);
    }
  }
}

static int analytic_kind(dsoBindKind k) {
  return k == DSO_BIND_DOF_DAMPING || k == DSO_BIND_DOF_FORCE;
}

dsoInvdyn* dso_invdyn_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                             const dsoInvdynSettings* s, dsoError* err) {
  if (!m || !theta || !data) {
    dso_error(err, DSO_ERR_INPUT, "inverse dynamics: model, theta and data are required");
    return NULL;
  }
  dsoInvdynSettings set;
  if (s) {
    set = *s;
  } else {
    set.cutoff = 10;
    set.order = 4;
    set.filter_ctrl = 1;
    set.ctrl_hold = 1;
    set.skip = -1;
    set.stride = 1;
    set.min_speed = 0;
    set.threads = 2;
    set.nv = m->nv;
    set.torque_scale = NULL;
  }
  if (check_settings(&set, m, err) || check_model_data(m, data, err)) {
    return NULL;
  }
  dsoInvdyn* inv = (dsoInvdyn*)calloc(1, sizeof(dsoInvdyn));
  if (!inv) {
    dso_error(err, DSO_ERR_MEMORY, "inverse dynamics: out of memory");
    return NULL;
  }
  inv->m = m;
  inv->theta = theta;
  inv->data = data;
  inv->set = set;
  inv->set.torque_scale = NULL;
  int nv = m->nv, n = theta->n, nep = data->nepisode;
  double dt = data->dt;
  inv->set.nv = nv;
  inv->set.torque_scale = (double*)malloc(sizeof(double) * ((size_t)nv + 1));
  inv->iscale = (double*)malloc(sizeof(double) * ((size_t)nv + 1));
  inv->slot = (int*)malloc(sizeof(int) * ((size_t)nep + 1));
  inv->q = (double**)calloc((size_t)nep + 1, sizeof(double*));
  inv->qd = (double**)calloc((size_t)nep + 1, sizeof(double*));
  inv->qdd = (double**)calloc((size_t)nep + 1, sizeof(double*));
  inv->ctrl = (double**)calloc((size_t)nep + 1, sizeof(double*));
  inv->fitted = (char*)calloc((size_t)n + 1, 1);
  inv->fd = (int*)calloc((size_t)n + 1, sizeof(int));
  inv->an = (int*)calloc((size_t)n + 1, sizeof(int));
  if (!inv->set.torque_scale || !inv->iscale || !inv->slot || !inv->q || !inv->qd || !inv->qdd ||
      !inv->ctrl || !inv->fitted || !inv->fd || !inv->an) {
    goto oom;
  }
  for (int i = 0; i < nv; i++) {
    inv->set.torque_scale[i] = set.torque_scale ? set.torque_scale[i] : 1.0;
    inv->iscale[i] = 1.0 / inv->set.torque_scale[i];
  }

  // skip and filter
  dsoButter bf;
  if (set.cutoff > 0) {
    if (dso_butter_design(&bf, set.order, set.cutoff, 1.0 / dt, err) != DSO_OK) {
      dso_error_prefix(err, "inverse dynamics (dataset sampled every %g s): ", dt);
      dso_invdyn_free(inv);
      return NULL;
    }
  }
  if (set.skip >= 0) {
    inv->skip = set.skip;
  } else if (set.cutoff > 0) {
    double k = ceil(2.0 / (set.cutoff * dt) - 1e-9);
    inv->skip = k > 1e8 ? 100000000 : (int)k;
  } else {
    inv->skip = 1;
  }

  // training episodes (all when every or no episode is a validation episode is refused below)
  int nval = dso_dataset_nvalidation(data);
  if (nval == nep) {
    dso_error(err, DSO_ERR_INPUT,
              "inverse dynamics: every episode of the dataset is a validation episode");
    dso_invdyn_free(inv);
    return NULL;
  }
  long nsample = 0;
  int Tmax = 0;
  for (int e = 0; e < nep; e++) {
    const dsoEpisode* ep = &data->episode[e];
    inv->slot[e] = -1;
    if (nval > 0 && ep->validation) {
      continue;
    }
    int need = 2 * inv->skip + 1 > 4 ? 2 * inv->skip + 1 : 4;
    if (ep->T < need) {
      dso_error(err, DSO_ERR_INPUT,
                "inverse dynamics: episode %ld has %d samples, need at least %d (skip %d at "
                "each end)",
                ep->id, ep->T, need, inv->skip);
      dso_invdyn_free(inv);
      return NULL;
    }
    inv->slot[e] = inv->nep++;
    nsample += (ep->T - 2 * inv->skip + set.stride - 1) / set.stride;
    Tmax = ep->T > Tmax ? ep->T : Tmax;
  }
  if (nsample * nv > 2000000000L / (n + 1)) {
    dso_error(err, DSO_ERR_INPUT,
              "inverse dynamics: %ld samples of %d dofs are too many; raise stride", nsample, nv);
    dso_invdyn_free(inv);
    return NULL;
  }
  inv->nsample = (int)nsample;
  inv->nres = (int)(nsample * nv);
  inv->samp_ep = (int*)malloc(sizeof(int) * ((size_t)nsample + 1));
  inv->samp_t = (int*)malloc(sizeof(int) * ((size_t)nsample + 1));
  inv->keep = (char*)malloc((size_t)nsample * nv + 1);
  double* work =
      (double*)malloc(sizeof(double) * (set.cutoff > 0 ? dso_filtfilt_work_size(&bf, Tmax) : 1));
  if (!inv->samp_ep || !inv->samp_t || !inv->keep || !work) {
    free(work);
    goto oom;
  }
  int si = 0;
  for (int e = 0; e < nep; e++) {
    int k = inv->slot[e];
    if (k < 0) {
      continue;
    }
    int T = data->episode[e].T;
    size_t sz = sizeof(double) * ((size_t)T * nv + 1);
    inv->q[k] = (double*)malloc(sz);
    inv->qd[k] = (double*)malloc(sz);
    inv->qdd[k] = (double*)malloc(sz);
    inv->ctrl[k] = (double*)malloc(sizeof(double) * ((size_t)T * m->nu + 1));
    if (!inv->q[k] || !inv->qd[k] || !inv->qdd[k] || !inv->ctrl[k]) {
      free(work);
      goto oom;
    }
    if (episode_kinematics(inv, e, k, set.cutoff > 0 ? &bf : NULL, work, err) != DSO_OK) {
      free(work);
      dso_invdyn_free(inv);
      return NULL;
    }
    for (int t = inv->skip; t < T - inv->skip; t += set.stride) {
      inv->samp_ep[si] = e;
      inv->samp_t[si] = t;
      si++;
    }
  }
  free(work);
  for (int k = 0; k < inv->nep; k++) {
    update_keep(inv, k);
  }

  // fitted entries
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->fixed || e->block != DSO_BLOCK_PHYSICS || e->bind.kind == DSO_BIND_NONE) {
      continue;
    }
    inv->fitted[i] = 1;
    inv->nfit++;
    if (analytic_kind(e->bind.kind)) {
      inv->an[inv->nan++] = i;
    } else {
      inv->fd[inv->nfd++] = i;
    }
  }

  // threads
  inv->nthread = set.threads < inv->nsample ? set.threads : inv->nsample;
  if (inv->nthread < 1) {
    inv->nthread = 1;
  }
  inv->work = (dsoInvdynWorker*)calloc((size_t)inv->nthread, sizeof(dsoInvdynWorker));
  if (!inv->work) {
    goto oom;
  }
  for (int t = 0; t < inv->nthread; t++) {
    dsoInvdynWorker* w = &inv->work[t];
    w->inv = inv;
    w->begin = (int)((long)inv->nsample * t / inv->nthread);
    w->end = (int)((long)inv->nsample * (t + 1) / inv->nthread);
    w->sim = dso_sim_create(m, err);
    if (!w->sim) {
      dso_invdyn_free(inv);
      return NULL;
    }
    w->u = (double*)calloc((size_t)n + 1, sizeof(double));
    w->rbuf = (double*)calloc((size_t)nv + 1, sizeof(double));
    if (!w->u || !w->rbuf) {
      goto oom;
    }
  }
  return inv;

oom:
  dso_invdyn_free(inv);
  dso_error(err, DSO_ERR_MEMORY, "inverse dynamics: out of memory");
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// queries

int dso_invdyn_nresidual(const dsoInvdyn* inv) {
  return inv ? inv->nres : 0;
}

int dso_invdyn_fitted(const dsoInvdyn* inv, int i) {
  return inv && i >= 0 && i < inv->theta->n ? inv->fitted[i] : 0;
}

void dso_invdyn_info(const dsoInvdyn* inv, dsoInvdynInfo* info) {
  memset(info, 0, sizeof(*info));
  info->nresidual = inv->nres;
  info->nsample = inv->nsample;
  info->nepisode = inv->nep;
  info->nfitted = inv->nfit;
  info->skip = inv->skip;
  info->calls = inv->calls;
  info->bad = inv->bad;
}

int dso_invdyn_sample(const dsoInvdyn* inv, int i, int* t) {
  if (!inv || i < 0 || i >= inv->nsample) {
    return -1;
  }
  if (t) {
    *t = inv->samp_t[i];
  }
  return inv->samp_ep[i];
}

static dsoStatus training_slot(const dsoInvdyn* inv, int e, int* k, dsoError* err) {
  if (e < 0 || e >= inv->data->nepisode || inv->slot[e] < 0) {
    return dso_error(err, DSO_ERR_INPUT,
                     "inverse dynamics: episode %d is not a training episode of the dataset "
                     "(%d episodes)",
                     e, inv->data->nepisode);
  }
  *k = inv->slot[e];
  return DSO_OK;
}

dsoStatus dso_invdyn_kinematics(const dsoInvdyn* inv, int e, const double** q, const double** qd,
                                const double** qdd, dsoError* err) {
  int k = 0;
  dsoStatus st = training_slot(inv, e, &k, err);
  if (st != DSO_OK) {
    return st;
  }
  if (q) {
    *q = inv->q[k];
  }
  if (qd) {
    *qd = inv->qd[k];
  }
  if (qdd) {
    *qdd = inv->qdd[k];
  }
  return DSO_OK;
}

dsoStatus dso_invdyn_set_kinematics(dsoInvdyn* inv, int e, const double* q, const double* qd,
                                    const double* qdd, dsoError* err) {
  int k = 0;
  dsoStatus st = training_slot(inv, e, &k, err);
  if (st != DSO_OK) {
    return st;
  }
  size_t len = (size_t)inv->data->episode[e].T * inv->m->nv;
  const double* src[3] = {q, qd, qdd};
  const char* what[3] = {"q", "qd", "qdd"};
  for (int a = 0; a < 3; a++) {
    for (size_t i = 0; i < len; i++) {
      if (!isfinite(src[a][i])) {
        return dso_error(err, DSO_ERR_NUMERIC,
                         "inverse dynamics: episode %d: %s[%zu] is not finite", e, what[a], i);
      }
    }
  }
  memcpy(inv->q[k], q, sizeof(double) * len);
  memcpy(inv->qd[k], qd, sizeof(double) * len);
  memcpy(inv->qdd[k], qdd, sizeof(double) * len);
  update_keep(inv, k);
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// residuals and Jacobian

// residuals of sample s into out (nv) with θ as written into w->sim
static void eval_sample(dsoInvdynWorker* w, int s, double* out) {
  dsoInvdyn* inv = w->inv;
  const mjModel* m = dso_sim_model(w->sim);
  mjData* d = dso_sim_data(w->sim);
  int e = inv->samp_ep[s], t = inv->samp_t[s], k = inv->slot[e], nv = m->nv;
  w->cur = s;
  mju_copy(d->qpos, inv->q[k] + (size_t)t * nv, nv);
  mju_copy(d->qvel, inv->qd[k] + (size_t)t * nv, nv);
  mju_copy(d->qacc, inv->qdd[k] + (size_t)t * nv, nv);
  mju_copy(d->ctrl, inv->ctrl[k] + (size_t)t * m->nu, m->nu);
  mju_zero(d->xfrc_applied, 6 * m->nbody);
  mju_copy(d->qfrc_applied, dso_sim_qfrc(w->sim), nv);
  mj_inverse(m, d);
  mj_fwdActuation(m, d);
  w->calls++;
  const char* keep = inv->keep + (size_t)s * nv;
  for (int i = 0; i < nv; i++) {
    double v = (d->qfrc_actuator[i] + d->qfrc_applied[i] - d->qfrc_inverse[i]) * inv->iscale[i];
    if (!keep[i]) {
      v = 0;
    } else if (!isfinite(v)) {
      v = DSO_INVDYN_BAD;
      w->bad++;
    }
    out[i] = v;
  }
}

static double fd_step(double u) {
  return 1e-4 * (1.0 + fabs(u));
}

// the worker's samples: r, then (J not NULL) the analytic columns, then the finite differences;
// runs inside dso_mj_trap
static void worker_run(void* arg) {
  dsoInvdynWorker* w = (dsoInvdynWorker*)arg;
  dsoInvdyn* inv = w->inv;
  const dsoTheta* th = inv->theta;
  int n = th->n, nv = inv->m->nv;
  w->status = dso_sim_write(w->sim, th, w->u_in, &w->err);
  if (w->status != DSO_OK) {
    return;
  }
  for (int s = w->begin; s < w->end; s++) {
    eval_sample(w, s, w->r + (size_t)s * nv);
  }
  if (!w->J) {
    return;
  }
  double* J = w->J;
  memset(J + (size_t)w->begin * nv * n, 0, sizeof(double) * (size_t)(w->end - w->begin) * nv * n);
  for (int c = 0; c < inv->nan; c++) {
    int i = inv->an[c];
    const dsoThetaEntry* e = &th->entry[i];
    int dof = e->bind.target;
    double dvdu = dso_theta_entry_jacobian(e, w->u_in[i]);
    for (int s = w->begin; s < w->end; s++) {
      size_t row = (size_t)s * nv + dof;
      double g;
      if (e->bind.kind == DSO_BIND_DOF_DAMPING) {
        int k = inv->slot[inv->samp_ep[s]];
        g = -inv->qd[k][(size_t)inv->samp_t[s] * nv + dof];
      } else {
        g = 1.0;
      }
      J[row * n + i] = inv->keep[row] ? g * inv->iscale[dof] * dvdu : 0.0;
    }
  }
  memcpy(w->u, w->u_in, sizeof(double) * (size_t)n);
  for (int c = 0; c < inv->nfd; c++) {
    int i = inv->fd[c];
    double h = fd_step(w->u_in[i]);
    for (int side = 0; side < 2; side++) {
      w->u[i] = w->u_in[i] + (side ? -h : h);
      w->status = dso_sim_write(w->sim, th, w->u, &w->err);
      if (w->status != DSO_OK) {
        return;
      }
      for (int s = w->begin; s < w->end; s++) {
        eval_sample(w, s, w->rbuf);
        for (int a = 0; a < nv; a++) {
          double* Jp = &J[((size_t)s * nv + a) * n + i];
          *Jp = side ? (*Jp - w->rbuf[a]) / (2.0 * h) : w->rbuf[a];
        }
      }
    }
    w->u[i] = w->u_in[i];
  }
}

// the body of the parallel for: item t is worker t's block of samples (its own simulator and
// buffers, item-indexed outputs: results do not depend on which thread runs it)
static void worker_item(void* ctx, int item, int thread) {
  (void)thread;
  dsoInvdynWorker* w = &((dsoInvdynWorker*)ctx)[item];
  dsoError e = {0};
  dsoStatus st = dso_mj_trap(worker_run, w, &e);
  if (st != DSO_OK && w->status == DSO_OK) {
    const dsoInvdyn* inv = w->inv;
    int s = w->cur;
    w->status = st;
    dso_error(&w->err, st, "episode %ld, sample %d: %s",
              inv->data->episode[inv->samp_ep[s]].id, inv->samp_t[s], e.msg);
  }
}

dsoStatus dso_invdyn_residual(dsoInvdyn* inv, const double* u, double* r, double* J,
                              dsoError* err) {
  const dsoTheta* th = inv->theta;
  for (int i = 0; i < th->n; i++) {
    if (!isfinite(u[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "inverse dynamics: %s: u is not finite",
                       th->entry[i].name);
    }
  }
  int nt = inv->nthread;
  for (int t = 0; t < nt; t++) {
    dsoInvdynWorker* w = &inv->work[t];
    w->u_in = u;
    w->r = r;
    w->J = J;
    w->cur = w->begin;
    w->calls = 0;
    w->bad = 0;
    w->status = DSO_OK;
    dso_error_clear(&w->err);
  }
  dso_parallel_for(nt, nt, worker_item, inv->work);
  dsoStatus st = DSO_OK;
  for (int t = 0; t < nt; t++) {
    dsoInvdynWorker* w = &inv->work[t];
    inv->calls += w->calls;
    inv->bad += w->bad;
    if (w->status != DSO_OK && st == DSO_OK) {
      st = w->status;
      dso_error(err, st, "inverse dynamics: %s", w->err.msg);
    }
  }
  return st;
}
