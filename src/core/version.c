// Version of the linked library.
#include "dso/version.h"

#define DSO_STR_(x) #x
#define DSO_STR(x) DSO_STR_(x)

const char* dso_version_string(void) {
  return DSO_STR(DSO_VERSION_MAJOR) "." DSO_STR(DSO_VERSION_MINOR) "." DSO_STR(DSO_VERSION_PATCH);
}

int dso_version_number(void) {
  return DSO_VERSION_NUMBER;
}
