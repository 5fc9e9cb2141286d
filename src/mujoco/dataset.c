#define _POSIX_C_SOURCE 200809L  // strdup
#include "mujoco/dataset.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"

// largest episode arrays one resampled episode may take, in bytes
#define DSO_EPISODE_MAX_BYTES (1024.0 * 1024.0 * 1024.0)
// room for lists of names inside a message of DSO_ERROR_LEN
#define DSO_LIST_LEN 420

// csv column kinds beyond the data groups
enum { DSO_COL_IGNORE = -1, DSO_COL_TIME = DSO_NDATA, DSO_COL_EPISODE, DSO_COL_VALIDATION };

// row slots of the special columns; value columns follow
enum { DSO_SLOT_TIME = 0, DSO_SLOT_EPISODE, DSO_SLOT_VALIDATION, DSO_NSLOT_SPECIAL };

static const char* const kGroupPrefix[DSO_NDATA] = {"qpos", "qvel", "ctrl", "sensor"};
static const char* const kSpecial[3] = {"time", "episode", "validation"};

// ---------------------------------------------------------------------------------------------
// model elements behind each group

static int group_size(const mjModel* m, int g) {
  switch (g) {
    case DSO_DATA_QPOS: return m->nq;
    case DSO_DATA_QVEL: return m->nv;
    case DSO_DATA_CTRL: return m->nu;
    default: return m->nsensordata;
  }
}

static int group_obj(int g) {
  return g == DSO_DATA_CTRL ? mjOBJ_ACTUATOR : g == DSO_DATA_SENSOR ? mjOBJ_SENSOR : mjOBJ_JOINT;
}

static const char* obj_word(int g) {
  return g == DSO_DATA_CTRL ? "actuator" : g == DSO_DATA_SENSOR ? "sensor" : "joint";
}

static int element_count(const mjModel* m, int g) {
  return g == DSO_DATA_CTRL ? m->nu : g == DSO_DATA_SENSOR ? m->nsensor : m->njnt;
}

// first entry and number of entries of element e in group g
static void element_span(int* adr, int* cnt, const mjModel* m, int g, int e) {
  if (g == DSO_DATA_CTRL) {
    *adr = e;
    *cnt = 1;
  } else if (g == DSO_DATA_SENSOR) {
    *adr = m->sensor_adr[e];
    *cnt = m->sensor_dim[e];
  } else {
    int type = m->jnt_type[e];
    int pos = g == DSO_DATA_QPOS;
    *adr = pos ? m->jnt_qposadr[e] : m->jnt_dofadr[e];
    *cnt = type == mjJNT_FREE ? (pos ? 7 : 6) : type == mjJNT_BALL ? (pos ? 4 : 3) : 1;
  }
}

static const char* element_name(const mjModel* m, int g, int e) {
  const char* name = mj_id2name(m, group_obj(g), e);
  return name && name[0] ? name : NULL;
}

int dso_dataset_column_name(char* buf, int len, const mjModel* m, dsoDataGroup group, int index) {
  if ((int)group < 0 || group >= DSO_NDATA) {
    snprintf(buf, len, "group #%d", (int)group);
    return -1;
  }
  int ne = element_count(m, group);
  for (int e = 0; e < ne; e++) {
    int adr, cnt;
    element_span(&adr, &cnt, m, group, e);
    if (index < adr || index >= adr + cnt) {
      continue;
    }
    const char* name = element_name(m, group, e);
    if (!name) {
      break;
    }
    if (cnt == 1) {
      return snprintf(buf, len, "%s.%s", kGroupPrefix[group], name);
    }
    return snprintf(buf, len, "%s.%s[%d]", kGroupPrefix[group], name, index - adr);
  }
  snprintf(buf, len, "%s #%d", kGroupPrefix[group], index);
  return -1;
}

// appends item to the ", "-separated list in buf (capacity DSO_LIST_LEN) or counts it as left out
static void list_add(char* buf, int* left_out, const char* item) {
  size_t used = strlen(buf);
  if (*left_out || used + strlen(item) + 2 >= DSO_LIST_LEN - 48) {
    (*left_out)++;
    return;
  }
  snprintf(buf + used, DSO_LIST_LEN - used, "%s%s", used ? ", " : "", item);
}

static void list_end(char* buf, int left_out) {
  if (left_out) {
    size_t used = strlen(buf);
    snprintf(buf + used, DSO_LIST_LEN - used, " and %d more (see dso info MODEL)", left_out);
  } else if (!buf[0]) {
    snprintf(buf, DSO_LIST_LEN, "none");
  }
}

// names of group g's elements, compact: qpos.root[0..6]; with prefix 0 only the element names
static void list_elements(char* buf, int* left_out, const mjModel* m, int g, int prefix) {
  int ne = element_count(m, g);
  for (int e = 0; e < ne; e++) {
    const char* name = element_name(m, g, e);
    if (!name) {
      continue;
    }
    int adr, cnt;
    element_span(&adr, &cnt, m, g, e);
    char item[300];
    if (!prefix) {
      snprintf(item, sizeof(item), "%s", name);
    } else if (cnt == 1) {
      snprintf(item, sizeof(item), "%s.%s", kGroupPrefix[g], name);
    } else {
      snprintf(item, sizeof(item), "%s.%s[0..%d]", kGroupPrefix[g], name, cnt - 1);
    }
    list_add(buf, left_out, item);
  }
}

static void list_valid_columns(char* buf, const mjModel* m) {
  int left_out = 0;
  buf[0] = '\0';
  for (int i = 0; i < 3; i++) {
    list_add(buf, &left_out, kSpecial[i]);
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    list_elements(buf, &left_out, m, g, 1);
  }
  list_end(buf, left_out);
}

