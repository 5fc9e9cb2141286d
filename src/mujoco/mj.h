// MuJoCo binding: loading with trapped errors, warning counts, trapped stepping, and state
// vectors x = (qpos, qvel, act) with differences in the tangent space (2*nv + na).
#ifndef DSO_MJ_H
#define DSO_MJ_H

#include <mujoco/mujoco.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Loads an MJCF file. Returns a new model (free with mj_deleteModel) or NULL with err naming the
// file and MuJoCo's message. MuJoCo's fatal errors during loading are trapped. Refused with
// DSO_ERR_INPUT, naming the file and the field: a path that is not a regular file (a folder, a
// FIFO: checked without blocking) or exceeds DSO_TEXT_MAX_BYTES; an option timestep that is not
// finite and > 0; non-finite gravity, body mass, inertia, pos, centre of mass, joint stiffness,
// actuator gear, gainprm, biasprm, geom size and friction; negative mass, inertia, damping,
// frictionloss, armature or geom friction (values MuJoCo's compiler lets through).
mjModel* dso_mj_load(const char* path, dsoError* err);

// Calls fn(arg) with MuJoCo's fatal errors trapped: if MuJoCo calls mju_error inside fn, control
// returns here and DSO_ERR_MUJOCO is returned with MuJoCo's message in err. Traps nest and are
// per thread. fn must not own resources that a jump out of it would leak.
dsoStatus dso_mj_trap(void (*fn)(void* arg), void* arg, dsoError* err);

// Number of MuJoCo warnings (mju_warning) seen by the calling thread since it started.
long dso_mj_warning_count(void);

// Copies MuJoCo's last warning message seen by the calling thread into buf (size len).
void dso_mj_last_warning(char* buf, int len);

// Installs dso's error and warning handlers into MuJoCo (idempotent; every dso_mj_* call that
// needs them does it). Exposed for programs that call MuJoCo directly through dso_mj_trap.
void dso_mj_install_handlers(void);

// Steps d once with errors trapped. Returns DSO_ERR_NUMERIC when the step went unstable (MuJoCo's
// bad qpos/qvel/qacc warnings, which reset d, or a non-finite state) and DSO_ERR_MUJOCO when MuJoCo
// raised a fatal error (d is then reset with mj_resetData); err says which.
dsoStatus dso_mj_step(const mjModel* m, mjData* d, dsoError* err);

// mj_forward on d with errors trapped (sensors, accelerations at the state d holds). Returns
// DSO_ERR_NUMERIC when MuJoCo raised a bad qpos/qvel/qacc/ctrl warning and DSO_ERR_MUJOCO on a
// fatal error (d is then reset with mj_resetData).
dsoStatus dso_mj_forward(const mjModel* m, mjData* d, dsoError* err);

// Size of the state vector x = (qpos, qvel, act): nq + nv + na.
int dso_mj_state_size(const mjModel* m);

// Size of a state difference dx = (dq, dqvel, dact) in the tangent space: 2*nv + na.
int dso_mj_tangent_size(const mjModel* m);

// Copies the state of d into x (nq + nv + na).
void dso_mj_state_get(double* x, const mjModel* m, const mjData* d);

// Writes x (nq + nv + na) into the state of d; other fields of d are left as they are.
void dso_mj_state_set(mjData* d, const mjModel* m, const double* x);

// Tangent-space difference dx = x1 - x0 (2*nv + na); quaternions are differenced on the manifold
// with mj_differentiatePos, so free and ball joints are handled.
void dso_mj_state_diff(double* dx, const mjModel* m, const double* x0, const double* x1);

// x <- x + scale * dx on the manifold (mj_integratePos for qpos); dx has size 2*nv + na.
void dso_mj_state_integrate(double* x, const mjModel* m, const double* dx, double scale);

// The state input of a policy (chain.input "state"): s = (qpos, qvel, act, cos q_p) where the
// angle q of each periodic hinge joint (periodic: njp joint ids, each of type hinge) is replaced in
// qpos by sin q and its cos q is appended, in the order of the list: nin = nq + nv + na + njp.
// With njp = 0, s = x. The map is continuous and 2π-periodic in each listed angle, so a policy
// sees the pole upright at q = 0 and at q = 2π as one state.
int dso_mj_input_size(const mjModel* m, int njp);

// Checks a periodic joint list: each id in range and of type hinge, none repeated. Returns
// DSO_ERR_INPUT naming the joint otherwise (what: the setting's name for the message).
dsoStatus dso_mj_input_check(const mjModel* m, const int* periodic, int njp, const char* what,
                             dsoError* err);

// s (dso_mj_input_size) at the state x (nq + nv + na).
void dso_mj_input(double* s, const mjModel* m, const int* periodic, int njp, const double* x);

// ∂s/∂dx (nin x (2*nv + na), row-major) at x, dx the tangent-space displacement of x
// (dso_mj_state_integrate): quaternions of free and ball joints move as q ⊗ exp(ω/2).
void dso_mj_input_jacobian(double* J, const mjModel* m, const int* periodic, int njp,
                           const double* x);

// MuJoCo's version string, e.g. "2.2.2".
const char* dso_mujoco_version_string(void);

#ifdef __cplusplus
}
#endif
#endif  // DSO_MJ_H
