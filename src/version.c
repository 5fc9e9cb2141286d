#include "dso.h"

const char* dso_version_string(void) {
  return DSO_VERSION;
}
