// Counter-keyed random streams: every rollout draws from its own stream, keyed by
// (seed, iteration, stream index), so results do not depend on how rollouts are spread over threads.
#ifndef DSO_RNG_H
#define DSO_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// State of one random stream (xoshiro256** seeded through splitmix64). Plain data: copy freely.
typedef struct dsoRng_ {
  uint64_t s[4];     // generator state
  double spare;      // second Gaussian of the last Box-Muller pair
  int has_spare;     // 1 if spare holds an unused draw
} dsoRng;

// Positions rng at the start of the stream keyed by (seed, iteration, stream). Distinct keys give
// statistically independent streams; the same key always gives the same sequence.
void dso_rng_seed(dsoRng* rng, uint64_t seed, uint64_t iteration, uint64_t stream);

// Next raw 64-bit draw.
uint64_t dso_rng_next(dsoRng* rng);

// Uniform draw in the open interval (0, 1), 53 random bits.
double dso_rng_uniform(dsoRng* rng);

// Standard normal draw N(0, 1) (Box-Muller; the second value of each pair is kept for the next call).
double dso_rng_normal(dsoRng* rng);

// Index i with probability p[i] (p: n non-negative weights summing to 1; round-off in the sum is
// absorbed by the last index with positive weight).
int dso_rng_categorical(dsoRng* rng, const double* p, int n);

#ifdef __cplusplus
}
#endif
#endif  // DSO_RNG_H
