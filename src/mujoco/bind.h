// Bindings of θ entries to a MuJoCo model by name: physics fields (θ_f), sensor gains and offsets
// (θ_h), and the standard deviations of action and sensor noise (θ_ε, θ_ξ).
//
// Names are "<prefix>.<element>.<attribute>" with "[k]" after the attribute when the element has
// more than one component, e.g. physics.pole.mass, physics.pole.com[2], physics.hinge.damping,
// physics.slider_motor.gear[0], physics.gravity[2], sensor.accel.gain[1], sensor.angle.offset,
// sensor_noise.angle.std, action_noise.torque.std. The attribute decides the element kind.
#ifndef DSO_BIND_H
#define DSO_BIND_H

#include <mujoco/mujoco.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// What a θ entry is bound to.
typedef enum dsoBindKind_ {
  DSO_BIND_NONE = 0,        // not bound to the model (policy, corrector)
  DSO_BIND_BODY_MASS,       // physics.<body>.mass          body_mass            kg
  DSO_BIND_BODY_COM,        // physics.<body>.com[k]        body_ipos            m, body frame
  DSO_BIND_BODY_INERTIA,    // physics.<body>.inertia[k]    body_inertia         kg m^2, principal
  DSO_BIND_BODY_POS,        // physics.<body>.pos[k]        body_pos             m, parent frame
  DSO_BIND_DOF_DAMPING,     // physics.<joint>.damping[k]   dof_damping          N m s/rad, N s/m
  DSO_BIND_DOF_FRICTIONLOSS,// physics.<joint>.frictionloss dof_frictionloss     N m, N
  DSO_BIND_DOF_ARMATURE,    // physics.<joint>.armature     dof_armature         kg m^2, kg
  DSO_BIND_DOF_FORCE,       // physics.<joint>.force[k]     constant qfrc_applied N m, N
  DSO_BIND_DOF_SOLREF_FRICTION,  // physics.<joint>.solreffriction[k]  dof_solref  (s, 1)
  DSO_BIND_DOF_SOLIMP_FRICTION,  // physics.<joint>.solimpfriction[k]  dof_solimp  (1, 1, m, 1, 1)
  DSO_BIND_JNT_STIFFNESS,   // physics.<joint>.stiffness    jnt_stiffness        N m/rad, N/m
  DSO_BIND_ACT_GEAR,        // physics.<actuator>.gear[k]   actuator_gear
  DSO_BIND_ACT_GAIN,        // physics.<actuator>.gain[k]   actuator_gainprm
  DSO_BIND_ACT_BIAS,        // physics.<actuator>.bias[k]   actuator_biasprm
  DSO_BIND_GEOM_FRICTION,   // physics.<geom>.friction[k]   geom_friction        (slide, spin, roll)
  DSO_BIND_GEOM_SIZE,       // physics.<geom>.size[k]       geom_size            m
  DSO_BIND_GRAVITY,         // physics.gravity[k]           opt.gravity          m/s^2
  DSO_BIND_SENSOR_GAIN,     // sensor.<sensor>.gain[k]      y = gain * sensordata + offset
  DSO_BIND_SENSOR_OFFSET,   // sensor.<sensor>.offset[k]
  DSO_BIND_ACTION_STD,      // action_noise.<actuator>.std  σ of ε added to ctrl
  DSO_BIND_SENSOR_STD,      // sensor_noise.<sensor>.std[k] σ of ξ added to y
  DSO_NBIND
} dsoBindKind;

