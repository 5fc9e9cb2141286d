// Training loop of a MuJoCo chain task: pathwise or score gradient + data-driven and prior
// gradients, Adam, projection.
#include "apps/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/baseline.h"
#include "mujoco/clone.h"
#include "chain/grad.h"
#include "mujoco/mjchain.h"
#include "chain/rollout.h"
#include "mujoco/theta.h"

struct dsoTrain_ {
  const dsoTask* task;
  dsoTrainSettings set;
  dsoMjChain* mc;
  dsoRollout* ro;
  int n;            // ntheta
  long t;           // adam steps taken
  int iter;         // iterations done (iteration key of the next batch)
  double* m;        // (n) adam first moment
  double* v;        // (n) adam second moment
  double* g;        // (n) gradient scratch
  double* gp;       // (n) prior gradient scratch
  dsoClone* data;   // data-driven costs (clone / hybrid weights > 0), else NULL
  double* gd;       // (n) data-cost gradient scratch
  double* ref;      // (n) reference θ_old of proximal cost terms in force (unconstrained)
  dsoGrad* gr;      // score route: Algorithm 1 workspace, else NULL
  dsoBaseline* bl;  // score route: state baseline fitted on the batches before the current one
  double* u0;       // (n) θ the current batch was sampled at
  double* alpha;    // (n) surrogate perturbation u - u0
  double* backup;   // (dso_train_state_size) the state before the current step, for failures
  // natural gradient: the Fisher matrix of the batch and its block over the free entries
  int nfree;        // number of free entries
  int* free_idx;    // (nfree) their indices
  double* F;        // (n x n) Fisher matrix of eq. 72 at the batch's θ
  double* Ff;       // (nfree x nfree) its free block
  double* Fw;       // (nfree x nfree) factorization scratch
  double* gf;       // (nfree) free part of the gradient
  double* df;       // (nfree) natural direction
  int refused;      // steps refused so far (this trainer's calls)
  int refusal;      // what a failure at the current stage of a step refuses (dsoTrainRefusal)
};

void dso_train_settings_default(dsoTrainSettings* s) {
  s->max_iter = 100;
  s->lr = 0.05;
  s->beta1 = 0.9;
  s->beta2 = 0.999;
  s->eps = 1e-8;
  s->seed = 0;
  s->clone = 0;
  s->hybrid = 0;
  s->proximal_every = 0;
  s->gradient = DSO_TRAIN_PATHWISE;
  s->epochs = 1;
  s->clip = 0.2;
  s->optimizer = DSO_TRAIN_ADAM;
  s->damping = 0.01;
}

dsoStatus dso_train_settings_check(const dsoTrainSettings* s, const char* file, dsoError* err) {
  file = file ? file : "train";
  if (s->max_iter < 0) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.max_iter: expected an integer >= 0, got %d",
                     file, s->max_iter);
  }
  if (!(isfinite(s->lr) && s->lr > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.lr: expected a finite number > 0, got %g",
                     file, s->lr);
  }
  if (!(s->beta1 >= 0 && s->beta1 < 1)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.beta1: expected a number in [0, 1), got %g",
                     file, s->beta1);
  }
  if (!(s->beta2 >= 0 && s->beta2 < 1)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.beta2: expected a number in [0, 1), got %g",
                     file, s->beta2);
  }
  if (!(isfinite(s->eps) && s->eps > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.eps: expected a finite number > 0, got %g",
                     file, s->eps);
  }
  if (!(isfinite(s->clone) && s->clone >= 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.clone: expected a finite number >= 0, got %g",
                     file, s->clone);
  }
  if (!(isfinite(s->hybrid) && s->hybrid >= 0)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: train.hybrid: expected a finite number >= 0, got %g", file, s->hybrid);
  }
  if (s->gradient != DSO_TRAIN_PATHWISE && s->gradient != DSO_TRAIN_SCORE) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.gradient: unknown route %d", file,
                     (int)s->gradient);
  }
  if (s->epochs < 1 || s->epochs > 1000) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.epochs: expected an integer in [1, 1000], "
                     "got %d", file, s->epochs);
  }
  if (s->epochs > 1 && s->gradient != DSO_TRAIN_SCORE) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.epochs: %d steps per batch need the score "
                     "route (\"gradient\": \"score\"): only its surrogate reuses a batch at a "
                     "new theta", file, s->epochs);
  }
  if (s->optimizer != DSO_TRAIN_ADAM && s->optimizer != DSO_TRAIN_NATURAL) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.optimizer: unknown optimizer %d", file,
                     (int)s->optimizer);
  }
  if (s->optimizer == DSO_TRAIN_NATURAL && s->gradient != DSO_TRAIN_SCORE) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.optimizer: \"natural\" needs the score route "
                     "(\"gradient\": \"score\"): the Fisher matrix is that of the sampled "
                     "densities", file);
  }
  if (!(isfinite(s->damping) && s->damping > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.damping: expected a finite number > 0, got %g",
                     file, s->damping);
  }
  if (!(isfinite(s->clip) && s->clip >= 0 && s->clip < 1)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: train.clip: expected a number in [0, 1), got %g",
                     file, s->clip);
  }
  return DSO_OK;
}

