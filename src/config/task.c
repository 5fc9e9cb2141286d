#include "config/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cost_json.h"
#include "config/dataset_json.h"
#include "config/estimator_section.h"
#include "config/fit_section.h"
#include "config/json.h"
#include "config/policy_json.h"
#include "config/train_section.h"
#include "mujoco/mj.h"

static const char* const kTaskKeys[] = {"description", "model", "policy", "chain", "cost",
                                        "rollout", "data", "fit", "train", "estimator", "theta", NULL};
static const char* const kChainKeys[] = {"input", "periodic", "divergence_penalty", "init_qpos",
                                         "init_qvel",
                                         "init_std_qpos", "init_std_qvel", "randomize", "fd",
                                         NULL};
static const char* const kFdKeys[] = {"eps_state", "eps_theta", "centered", NULL};
static const char* const kRolloutKeys[] = {"setting", "gamma", "terminate", "horizon", "rollouts",
                                           "threads", "seed", "burn_in", "window", NULL};
static const char* const kEntryKeys[] = {"name", "init", "transform", "bounds", "prior", "fixed",
                                         NULL};
static const char* const kPriorKeys[] = {"mean", "std", NULL};

static char* dup_string(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = (char*)malloc(n);
  if (out) {
    memcpy(out, s, n);
  }
  return out;
}

// resolves rel against the folder of file; absolute paths are kept
static char* resolve_path(const char* file, const char* rel) {
  if (rel[0] == '/') {
    return dup_string(rel);
  }
  const char* slash = strrchr(file, '/');
  size_t dir = slash ? (size_t)(slash - file) + 1 : 0;
  size_t n = dir + strlen(rel) + 1;
  char* out = (char*)malloc(n);
  if (out) {
    memcpy(out, file, dir);
    memcpy(out + dir, rel, strlen(rel) + 1);
  }
  return out;
}

static dsoStatus parse_bounds(dsoThetaEntry* e, const cJSON* b, const dsoCfg* c) {
  dsoCfg cb = dso_cfg_key(c, "bounds");
  if (!cJSON_IsArray(b)) {
    return dso_cfg_fail(&cb, DSO_ERR_INPUT, "expected an array of 2 numbers [lower, upper] (null "
                        "for no bound), got %s", dso_json_type_name(b));
  }
  if (cJSON_GetArraySize(b) != 2) {
    return dso_cfg_fail(&cb, DSO_ERR_INPUT, "expected an array of 2 numbers [lower, upper] (null "
                        "for no bound), got an array of %d element%s", cJSON_GetArraySize(b),
                        cJSON_GetArraySize(b) == 1 ? "" : "s");
  }
  double v[2] = {-INFINITY, INFINITY};
  for (int k = 0; k < 2; k++) {
    const cJSON* x = cJSON_GetArrayItem(b, k);
    if (cJSON_IsNull(x)) {
      continue;
    }
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
      dsoCfg ck = dso_cfg_index(&cb, k);
      return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected a finite number or null, got %s",
                          cJSON_IsNumber(x) ? "a non-finite number" : dso_json_type_name(x));
    }
    v[k] = x->valuedouble;
  }
  if (!(v[0] < v[1])) {
    return dso_cfg_fail(&cb, DSO_ERR_INPUT, "lower %g must be below upper %g", v[0], v[1]);
  }
  e->lower = v[0];
  e->upper = v[1];
  return DSO_OK;
}

