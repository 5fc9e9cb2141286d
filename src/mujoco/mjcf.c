// MJCF written back with θ: a small XML scanner (elements, attributes with either quote,
// comments, CDATA, processing instructions, declarations), edits as (offset, length, text)
// splices of the original text, and a check that the edited file compiles to the θ-written model.
#define _XOPEN_SOURCE 700
#include "mujoco/mjcf.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/bind.h"
#include "core/io.h"
#include "mujoco/mj.h"
#include "mujoco/sim.h"

// ---------------------------------------------------------------------------------------------
// scanner

typedef struct {
  int start, end;          // start tag [start, end): '<' .. after '>'
  int name, name_len;      // tag name
  int attr_end;            // just after the last attribute (or the tag name): insertion point
  int close_start;         // end tag '<' (-1 when self-closing)
  int self_closing;
  int parent;              // element index, -1 for the root
  int first_child, next_sibling;  // -1 when none
} mjcfElem;

typedef struct {
  const char* s;           // the text (borrowed)
  int n;
  const char* path;        // for messages
  mjcfElem* el;            // (nel) in document order of their start tags
  int nel, cap;
  int root;
} mjcfDoc;

static int line_of(const mjcfDoc* d, int off) {
  int line = 1;
  for (int i = 0; i < off && i < d->n; i++) {
    line += d->s[i] == '\n';
  }
  return line;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_name_char(char c) {
  return c && !is_space(c) && c != '=' && c != '>' && c != '/' && c != '<' && c != '"' &&
         c != '\'';
}

// offset of needle at or after i, or -1
static int find_from(const mjcfDoc* d, int i, const char* needle) {
  const char* p = i <= d->n ? strstr(d->s + i, needle) : NULL;
  return p ? (int)(p - d->s) : -1;
}

static dsoStatus syntax(const mjcfDoc* d, int off, dsoError* err, const char* what) {
  return dso_error(err, DSO_ERR_INPUT, "%s:%d: XML: %s", d->path, line_of(d, off), what);
}

// scans the attributes of the start tag whose name ends at i; calls back per attribute when
// want is set: returns the attribute's offsets through the out arguments
typedef struct {
  int ws, name, name_len, value, value_len;  // ws: start of the blanks before the name
} mjcfAttr;

// parses attributes from i; fills a (may be NULL) for the attribute named want (may be NULL);
// *stop receives the offset of '>' or '/>'; *last the end of the last attribute. Returns 1 when
// want was found, 0 when not, -1 on a syntax error
static int scan_attrs(const mjcfDoc* d, int i, const char* want, mjcfAttr* a, int* stop,
                      int* last) {
  int found = 0;
  *last = i;
  for (;;) {
    int ws = i;
    while (i < d->n && is_space(d->s[i])) {
      i++;
    }
    if (i >= d->n) {
      return -1;
    }
    if (d->s[i] == '>' || (d->s[i] == '/' && i + 1 < d->n && d->s[i + 1] == '>')) {
      *stop = i;
      return found;
    }
    if (i == ws) {
      return -1;  // attributes must be separated by blanks
    }
    int nm = i;
    while (i < d->n && is_name_char(d->s[i])) {
      i++;
    }
    int nlen = i - nm;
    while (i < d->n && is_space(d->s[i])) {
      i++;
    }
    if (nlen == 0 || i >= d->n || d->s[i] != '=') {
      return -1;
    }
    i++;
    while (i < d->n && is_space(d->s[i])) {
      i++;
    }
    if (i >= d->n || (d->s[i] != '"' && d->s[i] != '\'')) {
      return -1;
    }
    char q = d->s[i++];
    int v = i;
    while (i < d->n && d->s[i] != q) {
      i++;
    }
    if (i >= d->n) {
      return -1;
    }
    if (want && !found && (int)strlen(want) == nlen && !strncmp(d->s + nm, want, (size_t)nlen)) {
      found = 1;
      if (a) {
        a->ws = ws;
        a->name = nm;
        a->name_len = nlen;
        a->value = v;
        a->value_len = i - v;
      }
    }
    i++;
    *last = i;
  }
}

static int add_elem(mjcfDoc* d) {
  if (d->nel == d->cap) {
    int cap = d->cap ? 2 * d->cap : 64;
    mjcfElem* el = (mjcfElem*)realloc(d->el, sizeof(mjcfElem) * (size_t)cap);
    if (!el) {
      return -1;
    }
    d->el = el;
    d->cap = cap;
  }
  return d->nel++;
}

static dsoStatus scan(mjcfDoc* d, dsoError* err) {
  int cur = -1;  // open element
  d->root = -1;
  int i = 0;
  while (i < d->n) {
    if (d->s[i] != '<') {
      i++;
      continue;
    }
    if (!strncmp(d->s + i, "<!--", 4)) {
      int e = find_from(d, i + 4, "-->");
      if (e < 0) {
        return syntax(d, i, err, "unterminated comment");
      }
      i = e + 3;
    } else if (!strncmp(d->s + i, "<![CDATA[", 9)) {
      int e = find_from(d, i + 9, "]]>");
      if (e < 0) {
        return syntax(d, i, err, "unterminated CDATA section");
      }
      i = e + 3;
    } else if (d->s[i + 1] == '?') {
      int e = find_from(d, i + 2, "?>");
      if (e < 0) {
        return syntax(d, i, err, "unterminated processing instruction");
      }
      i = e + 2;
    } else if (d->s[i + 1] == '!') {
      int depth = 0, j = i + 2;  // <!DOCTYPE ...> with an optional [internal subset]
      while (j < d->n && (d->s[j] != '>' || depth > 0)) {
        depth += d->s[j] == '[';
        depth -= d->s[j] == ']';
        j++;
      }
      if (j >= d->n) {
        return syntax(d, i, err, "unterminated declaration");
      }
      i = j + 1;
    } else if (d->s[i + 1] == '/') {
      int nm = i + 2, j = nm;
      while (j < d->n && is_name_char(d->s[j])) {
        j++;
      }
      int e = j;
      while (e < d->n && is_space(d->s[e])) {
        e++;
      }
      if (e >= d->n || d->s[e] != '>') {
        return syntax(d, i, err, "malformed end tag");
      }
      if (cur < 0 || d->el[cur].name_len != j - nm ||
          strncmp(d->s + d->el[cur].name, d->s + nm, (size_t)(j - nm))) {
        char msg[160];
        snprintf(msg, sizeof(msg), "end tag </%.*s> does not close the open element", j - nm,
                 d->s + nm);
        return syntax(d, i, err, msg);
      }
      d->el[cur].close_start = i;
      cur = d->el[cur].parent;
      i = e + 1;
    } else {
      int nm = i + 1, j = nm;
      while (j < d->n && is_name_char(d->s[j])) {
        j++;
      }
      if (j == nm) {
        return syntax(d, i, err, "expected a tag name after '<'");
      }
      int stop = 0, last = 0;
      if (scan_attrs(d, j, NULL, NULL, &stop, &last) < 0) {
        return syntax(d, i, err, "malformed attribute (expected name=\"value\" or name='value')");
      }
      int k = add_elem(d);
      if (k < 0) {
        return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", d->path);
      }
      mjcfElem* el = &d->el[k];
      el->start = i;
      el->name = nm;
      el->name_len = j - nm;
      el->attr_end = last;
      el->self_closing = d->s[stop] == '/';
      el->end = stop + (el->self_closing ? 2 : 1);
      el->close_start = -1;
      el->parent = cur;
      el->first_child = el->next_sibling = -1;
      if (cur < 0) {
        if (d->root >= 0) {
          return syntax(d, i, err, "a second root element");
        }
        d->root = k;
      } else {
        // append to the parent's children
        int c = d->el[cur].first_child;
        if (c < 0) {
          d->el[cur].first_child = k;
        } else {
          while (d->el[c].next_sibling >= 0) {
            c = d->el[c].next_sibling;
          }
          d->el[c].next_sibling = k;
        }
      }
      if (!el->self_closing) {
        cur = k;
      }
      i = el->end;
    }
  }
  if (cur >= 0) {
    char msg[160];
    snprintf(msg, sizeof(msg), "element <%.*s> is not closed", d->el[cur].name_len,
             d->s + d->el[cur].name);
    return syntax(d, d->el[cur].start, err, msg);
  }
  if (d->root < 0) {
    return syntax(d, 0, err, "no root element");
  }
  return DSO_OK;
}

static int tag_is(const mjcfDoc* d, int k, const char* tag) {
  const mjcfElem* e = &d->el[k];
  return (int)strlen(tag) == e->name_len && !strncmp(d->s + e->name, tag, (size_t)e->name_len);
}

// finds attribute name of element k; returns 1 with a filled when present
static int get_attr(const mjcfDoc* d, int k, const char* name, mjcfAttr* a) {
  int stop, last;
  return scan_attrs(d, d->el[k].name + d->el[k].name_len, name, a, &stop, &last) == 1;
}

// 1 when element k's attribute name equals value
static int attr_equals(const mjcfDoc* d, int k, const char* name, const char* value) {
  mjcfAttr a;
  return get_attr(d, k, name, &a) && a.value_len == (int)strlen(value) &&
         !strncmp(d->s + a.value, value, (size_t)a.value_len);
}

// the i-th child of k with one of the tags (NULL-terminated list), or -1; *count receives how many
// there are when i < 0
static int child(const mjcfDoc* d, int k, const char* const* tags, int i, int* count) {
  int n = 0;
  for (int c = d->el[k].first_child; c >= 0; c = d->el[c].next_sibling) {
    for (const char* const* t = tags; *t; t++) {
      if (tag_is(d, c, *t)) {
        if (n == i) {
          return c;
        }
        n++;
        break;
      }
    }
  }
  if (count) {
    *count = n;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// edits

typedef struct {
  int off, len, seq;
  char* text;
} mjcfEdit;

typedef struct {
  mjcfDoc doc;
  mjcfEdit* ed;
  int ned, cap;
  int oom;
} mjcfEditor;

static void add_edit(mjcfEditor* w, int off, int len, const char* text) {
  if (w->ned == w->cap) {
    int cap = w->cap ? 2 * w->cap : 32;
    mjcfEdit* ed = (mjcfEdit*)realloc(w->ed, sizeof(mjcfEdit) * (size_t)cap);
    if (!ed) {
      w->oom = 1;
      return;
    }
    w->ed = ed;
    w->cap = cap;
  }
  char* t = strdup(text);
  if (!t) {
    w->oom = 1;
    return;
  }
  w->ed[w->ned] = (mjcfEdit){off, len, w->ned, t};
  w->ned++;
}

// sets attribute name of element k to value (replaced in place, or appended after the last one)
static void set_attr(mjcfEditor* w, int k, const char* name, const char* value) {
  mjcfAttr a;
  if (get_attr(&w->doc, k, name, &a)) {
    add_edit(w, a.value, a.value_len, value);
    return;
  }
  size_t len = strlen(name) + strlen(value) + 5;
  char* t = (char*)malloc(len);
  if (!t) {
    w->oom = 1;
    return;
  }
  snprintf(t, len, " %s=\"%s\"", name, value);
  add_edit(w, w->doc.el[k].attr_end, 0, t);
  free(t);
}

static void remove_attr(mjcfEditor* w, int k, const char* name) {
  mjcfAttr a;
  if (get_attr(&w->doc, k, name, &a)) {
    add_edit(w, a.ws, a.value + a.value_len + 1 - a.ws, "");
  }
}

// indentation of the line holding offset off, when only blanks precede it there
static void indent_of(const mjcfDoc* d, int off, char* buf, int len) {
  int b = off;
  while (b > 0 && (d->s[b - 1] == ' ' || d->s[b - 1] == '\t')) {
    b--;
  }
  int n = (b == 0 || d->s[b - 1] == '\n') ? off - b : 0;
  if (n >= len) {
    n = len - 1;
  }
  memcpy(buf, d->s + b, (size_t)n);
  buf[n] = '\0';
}

// inserts text (one line, or lines already indented after the first) as the first child of k
static void insert_child(mjcfEditor* w, int k, const char* text) {
  const mjcfDoc* d = &w->doc;
  const mjcfElem* e = &d->el[k];
  char ind[128], cind[128];
  indent_of(d, e->start, ind, sizeof(ind));
  if (e->first_child >= 0) {
    indent_of(d, d->el[e->first_child].start, cind, sizeof(cind));
  } else {
    snprintf(cind, sizeof(cind), "%s  ", ind);
  }
  size_t len = strlen(text) + 2 * strlen(cind) + (size_t)e->name_len + 16;
  char* t = (char*)malloc(len);
  if (!t) {
    w->oom = 1;
    return;
  }
  if (e->self_closing) {
    snprintf(t, len, ">\n%s%s\n%s</%.*s>", cind, text, ind, e->name_len, d->s + e->name);
    add_edit(w, e->end - 2, 2, t);
  } else {
    snprintf(t, len, "\n%s%s", cind, text);
    add_edit(w, e->end, 0, t);
  }
  free(t);
}

// renames element k (start and end tag)
static void rename_tag(mjcfEditor* w, int k, const char* tag) {
  const mjcfElem* e = &w->doc.el[k];
  add_edit(w, e->name, e->name_len, tag);
  if (e->close_start >= 0) {
    add_edit(w, e->close_start + 2, e->name_len, tag);
  }
}

static int edit_cmp(const void* a, const void* b) {
  const mjcfEdit* x = (const mjcfEdit*)a;
  const mjcfEdit* y = (const mjcfEdit*)b;
  if (x->off != y->off) {
    return x->off < y->off ? -1 : 1;
  }
  return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static dsoStatus apply_edits(mjcfEditor* w, char** out, dsoError* err) {
  if (w->ned > 0) {  // with no edit w->ed may be NULL, which qsort must not see
    qsort(w->ed, (size_t)w->ned, sizeof(mjcfEdit), edit_cmp);
  }
  size_t len = (size_t)w->doc.n + 1;
  for (int i = 0; i < w->ned; i++) {
    len += strlen(w->ed[i].text);
  }
  char* t = (char*)malloc(len);
  if (!t) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", w->doc.path);
  }
  size_t o = 0;
  int cur = 0;
  for (int i = 0; i < w->ned; i++) {
    const mjcfEdit* e = &w->ed[i];
    if (e->off < cur) {
      free(t);
      return dso_error(err, DSO_ERR_INTERNAL, "%s:%d: overlapping edits", w->doc.path,
                       line_of(&w->doc, e->off));
    }
    memcpy(t + o, w->doc.s + cur, (size_t)(e->off - cur));
    o += (size_t)(e->off - cur);
    size_t n = strlen(e->text);
    memcpy(t + o, e->text, n);
    o += n;
    cur = e->off + e->len;
  }
  memcpy(t + o, w->doc.s + cur, (size_t)(w->doc.n - cur));
  o += (size_t)(w->doc.n - cur);
  t[o] = '\0';
  *out = t;
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// values

// n numbers as %.17g separated by blanks
static void fmt_vec(char* buf, size_t len, const double* v, int n) {
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && o < len; i++) {
    o += (size_t)snprintf(buf + o, len - o, "%s%.17g", i ? " " : "", v[i]);
  }
}

static void set_vec(mjcfEditor* w, int k, const char* name, const double* v, int n) {
  char buf[1024];
  fmt_vec(buf, sizeof(buf), v, n);
  set_attr(w, k, name, buf);
}

// value with & < > " escaped for an attribute
static void escape_attr(char* buf, size_t len, const char* s) {
  size_t o = 0;
  for (; *s && o + 7 < len; s++) {
    const char* r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                  : *s == '"' ? "&quot;" : NULL;
    if (r) {
      o += (size_t)snprintf(buf + o, len - o, "%s", r);
    } else {
      buf[o++] = *s;
    }
  }
  buf[o] = '\0';
}

static const char* dyn_name(int t) {
  static const char* n[] = {"none", "integrator", "filter", "muscle", "user"};
  return t >= 0 && t <= mjDYN_USER ? n[t] : NULL;
}

static const char* gain_name(int t) {
  static const char* n[] = {"fixed", "affine", "muscle", "user"};
  return t >= 0 && t <= mjGAIN_USER ? n[t] : NULL;
}

static const char* bias_name(int t) {
  static const char* n[] = {"none", "affine", "muscle", "user"};
  return t >= 0 && t <= mjBIAS_USER ? n[t] : NULL;
}

// ---------------------------------------------------------------------------------------------
// locating elements of the compiled model in the text

enum { kPos = 1, kMass = 2, kCom = 4, kInertia = 8, kInertial = 14 };  // body flags
enum { kDamp = 1, kFric = 2, kArm = 4, kStiff = 8, kSolref = 16, kSolimp = 32 };  // joint
enum { kGear = 1, kGain = 2, kBias = 4 };                     // actuator flags
enum { kFriction = 1, kSize = 2 };                            // geom flags

typedef struct {
  mjcfEditor w;
  const mjModel* m;        // θ written
  const char* path;
  int* body;               // (nbody) element of each body; world: the first <worldbody>
  int nworld;              // worldbody elements
  int* worlds;             // (nworld)
  int* act;                // (nu) actuator elements, or NULL when not located
} mjcfCtx;

static const char* const kBodyTags[] = {"body", NULL};
static const char* const kJointTags[] = {"joint", "freejoint", NULL};
static const char* const kGeomTags[] = {"geom", NULL};
static const char* const kInertialTags[] = {"inertial", NULL};
static const char* const kActTags[] = {"general", "motor", "position", "velocity", "cylinder",
                                       "muscle", "adhesion", "intvelocity", "damper", "plugin",
                                       NULL};

// lists included files for messages
static void includes(const mjcfDoc* d, char* buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  for (int k = 0; k < d->nel && o + 4 < len; k++) {
    mjcfAttr a;
    if (tag_is(d, k, "include") && get_attr(d, k, "file", &a)) {
      o += (size_t)snprintf(buf + o, len - o, "%s%.*s", o ? ", " : "", a.value_len,
                            d->s + a.value);
    }
  }
}

static dsoStatus not_found(mjcfCtx* c, const char* kind, int obj, int id, dsoError* err) {
  const char* nm = mj_id2name(c->m, obj, id);
  char inc[600];
  includes(&c->w.doc, inc, sizeof(inc));
  if (inc[0]) {
    return dso_error(err, DSO_ERR_INPUT,
                     "%s: %s '%s' (#%d) is not in this file; it may be in an included file (%s): "
                     "editing included files is not supported, inline the element to write "
                     "the model", c->path, kind, nm ? nm : "", id, inc);
  }
  return dso_error(err, DSO_ERR_INPUT,
                   "%s: %s '%s' (#%d) not found in the file (elements made by <composite>, "
                   "fusestatic or other generators cannot be edited)", c->path, kind,
                   nm ? nm : "", id);
}

// element k must carry the model's name of (obj, id), or no name when the model has none
static dsoStatus check_name(mjcfCtx* c, int k, const char* kind, int obj, int id, dsoError* err) {
  const char* nm = mj_id2name(c->m, obj, id);
  mjcfAttr a;
  int has = get_attr(&c->w.doc, k, "name", &a);
  if ((nm && nm[0]) ? (has && a.value_len == (int)strlen(nm) &&
                       !strncmp(c->w.doc.s + a.value, nm, (size_t)a.value_len))
                    : !has) {
    return DSO_OK;
  }
  return dso_error(err, DSO_ERR_INPUT,
                   "%s:%d: <%.*s> stands where the model has %s '%s' (#%d): the file does not "
                   "match the compiled model (includes or generated elements?)", c->path,
                   line_of(&c->w.doc, c->w.doc.el[k].start), c->w.doc.el[k].name_len,
                   c->w.doc.s + c->w.doc.el[k].name, kind, nm ? nm : "", id);
}

// children of a body with the given tags; for the world body over every <worldbody>
static int body_child(const mjcfCtx* c, int b, const char* const* tags, int i) {
  if (b > 0) {
    return child(&c->w.doc, c->body[b], tags, i, NULL);
  }
  for (int w = 0; w < c->nworld; w++) {
    int n = 0;
    int k = child(&c->w.doc, c->worlds[w], tags, i, &n);
    if (k >= 0) {
      return k;
    }
    child(&c->w.doc, c->worlds[w], tags, -1, &n);
    i -= n;
  }
  return -1;
}

// maps every body to its element: children of a body in id order are its <body> children in
// document order
static dsoStatus locate_bodies(mjcfCtx* c, dsoError* err) {
  const mjModel* m = c->m;
  int* seen = (int*)calloc((size_t)m->nbody + 1, sizeof(int));
  if (!seen) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->path);
  }
  for (int b = 0; b < m->nbody; b++) {
    c->body[b] = -1;
  }
  for (int b = 1; b < m->nbody; b++) {
    int p = m->body_parentid[b];
    if (p > 0 && c->body[p] < 0) {
      continue;  // parent not located: reported when needed
    }
    int k = c->nworld > 0 || p > 0 ? body_child(c, p, kBodyTags, seen[p]) : -1;
    seen[p]++;
    c->body[b] = k;
  }
  free(seen);
  return DSO_OK;
}

static dsoStatus body_elem(mjcfCtx* c, int b, int* k, dsoError* err) {
  *k = c->body[b];
  if (*k < 0) {
    return not_found(c, "body", mjOBJ_BODY, b, err);
  }
  return check_name(c, *k, "body", mjOBJ_BODY, b, err);
}

static dsoStatus joint_elem(mjcfCtx* c, int j, int* k, dsoError* err) {
  int b = c->m->jnt_bodyid[j];
  *k = c->body[b] >= 0 || b == 0 ? body_child(c, b, kJointTags, j - c->m->body_jntadr[b]) : -1;
  if (*k < 0) {
    return not_found(c, "joint", mjOBJ_JOINT, j, err);
  }
  return check_name(c, *k, "joint", mjOBJ_JOINT, j, err);
}

static dsoStatus geom_elem(mjcfCtx* c, int g, int* k, dsoError* err) {
  int b = c->m->geom_bodyid[g];
  *k = c->body[b] >= 0 || b == 0 ? body_child(c, b, kGeomTags, g - c->m->body_geomadr[b]) : -1;
  if (*k < 0) {
    return not_found(c, "geom", mjOBJ_GEOM, g, err);
  }
  return check_name(c, *k, "geom", mjOBJ_GEOM, g, err);
}

static dsoStatus act_elem(mjcfCtx* c, int a, int* k, dsoError* err) {
  const mjcfDoc* d = &c->w.doc;
  int n = 0;
  *k = -1;
  for (int s = d->el[d->root].first_child; s >= 0 && *k < 0; s = d->el[s].next_sibling) {
    if (tag_is(d, s, "actuator")) {
      int cnt = 0;
      *k = child(d, s, kActTags, a - n, &cnt);
      if (*k < 0) {
        child(d, s, kActTags, -1, &cnt);
        n += cnt;
      }
    }
  }
  if (*k < 0) {
    return not_found(c, "actuator", mjOBJ_ACTUATOR, a, err);
  }
  return check_name(c, *k, "actuator", mjOBJ_ACTUATOR, a, err);
}

// the root's first child with tag, or -1
static int root_child(const mjcfDoc* d, const char* tag) {
  for (int s = d->el[d->root].first_child; s >= 0; s = d->el[s].next_sibling) {
    if (tag_is(d, s, tag)) {
      return s;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// writers per element

// an existing <inertial> gets the attributes of flags; a new one all of them
static void write_inertial(mjcfCtx* c, int b, int k, int flags) {
  const mjModel* m = c->m;
  int in = child(&c->w.doc, k, kInertialTags, 0, NULL);
  char pos[256], quat[256], mass[64], diag[256];
  fmt_vec(pos, sizeof(pos), m->body_ipos + 3 * b, 3);
  fmt_vec(quat, sizeof(quat), m->body_iquat + 4 * b, 4);
  fmt_vec(mass, sizeof(mass), m->body_mass + b, 1);
  fmt_vec(diag, sizeof(diag), m->body_inertia + 3 * b, 3);
  if (in < 0) {
    char t[1024];
    snprintf(t, sizeof(t), "<inertial pos=\"%s\" quat=\"%s\" mass=\"%s\" diaginertia=\"%s\"/>",
             pos, quat, mass, diag);
    insert_child(&c->w, k, t);
    return;
  }
  if (flags & kCom) {
    set_attr(&c->w, in, "pos", pos);
  }
  if (flags & kMass) {
    set_attr(&c->w, in, "mass", mass);
  }
  mjcfAttr a;
  if (!(flags & kInertia)) {
    return;
  }
  if (get_attr(&c->w.doc, in, "fullinertia", &a)) {
    // the principal frame replaces the full matrix
    static const char* const orient[] = {"fullinertia", "euler", "axisangle", "xyaxes", "zaxis"};
    for (int i = 0; i < 5; i++) {
      remove_attr(&c->w, in, orient[i]);
    }
    set_attr(&c->w, in, "quat", quat);
  }
  set_attr(&c->w, in, "diaginertia", diag);
}

static dsoStatus write_joint(mjcfCtx* c, int j, int flags, dsoError* err) {
  const mjModel* m = c->m;
  int k;
  dsoStatus s = joint_elem(c, j, &k, err);
  if (s) {
    return s;
  }
  if (tag_is(&c->w.doc, k, "freejoint")) {
    // <freejoint> takes no defaults, <joint> does: write what the defaults could change
    rename_tag(&c->w, k, "joint");
    set_attr(&c->w, k, "type", "free");
    set_attr(&c->w, k, "limited", "false");
    flags |= kDamp | kFric | kArm | kStiff | kSolref | kSolimp;
  }
  // per-dof fields of n values per dof
  const struct { int flag; const char* attr; const double* field; int n; } f[5] = {
    {kDamp, "damping", m->dof_damping, 1}, {kFric, "frictionloss", m->dof_frictionloss, 1},
    {kArm, "armature", m->dof_armature, 1},
    {kSolref, "solreffriction", m->dof_solref, mjNREF},
    {kSolimp, "solimpfriction", m->dof_solimp, mjNIMP}};
  int adr = m->jnt_dofadr[j], nd = j + 1 < m->njnt ? m->jnt_dofadr[j + 1] - adr : m->nv - adr;
  for (int i = 0; i < 5; i++) {
    if (!(flags & f[i].flag)) {
      continue;
    }
    const double* v0 = f[i].field + (size_t)f[i].n * adr;
    for (int q = 1; q < nd; q++) {
      for (int r = 0; r < f[i].n; r++) {
        double vq = v0[f[i].n * q + r];
        if (vq != v0[r]) {
          return dso_error(err, DSO_ERR_INPUT,
                           "%s: joint '%s': %s%s differs between its dofs (%.17g, %.17g); MJCF "
                           "holds one value per joint", c->path, mj_id2name(m, mjOBJ_JOINT, j),
                           f[i].attr, f[i].n > 1 ? " (a component)" : "", v0[r], vq);
        }
      }
    }
    set_vec(&c->w, k, f[i].attr, v0, f[i].n);
  }
  if (flags & kStiff) {
    set_vec(&c->w, k, "stiffness", m->jnt_stiffness + j, 1);
  }
  return DSO_OK;
}

static dsoStatus write_actuator(mjcfCtx* c, int a, int flags, dsoError* err) {
  const mjModel* m = c->m;
  int k;
  dsoStatus s = act_elem(c, a, &k, err);
  if (s) {
    return s;
  }
  if (flags & kGear) {
    set_vec(&c->w, k, "gear", m->actuator_gear + 6 * a, 6);
  }
  if (!(flags & (kGain | kBias))) {
    return DSO_OK;
  }
  const mjcfDoc* d = &c->w.doc;
  if (!tag_is(d, k, "general")) {
    // a shortcut sets the types and parameters itself: write them out as <general>
    static const char* const known[] = {"motor", "position", "velocity", "cylinder", "muscle"};
    static const char* const own[] = {"kp", "kv", "timeconst", "area", "diameter", "bias",
                                      "range", "force", "scale", "lmin", "lmax", "vmax",
                                      "fpmax", "fvmax"};
    int ok = 0;
    for (int i = 0; i < 5; i++) {
      ok |= tag_is(d, k, known[i]);
    }
    const char *dn = dyn_name(m->actuator_dyntype[a]), *gn = gain_name(m->actuator_gaintype[a]),
               *bn = bias_name(m->actuator_biastype[a]);
    if (!ok || !dn || !gn || !bn) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s:%d: actuator '%s': cannot write gain or bias parameters of <%.*s>",
                       c->path, line_of(d, d->el[k].start), mj_id2name(m, mjOBJ_ACTUATOR, a),
                       d->el[k].name_len, d->s + d->el[k].name);
    }
    for (int i = 0; i < (int)(sizeof(own) / sizeof(own[0])); i++) {
      remove_attr(&c->w, k, own[i]);
    }
    rename_tag(&c->w, k, "general");
    set_attr(&c->w, k, "dyntype", dn);
    set_attr(&c->w, k, "gaintype", gn);
    set_attr(&c->w, k, "biastype", bn);
    set_vec(&c->w, k, "dynprm", m->actuator_dynprm + mjNDYN * a, mjNDYN);
    flags |= kGain | kBias;
  }
  if (flags & kGain) {
    set_vec(&c->w, k, "gainprm", m->actuator_gainprm + mjNGAIN * a, mjNGAIN);
  }
  if (flags & kBias) {
    set_vec(&c->w, k, "biasprm", m->actuator_biasprm + mjNBIAS * a, mjNBIAS);
  }
  return DSO_OK;
}

static dsoStatus write_geom(mjcfCtx* c, int g, int flags, dsoError* err) {
  const mjModel* m = c->m;
  int k;
  dsoStatus s = geom_elem(c, g, &k, err);
  if (s) {
    return s;
  }
  if (flags & kFriction) {
    set_vec(&c->w, k, "friction", m->geom_friction + 3 * g, 3);
  }
  if (flags & kSize) {
    mjcfAttr a;
    if (get_attr(&c->w.doc, k, "fromto", &a)) {
      // fromto would fix the length again: give the frame instead
      static const char* const orient[] = {"fromto", "quat", "euler", "axisangle", "xyaxes",
                                           "zaxis"};
      for (int i = 0; i < 6; i++) {
        remove_attr(&c->w, k, orient[i]);
      }
      set_vec(&c->w, k, "pos", m->geom_pos + 3 * g, 3);
      set_vec(&c->w, k, "quat", m->geom_quat + 4 * g, 4);
    }
    set_vec(&c->w, k, "size", m->geom_size + 3 * g, 3);
  }
  return DSO_OK;
}

// the comment listing the values that have no MJCF attribute (NULL when there are none)
static char* no_attr_comment(const dsoTheta* theta, const double* u, const char* ind) {
  size_t len = 256, o = 0;
  int any = 0;
  for (int i = 0; i < theta->n; i++) {
    len += strlen(theta->entry[i].name) + strlen(ind) + 48;
  }
  char* t = (char*)malloc(len);
  if (!t) {
    return NULL;
  }
  o += (size_t)snprintf(t, len, "<!-- dso: identified values without an MJCF attribute, not in "
                        "this file:");
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    dsoBindKind kd = e->bind.kind;
    if (kd != DSO_BIND_SENSOR_GAIN && kd != DSO_BIND_SENSOR_OFFSET &&
        kd != DSO_BIND_ACTION_STD && kd != DSO_BIND_SENSOR_STD) {
      continue;
    }
    char name[DSO_NAME_LEN];
    snprintf(name, sizeof(name), "%s", e->name);
    for (char* p = strstr(name, "--"); p; p = strstr(p, "--")) {
      p[1] = '_';  // "--" may not appear in a comment
    }
    o += (size_t)snprintf(t + o, len - o, "\n%s     %s = %.17g", ind, name,
                          dso_theta_entry_natural(e, u[i]));
    any = 1;
  }
  snprintf(t + o, len - o, "\n%s-->", ind);
  if (!any) {
    free(t);
    return strdup("");
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// constant generalized forces as bias-only actuators

// name of the actuator that carries joint j's constant force
static void force_act_name(char* buf, size_t len, const mjModel* m, int j) {
  snprintf(buf, len, "dso_force_%s", mj_id2name(m, mjOBJ_JOINT, j));
}

// appends text (lines already indented after the first) as the last child of the root
static void append_to_root(mjcfEditor* w, const char* text) {
  const mjcfDoc* d = &w->doc;
  const mjcfElem* e = &d->el[d->root];
  if (e->close_start < 0) {
    // a self-closing root (<mujoco/>) has no child: the text becomes its only one
    insert_child(w, d->root, text);
    return;
  }
  char ind[128];
  int fc = e->first_child;
  indent_of(d, fc >= 0 ? d->el[fc].start : e->start, ind, sizeof(ind));
  // insert at the start of the end tag's line when only blanks precede it there
  int at = e->close_start, b = at;
  while (b > 0 && (d->s[b - 1] == ' ' || d->s[b - 1] == '\t')) {
    b--;
  }
  int own_line = b == 0 || d->s[b - 1] == '\n';
  size_t len = strlen(text) + strlen(ind) + 8;
  char* t = (char*)malloc(len);
  if (!t) {
    w->oom = 1;
    return;
  }
  snprintf(t, len, own_line ? "%s%s\n" : "\n%s%s\n", ind, text);
  add_edit(w, own_line ? b : at, 0, t);
  free(t);
}

// the physics.<joint>.force entries as MJCF: one <general> per joint with such an entry, in a new
// <actuator> section at the end of the file (so their ids follow the model's own actuators).
// Gain 0 and an affine bias make the actuator force the constant biasprm[0], whatever its ctrl;
// the joint transmission applies gear times that force to the joint's dofs, which equals
// qfrc_applied bit for bit: a hinge or slide gets gear 1 and biasprm[0] = F, a ball or free joint
// gear = (F per dof) and biasprm[0] = 1. Every attribute a default class could change is written.
static dsoStatus force_actuators(mjcfCtx* c, const unsigned char* jforce, const double* qfrc,
                                 const dsoTheta* theta, const double* u, dsoError* err) {
  const mjModel* m = c->m;
  int any = 0;
  for (int j = 0; j < m->njnt; j++) {
    any |= jforce[j];
  }
  if (!any) {
    return DSO_OK;
  }
  if (m->opt.disableflags & mjDSBL_ACTUATION) {
    return dso_error(err, DSO_ERR_INPUT, "%s: the model disables actuation (<flag actuation="
                     "\"disable\">), so the constant forces (physics.<joint>.force) cannot be "
                     "written as actuators", c->path);
  }
  size_t len = 2048, o = 0;
  for (int i = 0; i < theta->n; i++) {
    len += strlen(theta->entry[i].name) + 64;
  }
  for (int j = 0; j < m->njnt; j++) {
    const char* jn = mj_id2name(m, mjOBJ_JOINT, j);
    len += jforce[j] ? 2 * strlen(jn ? jn : "") + 1024 : 0;
  }
  char* t = (char*)malloc(len);
  if (!t) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->path);
  }
  char ind[128], ind2[160];
  const mjcfDoc* d = &c->w.doc;
  int fc = d->el[d->root].first_child;
  indent_of(d, fc >= 0 ? d->el[fc].start : d->el[d->root].start, ind, sizeof(ind));
  snprintf(ind2, sizeof(ind2), "%s  ", ind[0] ? ind : "  ");
  o += (size_t)snprintf(t + o, len - o,
                        "<actuator>\n%s<!-- dso: the identified constant generalized forces "
                        "(dso applies them through qfrc_applied)\n%s     as bias-only "
                        "actuators: gain 0, so their control has no effect, and force =\n%s     "
                        "biasprm[0] times gear on the joint's dofs. They follow the model's own "
                        "actuators:\n%s     ctrl has one more entry per joint, and data recorded "
                        "for the model without them\n%s     has fewer ctrl columns.", ind2, ind2,
                        ind2, ind2, ind2);
  for (int i = 0; i < theta->n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->bind.kind == DSO_BIND_DOF_FORCE) {
      char an[300];
      force_act_name(an, sizeof(an), m, e->bind.id);
      char name[DSO_NAME_LEN];
      snprintf(name, sizeof(name), "%s", e->name);
      for (char* p = strstr(name, "--"); p; p = strstr(p, "--")) {
        p[1] = '_';  // "--" may not appear in a comment
      }
      o += (size_t)snprintf(t + o, len - o, "\n%s     %s = %.17g (actuator %s)", ind2, name,
                            dso_theta_entry_natural(e, u[i]), an);
    }
  }
  o += (size_t)snprintf(t + o, len - o, " -->");
  dsoStatus s = DSO_OK;
  for (int j = 0; j < m->njnt && !s; j++) {
    if (!jforce[j]) {
      continue;
    }
    const char* jn = mj_id2name(m, mjOBJ_JOINT, j);
    char an[300];
    if (!jn || !jn[0]) {
      s = dso_error(err, DSO_ERR_INPUT, "%s: joint #%d has a constant force but no name, so no "
                    "actuator can refer to it; name the joint", c->path, j);
      break;
    }
    force_act_name(an, sizeof(an), m, j);
    if (mj_name2id(m, mjOBJ_ACTUATOR, an) >= 0) {
      s = dso_error(err, DSO_ERR_INPUT, "%s: an actuator is already named '%s'; rename it so "
                    "that the constant force of joint '%s' can be written", c->path, an, jn);
      break;
    }
    int adr = m->jnt_dofadr[j], nd = j + 1 < m->njnt ? m->jnt_dofadr[j + 1] - adr : m->nv - adr;
    double gear[6] = {1, 0, 0, 0, 0, 0}, bias[mjNBIAS] = {0}, gain[mjNGAIN] = {0};
    if (nd == 1) {
      bias[0] = qfrc[adr];
    } else {
      gear[0] = 0;
      for (int q = 0; q < nd && q < 6; q++) {
        gear[q] = qfrc[adr + q];
      }
      bias[0] = 1;
    }
    char gv[256], bv[512], kv[512], ej[600], ea[600];
    fmt_vec(gv, sizeof(gv), gear, 6);
    fmt_vec(bv, sizeof(bv), bias, mjNBIAS);
    fmt_vec(kv, sizeof(kv), gain, mjNGAIN);
    escape_attr(ej, sizeof(ej), jn);
    escape_attr(ea, sizeof(ea), an);
    o += (size_t)snprintf(t + o, len - o,
                          "\n%s<general name=\"%s\" joint=\"%s\" gear=\"%s\" dyntype=\"none\" "
                          "gaintype=\"fixed\" gainprm=\"%s\" biastype=\"affine\" "
                          "biasprm=\"%s\" ctrllimited=\"false\" forcelimited=\"false\"/>",
                          ind2, ea, ej, gv, kv, bv);
  }
  if (!s) {
    snprintf(t + o, len - o, "\n%s</actuator>", ind[0] ? ind : "");
    append_to_root(&c->w, t);
  }
  free(t);
  return s;
}

