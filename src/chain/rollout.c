// Batches of rollouts, random streams per rollout, threads.
#include "chain/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"

void dso_rollout_settings_default(dsoRolloutSettings* s) {
  memset(s, 0, sizeof(*s));
  s->setting = DSO_EPISODIC;
  s->gamma = 0.9;
  s->terminate = 1;
  s->horizon = 200;
  s->burn_in = 0;
  s->window = 30;
  s->nthread = 1;
  s->seed = 1;
}

static dsoStatus check_settings(const dsoRolloutSettings* s, dsoError* err) {
  if (s->setting != DSO_EPISODIC && s->setting != DSO_AVERAGE && s->setting != DSO_TIMEVARYING) {
    return dso_error(err, DSO_ERR_INPUT, "rollout: unknown setting %d", (int)s->setting);
  }
  if (s->setting == DSO_EPISODIC && !(s->gamma > 0 && s->gamma <= 1)) {
    return dso_error(err, DSO_ERR_INPUT, "rollout: gamma=%g must lie in (0, 1]", s->gamma);
  }
  if (s->horizon < 1) {
    return dso_error(err, DSO_ERR_INPUT, "rollout: horizon=%d must be >= 1", s->horizon);
  }
  if (s->nthread < 1 || s->nthread > DSO_PARALLEL_MAX_THREADS) {
    return dso_error(err, DSO_ERR_INPUT, "rollout: nthread=%d must lie in [1, %d]", s->nthread,
                     DSO_PARALLEL_MAX_THREADS);
  }
  if (s->setting == DSO_AVERAGE &&
      (s->burn_in < 0 || s->window < 1 || s->burn_in + s->window >= s->horizon)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "rollout: average setting needs burn_in >= 0, window >= 1 and "
                     "burn_in + window < horizon (got %d, %d, %d)",
                     s->burn_in, s->window, s->horizon);
  }
  return DSO_OK;
}

dsoStatus dso_rollout_create(dsoRollout** out, const dsoChain* chain, const dsoRolloutSettings* set,
                             int nrollout, dsoError* err) {
  *out = NULL;
  dsoStatus st = dso_chain_check(chain, err);
  if (st) {
    return st;
  }
  dsoRolloutSettings s;
  if (set) {
    s = *set;
  } else {
    dso_rollout_settings_default(&s);
  }
  if ((st = check_settings(&s, err))) {
    return st;
  }
  if (nrollout < 1) {
    return dso_error(err, DSO_ERR_INPUT, "rollout: nrollout=%d must be >= 1", nrollout);
  }
  dsoRollout* ro = calloc(1, sizeof(dsoRollout));
  if (!ro) {
    return dso_error(err, DSO_ERR_MEMORY, "rollout: out of memory");
  }
  ro->chain = *chain;
  ro->set = s;
  ro->nrollout = nrollout;
  ro->maxlen = s.horizon;
  long nstate = (long)nrollout * (s.horizon + 1);
  ro->len = calloc(nrollout, sizeof(int));
  ro->end = calloc(nrollout, sizeof(int));
  ro->x = calloc(nstate * chain->nx, sizeof(double));
  ro->cost = calloc(nstate, sizeof(double));
  ro->logp = calloc((long)nrollout * s.horizon, sizeof(double));
  ro->theta = calloc(chain->ntheta, sizeof(double));
  ro->work = calloc(s.nthread, sizeof(void*));
  if (!ro->len || !ro->end || !ro->x || !ro->cost || !ro->logp || !ro->theta || !ro->work) {
    dso_rollout_free(ro);
    return dso_error(err, DSO_ERR_MEMORY, "rollout: out of memory for %d rollouts of %d steps",
                     nrollout, s.horizon);
  }
  for (int i = 0; i < s.nthread; i++) {
    if ((st = dso_chain_work_create(&ro->work[i], chain, err))) {
      dso_rollout_free(ro);
      return st;
    }
  }
  *out = ro;
  return DSO_OK;
}

void dso_rollout_free(dsoRollout* ro) {
  if (!ro) {
    return;
  }
  if (ro->work) {
    for (int i = 0; i < ro->set.nthread; i++) {
      dso_chain_work_free(&ro->chain, ro->work[i]);
    }
  }
  free(ro->work);
  free(ro->len);
  free(ro->end);
  free(ro->x);
  free(ro->cost);
  free(ro->logp);
  free(ro->theta);
  free(ro);
}