// resolves a dataset column name to a kind (group or DSO_COL_*) and entry; why gets the reason
// when it does not resolve
static int resolve_column(int* kind, int* index, const mjModel* m, const char* name, char* why,
                          size_t whylen) {
  for (int i = 0; i < 3; i++) {
    if (!strcmp(name, kSpecial[i])) {
      *kind = DSO_COL_TIME + i;
      *index = 0;
      return 0;
    }
  }
  char list[DSO_LIST_LEN];
  const char* dot = strchr(name, '.');
  int g = 0;
  while (dot && g < DSO_NDATA &&
         (strlen(kGroupPrefix[g]) != (size_t)(dot - name) ||
          strncmp(name, kGroupPrefix[g], (size_t)(dot - name)))) {
    g++;
  }
  if (!dot || g == DSO_NDATA) {
    list_valid_columns(list, m);
    snprintf(why, whylen, "unknown column \"%s\"; valid names: %s", name, list);
    return -1;
  }
  const char* rest = dot + 1;
  char elem[256];
  snprintf(elem, sizeof(elem), "%s", rest);
  int e = mj_name2id(m, group_obj(g), rest);
  int k = -1;
  size_t restlen = strlen(rest);
  const char* open = strrchr(rest, '[');
  if (e < 0 && open && restlen > 2 && rest[restlen - 1] == ']' && open > rest) {
    char* end = NULL;
    long kk = strtol(open + 1, &end, 10);
    if (end == rest + restlen - 1 && end > open + 1 && kk >= 0 && kk < INT_MAX &&
        (size_t)(open - rest) < sizeof(elem)) {
      memcpy(elem, rest, (size_t)(open - rest));
      elem[open - rest] = '\0';
      e = mj_name2id(m, group_obj(g), elem);
      k = (int)kk;
    }
  }
  if (e < 0) {
    int left_out = 0;
    list[0] = '\0';
    list_elements(list, &left_out, m, g, 0);
    list_end(list, left_out);
    snprintf(why, whylen, "column \"%s\": the model has no %s \"%s\"; %ss: %s", name,
             obj_word(g), elem, obj_word(g), list);
    return -1;
  }
  int adr, cnt;
  element_span(&adr, &cnt, m, g, e);
  if (k < 0 && cnt > 1) {
    snprintf(why, whylen,
             "column \"%s\": %s \"%s\" has %d %s entries: name them %s.%s[0] .. %s.%s[%d]", name,
             obj_word(g), elem, cnt, kGroupPrefix[g], kGroupPrefix[g], elem, kGroupPrefix[g], elem,
             cnt - 1);
    return -1;
  }
  if (k >= cnt) {
    snprintf(why, whylen, "column \"%s\": index %d is out of range: %s \"%s\" has %d %s entr%s",
             name, k, obj_word(g), elem, cnt, kGroupPrefix[g], cnt == 1 ? "y" : "ies");
    return -1;
  }
  *kind = g;
  *index = adr + (k < 0 ? 0 : k);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// spec

void dso_dataset_spec_default(dsoDatasetSpec* spec) {
  memset(spec, 0, sizeof(*spec));
  spec->resample = 1;
  spec->stride = 1;
  spec->max_episodes = 0;
  spec->window[0] = 0;
  spec->window[1] = INFINITY;
  spec->max_bytes = DSO_DATASET_MAX_BYTES;
}

static void free_derived(dsoDerivedColumn* d) {
  for (int k = 0; k < d->nterm; k++) {
    free(d->src[k]);
  }
  free(d->src);
  free(d->coef);
  free(d->to);
  free(d->expr);
  memset(d, 0, sizeof(*d));
}

static void free_maps(dsoColumnMap* col, int n) {
  for (int i = 0; i < n; i++) {
    free(col[i].csv);
    free(col[i].to);
  }
  free(col);
}

// frees the per-file options of spec (nfile entries)
static void free_file_opts(dsoDatasetSpec* spec) {
  for (int f = 0; spec->file_opt && f < spec->nfile; f++) {
    dsoDataFile* o = &spec->file_opt[f];
    free_maps(o->column, o->ncolumn);
    for (int i = 0; i < o->nderived; i++) {
      free_derived(&o->derived[i]);
    }
    free(o->derived);
  }
  free(spec->file_opt);
  spec->file_opt = NULL;
}

void dso_dataset_spec_clear(dsoDatasetSpec* spec) {
  if (!spec) {
    return;
  }
  for (int i = 0; i < spec->nfile; i++) {
    free(spec->file[i]);
  }
  free(spec->file);
  free_maps(spec->column, spec->ncolumn);
  free_file_opts(spec);
  for (int i = 0; i < spec->nderived; i++) {
    free_derived(&spec->derived[i]);
  }
  free(spec->derived);
  dso_dataset_spec_default(spec);
}

void dso_dataset_spec_clear_files(dsoDatasetSpec* spec) {
  if (!spec) {
    return;
  }
  for (int i = 0; i < spec->nfile; i++) {
    free(spec->file[i]);
  }
  free(spec->file);
  free_file_opts(spec);
  spec->file = NULL;
  spec->nfile = 0;
}

dsoStatus dso_dataset_spec_add_file(dsoDatasetSpec* spec, const char* base_dir, const char* path,
                                    dsoError* err) {
  if (!spec || !path || !path[0]) {
    return dso_error(err, DSO_ERR_INPUT, "dataset: empty file name");
  }
  char** grown = (char**)realloc(spec->file, sizeof(char*) * (size_t)(spec->nfile + 1));
  if (!grown) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  spec->file = grown;
  if (spec->file_opt || spec->nfile == 0) {
    dsoDataFile* opt =
        (dsoDataFile*)realloc(spec->file_opt, sizeof(dsoDataFile) * (size_t)(spec->nfile + 1));
    if (!opt) {
      return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    }
    spec->file_opt = opt;
    memset(&opt[spec->nfile], 0, sizeof(dsoDataFile));
    opt[spec->nfile].validation = -1;
  }
  char* full;
  if (path[0] == '/' || !base_dir || !base_dir[0]) {
    full = strdup(path);
  } else {
    size_t nb = strlen(base_dir), np = strlen(path);
    int slash = base_dir[nb - 1] != '/';
    full = (char*)malloc(nb + (size_t)slash + np + 1);
    if (full) {
      memcpy(full, base_dir, nb);
      full[nb] = '/';
      memcpy(full + nb + slash, path, np + 1);
    }
  }
  if (!full) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  spec->file[spec->nfile++] = full;
  return DSO_OK;
}

// appends csv -> to (scale, offset) to the map list (n entries)
static dsoStatus add_map(dsoColumnMap** list, int* n, const char* csv, const char* to,
                         double scale, double offset, dsoError* err) {
  if (!csv || !csv[0]) {
    return dso_error(err, DSO_ERR_INPUT, "dataset column map: empty CSV column name");
  }
  if (!isfinite(scale) || !isfinite(offset) || scale == 0) {
    return dso_error(err, DSO_ERR_INPUT,
                     "dataset column map: \"%s\": scale must be finite and nonzero and offset "
                     "finite, got scale %g, offset %g", csv, scale, offset);
  }
  for (int i = 0; i < *n; i++) {
    if (!strcmp((*list)[i].csv, csv)) {
      return dso_error(err, DSO_ERR_INPUT, "dataset column map: \"%s\" is mapped twice", csv);
    }
  }
  dsoColumnMap* grown = (dsoColumnMap*)realloc(*list, sizeof(dsoColumnMap) * (size_t)(*n + 1));
  if (!grown) {
    return dso_error(err, DSO_ERR_MEMORY, "dataset column map: out of memory");
  }
  *list = grown;
  dsoColumnMap* c = &grown[*n];
  c->csv = strdup(csv);
  c->to = to ? strdup(to) : NULL;
  c->scale = scale;
  c->offset = offset;
  if (!c->csv || (to && !c->to)) {
    free(c->csv);
    free(c->to);
    return dso_error(err, DSO_ERR_MEMORY, "dataset column map: out of memory");
  }
  (*n)++;
  return DSO_OK;
}

// options of file f of spec, or NULL with err when f is out of range
static dsoDataFile* file_options(dsoDatasetSpec* spec, int f, dsoError* err) {
  if (!spec || f < 0 || f >= spec->nfile || !spec->file_opt) {
    dso_error(err, DSO_ERR_INPUT, "dataset: file index %d is out of range (%d files)", f,
              spec ? spec->nfile : 0);
    return NULL;
  }
  return &spec->file_opt[f];
}

dsoStatus dso_dataset_spec_add_file_column(dsoDatasetSpec* spec, int file, const char* csv,
                                           const char* to, double scale, double offset,
                                           dsoError* err) {
  dsoDataFile* o = file_options(spec, file, err);
  if (!o) {
    return DSO_ERR_INPUT;
  }
  return add_map(&o->column, &o->ncolumn, csv, to, scale, offset, err);
}

dsoStatus dso_dataset_spec_add_column(dsoDatasetSpec* spec, const char* csv, const char* to,
                                      double scale, double offset, dsoError* err) {
  if (!spec || !csv || !csv[0]) {
    return dso_error(err, DSO_ERR_INPUT, "dataset column map: empty CSV column name");
  }
  return add_map(&spec->column, &spec->ncolumn, csv, to, scale, offset, err);
}

// ---------------------------------------------------------------------------------------------
// derived columns: linear combinations of CSV columns

static const char* skip_blanks(const char* p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

static int name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '[' || c == ']';
}

// scans a decimal number at p (digits, optional fraction, optional exponent; no sign, no hex,
// no inf or nan) into *v; returns its end, or p when there is none
static const char* scan_number(const char* p, double* v) {
  const char* q = p;
  int digits = 0;
  while (*q >= '0' && *q <= '9') q++, digits++;
  if (*q == '.') {
    q++;
    while (*q >= '0' && *q <= '9') q++, digits++;
  }
  if (!digits) {
    return p;
  }
  if (*q == 'e' || *q == 'E') {
    const char* e = q + 1;
    if (*e == '+' || *e == '-') e++;
    if (*e >= '0' && *e <= '9') {
      while (*e >= '0' && *e <= '9') e++;
      q = e;
    }
  }
  char buf[64];
  size_t n = (size_t)(q - p);
  if (n >= sizeof(buf)) {
    n = sizeof(buf) - 1;  // longer numbers are refused below as out of range
  }
  memcpy(buf, p, n);
  buf[n] = '\0';
  *v = (size_t)(q - p) < sizeof(buf) ? strtod(buf, NULL) : INFINITY;
  return q;
}

// describes the character at p for messages
static void char_text(char* buf, size_t len, const char* p) {
  if (!*p) {
    snprintf(buf, len, "the end");
  } else {
    snprintf(buf, len, "'%c'", *p);
  }
}

// adds coef * name to d (merging a repeated name)
static int derived_add_term(dsoDerivedColumn* d, const char* name, size_t len, double coef) {
  for (int k = 0; k < d->nterm; k++) {
    if (strlen(d->src[k]) == len && !strncmp(d->src[k], name, len)) {
      d->coef[k] += coef;
      return 0;
    }
  }
  char** src = (char**)realloc(d->src, sizeof(char*) * (size_t)(d->nterm + 1));
  if (src) {
    d->src = src;
  }
  double* c = (double*)realloc(d->coef, sizeof(double) * (size_t)(d->nterm + 1));
  if (c) {
    d->coef = c;
  }
  char* copy = (char*)malloc(len + 1);
  if (!src || !c || !copy) {
    free(copy);
    return -1;
  }
  memcpy(copy, name, len);
  copy[len] = '\0';
  d->src[d->nterm] = copy;
  d->coef[d->nterm++] = coef;
  return 0;
}

// parses expr into d (terms and constant); on failure returns DSO_ERR_INPUT with a message that
// gives the 1-based position in expr
static dsoStatus parse_linear(dsoDerivedColumn* d, const char* expr, dsoError* err) {
  const char* p = skip_blanks(expr);
  char got[16];
  if (!*p) {
    return dso_error(err, DSO_ERR_INPUT, "empty expression; expected e.g. \"theta2 - theta1\" "
                     "or \"0.001*counts + 0.1\"");
  }
  for (int first = 1;; first = 0) {
    // a term: optional sign (binary after the first term, unary allowed once), then factors
    double sign = 1;
    if (!first) {
      if (*p != '+' && *p != '-') {
        char_text(got, sizeof(got), p);
        return dso_error(err, DSO_ERR_INPUT, "position %d: expected '+', '-', '*', '/' or the end "
                         "of the expression, got %s", (int)(p - expr) + 1, got);
      }
      sign = *p == '-' ? -1 : 1;
      p = skip_blanks(p + 1);
    }
    if (*p == '+' || *p == '-') {
      sign *= *p == '-' ? -1 : 1;
      p = skip_blanks(p + 1);
    }
    double coef = sign;
    const char* name = NULL;
    size_t nlen = 0;
    for (int divide = 0;;) {
      const char* at = p;
      double v = 0;
      const char* end = scan_number(p, &v);
      if (end != p) {
        if (!isfinite(v)) {
          return dso_error(err, DSO_ERR_INPUT, "position %d: number out of range",
                           (int)(at - expr) + 1);
        }
        if (divide && v == 0) {
          return dso_error(err, DSO_ERR_INPUT, "position %d: division by zero",
                           (int)(at - expr) + 1);
        }
        coef = divide ? coef / v : coef * v;
        p = end;
      } else if (name_start(*p) || *p == '\'') {
        if (divide) {
          return dso_error(err, DSO_ERR_INPUT, "position %d: a column name after '/': only "
                           "numbers may divide (the expression must be linear)",
                           (int)(at - expr) + 1);
        }
        if (name) {
          return dso_error(err, DSO_ERR_INPUT, "position %d: a second column name in one term "
                           "(the expression must be linear: a sum of number * column terms)",
                           (int)(at - expr) + 1);
        }
        if (*p == '\'') {
          const char* close = strchr(p + 1, '\'');
          if (!close) {
            return dso_error(err, DSO_ERR_INPUT, "position %d: unterminated quoted name",
                             (int)(at - expr) + 1);
          }
          if (close == p + 1) {
            return dso_error(err, DSO_ERR_INPUT, "position %d: empty quoted name",
                             (int)(at - expr) + 1);
          }
          name = p + 1;
          nlen = (size_t)(close - p - 1);
          p = close + 1;
        } else {
          name = p;
          while (name_char(*p)) p++;
          nlen = (size_t)(p - name);
        }
      } else {
        char_text(got, sizeof(got), p);
        return dso_error(err, DSO_ERR_INPUT, "position %d: expected a column name or a number, "
                         "got %s", (int)(at - expr) + 1, got);
      }
      p = skip_blanks(p);
      if (*p != '*' && *p != '/') {
        break;
      }
      divide = *p == '/';
      p = skip_blanks(p + 1);
    }
    if (!isfinite(coef)) {
      return dso_error(err, DSO_ERR_INPUT, "position %d: coefficient out of range",
                       (int)(p - expr) + 1);
    }
    if (name) {
      if (derived_add_term(d, name, nlen, coef)) {
        return dso_error(err, DSO_ERR_MEMORY, "out of memory");
      }
    } else {
      d->constant += coef;
    }
    if (!isfinite(d->constant)) {
      return dso_error(err, DSO_ERR_INPUT, "position %d: constant out of range",
                       (int)(p - expr) + 1);
    }
    if (!*p) {
      return DSO_OK;
    }
  }
}

dsoStatus dso_dataset_spec_add_derived(dsoDatasetSpec* spec, int file, const char* to,
                                       const char* expr, dsoError* err) {
  if (!spec || !to || !to[0] || !expr) {
    return dso_error(err, DSO_ERR_INPUT, "derived column: empty %s", !to || !to[0] ? "target name"
                                                                                 : "expression");
  }
  dsoDerivedColumn** list = &spec->derived;
  int* n = &spec->nderived;
  if (file >= 0) {
    dsoDataFile* o = file_options(spec, file, err);
    if (!o) {
      return DSO_ERR_INPUT;
    }
    list = &o->derived;
    n = &o->nderived;
  }
  for (int i = 0; i < *n; i++) {
    if (!strcmp((*list)[i].to, to)) {
      return dso_error(err, DSO_ERR_INPUT, "derived column \"%s\" is given twice", to);
    }
  }
  dsoDerivedColumn d;
  memset(&d, 0, sizeof(d));
  dsoError e = {0};
  if (parse_linear(&d, expr, &e)) {
    free_derived(&d);
    return dso_error(err, e.code, "derived column \"%s\" = \"%s\": %s", to, expr, e.msg);
  }
  d.to = strdup(to);
  d.expr = strdup(expr);
  dsoDerivedColumn* grown =
      (dsoDerivedColumn*)realloc(*list, sizeof(dsoDerivedColumn) * (size_t)(*n + 1));
  if (!d.to || !d.expr || !grown) {
    free_derived(&d);
    return dso_error(err, DSO_ERR_MEMORY, "derived column \"%s\": out of memory", to);
  }
  *list = grown;
  grown[(*n)++] = d;
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// datasets in memory

static double* episode_array(const dsoEpisode* ep, int g) {
  switch (g) {
    case DSO_DATA_QPOS: return ep->qpos;
    case DSO_DATA_QVEL: return ep->qvel;
    case DSO_DATA_CTRL: return ep->ctrl;
    default: return ep->sensordata;
  }
}

static int dataset_size(const dsoDataset* ds, int g) {
  switch (g) {
    case DSO_DATA_QPOS: return ds->nq;
    case DSO_DATA_QVEL: return ds->nv;
    case DSO_DATA_CTRL: return ds->nu;
    default: return ds->nsensordata;
  }
}

static dsoStatus check_sizes(const dsoDataset* ds, const mjModel* m, dsoError* err) {
  if (ds->nq != m->nq || ds->nv != m->nv || ds->nu != m->nu ||
      ds->nsensordata != m->nsensordata) {
    return dso_error(err, DSO_ERR_INPUT,
                     "dataset: made for nq %d, nv %d, nu %d, nsensordata %d; the model has nq %d, "
                     "nv %d, nu %d, nsensordata %d", ds->nq, ds->nv, ds->nu, ds->nsensordata,
                     m->nq, m->nv, m->nu, m->nsensordata);
  }
  return DSO_OK;
}

static void free_episode(dsoEpisode* ep) {
  free(ep->time);
  free(ep->qpos);
  free(ep->qvel);
  free(ep->ctrl);
  free(ep->sensordata);
}

void dso_dataset_free(dsoDataset* ds) {
  if (!ds) {
    return;
  }
  for (int n = 0; n < ds->nepisode; n++) {
    free_episode(&ds->episode[n]);
  }
  for (int i = 0; i < ds->nfile; i++) {
    free(ds->file[i]);
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    free(ds->has[g]);
  }
  free(ds->file);
  free(ds->episode);
  free(ds);
}

dsoStatus dso_dataset_create(dsoDataset** out, const mjModel* m, dsoError* err) {
  if (!out || !m) {
    return dso_error(err, DSO_ERR_INPUT, "dso_dataset_create: no %s", out ? "model" : "output");
  }
  *out = NULL;
  dsoDataset* ds = (dsoDataset*)calloc(1, sizeof(dsoDataset));
  if (!ds) {
    return dso_error(err, DSO_ERR_MEMORY, "dataset: out of memory");
  }
  ds->nq = m->nq;
  ds->nv = m->nv;
  ds->nu = m->nu;
  ds->nsensordata = m->nsensordata;
  for (int g = 0; g < DSO_NDATA; g++) {
    ds->has[g] = (int*)calloc((size_t)group_size(m, g) + 1, sizeof(int));
    if (!ds->has[g]) {
      dso_dataset_free(ds);
      return dso_error(err, DSO_ERR_MEMORY, "dataset: out of memory");
    }
  }
  *out = ds;
  return DSO_OK;
}

int dso_dataset_add_episode(dsoDataset* ds, const mjModel* m, int T, dsoError* err) {
  if (!ds || !m || T < 1) {
    dso_error(err, DSO_ERR_INPUT, "dso_dataset_add_episode: %s", !ds || !m ? "no dataset or model"
                                                                           : "T must be >= 1");
    return -1;
  }
  if (check_sizes(ds, m, err)) {
    return -1;
  }
  if (ds->nepisode == ds->capacity) {
    int cap = ds->capacity ? 2 * ds->capacity : 8;
    dsoEpisode* grown = (dsoEpisode*)realloc(ds->episode, sizeof(dsoEpisode) * (size_t)cap);
    if (!grown) {
      dso_error(err, DSO_ERR_MEMORY, "dataset: out of memory");
      return -1;
    }
    ds->episode = grown;
    ds->capacity = cap;
  }
  dsoEpisode* ep = &ds->episode[ds->nepisode];
  memset(ep, 0, sizeof(*ep));
  size_t t = (size_t)T;
  ep->T = T;
  ep->time = (double*)calloc(t, sizeof(double));
  ep->qpos = (double*)calloc(t * (size_t)m->nq + 1, sizeof(double));
  ep->qvel = (double*)calloc(t * (size_t)m->nv + 1, sizeof(double));
  ep->ctrl = (double*)calloc(t * (size_t)m->nu + 1, sizeof(double));
  ep->sensordata = (double*)calloc(t * (size_t)m->nsensordata + 1, sizeof(double));
  if (!ep->time || !ep->qpos || !ep->qvel || !ep->ctrl || !ep->sensordata) {
    free_episode(ep);
    dso_error(err, DSO_ERR_MEMORY, "dataset: out of memory for an episode of %d samples", T);
    return -1;
  }
  for (int k = 0; k < T; k++) {
    memcpy(ep->qpos + (size_t)k * m->nq, m->qpos0, sizeof(double) * (size_t)m->nq);
  }
  ep->id = ds->nepisode;
  ep->file = -1;
  return ds->nepisode++;
}

int dso_dataset_nepisode(const dsoDataset* ds) {
  return ds ? ds->nepisode : 0;
}

int dso_dataset_nvalidation(const dsoDataset* ds) {
  int n = 0;
  for (int i = 0; ds && i < ds->nepisode; i++) {
    n += ds->episode[i].validation != 0;
  }
  return n;
}

long dso_dataset_nsample(const dsoDataset* ds) {
  long n = 0;
  for (int i = 0; ds && i < ds->nepisode; i++) {
    n += ds->episode[i].T;
  }
  return n;
}

const dsoEpisode* dso_dataset_episode(const dsoDataset* ds, int n) {
  return ds && n >= 0 && n < ds->nepisode ? &ds->episode[n] : NULL;
}

dsoStatus dso_dataset_episode_qvel(double* qvel, double* work, const mjModel* m,
                                   const dsoDataset* ds, int n, dsoError* err) {
  const dsoEpisode* ep = dso_dataset_episode(ds, n);
  if (!ep || !m || !qvel || !work) {
    return dso_error(err, DSO_ERR_INPUT, "dso_dataset_episode_qvel: episode %d of %d, or no "
                     "model or output", n, dso_dataset_nepisode(ds));
  }
  if (check_sizes(ds, m, err)) {
    return err->code;
  }
  if (!(ds->dt > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "dataset: velocities need a resampled dataset (a fixed "
                     "sample spacing), got spacing %g", ds->dt);
  }
  int nq = m->nq, nv = m->nv, T = ep->T;
  int any_qpos = 0;
  for (int i = 0; i < nq; i++) {
    any_qpos |= ds->has[DSO_DATA_QPOS][i];
  }
  for (int t = 0; t < T; t++) {
    double* out = qvel + (size_t)t * nv;
    for (int i = 0; i < nv; i++) {
      out[i] = 0;
    }
    if (any_qpos && T >= 2) {
      int a = t > 0 ? t - 1 : 0, b = t < T - 1 ? t + 1 : T - 1;
      if (m->opt.integrator != mjINT_RK4 && t > 0) {
        b = t;  // backward: exact for the Euler and implicit position update q' = q + h v'
      }
      mj_differentiatePos(m, work, (b - a) * ds->dt, ep->qpos + (size_t)a * nq,
                          ep->qpos + (size_t)b * nq);
      for (int i = 0; i < nv; i++) {
        out[i] = work[i];
      }
    }
    const double* rec = ep->qvel + (size_t)t * nv;
    for (int i = 0; i < nv; i++) {
      if (ds->has[DSO_DATA_QVEL][i]) {
        out[i] = rec[i];
      }
    }
  }
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// reading CSV

// one header field
typedef struct {
  const char* name;   // as in the header (points into the file text)
  int kind;           // dsoDataGroup or DSO_COL_*
  int index;          // entry within the group
  int slot;           // position in a parsed row; -1 for ignored columns
  int raw;            // position of the raw value when a derived column uses it; else -1
  double scale, offset;
} dsoCsvColumn;

// one derived column of a file
typedef struct {
  const dsoDerivedColumn* d;
  int kind, index;    // dataset entry it gives
  int slot;           // position in a parsed row
  int* raw;           // (d->nterm) positions of the source columns' raw values
} dsoCsvDerived;

// one file, parsed
typedef struct {
  const char* path;
  int ncol;
  dsoCsvColumn* col;   // (ncol)
  int width;           // doubles per parsed row: time, episode, validation, values
  int nrow;
  double* row;         // (nrow x width)
  int* line;           // (nrow) line number of each row
  int has_episode;
  int first_line;      // first line after the header
  int nder;
  dsoCsvDerived* der;  // (nder)
} dsoCsvTable;

static void free_table(dsoCsvTable* t) {
  for (int i = 0; i < t->nder; i++) {
    free(t->der[i].raw);
  }
  free(t->der);
  free(t->col);
  free(t->row);
  free(t->line);
}

static int blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// copies the cell starting at p (up to ',' or eol) into buf for messages
static void cell_text(char* buf, size_t len, const char* p, const char* eol) {
  while (p < eol && (*p == ' ' || *p == '\t')) p++;
  size_t n = 0;
  while (p + n < eol && p[n] != ',' && p[n] != '\r' && n + 1 < len) n++;
  memcpy(buf, p, n);
  buf[n] = '\0';
}

static const char* line_end(const char* p) {
  const char* e = strchr(p, '\n');
  return e ? e : p + strlen(p);
}

// resolves the header fields (split in place) against m and the column map
// index of the header column called name, or -1
static int find_column(const dsoCsvTable* t, const char* name) {
  for (int c = 0; c < t->ncol; c++) {
    if (t->col[c].name && !strcmp(t->col[c].name, name)) {
      return c;
    }
  }
  return -1;
}

// 1 when a derived column of the file (fo, may be NULL) or of spec uses CSV column name
static int derived_source(const dsoDatasetSpec* spec, const dsoDataFile* fo, const char* name) {
  for (int level = 0; level < 2; level++) {
    int n = level ? spec->nderived : fo ? fo->nderived : 0;
    const dsoDerivedColumn* list = level ? spec->derived : fo ? fo->derived : NULL;
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < list[i].nterm; k++) {
        if (!strcmp(list[i].src[k], name)) {
          return 1;
        }
      }
    }
  }
  return 0;
}

// resolves the derived columns of the file (fo, may be NULL; they replace data-level ones with
// the same target) and of spec after the header: slots for their values and raw sources
static dsoStatus read_derived(dsoCsvTable* t, int line, const mjModel* m,
                              const dsoDatasetSpec* spec, const dsoDataFile* fo, int* owner,
                              dsoError* err) {
  int nf = fo ? fo->nderived : 0;
  t->der = (dsoCsvDerived*)calloc((size_t)(nf + spec->nderived) + 1, sizeof(dsoCsvDerived));
  if (!t->der) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
  }
  for (int i = 0; i < nf + spec->nderived; i++) {
    const dsoDerivedColumn* d = i < nf ? &fo->derived[i] : &spec->derived[i - nf];
    int replaced = 0;
    for (int j = 0; i >= nf && j < nf; j++) {
      replaced |= !strcmp(fo->derived[j].to, d->to);
    }
    if (replaced) {
      continue;
    }
    dsoCsvDerived* dv = &t->der[t->nder++];
    dv->d = d;
    dv->raw = (int*)calloc((size_t)d->nterm + 1, sizeof(int));
    if (!dv->raw) {
      return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
    }
    char why[DSO_ERROR_LEN - 128];
    if (resolve_column(&dv->kind, &dv->index, m, d->to, why, sizeof(why))) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived column: %s", t->path, line, why);
    }
    if (dv->kind >= DSO_NDATA) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived column \"%s\": only qpos, qvel, ctrl "
                       "and sensor columns may be derived", t->path, line, d->to);
    }
    int flat = DSO_NSLOT_SPECIAL + dv->index;
    for (int g = 0; g < dv->kind; g++) {
      flat += group_size(m, g);
    }
    if (owner[flat] >= 0) {
      int o = owner[flat];
      if (o < t->ncol) {
        return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived column \"%s\" duplicates column %d "
                         "(\"%s\"), which already gives it", t->path, line, d->to, o + 1,
                         t->col[o].name);
      }
      return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived columns \"%s\" and \"%s\" give the "
                       "same entry", t->path, line, t->der[o - t->ncol].d->to, d->to);
    }
    owner[flat] = t->ncol + (t->nder - 1);
    dv->slot = t->width++;
    for (int k = 0; k < d->nterm; k++) {
      int c = find_column(t, d->src[k]);
      if (c < 0) {
        return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived column \"%s\" = \"%s\": the header "
                         "has no column \"%s\"", t->path, line, d->to, d->expr, d->src[k]);
      }
      if (t->col[c].raw < 0) {
        t->col[c].raw = t->width++;
      }
      dv->raw[k] = t->col[c].raw;
    }
  }
  return DSO_OK;
}

