// Strict option-value parsers of the CLI.
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char* dso_args_value(int argc, char** argv, int* i, const char* verb) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "dso %s: %s: missing value (the option is the last argument)\n", verb,
            argv[*i]);
    return NULL;
  }
  *i += 1;
  return argv[*i];
}

// an optional sign, then one or more decimal digits and nothing else
static int all_digits(const char* s) {
  if (*s == '+' || *s == '-') {
    s++;
  }
  if (!*s) {
    return 0;
  }
  for (; *s; s++) {
    if (!isdigit((unsigned char)*s)) {
      return 0;
    }
  }
  return 1;
}

int dso_args_int(long long* out, const char* s, long long lo, long long hi, const char* verb,
                 const char* opt) {
  int ok = s && all_digits(s);
  long long v = 0;
  if (ok) {
    char* end = NULL;
    errno = 0;
    v = strtoll(s, &end, 10);
    ok = errno == 0 && end && *end == '\0' && v >= lo && v <= hi;
  }
  if (!ok) {
    fprintf(stderr, "dso %s: %s: expected an integer in [%lld, %lld], got '%.64s'\n", verb, opt,
            lo, hi, s ? s : "");
    return 0;
  }
  *out = v;
  return 1;
}

int dso_args_int32(int* out, const char* s, int lo, int hi, const char* verb, const char* opt) {
  long long v = 0;
  if (!dso_args_int(&v, s, lo, hi, verb, opt)) {
    return 0;
  }
  *out = (int)v;
  return 1;
}

// "a finite number in (0, 1]", "a finite number > 0", "a finite number"
static void describe_range(char* buf, size_t len, double lo, double hi, int open) {
  int has_lo = !isinf(lo), has_hi = !isinf(hi);
  if (has_lo && has_hi) {
    snprintf(buf, len, "a finite number in %c%g, %g%c", (open & DSO_ARGS_OPEN_LO) ? '(' : '[',
             lo, hi, (open & DSO_ARGS_OPEN_HI) ? ')' : ']');
  } else if (has_lo) {
    snprintf(buf, len, "a finite number %s %g", (open & DSO_ARGS_OPEN_LO) ? ">" : ">=", lo);
  } else if (has_hi) {
    snprintf(buf, len, "a finite number %s %g", (open & DSO_ARGS_OPEN_HI) ? "<" : "<=", hi);
  } else {
    snprintf(buf, len, "a finite number");
  }
}

int dso_args_double(double* out, const char* s, double lo, double hi, int open, const char* verb,
                    const char* opt) {
  // a decimal number: strtod alone would also take blanks, inf, nan and hexadecimal
  int ok = s && s[0] && (isdigit((unsigned char)s[0]) || strchr("+-.", s[0])) &&
           !strpbrk(s, "xX");
  double v = 0;
  if (ok) {
    char* end = NULL;
    errno = 0;
    v = strtod(s, &end);
    ok = errno == 0 && end != s && *end == '\0' && isfinite(v);
  }
  if (ok) {
    ok = (open & DSO_ARGS_OPEN_LO) ? v > lo : v >= lo;
    ok = ok && ((open & DSO_ARGS_OPEN_HI) ? v < hi : v <= hi);
  }
  if (!ok) {
    char what[128];
    describe_range(what, sizeof(what), lo, hi, open);
    fprintf(stderr, "dso %s: %s: expected %s, got '%.64s'\n", verb, opt, what, s ? s : "");
    return 0;
  }
  *out = v;
  return 1;
}

int dso_args_nonempty(const char* s, const char* what, const char* verb, const char* opt) {
  if (!s || !s[0]) {
    fprintf(stderr, "dso %s: %s: expected %s, got ''\n", verb, opt, what);
    return 0;
  }
  return 1;
}