double dso_rollout_gamma_step(const dsoRollout* ro) {
  return (ro->set.setting == DSO_EPISODIC && !ro->set.terminate) ? ro->set.gamma : 1.0;
}

void dso_rollout_parallel(dsoRollout* ro, dsoRolloutFn fn, void* ctx) {
  dso_parallel_for(ro->set.nthread, ro->nrollout, fn, ctx);
}

typedef struct {
  dsoRollout* ro;
} dsoRunCtx;

static void run_one(void* vctx, int n, int thread) {
  dsoRollout* ro = ((dsoRunCtx*)vctx)->ro;
  const dsoChain* ch = &ro->chain;
  const dsoChainOps* ops = ch->ops;
  void* work = ro->work[thread];
  const dsoRolloutSettings* s = &ro->set;
  int nx = ch->nx;
  dsoRng rng;
  dso_rng_seed(&rng, s->seed, ro->iteration, (uint64_t)n);
  double* x = ro->x + (long)n * (ro->maxlen + 1) * nx;
  double* cost = ro->cost + (long)n * (ro->maxlen + 1);
  double* logp = ro->logp + (long)n * ro->maxlen;
  ops->initial(x, ch->model, work, n, &rng);
  int t = 0;
  dsoEnd end = DSO_END_HORIZON;
  for (;;) {
    const double* xt = x + (long)t * nx;
    cost[t] = ops->cost(NULL, NULL, ch->model, work, xt, ro->theta, t, n);
    if (ops->terminal && ops->terminal(ch->model, xt, t, n)) {
      end = DSO_END_TERMINAL;
      break;
    }
    if (t == ro->maxlen) {
      end = DSO_END_HORIZON;
      break;
    }
    if (s->setting == DSO_EPISODIC && s->terminate && s->gamma < 1 &&
        dso_rng_uniform(&rng) >= s->gamma) {
      end = DSO_END_TERMINATED;
      break;
    }
    double* xn = x + (long)(t + 1) * nx;
    if (ops->sample(xn, ch->model, work, xt, ro->theta, t, n, &rng)) {
      end = DSO_END_DIVERGED;
      break;
    }
    logp[t] = ops->logp(NULL, NULL, ch->model, work, xn, xt, ro->theta, t, n);
    t++;
  }
  ro->len[n] = t;
  ro->end[n] = end;
}

dsoStatus dso_rollout_run(dsoRollout* ro, const double* theta, uint64_t iteration, dsoError* err) {
  memcpy(ro->theta, theta, ro->chain.ntheta * sizeof(double));
  ro->iteration = iteration;
  dsoRunCtx ctx = {ro};
  dso_rollout_parallel(ro, run_one, &ctx);
  ro->ndiverged = 0;
  ro->ntruncated = 0;
  ro->nsamples = 0;
  for (int n = 0; n < ro->nrollout; n++) {
    ro->nsamples += ro->len[n];
    if (ro->end[n] == DSO_END_DIVERGED) {
      ro->ndiverged++;
    }
    if (ro->set.setting == DSO_EPISODIC && ro->end[n] == DSO_END_HORIZON) {
      ro->ntruncated++;
    }
  }
  if (ro->ndiverged == ro->nrollout) {
    return dso_error(err, DSO_ERR_NUMERIC, "rollout: all %d rollouts diverged", ro->nrollout);
  }
  return DSO_OK;
}

void dso_rollout_objective(double* J, double* se, double* per, const dsoRollout* ro) {
  int N = ro->nrollout;
  double w = dso_rollout_gamma_step(ro);
  double sum = 0, sum2 = 0;
  for (int n = 0; n < N; n++) {
    const double* cost = ro->cost + (long)n * (ro->maxlen + 1);
    double r = 0;
    if (ro->set.setting == DSO_AVERAGE) {
      int count = 0;
      for (int t = ro->set.burn_in; t <= ro->len[n]; t++, count++) {
        r += cost[t];
      }
      r = count ? r / count : 0;
    } else {
      double wt = 1;
      for (int t = 0; t <= ro->len[n]; t++, wt *= w) {
        r += wt * cost[t];
      }
    }
    if (per) {
      per[n] = r;
    }
    sum += r;
    sum2 += r * r;
  }
  double mean = N ? sum / N : 0;
  *J = mean;
  if (se) {
    double var = N > 1 ? (sum2 - N * mean * mean) / (N - 1) : 0;
    *se = N > 1 ? sqrt(fmax(var, 0) / N) : 0;
  }
}