// ---------------------------------------------------------------------------------------------
// relocation of relative file references

static int is_abs(const char* s, int n) {
  return n > 0 && s[0] == '/';
}

static dsoStatus relocate(mjcfCtx* c, const char* xml_path, const char* out_dir, dsoError* err) {
  char mdir[PATH_MAX], odir[PATH_MAX], full[PATH_MAX];
  if (!realpath(xml_path, full)) {
    return dso_error(err, DSO_ERR_IO, "%s: cannot resolve the model's folder", xml_path);
  }
  char* slash = strrchr(full, '/');
  snprintf(mdir, sizeof(mdir), "%.*s", slash ? (int)(slash - full) : 0, full);
  if (realpath(out_dir, odir) && !strcmp(mdir, odir)) {
    return DSO_OK;
  }
  const mjcfDoc* d = &c->w.doc;
  int assets = 0;
  char buf[2 * PATH_MAX], esc[4 * PATH_MAX];
  for (int k = 0; k < d->nel; k++) {
    mjcfAttr a;
    if (!get_attr(d, k, "file", &a) || is_abs(d->s + a.value, a.value_len)) {
      continue;
    }
    if (tag_is(d, k, "include")) {
      snprintf(buf, sizeof(buf), "%s/%.*s", mdir, a.value_len, d->s + a.value);
      escape_attr(esc, sizeof(esc), buf);
      add_edit(&c->w, a.value, a.value_len, esc);
    } else {
      assets = 1;
    }
  }
  if (!assets) {
    return DSO_OK;
  }
  // asset files resolve against meshdir / texturedir, relative ones against the model's folder
  int comp = root_child(d, "compiler");
  const char* const dirs[2] = {"meshdir", "texturedir"};
  char attrs[2][4 * PATH_MAX];
  for (int i = 0; i < 2; i++) {
    mjcfAttr a;
    if (comp >= 0 && get_attr(d, comp, dirs[i], &a)) {
      if (is_abs(d->s + a.value, a.value_len)) {
        attrs[i][0] = '\0';
        continue;
      }
      snprintf(buf, sizeof(buf), "%s/%.*s", mdir, a.value_len, d->s + a.value);
    } else {
      snprintf(buf, sizeof(buf), "%s/", mdir);
    }
    escape_attr(attrs[i], sizeof(attrs[i]), buf);
  }
  if (comp >= 0) {
    for (int i = 0; i < 2; i++) {
      if (attrs[i][0]) {
        set_attr(&c->w, comp, dirs[i], attrs[i]);
      }
    }
  } else {
    snprintf(buf, sizeof(buf), "<compiler meshdir=\"%s\" texturedir=\"%s\"/>", attrs[0],
             attrs[1]);
    insert_child(&c->w, d->root, buf);
  }
  return DSO_OK;
}

