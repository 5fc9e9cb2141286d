// Application: cartpole swing-up with and without demonstrations (paper section 5.2,
// data-augmented policy optimization). tasks/cartpole_swingup.json (D-MDP-style cost, pathwise
// gradient, Adam) and tasks/cartpole_swingup_clone.json (the same + L_clone on the committed
// demonstrations of a hand-designed controller) are trained on the same seeds for a short budget
// of SW_ITERS iterations. "Samples to reach the target" are environment steps (rollouts x horizon
// x iterations) until the batch J first falls below SW_TARGET (the pole hanging still costs
// J = 10). Checked: the clone variant reaches the target within the budget on every seed, and
// with fewer samples than the variant without clone (which counts as budget + 1 iteration when it
// never reaches it). The full budget is bench/bench_swingup.c.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "task.h"
#include "theta.h"
#include "train.h"

#define SW_ITERS 30
#define SW_TARGET 8.5
#define SW_NSEED 1

static dsoTask* load(const char* name) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tasks/%s", DSO_SOURCE_DIR, name);
  dsoError err = {0};
  dsoTask* task = dso_task_load(path, &err);
  if (!task) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(task);
  return task;
}

// environment steps until the batch J < target (-1: not within niter); *Jlast the last batch J
static long samples_to_target(dsoTask* task, uint64_t seed, int niter, double target,
                              double* Jlast, double* clone_first, double* clone_last) {
  dsoError err = {0};
  dsoTrainSettings s;
  dso_train_settings_default(&s);
  if (task->train) assert_int_equal(dso_train_settings_from_json(&s, task->train, task->path,
                                                                 &err), DSO_OK);
  s.seed = seed;
  dsoTrain* tr = dso_train_create(task, &s, &err);
  if (!tr) fprintf(stderr, "%s\n", err.msg);
  assert_non_null(tr);
  double* u = malloc((size_t)task->theta->n * sizeof(double));
  dso_theta_init(task->theta, u);
  long steps = 0, reached = -1;
  for (int k = 0; k < niter; k++) {
    dsoTrainReport rep;
    dsoStatus st = dso_train_step(tr, u, &rep, &err);
    if (st) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, DSO_OK);
    steps += rep.steps;
    if (k == 0) *clone_first = rep.clone;
    *clone_last = rep.clone;
    *Jlast = rep.J;
    if (reached < 0 && rep.J < target) {
      reached = steps;
      break;
    }
  }
  free(u);
  dso_train_free(tr);
  return reached;
}

static void test_swingup_clone_vs_plain(void** state) {
  (void)state;
  dsoTask* plain = load("cartpole_swingup.json");
  dsoTask* clone = load("cartpole_swingup_clone.json");
  long budget = (long)SW_ITERS * plain->nrollout * plain->rollout.horizon;
  printf("  target J < %.2f, budget %d iterations = %ld steps\n", SW_TARGET, SW_ITERS, budget);
  for (int i = 0; i < SW_NSEED; i++) {
    uint64_t seed = 101 + (uint64_t)i;
    double Jp = 0, Jc = 0, c0 = 0, c1 = 0, d0 = 0, d1 = 0;
    long sp = samples_to_target(plain, seed, SW_ITERS, SW_TARGET, &Jp, &d0, &d1);
    long sc = samples_to_target(clone, seed, SW_ITERS, SW_TARGET, &Jc, &c0, &c1);
    printf("  seed %llu: without clone %s%ld steps (last J %.3f); with clone %ld steps (last J "
           "%.3f, L_clone %.4g -> %.4g)\n", (unsigned long long)seed, sp < 0 ? "> " : "",
           sp < 0 ? budget : sp, Jp, sc, Jc, c0, c1);
    assert_true(sc > 0);
    assert_true(sp < 0 || sc < sp);
    assert_true(c1 < c0);
  }
  dso_task_free(plain);
  dso_task_free(clone);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_swingup_clone_vs_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
