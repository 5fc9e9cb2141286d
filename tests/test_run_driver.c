// dso_run_task (include/dso/run.h) through the library: a fit, a chain and an estimator task with
// small caps, the event sequence, the files, resume after an interrupt set from the callback,
// refusals, the lock, err == NULL and bad arguments. Writes only under DSO_BUILD_DIR.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dso/run.h"
#include "dso/task.h"
#include "apps/run.h"
#include "config/task.h"
#include "test_util.h"

#define DIR_ DSO_BUILD_DIR "/test_run_driver"

// path = DIR_/name (rotating buffers)
static const char* at(const char* name) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof(buf[k]), "%s/%s", DIR_, name);
  return buf[k];
}

static int exists(const char* path) { return access(path, F_OK) == 0; }

static void write_text(const char* name, const char* fmt, ...) {
  FILE* f = fopen(at(name), "w");
  assert_non_null(f);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
}

// what the callback saw
typedef struct Seen_ {
  int n;
  dsoRunEventKind kind[256];
  int iter[256];
  int stop_at;                      // set the interrupt flag at this ITERATION (0: never)
  volatile sig_atomic_t* flag;
  int refused;                      // REFUSED events
  char text[1 << 14];               // all texts
} Seen;

static void on_event(const dsoRunEvent* ev, void* user) {
  Seen* s = user;
  assert_non_null(ev->text);
  if (s->n < 256) {
    s->kind[s->n] = ev->kind;
    s->iter[s->n] = ev->iteration;
    s->n++;
  }
  if (ev->kind == DSO_RUN_EVENT_REFUSED) s->refused++;
  if (ev->kind == DSO_RUN_EVENT_ITERATION) {
    assert_true(isfinite(ev->cost));
  }
  size_t len = strlen(s->text);
  snprintf(s->text + len, sizeof(s->text) - len, "%s", ev->text);
  if (ev->kind == DSO_RUN_EVENT_ITERATION && s->stop_at && ev->iteration == s->stop_at) {
    *s->flag = 1;
  }
}

static dsoTask* load(const char* path) {
  dsoError err = {0};
  dsoTask* t = dso_task_load(path, &err);
  if (!t) fail_msg("%s", err.msg);
  return t;
}

// the pendulum design task with a small batch and the given train section
static void write_train_task(const char* name, const char* train) {
  write_text(name,
             "{\"model\": \"%s/models/pendulum.xml\",\n"
             " \"policy\": {\"type\": \"linear\"},\n"
             " \"chain\": {\"input\": \"state\", \"init_qpos\": {\"hinge\": 1.0},\n"
             "           \"init_std_qpos\": {\"hinge\": 0.1}, \"init_std_qvel\": {\"hinge\": 0.5}},\n"
             " \"cost\": [{\"term\": \"quadratic\", \"qpos\": {\"hinge\": 1.0},\n"
             "           \"qpos_weight\": {\"hinge\": 1}, \"qvel_weight\": {\"hinge\": 0.01}},\n"
             "          {\"term\": \"effort\", \"weight\": 1.0}],\n"
             " \"rollout\": {\"setting\": \"episodic\", \"gamma\": 1, \"terminate\": false,\n"
             "             \"horizon\": 100, \"rollouts\": 8, \"threads\": 2, \"seed\": 7},\n"
             " \"train\": %s,\n"
             " \"theta\": [{\"name\": \"action_noise.torque.std\", \"init\": 0.05, \"fixed\": true},\n"
             "  {\"name\": \"physics.torque.gear[0]\", \"transform\": \"log\",\n"
             "   \"bounds\": [0.25, 1.0], \"prior\": {\"mean\": 0.5, \"std\": 0.15}}]}\n",
             DSO_SOURCE_DIR, train);
}

