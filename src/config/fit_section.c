// The "fit" section of a task file and its "inverse_dynamics" object, read into typed settings
// (see fit_section.h).
#include "config/fit_section.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/filter.h"

static const char* const kFitKeys[] = {"window",     "max_iter", "tol",     "lambda0",
                                       "qpos_scale", "qvel_scale", "sensors", "threads",
                                       "jacobian",   "inverse_dynamics", NULL};
static const char* const kInvdynKeys[] = {"cutoff", "order",     "filter_ctrl", "ctrl_hold",
                                          "skip",   "stride",    "min_speed",   "threads",
                                          "torque_scale", NULL};

// reads obj[key] when present: a number in [lo, hi] (lo excluded when open_lo), an integer
// when integer is set
static dsoStatus read_range(double* out, const cJSON* obj, const char* key, double lo,
                            int open_lo, double hi, int integer, const dsoCfg* c) {
  double v = 0;
  int present = 0;
  dsoStatus st = dso_cfg_number(&v, &present, obj, key, 0, c);
  if (st || !present) {
    return st;
  }
  if ((integer && v != floor(v)) || v < lo || (open_lo && v == lo) || v > hi) {
    const char* what = integer ? "an integer" : "a number";
    dsoCfg k = dso_cfg_key(c, key);
    if (isfinite(hi)) {
      return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected %s in [%g, %g], got %g", what, lo, hi, v);
    }
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected %s %s %g, got %g", what,
                        open_lo ? ">" : ">=", lo, v);
  }
  *out = v;
  return DSO_OK;
}

static dsoStatus read_int(int* out, const cJSON* obj, const char* key, int lo, int hi,
                          const dsoCfg* c) {
  double v = *out;
  dsoStatus st = read_range(&v, obj, key, lo, 0, hi, 1, c);
  *out = (int)v;
  return st;
}

// "jacobian": "forward" | "central" when present
static dsoStatus read_jacobian(int* out, const cJSON* obj, const dsoCfg* c) {
  const char* v = NULL;
  dsoStatus st = dso_cfg_string(&v, obj, "jacobian", 0, c);
  if (st || !v) {
    return st;
  }
  if (!strcmp(v, "forward")) {
    *out = DSO_FIT_JACOBIAN_FORWARD;
  } else if (!strcmp(v, "central")) {
    *out = DSO_FIT_JACOBIAN_CENTRAL;
  } else {
    dsoCfg k = dso_cfg_key(c, "jacobian");
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected \"forward\" or \"central\", got \"%s\"", v);
  }
  return DSO_OK;
}

dsoStatus dso_cfg_fit_settings(dsoFitSettings* s, const cJSON* node, const dsoCfg* c) {
  dso_fit_settings_default(s);
  if (!node) {
    return DSO_OK;
  }
  dsoFitSettings t = *s;
  dsoStatus st = dso_cfg_object(node, kFitKeys, c);
  if (!st) st = read_int(&t.window, node, "window", 1, 1000000000, c);
  if (!st) st = read_int(&t.max_iter, node, "max_iter", 0, 1000000000, c);
  if (!st) st = read_range(&t.tol, node, "tol", 0, 0, INFINITY, 0, c);
  if (!st) st = read_range(&t.lambda0, node, "lambda0", 0, 1, INFINITY, 0, c);
  if (!st) st = read_range(&t.qpos_scale, node, "qpos_scale", 0, 1, INFINITY, 0, c);
  if (!st) st = read_range(&t.qvel_scale, node, "qvel_scale", 0, 1, INFINITY, 0, c);
  if (!st) st = dso_cfg_bool(&t.sensors, node, "sensors", c);
  if (!st) st = read_int(&t.threads, node, "threads", 1, DSO_FIT_MAX_THREADS, c);
  if (!st) st = read_jacobian(&t.jacobian, node, c);
  if (!st) {
    *s = t;
  }
  return st;
}

// torque_scale: one positive number, or {"joint": positive number}
static dsoStatus read_scale(double* scale, const mjModel* m, const cJSON* obj, const dsoCfg* c) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, "torque_scale");
  if (!v) {
    return DSO_OK;
  }
  dsoCfg k = dso_cfg_key(c, "torque_scale");
  if (cJSON_IsNumber(v)) {
    if (!isfinite(v->valuedouble) || !(v->valuedouble > 0)) {
      return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected a number > 0, got %g", v->valuedouble);
    }
    for (int i = 0; i < m->nv; i++) {
      scale[i] = v->valuedouble;
    }
    return DSO_OK;
  }
  if (!cJSON_IsObject(v)) {
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected a number or an object {\"joint\": N m}, "
                        "got %s", dso_json_type_name(v));
  }
  dsoStatus st = dso_cfg_joint_values(scale, 0, 1, m, v, &k);
  for (const cJSON* it = v->child; it && !st; it = it->next) {
    if (!(it->valuedouble > 0)) {
      dsoCfg j = dso_cfg_key(&k, it->string);
      st = dso_cfg_fail(&j, DSO_ERR_INPUT, "expected a number > 0, got %g", it->valuedouble);
    }
  }
  return st;
}

