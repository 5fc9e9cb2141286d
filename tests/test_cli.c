// The dso program: help texts, exit statuses, `dso info` on every shipped model and on Debian's
// humanoid sample, `dso check` on every task in tasks/, and the strict reading of option values
// and input files (issue 12).
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
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "run_cli.h"

// the shipped tasks whose data are made by dso simulate (make_data), in g_data/<task>.csv
enum { NDATA = 5 };
static const char* kDataTasks[NDATA] = {"arm_sysid", "arm_calibration", "pendulum_estim",
                                        "drive_sysid", "arm7_invdyn"};
static char g_data[1024];

// g_data/<task>.csv
static const char* data_file(const char* task) {
  static char path[NDATA][1200];
  for (int i = 0; i < NDATA; i++) {
    if (!strcmp(task, kDataTasks[i])) {
      snprintf(path[i], sizeof(path[i]), "%s/%s.csv", g_data, task);
      return path[i];
    }
  }
  return NULL;
}
#include "core/io.h"
#include "config/json.h"

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
    char args[2048], name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(n - 5), ent->d_name);
    const char* data = data_file(name);
    snprintf(args, sizeof(args), "check tasks/%s%s%s", ent->d_name, data ? " --data " : "",
             data ? data : "");
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
  char dir[1024];
  assert_int_equal(dso_test_mkdtemp(dir, sizeof(dir), "dso_test_run"), 0);
  const char* data = data_file("arm_sysid");
  char args[4096], path[1100];
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json --data %s -o %s/full --truth "
           "tasks/truth/arm_sysid.json", data, dir);
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
  // the result.json of a run serves as true values (--truth) and as simulate's --values, as it
  // does for --values of run and evaluate: one reader of values files
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json --data %s -o %s/vs --max-iter 1 --truth "
           "%s/full/result.json", data, dir, dir);
  assert_int_equal(run(args), 0);
  assert_non_null(strstr(g_out, "identified"));
  snprintf(args, sizeof(args), "simulate tasks/arm_sysid.json -o %s/sim.csv --episodes 1 "
           "--horizon 20 --values %s/full/result.json", dir, dir);
  assert_int_equal(run(args), 0);
  // interrupted after 2 iterations, then resumed
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json --data %s -o %s/part --max-iter 2 --quiet",
           data, dir);
  assert_int_equal(run(args), 0);
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json --data %s -o %s/part --resume --quiet",
           data, dir);
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
  snprintf(args, sizeof(args), "run tasks/arm_sysid.json --data %s -o %s/none --resume", data,
           dir);
  assert_int_equal(run(args), 2);
  snprintf(args, sizeof(args), "run tasks/cartpole_design.json -o %s/x", dir);
  assert_int_equal(run(args), 2);
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
  assert_int_equal(dso_test_rmtree(dir), 0);
}

