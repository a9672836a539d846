// KS two-sample test: known values, and agreement with scipy.stats.ks_2samp
// (default method) within 1e-6 on sizes 10..100,000, with and without ties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "drift/kolmogorov.h"
#include "drift/ks.h"
#include "tests/drift/drift_test_util.h"

namespace gantry::drift {
namespace {

using testing::Normal;

TEST(DriftKsTest, KnownValuesFromScipy) {
  // scipy 1.10: ks_2samp([1,2,3],[4,5,6]) -> (1.0, 0.09999999999999999)
  auto r = KsTwoSample(std::vector<double>{1, 2, 3}, std::vector<double>{4, 5, 6});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->statistic, 1.0);
  EXPECT_NEAR(r->p_value, 0.1, 1e-15);
  EXPECT_EQ(r->method, KsMethod::kExact);
  // Ties across both samples: (0.35714285714285715, 0.7115384615384616).
  r = KsTwoSample(std::vector<double>{0, 0, 0, 1, 1, 2}, std::vector<double>{0, 1, 1, 1, 2, 2, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->statistic, 0.35714285714285715);
  EXPECT_NEAR(r->p_value, 0.7115384615384616, 1e-14);
  EXPECT_EQ(r->location, 0);
  EXPECT_EQ(r->sign, 1);
}

TEST(DriftKsTest, DistributionsMatchScipyKnownValues) {
  // scipy.stats.kstwo.sf(x, n) and scipy.special.smirnov(n, x), scipy 1.10.
  EXPECT_NEAR(KolmogorovSf(1000, 0.05), 0.013012074781090332, 1e-13);   // smirnov branch
  EXPECT_NEAR(KolmogorovSf(50, 0.3), 0.00017353260202718738, 1e-15);    // n <= 140, smirnov
  EXPECT_NEAR(KolmogorovSf(50, 0.1), 0.6623112704658186, 1e-13);        // Pomeranz
  EXPECT_NEAR(KolmogorovSf(20, 0.6), 2.0483011649719853e-07, 1e-18);    // x >= 0.5
  EXPECT_NEAR(KolmogorovSf(5000, 0.02), 0.03613941395325637, 1e-13);    // Pelz-Good
  EXPECT_NEAR(KolmogorovSf(200000, 0.001), 0.9881500208855729, 1e-13);  // Pelz-Good, big n
  EXPECT_NEAR(SmirnovSf(100, 0.1), 0.1265906584562817, 1e-14);
  EXPECT_NEAR(SmirnovSf(5000, 0.03), 0.00012079617211333408, 1e-16);
  EXPECT_EQ(KolmogorovSf(10, 0.0), 1.0);
  EXPECT_EQ(KolmogorovSf(10, 1.0), 0.0);
}

TEST(DriftKsTest, IdenticalSamplesAndEmptyInput) {
  std::vector<double> a = {3, 1, 2, 2};
  auto r = KsTwoSample(a, a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->statistic, 0);
  EXPECT_EQ(r->p_value, 1);
  EXPECT_FALSE(KsTwoSample(a, std::vector<double>{}).ok());
  EXPECT_FALSE(KsTwoSample(a, std::vector<double>{1, NAN}).ok());
}

TEST(DriftKsTest, NegativeZeroEqualsZero) {
  auto r = KsTwoSample(std::vector<double>{-0.0, 1}, std::vector<double>{0.0, 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->statistic, 0);
}

struct Case {
  int64_t n1, n2;
  bool tied;
  double c;  // shift in units of 1/sqrt(n1 n2 / (n1 + n2))
};

std::vector<double> Sample(std::mt19937_64& rng, int64_t n, double shift, bool tied) {
  std::vector<double> v = Normal(rng, static_cast<size_t>(n), shift);
  if (tied) {
    // Pixel-like: clipped at 0 (a heavy tie) and rounded to few integers.
    for (double& x : v) x = std::max(0.0, std::round(2 * x));
  }
  return v;
}

TEST(DriftKsTest, MatchesScipyKs2samp) {
  const auto python = testing::PythonWithScipy();
  if (!python) GTEST_SKIP() << "python3 with scipy not found (apt install python3-scipy)";
  const std::vector<std::pair<int64_t, int64_t>> sizes = {
      {10, 10},     {1000, 1000},  {10000, 10000},  // exact, equal sizes
      {10, 37},     {100, 250},    {500, 2500},    {3000, 10000}, {7919, 10000},  // exact
      {10, 100000}, {120, 50000},  {150, 20000},   {1000, 60000}, {10000, 60000},
      {10001, 20000}, {30000, 12345}, {100000, 100000}};  // asymptotic
  std::vector<Case> cases;
  for (auto [n1, n2] : sizes) {
    for (bool tied : {false, true}) {
      for (double c : {0.0, 1.5, 4.0}) cases.push_back({n1, n2, tied, c});
    }
  }
  std::mt19937_64 rng(20261201);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("gantry_ks_scipy_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto in_path = dir / "cases.bin", out_path = dir / "scipy.txt";
  std::vector<KsResult> ours;
  {
    std::ofstream f(in_path, std::ios::binary);
    const int64_t count = static_cast<int64_t>(cases.size());
    f.write(reinterpret_cast<const char*>(&count), 8);
    for (const Case& k : cases) {
      const double en = static_cast<double>(k.n1) * k.n2 / static_cast<double>(k.n1 + k.n2);
      const std::vector<double> a = Sample(rng, k.n1, 0.0, k.tied);
      const std::vector<double> b = Sample(rng, k.n2, k.c / std::sqrt(en), k.tied);
      f.write(reinterpret_cast<const char*>(&k.n1), 8);
      f.write(reinterpret_cast<const char*>(&k.n2), 8);
      f.write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(8 * a.size()));
      f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(8 * b.size()));
      auto r = KsTwoSample(a, b);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ours.push_back(*r);
    }
  }
  const std::string script = std::string(GANTRY_TEST_SOURCE_DIR) + "/tests/drift/ks_scipy.py";
  const std::string cmd = *python + " " + script + " " + in_path.string() + " " + out_path.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(out_path);
  double worst = 0;
  int exact = 0, asymp = 0, small_p = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    double d, p;
    ASSERT_TRUE(out >> d >> p) << "scipy output ends at case " << i;
    const Case& k = cases[i];
    SCOPED_TRACE("n1=" + std::to_string(k.n1) + " n2=" + std::to_string(k.n2) +
                 (k.tied ? " tied" : " continuous") + " c=" + std::to_string(k.c));
    EXPECT_NEAR(ours[i].statistic, d, 1e-12);
    EXPECT_NEAR(ours[i].p_value, p, 1e-6);
    // Far tighter in practice; catches a silently different method.
    EXPECT_NEAR(ours[i].p_value, p, 1e-9 + 1e-6 * p);
    worst = std::max(worst, std::fabs(ours[i].p_value - p));
    (ours[i].method == KsMethod::kExact ? exact : asymp)++;
    small_p += p < 0.05;
  }
  std::filesystem::remove_all(dir);
  // Coverage of both methods and of the tail, not just p ~ 1.
  EXPECT_GT(exact, 10);
  EXPECT_GT(asymp, 10);
  EXPECT_GT(small_p, 10);
  std::printf("ks vs scipy: %zu cases (%d exact, %d asymptotic), max |p - p_scipy| = %.3g\n",
              cases.size(), exact, asymp, worst);
}

// Every branch of kstwo.sf (Ruben-Gambino, Durbin, Pomeranz, Pelz-Good,
// 2 x Smirnov) over a grid of n and x.
TEST(DriftKsTest, KolmogorovSfMatchesScipyKstwo) {
  const auto python = testing::PythonWithScipy();
  if (!python) GTEST_SKIP() << "python3 with scipy not found (apt install python3-scipy)";
  const auto dir = std::filesystem::temp_directory_path() /
                   ("gantry_kstwo_scipy_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::pair<int64_t, double>> grid;
  for (int64_t n : {1, 2, 5, 10, 37, 100, 140, 141, 500, 984, 8571, 50000, 100000, 150000}) {
    for (int i = 0; i <= 60; ++i) {
      // x from 0.5/n to ~1 on a log scale, plus the edges themselves.
      const double lo = std::log(0.4 / static_cast<double>(n)), hi = std::log(1.0);
      grid.emplace_back(n, std::exp(lo + (hi - lo) * i / 60.0));
    }
  }
  {
    std::ofstream f(dir / "grid.txt");
    f.precision(17);
    for (auto [n, x] : grid) f << n << " " << x << "\n";
  }
  const std::string script = std::string(GANTRY_TEST_SOURCE_DIR) + "/tests/drift/ks_scipy.py";
  const std::string cmd = *python + " " + script + " --kstwo " + (dir / "grid.txt").string() + " " +
                          (dir / "out.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream out(dir / "out.txt");
  double worst = 0;
  for (auto [n, x] : grid) {
    double p;
    ASSERT_TRUE(out >> p);
    const double ours = KolmogorovSf(n, x);
    EXPECT_NEAR(ours, p, 1e-9 + 1e-6 * p) << "n=" << n << " x=" << x;
    worst = std::max(worst, std::fabs(ours - p));
  }
  std::filesystem::remove_all(dir);
  std::printf("kstwo.sf vs scipy: %zu points, max |p - p_scipy| = %.3g\n", grid.size(), worst);
}

}  // namespace
}  // namespace gantry::drift
