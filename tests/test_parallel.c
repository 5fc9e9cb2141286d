// Tests of the one thread runner (parallel.h): every item once, in consecutive blocks per thread,
// OpenBLAS held to one thread inside a multi-threaded region and restored after it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/parallel.h"

void openblas_set_num_threads(int num_threads);

enum { NITEM = 1000 };

typedef struct {
  int count[NITEM];
  int thread[NITEM];
  int blas[NITEM];
} Visits;

static void visit(void* ctx, int item, int thread) {
  Visits* v = (Visits*)ctx;
  v->count[item]++;
  v->thread[item] = thread;
  v->blas[item] = dso_parallel_blas_threads();
}

static void check_blocks(int nthread, int nitem) {
  static Visits v;
  memset(&v, 0, sizeof(v));
  dso_parallel_for(nthread, nitem, visit, &v);
  int nt = nthread < nitem ? nthread : nitem;
  for (int i = 0; i < nitem; i++) {
    assert_int_equal(v.count[i], 1);
    // block t holds items [nitem*t/nt, nitem*(t+1)/nt)
    int t = v.thread[i];
    assert_true(t >= 0 && t < (nt > 0 ? nt : 1));
    if (nt > 1) {
      assert_true((long)nitem * t / nt <= i && i < (long)nitem * (t + 1) / nt);
      assert_int_equal(v.blas[i], 1);
    }
  }
}

static void test_every_item_once(void** state) {
  (void)state;
  check_blocks(1, NITEM);
  check_blocks(2, NITEM);
  check_blocks(7, 10);
  check_blocks(16, 5);  // more threads than items: one item a thread
  check_blocks(3, 0);   // nothing to do
}

static void test_blas_threads_restored(void** state) {
  (void)state;
  openblas_set_num_threads(3);
  int before = dso_parallel_blas_threads();
  static Visits v;
  memset(&v, 0, sizeof(v));
  dso_parallel_for(2, 10, visit, &v);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(v.blas[i], 1);  // one OpenBLAS thread inside the region
  }
  assert_int_equal(dso_parallel_blas_threads(), before);
  // a one-thread region leaves OpenBLAS alone
  dso_parallel_for(1, 10, visit, &v);
  assert_int_equal(v.blas[0], before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_item_once),
    cmocka_unit_test(test_blas_threads_restored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