// resolves the header fields (split in place) against m and the column maps of the file (fo, may
// be NULL; fused marks its entries used) and of spec (used)
static dsoStatus read_header(dsoCsvTable* t, char* head, int line, const mjModel* m,
                             const dsoDatasetSpec* spec, const dsoDataFile* fo, int* fused,
                             int* used, int* owner, dsoError* err) {
  int ncol = 1;
  for (const char* p = head; *p; p++) {
    ncol += *p == ',';
  }
  t->col = (dsoCsvColumn*)calloc((size_t)ncol, sizeof(dsoCsvColumn));
  if (!t->col) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
  }
  t->ncol = ncol;
  t->width = DSO_NSLOT_SPECIAL;
  char* p = head;
  for (int c = 0; c < ncol; c++) {
    char* end = strchr(p, ',');
    char* next = end ? end + 1 : p + strlen(p);
    if (!end) {
      end = p + strlen(p);
    }
    while (p < end && blank(*p)) p++;
    while (end > p && blank(end[-1])) end--;
    *end = '\0';
    dsoCsvColumn* col = &t->col[c];
    col->name = p;
    col->scale = 1;
    col->raw = -1;
    if (!p[0]) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: empty column name in the header", t->path,
                       line, c + 1);
    }
    if (c == 0) {
      char* num_end = NULL;
      strtod(p, &num_end);
      if (num_end == end) {
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: no header: the first line holds numbers; expected column names "
                         "(time, qpos.<joint>, qvel.<joint>, ctrl.<actuator>, sensor.<sensor>)",
                         t->path, line);
      }
    }
    for (int b = 0; b < c; b++) {
      if (!strcmp(t->col[b].name, p)) {
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d:%d: duplicate column \"%s\" (also column %d)", t->path, line, c + 1,
                         p, b + 1);
      }
    }
    const char* target = p;
    int map = -1;
    const dsoColumnMap* entry = NULL;
    for (int i = 0; fo && i < fo->ncolumn && !entry; i++) {
      if (!strcmp(fo->column[i].csv, p)) {
        fused[i] = 1;
        entry = &fo->column[i];
        map = spec->ncolumn + i;
      }
    }
    for (int i = 0; i < spec->ncolumn && map < 0; i++) {
      map = strcmp(spec->column[i].csv, p) ? -1 : i;
    }
    if (map >= 0 && !entry) {
      used[map] = 1;
      entry = &spec->column[map];
    }
    if (entry) {
      target = entry->to;
      col->scale = entry->scale;
      col->offset = entry->offset;
    }
    p = next;
    if (!target || (map < 0 && derived_source(spec, fo, target) &&
                    resolve_column(&col->kind, &col->index, m, target, NULL, 0))) {
      // ignored, or an unmapped column that only derived columns use
      col->kind = DSO_COL_IGNORE;
      col->slot = -1;
      continue;
    }
    char why[DSO_ERROR_LEN - 64];
    if (resolve_column(&col->kind, &col->index, m, target, why, sizeof(why))) {
      if (map >= 0) {
        return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\" is mapped to \"%s\": %s",
                         t->path, line, c + 1, col->name, target, why);
      }
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: %s (or map it in the dataset's "
                       "\"columns\", e.g. to \"ignore\")", t->path, line, c + 1, why);
    }
    // flat entry: the 3 special columns, then the groups in order
    int flat = col->kind >= DSO_NDATA ? col->kind - DSO_NDATA : DSO_NSLOT_SPECIAL + col->index;
    for (int g = 0; g < col->kind && col->kind < DSO_NDATA; g++) {
      flat += group_size(m, g);
    }
    if (owner[flat] >= 0) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s:%d:%d: duplicate column: \"%s\" gives %s, which column %d (\"%s\") "
                       "already gives", t->path, line, c + 1, col->name, target, owner[flat] + 1,
                       t->col[owner[flat]].name);
    }
    owner[flat] = c;
    col->slot = col->kind >= DSO_NDATA ? col->kind - DSO_NDATA : t->width++;
  }
  if (owner[DSO_SLOT_TIME] < 0) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s:%d: no \"time\" column; name one \"time\" or map one in the dataset's "
                     "\"columns\" (e.g. \"t_s\": \"time\")", t->path, line);
  }
  t->has_episode = owner[DSO_SLOT_EPISODE] >= 0;
  return read_derived(t, line, m, spec, fo, owner, err);
}

