// Tests of the counter-keyed random streams (rng.h). Statistical checks use fixed keys and state
// their tolerance in standard errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "core/rng.h"

static void test_same_key_same_stream(void** state) {
  dsoRng a, b;
  dso_rng_seed(&a, 7, 3, 11);
  dso_rng_seed(&b, 7, 3, 11);
  for (int i = 0; i < 1000; i++) assert_true(dso_rng_next(&a) == dso_rng_next(&b));
}

static void test_keys_differ(void** state) {
  // changing any key word changes the stream
  uint64_t keys[4][3] = {{1, 2, 3}, {2, 2, 3}, {1, 3, 3}, {1, 2, 4}};
  uint64_t first[4];
  for (int i = 0; i < 4; i++) {
    dsoRng r;
    dso_rng_seed(&r, keys[i][0], keys[i][1], keys[i][2]);
    first[i] = dso_rng_next(&r);
  }
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++) assert_true(first[i] != first[j]);
}

static void test_uniform_and_normal_moments(void** state) {
  dsoRng r;
  dso_rng_seed(&r, 123, 0, 0);
  const int N = 200000;
  double su = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < N; i++) {
    double u = dso_rng_uniform(&r);
    assert_true(u > 0 && u < 1);
    su += u;
    double z = dso_rng_normal(&r);
    sn += z;
    sn2 += z * z;
  }
  // tolerance: 4 standard errors of each mean
  assert_true(fabs(su / N - 0.5) < 4 * sqrt(1.0 / 12 / N));
  assert_true(fabs(sn / N) < 4 * sqrt(1.0 / N));
  assert_true(fabs(sn2 / N - 1) < 4 * sqrt(2.0 / N));
}

static void test_categorical_frequencies(void** state) {
  dsoRng r;
  dso_rng_seed(&r, 5, 1, 2);
  double p[4] = {0.1, 0.0, 0.6, 0.3};
  int count[4] = {0, 0, 0, 0};
  const int N = 100000;
  for (int i = 0; i < N; i++) count[dso_rng_categorical(&r, p, 4)]++;
  assert_int_equal(count[1], 0);
  for (int i = 0; i < 4; i++) {
    double se = sqrt(p[i] * (1 - p[i]) / N);
    assert_true(fabs((double)count[i] / N - p[i]) <= 4 * se + 1e-12);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_key_same_stream),
      cmocka_unit_test(test_keys_differ),
      cmocka_unit_test(test_uniform_and_normal_moments),
      cmocka_unit_test(test_categorical_frequencies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
