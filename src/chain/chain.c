// The Markov chain interface: checks and workspace helpers.
#include "chain/chain.h"

#include <stddef.h>

dsoStatus dso_chain_check(const dsoChain* chain, dsoError* err) {
  if (!chain || !chain->ops) {
    return dso_error(err, DSO_ERR_INPUT, "chain: no operations table");
  }
  if (chain->nx <= 0 || chain->ntheta <= 0) {
    return dso_error(err, DSO_ERR_INPUT, "chain: sizes nx=%d, ntheta=%d must be positive",
                     chain->nx, chain->ntheta);
  }
  const dsoChainOps* ops = chain->ops;
  if (!ops->initial || !ops->sample || !ops->logp || !ops->cost) {
    return dso_error(err, DSO_ERR_INPUT,
                     "chain: operations initial, sample, logp and cost are mandatory");
  }
  if (ops->work_create && !ops->work_free) {
    return dso_error(err, DSO_ERR_INPUT, "chain: work_create given without work_free");
  }
  return DSO_OK;
}

dsoStatus dso_chain_work_create(void** work, const dsoChain* chain, dsoError* err) {
  *work = NULL;
  if (!chain->ops->work_create) {
    return DSO_OK;
  }
  *work = chain->ops->work_create(chain->model);
  if (!*work) {
    return dso_error(err, DSO_ERR_MEMORY, "chain: could not allocate a workspace");
  }
  return DSO_OK;
}

void dso_chain_work_free(const dsoChain* chain, void* work) {
  if (work && chain && chain->ops && chain->ops->work_free) {
    chain->ops->work_free(work);
  }
}