// option values that used to wrap, truncate or pass: each gives exit status 2 and one message
// naming the verb, the option and the value (or the file and field)
static void test_bad_option_values(void** state) {
  static const struct {
    const char* args;
    const char* msg;
  } kCases[] = {
      {"gradcheck tasks/cartpole_gradcheck.json --rollouts 4294967298",
       "dso gradcheck: --rollouts: expected an integer in [2, 1000000], got '4294967298'"},
      {"gradcheck tasks/cartpole_gradcheck.json --rollouts ''",
       "dso gradcheck: --rollouts: expected an integer in [2, 1000000], got ''"},
      {"gradcheck tasks/cartpole_gradcheck.json --horizon 1e3",
       "dso gradcheck: --horizon: expected an integer in [1, 10000000], got '1e3'"},
      {"gradcheck tasks/cartpole_gradcheck.json --threads ' 2'",
       "dso gradcheck: --threads: expected an integer in [1, 1024], got ' 2'"},
      {"gradcheck tasks/cartpole_gradcheck.json --seed -1",
       "dso gradcheck: --seed: expected an integer in [0, 4611686018427387903], got '-1'"},
      {"gradcheck tasks/cartpole_gradcheck.json --step inf",
       "dso gradcheck: --step: expected a finite number in (0, 1], got 'inf'"},
      {"gradcheck tasks/cartpole_gradcheck.json --step nan",
       "dso gradcheck: --step: expected a finite number in (0, 1], got 'nan'"},
      {"gradcheck tasks/cartpole_gradcheck.json --step 0x1p-3",
       "dso gradcheck: --step: expected a finite number in (0, 1], got '0x1p-3'"},
      {"gradcheck tasks/cartpole_gradcheck.json --tol 1e-4x",
       "dso gradcheck: --tol: expected a finite number > 0, got '1e-4x'"},
      {"gradcheck tasks/cartpole_gradcheck.json --tol",
       "dso gradcheck: --tol: missing value (the option is the last argument)"},
      {"gradcheck tasks/cartpole_gradcheck.json --rollouts 1000000 --horizon 10000000",
       "dso gradcheck: --rollouts 1000000 x --horizon 10000000: one batch would hold about"},
      {"run tasks/arm_sysid.json -o build/test_cli_never --max-iter ''",
       "dso run: --max-iter: expected an integer in [0, 1000000000], got ''"},
      {"run tasks/arm_sysid.json -o build/test_cli_never --max-iter 4294967296",
       "dso run: --max-iter: expected an integer in [0, 1000000000], got '4294967296'"},
      {"run tasks/arm_sysid.json -o", "dso run: -o: missing value"},
      {"run tasks/arm_sysid.json -o ''", "dso run: -o: expected an output folder, got ''"},
      {"run tasks/arm_sysid.json -o build/test_cli_never --truth ''",
       "dso run: --truth: expected a JSON file of true values, got ''"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --episodes 4294967298",
       "dso simulate: --episodes: expected an integer in [1, 1000000], got '4294967298'"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --set physics.upper.mass=inf",
       "dso simulate: --set: expected a finite number, got 'inf'"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --set physics.upper.mass=",
       "dso simulate: --set: expected a finite number, got ''"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --excitation -0.1",
       "dso simulate: --excitation: expected a finite number >= 0, got '-0.1'"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --seed 18446744073709551617",
       "dso simulate: --seed: expected an integer in [0, 4611686018427387903], got "},
      {"simulate tasks/arm_sysid.json -o", "dso simulate: -o: missing value"},
      {"simulate tasks/arm_sysid.json -o build/test_cli_never.csv --episodes 1000000 --horizon "
       "10000000", "dso simulate: --episodes 1000000 x --horizon 10000000: one batch would hold"},
      {"verify --threads 0", "dso verify: --threads: expected an integer in [1, 1024], got '0'"},
      {"verify --scale inf", "dso verify: --scale: expected a finite number in (0, 100], got 'inf'"},
      {"verify --seed", "dso verify: --seed: missing value"},
      {"check --bogus", "dso check: unknown option '--bogus'"},
      {"info -x", "dso info: unknown option '-x'"},
      // the model is blamed for its timestep and armature, by file and field
      {"info tests/data/tasks_bad/timestep_zero.xml",
       "dso info: tests/data/tasks_bad/timestep_zero.xml: option timestep: expected a finite "
       "number > 0 (seconds), got 0"},
      {"info tests/data/tasks_bad/armature_nan.xml",
       "dso info: tests/data/tasks_bad/armature_nan.xml: joint \"hinge\": armature: expected a "
       "finite number >= 0, got nan"},
      // an empty cost used to optimize nothing and exit 0
      {"run tests/data/tasks_bad/cost_empty.json -o build/test_cli_never",
       "dso run: tests/data/tasks_bad/cost_empty.json: cost: an empty list of terms"},
      {"run tests/data/tasks_bad/mass_tiny.json -o build/test_cli_never",
       "theta[0]: physics.pole.mass: initial value 1e-300 kg is below 1e-12 kg"},
  };
  for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); i++) {
    int st = run(kCases[i].args);
    if (st != 2 || !strstr(g_err, kCases[i].msg) || g_out[0]) {
      fail_msg("dso %s: exit status %d (expected 2), stdout \"%s\", stderr \"%s\" (expected "
               "\"%s\")", kCases[i].args, st, g_out, g_err, kCases[i].msg);
    }
  }
  // nothing was written
  struct stat sb;
  assert_int_not_equal(stat(DSO_SOURCE_DIR "/build/test_cli_never", &sb), 0);
  assert_int_not_equal(stat(DSO_SOURCE_DIR "/build/test_cli_never.csv", &sb), 0);
}

