#include "mujoco/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"

struct dsoSim_ {
  mjModel* m;            // private copy of the base model; θ_f is written here
  mjData* d;             // simulation data
  mjData* scratch;       // work data for mj_setConst (which overwrites the state it is given)
  double* qfrc;          // (nv) constant generalized force from physics.<joint>.force entries
  double* sensor_gain;   // (nsensordata) y = sensor_gain * sensordata + sensor_offset
  double* sensor_offset; // (nsensordata)
  double* action_std;    // (nu) σ of the action noise; 0 where θ has no entry
  double* sensor_std;    // (nsensordata) σ of the sensor noise; 0 where θ has no entry
};

dsoSim* dso_sim_create(const mjModel* base, dsoError* err) {
  dsoSim* sim = (dsoSim*)calloc(1, sizeof(dsoSim));
  if (!sim) {
    dso_error(err, DSO_ERR_MEMORY, "simulator: out of memory");
    return NULL;
  }
  dso_mj_install_handlers();
  sim->m = mj_copyModel(NULL, base);
  sim->d = sim->m ? mj_makeData(sim->m) : NULL;
  sim->scratch = sim->m ? mj_makeData(sim->m) : NULL;
  size_t nv = (size_t)base->nv, ns = (size_t)base->nsensordata, nu = (size_t)base->nu;
  sim->qfrc = (double*)calloc(nv + 1, sizeof(double));
  sim->sensor_gain = (double*)calloc(ns + 1, sizeof(double));
  sim->sensor_offset = (double*)calloc(ns + 1, sizeof(double));
  sim->action_std = (double*)calloc(nu + 1, sizeof(double));
  sim->sensor_std = (double*)calloc(ns + 1, sizeof(double));
  if (!sim->m || !sim->d || !sim->scratch || !sim->qfrc || !sim->sensor_gain ||
      !sim->sensor_offset || !sim->action_std || !sim->sensor_std) {
    dso_sim_free(sim);
    dso_error(err, DSO_ERR_MEMORY, "simulator: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < ns; i++) {
    sim->sensor_gain[i] = 1.0;
  }
  dso_sim_reset(sim);
  return sim;
}

void dso_sim_free(dsoSim* sim) {
  if (!sim) {
    return;
  }
  if (sim->d) {
    mj_deleteData(sim->d);
  }
  if (sim->scratch) {
    mj_deleteData(sim->scratch);
  }
  if (sim->m) {
    mj_deleteModel(sim->m);
  }
  free(sim->qfrc);
  free(sim->sensor_gain);
  free(sim->sensor_offset);
  free(sim->action_std);
  free(sim->sensor_std);
  free(sim);
}

// bounding-sphere radius of a primitive geom, as MuJoCo's compiler computes it
static double geom_rbound(int type, const double* s) {
  switch (type) {
    case mjGEOM_SPHERE: return s[0];
    case mjGEOM_CAPSULE: return s[0] + s[1];
    case mjGEOM_CYLINDER: return sqrt(s[0] * s[0] + s[1] * s[1]);
    case mjGEOM_ELLIPSOID: return fmax(fmax(s[0], s[1]), s[2]);
    case mjGEOM_BOX: return sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2]);
    default: return -1;  // plane, mesh, height field: keep the compiled value
  }
}

// a body whose centre of mass leaves its frame no longer has a diagonal mass matrix: clear the
// compiler's "simple" flag and cut the runs of simple dofs that reached into the body
static void unsimplify_body(mjModel* m, int body) {
  m->body_simple[body] = 0;
  int first = m->body_dofadr[body], num = m->body_dofnum[body];
  if (num <= 0) {
    return;
  }
  for (int j = first; j < first + num; j++) {
    m->dof_simplenum[j] = 0;
  }
  for (int j = first - 1; j >= 0 && j + m->dof_simplenum[j] > first; j--) {
    m->dof_simplenum[j] = first - j;
  }
}

typedef struct {
  mjModel* m;
  mjData* d;
} dsoSetConstArgs;

static void setconst_call(void* p) {
  dsoSetConstArgs* a = (dsoSetConstArgs*)p;
  mj_setConst(a->m, a->d);
}

