// Run outputs: the checkpoint reads back bit-identical, bad checkpoints are errors naming the file,
// progress and result files hold what was recorded, non-finite values are refused by every writer.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "config/json.h"
#include "apps/run.h"

static const char* const kParts[3] = {"sysid", "calib", "prior"};

static dsoTheta* layout(void) {
  dsoThetaEntry e[3];
  memset(e, 0, sizeof(e));
  const char* names[3] = {"physics.a.mass", "physics.b.com[0]", "policy.k"};
  for (int i = 0; i < 3; i++) {
    snprintf(e[i].name, sizeof(e[i].name), "%s", names[i]);
    e[i].block = i == 2 ? DSO_BLOCK_POLICY : DSO_BLOCK_PHYSICS;
    e[i].transform = i == 0 ? DSO_TRANSFORM_LOG : DSO_TRANSFORM_IDENTITY;
    e[i].init = 0.3 + i;
    e[i].lower = -INFINITY;
    e[i].upper = INFINITY;
  }
  e[2].fixed = 1;
  dsoError err = {0};
  return dso_theta_create(e, 3, &err);
}

static void test_checkpoint_roundtrip(void** state) {
  dsoTheta* th = layout();
  dsoError err = {0};
  double u[3] = {log(0.3), 1.0 / 3.0, -2.718281828459045e-7};
  dsoRunState st, back;
  assert_int_equal(dso_run_state_init(&st, th, u, 1e-3 / 7, &err), DSO_OK);
  for (int k = 0; k < 100; k++) {
    dsoRunRecord r = {k, 1.0 / (k + 3), {0.1 / (k + 1), 0, 1e-9 * k}, sqrt(k + 0.5), 0.1 / 3,
                      1000L * k};
    assert_int_equal(dso_run_state_record(&st, &r, &err), DSO_OK);
  }
  st.done = 1;
  char dir[1024];
  assert_int_equal(dso_test_mkdtemp(dir, sizeof(dir), "dso_test_run"), 0);
  char path[1200];
  snprintf(path, sizeof(path), "%s/checkpoint.json", dir);
  assert_int_equal(dso_run_checkpoint_write(path, th, &st, &err), DSO_OK);
  double zero[3] = {0, 0, 0};
  assert_int_equal(dso_run_state_init(&back, th, zero, 0, &err), DSO_OK);
  assert_int_equal(dso_run_checkpoint_read(path, th, &back, &err), DSO_OK);
  assert_memory_equal(back.u, st.u, sizeof(u));
  assert_true(back.lambda == st.lambda && back.done == 1);
  assert_int_equal(back.nrecord, 100);
  for (int k = 0; k < 100; k++) {
    const dsoRunRecord *a = &back.record[k], *b = &st.record[k];
    assert_true(a->iter == b->iter && a->cost == b->cost && a->grad_norm == b->grad_norm &&
                a->lambda == b->lambda && a->steps == b->steps);
    assert_memory_equal(a->term, b->term, sizeof(a->term));
  }
  // progress and result
  snprintf(path, sizeof(path), "%s/progress.csv", dir);
  assert_int_equal(dso_run_progress_write(path, &st, kParts, &err), DSO_OK);
  char* text = dso_read_text_file(path, &err);
  assert_non_null(text);
  assert_non_null(strstr(text, "iter,cost,sysid,calib,prior,grad_norm,lambda,steps\n0,"));
  int lines = 0;
  for (char* c = text; *c; c++) lines += *c == '\n';
  assert_int_equal(lines, 101);
  free(text);
  remove(path);
  double se[3] = {0.01, 0, 0};
  double rms[2] = {0.05, 0.07};
  text = dso_run_result_json(th, u, u, se, &st.record[99], kParts, rms, 2, 0.06, &err);
  assert_non_null(text);
  assert_non_null(strstr(text, "\"ci95\""));
  assert_non_null(strstr(text, "\"rms_per_episode\""));
  assert_non_null(strstr(text, "\"physics.a.mass\""));
  free(text);
  // bad checkpoints
  const char* bad[][2] = {
      {"{\"u\": {}, \"lambda\": 1, \"progress\": []}", "u.policy.k: missing"},
      {"{\"u\": [], \"lambda\": 1, \"progress\": []}", "not a dso checkpoint"},
      {"{\"u\": {\"physics.a.mass\": 1, \"physics.b.com[0]\": 1, \"policy.k\": 1, \"x\": 2},"
       " \"lambda\": 1, \"progress\": []}", "u.x: not an entry"},
      {"{\"u\": {\"physics.a.mass\": 1, \"physics.b.com[0]\": 1, \"policy.k\": 1},"
       " \"lambda\": 1, \"progress\": [{\"iter\": \"a\"}]}", "progress: malformed row"},
      {"{", "unexpected end of file"},
  };
  snprintf(path, sizeof(path), "%s/bad.json", dir);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    FILE* f = fopen(path, "w");
    fputs(bad[i][0], f);
    fclose(f);
    dso_error_clear(&err);
    assert_int_not_equal(dso_run_checkpoint_read(path, th, &back, &err), DSO_OK);
    if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, path)) {
      fprintf(stderr, "case %zu: %s\n", i, err.msg);
    }
    assert_non_null(strstr(err.msg, bad[i][1]));
    assert_non_null(strstr(err.msg, path));
  }
  remove(path);
  snprintf(path, sizeof(path), "%s/checkpoint.json", dir);
  remove(path);
  dso_test_rmtree(dir);
  dso_run_state_clear(&st);
  dso_run_state_clear(&back);
  dso_theta_free(th);
}

