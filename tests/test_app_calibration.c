// Application 2, sensor calibration end to end through the CLI (paper section 5.1, L_calib):
// `dso simulate` records the two-link arm at the hidden true gains and offsets of
// tasks/truth/arm_calibration.json with 1e-3 sensor noise, and `dso run tasks/arm_calibration.json`
// starts every gain and offset 30% off. Checks: every entry within 2% (the acceptance),
// the truth within 4 standard errors of the estimate, and the residual variance s² = 2J/(m - p)
// of the σ-normalized residuals within 5 of its standard deviations sqrt(2/(m - p)) of 1 (the
// noise model is exact, so the fit must explain the data down to the noise and no further).
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "run_cli.h"
#include "config/json.h"

static char g_dir[1024];

// the shipped task with its model and data paths made absolute, data in the temporary folder
static void write_task(const char* out) {
  char path[512];
  snprintf(path, sizeof(path), "%s/tasks/arm_calibration.json", DSO_SOURCE_DIR);
  char* text = dso_read_text_file(path, NULL);
  assert_non_null(text);
  cJSON* root = cJSON_Parse(text);
  assert_non_null(root);
  char model[512], data[512];
  snprintf(model, sizeof(model), "%s/models/arm2.xml", DSO_SOURCE_DIR);
  snprintf(data, sizeof(data), "%s/arm_calibration.csv", g_dir);
  cJSON_ReplaceItemInObject(root, "model", cJSON_CreateString(model));
  cJSON* d = cJSON_GetObjectItem(root, "data");
  assert_non_null(d);
  cJSON_ReplaceItemInObject(d, "files", cJSON_CreateString(data));
  char* printed = cJSON_Print(root);
  FILE* f = fopen(out, "w");
  assert_non_null(f);
  fputs(printed, f);
  fclose(f);
  free(printed);
  cJSON_Delete(root);
  free(text);
}

static void test_calibration_end_to_end(void** state) {
  (void)state;
  char task[512], args[2048], path[512];
  snprintf(task, sizeof(task), "%s/task.json", g_dir);
  write_task(task);
  snprintf(args, sizeof(args),
           "simulate %s -o %s/arm_calibration.csv --values tasks/truth/arm_calibration.json "
           "--excitation 1.0",
           task, g_dir);
  assert_int_equal(run(args), 0);
  snprintf(args, sizeof(args), "run %s -o %s/out --truth tasks/truth/arm_calibration.json", task,
           g_dir);
  int st = run(args);
  if (st != 0) {
    fprintf(stderr, "%s\n%s", g_out, g_err);
  }
  assert_int_equal(st, 0);
  printf("%s", strstr(g_out, "\nentry") ? strstr(g_out, "\nentry") : g_out);

  snprintf(path, sizeof(path), "%s/out/result.json", g_dir);
  char* text = dso_read_text_file(path, NULL);
  assert_non_null(text);
  cJSON* root = cJSON_Parse(text);
  assert_non_null(root);
  char* truth_text = dso_read_text_file(DSO_SOURCE_DIR "/tasks/truth/arm_calibration.json", NULL);
  cJSON* truth = cJSON_Parse(truth_text);
  assert_non_null(truth);
  int nfit = 0;
  cJSON* e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "theta")) {
    const char* name = cJSON_GetObjectItem(e, "name")->valuestring;
    cJSON* t = cJSON_GetObjectItem(truth, name);
    if (!t) {
      assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "fixed")));  // the noise deviations
      continue;
    }
    double v = cJSON_GetObjectItem(e, "value")->valuedouble;
    double se = cJSON_GetObjectItem(e, "se")->valuedouble;
    double vt = t->valuedouble, rel = (v - vt) / fabs(vt);
    printf("  %-28s true %8.4g fitted %10.6g  err %8.4f %%  z %6.2f\n", name, vt, v, 100 * rel,
           (v - vt) / se);
    assert_true(fabs(rel) < 0.02);
    assert_true(se > 0 && fabs(v - vt) < 4 * se);
    nfit++;
  }
  assert_int_equal(nfit, 12);
  // m residuals: 2 episodes x 1000 samples x 7 recorded sensor channels
  double J = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "final"), "cost")->valuedouble;
  double dof = 2.0 * 1000 * 7 - nfit, s2 = 2 * J / dof, sd = sqrt(2 / dof);
  printf("  residual variance s^2 = %.4f (expected 1 +- %.4f)\n", s2, sd);
  assert_true(fabs(s2 - 1) < 5 * sd);
  cJSON_Delete(truth);
  cJSON_Delete(root);
  free(truth_text);
  free(text);
}

static int setup(void** state) {
  (void)state;
  return dso_test_mkdtemp(g_dir, sizeof(g_dir), "dso_test_app_calibration");
}

static int teardown(void** state) {
  (void)state;
  return dso_test_rmtree(g_dir) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_calibration_end_to_end)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
