// The model with θ written back as MJCF, keeping the original file: the attributes the θ entries
// change are edited in the original XML text and every other byte (comments, whitespace,
// attribute order, default classes) stays as it was.
//
// What is written, per kind of physics entry (values from the θ-written model, dso_sim_write,
// formatted with %.17g so that they read back exactly; all components of an attribute are written
// explicitly, also when they came from a default class or were absent):
//   body mass, com, inertia   the body's <inertial pos mass diaginertia> (an <inertial> with pos,
//                             quat, mass, diaginertia is inserted for a body whose inertia came
//                             from its geoms; fullinertia is replaced by quat + diaginertia)
//   body pos                  <body pos>
//   joint damping, frictionloss, armature, solreffriction (2 values), solimpfriction (5 values)
//                             <joint ...> (MJCF holds one value per joint: the dofs of a ball or
//                             free joint must agree, else an error)
//   joint stiffness           <joint stiffness>
//   actuator gear             gear (6 values)
//   actuator gain, bias       <general gainprm/biasprm> (10 values); a shortcut (motor, position,
//                             velocity, cylinder, muscle) becomes <general> with its dyntype,
//                             gaintype, biastype, dynprm, gainprm, biasprm written out
//   geom friction, size       friction, size (3 values); a geom given by fromto gets pos + quat
//                             instead when its size changes; a body whose inertia comes from its
//                             geoms gets an explicit <inertial> (θ does not change a body's
//                             inertia through a geom size, dso_sim_write)
//   gravity                   <option gravity> (an <option> is inserted when absent)
//   constant force            physics.<joint>.force (which dso applies through qfrc_applied):
//                             one bias-only <general name="dso_force_<joint>" joint="<joint>">
//                             per joint with such an entry (gain 0, biastype affine; a hinge or
//                             slide gets gear 1 and biasprm[0] = F, a ball or free joint gear = F
//                             per dof and biasprm[0] = 1; the force equals qfrc_applied bit for
//                             bit), in an <actuator> section appended at the end of the root with
//                             a comment listing the values. They follow the model's own actuators,
//                             so the model's nu grows by one per such joint: their ctrl has no
//                             effect, and data recorded for the original model has fewer ctrl
//                             columns than the written model. The joint must be named, no
//                             actuator may already have the name, and actuation must be enabled.
//   sensor gain/offset, noise deviations: no MJCF attribute; they are listed by name and value
//                             in an XML comment right after the root element's start tag.
// Compiler options: angles in degrees need nothing (no written value is an angle); with
// inertiafromgeom="true" or settotalmass, every body with mass gets an explicit <inertial> and
// those options are turned off (inertiafromgeom="false", settotalmass removed), so the masses
// stay as identified; coordinate="global" is an error. <include>: the edited elements must be in
// the main file; an element that is not found there (e.g. it lives in an included file) is an error
// naming it and the included files. When the output goes to another folder, relative file
// references are made absolute (include file, compiler meshdir and texturedir; both directories
// are set to the model's folder when absent and the model references asset files).
// Elements are located by structure: bodies by their parent and order, joints and geoms by their
// body and order, actuators by order, and their name attributes are checked against the model.
#ifndef DSO_MJCF_H
#define DSO_MJCF_H

#include <mujoco/mujoco.h>

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Edits xml (the MJCF text of the file xml_path, which compiled to base) so that it compiles to
// base with θ = u (theta->n, unconstrained) written. out_dir: the folder the result will be
// written to (relative file references are rewritten when it differs from xml_path's folder), or
// NULL when the result replaces xml_path's text in place. On success *out is the new text
// (malloc'ed, NUL-terminated; free with free()). Errors name xml_path, the line and the element.
dsoStatus dso_mjcf_edit(char** out, const char* xml, const char* xml_path, const mjModel* base,
                        const dsoTheta* theta, const double* u, const char* out_dir,
                        dsoError* err);

// Compiles the MJCF file at path and compares every model field a θ entry can bind (all of
// them, dso_bind_list, plus the inertial frames body_iquat and the geom frames geom_pos,
// geom_quat) with expect, and the constant force per dof of the actuators after expect's nu
// (which must all be bias-only joint actuators) with qfrc (nv, the θ-written simulator's constant
// force, dso_sim_qfrc; NULL for none): each |a - b| must be at most 1e-12 max(|a|, |b|) or 1e-15.
// A mismatch is DSO_ERR_INTERNAL naming the field and both values.
dsoStatus dso_mjcf_verify_file(const char* path, const mjModel* expect, const double* qfrc,
                               dsoError* err);

// Reads model_path, edits it for θ = u (dso_mjcf_edit with out_path's folder) and writes it to
// out_path atomically, the temporary file checked against base with θ written
// (dso_mjcf_verify_file) before it replaces out_path: a run killed meanwhile leaves only a
// temporary file of the atomic form (.NAME.PID.N.tmp), which dso run removes when it starts.
dsoStatus dso_mjcf_write(const char* out_path, const char* model_path, const mjModel* base,
                         const dsoTheta* theta, const double* u, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_MJCF_H