static int setup(void** state) {
  (void)state;
  dso_test_rmtree(DIR_);
  if (mkdir(DIR_, 0777) != 0) return -1;
  write_train_task("chain.json", "{\"max_iter\": 4}");
  write_train_task("lr.json", "{\"max_iter\": 3, \"lr\": 1e308}");
  // estimator data: recorded from the task's own chain
  dsoError err = {0};
  dsoTask* t = dso_task_open(DSO_SOURCE_DIR "/tasks/pendulum_estim.json", 1, &err);
  if (!t) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  dsoStatus s = dso_task_simulate_csv(t, at("estim.csv"), NULL, 6, 150, 3, 0, 2, &err);
  dso_task_free(t);
  if (s) fprintf(stderr, "%s\n", err.msg);
  return s ? -1 : 0;
}

static int teardown(void** state) {
  (void)state;
  dso_test_rmtree(DIR_);
  return 0;
}

static int has_file(const dsoRunSummary* s, const char* path) {
  for (int k = 0; k < s->nfile; k++) {
    if (!strcmp(s->file[k], path)) return 1;
  }
  return 0;
}

// START, then iterations first+1 .. last, NOTE(s), RESULT last
static void expect_sequence(const Seen* s, int first, int last) {
  assert_true(s->n >= 3);
  assert_int_equal(s->kind[0], DSO_RUN_EVENT_START);
  assert_int_equal(s->iter[0], first);
  int k = 1;
  for (int it = first + 1; it <= last; it++, k++) {
    assert_int_equal(s->kind[k], DSO_RUN_EVENT_ITERATION);
    assert_int_equal(s->iter[k], it);
  }
  for (; k < s->n - 1; k++) {
    assert_true(s->kind[k] == DSO_RUN_EVENT_NOTE || s->kind[k] == DSO_RUN_EVENT_WARNING);
  }
  assert_int_equal(s->kind[s->n - 1], DSO_RUN_EVENT_RESULT);
  assert_int_equal(s->iter[s->n - 1], last);
}

// ---- a fit: events, files, summary, no plots

static void test_fit(void** state) {
  (void)state;
  dsoTask* task = load(DSO_SOURCE_DIR "/tasks/pendulum_sysid.json");
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.max_iter = 2;
  o.plots = 0;
  Seen* seen = calloc(1, sizeof(Seen));
  dsoRunSummary sum;
  dsoError err = {0};
  dsoStatus s = dso_run_task(task, at("fit"), &o, on_event, seen, &sum, &err);
  if (s) fail_msg("%s", err.msg);
  expect_sequence(seen, 0, 2);
  assert_int_equal(sum.task_kind, DSO_TASK_KIND_FIT);
  assert_int_equal(sum.iterations, 2);
  assert_int_equal(sum.first_iteration, 0);
  assert_int_equal(sum.stop, DSO_RUN_STOP_MAX_ITER);
  assert_string_equal(dso_run_stop_name(sum.stop), "max_iter");
  assert_true(isfinite(sum.cost));
  assert_int_equal(sum.ntheta, task->theta->n);
  static const char* const kFiles[] = {"result.json", "progress.csv", "checkpoint.json",
                                        "model.xml", "trajectories.csv"};
  for (int k = 0; k < 5; k++) {
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", at("fit"), kFiles[k]);
    if (!exists(p)) fail_msg("%s not written", p);
    if (!has_file(&sum, p)) fail_msg("%s not in the summary", p);
  }
  assert_false(exists(at("fit/progress.gp")));  // plots off
  assert_non_null(strstr(seen->text, "dso run "));
  assert_non_null(strstr(seen->text, "iter   2  J "));
  assert_non_null(strstr(seen->text, "wrote "));
  dso_run_summary_clear(&sum);
  assert_null(sum.theta);
  assert_int_equal(sum.nfile, 0);
  dso_run_summary_clear(&sum);  // twice is fine

  // a checkpoint whose damping λ was edited to -1: --resume refuses it, naming the file, and
  // leaves the checkpoint as it was
  char path[1024];
  snprintf(path, sizeof(path), "%s/checkpoint.json", at("fit"));
  FILE* f = fopen(path, "rb");
  assert_non_null(f);
  static char text[1 << 16], edited[1 << 16];
  size_t len = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[len] = 0;
  char* last = NULL;  // the top-level "lambda" follows the progress rows' ones
  for (char* p = strstr(text, "\"lambda\""); p; p = strstr(p + 1, "\"lambda\"")) last = p;
  assert_non_null(last);
  char* v = strchr(last, ':') + 1;
  char* end = v + strspn(v, " \t");
  end += strspn(end, "0123456789.eE+-");
  snprintf(edited, sizeof(edited), "%.*s -1%s", (int)(v - text), text, end);
  write_text("fit/checkpoint.json", "%s", edited);
  o.resume = 1;
  o.max_iter = 3;
  dso_error_clear(&err);
  assert_int_equal(dso_run_task(task, at("fit"), &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "--resume: "));
  assert_non_null(strstr(err.msg, "checkpoint.json: fit: damping lambda is -1"));
  f = fopen(path, "rb");
  assert_non_null(f);
  len = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[len] = 0;
  assert_string_equal(text, edited);
  free(seen);
  dso_task_free(task);
}

