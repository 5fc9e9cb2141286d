#include "mujoco/cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/json.h"

static const char* kTermNames[DSO_NTERM] = {"quadratic", "site_distance", "upright", "velocity",
                                            "effort",    "kl",            "entropy", "proximal",
                                            "track"};

// ½ ln(2πe): the entropy of N(0, 1) is this plus ln σ
#define DSO_HALF_LOG_2PIE 1.4189385332046727418

void dso_cost_free(dsoCost* cost) {
  if (!cost) {
    return;
  }
  for (int i = 0; i < cost->nterm; i++) {
    free(cost->term[i].qref);
    free(cost->term[i].wq);
    free(cost->term[i].wv);
    free(cost->term[i].std);
  }
  free(cost->term);
  free(cost);
}

static dsoStatus vec3(double* out, const cJSON* node, const char* file, const char* path,
                      const char* key, dsoError* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, key);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s: expected an array of 3 numbers, got %s", file,
                     path, key, dso_json_type_name(v));
  }
  for (int k = 0; k < 3; k++) {
    const cJSON* x = cJSON_GetArrayItem(v, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s[%d]: expected a finite number", file, path,
                       key, k);
    }
    out[k] = x->valuedouble;
  }
  return DSO_OK;
}

static dsoStatus element(int* id, const mjModel* m, int obj, const char* key, const cJSON* node,
                         const char* file, const char* path, dsoError* err) {
  const char* name = NULL;
  if (dso_json_string(&name, node, key, 1, file, path, err)) return err->code;
  *id = mj_name2id(m, obj, name);
  if (*id < 0) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s: the model has no %s named \"%s\"", file,
                     path, key, key, name);
  }
  return DSO_OK;
}

// "std": σ̄ > 0 for every actuator, a number or {"actuator": σ̄} naming all of them
static dsoStatus passive_std(double* std, const mjModel* m, const cJSON* node, const char* file,
                             const char* path, dsoError* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, "std");
  if (cJSON_IsNumber(v)) {
    if (!(isfinite(v->valuedouble) && v->valuedouble > 0)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.std: expected a finite number > 0, got %g",
                       file, path, v->valuedouble);
    }
    for (int i = 0; i < m->nu; i++) {
      std[i] = v->valuedouble;
    }
    return DSO_OK;
  }
  if (!cJSON_IsObject(v)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.std: expected a number > 0 or an object "
                     "{\"actuator\": std}, got %s", file, path, dso_json_type_name(v));
  }
  for (const cJSON* it = v->child; it; it = it->next) {
    int id = mj_name2id(m, mjOBJ_ACTUATOR, it->string);
    if (id < 0) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.std.%s: the model has no actuator named "
                       "\"%s\"", file, path, it->string, it->string);
    }
    if (!cJSON_IsNumber(it) || !(isfinite(it->valuedouble) && it->valuedouble > 0)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.std.%s: expected a finite number > 0", file,
                       path, it->string);
    }
    std[id] = it->valuedouble;
  }
  for (int i = 0; i < m->nu; i++) {
    if (!(std[i] > 0)) {
      const char* name = mj_id2name(m, mjOBJ_ACTUATOR, i);
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.std: no value for actuator \"%s\"; the "
                       "passive noise needs every actuator (or one number for all)", file, path,
                       name ? name : "(unnamed)");
    }
  }
  return DSO_OK;
}

