// Tests of rollout batches (rollout.h): determinism across thread counts, termination statistics,
// first exit, and input validation.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "chain/grad.h"
#include "chain/rollout.h"
#include "verify/tabular.h"

static dsoTabular* make(dsoSetting set, double gamma, int nterm) {
  dsoError err = {0};
  dsoTabSetup su = {set, gamma, 6, NULL, NULL};
  dsoTabular* tab = NULL;
  assert_int_equal(dso_tabular_create_random(&tab, 5, 3, 1, &su, nterm, 0.7, 9, &err), DSO_OK);
  return tab;
}

static void test_bitwise_identical_across_threads(void** state) {
  dsoError err = {0};
  dsoTabular* tab = make(DSO_EPISODIC, 0.95, 0);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  double th[3] = {0.1, -0.4, 0.2};
  double g[3][3];
  long samples[3];
  int threads[3] = {1, 2, 7};
  for (int i = 0; i < 3; i++) {
    dsoRolloutSettings s;
    dso_rollout_settings_default(&s);
    s.gamma = 0.95;
    s.horizon = 500;
    s.nthread = threads[i];
    dsoRollout* ro;
    assert_int_equal(dso_rollout_create(&ro, &ch, &s, 301, &err), DSO_OK);
    dsoGrad* gr;
    assert_int_equal(dso_grad_create(&gr, ro, 0, 0, &err), DSO_OK);
    assert_int_equal(dso_rollout_run(ro, th, 4, &err), DSO_OK);
    assert_int_equal(dso_grad_prepare(gr, ro, NULL, &err), DSO_OK);
    assert_int_equal(dso_grad_algorithm1(g[i], NULL, gr, ro, &err), DSO_OK);
    samples[i] = ro->nsamples;
    dso_grad_free(gr);
    dso_rollout_free(ro);
  }
  for (int i = 1; i < 3; i++) {
    assert_true(samples[i] == samples[0]);
    assert_memory_equal(g[i], g[0], sizeof(g[0]));
  }
  dso_tabular_free(tab);
}

static void test_termination_length(void** state) {
  // discount as termination: the number of transitions is geometric with mean γ/(1-γ)
  dsoError err = {0};
  dsoTabular* tab = make(DSO_EPISODIC, 0.8, 0);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings s;
  dso_rollout_settings_default(&s);
  s.gamma = 0.8;
  s.horizon = 400;
  const int N = 20000;
  dsoRollout* ro;
  assert_int_equal(dso_rollout_create(&ro, &ch, &s, N, &err), DSO_OK);
  double th[3] = {0, 0, 0};
  assert_int_equal(dso_rollout_run(ro, th, 0, &err), DSO_OK);
  double mean = (double)ro->nsamples / N;
  double sd = sqrt(0.8) / 0.2;  // sd of a geometric count with success 0.2
  assert_true(fabs(mean - 4.0) < 4 * sd / sqrt(N));
  assert_int_equal(ro->ntruncated, 0);
  dso_rollout_free(ro);
  dso_tabular_free(tab);
}

static void test_first_exit_ends_at_terminal(void** state) {
  dsoError err = {0};
  dsoTabular* tab = make(DSO_EPISODIC, 1.0, 1);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings s;
  dso_rollout_settings_default(&s);
  s.gamma = 1.0;
  s.horizon = 2000;
  dsoRollout* ro;
  assert_int_equal(dso_rollout_create(&ro, &ch, &s, 200, &err), DSO_OK);
  double th[3] = {0.2, 0.1, 0};
  assert_int_equal(dso_rollout_run(ro, th, 0, &err), DSO_OK);
  for (int n = 0; n < 200; n++) {
    int T = ro->len[n];
    assert_int_equal(ro->end[n], DSO_END_TERMINAL);
    assert_int_equal((int)dso_rollout_state(ro, n, T)[0], 4);
    for (int t = 0; t < T; t++) assert_true((int)dso_rollout_state(ro, n, t)[0] != 4);
  }
  dso_rollout_free(ro);
  dso_tabular_free(tab);
}

static void test_bad_settings(void** state) {
  dsoError err = {0};
  dsoTabular* tab = make(DSO_EPISODIC, 0.9, 0);
  dsoChain ch;
  dso_tabular_chain(&ch, tab);
  dsoRolloutSettings s;
  dso_rollout_settings_default(&s);
  s.gamma = 1.5;
  dsoRollout* ro = (dsoRollout*)&s;
  assert_int_equal(dso_rollout_create(&ro, &ch, &s, 10, &err), DSO_ERR_INPUT);
  assert_null(ro);
  assert_non_null(strstr(err.msg, "gamma"));
  dso_rollout_settings_default(&s);
  s.setting = DSO_AVERAGE;
  s.horizon = 20;
  s.window = 30;
  dso_error_clear(&err);
  assert_int_equal(dso_rollout_create(&ro, &ch, &s, 10, &err), DSO_ERR_INPUT);
  dso_rollout_free(NULL);
  dso_tabular_free(tab);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bitwise_identical_across_threads),
      cmocka_unit_test(test_termination_length),
      cmocka_unit_test(test_first_exit_ends_at_terminal),
      cmocka_unit_test(test_bad_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
