#include "mujoco/deriv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

void dso_deriv_settings_default(dsoDerivSettings* s) {
  s->eps_state = 1e-6;
  s->eps_theta = 1e-6;
  s->centered = 1;
}

// smallest magnitude a step is scaled to, per field, so that zero values still get a step
static double step_floor(dsoBindKind kind) {
  switch (kind) {
    case DSO_BIND_BODY_INERTIA:
    case DSO_BIND_DOF_ARMATURE: return 1e-4;
    case DSO_BIND_GRAVITY: return 1.0;
    default: return 1e-2;
  }
}

static int changes_dynamics(dsoBindKind kind) {
  return dso_bind_block(kind) == DSO_BLOCK_PHYSICS;
}

void dso_deriv_free(dsoDeriv* dv) {
  if (!dv) {
    return;
  }
  dso_sim_free(dv->nominal);
  for (int i = 0; i < dv->nphys; i++) {
    if (dv->plus) dso_sim_free(dv->plus[i]);
    if (dv->minus) dso_sim_free(dv->minus[i]);
  }
  free(dv->plus);
  free(dv->minus);
  free(dv->index);
  free(dv->hu);
  free(dv->xp);
  free(dv->xm);
  free(dv->x0);
  free(dv->dx);
  free(dv->sp);
  free(dv->sm);
  free(dv->xs);
  free(dv);
}

dsoDeriv* dso_deriv_create(const mjModel* base, const dsoTheta* theta,
                           const dsoDerivSettings* settings, dsoError* err) {
  dsoDeriv* dv = (dsoDeriv*)calloc(1, sizeof(dsoDeriv));
  if (!dv) {
    dso_error(err, DSO_ERR_MEMORY, "derivatives: out of memory");
    return NULL;
  }
  if (settings) {
    dv->set = *settings;
  } else {
    dso_deriv_settings_default(&dv->set);
  }
  if (!(dv->set.eps_state > 0) || !(dv->set.eps_theta > 0)) {
    dso_deriv_free(dv);
    dso_error(err, DSO_ERR_INPUT, "derivatives: eps_state and eps_theta must be > 0");
    return NULL;
  }
  int n = 0;
  for (int i = 0; i < theta->n; i++) {
    n += changes_dynamics(theta->entry[i].bind.kind);
  }
  size_t nx = (size_t)dso_mj_state_size(base), ndx = (size_t)dso_mj_tangent_size(base);
  dv->index = (int*)calloc((size_t)n + 1, sizeof(int));
  dv->hu = (double*)calloc((size_t)n + 1, sizeof(double));
  dv->plus = (dsoSim**)calloc((size_t)n + 1, sizeof(dsoSim*));
  dv->minus = (dsoSim**)calloc((size_t)n + 1, sizeof(dsoSim*));
  dv->xp = (double*)calloc(nx + 1, sizeof(double));
  dv->xm = (double*)calloc(nx + 1, sizeof(double));
  dv->x0 = (double*)calloc(nx + 1, sizeof(double));
  dv->dx = (double*)calloc(ndx + 1, sizeof(double));
  dv->sp = (double*)calloc((size_t)base->nsensordata + 1, sizeof(double));
  dv->sm = (double*)calloc((size_t)base->nsensordata + 1, sizeof(double));
  dv->xs = (double*)calloc(nx + 1, sizeof(double));
  if (!dv->index || !dv->hu || !dv->plus || !dv->minus || !dv->xp || !dv->xm || !dv->x0 ||
      !dv->dx || !dv->sp || !dv->sm || !dv->xs) {
    dso_deriv_free(dv);
    dso_error(err, DSO_ERR_MEMORY, "derivatives: out of memory");
    return NULL;
  }
  if (!dv->set.centered && n > 0 && !(dv->nominal = dso_sim_create(base, err))) {
    dso_deriv_free(dv);
    return NULL;
  }
  for (int i = 0; i < theta->n; i++) {
    if (changes_dynamics(theta->entry[i].bind.kind)) {
      int k = dv->nphys++;
      dv->index[k] = i;
      dv->plus[k] = dso_sim_create(base, err);
      dv->minus[k] = dv->set.centered ? dso_sim_create(base, err) : NULL;
      if (!dv->plus[k] || (dv->set.centered && !dv->minus[k])) {
        dso_deriv_free(dv);
        return NULL;
      }
    }
  }
  return dv;
}

