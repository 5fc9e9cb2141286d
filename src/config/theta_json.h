// θ values by name as JSON: the object {"name": natural value, ...} that `dso run` writes into
// result.json, `--values` and truth files give, and `dso simulate --set` reads. Reader and writer
// are kept together so that what one writes the other reads back.
#ifndef DSO_CONFIG_THETA_JSON_H
#define DSO_CONFIG_THETA_JSON_H

#include "dso/error.h"
#include "mujoco/theta.h"

#ifdef __cplusplus
extern "C" {
#endif

// Serializes the natural values of u as a JSON object {"name": value, ...} in layout order.
// Returns a malloc'd string (free with free()) or NULL with err set.
char* dso_theta_to_json(const dsoTheta* theta, const double* u, dsoError* err);

// Reads natural values by name from JSON text (an object of name: number) into u; entries that
// the text does not name keep their value in u. source names the text in error messages (a file
// name; NULL: "theta"). Unknown names, non-numbers and values outside bounds or domain
// (dso_theta_entry_check) are errors; on error u is left unchanged.
dsoStatus dso_theta_from_json(const dsoTheta* theta, double* u, const char* text,
                              const char* source, dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_CONFIG_THETA_JSON_H