static dsoStatus parse_term(dsoCostTerm* t, dsoCost* cost, const mjModel* m, const cJSON* node,
                            const char* file, const char* path, dsoError* err) {
  static const char* const common[] = {"term", "weight", NULL};
  static const char* const quad[] = {"term", "weight", "qpos", "qpos_weight", "qvel_weight", NULL};
  static const char* const site[] = {"term", "weight", "site", "target", NULL};
  static const char* const up[] = {"term", "weight", "body", "axis", NULL};
  static const char* const vel[] = {"term", "weight", "joint", "target", NULL};
  static const char* const eff[] = {"term", "weight", "action", NULL};
  static const char* const kl[] = {"term", "weight", "std", NULL};
  static const char* const track[] = {"term", "weight", "qpos_weight", "qvel_weight", "window",
                                      "windows", NULL};
  t->id = -1;
  t->weight = 1.0;
  const char* kind = NULL;
  if (!cJSON_IsObject(node)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s: expected a cost term object, got %s", file,
                     path, dso_json_type_name(node));
  }
  if (dso_json_string(&kind, node, "term", 1, file, path, err)) return err->code;
  int k = 0;
  while (k < DSO_NTERM && strcmp(kTermNames[k], kind)) {
    k++;
  }
  if (k == DSO_NTERM) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s.term: unknown term \"%s\"; valid: quadratic, site_distance, upright, "
                     "velocity, effort, kl, entropy, proximal, track", file, path, kind);
  }
  t->kind = (dsoTermKind)k;
  const char* const* keys = t->kind == DSO_TERM_QUADRATIC       ? quad
                            : t->kind == DSO_TERM_SITE_DISTANCE ? site
                            : t->kind == DSO_TERM_UPRIGHT       ? up
                            : t->kind == DSO_TERM_VELOCITY      ? vel
                            : t->kind == DSO_TERM_EFFORT        ? eff
                            : t->kind == DSO_TERM_KL            ? kl
                            : t->kind == DSO_TERM_TRACK         ? track
                                                                : common;
  if (dso_json_check_object(node, keys, file, path, err)) return err->code;
  if (dso_json_number(&t->weight, NULL, node, "weight", 0, file, path, err)) return err->code;
  if (!(t->weight >= 0)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.weight: expected a number >= 0, got %g", file,
                     path, t->weight);
  }
  char sub[256];
  switch (t->kind) {
    case DSO_TERM_QUADRATIC: {
      t->qref = (double*)calloc((size_t)m->nq + 1, sizeof(double));
      t->wq = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      t->wv = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      if (!t->qref || !t->wq || !t->wv) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", file);
      }
      mju_copy(t->qref, m->qpos0, m->nq);
      const char* keys3[] = {"qpos", "qpos_weight", "qvel_weight"};
      double* outs[] = {t->qref, t->wq, t->wv};
      for (int i = 0; i < 3; i++) {
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, keys3[i]);
        snprintf(sub, sizeof(sub), "%s.%s", path, keys3[i]);
        if (v && dso_json_joint_values(outs[i], i == 0, i > 0, m, v, file, sub, err)) {
          return err->code;
        }
      }
      break;
    }
    case DSO_TERM_SITE_DISTANCE:
      if (element(&t->id, m, mjOBJ_SITE, "site", node, file, path, err)) return err->code;
      if (vec3(t->target, node, file, path, "target", err)) return err->code;
      cost->kinematics = 1;
      break;
    case DSO_TERM_UPRIGHT: {
      if (element(&t->id, m, mjOBJ_BODY, "body", node, file, path, err)) return err->code;
      t->target[2] = 1;
      if (cJSON_GetObjectItemCaseSensitive(node, "axis") &&
          vec3(t->target, node, file, path, "axis", err)) {
        return err->code;
      }
      double n = mju_norm3(t->target);
      if (!(n > 0)) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s.axis: expected a nonzero vector", file, path);
      }
      mju_scl3(t->target, t->target, 1.0 / n);
      cost->kinematics = 1;
      break;
    }
    case DSO_TERM_VELOCITY: {
      int j = -1;
      if (element(&j, m, mjOBJ_JOINT, "joint", node, file, path, err)) return err->code;
      if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s.joint: only hinge and slide joints", file,
                         path);
      }
      t->id = m->jnt_dofadr[j];
      if (dso_json_number(&t->target[0], NULL, node, "target", 1, file, path, err)) {
        return err->code;
      }
      break;
    }
    case DSO_TERM_EFFORT: {
      const char* action = "applied";
      if (dso_json_string(&action, node, "action", 0, file, path, err)) return err->code;
      if (strcmp(action, "applied") && strcmp(action, "mean")) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s.action: expected \"applied\" or \"mean\", "
                         "got \"%s\"", file, path, action);
      }
      t->mean = !strcmp(action, "mean");
      cost->policy |= t->mean;
      break;
    }
    case DSO_TERM_KL:
      t->std = (double*)calloc((size_t)m->nu + 1, sizeof(double));
      if (!t->std) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", file);
      }
      if (passive_std(t->std, m, node, file, path, err)) return err->code;
      cost->policy = cost->noise = 1;
      break;
    case DSO_TERM_ENTROPY:
      cost->policy = cost->noise = 1;
      break;
    case DSO_TERM_TRACK: {
      if (cost->track >= 0) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s: a second track term; the cost takes at "
                         "most one (it already has cost[%d])", file, path, cost->track);
      }
      t->wq = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      t->wv = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      if (!t->wq || !t->wv) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", file);
      }
      const char* keys2[] = {"qpos_weight", "qvel_weight"};
      double* outs[] = {t->wq, t->wv};
      for (int i = 0; i < 2; i++) {
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, keys2[i]);
        snprintf(sub, sizeof(sub), "%s.%s", path, keys2[i]);
        if (v && dso_json_joint_values(outs[i], 0, 1, m, v, file, sub, err)) return err->code;
      }
      double win = 0;
      if (dso_json_number(&win, NULL, node, "window", 0, file, path, err)) return err->code;
      if (!(win >= 0 && win <= 1e9 && win == floor(win))) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s.window: expected an integer >= 0 (samples "
                         "per window; 0: whole episodes), got %g", file, path, win);
      }
      t->window = (int)win;
      const char* mode = "cycle";
      if (dso_json_string(&mode, node, "windows", 0, file, path, err)) return err->code;
      if (strcmp(mode, "cycle") && strcmp(mode, "random")) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s.windows: expected \"cycle\" or "
                         "\"random\", got \"%s\"", file, path, mode);
      }
      t->random = !strcmp(mode, "random");
      // the term's index: the caller's path ends in [i]
      const char* br = strrchr(path, '[');
      cost->track = br ? atoi(br + 1) : 0;
      break;
    }
    case DSO_TERM_PROXIMAL:
      cost->policy = cost->noise = cost->reference = 1;
      break;
    default: break;
  }
  return DSO_OK;
}

