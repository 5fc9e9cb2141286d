#include "config/dataset_json.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static const char* const kDataKeys[] = {"files", "columns", "resample", "stride", "max_episodes",
                                        "window", "decimate", "derived", NULL};
static const char* const kFileKeys[] = {"path", "validation", "columns", "derived", NULL};
static const char* const kMapKeys[] = {"to", "scale", "offset", NULL};

// reads obj[key] (if present) as an integer >= lo
static dsoStatus read_int(int* out, const cJSON* obj, const char* key, int lo, const dsoCfg* c) {
  double v = 0;
  int present = 0;
  dsoStatus st = dso_cfg_number(&v, &present, obj, key, 0, c);
  if (st || !present) {
    return st;
  }
  if (v != floor(v) || v < lo || v > INT_MAX) {
    dsoCfg ck = dso_cfg_key(c, key);
    return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected an integer >= %d, got %g", lo, v);
  }
  *out = (int)v;
  return DSO_OK;
}

static dsoStatus read_columns(dsoDatasetSpec* spec, int fidx, const cJSON* node,
                              const dsoCfg* c);

// reads node's "derived" object {"dataset column": "expression"} (if present) for file fidx of
// spec (-1: the data level)
static dsoStatus read_derived(dsoDatasetSpec* spec, int fidx, const cJSON* node,
                              const dsoCfg* c) {
  const cJSON* der = cJSON_GetObjectItemCaseSensitive(node, "derived");
  if (!der) {
    return DSO_OK;
  }
  dsoCfg cd = dso_cfg_key(c, "derived");
  if (!cJSON_IsObject(der)) {
    return dso_cfg_fail(&cd, DSO_ERR_INPUT, "expected an object {\"dataset column\": "
                        "\"expression\"}, e.g. {\"qpos.elbow\": \"theta2 - theta1\"}, got %s",
                        dso_json_type_name(der));
  }
  for (const cJSON* d = der->child; d; d = d->next) {
    dsoCfg cs = dso_cfg_key(&cd, d->string);
    if (!cJSON_IsString(d)) {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected an expression (a string such as "
                          "\"theta2 - theta1\"), got %s", dso_json_type_name(d));
    }
    dsoError e = {0};
    if (dso_dataset_spec_add_derived(spec, fidx, d->string, d->valuestring, &e)) {
      return dso_cfg_fail(&cs, e.code, "%s", e.msg);
    }
  }
  return DSO_OK;
}

// reads one object entry of "files" (f at c): {"path", "validation", "columns", "derived"}
static dsoStatus read_file_object(dsoDatasetSpec* spec, const cJSON* f, const char* base_dir,
                                  const dsoCfg* c) {
  const char* fpath = NULL;
  int validation = -1;
  dsoStatus st = dso_cfg_object(f, kFileKeys, c);
  if (!st) st = dso_cfg_string(&fpath, f, "path", 1, c);
  if (!st) st = dso_cfg_bool(&validation, f, "validation", c);
  if (st) return st;
  if (!fpath[0]) {
    dsoCfg cp = dso_cfg_key(c, "path");
    return dso_cfg_fail(&cp, DSO_ERR_INPUT, "expected a file name, got an empty string");
  }
  st = dso_dataset_spec_add_file(spec, base_dir, fpath, c->err);
  if (st) return st;
  int fidx = spec->nfile - 1;
  spec->file_opt[fidx].validation = validation;
  st = read_columns(spec, fidx, f, c);
  if (!st) st = read_derived(spec, fidx, f, c);
  return st;
}

