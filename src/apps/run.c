#define _POSIX_C_SOURCE 200809L  // O_CLOEXEC, pread, ftruncate
#include "apps/run.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/io.h"
#include "config/json.h"

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

// the fields of row k that must be finite: cost, grad_norm, lambda
static dsoStatus check_row(const char* path, const char* what, int k, const dsoRunRecord* r,
                           dsoError* err) {
  const char* names[3] = {"cost", "grad_norm", "lambda"};
  double v[3] = {r->cost, r->grad_norm, r->lambda};
  for (int j = 0; j < 3; j++) {
    if (!isfinite(v[j])) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: %s[%d] (iteration %d): %s is %g; a non-finite "
                       "value is never written (the file is left as it was)", path, what, k,
                       r->iter, names[j], v[j]);
    }
  }
  return DSO_OK;
}

dsoStatus dso_run_checkpoint_write(const char* path, const dsoTheta* theta,
                                   const dsoRunState* st, dsoError* err) {
  for (int i = 0; i < theta->n; i++) {
    if (!isfinite(st->u[i])) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: u.%s is %g; a non-finite theta is never "
                       "written (the file is left as it was)", path, theta->entry[i].name,
                       st->u[i]);
    }
  }
  if (!isfinite(st->lambda)) {
    return dso_error(err, DSO_ERR_NUMERIC, "%s: lambda is %g; not written", path, st->lambda);
  }
  for (int k = 0; k < st->nopt; k++) {
    if (!isfinite(st->opt[k])) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: optimizer[%d] is %g; a non-finite optimizer "
                       "state is never written (the file is left as it was)", path, k, st->opt[k]);
    }
  }
  for (int k = 0; k < st->nrecord; k++) {
    if (check_row(path, "progress", k, &st->record[k], err)) {
      return err->code;
    }
  }
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
  cJSON_AddNumberToObject(root, "refused", st->refused);
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
  cJSON* root = dso_json_read_file(path, err);
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
      r.term[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;  // null: not available
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
  const cJSON* ref = cJSON_GetObjectItemCaseSensitive(root, "refused");
  if (!s && ref && !(cJSON_IsNumber(ref) && ref->valuedouble >= 0 &&
                     ref->valuedouble <= 2147483647.0 &&
                     ref->valuedouble == floor(ref->valuedouble))) {
    s = dso_error(err, DSO_ERR_INPUT, "%s: refused: expected a count >= 0", path);
  }
  if (!s) {
    st->lambda = lambda;
    st->done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "done"));
    st->refused = ref ? (int)ref->valuedouble : 0;  // older checkpoints: none
  }
  cJSON_Delete(root);
  return s;
}

dsoStatus dso_run_progress_write(const char* path, const dsoRunState* st,
                                 const char* const part_names[3], dsoError* err) {
  for (int k = 0; k < st->nrecord; k++) {
    if (check_row(path, "row", k + 1, &st->record[k], err)) {
      return err->code;
    }
  }
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
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    double a = dso_theta_entry_natural(e, u0[i]), b = dso_theta_entry_natural(e, u[i]);
    if (!isfinite(a) || !isfinite(b) || !isfinite(u[i])) {
      dso_error(err, DSO_ERR_NUMERIC, "result: theta entry %s: %s value is %g; a non-finite "
                "value is never written", e->name, isfinite(a) ? "final" : "initial",
                isfinite(a) ? b : a);
      return NULL;
    }
  }
  if (last && check_row("result", "final", 0, last, err)) {
    return NULL;
  }
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

