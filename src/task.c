#include "task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mj.h"

static const char* const kTaskKeys[] = {"description", "model", "theta", NULL};
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

static dsoStatus parse_bounds(dsoThetaEntry* e, const cJSON* b, const char* file,
                              const char* path, dsoError* err) {
  if (!cJSON_IsArray(b)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s.bounds: expected an array of 2 numbers [lower, upper] (null for "
                     "no bound), got %s", file, path, dso_json_type_name(b));
  }
  if (cJSON_GetArraySize(b) != 2) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s.bounds: expected an array of 2 numbers [lower, upper] (null for "
                     "no bound), got an array of %d element%s", file, path,
                     cJSON_GetArraySize(b), cJSON_GetArraySize(b) == 1 ? "" : "s");
  }
  double v[2] = {-INFINITY, INFINITY};
  for (int k = 0; k < 2; k++) {
    const cJSON* x = cJSON_GetArrayItem(b, k);
    if (cJSON_IsNull(x)) {
      continue;
    }
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s: %s.bounds[%d]: expected a finite number or null, got %s", file, path,
                       k, cJSON_IsNumber(x) ? "a non-finite number" : dso_json_type_name(x));
    }
    v[k] = x->valuedouble;
  }
  if (!(v[0] < v[1])) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.bounds: lower %g must be below upper %g", file,
                     path, v[0], v[1]);
  }
  e->lower = v[0];
  e->upper = v[1];
  return DSO_OK;
}

static dsoStatus parse_entry(dsoThetaEntry* e, const mjModel* m, const cJSON* node,
                             const char* file, const char* path, dsoError* err) {
  memset(e, 0, sizeof(*e));
  e->lower = -INFINITY;
  e->upper = INFINITY;
  if (dso_json_check_object(node, kEntryKeys, file, path, err)) return err->code;
  const char* name = NULL;
  if (dso_json_string(&name, node, "name", 1, file, path, err)) return err->code;
  if (!name[0]) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.name: expected a non-empty name", file, path);
  }
  if (strlen(name) >= DSO_NAME_LEN) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s.name: longer than %d characters", file, path,
                     DSO_NAME_LEN - 1);
  }
  if (dso_bind_resolve(&e->bind, m, name, err) != DSO_OK) {
    dso_error_prefix(err, "%s: %s.name: ", file, path);
    return err->code;
  }
  // store the canonical name (accepts the equivalent "#id" and "[0]" spellings)
  dso_bind_name(e->name, DSO_NAME_LEN, m, &e->bind);
  e->block = dso_bind_block(e->bind.kind);
  int positive = dso_bind_positive(e->bind.kind);

  int has_init = 0;
  e->init = dso_bind_get(m, &e->bind);
  if (dso_json_number(&e->init, &has_init, node, "init", 0, file, path, err)) return err->code;
  if (!has_init && isnan(e->init)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s: \"init\" is required for %s (the model holds no value for it)",
                     file, path, e->name);
  }

  const char* tr = NULL;
  if (dso_json_string(&tr, node, "transform", 0, file, path, err)) return err->code;
  if (!tr) {
    e->transform = positive ? DSO_TRANSFORM_LOG : DSO_TRANSFORM_IDENTITY;
  } else if (!strcmp(tr, "identity")) {
    e->transform = DSO_TRANSFORM_IDENTITY;
  } else if (!strcmp(tr, "log")) {
    e->transform = DSO_TRANSFORM_LOG;
  } else if (!strcmp(tr, "bounded")) {
    e->transform = DSO_TRANSFORM_BOUNDED;
  } else {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s.transform: unknown transform \"%s\"; valid: identity, log, bounded",
                     file, path, tr);
  }

  const cJSON* bounds = cJSON_GetObjectItemCaseSensitive(node, "bounds");
  if (bounds && parse_bounds(e, bounds, file, path, err)) return err->code;
  if (positive && e->lower < 0) {
    if (bounds) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.bounds: %s cannot be negative (lower %g)",
                       file, path, e->name, e->lower);
    }
    e->lower = 0;  // nonnegative quantities under the identity transform
  }
  if (positive && !(e->init > 0) && (e->transform == DSO_TRANSFORM_LOG || e->init < 0)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s: %s must be %s, got init %g%s", file, path, e->name,
                     e->transform == DSO_TRANSFORM_LOG ? "> 0" : ">= 0", e->init,
                     e->transform == DSO_TRANSFORM_LOG && !tr
                         ? " (the log transform is the default for this quantity; use "
                           "\"transform\": \"identity\" to allow 0)"
                         : "");
  }
  if (e->transform == DSO_TRANSFORM_BOUNDED && !bounds) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s: the bounded transform needs \"bounds\"", file,
                     path);
  }

  const cJSON* prior = cJSON_GetObjectItemCaseSensitive(node, "prior");
  if (prior) {
    char ppath[256];
    snprintf(ppath, sizeof(ppath), "%s.prior", path);
    if (dso_json_check_object(prior, kPriorKeys, file, ppath, err)) return err->code;
    if (dso_json_number(&e->prior_mean, NULL, prior, "mean", 1, file, ppath, err)) {
      return err->code;
    }
    if (dso_json_number(&e->prior_std, NULL, prior, "std", 1, file, ppath, err)) {
      return err->code;
    }
    if (!(e->prior_std > 0)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.std: expected a number > 0, got %g", file,
                       ppath, e->prior_std);
    }
    e->has_prior = 1;
  }
  if (dso_json_bool(&e->fixed, node, "fixed", file, path, err)) return err->code;

  // the layout check (domain, bounds) with this entry's location in front
  dsoTheta* one = dso_theta_create(e, 1, err);
  if (!one) {
    dso_error_prefix(err, "%s: %s: ", file, path);
    return err->code;
  }
  dso_theta_free(one);
  return DSO_OK;
}