static dsoStatus read_files(dsoDatasetSpec* spec, const cJSON* node, const char* base_dir,
                            const dsoCfg* c) {
  dsoCfg cf = dso_cfg_key(c, "files");
  const cJSON* files = cJSON_GetObjectItemCaseSensitive(node, "files");
  if (cJSON_IsString(files) && files->valuestring[0]) {
    return dso_dataset_spec_add_file(spec, base_dir, files->valuestring, c->err);
  }
  if (cJSON_IsObject(files)) {
    return read_file_object(spec, files, base_dir, &cf);
  }
  if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0) {
    return dso_cfg_fail(&cf, DSO_ERR_INPUT, "expected a file name or a non-empty array of file "
                        "names, got %s",
                        files ? dso_json_type_name(files) : "nothing (it is required)");
  }
  int i = 0;
  for (const cJSON* f = files->child; f; f = f->next, i++) {
    dsoCfg ci = dso_cfg_index(&cf, i);
    dsoStatus st;
    if (cJSON_IsObject(f)) {
      st = read_file_object(spec, f, base_dir, &ci);
    } else if (!cJSON_IsString(f) || !f->valuestring[0]) {
      st = dso_cfg_fail(&ci, DSO_ERR_INPUT, "expected a file name, got %s (or an object "
                        "{\"path\": .., \"validation\": ..})",
                        cJSON_IsString(f) ? "an empty string" : dso_json_type_name(f));
    } else {
      st = dso_dataset_spec_add_file(spec, base_dir, f->valuestring, c->err);
    }
    if (st) return st;
  }
  return DSO_OK;
}

// reads node's "columns" map (if present) for file fidx of spec (-1: the data level)
static dsoStatus read_columns(dsoDatasetSpec* spec, int fidx, const cJSON* node,
                              const dsoCfg* c) {
  const cJSON* cols = cJSON_GetObjectItemCaseSensitive(node, "columns");
  if (!cols) {
    return DSO_OK;
  }
  dsoCfg cc = dso_cfg_key(c, "columns");
  if (!cJSON_IsObject(cols)) {
    return dso_cfg_fail(&cc, DSO_ERR_INPUT, "expected an object {\"csv name\": \"dataset name\" "
                        "or \"ignore\" or {\"to\", \"scale\", \"offset\"}}, got %s",
                        dso_json_type_name(cols));
  }
  for (const cJSON* col = cols->child; col; col = col->next) {
    dsoCfg cs = dso_cfg_key(&cc, col->string);
    const char* to = NULL;
    double scale = 1, offset = 0;
    if (cJSON_IsString(col)) {
      to = col->valuestring;
    } else if (cJSON_IsObject(col)) {
      dsoStatus st = dso_cfg_object(col, kMapKeys, &cs);
      if (!st) st = dso_cfg_string(&to, col, "to", 1, &cs);
      if (!st) st = dso_cfg_number(&scale, NULL, col, "scale", 0, &cs);
      if (!st) st = dso_cfg_number(&offset, NULL, col, "offset", 0, &cs);
      if (st) return st;
      if (scale == 0) {
        dsoCfg csc = dso_cfg_key(&cs, "scale");
        return dso_cfg_fail(&csc, DSO_ERR_INPUT, "must not be 0");
      }
    } else {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected a dataset column name, \"ignore\" or an "
                          "object {\"to\", \"scale\", \"offset\"}, got %s",
                          dso_json_type_name(col));
    }
    if (!to[0]) {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "empty column name");
    }
    const char* target = strcmp(to, "ignore") ? to : NULL;
    dsoError e = {0};
    if (fidx >= 0 ? dso_dataset_spec_add_file_column(spec, fidx, col->string, target, scale,
                                                     offset, &e)
                  : dso_dataset_spec_add_column(spec, col->string, target, scale, offset, &e)) {
      return dso_cfg_fail(&cs, e.code, "%s", e.msg);
    }
  }
  return DSO_OK;
}

static dsoStatus read_window(dsoDatasetSpec* spec, const cJSON* node, const dsoCfg* c) {
  const cJSON* w = cJSON_GetObjectItemCaseSensitive(node, "window");
  if (!w) {
    return DSO_OK;
  }
  dsoCfg cw = dso_cfg_key(c, "window");
  const cJSON* a = cJSON_GetArrayItem(w, 0);
  const cJSON* b = cJSON_GetArrayItem(w, 1);
  if (!cJSON_IsArray(w) || cJSON_GetArraySize(w) != 2 || !cJSON_IsNumber(a) ||
      !(cJSON_IsNumber(b) || cJSON_IsNull(b))) {
    return dso_cfg_fail(&cw, DSO_ERR_INPUT, "expected [start, end] in s from each episode's "
                        "first sample (end may be null), got %s", dso_json_type_name(w));
  }
  double lo = a->valuedouble, hi = cJSON_IsNull(b) ? INFINITY : b->valuedouble;
  if (!isfinite(lo) || lo < 0 || !(hi > lo)) {
    return dso_cfg_fail(&cw, DSO_ERR_INPUT, "expected 0 <= start < end, got [%g, %g]", lo, hi);
  }
  spec->window[0] = lo;
  spec->window[1] = hi;
  return DSO_OK;
}