// parses one θ entry (node at c); names starting with "policy." refine an entry of pol (npol
// entries)
static dsoStatus parse_entry(dsoThetaEntry* e, const mjModel* m, const dsoThetaEntry* pol,
                             int npol, const cJSON* node, const dsoCfg* c) {
  dsoError* err = c->err;
  memset(e, 0, sizeof(*e));
  e->lower = -INFINITY;
  e->upper = INFINITY;
  if (dso_cfg_object(node, kEntryKeys, c)) return err->code;
  const char* name = NULL;
  if (dso_cfg_string(&name, node, "name", 1, c)) return err->code;
  dsoCfg cn = dso_cfg_key(c, "name");
  if (!name[0]) {
    return dso_cfg_fail(&cn, DSO_ERR_INPUT, "expected a non-empty name");
  }
  if (strlen(name) >= DSO_NAME_LEN) {
    return dso_cfg_fail(&cn, DSO_ERR_INPUT, "longer than %d characters", DSO_NAME_LEN - 1);
  }
  if (!strncmp(name, "policy.", 7)) {
    int k = 0;
    while (k < npol && strcmp(pol[k].name, name)) {
      k++;
    }
    if (k == npol) {
      return dso_cfg_fail(&cn, DSO_ERR_INPUT, "'%s' is not a parameter of the task's policy (%d "
                          "parameters, named as `dso check` lists them)", name, npol);
    }
    *e = pol[k];
  } else {
    if (dso_bind_resolve(&e->bind, m, name, err) != DSO_OK) {
      dso_error_prefix(err, "%s: %s: ", cn.file, cn.path);
      return err->code;
    }
    // store the canonical name (accepts the equivalent "#id" and "[0]" spellings)
    dso_bind_name(e->name, DSO_NAME_LEN, m, &e->bind);
    e->block = dso_bind_block(e->bind.kind);
    e->init = dso_bind_get(m, &e->bind);
  }
  int positive = dso_bind_positive(e->bind.kind);

  int has_init = 0;
  if (dso_cfg_number(&e->init, &has_init, node, "init", 0, c)) return err->code;
  if (!has_init && isnan(e->init)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "\"init\" is required for %s (the model holds no value "
                        "for it)", e->name);
  }

  const char* tr = NULL;
  if (dso_cfg_string(&tr, node, "transform", 0, c)) return err->code;
  const cJSON* bounds = cJSON_GetObjectItemCaseSensitive(node, "bounds");
  // a model quantity with a two-sided natural domain (bind.h) is bounded by default
  int domain = 0;
  if (e->bind.kind != DSO_BIND_NONE && !bounds) {
    domain = dso_bind_domain(&e->bind, &e->lower, &e->upper);
  }
  if (!tr) {
    e->transform = domain ? DSO_TRANSFORM_BOUNDED
                          : positive ? DSO_TRANSFORM_LOG : DSO_TRANSFORM_IDENTITY;
  } else if (!strcmp(tr, "identity")) {
    e->transform = DSO_TRANSFORM_IDENTITY;
  } else if (!strcmp(tr, "log")) {
    e->transform = DSO_TRANSFORM_LOG;
  } else if (!strcmp(tr, "bounded")) {
    e->transform = DSO_TRANSFORM_BOUNDED;
  } else {
    dsoCfg ct = dso_cfg_key(c, "transform");
    return dso_cfg_fail(&ct, DSO_ERR_INPUT, "unknown transform \"%s\"; valid: identity, log, "
                        "bounded", tr);
  }

  if (bounds && parse_bounds(e, bounds, c)) return err->code;
  if (positive && e->lower < 0) {
    if (bounds) {
      dsoCfg cb = dso_cfg_key(c, "bounds");
      return dso_cfg_fail(&cb, DSO_ERR_INPUT, "%s cannot be negative (lower %g)", e->name,
                          e->lower);
    }
    e->lower = 0;  // nonnegative quantities under the identity transform
  }
  if (positive && !(e->init > 0) && (e->transform == DSO_TRANSFORM_LOG || e->init < 0)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "%s must be %s, got init %g%s", e->name,
                        e->transform == DSO_TRANSFORM_LOG ? "> 0" : ">= 0", e->init,
                        e->transform == DSO_TRANSFORM_LOG && !tr
                            ? " (the log transform is the default for this quantity; use "
                              "\"transform\": \"identity\" to allow 0)"
                            : "");
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED && !bounds && !domain) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "the bounded transform needs \"bounds\"");
  }

  const cJSON* prior = cJSON_GetObjectItemCaseSensitive(node, "prior");
  if (prior) {
    dsoCfg cp = dso_cfg_key(c, "prior");
    if (dso_cfg_object(prior, kPriorKeys, &cp) ||
        dso_cfg_number(&e->prior_mean, NULL, prior, "mean", 1, &cp) ||
        dso_cfg_number(&e->prior_std, NULL, prior, "std", 1, &cp)) {
      return err->code;
    }
    dsoCfg cs = dso_cfg_key(&cp, "std");
    if (!(e->prior_std > 0)) {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected a number > 0, got %g", e->prior_std);
    }
    if (e->prior_std < DSO_THETA_MIN_PRIOR_STD) {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected a number >= %g (the prior divides by "
                          "std^2, which must not underflow), got %g", DSO_THETA_MIN_PRIOR_STD,
                          e->prior_std);
    }
    e->has_prior = 1;
  }
  if (dso_cfg_bool(&e->fixed, node, "fixed", c)) return err->code;

  // the layout check (domain, bounds) with this entry's location in front
  dsoTheta* one = dso_theta_create(e, 1, err);
  if (!one) {
    if (c->path[0]) {
      dso_error_prefix(err, "%s: %s: ", c->file, c->path);
    } else {
      dso_error_prefix(err, "%s: ", c->file);
    }
    return err->code;
  }
  dso_theta_free(one);
  return DSO_OK;
}

