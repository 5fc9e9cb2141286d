// Learned predictor-corrector state estimator (paper eq. 99) with a constant-gain corrector:
//   x̃_{t+1} = f(x̂_t, ā_t)                     prediction under the physics model (ε = 0)
//   x̂_{t+1} = c(x̃_{t+1}, ȳ_{t+1}, θ_c) = x̃_{t+1} ⊕ K (ȳ_{t+1} − h(x̃_{t+1}))
// with K (ndx x ns, row-major, ndx = 2*nv + na, ns = nsensordata) acting in the tangent space, and
// h(x) = dso_sim_measure at x (computed with the control ā_t applied, as dso_simulate records).
// θ_c is K's entries in row-major order, named "corrector.K[i,j]". Each episode runs from its
// first recorded state. The estim cost scores the innovation, the measurement predicted before
// the corrector sees it: J(K) = Σ_t Σ_i (ȳ_{t+1,i} − h_i(x̃_{t+1}))² / σ_i² over the recorded sensor
// channels of the selected episodes. Its gradient is taken by central finite differences in K
// (not by an adjoint pass), and dso_estim_learn minimizes it by Levenberg-Marquardt on the
// innovation residuals with a finite-difference Jacobian.
#ifndef DSO_ESTIM_H
#define DSO_ESTIM_H

#include <mujoco/mujoco.h>

#include "mujoco/dataset.h"
#include "dso/error.h"
#include "estim/kalman.h"
#include "mujoco/sim.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Settings of dso_estim_learn; fill with dso_estim_settings_default.
typedef struct dsoEstimSettings_ {
  int max_iter;     // Levenberg-Marquardt iterations (default 50)
  double lambda0;   // initial damping, relative to diag(JᵀJ) (default 1e-3)
  double fd_step;   // finite-difference step in each K entry: fd_step * max(1, |K_ij|)
                    // (default 1e-6)
  double tol;       // stop when an accepted step lowers J by less than tol * J (default 1e-12)
} dsoEstimSettings;

// Fills s with the defaults above.
void dso_estim_settings_default(dsoEstimSettings* s);

// Work of the estimator: the model it predicts with and per-step buffers. Not thread-safe; make
// one per thread.
typedef struct dsoEstim_ {
  int nx, ndx, nu, ns, nK;   // state, tangent, control, sensor sizes; nK = ndx * ns
  dsoSim* sim;               // model f, h (owned; θ written at creation)
  double* sigma;             // (ns) σ_i of the cost, > 0
  double* x;                 // (nx) work: estimate
  double* xt;                // (nx) work: recorded state
  double* yh;                // (ns) work: predicted measurement
  double* e;                 // (ns) work: innovation
  double* dx;                // (ndx) work
  double* Kw;                // (nK) work: perturbed gain
} dsoEstim;

// Creates an estimator for base with θ = u written into its model (theta, u may be NULL for the
// base model; theta is only read here). sensor_std (ns, > 0; NULL: all 1) are the σ_i of the cost.
// Returns NULL with err set.
dsoEstim* dso_estim_create(const mjModel* base, const dsoTheta* theta, const double* u,
                           const double* sensor_std, dsoError* err);

// Frees the estimator; NULL is a no-op.
void dso_estim_free(dsoEstim* es);

// Writes the θ_c name of gain entry (i, j), "corrector.K[i,j]", into buf (size len); returns the
// length snprintf would write.
int dso_estim_gain_name(char* buf, int len, int i, int j);

// Number of innovation residuals over the selected episodes of ds: Σ (T − 1) * ns.
long dso_estim_nresidual(const dsoEstim* es, const dsoDataset* ds, dsoEpisodeSelect select);

// Runs the estimator with gain K (nK) over the selected episodes of ds. Outputs, each may be NULL:
// r (dso_estim_nresidual) the scaled innovations (ȳ − h(x̃)) / σ, 0 on channels the dataset lacks;
// cost the estim cost J = Σ r²; state_rms the RMS over steps t >= 1 and tangent components of
// x̂_t against the recorded state (qpos, qvel). Fails with DSO_ERR_NUMERIC when the estimate
// diverges (err names the episode and step).
dsoStatus dso_estim_run(double* r, double* cost, double* state_rms, dsoEstim* es,
                        const dsoDataset* ds, dsoEpisodeSelect select, const double* K,
                        dsoError* err);

// Estim cost J(K) on the training episodes and, when grad (nK) is not NULL, its gradient by
// central finite differences with the step of settings (NULL: defaults): 2 * nK extra passes.
dsoStatus dso_estim_cost(double* cost, double* grad, dsoEstim* es, const dsoDataset* ds,
                         const double* K, const dsoEstimSettings* settings, dsoError* err);

// Learns K (nK, in: the start, e.g. zeros; out: the minimizer) on the training episodes by
// Levenberg-Marquardt on the innovation residuals, Jacobian by central differences. cost (may be
// NULL) receives the final J, iters (may be NULL) the iterations run. Steps that make the
// estimate diverge are rejected. On failure K keeps the last accepted value.
dsoStatus dso_estim_learn(double* K, double* cost, int* iters, dsoEstim* es, const dsoDataset* ds,
                          const dsoEstimSettings* settings, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_ESTIM_H
