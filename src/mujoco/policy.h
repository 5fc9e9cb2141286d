// The policy a = μ(s, θ_μ) of a MuJoCo chain (paper eqs. 95-96) and the brain-body recurrent
// network of eq. 100. The input s (nin) is a feature vector the chain forms from its state; the
// output a (nu) is the action before noise and control-limit clipping, which the chain applies.
//
// Kinds, with s_n = (s - shift) ⊙ scale the normalized input (constant settings, not in θ):
//   linear  a = K s_n + k                                     K (nu x nin), k (nu)
//   mlp     x_0 = s_n, x_{l+1} = tanh(W_l x_l + b_l) for the hidden layers l < L,
//           a = W_L x_L + b_L (linear output layer)           W_l (n_{l+1} x n_l), b_l (n_{l+1})
//   rnn     h' = tanh(W_I s_n + W_R h + b_h)                  W_I (nh x nin), W_R (nh x nh), b_h
//           a  = W_D s_n + W_O h + b_a                        W_O (nu x nh), W_D (nu x nin), b_a
// The rnn's units h (nh) augment the chain state (x_g of eq. 100): the action uses the current h
// and h' is the next network state, updated synchronously with the physics.
//
// θ_μ layout (np entries, all with the identity transform, names as listed, matrices row-major):
//   linear  policy.K[i,j], policy.k[i]
//   mlp     policy.W0[i,j], policy.b0[i], policy.W1[i,j], policy.b1[i], ..., policy.WL, policy.bL
//   rnn     policy.WI[i,j], policy.WR[i,j], policy.WO[i,j], policy.WD[i,j], policy.bh[i],
//           policy.ba[i]
//
// A dsoPolicy is fixed after creation and may be shared by threads; each thread evaluates it with
// its own dsoPolicyWork. Evaluation (forward, Jacobians, vector-Jacobian products) never allocates.
//
// Build one from typed settings (dsoPolicySettings below, then dso_policy_create); a task's
// "policy" object is read into those settings by the config layer (config/policy_json.h).
#ifndef DSO_POLICY_H
#define DSO_POLICY_H

#include <stdint.h>

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Largest number of hidden layers of an mlp policy.
#define DSO_POLICY_MAX_HIDDEN 16

// Kinds of policies.
typedef enum dsoPolicyKind_ {
  DSO_POLICY_LINEAR = 0,  // linear feedback a = K s_n + k
  DSO_POLICY_MLP,         // tanh hidden layers, linear output layer
  DSO_POLICY_RNN          // brain-body recurrent network of eq. 100
} dsoPolicyKind;

// Policy settings; fill with dso_policy_settings_default, then change fields. dso_policy_create
// copies what it needs, so the settings may be freed or reused after it returns.
typedef struct dsoPolicySettings_ {
  dsoPolicyKind kind;                  // default DSO_POLICY_LINEAR
  int nhidden;                         // mlp: number of hidden layers, 1..DSO_POLICY_MAX_HIDDEN
                                       // (default 2)
  int hidden[DSO_POLICY_MAX_HIDDEN];   // mlp: units per hidden layer, each >= 1 (default 32, 32)
  int units;                           // rnn: number of recurrent units nh >= 1 (default 16)
  uint64_t seed;                       // seed of the weight initializer (default 1)
  double init_scale_out;               // mlp, rnn: factor on the initial output weights, finite
                                       // and >= 0 (default 0.01)
  int ninput_shift;                    // length of input_shift: 0 (none) or nin
  double* input_shift;                 // (ninput_shift) subtracted from s, or NULL (none);
                                       // malloc'd by the config reader (config/policy_json.h)
                                       // and then freed by dso_policy_settings_free
  int ninput_scale;                    // length of input_scale: 0 (none) or nin
  double* input_scale;                 // (ninput_scale) multiplies s - shift, or NULL (ones);
                                       // ownership as input_shift
  const double* init;                  // (np) initial θ_μ replacing the initializer, or NULL;
                                       // borrowed, never freed by dso
} dsoPolicySettings;

// Fills s with the defaults above (no arrays).
void dso_policy_settings_default(dsoPolicySettings* s);

// Frees input_shift and input_scale of s and sets them to NULL with length 0 (s may be NULL).
// Only for arrays that the config reader (dso_cfg_read_policy) allocated (or that the caller
// malloc'd).
void dso_policy_settings_free(dsoPolicySettings* s);

// A policy: sizes, layout and constant settings (opaque; read it with the functions below).
typedef struct dsoPolicy_ dsoPolicy;

// Per-thread scratch for evaluating one policy (opaque).
typedef struct dsoPolicyWork_ dsoPolicyWork;

