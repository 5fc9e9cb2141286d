// Counter-keyed random streams (xoshiro256** with splitmix64 key mixing).
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

void dso_rng_seed(dsoRng* rng, uint64_t seed, uint64_t iteration, uint64_t stream) {
  // hash the three key words in sequence; each round is a bijective mix
  uint64_t h = seed ^ 0x6A09E667F3BCC908ULL;
  h = splitmix64(&h);
  h ^= iteration * 0xD1B54A32D192ED03ULL;
  h = splitmix64(&h);
  h ^= stream * 0x8CB92BA72F3D8DD7ULL;
  h = splitmix64(&h);
  uint64_t sm = h;
  for (int i = 0; i < 4; i++) {
    rng->s[i] = splitmix64(&sm);
  }
  if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) {
    rng->s[0] = 1;  // the all-zero state is the one fixed point of xoshiro
  }
  rng->spare = 0;
  rng->has_spare = 0;
}

uint64_t dso_rng_next(dsoRng* rng) {
  uint64_t* s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double dso_rng_uniform(dsoRng* rng) {
  // (k + 0.5) / 2^53 lies strictly inside (0, 1)
  return ((double)(dso_rng_next(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double dso_rng_normal(dsoRng* rng) {
  if (rng->has_spare) {
    rng->has_spare = 0;
    return rng->spare;
  }
  double u1 = dso_rng_uniform(rng);
  double u2 = dso_rng_uniform(rng);
  double r = sqrt(-2.0 * log(u1));
  double a = 6.283185307179586476925 * u2;
  rng->spare = r * sin(a);
  rng->has_spare = 1;
  return r * cos(a);
}

int dso_rng_categorical(dsoRng* rng, const double* p, int n) {
  double u = dso_rng_uniform(rng);
  double c = 0;
  int last = 0;
  for (int i = 0; i < n; i++) {
    if (p[i] > 0) {
      c += p[i];
      last = i;
      if (u < c) {
        return i;
      }
    }
  }
  return last;
}
