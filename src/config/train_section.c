// The "train" section of a task file, read into typed settings (see train_section.h).
#include "config/train_section.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char* const kTrainKeys[] = {"max_iter", "lr",   "beta1",  "beta2", "eps",
                                         "seed",     "clone", "hybrid", "proximal_every",
                                         "gradient", "epochs", "clip", "optimizer",
                                         "damping", NULL};

// obj[key], when present, as an integer in [lo, hi]
static dsoStatus read_integer(double* out, const cJSON* obj, const char* key, double lo,
                              double hi, const dsoCfg* c) {
  int present = 0;
  double x = *out;
  dsoStatus st = dso_cfg_number(&x, &present, obj, key, 0, c);
  if (st) return st;
  if (present && !(x == floor(x) && x >= lo && x <= hi)) {
    dsoCfg k = dso_cfg_key(c, key);
    return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected an integer in [%.0f, %.0f], got %g", lo, hi,
                        x);
  }
  *out = x;
  return DSO_OK;
}

// obj[key], when present, as the index of one of the names (NULL-terminated) into *out
static dsoStatus read_choice(int* out, const cJSON* obj, const char* key,
                             const char* const* names, const dsoCfg* c) {
  const char* v = NULL;
  dsoStatus st = dso_cfg_string(&v, obj, key, 0, c);
  if (st || !v) return st;
  for (int i = 0; names[i]; i++) {
    if (!strcmp(v, names[i])) {
      *out = i;
      return DSO_OK;
    }
  }
  char valid[256] = "";
  for (int i = 0, len = 0; names[i] && len < (int)sizeof(valid); i++) {
    len += snprintf(valid + len, sizeof(valid) - (size_t)len, "%s\"%s\"",
                    i == 0 ? "" : (names[i + 1] ? ", " : " or "), names[i]);
  }
  dsoCfg k = dso_cfg_key(c, key);
  return dso_cfg_fail(&k, DSO_ERR_INPUT, "expected %s, got \"%s\"", valid, v);
}

dsoStatus dso_cfg_train_settings(dsoTrainSettings* s, const cJSON* node, const dsoCfg* c) {
  dso_train_settings_default(s);
  if (!node) return DSO_OK;
  dsoTrainSettings t = *s;
  dsoStatus st = dso_cfg_object(node, kTrainKeys, c);
  double max_iter = t.max_iter, seed = 0, every = 0, epochs = t.epochs;
  if (!st) st = read_integer(&max_iter, node, "max_iter", 0, 1e9, c);
  if (!st) st = read_integer(&seed, node, "seed", 0, 9007199254740992.0, c);
  if (!st) st = read_integer(&every, node, "proximal_every", 0, 1e9, c);
  if (!st) st = read_integer(&epochs, node, "epochs", 1, 1000, c);
  if (!st) st = dso_cfg_number(&t.clip, NULL, node, "clip", 0, c);
  if (!st) st = dso_cfg_number(&t.lr, NULL, node, "lr", 0, c);
  if (!st) st = dso_cfg_number(&t.beta1, NULL, node, "beta1", 0, c);
  if (!st) st = dso_cfg_number(&t.beta2, NULL, node, "beta2", 0, c);
  if (!st) st = dso_cfg_number(&t.eps, NULL, node, "eps", 0, c);
  if (!st) st = dso_cfg_number(&t.clone, NULL, node, "clone", 0, c);
  if (!st) st = dso_cfg_number(&t.hybrid, NULL, node, "hybrid", 0, c);
  if (!st) st = dso_cfg_number(&t.damping, NULL, node, "damping", 0, c);
  static const char* const kOptimizers[] = {"adam", "natural", NULL};  // dsoTrainOptimizer order
  static const char* const kRoutes[] = {"pathwise", "score", NULL};    // dsoTrainGradient order
  int optimizer = (int)t.optimizer, route = (int)t.gradient;
  if (!st) st = read_choice(&optimizer, node, "optimizer", kOptimizers, c);
  if (!st) st = read_choice(&route, node, "gradient", kRoutes, c);
  if (st) return st;
  t.optimizer = (dsoTrainOptimizer)optimizer;
  t.gradient = (dsoTrainGradient)route;
  t.max_iter = (int)max_iter;
  t.seed = (uint64_t)seed;
  t.proximal_every = (int)every;
  t.epochs = (int)epochs;
  st = dso_train_settings_check(&t, c->file, c->err);
  if (st) return st;
  *s = t;
  return DSO_OK;
}

dsoStatus dso_train_settings_from_json(dsoTrainSettings* s, const char* json_text,
                                       const char* file, dsoError* err) {
  dso_train_settings_default(s);
  file = file ? file : "train";
  if (!json_text) return dso_error(err, DSO_ERR_INPUT, "%s: train: no JSON text", file);
  cJSON* root = dso_json_parse(json_text, file, err);
  if (!root) return err && err->code ? err->code : DSO_ERR_INPUT;
  dsoCfg c = dso_cfg_ctx(file, "train", err);
  dsoStatus st = dso_cfg_train_settings(s, root, &c);
  cJSON_Delete(root);
  return st;
}