// ---------------------------------------------------------------------------------------------
// edit

static dsoStatus edit_doc(mjcfCtx* c, const dsoTheta* theta, const double* u,
                          const double* qfrc, const char* xml_path, const char* out_dir,
                          dsoError* err) {
  const mjModel* m = c->m;
  mjcfDoc* d = &c->w.doc;
  dsoStatus s = scan(d, err);
  if (s) {
    return s;
  }
  if (!tag_is(d, d->root, "mujoco")) {
    return dso_error(err, DSO_ERR_INPUT, "%s: the root element is <%.*s>, expected <mujoco>",
                     c->path, d->el[d->root].name_len, d->s + d->el[d->root].name);
  }
  for (int k = 0; k < d->nel; k++) {
    if (tag_is(d, k, "compiler") && attr_equals(d, k, "coordinate", "global")) {
      return dso_error(err, DSO_ERR_INPUT,
                       "%s:%d: compiler coordinate=\"global\" is not supported when writing the "
                       "model back (positions would need converting)", c->path,
                       line_of(d, d->el[k].start));
    }
  }
  for (int s2 = d->el[d->root].first_child; s2 >= 0; s2 = d->el[s2].next_sibling) {
    c->nworld += tag_is(d, s2, "worldbody");
  }
  c->worlds = (int*)calloc((size_t)c->nworld + 1, sizeof(int));
  c->body = (int*)calloc((size_t)m->nbody + 1, sizeof(int));
  unsigned char* bf = (unsigned char*)calloc((size_t)m->nbody + 1, 1);
  unsigned char* jf = (unsigned char*)calloc((size_t)m->njnt + 1, 1);
  unsigned char* af = (unsigned char*)calloc((size_t)m->nu + 1, 1);
  unsigned char* gf = (unsigned char*)calloc((size_t)m->ngeom + 1, 1);
  unsigned char* jforce = (unsigned char*)calloc((size_t)m->njnt + 1, 1);
  if (!c->worlds || !c->body || !bf || !jf || !af || !gf || !jforce) {
    s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->path);
    goto done;
  }
  int nw = 0;
  for (int s2 = d->el[d->root].first_child; s2 >= 0; s2 = d->el[s2].next_sibling) {
    if (tag_is(d, s2, "worldbody")) {
      c->worlds[nw++] = s2;
    }
  }
  if ((s = locate_bodies(c, err))) {
    goto done;
  }
  int gravity = 0;
  for (int i = 0; i < theta->n; i++) {
    const dsoBinding* b = &theta->entry[i].bind;
    switch (b->kind) {
      case DSO_BIND_BODY_MASS: bf[b->id] |= kMass; break;
      case DSO_BIND_BODY_COM: bf[b->id] |= kCom; break;
      case DSO_BIND_BODY_INERTIA: bf[b->id] |= kInertia; break;
      case DSO_BIND_BODY_POS: bf[b->id] |= kPos; break;
      case DSO_BIND_DOF_DAMPING: jf[b->id] |= kDamp; break;
      case DSO_BIND_DOF_FRICTIONLOSS: jf[b->id] |= kFric; break;
      case DSO_BIND_DOF_ARMATURE: jf[b->id] |= kArm; break;
      case DSO_BIND_JNT_STIFFNESS: jf[b->id] |= kStiff; break;
      case DSO_BIND_DOF_SOLREF_FRICTION: jf[b->id] |= kSolref; break;
      case DSO_BIND_DOF_SOLIMP_FRICTION: jf[b->id] |= kSolimp; break;
      case DSO_BIND_ACT_GEAR: af[b->id] |= kGear; break;
      case DSO_BIND_ACT_GAIN: af[b->id] |= kGain; break;
      case DSO_BIND_ACT_BIAS: af[b->id] |= kBias; break;
      case DSO_BIND_GEOM_FRICTION: gf[b->id] |= kFriction; break;
      case DSO_BIND_GEOM_SIZE: gf[b->id] |= kSize; break;
      case DSO_BIND_GRAVITY: gravity = 1; break;
      case DSO_BIND_DOF_FORCE: jforce[b->id] = 1; break;
      default: break;
    }
  }
  // compiler options that recompute inertia from geoms or rescale masses
  int fromgeom = 0, total = 0;
  for (int k = 0; k < d->nel; k++) {
    if (tag_is(d, k, "compiler")) {
      fromgeom |= attr_equals(d, k, "inertiafromgeom", "true");
      total |= get_attr(d, k, "settotalmass", NULL);
    }
  }
  int inertia_needed = 0;
  for (int g = 0; g < m->ngeom; g++) {
    int b = m->geom_bodyid[g];
    if ((gf[g] & kSize) && b > 0) {
      // a body whose inertia comes from its geoms keeps the compiled inertia
      int k = c->body[b];
      if (fromgeom || k < 0 || child(d, k, kInertialTags, 0, NULL) < 0) {
        bf[b] |= kInertial;
      }
    }
  }
  for (int b = 1; b < m->nbody; b++) {
    inertia_needed |= bf[b] & kInertial;
  }
  if (inertia_needed && (fromgeom || total)) {
    for (int b = 1; b < m->nbody; b++) {
      if (m->body_mass[b] > 0) {
        bf[b] |= kInertial;
      }
    }
    for (int k = 0; k < d->nel; k++) {
      if (tag_is(d, k, "compiler")) {
        if (attr_equals(d, k, "inertiafromgeom", "true")) {
          set_attr(&c->w, k, "inertiafromgeom", "false");
        }
        remove_attr(&c->w, k, "settotalmass");
      }
    }
  }
  for (int b = 1; b < m->nbody && !s; b++) {
    if (!bf[b]) {
      continue;
    }
    int k;
    if ((s = body_elem(c, b, &k, err))) {
      break;
    }
    if (bf[b] & kPos) {
      set_vec(&c->w, k, "pos", m->body_pos + 3 * b, 3);
    }
    if (bf[b] & kInertial) {
      write_inertial(c, b, k, bf[b]);
    }
  }
  for (int j = 0; j < m->njnt && !s; j++) {
    if (jf[j]) {
      s = write_joint(c, j, jf[j], err);
    }
  }
  for (int a = 0; a < m->nu && !s; a++) {
    if (af[a]) {
      s = write_actuator(c, a, af[a], err);
    }
  }
  for (int g = 0; g < m->ngeom && !s; g++) {
    if (gf[g]) {
      s = write_geom(c, g, gf[g], err);
    }
  }
  if (s) {
    goto done;
  }
  // inserted right after the root's start tag, in this order: the comment, option, compiler
  char ind[128];
  int fc = d->el[d->root].first_child;
  indent_of(d, fc >= 0 ? d->el[fc].start : d->el[d->root].start, ind, sizeof(ind));
  char* note = no_attr_comment(theta, u, ind);
  if (!note) {
    s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->path);
    goto done;
  }
  if (note[0]) {
    insert_child(&c->w, d->root, note);
  }
  free(note);
  if (gravity) {
    char gv[256];
    fmt_vec(gv, sizeof(gv), m->opt.gravity, 3);
    int opt = root_child(d, "option");
    if (opt >= 0) {
      set_attr(&c->w, opt, "gravity", gv);
    } else {
      char t[320];
      snprintf(t, sizeof(t), "<option gravity=\"%s\"/>", gv);
      insert_child(&c->w, d->root, t);
    }
  }
  s = force_actuators(c, jforce, qfrc, theta, u, err);
  if (!s && out_dir) {
    s = relocate(c, xml_path, out_dir, err);
  }
  if (!s && c->w.oom) {
    s = dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", c->path);
  }
