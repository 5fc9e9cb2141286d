#include "mujoco/bind.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  dsoBindKind kind;
  const char* prefix;   // name prefix
  const char* attr;     // attribute after the element name
  int obj;              // mjtObj of the element; mjOBJ_UNKNOWN for the global gravity
  int positive;         // values must be > 0 (log transform by default)
  int setconst;         // derived constants change: mj_setConst after writing
} dsoFieldInfo;

static const dsoFieldInfo kFields[] = {
  {DSO_BIND_NONE, "", "", mjOBJ_UNKNOWN, 0, 0},
  {DSO_BIND_BODY_MASS, "physics", "mass", mjOBJ_BODY, 1, 1},
  {DSO_BIND_BODY_COM, "physics", "com", mjOBJ_BODY, 0, 1},
  {DSO_BIND_BODY_INERTIA, "physics", "inertia", mjOBJ_BODY, 1, 1},
  {DSO_BIND_BODY_POS, "physics", "pos", mjOBJ_BODY, 0, 1},
  {DSO_BIND_DOF_DAMPING, "physics", "damping", mjOBJ_JOINT, 1, 0},
  {DSO_BIND_DOF_FRICTIONLOSS, "physics", "frictionloss", mjOBJ_JOINT, 1, 0},
  {DSO_BIND_DOF_ARMATURE, "physics", "armature", mjOBJ_JOINT, 1, 1},
  {DSO_BIND_DOF_FORCE, "physics", "force", mjOBJ_JOINT, 0, 0},
  {DSO_BIND_DOF_SOLREF_FRICTION, "physics", "solreffriction", mjOBJ_JOINT, 1, 0},
  {DSO_BIND_DOF_SOLIMP_FRICTION, "physics", "solimpfriction", mjOBJ_JOINT, 1, 0},
  {DSO_BIND_JNT_STIFFNESS, "physics", "stiffness", mjOBJ_JOINT, 1, 0},
  {DSO_BIND_ACT_GEAR, "physics", "gear", mjOBJ_ACTUATOR, 0, 1},
  {DSO_BIND_ACT_GAIN, "physics", "gain", mjOBJ_ACTUATOR, 0, 0},
  {DSO_BIND_ACT_BIAS, "physics", "bias", mjOBJ_ACTUATOR, 0, 0},
  {DSO_BIND_GEOM_FRICTION, "physics", "friction", mjOBJ_GEOM, 1, 0},
  {DSO_BIND_GEOM_SIZE, "physics", "size", mjOBJ_GEOM, 1, 0},
  {DSO_BIND_GRAVITY, "physics", "gravity", mjOBJ_UNKNOWN, 0, 0},
  {DSO_BIND_SENSOR_GAIN, "sensor", "gain", mjOBJ_SENSOR, 0, 0},
  {DSO_BIND_SENSOR_OFFSET, "sensor", "offset", mjOBJ_SENSOR, 0, 0},
  {DSO_BIND_ACTION_STD, "action_noise", "std", mjOBJ_ACTUATOR, 1, 0},
  {DSO_BIND_SENSOR_STD, "sensor_noise", "std", mjOBJ_SENSOR, 1, 0},
};

static const char* kPrefixes[] = {"physics", "sensor", "sensor_noise", "action_noise"};
enum { kNumPrefixes = 4 };

static const char* obj_name(int obj) {
  switch (obj) {
    case mjOBJ_BODY: return "body";
    case mjOBJ_JOINT: return "joint";
    case mjOBJ_ACTUATOR: return "actuator";
    case mjOBJ_GEOM: return "geom";
    case mjOBJ_SENSOR: return "sensor";
    default: return "element";
  }
}

static const char* obj_plural(int obj) {
  switch (obj) {
    case mjOBJ_BODY: return "bodies";
    case mjOBJ_JOINT: return "joints";
    case mjOBJ_ACTUATOR: return "actuators";
    case mjOBJ_GEOM: return "geoms";
    case mjOBJ_SENSOR: return "sensors";
    default: return "elements";
  }
}

