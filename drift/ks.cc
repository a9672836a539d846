#include "drift/ks.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "drift/kolmogorov.h"

namespace gantry::drift {

KsResult KsPValue(int64_t n1, int64_t n2, double d) {
  KsResult r;
  r.statistic = d;
  bool exact = std::max(n1, n2) <= kKsMaxExactN;
  if (exact) {
    const int64_t g = std::gcd(n1, n2);
    const int64_t lcm = (n1 / g) * n2;
    // np.round: half to even, as nearbyint under the default rounding mode.
    const int64_t h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    r.statistic = static_cast<double>(h) * 1.0 / static_cast<double>(lcm);
    const double p = KsTwoSampleExactSf(n1, n2, g, h);
    if (p >= 0) {
      r.p_value = std::clamp(p, 0.0, 1.0);
      r.method = KsMethod::kExact;
      return r;
    }
    exact = false;
  }
  const double m = static_cast<double>(std::max(n1, n2));
  const double n = static_cast<double>(std::min(n1, n2));
  const double en = m * n / (m + n);
  const int64_t ne = static_cast<int64_t>(std::nearbyint(en));
  r.method = KsMethod::kAsymptotic;
  // kstwo's support starts at 0.5/n: below it sf is 1.
  double p = r.statistic <= 0.5 / static_cast<double>(ne) ? 1.0 : KolmogorovSf(ne, r.statistic);
  r.p_value = std::clamp(p, 0.0, 1.0);
  return r;
}

Result<KsResult> KsTwoSample(const Ecdf& a, const Ecdf& b) {
  if (a.n <= 0 || b.n <= 0) {
    return Status::InvalidArgument("ks: both samples need at least one value (got " +
                                   std::to_string(a.n) + " and " + std::to_string(b.n) + ")");
  }
  const double n1 = static_cast<double>(a.n), n2 = static_cast<double>(b.n);
  double max_diff = -2, min_diff = 2, max_loc = 0, min_loc = 0;
  WalkMerged(a, b, [&](double v, int64_t ca, int64_t cb) {
    // The same float operations as scipy: cdf1 - cdf2 with cdf = count / n.
    const double diff = static_cast<double>(ca) / n1 - static_cast<double>(cb) / n2;
    if (diff > max_diff) {
      max_diff = diff;
      max_loc = v;
    }
    if (diff < min_diff) {
      min_diff = diff;
      min_loc = v;
    }
  });
  const double min_s = std::clamp(-min_diff, 0.0, 1.0);
  double d;
  KsResult r;
  if (min_s > max_diff) {
    d = min_s;
    r.location = min_loc;
    r.sign = -1;
  } else {
    d = max_diff;
    r.location = max_loc;
    r.sign = 1;
  }
  const KsResult p = KsPValue(a.n, b.n, d);
  r.statistic = p.statistic;
  r.p_value = p.p_value;
  r.method = p.method;
  return r;
}

Result<KsResult> KsTwoSample(std::span<const double> a, std::span<const double> b) {
  GANTRY_ASSIGN_OR_RETURN(Ecdf ea, MakeEcdf(a));
  GANTRY_ASSIGN_OR_RETURN(Ecdf eb, MakeEcdf(b));
  return KsTwoSample(ea, eb);
}

}  // namespace gantry::drift
