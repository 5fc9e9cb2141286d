// The verification of the DSO estimators on seeded random finite chains, where everything is exact
// (issue 3, `dso verify`). Each row compares an estimate with its exact value: sampled estimates by
// z = (estimate - exact) / stderr with |z| < 4, exact identities by relative error < 1e-9, and the
// variance reduction of the baseline by a ratio. The library computes the rows; the CLI prints them.
#ifndef DSO_VERIFY_H
#define DSO_VERIFY_H

#include <stdint.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// How a row is judged.
typedef enum dsoRowKind_ {
  DSO_ROW_Z = 0,   // pass if |z| < tol (tol = 4 standard errors)
  DSO_ROW_REL,     // pass if relative error < tol
  DSO_ROW_RATIO    // pass if ratio >= tol (variance without / with baseline)
} dsoRowKind;

// One row of the verification table.
typedef struct dsoVerifyRow_ {
  char quantity[96];  // what is compared, with the paper's equation
  dsoRowKind kind;
  double exact;       // exact value (for vectors: 2-norm; ratio rows: variance with baseline)
  double estimate;    // estimate (for vectors: 2-norm; ratio rows: variance without baseline)
  double stderr_;     // standard error of the estimate (z rows; NaN otherwise)
  double score;       // z, relative error or ratio
  double tol;         // the threshold applied to score
  int pass;           // 1 if the row passes
} dsoVerifyRow;

// Settings of the verification.
typedef struct dsoVerifySettings_ {
  uint64_t seed;      // seed of the random chains and rollouts (default 1)
  int nthread;        // worker threads (default 2)
  double scale;       // multiplies every batch size (default 1; smaller is faster and coarser)
} dsoVerifySettings;

// Fills s with the defaults listed above.
void dso_verify_settings_default(dsoVerifySettings* s);

// Runs the whole verification. *rows (owned by the caller, free with dso_verify_free) receives
// *nrows rows. Returns an error only if a computation failed, not if a row failed.
dsoStatus dso_verify_run(dsoVerifyRow** rows, int* nrows, const dsoVerifySettings* set,
                         dsoError* err);

// Frees rows returned by dso_verify_run (NULL is a no-op).
void dso_verify_free(dsoVerifyRow* rows);

#ifdef __cplusplus
}
#endif
#endif  // DSO_VERIFY_H