// parses one data line [p, eol) into row
static dsoStatus parse_row(double* row, const dsoCsvTable* t, const char* p, const char* eol,
                           int line, dsoError* err) {
  const char* q = p;
  row[DSO_SLOT_EPISODE] = 0;
  row[DSO_SLOT_VALIDATION] = 0;
  for (int c = 0; c < t->ncol; c++) {
    if (c > 0) {
      if (q >= eol) {
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: wrong number of fields: %d, expected %d as in the header",
                         t->path, line, c, t->ncol);
      }
      q++;  // the ','
    }
    const dsoCsvColumn* col = &t->col[c];
    const char* start = q;
    if (col->slot < 0 && col->raw < 0) {
      while (q < eol && *q != ',') q++;
      continue;
    }
    while (q < eol && (*q == ' ' || *q == '\t')) q++;
    char* end = (char*)q;
    double v = 0;
    if (q < eol && *q != ',' && *q != '\r') {
      v = strtod(q, &end);
    }
    const char* after = end;
    while (after < eol && blank(*after)) after++;
    if (end == q || end > eol || (after < eol && *after != ',')) {
      char cell[32];
      cell_text(cell, sizeof(cell), start, eol);
      if (!cell[0]) {
        return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": empty cell, expected a "
                         "number", t->path, line, c + 1, col->name);
      }
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": \"%s\" is not a number",
                       t->path, line, c + 1, col->name, cell);
    }
    q = after;
    if (col->raw >= 0) {
      row[col->raw] = v;
    }
    if (col->slot < 0) {
      if (!isfinite(v)) {
        return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": %g is not a finite "
                         "number", t->path, line, c + 1, col->name, v);
      }
      continue;
    }
    double x = col->scale * v + col->offset;
    if (!isfinite(v) || !isfinite(x)) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": %g is not a finite number",
                       t->path, line, c + 1, col->name, isfinite(v) ? x : v);
    }
    if (col->kind == DSO_COL_EPISODE && (x != floor(x) || fabs(x) > 9007199254740992.0)) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": episode %.15g is not an "
                       "integer", t->path, line, c + 1, col->name, x);
    }
    if (col->kind == DSO_COL_VALIDATION && x != 0 && x != 1) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d:%d: column \"%s\": validation must be 0 or 1, "
                       "got %.15g", t->path, line, c + 1, col->name, x);
    }
    row[col->slot] = x;
  }
  if (q < eol) {
    int n = t->ncol;
    for (; q < eol; q++) {
      n += *q == ',';
    }
    return dso_error(err, DSO_ERR_INPUT,
                     "%s:%d: wrong number of fields: %d, expected %d as in the header", t->path,
                     line, n, t->ncol);
  }
  for (int i = 0; i < t->nder; i++) {
    const dsoCsvDerived* dv = &t->der[i];
    double x = dv->d->constant;
    for (int k = 0; k < dv->d->nterm; k++) {
      x += dv->d->coef[k] * row[dv->raw[k]];
    }
    if (!isfinite(x)) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d: derived column \"%s\" = \"%s\" is not finite "
                       "(%g)", t->path, line, dv->d->to, dv->d->expr, x);
    }
    row[dv->slot] = x;
  }
  return DSO_OK;
}

