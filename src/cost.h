// State and action costs r(x, a) built from reusable terms (paper section 5.1, the r of the
// D-MDP and L-MDP costs): quadratic state error, site distance, upright, velocity target and
// control effort. Each term gives its value and its gradient in the tangent space of x and in a.
//
// A task's "cost" is an array of terms, e.g.
//   [{"term": "quadratic", "weight": 1, "qpos": {"hinge": 3.14159}, "qpos_weight": {"hinge": 1},
//     "qvel_weight": {"hinge": 0.1}},
//    {"term": "site_distance", "weight": 2, "site": "tip", "target": [0, 0, 1.2]},
//    {"term": "upright", "weight": 1, "body": "pole", "axis": [0, 0, 1]},
//    {"term": "velocity", "weight": 1, "joint": "slider", "target": 0.5},
//    {"term": "effort", "weight": 0.01}]
#ifndef DSO_COST_H
#define DSO_COST_H

#include <mujoco/mujoco.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Kinds of cost terms.
typedef enum dsoTermKind_ {
  DSO_TERM_QUADRATIC = 0,  // sum_j wq_j (q_j - qref_j)^2 + wv_j qvel_j^2 over hinge/slide joints
  DSO_TERM_SITE_DISTANCE,  // |site_xpos - target|^2
  DSO_TERM_UPRIGHT,        // 1 - (body axis in world) . up, 0 when aligned
  DSO_TERM_VELOCITY,       // (qvel_j - target)^2 for one dof
  DSO_TERM_EFFORT,         // sum_i a_i^2 over the applied controls
  DSO_NTERM
} dsoTermKind;

// One term. Arrays are owned by the cost.
typedef struct dsoCostTerm_ {
  dsoTermKind kind;
  double weight;     // multiplies the term
  int id;            // site (distance), body (upright) or dof (velocity); -1 otherwise
  double target[3];  // site target (world, m), body axis (upright, local frame), velocity target
  double* qref;      // (nq) quadratic: reference positions
  double* wq;        // (nv) quadratic: weights on position error per dof (0 = not penalized)
  double* wv;        // (nv) quadratic: weights on velocity per dof
} dsoCostTerm;

// A sum of terms.
typedef struct dsoCost_ {
  int nterm;
  dsoCostTerm* term;   // (nterm)
  int kinematics;      // 1 if some term reads positions of sites or bodies
} dsoCost;

// Parses a cost (JSON array of terms, as text) against model m; file and path name it in errors.
// Returns NULL with err set on failure.
dsoCost* dso_cost_from_json(const mjModel* m, const char* json_text, const char* file,
                            const char* path, dsoError* err);

// Frees a cost; NULL is a no-op.
void dso_cost_free(dsoCost* cost);

// Evaluates r(x, a) for the state in d (qpos, qvel). When cost->kinematics is set, d must hold
// the kinematics of that state (mj_kinematics and mj_comPos, or any forward pass). a (nu) is the
// applied control, may be NULL (effort then counts zero). Gradients (may be NULL): gx (2*nv+na)
// in the tangent space of x, ga (nu). work: scratch of 6*nv doubles. Returns the cost.
double dso_cost_eval(const dsoCost* cost, const mjModel* m, const mjData* d, const double* a,
                     double* gx, double* ga, double* work);

#ifdef __cplusplus
}
#endif
#endif  // DSO_COST_H