dsoStatus dso_task_parse_entry(dsoThetaEntry* out, const mjModel* m, const char* json_text,
                               const char* file, const char* path, dsoError* err) {
  dsoError local = {0};
  dsoCfg c = dso_cfg_ctx(file, path, err ? err : &local);
  cJSON* node = json_text ? dso_json_parse(json_text, c.file, c.err) : NULL;
  if (!json_text) {
    dso_cfg_fail(&c, DSO_ERR_INPUT, "no JSON text");
  }
  if (!node) {
    return c.err->code;
  }
  dsoStatus s = parse_entry(out, m, NULL, 0, node, &c);
  cJSON_Delete(node);
  return s;
}

void dso_task_free(dsoTask* task) {
  if (!task) {
    return;
  }
  dso_policy_free(task->policy);
  dso_cost_free(task->cost);
  dso_dataset_free(task->data);
  free(task->fit);
  dso_invdyn_settings_free(task->invdyn);
  free(task->invdyn);
  free(task->train);
  dso_estimfit_settings_free(task->estimator);
  free(task->estimator);
  free(task->chain_arrays);
  free(task->chain_periodic);
  free(task->path);
  free(task->model_path);
  free(task->description);
  if (task->model) {
    mj_deleteModel(task->model);
  }
  dso_theta_free(task->theta);
  free(task);
}

// chain.periodic (node at c): hinge joint names whose angle the policy reads as (sin q, cos q)
static dsoStatus parse_periodic(dsoTask* t, const cJSON* node, const dsoCfg* c) {
  if (!node) {
    return DSO_OK;
  }
  const mjModel* m = t->model;
  if (!cJSON_IsArray(node)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected an array of hinge joint names, got %s",
                        dso_json_type_name(node));
  }
  int n = cJSON_GetArraySize(node);
  t->chain_periodic = (int*)calloc((size_t)(n > 0 ? n : 1), sizeof(int));
  if (!t->chain_periodic) {
    return dso_error(c->err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  int k = 0;
  for (const cJSON* it = node->child; it; it = it->next, k++) {
    dsoCfg ck = dso_cfg_index(c, k);
    if (!cJSON_IsString(it)) {
      return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected a joint name, got %s",
                          dso_json_type_name(it));
    }
    int j = mj_name2id(m, mjOBJ_JOINT, it->valuestring);
    if (j < 0) {
      return dso_cfg_fail(&ck, DSO_ERR_INPUT, "the model has no joint \"%s\"", it->valuestring);
    }
    t->chain_periodic[k] = j;
  }
  if (dso_mj_input_check(m, t->chain_periodic, n, c->path, c->err)) {
    dso_error_prefix(c->err, "%s: ", c->file);
    return c->err->code;
  }
  if (n > 0 && t->chain.input != DSO_INPUT_STATE) {
    return dso_error(c->err, DSO_ERR_INPUT, "%s: %s shapes the state input; chain.input is "
                     "\"sensors\"", c->file, c->path);
  }
  t->chain.periodic = t->chain_periodic;
  t->chain.nperiodic = n;
  return DSO_OK;
}

// chain.fd (node at c): the finite-difference steps of the chain's derivatives
static dsoStatus parse_fd(dsoTask* t, const cJSON* node, const dsoCfg* c) {
  if (!node) {
    return DSO_OK;
  }
  dsoDerivSettings* d = &t->chain.deriv;
  if (dso_cfg_object(node, kFdKeys, c) ||
      dso_cfg_number(&d->eps_state, NULL, node, "eps_state", 0, c) ||
      dso_cfg_number(&d->eps_theta, NULL, node, "eps_theta", 0, c) ||
      dso_cfg_bool(&d->centered, node, "centered", c)) {
    return c->err->code;
  }
  if (!(d->eps_state > 0) || !(d->eps_theta > 0)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "eps_state and eps_theta must be > 0");
  }
  return DSO_OK;
}

