// The Markov chain interface of DSO (section 2): a chain P_t^n(x'|x,θ) with step cost L_t^n(x,θ).
// A chain is a table of operations, an opaque model (fixed after setup, shared by all threads) and a
// per-thread workspace created by the chain itself. States are double vectors of size nx, θ is a
// double vector of size ntheta. Finite chains (tabular.h) implement it; MuJoCo chains will too.
#ifndef DSO_CHAIN_H
#define DSO_CHAIN_H

#include "dso/error.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

// Operations of a chain. t is the time step and n the rollout index: time-varying chains and costs
// (section 2, eqs. 9-11, "rollout-specific L_t^n and P_t^n") read them; stationary chains ignore them.
// Every function except work_create must be safe to call from many threads at once, each thread
// with its own workspace. None of them may allocate (they run in the rollout and gradient loops).
typedef struct dsoChainOps_ {
  // Creates a per-thread workspace (returns NULL on allocation failure). NULL: no workspace needed.
  void* (*work_create)(const void* model);
  // Frees a workspace made by work_create (NULL is a no-op). NULL if work_create is NULL.
  void (*work_free)(void* work);
  // Draws the initial state x0 (nx) ~ P0 for rollout n.
  void (*initial)(double* x0, const void* model, void* work, int n, dsoRng* rng);
  // Draws xnext (nx) ~ P_t^n(.|x,θ). Returns 0, or nonzero when the step failed numerically (the
  // rollout then ends there and is counted as diverged).
  int (*sample)(double* xnext, const void* model, void* work, const double* x, const double* theta,
                int t, int n, dsoRng* rng);
  // Returns ln P_t^n(xnext|x,θ); grad (ntheta) receives ∇θ ln P and hess (ntheta x ntheta,
  // row-major) ∇²θ ln P. grad and hess may be NULL; hess is only requested if has_hessian.
  double (*logp)(double* grad, double* hess, const void* model, void* work, const double* xnext,
                 const double* x, const double* theta, int t, int n);
  // Returns L_t^n(x,θ); grad (ntheta) receives ∇θL and hess (ntheta x ntheta) ∇²θL; both may be NULL.
  double (*cost)(double* grad, double* hess, const void* model, void* work, const double* x,
                 const double* theta, int t, int n);
  // Noise-free transition xnext = f(x,θ) (nx) used by the baseline of eq. 59. NULL if unavailable.
  void (*mean)(double* xnext, const void* model, void* work, const double* x, const double* theta,
               int t, int n);
  // Returns 1 if x is a terminal state (first exit, section 2), else 0. NULL: no terminal states.
  int (*terminal)(const void* model, const double* x, int t, int n);
  // Optional: g (ntheta) += scale * ∇θ ln P(xnext|x,θ), touching only the entries the score has,
  // for chains whose θ is large and whose score is sparse. NULL: estimators use logp.
  void (*logp_add)(double* g, double scale, const void* model, void* work, const double* xnext,
                   const double* x, const double* theta, int t, int n);
} dsoChainOps;

// A chain: operations, model and sizes. The model is borrowed (not owned) and must outlive the chain.
typedef struct dsoChain_ {
  const dsoChainOps* ops;  // operations (static table of the implementation)
  const void* model;       // opaque model, read-only after setup
  int nx;                  // state size
  int ntheta;              // parameter size
  int has_hessian;         // 1 if logp and cost fill hess
  int cost_grad_zero;      // 1 if ∇θL and ∇²θL are identically zero (estimators then skip them)
} dsoChain;

// Checks that chain has the mandatory operations and positive sizes; fills err otherwise.
dsoStatus dso_chain_check(const dsoChain* chain, dsoError* err);

// Creates one workspace for chain; *work is NULL when the chain needs none. Fails only on allocation.
dsoStatus dso_chain_work_create(void** work, const dsoChain* chain, dsoError* err);

// Frees a workspace made by dso_chain_work_create (NULL is a no-op).
void dso_chain_work_free(const dsoChain* chain, void* work);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CHAIN_H
