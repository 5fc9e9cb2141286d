// Version of dso: compile-time macros and the run-time number of the library actually linked.
// CMakeLists.txt reads the project version from the three macros below.
#ifndef DSO_VERSION_H
#define DSO_VERSION_H

#define DSO_VERSION_MAJOR 0
#define DSO_VERSION_MINOR 3
#define DSO_VERSION_PATCH 0

// One number that orders versions: 10000 * major + 100 * minor + patch (0.3.0 -> 300).
#define DSO_VERSION_NUMBER (10000 * DSO_VERSION_MAJOR + 100 * DSO_VERSION_MINOR + DSO_VERSION_PATCH)

#include "dso/export.h"

#ifdef __cplusplus
extern "C" {
#endif

// Version of the linked library, e.g. "0.3.0".
DSO_API const char* dso_version_string(void);

// DSO_VERSION_NUMBER of the linked library; compare it with the macro of the headers compiled
// against to detect a mismatched shared library.
DSO_API int dso_version_number(void);

#ifdef __cplusplus
}
#endif

#endif  // DSO_VERSION_H