char* dso_run_result_add_fit(const char* base, const dsoTheta* theta, const dsoRunFitFacts* f,
                             dsoError* err) {
  cJSON* root = base ? cJSON_Parse(base) : NULL;
  cJSON* arr = root ? cJSON_GetObjectItemCaseSensitive(root, "theta") : NULL;
  if (!arr || cJSON_GetArraySize(arr) != theta->n) {
    cJSON_Delete(root);
    dso_error(err, DSO_ERR_INPUT, "result: the base text is not a result of this theta layout");
    return NULL;
  }
  int nbound = 0, i = 0;
  for (cJSON* o = arr->child; o; o = o->next, i++) {
    int b = f->at_bound ? f->at_bound[i] : 0;
    if (f->se_iid && isfinite(f->se_iid[i]) && f->se_iid[i] > 0 && !b) {
      cJSON_AddNumberToObject(o, "se_iid", f->se_iid[i]);
    }
    if (f->at_bound) {
      cJSON_AddBoolToObject(o, "at_bound", b != 0);
    }
    if (b) {
      nbound++;
      cJSON_AddStringToObject(o, "bound", b < 0 ? "lower" : "upper");
      cJSON_DeleteItemFromObjectCaseSensitive(o, "se");
      cJSON_DeleteItemFromObjectCaseSensitive(o, "ci95");
    }
  }
  if (f->se_kind) {
    cJSON_AddStringToObject(root, "se_kind", f->se_kind);
  }
  cJSON_AddNumberToObject(root, "windows", f->nwindow);
  cJSON_AddNumberToObject(root, "nbound", nbound);
  if (f->stop) {
    cJSON_AddStringToObject(root, "stop", f->stop);
  }
  if (f->eval_initial || f->eval_final) {
    cJSON* ev = cJSON_AddObjectToObject(root, "evaluation");
    const char* text[2] = {f->eval_initial, f->eval_final};
    const char* key[2] = {"initial", "identified"};
    for (int k = 0; k < 2; k++) {
      if (!text[k]) {
        continue;
      }
      cJSON* v = cJSON_Parse(text[k]);
      if (!v) {
        cJSON_Delete(root);
        dso_error(err, DSO_ERR_INPUT, "result: the %s evaluation is not JSON", key[k]);
        return NULL;
      }
      cJSON_AddItemToObject(ev, key[k], v);
    }
  }
  char* out = cJSON_Print(root);
  cJSON_Delete(root);
  if (!out) {
    dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
  }
  return out;
}

// base parsed for an addition; NULL with err set (a failed base already set it)
static cJSON* result_parse(const char* base, dsoError* err) {
  cJSON* root = base ? cJSON_Parse(base) : NULL;
  if (!root && !(err && err->code)) {
    dso_error(err, base ? DSO_ERR_INPUT : DSO_ERR_MEMORY,
              base ? "result: the base text is not JSON" : "result: out of memory");
  }
  return root;
}

// root printed and freed
static char* result_print(cJSON* root, dsoError* err) {
  char* out = cJSON_Print(root);
  cJSON_Delete(root);
  if (!out) {
    dso_error(err, DSO_ERR_MEMORY, "result: out of memory");
  }
  return out;
}

char* dso_run_result_add_train(const char* base, int refused, dsoError* err) {
  cJSON* root = result_parse(base, err);
  if (!root) {
    return NULL;
  }
  cJSON_AddNumberToObject(root, "refused_steps", refused);
  return result_print(root, err);
}

char* dso_run_result_add_estimator(const char* base, const dsoRunEstimFacts* f, dsoError* err) {
  cJSON* root = result_parse(base, err);
  if (!root) {
    return NULL;
  }
  cJSON* o = cJSON_AddObjectToObject(root, "estimator");
  cJSON_AddStringToObject(o, "corrector", f->corrector);
  cJSON_AddNumberToObject(o, "corrector_entries", f->corrector_entries);
  cJSON_AddNumberToObject(o, "fitted_entries", f->fitted_entries);
  cJSON_AddNumberToObject(o, "innovations", f->innovations);
  cJSON_AddStringToObject(o, "scored_on", f->scored_on);
  cJSON* r = cJSON_AddObjectToObject(o, "rms_state_error");
  for (int k = 0; k < f->nfig; k++) {
    if (isfinite(f->fig[k])) {
      cJSON_AddNumberToObject(r, f->fig_name[k], f->fig[k]);
    } else {
      cJSON_AddNullToObject(r, f->fig_name[k]);
    }
  }
  return result_print(root, err);
}

int dso_run_bad_prior(const dsoTheta* theta, const double* u) {
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (!e->has_prior) {
      continue;
    }
    double r = (dso_theta_entry_natural(e, u[i]) - e->prior_mean) / e->prior_std;
    if (!isfinite(0.5 * r * r) || !isfinite(r / e->prior_std * dso_theta_entry_jacobian(e, u[i]))) {
      return i;
    }
  }
  return -1;
}