static dsoStatus parse_rows(dsoCsvTable* t, char* p, int line, dsoError* err) {
  size_t bound = 1;
  for (const char* s = p; (s = strchr(s, '\n')); s++) {
    bound++;
  }
  t->row = (double*)malloc(sizeof(double) * bound * (size_t)t->width);
  t->line = (int*)malloc(sizeof(int) * bound);
  if (!t->row || !t->line) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
  }
  t->first_line = line;
  for (; *p; line++) {
    const char* eol = line_end(p);
    const char* s = p;
    while (s < eol && blank(*s)) s++;
    if (s < eol) {
      // end the line's string at its end, so that strtod never scans the rest of the file
      char* cut = (char*)eol;
      char saved = *cut;
      *cut = '\0';
      dsoStatus st = parse_row(t->row + (size_t)t->nrow * t->width, t, p, eol, line, err);
      *cut = saved;
      if (st) {
        return st;
      }
      t->line[t->nrow++] = line;
    }
    p = *eol ? (char*)eol + 1 : (char*)eol;
  }
  return DSO_OK;
}

// normalizes the interpolated quaternions of ball and free joints in one qpos row (nq) when
// their four entries are all recorded
static void normalize_quaternions(double* qpos, const int* has, const mjModel* m) {
  for (int j = 0; j < m->njnt; j++) {
    int type = m->jnt_type[j];
    int adr = m->jnt_qposadr[j] + (type == mjJNT_FREE ? 3 : 0);
    if ((type != mjJNT_FREE && type != mjJNT_BALL) ||
        !(has[adr] && has[adr + 1] && has[adr + 2] && has[adr + 3])) {
      continue;
    }
    double* quat = qpos + adr;
    double norm = sqrt(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] +
                       quat[3] * quat[3]);
    for (int i = 0; i < 4 && norm > 0; i++) {
      quat[i] /= norm;
    }
  }
}

