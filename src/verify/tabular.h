// Finite chains with an exact oracle (section 2 on a finite state space). A dsoTabular holds one of
// three families and evaluates the DSO chain P(x'|x,θ), L(x,θ) and their first and second
// derivatives at any θ:
//   softmax  generic DSO chain: P(.|x,θ) = softmax(B[x,.] + Σ_k θ_k Φ[k,x,.]),
//            L = c0(x) + ψ(x)ᵀθ + ½θᵀQ(x)θ + w_KL·KL(P(.|x,θ) || softmax(B[x,.])); with w_KL = 1
//            and B = ln p̄ this is the L-MDP of eq. 21 and, with Φ[k,x,x'] = -γφ_k(x'), eq. 89.
//   G-MDP    tabular MDP (p, π, ℓ) mapped by eq. 12, softmax policy π(a|x,θ) ∝ exp(F(x,a)ᵀθ) and
//            ℓ = r(x,a) + τ_H·H[π(.|x,θ)] + τ_R·KL[π_old(.|x) || π(.|x,θ)]: the S- (τ = 0), H- and
//            R-MDPs of eqs. 17, 19, 20.
//   D-MDP    deterministic policy η = μ(x,θ) = M(x)θ with continuous action η, user-supplied
//            p(x'|x,η), r(x,η) and their η-derivatives, mapped by eq. 18.
// The exact oracle gives J, V, ρ (episodic, from t = 0: ρ = (I-γPᵀ)⁻¹P0), d (average), ∇J by
// Theorems 1-3, the Fisher matrix of eq. 72, and finite differences of the exact J.
// States are indices 0..ns-1 stored as doubles (nx = 1).
#ifndef DSO_TABULAR_H
#define DSO_TABULAR_H

#include <stdint.h>

#include "chain/chain.h"
#include "dso/error.h"
#include "chain/rollout.h"

