// JSON helpers for dso's input files (private: not installed). Every error names the file and the
// JSON path of the offending value, e.g. "task.json: theta[2].bounds: expected ...".
#ifndef DSO_JSON_H
#define DSO_JSON_H

#include <cJSON.h>
#include <mujoco/mujoco.h>
#include <stddef.h>

#include "dso/error.h"
#include "core/io.h"

// Where a value being read sits, for messages: the file, the JSON path of the node, and the
// error to fill. Made with dso_cfg_ctx at a file's root, then dso_cfg_key / dso_cfg_index for
// the nodes below; one value instead of the (file, path, err) triple.
typedef struct dsoCfg_ {
  const char* file;  // the file as given ("tasks/arm.json")
  char path[256];    // JSON path of the node ("theta[2].bounds"); "" at the top level
  dsoError* err;     // where errors go
} dsoCfg;

// The context of the node at path (NULL or "": the top level) of file.
dsoCfg dso_cfg_ctx(const char* file, const char* path, dsoError* err);

// The context of member key of c's node (path "a.b.key"; "key" at the top level).
dsoCfg dso_cfg_key(const dsoCfg* c, const char* key);

// The context of element i of c's node (path "a.b[i]").
dsoCfg dso_cfg_index(const dsoCfg* c, int i);

// Sets c->err to code with "FILE: PATH: message" (printf-style fmt) and returns code.
dsoStatus dso_cfg_fail(const dsoCfg* c, dsoStatus code, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Checks that node is an object whose keys are all in valid (NULL-terminated) and unique.
dsoStatus dso_cfg_object(const cJSON* node, const char* const* valid, const dsoCfg* c);
// Reads obj[key] as a finite number into out. A missing key is an error when required, else out
// is left as it is and *present (may be NULL) is set to 0.
dsoStatus dso_cfg_number(double* out, int* present, const cJSON* obj, const char* key,
                         int required, const dsoCfg* c);
// Reads obj[key] as a string (borrowed from obj) into *out; see dso_cfg_number for missing keys.
dsoStatus dso_cfg_string(const char** out, const cJSON* obj, const char* key, int required,
                         const dsoCfg* c);
// Reads obj[key] as true/false into *out (0 or 1); a missing key leaves *out as it is.
dsoStatus dso_cfg_bool(int* out, const cJSON* obj, const char* key, const dsoCfg* c);
// Reads {"joint": number, ...} for hinge and slide joints of m into out, at the joints' qpos
// addresses (use_qpos) or dof addresses; nonneg requires numbers >= 0. Unknown joints, other joint
// types and non-numbers are errors naming file and path.
dsoStatus dso_cfg_joint_values(double* out, int use_qpos, int nonneg, const mjModel* m,
                               const cJSON* obj, const dsoCfg* c);

// Largest JSON file dso reads (dso_read_text_file's limit, core/io.h).
#define DSO_JSON_MAX_BYTES DSO_TEXT_MAX_BYTES

// Parses text; on a syntax error err names file, line and column. A \u0000 escape in a key or
// string is an error naming its line, column and JSON path (cJSON would cut the string short
// there). Returns NULL on error.
cJSON* dso_json_parse(const char* text, const char* file, dsoError* err);

// dso_read_text_file then dso_json_parse: the JSON file at path, or NULL with err naming it.
cJSON* dso_json_read_file(const char* path, dsoError* err);

// Short description of a JSON value's type ("a string", "an array", ...) for messages.
const char* dso_json_type_name(const cJSON* node);

#endif  // DSO_JSON_H