// the "chain" section (node at c), except "randomize", which needs θ
static dsoStatus parse_chain(dsoTask* t, const cJSON* node, const dsoCfg* c) {
  const mjModel* m = t->model;
  dsoError* err = c->err;
  dso_mjchain_settings_default(&t->chain);
  int nq = m->nq, nv = m->nv, ndx = 2 * nv + m->na;
  t->chain_arrays = (double*)calloc((size_t)(nq + nv + ndx + 1), sizeof(double));
  if (!t->chain_arrays) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  double* qpos = t->chain_arrays;
  double* qvel = qpos + nq;
  double* std = qvel + nv;
  mju_copy(qpos, m->qpos0, nq);
  t->chain.init_qpos = qpos;
  t->chain.init_qvel = qvel;
  t->chain.init_std = std;
  if (!node) {
    return DSO_OK;
  }
  if (dso_cfg_object(node, kChainKeys, c)) return err->code;
  const char* input = NULL;
  if (dso_cfg_string(&input, node, "input", 0, c)) return err->code;
  if (input && !strcmp(input, "sensors")) {
    t->chain.input = DSO_INPUT_SENSORS;
  } else if (input && strcmp(input, "state")) {
    dsoCfg ci = dso_cfg_key(c, "input");
    return dso_cfg_fail(&ci, DSO_ERR_INPUT, "unknown input \"%s\"; valid: state, sensors",
                        input);
  }
  dsoCfg cp = dso_cfg_key(c, "periodic");
  if (parse_periodic(t, cJSON_GetObjectItemCaseSensitive(node, "periodic"), &cp)) {
    return err->code;
  }
  if (dso_cfg_number(&t->chain.divergence_penalty, NULL, node, "divergence_penalty", 0, c)) {
    return err->code;
  }
  const char* keys[] = {"init_qpos", "init_qvel", "init_std_qpos", "init_std_qvel"};
  double* outs[] = {qpos, qvel, std, std + nv};
  for (int i = 0; i < 4; i++) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, keys[i]);
    dsoCfg ck = dso_cfg_key(c, keys[i]);
    if (v && dso_cfg_joint_values(outs[i], i == 0, i >= 2, m, v, &ck)) return err->code;
  }
  dsoCfg cf = dso_cfg_key(c, "fd");
  return parse_fd(t, cJSON_GetObjectItemCaseSensitive(node, "fd"), &cf);
}

// chain.randomize (node at c): {"theta name": std} for physics entries
static dsoStatus parse_randomize(dsoTask* t, const cJSON* node, const dsoCfg* c) {
  if (!node) {
    return DSO_OK;
  }
  if (!cJSON_IsObject(node)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected an object {\"theta name\": std}, got %s",
                        dso_json_type_name(node));
  }
  int n = t->theta->n;
  // keep the array with the other chain arrays: grow the block
  int nq = t->model->nq, nv = t->model->nv, ndx = 2 * nv + t->model->na;
  double* grown = (double*)realloc(t->chain_arrays,
                                   sizeof(double) * (size_t)(nq + nv + ndx + n + 1));
  if (!grown) {
    return dso_error(c->err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  t->chain_arrays = grown;
  t->chain.init_qpos = grown;
  t->chain.init_qvel = grown + nq;
  t->chain.init_std = grown + nq + nv;
  double* rs = grown + nq + nv + ndx;
  memset(rs, 0, sizeof(double) * (size_t)n);
  t->chain.randomize_std = rs;
  for (const cJSON* it = node->child; it; it = it->next) {
    int i = dso_theta_find(t->theta, it->string);
    if (i < 0) {
      return dso_cfg_fail(c, DSO_ERR_INPUT, "\"%s\" is not an entry of theta", it->string);
    }
    dsoCfg ck = dso_cfg_key(c, it->string);
    if (t->theta->entry[i].block != DSO_BLOCK_PHYSICS) {
      return dso_cfg_fail(&ck, DSO_ERR_INPUT, "only physics entries can be randomized");
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0) {
      return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected a finite std >= 0 (in the entry's "
                          "unconstrained coordinate)");
    }
    rs[i] = it->valuedouble;
  }
  return DSO_OK;
}

// the "rollout" section (node at c)
static dsoStatus parse_rollout(dsoTask* t, const cJSON* node, const dsoCfg* c) {
  dso_rollout_settings_default(&t->rollout);
  t->nrollout = 64;
  if (!node) {
    return DSO_OK;
  }
  dsoError* err = c->err;
  if (dso_cfg_object(node, kRolloutKeys, c)) return err->code;
  const char* setting = NULL;
  if (dso_cfg_string(&setting, node, "setting", 0, c)) return err->code;
  if (setting) {
    if (!strcmp(setting, "episodic")) {
      t->rollout.setting = DSO_EPISODIC;
    } else if (!strcmp(setting, "average")) {
      t->rollout.setting = DSO_AVERAGE;
    } else if (!strcmp(setting, "timevarying")) {
      t->rollout.setting = DSO_TIMEVARYING;
    } else {
      dsoCfg cs = dso_cfg_key(c, "setting");
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "unknown setting \"%s\"; valid: episodic, "
                          "average, timevarying", setting);
    }
  }
  double v;
  int has;
  struct { const char* key; int* out; int lo, hi; } ints[] = {
      {"horizon", &t->rollout.horizon, 1, DSO_TASK_MAX_HORIZON},
      {"rollouts", &t->nrollout, 1, DSO_TASK_MAX_ROLLOUTS},
      {"threads", &t->rollout.nthread, 1, 1024},
      {"burn_in", &t->rollout.burn_in, 0, DSO_TASK_MAX_HORIZON},
      {"window", &t->rollout.window, 1, DSO_TASK_MAX_HORIZON},
  };
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
    if (dso_cfg_number(&v, &has, node, ints[i].key, 0, c)) return err->code;
    if (has) {
      if (v != floor(v) || v < ints[i].lo || v > ints[i].hi) {
        dsoCfg ck = dso_cfg_key(c, ints[i].key);
        return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected an integer in [%d, %d], got %g",
                            ints[i].lo, ints[i].hi, v);
      }
      *ints[i].out = (int)v;
    }
  }
  if (dso_cfg_number(&t->rollout.gamma, NULL, node, "gamma", 0, c) ||
      dso_cfg_bool(&t->rollout.terminate, node, "terminate", c)) {
    return err->code;
  }
  if (!(t->rollout.gamma > 0 && t->rollout.gamma <= 1)) {
    dsoCfg cg = dso_cfg_key(c, "gamma");
    return dso_cfg_fail(&cg, DSO_ERR_INPUT, "expected a number in (0, 1], got %g",
                        t->rollout.gamma);
  }
  if (dso_cfg_number(&v, &has, node, "seed", 0, c)) return err->code;
  if (has) {
    if (v != floor(v) || v < 0 || v > 9007199254740992.0) {
      dsoCfg cs = dso_cfg_key(c, "seed");
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected an integer >= 0, got %g", v);
    }
    t->rollout.seed = (uint64_t)v;
  }
  return DSO_OK;
}

