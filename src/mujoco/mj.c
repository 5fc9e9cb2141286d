#include "mujoco/mj.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "core/io.h"

// one trap frame per active dso_mj_trap call; the innermost is current for the thread
typedef struct dsoTrapFrame_ {
  jmp_buf env;
  struct dsoTrapFrame_* prev;
  char msg[512];
} dsoTrapFrame;

static _Thread_local dsoTrapFrame* tl_trap = NULL;
static _Thread_local long tl_warnings = 0;
static _Thread_local char tl_last_warning[512];
static _Thread_local char tl_untrapped_error[512];
static pthread_once_t g_handlers_once = PTHREAD_ONCE_INIT;

static void on_error(const char* msg) {
  dsoTrapFrame* f = tl_trap;
  if (f) {
    snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
    longjmp(f->env, 1);
  }
  // no trap: keep the message; MuJoCo continues as after any user error handler
  snprintf(tl_untrapped_error, sizeof(tl_untrapped_error), "%s", msg ? msg : "");
}

static void on_warning(const char* msg) {
  tl_warnings++;
  snprintf(tl_last_warning, sizeof(tl_last_warning), "%s", msg ? msg : "");
}

static void install_once(void) {
  mju_user_error = on_error;
  mju_user_warning = on_warning;
}

void dso_mj_install_handlers(void) {
  pthread_once(&g_handlers_once, install_once);
}

dsoStatus dso_mj_trap(void (*fn)(void* arg), void* arg, dsoError* err) {
  dso_mj_install_handlers();
  dsoTrapFrame frame;
  frame.prev = tl_trap;
  frame.msg[0] = '\0';
  tl_trap = &frame;
  if (setjmp(frame.env) == 0) {
    fn(arg);
    tl_trap = frame.prev;
    return DSO_OK;
  }
  tl_trap = frame.prev;
  return dso_error(err, DSO_ERR_MUJOCO, "MuJoCo error: %s", frame.msg);
}

long dso_mj_warning_count(void) {
  return tl_warnings;
}

void dso_mj_last_warning(char* buf, int len) {
  if (buf && len > 0) {
    snprintf(buf, (size_t)len, "%s", tl_last_warning);
  }
}

typedef struct {
  const char* path;
  char* errbuf;
  int errlen;
  mjModel* model;
} dsoLoadArgs;

static void load_call(void* p) {
  dsoLoadArgs* a = (dsoLoadArgs*)p;
  a->model = mj_loadXML(a->path, NULL, a->errbuf, a->errlen);
}

// "joint \"hinge\"" or "joint #3" for messages
static void element(char* buf, size_t len, const mjModel* m, int obj, int id, const char* kind) {
  const char* name = mj_id2name(m, obj, id);
  if (name && name[0]) {
    snprintf(buf, len, "%s \"%s\"", kind, name);
  } else {
    snprintf(buf, len, "%s #%d", kind, id);
  }
}

// checks n values of a field: finite, and >= 0 when nonneg
static dsoStatus check_values(const double* v, int n, int nonneg, const char* path,
                              const char* where, const char* field, dsoError* err) {
  for (int k = 0; k < n; k++) {
    if (!isfinite(v[k]) || (nonneg && v[k] < 0)) {
      char comp[16] = "";
      if (n > 1) {
        snprintf(comp, sizeof(comp), "[%d]", k);
      }
      return dso_error(err, DSO_ERR_INPUT, "%s: %s: %s%s: expected a finite number%s, got %g",
                       path, where, field, comp, nonneg ? " >= 0" : "", v[k]);
    }
  }
  return DSO_OK;
}