// ---- a chain: interrupted from the callback, resumed: the same θ as an uninterrupted run

static void test_chain_interrupt_resume(void** state) {
  (void)state;
  dsoTask* task = load(at("chain.json"));
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.plots = 0;
  Seen* seen = calloc(1, sizeof(Seen));
  dsoRunSummary whole, part, rest;
  dsoError err = {0};
  if (dso_run_task(task, at("chain_whole"), &o, on_event, seen, &whole, &err)) {
    fail_msg("%s", err.msg);
  }
  expect_sequence(seen, 0, 4);
  assert_int_equal(whole.task_kind, DSO_TASK_KIND_CHAIN);
  assert_int_equal(whole.iterations, 4);

  volatile sig_atomic_t flag = 0;
  memset(seen, 0, sizeof(*seen));
  seen->stop_at = 2;
  seen->flag = &flag;
  o.interrupt = &flag;
  if (dso_run_task(task, at("chain_part"), &o, on_event, seen, &part, &err)) {
    fail_msg("%s", err.msg);
  }
  assert_int_equal(part.stop, DSO_RUN_STOP_INTERRUPTED);
  assert_int_equal(part.iterations, 2);
  assert_int_equal(seen->kind[seen->n - 1], DSO_RUN_EVENT_INTERRUPTED);
  assert_false(exists(at("chain_part/result.json")));
  assert_true(exists(at("chain_part/checkpoint.json")));

  flag = 0;
  memset(seen, 0, sizeof(*seen));
  o.resume = 1;
  if (dso_run_task(task, at("chain_part"), &o, on_event, seen, &rest, &err)) {
    fail_msg("%s", err.msg);
  }
  expect_sequence(seen, 2, 4);
  assert_int_equal(rest.first_iteration, 2);
  assert_int_equal(rest.ntheta, whole.ntheta);
  assert_memory_equal(rest.theta, whole.theta, sizeof(double) * (size_t)whole.ntheta);
  assert_true(rest.cost == whole.cost);
  dso_run_summary_clear(&whole);
  dso_run_summary_clear(&part);
  dso_run_summary_clear(&rest);
  free(seen);
  dso_task_free(task);
}

// ---- an estimator (data recorded in setup), with err == NULL and no callback or summary

