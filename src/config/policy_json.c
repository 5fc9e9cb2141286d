#include "config/policy_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// reads node (at c) as an integer in [lo, hi]
static dsoStatus read_integer(double* out, const cJSON* node, double lo, double hi,
                              const dsoCfg* c) {
  if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble) ||
      node->valuedouble != floor(node->valuedouble) || node->valuedouble < lo ||
      node->valuedouble > hi) {
    char got[64];
    if (cJSON_IsNumber(node)) {
      snprintf(got, sizeof(got), "%g", node->valuedouble);
    } else {
      snprintf(got, sizeof(got), "%s", dso_json_type_name(node));
    }
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected an integer in [%.0f, %.0f], got %s", lo, hi,
                        got);
  }
  *out = node->valuedouble;
  return DSO_OK;
}

// reads node (at c) as a non-empty array of finite numbers into a malloc'd *out of length *n
static dsoStatus read_vector(double** out, int* n, const cJSON* node, const dsoCfg* c) {
  int len = cJSON_IsArray(node) ? cJSON_GetArraySize(node) : 0;
  if (len < 1) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected a non-empty array of numbers, got %s",
                        cJSON_IsArray(node) ? "an empty array" : dso_json_type_name(node));
  }
  double* v = (double*)malloc((size_t)len * sizeof(double));
  if (!v) {
    return dso_cfg_fail(c, DSO_ERR_MEMORY, "out of memory");
  }
  int i = 0;
  for (const cJSON* it = node->child; it; it = it->next, i++) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
      free(v);
      dsoCfg ci = dso_cfg_index(c, i);
      return dso_cfg_fail(&ci, DSO_ERR_INPUT, "expected a finite number, got %s",
                          cJSON_IsNumber(it) ? "a non-finite number" : dso_json_type_name(it));
    }
    v[i] = it->valuedouble;
  }
  *out = v;
  *n = len;
  return DSO_OK;
}

// *out = root[key] (NULL when absent) for a key that applies to policies of kind only
static dsoStatus kind_key(const cJSON** out, const cJSON* root, const char* key,
                          dsoPolicyKind only, dsoPolicyKind kind, const dsoCfg* c) {
  *out = cJSON_GetObjectItemCaseSensitive(root, key);
  if (*out && kind != only) {
    dsoCfg ck = dso_cfg_key(c, key);
    return dso_cfg_fail(&ck, DSO_ERR_INPUT, "applies to type \"%s\" only (type is \"%s\")",
                        dso_policy_kind_name(only), dso_policy_kind_name(kind));
  }
  return DSO_OK;
}