// width of the low-pass before resampling (1: none) for the n rows of w doubles at rows (time
// first) and grid spacing h (dataset.h: decimation)
static int decimate_width(const dsoDatasetSpec* spec, const double* rows, int n, int w,
                          double h) {
  if (spec->decimate >= 1) {
    return spec->decimate;
  }
  if (!spec->resample || n < 2) {
    return 1;
  }
  double mean = (rows[(size_t)(n - 1) * w] - rows[0]) / (n - 1);
  double r = h / mean;
  double k = floor(r + 0.5);
  if (!(k >= 2 && k <= 1e6 && fabs(r - k) <= 0.01 * k)) {
    return 1;
  }
  // uniform spacing only: the kernel weighs samples, not time
  for (int i = 1; i < n; i++) {
    if (fabs(rows[(size_t)i * w] - rows[(size_t)(i - 1) * w] - mean) > 0.01 * mean) {
      return 1;
    }
  }
  return (int)k;
}

// zero-phase triangular low-pass of width k (weights k - |j|, |j| < k, the half-width shrinking
// symmetrically at the ends) of the value slots of n rows of w doubles, in into out; the special
// slots (time, episode, validation) are copied
static void lowpass_rows(double* out, const double* in, int n, int w, int k) {
  for (int i = 0; i < n; i++) {
    int hw = k - 1;
    hw = hw < i ? hw : i;
    hw = hw < n - 1 - i ? hw : n - 1 - i;
    double* o = out + (size_t)i * w;
    memcpy(o, in + (size_t)i * w, sizeof(double) * DSO_NSLOT_SPECIAL);
    for (int c = DSO_NSLOT_SPECIAL; c < w; c++) {
      o[c] = 0;
    }
    double wsum = 0;
    for (int j = -hw; j <= hw; j++) {
      double wt = k - (j < 0 ? -j : j);
      const double* r = in + (size_t)(i + j) * w;
      wsum += wt;
      for (int c = DSO_NSLOT_SPECIAL; c < w; c++) {
        o[c] += wt * r[c];
      }
    }
    for (int c = DSO_NSLOT_SPECIAL; c < w; c++) {
      o[c] /= wsum;
    }
  }
}

// stores rows [r0, r1) of t as an episode of ds: window, low-pass, resampling or stride
static dsoStatus store_episode(dsoDataset* ds, const mjModel* m, const dsoDatasetSpec* spec,
                               const dsoCsvTable* t, int r0, int r1, int file, dsoError* err) {
  const int w = t->width;
  const double* row = t->row;
  double first = row[(size_t)r0 * w];
  long id = t->has_episode ? (long)row[(size_t)r0 * w + DSO_SLOT_EPISODE] : ds->nepisode;
  int a = r0, b = r1 - 1;
  while (a <= b && row[(size_t)a * w] - first < spec->window[0]) a++;
  while (b >= a && row[(size_t)b * w] - first > spec->window[1]) b--;
  int n = b - a + 1;
  if (n < 2) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s:%d: episode %ld keeps %d sample%s inside the window [%g, %g] s; an "
                     "episode needs at least 2", t->path, t->line[r0], id, n, n == 1 ? "" : "s",
                     spec->window[0], spec->window[1]);
  }
  double ta = row[(size_t)a * w], tb = row[(size_t)b * w];
  double h = spec->stride * m->opt.timestep;
  int dk = decimate_width(spec, row + (size_t)a * w, n, w, h);
  int K = (n - 1) / (spec->stride * dk) + 1;
  if (spec->resample) {
    double span = (tb - ta) / h;
    double bytes = (span + 1) * 8.0 * (1 + m->nq + m->nv + m->nu + m->nsensordata);
    if (bytes > DSO_EPISODE_MAX_BYTES) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s:%d: episode %ld spans %g s: resampled every %g s it would take %.3g "
                       "GiB; is the time column in seconds?", t->path, t->line[r0], id, tb - ta,
                       h, bytes / DSO_EPISODE_MAX_BYTES);
    }
    K = (int)floor(span + 1e-6) + 1;
  }
  if (K < 2 && spec->resample) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s:%d: episode %ld spans %g s, less than one sample spacing (%g s = stride "
                     "%d x timestep): it would keep 1 sample; an episode needs at least 2",
                     t->path, t->line[r0], id, tb - ta, h, spec->stride);
  }
  if (K < 2) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s:%d: episode %ld has %d samples: with stride %d and decimate %d it "
                     "would keep 1; an episode needs at least 2", t->path, t->line[r0], id, n,
                     spec->stride, dk);
  }
  // rows [a, b], low-passed when decimating
  double* filt = dk > 1 ? (double*)malloc(sizeof(double) * (size_t)n * w) : NULL;
  if (dk > 1 && !filt) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
  }
  if (filt) {
    lowpass_rows(filt, row + (size_t)a * w, n, w, dk);
  }
  const double* src = filt ? filt : row + (size_t)a * w;
  int idx = dso_dataset_add_episode(ds, m, K, err);
  if (idx < 0) {
    free(filt);
    return err->code;
  }
  dsoEpisode* ep = &ds->episode[idx];
  ep->id = id;
  ep->file = file;
  ep->line = t->line[r0];
  ep->decimate = dk;
  const dsoDataFile* fo = spec->file_opt && file >= 0 ? &spec->file_opt[file] : NULL;
  ep->validation = fo && fo->validation >= 0 ? fo->validation
                                             : row[(size_t)r0 * w + DSO_SLOT_VALIDATION] != 0;
  int j = 0;  // resampling: the segment [j, j+1] of src that holds tau
  for (int k = 0; k < K; k++) {
    const double *lo, *hi;
    double wt = 0;
    if (spec->resample) {
      double tau = ta + k * h;
      while (j + 2 <= n - 1 && src[(size_t)(j + 1) * w] <= tau) j++;
      lo = src + (size_t)j * w;
      hi = lo + w;
      wt = (tau - lo[0]) / (hi[0] - lo[0]);
      ep->time[k] = tau;
      if (k > 0 && !(tau > ep->time[k - 1])) {
        // far from 0 the grid spacing falls below the resolution of a double
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: episode %ld: times near %.17g s cannot be resampled every %g s "
                         "(neighbouring samples round to the same time); shift the time column, "
                         "e.g. with a column map offset", t->path, t->line[r0], id, tau, h);
      }
    } else {
      lo = hi = src + (size_t)k * spec->stride * dk * w;
      ep->time[k] = lo[0];
    }
    for (int c = 0; c < t->ncol; c++) {
      const dsoCsvColumn* col = &t->col[c];
      if (col->kind < 0 || col->kind >= DSO_NDATA) {
        continue;
      }
      int s = col->slot;
      double* dst = episode_array(ep, col->kind) + (size_t)k * dataset_size(ds, col->kind);
      // (1-w) lo + w hi is exact at both ends
      dst[col->index] = (1 - wt) * lo[s] + wt * hi[s];
    }
    for (int i = 0; i < t->nder; i++) {
      const dsoCsvDerived* dv = &t->der[i];
      double* dst = episode_array(ep, dv->kind) + (size_t)k * dataset_size(ds, dv->kind);
      dst[dv->index] = (1 - wt) * lo[dv->slot] + wt * hi[dv->slot];
    }
    if ((wt > 0 && wt < 1) || dk > 1) {
      normalize_quaternions(ep->qpos + (size_t)k * m->nq, ds->has[DSO_DATA_QPOS], m);
    }
  }
  free(filt);
  return DSO_OK;
}