// the number of parameters (θ_μ entries) of the policy that ps describes, as policy.c lays it
// out, refused above DSO_TASK_MAX_POLICY_PARAMS before anything is allocated; c: the "policy"
// section
static dsoStatus check_policy_size(const dsoPolicySettings* ps, int nin, int nu,
                                   const dsoCfg* c) {
  double np = 0;
  const char* field = "type";
  if (ps->kind == DSO_POLICY_RNN) {
    double nh = ps->units;
    np = nh * nin + nh * nh + (double)nu * nh + (double)nu * nin + nh + nu;
    field = "units";
  } else if (ps->kind == DSO_POLICY_MLP) {
    double prev = nin;
    for (int l = 0; l < ps->nhidden; l++) {
      np += (prev + 1) * ps->hidden[l];
      prev = ps->hidden[l];
    }
    np += (prev + 1) * nu;
    field = "hidden";
  } else {
    np = ((double)nin + 1) * nu;
  }
  if (np > DSO_TASK_MAX_POLICY_PARAMS) {
    dsoCfg cf = dso_cfg_key(c, field);
    return dso_cfg_fail(&cf, DSO_ERR_INPUT, "the policy would have %.0f parameters (theta "
                        "entries), more than the %d allowed", np, DSO_TASK_MAX_POLICY_PARAMS);
  }
  return DSO_OK;
}

// a "cost" section must give the optimizer something to do: at least one term (or a clone or
// hybrid weight in "train", whose data-driven costs stand in for the chain's) and a free entry
static dsoStatus check_cost(const dsoTask* t, const cJSON* train, const char* file,
                            dsoError* err) {
  if (!t->cost) {
    return DSO_OK;
  }
  if (t->cost->nterm == 0) {
    int data_cost = 0;
    const char* keys[2] = {"clone", "hybrid"};
    for (int k = 0; k < 2; k++) {
      const cJSON* w = cJSON_IsObject(train) ? cJSON_GetObjectItemCaseSensitive(train, keys[k])
                                             : NULL;
      data_cost |= cJSON_IsNumber(w) && w->valuedouble > 0;
    }
    if (!data_cost) {
      return dso_error(err, DSO_ERR_INPUT, "%s: cost: an empty list of terms, so there is "
                       "nothing to optimize (J = 0 for every theta); give at least one term, or "
                       "a clone or hybrid weight in \"train\"", file);
    }
  }
  int nfree = 0;
  for (int i = 0; i < t->theta->n; i++) {
    nfree += !t->theta->entry[i].fixed;
  }
  if (nfree == 0) {
    return dso_error(err, DSO_ERR_INPUT, "%s: theta: the task has a \"cost\" section but %s, "
                     "so there is nothing to optimize; free an entry (\"fixed\": false) or add "
                     "a policy", file, t->theta->n ? "every theta entry is fixed" :
                     "no theta entries");
  }
  return DSO_OK;
}

