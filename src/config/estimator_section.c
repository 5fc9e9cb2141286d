// The "estimator" section of a task file, read into typed settings (see estimator_section.h).
#include "config/estimator_section.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mujoco/policy.h"

static const char* const kKeys[] = {"corrector",  "hidden",   "seed",    "init_scale_out",
                                    "weight_std", "max_iter", "lambda0", "tol",
                                    "sensor_std", "process_std", "compare_ekf", NULL};

// obj[key] as a number in [lo, hi] (open at lo when open_lo; integer when asked)
static dsoStatus get_num(double* out, const cJSON* obj, const char* key, double lo, int open_lo,
                         double hi, int integer, const dsoCfg* c) {
  int present = 0;
  double v = 0;
  dsoStatus st = dso_cfg_number(&v, &present, obj, key, 0, c);
  if (st || !present) {
    return st;
  }
  if ((integer && v != floor(v)) || v < lo || (open_lo && v == lo) || v > hi) {
    dsoCfg k = dso_cfg_key(c, key);
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected %s %s %g%s, got %g",
                        integer ? "an integer" : "a number", open_lo ? ">" : ">=", lo,
                        isfinite(hi) ? " and <= the limit" : "", v);
  }
  *out = v;
  return DSO_OK;
}

// {"name": σ or [σ, ...]} over elements of kind obj (sensors: per component; actuators: one)
static dsoStatus get_std_map(double* out, const cJSON* node, const mjModel* m, int obj,
                             const char* key, const dsoCfg* c) {
  if (!node) {
    return DSO_OK;
  }
  dsoCfg k = dso_cfg_key(c, key);
  const char* kind = obj == mjOBJ_SENSOR ? "sensor" : "actuator";
  if (!cJSON_IsObject(node)) {
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected an object {\"%s\": std}, got %s", kind,
                        dso_json_type_name(node));
  }
  for (const cJSON* it = node->child; it; it = it->next) {
    dsoCfg e = dso_cfg_key(&k, it->string);
    int id = mj_name2id(m, obj, it->string);
    if (id < 0) {
      char list[1024] = "";
      int count = obj == mjOBJ_SENSOR ? m->nsensor : m->nu;
      for (int i = 0; i < count; i++) {
        const char* nm = mj_id2name(m, obj, i);
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", nm ? nm : "(unnamed)");
      }
      return dso_cfg_fail(&e, DSO_ERR_INPUT, "no %s of that name; valid: %s", kind,
                          list[0] ? list : "none");
    }
    int adr = obj == mjOBJ_SENSOR ? m->sensor_adr[id] : id;
    int dim = obj == mjOBJ_SENSOR ? m->sensor_dim[id] : 1;
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 1;
    if (cJSON_IsArray(it) && n != dim) {
      return dso_cfg_fail(&e, DSO_ERR_INPUT, "expected %d values, got %d", dim, n);
    }
    for (int j = 0; j < dim; j++) {
      const cJSON* v = cJSON_IsArray(it) ? cJSON_GetArrayItem(it, j) : it;
      int ok = cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
               (obj == mjOBJ_SENSOR ? v->valuedouble > 0 : v->valuedouble >= 0);
      if (!ok) {
        return dso_cfg_fail(&e, DSO_ERR_INPUT, "expected a finite std %s 0 (or an array of %d), "
                            "got %s", obj == mjOBJ_SENSOR ? ">" : ">=", dim,
                            cJSON_IsNumber(v) ? "a number out of range" : dso_json_type_name(v));
      }
      out[adr + j] = v->valuedouble;
    }
  }
  return DSO_OK;
}

// "hidden": [units, ...] of an mlp corrector
static dsoStatus get_hidden(dsoCorrectorSettings* cs, const cJSON* hidden, const dsoCfg* c) {
  dsoCfg k = dso_cfg_key(c, "hidden");
  int n = cJSON_IsArray(hidden) ? cJSON_GetArraySize(hidden) : 0;
  if (n < 1 || n > DSO_POLICY_MAX_HIDDEN) {
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected an array of 1 to %d layer sizes, got %s",
                        DSO_POLICY_MAX_HIDDEN,
                        cJSON_IsArray(hidden) ? "a longer or empty array"
                                              : dso_json_type_name(hidden));
  }
  for (int i = 0; i < n; i++) {
    const cJSON* v = cJSON_GetArrayItem(hidden, i);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 4096) {
      dsoCfg e = dso_cfg_index(&k, i);
      return dso_cfg_fail(&e, DSO_ERR_INPUT, "expected an integer in [1, 4096]");
    }
    cs->hidden[i] = (int)v->valuedouble;
  }
  cs->nhidden = n;
  return DSO_OK;
}

