// PSI, Jensen–Shannon, Wasserstein, chi-square, bins and p-value adjustment:
// known values (scipy 1.10 where it has the same function).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "drift/detector.h"
#include "drift/ecdf.h"
#include "drift/statistics.h"
#include "tests/drift/drift_test_util.h"

namespace gantry::drift {
namespace {

Ecdf E(std::vector<double> v) {
  auto e = MakeEcdf(v);
  EXPECT_TRUE(e.ok());
  return *e;
}

TEST(DriftStatisticsTest, EcdfCollapsesTiesBothWays) {
  std::vector<double> v = {3, 1, 2, 2, 3, 3, -0.0, 0.0};
  const Ecdf hashed = E(v);
  ASSERT_EQ(hashed.values, (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(hashed.cumulative, (std::vector<int64_t>{2, 3, 5, 8}));
  EXPECT_EQ(hashed.CountAtMost(2.5), 5);
  EXPECT_EQ(hashed.CountAtMost(-1), 0);
  // Past the hash limit the sort path must give the same shape.
  std::vector<double> many;
  for (int i = 0; i < 10000; ++i) many.push_back(i % 5000);
  const Ecdf sorted = E(many);
  EXPECT_EQ(sorted.distinct(), 5000u);
  EXPECT_EQ(sorted.cumulative.back(), 10000);
  EXPECT_EQ(sorted.CountAt(17), 2);
  EXPECT_DOUBLE_EQ(E({1, 2, 3, 4}).Mean(), 2.5);
  EXPECT_DOUBLE_EQ(E({1, 2, 3, 4}).StdDev(), std::sqrt(1.25));
}

TEST(DriftStatisticsTest, WassersteinMatchesScipy) {
  EXPECT_DOUBLE_EQ(Wasserstein1(E({0, 1, 3}), E({5, 6, 8})), 5.0);
  EXPECT_NEAR(Wasserstein1(E({0, 0, 1, 2.5}), E({1, 1, 3})), 0.7916666666666667, 1e-15);
  EXPECT_EQ(Wasserstein1(E({1, 2}), E({2, 1})), 0.0);
}

TEST(DriftStatisticsTest, ChiSquareMatchesScipyContingency) {
  // chi2_contingency([[10,20,30],[15,15,40]], correction=False)
  const std::map<int64_t, int64_t> ref = {{0, 10}, {1, 20}, {2, 30}};
  const std::map<int64_t, int64_t> cur = {{0, 15}, {1, 15}, {2, 40}, {7, 0}};
  const ChiSquareResult r = ChiSquareHomogeneity(ref, cur);
  EXPECT_NEAR(r.statistic, 2.3877551020408165, 1e-12);
  EXPECT_EQ(r.dof, 2);
  EXPECT_NEAR(r.p_value, 0.30304391468510006, 1e-12);
  // One category only: no test.
  const ChiSquareResult one = ChiSquareHomogeneity({{1, 5}}, {{1, 9}});
  EXPECT_EQ(one.dof, 0);
  EXPECT_EQ(one.p_value, 1.0);
  // A category only the current data has is a strong signal.
  const ChiSquareResult fresh = ChiSquareHomogeneity({{0, 500}, {1, 500}}, {{0, 300}, {1, 300}, {2, 400}});
  EXPECT_LT(fresh.p_value, 1e-50);
}

TEST(DriftStatisticsTest, JensenShannonMatchesScipy) {
  // distance.jensenshannon([0.1,0.4,0.5],[0.3,0.3,0.4], base=2)
  EXPECT_NEAR(JensenShannonDistance({1, 4, 5}, {3, 3, 4}), 0.21663402449519675, 1e-14);
  EXPECT_EQ(JensenShannonDistance({1, 2}, {2, 4}), 0.0);
  EXPECT_NEAR(JensenShannonDistance({1, 0}, {0, 1}), 1.0, 1e-15);
}

TEST(DriftStatisticsTest, PsiByHandAndEmptyBins) {
  EXPECT_NEAR(Psi({50, 50}, {25, 75}), 0.25 * std::log(2.0) + 0.25 * std::log(1.5), 1e-15);
  EXPECT_EQ(Psi({10, 20}, {20, 40}), 0.0);
  // An empty reference bin is floored at kPsiEpsilon, not infinite.
  const double expected = (0.5 - 1.0) * std::log(0.5) + (0.5 - kPsiEpsilon) * std::log(0.5 / kPsiEpsilon);
  EXPECT_NEAR(Psi({100, 0}, {50, 50}), expected, 1e-12);
}

TEST(DriftStatisticsTest, BinEdgesFollowReferenceQuantilesAndTies) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  const std::vector<double> edges = ReferenceBinEdges(E(v), 10);
  EXPECT_EQ(edges, (std::vector<double>{10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_EQ(BinCounts(E(v), edges), std::vector<int64_t>(10, 10));
  // 70% zeros (a blank pixel): the tied deciles collapse into one edge.
  std::vector<double> pix(70, 0.0);
  for (int i = 0; i < 30; ++i) pix.push_back(100 + i);
  const std::vector<double> pe = ReferenceBinEdges(E(pix), 10);
  EXPECT_EQ(pe, (std::vector<double>{0, 109, 119}));
  EXPECT_EQ(BinCounts(E(pix), pe).front(), 70);
  // A constant reference keeps its value as the edge: anything above drifts.
  EXPECT_EQ(ReferenceBinEdges(E({5, 5, 5}), 10), (std::vector<double>{5}));
  EXPECT_GT(Psi(BinCounts(E({5, 5, 5}), {5}), BinCounts(E({5, 6, 7}), {5})), 1.0);
}

TEST(DriftStatisticsTest, AdjustPValues) {
  const std::vector<double> p = {0.01, 0.04, 0.03, 0.5};
  const std::vector<double> bh = AdjustPValues(p, Correction::kBenjaminiHochberg);
  EXPECT_NEAR(bh[0], 0.04, 1e-15);
  EXPECT_NEAR(bh[1], 0.04 * 4 / 3, 1e-15);
  EXPECT_NEAR(bh[2], 0.04 * 4 / 3, 1e-15);
  EXPECT_NEAR(bh[3], 0.5, 1e-15);
  const std::vector<double> bonf = AdjustPValues(p, Correction::kBonferroni);
  EXPECT_NEAR(bonf[0], 0.04, 1e-15);
  EXPECT_EQ(bonf[3], 1.0);
}

}  // namespace
}  // namespace gantry::drift
