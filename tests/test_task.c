// Task files: every bad file in tests/data/tasks_bad/ is rejected by `dso check` with exit status
// 2, an empty stdout and a message on stderr that names the file, the JSON path and what was
// expected; dso_task_load returns NULL with the same message (in this process, so AddressSanitizer
// sees leaks on the error paths). Every good file in tests/data/tasks_good/ loads and prints its
// layout in the block order of eq. 95.
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "dso_internal.h"
#include "estim/estimfit.h"
#include "apps/fit.h"
#include "apps/train.h"

extern char** environ;

#define BAD_DIR DSO_SOURCE_DIR "/tests/data/tasks_bad"
#define GOOD_DIR DSO_SOURCE_DIR "/tests/data/tasks_good"

// a bad file, the part of the message that locates the problem and the part that says what was
// expected
typedef struct {
  const char* file;
  const char* where;
  const char* what;
} BadCase;

static const BadCase kBad[] = {
    // syntax and file level
    {"bare_word.json", "line 4, column 61", "malformed JSON near 'log}"},
    {"binary_nul.json", "binary_nul.json", "binary file (contains a NUL byte), expected text"},
    {"comment.json", "line 2", "malformed JSON"},
    {"deep_nesting.json", "line 1", "JSON nested deeper than 1000 levels"},
    {"empty.json", "empty.json", "file is empty"},
    {"infinity_literal.json", "line 4, column 65", "malformed JSON near 'Infinity]"},
    {"nan_literal.json", "line 4, column 43", "malformed JSON near 'NaN}"},
    {"single_quotes.json", "line 2", "malformed JSON"},
    {"top_level_array.json", "top level", "expected an object, got an array"},
    {"top_level_number.json", "top level", "expected an object, got a number"},
    {"trailing_comma.json", "line 5, column 3", "malformed JSON near ']"},
    {"two_documents.json", "line 2, column 1", "malformed JSON near '{\"model\""},
    // top-level keys and the model
    {"description_not_string.json", "description", "expected a string, got a number"},
    {"duplicate_key.json", "key \"model\"", "appears twice"},
    {"empty_model.json", "model", "expected the path of an MJCF file, got \"\""},
    {"missing_model.json", "\"model\"", "is required (a string)"},
    {"missing_model_file.json", "model: " BAD_DIR "/../../../models/cartpol.xml",
     "cannot open model file"},
    {"model_not_mjcf.json", "model: " BAD_DIR "/broken_model.xml",
     "not a valid MJCF model: XML parse error"},
    {"model_not_string.json", "model", "expected a string, got an array"},
    {"theta_not_array.json", "theta", "expected an array of entries, got an object"},
    {"unknown_top_key.json", "unknown key \"thetaa\"", "valid keys: description, model, policy, chain, cost, rollout, data, fit, train, estimator, theta"},
    // entries: keys and names
    {"duplicate_entry_key.json", "theta[0]", "key \"init\" appears twice"},
    {"entry_not_object.json", "theta[1]", "expected an object, got a string"},
    {"index_out_of_range.json", "theta[0].name", "component 3 out of range 0..2"},
    {"malformed_index.json", "theta[0].name", "malformed component index, expected [k]"},
    {"missing_index.json", "theta[0].name", "com has 3 components; write com[k] with k in 0..2"},
    {"missing_name.json", "theta[1]", "\"name\" is required (a string)"},
    {"name_not_string.json", "theta[0].name", "expected a string, got a number"},
    {"name_too_long.json", "theta[0].name", "longer than 127 characters"},
    {"unknown_attribute.json", "theta[0].name", "unknown attribute 'weight' for physics; valid:"},
    {"unknown_body.json", "theta[0].name", "the model has no body named 'pendulum'"},
    {"unknown_entry_key.json", "theta[0]",
     "unknown key \"inti\"; valid keys: name, init, transform, bounds, prior, fixed"},
    {"unknown_joint.json", "theta[1].name", "the model has no joint named 'slide' (joints: slider"},
    {"unknown_prefix.json", "theta[0].name",
     "unknown prefix 'phyiscs'; valid prefixes: physics, sensor, sensor_noise, action_noise"},
    {"unknown_sensor.json", "theta[0].name", "the model has no sensor named 'angle' (sensors:"},
    {"world_body.json", "theta[0].name", "the world body has no parameters"},
    {"duplicate_alias.json", "theta: physics.pole.mass", "appears twice in theta (entries 0 and 1)"},
    {"duplicate_theta_names.json", "theta: physics.pole.mass",
     "appears twice in theta (entries 0 and 2)"},
    // entries: values, transforms, bounds, priors, flags
    {"bounded_init_on_bound.json", "theta[0]: physics.slider.damping",
     "initial value 1 must lie strictly inside the bounds (0.01, 1) under the bounded transform"},
    {"bounded_open_bound.json", "theta[0]: physics.slider.damping",
     "the bounded transform needs finite bounds"},
    {"bounded_without_bounds.json", "theta[0]", "the bounded transform needs \"bounds\""},
    {"bounds_equal.json", "theta[0].bounds", "lower 0.3 must be below upper 0.3"},
    {"bounds_lower_above_upper.json", "theta[1].bounds", "lower 1 must be below upper 0.01"},
    {"bounds_negative_mass.json", "theta[0].bounds",
     "physics.pole.mass cannot be negative (lower -1)"},
    {"bounds_not_array.json", "theta[0].bounds",
     "expected an array of 2 numbers [lower, upper] (null for no bound), got an object"},
    {"bounds_string_element.json", "theta[0].bounds[0]",
     "expected a finite number or null, got a string"},
    {"fixed_not_bool.json", "theta[0].fixed", "expected true or false, got a string"},
    {"fixed_number.json", "theta[0].fixed", "expected true or false, got a number"},
    {"init_null.json", "theta[0].init", "expected a finite number, got null"},
    {"init_outside_bounds.json", "theta[1]: physics.pole.mass",
     "initial value 2 is outside the bounds [0.01, 1]"},
    {"init_overflow.json", "theta[0].init", "expected a finite number, got a non-finite number"},
    {"init_string.json", "theta[0].init", "expected a finite number, got a string"},
    {"log_negative_explicit.json", "theta[0]: physics.pole.com[2]",
     "initial value -0.3 must be > 0 under the log transform"},
    {"log_zero_from_model.json", "theta[0]: physics.hinge.frictionloss",
     "must be > 0, got init 0 (the log transform is the default for this quantity; use "
     "\"transform\": \"identity\" to allow 0)"},
    {"noise_std_without_init.json", "theta[0]",
     "\"init\" is required for action_noise.force.std (the model holds no value for it)"},
    {"prior_missing_mean.json", "theta[0].prior", "\"mean\" is required (a number)"},
    {"prior_not_object.json", "theta[0].prior", "expected an object, got an array"},
    {"prior_std_negative.json", "theta[0].prior.std", "expected a number > 0, got -0.05"},
    {"prior_std_zero.json", "theta[0].prior.std", "expected a number > 0, got 0"},
    {"prior_unknown_key.json", "theta[0].prior", "unknown key \"sigma\"; valid keys: mean, std"},
    {"transform_not_string.json", "theta[0].transform", "expected a string, got a boolean"},
    {"unknown_transform.json", "theta[0].transform",
     "unknown transform \"logit\"; valid: identity, log, bounded"},
    {"truncated.json", "line 4", "unexpected end of file (truncated JSON?)"},
    // the data and fit sections
    {"data_missing_file.json", "data: " BAD_DIR "/nowhere.csv", "cannot open file"},
    {"data_unknown_column.json", "single_pendulum_freeswing.csv:1:1", "unknown column \"t_s\""},
    {"fit_not_object.json", "fit", "expected an object, got an array"},
    // the policy, chain, cost and rollout sections
    {"chain_unknown_key.json", "chain", "unknown key \"inputs\"; valid keys: input,"},
    {"chain_bad_input.json", "chain.input", "unknown input \"pixels\"; valid: state, sensors"},
    {"chain_periodic_not_array.json", "chain.periodic",
     "expected an array of hinge joint names, got a string"},
    {"chain_periodic_unknown_joint.json", "chain.periodic[0]", "the model has no joint \"pole\""},
    {"chain_periodic_slide.json", "chain.periodic[0]",
     "joint \"slider\" is not a hinge; only hinge angles are periodic"},
    {"chain_periodic_twice.json", "chain.periodic[1]", "joint \"hinge\" is listed twice"},
    {"chain_periodic_number.json", "chain.periodic[0]", "expected a joint name, got a number"},
    {"chain_init_unknown_joint.json", "chain.init_qpos", "the model has no joint named \"elbow\""},
    {"chain_init_std_negative.json", "chain.init_std_qvel.hinge",
     "expected a number >= 0, got -0.1"},
    {"chain_fd_zero.json", "chain.fd", "eps_state and eps_theta must be > 0"},
    {"randomize_not_in_theta.json", "chain.randomize",
     "\"physics.pole.mass\" is not an entry of theta"},
    {"randomize_not_physics.json", "chain.randomize.action_noise.force.std",
     "only physics entries can be randomized"},
    {"policy_unknown_type.json", "policy.type",
     "unknown policy type \"transformer\"; valid types: linear, mlp, rnn"},
    {"policy_hidden_linear.json", "policy.hidden", "applies to type \"mlp\" only"},
    {"policy_entry_unknown.json", "theta[0].name",
     "'policy.K[5,0]' is not a parameter of the task's policy"},
    {"cost_unknown_body.json", "cost[0].body", "the model has no body named \"pendulum\""},
    {"cost_not_array.json", "cost", "expected an array of cost terms, got an object"},
    {"rollout_bad_setting.json", "rollout.setting",
     "unknown setting \"forever\"; valid: episodic, average, timevarying"},
    {"rollout_horizon_zero.json", "rollout.horizon", "expected an integer in [1, 10000000], got 0"},
    {"rollout_gamma_above_one.json", "rollout.gamma", "expected a number in (0, 1], got 1.5"},
    {"rollout_fractional.json", "rollout.rollouts", "expected an integer in [1, 1000000], got 2.5"},
    {"whitespace_only.json", "whitespace_only.json",
     "holds no JSON value (only whitespace), expected an object"},
    {"bounds_overflow.json", "theta[0].bounds[1]",
     "expected a finite number or null, got a non-finite number"},
    {"bounds_wrong_length.json", "theta[0].bounds", "got an array of 1 element"},
    {"log_negative_default.json", "theta[0]: physics.pole.mass",
     "must be > 0, got init -0.2 (the log transform is the default"},
    {"noise_std_negative.json", "theta[0]: sensor_noise.imu_acc.std[0]",
     "must be >= 0, got init -0.1"},
    {"empty_name.json", "theta[0].name", "expected a non-empty name"},
    {"model_directory.json", "model: " BAD_DIR "/../../../models",
     "not a regular file (a directory); expected an MJCF file"},
    // issue 12: values that used to pass `dso check` and fail later, sizes that ran out of memory
    {"nul_in_name.json", "line 3, column 40: theta[0].name",
     "the string \"physics.pole.mass\\u0000 and more\" holds \\u0000 (a NUL character)"},
    {"nul_in_key.json", "line 3, column 33: chain.init_qpos",
     "the key \"hinge\\u0000x\" holds \\u0000 (a NUL character)"},
    {"model_timestep_zero.json", "model: " BAD_DIR "/timestep_zero.xml: option timestep",
     "expected a finite number > 0 (seconds), got 0"},
    {"model_timestep_inf.json", "model: " BAD_DIR "/timestep_inf.xml: option timestep",
     "expected a finite number > 0 (seconds), got inf"},
    {"model_armature_nan.json", "model: " BAD_DIR "/armature_nan.xml: joint \"hinge\": armature",
     "expected a finite number >= 0, got nan"},
    {"mass_tiny.json", "theta[0]: physics.pole.mass", "initial value 1e-300 kg is below 1e-12 kg"},
    {"prior_std_tiny.json", "theta[0].prior.std", "expected a number >= 1e-150"},
    {"inertia_not_rigid.json", "theta: physics.arm.inertia[2]",
     "(0.0007737, 0.0007692, 0.01), which no rigid body has"},
    {"rollout_rollouts_huge.json", "rollout.rollouts",
     "expected an integer in [1, 1000000], got 1e+08"},
    {"rollout_horizon_huge.json", "rollout.horizon",
     "expected an integer in [1, 10000000], got 1e+09"},
    {"rollout_batch_huge.json", "rollout.rollouts 1000000 x rollout.horizon 10000000",
     "more than the 4 GB allowed; lower rollout.rollouts or rollout.horizon"},
    {"policy_hidden_huge.json", "policy.hidden",
     "the policy would have 1099516870657 parameters (theta entries), more than the 1000000"},
    {"cost_empty.json", "cost: ", "an empty list of terms, so there is nothing to optimize"},
    {"cost_no_free_entry.json", "theta: ", "every theta entry is fixed, so there is nothing"},
    {"data_time_ms.json", "data: " BAD_DIR "/time_ms.csv: column \"time\" (time)",
     "1 apart (median step), 1000 x the model timestep 0.001 s, more than the 500 x accepted; "
     "is the time column in milliseconds?"},
    {"data_directory.json", "data: " BAD_DIR "/../datasets",
     "not a regular file (a directory); expected a CSV file"},
};
enum { kNumBad = (int)(sizeof(kBad) / sizeof(kBad[0])) };

