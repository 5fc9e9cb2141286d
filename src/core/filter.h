// Zero-phase low-pass filtering and differentiation of uniformly sampled signals, for estimating
// velocities and accelerations from recorded positions (inverse-dynamics identification,
// invdyn.h).
//
// The low-pass filter is a digital Butterworth filter of order n (bilinear transform with the
// cutoff prewarped), realized as a cascade of second-order sections (and one first-order section
// when n is odd). dso_filtfilt runs it forward, then backward over the result (forward-backward
// filtering), so the phase shifts of the two passes cancel: the output has no lag at any frequency
// and its gain is the squared Butterworth magnitude,
//   |G(f)| = 1 / (1 + (tan(π f / rate) / tan(π cutoff / rate))^(2n)),
// which is 1/2 (-6 dB) at the cutoff. Edges: the straight line through the two end samples is
// taken out before filtering and added back after (so straight lines pass exactly), and the rest
// is extended at each end by its odd reflection about the end sample (x[-k] = 2 x[0] - x[k]),
// which keeps the end value and slope; every section starts each pass in the steady state of its
// first input sample. The reflection flips the curvature at the ends, so second derivatives of
// the output are biased within about one cutoff period of the ends (tests/test_filter.c: 7% of
// the peak acceleration at the end samples, 0.3% one period in, 0.02% two periods in): leave
// those samples out where accelerations matter.
//
// Derivatives are central differences of the filtered signal (second order in the sample
// spacing; second-order one-sided formulas at the two ends).
#ifndef DSO_FILTER_H
#define DSO_FILTER_H

#include <stddef.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Highest filter order dso_butter_design accepts.
#define DSO_FILTER_MAX_ORDER 8

// A designed low-pass filter: nsection sections, each y = (b0 + b1 z^-1 + b2 z^-2) /
// (1 + a1 z^-1 + a2 z^-2) x (a first-order section has b2 = a2 = 0). Plain data; copy freely.
typedef struct dsoButter_ {
  int order;                                   // n
  double cutoff;                               // Hz
  double rate;                                 // samples per second
  int nsection;                                // (n + 1) / 2
  double b[(DSO_FILTER_MAX_ORDER + 1) / 2][3]; // numerators of the sections
  double a[(DSO_FILTER_MAX_ORDER + 1) / 2][3]; // denominators, a[k][0] = 1
} dsoButter;

// Designs a Butterworth low-pass filter of order 1..DSO_FILTER_MAX_ORDER with cutoff (Hz,
// 0 < cutoff < rate / 2) for signals sampled at rate (Hz, > 0). Fails with DSO_ERR_INPUT naming
// the bad argument.
dsoStatus dso_butter_design(dsoButter* f, int order, double cutoff, double rate, dsoError* err);

// Samples dso_filtfilt adds at each end of a signal of T samples: the smaller of T - 1 and three
// periods of the cutoff, at least 3 (order + 1) when T allows.
int dso_filtfilt_pad(const dsoButter* f, int T);

// Size (in doubles) of the work array dso_filtfilt needs for a signal of T samples.
size_t dso_filtfilt_work_size(const dsoButter* f, int T);

// Zero-phase filtering (see above) of x (T samples, x[t * incx]) into y (y[t * incy]); y may be x
// (same stride) to filter in place. work has dso_filtfilt_work_size(f, T) doubles. Needs T >= 2;
// a non-finite input sample is DSO_ERR_NUMERIC naming its index.
dsoStatus dso_filtfilt(double* y, int incy, const double* x, int incx, int T, const dsoButter* f,
                       double* work, dsoError* err);

// One causal forward pass of the filter (no reflection, sections started in the steady state of
// x[0]) of x into y, same conventions as dso_filtfilt but without work space: the delayed
// reference that shows the lag forward-backward filtering removes.
dsoStatus dso_filter_forward(double* y, int incy, const double* x, int incx, int T,
                             const dsoButter* f, dsoError* err);

// First derivative dy (dy[t * incd]) of y (T >= 3 samples, y[t * incy], spacing dt > 0 s):
// (y[t+1] - y[t-1]) / (2 dt) inside, (-3 y[0] + 4 y[1] - y[2]) / (2 dt) and its mirror at the
// ends. dy must not overlap y.
dsoStatus dso_diff1(double* dy, int incd, const double* y, int incy, int T, double dt,
                    dsoError* err);

// Second derivative ddy (ddy[t * incd]) of y (T >= 4 samples, spacing dt > 0 s):
// (y[t+1] - 2 y[t] + y[t-1]) / dt² inside, (2 y[0] - 5 y[1] + 4 y[2] - y[3]) / dt² and its
// mirror at the ends. ddy must not overlap y.
dsoStatus dso_diff2(double* ddy, int incd, const double* y, int incy, int T, double dt,
                    dsoError* err);

#ifdef __cplusplus
}
#endif
#endif  // DSO_FILTER_H