// checks the rows of t and cuts them into episodes
static dsoStatus split_episodes(dsoDataset* ds, const mjModel* m, const dsoDatasetSpec* spec,
                                const dsoCsvTable* t, int file, dsoError* err) {
  const int w = t->width;
  const double* row = t->row;
  if (t->nrow == 0) {
    return dso_error(err, DSO_ERR_INPUT, "%s:%d: no data rows after the header", t->path,
                     t->first_line - 1);
  }
  int r0 = 0;
  for (int r = 1; r <= t->nrow; r++) {
    if (spec->max_episodes && ds->nepisode >= spec->max_episodes) {
      return DSO_OK;
    }
    const double* cur = row + (size_t)r * w;
    const double* prev = cur - w;
    const double* start = row + (size_t)r0 * w;
    if (r < t->nrow && (!t->has_episode || cur[DSO_SLOT_EPISODE] == start[DSO_SLOT_EPISODE])) {
      if (!(cur[DSO_SLOT_TIME] > prev[DSO_SLOT_TIME])) {
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: time %.15g is not after %.15g on line %d: time must increase "
                         "strictly inside an episode", t->path, t->line[r], cur[DSO_SLOT_TIME],
                         prev[DSO_SLOT_TIME], t->line[r - 1]);
      }
      if (cur[DSO_SLOT_VALIDATION] != start[DSO_SLOT_VALIDATION]) {
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: validation changes from %g to %g inside an episode (it starts "
                         "on line %d)", t->path, t->line[r], start[DSO_SLOT_VALIDATION],
                         cur[DSO_SLOT_VALIDATION], t->line[r0]);
      }
      continue;
    }
    if (r - r0 < 2) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s:%d: episode %ld has 1 sample; an episode needs at least 2", t->path,
                       t->line[r0], (long)start[DSO_SLOT_EPISODE]);
    }
    if (store_episode(ds, m, spec, t, r0, r, file, err)) {
      return err->code;
    }
    r0 = r;
  }
  return DSO_OK;
}

// compares the entries a file gives with those of the files before it
static dsoStatus check_masks(dsoDataset* ds, const mjModel* m, const int* owner, int file,
                             int line, dsoError* err) {
  int flat = DSO_NSLOT_SPECIAL;
  for (int g = 0; g < DSO_NDATA; g++) {
    for (int i = 0; i < dataset_size(ds, g); i++, flat++) {
      int has = owner[flat] >= 0;
      if (file == 0) {
        ds->has[g][i] = has;
      } else if (has != ds->has[g][i]) {
        char name[300];
        dso_dataset_column_name(name, sizeof(name), m, g, i);
        return dso_error(err, DSO_ERR_INPUT,
                         "%s:%d: %s column %s, which %s %s; every file of a dataset must give the "
                         "same entries", ds->file[file], line, has ? "has a" : "has no", name,
                         ds->file[0], has ? "lacks" : "has");
      }
    }
  }
  return DSO_OK;
}

// every entry of a file's own column map (fo, may be NULL) must name a column of the file
static dsoStatus check_file_map(const dsoDataFile* fo, const int* fused, const char* path,
                                int line, dsoError* err) {
  for (int i = 0; fo && i < fo->ncolumn; i++) {
    if (!fused[i]) {
      return dso_error(err, DSO_ERR_INPUT, "%s:%d: the file's own column map names \"%s\", which "
                       "is not a column of its header", path, line, fo->column[i].csv);
    }
  }
  return DSO_OK;
}

static int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// Largest accepted ratio of a file's median time step to the model timestep. Time in
// milliseconds gives a ratio of about 1000 x (sample period / timestep), i.e. 1000 or more.
#define DSO_TIME_STEP_MAX_RATIO 500.0

// the time column must be in seconds: the median step between consecutive samples of an episode
// may not exceed DSO_TIME_STEP_MAX_RATIO model timesteps (time in ms or us is refused here, before
// resampling would spread each step over a thousand timesteps)
static dsoStatus check_time_step(const dsoCsvTable* t, const mjModel* m, dsoError* err) {
  double* step = (double*)malloc(sizeof(double) * ((size_t)t->nrow + 1));
  if (!step) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", t->path);
  }
  int n = 0, w = t->width;
  for (int r = 1; r < t->nrow; r++) {
    const double* cur = t->row + (size_t)r * w;
    const double* prev = cur - w;
    double dt = cur[DSO_SLOT_TIME] - prev[DSO_SLOT_TIME];
    if (dt > 0 && (!t->has_episode || cur[DSO_SLOT_EPISODE] == prev[DSO_SLOT_EPISODE])) {
      step[n++] = dt;
    }
  }
  double median = 0;
  if (n > 0) {
    qsort(step, (size_t)n, sizeof(double), compare_doubles);
    median = n % 2 ? step[n / 2] : 0.5 * (step[n / 2 - 1] + step[n / 2]);
  }
  free(step);
  double h = m->opt.timestep, ratio = median / h;
  if (n == 0 || !(h > 0) || ratio <= DSO_TIME_STEP_MAX_RATIO) {
    return DSO_OK;
  }
  const char* name = "time";
  for (int c = 0; c < t->ncol; c++) {
    if (t->col[c].slot == DSO_SLOT_TIME) {
      name = t->col[c].name;
    }
  }
  const char* hint = "is the time column in seconds?";
  if (ratio >= 300 && ratio < 3e5) {
    hint = "is the time column in milliseconds? dso reads seconds: map it with "
           "{\"to\": \"time\", \"scale\": 0.001}";
  } else if (ratio >= 3e5 && ratio < 3e8) {
    hint = "is the time column in microseconds? dso reads seconds: map it with "
           "{\"to\": \"time\", \"scale\": 1e-6}";
  }
  return dso_error(err, DSO_ERR_INPUT,
                   "%s: column \"%s\" (time): consecutive samples are %g apart (median step), "
                   "%.4g x the model timestep %g s, more than the %g x accepted; %s", t->path,
                   name, median, ratio, h, DSO_TIME_STEP_MAX_RATIO, hint);
}