// with θ's initial values written over the model's, the principal inertia of every body that θ
// binds must still be one a rigid body can have: A + B >= C for each ordering (MuJoCo's compiler
// refuses it otherwise, but θ is written after compilation)
static dsoStatus check_inertia(const dsoTask* t, const char* file, dsoError* err) {
  const mjModel* m = t->model;
  const dsoTheta* th = t->theta;
  for (int i = 0; i < th->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    if (e->bind.kind != DSO_BIND_BODY_INERTIA) {
      continue;
    }
    int body = e->bind.id, first = 1;
    double I[3];
    mju_copy3(I, m->body_inertia + 3 * body);
    for (int k = 0; k < th->n; k++) {
      const dsoThetaEntry* o = &th->entry[k];
      if (o->bind.kind == DSO_BIND_BODY_INERTIA && o->bind.id == body) {
        I[o->bind.index] = o->init;
        first &= k >= i;
      }
    }
    if (!first) {
      continue;  // this body was checked at its first entry
    }
    for (int c = 0; c < 3; c++) {
      double a = I[(c + 1) % 3], b = I[(c + 2) % 3];
      if (a + b < I[c] * (1 - 1e-9)) {
        return dso_error(err, DSO_ERR_INPUT, "%s: theta: %s: with the initial values the "
                         "principal inertia of body \"%s\" is (%g, %g, %g), which no rigid "
                         "body has (expected A + B >= C for every ordering)", file, e->name,
                         mj_id2name(m, mjOBJ_BODY, body) ? mj_id2name(m, mjOBJ_BODY, body)
                                                          : "?", I[0], I[1], I[2]);
      }
    }
  }
  return DSO_OK;
}

dsoStatus dso_task_check_batch(const dsoTask* task, long long nrollout, long long horizon,
                               const char* rollouts_name, const char* horizon_name,
                               dsoError* err) {
  const mjModel* m = task->model;
  // per step: the state, its cost and log-density, the returns and baseline of the gradient;
  // per rollout: one gradient term per θ entry
  double nx = (double)m->nq + m->nv + m->na;
  double bytes = 8.0 * (double)nrollout *
                 (((double)horizon + 1) * (nx + 4) + (task->theta ? task->theta->n : 0) + 2);
  if (bytes > DSO_TASK_MAX_BATCH_GB * 1e9) {
    return dso_error(err, DSO_ERR_INPUT, "%s %lld x %s %lld: one batch would hold about %.3g GB "
                     "(states, costs and gradients), more than the %g GB allowed; lower %s or %s",
                     rollouts_name, nrollout, horizon_name, horizon, bytes / 1e9,
                     DSO_TASK_MAX_BATCH_GB, rollouts_name, horizon_name);
  }
  return DSO_OK;
}

