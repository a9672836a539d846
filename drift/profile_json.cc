#include "drift/profile_json.h"

#include <cmath>
#include <string>
#include <utility>

namespace gantry::drift {
namespace {

using nlohmann::json;

Status Bad(const std::string& field, const std::string& want) {
  return Status::InvalidArgument("drift profile: " + field + " must be " + want);
}

Result<double> GetNumber(const json& o, const std::string& key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return Bad(path + key, "a number");
  return it->get<double>();
}

Result<int64_t> GetInt(const json& o, const std::string& key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return Bad(path + key, "an integer");
  return it->get<int64_t>();
}

Result<std::vector<double>> GetNumbers(const json& o, const std::string& key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_array()) return Bad(path + key, "an array of numbers");
  std::vector<double> v;
  v.reserve(it->size());
  for (const json& e : *it) {
    if (!e.is_number()) return Bad(path + key, "an array of numbers");
    v.push_back(e.get<double>());
  }
  return v;
}

Result<std::vector<int64_t>> GetInts(const json& o, const std::string& key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_array()) return Bad(path + key, "an array of integers");
  std::vector<int64_t> v;
  v.reserve(it->size());
  for (const json& e : *it) {
    if (!e.is_number_integer()) return Bad(path + key, "an array of integers");
    v.push_back(e.get<int64_t>());
  }
  return v;
}

json Num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

const char* CorrectionName(Correction c) {
  return c == Correction::kBonferroni ? "bonferroni" : "benjamini_hochberg";
}

}  // namespace

json EncodeProfile(const ReferenceProfile& p) {
  json j = {{"version", ReferenceProfile::kVersion},
            {"rows", p.rows},
            {"max_points", p.options.max_points},
            {"bins", p.options.bins}};
  json features = json::array();
  for (const FeatureProfile& f : p.features) {
    features.push_back({{"name", f.name},
                        {"count", f.count},
                        {"exact", f.exact},
                        {"values", f.values},
                        {"counts", f.counts},
                        {"mean", f.mean},
                        {"std", f.std_dev},
                        {"bin_edges", f.bin_edges},
                        {"bin_counts", f.bin_counts}});
  }
  j["features"] = std::move(features);
  json cats = json::array();
  for (const CategoricalProfile& c : p.categorical) {
    json counts = json::array();
    for (const auto& [code, n] : c.counts) counts.push_back({code, n});
    cats.push_back({{"name", c.name}, {"counts", std::move(counts)}});
  }
  j["categorical"] = std::move(cats);
  if (p.calibration) {
    const CalibrationInfo& c = *p.calibration;
    j["calibration"] = {{"share_threshold", c.share_threshold}, {"window_rows", c.window_rows},
                        {"windows", c.windows},                 {"check_windows", c.check_windows},
                        {"check_alarms", c.check_alarms},       {"false_alarm_rate", c.false_alarm_rate},
                        {"max_null_share", c.max_null_share},   {"seed", c.seed}};
  }
  return j;
}

