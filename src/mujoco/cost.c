#include "mujoco/cost.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char* dso_cost_term_name(dsoTermKind kind) {
  return ((int)kind >= 0 && (int)kind < DSO_NTERM) ? kTermNames[kind] : NULL;
}

void dso_cost_term_default(dsoCostTermSpec* t, dsoTermKind kind) {
  memset(t, 0, sizeof(*t));
  t->kind = kind;
  t->weight = 1.0;
  t->id = -1;
  if (kind == DSO_TERM_UPRIGHT) {
    t->target[2] = 1;
  }
}

// checks that v (n) is finite and, with nonneg, >= 0; where names the array
static dsoStatus check_array(const double* v, int n, int nonneg, int i, const char* kind,
                             const char* where, dsoError* err) {
  for (int k = 0; v && k < n; k++) {
    if (!isfinite(v[k]) || (nonneg && v[k] < 0)) {
      return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): %s[%d] = %g, expected a finite "
                       "number%s", i, kind, where, k, v[k],
                       nonneg ? " >= 0" : "");
    }
  }
  return DSO_OK;
}

// copies v (n; NULL: all fill) into a new array of n + 1 doubles
static double* copy_array(const double* v, const double* fill, int n) {
  double* out = (double*)calloc((size_t)n + 1, sizeof(double));
  if (out && v) {
    memcpy(out, v, sizeof(double) * (size_t)n);
  } else if (out && fill) {
    memcpy(out, fill, sizeof(double) * (size_t)n);
  }
  return out;
}