void dso_train_free(dsoTrain* tr) {
  if (!tr) return;
  dso_rollout_free(tr->ro);
  dso_mjchain_free(tr->mc);
  free(tr->m);
  free(tr->v);
  free(tr->g);
  free(tr->gp);
  free(tr->gd);
  free(tr->ref);
  free(tr->u0);
  free(tr->alpha);
  free(tr->backup);
  free(tr->free_idx);
  free(tr->F);
  free(tr->Ff);
  free(tr->Fw);
  free(tr->gf);
  free(tr->df);
  dso_grad_free(tr->gr);
  dso_baseline_free(tr->bl);
  dso_clone_free(tr->data);
  free(tr);
}

// The score route's workspace: Algorithm 1 and a state baseline on the chain's features (time
// scaled by the horizon). The action and sensor densities do not depend on physics or corrector
// entries, so the route has no gradient for them: each must be fixed.
static dsoStatus create_score(dsoTrain* tr, const char* file, dsoError* err) {
  const dsoTheta* th = tr->task->theta;
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (!e->fixed && (e->block == DSO_BLOCK_PHYSICS || e->block == DSO_BLOCK_CORRECTOR)) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s: train.gradient: \"score\" has no gradient for %s (the action and "
                       "sensor densities do not depend on it): fix the entry or use "
                       "\"pathwise\"", file, e->name);
    }
  }
  tr->mc->feature_horizon = tr->ro->set.horizon;
  int nfeat = dso_mjchain_nfeat(tr->mc);
  dsoBaselineSettings bs;
  dso_baseline_settings_default(&bs);
  bs.kind = DSO_BASELINE_STATE;
  bs.target = DSO_TARGET_MC;
  int natural = tr->set.optimizer == DSO_TRAIN_NATURAL;
  if (dso_grad_create(&tr->gr, tr->ro, natural, nfeat, err)) return err->code;
  if (natural) {
    size_t n = (size_t)th->n;
    tr->free_idx = (int*)calloc(n, sizeof(int));
    for (int i = 0; tr->free_idx && i < th->n; i++) {
      if (!th->entry[i].fixed) tr->free_idx[tr->nfree++] = i;
    }
    size_t nf = (size_t)(tr->nfree > 0 ? tr->nfree : 1);
    tr->F = (double*)calloc(n * n, sizeof(double));
    tr->Ff = (double*)calloc(nf * nf, sizeof(double));
    tr->Fw = (double*)calloc(nf * nf, sizeof(double));
    tr->gf = (double*)calloc(nf, sizeof(double));
    tr->df = (double*)calloc(nf, sizeof(double));
    if (!tr->free_idx || !tr->F || !tr->Ff || !tr->Fw || !tr->gf || !tr->df) {
      return dso_error(err, DSO_ERR_MEMORY, "train: out of memory for the %d x %d Fisher matrix",
                       th->n, th->n);
    }
  }
  return dso_baseline_create(&tr->bl, nfeat, dso_mjchain_features, tr->mc, &bs, tr->ro, err);
}