dsoCost* dso_cost_from_json(const mjModel* m, const char* json_text, const char* file,
                            const char* path, dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  cJSON* root = dso_json_parse(json_text, file, err);
  if (!root) {
    return NULL;
  }
  dsoCost* cost = (dsoCost*)calloc(1, sizeof(dsoCost));
  int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : 0;
  if (cost) {
    cost->term = (dsoCostTerm*)calloc((size_t)n + 1, sizeof(dsoCostTerm));
    cost->track = -1;
  }
  if (!cost || !cost->term) {
    dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", file);
  } else if (!cJSON_IsArray(root)) {
    dso_error(err, DSO_ERR_INPUT, "%s: %s: expected an array of cost terms, got %s", file, path,
              dso_json_type_name(root));
  } else {
    int i = 0;
    for (const cJSON* it = root->child; it; it = it->next, i++) {
      char sub[256];
      snprintf(sub, sizeof(sub), "%s[%d]", path, i);
      cost->nterm = i + 1;  // so that free releases a half-parsed term
      if (parse_term(&cost->term[i], cost, m, it, file, sub, err)) {
        break;
      }
    }
  }
  cJSON_Delete(root);
  if (err->code) {
    dso_cost_free(cost);
    return NULL;
  }
  return cost;
}

double dso_cost_eval(const dsoCost* cost, const mjModel* m, const mjData* d, const double* a,
                     double* gx, double* ga, double* work) {
  int nv = m->nv;
  if (gx) {
    mju_zero(gx, 2 * nv + m->na);
  }
  if (ga) {
    mju_zero(ga, m->nu);
  }
  double total = 0;
  for (int i = 0; i < cost->nterm; i++) {
    const dsoCostTerm* t = &cost->term[i];
    double w = t->weight;
    switch (t->kind) {
      case DSO_TERM_QUADRATIC: {
        // position error in the tangent space, so any joint type differences correctly
        double* dq = work;
        mj_differentiatePos(m, dq, 1.0, t->qref, d->qpos);
        for (int k = 0; k < nv; k++) {
          total += w * (t->wq[k] * dq[k] * dq[k] + t->wv[k] * d->qvel[k] * d->qvel[k]);
          if (gx) {
            gx[k] += 2 * w * t->wq[k] * dq[k];
            gx[nv + k] += 2 * w * t->wv[k] * d->qvel[k];
          }
        }
        break;
      }
      case DSO_TERM_SITE_DISTANCE: {
        double e[3];
        mju_sub3(e, d->site_xpos + 3 * t->id, t->target);
        total += w * mju_dot3(e, e);
        if (gx) {
          double* jac = work;  // (3 x nv)
          mj_jacSite(m, (mjData*)d, jac, NULL, t->id);
          for (int k = 0; k < nv; k++) {
            gx[k] += 2 * w * (jac[k] * e[0] + jac[nv + k] * e[1] + jac[2 * nv + k] * e[2]);
          }
        }
        break;
      }
      case DSO_TERM_UPRIGHT: {
        // world direction of the body axis: z = R a; cost 1 - z_up
        const double* R = d->xmat + 9 * t->id;
        double z[3];
        mju_mulMatVec(z, R, t->target, 3, 3);
        total += w * (1 - z[2]);
        if (gx) {
          // dz = (J_rot dq) x z, so d(z_up)/dq = J_rot^T (z x e_up)
          double* jr = work;  // (3 x nv)
          mj_jacBody(m, (mjData*)d, NULL, jr, t->id);
          double c[3] = {z[1], -z[0], 0};
          for (int k = 0; k < nv; k++) {
            gx[k] -= w * (jr[k] * c[0] + jr[nv + k] * c[1] + jr[2 * nv + k] * c[2]);
          }
        }
        break;
      }
      case DSO_TERM_VELOCITY: {
        double e = d->qvel[t->id] - t->target[0];
        total += w * e * e;
        if (gx) {
          gx[nv + t->id] += 2 * w * e;
        }
        break;
      }
      case DSO_TERM_EFFORT:
        if (a && !t->mean) {
          for (int k = 0; k < m->nu; k++) {
            total += w * a[k] * a[k];
            if (ga) {
              ga[k] += 2 * w * a[k];
            }
          }
        }
        break;
      default: break;
    }
  }
  return total;
}