// the "policy" section (node at c, may be NULL): the policy, whose input size follows the chain's
// input, and its θ entries *polent (npol of them, malloc'd; NULL and 0 without a policy)
static dsoStatus parse_policy(dsoTask* t, dsoThetaEntry** polent, int* npol, const cJSON* node,
                              const dsoCfg* c) {
  *polent = NULL;
  *npol = 0;
  if (!node) {
    return DSO_OK;
  }
  dsoPolicySettings ps;
  dsoStatus s = dso_cfg_read_policy(&ps, node, c);
  if (s) {
    return s;
  }
  int nin = t->chain.input == DSO_INPUT_STATE ? dso_mj_input_size(t->model, t->chain.nperiodic)
                                              : t->model->nsensordata;
  s = check_policy_size(&ps, nin, t->model->nu, c);
  t->policy = s ? NULL : dso_policy_create(&ps, nin, t->model->nu, c->err);
  dso_policy_settings_free(&ps);
  if (s) {
    return s;
  }
  if (!t->policy) {
    dso_error_prefix(c->err, "%s: %s: ", c->file, c->path);
    return c->err->code;
  }
  int np = dso_policy_np(t->policy);
  *polent = (dsoThetaEntry*)calloc((size_t)np + 1, sizeof(dsoThetaEntry));
  if (!*polent) {
    return dso_error(c->err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  dso_policy_entries(*polent, np, t->policy);
  *npol = np;
  return DSO_OK;
}

// the "theta" section (node at c, may be NULL) after the policy's npol entries polent: the θ
// layout; *entries (malloc'd, freed by the caller) holds the entries it was made from
static dsoStatus parse_theta(dsoTask* t, dsoThetaEntry** entries, const dsoThetaEntry* polent,
                             int npol, const cJSON* node, const dsoCfg* c) {
  if (node && !cJSON_IsArray(node)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected an array of entries, got %s",
                        dso_json_type_name(node));
  }
  int ntask = node ? cJSON_GetArraySize(node) : 0;
  dsoThetaEntry* all = (dsoThetaEntry*)calloc((size_t)(npol + ntask) + 1, sizeof(dsoThetaEntry));
  *entries = all;
  if (!all) {
    return dso_error(c->err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  if (npol) {
    memcpy(all, polent, sizeof(dsoThetaEntry) * (size_t)npol);
  }
  int n = npol, i = 0;
  for (const cJSON* it = node ? node->child : NULL; it; it = it->next, i++) {
    dsoCfg ci = dso_cfg_index(c, i);
    dsoThetaEntry e;
    dsoStatus s = parse_entry(&e, t->model, polent, npol, it, &ci);
    if (s) {
      return s;
    }
    if (e.block == DSO_BLOCK_POLICY && e.bind.kind == DSO_BIND_NONE) {
      // refines the policy's own entry
      int k = 0;
      while (strcmp(all[k].name, e.name)) {
        k++;
      }
      all[k] = e;
    } else {
      all[n++] = e;
    }
  }
  t->theta = dso_theta_create(all, n, c->err);
  if (!t->theta) {
    dso_error_prefix(c->err, "%s: %s: ", c->file, c->path);
    return c->err->code;
  }
  return DSO_OK;
}

// the "data" section (node at c, may be NULL): read unless flags has DSO_TASK_SKIP_DATA, from
// data_files (ndata_files > 0, paths as given) in place of the files node names
static dsoStatus parse_data(dsoTask* t, const cJSON* node, int flags,
                            const char* const* data_files, int ndata_files, const dsoCfg* c) {
  if (!node && ndata_files <= 0) {
    return DSO_OK;
  }
  dsoError* err = c->err;
  // data files are relative to the task file's folder
  char* dir = dup_string(c->file);
  if (!dir) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  char* slash = strrchr(dir, '/');
  if (slash) {
    slash[1] = '\0';
  } else {
    dir[0] = '\0';
  }
  dsoDatasetSpec spec;
  dso_dataset_spec_default(&spec);
  dsoStatus s = node ? dso_cfg_read_dataset(&spec, node, dir[0] ? dir : ".", c) : DSO_OK;
  if (!s && ndata_files > 0) {
    // other recordings read with the task's data settings: paths as given
    dso_dataset_spec_clear_files(&spec);
    for (int i = 0; i < ndata_files && !s; i++) {
      s = dso_dataset_spec_add_file(&spec, NULL, data_files[i], err);
    }
  }
  if (!s && !(flags & DSO_TASK_SKIP_DATA) && dso_dataset_load(&t->data, t->model, &spec, err)) {
    dso_error_prefix(err, "%s: %s: ", c->file, c->path);
    s = err->code == DSO_ERR_IO ? DSO_ERR_INPUT : err->code;
    err->code = s;
  }
  dso_dataset_spec_clear(&spec);
  free(dir);
  return s;
}

// the "fit" (with its "inverse_dynamics"), "train" and "estimator" sections into the task's
// typed settings (config/*_section.h)
static dsoStatus parse_run_sections(dsoTask* t, const cJSON* root, const char* path,
                                    dsoError* err) {
  dsoCfg top = dso_cfg_ctx(path, "", err);
  const cJSON* fit = cJSON_GetObjectItemCaseSensitive(root, "fit");
  const cJSON* train = cJSON_GetObjectItemCaseSensitive(root, "train");
  const cJSON* estimator = cJSON_GetObjectItemCaseSensitive(root, "estimator");
  if ((fit && (!(t->fit = (dsoFitSettings*)calloc(1, sizeof(dsoFitSettings))) ||
               !(t->invdyn = (dsoInvdynSettings*)calloc(1, sizeof(dsoInvdynSettings))))) ||
      (train && !(t->train = (dsoTrainSettings*)calloc(1, sizeof(dsoTrainSettings)))) ||
      (estimator &&
       !(t->estimator = (dsoEstimFitSettings*)calloc(1, sizeof(dsoEstimFitSettings))))) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  if (fit) {
    dsoCfg c = dso_cfg_key(&top, "fit");
    int invdyn = 0;
    dsoStatus s = dso_cfg_fit_settings(t->fit, fit, &c);
    if (!s) s = dso_cfg_invdyn_settings(t->invdyn, &invdyn, t->model, fit, &c);
    if (s) return s;
    if (invdyn) {
      t->fit->invdyn = t->invdyn;
    } else {
      dso_invdyn_settings_free(t->invdyn);
      free(t->invdyn);
      t->invdyn = NULL;
    }
  }
  if (train) {
    dsoCfg c = dso_cfg_key(&top, "train");
    dsoStatus s = dso_cfg_train_settings(t->train, train, &c);
    if (s) return s;
  }
  if (estimator) {
    dsoCfg c = dso_cfg_key(&top, "estimator");
    dsoStatus s = dso_cfg_estimfit_settings(t->estimator, t->model, estimator, &c);
    if (s) return s;
  }
  return DSO_OK;
}

static dsoStatus load_into(dsoTask* t, const char* path, int flags, const char* const* data_files,
                           int ndata_files, dsoError* err) {
  cJSON* root = dso_json_read_file(path, err);
  if (!root) {
    return err->code;
  }
  dsoCfg top = dso_cfg_ctx(path, "", err);
  dsoThetaEntry* entries = NULL;
  dsoStatus s = dso_cfg_object(root, kTaskKeys, &top);
  const char* desc = "";
  const char* model = NULL;
  if (!s) s = dso_cfg_string(&desc, root, "description", 0, &top);
  if (!s) s = dso_cfg_string(&model, root, "model", 1, &top);
  dsoCfg cm = dso_cfg_key(&top, "model");
  if (!s && !model[0]) {
    s = dso_cfg_fail(&cm, DSO_ERR_INPUT, "expected the path of an MJCF file, got \"\"");
  }
  if (!s) {
    t->description = dup_string(desc);
    t->model_path = resolve_path(path, model);
    if (!t->description || !t->model_path) {
      s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
  }
  if (!s) {
    t->model = dso_mj_load(t->model_path, err);
    if (!t->model) {
      dso_error_prefix(err, "%s: %s: ", cm.file, cm.path);
      s = err->code == DSO_ERR_IO ? DSO_ERR_INPUT : err->code;
      err->code = s;
    }
  }
  const cJSON* chain = cJSON_GetObjectItemCaseSensitive(root, "chain");
  dsoCfg cc = dso_cfg_key(&top, "chain");
  if (!s) s = parse_chain(t, chain, &cc);
  int npol = 0;
  dsoThetaEntry* polent = NULL;
  dsoCfg cp = dso_cfg_key(&top, "policy");
  if (!s) {
    s = parse_policy(t, &polent, &npol, cJSON_GetObjectItemCaseSensitive(root, "policy"), &cp);
  }
  dsoCfg ct = dso_cfg_key(&top, "theta");
  if (!s) {
    s = parse_theta(t, &entries, polent, npol, cJSON_GetObjectItemCaseSensitive(root, "theta"),
                    &ct);
  }
  free(polent);
  dsoCfg cr = dso_cfg_key(&cc, "randomize");
  if (!s && chain) {
    s = parse_randomize(t, cJSON_GetObjectItemCaseSensitive(chain, "randomize"), &cr);
  }
  const cJSON* cost = s ? NULL : cJSON_GetObjectItemCaseSensitive(root, "cost");
  if (cost) {
    dsoCfg ccost = dso_cfg_key(&top, "cost");
    t->cost = dso_cfg_read_cost(t->model, cost, &ccost);
    if (!t->cost) {
      s = err->code ? err->code : dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
  }
  if (!s) s = check_cost(t, cJSON_GetObjectItemCaseSensitive(root, "train"), path, err);
  if (!s) s = check_inertia(t, path, err);
  dsoCfg crl = dso_cfg_key(&top, "rollout");
  if (!s) s = parse_rollout(t, cJSON_GetObjectItemCaseSensitive(root, "rollout"), &crl);
  if (!s && dso_task_check_batch(t, t->nrollout, t->rollout.horizon, "rollout.rollouts",
                                 "rollout.horizon", err)) {
    dso_error_prefix(err, "%s: ", path);
    s = err->code;
  }
  const cJSON* data = s ? NULL : cJSON_GetObjectItemCaseSensitive(root, "data");
  dsoCfg cd = dso_cfg_key(&top, "data");
  if (!s) s = parse_data(t, data, flags, data_files, ndata_files, &cd);
  // the track term's reference is the task's data (cost.h, mjchain.h)
  t->chain.data = t->data;
  if (!s && t->cost && t->cost->track >= 0 && (t->data || !data)) {
    s = dso_cost_track_check(t->cost, t->model, t->data, path, err);
  }
  if (!s) s = parse_run_sections(t, root, path, err);
  free(entries);
  cJSON_Delete(root);
  return s;
}

dsoMjChain* dso_task_chain(const dsoTask* task, dsoError* err) {
  return dso_mjchain_create(task->model, task->theta, task->policy, task->cost, &task->chain,
                            err);
}

dsoTask* dso_task_load(const char* path, dsoError* err) {
  return dso_task_load_data(path, 0, NULL, 0, err);
}

dsoTask* dso_task_load_flags(const char* path, int flags, dsoError* err) {
  return dso_task_load_data(path, flags, NULL, 0, err);
}

dsoTask* dso_task_load_data(const char* path, int flags, const char* const* data_files,
                            int ndata_files, dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  dsoTask* t = (dsoTask*)calloc(1, sizeof(dsoTask));
  if (!t || !(t->path = dup_string(path ? path : ""))) {
    free(t);
    dso_error(err, DSO_ERR_MEMORY, "task: out of memory");
    return NULL;
  }
  if (load_into(t, path, flags, data_files, ndata_files, err) != DSO_OK) {
    dso_task_free(t);
    return NULL;
  }
  return t;
}