done:
  free(bf);
  free(jf);
  free(af);
  free(gf);
  free(jforce);
  return s;
}

dsoStatus dso_mjcf_edit(char** out, const char* xml, const char* xml_path, const mjModel* base,
                        const dsoTheta* theta, const double* u, const char* out_dir,
                        dsoError* err) {
  *out = NULL;
  size_t n = strlen(xml);
  if (n > (size_t)INT_MAX / 2) {
    return dso_error(err, DSO_ERR_INPUT, "%s: model file too large", xml_path);
  }
  dsoSim* sim = dso_sim_create(base, err);
  if (!sim) {
    return err ? err->code : DSO_ERR_MEMORY;
  }
  dsoStatus s = dso_sim_write(sim, theta, u, err);
  mjcfCtx c;
  memset(&c, 0, sizeof(c));
  c.w.doc.s = xml;
  c.w.doc.n = (int)n;
  c.w.doc.path = xml_path;
  c.m = dso_sim_model(sim);
  c.path = xml_path;
  if (!s) {
    s = edit_doc(&c, theta, u, dso_sim_qfrc(sim), xml_path, out_dir, err);
  }
  if (!s) {
    s = apply_edits(&c.w, out, err);
  }
  for (int i = 0; i < c.w.ned; i++) {
    free(c.w.ed[i].text);
  }
  free(c.w.ed);
  free(c.w.doc.el);
  free(c.body);
  free(c.worlds);
  dso_sim_free(sim);
  return s;
}

