// Zero-phase Butterworth low-pass filtering and central differences (see filter.h).
#include "core/filter.h"

#include <math.h>
#include <string.h>

#define DSO_FILTER_PI 3.14159265358979323846

dsoStatus dso_butter_design(dsoButter* f, int order, double cutoff, double rate, dsoError* err) {
  if (order < 1 || order > DSO_FILTER_MAX_ORDER) {
    return dso_error(err, DSO_ERR_INPUT, "filter: order is %d, expected 1 to %d", order,
                     DSO_FILTER_MAX_ORDER);
  }
  if (!(rate > 0) || !isfinite(rate)) {
    return dso_error(err, DSO_ERR_INPUT, "filter: sample rate is %g Hz, expected a positive number",
                     rate);
  }
  if (!(cutoff > 0) || !(cutoff < 0.5 * rate)) {
    return dso_error(err, DSO_ERR_INPUT,
                     "filter: cutoff is %g Hz, expected 0 < cutoff < %g Hz (half the sample "
                     "rate %g Hz)",
                     cutoff, 0.5 * rate, rate);
  }
  memset(f, 0, sizeof(*f));
  f->order = order;
  f->cutoff = cutoff;
  f->rate = rate;
  // prewarped analog cutoff of the bilinear transform s = (1 / K) (z - 1) / (z + 1)
  double K = tan(DSO_FILTER_PI * cutoff / rate), K2 = K * K;
  int npair = order / 2;
  for (int k = 0; k < npair; k++) {
    // analog pair s² + s / Q + 1 with 1 / Q = 2 sin(π (2k + 1) / (2n))
    double iq = 2.0 * sin(DSO_FILTER_PI * (2 * k + 1) / (2.0 * order));
    double norm = 1.0 / (1.0 + K * iq + K2);
    f->b[k][0] = K2 * norm;
    f->b[k][1] = 2.0 * K2 * norm;
    f->b[k][2] = K2 * norm;
    f->a[k][0] = 1.0;
    f->a[k][1] = 2.0 * (K2 - 1.0) * norm;
    f->a[k][2] = (1.0 - K * iq + K2) * norm;
  }
  if (order % 2) {
    // the real pole s = -1
    double norm = 1.0 / (1.0 + K);
    f->b[npair][0] = K * norm;
    f->b[npair][1] = K * norm;
    f->a[npair][0] = 1.0;
    f->a[npair][1] = (K - 1.0) * norm;
  }
  f->nsection = npair + order % 2;
  return DSO_OK;
}

int dso_filtfilt_pad(const dsoButter* f, int T) {
  double periods = ceil(3.0 * f->rate / f->cutoff);
  int p = periods > 1e8 ? 100000000 : (int)periods;
  int lo = 3 * (f->order + 1);
  if (p < lo) {
    p = lo;
  }
  return p < T - 1 ? p : (T > 1 ? T - 1 : 0);
}

size_t dso_filtfilt_work_size(const dsoButter* f, int T) {
  if (T < 1) {
    return 1;
  }
  return (size_t)T + 2 * (size_t)dso_filtfilt_pad(f, T);
}

// runs section k over v (N samples, step dir from the first), in place, from the steady state of
// its first input sample
static void run_section(const dsoButter* f, int k, double* v, long N, int dir) {
  const double* b = f->b[k];
  const double* a = f->a[k];
  long i0 = dir > 0 ? 0 : N - 1;
  double c = v[i0];
  double g = (b[0] + b[1] + b[2]) / (1.0 + a[1] + a[2]);
  double y0 = g * c;
  double z2 = b[2] * c - a[2] * y0;
  double z1 = y0 - b[0] * c;
  for (long n = 0; n < N; n++) {
    long i = dir > 0 ? n : N - 1 - n;
    double x = v[i];
    double y = b[0] * x + z1;
    z1 = b[1] * x - a[1] * y + z2;
    z2 = b[2] * x - a[2] * y;
    v[i] = y;
  }
}

static dsoStatus check_finite(const double* x, int incx, int T, dsoError* err) {
  for (int t = 0; t < T; t++) {
    if (!isfinite(x[(size_t)t * incx])) {
      return dso_error(err, DSO_ERR_NUMERIC, "filter: sample %d of %d is not finite", t, T);
    }
  }
  return DSO_OK;
}

