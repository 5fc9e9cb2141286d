#include "mujoco/theta.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char* dso_transform_name(dsoTransform t) {
  switch (t) {
    case DSO_TRANSFORM_IDENTITY: return "identity";
    case DSO_TRANSFORM_LOG: return "log";
    case DSO_TRANSFORM_BOUNDED: return "bounded";
  }
  return "unknown";
}

dsoStatus dso_theta_entry_check(const dsoThetaEntry* e, double v, const char* what,
                                dsoError* err) {
  if (!isfinite(v)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s must be a finite number", e->name, what);
  }
  if (v < e->lower || v > e->upper) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s %g is outside the bounds [%g, %g]", e->name,
                     what, v, e->lower, e->upper);
  }
  if (e->transform == DSO_TRANSFORM_LOG && !(v > 0)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s %g must be > 0 under the log transform (use \"transform\": "
                     "\"identity\" for a quantity that may be zero or negative)",
                     e->name, what, v);
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED && !(v > e->lower && v < e->upper)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s %g must lie strictly inside the bounds (%g, %g) under the bounded "
                     "transform", e->name, what, v, e->lower, e->upper);
  }
  // the physical range of what the entry is written into
  if (e->bind.kind == DSO_BIND_BODY_MASS && v < DSO_THETA_MIN_MASS) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s %g kg is below %g kg: a body that light makes the mass matrix "
                     "near-singular (MuJoCo's compiler refuses masses below 1e-15 kg) and the "
                     "simulation fails; give the mass in kg", e->name, what, v,
                     DSO_THETA_MIN_MASS);
  }
  if (dso_bind_positive(e->bind.kind) && v < 0) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s %g must be >= 0 (the quantity cannot be "
                     "negative)", e->name, what, v);
  }
  return DSO_OK;
}

static dsoStatus check_entry(const dsoThetaEntry* e, dsoError* err) {
  if (!e->name[0]) {
    return dso_error(err, DSO_ERR_INPUT, "theta entry with an empty name");
  }
  if (e->block < 0 || e->block >= DSO_NBLOCK) {
    return dso_error(err, DSO_ERR_INPUT, "%s: invalid block %d", e->name, (int)e->block);
  }
  if (isnan(e->lower) || isnan(e->upper) || !(e->lower < e->upper)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: bounds [%g, %g] must satisfy lower < upper",
                     e->name, e->lower, e->upper);
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED && !(isfinite(e->lower) && isfinite(e->upper))) {
    return dso_error(err, DSO_ERR_INPUT, "%s: the bounded transform needs finite bounds",
                     e->name);
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED && !isfinite(e->upper - e->lower)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: bounds [%g, %g]: the bounded transform needs a "
                     "finite width upper - lower", e->name, e->lower, e->upper);
  }
  if (e->has_prior && (!isfinite(e->prior_mean) || !(e->prior_std > 0) ||
                       !isfinite(e->prior_std))) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: prior needs a finite mean and a finite std > 0 (got %g, %g)", e->name,
                     e->prior_mean, e->prior_std);
  }
  if (e->has_prior && e->prior_std < DSO_THETA_MIN_PRIOR_STD) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: prior std %g is below %g (the prior divides by std^2, which would "
                     "underflow)", e->name, e->prior_std, DSO_THETA_MIN_PRIOR_STD);
  }
  return dso_theta_entry_check(e, e->init, "initial value", err);
}

dsoTheta* dso_theta_create(const dsoThetaEntry* entries, int n, dsoError* err) {
  if (n < 0 || (n > 0 && !entries)) {
    dso_error(err, DSO_ERR_INPUT, "theta: invalid number of entries %d", n);
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (check_entry(&entries[i], err) != DSO_OK) {
      return NULL;
    }
    for (int j = 0; j < i; j++) {
      if (!strcmp(entries[i].name, entries[j].name)) {
        dso_error(err, DSO_ERR_INPUT, "%s: appears twice in theta (entries %d and %d)",
                  entries[i].name, j, i);
        return NULL;
      }
    }
  }
  dsoTheta* t = (dsoTheta*)calloc(1, sizeof(dsoTheta));
  if (!t) {
    dso_error(err, DSO_ERR_MEMORY, "theta: out of memory");
    return NULL;
  }
  t->entry = (dsoThetaEntry*)calloc(n > 0 ? (size_t)n : 1, sizeof(dsoThetaEntry));
  if (!t->entry) {
    free(t);
    dso_error(err, DSO_ERR_MEMORY, "theta: out of memory");
    return NULL;
  }
  // stable sort by block: one pass per block
  int k = 0;
  for (int b = 0; b < DSO_NBLOCK; b++) {
    t->block_start[b] = k;
    for (int i = 0; i < n; i++) {
      if ((int)entries[i].block == b) {
        t->entry[k++] = entries[i];
      }
    }
  }
  t->block_start[DSO_NBLOCK] = k;
  t->n = n;
  return t;
}

