#define _POSIX_C_SOURCE 200809L  // read, close
#include "config/json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io.h"

// line and column (1-based) of position at in text
static void line_col(int* line, int* col, const char* text, const char* at) {
  *line = 1;
  *col = 1;
  for (const char* p = text; p < at && *p; p++) {
    if (*p == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

// the first \u0000 escape inside a string of (syntactically valid) JSON text, or NULL; with
// hex, every such escape is rewritten to \u00<hex> instead (text is then written to)
static const char* scan_nul_escapes(char* text, const char* hex) {
  int in_string = 0;
  for (char* p = text; *p; p++) {
    if (!in_string) {
      in_string = *p == '"';
    } else if (*p == '"') {
      in_string = 0;
    } else if (*p == '\\') {
      if (p[1] == 'u' && !strncmp(p + 2, "0000", 4)) {
        if (!hex) {
          return p;
        }
        p[4] = hex[0];
        p[5] = hex[1];
      }
      if (p[1]) {
        p++;  // the escaped character
      }
    }
  }
  return NULL;
}

static const char* find_nul_escape(const char* text) {
  return scan_nul_escapes((char*)text, NULL);  // only reads without hex
}

// 1 if text holds byte c raw or as a \u00XX escape (either case), so c cannot mark the NULs
static int uses_byte(const char* text, int c) {
  if (strchr(text, c)) {
    return 1;
  }
  for (const char* p = strstr(text, "\\u00"); p; p = strstr(p + 1, "\\u00")) {
    int v = 0, ok = 1;
    for (int k = 4; k < 6 && ok; k++) {
      int h = tolower((unsigned char)p[k]);
      ok = isxdigit(h);
      v = 16 * v + (isdigit(h) ? h - '0' : h - 'a' + 10);
    }
    if (ok && v == c) {
      return 1;
    }
  }
  return 0;
}

// copies s into buf (size len) for a message, the marker byte shown as \u0000
static void show_marked(char* buf, size_t len, const char* s, char mark) {
  size_t n = 0;
  for (; *s && n + 8 < len; s++) {
    n += (size_t)snprintf(buf + n, len - n, *s == mark ? "\\u0000" : "%c", *s);
  }
  buf[n] = '\0';
}

// finds the first key or string under node that holds mark; path (size len) receives its JSON
// path, what says "the key ..." or "the string ..."; returns 1 when found
static int find_marked(char* path, size_t len, char* what, size_t wlen, const cJSON* node,
                       char mark) {
  if (cJSON_IsString(node) && node->valuestring && strchr(node->valuestring, mark)) {
    char shown[80];
    show_marked(shown, sizeof(shown), node->valuestring, mark);
    snprintf(what, wlen, "the string \"%s\"", shown);
    return 1;
  }
  int i = 0;
  size_t base = strlen(path);
  for (const cJSON* it = node->child; it; it = it->next, i++) {
    if (cJSON_IsObject(node)) {
      char key[80];
      show_marked(key, sizeof(key), it->string ? it->string : "", mark);
      snprintf(path + base, len - base, "%s%s", base ? "." : "", key);
      if (it->string && strchr(it->string, mark)) {
        snprintf(what, wlen, "the key \"%s\"", key);
        path[base] = '\0';  // the object that holds the key
        return 1;
      }
    } else {
      snprintf(path + base, len - base, "[%d]", i);
    }
    if (find_marked(path, len, what, wlen, it, mark)) {
      return 1;
    }
    path[base] = '\0';
  }
  return 0;
}

// err for a \u0000 escape at nul: cJSON would end the decoded string there, so names would be
// cut short silently. The text is parsed again with the escapes replaced by a control character
// the text does not use, and the string that holds it names the JSON path.
static void nul_error(const char* text, const char* nul, const char* file, dsoError* err) {
  int line, col;
  line_col(&line, &col, text, nul);
  char path[512] = "", what[200] = "a string";
  static const int kMarks[] = {1, 2, 3, 4, 5, 6, 7, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                               24, 25, 26, 27, 28, 29, 30, 31};
  int mark = 0;
  for (size_t k = 0; k < sizeof(kMarks) / sizeof(kMarks[0]) && !mark; k++) {
    mark = uses_byte(text, kMarks[k]) ? 0 : kMarks[k];
  }
  char* copy = mark ? (char*)malloc(strlen(text) + 1) : NULL;
  if (copy) {
    strcpy(copy, text);
    char hex[3];
    snprintf(hex, sizeof(hex), "%02x", mark);
    scan_nul_escapes(copy, hex);
    cJSON* root = cJSON_Parse(copy);
    if (root && !find_marked(path, sizeof(path), what, sizeof(what), root, (char)mark)) {
      path[0] = '\0';
    }
    cJSON_Delete(root);
    free(copy);
  }
  dso_error(err, DSO_ERR_INPUT, "%s: line %d, column %d: %s%s%s holds \\u0000 (a NUL character), "
            "which would cut it short; names and values must not contain it", file, line, col,
            path[0] ? path : "", path[0] ? ": " : "", what);
}

cJSON* dso_json_parse(const char* text, const char* file, dsoError* err) {
  const char* first = text;
  if (!strncmp(first, "\xEF\xBB\xBF", 3)) {
    first += 3;  // a UTF-8 byte-order mark
  }
  while (*first && isspace((unsigned char)*first)) {
    first++;
  }
  if (!*first) {
    dso_error(err, DSO_ERR_INPUT, "%s: holds no JSON value (only whitespace), expected an object",
              file);
    return NULL;
  }
  const char* end = NULL;
  cJSON* root = cJSON_ParseWithOpts(text, &end, 1);
  if (root) {
    const char* nul = find_nul_escape(text);
    if (nul) {
      cJSON_Delete(root);
      nul_error(text, nul, file, err);
      return NULL;
    }
    return root;
  }
  const char* at = end ? end : cJSON_GetErrorPtr();
  if (!at || at < text) {
    at = text;
  }
  int line, col;
  line_col(&line, &col, text, at);
  // cJSON also fails on nesting deeper than CJSON_NESTING_LIMIT
  int depth = 0, maxdepth = 0;
  for (const char* p = text; p < at && *p; p++) {
    if (*p == '[' || *p == '{') {
      depth++;
      maxdepth = depth > maxdepth ? depth : maxdepth;
    } else if (*p == ']' || *p == '}') {
      depth--;
    }
  }
  if (!*at) {
    dso_error(err, DSO_ERR_INPUT, "%s: line %d, column %d: unexpected end of file (truncated JSON?)",
              file, line, col);
  } else if (maxdepth >= CJSON_NESTING_LIMIT) {
    dso_error(err, DSO_ERR_INPUT, "%s: line %d, column %d: JSON nested deeper than %d levels",
              file, line, col, CJSON_NESTING_LIMIT);
  } else {
    char near[24] = "";
    snprintf(near, sizeof(near), "%.16s", at);
    for (char* q = near; *q; q++) {
      if (*q == '\n' || *q == '\r' || *q == '\t') {
        *q = ' ';
      }
    }
    dso_error(err, DSO_ERR_INPUT, "%s: line %d, column %d: malformed JSON near '%s'", file, line,
              col, near);
  }
  return NULL;
}

cJSON* dso_json_read_file(const char* path, dsoError* err) {
  char* text = dso_read_text_file(path, err);
  cJSON* root = text ? dso_json_parse(text, path, err) : NULL;
  free(text);
  return root;
}

const char* dso_json_type_name(const cJSON* node) {
  if (!node) return "missing";
  if (cJSON_IsObject(node)) return "an object";
  if (cJSON_IsArray(node)) return "an array";
  if (cJSON_IsString(node)) return "a string";
  if (cJSON_IsNumber(node)) return "a number";
  if (cJSON_IsBool(node)) return "a boolean";
  if (cJSON_IsNull(node)) return "null";
  return "an invalid value";
}

static dsoStatus json_check_object(const cJSON* node, const char* const* valid, const char* file,
                                   const char* path, dsoError* err) {
  if (!cJSON_IsObject(node)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s: expected an object, got %s", file,
                     path[0] ? path : "top level", dso_json_type_name(node));
  }
  for (const cJSON* it = node->child; it; it = it->next) {
    int ok = 0;
    for (int i = 0; valid[i]; i++) {
      ok |= !strcmp(it->string, valid[i]);
    }
    if (!ok) {
      char list[512] = "";
      for (int i = 0; valid[i]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", valid[i]);
      }
      return dso_error(err, DSO_ERR_INPUT, "%s: %s%sunknown key \"%s\"; valid keys: %s", file,
                       path, path[0] ? ": " : "", it->string, list);
    }
    for (const cJSON* prev = node->child; prev != it; prev = prev->next) {
      if (!strcmp(prev->string, it->string)) {
        return dso_error(err, DSO_ERR_INPUT, "%s: %s%skey \"%s\" appears twice", file, path,
                         path[0] ? ": " : "", it->string);
      }
    }
  }
  return DSO_OK;
}

static dsoStatus missing(int required, int* present, const char* file, const char* path,
                         const char* key, const char* what, dsoError* err) {
  if (present) {
    *present = 0;
  }
  if (required) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s%s\"%s\" is required (%s)", file, path,
                     path[0] ? ": " : "", key, what);
  }
  return DSO_OK;
}