static int obj_count(const mjModel* m, int obj) {
  switch (obj) {
    case mjOBJ_BODY: return m->nbody;
    case mjOBJ_JOINT: return m->njnt;
    case mjOBJ_ACTUATOR: return m->nu;
    case mjOBJ_GEOM: return m->ngeom;
    case mjOBJ_SENSOR: return m->nsensor;
    default: return 0;
  }
}

static int joint_dofs(const mjModel* m, int j) {
  switch (m->jnt_type[j]) {
    case mjJNT_FREE: return 6;
    case mjJNT_BALL: return 3;
    default: return 1;
  }
}

// number of components of kind on element id
static int ncomp(const mjModel* m, dsoBindKind kind, int id) {
  switch (kind) {
    case DSO_BIND_BODY_COM:
    case DSO_BIND_BODY_INERTIA:
    case DSO_BIND_BODY_POS:
    case DSO_BIND_GEOM_FRICTION:
    case DSO_BIND_GEOM_SIZE:
    case DSO_BIND_GRAVITY: return 3;
    case DSO_BIND_ACT_GEAR: return 6;
    case DSO_BIND_ACT_GAIN: return mjNGAIN;
    case DSO_BIND_ACT_BIAS: return mjNBIAS;
    case DSO_BIND_DOF_DAMPING:
    case DSO_BIND_DOF_FRICTIONLOSS:
    case DSO_BIND_DOF_ARMATURE:
    case DSO_BIND_DOF_FORCE: return joint_dofs(m, id);
    case DSO_BIND_DOF_SOLREF_FRICTION: return mjNREF * joint_dofs(m, id);
    case DSO_BIND_DOF_SOLIMP_FRICTION: return mjNIMP * joint_dofs(m, id);
    case DSO_BIND_SENSOR_GAIN:
    case DSO_BIND_SENSOR_OFFSET:
    case DSO_BIND_SENSOR_STD: return m->sensor_dim[id];
    default: return 1;
  }
}

static int target_of(const mjModel* m, dsoBindKind kind, int id, int k) {
  switch (kind) {
    case DSO_BIND_DOF_DAMPING:
    case DSO_BIND_DOF_FRICTIONLOSS:
    case DSO_BIND_DOF_ARMATURE:
    case DSO_BIND_DOF_FORCE: return m->jnt_dofadr[id] + k;
    case DSO_BIND_DOF_SOLREF_FRICTION: return mjNREF * m->jnt_dofadr[id] + k;
    case DSO_BIND_DOF_SOLIMP_FRICTION: return mjNIMP * m->jnt_dofadr[id] + k;
    case DSO_BIND_SENSOR_GAIN:
    case DSO_BIND_SENSOR_OFFSET:
    case DSO_BIND_SENSOR_STD: return m->sensor_adr[id] + k;
    case DSO_BIND_BODY_COM:
    case DSO_BIND_BODY_INERTIA:
    case DSO_BIND_BODY_POS:
    case DSO_BIND_GEOM_FRICTION:
    case DSO_BIND_GEOM_SIZE: return 3 * id + k;
    case DSO_BIND_ACT_GEAR: return 6 * id + k;
    case DSO_BIND_ACT_GAIN: return mjNGAIN * id + k;
    case DSO_BIND_ACT_BIAS: return mjNBIAS * id + k;
    case DSO_BIND_GRAVITY: return k;
    default: return id;
  }
}

dsoBlock dso_bind_block(dsoBindKind kind) {
  switch (kind) {
    case DSO_BIND_SENSOR_GAIN:
    case DSO_BIND_SENSOR_OFFSET: return DSO_BLOCK_SENSOR;
    case DSO_BIND_ACTION_STD: return DSO_BLOCK_ACTION_NOISE;
    case DSO_BIND_SENSOR_STD: return DSO_BLOCK_SENSOR_NOISE;
    case DSO_BIND_NONE: return DSO_BLOCK_POLICY;
    default: return DSO_BLOCK_PHYSICS;
  }
}

