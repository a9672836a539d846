// Exact two-sample KS probabilities (declared in kolmogorov.h): Hodges'
// lattice-path counts, as scipy 1.10's _compute_prob_outside_square and
// _compute_outer_prob_inside_method evaluate them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "drift/kolmogorov.h"

namespace gantry::drift {

namespace {

// n1 == n2 == n: P = 2 (C(2n,n-h) - C(2n,n-2h) + ...) / C(2n,n), evaluated
// with a Horner-like scheme to avoid cancellation.
double ExactSquare(int64_t n, int64_t h) {
  double p = 0.0;
  for (int64_t k = n / h; k >= 0; --k) {
    double p1 = 1.0;
    for (int64_t j = 0; j < h; ++j) {
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    }
    p = p1 * (1.0 - p);
  }
  return 2 * p;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

// 1 - (proportion of lattice paths from (0,0) to (m,n) staying strictly
// inside |x/m - y/n| < h/lcm), by Viehmann's recursion on 1 - p, one sliding
// column at a time.
double ExactInside(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  const int64_t mg = m / g, ng = n / g;
  int64_t minj = 0, maxj = std::min(CeilDiv(h, mg), n + 1);
  int64_t curlen = maxj - minj;
  // Entries past the window stand for paths that already crossed: 1.
  std::vector<double> a(static_cast<size_t>(n + 2), 1.0);
  for (int64_t j = minj; j < maxj; ++j) a[j] = 0.0;
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t lastminj = minj, lastlen = curlen;
    minj = std::min(std::max(FloorDiv(ng * i - h, mg) + 1, int64_t{0}), n);
    maxj = std::min(CeilDiv(ng * i + h, mg), n + 1);
    if (maxj <= minj) return 1.0;
    double val = minj == 0 ? 0.0 : 1.0;
    const double di = static_cast<double>(i);
    for (int64_t jj = 0; jj < maxj - minj; ++jj) {
      const int64_t j = jj + minj;
      val = (a[jj + minj - lastminj] * di + val * static_cast<double>(j)) /
            static_cast<double>(i + j);
      a[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      for (int64_t j = curlen; j < lastlen && j < static_cast<int64_t>(a.size()); ++j) a[j] = 1.0;
    }
  }
  return a[maxj - minj - 1];
}

}  // namespace

double KsTwoSampleExactSf(int64_t n1, int64_t n2, int64_t g, int64_t h) {
  if (h == 0) return 1.0;
  const double p = n1 == n2 ? ExactSquare(n1, h) : ExactInside(n1, n2, g, h);
  if (!std::isfinite(p) || p < 0 || p > 1) return -1.0;
  return p;
}

}  // namespace gantry::drift
