// Zero-phase Butterworth filtering and central differences (filter.h): no lag below the cutoff,
// the squared Butterworth gain at and above it, edges, derivative accuracy, noise reduction and
// argument errors.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/filter.h"
#include "core/rng.h"

#define PI 3.14159265358979323846

// amplitude and phase (rad) of y[t] ≈ A sin(w t dt + φ) over samples [t0, t1) by least squares
// on sin and cos
static void fit_sine(double* amp, double* phase, const double* y, int t0, int t1, double w,
                     double dt) {
  double ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
  for (int t = t0; t < t1; t++) {
    double s = sin(w * t * dt), c = cos(w * t * dt);
    ss += s * s;
    cc += c * c;
    sc += s * c;
    ys += y[t] * s;
    yc += y[t] * c;
  }
  double det = ss * cc - sc * sc;
  double a = (ys * cc - yc * sc) / det, b = (yc * ss - ys * sc) / det;
  *amp = sqrt(a * a + b * b);
  *phase = atan2(b, a);
}

// squared Butterworth magnitude of the digital filter at f
static double gain2(double f, double fc, double rate, int order) {
  double r = tan(PI * f / rate) / tan(PI * fc / rate);
  return 1.0 / (1.0 + pow(r, 2 * order));
}

static double* filtfilt_alloc(const dsoButter* f, int T) {
  double* w = (double*)malloc(sizeof(double) * dso_filtfilt_work_size(f, T));
  assert_non_null(w);
  return w;
}

static void test_zero_phase(void** state) {
  // a sinusoid at a fifth and at 80% of the cutoff comes out without lag (|phase| < 1e-6 rad)
  // and with the gain of the squared Butterworth magnitude; one forward pass lags it visibly
  const double rate = 500, fc = 10, dt = 1 / rate;
  const int T = 3000;
  dsoError err = {0};
  for (int order = 2; order <= 4; order += 2) {
    dsoButter f;
    assert_int_equal(dso_butter_design(&f, order, fc, rate, &err), DSO_OK);
    double* x = (double*)malloc(sizeof(double) * T);
    double* y = (double*)malloc(sizeof(double) * T);
    double* work = filtfilt_alloc(&f, T);
    const double freq[2] = {2.0, 8.0};
    for (int k = 0; k < 2; k++) {
      double w = 2 * PI * freq[k];
      for (int t = 0; t < T; t++) {
        x[t] = 1.5 * sin(w * t * dt);
      }
      assert_int_equal(dso_filtfilt(y, 1, x, 1, T, &f, work, &err), DSO_OK);
      double amp, ph;
      // away from the edges (one second)
      fit_sine(&amp, &ph, y, 500, T - 500, w, dt);
      assert_true(fabs(ph) < 1e-6);
      assert_true(fabs(amp / 1.5 - gain2(freq[k], fc, rate, order)) < 1e-6);
      // the causal single pass lags by the Butterworth phase (tens of degrees at 8 Hz)
      assert_int_equal(dso_filter_forward(y, 1, x, 1, T, &f, &err), DSO_OK);
      fit_sine(&amp, &ph, y, 500, T - 500, w, dt);
      assert_true(ph < -0.05);
    }
    free(x);
    free(y);
    free(work);
  }
}

static void test_attenuation(void** state) {
  // above the cutoff the gain is the squared Butterworth magnitude: at 3 and 5 times the cutoff
  // of a 4th-order filter 1.5e-4 and 2.6e-6 (checked to 2% of itself and below 2e-4 and 3e-6)
  const double rate = 1000, fc = 20, dt = 1 / rate;
  const int T = 4000;
  dsoError err = {0};
  dsoButter f;
  assert_int_equal(dso_butter_design(&f, 4, fc, rate, &err), DSO_OK);
  double* x = (double*)malloc(sizeof(double) * T);
  double* y = (double*)malloc(sizeof(double) * T);
  double* work = filtfilt_alloc(&f, T);
  const double mult[2] = {3, 5}, bound[2] = {2e-4, 3e-6};
  for (int k = 0; k < 2; k++) {
    double fr = mult[k] * fc, w = 2 * PI * fr;
    for (int t = 0; t < T; t++) {
      x[t] = sin(w * t * dt + 0.3);
    }
    assert_int_equal(dso_filtfilt(y, 1, x, 1, T, &f, work, &err), DSO_OK);
    double amp, ph;
    fit_sine(&amp, &ph, y, 500, T - 500, w, dt);
    double g = gain2(fr, fc, rate, 4);
    assert_true(amp < bound[k]);
    assert_true(fabs(amp - g) < 0.02 * g);
  }
  free(x);
  free(y);
  free(work);
}