// The friction-loss constraint. MuJoCo's frictionloss is not an ideal Coulomb force Fc·sign(qd)
// but a soft constraint solved with the dof's solreffriction = (timeconst, dampratio) and
// solimpfriction = (dmin, dmax, width, midpoint, power) (dof_solref, dof_solimp; the <option>
// override o_solref/o_solimp acts on contacts only and leaves friction loss alone). Friction rows
// have no position, so the impedance is d = dmin and the reference acceleration is -b·qd with
// b = 2 / (dmax·timeconst): on one dof of effective mass m (inertia) under an applied force F the
// constraint force is f = -dmin·(F + 2 m qd / (dmax·timeconst)) clamped to [-Fc, Fc]. Below
//   |qd| < v_lin = Fc·dmax·timeconst / (2·dmin·m)
// it acts as a viscous damper of coefficient 2·dmin·m/(dmax·timeconst) that also passes (1-dmin)
// of the applied force (creep) instead of sticking. At the defaults (0.02, 1), (0.9, 0.95, ...)
// v_lin = 0.0106 Fc/m; a drive that spends time at such speeds is fitted with a frictionloss
// and a damping both biased. The stiff setting timeconst = 2·timestep (smaller values act as
// 2·timestep while MuJoCo's refsafe flag is on) and dmin = dmax = 0.9999 (MuJoCo's largest
// impedance) removes a velocity of up to Fc·timestep/m within one step and passes 1e-4 of F: the
// discrete-time Coulomb friction, which the paper's identification (section 5.1) assumes.
// dampratio, width, midpoint and power do not change friction loss (entries for them are inert).
// Multi-dof joints (ball 3, free 6) hold one (timeconst, dampratio) and one solimp per dof:
// component k is value k % 2 (k % 5) of dof k / 2 (k / 5); MJCF needs them equal across dofs.

// Blocks of the packed vector θ in the order of paper eq. 95.
typedef enum dsoBlock_ {
  DSO_BLOCK_POLICY = 0,     // θ_μ
  DSO_BLOCK_PHYSICS,        // θ_f
  DSO_BLOCK_ACTION_NOISE,   // θ_ε
  DSO_BLOCK_SENSOR,         // θ_h
  DSO_BLOCK_SENSOR_NOISE,   // θ_ξ
  DSO_BLOCK_CORRECTOR,      // θ_c
  DSO_NBLOCK
} dsoBlock;

// A resolved binding: the field, the element and the component.
typedef struct dsoBinding_ {
  dsoBindKind kind;
  int id;      // element id in the model (body, joint, actuator, geom, sensor); -1 for gravity
  int index;   // component within the element, 0-based
  int target;  // flat index of the value: into the model array for physics kinds (for dof kinds a
               // dof index), into sensordata for sensor kinds, the actuator for action noise
} dsoBinding;

// Resolves a name against m. On failure err names the part that did not match and lists what is
// valid (prefixes, attributes, element names or the component range).
dsoStatus dso_bind_resolve(dsoBinding* b, const mjModel* m, const char* name, dsoError* err);

// Writes the canonical name of b into buf (size len); returns the length snprintf would write.
int dso_bind_name(char* buf, int len, const mjModel* m, const dsoBinding* b);

// Fills out (size max, may be NULL when max is 0) with every binding m offers, in a fixed order,
// and returns how many there are (call once with max 0 to size the array).
int dso_bind_list(dsoBinding* out, int max, const mjModel* m);

// Value of b in m: the model field, or the neutral value for what the model does not hold (sensor
// gain 1, offset 0, force 0). Noise deviations have no model value: NaN.
double dso_bind_get(const mjModel* m, const dsoBinding* b);

// Pointer to the mjModel field that b writes, or NULL when b is not a model field (constant dof
// force, sensor and noise kinds, none).
double* dso_bind_field(mjModel* m, const dsoBinding* b);

// The block a kind belongs to (physics kinds to θ_f, sensor gain/offset to θ_h, ...).
dsoBlock dso_bind_block(dsoBindKind kind);

// 1 if values of kind must be positive (log transform by default), 0 if they may take any sign.
int dso_bind_positive(dsoBindKind kind);

// Natural domain of b's values: *lower, *upper (may be infinite), the default bounds of a task
// entry without "bounds". Returns 1 when both are finite (the entry then defaults to the bounded
// transform), else 0 (log for positive kinds, identity otherwise). Positive kinds have lower 0
// except solreffriction timeconst (mjMINVAL) and solimpfriction power (1); solimpfriction dmin,
// dmax and midpoint lie in (0, 1).
int dso_bind_domain(const dsoBinding* b, double* lower, double* upper);

// 1 if writing kind changes constants that MuJoCo's compiler derives (mj_setConst is needed).
int dso_bind_needs_setconst(dsoBindKind kind);

// Short name of a block ("policy", "physics", "action_noise", "sensor", "sensor_noise",
// "corrector").
const char* dso_block_name(dsoBlock block);

#ifdef __cplusplus
}
#endif
#endif  // DSO_BIND_H