#ifdef __cplusplus
extern "C" {
#endif

// Families of finite chains.
typedef enum dsoTabKind_ { DSO_TAB_SOFTMAX = 0, DSO_TAB_GMDP, DSO_TAB_DMDP } dsoTabKind;

// Objective shared by all families. Terminal states (first exit) end an episode after their cost.
typedef struct dsoTabSetup_ {
  dsoSetting setting;   // episodic, average or time-varying
  double gamma;         // episodic discount in (0, 1]
  int horizon;          // time-varying: T (the last state index); ignored otherwise
  const double* p0;     // (ns) initial distribution P0; NULL: uniform
  const int* terminal;  // (ns) 1 marks a terminal state; NULL: none (episodic only)
} dsoTabSetup;

// Softmax family. In the time-varying setting rollout n uses phase (t + n) mod nphase at step t;
// other settings need nphase = 1. Arrays are copied.
typedef struct dsoSoftmaxSpec_ {
  int ns, ntheta, nphase;
  const double* logit0;  // (nphase x ns x ns) base logits B
  const double* phi;     // (nphase x ntheta x ns x ns) features Φ
  const double* c0;      // (nphase x ns) constant cost
  const double* psi;     // (nphase x ns x ntheta) linear cost, NULL: zero
  const double* q;       // (nphase x ns x ntheta x ntheta) quadratic cost (symmetric), NULL: zero
  double kl_weight;      // w_KL; the KL term is skipped at terminal states
} dsoSoftmaxSpec;

// G-MDP family (eq. 12). Arrays are copied.
typedef struct dsoGmdpSpec_ {
  int ns, na, ntheta;
  const double* p;       // (ns x na x ns) p(x'|x,a), rows sum to 1
  const double* r;       // (ns x na) r(x,a)
  const double* feat;    // (ns x na x ntheta) policy features F(x,a)
  double tau_h;          // weight of the policy entropy H[π] (eq. 19; negative = entropy bonus)
  double tau_r;          // weight of KL[π_old || π] (eq. 20)
  const double* pi_old;  // (ns x na) π_old, needed if tau_r != 0
} dsoGmdpSpec;

// D-MDP dynamics and cost at state x and action eta (na): p (ns) = p(.|x,η), dp (na x ns) = ∇η p,
// r = r(x,η), dr (na) = ∇η r. Must be thread-safe and must not allocate.
typedef void (*dsoDmdpEval)(double* p, double* dp, double* r, double* dr, const void* ctx, int x,
                            const double* eta);

// D-MDP family (eq. 18) with linear policy η = M(x)θ. M is copied; ctx is borrowed.
typedef struct dsoDmdpSpec_ {
  int ns, na, ntheta;
  const double* m;       // (ns x na x ntheta) policy matrix M(x)
  dsoDmdpEval eval;      // dynamics and cost
  const void* ctx;       // passed to eval; must outlive the tabular
} dsoDmdpSpec;

// A finite chain (read-only after creation, shared by threads).
typedef struct dsoTabular_ dsoTabular;

// Per-thread workspace: caches P, ∇lnP, L, ... at the last θ, and scratch for the oracle.
typedef struct dsoTabWork_ dsoTabWork;

// Creates a softmax-family finite chain; *out is NULL on failure.
dsoStatus dso_tabular_create_softmax(dsoTabular** out, const dsoSoftmaxSpec* spec,
                                     const dsoTabSetup* setup, dsoError* err);

// Creates a G-MDP finite chain (S-, H-, R-MDP of section 2.1); *out is NULL on failure.
dsoStatus dso_tabular_create_gmdp(dsoTabular** out, const dsoGmdpSpec* spec,
                                  const dsoTabSetup* setup, dsoError* err);

// Creates a D-MDP finite chain (no second derivatives); *out is NULL on failure.
dsoStatus dso_tabular_create_dmdp(dsoTabular** out, const dsoDmdpSpec* spec,
                                  const dsoTabSetup* setup, dsoError* err);

// Creates a random softmax chain: logits N(0,1), features N(0, scale²), costs in [0, 2) plus small
// linear and positive-definite quadratic terms; the last nterminal states are terminal (episodic).
dsoStatus dso_tabular_create_random(dsoTabular** out, int ns, int ntheta, int nphase,
                                    const dsoTabSetup* setup, int nterminal, double scale,
                                    uint64_t seed, dsoError* err);

// Frees tab (NULL is a no-op).
void dso_tabular_free(dsoTabular* tab);

// Sizes and settings of tab.
int dso_tabular_ns(const dsoTabular* tab);
int dso_tabular_ntheta(const dsoTabular* tab);
int dso_tabular_nphase(const dsoTabular* tab);
dsoSetting dso_tabular_setting(const dsoTabular* tab);
double dso_tabular_gamma(const dsoTabular* tab);
int dso_tabular_horizon(const dsoTabular* tab);
dsoTabKind dso_tabular_kind(const dsoTabular* tab);
// 1 if x is terminal.
int dso_tabular_is_terminal(const dsoTabular* tab, int x);
// The initial distribution P0 (ns), owned by tab.
const double* dso_tabular_p0(const dsoTabular* tab);

// Replaces P0 (ns, copied; normalized here). Used e.g. to start average-cost rollouts at d(θ).
dsoStatus dso_tabular_set_p0(dsoTabular* tab, const double* p0, dsoError* err);

// Creates a workspace for tab (NULL on allocation failure).
dsoTabWork* dso_tabular_work_create(const dsoTabular* tab);

// Frees a workspace (NULL is a no-op).
void dso_tabular_work_free(dsoTabWork* work);

// The chain view of tab (nx = 1, state = index as a double); tab must outlive the chain.
void dso_tabular_chain(dsoChain* chain, const dsoTabular* tab);

// Evaluates the chain at θ for phase ph. Each output may be NULL: P (ns x ns), G = ∇θ ln P
// (ns x ns x ntheta), L (ns), dL (ns x ntheta). Pointers stay valid until the next call with w.
void dso_tabular_eval(const double** P, const double** G, const double** L, const double** dL,
                      const dsoTabular* tab, dsoTabWork* w, const double* theta, int ph);

// Exact objective at θ: J, and optionally V (ns; episodic V, average differential V with dᵀV = 0,
// time-varying V_0 of phase class 0), the density (ns; ρ from t = 0 for episodic, d for average,
// NULL for time-varying) and ∇J (ntheta) by Theorem 1, 2 or 3 (eqs. 30, 31, 35).
dsoStatus dso_tabular_exact(double* J, double* V, double* dens, double* grad, const dsoTabular* tab,
                            dsoTabWork* w, const double* theta, dsoError* err);

// Exact Fisher matrix of eq. 72 (ntheta x ntheta): Σ_x ρ(x) Σ_x' P(x'|x) ∇lnP ∇lnPᵀ over
// non-terminal x (d for average; time-varying: Σ_t of the state distribution, averaged over phase
// classes).
dsoStatus dso_tabular_fisher(double* F, const dsoTabular* tab, dsoTabWork* w, const double* theta,
                             dsoError* err);

// ∇J (ntheta) by the 5-point central difference of the exact J with step h.
dsoStatus dso_tabular_fd_grad(double* grad, const dsoTabular* tab, dsoTabWork* w,
                              const double* theta, double h, dsoError* err);

// ∇²J (ntheta x ntheta, symmetrized) by 5-point central differences of the exact ∇J (Theorems 1-3).
dsoStatus dso_tabular_fd_hessian(double* hess, const dsoTabular* tab, dsoTabWork* w,
                                 const double* theta, double h, dsoError* err);

// G-MDP policy gradient computed on the MDP side: E_ρ[Σ_a ∇π(a|x,θ) Q(x,a,θ) + π ∇θℓ] with
// Q = ℓ + γ Σ p v (eqs. 49-50; for the S-MDP the second term vanishes). Episodic or average.
dsoStatus dso_tabular_gmdp_policy_gradient(double* grad, const dsoTabular* tab, dsoTabWork* w,
                                           const double* theta, dsoError* err);

// D-MDP policy gradient of eq. 52: E_ρ[∇θμ ∇η Q(x,η,θ)|η=μ], Q = r + γ Σ p v (eq. 50).
dsoStatus dso_tabular_dmdp_policy_gradient(double* grad, const dsoTabular* tab, dsoTabWork* w,
                                           const double* theta, dsoError* err);

// Context of dso_tabular_smdp_as_dmdp: the S-MDP (p, r) whose stochastic policy is softmax(η).
typedef struct dsoSmdpAsDmdp_ {
  int ns, na;
  const double* p;  // (ns x na x ns)
  const double* r;  // (ns x na)
} dsoSmdpAsDmdp;

// D-MDP of eq. 26 built from an S-MDP: η (na) are the logits of π̃(a|η) = softmax(η),
// r_D(x,η) = Σ_a π̃ r(x,a), p_D(x'|x,η) = Σ_a π̃ p(x'|x,a). ctx is a dsoSmdpAsDmdp.
void dso_tabular_smdp_as_dmdp(double* p, double* dp, double* r, double* dr, const void* ctx, int x,
                              const double* eta);

// Optimal episodic or average cost of a G-MDP over all policies by value iteration (or relative
// value iteration) to tolerance tol; ignores the policy parameterization (τ terms must be zero).
dsoStatus dso_tabular_gmdp_optimum(double* Jstar, const dsoTabular* tab, double tol, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_TABULAR_H
