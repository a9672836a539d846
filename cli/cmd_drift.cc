// gantry drift compare REF CUR | check MODEL@REF DATA: data drift, computed
// here in the CLI with the drift library (docs/monitor.md, "Drift
// statistics"; docs/cli.md). Datasets are read through the data library, in
// any format the worker trains on (drift/dataset_input.h). `check` fetches
// the reference profile stored with a checkpoint version from the storage
// service (load_checkpoint; the profile is the version's
// trainer/drift_profile tensor, drift/stored_profile.h).
//
// When the version also recorded its predictions on its evaluation set
// (trainer/eval_predictions), `check` runs the version's model on DATA and
// compares the predicted classes with those (chi-square homogeneity):
// "predictions" in --json, a line under the tables. It is reported beside
// the dataset verdict, not part of it.
//
// Exit codes: 0 no dataset drift, 2 dataset drift, 1 an error (so scripts and
// schedules can branch on the verdict).
#include <torch/torch.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/render.h"
#include "drift/dataset_input.h"
#include "drift/detector.h"
#include "drift/profile_json.h"
#include "drift/statistics.h"
#include "drift/stored_profile.h"
#include "model/checkpoint_model.h"
#include "model/tensor_wire.h"

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
  if (const json* p = d.contains("predictions") ? &d["predictions"] : nullptr; p && p->is_object()) {
    std::cout << "\npredicted classes vs the version's on its evaluation set: chi2 " << Num((*p)["chi2_statistic"])
              << ", dof " << Num((*p)["chi2_dof"]) << ", p " << Num((*p)["chi2_p_value"]) << ": "
              << ((*p)["drifted"].get<bool>() ? "PREDICTION DRIFT" : "no prediction drift") << "\n";
  }
}

// Class -> share of `counts`, as JSON.
json Distribution(const std::map<int64_t, int64_t>& counts) {
  int64_t total = 0;
  for (const auto& [cls, n] : counts) total += n;
  json d = json::object();
  for (const auto& [cls, n] : counts) d[std::to_string(cls)] = static_cast<double>(n) / static_cast<double>(total);
  return d;
}

// The version's predicted classes on `data` (rows in the space it trained
// on: data/ normalises IDX pixels as the worker does) against its
// predictions on its evaluation set.
Result<json> PredictionDrift(const json& reply, const drift::CategoricalProfile& reference,
                             const drift::DriftData& data, const std::string& source) {
  GANTRY_ASSIGN_OR_RETURN(model::ModelManifest manifest,
                          model::ManifestFromMeta(reply.value("meta", json::object()), source));
  GANTRY_ASSIGN_OR_RETURN(model::TensorMap weights,
                          model::TensorsFromJson(reply.value("tensors", json::array()),
                                                 [](const std::string& name) { return model::IsWeightName(name); }));
  GANTRY_ASSIGN_OR_RETURN(std::unique_ptr<model::Model> net, model::ModelFromCheckpoint(manifest, weights, source));
  const drift::MatrixView v = data.features.view();
  if (v.type != drift::ElementType::kFloat32) return Status::Internal("drift data: expected float32 features");
  std::vector<int64_t> shape = {0};
  int64_t per_sample = 1;
  for (int64_t d : manifest.input_shape) {
    shape.push_back(d);
    per_sample *= d;
  }
  if (manifest.input_shape.empty() || per_sample != static_cast<int64_t>(v.cols)) {
    return Status::InvalidArgument(source + " takes samples of " + std::to_string(per_sample) + " values, the data has " +
                                   std::to_string(v.cols) + " features");
  }
  const auto rows = static_cast<int64_t>(v.rows);
  const torch::Tensor all =
      torch::from_blob(const_cast<void*>(v.data), {rows, static_cast<int64_t>(v.cols)}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  std::map<int64_t, int64_t> counts;
  constexpr int64_t kBatch = 4096;
  for (int64_t i = 0; i < rows; i += kBatch) {
    shape[0] = std::min(kBatch, rows - i);
    GANTRY_ASSIGN_OR_RETURN(torch::Tensor logits, net->Forward(all.narrow(0, i, shape[0]).reshape(shape)));
    const torch::Tensor cls = logits.argmax(1).to(torch::kCPU).contiguous();
    const int64_t* p = cls.data_ptr<int64_t>();
    for (int64_t k = 0; k < cls.numel(); ++k) ++counts[p[k]];
  }
  const drift::ChiSquareResult chi = drift::ChiSquareHomogeneity(reference.counts, counts);
  return json{{"name", "predicted_class"},
              {"reference", "eval_predictions"},
              {"chi2_statistic", chi.statistic},
              {"chi2_dof", chi.dof},
              {"chi2_p_value", chi.p_value},
              {"drifted", chi.dof > 0 && chi.p_value <= 0.05},
              {"distribution", Distribution(counts)},
              {"reference_distribution", Distribution(reference.counts)}};
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

// Compares `current` with `profile` and prints (with `predictions`, when an
// object, as "predictions"); returns the exit code.
int CompareAndPrint(drift::ReferenceProfile profile, const drift::DriftData& current, const DriftOpts& o,
                    const std::string& what, json predictions = nullptr) {
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
  j["predictions"] = std::move(predictions);
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
  // The weights (to predict), the profile and the evaluation's predictions;
  // not the optimizer state.
  auto reply = ctx.Call(kStorage, "load_checkpoint",
                        {{"model", model},
                         {"ref", ref},
                         {"include", "model"},
                         {"also", json::array({drift::kProfileTensorName, drift::kEvalPredictionsTensorName})}},
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
  json predictions = nullptr;
  if (profile->predictions) {
    auto p = PredictionDrift(*reply, *profile->predictions, *cur, source);
    if (!p.ok()) return Fail(p.status().WithContext("predicting " + o.second + " with " + source));
    predictions = std::move(p).value();
  }
  return CompareAndPrint(std::move(profile).value(), *cur, o, o.second + " vs " + source, std::move(predictions));
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
