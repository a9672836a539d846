#include "drift/statistics.h"

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
#include <cmath>

namespace gantry::drift {

double Wasserstein1(const Ecdf& a, const Ecdf& b) {
  if (a.n == 0 || b.n == 0) return 0;
  const double n1 = static_cast<double>(a.n), n2 = static_cast<double>(b.n);
  double sum = 0, prev = 0;
  int64_t prev_a = 0, prev_b = 0;  // counts up to prev
  bool first = true;
  WalkMerged(a, b, [&](double v, int64_t ca, int64_t cb) {
    // CDFs are constant on [prev, v): they hold the counts up to prev.
    if (!first) {
      sum += std::fabs(static_cast<double>(prev_a) / n1 - static_cast<double>(prev_b) / n2) * (v - prev);
    }
    first = false;
    prev_a = ca;
    prev_b = cb;
    prev = v;
  });
  return sum;
}

std::vector<double> ReferenceBinEdges(const Ecdf& reference, int bins) {
  std::vector<double> edges;
  if (reference.n == 0 || bins < 2) return edges;
  for (int i = 1; i < bins; ++i) {
    const double e = reference.Quantile(static_cast<double>(i) / bins);
    if (edges.empty() || e > edges.back()) edges.push_back(e);
  }
  return edges;
}

std::vector<int64_t> BinCounts(const Ecdf& sample, const std::vector<double>& edges) {
  std::vector<int64_t> counts(edges.size() + 1, 0);
  int64_t below = 0;
  for (size_t k = 0; k < edges.size(); ++k) {
    const int64_t at_most = sample.CountAtMost(edges[k]);
    counts[k] = at_most - below;
    below = at_most;
  }
  counts.back() = sample.n - below;
  return counts;
}

namespace {
int64_t Total(const std::vector<int64_t>& v) {
  int64_t t = 0;
  for (int64_t c : v) t += c;
  return t;
}
}  // namespace

double Psi(const std::vector<int64_t>& reference, const std::vector<int64_t>& current,
           double epsilon) {
  const double nr = static_cast<double>(Total(reference)), nc = static_cast<double>(Total(current));
  if (nr == 0 || nc == 0) return 0;
  double psi = 0;
  for (size_t k = 0; k < reference.size() && k < current.size(); ++k) {
    const double r = std::max(static_cast<double>(reference[k]) / nr, epsilon);
    const double c = std::max(static_cast<double>(current[k]) / nc, epsilon);
    psi += (c - r) * std::log(c / r);
  }
  return psi;
}

double JensenShannonDistance(const std::vector<int64_t>& reference,
                             const std::vector<int64_t>& current) {
  const double nr = static_cast<double>(Total(reference)), nc = static_cast<double>(Total(current));
  if (nr == 0 || nc == 0) return 0;
  double js = 0;
  for (size_t k = 0; k < reference.size() && k < current.size(); ++k) {
    const double p = static_cast<double>(reference[k]) / nr;
    const double q = static_cast<double>(current[k]) / nc;
    const double m = (p + q) / 2;
    if (p > 0) js += p * std::log(p / m);
    if (q > 0) js += q * std::log(q / m);
  }
  return std::sqrt(std::max(0.0, js / 2 / std::log(2.0)));
}

double ChiSquareSf(double x, int64_t dof) {
  if (dof <= 0) return 1.0;
  if (x <= 0) return 1.0;
  if (!std::isfinite(x)) return 0.0;
  return boost::math::gamma_q(static_cast<double>(dof) / 2, x / 2);
}

ChiSquareResult ChiSquareHomogeneity(const std::map<int64_t, int64_t>& reference,
                                     const std::map<int64_t, int64_t>& current) {
  std::map<int64_t, std::pair<double, double>> table;
  for (const auto& [k, c] : reference) {
    if (c > 0) table[k].first += static_cast<double>(c);
  }
  for (const auto& [k, c] : current) {
    if (c > 0) table[k].second += static_cast<double>(c);
  }
  ChiSquareResult r;
  double nr = 0, nc = 0;
  for (const auto& [k, rc] : table) {
    nr += rc.first;
    nc += rc.second;
  }
  if (table.size() < 2 || nr == 0 || nc == 0) return r;
  const double total = nr + nc;
  for (const auto& [k, rc] : table) {
    const double col = rc.first + rc.second;
    const double er = nr * col / total, ec = nc * col / total;
    r.statistic += (rc.first - er) * (rc.first - er) / er + (rc.second - ec) * (rc.second - ec) / ec;
  }
  r.dof = static_cast<int64_t>(table.size()) - 1;
  r.p_value = ChiSquareSf(r.statistic, r.dof);
  return r;
}

}  // namespace gantry::drift
