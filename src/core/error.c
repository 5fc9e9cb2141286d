#include "dso/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

dsoStatus dso_error(dsoError* err, dsoStatus code, const char* fmt, ...) {
  if (!err || err->code != DSO_OK) {
    return err ? err->code : code;
  }
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return code;
}

void dso_error_prefix(dsoError* err, const char* fmt, ...) {
  if (!err) {
    return;
  }
  char head[DSO_ERROR_LEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof(head), fmt, ap);
  va_end(ap);
  char tail[DSO_ERROR_LEN];
  memcpy(tail, err->msg, sizeof(tail));
  snprintf(err->msg, sizeof(err->msg), "%s%s", head, tail);
}

void dso_error_clear(dsoError* err) {
  if (err) {
    err->code = DSO_OK;
    err->msg[0] = '\0';
  }
}

const char* dso_status_string(dsoStatus code) {
  switch (code) {
    case DSO_OK: return "ok";
    case DSO_ERR_INPUT: return "bad input";
    case DSO_ERR_IO: return "i/o error";
    case DSO_ERR_MEMORY: return "out of memory";
    case DSO_ERR_MUJOCO: return "mujoco error";
    case DSO_ERR_NUMERIC: return "numerical failure";
    case DSO_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}
