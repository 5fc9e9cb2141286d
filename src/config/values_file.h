// Values files: θ values by name, as the --values and --truth options of dso run, evaluate and
// simulate read them (private: not installed).
#ifndef DSO_CONFIG_VALUES_FILE_H
#define DSO_CONFIG_VALUES_FILE_H

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Reads parameter values by name from the JSON file at path into u (theta->n, unconstrained):
// either an object {"name": value, ...} or a `dso run` result.json ({"theta": [{"name": ..,
// "value": ..}, ...]}). Entries the file does not name keep their value in u. Unknown names,
// values that are not finite numbers or lie outside an entry's bounds or domain are errors naming
// the file and the entry; on error u is unchanged. In a result.json a value within 1e-12
// (relative) outside a bound is taken at the bound (just inside an open one): an entry identified
// at its bound can print one rounding step outside it.
dsoStatus dso_values_read_file(const dsoTheta* theta, double* u, const char* path,
                               dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_VALUES_FILE_H