// ---------------------------------------------------------------------------------------------
// verification

static int close_enough(double a, double b) {
  double d = fabs(a - b);
  return d <= 1e-15 || d <= 1e-12 * fmax(fabs(a), fabs(b));
}

// the constant force the appended bias-only actuators of m (ids from nu0 on) apply per dof, into
// qf (nv); DSO_ERR_INTERNAL when one of them is not such an actuator
static dsoStatus force_of_actuators(double* qf, const mjModel* m, int nu0, dsoError* err) {
  mju_zero(qf, m->nv);
  for (int a = nu0; a < m->nu; a++) {
    int ok = m->actuator_trntype[a] == mjTRN_JOINT && m->actuator_dyntype[a] == mjDYN_NONE &&
             m->actuator_gaintype[a] == mjGAIN_FIXED && m->actuator_biastype[a] == mjBIAS_AFFINE &&
             !m->actuator_forcelimited[a];
    for (int k = 0; k < mjNGAIN; k++) {
      ok &= m->actuator_gainprm[mjNGAIN * a + k] == 0;
    }
    for (int k = 1; k < mjNBIAS; k++) {
      ok &= m->actuator_biasprm[mjNBIAS * a + k] == 0;
    }
    if (!ok) {
      const char* nm = mj_id2name(m, mjOBJ_ACTUATOR, a);
      return dso_error(err, DSO_ERR_INTERNAL, "the edited model's actuator #%d '%s' (after the "
                       "model's %d) is not a bias-only joint actuator carrying a constant force",
                       a, nm ? nm : "", nu0);
    }
    int j = m->actuator_trnid[2 * a];
    int adr = m->jnt_dofadr[j], nd = j + 1 < m->njnt ? m->jnt_dofadr[j + 1] - adr : m->nv - adr;
    for (int q = 0; q < nd && q < 6; q++) {
      qf[adr + q] += m->actuator_gear[6 * a + q] * m->actuator_biasprm[mjNBIAS * a];
    }
  }
  return DSO_OK;
}

