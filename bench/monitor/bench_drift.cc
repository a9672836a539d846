// bench_drift: drift of all 784 Fashion-MNIST features, 60,000 reference
// rows (train) vs 10,000 current rows (test), Gantry's detector against a
// straightforward per-feature sort-based implementation (copy the column,
// sort both sides, ECDFs by binary search over the pooled values as scipy
// does, the same p-value function) in the same binary, alternating rounds.
// Without the dataset, uint8 data with the same shape is generated.
//
//   bench_drift [--rounds N] [--dump DIR]
// --dump writes DIR/ref.u8, DIR/cur.u8 (row-major uint8), DIR/shape.txt
// ("rows_ref rows_cur cols") and DIR/gantry.txt (per feature: KS statistic,
// p-value, Wasserstein) for bench/monitor/drift_vs_scipy.py.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "drift/detector.h"
#include "drift/ks.h"
#include "drift/profile.h"

namespace drift = gantry::drift;

namespace {

constexpr size_t kCols = 784;

bool LoadImages(const std::string& path, size_t want, std::vector<uint8_t>* out) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::vector<uint8_t> bytes(16 + want * kCols);
  const int got = gzread(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  if (got != static_cast<int>(bytes.size())) return false;
  out->assign(bytes.begin() + 16, bytes.end());
  return true;
}

std::vector<uint8_t> Synthetic(size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(rows * kCols);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint64_t r = rng();
    v[i] = (r & 3) == 0 ? 0 : static_cast<uint8_t>((r >> 8) % (1 + i % kCols % 255));
  }
  return v;
}

struct Baseline {
  std::vector<double> stat, p, w;
};

