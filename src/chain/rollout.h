// Batches of rollouts of a chain (Algorithm 1, section 4.1): episodic with discounting as termination
// or explicit weights and first exit at terminal states, average cost, and time-varying with
// per-rollout L_t^n, P_t^n. Rollout n draws from the stream keyed by (seed, iteration, n) and every
// reduction runs in rollout order, so results are bitwise identical for any number of threads.
#ifndef DSO_ROLLOUT_H
#define DSO_ROLLOUT_H

#include <stdint.h>

#include "chain/chain.h"
#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Objective settings of section 2.
typedef enum dsoSetting_ {
  DSO_EPISODIC = 0,   // eqs. 1-4: discounted or first exit
  DSO_AVERAGE,        // eqs. 5-8: average cost per step of an ergodic chain
  DSO_TIMEVARYING     // eqs. 9-11: fixed horizon T, L_t^n and P_t^n
} dsoSetting;

// How a rollout ended.
typedef enum dsoEnd_ {
  DSO_END_HORIZON = 0,  // reached the horizon (normal for average and time-varying)
  DSO_END_TERMINAL,     // reached a terminal state (first exit)
  DSO_END_TERMINATED,   // discount as termination: stopped with probability 1-γ
  DSO_END_DIVERGED      // the chain reported numerical trouble
} dsoEnd;

// Settings of a batch of rollouts; fill with dso_rollout_settings_default, then change fields.
typedef struct dsoRolloutSettings_ {
  dsoSetting setting;  // objective (default DSO_EPISODIC)
  double gamma;        // episodic discount in (0, 1]; 1 = first exit (default 0.9)
  int terminate;       // episodic: 1 = discount as termination with probability 1-γ and unit
                       // weights (default); 0 = run to a terminal state or the horizon, weights γ^t
  int horizon;         // maximum number of transitions per rollout: the cap of episodic rollouts,
                       // T of time-varying ones, the length of average-cost ones (default 200)
  int burn_in;         // average: transitions skipped before estimation starts (default 0)
  int window;          // average: length H of the differential return sum (default 30)
  int nthread;         // worker threads, >= 1 (default 1)
  uint64_t seed;       // master seed of the random streams (default 1)
} dsoRolloutSettings;

// Fills s with the defaults listed above.
void dso_rollout_settings_default(dsoRolloutSettings* s);

// A batch of rollouts with its storage and one chain workspace per thread. Fields are read-only for
// callers; T^n = len[n] is the index of the last state of rollout n (states 0..T^n).
typedef struct dsoRollout_ {
  dsoChain chain;            // the chain (model borrowed)
  dsoRolloutSettings set;    // settings (copied)
  int nrollout;              // N
  int maxlen;                // horizon: at most maxlen transitions, maxlen+1 states
  int* len;                  // (N) T^n
  int* end;                  // (N) dsoEnd of each rollout
  double* x;                 // (N x (maxlen+1) x nx) states
  double* cost;              // (N x (maxlen+1)) L_t^n(x_t, θ)
  double* logp;              // (N x maxlen) ln P_t^n(x_{t+1} | x_t, θ) at the sampling θ
  double* theta;             // (ntheta) θ of the last run
  uint64_t iteration;        // iteration key of the last run
  int ndiverged;             // rollouts that ended with DSO_END_DIVERGED in the last run
  int ntruncated;            // episodic rollouts cut by the horizon in the last run
  long nsamples;             // transitions sampled in the last run
  void** work;               // (nthread) chain workspaces
} dsoRollout;

// Creates a rollout batch of nrollout rollouts for chain with settings set (NULL: defaults).
// Validates the settings; *out is NULL on failure. Free with dso_rollout_free.
dsoStatus dso_rollout_create(dsoRollout** out, const dsoChain* chain, const dsoRolloutSettings* set,
                             int nrollout, dsoError* err);

// Frees ro and everything it owns (NULL is a no-op).
void dso_rollout_free(dsoRollout* ro);

// Samples the batch at θ (ntheta) with random streams keyed by (set.seed, iteration, n).
// Does not allocate. Fails with DSO_ERR_NUMERIC only if every rollout diverged.
dsoStatus dso_rollout_run(dsoRollout* ro, const double* theta, uint64_t iteration, dsoError* err);

// Sample objective of the last batch: J (mean over rollouts), its standard error se (may be NULL)
// and the per-rollout values per (N, may be NULL). Episodic and time-varying: the per-rollout sum
// Σ_t w^t L(x_t) over the sampled states, w = dso_rollout_gamma_step(ro); average: the
// per-rollout mean cost per step after burn_in.
void dso_rollout_objective(double* J, double* se, double* per, const dsoRollout* ro);

// Per-step discount of the sampled sums: γ for episodic rollouts with terminate = 0, else 1.
double dso_rollout_gamma_step(const dsoRollout* ro);

// Worker for dso_rollout_parallel: processes rollout n on worker thread `thread`.
typedef void (*dsoRolloutFn)(void* ctx, int n, int thread);

// Calls fn(ctx, n, thread) for n = 0..N-1 on set.nthread threads (contiguous blocks of rollouts; the
// thread index selects ro->work[thread] and any per-thread scratch). Results must be written per
// rollout and reduced by the caller in rollout order.
void dso_rollout_parallel(dsoRollout* ro, dsoRolloutFn fn, void* ctx);

// Pointer to state t of rollout n (nx doubles).
static inline const double* dso_rollout_state(const dsoRollout* ro, int n, int t) {
  return ro->x + ((long)n * (ro->maxlen + 1) + t) * ro->chain.nx;
}

#ifdef __cplusplus
}
#endif
#endif  // DSO_ROLLOUT_H
