#include "config/cost_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// one term being read: its spec and the arrays the spec borrows
typedef struct dsoTermRead_ {
  dsoCostTermSpec spec;
  double* qref;  // (nq) quadratic
  double* wq;    // (nv) quadratic, track
  double* wv;    // (nv) quadratic, track
  double* std;   // (nu) kl
} dsoTermRead;

static void free_reads(dsoTermRead* r, int n) {
  for (int i = 0; r && i < n; i++) {
    free(r[i].qref);
    free(r[i].wq);
    free(r[i].wv);
    free(r[i].std);
  }
  free(r);
}

// node[key] as an array of 3 finite numbers
static dsoStatus vec3(double* out, const cJSON* node, const char* key, const dsoCfg* c) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, key);
  dsoCfg ck = dso_cfg_key(c, key);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) {
    return dso_cfg_fail(&ck, DSO_ERR_INPUT, "expected an array of 3 numbers, got %s",
                        dso_json_type_name(v));
  }
  for (int k = 0; k < 3; k++) {
    const cJSON* x = cJSON_GetArrayItem(v, k);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
      dsoCfg ci = dso_cfg_index(&ck, k);
      return dso_cfg_fail(&ci, DSO_ERR_INPUT, "expected a finite number");
    }
    out[k] = x->valuedouble;
  }
  return DSO_OK;
}

// the id of the model element of type obj named by node[key]
static dsoStatus element(int* id, const mjModel* m, int obj, const char* key, const cJSON* node,
                         const dsoCfg* c) {
  const char* name = NULL;
  if (dso_cfg_string(&name, node, key, 1, c)) return c->err->code;
  *id = mj_name2id(m, obj, name);
  if (*id < 0) {
    dsoCfg ck = dso_cfg_key(c, key);
    return dso_cfg_fail(&ck, DSO_ERR_INPUT, "the model has no %s named \"%s\"", key, name);
  }
  return DSO_OK;
}

// "std": σ̄ > 0 for every actuator, a number or {"actuator": σ̄} naming all of them
static dsoStatus passive_std(double* std, const mjModel* m, const cJSON* node, const dsoCfg* c) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, "std");
  dsoCfg cs = dso_cfg_key(c, "std");
  if (cJSON_IsNumber(v)) {
    if (!(isfinite(v->valuedouble) && v->valuedouble > 0)) {
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected a finite number > 0, got %g",
                          v->valuedouble);
    }
    for (int i = 0; i < m->nu; i++) {
      std[i] = v->valuedouble;
    }
    return DSO_OK;
  }
  if (!cJSON_IsObject(v)) {
    return dso_cfg_fail(&cs, DSO_ERR_INPUT, "expected a number > 0 or an object "
                        "{\"actuator\": std}, got %s", dso_json_type_name(v));
  }
  for (const cJSON* it = v->child; it; it = it->next) {
    dsoCfg ca = dso_cfg_key(&cs, it->string);
    int id = mj_name2id(m, mjOBJ_ACTUATOR, it->string);
    if (id < 0) {
      return dso_cfg_fail(&ca, DSO_ERR_INPUT, "the model has no actuator named \"%s\"",
                          it->string);
    }
    if (!cJSON_IsNumber(it) || !(isfinite(it->valuedouble) && it->valuedouble > 0)) {
      return dso_cfg_fail(&ca, DSO_ERR_INPUT, "expected a finite number > 0");
    }
    std[id] = it->valuedouble;
  }
  for (int i = 0; i < m->nu; i++) {
    if (!(std[i] > 0)) {
      const char* name = mj_id2name(m, mjOBJ_ACTUATOR, i);
      return dso_cfg_fail(&cs, DSO_ERR_INPUT, "no value for actuator \"%s\"; the passive noise "
                          "needs every actuator (or one number for all)",
                          name ? name : "(unnamed)");
    }
  }
  return DSO_OK;
}

// the joint-value objects keys[k] of node into outs[k] (at qpos addresses for k < nqpos)
static dsoStatus joint_maps(double* const* outs, const char* const* keys, int n, int nqpos,
                            const mjModel* m, const cJSON* node, const dsoCfg* c) {
  for (int k = 0; k < n; k++) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(node, keys[k]);
    dsoCfg ck = dso_cfg_key(c, keys[k]);
    if (v && dso_cfg_joint_values(outs[k], k < nqpos, k >= nqpos, m, v, &ck)) {
      return c->err->code;
    }
  }
  return DSO_OK;
}

