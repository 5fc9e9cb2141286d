// The dso program: help texts, exit statuses, `dso info` on every shipped model and on Debian's
// humanoid sample, and `dso check` on every task in tasks/.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_cli.h"
#include "json.h"

static void test_help_and_statuses(void** state) {
  assert_int_equal(run("--help"), 0);
  assert_non_null(strstr(g_out, "info"));
  assert_non_null(strstr(g_out, "check"));
  assert_int_equal(run("--version"), 0);
  assert_non_null(strstr(g_out, "MuJoCo"));
  assert_int_equal(run("info --help"), 0);
  assert_non_null(strstr(g_out, "usage: dso info"));
  assert_int_equal(run("check --help"), 0);
  assert_non_null(strstr(g_out, "usage: dso check"));
  assert_int_equal(run(""), 2);
  assert_int_equal(run("frobnicate"), 2);
  assert_non_null(strstr(g_err, "unknown verb 'frobnicate'"));
  assert_int_equal(run("info"), 2);
  assert_int_equal(run("info a.xml b.xml"), 2);
  assert_int_equal(run("info /nonexistent.xml"), 2);
  assert_non_null(strstr(g_err, "/nonexistent.xml"));
  assert_int_equal(run("info tasks"), 2);
  assert_int_equal(run("check"), 2);
  assert_int_equal(run("check /nonexistent.json"), 2);
  assert_non_null(strstr(g_err, "/nonexistent.json: cannot open"));
}

static void test_info_on_models(void** state) {
  const char* models[] = {"models/pendulum.xml", "models/cartpole.xml",
                          "models/double_pendulum.xml", "models/arm2.xml", "models/hopper.xml",
                          "/usr/share/mujoco/model/humanoid/humanoid.xml"};
  for (int i = 0; i < 6; i++) {
    char args[512];
    snprintf(args, sizeof(args), "info %s", models[i]);
    assert_int_equal(run(args), 0);
    assert_int_equal(g_err[0], '\0');
    assert_non_null(strstr(g_out, "bodies ("));
    assert_non_null(strstr(g_out, "joints ("));
    assert_non_null(strstr(g_out, "actuators ("));
    assert_non_null(strstr(g_out, "sensors ("));
    assert_non_null(strstr(g_out, "parameters ("));
    assert_non_null(strstr(g_out, "physics.gravity[2]"));
  }
  // the humanoid's parameters carry its element names and current values
  assert_non_null(strstr(g_out, "physics.torso.mass"));
  assert_non_null(strstr(g_out, "physics.right_knee.damping"));
  assert_non_null(strstr(g_out, "physics.root.damping[5]"));
}

static void test_check_every_task(void** state) {
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/tasks", DSO_SOURCE_DIR);
  DIR* d = opendir(dir);
  assert_non_null(d);
  int count = 0;
  struct dirent* ent;
  while ((ent = readdir(d))) {
    size_t n = strlen(ent->d_name);
    if (n < 6 || strcmp(ent->d_name + n - 5, ".json")) {
      continue;
    }
    char args[1024];
    snprintf(args, sizeof(args), "check tasks/%s", ent->d_name);
    int st = run(args);
    if (st != 0) {
      fprintf(stderr, "%s: %s", ent->d_name, g_err);
    }
    assert_int_equal(st, 0);
    assert_non_null(strstr(g_out, "index"));
    count++;
  }
  closedir(d);
  assert_true(count >= 3);
}

// dso gradcheck on the shipped chain tasks: pathwise agrees with common-random-number differences
// (relative error 1e-4 on contact-free models, 1e-2 on the hopper with contacts)
static void test_gradcheck(void** state) {
  const char* runs[][2] = {{"tasks/cartpole_gradcheck.json", "1e-4"},
                           {"tasks/arm_sensor_policy.json", "1e-4"},
                           {"tasks/hopper_gradcheck.json", "1e-2"}};
  for (int i = 0; i < 3; i++) {
    char args[512];
    snprintf(args, sizeof(args), "gradcheck %s --tol %s", runs[i][0], runs[i][1]);
    int st = run(args);
    if (st != 0) {
      fprintf(stderr, "%s\n%s", g_out, g_err);
    }
    assert_int_equal(st, 0);
    assert_non_null(strstr(g_out, "worst relative error pathwise vs fd"));
    assert_non_null(strstr(g_out, " 0 diverged"));
  }
  assert_int_equal(run("gradcheck --help"), 0);
  assert_int_equal(run("gradcheck"), 2);
  assert_int_equal(run("gradcheck /nonexistent.json"), 2);
  assert_int_equal(run("gradcheck tasks/cartpole_gradcheck.json --rollouts 1"), 2);
  assert_int_equal(run("gradcheck tasks/cartpole_gradcheck.json --bogus 3"), 2);
  assert_non_null(strstr(g_err, "unknown option --bogus"));
  assert_int_equal(run("gradcheck tasks/cartpole_gradcheck.json --step"), 2);
}