// runs `dso args...` (NULL-terminated) from the source folder without a shell, its stderr in
// g_err; kills it after `seconds` and then returns -1, else its exit status
static int run_limited(const char* const* args, int seconds) {
  char err_path[1100];
  snprintf(err_path, sizeof(err_path), "%s/test_cli_fifo/stderr.txt", DSO_BUILD_DIR);
  char* argv[16];
  int n = 0;
  argv[n++] = (char*)DSO_CLI;
  for (; args[n - 1] && n < 15; n++) {
    argv[n] = (char*)args[n - 1];
  }
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE* e = freopen(err_path, "w", stderr);
    FILE* o = freopen("/dev/null", "w", stdout);
    if (!e || !o || chdir(DSO_SOURCE_DIR) != 0) {
      _exit(127);
    }
    execv(DSO_CLI, argv);
    _exit(127);
  }
  int st = 0;
  for (int tick = 0; tick < seconds * 100; tick++) {
    if (waitpid(pid, &st, WNOHANG) == pid) {
      slurp(g_err, sizeof(g_err), err_path);
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  slurp(g_err, sizeof(g_err), err_path);
  return -1;
}

// a FIFO given as the task, the values or the truth file used to hang the reader: every verb
// refuses it at once (within 20 s here, where a blocked read would wait forever)
static void test_fifo_inputs(void** state) {
  char dir[1024], fifo[1100], out[1100];
  snprintf(dir, sizeof(dir), "%s/test_cli_fifo", DSO_BUILD_DIR);
  snprintf(fifo, sizeof(fifo), "%s/task.json", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  dsoError err = {0};
  assert_int_equal(dso_mkdir_p(dir, &err), DSO_OK);
  remove(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  const char* data = data_file("arm_sysid");
  const char* cases[][10] = {
      {"check", fifo, NULL},
      {"gradcheck", fifo, NULL},
      {"run", fifo, "-o", out, NULL},
      {"simulate", fifo, "-o", out, NULL},
      {"info", fifo, NULL},
      {"simulate", "tasks/arm_sysid.json", "-o", out, "--values", fifo, NULL},
      {"run", "tasks/arm_sysid.json", "--data", data, "-o", out, "--truth", fifo, NULL},
      {"run", "tasks/arm_sysid.json", "--data", data, "-o", out, "--values", fifo, NULL},
      {"check", "tasks/arm_sysid.json", "--data", fifo, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int st = run_limited(cases[i], 20);
    if (st != 2 || !strstr(g_err, "not a regular file (a FIFO)") || !strstr(g_err, fifo)) {
      fail_msg("dso %s %s ...: exit status %d (-1: killed after 20 s), stderr \"%s\"",
               cases[i][0], cases[i][1], st, g_err);
    }
  }
  remove(fifo);
}

// the data files the synthetic tasks read (their true values in tasks/truth/), recorded by dso
// simulate as .ci/main records them, here into a folder of the build folder (g_data) and given
// to every command with --data; drive_sysid's own data come from an ideal Coulomb plant
// (test_app_friction), here its model's own simulation stands in for dso check
static int make_data(void** state) {
  (void)state;
  if (dso_test_mkdtemp(g_data, sizeof(g_data), "test_cli_data")) {
    return -1;
  }
  const char* opts[] = {"--excitation 0.6 --validation 2", "--excitation 1.0",
                        "--validation 4", "--excitation 0.5 --horizon 400",
                        "--excitation 0.5 --excitation-kind multisine --horizon 300"};
  for (int i = 0; i < NDATA; i++) {
    char cmd[2048], truth[256], full[1200];
    snprintf(truth, sizeof(truth), "tasks/truth/%s.json", kDataTasks[i]);
    snprintf(full, sizeof(full), "%s/%s", DSO_SOURCE_DIR, truth);
    int has_truth = access(full, R_OK) == 0;
    snprintf(cmd, sizeof(cmd), "simulate tasks/%s.json -o %s %s%s%s", kDataTasks[i],
             data_file(kDataTasks[i]), opts[i], has_truth ? " --values " : "",
             has_truth ? truth : "");
    if (run(cmd) != 0) {
      fprintf(stderr, "dso %s: %s", cmd, g_err);
      return -1;
    }
  }
  return 0;
}

static int remove_data(void** state) {
  (void)state;
  return dso_test_rmtree(g_data) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_statuses),
      cmocka_unit_test(test_info_on_models),
      cmocka_unit_test(test_check_every_task),
      cmocka_unit_test(test_gradcheck),
      cmocka_unit_test(test_run_sysid_and_resume),
      cmocka_unit_test(test_bad_option_values),
      cmocka_unit_test(test_fifo_inputs),
  };
  return cmocka_run_group_tests(tests, make_data, remove_data);
}
