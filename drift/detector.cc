#include "drift/detector.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace gantry::drift {

std::vector<double> AdjustPValues(std::span<const double> p, Correction correction) {
  const size_t m = p.size();
  std::vector<double> q(m);
  if (correction == Correction::kBonferroni) {
    for (size_t i = 0; i < m; ++i) q[i] = std::min(1.0, p[i] * static_cast<double>(m));
    return q;
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  double running = 1.0;
  for (size_t r = m; r-- > 0;) {
    const size_t i = order[r];
    running = std::min(running, p[i] * static_cast<double>(m) / static_cast<double>(r + 1));
    q[i] = std::min(running, 1.0);
  }
  return q;
}

Result<DriftDetector> DriftDetector::Create(ReferenceProfile profile) {
  DriftDetector d;
  for (size_t c = 0; c < profile.features.size(); ++c) {
    const FeatureProfile& f = profile.features[c];
    auto e = ProfileEcdf(f);
    if (!e.ok()) return e.status().WithContext("feature '" + f.name + "'");
    if (e->n != f.count || e->n == 0) {
      return Status::InvalidArgument("drift profile: feature '" + f.name + "' counts sum to " +
                                     std::to_string(e->n) + ", expected " + std::to_string(f.count));
    }
    if (f.bin_counts.size() != f.bin_edges.size() + 1) {
      return Status::InvalidArgument("drift profile: feature '" + f.name + "' has " +
                                     std::to_string(f.bin_counts.size()) + " bin counts for " +
                                     std::to_string(f.bin_edges.size()) + " edges");
    }
    d.reference_.push_back(std::move(e).value());
  }
  d.profile_ = std::move(profile);
  return d;
}

Result<DatasetDrift> DriftDetector::Compare(const MatrixView& current,
                                            std::span<const CategoricalColumn> categorical,
                                            const DriftOptions& options) const {
  if (current.cols != profile_.features.size()) {
    return Status::InvalidArgument("drift: data has " + std::to_string(current.cols) +
                                   " numeric features, the reference profile " +
                                   std::to_string(profile_.features.size()));
  }
  if (!categorical.empty() && categorical.size() != profile_.categorical.size()) {
    return Status::InvalidArgument("drift: data has " + std::to_string(categorical.size()) +
                                   " categorical features, the reference profile " +
                                   std::to_string(profile_.categorical.size()));
  }
  if (!(options.fdr > 0 && options.fdr < 1)) {
    return Status::InvalidArgument("drift: fdr must be in (0, 1) (got " + std::to_string(options.fdr) + ")");
  }
  DatasetDrift out;
  out.reference_rows = profile_.rows;
  out.current_rows = static_cast<int64_t>(current.cols ? current.rows
                                          : categorical.empty() ? 0 : categorical[0].codes.size());
  out.correction = options.correction;
  out.fdr = options.fdr;
  out.features.reserve(current.cols);
  GANTRY_RETURN_IF_ERROR(ForEachColumnEcdf(current, [&](size_t c, const Ecdf& cur) -> Status {
    const FeatureProfile& ref = profile_.features[c];
    FeatureDrift f;
    f.index = c;
    f.name = ref.name;
    auto ks = KsTwoSample(reference_[c], cur);
    if (!ks.ok()) return ks.status().WithContext("feature '" + ref.name + "'");
    f.ks = *ks;
    const std::vector<int64_t> bins = BinCounts(cur, ref.bin_edges);
    f.psi = Psi(ref.bin_counts, bins);
    f.js_distance = JensenShannonDistance(ref.bin_counts, bins);
    f.wasserstein = Wasserstein1(reference_[c], cur);
    if (ref.std_dev > 0) f.wasserstein_normed = f.wasserstein / ref.std_dev;
    out.features.push_back(std::move(f));
    return Status::Ok();
  }));
  for (size_t c = 0; c < categorical.size(); ++c) {
    const CategoricalProfile& ref = profile_.categorical[c];
    std::map<int64_t, int64_t> counts;
    for (int64_t code : categorical[c].codes) ++counts[code];
    CategoricalDrift cd;
    cd.index = c;
    cd.name = ref.name;
    cd.chi2 = ChiSquareHomogeneity(ref.counts, counts);
    out.categorical.push_back(std::move(cd));
  }

  std::vector<double> p;
  for (const FeatureDrift& f : out.features) p.push_back(f.ks.p_value);
  for (const CategoricalDrift& c : out.categorical) p.push_back(c.chi2.p_value);
  const std::vector<double> q = AdjustPValues(p, options.correction);
  out.tested = p.size();
  for (size_t i = 0; i < out.features.size(); ++i) {
    out.features[i].adjusted_p = q[i];
    out.features[i].drifted = q[i] <= options.fdr;
    out.drifted += out.features[i].drifted;
  }
  for (size_t i = 0; i < out.categorical.size(); ++i) {
    CategoricalDrift& c = out.categorical[i];
    c.adjusted_p = q[out.features.size() + i];
    c.drifted = c.adjusted_p <= options.fdr;
    out.drifted += c.drifted;
  }
  std::stable_sort(out.features.begin(), out.features.end(),
                   [](const FeatureDrift& a, const FeatureDrift& b) {
                     if (a.adjusted_p != b.adjusted_p) return a.adjusted_p < b.adjusted_p;
                     return a.ks.statistic > b.ks.statistic;
                   });
  std::stable_sort(out.categorical.begin(), out.categorical.end(),
                   [](const CategoricalDrift& a, const CategoricalDrift& b) {
                     if (a.adjusted_p != b.adjusted_p) return a.adjusted_p < b.adjusted_p;
                     const double sa = a.chi2.dof ? a.chi2.statistic / a.chi2.dof : 0;
                     const double sb = b.chi2.dof ? b.chi2.statistic / b.chi2.dof : 0;
                     return sa > sb;
                   });
  out.share = out.tested ? static_cast<double>(out.drifted) / static_cast<double>(out.tested) : 0;
  out.share_threshold = options.use_calibration && profile_.calibration
                            ? profile_.calibration->share_threshold
                            : options.share_threshold;
  out.dataset_drift = out.drifted > 0 && out.share >= out.share_threshold;
  return out;
}

}  // namespace gantry::drift
