#include "config/theta_json.h"

#include <stdlib.h>

#include "config/json.h"

char* dso_theta_to_json(const dsoTheta* theta, const double* u, dsoError* err) {
  cJSON* obj = cJSON_CreateObject();
  if (!obj) {
    dso_error(err, DSO_ERR_MEMORY, "theta: out of memory");
    return NULL;
  }
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (!cJSON_AddNumberToObject(obj, e->name, dso_theta_entry_natural(e, u[i]))) {
      cJSON_Delete(obj);
      dso_error(err, DSO_ERR_MEMORY, "theta: out of memory");
      return NULL;
    }
  }
  char* text = cJSON_Print(obj);
  cJSON_Delete(obj);
  if (!text) {
    dso_error(err, DSO_ERR_MEMORY, "theta: out of memory");
  }
  return text;
}

dsoStatus dso_theta_from_json(const dsoTheta* theta, double* u, const char* text,
                              const char* source, dsoError* err) {
  dsoCfg c = dso_cfg_ctx(source ? source : "theta", "", err);
  // dso_json_parse also refuses names holding \u0000, which cJSON would cut short
  dsoError perr = {0};
  cJSON* root = text ? dso_json_parse(text, c.file, &perr) : NULL;
  if (!root) {
    return dso_error(err, DSO_ERR_INPUT, "%s%sexpected a JSON object of name: number",
                     perr.msg[0] ? perr.msg : c.file, perr.msg[0] ? "; " : ": ");
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return dso_cfg_fail(&c, DSO_ERR_INPUT, "expected a JSON object of name: number, got %s",
                        dso_json_type_name(root));
  }
  double* tmp = (double*)malloc(sizeof(double) * (size_t)(theta->n > 0 ? theta->n : 1));
  if (!tmp) {
    cJSON_Delete(root);
    return dso_cfg_fail(&c, DSO_ERR_MEMORY, "out of memory");
  }
  dso_theta_natural(theta, tmp, u);
  dsoStatus s = DSO_OK;
  for (const cJSON* it = root->child; it && s == DSO_OK; it = it->next) {
    int i = dso_theta_find(theta, it->string);
    if (i < 0) {
      s = dso_cfg_fail(&c, DSO_ERR_INPUT, "\"%s\" is not an entry of theta", it->string);
    } else if (!cJSON_IsNumber(it)) {
      s = dso_cfg_fail(&c, DSO_ERR_INPUT, "\"%s\" must be a number", it->string);
    } else {
      tmp[i] = it->valuedouble;
      s = dso_theta_entry_check(&theta->entry[i], tmp[i], "value", err);
      if (s != DSO_OK) {
        dso_error_prefix(err, "%s: ", c.file);
      }
    }
  }
  if (s == DSO_OK) {
    s = dso_theta_unconstrained(theta, u, tmp, err);
  }
  free(tmp);
  cJSON_Delete(root);
  return s;
}