static dsoStatus json_number(double* out, int* present, const cJSON* obj, const char* key,
                             int required, const char* file, const char* path, dsoError* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    return missing(required, present, file, path, key, "a number", err);
  }
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s%s%s: expected a finite number, got %s", file,
                     path, path[0] ? "." : "", key,
                     cJSON_IsNumber(v) ? "a non-finite number" : dso_json_type_name(v));
  }
  *out = v->valuedouble;
  if (present) {
    *present = 1;
  }
  return DSO_OK;
}

static dsoStatus json_string(const char** out, const cJSON* obj, const char* key, int required,
                             const char* file, const char* path, dsoError* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    return missing(required, NULL, file, path, key, "a string", err);
  }
  if (!cJSON_IsString(v) || !v->valuestring) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s%s%s: expected a string, got %s", file, path,
                     path[0] ? "." : "", key, dso_json_type_name(v));
  }
  *out = v->valuestring;
  return DSO_OK;
}

static dsoStatus json_bool(int* out, const cJSON* obj, const char* key, const char* file,
                           const char* path, dsoError* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    return DSO_OK;
  }
  if (!cJSON_IsBool(v)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s%s%s: expected true or false, got %s", file,
                     path, path[0] ? "." : "", key, dso_json_type_name(v));
  }
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return DSO_OK;
}

