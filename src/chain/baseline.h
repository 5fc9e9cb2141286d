// Value-function baselines for variance reduction (section 4.1, eqs. 57-59). A linear function
// V̂(x,t) = ωᵀφ(x,t) of user features, fitted by least squares (normal equations, LAPACKE_dposv)
// to Monte Carlo or TD(λ) targets. It is fitted on earlier batches only: call dso_baseline_fit
// after the gradient of a batch has been computed, so the next batch uses it (Algorithm 1).
#ifndef DSO_BASELINE_H
#define DSO_BASELINE_H

#include "dso/error.h"
#include "chain/rollout.h"

#ifdef __cplusplus
extern "C" {
#endif

// Where the baseline is evaluated in the sampled term ∇lnP(x_{t+1}|x_t,θ)(R_{t+1} - b_t).
typedef enum dsoBaselineKind_ {
  DSO_BASELINE_VALUE = 0,  // eq. 59: b_t = V̂(f(x_t,θ), t+1), V̂ ≈ V; needs the chain's mean op
  DSO_BASELINE_STATE       // b_t = V̂(x_t, t) fitted to R_{t+1}: any function of x_t is unbiased
} dsoBaselineKind;

// Regression targets.
typedef enum dsoBaselineTarget_ {
  DSO_TARGET_MC = 0,  // empirical returns R_t (windowed differential returns in the average setting)
  DSO_TARGET_TD       // λ-returns built with the previous ω (TD(λ)); VALUE kind only
} dsoBaselineTarget;

// Feature map φ(x, t) -> phi (nfeat). Must be thread-safe and must not allocate.
typedef void (*dsoFeatureFn)(double* phi, const void* ctx, const double* x, int t);

// Baseline settings; fill with dso_baseline_settings_default.
typedef struct dsoBaselineSettings_ {
  dsoBaselineKind kind;      // default DSO_BASELINE_STATE
  dsoBaselineTarget target;  // default DSO_TARGET_MC
  double lambda;             // TD(λ) parameter in [0, 1] (default 0.9)
  double ridge;              // Tikhonov term added to the normal equations (default 1e-6)
  double forget;             // weight of older batches' normal equations in [0, 1) (default 0)
} dsoBaselineSettings;

// Fills s with the defaults listed above.
void dso_baseline_settings_default(dsoBaselineSettings* s);

// A fitted baseline. Fields are read-only for callers.
typedef struct dsoBaseline_ {
  dsoBaselineSettings set;
  int nfeat;
  dsoFeatureFn feat;
  const void* ctx;   // borrowed feature context
  double* omega;     // (nfeat) weights ω
  double jhat;       // average setting: estimate of J from the last fitted batch
  int fitted;        // number of batches fitted so far (0: the baseline is zero)
  // scratch (allocated at creation)
  double *A, *rhs, *Afac, *phi, *target;
  int maxlen;
} dsoBaseline;

// Creates a zero baseline (ω = 0) with nfeat features for batches of ro's shape. *out is NULL on
// failure. ctx is borrowed.
dsoStatus dso_baseline_create(dsoBaseline** out, int nfeat, dsoFeatureFn feat, const void* ctx,
                              const dsoBaselineSettings* set, const dsoRollout* ro, dsoError* err);

// Frees b (NULL is a no-op).
void dso_baseline_free(dsoBaseline* b);

// V̂(x, t) = ωᵀφ(x,t); scratch (nfeat) is caller-owned so that threads can share b.
double dso_baseline_value(const dsoBaseline* b, double* scratch, const double* x, int t);

// Fits ω to the batch held in ro (serial, rollout order: deterministic). Returns DSO_ERR_NUMERIC
// if the normal equations are not positive definite.
dsoStatus dso_baseline_fit(dsoBaseline* b, const dsoRollout* ro, dsoError* err);

// The fitted state, for checkpoints: ω (nfeat), the count of fitted batches and Ĵ, then, when
// older batches are remembered (forget > 0), the normal equations A (nfeat x nfeat) and their
// right side (nfeat). dso_baseline_state_size doubles.
int dso_baseline_state_size(const dsoBaseline* b);
void dso_baseline_get_state(const dsoBaseline* b, double* state);

// Restores a state written by dso_baseline_get_state. Non-finite values and a count that is not
// a nonnegative integer are DSO_ERR_INPUT naming the offending index (offset + i, so that a
// caller's layout is named); b is unchanged on error.
dsoStatus dso_baseline_set_state(dsoBaseline* b, const double* state, int offset, dsoError* err);

// Context of dso_baseline_onehot: ns states, and horizon > 0 for one weight per (t, x).
typedef struct dsoOnehot_ {
  int ns;
  int horizon;  // 0: stationary features (nfeat = ns); else nfeat = (horizon + 1) * ns
} dsoOnehot;

// One-hot (tabular) features of a finite chain state (x[0] is the state index).
void dso_baseline_onehot(double* phi, const void* ctx, const double* x, int t);

#ifdef __cplusplus
}
#endif
#endif  // DSO_BASELINE_H
