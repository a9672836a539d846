// Per-feature drift statistics besides KS. Pure functions, thread-safe.
//
//  * Wasserstein-1 (earth mover's) distance between the two empirical
//    distributions: the area between their CDFs, in the feature's units;
//    equal to scipy.stats.wasserstein_distance(a, b).
//  * Binned statistics on bins taken from the reference (ReferenceBinEdges):
//    - PSI, population stability index: sum (c_i - r_i) ln(c_i / r_i) over
//      bin proportions, each proportion floored at kPsiEpsilon so that an
//      empty bin gives a large but finite term. Rule of thumb: < 0.1 stable,
//      0.1-0.25 moderate shift, > 0.25 major shift.
//    - Jensen–Shannon distance, base 2: sqrt of the JS divergence of the
//      two bin distributions (no flooring), in [0, 1]; equal to
//      scipy.spatial.distance.jensenshannon(r, c, base=2).
//  * Chi-square test of homogeneity for categorical features and labels: the
//    2 x K contingency table (reference counts, current counts) over the
//    categories seen in either, without Yates' correction; equal to
//    scipy.stats.chi2_contingency(table, correction=False). Categories absent
//    from both are not columns; dof = K - 1.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "drift/ecdf.h"

namespace gantry::drift {

// Floor on a bin proportion in PSI (1e-4: an empty bin against a 10% bin
// contributes ~0.83, a clear alarm, instead of infinity).
inline constexpr double kPsiEpsilon = 1e-4;

double Wasserstein1(const Ecdf& a, const Ecdf& b);

// Interior edges at the reference's quantiles i/bins (i = 1..bins-1),
// duplicates removed (tied data gives fewer bins). Bins are right-closed:
// (-inf, e1], (e1, e2], ..., (e_last, +inf), so a tie at an edge falls left.
std::vector<double> ReferenceBinEdges(const Ecdf& reference, int bins);
// Counts per bin (edges.size() + 1 bins).
std::vector<int64_t> BinCounts(const Ecdf& sample, const std::vector<double>& edges);

double Psi(const std::vector<int64_t>& reference, const std::vector<int64_t>& current,
           double epsilon = kPsiEpsilon);
double JensenShannonDistance(const std::vector<int64_t>& reference,
                             const std::vector<int64_t>& current);

struct ChiSquareResult {
  double statistic = 0;
  int64_t dof = 0;
  double p_value = 1;
};
// Category -> count on each side. With fewer than two categories seen the
// test is undefined: statistic 0, dof 0, p 1.
ChiSquareResult ChiSquareHomogeneity(const std::map<int64_t, int64_t>& reference,
                                     const std::map<int64_t, int64_t>& current);
// P(chi2_dof >= x) (scipy.stats.chi2.sf).
double ChiSquareSf(double x, int64_t dof);

}  // namespace gantry::drift