dsoStatus dso_run_check_finite(const dsoTheta* theta, const double* u, const dsoRunRecord* r,
                               const char* const part_names[3], dsoError* err) {
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    double v = dso_theta_entry_natural(e, u[i]);
    if (!isfinite(u[i]) || !isfinite(v)) {
      return dso_error(err, DSO_ERR_NUMERIC, "theta entry %s is %g (unconstrained %g): not "
                       "finite", e->name, v, u[i]);
    }
  }
  if (!r) {
    return DSO_OK;
  }
  if (!isfinite(r->cost)) {
    char parts[256] = "";
    size_t len = 0;
    for (int k = 0; part_names && k < 3 && len < sizeof(parts); k++) {
      if (!isfinite(r->term[k])) {
        len += (size_t)snprintf(parts + len, sizeof(parts) - len, "%s%s %g", len ? ", " : " (",
                                part_names[k], r->term[k]);
      }
    }
    if (len && len < sizeof(parts) - 1) {
      strcat(parts, ")");
    }
    int b = dso_run_bad_prior(theta, u);
    if (b >= 0) {
      const dsoThetaEntry* e = &theta->entry[b];
      return dso_error(err, DSO_ERR_NUMERIC, "the cost is %g%s: the prior of theta entry %s is "
                       "not finite at its value %g (prior mean %g, std %g: a std this small "
                       "overflows)", r->cost, parts, e->name,
                       dso_theta_entry_natural(e, u[b]), e->prior_mean, e->prior_std);
    }
    return dso_error(err, DSO_ERR_NUMERIC, "the cost is %g%s: not finite", r->cost, parts);
  }
  if (!isfinite(r->grad_norm)) {
    int b = dso_run_bad_prior(theta, u);
    if (b >= 0) {
      const dsoThetaEntry* e = &theta->entry[b];
      return dso_error(err, DSO_ERR_NUMERIC, "the gradient norm is %g: the prior gradient of "
                       "theta entry %s is not finite at its value %g (prior mean %g, std %g: a "
                       "std this small overflows)", r->grad_norm, e->name,
                       dso_theta_entry_natural(e, u[b]), e->prior_mean, e->prior_std);
    }
    return dso_error(err, DSO_ERR_NUMERIC, "the gradient norm is %g: not finite", r->grad_norm);
  }
  if (!isfinite(r->lambda)) {
    return dso_error(err, DSO_ERR_NUMERIC, "lambda is %g: not finite", r->lambda);
  }
  return DSO_OK;
}

dsoStatus dso_run_lock_acquire(int* fd, const char* folder, dsoError* err) {
  *fd = -1;
  char path[4096];
  if (snprintf(path, sizeof(path), "%s/.lock", folder) >= (int)sizeof(path)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: folder name too long", folder);
  }
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (f < 0) {
    return dso_error(err, DSO_ERR_IO, "%s: cannot make the lock file of the output folder: %s",
                     path, strerror(errno));
  }
  if (flock(f, LOCK_EX | LOCK_NB) != 0) {
    int code = errno;
    if (code == EWOULDBLOCK) {
      // the holder wrote its pid after taking the lock; it may not have yet
      char buf[32] = {0};
      ssize_t n = pread(f, buf, sizeof(buf) - 1, 0);
      long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
      close(f);
      if (pid > 0) {
        return dso_error(err, DSO_ERR_IO, "%s is in use by another dso run (pid %ld); wait for "
                         "it to end or choose another output folder", folder, pid);
      }
      return dso_error(err, DSO_ERR_IO, "%s is in use by another dso run (pid unknown); wait for "
                       "it to end or choose another output folder", folder);
    }
    close(f);
    return dso_error(err, DSO_ERR_IO, "%s: cannot lock: %s", path, strerror(code));
  }
  char buf[32];
  int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
  if (ftruncate(f, 0) != 0 || pwrite(f, buf, (size_t)len, 0) != len) {
    int code = errno;
    close(f);
    return dso_error(err, DSO_ERR_IO, "%s: cannot write: %s", path, strerror(code));
  }
  *fd = f;
  return DSO_OK;
}

void dso_run_lock_release(int fd) {
  if (fd >= 0) {
    if (ftruncate(fd, 0) != 0) {
      // the pid stays behind; harmless: it is read only while the lock is held
    }
    close(fd);  // releases the flock
  }
}

dsoStatus dso_run_clean_temp(int* removed, const char* folder, const char* const* names,
                             int nnames, dsoError* err) {
  if (removed) {
    *removed = 0;
  }
  DIR* dir = opendir(folder);
  if (!dir) {
    return dso_error(err, DSO_ERR_IO, "%s: cannot read the folder: %s", folder, strerror(errno));
  }
  dsoStatus s = DSO_OK;
  for (struct dirent* de = readdir(dir); de && !s; de = readdir(dir)) {
    for (int k = 0; k < nnames; k++) {
      if (!dso_atomic_is_temp(de->d_name, names[k])) {
        continue;
      }
      char path[4400];
      snprintf(path, sizeof(path), "%s/%s", folder, de->d_name);
      if (unlink(path) != 0 && errno != ENOENT) {
        s = dso_error(err, DSO_ERR_IO, "%s: cannot remove the temporary file a killed run "
                      "left: %s", path, strerror(errno));
      } else if (removed) {
        (*removed)++;
      }
      break;
    }
  }
  closedir(dir);
  return s;
}
