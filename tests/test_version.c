// Tests of the version macros and functions (version.h): the header's macros, the linked
// library's string and number, and CMake's project version agree.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "dso_internal.h"

static void test_version_agrees(void** state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", DSO_VERSION_MAJOR, DSO_VERSION_MINOR,
           DSO_VERSION_PATCH);
  assert_string_equal(dso_version_string(), want);
  assert_string_equal(dso_version_string(), DSO_PROJECT_VERSION);
  assert_int_equal(dso_version_number(), DSO_VERSION_NUMBER);
  assert_int_equal(DSO_VERSION_NUMBER,
                   10000 * DSO_VERSION_MAJOR + 100 * DSO_VERSION_MINOR + DSO_VERSION_PATCH);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_version_agrees),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