// reads the keys of a parsed "policy" object into s (which holds the defaults)
static dsoStatus read_keys(dsoPolicySettings* s, const cJSON* root, const dsoCfg* c) {
  static const char* const kValid[] = {"type",           "hidden",      "units",       "seed",
                                       "init_scale_out", "input_shift", "input_scale", NULL};
  dsoStatus st = dso_cfg_object(root, kValid, c);
  const char* type = NULL;
  if (!st) st = dso_cfg_string(&type, root, "type", 1, c);
  if (st) return st;
  int kind = -1;
  for (int k = DSO_POLICY_LINEAR; k <= DSO_POLICY_RNN; k++) {
    if (!strcmp(type, dso_policy_kind_name((dsoPolicyKind)k))) kind = k;
  }
  if (kind < 0) {
    dsoCfg ct = dso_cfg_key(c, "type");
    return dso_cfg_fail(&ct, DSO_ERR_INPUT,
                        "unknown policy type \"%s\"; valid types: linear, mlp, rnn", type);
  }
  s->kind = (dsoPolicyKind)kind;

  const cJSON* hidden = NULL;
  st = kind_key(&hidden, root, "hidden", DSO_POLICY_MLP, s->kind, c);
  if (st) return st;
  if (hidden) {
    dsoCfg ch = dso_cfg_key(c, "hidden");
    int n = cJSON_IsArray(hidden) ? cJSON_GetArraySize(hidden) : 0;
    if (n < 1 || n > DSO_POLICY_MAX_HIDDEN) {
      char got[64];
      if (!cJSON_IsArray(hidden) || n == 0) {
        snprintf(got, sizeof(got), "%s",
                 cJSON_IsArray(hidden) ? "an empty array" : dso_json_type_name(hidden));
      } else {
        snprintf(got, sizeof(got), "%d layers", n);
      }
      return dso_cfg_fail(&ch, DSO_ERR_INPUT, "expected an array of 1 to %d layer sizes, got %s",
                          DSO_POLICY_MAX_HIDDEN, got);
    }
    s->nhidden = n;
    for (int i = 0; i < n; i++) {
      dsoCfg ci = dso_cfg_index(&ch, i);
      double v;
      st = read_integer(&v, cJSON_GetArrayItem(hidden, i), 1, 1 << 20, &ci);
      if (st) return st;
      s->hidden[i] = (int)v;
    }
  }

  const cJSON* units = NULL;
  st = kind_key(&units, root, "units", DSO_POLICY_RNN, s->kind, c);
  if (st) return st;
  if (units) {
    dsoCfg cu = dso_cfg_key(c, "units");
    double v;
    st = read_integer(&v, units, 1, 1 << 20, &cu);
    if (st) return st;
    s->units = (int)v;
  }

  const cJSON* seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
  if (seed) {
    dsoCfg cs = dso_cfg_key(c, "seed");
    double v;
    st = read_integer(&v, seed, 0, 9007199254740992.0, &cs);  // 2^53
    if (st) return st;
    s->seed = (uint64_t)v;
  }

  st = dso_cfg_number(&s->init_scale_out, NULL, root, "init_scale_out", 0, c);
  if (st) return st;
  if (!(s->init_scale_out >= 0)) {
    dsoCfg co = dso_cfg_key(c, "init_scale_out");
    return dso_cfg_fail(&co, DSO_ERR_INPUT, "expected a number >= 0, got %g", s->init_scale_out);
  }

  const cJSON* shift = cJSON_GetObjectItemCaseSensitive(root, "input_shift");
  if (shift) {
    dsoCfg cs = dso_cfg_key(c, "input_shift");
    st = read_vector(&s->input_shift, &s->ninput_shift, shift, &cs);
    if (st) return st;
  }
  const cJSON* scale = cJSON_GetObjectItemCaseSensitive(root, "input_scale");
  if (scale) {
    dsoCfg cs = dso_cfg_key(c, "input_scale");
    st = read_vector(&s->input_scale, &s->ninput_scale, scale, &cs);
    if (st) return st;
  }
  if (shift && scale && s->ninput_shift != s->ninput_scale) {
    dsoCfg cs = dso_cfg_key(c, "input_scale");
    return dso_cfg_fail(&cs, DSO_ERR_INPUT,
                        "has %d numbers but input_shift has %d; expected the same length (the "
                        "policy input size)", s->ninput_scale, s->ninput_shift);
  }
  return DSO_OK;
}

dsoStatus dso_cfg_read_policy(dsoPolicySettings* s, const cJSON* node, const dsoCfg* c) {
  dso_policy_settings_default(s);
  dsoStatus st = read_keys(s, node, c);
  if (st) {
    dso_policy_settings_free(s);
    dso_policy_settings_default(s);
  }
  return st;
}

dsoStatus dso_policy_settings_from_json(dsoPolicySettings* s, const char* json_text,
                                        const char* file, const char* path, dsoError* err) {
  dso_policy_settings_default(s);
  dsoCfg c = dso_cfg_ctx(file ? file : "policy", path, err);
  if (!json_text) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s: no JSON text", c.file,
                     c.path[0] ? c.path : "policy");
  }
  cJSON* root = dso_json_parse(json_text, c.file, err);
  if (!root) {
    return DSO_ERR_INPUT;
  }
  dsoStatus st = dso_cfg_read_policy(s, root, &c);
  cJSON_Delete(root);
  return st;
}