// the values MuJoCo's compiler lets through but no simulation survives: a timestep that is not
// a finite positive number, and non-finite (or negative where only >= 0 has a meaning) physical
// constants of the fields θ can bind
static dsoStatus check_model(const mjModel* m, const char* path, dsoError* err) {
  if (!isfinite(m->opt.timestep) || !(m->opt.timestep > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: option timestep: expected a finite number > 0 "
                     "(seconds), got %g", path, m->opt.timestep);
  }
  char where[300];
  if (check_values(m->opt.gravity, 3, 0, path, "option", "gravity", err)) return err->code;
  for (int i = 1; i < m->nbody; i++) {
    element(where, sizeof(where), m, mjOBJ_BODY, i, "body");
    if (check_values(m->body_mass + i, 1, 1, path, where, "mass", err) ||
        check_values(m->body_inertia + 3 * i, 3, 1, path, where, "inertia", err) ||
        check_values(m->body_ipos + 3 * i, 3, 0, path, where, "centre of mass", err) ||
        check_values(m->body_pos + 3 * i, 3, 0, path, where, "pos", err)) {
      return err->code;
    }
  }
  for (int j = 0; j < m->njnt; j++) {
    element(where, sizeof(where), m, mjOBJ_JOINT, j, "joint");
    if (check_values(m->jnt_stiffness + j, 1, 0, path, where, "stiffness", err)) return err->code;
  }
  for (int i = 0; i < m->nv; i++) {
    element(where, sizeof(where), m, mjOBJ_JOINT, m->dof_jntid[i], "joint");
    if (check_values(m->dof_damping + i, 1, 1, path, where, "damping", err) ||
        check_values(m->dof_frictionloss + i, 1, 1, path, where, "frictionloss", err) ||
        check_values(m->dof_armature + i, 1, 1, path, where, "armature", err)) {
      return err->code;
    }
  }
  for (int i = 0; i < m->nu; i++) {
    element(where, sizeof(where), m, mjOBJ_ACTUATOR, i, "actuator");
    if (check_values(m->actuator_gear + 6 * i, 6, 0, path, where, "gear", err) ||
        check_values(m->actuator_gainprm + mjNGAIN * i, mjNGAIN, 0, path, where, "gainprm",
                     err) ||
        check_values(m->actuator_biasprm + mjNBIAS * i, mjNBIAS, 0, path, where, "biasprm",
                     err)) {
      return err->code;
    }
  }
  for (int i = 0; i < m->ngeom; i++) {
    element(where, sizeof(where), m, mjOBJ_GEOM, i, "geom");
    if (check_values(m->geom_friction + 3 * i, 3, 1, path, where, "friction", err) ||
        check_values(m->geom_size + 3 * i, 3, 0, path, where, "size", err)) {
      return err->code;
    }
  }
  return DSO_OK;
}

mjModel* dso_mj_load(const char* path, dsoError* err) {
  if (!path || !path[0]) {
    dso_error(err, DSO_ERR_INPUT, "model: empty file name, expected the path of an MJCF file");
    return NULL;
  }
  // a folder or a FIFO is refused here, before MuJoCo's reader could wait on it; the size cap
  // is the one of every text file dso reads
  dsoError e = {0};
  if (dso_check_input(path, DSO_TEXT_MAX_BYTES, NULL, "an MJCF file", &e)) {
    const char* tail = strstr(e.msg, ": cannot open file");
    if (tail) {
      dso_error(err, e.code, "%s: cannot open model file%s", path,
                tail + strlen(": cannot open file"));
    } else {
      dso_error(err, e.code, "%s", e.msg);
    }
    return NULL;
  }
  char errbuf[1000] = "";
  dsoLoadArgs a = {path, errbuf, (int)sizeof(errbuf), NULL};
  dsoError trapped = {0};
  if (dso_mj_trap(load_call, &a, &trapped) != DSO_OK) {
    dso_error(err, DSO_ERR_INPUT, "%s: %s", path, trapped.msg);
    return NULL;
  }
  if (!a.model) {
    // MuJoCo's message spans lines; keep it on one
    for (char* c = errbuf; *c; c++) {
      if (*c == '\n' || *c == '\r') {
        *c = c[1] ? ' ' : '\0';
      }
    }
    dso_error(err, DSO_ERR_INPUT, "%s: not a valid MJCF model: %s", path,
              errbuf[0] ? errbuf : "MuJoCo gave no reason");
    return NULL;
  }
  if (check_model(a.model, path, err)) {
    mj_deleteModel(a.model);
    return NULL;
  }
  return a.model;
}