// Non-finite values are never written: each writer refuses them naming the file and the field
// and leaves the file as it was; a part that is not available (NaN) is written as null and read
// back as NaN; the refused-step count reads back.
static void test_non_finite_refused(void** state) {
  (void)state;
  dsoTheta* th = layout();
  dsoError err = {0};
  double u[3] = {log(0.3), 0.5, 2.0};
  dsoRunState st, back;
  assert_int_equal(dso_run_state_init(&st, th, u, 1e-3, &err), DSO_OK);
  dsoRunRecord r = {1, 2.5, {2.0, 0.5, NAN}, 0.1, 1e-3, 100};
  assert_int_equal(dso_run_state_record(&st, &r, &err), DSO_OK);
  st.refused = 3;
  char dir[1024];
  assert_int_equal(dso_test_mkdtemp(dir, sizeof(dir), "dso_test_run_nf"), 0);
  char path[1200], csv[1200];
  snprintf(path, sizeof(path), "%s/checkpoint.json", dir);
  snprintf(csv, sizeof(csv), "%s/progress.csv", dir);
  assert_int_equal(dso_run_checkpoint_write(path, th, &st, &err), DSO_OK);
  assert_int_equal(dso_run_progress_write(csv, &st, kParts, &err), DSO_OK);
  char* good = dso_read_text_file(path, &err);
  assert_non_null(good);
  double zero[3] = {0, 0, 0};
  assert_int_equal(dso_run_state_init(&back, th, zero, 0, &err), DSO_OK);
  assert_int_equal(dso_run_checkpoint_read(path, th, &back, &err), DSO_OK);
  assert_int_equal(back.refused, 3);
  assert_true(isnan(back.record[0].term[2]));
  assert_true(back.record[0].term[0] == 2.0);
  // θ, lambda, the optimizer state, a row's cost, gradient norm or lambda
  for (int c = 0; c < 6; c++) {
    dsoRunState bad = st;
    double ub[3] = {u[0], u[1], u[2]}, opt[2] = {1, 2};
    dsoRunRecord rb = r;
    bad.u = ub;
    bad.record = &rb;
    bad.opt = opt;
    bad.nopt = 2;
    const char* field = NULL;
    switch (c) {
      case 0: ub[dso_theta_find(th, "physics.b.com[0]")] = INFINITY;
              field = "u.physics.b.com[0] is inf"; break;
      case 1: bad.lambda = NAN; field = "lambda is nan"; break;
      case 2: opt[1] = -INFINITY; field = "optimizer[1] is -inf"; break;
      case 3: rb.cost = NAN; field = "progress[0] (iteration 1): cost is nan"; break;
      case 4: rb.grad_norm = INFINITY; field = "progress[0] (iteration 1): grad_norm is inf"; break;
      default: rb.lambda = INFINITY; field = "progress[0] (iteration 1): lambda is inf"; break;
    }
    dsoError e = {0};
    assert_int_equal(dso_run_checkpoint_write(path, th, &bad, &e), DSO_ERR_NUMERIC);
    if (!strstr(e.msg, field) || !strstr(e.msg, path)) fail_msg("case %d: %s", c, e.msg);
    char* now = dso_read_text_file(path, &err);
    assert_string_equal(now, good);  // left as it was
    free(now);
    if (c >= 3) {
      dsoError e2 = {0};
      assert_int_equal(dso_run_progress_write(csv, &bad, kParts, &e2), DSO_ERR_NUMERIC);
      assert_non_null(strstr(e2.msg, csv));
      assert_non_null(strstr(e2.msg, "row[1] (iteration 1)"));
      dsoError e3 = {0};
      assert_null(dso_run_result_json(th, u, u, NULL, &rb, kParts, NULL, 0, 0, &e3));
      assert_int_equal(e3.code, DSO_ERR_NUMERIC);
    }
    if (c == 0) {
      dsoError e3 = {0};
      assert_null(dso_run_result_json(th, u, ub, NULL, &r, kParts, NULL, 0, 0, &e3));
      assert_non_null(strstr(e3.msg, "theta entry physics.b.com[0]: final value is inf"));
      assert_int_equal(dso_run_check_finite(th, ub, NULL, kParts, &e3), DSO_ERR_NUMERIC);
    }
  }
  free(good);
  // a prior that overflows is named with its value, mean and std
  dsoThetaEntry e[1];
  memset(e, 0, sizeof(e));
  snprintf(e[0].name, sizeof(e[0].name), "physics.hinge.damping");
  e[0].block = DSO_BLOCK_PHYSICS;
  e[0].transform = DSO_TRANSFORM_IDENTITY;
  e[0].init = 2e4;  // (v - mean) / std = 2e154: its square overflows (the smallest std theta
  e[0].lower = -INFINITY;  // accepts is DSO_THETA_MIN_PRIOR_STD = 1e-150)
  e[0].upper = INFINITY;
  e[0].has_prior = 1;
  e[0].prior_mean = 0;
  e[0].prior_std = 1e-150;
  dsoTheta* tp = dso_theta_create(e, 1, &err);
  assert_non_null(tp);
  double up[1];
  dso_theta_init(tp, up);
  assert_int_equal(dso_run_bad_prior(tp, up), 0);
  double prior = dso_theta_prior(tp, NULL, up);
  dsoRunRecord rp = {0, prior, {1.0, 0, prior}, 0, 1e-3, 10};
  dsoError e4 = {0};
  assert_int_equal(dso_run_check_finite(tp, up, &rp, kParts, &e4), DSO_ERR_NUMERIC);
  assert_non_null(strstr(e4.msg, "(prior inf)"));
  assert_non_null(strstr(e4.msg, "theta entry physics.hinge.damping"));
  assert_non_null(strstr(e4.msg, "mean 0, std 1e-150"));
  up[0] = 0;  // at the mean
  assert_int_equal(dso_run_bad_prior(tp, up), -1);
  dso_theta_free(tp);
  remove(path);
  remove(csv);
  dso_test_rmtree(dir);
  dso_run_state_clear(&st);
  dso_run_state_clear(&back);
  dso_theta_free(th);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checkpoint_roundtrip),
      cmocka_unit_test(test_non_finite_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