// reads term i (node at c) into r; *track is the index of the track term read so far (-1: none)
static dsoStatus read_term(dsoTermRead* r, int* track, int i, const mjModel* m,
                           const cJSON* node, const dsoCfg* c) {
  static const char* const common[] = {"term", "weight", NULL};
  static const char* const quad[] = {"term", "weight", "qpos", "qpos_weight", "qvel_weight", NULL};
  static const char* const site[] = {"term", "weight", "site", "target", NULL};
  static const char* const up[] = {"term", "weight", "body", "axis", NULL};
  static const char* const vel[] = {"term", "weight", "joint", "target", NULL};
  static const char* const eff[] = {"term", "weight", "action", NULL};
  static const char* const kl[] = {"term", "weight", "std", NULL};
  static const char* const track_keys[] = {"term", "weight", "qpos_weight", "qvel_weight",
                                           "window", "windows", NULL};
  dsoError* err = c->err;
  dsoCostTermSpec* t = &r->spec;
  dso_cost_term_default(t, DSO_TERM_QUADRATIC);
  if (!cJSON_IsObject(node)) {
    return dso_cfg_fail(c, DSO_ERR_INPUT, "expected a cost term object, got %s",
                        dso_json_type_name(node));
  }
  const char* kind = NULL;
  if (dso_cfg_string(&kind, node, "term", 1, c)) return err->code;
  int k = 0;
  while (k < DSO_NTERM && strcmp(dso_cost_term_name((dsoTermKind)k), kind)) {
    k++;
  }
  if (k == DSO_NTERM) {
    dsoCfg ct = dso_cfg_key(c, "term");
    return dso_cfg_fail(&ct, DSO_ERR_INPUT, "unknown term \"%s\"; valid: quadratic, "
                        "site_distance, upright, velocity, effort, kl, entropy, proximal, track",
                        kind);
  }
  dso_cost_term_default(t, (dsoTermKind)k);
  const char* const* keys = t->kind == DSO_TERM_QUADRATIC       ? quad
                            : t->kind == DSO_TERM_SITE_DISTANCE ? site
                            : t->kind == DSO_TERM_UPRIGHT       ? up
                            : t->kind == DSO_TERM_VELOCITY      ? vel
                            : t->kind == DSO_TERM_EFFORT        ? eff
                            : t->kind == DSO_TERM_KL            ? kl
                            : t->kind == DSO_TERM_TRACK         ? track_keys
                                                                : common;
  if (dso_cfg_object(node, keys, c)) return err->code;
  if (dso_cfg_number(&t->weight, NULL, node, "weight", 0, c)) return err->code;
  if (!(t->weight >= 0)) {
    dsoCfg cw = dso_cfg_key(c, "weight");
    return dso_cfg_fail(&cw, DSO_ERR_INPUT, "expected a number >= 0, got %g", t->weight);
  }
  switch (t->kind) {
    case DSO_TERM_QUADRATIC: {
      r->qref = (double*)calloc((size_t)m->nq + 1, sizeof(double));
      r->wq = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      r->wv = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      if (!r->qref || !r->wq || !r->wv) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
      }
      mju_copy(r->qref, m->qpos0, m->nq);
      const char* keys3[] = {"qpos", "qpos_weight", "qvel_weight"};
      double* outs[] = {r->qref, r->wq, r->wv};
      if (joint_maps(outs, keys3, 3, 1, m, node, c)) return err->code;
      t->qref = r->qref;
      t->wq = r->wq;
      t->wv = r->wv;
      break;
    }
    case DSO_TERM_SITE_DISTANCE:
      if (element(&t->id, m, mjOBJ_SITE, "site", node, c)) return err->code;
      if (vec3(t->target, node, "target", c)) return err->code;
      break;
    case DSO_TERM_UPRIGHT:
      if (element(&t->id, m, mjOBJ_BODY, "body", node, c)) return err->code;
      if (cJSON_GetObjectItemCaseSensitive(node, "axis") && vec3(t->target, node, "axis", c)) {
        return err->code;
      }
      if (!(mju_norm3(t->target) > 0)) {
        dsoCfg ca = dso_cfg_key(c, "axis");
        return dso_cfg_fail(&ca, DSO_ERR_INPUT, "expected a nonzero vector");
      }
      break;
    case DSO_TERM_VELOCITY: {
      if (element(&t->id, m, mjOBJ_JOINT, "joint", node, c)) return err->code;
      if (m->jnt_type[t->id] != mjJNT_HINGE && m->jnt_type[t->id] != mjJNT_SLIDE) {
        dsoCfg cj = dso_cfg_key(c, "joint");
        return dso_cfg_fail(&cj, DSO_ERR_INPUT, "only hinge and slide joints");
      }
      if (dso_cfg_number(&t->target[0], NULL, node, "target", 1, c)) return err->code;
      break;
    }
    case DSO_TERM_EFFORT: {
      const char* action = "applied";
      if (dso_cfg_string(&action, node, "action", 0, c)) return err->code;
      if (strcmp(action, "applied") && strcmp(action, "mean")) {
        dsoCfg ca = dso_cfg_key(c, "action");
        return dso_cfg_fail(&ca, DSO_ERR_INPUT, "expected \"applied\" or \"mean\", got \"%s\"",
                            action);
      }
      t->mean = !strcmp(action, "mean");
      break;
    }
    case DSO_TERM_KL:
      r->std = (double*)calloc((size_t)m->nu + 1, sizeof(double));
      if (!r->std) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
      }
      if (passive_std(r->std, m, node, c)) return err->code;
      t->std = r->std;
      break;
    case DSO_TERM_TRACK: {
      if (*track >= 0) {
        return dso_cfg_fail(c, DSO_ERR_INPUT, "a second track term; the cost takes at most one "
                            "(it already has cost[%d])", *track);
      }
      r->wq = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      r->wv = (double*)calloc((size_t)m->nv + 1, sizeof(double));
      if (!r->wq || !r->wv) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
      }
      const char* keys2[] = {"qpos_weight", "qvel_weight"};
      double* outs[] = {r->wq, r->wv};
      if (joint_maps(outs, keys2, 2, 0, m, node, c)) return err->code;
      t->wq = r->wq;
      t->wv = r->wv;
      double win = 0;
      if (dso_cfg_number(&win, NULL, node, "window", 0, c)) return err->code;
      if (!(win >= 0 && win <= 1e9 && win == floor(win))) {
        dsoCfg cw = dso_cfg_key(c, "window");
        return dso_cfg_fail(&cw, DSO_ERR_INPUT, "expected an integer >= 0 (samples per window; "
                            "0: whole episodes), got %g", win);
      }
      t->window = (int)win;
      const char* mode = "cycle";
      if (dso_cfg_string(&mode, node, "windows", 0, c)) return err->code;
      if (strcmp(mode, "cycle") && strcmp(mode, "random")) {
        dsoCfg cw = dso_cfg_key(c, "windows");
        return dso_cfg_fail(&cw, DSO_ERR_INPUT, "expected \"cycle\" or \"random\", got \"%s\"",
                            mode);
      }
      t->random = !strcmp(mode, "random");
      *track = i;
      break;
    }
    default: break;
  }
  return DSO_OK;
}