static void test_estimator(void** state) {
  (void)state;
  dsoError err = {0};
  const char* files[1] = {at("estim.csv")};
  dsoTask* task = dso_task_load_data(DSO_SOURCE_DIR "/tasks/pendulum_estim.json", 0, files, 1,
                                     &err);
  if (!task) fail_msg("%s", err.msg);
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.max_iter = 2;
  o.plots = 0;
  Seen* seen = calloc(1, sizeof(Seen));
  dsoRunSummary sum;
  dsoStatus s = dso_run_task(task, at("estim"), &o, on_event, seen, &sum, NULL);
  assert_int_equal(s, DSO_OK);
  expect_sequence(seen, 0, 2);
  assert_int_equal(sum.task_kind, DSO_TASK_KIND_ESTIMATOR);
  assert_true(sum.ntheta > task->theta->n);  // the corrector extends θ
  assert_true(exists(at("estim/result.json")));
  assert_non_null(strstr(seen->text, "corrector"));
  dso_run_summary_clear(&sum);
  // no callback, no summary, no err: resumes (already at the cap) and writes the result again
  o.resume = 1;
  assert_int_equal(dso_run_task(task, at("estim"), &o, NULL, NULL, NULL, NULL), DSO_OK);
  free(seen);
  dso_task_free(task);
}

// ---- refusals: a step size that overflows every step; gives up after the limit in a row

static void test_refusals(void** state) {
  (void)state;
  dsoTask* task = load(at("lr.json"));
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.plots = 0;
  o.name = "lr.json";
  Seen* seen = calloc(1, sizeof(Seen));
  dsoRunSummary sum;
  dsoError err = {0};
  assert_int_equal(dso_run_task(task, at("lr"), &o, on_event, seen, &sum, &err),
                   DSO_ERR_NUMERIC);
  assert_int_equal(seen->refused, DSO_RUN_MAX_REFUSED);
  assert_non_null(strstr(err.msg, "lr.json: 5 steps in a row refused with train.lr 1e+308"));
  assert_int_equal(sum.stop, DSO_RUN_STOP_REFUSED);
  assert_int_equal(sum.refused, DSO_RUN_MAX_REFUSED);
  assert_false(exists(at("lr/result.json")));
  assert_true(exists(at("lr/checkpoint.json")));
  dso_run_summary_clear(&sum);
  free(seen);
  dso_task_free(task);
}

// ---- the lock, bad arguments

static void test_lock_and_arguments(void** state) {
  (void)state;
  dsoTask* task = load(at("chain.json"));
  dsoRunOptions o;
  dso_run_options_default(&o);
  o.plots = 0;
  o.max_iter = 1;
  dsoError err = {0};
  assert_int_equal(mkdir(at("locked"), 0777), 0);
  int fd = -1;
  assert_int_equal(dso_run_lock_acquire(&fd, at("locked"), &err), DSO_OK);
  dsoRunSummary sum;
  assert_int_equal(dso_run_task(task, at("locked"), &o, NULL, NULL, &sum, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "in use by another dso run"));
  assert_int_equal(sum.stop, DSO_RUN_STOP_FAILED);
  assert_false(exists(at("locked/checkpoint.json")));
  dso_run_summary_clear(&sum);
  dso_run_lock_release(fd);
  assert_int_equal(dso_run_task(task, at("locked"), &o, NULL, NULL, NULL, &err), DSO_OK);
  assert_int_equal(err.code, DSO_OK);  // cleared on entry

  assert_int_equal(dso_run_task(NULL, at("x"), &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "task is NULL"));
  assert_int_equal(dso_run_task(task, NULL, &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "outdir is NULL"));
  assert_int_equal(dso_run_task(task, NULL, NULL, NULL, NULL, NULL, NULL), DSO_ERR_INPUT);
  o.max_iter = -2;
  assert_int_equal(dso_run_task(task, at("x"), &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "max_iter"));
  o.max_iter = 1;
  o.resume = 1;
  assert_int_equal(dso_run_task(task, at("nockpt"), &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "does not exist"));
  o.resume = 0;
  o.truth = DSO_SOURCE_DIR "/tasks/truth/arm_sysid.json";
  assert_int_equal(dso_run_task(task, at("x"), &o, NULL, NULL, NULL, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "fits to recorded data"));
  dso_run_options_default(NULL);  // a no-op
  dso_task_free(task);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fit),
      cmocka_unit_test(test_chain_interrupt_resume),
      cmocka_unit_test(test_estimator),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_lock_and_arguments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
