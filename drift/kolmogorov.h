// Null distributions of the Kolmogorov–Smirnov statistic, computed the way
// scipy 1.10 (Debian 12's python3-scipy) computes them, so that Gantry's KS
// p-values agree with `scipy.stats.ks_2samp(a, b)` (default method 'auto',
// two-sided) to well under 1e-6 absolute.
//
//   * Exact two-sample probabilities (used by ks_2samp when max(n1, n2) <=
//     10000): the lattice-path recursions of Hodges (1958), for n1 == n2 the
//     closed alternating sum, otherwise Viehmann's (2021) stable "inside"
//     recursion for 1 - p.
//   * The one-sample two-sided distribution `kstwo.sf(x, n)` (ks_2samp's
//     asymptotic fallback with n = round(n1 n2 / (n1 + n2))), following
//     Simard & L'Ecuyer (2011) as scipy's _ksstats does: Ruben–Gambino
//     closed forms at the edges, Durbin's matrix (Marsaglia–Tsang–Wang),
//     Pomeranz's recursion, Pelz–Good, and 2 x the one-sided Smirnov tail.
//   * The one-sided Smirnov tail `smirnov(n, x)` (Birnbaum–Tingey sum).
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>

namespace gantry::drift {

// P(D+_n >= x) for the one-sided one-sample statistic (scipy.special.smirnov).
double SmirnovSf(int64_t n, double x);

// P(D_n >= x) for the two-sided one-sample statistic (scipy.stats.kstwo.sf).
double KolmogorovSf(int64_t n, double x);

// Exact P(D_{n1,n2} >= h / lcm(n1, n2)) for the two-sided two-sample
// statistic, g = gcd(n1, n2). Returns a negative number when the computation
// fails (scipy then falls back to the asymptotic distribution).
double KsTwoSampleExactSf(int64_t n1, int64_t n2, int64_t g, int64_t h);

}  // namespace gantry::drift