dsoCost* dso_cfg_read_cost(const mjModel* m, const cJSON* node, const dsoCfg* cfg) {
  dsoError local = {0};
  dsoCfg cl = *cfg;
  cl.err = cl.err ? cl.err : &local;
  const dsoCfg* c = &cl;
  if (!cJSON_IsArray(node)) {
    dso_cfg_fail(c, DSO_ERR_INPUT, "expected an array of cost terms, got %s",
                 dso_json_type_name(node));
    return NULL;
  }
  int n = cJSON_GetArraySize(node);
  dsoTermRead* reads = (dsoTermRead*)calloc((size_t)n + 1, sizeof(dsoTermRead));
  dsoCostTermSpec* specs = (dsoCostTermSpec*)calloc((size_t)n + 1, sizeof(dsoCostTermSpec));
  dsoStatus s = DSO_OK;
  if (!reads || !specs) {
    s = dso_error(c->err, DSO_ERR_MEMORY, "%s: out of memory", c->file);
  }
  int i = 0, track = -1;
  for (const cJSON* it = node->child; it && !s; it = it->next, i++) {
    dsoCfg ci = dso_cfg_index(c, i);
    s = read_term(&reads[i], &track, i, m, it, &ci);
    specs[i] = reads[i].spec;
  }
  dsoCost* cost = NULL;
  if (!s) {
    // every value was checked above; what create refuses now is named by term index
    cost = dso_cost_create(m, specs, n, c->err);
    if (!cost) {
      dso_error_prefix(c->err, "%s: %s: ", c->file, c->path[0] ? c->path : "cost");
    }
  }
  free_reads(reads, n);
  free(specs);
  return cost;
}

dsoCost* dso_cost_from_json(const mjModel* m, const char* json_text, const char* file,
                            const char* path, dsoError* err) {
  dsoError local = {0};
  dsoCfg c = dso_cfg_ctx(file, path, err ? err : &local);
  cJSON* root = json_text ? dso_json_parse(json_text, c.file, c.err) : NULL;
  if (!json_text) {
    dso_error(c.err, DSO_ERR_INPUT, "%s: %s: no JSON text", c.file, c.path[0] ? c.path : "cost");
  }
  if (!root) {
    return NULL;
  }
  dsoCost* cost = dso_cfg_read_cost(m, root, &c);
  cJSON_Delete(root);
  return cost;
}