int dso_bind_positive(dsoBindKind kind) {
  return (kind > DSO_BIND_NONE && kind < DSO_NBIND) ? kFields[kind].positive : 0;
}

int dso_bind_domain(const dsoBinding* b, double* lower, double* upper) {
  int positive = dso_bind_positive(b->kind);
  *lower = positive ? 0.0 : -INFINITY;
  *upper = INFINITY;
  if (b->kind == DSO_BIND_DOF_SOLREF_FRICTION && b->index % mjNREF == 0) {
    *lower = mjMINVAL;  // timeconst; MuJoCo raises it to 2 timesteps under refsafe
  } else if (b->kind == DSO_BIND_DOF_SOLIMP_FRICTION) {
    switch (b->index % mjNIMP) {
      case 0:
      case 1:
      case 3: *upper = 1.0; break;  // dmin, dmax, midpoint
      case 4: *lower = 1.0; break;  // power
      default: break;               // width
    }
  }
  return isfinite(*lower) && isfinite(*upper);
}

int dso_bind_needs_setconst(dsoBindKind kind) {
  return (kind > DSO_BIND_NONE && kind < DSO_NBIND) ? kFields[kind].setconst : 0;
}

const char* dso_block_name(dsoBlock block) {
  static const char* names[DSO_NBLOCK] = {"policy", "physics", "action_noise",
                                          "sensor", "sensor_noise", "corrector"};
  return (block >= 0 && block < DSO_NBLOCK) ? names[block] : "unknown";
}

// element name for naming; unnamed elements are written "<kind>#<id>"
static void element_name(char* buf, int len, const mjModel* m, int obj, int id) {
  const char* nm = mj_id2name(m, obj, id);
  if (nm && nm[0]) {
    snprintf(buf, (size_t)len, "%s", nm);
  } else {
    snprintf(buf, (size_t)len, "%s#%d", obj_name(obj), id);
  }
}

int dso_bind_name(char* buf, int len, const mjModel* m, const dsoBinding* b) {
  if (b->kind <= DSO_BIND_NONE || b->kind >= DSO_NBIND) {
    return snprintf(buf, (size_t)len, "%s", "");
  }
  const dsoFieldInfo* f = &kFields[b->kind];
  char idx[24] = "";
  if (ncomp(m, b->kind, b->id) > 1) {
    snprintf(idx, sizeof(idx), "[%d]", b->index);
  }
  if (b->kind == DSO_BIND_GRAVITY) {
    return snprintf(buf, (size_t)len, "%s.%s%s", f->prefix, f->attr, idx);
  }
  char el[256];
  element_name(el, sizeof(el), m, f->obj, b->id);
  return snprintf(buf, (size_t)len, "%s.%s.%s%s", f->prefix, el, f->attr, idx);
}

// appends up to 12 element names of kind obj to buf, for error messages
static void list_elements(char* buf, size_t len, const mjModel* m, int obj) {
  int n = obj_count(m, obj), shown = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && shown < 12; i++) {
    const char* nm = mj_id2name(m, obj, i);
    if (obj == mjOBJ_BODY && i == 0) {
      continue;  // the world body has no parameters
    }
    if (!nm || !nm[0]) {
      continue;
    }
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", shown ? ", " : "", nm);
    shown++;
  }
  if (shown == 0) {
    snprintf(buf, len, "none");
  } else if (n > shown + (obj == mjOBJ_BODY)) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, ", ...");
  }
}

// parses "attr" or "attr[k]"; returns 0 on a malformed index
static int split_index(char* attr, int* has_index, int* index) {
  char* br = strchr(attr, '[');
  *has_index = 0;
  *index = 0;
  if (!br) {
    return 1;
  }
  size_t n = strlen(br);
  if (n < 3 || br[n - 1] != ']') {
    return 0;
  }
  for (size_t i = 1; i + 1 < n; i++) {
    if (!isdigit((unsigned char)br[i])) {
      return 0;
    }
  }
  if (n - 2 > 9) {
    *index = 1000000000;  // out of every range; reported as such
  } else {
    *index = atoi(br + 1);
  }
  *has_index = 1;
  *br = '\0';
  return 1;
}