double dso_cost_eval_policy(const dsoCost* cost, const mjModel* m, const dsoCostPolicy* p,
                            double* gmu, double* gsigma, double* gmu_old) {
  int nu = m->nu;
  double* outs[3] = {gmu, gsigma, gmu_old};
  for (int k = 0; k < 3; k++) {
    if (outs[k]) {
      mju_zero(outs[k], nu);
    }
  }
  double total = 0;
  for (int i = 0; i < cost->nterm; i++) {
    const dsoCostTerm* t = &cost->term[i];
    double w = t->weight;
    for (int k = 0; k < nu; k++) {
      double mu = p->mu[k];
      switch (t->kind) {
        case DSO_TERM_EFFORT: {
          if (!t->mean) break;
          // D-MDP (eq. 18): r at the clipped mean; no gradient where the limit binds
          double c = mu;
          int inside = 1;
          if (m->actuator_ctrllimited[k]) {
            const double* r = m->actuator_ctrlrange + 2 * k;
            inside = mu >= r[0] && mu <= r[1];
            c = fmin(fmax(mu, r[0]), r[1]);
          }
          total += w * c * c;
          if (gmu && inside) gmu[k] += 2 * w * c;
          break;
        }
        case DSO_TERM_KL: {
          // KL(N(μ, σ²) || N(0, σ̄²)) (eqs. 21, 97)
          double s = p->sigma[k], sb = t->std[k], sb2 = sb * sb;
          total += w * (log(sb / s) + (s * s + mu * mu) / (2 * sb2) - 0.5);
          if (gmu) gmu[k] += w * mu / sb2;
          if (gsigma) gsigma[k] += w * (s / sb2 - 1 / s);
          break;
        }
        case DSO_TERM_ENTROPY: {
          // −H[N(μ, σ²)] (eq. 19)
          double s = p->sigma[k];
          total -= w * (log(s) + DSO_HALF_LOG_2PIE);
          if (gsigma) gsigma[k] -= w / s;
          break;
        }
        case DSO_TERM_PROXIMAL: {
          // KL(N(μ_old, σ_old²) || N(μ, σ²)) (eq. 20, section 4.3)
          double s = p->sigma[k], so = p->sigma_old[k], e = p->mu_old[k] - mu;
          double q = so * so + e * e;
          total += w * (log(s / so) + q / (2 * s * s) - 0.5);
          if (gmu) gmu[k] -= w * e / (s * s);
          if (gmu_old) gmu_old[k] += w * e / (s * s);
          if (gsigma) gsigma[k] += w * (1 / s - q / (s * s * s));
          break;
        }
        default: break;
      }
    }
  }
  return total;
}

