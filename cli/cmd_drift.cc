// gantry drift compare REF CUR | check MODEL@REF DATA: data drift, computed
// here in the CLI with the drift library (docs/monitor.md, "Drift
// statistics"; docs/cli.md). Datasets are read through the data library, in
// any format the worker trains on (drift/dataset_input.h). `check` fetches
// the reference profile stored with a checkpoint version from the storage
// service (load_checkpoint; the profile is the version's
// trainer/drift_profile tensor, drift/stored_profile.h).
//
// Exit codes: 0 no dataset drift, 2 dataset drift, 1 an error (so scripts and
// schedules can branch on the verdict).
#include <iostream>

#include "cli/commands.h"
#include "cli/render.h"
#include "drift/dataset_input.h"
#include "drift/detector.h"
#include "drift/profile_json.h"
#include "drift/stored_profile.h"

namespace gantry::cli {
namespace {

constexpr int kExitDrift = 2;

struct DriftOpts {
  std::string first;   // REF dataset or MODEL@REF
  std::string second;  // CUR dataset
  bool as_json = false;
  int64_t sample = 0;
  uint64_t seed = 1;
  std::string label_column = "label";
  int top = 20;
  double fdr = 0.05;
  bool bonferroni = false;
  bool calibrate = true;
  double threshold = 0;  // > 0: fixed share threshold, no calibration
};

std::string Num(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number()) return FormatNumber(v.get<double>());
  return v.dump();
}

void Render(const json& d, const std::string& what, int top) {
  const double share = d["share"].is_number() ? d["share"].get<double>() : 0;
  std::cout << what << ": " << d["reference_rows"] << " reference rows, " << d["current_rows"] << " current rows\n"
            << (d["dataset_drift"].get<bool>() ? "DATASET DRIFT" : "no dataset drift") << ": " << d["drifted"]
            << " of " << d["tested"] << " features drifted (" << FormatNumber(100 * share) << "%, threshold "
            << Num(d["share_threshold"]) << ", " << d["correction"].get<std::string>() << " at " << d["fdr"]
            << ")\n";
  if (const json* cal = d.contains("calibration") ? &d["calibration"] : nullptr; cal && cal->is_object()) {
    std::cout << "threshold calibrated on " << (*cal)["windows"] << " reference windows of " << (*cal)["window_rows"]
              << " rows; false alarms on " << (*cal)["check_windows"] << " fresh windows: " << (*cal)["check_alarms"]
              << "\n";
  }
  std::vector<std::vector<std::string>> rows;
  int shown = 0;
  for (const json& f : d["features"]) {
    if (shown++ == top) break;
    rows.push_back({f["name"].get<std::string>(), Num(f["ks_statistic"]), Num(f["ks_p_value"]), Num(f["adjusted_p"]),
                    Num(f["psi"]), Num(f["js_distance"]), Num(f["wasserstein"]), Num(f["wasserstein_normed"]),
                    f["drifted"].get<bool>() ? "yes" : "no"});
  }
  if (!rows.empty()) {
    std::cout << "\n"
              << FormatTable({"FEATURE", "KS", "KS_P", "ADJ_P", "PSI", "JS", "WASSERSTEIN", "W_NORMED", "DRIFTED"},
                             rows);
    const auto n = d["features"].size();
    if (n > rows.size()) std::cout << "(" << n - rows.size() << " more features; --top N or --json)\n";
  }
  rows.clear();
  for (const json& c : d["categorical"]) {
    rows.push_back({c["name"].get<std::string>(), Num(c["chi2_statistic"]), Num(c["chi2_dof"]),
                    Num(c["chi2_p_value"]), Num(c["adjusted_p"]), c["drifted"].get<bool>() ? "yes" : "no"});
  }
  if (!rows.empty()) {
    std::cout << "\n" << FormatTable({"CATEGORICAL", "CHI2", "DOF", "P", "ADJ_P", "DRIFTED"}, rows);
  }
}

drift::DriftOptions DetectorOptions(const DriftOpts& o) {
  drift::DriftOptions d;
  d.fdr = o.fdr;
  d.correction = o.bonferroni ? drift::Correction::kBonferroni : drift::Correction::kBenjaminiHochberg;
  if (o.threshold > 0) {
    d.share_threshold = o.threshold;
    d.use_calibration = false;
  }
  return d;
}

// Compares `current` with `profile` and prints; returns the exit code.
int CompareAndPrint(drift::ReferenceProfile profile, const drift::DriftData& current, const DriftOpts& o,
                    const std::string& what) {
  auto detector = drift::DriftDetector::Create(std::move(profile));
  if (!detector.ok()) return Fail(detector.status());
  const auto categorical = current.Categorical();
  auto result = detector->Compare(current.features.view(), categorical, DetectorOptions(o));
  if (!result.ok()) return Fail(result.status().WithContext(what));
  json j = drift::EncodeDrift(*result);
  const auto& cal = detector->profile().calibration;
  if (cal && o.threshold <= 0) {
    j["calibration"] = {{"share_threshold", cal->share_threshold}, {"window_rows", cal->window_rows},
                        {"windows", cal->windows},                 {"check_windows", cal->check_windows},
                        {"check_alarms", cal->check_alarms},       {"false_alarm_rate", cal->false_alarm_rate}};
  } else {
    j["calibration"] = nullptr;
  }
  if (o.as_json) {
    PrintJson(j);
  } else {
    Render(j, what, o.top);
  }
  return result->dataset_drift ? kExitDrift : 0;
}

Result<drift::DriftData> Read(const std::string& path, const DriftOpts& o) {
  drift::ReadOptions r;
  r.label_column = o.label_column;
  r.sample = o.sample;
  r.seed = o.seed;
  return drift::ReadDriftData(path, r);
}

int Compare(const DriftOpts& o) {
  drift::ReadOptions ref_opts;
  ref_opts.label_column = o.label_column;
  auto ref = drift::ReadDriftData(o.first, ref_opts);
  if (!ref.ok()) return Fail(ref.status().WithContext("reference"));
  auto cur = Read(o.second, o);
  if (!cur.ok()) return Fail(cur.status().WithContext("current"));
  if (ref->names != cur->names) {
    if (ref->features.cols != cur->features.cols) {
      return Fail(Status::InvalidArgument("reference has " + std::to_string(ref->features.cols) +
                                          " features, current " + std::to_string(cur->features.cols) +
                                          ": compare data of one kind"));
    }
  }
  drift::ReferenceOptions ro;
  ro.calibrate = o.calibrate && o.threshold <= 0;
  ro.calibration.window_rows = static_cast<int64_t>(cur->features.rows);
  ro.calibration.seed = o.seed;
  const auto ref_categorical = ref->Categorical();
  auto profile = drift::BuildReferenceProfile(ref->features.view(), ref->names, ref_categorical, ro);
  if (!profile.ok()) return Fail(profile.status().WithContext("reference " + o.first));
  if (cur->labels.empty() && !ref->labels.empty()) profile->categorical.clear();
  return CompareAndPrint(std::move(profile).value(), *cur, o, o.second + " vs " + o.first);
}

int Check(Context& ctx, const DriftOpts& o) {
  auto [model, ref] = SplitRef(o.first);
  auto reply = ctx.Call(kStorage, "load_checkpoint", {{"model", model}, {"ref", ref}, {"include", "all"}},
                        std::chrono::seconds(120));
  if (!reply.ok()) return Fail(reply.status());
  const std::string source = model + "@v" + std::to_string(reply->value("version", int64_t{0}));
  auto profile = drift::ProfileFromCheckpointReply(*reply, source);
  if (!profile.ok()) return Fail(profile.status());
  auto cur = Read(o.second, o);
  if (!cur.ok()) return Fail(cur.status().WithContext("current"));
  if (cur->features.cols != profile->features.size()) {
    return Fail(Status::InvalidArgument(o.second + " has " + std::to_string(cur->features.cols) +
                                        " features, the profile of " + source + " " +
                                        std::to_string(profile->features.size())));
  }
  if (cur->labels.empty()) profile->categorical.clear();
  return CompareAndPrint(std::move(profile).value(), *cur, o, o.second + " vs " + source);
}

void AddCommon(CLI::App* cmd, DriftOpts& o) {
  cmd->add_flag("--json", o.as_json, "Every feature's statistics and the verdict as JSON");
  cmd->add_option("--sample", o.sample, "Compare N rows of the current data drawn at random (0: all)");
  cmd->add_option("--seed", o.seed, "Seed of --sample and of the calibration windows");
  cmd->add_option("--label-column", o.label_column, "CSV label column");
  cmd->add_option("--top", o.top, "Features listed in the table (most drifted first)");
  cmd->add_option("--fdr", o.fdr, "False discovery rate of the per-feature tests (Benjamini-Hochberg)");
  cmd->add_flag("--bonferroni", o.bonferroni, "Bonferroni instead of Benjamini-Hochberg");
  cmd->add_option("--threshold", o.threshold,
                  "Fixed share of drifted features that is dataset drift (default: calibrated on the reference)");
}

}  // namespace