typedef struct {
  const mjModel* m;
  mjData* d;
} dsoStepArgs;

static void step_call(void* p) {
  dsoStepArgs* a = (dsoStepArgs*)p;
  mj_step(a->m, a->d);
}

static const int kBadWarnings[] = {mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC, mjWARN_BADCTRL};

static void forward_call(void* p) {
  dsoStepArgs* a = (dsoStepArgs*)p;
  mj_forward(a->m, a->d);
}

// the first of MuJoCo's bad-state warnings raised since the counters were cleared, or -1
static int bad_warning(const mjData* d) {
  for (int i = 0; i < 4; i++) {
    if (d->warning[kBadWarnings[i]].number > 0) {
      return i;
    }
  }
  return -1;
}

static const char* bad_warning_name(int i) {
  return i == 0 ? "qpos" : i == 1 ? "qvel" : i == 2 ? "qacc" : "ctrl";
}

dsoStatus dso_mj_forward(const mjModel* m, mjData* d, dsoError* err) {
  for (int i = 0; i < 4; i++) {
    d->warning[kBadWarnings[i]].number = 0;
  }
  dsoStepArgs a = {m, d};
  dsoStatus s = dso_mj_trap(forward_call, &a, err);
  if (s != DSO_OK) {
    mj_resetData(m, d);
    return s;
  }
  int w = bad_warning(d);
  if (w >= 0) {
    return dso_error(err, DSO_ERR_NUMERIC, "mj_forward at time %g: MuJoCo reported a bad %s",
                     d->time, bad_warning_name(w));
  }
  return DSO_OK;
}

