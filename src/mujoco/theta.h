// The packed parameter vector θ = (θ_μ, θ_f, θ_ε, θ_h, θ_ξ, θ_c) of paper eq. 95.
//
// A dsoTheta is the layout (names, blocks, transforms, bounds, priors, bindings); it is fixed
// after setup. The values live in plain arrays owned by the caller, in two coordinates:
//   u: the unconstrained coordinates an optimizer moves (size n),
//   v: the natural values that are written into the model (size n), v = T(u) entry by entry:
//      identity v = u;  log v = exp(u);  bounded v = lo + (hi - lo) / (1 + exp(-u)).
#ifndef DSO_THETA_H
#define DSO_THETA_H

#include "mujoco/bind.h"
#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSO_NAME_LEN 128

// Smallest body mass θ may give, kg: below it the joint-space inertia matrix is near-singular
// (MuJoCo's compiler refuses masses below mjMINVAL = 1e-15) and accelerations blow up.
#define DSO_THETA_MIN_MASS 1e-12

// Smallest prior standard deviation: L_prior divides by std^2, which must stay a normal double.
#define DSO_THETA_MIN_PRIOR_STD 1e-150

// Transform from the unconstrained coordinate u to the natural value v.
typedef enum dsoTransform_ {
  DSO_TRANSFORM_IDENTITY = 0,
  DSO_TRANSFORM_LOG,       // positive quantities
  DSO_TRANSFORM_BOUNDED    // v in the open interval (lower, upper), logistic
} dsoTransform;

// One entry of θ. Bounds and the prior are on the natural value.
typedef struct dsoThetaEntry_ {
  char name[DSO_NAME_LEN];  // e.g. "physics.pole.mass"
  dsoBlock block;           // which block of eq. 95
  dsoTransform transform;
  double init;              // natural value at the start
  double lower, upper;      // bounds on the natural value; -INFINITY / INFINITY when absent
  int has_prior;            // 1 if a Gaussian prior N(prior_mean, prior_std^2) is set
  double prior_mean, prior_std;
  int fixed;                // 1: held at init, excluded from optimization
  dsoBinding bind;          // the model field it writes (kind DSO_BIND_NONE for policy/corrector)
} dsoThetaEntry;

// Layout of θ: entries sorted by block (eq. 95 order), the task's order within a block.
typedef struct dsoTheta_ {
  int n;                           // number of entries
  dsoThetaEntry* entry;            // (n)
  int block_start[DSO_NBLOCK + 1]; // entries of block b are [block_start[b], block_start[b+1])
} dsoTheta;

// Creates a layout from n entries (copied, then sorted stably by block). Checks every entry:
// unique names, finite init, lower < upper, init inside the bounds, init > 0 under the log
// transform, finite bounds with a finite width for the bounded transform (init strictly inside),
// a finite prior mean and DSO_THETA_MIN_PRIOR_STD <= prior_std < inf, and the physical range of
// bound entries: >= 0 for quantities that cannot be negative (dso_bind_positive), a body mass of
// at least DSO_THETA_MIN_MASS.
// Returns NULL with err naming the entry on failure.
dsoTheta* dso_theta_create(const dsoThetaEntry* entries, int n, dsoError* err);

// Frees a layout; NULL is a no-op.
void dso_theta_free(dsoTheta* theta);

// Index of the entry called name, or -1.
int dso_theta_find(const dsoTheta* theta, const char* name);

// Writes the unconstrained coordinates of the initial values into u (n).
void dso_theta_init(const dsoTheta* theta, double* u);

// Makes u (n, unconstrained coordinates) the initial values: every entry's init becomes its
// natural value at u (to start a run from values found earlier, `dso run --values`). Each value
// is checked as dso_theta_create checks init (finite, inside the bounds and the physical range);
// on failure err names the entry and nothing changes.
dsoStatus dso_theta_set_init(dsoTheta* theta, const double* u, dsoError* err);

// Natural value of one entry at unconstrained coordinate u.
double dso_theta_entry_natural(const dsoThetaEntry* e, double u);

// Derivative dv/du of one entry's transform at unconstrained coordinate u.
double dso_theta_entry_jacobian(const dsoThetaEntry* e, double u);

// Checks that natural value v is admissible for entry e as dso_theta_create checks init: finite,
// inside the bounds and the transform's domain, and in the physical range of the bound quantity.
// On failure err says "NAME: WHAT V ..." (what names the value in the message, e.g. "value").
dsoStatus dso_theta_entry_check(const dsoThetaEntry* e, double v, const char* what,
                                dsoError* err);

// v = T(u), entry by entry (n each).
void dso_theta_natural(const dsoTheta* theta, double* v, const double* u);

// u = T^-1(v) (n each). Fails with err naming the entry when v is not finite, is outside the
// bounds, the transform's domain or the physical range (see dso_theta_create).
dsoStatus dso_theta_unconstrained(const dsoTheta* theta, double* u, const double* v,
                                  dsoError* err);

// Derivative dv/du of the transform, entry by entry (n each).
void dso_theta_jacobian(const dsoTheta* theta, double* dvdu, const double* u);

// Gaussian prior cost L_prior = sum 0.5 ((v - mean) / std)^2 over entries with a prior, and its
// gradient in u (n, may be NULL). Returns the cost.
double dso_theta_prior(const dsoTheta* theta, double* grad_u, const double* u);

// θ values by name as JSON (reading and writing them) are in the config layer:
// config/theta_json.h.

// Short name of a transform ("identity", "log", "bounded").
const char* dso_transform_name(dsoTransform t);

#ifdef __cplusplus
}
#endif
#endif  // DSO_THETA_H