dsoStatus dso_cfg_estimfit_settings(dsoEstimFitSettings* s, const mjModel* m, const cJSON* node,
                                    const dsoCfg* c) {
  dsoStatus st = dso_estimfit_settings_default(s, m, c->err);
  if (st || !node) {
    return st;
  }
  dsoEstimFitSettings t = *s;
  const char* kind = NULL;
  double seed = (double)t.corrector.seed, max_iter = t.max_iter;
  st = dso_cfg_object(node, kKeys, c);
  if (!st) st = dso_cfg_string(&kind, node, "corrector", 0, c);
  if (!st && kind) {
    if (!strcmp(kind, "gain")) {
      t.corrector.kind = DSO_CORRECTOR_GAIN;
    } else if (!strcmp(kind, "mlp")) {
      t.corrector.kind = DSO_CORRECTOR_MLP;
    } else {
      dsoCfg k = dso_cfg_key(c, "corrector");
      st = dso_cfg_fail(&k, DSO_ERR_INPUT, "unknown corrector \"%s\"; valid: gain, mlp", kind);
    }
  }
  const char* mlp_only[] = {"hidden", "seed", "init_scale_out", "weight_std"};
  for (int k = 0; k < 4 && !st; k++) {
    if (cJSON_GetObjectItemCaseSensitive(node, mlp_only[k]) &&
        t.corrector.kind != DSO_CORRECTOR_MLP) {
      dsoCfg e = dso_cfg_key(c, mlp_only[k]);
      st = dso_cfg_fail(&e, DSO_ERR_INPUT, "applies to \"corrector\": \"mlp\" only");
    }
  }
  const cJSON* hidden = cJSON_GetObjectItemCaseSensitive(node, "hidden");
  if (!st && hidden) st = get_hidden(&t.corrector, hidden, c);
  if (!st) st = get_num(&seed, node, "seed", 0, 0, 9007199254740992.0, 1, c);
  if (!st) st = get_num(&t.corrector.init_scale_out, node, "init_scale_out", 0, 0, INFINITY, 0, c);
  if (!st) st = get_num(&t.weight_std, node, "weight_std", 0, 0, INFINITY, 0, c);
  if (!st) st = get_num(&max_iter, node, "max_iter", 0, 0, 1e9, 1, c);
  if (!st) st = get_num(&t.lambda0, node, "lambda0", 0, 1, INFINITY, 0, c);
  if (!st) st = get_num(&t.tol, node, "tol", 0, 0, INFINITY, 0, c);
  if (!st) st = dso_cfg_bool(&t.compare_ekf, node, "compare_ekf", c);
  if (!st) {
    st = get_std_map(t.sensor_std, cJSON_GetObjectItemCaseSensitive(node, "sensor_std"), m,
                     mjOBJ_SENSOR, "sensor_std", c);
  }
  if (!st) {
    st = get_std_map(t.process_std, cJSON_GetObjectItemCaseSensitive(node, "process_std"), m,
                     mjOBJ_ACTUATOR, "process_std", c);
  }
  if (st) {
    dso_estimfit_settings_free(s);  // no arrays on failure: nothing for the caller to free
    return st;
  }
  t.corrector.seed = (uint64_t)seed;
  t.max_iter = (int)max_iter;
  *s = t;
  return DSO_OK;
}

dsoStatus dso_estimfit_settings_from_json(dsoEstimFitSettings* s, const mjModel* m,
                                          const char* json_text, const char* file,
                                          dsoError* err) {
  if (!json_text) {
    return dso_estimfit_settings_default(s, m, err);
  }
  file = file ? file : "estimator";
  cJSON* root = dso_json_parse(json_text, file, err);
  if (!root) {
    memset(s, 0, sizeof(*s));  // no arrays on failure
    return err && err->code ? err->code : DSO_ERR_INPUT;
  }
  dsoCfg c = dso_cfg_ctx(file, "estimator", err);
  dsoStatus st = dso_cfg_estimfit_settings(s, m, root, &c);
  cJSON_Delete(root);
  return st;
}
