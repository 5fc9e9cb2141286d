// dso: Dynamical System Optimization on top of MuJoCo. Umbrella header of the public API.
#ifndef DSO_DSO_H
#define DSO_DSO_H

#include "error.h"
#include "mj.h"
#include "bind.h"
#include "theta.h"
#include "sim.h"
#include "task.h"
#include "rng.h"
#include "chain.h"
#include "rollout.h"
#include "tabular.h"
#include "baseline.h"
#include "grad.h"
#include "optim.h"
#include "lmdp.h"
#include "verify.h"
#include "deriv.h"
#include "cost.h"
#include "policy.h"
#include "mjchain.h"
#include "io.h"
#include "dataset.h"
#include "simulate.h"
#include "fit.h"
#include "run.h"
#include "train.h"
#include "clone.h"
#include "mjcf.h"
#include "kalman.h"
#include "estim.h"
#include "corrector.h"
#include "estimfit.h"

#ifdef __cplusplus
extern "C" {
#endif

// Version of dso, e.g. "0.1.0".
const char* dso_version_string(void);

#ifdef __cplusplus
}
#endif
#endif  // DSO_DSO_H