dsoStatus dso_bind_resolve(dsoBinding* b, const mjModel* m, const char* name, dsoError* err) {
  memset(b, 0, sizeof(*b));
  size_t len = name ? strlen(name) : 0;
  if (len == 0 || len >= 512) {
    return dso_error(err, DSO_ERR_INPUT, "name '%s': expected 1 to 511 characters",
                     name ? name : "");
  }
  char buf[512];
  memcpy(buf, name, len + 1);
  char* dot = strchr(buf, '.');
  if (!dot) {
    return dso_error(err, DSO_ERR_INPUT,
                     "name '%s': expected <prefix>.<element>.<attribute> with prefix physics, "
                     "sensor, sensor_noise or action_noise", name);
  }
  *dot = '\0';
  const char* prefix = buf;
  char* rest = dot + 1;
  int known = 0;
  for (int i = 0; i < kNumPrefixes; i++) {
    known |= !strcmp(prefix, kPrefixes[i]);
  }
  if (!known) {
    return dso_error(err, DSO_ERR_INPUT,
                     "name '%s': unknown prefix '%s'; valid prefixes: physics, sensor, "
                     "sensor_noise, action_noise", name, prefix);
  }

  // split "<element>.<attr>[k]" at the last dot; gravity has no element
  char* element = NULL;
  char* attr = rest;
  char* last = strrchr(rest, '.');
  if (last) {
    *last = '\0';
    element = rest;
    attr = last + 1;
  }
  int has_index, index;
  if (!split_index(attr, &has_index, &index)) {
    return dso_error(err, DSO_ERR_INPUT, "name '%s': malformed component index, expected [k]",
                     name);
  }
  const dsoFieldInfo* f = NULL;
  for (int k = 1; k < DSO_NBIND; k++) {
    if (!strcmp(kFields[k].prefix, prefix) && !strcmp(kFields[k].attr, attr)) {
      f = &kFields[k];
    }
  }
  if (!f) {
    char valid[256] = "";
    for (int k = 1; k < DSO_NBIND; k++) {
      if (!strcmp(kFields[k].prefix, prefix)) {
        size_t used = strlen(valid);
        snprintf(valid + used, sizeof(valid) - used, "%s%s", used ? ", " : "", kFields[k].attr);
      }
    }
    return dso_error(err, DSO_ERR_INPUT, "name '%s': unknown attribute '%s' for %s; valid: %s",
                     name, attr, prefix, valid);
  }
  if ((f->kind == DSO_BIND_GRAVITY) != (element == NULL)) {
    return dso_error(err, DSO_ERR_INPUT,
                     f->kind == DSO_BIND_GRAVITY
                         ? "name '%s': gravity is global, write physics.gravity[k]"
                         : "name '%s': expected <prefix>.<element>.<attribute>",
                     name);
  }
  int id = -1;
  if (element) {
    id = mj_name2id(m, f->obj, element);
    char* hash = strchr(element, '#');
    if (id < 0 && hash && !strncmp(element, obj_name(f->obj), (size_t)(hash - element)) &&
        (size_t)(hash - element) == strlen(obj_name(f->obj)) && isdigit((unsigned char)hash[1])) {
      char* endp = NULL;
      long v = strtol(hash + 1, &endp, 10);
      if (*endp == '\0' && v >= 0 && v < obj_count(m, f->obj)) {
        id = (int)v;
      }
    }
    if (id < 0) {
      char valid[700];
      list_elements(valid, sizeof(valid), m, f->obj);
      return dso_error(err, DSO_ERR_INPUT, "name '%s': the model has no %s named '%s' (%s: %s)",
                       name, obj_name(f->obj), element, obj_plural(f->obj), valid);
    }
    if (f->obj == mjOBJ_BODY && id == 0) {
      return dso_error(err, DSO_ERR_INPUT, "name '%s': the world body has no parameters", name);
    }
  }
  if (f->kind == DSO_BIND_GEOM_SIZE &&
      (m->geom_type[id] == mjGEOM_MESH || m->geom_type[id] == mjGEOM_HFIELD)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "name '%s': the size of a mesh or height-field geom comes from its asset "
                     "and is not a parameter", name);
  }
  int n = ncomp(m, f->kind, id);
  if (!has_index && n > 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "name '%s': %s has %d components; write %s[k] with k in 0..%d", name, attr,
                     n, attr, n - 1);
  }
  if (index >= n) {
    return dso_error(err, DSO_ERR_INPUT, "name '%s': component %d out of range 0..%d", name,
                     index, n - 1);
  }
  b->kind = f->kind;
  b->id = id;
  b->index = index;
  b->target = target_of(m, f->kind, id, index);
  return DSO_OK;
}

