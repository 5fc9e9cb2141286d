// Safety of `dso run` (issue 12): the output folder name never reaches a shell (gnuplot runs a
// script file in OUTDIR with no shell); OUTDIR is locked for the run; temporary files of a killed
// run are removed and nothing else; progress.csv is written as the run goes and SIGINT ends a run
// after its iteration with a checkpoint that resumes to the bit-identical result; non-finite
// values (a step size of 1e308, a prior std of 1e-200, diverging rollouts) end the run with status
// 1 and a message naming the task file and the entry or field, and are never written. The dso
// program is started with fork/execv (no shell) in a folder under the build folder.
#define _XOPEN_SOURCE 700  // nftw
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dso_internal.h"
#include "apps/run.h"

#define DIR_ DSO_BUILD_DIR "/test_run_safety"

static char g_out[1 << 16];
static char g_err[1 << 16];

// ---- helpers

static int rm_entry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_rf(const char* path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void slurp(char* buf, size_t len, const char* path) {
  FILE* f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = '\0';
  if (f) fclose(f);
}

static int exists(const char* path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

// path = DIR_/name
static const char* at(const char* name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s/%s", DIR_, name);
  return buf[k];
}

static void write_text(const char* name, const char* fmt, ...) {
  FILE* f = fopen(at(name), "w");
  assert_non_null(f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
}

// starts `dso ARGS` (args NULL-terminated, without the program) in DIR_, standard output and
// error to files; no shell
static pid_t start(const char* const* args) {
  char* argv[16];
  int n = 0;
  argv[n++] = (char*)DSO_CLI;
  for (; args[n - 1] && n < 15; n++) argv[n] = (char*)args[n - 1];
  argv[n] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(DIR_ "/.stdout", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(DIR_ "/.stderr", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(DIR_) != 0) _exit(120);
    execv(DSO_CLI, argv);
    _exit(121);
  }
  return pid;
}

// waits for pid; its exit status (-1 when killed), the output in g_out and g_err
static int finish(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    assert_int_equal(errno, EINTR);
  }
  slurp(g_out, sizeof(g_out), DIR_ "/.stdout");
  slurp(g_err, sizeof(g_err), DIR_ "/.stderr");
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(const char* const* args) { return finish(start(args)); }

static void expect_in(const char* text, const char* part) {
  if (!strstr(text, part)) fail_msg("expected \"%s\" in:\n%s", part, text);
}

static int gnuplot_installed(void) {
  const char* path = getenv("PATH");
  char dir[4096];
  for (const char* p = path; p && *p;) {
    const char* end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    snprintf(dir, sizeof(dir), "%.*s/gnuplot", (int)len, p);
    if (access(dir, X_OK) == 0) return 1;
    p = end ? end + 1 : p + len;
  }
  return 0;
}

static void expect_png(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) fail_msg("%s: missing", path);
  unsigned char sig[8] = {0};
  assert_int_equal(fread(sig, 1, 8, f), 8);
  fclose(f);
  assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
}

// a file (when present) holds no JSON null and no printed NaN or infinity
static void expect_all_finite(const char* path) {
  char text[1 << 16];
  if (!exists(path)) return;
  slurp(text, sizeof(text), path);
  for (char* c = text; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
  if (strstr(text, "null") || strstr(text, "nan") || strstr(text, "inf")) {
    fail_msg("%s holds a non-finite value:\n%s", path, text);
  }
}

// the pendulum design task (tasks/pendulum_design.json) with a small batch, the given train
// section and theta
static void write_train_task(const char* name, const char* train, const char* theta) {
  write_text(name,
             "{\"model\": \"%s/models/pendulum.xml\",\n"
             " \"policy\": {\"type\": \"linear\"},\n"
             " \"chain\": {\"input\": \"state\", \"init_qpos\": {\"hinge\": 1.0},\n"
             "           \"init_std_qpos\": {\"hinge\": 0.1}, \"init_std_qvel\": {\"hinge\": 0.5}},\n"
             " \"cost\": [{\"term\": \"quadratic\", \"qpos\": {\"hinge\": 1.0},\n"
             "           \"qpos_weight\": {\"hinge\": 1}, \"qvel_weight\": {\"hinge\": 0.01}},\n"
             "          {\"term\": \"effort\", \"weight\": 1.0}],\n"
             " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 1, \"terminate\": false,\n"
             "             \"horizon\": 200, \"rollouts\": 8, \"threads\": 2, \"seed\": 7},\n"
             " \"train\": %s,\n"
             " \"theta\": %s}\n",
             DSO_SOURCE_DIR, train, theta);
}

static const char* kDesignTheta =
    "[{\"name\": \"action_noise.torque.std\", \"init\": 0.05, \"fixed\": true},\n"
    " {\"name\": \"physics.torque.gear[0]\", \"transform\": \"log\", \"bounds\": [0.25, 1.0],\n"
    "  \"prior\": {\"mean\": 0.5, \"std\": %s}},\n"
    " {\"name\": \"physics.arm.com[2]\", \"transform\": \"bounded\", \"bounds\": [-0.15, -0.05],\n"
    "  \"prior\": {\"mean\": -0.099, \"std\": 0.02}}]";

// the same with the gear's prior mean 2e4 away: with std 1e-150 (the smallest a task may give)
// the prior's square overflows at any admissible gear
static const char* kDesignThetaFar =
    "[{\"name\": \"action_noise.torque.std\", \"init\": 0.05, \"fixed\": true},\n"
    " {\"name\": \"physics.torque.gear[0]\", \"transform\": \"log\", \"bounds\": [0.25, 1.0],\n"
    "  \"prior\": {\"mean\": -2e4, \"std\": %s}},\n"
    " {\"name\": \"physics.arm.com[2]\", \"transform\": \"bounded\", \"bounds\": [-0.15, -0.05],\n"
    "  \"prior\": {\"mean\": -0.099, \"std\": 0.02}}]";

// the pendulum fit on the real free-swing record (shared data, read in place)
static void write_fit_task(const char* name, const char* damping_prior) {
  write_text(name,
             "{\"model\": \"%s/models/pendulum.xml\",\n"
             " \"data\": {\"files\": \"%s/data/multiarm-pendulum-single/"
             "single_pendulum_freeswing.csv\",\n"
             "  \"columns\": {\"t_s\": \"time\", \"segment\": \"episode\",\n"
             "   \"is_validation\": \"validation\",\n"
             "   \"theta1_rad\": {\"to\": \"qpos.hinge\", \"offset\": -3.141592653589793},\n"
             "   \"dtheta1_rad_s\": \"qvel.hinge\"}},\n"
             " \"fit\": {\"window\": 200, \"max_iter\": 1},\n"
             " \"theta\": [{\"name\": \"physics.arm.mass\", \"fixed\": true},\n"
             "  {\"name\": \"physics.arm.com[2]\", \"init\": -0.08, \"bounds\": [-0.2, -0.01]},\n"
             "  {\"name\": \"physics.hinge.damping\", \"init\": 0.0002, \"bounds\": [1e-7, 0.1]%s},\n"
             "  {\"name\": \"physics.hinge.frictionloss\", \"init\": 0.0003,"
             " \"bounds\": [1e-7, 0.1]}]}\n",
             DSO_SOURCE_DIR, DSO_SHARED_DIR, damping_prior);
}

static int setup(void** state) {
  (void)state;
  rm_rf(DIR_);
  if (mkdir(DIR_, 0777) != 0) return -1;
  char theta[1024];
  snprintf(theta, sizeof(theta), kDesignTheta, "0.15");
  write_train_task("small.json", "{\"max_iter\": 3}", theta);
  write_train_task("sig.json", "{\"max_iter\": 12}", theta);
  write_train_task("lr.json", "{\"max_iter\": 3, \"lr\": 1e308}", theta);
  snprintf(theta, sizeof(theta), kDesignTheta, "1e-200");
  write_train_task("prior.json", "{\"max_iter\": 3}", theta);
  snprintf(theta, sizeof(theta), kDesignThetaFar, "1e-150");
  write_train_task("priorfar.json", "{\"max_iter\": 3}", theta);
  write_fit_task("fit.json", "");
  write_fit_task("fitprior.json", ", \"prior\": {\"mean\": -2e4, \"std\": 1e-150}");
  return 0;
}

static int teardown(void** state) {
  (void)state;
  rm_rf(DIR_);
  return 0;
}

// ---- the folder name never reaches a shell

static void test_injection(void** state) {
  (void)state;
  const char* out = "o$(touch X) it's \"q\" `touch Z`; touch Y";
  const char* args[] = {"run", "small.json", "-o", out, "--quiet", NULL};
  int st = run(args);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  assert_false(exists(at("X")));
  assert_false(exists(at("Y")));
  assert_false(exists(at("Z")));
  const char* files[] = {"result.json", "progress.csv", "checkpoint.json", "model.xml",
                         "progress.gp"};
  char path[1024];
  for (int k = 0; k < 5; k++) {
    snprintf(path, sizeof(path), "%s/%s/%s", DIR_, out, files[k]);
    if (!exists(path)) fail_msg("%s: missing", path);
  }
  // a fit in a folder with both quote characters: the trajectories plot too
  const char* fout = "f'it \"two\" $HOME";
  const char* fargs[] = {"run", "fit.json", "-o", fout, "--quiet", NULL};
  st = run(fargs);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  snprintf(path, sizeof(path), "%s/%s/trajectories.gp", DIR_, fout);
  assert_true(exists(path));
  if (!gnuplot_installed()) {
    print_message("gnuplot not installed: the plots are not checked\n");
    return;
  }
  assert_string_equal(g_err, "");  // gnuplot succeeded
  snprintf(path, sizeof(path), "%s/%s/progress.png", DIR_, out);
  expect_png(path);
  snprintf(path, sizeof(path), "%s/%s/trajectories.png", DIR_, fout);
  expect_png(path);
}

// ---- one run per output folder

static void test_lock(void** state) {
  (void)state;
  const char* dir = at("lk");
  assert_int_equal(mkdir(dir, 0777), 0);
  dsoError err = {0};
  int fd = -1, fd2 = -1;
  assert_int_equal(dso_run_lock_acquire(&fd, dir, &err), DSO_OK);
  assert_true(fd >= 0);
  // a second lock on the folder fails at once, naming the holder (here, this process)
  char expect[1200];
  snprintf(expect, sizeof(expect), "%s is in use by another dso run (pid %ld)", dir,
           (long)getpid());
  assert_int_equal(dso_run_lock_acquire(&fd2, dir, &err), DSO_ERR_IO);
  assert_int_equal(fd2, -1);
  expect_in(err.msg, expect);
  // so does dso run, with status 2, before writing anything
  const char* args[] = {"run", "small.json", "-o", "lk", "--quiet", NULL};
  assert_int_equal(run(args), 2);
  snprintf(expect, sizeof(expect), "dso run: lk is in use by another dso run (pid %ld)",
           (long)getpid());
  expect_in(g_err, expect);
  assert_false(exists(at("lk/checkpoint.json")));
  assert_false(exists(at("lk/progress.csv")));
  // released: the run goes ahead
  dso_run_lock_release(fd);
  int st = run(args);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  assert_true(exists(at("lk/result.json")));
}

// ---- temporary files of a killed run

static void test_temp_cleanup(void** state) {
  (void)state;
  // the names dso_atomic_open gives its temporary files
  dsoError err = {0};
  assert_int_equal(mkdir(at("tc"), 0777), 0);
  dsoAtomicFile* af = dso_atomic_open(at("tc/checkpoint.json"), &err);
  assert_non_null(af);
  const char* base = strrchr(af->tmp, '/') + 1;
  assert_true(dso_atomic_is_temp(base, "checkpoint.json"));
  assert_false(dso_atomic_is_temp(base, "checkpoint.jso"));
  assert_false(dso_atomic_is_temp(base, "heckpoint.json"));
  dso_atomic_abort(af);
  // what a killed run leaves, and user files that look alike
  const char* stale[] = {".checkpoint.json.4194304.7.tmp", ".progress.csv.12.0.tmp",
                         ".result.json.1.2.tmp", ".model.xml.99.3.tmp"};
  const char* keep[] = {".checkpoint.json.tmp", ".result.json.12.x.tmp", ".progress.csv.1.2.tmp~",
                        "notes.tmp", ".data.csv.1.2.tmp", ".result.json..2.tmp",
                        "checkpoint.json.1.2.tmp"};
  char name[256];
  for (int k = 0; k < 4; k++) {
    snprintf(name, sizeof(name), "tc/%s", stale[k]);
    write_text(name, "partial");
  }
  for (int k = 0; k < 7; k++) {
    snprintf(name, sizeof(name), "tc/%s", keep[k]);
    write_text(name, "mine");
  }
  const char* args[] = {"run", "small.json", "-o", "tc", "--quiet", NULL};
  int st = run(args);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  expect_in(g_err, "removed 4 temporary files an interrupted run left in tc");
  for (int k = 0; k < 4; k++) {
    snprintf(name, sizeof(name), "tc/%s", stale[k]);
    if (exists(at(name))) fail_msg("%s was not removed", name);
  }
  for (int k = 0; k < 7; k++) {
    snprintf(name, sizeof(name), "tc/%s", keep[k]);
    if (!exists(at(name))) fail_msg("%s was removed", name);
  }
  // the library call: nothing left to remove
  const char* names[] = {"checkpoint.json", "progress.csv"};
  int removed = -1;
  assert_int_equal(dso_run_clean_temp(&removed, at("tc"), names, 2, &err), DSO_OK);
  assert_int_equal(removed, 0);
}

// ---- SIGINT: the iteration ends, the checkpoint resumes to the same result

static int count_lines(const char* path) {
  char text[1 << 16];
  slurp(text, sizeof(text), path);
  int n = 0;
  for (char* c = text; *c; c++) n += *c == '\n';
  return n;
}

static void expect_same_file(const char* a, const char* b) {
  static char ta[1 << 18], tb[1 << 18];
  slurp(ta, sizeof(ta), a);
  slurp(tb, sizeof(tb), b);
  assert_true(ta[0] != '\0');
  if (strcmp(ta, tb) != 0) fail_msg("%s and %s differ", a, b);
}

static void test_sigint_resume(void** state) {
  (void)state;
  const char* full[] = {"run", "sig.json", "-o", "s_full", "--quiet", NULL};
  int st = run(full);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  assert_int_equal(count_lines(at("s_full/progress.csv")), 13);
  // the same run, interrupted once its first progress row is on disk
  const char* part[] = {"run", "sig.json", "-o", "s_int", "--quiet", NULL};
  pid_t pid = start(part);
  struct timespec ts = {0, 2000000};
  for (int k = 0; k < 30000 && count_lines(at("s_int/progress.csv")) < 2; k++) {
    nanosleep(&ts, NULL);
  }
  assert_true(count_lines(at("s_int/progress.csv")) >= 2);
  assert_int_equal(kill(pid, SIGINT), 0);
  assert_int_equal(finish(pid), 1);
  int iter = -1;
  const char* msg = strstr(g_err, "dso run: interrupted after iteration ");
  if (!msg) fail_msg("no interruption message: %s", g_err);
  assert_int_equal(sscanf(msg, "dso run: interrupted after iteration %d", &iter), 1);
  assert_true(iter >= 1 && iter < 12);
  expect_in(g_err, "; resume with: dso run sig.json -o s_int --resume\n");
  // the checkpoint and progress of iteration iter, no result
  assert_true(exists(at("s_int/checkpoint.json")));
  assert_int_equal(count_lines(at("s_int/progress.csv")), iter + 1);
  assert_false(exists(at("s_int/result.json")));
  const char* resume[] = {"run", "sig.json", "-o", "s_int", "--quiet", "--resume", NULL};
  st = run(resume);
  if (st != 0) fail_msg("status %d: %s", st, g_err);
  expect_same_file(at("s_full/result.json"), at("s_int/result.json"));
  expect_same_file(at("s_full/checkpoint.json"), at("s_int/checkpoint.json"));
  expect_same_file(at("s_full/progress.csv"), at("s_int/progress.csv"));
  expect_same_file(at("s_full/model.xml"), at("s_int/model.xml"));
}

// ---- non-finite values end the run and are never written

static void test_huge_step(void** state) {
  (void)state;
  const char* args[] = {"run", "lr.json", "-o", "lr", NULL};
  assert_int_equal(run(args), 1);
  expect_in(g_err, "dso run: lr.json: 5 steps in a row refused with train.lr 1e+308");
  expect_in(g_err, "policy.K[0,0]");
  expect_in(g_out, "step refused (1 in a row)");
  assert_false(exists(at("lr/result.json")));
  assert_false(exists(at("lr/model.xml")));
  expect_all_finite(at("lr/checkpoint.json"));
  expect_all_finite(at("lr/progress.csv"));
  char text[1 << 16];
  slurp(text, sizeof(text), at("lr/checkpoint.json"));
  expect_in(text, "\"refused\":\t5");
}

static void test_tiny_prior_std(void** state) {
  (void)state;
  // a std whose square underflows is refused when the task is read
  const char* args[] = {"run", "prior.json", "-o", "pr", NULL};
  assert_int_equal(run(args), 2);
  expect_in(g_err, "theta[1].prior.std");
  expect_in(g_err, "1e-200");
  assert_false(exists(at("pr/result.json")));
  // training: the prior overflows at the initial theta; the run stops at once
  const char* targs[] = {"run", "priorfar.json", "-o", "prf", NULL};
  assert_int_equal(run(targs), 1);
  expect_in(g_err, "dso run: priorfar.json: ");
  expect_in(g_err, "physics.torque.gear[0]");
  expect_in(g_err, "std 1e-150");
  assert_false(exists(at("prf/result.json")));
  // a fit: the cost at the initial theta is not finite, nothing is written
  const char* fargs[] = {"run", "fitprior.json", "-o", "fpr", NULL};
  assert_int_equal(run(fargs), 1);
  expect_in(g_err, "dso run: fitprior.json: ");
  expect_in(g_err, "physics.hinge.damping");
  expect_in(g_err, "std 1e-150");
  assert_false(exists(at("fpr/checkpoint.json")));
  assert_false(exists(at("fpr/result.json")));
  assert_false(exists(at("fpr/progress.csv")));
  // an estimator on data recorded by dso simulate
  write_text("est.json",
             "{\"model\": \"%s/models/pendulum_noisy.xml\",\n"
             " \"data\": {\"files\": \"est.csv\", \"columns\": {\"ctrl.disturbance\": \"ignore\"}},\n"
             " \"chain\": {\"init_std_qpos\": {\"hinge\": 1.0}, \"init_std_qvel\": {\"hinge\": 2.0}},\n"
             " \"rollout\": {\"horizon\": 200, \"rollouts\": 3, \"seed\": 3},\n"
             " \"estimator\": {\"corrector\": \"gain\", \"max_iter\": 3},\n"
             " \"theta\": [\n"
             "  {\"name\": \"physics.hinge.damping\", \"init\": 0.005,\n"
             "   \"prior\": {\"mean\": -2e4, \"std\": 1e-150}},\n"
             "  {\"name\": \"action_noise.torque.std\", \"init\": 0.2, \"fixed\": true},\n"
             "  {\"name\": \"action_noise.disturbance.std\", \"init\": 0.03, \"fixed\": true},\n"
             "  {\"name\": \"sensor_noise.hinge_pos.std\", \"init\": 0.03, \"fixed\": true}]}\n",
             DSO_SOURCE_DIR);
  const char* sargs[] = {"simulate", "est.json", "-o", "est.csv", "--episodes", "3",
                         "--validation", "1", NULL};
  int st = run(sargs);
  if (st != 0) fail_msg("simulate: status %d: %s", st, g_err);
  const char* eargs[] = {"run", "est.json", "-o", "epr", NULL};
  assert_int_equal(run(eargs), 1);
  expect_in(g_err, "dso run: est.json: ");
  expect_in(g_err, "physics.hinge.damping");
  expect_in(g_err, "std 1e-150");
  assert_false(exists(at("epr/checkpoint.json")));
}

// ---- diverging rollouts are counted

static void test_diverged_count(void** state) {
  (void)state;
  // the pendulum without its control limit and a positive feedback on the angle: with gain 12
  // some rollouts of the batch blow up (MuJoCo's instability), with gain 30 all of them
  char xml[1 << 14];
  slurp(xml, sizeof(xml), DSO_SOURCE_DIR "/models/pendulum.xml");
  char* lim = strstr(xml, "ctrllimited=\"true\" ctrlrange=\"-1 1\"");
  assert_non_null(lim);
  memcpy(lim, "ctrllimited=\"false\"                ", 35);
  write_text("pfree.xml", "%s", xml);
  const char* gains[2] = {"12", "30"};
  for (int k = 0; k < 2; k++) {
    char theta[512];
    snprintf(theta, sizeof(theta),
             "[{\"name\": \"action_noise.torque.std\", \"init\": 0.05, \"fixed\": true},\n"
             " {\"name\": \"policy.K[0,0]\", \"init\": %s}]", gains[k]);
    write_text("div.json",
               "{\"model\": \"pfree.xml\", \"policy\": {\"type\": \"linear\"},\n"
               " \"chain\": {\"input\": \"state\", \"init_qpos\": {\"hinge\": 1.0},\n"
               "           \"init_std_qpos\": {\"hinge\": 0.5}, \"init_std_qvel\": {\"hinge\": 0.5}},\n"
               " \"cost\": [{\"term\": \"quadratic\", \"qpos\": {\"hinge\": 1.0},\n"
               "           \"qpos_weight\": {\"hinge\": 1}, \"qvel_weight\": {\"hinge\": 0.01}},\n"
               "          {\"term\": \"effort\", \"weight\": 1.0}],\n"
               " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 1, \"terminate\": false,\n"
               "             \"horizon\": 300, \"rollouts\": 8, \"threads\": 2, \"seed\": 7},\n"
               " \"train\": {\"max_iter\": 1},\n"
               " \"theta\": %s}\n", theta);
    const char* args[] = {"run", "div.json", "-o", k ? "div30" : "div12", NULL};
    int st = run(args);
    if (k == 1) {
      assert_int_equal(st, 1);
      expect_in(g_err, "dso run: div.json: the first batch, at the initial theta, is refused");
      expect_in(g_err, "all 8 rollouts diverged");
      continue;
    }
    if (st != 0) fail_msg("status %d: %s", st, g_err);
    // the diverged column of progress.csv and the progress line agree, and count some
    char csv[4096];
    slurp(csv, sizeof(csv), at("div12/progress.csv"));
    expect_in(csv, "iter,cost,J,prior,diverged,");
    const char* row = strchr(csv, '\n') + 1;
    double v[5];
    assert_int_equal(sscanf(row, "%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4]), 5);
    print_message("gain 12: J %.3g, %g of 8 rollouts diverged\n", v[1], v[4]);
    assert_true(v[4] >= 1 && v[4] <= 7);
    char line[64];
    snprintf(line, sizeof(line), "  %d diverged", (int)v[4]);
    expect_in(g_out, line);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_injection),
      cmocka_unit_test(test_lock),
      cmocka_unit_test(test_temp_cleanup),
      cmocka_unit_test(test_sigint_resume),
      cmocka_unit_test(test_huge_step),
      cmocka_unit_test(test_tiny_prior_std),
      cmocka_unit_test(test_diverged_count),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