dsoStatus dso_deriv_set_theta(dsoDeriv* dv, const dsoTheta* theta, const double* u,
                              dsoError* err) {
  double* up = (double*)malloc(sizeof(double) * (size_t)(theta->n + 1));
  if (!up) {
    return dso_error(err, DSO_ERR_MEMORY, "derivatives: out of memory");
  }
  memcpy(up, u, sizeof(double) * (size_t)theta->n);
  dsoStatus s = dv->nominal ? dso_sim_write(dv->nominal, theta, u, err) : DSO_OK;
  for (int k = 0; k < dv->nphys && !s; k++) {
    int i = dv->index[k];
    const dsoThetaEntry* e = &theta->entry[i];
    double v = dso_theta_entry_natural(e, u[i]);
    double dvdu = dso_theta_entry_jacobian(e, u[i]);
    // a natural step scaled to the value, expressed in u
    double hv = dv->set.eps_theta * fmax(fabs(v), step_floor(e->bind.kind));
    dv->hu[k] = hv / fmax(dvdu, 1e-300);
    up[i] = u[i] + dv->hu[k];
    s = dso_sim_write(dv->plus[k], theta, up, err);
    if (!s && dv->minus[k]) {
      up[i] = u[i] - dv->hu[k];
      s = dso_sim_write(dv->minus[k], theta, up, err);
    }
    up[i] = u[i];
  }
  free(up);
  return s;
}

// puts the inputs of sim's data (state, controls, warm start, time) into p's data and steps p
static dsoStatus step_copy(dsoSim* p, const dsoSim* sim, double* xnext, dsoError* err) {
  const mjModel* m = dso_sim_model_const(sim);
  mjData* d = dso_sim_data(p);
  const mjData* s = dso_sim_data_const(sim);
  d->time = s->time;
  mju_copy(d->qpos, s->qpos, m->nq);
  mju_copy(d->qvel, s->qvel, m->nv);
  mju_copy(d->act, s->act, m->na);
  mju_copy(d->ctrl, s->ctrl, m->nu);
  mju_copy(d->qacc_warmstart, s->qacc_warmstart, m->nv);
  mju_copy(d->xfrc_applied, s->xfrc_applied, 6 * m->nbody);
  dsoStatus st = dso_sim_step(p, err);
  dso_mj_state_get(xnext, dso_sim_model(p), d);
  return st;
}

typedef struct {
  const mjModel* m;
  mjData* d;
  double eps;
  int centered;
  double *A, *B, *H;
} dsoTransitionArgs;

static void transition_call(void* p) {
  dsoTransitionArgs* a = (dsoTransitionArgs*)p;
  // MuJoCo 2.2.2 fills C (nsensordata x ndx) with the state Jacobian of the sensors
  mjd_transitionFD(a->m, a->d, a->eps, (mjtByte)a->centered, a->A, a->B, a->H, NULL);
}

dsoStatus dso_deriv_step(dsoDeriv* dv, dsoSim* sim, double* A, double* B, double* H, double* F,
                         dsoError* err) {
  const mjModel* m = dso_sim_model(sim);
  int ndx = dso_mj_tangent_size(m);
  if (F && dv->nphys) {
    if (!dv->set.centered) {
      // the nominal step, on a copy so that sim's data stays as it is
      dsoStatus s = step_copy(dv->nominal, sim, dv->x0, err);
      if (s) {
        return s;
      }
    }
    for (int k = 0; k < dv->nphys; k++) {
      dsoStatus s = DSO_OK;
      if (dv->set.centered) {
        s = step_copy(dv->plus[k], sim, dv->xp, err);
        if (!s) s = step_copy(dv->minus[k], sim, dv->xm, err);
        dso_mj_state_diff(dv->dx, m, dv->xm, dv->xp);
        for (int r = 0; r < ndx; r++) {
          F[r * dv->nphys + k] = dv->dx[r] / (2 * dv->hu[k]);
        }
      } else {
        s = step_copy(dv->plus[k], sim, dv->xp, err);
        dso_mj_state_diff(dv->dx, m, dv->x0, dv->xp);
        for (int r = 0; r < ndx; r++) {
          F[r * dv->nphys + k] = dv->dx[r] / dv->hu[k];
        }
      }
      if (s) {
        return s;
      }
    }
  }
  if (A || B || H) {
    // mjd_transitionFD needs the constant forces in place, as dso_sim_step applies them
    mjData* d = dso_sim_data(sim);
    mju_copy(d->qfrc_applied, dso_sim_qfrc(sim), m->nv);
    dsoTransitionArgs a = {m, d, dv->set.eps_state, dv->set.centered, A, B, H};
    dsoStatus s = dso_mj_trap(transition_call, &a, err);
    if (s) {
      return s;
    }
  }
  return DSO_OK;
}

