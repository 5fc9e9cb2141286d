// Error codes and the error record that every failing call fills.
#ifndef DSO_ERROR_H
#define DSO_ERROR_H

#include "dso/export.h"

#ifdef __cplusplus
extern "C" {
#endif

// Status codes returned by library calls. DSO_OK is zero; all failures are positive.
typedef enum dsoStatus_ {
  DSO_OK = 0,
  DSO_ERR_INPUT,     // bad input: malformed file, unknown name, wrong size, value out of range
  DSO_ERR_IO,        // a file could not be read or written
  DSO_ERR_MEMORY,    // allocation failed
  DSO_ERR_MUJOCO,    // MuJoCo reported a fatal error (trapped)
  DSO_ERR_NUMERIC,   // NaN, Inf, divergence or a singular system
  DSO_ERR_INTERNAL   // a broken invariant inside dso
} dsoStatus;

#define DSO_ERROR_LEN 1024

// Error record: the status of the first failure and a message that names the file, field or index
// and what was expected. Zero-initialize before use ({0} is DSO_OK with an empty message).
typedef struct dsoError_ {
  dsoStatus code;
  char msg[DSO_ERROR_LEN];
} dsoError;

// Sets err (may be NULL) to code and a printf-style message; returns code, for
// `return dso_error(...)`. The first failure wins: a record that already holds an error is left
// as it is.
DSO_API dsoStatus dso_error(dsoError* err, dsoStatus code, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Prefixes the message held by err with a printf-style context, e.g. the file name.
DSO_API void dso_error_prefix(dsoError* err, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// Clears err to DSO_OK with an empty message (err may be NULL).
DSO_API void dso_error_clear(dsoError* err);

// Short static name of a status code ("ok", "bad input", ...).
DSO_API const char* dso_status_string(dsoStatus code);

#ifdef __cplusplus
}
#endif
#endif  // DSO_ERROR_H