// reads {"joint": number} for hinge and slide joints into out at qpos (use_qpos) or dof addresses
static dsoStatus json_joint_values(double* out, int use_qpos, int nonneg, const mjModel* m,
                                   const cJSON* obj, const char* file, const char* path,
                                   dsoError* err) {
  if (!cJSON_IsObject(obj)) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %s: expected an object {\"joint\": number}, got %s",
                     file, path, dso_json_type_name(obj));
  }
  for (const cJSON* it = obj->child; it; it = it->next) {
    int j = mj_name2id(m, mjOBJ_JOINT, it->string);
    if (j < 0) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s: the model has no joint named \"%s\"", file,
                       path, it->string);
    }
    if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s: only hinge and slide joints are supported",
                       file, path, it->string);
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s: expected a finite number, got %s", file,
                       path, it->string,
                       cJSON_IsNumber(it) ? "a non-finite number" : dso_json_type_name(it));
    }
    if (nonneg && it->valuedouble < 0) {
      return dso_error(err, DSO_ERR_INPUT, "%s: %s.%s: expected a number >= 0, got %g", file,
                       path, it->string, it->valuedouble);
    }
    out[use_qpos ? m->jnt_qposadr[j] : m->jnt_dofadr[j]] = it->valuedouble;
  }
  return DSO_OK;
}


dsoCfg dso_cfg_ctx(const char* file, const char* path, dsoError* err) {
  dsoCfg c;
  c.file = file ? file : "";
  snprintf(c.path, sizeof(c.path), "%s", path ? path : "");
  c.err = err;
  return c;
}

dsoCfg dso_cfg_key(const dsoCfg* c, const char* key) {
  dsoCfg k = *c;
  snprintf(k.path, sizeof(k.path), "%s%s%s", c->path, c->path[0] ? "." : "", key);
  return k;
}

dsoCfg dso_cfg_index(const dsoCfg* c, int i) {
  dsoCfg k = *c;
  snprintf(k.path, sizeof(k.path), "%s[%d]", c->path, i);
  return k;
}

dsoStatus dso_cfg_fail(const dsoCfg* c, dsoStatus code, const char* fmt, ...) {
  char msg[DSO_ERROR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->path[0]) {
    return dso_error(c->err, code, "%s: %s: %s", c->file, c->path, msg);
  }
  return dso_error(c->err, code, "%s: %s", c->file, msg);
}

dsoStatus dso_cfg_object(const cJSON* node, const char* const* valid, const dsoCfg* c) {
  return json_check_object(node, valid, c->file, c->path, c->err);
}

dsoStatus dso_cfg_number(double* out, int* present, const cJSON* obj, const char* key,
                         int required, const dsoCfg* c) {
  return json_number(out, present, obj, key, required, c->file, c->path, c->err);
}

dsoStatus dso_cfg_string(const char** out, const cJSON* obj, const char* key, int required,
                         const dsoCfg* c) {
  return json_string(out, obj, key, required, c->file, c->path, c->err);
}

dsoStatus dso_cfg_bool(int* out, const cJSON* obj, const char* key, const dsoCfg* c) {
  return json_bool(out, obj, key, c->file, c->path, c->err);
}

dsoStatus dso_cfg_joint_values(double* out, int use_qpos, int nonneg, const mjModel* m,
                               const cJSON* obj, const dsoCfg* c) {
  return json_joint_values(out, use_qpos, nonneg, m, obj, c->file, c->path, c->err);
}
