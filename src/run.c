#include "run.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "json.h"

dsoStatus dso_run_state_init(dsoRunState* st, const dsoTheta* theta, const double* u,
                             double lambda, dsoError* err) {
  memset(st, 0, sizeof(*st));
  st->n = theta->n;
  st->u = (double*)malloc(sizeof(double) * (size_t)(theta->n + 1));
  if (!st->u) {
    return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  }
  memcpy(st->u, u, sizeof(double) * (size_t)theta->n);
  st->lambda = lambda;
  return DSO_OK;
}

dsoStatus dso_run_state_set_opt(dsoRunState* st, const double* opt, int nopt, dsoError* err) {
  double* copy = (double*)realloc(st->opt, sizeof(double) * (size_t)(nopt + 1));
  if (!copy) {
    return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
  }
  memcpy(copy, opt, sizeof(double) * (size_t)nopt);
  st->opt = copy;
  st->nopt = nopt;
  return DSO_OK;
}

void dso_run_state_clear(dsoRunState* st) {
  if (st) {
    free(st->opt);
    free(st->u);
    free(st->record);
    memset(st, 0, sizeof(*st));
  }
}

dsoStatus dso_run_state_record(dsoRunState* st, const dsoRunRecord* rec, dsoError* err) {
  if (st->nrecord == st->cap) {
    int cap = st->cap ? 2 * st->cap : 64;
    dsoRunRecord* r = (dsoRunRecord*)realloc(st->record, sizeof(dsoRunRecord) * (size_t)cap);
    if (!r) {
      return dso_error(err, DSO_ERR_MEMORY, "run: out of memory");
    }
    st->record = r;
    st->cap = cap;
  }
  st->record[st->nrecord++] = *rec;
  return DSO_OK;
}

// a JSON number that reads back to the same bits (cJSON's own printer rounds); null if not finite
static cJSON* exact(double v) {
  if (!isfinite(v)) {
    return cJSON_CreateNull();
  }
  char buf[40];
  snprintf(buf, sizeof(buf), "%.17g", v);
  return cJSON_CreateRaw(buf);
}

static cJSON* record_json(const dsoRunRecord* r) {
  cJSON* o = cJSON_CreateObject();
  if (o) {
    cJSON_AddNumberToObject(o, "iter", r->iter);
    cJSON_AddItemToObject(o, "cost", exact(r->cost));
    cJSON* t = cJSON_AddArrayToObject(o, "terms");
    for (int k = 0; t && k < 3; k++) {
      cJSON_AddItemToArray(t, exact(r->term[k]));
    }
    cJSON_AddItemToObject(o, "grad_norm", exact(r->grad_norm));
    cJSON_AddItemToObject(o, "lambda", exact(r->lambda));
    cJSON_AddNumberToObject(o, "steps", (double)r->steps);
  }
  return o;
}

// writes a cJSON tree to path atomically and frees it
static dsoStatus write_json(const char* path, cJSON* root, dsoError* err) {
  char* text = root ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  size_t len = strlen(text);
  dsoStatus s = dso_write_file_atomic(path, text, len, err);
  free(text);
  return s;
}

dsoStatus dso_run_checkpoint_write(const char* path, const dsoTheta* theta,
                                   const dsoRunState* st, dsoError* err) {
  cJSON* root = cJSON_CreateObject();
  cJSON* u = root ? cJSON_AddObjectToObject(root, "u") : NULL;
  cJSON* rec = root ? cJSON_AddArrayToObject(root, "progress") : NULL;
  if (!u || !rec) {
    cJSON_Delete(root);
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  for (int i = 0; i < theta->n; i++) {
    cJSON_AddItemToObject(u, theta->entry[i].name, exact(st->u[i]));
  }
  cJSON_AddItemToObject(root, "lambda", exact(st->lambda));
  cJSON_AddBoolToObject(root, "done", st->done);
  cJSON* opt = cJSON_AddArrayToObject(root, "optimizer");
  for (int k = 0; opt && k < st->nopt; k++) {
    cJSON_AddItemToArray(opt, exact(st->opt[k]));
  }
  for (int k = 0; k < st->nrecord; k++) {
    cJSON_AddItemToArray(rec, record_json(&st->record[k]));
  }
  return write_json(path, root, err);
}

static double num(const cJSON* o, const char* key, int* bad) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v)) {
    *bad = 1;
    return 0;
  }
  return v->valuedouble;
}