dsoStatus dso_task_parse_entry(dsoThetaEntry* out, const mjModel* m, const char* json_text,
                               const char* file, const char* path, dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  cJSON* node = dso_json_parse(json_text, file, err);
  if (!node) {
    return err->code;
  }
  dsoStatus s = parse_entry(out, m, node, file, path, err);
  cJSON_Delete(node);
  return s;
}

void dso_task_free(dsoTask* task) {
  if (!task) {
    return;
  }
  free(task->path);
  free(task->model_path);
  free(task->description);
  if (task->model) {
    mj_deleteModel(task->model);
  }
  dso_theta_free(task->theta);
  free(task);
}

static dsoStatus load_into(dsoTask* t, const char* path, dsoError* err) {
  char* text = dso_read_text_file(path, err);
  if (!text) {
    return err->code;
  }
  cJSON* root = dso_json_parse(text, path, err);
  free(text);
  if (!root) {
    return err->code;
  }
  dsoThetaEntry* entries = NULL;
  dsoStatus s = dso_json_check_object(root, kTaskKeys, path, "", err);
  const char* desc = "";
  const char* model = NULL;
  if (!s) s = dso_json_string(&desc, root, "description", 0, path, "", err);
  if (!s) s = dso_json_string(&model, root, "model", 1, path, "", err);
  if (!s && !model[0]) {
    s = dso_error(err, DSO_ERR_INPUT, "%s: model: expected the path of an MJCF file, got \"\"",
                  path);
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
      dso_error_prefix(err, "%s: model: ", path);
      s = err->code == DSO_ERR_IO ? DSO_ERR_INPUT : err->code;
      err->code = s;
    }
  }
  const cJSON* theta = s ? NULL : cJSON_GetObjectItemCaseSensitive(root, "theta");
  int n = 0;
  if (!s && theta && !cJSON_IsArray(theta)) {
    s = dso_error(err, DSO_ERR_INPUT, "%s: theta: expected an array of entries, got %s", path,
                  dso_json_type_name(theta));
  }
  if (!s && theta) {
    n = cJSON_GetArraySize(theta);
    entries = (dsoThetaEntry*)calloc(n > 0 ? (size_t)n : 1, sizeof(dsoThetaEntry));
    if (!entries) {
      s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
    int i = 0;
    for (const cJSON* it = theta->child; it && !s; it = it->next, i++) {
      char epath[64];
      snprintf(epath, sizeof(epath), "theta[%d]", i);
      s = parse_entry(&entries[i], t->model, it, path, epath, err);
    }
  }
  if (!s) {
    t->theta = dso_theta_create(entries, n, err);
    if (!t->theta) {
      dso_error_prefix(err, "%s: theta: ", path);
      s = err->code;
    }
  }
  free(entries);
  cJSON_Delete(root);
  return s;
}

dsoTask* dso_task_load(const char* path, dsoError* err) {
  dsoError local = {0};
  err = err ? err : &local;
  dsoTask* t = (dsoTask*)calloc(1, sizeof(dsoTask));
  if (!t || !(t->path = dup_string(path ? path : ""))) {
    free(t);
    dso_error(err, DSO_ERR_MEMORY, "task: out of memory");
    return NULL;
  }
  if (load_into(t, path, err) != DSO_OK) {
    dso_task_free(t);
    return NULL;
  }
  return t;
}