dsoStatus dso_mjcf_verify_file(const char* path, const mjModel* expect, const double* qfrc,
                               dsoError* err) {
  dsoError lerr = {0};
  mjModel* m = dso_mj_load(path, &lerr);
  if (!m) {
    return dso_error(err, DSO_ERR_INTERNAL, "the edited model does not compile: %s", lerr.msg);
  }
  dsoStatus s = DSO_OK;
  if (m->nbody != expect->nbody || m->njnt != expect->njnt || m->ngeom != expect->ngeom ||
      m->nu < expect->nu || m->nq != expect->nq || m->nv != expect->nv) {
    s = dso_error(err, DSO_ERR_INTERNAL, "the edited model has another structure (bodies %d/%d, "
                  "joints %d/%d, geoms %d/%d, actuators %d/%d or more)", m->nbody, expect->nbody,
                  m->njnt, expect->njnt, m->ngeom, expect->ngeom, m->nu, expect->nu);
  }
  // the constant forces: the actuators after the model's own ones
  double* qf = s ? NULL : (double*)calloc((size_t)m->nv + 1, sizeof(double));
  if (!s && !qf) {
    s = dso_error(err, DSO_ERR_MEMORY, "out of memory");
  }
  if (!s) {
    s = force_of_actuators(qf, m, expect->nu, err);
  }
  for (int i = 0; i < m->nv && !s; i++) {
    double want = qfrc ? qfrc[i] : 0.0;
    if (!close_enough(qf[i], want)) {
      s = dso_error(err, DSO_ERR_INTERNAL, "the edited model applies a constant force %.17g on "
                    "dof %d, expected %.17g", qf[i], i, want);
    }
  }
  free(qf);
  int nb = s ? 0 : dso_bind_list(NULL, 0, expect);
  dsoBinding* list = nb ? (dsoBinding*)calloc((size_t)nb, sizeof(dsoBinding)) : NULL;
  if (nb && !list) {
    s = dso_error(err, DSO_ERR_MEMORY, "out of memory");
  }
  if (list) {
    dso_bind_list(list, nb, expect);
  }
  for (int i = 0; i < nb && !s; i++) {
    const double* pa = dso_bind_field((mjModel*)expect, &list[i]);
    const double* pb = dso_bind_field(m, &list[i]);
    if (pa && pb && !close_enough(*pa, *pb)) {
      char name[300];
      dso_bind_name(name, sizeof(name), expect, &list[i]);
      s = dso_error(err, DSO_ERR_INTERNAL, "the edited model compiles to %s = %.17g, expected "
                    "%.17g", name, *pb, *pa);
    }
  }
  free(list);
  // frames the edits may have written
  for (int b = 0; b < m->nbody && !s; b++) {
    for (int k = 0; k < 4 && !s; k++) {
      if (!close_enough(m->body_iquat[4 * b + k], expect->body_iquat[4 * b + k])) {
        s = dso_error(err, DSO_ERR_INTERNAL, "the edited model compiles to body_iquat[%d] = "
                      "%.17g for body '%s', expected %.17g", k, m->body_iquat[4 * b + k],
                      mj_id2name(expect, mjOBJ_BODY, b), expect->body_iquat[4 * b + k]);
      }
    }
  }
  for (int g = 0; g < m->ngeom && !s; g++) {
    for (int k = 0; k < 7 && !s; k++) {
      double a = k < 3 ? m->geom_pos[3 * g + k] : m->geom_quat[4 * g + k - 3];
      double e = k < 3 ? expect->geom_pos[3 * g + k] : expect->geom_quat[4 * g + k - 3];
      if (!close_enough(a, e)) {
        s = dso_error(err, DSO_ERR_INTERNAL, "the edited model compiles to geom_%s[%d] = %.17g "
                      "for geom #%d, expected %.17g", k < 3 ? "pos" : "quat", k < 3 ? k : k - 3,
                      a, g, e);
      }
    }
  }
  mj_deleteModel(m);
  return s;
}