dsoStatus dso_run_checkpoint_read(const char* path, const dsoTheta* theta, dsoRunState* st,
                                  dsoError* err) {
  char* text = dso_read_text_file(path, err);
  if (!text) {
    return err->code;
  }
  cJSON* root = dso_json_parse(text, path, err);
  free(text);
  if (!root) {
    return err->code;
  }
  dsoStatus s = DSO_OK;
  const cJSON* u = cJSON_GetObjectItemCaseSensitive(root, "u");
  const cJSON* rec = cJSON_GetObjectItemCaseSensitive(root, "progress");
  int bad = 0;
  double lambda = num(root, "lambda", &bad);
  if (!cJSON_IsObject(u) || !cJSON_IsArray(rec) || bad) {
    s = dso_error(err, DSO_ERR_INPUT, "%s: not a dso checkpoint (expected u, lambda, progress)",
                  path);
  }
  for (int i = 0; !s && i < theta->n; i++) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(u, theta->entry[i].name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
      s = dso_error(err, DSO_ERR_INPUT, "%s: u.%s: missing or not a finite number (was the "
                    "checkpoint written for another task?)", path, theta->entry[i].name);
    } else {
      st->u[i] = v->valuedouble;
    }
  }
  for (const cJSON* it = u ? u->child : NULL; !s && it; it = it->next) {
    if (dso_theta_find(theta, it->string) < 0) {
      s = dso_error(err, DSO_ERR_INPUT, "%s: u.%s: not an entry of the task's theta", path,
                    it->string);
    }
  }
  st->nrecord = 0;
  for (const cJSON* it = rec ? rec->child : NULL; !s && it; it = it->next) {
    dsoRunRecord r;
    memset(&r, 0, sizeof(r));
    r.iter = (int)num(it, "iter", &bad);
    r.cost = num(it, "cost", &bad);
    const cJSON* t = cJSON_GetObjectItemCaseSensitive(it, "terms");
    for (int k = 0; k < 3; k++) {
      const cJSON* x = cJSON_GetArrayItem(t, k);
      r.term[k] = cJSON_IsNumber(x) ? x->valuedouble : 0;
    }
    r.grad_norm = num(it, "grad_norm", &bad);
    r.lambda = num(it, "lambda", &bad);
    r.steps = (long)num(it, "steps", &bad);
    s = bad ? dso_error(err, DSO_ERR_INPUT, "%s: progress: malformed row", path)
            : dso_run_state_record(st, &r, err);
  }
  const cJSON* opt = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
  int nopt = cJSON_IsArray(opt) ? cJSON_GetArraySize(opt) : 0;
  double* vals = (double*)calloc((size_t)nopt + 1, sizeof(double));
  int k = 0;
  for (const cJSON* it = opt ? opt->child : NULL; !s && vals && it; it = it->next, k++) {
    if (!cJSON_IsNumber(it)) {
      s = dso_error(err, DSO_ERR_INPUT, "%s: optimizer[%d]: expected a number", path, k);
    } else {
      vals[k] = it->valuedouble;
    }
  }
  if (!s && !vals) {
    s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  if (!s && nopt) {
    s = dso_run_state_set_opt(st, vals, nopt, err);
  }
  free(vals);
  if (!s) {
    st->lambda = lambda;
    st->done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "done"));
  }
  cJSON_Delete(root);
  return s;
}

dsoStatus dso_run_progress_write(const char* path, const dsoRunState* st,
                                 const char* const part_names[3], dsoError* err) {
  dsoAtomicFile* f = dso_atomic_open(path, err);
  if (!f) {
    return err->code;
  }
  dso_atomic_printf(f, err, "iter,cost,%s,%s,%s,grad_norm,lambda,steps\n", part_names[0],
                    part_names[1], part_names[2]);
  for (int k = 0; k < st->nrecord; k++) {
    const dsoRunRecord* r = &st->record[k];
    dso_atomic_printf(f, err, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%ld\n", r->iter, r->cost,
                      r->term[0], r->term[1], r->term[2], r->grad_norm, r->lambda, r->steps);
  }
  return dso_atomic_commit(f, err);
}

char* dso_run_result_json(const dsoTheta* theta, const double* u0, const double* u,
                          const double* se, const dsoRunRecord* last,
                          const char* const part_names[3], const double* val_rms, int nval,
                          double val_total, dsoError* err) {
  cJSON* root = cJSON_CreateObject();
  cJSON* arr = root ? cJSON_AddArrayToObject(root, "theta") : NULL;
  if (!arr) {
    cJSON_Delete(root);
    dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
    return NULL;
  }
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    cJSON* o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddNumberToObject(o, "initial", dso_theta_entry_natural(e, u0[i]));
    double v = dso_theta_entry_natural(e, u[i]);
    cJSON_AddNumberToObject(o, "value", v);
    if (se && se[i] > 0 && isfinite(se[i])) {
      cJSON_AddNumberToObject(o, "se", se[i]);
      cJSON* ci = cJSON_AddArrayToObject(o, "ci95");
      cJSON_AddItemToArray(ci, cJSON_CreateNumber(v - 1.959963984540054 * se[i]));
      cJSON_AddItemToArray(ci, cJSON_CreateNumber(v + 1.959963984540054 * se[i]));
    }
    cJSON_AddBoolToObject(o, "fixed", e->fixed);
  }
  if (last) {
    cJSON* o = record_json(last);
    cJSON_AddItemToObject(root, "final", o);
    cJSON* names = cJSON_AddArrayToObject(root, "terms");
    for (int k = 0; names && k < 3; k++) {
      cJSON_AddItemToArray(names, cJSON_CreateString(part_names[k]));
    }
  }
  if (nval > 0) {
    cJSON* v = cJSON_AddObjectToObject(root, "validation");
    cJSON* per = cJSON_AddArrayToObject(v, "rms_per_episode");
    for (int k = 0; k < nval; k++) {
      cJSON_AddItemToArray(per, cJSON_CreateNumber(val_rms[k]));
    }
    cJSON_AddNumberToObject(v, "rms", val_total);
  }
  char* text = cJSON_Print(root);
  cJSON_Delete(root);
  if (!text) {
    dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
  }
  return text;
}