typedef struct {
  const mjModel* m;
  mjData* d;
} dsoForwardArgs;

static void forward_call(void* p) {
  dsoForwardArgs* a = (dsoForwardArgs*)p;
  mj_forward(a->m, a->d);
}

// sensors of a forward pass of p at the state and controls of src->d
static dsoStatus sensors_of(double* out, dsoSim* p, const mjData* src, dsoError* err) {
  const mjModel* m = dso_sim_model(p);
  mjData* d = dso_sim_data(p);
  if (d != src) {
    d->time = src->time;
    mju_copy(d->qpos, src->qpos, m->nq);
    mju_copy(d->qvel, src->qvel, m->nv);
    mju_copy(d->act, src->act, m->na);
    mju_copy(d->ctrl, src->ctrl, m->nu);
    mju_copy(d->qacc_warmstart, src->qacc_warmstart, m->nv);
    mju_copy(d->xfrc_applied, src->xfrc_applied, 6 * m->nbody);
  }
  mju_copy(d->qfrc_applied, dso_sim_qfrc(p), m->nv);
  dsoForwardArgs a = {m, d};
  dsoStatus s = dso_mj_trap(forward_call, &a, err);
  mju_copy(out, d->sensordata, m->nsensordata);
  return s;
}

dsoStatus dso_deriv_sensors(dsoDeriv* dv, dsoSim* sim, double* Hx, double* Hu, double* Hf,
                            dsoError* err) {
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  int ns = m->nsensordata, ndx = dso_mj_tangent_size(m), nx = dso_mj_state_size(m);
  double h = dv->set.eps_state;
  dsoStatus s = DSO_OK;
  dso_mj_state_get(dv->xs, m, d);
  if (Hx) {
    for (int j = 0; j < ndx && !s; j++) {
      mju_zero(dv->dx, ndx);
      dv->dx[j] = h;
      mju_copy(dv->xp, dv->xs, nx);
      dso_mj_state_integrate(dv->xp, m, dv->dx, 1.0);
      dso_mj_state_set(d, m, dv->xp);
      s = sensors_of(dv->sp, sim, d, err);
      mju_copy(dv->xm, dv->xs, nx);
      dso_mj_state_integrate(dv->xm, m, dv->dx, -1.0);
      dso_mj_state_set(d, m, dv->xm);
      if (!s) s = sensors_of(dv->sm, sim, d, err);
      for (int r = 0; r < ns; r++) {
        Hx[r * ndx + j] = (dv->sp[r] - dv->sm[r]) / (2 * h);
      }
    }
    dso_mj_state_set(d, m, dv->xs);
  }
  if (Hu) {
    for (int j = 0; j < m->nu && !s; j++) {
      double c = d->ctrl[j];
      d->ctrl[j] = c + h;
      s = sensors_of(dv->sp, sim, d, err);
      d->ctrl[j] = c - h;
      if (!s) s = sensors_of(dv->sm, sim, d, err);
      d->ctrl[j] = c;
      for (int r = 0; r < ns; r++) {
        Hu[r * m->nu + j] = (dv->sp[r] - dv->sm[r]) / (2 * h);
      }
    }
  }
  if (Hf) {
    for (int k = 0; k < dv->nphys && !s; k++) {
      s = sensors_of(dv->sp, dv->plus[k], d, err);
      if (!s) {
        s = dv->minus[k] ? sensors_of(dv->sm, dv->minus[k], d, err)
                         : sensors_of(dv->sm, dv->nominal, d, err);
      }
      double den = dv->minus[k] ? 2 * dv->hu[k] : dv->hu[k];
      for (int r = 0; r < ns; r++) {
        Hf[r * dv->nphys + k] = (dv->sp[r] - dv->sm[r]) / den;
      }
    }
  }
  // leave sim's data with its own forward pass, as it was
  if (!s) s = sensors_of(dv->sp, sim, d, err);
  return s;
}