void dso_theta_free(dsoTheta* theta) {
  if (theta) {
    free(theta->entry);
    free(theta);
  }
}

int dso_theta_find(const dsoTheta* theta, const char* name) {
  for (int i = 0; i < theta->n; i++) {
    if (!strcmp(theta->entry[i].name, name)) {
      return i;
    }
  }
  return -1;
}

double dso_theta_entry_natural(const dsoThetaEntry* e, double u) {
  switch (e->transform) {
    case DSO_TRANSFORM_LOG: return exp(u);
    case DSO_TRANSFORM_BOUNDED: {
      // clamp: rounding of lower + width may step past upper
      double v = e->lower + (e->upper - e->lower) / (1.0 + exp(-u));
      return fmin(fmax(v, e->lower), e->upper);
    }
    default: return u;
  }
}

static double to_unconstrained(const dsoThetaEntry* e, double v) {
  switch (e->transform) {
    case DSO_TRANSFORM_LOG: return log(v);
    case DSO_TRANSFORM_BOUNDED: return log((v - e->lower) / (e->upper - v));
    default: return v;
  }
}

void dso_theta_init(const dsoTheta* theta, double* u) {
  for (int i = 0; i < theta->n; i++) {
    u[i] = to_unconstrained(&theta->entry[i], theta->entry[i].init);
  }
}

dsoStatus dso_theta_set_init(dsoTheta* theta, const double* u, dsoError* err) {
  for (int i = 0; i < theta->n; i++) {
    double v = dso_theta_entry_natural(&theta->entry[i], u[i]);
    if (dso_theta_entry_check(&theta->entry[i], v, "initial value", err) != DSO_OK) {
      return err ? err->code : DSO_ERR_INPUT;
    }
  }
  for (int i = 0; i < theta->n; i++) {
    theta->entry[i].init = dso_theta_entry_natural(&theta->entry[i], u[i]);
  }
  return DSO_OK;
}

void dso_theta_natural(const dsoTheta* theta, double* v, const double* u) {
  for (int i = 0; i < theta->n; i++) {
    v[i] = dso_theta_entry_natural(&theta->entry[i], u[i]);
  }
}

dsoStatus dso_theta_unconstrained(const dsoTheta* theta, double* u, const double* v,
                                  dsoError* err) {
  for (int i = 0; i < theta->n; i++) {
    dsoStatus s = dso_theta_entry_check(&theta->entry[i], v[i], "value", err);
    if (s != DSO_OK) {
      return s;
    }
  }
  for (int i = 0; i < theta->n; i++) {
    u[i] = to_unconstrained(&theta->entry[i], v[i]);
  }
  return DSO_OK;
}

double dso_theta_entry_jacobian(const dsoThetaEntry* e, double u) {
  switch (e->transform) {
    case DSO_TRANSFORM_LOG: return exp(u);
    case DSO_TRANSFORM_BOUNDED: {
      double s = 1.0 / (1.0 + exp(-u));
      return (e->upper - e->lower) * s * (1.0 - s);
    }
    default: return 1.0;
  }
}

void dso_theta_jacobian(const dsoTheta* theta, double* dvdu, const double* u) {
  for (int i = 0; i < theta->n; i++) {
    dvdu[i] = dso_theta_entry_jacobian(&theta->entry[i], u[i]);
  }
}

double dso_theta_prior(const dsoTheta* theta, double* grad_u, const double* u) {
  double cost = 0;
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (grad_u) {
      grad_u[i] = 0;
    }
    if (!e->has_prior) {
      continue;
    }
    double v = dso_theta_entry_natural(e, u[i]);
    double r = (v - e->prior_mean) / e->prior_std;
    cost += 0.5 * r * r;
    if (grad_u) {
      grad_u[i] = r / e->prior_std * dso_theta_entry_jacobian(e, u[i]);
    }
  }
  return cost;
}