dsoTrain* dso_train_create(const dsoTask* task, const dsoTrainSettings* set, dsoError* err) {
  if (!task || !task->theta) {
    dso_error(err, DSO_ERR_INPUT, "train: no task");
    return NULL;
  }
  dsoTrainSettings def;
  if (!set) {
    dso_train_settings_default(&def);
    set = &def;
  }
  const char* file = task->path ? task->path : "task";
  if (dso_train_settings_check(set, file, err)) return NULL;
  dsoTrain* tr = (dsoTrain*)calloc(1, sizeof(dsoTrain));
  if (!tr) {
    dso_error(err, DSO_ERR_MEMORY, "train: out of memory");
    return NULL;
  }
  tr->task = task;
  tr->set = *set;
  tr->n = task->theta->n;
  size_t n = (size_t)(tr->n > 0 ? tr->n : 1);
  tr->m = (double*)calloc(n, sizeof(double));
  tr->v = (double*)calloc(n, sizeof(double));
  tr->g = (double*)calloc(n, sizeof(double));
  tr->gp = (double*)calloc(n, sizeof(double));
  tr->gd = (double*)calloc(n, sizeof(double));
  tr->ref = (double*)calloc(n, sizeof(double));
  if (!tr->m || !tr->v || !tr->g || !tr->gp || !tr->gd || !tr->ref) {
    dso_error(err, DSO_ERR_MEMORY, "train: out of memory");
    dso_train_free(tr);
    return NULL;
  }
  tr->mc = dso_task_chain(task, err);
  if (!tr->mc) {
    dso_train_free(tr);
    return NULL;
  }
  dso_theta_init(task->theta, tr->ref);  // the chain's own rule until the first refresh
  dso_mjchain_set_reference(tr->mc, tr->ref);
  dsoRolloutSettings rs = task->rollout;
  if (set->seed != 0) rs.seed = set->seed;
  if (dso_rollout_create(&tr->ro, &tr->mc->chain, &rs, task->nrollout, err)) {
    dso_train_free(tr);
    return NULL;
  }
  if (set->gradient == DSO_TRAIN_PATHWISE && rs.setting == DSO_AVERAGE) {
    dso_error(err, DSO_ERR_INPUT, "%s: rollout.setting: the pathwise route (train.gradient "
              "\"pathwise\", the default) needs the episodic or time-varying setting; the score "
              "route (\"score\") takes the average-cost setting", file);
    dso_train_free(tr);
    return NULL;
  }
  if (set->gradient == DSO_TRAIN_SCORE && create_score(tr, file, err)) {
    dso_train_free(tr);
    return NULL;
  }
  tr->u0 = (double*)calloc(n, sizeof(double));
  tr->alpha = (double*)calloc(n, sizeof(double));
  tr->backup = (double*)calloc((size_t)dso_train_state_size(tr), sizeof(double));
  if (!tr->u0 || !tr->alpha || !tr->backup) {
    dso_error(err, DSO_ERR_MEMORY, "train: out of memory");
    dso_train_free(tr);
    return NULL;
  }
  int which = (set->clone > 0 ? DSO_CLONE_ACTIONS : 0) | (set->hybrid > 0 ? DSO_CLONE_HYBRID : 0);
  if (which) {
    const char* key = set->clone > 0 ? "train.clone" : "train.hybrid";
    if (!task->data) {
      dso_error(err, DSO_ERR_INPUT, "%s: %s: a positive weight needs recorded data: the task has "
                "no \"data\" section", file, key);
      dso_train_free(tr);
      return NULL;
    }
    tr->data = dso_clone_create(tr->mc->base, task->theta, task->policy, &task->chain,
                                task->data, dso_rollout_gamma_step(tr->ro), which,
                                &task->chain.deriv, err);
    if (!tr->data) {
      dso_error_prefix(err, "%s: %s: ", file, key);
      dso_train_free(tr);
      return NULL;
    }
  }
  return tr;
}