dsoStatus dso_mjcf_write(const char* out_path, const char* model_path, const mjModel* base,
                         const dsoTheta* theta, const double* u, dsoError* err) {
  char dir[4200];
  const char* slash = strrchr(out_path, '/');
  snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - out_path) : 1,
           slash ? out_path : ".");
  if (slash == out_path) {
    snprintf(dir, sizeof(dir), "/");
  }
  char* xml = dso_read_text_file(model_path, err);
  if (!xml) {
    return err ? err->code : DSO_ERR_IO;
  }
  char* text = NULL;
  dsoStatus s = dso_mjcf_edit(&text, xml, model_path, base, theta, u, dir, err);
  free(xml);
  dsoSim* sim = NULL;
  if (!s) {
    sim = dso_sim_create(base, err);
    s = sim ? dso_sim_write(sim, theta, u, err) : (err ? err->code : DSO_ERR_MEMORY);
  }
  dsoAtomicFile* af = NULL;
  if (!s) {
    dsoError e = {0};
    af = dso_atomic_open(out_path, &e);
    if (af && !dso_atomic_write(af, text, strlen(text), &e)) {
      dso_atomic_flush(af, &e);
    }
    s = e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
  }
  if (!s) {
    s = dso_mjcf_verify_file(dso_atomic_temp_path(af), dso_sim_model(sim), dso_sim_qfrc(sim),
                             err);
    if (s) {
      dso_error_prefix(err, "%s: writing the model with the identified values: ", out_path);
    }
  }
  if (!s) {
    s = dso_atomic_commit(af, err);
    af = NULL;
  }
  dso_atomic_abort(af);
  dso_sim_free(sim);
  free(text);
  return s;
}