// The straightforward implementation: per feature, sort copies and evaluate
// the ECDFs at every pooled value by binary search (scipy's algorithm).
Baseline Straightforward(const std::vector<uint8_t>& ref, size_t nr, const std::vector<uint8_t>& cur,
                         size_t nc) {
  Baseline b;
  std::vector<double> a(nr), c(nc), all(nr + nc);
  for (size_t f = 0; f < kCols; ++f) {
    for (size_t r = 0; r < nr; ++r) a[r] = ref[r * kCols + f];
    for (size_t r = 0; r < nc; ++r) c[r] = cur[r * kCols + f];
    std::sort(a.begin(), a.end());
    std::sort(c.begin(), c.end());
    std::copy(a.begin(), a.end(), all.begin());
    std::copy(c.begin(), c.end(), all.begin() + static_cast<std::ptrdiff_t>(nr));
    double maxd = 0, mind = 0;
    auto cdf = [](const std::vector<double>& s, double x) {
      return static_cast<double>(std::upper_bound(s.begin(), s.end(), x) - s.begin()) /
             static_cast<double>(s.size());
    };
    for (double x : all) {
      const double d = cdf(a, x) - cdf(c, x);
      maxd = std::max(maxd, d);
      mind = std::min(mind, d);
    }
    const double d = std::min(1.0, -mind) > maxd ? -mind : maxd;
    const drift::KsResult k = drift::KsPValue(static_cast<int64_t>(nr), static_cast<int64_t>(nc), d);
    // Wasserstein as scipy: sorted pooled values, CDFs at each, times the gaps.
    std::sort(all.begin(), all.end());
    double w = 0;
    for (size_t i = 0; i + 1 < all.size(); ++i) {
      w += std::fabs(cdf(a, all[i]) - cdf(c, all[i])) * (all[i + 1] - all[i]);
    }
    b.stat.push_back(k.statistic);
    b.p.push_back(k.p_value);
    b.w.push_back(w);
  }
  return b;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Spread {
  double min, median, max;
};
Spread Of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

void Line(const char* metric, double value, const char* unit, int n, const Spread* g,
          const Spread* b, const std::string& note) {
  std::printf("{\"bench\":\"drift\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"n\":%d", metric,
              value, unit, n);
  if (g) std::printf(",\"gantry\":{\"min\":%.6g,\"median\":%.6g,\"max\":%.6g,\"unit\":\"s\"}", g->min, g->median, g->max);
  if (b) std::printf(",\"baseline\":{\"min\":%.6g,\"median\":%.6g,\"max\":%.6g,\"unit\":\"s\"}", b->min, b->median, b->max);
  std::printf(",\"note\":\"%s\"}\n", note.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  std::string dump;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--dump") && i + 1 < argc) {
      dump = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bench_drift [--rounds N] [--dump DIR]\n");
      return 2;
    }
  }
  const size_t nr = 60000, nc = 10000;
  std::vector<uint8_t> ref, cur;
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const bool real = LoadImages(dir + "train-images-idx3-ubyte.gz", nr, &ref) &&
                    LoadImages(dir + "t10k-images-idx3-ubyte.gz", nc, &cur);
  if (!real) {
    ref = Synthetic(nr, 1);
    cur = Synthetic(nc, 2);
  }
  const std::string data = real ? "Fashion-MNIST train vs test" : "synthetic uint8 (no Fashion-MNIST)";
  const drift::MatrixView rv = drift::MatrixView::Of(ref, nr, kCols);
  const drift::MatrixView cv = drift::MatrixView::Of(cur, nc, kCols);

  std::vector<double> t_gantry, t_base, t_compare;
  drift::DatasetDrift result;
  Baseline base;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto profile = drift::BuildProfile(rv);
    auto det = drift::DriftDetector::Create(std::move(profile).value());
    auto t1 = std::chrono::steady_clock::now();
    auto d = det->Compare(cv);
    t_compare.push_back(Seconds(t1));
    t_gantry.push_back(Seconds(t0));
    if (!d.ok()) {
      std::fprintf(stderr, "bench_drift: %s\n", d.status().ToString().c_str());
      return 1;
    }
    result = *d;
    t0 = std::chrono::steady_clock::now();
    base = Straightforward(ref, nr, cur, nc);
    t_base.push_back(Seconds(t0));
  }
  // Same answers: compare per feature (result is sorted most drifted first).
  double max_p = 0, max_stat = 0, max_w = 0;
  std::vector<const drift::FeatureDrift*> by_index(kCols);
  for (const auto& f : result.features) by_index[f.index] = &f;
  for (size_t f = 0; f < kCols; ++f) {
    max_p = std::max(max_p, std::fabs(by_index[f]->ks.p_value - base.p[f]));
    max_stat = std::max(max_stat, std::fabs(by_index[f]->ks.statistic - base.stat[f]));
    max_w = std::max(max_w, std::fabs(by_index[f]->wasserstein - base.w[f]) / std::max(1.0, base.w[f]));
  }
  const Spread g = Of(t_gantry), b = Of(t_base), c = Of(t_compare);
  Line("drift_784_vs_sort_baseline", b.median / g.median, "x", rounds, &g, &b,
       data + "; 60000 vs 10000 rows; gantry = profile build + compare (KS, PSI, JS, W1), "
              "baseline = per-feature sort + searchsorted KS + W1; 1 thread");
  Line("drift_784_compare_stored_profile_vs_sort_baseline", b.median / c.median, "x", rounds, &c, &b,
       data + "; gantry = compare with an already built reference profile");
  Line("drift_max_abs_p_diff_vs_baseline", max_p, "abs", rounds, nullptr, nullptr,
       "max over features of |p_gantry - p_baseline|; statistic diff " + std::to_string(max_stat) +
           ", relative W1 diff " + std::to_string(max_w));
  Line("drift_dataset_share", result.share, "share", 1, nullptr, nullptr,
       data + ": share of drifted features (BH, fdr 0.05)");
  if (!dump.empty()) {
    std::ofstream(dump + "/ref.u8", std::ios::binary).write(reinterpret_cast<const char*>(ref.data()), static_cast<std::streamsize>(ref.size()));
    std::ofstream(dump + "/cur.u8", std::ios::binary).write(reinterpret_cast<const char*>(cur.data()), static_cast<std::streamsize>(cur.size()));
    std::ofstream(dump + "/shape.txt") << nr << " " << nc << " " << kCols << "\n";
    std::ofstream out(dump + "/gantry.txt");
    out.precision(17);
    for (size_t f = 0; f < kCols; ++f) {
      out << by_index[f]->ks.statistic << " " << by_index[f]->ks.p_value << " "
          << by_index[f]->wasserstein << "\n";
    }
    std::ofstream(dump + "/gantry_seconds.txt") << g.median << " " << c.median << "\n";
  }
  return 0;
}