dsoStatus dso_cost_track_check(const dsoCost* cost, const mjModel* m, const dsoDataset* data,
                               const char* file, dsoError* err) {
  if (!cost || cost->track < 0) {
    return DSO_OK;
  }
  int i = cost->track;
  const dsoCostTerm* t = &cost->term[i];
  if (!data) {
    return dso_error(err, DSO_ERR_INPUT, "%s: cost[%d]: the track term needs recorded "
                     "trajectories to track: the task has no \"data\" section", file, i);
  }
  if (data->nq != m->nq || data->nv != m->nv) {
    return dso_error(err, DSO_ERR_INPUT, "%s: cost[%d]: the data was made for another model", file,
                     i);
  }
  for (int j = 0; j < m->njnt; j++) {
    int qa = m->jnt_qposadr[j], va = m->jnt_dofadr[j];
    const char* name = mj_id2name(m, mjOBJ_JOINT, j);
    if (t->wq[va] > 0 && !data->has[DSO_DATA_QPOS][qa]) {
      return dso_error(err, DSO_ERR_INPUT, "%s: cost[%d].qpos_weight.%s: the data does not "
                       "record qpos.%s; only recorded columns can be tracked (weight 0 or record "
                       "it)", file, i, name ? name : "?", name ? name : "?");
    }
    if (t->wv[va] > 0 && !data->has[DSO_DATA_QVEL][va]) {
      return dso_error(err, DSO_ERR_INPUT, "%s: cost[%d].qvel_weight.%s: the data does not "
                       "record qvel.%s; only recorded columns can be tracked (weight 0 or record "
                       "it)", file, i, name ? name : "?", name ? name : "?");
    }
  }
  return DSO_OK;
}

double dso_cost_eval_track(const dsoCost* cost, const mjModel* m, const mjData* d,
                           const double* qref, const double* vref, double* gx, double* work) {
  if (!cost || cost->track < 0) {
    return 0;
  }
  const dsoCostTerm* t = &cost->term[cost->track];
  int nv = m->nv;
  double w = t->weight, total = 0;
  // L_track = ‖x̄ − x‖² weighted per dof (section 5.1); the rollout applies γ^t
  double* dq = work;
  mj_differentiatePos(m, dq, 1.0, qref, d->qpos);
  for (int k = 0; k < nv; k++) {
    double ev = d->qvel[k] - vref[k];
    total += w * (t->wq[k] * dq[k] * dq[k] + t->wv[k] * ev * ev);
    if (gx) {
      gx[k] += 2 * w * t->wq[k] * dq[k];
      gx[nv + k] += 2 * w * t->wv[k] * ev;
    }
  }
  return total;
}
