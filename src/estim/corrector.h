// Correctors c(x̃, ȳ, θ_c) = x̃ ⊕ g(x̃, e; θ_c) of the learned predictor-corrector (paper eq. 99),
// with e = ȳ − h(x̃) the innovation and g the correction in the tangent space (ndx = 2*nv + na):
//   gain  g = K e                                   K (ndx x ns), θ_c = corrector.K[i,j]
//   mlp   g = (K + N(x̃, e)) e,   N = W_L tanh(... tanh(W_0 s_n + b_0) ...) + b_L  (ndx x ns),
//         s_n = ((x̃ − x_shift) ⊘ x_scale, e ⊘ σ)  the normalized state and innovation
//         θ_c = corrector.K[i,j], then corrector.W0[i,j], corrector.b0[i], ..., corrector.bL[i]
// The mlp kind is a gain that the network varies with the predicted state and the innovation,
// as an EKF's gain varies along the trajectory; no innovation gives no correction, so the network
// cannot drift the estimate. Its network is a dso MLP policy (policy.h) with input (x̃, e) of size
// nx + ns and output ndx * ns (row-major, like K), so its Jacobians and initializer are the
// policy's. The mlp kind reads x̃ in its coordinates (qpos, qvel, act) and needs nq == nv (hinge
// and slide joints: qpos and tangent agree).
#ifndef DSO_CORRECTOR_H
#define DSO_CORRECTOR_H

#include <mujoco/mujoco.h>
#include <stdint.h>

#include "dso/error.h"
#include "mujoco/policy.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Kinds of correctors.
typedef enum dsoCorrectorKind_ {
  DSO_CORRECTOR_GAIN = 0,   // constant gain
  DSO_CORRECTOR_MLP         // gain varied by an MLP of the predicted state and innovation
} dsoCorrectorKind;

// Corrector settings; fill with dso_corrector_settings_default.
typedef struct dsoCorrectorSettings_ {
  dsoCorrectorKind kind;               // default DSO_CORRECTOR_GAIN
  int nhidden;                         // mlp: hidden layers, 1..DSO_POLICY_MAX_HIDDEN (default 1)
  int hidden[DSO_POLICY_MAX_HIDDEN];   // mlp: units per hidden layer (default 16)
  uint64_t seed;                       // mlp: seed of the weight initializer (default 1)
  double init_scale_out;               // mlp: factor on the initial output weights (default 0.01)
} dsoCorrectorSettings;

// Fills s with the defaults above.
void dso_corrector_settings_default(dsoCorrectorSettings* s);

// Short name of a kind ("gain", "mlp").
const char* dso_corrector_kind_name(dsoCorrectorKind kind);

// A corrector for one model and sensor layout, with evaluation work (not thread-safe).
typedef struct dsoCorrector_ {
  dsoCorrectorKind kind;
  int nx, ndx, ns;   // state (nq + nv + na), tangent and innovation sizes
  int nK;            // gain entries ndx * ns (the first θ_c entries)
  int np;            // all θ_c entries: nK plus the network's
  dsoPolicy* net;    // mlp: the network (owned); NULL for gain
  dsoPolicyWork* w;  // mlp: its work (owned)
  double* in;        // (nx + ns) work: network input
  double* out;       // (ndx * ns) work: network output N
  double* Jin;       // (ndx * ns x (nx + ns)) work: network Jacobian in its input
  double* Jth;       // (ndx * ns x np - nK) work: network Jacobian in its parameters
} dsoCorrector;

// Creates a corrector for model m. x_shift, x_scale (nx; NULL: 0 and 1) normalize the state
// input of the network, sigma (ns, > 0; NULL: 1) the innovations. Returns NULL with err set
// (bad settings, mlp on a model with nq != nv, no sensors).
dsoCorrector* dso_corrector_create(const mjModel* m, const dsoCorrectorSettings* s,
                                   const double* x_shift, const double* x_scale,
                                   const double* sigma, dsoError* err);

// Frees the corrector; NULL is a no-op.
void dso_corrector_free(dsoCorrector* c);

// Fills out (max entries; may be NULL when max is 0) with the θ_c entries in layout order: block
// DSO_BLOCK_CORRECTOR, no binding, identity transform, no bounds or prior, init 0 for the gain
// and the network initializer's values. Returns np.
int dso_corrector_entries(dsoThetaEntry* out, int max, const dsoCorrector* c);

// Correction dx = g(x, e; th) (ndx) at the predicted state x (nx), innovation e (ns) and th (np).
void dso_corrector_apply(double* dx, dsoCorrector* c, const double* x, const double* e,
                         const double* th);

// Jacobians of g at (x, e, th), row-major, each may be NULL: Gx (ndx x ndx) in the tangent of x
// (zero for the gain kind), Ge (ndx x ns), Gth (ndx x np). Does not allocate.
void dso_corrector_jacobian(double* Gx, double* Ge, double* Gth, dsoCorrector* c,
                            const double* x, const double* e, const double* th);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CORRECTOR_H