// checks spec (term i of the cost) and fills t from it; allocations are owned by t
static dsoStatus make_term(dsoCostTerm* t, dsoCost* cost, const mjModel* m,
                           const dsoCostTermSpec* spec, int i, dsoError* err) {
  t->id = -1;
  if ((int)spec->kind < 0 || (int)spec->kind >= DSO_NTERM) {
    return dso_error(err, DSO_ERR_INPUT, "cost term %d: unknown kind %d", i, (int)spec->kind);
  }
  t->kind = spec->kind;
  const char* name = kTermNames[t->kind];
  if (!isfinite(spec->weight) || spec->weight < 0) {
    return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): weight %g, expected a finite "
                     "number >= 0", i, name, spec->weight);
  }
  t->weight = spec->weight;
  int nfinite = t->kind == DSO_TERM_VELOCITY ? 1 : 3;
  if (t->kind == DSO_TERM_SITE_DISTANCE || t->kind == DSO_TERM_UPRIGHT ||
      t->kind == DSO_TERM_VELOCITY) {
    for (int k = 0; k < nfinite; k++) {
      if (!isfinite(spec->target[k])) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): %s[%d] = %g, expected a finite "
                         "number", i, name, t->kind == DSO_TERM_UPRIGHT ? "axis" : "target", k,
                         spec->target[k]);
      }
    }
  }
  switch (t->kind) {
    case DSO_TERM_QUADRATIC:
    case DSO_TERM_TRACK: {
      int quad = t->kind == DSO_TERM_QUADRATIC;
      if (!quad && cost->track >= 0) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (track): a second track term; the cost "
                         "takes at most one (term %d is one)", i, cost->track);
      }
      if ((quad && check_array(spec->qref, m->nq, 0, i, name, "qref", err)) ||
          check_array(spec->wq, m->nv, 1, i, name, "wq", err) ||
          check_array(spec->wv, m->nv, 1, i, name, "wv", err)) {
        return err->code;
      }
      if (quad && !(t->qref = copy_array(spec->qref, m->qpos0, m->nq))) {
        return dso_error(err, DSO_ERR_MEMORY, "cost term %d (%s): out of memory", i, name);
      }
      t->wq = copy_array(spec->wq, NULL, m->nv);
      t->wv = copy_array(spec->wv, NULL, m->nv);
      if (!t->wq || !t->wv) {
        return dso_error(err, DSO_ERR_MEMORY, "cost term %d (%s): out of memory", i, name);
      }
      if (!quad) {
        if (spec->window < 0) {
          return dso_error(err, DSO_ERR_INPUT, "cost term %d (track): window %d, expected an "
                           "integer >= 0 (samples per window; 0: whole episodes)", i,
                           spec->window);
        }
        t->window = spec->window;
        t->random = spec->random != 0;
        cost->track = i;
      }
      break;
    }
    case DSO_TERM_SITE_DISTANCE:
      if (spec->id < 0 || spec->id >= m->nsite) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): site id %d, expected 0 to %d", i,
                         name, spec->id, m->nsite - 1);
      }
      t->id = spec->id;
      mju_copy3(t->target, spec->target);
      cost->kinematics = 1;
      break;
    case DSO_TERM_UPRIGHT: {
      if (spec->id < 0 || spec->id >= m->nbody) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): body id %d, expected 0 to %d", i,
                         name, spec->id, m->nbody - 1);
      }
      double n = mju_norm3(spec->target);
      if (!(n > 0) || !isfinite(n)) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): axis: expected a nonzero "
                         "vector", i, name);
      }
      t->id = spec->id;
      mju_scl3(t->target, spec->target, 1.0 / n);
      cost->kinematics = 1;
      break;
    }
    case DSO_TERM_VELOCITY: {
      int j = spec->id;
      if (j < 0 || j >= m->njnt) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): joint id %d, expected 0 to %d",
                         i, name, j, m->njnt - 1);
      }
      if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (%s): joint %d: only hinge and slide "
                         "joints", i, name, j);
      }
      t->id = m->jnt_dofadr[j];
      t->target[0] = spec->target[0];
      break;
    }
    case DSO_TERM_EFFORT:
      t->mean = spec->mean != 0;
      cost->policy |= t->mean;
      break;
    case DSO_TERM_KL:
      if (!spec->std) {
        return dso_error(err, DSO_ERR_INPUT, "cost term %d (kl): std: the passive noise std of "
                         "every actuator is required", i);
      }
      for (int k = 0; k < m->nu; k++) {
        if (!isfinite(spec->std[k]) || !(spec->std[k] > 0)) {
          return dso_error(err, DSO_ERR_INPUT, "cost term %d (kl): std[%d] = %g, expected a "
                           "finite number > 0", i, k, spec->std[k]);
        }
      }
      if (!(t->std = copy_array(spec->std, NULL, m->nu))) {
        return dso_error(err, DSO_ERR_MEMORY, "cost term %d (%s): out of memory", i, name);
      }
      cost->policy = cost->noise = 1;
      break;
    case DSO_TERM_ENTROPY:
      cost->policy = cost->noise = 1;
      break;
    case DSO_TERM_PROXIMAL:
      cost->policy = cost->noise = cost->reference = 1;
      break;
    default: break;
  }
  return DSO_OK;
}

dsoCost* dso_cost_create(const mjModel* m, const dsoCostTermSpec* terms, int nterm,
                         dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  if (!m || nterm < 0 || (nterm > 0 && !terms)) {
    dso_error(err, DSO_ERR_INPUT, "cost: %s", !m ? "no model" : "invalid number of terms or no "
              "terms array");
    return NULL;
  }
  dsoCost* cost = (dsoCost*)calloc(1, sizeof(dsoCost));
  if (cost) {
    cost->term = (dsoCostTerm*)calloc((size_t)nterm + 1, sizeof(dsoCostTerm));
    cost->track = -1;
  }
  if (!cost || !cost->term) {
    dso_cost_free(cost);
    dso_error(err, DSO_ERR_MEMORY, "cost: out of memory");
    return NULL;
  }
  for (int i = 0; i < nterm; i++) {
    cost->nterm = i + 1;  // so that free releases a half-made term
    if (make_term(&cost->term[i], cost, m, &terms[i], i, err)) {
      dso_cost_free(cost);
      return NULL;
    }
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