dsoStatus dso_cfg_invdyn_settings(dsoInvdynSettings* s, int* present, const mjModel* m,
                                  const cJSON* node, const dsoCfg* c) {
  if (present) {
    *present = 0;
  }
  dsoStatus st = dso_invdyn_settings_default(s, m, c->err);
  if (st != DSO_OK || !node) {
    return st;
  }
  if (!cJSON_IsObject(node)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected an object, got %s", dso_json_type_name(node));
  }
  const cJSON* obj = cJSON_GetObjectItemCaseSensitive(node, "inverse_dynamics");
  if (!obj) {
    return DSO_OK;
  }
  dsoCfg k = dso_cfg_key(c, "inverse_dynamics");
  dsoInvdynSettings t = *s;
  t.torque_scale = (double*)malloc(sizeof(double) * ((size_t)m->nv + 1));
  if (!t.torque_scale) {
    return dso_error(c->err, DSO_ERR_MEMORY, "inverse dynamics settings: out of memory");
  }
  memcpy(t.torque_scale, s->torque_scale, sizeof(double) * (size_t)m->nv);
  if (!cJSON_IsObject(obj)) {
    st = dso_cfg_fail(&k, DSO_ERR_INPUT, "expected an object, got %s", dso_json_type_name(obj));
  }
  if (!st) st = dso_cfg_object(obj, kInvdynKeys, &k);
  if (!st) st = read_range(&t.cutoff, obj, "cutoff", 0, 0, INFINITY, 0, &k);
  if (!st) st = read_int(&t.order, obj, "order", 1, DSO_FILTER_MAX_ORDER, &k);
  if (!st) st = dso_cfg_bool(&t.filter_ctrl, obj, "filter_ctrl", &k);
  if (!st) st = dso_cfg_bool(&t.ctrl_hold, obj, "ctrl_hold", &k);
  if (!st) st = read_int(&t.skip, obj, "skip", -1, 1000000000, &k);
  if (!st) st = read_int(&t.stride, obj, "stride", 1, 1000000000, &k);
  if (!st) st = read_range(&t.min_speed, obj, "min_speed", 0, 0, INFINITY, 0, &k);
  if (!st) st = read_int(&t.threads, obj, "threads", 1, DSO_INVDYN_MAX_THREADS, &k);
  if (!st) st = read_scale(t.torque_scale, m, obj, &k);
  if (st != DSO_OK) {
    free(t.torque_scale);
    return st;
  }
  free(s->torque_scale);
  *s = t;
  if (present) {
    *present = 1;
  }
  return DSO_OK;
}

dsoStatus dso_fit_settings_from_json(dsoFitSettings* s, const char* json_text, const char* file,
                                     dsoError* err) {
  dso_fit_settings_default(s);
  if (!json_text) {
    return DSO_OK;
  }
  file = file ? file : "fit";
  cJSON* root = dso_json_parse(json_text, file, err);
  if (!root) {
    return err && err->code ? err->code : DSO_ERR_INPUT;
  }
  dsoCfg c = dso_cfg_ctx(file, "fit", err);
  dsoStatus st = dso_cfg_fit_settings(s, root, &c);
  cJSON_Delete(root);
  return st;
}

dsoStatus dso_invdyn_settings_from_json(dsoInvdynSettings* s, int* present, const mjModel* m,
                                        const char* fit_json, const char* file, dsoError* err) {
  if (present) {
    *present = 0;
  }
  dsoStatus st = dso_invdyn_settings_default(s, m, err);
  if (st != DSO_OK || !fit_json) {
    return st;
  }
  file = file ? file : "fit";
  cJSON* root = dso_json_parse(fit_json, file, err);
  if (!root) {
    return err && err->code ? err->code : DSO_ERR_INPUT;
  }
  dso_invdyn_settings_free(s);
  dsoCfg c = dso_cfg_ctx(file, "fit", err);
  st = dso_cfg_invdyn_settings(s, present, m, root, &c);
  cJSON_Delete(root);
  return st;
}