Result<ReferenceProfile> DecodeProfile(const json& j) {
  if (!j.is_object()) return Bad("the profile", "an object");
  GANTRY_ASSIGN_OR_RETURN(int64_t version, GetInt(j, "version", ""));
  if (version != ReferenceProfile::kVersion) {
    return Status::InvalidArgument("drift profile: version " + std::to_string(version) +
                                   " is not supported (expected " +
                                   std::to_string(ReferenceProfile::kVersion) + ")");
  }
  ReferenceProfile p;
  GANTRY_ASSIGN_OR_RETURN(p.rows, GetInt(j, "rows", ""));
  GANTRY_ASSIGN_OR_RETURN(p.options.max_points, GetInt(j, "max_points", ""));
  GANTRY_ASSIGN_OR_RETURN(int64_t bins, GetInt(j, "bins", ""));
  if (p.rows < 0 || p.options.max_points < 2 || bins < 1 || bins > 100000) {
    return Bad("rows/max_points/bins", ">= 0, >= 2 and in [1, 100000]");
  }
  p.options.bins = static_cast<int>(bins);
  auto fit = j.find("features");
  if (fit == j.end() || !fit->is_array()) return Bad("features", "an array");
  for (size_t i = 0; i < fit->size(); ++i) {
    const json& o = (*fit)[i];
    const std::string path = "features[" + std::to_string(i) + "].";
    if (!o.is_object()) return Bad(path, "an object");
    FeatureProfile f;
    auto name = o.find("name");
    if (name == o.end() || !name->is_string()) return Bad(path + "name", "a string");
    f.name = name->get<std::string>();
    GANTRY_ASSIGN_OR_RETURN(f.count, GetInt(o, "count", path));
    auto exact = o.find("exact");
    if (exact == o.end() || !exact->is_boolean()) return Bad(path + "exact", "a boolean");
    f.exact = exact->get<bool>();
    GANTRY_ASSIGN_OR_RETURN(f.values, GetNumbers(o, "values", path));
    GANTRY_ASSIGN_OR_RETURN(f.counts, GetInts(o, "counts", path));
    GANTRY_ASSIGN_OR_RETURN(f.mean, GetNumber(o, "mean", path));
    GANTRY_ASSIGN_OR_RETURN(f.std_dev, GetNumber(o, "std", path));
    GANTRY_ASSIGN_OR_RETURN(f.bin_edges, GetNumbers(o, "bin_edges", path));
    GANTRY_ASSIGN_OR_RETURN(f.bin_counts, GetInts(o, "bin_counts", path));
    if (f.values.size() != f.counts.size() || static_cast<int64_t>(f.values.size()) > p.options.max_points) {
      return Bad(path + "values/counts", "of equal length, at most max_points");
    }
    if (f.bin_counts.size() != f.bin_edges.size() + 1) {
      return Bad(path + "bin_counts", "one longer than bin_edges");
    }
    p.features.push_back(std::move(f));
  }
  auto cit = j.find("categorical");
  if (cit == j.end() || !cit->is_array()) return Bad("categorical", "an array");
  for (size_t i = 0; i < cit->size(); ++i) {
    const json& o = (*cit)[i];
    const std::string path = "categorical[" + std::to_string(i) + "].";
    if (!o.is_object()) return Bad(path, "an object");
    CategoricalProfile c;
    auto name = o.find("name");
    if (name == o.end() || !name->is_string()) return Bad(path + "name", "a string");
    c.name = name->get<std::string>();
    auto counts = o.find("counts");
    if (counts == o.end() || !counts->is_array()) return Bad(path + "counts", "an array");
    for (const json& e : *counts) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number_integer() ||
          e[1].get<int64_t>() <= 0) {
        return Bad(path + "counts", "[code, count > 0] pairs");
      }
      c.counts[e[0].get<int64_t>()] += e[1].get<int64_t>();
    }
    p.categorical.push_back(std::move(c));
  }
  auto cal = j.find("calibration");
  if (cal != j.end() && !cal->is_null()) {
    if (!cal->is_object()) return Bad("calibration", "an object");
    CalibrationInfo c;
    GANTRY_ASSIGN_OR_RETURN(c.share_threshold, GetNumber(*cal, "share_threshold", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(c.window_rows, GetInt(*cal, "window_rows", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(int64_t windows, GetInt(*cal, "windows", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(int64_t check, GetInt(*cal, "check_windows", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(int64_t alarms, GetInt(*cal, "check_alarms", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(c.false_alarm_rate, GetNumber(*cal, "false_alarm_rate", "calibration."));
    GANTRY_ASSIGN_OR_RETURN(c.max_null_share, GetNumber(*cal, "max_null_share", "calibration."));
    auto seed = cal->find("seed");
    if (seed == cal->end() || !seed->is_number_unsigned()) return Bad("calibration.seed", "an unsigned integer");
    c.seed = seed->get<uint64_t>();
    c.windows = static_cast<int>(windows);
    c.check_windows = static_cast<int>(check);
    c.check_alarms = static_cast<int>(alarms);
    p.calibration = c;
  }
  return p;
}

json EncodeDrift(const DatasetDrift& d) {
  json features = json::array();
  for (const FeatureDrift& f : d.features) {
    features.push_back({{"index", f.index},
                        {"name", f.name},
                        {"ks_statistic", Num(f.ks.statistic)},
                        {"ks_p_value", Num(f.ks.p_value)},
                        {"ks_method", f.ks.method == KsMethod::kExact ? "exact" : "asymp"},
                        {"psi", Num(f.psi)},
                        {"js_distance", Num(f.js_distance)},
                        {"wasserstein", Num(f.wasserstein)},
                        {"wasserstein_normed", f.wasserstein_normed ? Num(*f.wasserstein_normed) : json(nullptr)},
                        {"adjusted_p", Num(f.adjusted_p)},
                        {"drifted", f.drifted}});
  }
  json cats = json::array();
  for (const CategoricalDrift& c : d.categorical) {
    cats.push_back({{"index", c.index},
                    {"name", c.name},
                    {"chi2_statistic", Num(c.chi2.statistic)},
                    {"chi2_dof", c.chi2.dof},
                    {"chi2_p_value", Num(c.chi2.p_value)},
                    {"adjusted_p", Num(c.adjusted_p)},
                    {"drifted", c.drifted}});
  }
  return {{"reference_rows", d.reference_rows}, {"current_rows", d.current_rows},
          {"tested", d.tested},                 {"drifted", d.drifted},
          {"share", Num(d.share)},              {"share_threshold", Num(d.share_threshold)},
          {"dataset_drift", d.dataset_drift},   {"correction", CorrectionName(d.correction)},
          {"fdr", d.fdr},                       {"features", std::move(features)},
          {"categorical", std::move(cats)}};
}

}  // namespace gantry::drift