// Creates a policy with input size nin >= 1 and output size nu >= 1 from settings (NULL:
// defaults). Draws the initial θ_μ in layout order from a generator seeded with settings->seed:
// linear zeros; mlp W_l ~ N(0, 1/n_l) (fan-in n_l); rnn W_I, W_R, W_O, W_D ~ N(0, 1/(nin + nh))
// (the fan-in of a unit that reads s and h); the output weights (mlp W_L, rnn W_O and W_D) times
// init_scale_out; biases 0. settings->init, when given, replaces all of them. Returns NULL with
// err naming the bad size or setting on failure. Free with dso_policy_free.
dsoPolicy* dso_policy_create(const dsoPolicySettings* settings, int nin, int nu, dsoError* err);

// Frees a policy; NULL is a no-op.
void dso_policy_free(dsoPolicy* p);

// Kind of p.
dsoPolicyKind dso_policy_kind(const dsoPolicy* p);

// Input size nin of p.
int dso_policy_nin(const dsoPolicy* p);

// Output (action) size nu of p.
int dso_policy_nu(const dsoPolicy* p);

// Number of recurrent units nh of p (the size of h and h'); 0 for linear and mlp policies.
int dso_policy_nh(const dsoPolicy* p);

// Number of parameters np of p (the size of θ_μ).
int dso_policy_np(const dsoPolicy* p);

// Short name of a kind ("linear", "mlp", "rnn").
const char* dso_policy_kind_name(dsoPolicyKind kind);

// Copies the initial θ_μ of p into theta (np).
void dso_policy_init(double* theta, const dsoPolicy* p);

// Fills out (max entries, may be NULL when max is 0) with the θ entries of p in layout order:
// block DSO_BLOCK_POLICY, bind kind DSO_BIND_NONE, identity transform, bounds ±INFINITY, no
// prior, init from the initializer, names as at the top of this file. Writes min(max, np) entries
// and returns np (call once with max 0 to size the array).
int dso_policy_entries(dsoThetaEntry* out, int max, const dsoPolicy* p);

// Creates evaluation scratch for p (one per thread; p must outlive it). Returns NULL with err set
// when out of memory. Free with dso_policy_work_free.
dsoPolicyWork* dso_policy_work_create(const dsoPolicy* p, dsoError* err);

// Frees work; NULL is a no-op.
void dso_policy_work_free(dsoPolicyWork* w);

// Evaluates the policy: a (nu, may be NULL) the action and hnext (nh) the next recurrent state h'
// (rnn; may be NULL, ignored by static kinds) at input s (nin), current recurrent state h (nh;
// NULL for static kinds) and parameters theta (np, the θ_μ block). hnext may be the same array as
// h (in-place update). w must have been created for p.
void dso_policy_forward(double* a, double* hnext, const dsoPolicy* p, dsoPolicyWork* w,
                        const double* s, const double* h, const double* theta);

// Full Jacobians at (s, h, theta), row-major; every output may be NULL, and those of h (da_dh,
// dh_ds, dh_dh, dh_dtheta) are ignored by static kinds:
//   da_ds (nu x nin), da_dh (nu x nh), da_dtheta (nu x np),
//   dh_ds (nh x nin), dh_dh (nh x nh), dh_dtheta (nh x np)   (h = hnext, rnn only).
// Derivatives with respect to s include the input normalization. Costs O((nu + nh) np).
void dso_policy_jacobian(double* da_ds, double* da_dh, double* da_dtheta, double* dh_ds,
                         double* dh_dh, double* dh_dtheta, const dsoPolicy* p, dsoPolicyWork* w,
                         const double* s, const double* h, const double* theta);

// Vector-Jacobian product for adjoint passes, without forming Jacobians: accumulates (+=)
//   g_s += (da/ds)ᵀ lam_a + (dh'/ds)ᵀ lam_h       (nin)
//   g_h += (da/dh)ᵀ lam_a + (dh'/dh)ᵀ lam_h       (nh; rnn only)
//   g_theta += (da/dθ)ᵀ lam_a + (dh'/dθ)ᵀ lam_h   (np)
// at (s, h, theta). lam_a (nu) and lam_h (nh, rnn only) may be NULL (zero); any of g_s, g_h,
// g_theta may be NULL (not wanted). Recomputes the forward pass in w; costs O(np).
void dso_policy_vjp(double* g_s, double* g_h, double* g_theta, const dsoPolicy* p,
                    dsoPolicyWork* w, const double* s, const double* h, const double* theta,
                    const double* lam_a, const double* lam_h);

// As dso_policy_vjp, without the forward pass: uses the activations that the last
// dso_policy_forward on w left there, which must have been called with the same s, h and theta.
// Saves one forward pass when the caller needed the output first.
void dso_policy_vjp_after_forward(double* g_s, double* g_h, double* g_theta, const dsoPolicy* p,
                                  dsoPolicyWork* w, const double* h, const double* theta,
                                  const double* lam_a, const double* lam_h);

#ifdef __cplusplus
}
#endif
#endif  // DSO_POLICY_H