static void test_edges_and_stride(void** state) {
  // a constant passes exactly (steady-state start); a straight line passes to 1e-9 everywhere,
  // ends included (odd reflection keeps value and slope); a strided column of a row-major
  // array is filtered like the same signal stored contiguously, in place too
  const double rate = 500, fc = 5;
  const int T = 400, nc = 3;
  dsoError err = {0};
  dsoButter f;
  assert_int_equal(dso_butter_design(&f, 4, fc, rate, &err), DSO_OK);
  double* work = filtfilt_alloc(&f, T);
  double* x = (double*)malloc(sizeof(double) * T * nc);
  double* y = (double*)malloc(sizeof(double) * T * nc);
  double* c = (double*)malloc(sizeof(double) * T);
  for (int t = 0; t < T; t++) {
    x[t * nc + 0] = 2.5;
    x[t * nc + 1] = -1.0 + 0.01 * t;
    x[t * nc + 2] = sin(0.02 * t) + 0.1 * sin(0.9 * t);
  }
  for (int i = 0; i < nc; i++) {
    assert_int_equal(dso_filtfilt(y + i, nc, x + i, nc, T, &f, work, &err), DSO_OK);
  }
  for (int t = 0; t < T; t++) {
    assert_true(fabs(y[t * nc] - 2.5) < 1e-12);
    assert_true(fabs(y[t * nc + 1] - x[t * nc + 1]) < 1e-9);
    c[t] = x[t * nc + 2];
  }
  assert_int_equal(dso_filtfilt(c, 1, c, 1, T, &f, work, &err), DSO_OK);
  for (int t = 0; t < T; t++) {
    assert_true(c[t] == y[t * nc + 2]);
  }
  // short signals: the pad shrinks to T - 1
  assert_int_equal(dso_filtfilt_pad(&f, 10), 9);
  assert_int_equal(dso_filtfilt(y, 1, x, nc, 10, &f, work, &err), DSO_OK);
  free(work);
  free(x);
  free(y);
  free(c);
}

static void test_derivatives(void** state) {
  // q(t) = sin(2π 1.5 t) + 0.3 sin(2π 0.7 t + 1) at 1 kHz, filtered at 15 Hz, then
  // differentiated; maximum errors relative to the peak velocity and acceleration (measured
  // 1.3e-5 / 2.2e-5 inside, 2.3e-4 / 2.7e-3 beyond one cutoff period (67 samples) from the ends,
  // 4.4e-3 / 7.0e-2 with the ends, where the odd reflection flips the curvature)
  const double rate = 1000, dt = 1 / rate;
  const int T = 3000;
  dsoError err = {0};
  dsoButter f;
  assert_int_equal(dso_butter_design(&f, 4, 15, rate, &err), DSO_OK);
  double* work = filtfilt_alloc(&f, T);
  double* q = (double*)malloc(sizeof(double) * T);
  double* qd = (double*)malloc(sizeof(double) * T);
  double* qdd = (double*)malloc(sizeof(double) * T);
  double w1 = 2 * PI * 1.5, w2 = 2 * PI * 0.7;
  for (int t = 0; t < T; t++) {
    double s = t * dt;
    q[t] = sin(w1 * s) + 0.3 * sin(w2 * s + 1);
  }
  assert_int_equal(dso_filtfilt(q, 1, q, 1, T, &f, work, &err), DSO_OK);
  assert_int_equal(dso_diff1(qd, 1, q, 1, T, dt, &err), DSO_OK);
  assert_int_equal(dso_diff2(qdd, 1, q, 1, T, dt, &err), DSO_OK);
  double vmax = w1 + 0.3 * w2, amax = w1 * w1 + 0.3 * w2 * w2;
  const int skip[3] = {200, 67, 0};
  const double vtol[3] = {1e-4, 1e-3, 1e-2}, atol[3] = {2e-4, 1e-2, 0.15};
  for (int z = 0; z < 3; z++) {
    double ev = 0, ea = 0;
    for (int t = skip[z]; t < T - skip[z]; t++) {
      double s = t * dt;
      double v = w1 * cos(w1 * s) + 0.3 * w2 * cos(w2 * s + 1);
      double a = -w1 * w1 * sin(w1 * s) - 0.3 * w2 * w2 * sin(w2 * s + 1);
      ev = fmax(ev, fabs(qd[t] - v) / vmax);
      ea = fmax(ea, fabs(qdd[t] - a) / amax);
    }
    printf("derivatives %d samples from the ends on: max relative error %.2e (qd) %.2e (qdd)\n",
           skip[z], ev, ea);
    assert_true(ev < vtol[z] && ea < atol[z]);
  }
  // exact on a quadratic without filtering (central differences are exact to second order)
  for (int t = 0; t < 10; t++) {
    q[t] = 3 - 2 * t * dt + 4 * (t * dt) * (t * dt);
  }
  assert_int_equal(dso_diff1(qd, 1, q, 1, 10, dt, &err), DSO_OK);
  assert_int_equal(dso_diff2(qdd, 1, q, 1, 10, dt, &err), DSO_OK);
  for (int t = 0; t < 10; t++) {
    assert_true(fabs(qd[t] - (-2 + 8 * t * dt)) < 1e-9);
    assert_true(fabs(qdd[t] - 8) < 1e-5);
  }
  free(work);
  free(q);
  free(qd);
  free(qdd);
}