int dso_bind_list(dsoBinding* out, int max, const mjModel* m) {
  int count = 0;
  for (int k = 1; k < DSO_NBIND; k++) {
    const dsoFieldInfo* f = &kFields[k];
    int nel = f->kind == DSO_BIND_GRAVITY ? 1 : obj_count(m, f->obj);
    for (int id = (f->obj == mjOBJ_BODY ? 1 : 0); id < nel; id++) {
      int el = f->kind == DSO_BIND_GRAVITY ? -1 : id;
      if (f->kind == DSO_BIND_GEOM_SIZE &&
          (m->geom_type[id] == mjGEOM_MESH || m->geom_type[id] == mjGEOM_HFIELD)) {
        continue;
      }
      int n = ncomp(m, f->kind, el);
      for (int c = 0; c < n; c++) {
        if (count < max && out) {
          out[count].kind = f->kind;
          out[count].id = el;
          out[count].index = c;
          out[count].target = target_of(m, f->kind, el, c);
        }
        count++;
      }
    }
  }
  return count;
}

double* dso_bind_field(mjModel* m, const dsoBinding* b) {
  int t = b->target;
  switch (b->kind) {
    case DSO_BIND_BODY_MASS: return m->body_mass + b->id;
    case DSO_BIND_BODY_COM: return m->body_ipos + t;
    case DSO_BIND_BODY_INERTIA: return m->body_inertia + t;
    case DSO_BIND_BODY_POS: return m->body_pos + t;
    case DSO_BIND_DOF_DAMPING: return m->dof_damping + t;
    case DSO_BIND_DOF_FRICTIONLOSS: return m->dof_frictionloss + t;
    case DSO_BIND_DOF_ARMATURE: return m->dof_armature + t;
    case DSO_BIND_DOF_SOLREF_FRICTION: return m->dof_solref + t;
    case DSO_BIND_DOF_SOLIMP_FRICTION: return m->dof_solimp + t;
    case DSO_BIND_JNT_STIFFNESS: return m->jnt_stiffness + b->id;
    case DSO_BIND_ACT_GEAR: return m->actuator_gear + t;
    case DSO_BIND_ACT_GAIN: return m->actuator_gainprm + t;
    case DSO_BIND_ACT_BIAS: return m->actuator_biasprm + t;
    case DSO_BIND_GEOM_FRICTION: return m->geom_friction + t;
    case DSO_BIND_GEOM_SIZE: return m->geom_size + t;
    case DSO_BIND_GRAVITY: return m->opt.gravity + t;
    default: return NULL;
  }
}

double dso_bind_get(const mjModel* m, const dsoBinding* b) {
  switch (b->kind) {
    case DSO_BIND_DOF_FORCE:
    case DSO_BIND_SENSOR_OFFSET: return 0.0;
    case DSO_BIND_SENSOR_GAIN: return 1.0;
    case DSO_BIND_ACTION_STD:
    case DSO_BIND_SENSOR_STD:
    case DSO_BIND_NONE:
    case DSO_NBIND: return NAN;
    default: {
      // the field pointer is only read here
      const double* p = dso_bind_field((mjModel*)m, b);
      return p ? *p : NAN;
    }
  }
}