// Bad inputs that are not files of tasks_bad/: the folder itself given as a task.
static const char* const kPending[] = {
    ".",  // the folder itself given as a task
};
enum { kNumPending = (int)(sizeof(kPending) / sizeof(kPending[0])) };

static char g_out[1 << 16];
static char g_err[1 << 16];

// reads what fd holds from its start into buf (size len), NUL-terminated
static void slurp_fd(char* buf, size_t len, int fd) {
  size_t n = 0;
  if (lseek(fd, 0, SEEK_SET) == 0) {
    ssize_t got;
    while (n + 1 < len && (got = read(fd, buf + n, len - 1 - n)) > 0) {
      n += (size_t)got;
    }
  }
  buf[n] = '\0';
}

// runs `dso check task` with stdout and stderr sent to temporary files; returns the exit status
// (-1 when the program did not exit normally) and fills g_out and g_err
static int run_check(const char* task) {
  char out_path[2048], err_path[2048];
  int out_fd = dso_test_mkstemps(out_path, sizeof(out_path), "dso_test_task_out", ".txt");
  int err_fd = dso_test_mkstemps(err_path, sizeof(err_path), "dso_test_task_err", ".txt");
  assert_true(out_fd >= 0 && err_fd >= 0);
  unlink(out_path);
  unlink(err_path);
  posix_spawn_file_actions_t fa;
  assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
  assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO), 0);
  assert_int_equal(posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO), 0);
  char* argv[] = {(char*)DSO_CLI, (char*)"check", (char*)task, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, DSO_CLI, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(rc, 0);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
  }
  slurp_fd(g_out, sizeof(g_out), out_fd);
  slurp_fd(g_err, sizeof(g_err), err_fd);
  close(out_fd);
  close(err_fd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void bad_path(char* buf, size_t len, const char* file) {
  snprintf(buf, len, "%s/%s", BAD_DIR, file);
}

// fails the test with the file and the text when needle is not in text
static void expect_in(const char* text, const char* needle, const char* file, const char* what) {
  if (!strstr(text, needle)) {
    print_error("%s: %s does not contain \"%s\":\n%s\n", file, what, needle, text);
    fail();
  }
}

static void expect_status(int got, int want, const char* file) {
  if (got != want) {
    print_error("%s: exit status %d, expected %d; stderr:\n%s\n", file, got, want, g_err);
    fail();
  }
}

static void test_bad_tasks_cli(void** state) {
  for (int i = 0; i < kNumBad; i++) {
    char path[1024], expect[1024];
    bad_path(path, sizeof(path), kBad[i].file);
    expect_status(run_check(path), 2, kBad[i].file);
    if (g_out[0]) {
      print_error("%s: stdout is not empty:\n%s\n", kBad[i].file, g_out);
      fail();
    }
    // one message: "dso check: <file>: ..." naming the location and what was expected
    snprintf(expect, sizeof(expect), "dso check: %s: ", path);
    if (strncmp(g_err, expect, strlen(expect)) != 0) {
      print_error("%s: stderr does not start with \"%s\":\n%s\n", kBad[i].file, expect, g_err);
      fail();
    }
    expect_in(g_err, kBad[i].where, kBad[i].file, "stderr");
    expect_in(g_err, kBad[i].what, kBad[i].file, "stderr");
  }
}

static void test_bad_tasks_library(void** state) {
  for (int i = 0; i < kNumBad; i++) {
    char path[1024], cli[DSO_ERROR_LEN + 64];
    bad_path(path, sizeof(path), kBad[i].file);
    dsoError err = {0};
    dsoTask* task = dso_task_load(path, &err);
    if (task) {
      print_error("%s: accepted by dso_task_load\n", kBad[i].file);
      dso_task_free(task);
      fail();
    }
    if (err.code != DSO_ERR_INPUT && err.code != DSO_ERR_IO) {
      print_error("%s: error code %d (%s), expected bad input or I/O\n", kBad[i].file,
                  (int)err.code, dso_status_string(err.code));
      fail();
    }
    expect_in(err.msg, path, kBad[i].file, "the message");
    expect_in(err.msg, kBad[i].where, kBad[i].file, "the message");
    expect_in(err.msg, kBad[i].what, kBad[i].file, "the message");
    // the CLI prints exactly the library's message
    run_check(path);
    snprintf(cli, sizeof(cli), "dso check: %s\n", err.msg);
    assert_string_equal(g_err, cli);
    // a NULL error record is allowed
    assert_null(dso_task_load(path, NULL));
  }
}

static void test_pending_bad_tasks(void** state) {
  for (int i = 0; i < kNumPending; i++) {
    char path[1024];
    bad_path(path, sizeof(path), kPending[i]);
    expect_status(run_check(path), 2, kPending[i]);
    assert_string_equal(g_out, "");
    expect_in(g_err, path, kPending[i], "stderr");
    dsoError err = {0};
    dsoTask* task = dso_task_load(path, &err);
    if (task) {
      print_error("%s: accepted by dso_task_load\n", kPending[i]);
      dso_task_free(task);
      fail();
    }
    assert_true(err.code == DSO_ERR_INPUT || err.code == DSO_ERR_IO);
    expect_in(err.msg, path, kPending[i], "the message");
    expect_in(err.msg, "not a regular file (a directory); expected a file", kPending[i],
              "the message");
  }
}

static int ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

// every *.json in tasks_bad/ is in kBad or kPending, once, and every listed file exists
static void test_table_covers_every_file(void** state) {
  DIR* dir = opendir(BAD_DIR);
  assert_non_null(dir);
  int files = 0;
  int seen[kNumBad + kNumPending];
  memset(seen, 0, sizeof(seen));
  for (struct dirent* de = readdir(dir); de; de = readdir(dir)) {
    if (!ends_with(de->d_name, ".json")) {
      continue;
    }
    files++;
    int found = 0;
    for (int i = 0; i < kNumBad; i++) {
      if (!strcmp(de->d_name, kBad[i].file)) {
        found++;
        seen[i]++;
      }
    }
    for (int i = 0; i < kNumPending; i++) {
      if (!strcmp(de->d_name, kPending[i])) {
        found++;
        seen[kNumBad + i]++;
      }
    }
    if (found != 1) {
      print_error("%s: listed %d times in kBad and kPending, expected once\n", de->d_name, found);
      fail();
    }
  }
  closedir(dir);
  for (int i = 0; i < kNumBad; i++) {
    if (seen[i] != 1) {
      print_error("%s: in kBad but not in %s\n", kBad[i].file, BAD_DIR);
      fail();
    }
  }
  for (int i = 0; i < kNumPending; i++) {
    if (strcmp(kPending[i], ".") && seen[kNumBad + i] != 1) {
      print_error("%s: in kPending but not in %s\n", kPending[i], BAD_DIR);
      fail();
    }
  }
  assert_true(files >= 36);
  assert_int_equal(files, kNumBad + kNumPending - 1);  // "." is not a file
}

// ---- bad run sections (tasks_bad_run/): dso_task_load reads the fit, train and estimator
// sections into their typed settings (config/*_section.h), so these files do not load; `dso
// check` rejects them with exit status 2 and the message of the section's reader

#define BAD_RUN_DIR DSO_SOURCE_DIR "/tests/data/tasks_bad_run"

typedef struct {
  const char* file;
  const char* section;  // "fit", "train" or "estimator"
  const char* where;
  const char* what;
} BadRunCase;

static const BadRunCase kBadRun[] = {
    {"train_unknown_key.json", "train", "train: ", "unknown key \"rate\"; valid keys: max_iter,"},
    {"train_gradient_unknown.json", "train", "train.gradient",
     "expected \"pathwise\" or \"score\", got \"reinforce\""},
    {"train_gradient_number.json", "train", "train.gradient", "expected a string, got a number"},
    {"train_lr_negative.json", "train", "train.lr", "expected a finite number > 0, got -0.1"},
    {"train_epochs_pathwise.json", "train", "train.epochs",
     "4 steps per batch need the score route"},
    {"train_clip_above_one.json", "train", "train.clip", "expected a number in [0, 1), got 1.5"},
    {"train_natural_pathwise.json", "train", "train.optimizer",
     "\"natural\" needs the score route"},
    {"fit_unknown_key.json", "fit", "fit: ", "unknown key \"windw\"; valid keys: window,"},
    {"fit_max_iter_negative.json", "fit", "fit.max_iter", "expected an integer in [0, 1e+09]"},
    {"estimator_unknown_key.json", "estimator", "estimator: ",
     "unknown key \"corector\"; valid keys: corrector,"},
};
enum { kNumBadRun = (int)(sizeof(kBadRun) / sizeof(kBadRun[0])) };

static void test_bad_run_sections(void** state) {
  (void)state;
  for (int i = 0; i < kNumBadRun; i++) {
    const BadRunCase* c = &kBadRun[i];
    char path[1024], expect[1200];
    snprintf(path, sizeof(path), "%s/%s", BAD_RUN_DIR, c->file);
    expect_status(run_check(path), 2, c->file);
    assert_string_equal(g_out, "");
    snprintf(expect, sizeof(expect), "dso check: %s: ", path);
    if (strncmp(g_err, expect, strlen(expect)) != 0) {
      print_error("%s: stderr does not start with \"%s\":\n%s\n", c->file, expect, g_err);
      fail();
    }
    expect_in(g_err, c->where, c->file, "stderr");
    expect_in(g_err, c->what, c->file, "stderr");
    // the load refuses the task with exactly the message the CLI printed, naming the section
    dsoError e2 = {0};
    assert_null(dso_task_load(path, &e2));
    assert_int_equal(e2.code, DSO_ERR_INPUT);
    expect_in(e2.msg, c->section, c->file, "load error");
    char cli[DSO_ERROR_LEN + 64];
    snprintf(cli, sizeof(cli), "dso check: %s\n", e2.msg);
    assert_string_equal(g_err, cli);
  }
  // every file of the folder is in the table
  DIR* dir = opendir(BAD_RUN_DIR);
  assert_non_null(dir);
  int files = 0;
  for (struct dirent* de = readdir(dir); de; de = readdir(dir)) {
    if (!ends_with(de->d_name, ".json")) continue;
    files++;
    int found = 0;
    for (int i = 0; i < kNumBadRun; i++) found += !strcmp(de->d_name, kBadRun[i].file);
    if (found != 1) {
      print_error("%s: listed %d times in kBadRun, expected once\n", de->d_name, found);
      fail();
    }
  }
  closedir(dir);
  assert_int_equal(files, kNumBadRun);
}

// ---- good tasks

#define FROM_MODEL NAN  // init absent: the value the model holds

typedef struct {
  const char* name;
  dsoBlock block;
  double init;  // FROM_MODEL: must equal the model's value
  dsoTransform transform;
  double lower, upper;
  int has_prior;
  double prior_mean, prior_std;
  int fixed;
} GoodEntry;

typedef struct {
  const char* file;
  const char* model;        // as written in the task
  const char* description;  // "" when absent
  int n;
  GoodEntry e[8];           // in layout order
} GoodTask;

static const GoodTask kGood[] = {
    {"cartpole_mixed.json", "../../../models/cartpole.xml",
     "Every kind of entry on the cart-pole, listed out of block order on purpose.", 8,
     {
         {"physics.pole.mass", DSO_BLOCK_PHYSICS, 0.25, DSO_TRANSFORM_LOG, 0.05, 1.0, 1, 0.2,
          0.05, 0},
         {"physics.pole.com[2]", DSO_BLOCK_PHYSICS, FROM_MODEL, DSO_TRANSFORM_IDENTITY, -INFINITY,
          0.6, 0, 0, 0, 0},
         {"physics.slider.damping", DSO_BLOCK_PHYSICS, 0.2, DSO_TRANSFORM_BOUNDED, 0.01, 1.0, 0,
          0, 0, 0},
         {"physics.gravity[2]", DSO_BLOCK_PHYSICS, FROM_MODEL, DSO_TRANSFORM_IDENTITY, -20,
          INFINITY, 0, 0, 0, 1},
         {"physics.cart.mass", DSO_BLOCK_PHYSICS, FROM_MODEL, DSO_TRANSFORM_LOG, 0, INFINITY, 0,
          0, 0, 0},
         {"action_noise.force.std", DSO_BLOCK_ACTION_NOISE, 0.1, DSO_TRANSFORM_LOG, 0, INFINITY,
          0, 0, 0, 1},
         {"sensor.hinge_pos.offset", DSO_BLOCK_SENSOR, 0.01, DSO_TRANSFORM_IDENTITY, -INFINITY,
          INFINITY, 0, 0, 0, 0},
         {"sensor_noise.hinge_pos.std", DSO_BLOCK_SENSOR_NOISE, 0.01, DSO_TRANSFORM_LOG, 0,
          INFINITY, 0, 0, 0, 0},
     }},
    {"pendulum_sensors.json", "../../../models/pendulum.xml",
     "IMU calibration on the pendulum: gains, offsets and noise of the inertial sensors.", 7,
     {
         {"physics.hinge.damping", DSO_BLOCK_PHYSICS, FROM_MODEL, DSO_TRANSFORM_LOG, 0, INFINITY,
          0, 0, 0, 0},
         {"physics.arm.mass", DSO_BLOCK_PHYSICS, FROM_MODEL, DSO_TRANSFORM_LOG, 0, INFINITY, 0, 0,
          0, 1},
         {"physics.hinge.frictionloss", DSO_BLOCK_PHYSICS, 0, DSO_TRANSFORM_IDENTITY, 0, INFINITY,
          0, 0, 0, 0},
         {"action_noise.torque.std", DSO_BLOCK_ACTION_NOISE, 0.05, DSO_TRANSFORM_BOUNDED, 0.001,
          1, 0, 0, 0, 0},
         {"sensor.imu_acc.gain[1]", DSO_BLOCK_SENSOR, 1.0, DSO_TRANSFORM_IDENTITY, -INFINITY,
          INFINITY, 1, 1.0, 0.05, 0},
         {"sensor.imu_acc.offset[0]", DSO_BLOCK_SENSOR, 0.0, DSO_TRANSFORM_IDENTITY, -INFINITY,
          INFINITY, 0, 0, 0, 0},
         {"sensor_noise.imu_gyro.std[2]", DSO_BLOCK_SENSOR_NOISE, 0.05, DSO_TRANSFORM_LOG, 0,
          INFINITY, 1, 0.04, 0.02, 0},
     }},
    {"arm2_design.json", "../../../models/arm2.xml", "", 6,
     {
         {"physics.forearm_geom.size[1]", DSO_BLOCK_PHYSICS, 0.14, DSO_TRANSFORM_LOG, 0.05, 0.3,
          0, 0, 0, 0},
         {"physics.shoulder_torque.gear[0]", DSO_BLOCK_PHYSICS, 12, DSO_TRANSFORM_LOG, 1, 50, 0,
          0, 0, 0},
         {"physics.elbow.stiffness", DSO_BLOCK_PHYSICS, 0, DSO_TRANSFORM_IDENTITY, 0, 5, 0, 0, 0,
          0},
         {"physics.elbow.force", DSO_BLOCK_PHYSICS, -0.1, DSO_TRANSFORM_IDENTITY, -INFINITY,
          INFINITY, 0, 0, 0, 0},
         {"sensor.ee_pos.offset[2]", DSO_BLOCK_SENSOR, -0.01, DSO_TRANSFORM_IDENTITY, -INFINITY,
          INFINITY, 0, 0, 0, 0},
         {"sensor_noise.ee_pos.std[0]", DSO_BLOCK_SENSOR_NOISE, 0.001, DSO_TRANSFORM_LOG, 0,
          INFINITY, 0, 0, 0, 1},
     }},
    {"hopper_empty_theta.json", "../../../models/hopper.xml",
     "A model with an empty theta: nothing to optimize, but a valid task.", 0, {{0}}},
    {"utf8_bom_no_theta.json", "../../../models/double_pendulum.xml",
     "Saved by an editor that writes a UTF-8 byte order mark; no theta key.", 0, {{0}}},
};
enum { kNumGood = (int)(sizeof(kGood) / sizeof(kGood[0])) };

static void fmt_bound(char* buf, size_t len, double v) {
  if (isinf(v)) {
    snprintf(buf, len, "%s", v < 0 ? "-inf" : "inf");
  } else {
    snprintf(buf, len, "%g", v);
  }
}

// the expected natural initial value of entry i of task
static double expected_init(const dsoTask* task, const GoodEntry* g, int i) {
  return isnan(g->init) ? dso_bind_get(task->model, &task->theta->entry[i].bind) : g->init;
}

static void check_layout(const dsoTask* task, const GoodTask* g) {
  const dsoTheta* th = task->theta;
  assert_int_equal(th->n, g->n);
  assert_string_equal(task->description, g->description);
  for (int i = 0; i < g->n; i++) {
    const dsoThetaEntry* e = &th->entry[i];
    const GoodEntry* x = &g->e[i];
    assert_string_equal(e->name, x->name);
    assert_int_equal(e->block, x->block);
    assert_true(e->init == expected_init(task, x, i));
    assert_int_equal(e->transform, x->transform);
    assert_true(e->lower == x->lower);
    assert_true(e->upper == x->upper);
    assert_int_equal(e->has_prior, x->has_prior);
    if (x->has_prior) {
      assert_true(e->prior_mean == x->prior_mean);
      assert_true(e->prior_std == x->prior_std);
    }
    assert_int_equal(e->fixed, x->fixed);
    assert_int_equal(dso_theta_find(th, x->name), i);
    // eq. 95 block order, and block_start agrees
    if (i > 0) {
      assert_true(th->entry[i - 1].block <= e->block);
    }
    assert_true(th->block_start[e->block] <= i && i < th->block_start[e->block + 1]);
  }
  assert_int_equal(th->block_start[DSO_NBLOCK], th->n);
}

static void test_good_tasks_library(void** state) {
  for (int t = 0; t < kNumGood; t++) {
    char path[1024], model[1024];
    snprintf(path, sizeof(path), "%s/%s", GOOD_DIR, kGood[t].file);
    snprintf(model, sizeof(model), "%s/%s", GOOD_DIR, kGood[t].model);
    dsoError err = {0};
    dsoTask* task = dso_task_load(path, &err);
    if (!task) {
      print_error("%s: %s\n", kGood[t].file, err.msg);
      fail();
    }
    assert_int_equal(err.code, DSO_OK);
    assert_string_equal(task->path, path);
    assert_string_equal(task->model_path, model);
    assert_non_null(task->model);
    check_layout(task, &kGood[t]);
    // the initial values are admissible: u = T^-1(init) maps back to init
    int n = task->theta->n;
    double u[8], v[8];
    dso_theta_init(task->theta, u);
    dso_theta_natural(task->theta, v, u);
    for (int i = 0; i < n; i++) {
      assert_true(isfinite(u[i]));
      assert_true(fabs(v[i] - task->theta->entry[i].init) <=
                  1e-12 * (1 + fabs(task->theta->entry[i].init)));
    }
    dso_task_free(task);
  }
}

// an absent init takes the model's value
static void test_init_defaults_to_model(void** state) {
  dsoError err = {0};
  dsoTask* task = dso_task_load(GOOD_DIR "/cartpole_mixed.json", &err);
  assert_non_null(task);
  const mjModel* m = task->model;
  const dsoTheta* th = task->theta;
  int pole = mj_name2id(m, mjOBJ_BODY, "pole"), cart = mj_name2id(m, mjOBJ_BODY, "cart");
  assert_true(th->entry[dso_theta_find(th, "physics.pole.com[2]")].init ==
              m->body_ipos[3 * pole + 2]);
  assert_true(th->entry[dso_theta_find(th, "physics.pole.com[2]")].init == 0.3);
  assert_true(th->entry[dso_theta_find(th, "physics.cart.mass")].init == m->body_mass[cart]);
  assert_true(th->entry[dso_theta_find(th, "physics.cart.mass")].init == 1.0);
  assert_true(th->entry[dso_theta_find(th, "physics.gravity[2]")].init == m->opt.gravity[2]);
  // explicit values override the model's
  assert_true(th->entry[dso_theta_find(th, "physics.pole.mass")].init == 0.25);
  assert_true(m->body_mass[pole] == 0.2);
  dso_task_free(task);

  task = dso_task_load(GOOD_DIR "/pendulum_sensors.json", &err);
  assert_non_null(task);
  m = task->model;
  th = task->theta;
  int hinge = mj_name2id(m, mjOBJ_JOINT, "hinge"), arm = mj_name2id(m, mjOBJ_BODY, "arm");
  assert_true(th->entry[dso_theta_find(th, "physics.hinge.damping")].init ==
              m->dof_damping[m->jnt_dofadr[hinge]]);
  assert_true(th->entry[dso_theta_find(th, "physics.hinge.damping")].init == 0.00015);
  // "physics.body#1.mass" is stored under the body's name
  assert_int_equal(dso_theta_find(th, "physics.body#1.mass"), -1);
  assert_true(th->entry[dso_theta_find(th, "physics.arm.mass")].init == m->body_mass[arm]);
  // sensor gain and offset default to the neutral 1 and 0
  assert_true(th->entry[dso_theta_find(th, "sensor.imu_acc.gain[1]")].init == 1.0);
  assert_true(th->entry[dso_theta_find(th, "sensor.imu_acc.offset[0]")].init == 0.0);
  dso_task_free(task);
}

// splits text into lines in place; returns how many (at most max)
static int split_lines(char* text, char** lines, int max) {
  int n = 0;
  for (char* p = text; *p && n < max;) {
    lines[n++] = p;
    char* nl = strchr(p, '\n');
    if (!nl) {
      break;
    }
    *nl = '\0';
    p = nl + 1;
  }
  return n;
}

static void test_good_tasks_cli(void** state) {
  for (int t = 0; t < kNumGood; t++) {
    const GoodTask* g = &kGood[t];
    char path[1024], want[2048];
    snprintf(path, sizeof(path), "%s/%s", GOOD_DIR, g->file);
    dsoError err = {0};
    dsoTask* task = dso_task_load(path, &err);
    assert_non_null(task);
    expect_status(run_check(path), 0, g->file);
    assert_string_equal(g_err, "");
    char* lines[64];
    int nl = split_lines(g_out, lines, 64);
    int k = 0;
    snprintf(want, sizeof(want), "task %s: model %s/%s, %d theta entries", path, GOOD_DIR,
             g->model, g->n);
    assert_string_equal(lines[k++], want);
    if (g->description[0]) {
      snprintf(want, sizeof(want), "  %s", g->description);
      assert_string_equal(lines[k++], want);
    }
    assert_true(k < nl);
    assert_non_null(strstr(lines[k], "index"));
    assert_non_null(strstr(lines[k], "block"));
    k++;
    assert_int_equal(nl - k, g->n);
    int last_block = -1;
    for (int i = 0; i < g->n; i++, k++) {
      const GoodEntry* x = &g->e[i];
      int index = -1;
      char name[DSO_NAME_LEN] = "", block[32] = "", tr[16] = "";
      double init = NAN;
      assert_int_equal(sscanf(lines[k], "%d %127s %31s %lf %15s", &index, name, block, &init, tr),
                       5);
      assert_int_equal(index, i);
      assert_string_equal(name, x->name);
      assert_string_equal(block, dso_block_name(x->block));
      assert_string_equal(tr, dso_transform_name(x->transform));
      double e = expected_init(task, x, i);
      assert_true(fabs(init - e) <= 1e-5 * fabs(e));  // printed with %.6g
      // blocks appear in eq. 95 order
      int b = -1;
      for (int j = 0; j < DSO_NBLOCK; j++) {
        if (!strcmp(block, dso_block_name((dsoBlock)j))) {
          b = j;
        }
      }
      assert_true(b >= last_block);
      last_block = b;
      char lo[32], hi[32], bounds[80], prior[64] = " - ";
      fmt_bound(lo, sizeof(lo), x->lower);
      fmt_bound(hi, sizeof(hi), x->upper);
      snprintf(bounds, sizeof(bounds), " [%s, %s] ", lo, hi);
      expect_in(lines[k], bounds, g->file, "the layout row");
      if (x->has_prior) {
        snprintf(prior, sizeof(prior), " N(%g, %g^2) ", x->prior_mean, x->prior_std);
      }
      expect_in(lines[k], prior, g->file, "the layout row");
      const char* fixed = x->fixed ? " yes" : " no";
      assert_true(ends_with(lines[k], fixed));
    }
    dso_task_free(task);
  }
}

// edge cases of the API itself
static void test_api_edges(void** state) {
  dso_task_free(NULL);
  dsoError err = {0};
  assert_null(dso_task_load(NULL, &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_null(dso_task_load("", &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_null(dso_task_load(BAD_DIR "/no_such_task.json", &err));
  assert_int_equal(err.code, DSO_ERR_IO);
  assert_non_null(strstr(err.msg, BAD_DIR "/no_such_task.json: cannot open file"));
  assert_null(dso_task_load(NULL, NULL));
}

// the policy, chain, cost and rollout sections land in the task and make a working chain
static void test_sections(void** state) {
  dsoError err = {0};
  dsoTask* t = dso_task_load(GOOD_DIR "/cartpole_policy.json", &err);
  if (!t) {
    print_error("%s\n", err.msg);
  }
  assert_non_null(t);
  assert_non_null(t->policy);
  assert_int_equal(dso_policy_np(t->policy), 5);
  assert_int_equal(t->theta->n, 7);
  int k = dso_theta_find(t->theta, "policy.K[0,1]");
  assert_int_equal(k, 1);
  assert_true(t->theta->entry[k].init == 2.5 && t->theta->entry[k].has_prior);
  int mass = dso_theta_find(t->theta, "physics.pole.mass");
  assert_true(t->chain.randomize_std[mass] == 0.05);
  assert_true(t->chain.randomize_std[k] == 0);
  int hinge = t->model->jnt_qposadr[mj_name2id(t->model, mjOBJ_JOINT, "hinge")];
  assert_true(t->chain.init_qpos[hinge] == 3.0);
  assert_true(t->chain.init_std[t->model->jnt_dofadr[1]] == 0.1);
  assert_true(t->chain.divergence_penalty == 500);
  assert_true(t->chain.deriv.eps_theta == 1e-5);
  assert_int_equal(t->cost->nterm, 2);
  assert_int_equal(t->rollout.horizon, 100);
  assert_int_equal(t->rollout.nthread, 2);
  assert_int_equal((int)t->rollout.seed, 7);
  assert_true(t->rollout.gamma == 0.99 && !t->rollout.terminate);
  assert_int_equal(t->nrollout, 16);
  dsoMjChain* mc = dso_task_chain(t, &err);
  assert_non_null(mc);
  dsoRollout* ro = NULL;
  assert_int_equal(dso_rollout_create(&ro, &mc->chain, &t->rollout, t->nrollout, &err), DSO_OK);
  double* u = calloc((size_t)t->theta->n, sizeof(double));
  dso_theta_init(t->theta, u);
  assert_int_equal(dso_rollout_run(ro, u, 0, &err), DSO_OK);
  double J;
  dso_rollout_objective(&J, NULL, NULL, ro);
  assert_true(isfinite(J) && J > 0);
  free(u);
  dso_rollout_free(ro);
  dso_mjchain_free(mc);
  dso_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sections),
      cmocka_unit_test(test_table_covers_every_file),
      cmocka_unit_test(test_bad_tasks_cli),
      cmocka_unit_test(test_bad_tasks_library),
      cmocka_unit_test(test_pending_bad_tasks),
      cmocka_unit_test(test_bad_run_sections),
      cmocka_unit_test(test_good_tasks_library),
      cmocka_unit_test(test_init_defaults_to_model),
      cmocka_unit_test(test_good_tasks_cli),
      cmocka_unit_test(test_api_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