// u of the natural value v of entry e, moved inward until T(u) is inside [lo, hi]
static double bound_u(const dsoThetaEntry* e, double v, int upper) {
  double u = e->transform == DSO_TRANSFORM_LOG ? log(v) : v;
  for (int k = 0; k < 4; k++) {
    double w = dso_theta_entry_natural(e, u);
    if (upper ? w <= v : w >= v) break;
    u = nextafter(u, upper ? -INFINITY : INFINITY);
  }
  return u;
}

// projects u onto the bounds of the free entries (bounded transforms are inside by construction)
static void project(const dsoTheta* th, double* u) {
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (e->fixed) continue;
    if (e->transform == DSO_TRANSFORM_IDENTITY) {
      if (u[i] < e->lower) u[i] = e->lower;
      if (u[i] > e->upper) u[i] = e->upper;
    } else if (e->transform == DSO_TRANSFORM_LOG) {
      double v = exp(u[i]);
      if (e->lower > 0 && isfinite(e->lower) && v < e->lower) u[i] = bound_u(e, e->lower, 0);
      if (isfinite(e->upper) && e->upper > 0 && v > e->upper) u[i] = bound_u(e, e->upper, 1);
    }
  }
}

// Natural-gradient step (section 4.4) with the gradient in tr->g: the Fisher matrix of eq. 72 is
// estimated once per batch (epoch 0, at the batch's θ); u -= lr (F_ff + λI)⁻¹ g_f over the free
// entries f, λ = damping × mean diagonal of F_ff.
static dsoStatus natural_step(dsoTrain* tr, double* u, int e, dsoError* err) {
  int n = tr->n, nf = tr->nfree;
  if (e == 0 && dso_grad_fisher(tr->F, NULL, tr->gr, tr->ro, err)) return err->code;
  double diag = 0;
  for (int a = 0; a < nf; a++) {
    tr->gf[a] = tr->g[tr->free_idx[a]];
    for (int b = 0; b < nf; b++) {
      tr->Ff[a * nf + b] = tr->F[(size_t)tr->free_idx[a] * (size_t)n + (size_t)tr->free_idx[b]];
    }
    diag += tr->Ff[a * nf + a];
  }
  double lambda = tr->set.damping * (nf > 0 && diag > 0 ? diag / nf : 1.0);
  if (nf > 0 && dso_natural_direction(tr->df, tr->Ff, tr->gf, nf, lambda, tr->Fw, err)) {
    return err->code;
  }
  for (int a = 0; a < nf; a++) u[tr->free_idx[a]] -= tr->set.lr * tr->df[a];
  project(tr->task->theta, u);
  return DSO_OK;
}

// index of the first entry whose prior term or its gradient is not finite at u, or -1
static int bad_prior(const dsoTheta* th, const double* u) {
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (!e->has_prior) continue;
    double r = (dso_theta_entry_natural(e, u[i]) - e->prior_mean) / e->prior_std;
    if (!isfinite(0.5 * r * r) || !isfinite(r / e->prior_std * dso_theta_entry_jacobian(e, u[i]))) {
      return i;
    }
  }
  return -1;
}