dsoStatus dso_mj_step(const mjModel* m, mjData* d, dsoError* err) {
  // MuJoCo resets d when a step goes bad and then counts the warning, so the counters are cleared
  // before each step and read after it
  for (int i = 0; i < 4; i++) {
    d->warning[kBadWarnings[i]].number = 0;
  }
  dsoStepArgs a = {m, d};
  dsoStatus s = dso_mj_trap(step_call, &a, err);
  if (s != DSO_OK) {
    // the jump left MuJoCo's stack marked; a reset makes d usable again
    mj_resetData(m, d);
    return s;
  }
  int w = bad_warning(d);
  if (w >= 0) {
    return dso_error(err, DSO_ERR_NUMERIC,
                     "simulation diverged at time %g: MuJoCo reported a bad %s and reset the "
                     "state", d->time, bad_warning_name(w));
  }
  for (int i = 0; i < m->nq; i++) {
    if (!isfinite(d->qpos[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "simulation diverged: qpos[%d] is not finite", i);
    }
  }
  for (int i = 0; i < m->nv; i++) {
    if (!isfinite(d->qvel[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "simulation diverged: qvel[%d] is not finite", i);
    }
  }
  return DSO_OK;
}

int dso_mj_state_size(const mjModel* m) {
  return m->nq + m->nv + m->na;
}

int dso_mj_tangent_size(const mjModel* m) {
  return 2 * m->nv + m->na;
}

void dso_mj_state_get(double* x, const mjModel* m, const mjData* d) {
  memcpy(x, d->qpos, sizeof(double) * (size_t)m->nq);
  memcpy(x + m->nq, d->qvel, sizeof(double) * (size_t)m->nv);
  if (m->na) {
    memcpy(x + m->nq + m->nv, d->act, sizeof(double) * (size_t)m->na);
  }
}

void dso_mj_state_set(mjData* d, const mjModel* m, const double* x) {
  memcpy(d->qpos, x, sizeof(double) * (size_t)m->nq);
  memcpy(d->qvel, x + m->nq, sizeof(double) * (size_t)m->nv);
  if (m->na) {
    memcpy(d->act, x + m->nq + m->nv, sizeof(double) * (size_t)m->na);
  }
}

void dso_mj_state_diff(double* dx, const mjModel* m, const double* x0, const double* x1) {
  mj_differentiatePos(m, dx, 1.0, x0, x1);
  int nq = m->nq, nv = m->nv;
  for (int i = 0; i < nv + m->na; i++) {
    dx[nv + i] = x1[nq + i] - x0[nq + i];
  }
}

void dso_mj_state_integrate(double* x, const mjModel* m, const double* dx, double scale) {
  mj_integratePos(m, x, dx, scale);
  int nq = m->nq, nv = m->nv;
  for (int i = 0; i < nv + m->na; i++) {
    x[nq + i] += scale * dx[nv + i];
  }
}

int dso_mj_input_size(const mjModel* m, int njp) {
  return m->nq + m->nv + m->na + njp;
}

dsoStatus dso_mj_input_check(const mjModel* m, const int* periodic, int njp, const char* what,
                             dsoError* err) {
  for (int k = 0; k < njp; k++) {
    int j = periodic[k];
    if (j < 0 || j >= m->njnt) {
      return dso_error(err, DSO_ERR_INPUT, "%s[%d]: joint id %d out of range [0, %d)", what, k, j,
                       m->njnt);
    }
    const char* name = mj_id2name(m, mjOBJ_JOINT, j);
    if (m->jnt_type[j] != mjJNT_HINGE) {
      return dso_error(err, DSO_ERR_INPUT, "%s[%d]: joint \"%s\" is not a hinge; only hinge "
                       "angles are periodic", what, k, name ? name : "(unnamed)");
    }
    for (int i = 0; i < k; i++) {
      if (periodic[i] == j) {
        return dso_error(err, DSO_ERR_INPUT, "%s[%d]: joint \"%s\" is listed twice", what, k,
                         name ? name : "(unnamed)");
      }
    }
  }
  return DSO_OK;
}

void dso_mj_input(double* s, const mjModel* m, const int* periodic, int njp, const double* x) {
  int nx = m->nq + m->nv + m->na;
  memmove(s, x, sizeof(double) * (size_t)nx);
  for (int k = 0; k < njp; k++) {
    int qa = m->jnt_qposadr[periodic[k]];
    double q = x[qa];
    s[qa] = sin(q);
    s[nx + k] = cos(q);
  }
}

void dso_mj_input_jacobian(double* J, const mjModel* m, const int* periodic, int njp,
                           const double* x) {
  int nq = m->nq, nv = m->nv, na = m->na, ndx = 2 * nv + na, nx = nq + nv + na;
  memset(J, 0, sizeof(double) * (size_t)((nx + njp) * ndx));
  for (int j = 0; j < m->njnt; j++) {
    int qa = m->jnt_qposadr[j], va = m->jnt_dofadr[j], type = m->jnt_type[j];
    if (type == mjJNT_FREE) {
      for (int k = 0; k < 3; k++) {
        J[(qa + k) * ndx + va + k] = 1;
      }
      qa += 3;
      va += 3;
    }
    if (type == mjJNT_FREE || type == mjJNT_BALL) {
      // q' = q ⊗ exp(ω/2) in the local frame: ∂q/∂ω_k = q ⊗ (0, e_k) / 2
      const double* q = x + qa;
      double d[3][4] = {{-q[1], q[0], q[3], -q[2]},
                        {-q[2], -q[3], q[0], q[1]},
                        {-q[3], q[2], -q[1], q[0]}};
      for (int k = 0; k < 3; k++) {
        for (int r = 0; r < 4; r++) {
          J[(qa + r) * ndx + va + k] = 0.5 * d[k][r];
        }
      }
    } else {
      J[qa * ndx + va] = 1;
    }
  }
  for (int i = 0; i < nv + na; i++) {
    J[(nq + i) * ndx + nv + i] = 1;
  }
  for (int k = 0; k < njp; k++) {
    int qa = m->jnt_qposadr[periodic[k]], va = m->jnt_dofadr[periodic[k]];
    J[qa * ndx + va] = cos(x[qa]);
    J[(nx + k) * ndx + va] = -sin(x[qa]);
  }
}

const char* dso_mujoco_version_string(void) {
  return mj_versionString();
}
