// Values files: θ values by name from a flat object or a dso run result.json (see
// values_file.h).
#include "config/values_file.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "config/json.h"
#include "config/theta_json.h"

// a value that dso run identified at a bound may print a rounding step outside it (exp(log(lo))
// < lo): within 1e-12 relative of a bound it is taken at the bound (just inside under the bounded
// transform, whose bounds are open)
static double snap_to_bounds(const dsoTheta* theta, const char* name, double v) {
  int i = dso_theta_find(theta, name);
  if (i < 0) {
    return v;
  }
  const dsoThetaEntry* e = &theta->entry[i];
  double lo = e->lower, hi = e->upper;
  int open = e->transform == DSO_TRANSFORM_BOUNDED;
  if (isfinite(lo) && (open ? v <= lo : v < lo) && lo - v <= 1e-12 * fmax(fabs(lo), 1e-300)) {
    return open ? nextafter(lo, INFINITY) : lo;
  }
  if (isfinite(hi) && (open ? v >= hi : v > hi) && v - hi <= 1e-12 * fmax(fabs(hi), 1e-300)) {
    return open ? nextafter(hi, -INFINITY) : hi;
  }
  return v;
}

dsoStatus dso_values_read_file(const dsoTheta* theta, double* u, const char* path,
                               dsoError* err) {
  if (!theta || !u || !path) {
    return dso_error(err, DSO_ERR_INPUT, "values: no theta, values or file name");
  }
  dsoError e = {0};
  cJSON* root = dso_json_read_file(path, &e);
  if (!root) {
    return dso_error(err, e.code, "%s", e.msg);
  }
  dsoCfg top = dso_cfg_ctx(path, "", &e);
  if (!cJSON_IsObject(root)) {
    dso_cfg_fail(&top, DSO_ERR_INPUT, "expected an object {\"name\": value, ...} or a dso run "
                 "result.json, got %s", dso_json_type_name(root));
    cJSON_Delete(root);
    return dso_error(err, e.code, "%s", e.msg);
  }
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(root, "theta");
  dsoCfg tc = dso_cfg_key(&top, "theta");
  char* flat = NULL;
  if (cJSON_IsArray(list)) {
    // a result.json: {"theta": [{"name": .., "value": .., ...}, ...], ...}
    cJSON* obj = cJSON_CreateObject();
    int i = 0;
    for (const cJSON* it = list->child; obj && it; it = it->next, i++) {
      dsoCfg ic = dso_cfg_index(&tc, i);
      const cJSON* name = cJSON_GetObjectItemCaseSensitive(it, "name");
      const cJSON* value = cJSON_GetObjectItemCaseSensitive(it, "value");
      if (!cJSON_IsString(name) || !cJSON_IsNumber(value)) {
        dso_cfg_fail(&ic, DSO_ERR_INPUT, "expected {\"name\": string, \"value\": number, ...} "
                     "as dso run writes, got %s",
                     !cJSON_IsObject(it) ? dso_json_type_name(it)
                     : !cJSON_IsString(name) ? "no \"name\" string" : "no \"value\" number");
        break;
      }
      if (!isfinite(value->valuedouble)) {
        dso_error(&e, DSO_ERR_INPUT, "%s: theta[%d] (\"%s\"): value %g is not a finite number",
                  path, i, name->valuestring, value->valuedouble);
        break;
      }
      if (cJSON_GetObjectItemCaseSensitive(obj, name->valuestring)) {
        dso_cfg_fail(&ic, DSO_ERR_INPUT, "\"%s\" is given twice", name->valuestring);
        break;
      }
      cJSON_AddItemToObject(obj, name->valuestring,
                            cJSON_CreateNumber(snap_to_bounds(theta, name->valuestring,
                                                              value->valuedouble)));
    }
    flat = obj && !e.code ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!flat && !e.code) {
      dso_error(&e, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
  } else {
    for (const cJSON* it = root->child; it && !e.code; it = it->next) {
      if (cJSON_IsNumber(it) && !isfinite(it->valuedouble)) {
        dso_error(&e, DSO_ERR_INPUT, "%s: \"%s\": value %g is not a finite number", path,
                  it->string, it->valuedouble);
      }
    }
    flat = e.code ? NULL : cJSON_PrintUnformatted(root);
    if (!flat && !e.code) {
      dso_error(&e, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
  }
  cJSON_Delete(root);
  if (flat) {
    dso_theta_from_json(theta, u, flat, path, &e);
    free(flat);
  }
  return e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
}
