// dso: Dynamical System Optimization on top of MuJoCo. Umbrella header of the public API.
#ifndef DSO_DSO_H
#define DSO_DSO_H

#include "dso/version.h"
#include "dso/error.h"
#include "mujoco/mj.h"
#include "mujoco/bind.h"
#include "mujoco/theta.h"
#include "config/theta_json.h"
#include "mujoco/sim.h"
#include "config/task.h"
#include "core/rng.h"
#include "chain/chain.h"
#include "chain/rollout.h"

#include "chain/baseline.h"
#include "chain/grad.h"
#include "chain/optim.h"

#include "mujoco/deriv.h"
#include "mujoco/cost.h"
#include "mujoco/policy.h"
#include "mujoco/mjchain.h"
#include "core/io.h"
#include "mujoco/dataset.h"
#include "apps/simulate.h"
#include "apps/fit.h"
#include "apps/evaluate.h"
#include "core/filter.h"
#include "apps/invdyn.h"
#include "core/parallel.h"
#include "dso/task.h"
#include "dso/run.h"
#include "apps/run.h"
#include "apps/train.h"
#include "mujoco/clone.h"
#include "mujoco/mjcf.h"
#include "estim/kalman.h"
#include "estim/estim.h"
#include "estim/corrector.h"
#include "estim/estimfit.h"

#endif  // DSO_DSO_H