// the new u and the optimizer moments must be finite (a step size such as 1e308 overflows them)
static dsoStatus check_step(const dsoTrain* tr, const double* u, int e, dsoError* err) {
  const dsoTheta* th = tr->task->theta;
  for (int i = 0; i < tr->n; i++) {
    double v = dso_theta_entry_natural(&th->entry[i], u[i]);
    if (!isfinite(u[i]) || !isfinite(v)) {
      return dso_error(err, DSO_ERR_NUMERIC, "train: batch %d, epoch %d: the step takes "
                       "theta entry %d (%s) to %g (train.lr %g); step refused, theta unchanged",
                       tr->iter, e, i, th->entry[i].name, isfinite(u[i]) ? v : u[i],
                       tr->set.lr);
    }
    if (!isfinite(tr->m[i]) || !isfinite(tr->v[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "train: batch %d, epoch %d: the Adam moments of "
                       "theta entry %d (%s) overflow; step refused, theta unchanged", tr->iter, e,
                       i, th->entry[i].name);
    }
  }
  return DSO_OK;
}

// One Adam step of u on the batch in tr->ro, sampled at tr->u0. The gradient of J: epoch 0, at the
// batch's own θ, is the pathwise gradient or Algorithm 1 (the surrogate's gradient at α = 0, eq.
// 67); later epochs (score route only) take the gradient of the surrogate S̃(θ, α) of eq. 66 at
// α = u - u0 with the batch's ratios clipped to [1 - clip, 1 + clip] (Proximal Chain
// Optimization, section 4.3; PPO-style). The data-driven costs and the prior are plain functions
// of u. rep (may be NULL) receives the costs at u and the gradient norm.
static dsoStatus epoch(dsoTrain* tr, double* u, int e, dsoTrainReport* rep, dsoError* err) {
  const dsoTheta* th = tr->task->theta;
  int n = tr->n;
  if (e > 0) {
    double value;
    for (int i = 0; i < n; i++) tr->alpha[i] = u[i] - tr->u0[i];
    if (dso_grad_surrogate(&value, tr->g, NULL, tr->gr, tr->ro, tr->alpha, tr->set.clip, err)) {
      return err->code;
    }
  } else if (tr->gr) {
    if (dso_grad_algorithm1(tr->g, NULL, tr->gr, tr->ro, err)) return err->code;
  } else if (dso_mjchain_pathwise(tr->g, NULL, tr->mc, tr->ro, err)) {
    return err->code;
  }
  // data-driven costs: direct gradients added to the gradient of J (section 5.2)
  double Lc = 0, Lh = 0;
  if (tr->set.clone > 0) {
    if (dso_clone_cost(&Lc, tr->gd, tr->data, u, err)) return err->code;
    for (int i = 0; i < n; i++) tr->g[i] += tr->set.clone * tr->gd[i];
  }
  if (tr->set.hybrid > 0) {
    if (dso_clone_hybrid(&Lh, tr->gd, tr->data, u, err)) return err->code;
    for (int i = 0; i < n; i++) tr->g[i] += tr->set.hybrid * tr->gd[i];
  }
  double prior = dso_theta_prior(th, tr->gp, u);
  // the norm scaled by the largest entry, so that it overflows only when an entry is not finite
  double gmax = 0;
  int bad = -1;
  for (int i = 0; i < n; i++) {
    if (th->entry[i].fixed) {
      tr->g[i] = 0;
      continue;
    }
    tr->g[i] += tr->gp[i];
    if (!isfinite(tr->g[i]) && bad < 0) bad = i;
    if (fabs(tr->g[i]) > gmax) gmax = fabs(tr->g[i]);
  }
  double norm2 = 0;
  for (int i = 0; gmax > 0 && isfinite(gmax) && i < n; i++) {
    norm2 += (tr->g[i] / gmax) * (tr->g[i] / gmax);
  }
  double gnorm = bad >= 0 ? INFINITY : gmax * sqrt(norm2);
  if (rep) {
    rep->clone = Lc;
    rep->hybrid = Lh;
    rep->data = tr->set.clone * Lc + tr->set.hybrid * Lh;
    rep->prior = prior;
    rep->grad_norm = gnorm;
  }
  tr->refusal = DSO_TRAIN_REFUSED_COST;
  double costs[3] = {Lc, Lh, prior};
  const char* names[3] = {"the clone cost", "the hybrid cost", "the prior cost"};
  for (int k = 0; k < 3; k++) {
    if (!isfinite(costs[k])) {
      int b = k == 2 ? bad_prior(th, u) : -1;
      if (b >= 0) {
        return dso_error(err, DSO_ERR_NUMERIC, "train: batch %d: %s is %g: the prior of "
                         "theta entry %s is not finite at its value %g (mean %g, std %g); step "
                         "refused", tr->iter, names[k], costs[k], th->entry[b].name,
                         dso_theta_entry_natural(&th->entry[b], u[b]), th->entry[b].prior_mean,
                         th->entry[b].prior_std);
      }
      return dso_error(err, DSO_ERR_NUMERIC, "train: batch %d: %s is %g; step refused",
                       tr->iter, names[k], costs[k]);
    }
  }
  if (bad >= 0) {
    const char* part = !isfinite(tr->gp[bad]) ? " (its prior term: a prior std this small "
                                                "overflows)" : "";
    return dso_error(err, DSO_ERR_NUMERIC,
                     "train: batch %d, epoch %d: gradient of theta entry %d (%s) is %g%s; "
                     "step refused, theta unchanged", tr->iter, e, bad, th->entry[bad].name,
                     tr->g[bad], part);
  }
  tr->refusal = DSO_TRAIN_REFUSED_STEP;
  const dsoTrainSettings* s = &tr->set;
  if (s->optimizer == DSO_TRAIN_NATURAL) {
    if (natural_step(tr, u, e, err)) return err->code;
    return check_step(tr, u, e, err);
  }
  // adam in the unconstrained coordinates
  long t = tr->t + 1;
  double c1 = 1.0 - pow(s->beta1, (double)t);
  double c2 = 1.0 - pow(s->beta2, (double)t);
  for (int i = 0; i < n; i++) {
    if (th->entry[i].fixed) continue;
    double gi = tr->g[i];
    tr->m[i] = s->beta1 * tr->m[i] + (1.0 - s->beta1) * gi;
    tr->v[i] = s->beta2 * tr->v[i] + (1.0 - s->beta2) * gi * gi;
    double mh = tr->m[i] / c1, vh = tr->v[i] / c2;
    u[i] -= s->lr * mh / (sqrt(vh) + s->eps);
  }
  project(th, u);
  tr->t = t;
  return check_step(tr, u, e, err);
}

// a refused step: θ and the trainer state as before it, the iteration key advanced so that the
// next call draws a new batch
static dsoStatus refuse(dsoTrain* tr, double* u, dsoTrainReport* rep, dsoStatus st) {
  int iter = tr->iter;
  dso_train_set_state(tr, tr->backup, NULL);
  memcpy(u, tr->u0, (size_t)tr->n * sizeof(double));
  if (st == DSO_ERR_NUMERIC) {
    tr->iter = iter + 1;
    tr->refused++;
    if (rep) rep->refused = tr->refusal;
  }
  return st;
}

dsoStatus dso_train_step(dsoTrain* tr, double* u, dsoTrainReport* rep, dsoError* err) {
  const dsoTheta* th = tr->task->theta;
  int n = tr->n;
  if (rep) {
    memset(rep, 0, sizeof(*rep));
    rep->iter = tr->iter;
  }
  for (int i = 0; i < n; i++) {
    if (!isfinite(u[i])) {
      return dso_error(err, DSO_ERR_INPUT, "train: theta entry %d (%s) is not finite", i,
                       th->entry[i].name);
    }
  }
  // from here on the trainer state and u may change: keep them to restore on failure
  dso_train_get_state(tr, tr->backup);
  memcpy(tr->u0, u, (size_t)n * sizeof(double));
  // R-MDP (section 4.3): every proximal_every iterations θ_old becomes the θ the batch is drawn at
  if (tr->set.proximal_every > 0 && tr->iter % tr->set.proximal_every == 0) {
    memcpy(tr->ref, u, (size_t)n * sizeof(double));
    dso_mjchain_set_reference(tr->mc, tr->ref);
  }
  tr->refusal = DSO_TRAIN_REFUSED_COST;
  dsoStatus st = dso_rollout_run(tr->ro, u, (uint64_t)tr->iter, err);
  // the MuJoCo chain ends a diverged rollout in a flagged terminal state (mjchain.h), not
  // through the rollout's own count
  int diverged = dso_mjchain_diverged(tr->mc, tr->ro);
  if (rep) {
    rep->steps = tr->ro->nsamples;
    rep->diverged = diverged;
  }
  if (st) return refuse(tr, u, rep, st);
  if (diverged == tr->ro->nrollout) {
    dso_error(err, DSO_ERR_NUMERIC, "train: batch %d: all %d rollouts diverged; step "
              "refused", tr->iter, diverged);
    return refuse(tr, u, rep, DSO_ERR_NUMERIC);
  }
  double J = 0, Jse = 0;
  dso_rollout_objective(&J, &Jse, NULL, tr->ro);
  if (rep) {
    rep->J = J;
    rep->Jse = Jse;
  }
  if (!isfinite(J)) {
    dso_error(err, DSO_ERR_NUMERIC, "train: batch %d: the batch's cost J is %g (%d of %d "
              "rollouts diverged); step refused", tr->iter, J, diverged, tr->ro->nrollout);
    return refuse(tr, u, rep, DSO_ERR_NUMERIC);
  }
  // score route: returns and the baseline terms of the batch, with the baseline fitted on the
  // batches before this one
  if (tr->gr && (st = dso_grad_prepare(tr->gr, tr->ro, tr->bl, err))) return refuse(tr, u, rep, st);
  for (int e = 0; e < tr->set.epochs; e++) {
    if ((st = epoch(tr, u, e, e == 0 ? rep : NULL, err))) return refuse(tr, u, rep, st);
  }
  // the baseline of the next batch
  if (tr->bl && dso_baseline_fit(tr->bl, tr->ro, err)) return refuse(tr, u, rep, err->code);
  tr->iter++;
  return DSO_OK;
}

int dso_train_refused(const dsoTrain* tr) { return tr->refused; }

int dso_train_iter(const dsoTrain* tr) { return tr->iter; }

int dso_train_state_size(const dsoTrain* tr) {
  return 3 * tr->n + 2 + (tr->bl ? dso_baseline_state_size(tr->bl) : 0);
}

void dso_train_get_state(const dsoTrain* tr, double* state) {
  memcpy(state, tr->m, (size_t)tr->n * sizeof(double));
  memcpy(state + tr->n, tr->v, (size_t)tr->n * sizeof(double));
  memcpy(state + 2 * tr->n, tr->ref, (size_t)tr->n * sizeof(double));
  state[3 * tr->n] = (double)tr->t;
  state[3 * tr->n + 1] = (double)tr->iter;
  if (tr->bl) dso_baseline_get_state(tr->bl, state + 3 * tr->n + 2);
}

dsoStatus dso_train_set_state(dsoTrain* tr, const double* state, dsoError* err) {
  int n = tr->n;
  for (int i = 0; i < 3 * n; i++) {
    if (!isfinite(state[i]) || (i >= n && i < 2 * n && state[i] < 0)) {
      return dso_error(err, DSO_ERR_INPUT,
                       "train: state[%d]: expected a finite%s number, got %g", i,
                       i >= n && i < 2 * n ? " nonnegative" : "", state[i]);
    }
  }
  for (int i = 3 * n; i < 3 * n + 2; i++) {
    double x = state[i];
    if (!(isfinite(x) && x >= 0 && x == floor(x) && x <= 2147483647.0)) {
      return dso_error(err, DSO_ERR_INPUT,
                       "train: state[%d]: expected a nonnegative integer count, got %g", i, x);
    }
  }
  if (tr->bl && dso_baseline_set_state(tr->bl, state + 3 * n + 2, 3 * n + 2, err)) {
    dso_error_prefix(err, "train: ");
    return err->code;
  }
  memcpy(tr->m, state, (size_t)n * sizeof(double));
  memcpy(tr->v, state + n, (size_t)n * sizeof(double));
  memcpy(tr->ref, state + 2 * n, (size_t)n * sizeof(double));
  dso_mjchain_set_reference(tr->mc, tr->ref);
  tr->t = (long)state[3 * n];
  tr->iter = (int)state[3 * n + 1];
  return DSO_OK;
}
