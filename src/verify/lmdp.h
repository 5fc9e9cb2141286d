// Linearly-solvable chains (L-MDP, eqs. 21, 82-94) on finite state spaces: the exact desirability
// Z of Lemma 4 (eq. 85; the principal eigenfunction in the average setting), the optimal chain
// (eq. 84), the parametric chain of eq. 89, the L-MDP policy gradient (eq. 54), Z-learning
// (baseline and greedy, eqs. 92, 94, and the double-sampling variant), the D-MDP of eq. 23, and
// the natural-gradient identity F⁻¹∇J = θ - ω with compatible features (section 4.7).
#ifndef DSO_LMDP_H
#define DSO_LMDP_H

#include <stdint.h>

#include "dso/error.h"
#include "verify/tabular.h"

#ifdef __cplusplus
extern "C" {
#endif

// A finite L-MDP: baseline chain p̄ and state cost r. Arrays are borrowed.
typedef struct dsoLmdp_ {
  int ns;
  const double* pbar;    // (ns x ns) p̄(x'|x), rows sum to 1
  const double* r;       // (ns) state cost r(x)
  const int* terminal;   // (ns) terminal states (first exit), NULL: none
  const double* p0;      // (ns) initial distribution, NULL: uniform
  dsoSetting setting;    // DSO_EPISODIC or DSO_AVERAGE
  double gamma;          // episodic discount in (0, 1]
} dsoLmdp;

// Exact Z (ns) of Lemma 4: first exit with γ = 1 by a linear solve, γ < 1 by iterating eq. 85 in
// log space to round-off, average cost as the principal eigenvector of diag(e^{-r}) p̄ (scaled to
// max 1). Jstar (may be NULL) receives the optimal J: Σ P0 (-ln Z), or -ln λ in the average setting.
dsoStatus dso_lmdp_solve(double* z, double* Jstar, const dsoLmdp* m, dsoError* err);

// Optimal chain of eq. 84: P (ns x ns) with P(x'|x) = p̄(x'|x) Z(x')^γ / G[Z^γ](x).
void dso_lmdp_optimal_chain(double* P, const dsoLmdp* m, const double* z);

// Parametric chain of eq. 89 with linear energy E(x,θ) = θᵀφ(x), Z = exp(-E): a softmax finite
// chain with base logits ln p̄ and features -γφ(x'), and the cost of eq. 82. feat: (ns x ntheta).
dsoStatus dso_lmdp_create_chain(dsoTabular** out, const dsoLmdp* m, const double* feat, int ntheta,
                                dsoError* err);

// L-MDP policy gradient of eq. 54 (computed on the L-MDP side): E_d[Σ_x' ∇P (ln(P/p̄) + v(x'))]
// (ρ and γ in the episodic setting) for a chain made by dso_lmdp_create_chain from m.
dsoStatus dso_lmdp_policy_gradient(double* grad, const dsoLmdp* m, const dsoTabular* tab,
                                   dsoTabWork* w, const double* theta, dsoError* err);

// Compatible value-function weights ω (ntheta) for the average-cost chain of eq. 89 at θ: the least
// squares fit (LAPACKE_dgels, weighted by d(x)P(x'|x)) of v(x') - E_P[v](x) by
// ωᵀ(φ(x') - E_P[φ](x)). Then F⁻¹∇J = θ - ω (section 4.7).
dsoStatus dso_lmdp_compatible_omega(double* omega, const dsoLmdp* m, const double* feat,
                                    const dsoTabular* tab, dsoTabWork* w, const double* theta,
                                    dsoError* err);

// Z-learning flavours.
typedef enum dsoZlearnMode_ {
  DSO_ZLEARN_BASELINE = 0,  // eq. 92 top: x' ~ p̄, target e^{-r(x)} Z(x')^γ
  DSO_ZLEARN_GREEDY,        // eq. 94: x' ~ P(.|x,θ), target e^{-r(x)} G[Z^γ](x) (exact integral)
  DSO_ZLEARN_DOUBLE         // double sampling: target e^{-r(x)} Z(y)^γ with y ~ p̄, x' ~ P(.|x,θ)
} dsoZlearnMode;

// Runs tabular Z-learning for nsteps transitions from Z = 1 (terminal states fixed at e^{-r}),
// restarting from P0 at terminal states or every `restart` steps; step size c/(c + visits(x)) for
// the sampled modes and 1 for greedy. Writes Z (ns). Episodic setting only.
dsoStatus dso_lmdp_zlearn(double* z, const dsoLmdp* m, dsoZlearnMode mode, long nsteps,
                          int restart, double c, uint64_t seed, dsoError* err);

// Context of dso_lmdp_as_dmdp: the D-MDP of eq. 23 with p(x'|x,η) = softmax(B[x,.] +
// Σ_j η_j U[j,x,.]), B = ln p̄, and r(x,η) = r_L(x) + KL(p(.|x,η) || p̄(.|x)).
typedef struct dsoLmdpAsDmdp_ {
  int ns, na;
  const double* logit0;  // (ns x ns) B
  const double* u;       // (na x ns x ns) U
  const double* r;       // (ns) r_L
} dsoLmdpAsDmdp;

// dsoDmdpEval of the eq. 23 D-MDP; ctx is a dsoLmdpAsDmdp.
void dso_lmdp_as_dmdp(double* p, double* dp, double* r, double* dr, const void* ctx, int x,
                      const double* eta);

#ifdef __cplusplus
}
#endif
#endif  // DSO_LMDP_H