// "resample": true, false, "linear" (true) or "none" (false)
static dsoStatus read_resample(dsoDatasetSpec* spec, const cJSON* node, const dsoCfg* c) {
  const cJSON* r = cJSON_GetObjectItemCaseSensitive(node, "resample");
  if (cJSON_IsString(r) && (!strcmp(r->valuestring, "linear") || !strcmp(r->valuestring, "none"))) {
    spec->resample = !strcmp(r->valuestring, "linear");
    return DSO_OK;
  }
  if (r && !cJSON_IsBool(r)) {
    dsoCfg cr = dso_cfg_key(c, "resample");
    return dso_cfg_fail(&cr, DSO_ERR_INPUT, "expected true or false (or \"linear\", \"none\"), "
                        "got %s%s%s%s", dso_json_type_name(r), cJSON_IsString(r) ? " \"" : "",
                        cJSON_IsString(r) ? r->valuestring : "", cJSON_IsString(r) ? "\"" : "");
  }
  return dso_cfg_bool(&spec->resample, node, "resample", c);
}

// "decimate": "auto" or an integer k >= 1
static dsoStatus read_decimate(dsoDatasetSpec* spec, const cJSON* node, const dsoCfg* c) {
  const cJSON* d = cJSON_GetObjectItemCaseSensitive(node, "decimate");
  if (!d) {
    return DSO_OK;
  }
  if (cJSON_IsString(d) && !strcmp(d->valuestring, "auto")) {
    spec->decimate = DSO_DECIMATE_AUTO;
    return DSO_OK;
  }
  double v = cJSON_IsNumber(d) ? d->valuedouble : 0;
  if (!cJSON_IsNumber(d) || v != floor(v) || v < 1 || v > 1000000) {
    dsoCfg cd = dso_cfg_key(c, "decimate");
    return dso_cfg_fail(&cd, DSO_ERR_INPUT, "expected \"auto\" or an integer filter width >= 1 "
                        "(1: no filter), got %s",
                        cJSON_IsNumber(d) ? "a number out of range" : dso_json_type_name(d));
  }
  spec->decimate = (int)v;
  return DSO_OK;
}

dsoStatus dso_cfg_read_dataset(dsoDatasetSpec* spec, const cJSON* node, const char* base_dir,
                               const dsoCfg* cfg) {
  if (!spec) {
    return dso_error(cfg->err, DSO_ERR_INPUT, "dataset spec: no spec to fill");
  }
  // the first error is kept apart from cfg->err, which may hold an earlier one
  dsoError e = {0};
  dsoCfg c = *cfg;
  c.err = &e;
  dso_dataset_spec_default(spec);
  if (dso_cfg_object(node, kDataKeys, &c) || read_files(spec, node, base_dir, &c) ||
      read_columns(spec, -1, node, &c) || read_derived(spec, -1, node, &c) ||
      read_resample(spec, node, &c) || read_decimate(spec, node, &c) ||
      read_int(&spec->stride, node, "stride", 1, &c) ||
      read_int(&spec->max_episodes, node, "max_episodes", 0, &c) ||
      read_window(spec, node, &c)) {
    dso_dataset_spec_clear(spec);
    return dso_error(cfg->err, e.code, "%s", e.msg);
  }
  return DSO_OK;
}

dsoStatus dso_dataset_spec_parse(dsoDatasetSpec* spec, const char* json_text,
                                 const char* base_dir, const char* file, dsoError* err) {
  dsoError e = {0};
  dsoCfg c = dso_cfg_ctx(file ? file : "(json)", "", &e);
  cJSON* root = dso_json_parse(json_text ? json_text : "", c.file, &e);
  if (root) {
    dso_cfg_read_dataset(spec, root, base_dir, &c);
    cJSON_Delete(root);
  } else if (spec) {
    dso_dataset_spec_default(spec);
  }
  return e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
}