dsoStatus dso_filtfilt(double* y, int incy, const double* x, int incx, int T, const dsoButter* f,
                       double* work, dsoError* err) {
  if (T < 2 || incx < 1 || incy < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "filter: %d samples with strides %d and %d, expected at least 2 samples and "
                     "positive strides",
                     T, incx, incy);
  }
  dsoStatus st = check_finite(x, incx, T, err);
  if (st != DSO_OK) {
    return st;
  }
  int P = dso_filtfilt_pad(f, T);
  long N = (long)T + 2L * P;
  // the line through the end samples is taken out and added back (a zero-phase filter of unit
  // DC gain passes a line unchanged), then the rest is reflected oddly about its ends (zero)
  double x0 = x[0], slope = (x[(size_t)(T - 1) * incx] - x0) / (T - 1);
  for (int t = 0; t < T; t++) {
    work[P + t] = x[(size_t)t * incx] - (x0 + slope * t);
  }
  for (int k = 1; k <= P; k++) {
    work[P - k] = -work[P + k];
    work[P + T - 1 + k] = -work[P + T - 1 - k];
  }
  for (int dir = 1; dir >= -1; dir -= 2) {
    for (int k = 0; k < f->nsection; k++) {
      run_section(f, k, work, N, dir);
    }
  }
  for (int t = 0; t < T; t++) {
    y[(size_t)t * incy] = work[P + t] + (x0 + slope * t);
  }
  return DSO_OK;
}

dsoStatus dso_filter_forward(double* y, int incy, const double* x, int incx, int T,
                             const dsoButter* f, dsoError* err) {
  if (T < 1 || incx < 1 || incy < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "filter: %d samples with strides %d and %d, expected at least 1 sample and "
                     "positive strides",
                     T, incx, incy);
  }
  dsoStatus st = check_finite(x, incx, T, err);
  if (st != DSO_OK) {
    return st;
  }
  double z1[(DSO_FILTER_MAX_ORDER + 1) / 2], z2[(DSO_FILTER_MAX_ORDER + 1) / 2];
  double c = x[0];
  for (int k = 0; k < f->nsection; k++) {
    const double* b = f->b[k];
    const double* a = f->a[k];
    double y0 = (b[0] + b[1] + b[2]) / (1.0 + a[1] + a[2]) * c;
    z2[k] = b[2] * c - a[2] * y0;
    z1[k] = y0 - b[0] * c;
    c = y0;
  }
  for (int t = 0; t < T; t++) {
    double v = x[(size_t)t * incx];
    for (int k = 0; k < f->nsection; k++) {
      const double* b = f->b[k];
      const double* a = f->a[k];
      double out = b[0] * v + z1[k];
      z1[k] = b[1] * v - a[1] * out + z2[k];
      z2[k] = b[2] * v - a[2] * out;
      v = out;
    }
    y[(size_t)t * incy] = v;
  }
  return DSO_OK;
}

static dsoStatus check_diff(int T, int need, double dt, int incd, int incy, const char* what,
                            dsoError* err) {
  if (T < need || !(dt > 0) || !isfinite(dt) || incd < 1 || incy < 1) {
    return dso_error(err, DSO_ERR_INPUT,
                     "filter: %s derivative of %d samples with spacing %g s, expected at least %d "
                     "samples, a positive spacing and positive strides",
                     what, T, dt, need);
  }
  return DSO_OK;
}

dsoStatus dso_diff1(double* dy, int incd, const double* y, int incy, int T, double dt,
                    dsoError* err) {
  dsoStatus st = check_diff(T, 3, dt, incd, incy, "first", err);
  if (st != DSO_OK) {
    return st;
  }
  double ih = 0.5 / dt;
#define Y(t) y[(size_t)(t) * incy]
  for (int t = 1; t < T - 1; t++) {
    dy[(size_t)t * incd] = (Y(t + 1) - Y(t - 1)) * ih;
  }
  dy[0] = (-3.0 * Y(0) + 4.0 * Y(1) - Y(2)) * ih;
  dy[(size_t)(T - 1) * incd] = (3.0 * Y(T - 1) - 4.0 * Y(T - 2) + Y(T - 3)) * ih;
  return DSO_OK;
}

dsoStatus dso_diff2(double* ddy, int incd, const double* y, int incy, int T, double dt,
                    dsoError* err) {
  dsoStatus st = check_diff(T, 4, dt, incd, incy, "second", err);
  if (st != DSO_OK) {
    return st;
  }
  double ih2 = 1.0 / (dt * dt);
  for (int t = 1; t < T - 1; t++) {
    ddy[(size_t)t * incd] = (Y(t + 1) - 2.0 * Y(t) + Y(t - 1)) * ih2;
  }
  ddy[0] = (2.0 * Y(0) - 5.0 * Y(1) + 4.0 * Y(2) - Y(3)) * ih2;
  ddy[(size_t)(T - 1) * incd] =
      (2.0 * Y(T - 1) - 5.0 * Y(T - 2) + 4.0 * Y(T - 3) - Y(T - 4)) * ih2;
#undef Y
  return DSO_OK;
}
