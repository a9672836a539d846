// Two-sample Kolmogorov–Smirnov test, two-sided, matching
// `scipy.stats.ks_2samp(a, b)` (default method 'auto') of scipy 1.10:
//
//  1. The statistic D = max |F_a(x) - F_b(x)| over the pooled values, both
//     ECDFs right-continuous (numpy searchsorted side='right'), so tied values
//     step together, exactly as scipy evaluates it; computed by one merge of
//     the two sorted Ecdfs, O(distinct values).
//  2. Method: exact when max(n1, n2) <= 10000, else asymptotic.
//  3. Exact: h = round(D lcm(n1, n2)), D := h / lcm, p from the lattice-path
//     recursions (kolmogorov.h); if that fails, asymptotic.
//  4. Asymptotic: p = kstwo.sf(D, round(n1 n2 / (n1 + n2))).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"
#include "drift/ecdf.h"

namespace gantry::drift {

enum class KsMethod { kExact, kAsymptotic };

struct KsResult {
  double statistic = 0;   // D (h / lcm in exact mode, as scipy reports it)
  double p_value = 1;
  KsMethod method = KsMethod::kExact;
  double location = 0;    // a value where |F_a - F_b| reaches D
  int sign = 1;           // +1 when F_a > F_b there, -1 otherwise
};

// scipy's 'auto' switch: exact up to this many observations per side.
inline constexpr int64_t kKsMaxExactN = 10000;

// Refuses an empty side.
Result<KsResult> KsTwoSample(const Ecdf& a, const Ecdf& b);
Result<KsResult> KsTwoSample(std::span<const double> a, std::span<const double> b);

// Steps 2-4 for a statistic d computed as in step 1 (d is replaced by h/lcm
// in exact mode; see KsResult::statistic).
KsResult KsPValue(int64_t n1, int64_t n2, double d);

}  // namespace gantry::drift
