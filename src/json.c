#include "json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

char* dso_read_text_file(const char* path, dsoError* err) {
  if (!path || !path[0]) {
    dso_error(err, DSO_ERR_INPUT, "empty file name");
    return NULL;
  }
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    dso_error(err, DSO_ERR_INPUT, "%s: is a directory, expected a file", path);
    return NULL;
  }
  FILE* f = fopen(path, "rb");
  if (!f) {
    dso_error(err, DSO_ERR_IO, "%s: cannot open file", path);
    return NULL;
  }
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) {
    size = ftell(f);
    rewind(f);
  }
  if (size < 0) {
    fclose(f);
    dso_error(err, DSO_ERR_IO, "%s: cannot read file (not a regular file?)", path);
    return NULL;
  }
  if (size == 0) {
    fclose(f);
    dso_error(err, DSO_ERR_INPUT, "%s: file is empty", path);
    return NULL;
  }
  if (size > DSO_JSON_MAX_BYTES) {
    fclose(f);
    dso_error(err, DSO_ERR_INPUT, "%s: file is %ld bytes, more than the %ld allowed", path, size,
              (long)DSO_JSON_MAX_BYTES);
    return NULL;
  }
  char* buf = (char*)malloc((size_t)size + 1);
  if (!buf) {
    fclose(f);
    dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  size_t got = fread(buf, 1, (size_t)size, f);
  fclose(f);
  if (got != (size_t)size) {
    free(buf);
    dso_error(err, DSO_ERR_IO, "%s: short read", path);
    return NULL;
  }
  buf[size] = '\0';
  if (strlen(buf) != (size_t)size) {
    free(buf);
    dso_error(err, DSO_ERR_INPUT, "%s: binary file (contains a NUL byte), expected text", path);
    return NULL;
  }
  return buf;
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
    return root;
  }
  const char* at = end ? end : cJSON_GetErrorPtr();
  if (!at || at < text) {
    at = text;
  }
  int line = 1, col = 1;
  for (const char* p = text; p < at && *p; p++) {
    if (*p == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
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

dsoStatus dso_json_check_object(const cJSON* node, const char* const* valid, const char* file,
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

dsoStatus dso_json_number(double* out, int* present, const cJSON* obj, const char* key,
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

dsoStatus dso_json_string(const char** out, const cJSON* obj, const char* key, int required,
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

dsoStatus dso_json_bool(int* out, const cJSON* obj, const char* key, const char* file,
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
dsoStatus dso_json_joint_values(double* out, int use_qpos, int nonneg, const mjModel* m,
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