static void test_noise_reduction(void** state) {
  // white noise of unit variance through filtfilt at cutoff fc keeps the variance
  // ∫ |G(f)|² df / (rate / 2) over [0, rate / 2] (numerically); 20000 samples, seed 7; the
  // sample variance of the strongly correlated output is checked to 15% (its standard error
  // with ~ 20000 * 2 fc / rate = 800 independent values is about 5%)
  const double rate = 1000, fc = 20;
  const int T = 20000;
  dsoError err = {0};
  dsoButter f;
  assert_int_equal(dso_butter_design(&f, 4, fc, rate, &err), DSO_OK);
  double* work = filtfilt_alloc(&f, T);
  double* x = (double*)malloc(sizeof(double) * T);
  dsoRng rng;
  dso_rng_seed(&rng, 7, 0, 0);
  for (int t = 0; t < T; t++) {
    x[t] = dso_rng_normal(&rng);
  }
  assert_int_equal(dso_filtfilt(x, 1, x, 1, T, &f, work, &err), DSO_OK);
  double s2 = 0;
  for (int t = 0; t < T; t++) {
    s2 += x[t] * x[t];
  }
  s2 /= T;
  double expect = 0;
  const int K = 100000;
  for (int k = 0; k < K; k++) {
    double fr = (k + 0.5) * 0.5 * rate / K;
    double g = gain2(fr, fc, rate, 4);
    expect += g * g / K;
  }
  printf("noise: output variance %.4g, expected %.4g\n", s2, expect);
  assert_true(fabs(s2 / expect - 1) < 0.15);
  free(work);
  free(x);
}

static void test_errors(void** state) {
  dsoButter f;
  dsoError err = {0};
  assert_int_equal(dso_butter_design(&f, 0, 10, 500, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "order"));
  dso_error_clear(&err);
  assert_int_equal(dso_butter_design(&f, 9, 10, 500, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_butter_design(&f, 2, 250, 500, &err), DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "cutoff"));
  dso_error_clear(&err);
  assert_int_equal(dso_butter_design(&f, 2, 10, 0, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  // odd orders work: a 3rd-order design has two sections and unit gain at DC
  assert_int_equal(dso_butter_design(&f, 3, 10, 500, &err), DSO_OK);
  assert_int_equal(f.nsection, 2);
  double x[8] = {1, 1, 1, 1, 1, 1, 1, NAN}, y[8], work[64];
  assert_true(dso_filtfilt_work_size(&f, 7) <= 64);
  assert_int_equal(dso_filtfilt(y, 1, x, 1, 7, &f, work, &err), DSO_OK);
  for (int t = 0; t < 7; t++) {
    assert_true(fabs(y[t] - 1) < 1e-12);
  }
  assert_int_equal(dso_filtfilt(y, 1, x, 1, 8, &f, work, &err), DSO_ERR_NUMERIC);
  assert_non_null(strstr(err.msg, "sample 7"));
  dso_error_clear(&err);
  assert_int_equal(dso_filtfilt(y, 1, x, 1, 1, &f, work, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_diff1(y, 1, x, 1, 2, 0.01, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_diff2(y, 1, x, 1, 3, 0.01, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_diff1(y, 1, x, 1, 5, 0, &err), DSO_ERR_INPUT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_zero_phase),      cmocka_unit_test(test_attenuation),
      cmocka_unit_test(test_edges_and_stride), cmocka_unit_test(test_derivatives),
      cmocka_unit_test(test_noise_reduction), cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