static dsoStatus read_file(dsoDataset* ds, const mjModel* m, const dsoDatasetSpec* spec,
                           int file, int* used, dsoError* err) {
  const char* path = ds->file[file];
  long limit = spec->max_bytes < DSO_DATASET_MAX_BYTES ? spec->max_bytes : DSO_DATASET_MAX_BYTES;
  // a regular file within the limit (a folder or a FIFO is refused without blocking)
  if (dso_check_input(path, limit, NULL, "a CSV file", err)) {
    return err->code;
  }
  char* text = dso_read_text_file(path, err);
  if (!text) {
    return err->code;
  }
  dsoCsvTable t;
  memset(&t, 0, sizeof(t));
  t.path = path;
  int nflat = DSO_NSLOT_SPECIAL + m->nq + m->nv + m->nu + m->nsensordata;
  int* owner = (int*)malloc(sizeof(int) * (size_t)nflat);
  if (!owner) {
    free(text);
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  for (int i = 0; i < nflat; i++) {
    owner[i] = -1;
  }
  char* p = text;
  int line = 1;
  if (!strncmp(p, "\xEF\xBB\xBF", 3)) {
    p += 3;  // utf-8 byte order mark
  }
  // the header is the first line that is not blank
  char* eol = (char*)line_end(p);
  char* s = p;
  for (;;) {
    while (s < eol && blank(*s)) s++;
    if (s < eol || !*eol) {
      break;
    }
    p = s = eol + 1;
    eol = (char*)line_end(p);
    line++;
  }
  if (s == eol) {
    dso_error(err, DSO_ERR_INPUT, "%s:%d: no header: the file holds only blank lines", path,
              line);
  } else {
    char* body = *eol ? eol + 1 : eol;
    *eol = '\0';
    const dsoDataFile* fo = spec->file_opt ? &spec->file_opt[file] : NULL;
    int* fused = (int*)calloc((size_t)(fo ? fo->ncolumn : 0) + 1, sizeof(int));
    if (!fused) {
      dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    } else if (!read_header(&t, p, line, m, spec, fo, fused, used, owner, err) &&
               !check_file_map(fo, fused, path, line, err) &&
               !check_masks(ds, m, owner, file, line, err) &&
               !parse_rows(&t, body, line + 1, err) &&
               !check_time_step(&t, m, err)) {
      split_episodes(ds, m, spec, &t, file, err);
    }
    free(fused);
  }
  free_table(&t);
  free(owner);
  free(text);
  return err->code;
}

dsoStatus dso_dataset_load(dsoDataset** out, const mjModel* m, const dsoDatasetSpec* spec,
                           dsoError* err) {
  dsoError e = {0};
  if (!out || !m || !spec) {
    return dso_error(err, DSO_ERR_INPUT, "dso_dataset_load: no %s",
                     !out ? "output" : !m ? "model" : "spec");
  }
  *out = NULL;
  if (spec->nfile < 1) {
    return dso_error(err, DSO_ERR_INPUT, "dataset: no files to read");
  }
  if (spec->decimate < 0) {
    return dso_error(err, DSO_ERR_INPUT, "dataset: bad settings: decimate %d (DSO_DECIMATE_AUTO "
                     "or a width >= 1)", spec->decimate);
  }
  if (spec->stride < 1 || spec->max_episodes < 0 || !(spec->window[0] >= 0) ||
      !(spec->window[1] > spec->window[0]) || spec->max_bytes < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "dataset: bad settings: stride %d (>= 1), max_episodes %d (>= 0), window "
                     "[%g, %g] (0 <= start < end), max_bytes %ld (>= 1)", spec->stride,
                     spec->max_episodes, spec->window[0], spec->window[1], spec->max_bytes);
  }
  if (spec->resample && !(m->opt.timestep > 0)) {
    return dso_error(err, DSO_ERR_INPUT, "dataset: cannot resample: model timestep is %g",
                     m->opt.timestep);
  }
  dsoDataset* ds = NULL;
  int* used = (int*)calloc((size_t)spec->ncolumn + 1, sizeof(int));
  if (!used || dso_dataset_create(&ds, m, &e)) {
    free(used);
    return dso_error(err, e.code ? e.code : DSO_ERR_MEMORY, "%s",
                     e.code ? e.msg : "dataset: out of memory");
  }
  ds->file = (char**)calloc((size_t)spec->nfile, sizeof(char*));
  if (!ds->file) {
    dso_error(&e, DSO_ERR_MEMORY, "dataset: out of memory");
  }
  for (int f = 0; f < spec->nfile && !e.code; f++) {
    ds->file[f] = strdup(spec->file[f]);
    ds->nfile += ds->file[f] != NULL;
    if (!ds->file[f]) {
      dso_error(&e, DSO_ERR_MEMORY, "dataset: out of memory");
    }
  }
  int nread = 0;
  while (!e.code && nread < spec->nfile &&
         !(spec->max_episodes && ds->nepisode >= spec->max_episodes)) {
    read_file(ds, m, spec, nread++, used, &e);
  }
  for (int i = 0; i < spec->ncolumn && !e.code && nread == spec->nfile; i++) {
    if (!used[i]) {
      dso_error(&e, DSO_ERR_INPUT,
                "dataset: the column map names \"%s\", which no file has as a column (files: %s%s)",
                spec->column[i].csv, ds->file[0], spec->nfile > 1 ? ", ..." : "");
    }
  }
  free(used);
  if (e.code) {
    dso_dataset_free(ds);
    return dso_error(err, e.code, "%s", e.msg);
  }
  ds->dt = spec->resample ? spec->stride * m->opt.timestep : 0;
  *out = ds;
  return DSO_OK;
}

dsoStatus dso_dataset_read_csv(dsoDataset** out, const mjModel* m, const char* path,
                               const dsoDatasetSpec* spec, dsoError* err) {
  dsoDatasetSpec one;
  if (spec) {
    one = *spec;
  } else {
    dso_dataset_spec_default(&one);
  }
  char* file = (char*)path;
  one.nfile = path ? 1 : 0;
  one.file = &file;
  one.file_opt = NULL;
  return dso_dataset_load(out, m, &one, err);
}

// ---------------------------------------------------------------------------------------------
// writing CSV

dsoStatus dso_dataset_write_csv(const char* path, const dsoDataset* ds, const mjModel* m,
                                dsoError* err) {
  dsoError e = {0};
  if (!ds || !m) {
    return dso_error(err, DSO_ERR_INPUT, "%s: no dataset or model to write", path ? path : "");
  }
  if (check_sizes(ds, m, &e)) {
    return dso_error(err, e.code, "%s: %s", path ? path : "", e.msg);
  }
  int nentry = 0;
  for (int g = 0; g < DSO_NDATA; g++) {
    for (int i = 0; i < dataset_size(ds, g); i++) {
      char name[300];
      if (ds->has[g][i] && dso_dataset_column_name(name, sizeof(name), m, g, i) < 0) {
        return dso_error(err, DSO_ERR_INPUT, "%s: cannot name the column of %s: its %s has no "
                         "name in the model", path ? path : "", name, obj_word(g));
      }
      nentry += ds->has[g][i];
    }
  }
  size_t cap = (size_t)(nentry + 3) * 32 + 2;
  char* buf = (char*)malloc(cap);
  dsoAtomicFile* af = buf ? dso_atomic_open(path, &e) : NULL;
  if (!buf) {
    dso_error(&e, DSO_ERR_MEMORY, "%s: out of memory", path ? path : "");
  }
  dso_atomic_printf(af, &e, "time,episode,validation");
  for (int g = 0; g < DSO_NDATA && !e.code; g++) {
    for (int i = 0; i < dataset_size(ds, g); i++) {
      if (ds->has[g][i]) {
        char name[300];
        dso_dataset_column_name(name, sizeof(name), m, g, i);
        dso_atomic_printf(af, &e, ",%s", name);
      }
    }
  }
  dso_atomic_printf(af, &e, "\n");
  for (int n = 0; n < ds->nepisode && !e.code; n++) {
    const dsoEpisode* ep = &ds->episode[n];
    for (int k = 0; k < ep->T && !e.code; k++) {
      size_t len = (size_t)snprintf(buf, cap, "%.17g,%d,%d", ep->time[k], n, ep->validation != 0);
      for (int g = 0; g < DSO_NDATA; g++) {
        int size = dataset_size(ds, g);
        const double* v = episode_array(ep, g) + (size_t)k * size;
        for (int i = 0; i < size; i++) {
          if (ds->has[g][i]) {
            len += (size_t)snprintf(buf + len, cap - len, ",%.17g", v[i]);
          }
        }
      }
      buf[len++] = '\n';
      dso_atomic_write(af, buf, len, &e);
    }
  }
  free(buf);
  if (e.code) {
    dso_atomic_abort(af);
  } else {
    dso_atomic_commit(af, &e);
  }
  return e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
}
