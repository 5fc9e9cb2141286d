// The result of an evaluation as JSON text (output only; see evaluate.h).
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "apps/evaluate.h"

// the result of the last run as a cJSON tree; NULL when out of memory
static cJSON* result_tree(const dsoEvalResult* r) {
  cJSON* root = cJSON_CreateObject();
  cJSON* eps = root ? cJSON_AddArrayToObject(root, "episodes") : NULL;
  cJSON* chans = root ? cJSON_AddArrayToObject(root, "channels") : NULL;
  cJSON* wins = root ? cJSON_AddArrayToObject(root, "windows") : NULL;
  int ok = eps && chans && wins;
  for (int k = 0; ok && k < r->nepisode; k++) {
    ok = cJSON_AddItemToArray(eps, cJSON_CreateNumber((double)r->episode_id[k]));
  }
  for (int c = 0; ok && c < r->nchannel; c++) {
    ok = cJSON_AddItemToArray(chans, cJSON_CreateString(r->channel[c]));
  }
  for (int w = 0; ok && w < r->nwindow; w++) {
    cJSON* o = cJSON_CreateObject();
    ok = o && cJSON_AddItemToArray(wins, o);
    if (!ok) {
      cJSON_Delete(o);
      break;
    }
    if (r->window[w] == DSO_EVAL_WHOLE) {
      ok = cJSON_AddStringToObject(o, "steps", "whole") != NULL;
    } else {
      ok = cJSON_AddNumberToObject(o, "steps", r->window[w]) != NULL;
    }
    ok = ok && cJSON_AddNumberToObject(o, "windows", (double)r->nwin[w]) &&
         cJSON_AddNumberToObject(o, "diverged", (double)r->ndiverged[w]) &&
         cJSON_AddNumberToObject(o, "samples", (double)r->nstep[w]);
    cJSON* rms = ok ? cJSON_AddObjectToObject(o, "rms") : NULL;
    ok = rms != NULL;
    for (int c = 0; ok && c < r->nchannel; c++) {
      double v = r->rms[(size_t)w * r->nchannel + c];
      ok = (isfinite(v) ? cJSON_AddNumberToObject(rms, r->channel[c], v)
                        : cJSON_AddNullToObject(rms, r->channel[c])) != NULL;
    }
  }
  if (!ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

char* dso_eval_json(const dsoEval* ev, dsoError* err) {
  return dso_eval_report_json(ev, NULL, NULL, 0, err);
}

char* dso_eval_report_json(const dsoEval* ev, const char* task_path, const char* values,
                           double timestep, dsoError* err) {
  if (!ev) {
    dso_error(err, DSO_ERR_INPUT, "evaluate: no evaluation");
    return NULL;
  }
  dsoEvalResult r;
  dso_eval_result(ev, &r);
  cJSON* root = result_tree(&r);
  int ok = root != NULL;
  if (ok && task_path) {
    ok = cJSON_AddStringToObject(root, "task", task_path) &&
         (values ? cJSON_AddStringToObject(root, "values", values)
                 : cJSON_AddNullToObject(root, "values")) &&
         cJSON_AddNumberToObject(root, "timestep", timestep);
  }
  char* text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) {
    dso_error(err, DSO_ERR_MEMORY, "evaluate: out of memory");
  }
  return text;
}