dsoStatus dso_sim_write(dsoSim* sim, const dsoTheta* theta, const double* u, dsoError* err) {
  mjModel* m = sim->m;
  int setconst = 0;
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    const dsoBinding* b = &e->bind;
    if (b->kind == DSO_BIND_NONE) {
      continue;
    }
    double v = dso_theta_entry_natural(e, u[i]);
    if (!isfinite(v)) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: value is not finite", e->name);
    }
    double* field = dso_bind_field(m, b);
    if (field) {
      *field = v;
      setconst |= dso_bind_needs_setconst(b->kind);
      if (b->kind == DSO_BIND_GEOM_SIZE) {
        double r = geom_rbound(m->geom_type[b->id], m->geom_size + 3 * b->id);
        if (r >= 0) {
          m->geom_rbound[b->id] = r;
        }
      } else if (b->kind == DSO_BIND_BODY_POS) {
        // a free body starts where its frame is: the compiler copies pos into qpos0
        int j = m->body_jntadr[b->id];
        if (m->body_jntnum[b->id] > 0 && m->jnt_type[j] == mjJNT_FREE) {
          m->qpos0[m->jnt_qposadr[j] + b->index] = v;
          m->qpos_spring[m->jnt_qposadr[j] + b->index] = v;
        }
      } else if (b->kind == DSO_BIND_BODY_COM) {
        // the compiler marks bodies whose inertial frame equals the body frame
        const double* ip = m->body_ipos + 3 * b->id;
        const double* iq = m->body_iquat + 4 * b->id;
        int same = ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && iq[0] == 1 && iq[1] == 0 &&
                   iq[2] == 0 && iq[3] == 0;
        m->body_sameframe[b->id] = (mjtByte)same;
        if (!same && m->body_simple[b->id]) {
          unsimplify_body(m, b->id);
        }
      }
      continue;
    }
    switch (b->kind) {
      case DSO_BIND_DOF_FORCE: sim->qfrc[b->target] = v; break;
      case DSO_BIND_SENSOR_GAIN: sim->sensor_gain[b->target] = v; break;
      case DSO_BIND_SENSOR_OFFSET: sim->sensor_offset[b->target] = v; break;
      case DSO_BIND_ACTION_STD: sim->action_std[b->target] = v; break;
      case DSO_BIND_SENSOR_STD: sim->sensor_std[b->target] = v; break;
      default:
        return dso_error(err, DSO_ERR_INTERNAL, "%s: binding kind %d has no target", e->name,
                         (int)b->kind);
    }
  }
  if (setconst) {
    dsoSetConstArgs a = {m, sim->scratch};
    dsoStatus s = dso_mj_trap(setconst_call, &a, err);
    if (s != DSO_OK) {
      mj_resetData(m, sim->scratch);
      return s;
    }
  }
  mju_copy(sim->d->qfrc_applied, sim->qfrc, m->nv);
  return DSO_OK;
}

void dso_sim_reset(dsoSim* sim) {
  mj_resetData(sim->m, sim->d);
  mju_copy(sim->d->qfrc_applied, sim->qfrc, sim->m->nv);
}

void dso_sim_set_recorded(dsoSim* sim, double time, const double* qpos, const double* qvel,
                          const double* ctrl) {
  const mjModel* m = sim->m;
  mjData* d = sim->d;
  // everything mj_step reads besides the model: state, inputs, warnings (cheaper than
  // mj_resetData, which clears the whole arena)
  memset(d->warning, 0, sizeof(d->warning));
  mju_zero(d->act, m->na);
  mju_zero(d->qacc_warmstart, m->nv);
  mju_zero(d->xfrc_applied, 6 * m->nbody);
  d->time = time;
  mju_copy(d->qpos, qpos, m->nq);
  mju_copy(d->qvel, qvel, m->nv);
  mju_copy(d->ctrl, ctrl, m->nu);
  mju_copy(d->qfrc_applied, sim->qfrc, m->nv);
}

dsoStatus dso_sim_forward(dsoSim* sim, dsoError* err) {
  mju_copy(sim->d->qfrc_applied, sim->qfrc, sim->m->nv);
  return dso_mj_forward(sim->m, sim->d, err);
}

dsoStatus dso_sim_step(dsoSim* sim, dsoError* err) {
  mju_copy(sim->d->qfrc_applied, sim->qfrc, sim->m->nv);
  return dso_mj_step(sim->m, sim->d, err);
}

void dso_sim_measure(const dsoSim* sim, double* y) {
  int ns = sim->m->nsensordata;
  for (int i = 0; i < ns; i++) {
    y[i] = sim->sensor_gain[i] * sim->d->sensordata[i] + sim->sensor_offset[i];
  }
}

mjModel* dso_sim_model(dsoSim* sim) {
  return sim->m;
}

const mjModel* dso_sim_model_const(const dsoSim* sim) {
  return sim->m;
}

mjData* dso_sim_data(dsoSim* sim) {
  return sim->d;
}

const mjData* dso_sim_data_const(const dsoSim* sim) {
  return sim->d;
}

const double* dso_sim_qfrc(const dsoSim* sim) {
  return sim->qfrc;
}

const double* dso_sim_sensor_gain(const dsoSim* sim) {
  return sim->sensor_gain;
}

const double* dso_sim_sensor_offset(const dsoSim* sim) {
  return sim->sensor_offset;
}

const double* dso_sim_action_std(const dsoSim* sim) {
  return sim->action_std;
}

const double* dso_sim_sensor_std(const dsoSim* sim) {
  return sim->sensor_std;
}
