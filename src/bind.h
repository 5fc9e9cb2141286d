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

#include "error.h"

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

// 1 if writing kind changes constants that MuJoCo's compiler derives (mj_setConst is needed).
int dso_bind_needs_setconst(dsoBindKind kind);

// Short name of a block ("policy", "physics", "action_noise", "sensor", "sensor_noise",
// "corrector").
const char* dso_block_name(dsoBlock block);

#ifdef __cplusplus
}
#endif
#endif  // DSO_BIND_H