// dso run on the synthetic arm data recovers the true values; an interrupted run resumed from its
// checkpoint ends bit-identical to an uninterrupted one
static void test_run_sysid_and_resume(void** state) {
  char dir[] = "/tmp/dso_test_run_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char args[1024], path[1100];
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json -o %s/full --truth "
           "tasks/truth/arm_sysid.json", dir);
  assert_int_equal(run(args), 0);
  assert_non_null(strstr(g_out, "identified"));
  // every identified value within 2% of the truth: the error column of the table
  int rows = 0;
  for (char* line = strstr(g_out, "physics."); line; line = strstr(line + 1, "\nphysics.")) {
    char* eol = strchr(line + 1, '\n');
    char* last = eol ? eol : line + strlen(line);
    while (last > line && last[-1] == ' ') last--;
    char* num = last;
    while (num > line && num[-1] != ' ') num--;
    double err = atof(num);
    assert_true(fabs(err) < 2.0);
    rows++;
  }
  assert_int_equal(rows, 10);
  const char* outs[] = {"result.json", "progress.csv", "checkpoint.json", "model.xml"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof(path), "%s/full/%s", dir, outs[i]);
    char* text = dso_read_text_file(path, NULL);
    assert_non_null(text);
    free(text);
  }
  // interrupted after 2 iterations, then resumed
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json -o %s/part --max-iter 2 --quiet", dir);
  assert_int_equal(run(args), 0);
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json -o %s/part --resume --quiet", dir);
  assert_int_equal(run(args), 0);
  snprintf(path, sizeof(path), "%s/full/checkpoint.json", dir);
  char* a = dso_read_text_file(path, NULL);
  snprintf(path, sizeof(path), "%s/part/checkpoint.json", dir);
  char* b = dso_read_text_file(path, NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_equal(a, b);
  free(a);
  free(b);
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json -o %s/none --resume", dir);
  assert_int_equal(run(args), 2);
  assert_int_equal(run("run tasks/cartpole_design.json -o /tmp/x"), 2);
  assert_non_null(strstr(g_err, "nothing to optimize"));
  // chain optimization (mechanism design task): J falls, and resume is bit-identical too
  snprintf(args, sizeof(args), "run tasks/pendulum_design.json -o %s/dfull --max-iter 6", dir);
  assert_int_equal(run(args), 0);
  assert_non_null(strstr(g_out, "physics.torque.gear[0]"));
  snprintf(args, sizeof(args), "run tasks/pendulum_design.json -o %s/dpart --max-iter 3 --quiet",
           dir);
  assert_int_equal(run(args), 0);
  snprintf(args, sizeof(args),
           "run tasks/pendulum_design.json -o %s/dpart --max-iter 6 --resume --quiet", dir);
  assert_int_equal(run(args), 0);
  snprintf(path, sizeof(path), "%s/dfull/checkpoint.json", dir);
  a = dso_read_text_file(path, NULL);
  snprintf(path, sizeof(path), "%s/dpart/checkpoint.json", dir);
  b = dso_read_text_file(path, NULL);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_equal(a, b);
  free(a);
  free(b);
  assert_int_equal(run("run tasks/arm_sysid.json"), 2);
  snprintf(args, sizeof(args), "rm -rf '%s'", dir);
  assert_int_equal(system(args), 0);
}

// the synthetic data that tasks/arm_sysid.json reads: recorded by dso simulate at the true values
// the data files the synthetic tasks read (their true values in tasks/truth/), as .ci/main and the
// README record them
static int make_data(void** state) {
  (void)state;
  const char* cmd[] = {
      "simulate tasks/arm_sysid.json -o build/arm_sysid.csv --excitation 0.6 --validation 2 "
      "--values tasks/truth/arm_sysid.json",
      "simulate tasks/arm_calibration.json -o build/arm_calibration.csv --excitation 1.0 "
      "--values tasks/truth/arm_calibration.json",
      "simulate tasks/pendulum_estim.json -o build/pendulum_estim.csv --validation 4 "
      "--values tasks/truth/pendulum_estim.json"};
  for (size_t i = 0; i < sizeof(cmd) / sizeof(cmd[0]); i++) {
    if (run(cmd[i]) != 0) {
      fprintf(stderr, "dso %s: %s", cmd[i], g_err);
      return -1;
    }
  }
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_statuses),
      cmocka_unit_test(test_info_on_models),
      cmocka_unit_test(test_check_every_task),
      cmocka_unit_test(test_gradcheck),
      cmocka_unit_test(test_run_sysid_and_resume),
  };
  return cmocka_run_group_tests(tests, make_data, NULL);
}