void AddDriftCommands(CLI::App& app, Context& ctx, Action& action) {
  auto o = std::make_shared<DriftOpts>();
  auto* drift = app.add_subcommand("drift", "Data drift between datasets, or against a checkpoint's reference profile");
  drift->require_subcommand(1);
  auto* compare = drift->add_subcommand("compare", "Compare dataset CUR with dataset REF, feature by feature");
  compare->add_option("REF", o->first, "Reference dataset (shard directory, CSV, IDX images or IMAGES,LABELS)")
      ->required();
  compare->add_option("CUR", o->second, "Current dataset, same kind")->required();
  AddCommon(compare, *o);
  compare->add_flag("!--no-calibrate", o->calibrate, "Skip calibrating the threshold on the reference");
  compare->callback([&action, o] { action = [o] { return Compare(*o); }; });
  auto* check = drift->add_subcommand("check", "Compare DATA with the reference profile stored with MODEL@REF");
  check->add_option("MODEL@REF", o->first, "Checkpoint version (REF: vN, an alias or latest)")->required();
  check->add_option("DATA", o->second, "Dataset to check")->required();
  AddCommon(check, *o);
  check->callback([&ctx, &action, o] { action = [&ctx, o] { return Check(ctx, *o); }; });
}

}  // namespace gantry::cli
