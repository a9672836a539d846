#include "monitor/drift_watcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <zmq.hpp>

#include "common/rpc.h"
#include "data/shard_dataset.h"
#include "drift/dataset_input.h"
#include "drift/profile_json.h"
#include "drift/stored_profile.h"

namespace gantry::monitor {
namespace {

constexpr size_t kRecentKept = 200;

constexpr char kSchema[] = R"(
CREATE TABLE IF NOT EXISTS drift_results (
  id INTEGER PRIMARY KEY,
  dataset TEXT NOT NULL,
  file TEXT NOT NULL,
  time REAL NOT NULL,
  share REAL NOT NULL,
  drifted INTEGER NOT NULL,
  tested INTEGER NOT NULL,
  dataset_drift INTEGER NOT NULL,
  share_threshold REAL NOT NULL,
  rows INTEGER NOT NULL,
  features TEXT NOT NULL,
  UNIQUE (dataset, file)
);)";

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool IsModelRef(const std::string& ref) {
  std::error_code ec;
  return ref.find('@') != std::string::npos && !std::filesystem::exists(ref, ec);
}

}  // namespace

DriftWatcher::DriftWatcher(DriftWatchOptions options, DataDir dir, OnResult on_result, sql::Db db)
    : options_(std::move(options)), dir_(std::move(dir)), on_result_(std::move(on_result)), db_(std::move(db)) {}

Result<std::unique_ptr<DriftWatcher>> DriftWatcher::Create(DriftWatchOptions options, DataDir dir,
                                                           OnResult on_result) {
  if (options.dir.empty()) return Status::InvalidArgument("--drift-watch needs a directory");
  if (options.reference.empty()) {
    return Status::InvalidArgument("--drift-watch needs --drift-reference (a dataset path or MODEL@VERSION)");
  }
  if (options.interval_seconds <= 0) return Status::InvalidArgument("--drift-interval must be > 0");
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(dir.Path("drift.db")));
  GANTRY_RETURN_IF_ERROR(db.Exec(kSchema).WithContext("drift.db"));
  std::unique_ptr<DriftWatcher> w(new DriftWatcher(std::move(options), std::move(dir), std::move(on_result),
                                                   std::move(db)));
  GANTRY_ASSIGN_OR_RETURN(sql::Statement q,
                          w->db_.Prepare("SELECT id, dataset, file, time, share, drifted, tested, dataset_drift, "
                                         "share_threshold, rows, features FROM drift_results ORDER BY id DESC"));
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    DriftRecord r{q.ColumnInt(0),    q.ColumnText(1),        q.ColumnText(2), q.ColumnDouble(3),
                  q.ColumnDouble(4), q.ColumnInt(5),         q.ColumnInt(6),  q.ColumnInt(7) != 0,
                  q.ColumnDouble(8), q.ColumnInt(9),         q.ColumnText(10), "", "", ""};
    if (r.dataset == w->options_.dir) w->done_.insert(r.file);
    if (w->recent_.size() < kRecentKept) w->recent_.push_back(std::move(r));
  }
  return w;
}

DriftWatcher::~DriftWatcher() { Stop(); }

void DriftWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DriftWatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DriftWatcher::Run() {
  std::string last_error;
  while (true) {
    Status s = ScanOnce();
    if (!s.ok() && s.ToString() != last_error) spdlog::warn("drift watch {}: {}", options_.dir, s.ToString());
    last_error = s.ok() ? "" : s.ToString();
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::duration<double>(options_.interval_seconds), [this] { return stop_; })) {
      return;
    }
  }
}

Status DriftWatcher::LoadReference() {
  drift::ReferenceProfile profile;
  if (IsModelRef(options_.reference)) {
    const auto at = options_.reference.find('@');
    const std::string model = options_.reference.substr(0, at), ref = options_.reference.substr(at + 1);
    GANTRY_ASSIGN_OR_RETURN(std::string endpoint, dir_.Endpoint(kStorage, "api"));
    zmq::context_t ctx(1);
    json reply;
    {
      RpcClient client(ctx, endpoint, std::chrono::seconds(60));
      GANTRY_ASSIGN_OR_RETURN(reply, client.Call("load_checkpoint", {{"model", model},
                                                                {"ref", ref},
                                                                {"include", "model"},
                                                                {"also", json::array({drift::kProfileTensorName})}}));
    }
    GANTRY_ASSIGN_OR_RETURN(profile, drift::ProfileFromCheckpointReply(reply, options_.reference));
  } else {
    GANTRY_ASSIGN_OR_RETURN(drift::DriftData d, drift::ReadDriftData(options_.reference));
    drift::ReferenceOptions ro;
    ro.calibration.window_rows = options_.window_rows;
    const auto categorical = d.Categorical();
    GANTRY_ASSIGN_OR_RETURN(profile, drift::BuildReferenceProfile(d.features.view(), d.names, categorical, ro));
  }
  GANTRY_ASSIGN_OR_RETURN(drift::DriftDetector det, drift::DriftDetector::Create(std::move(profile)));
  spdlog::info("drift watch {}: reference {} ({} rows, {} features, threshold {})", options_.dir,
               options_.reference, det.profile().rows, det.profile().features.size(),
               det.profile().calibration ? det.profile().calibration->share_threshold : 0.0);
  detector_.emplace(std::move(det));
  return Status::Ok();
}

Status DriftWatcher::ScanOnce() {
  if (!detector_) {
    GANTRY_RETURN_IF_ERROR(LoadReference().WithContext("reference " + options_.reference));
  }
  GANTRY_ASSIGN_OR_RETURN(data::ShardListing listing, data::ListShards(options_.dir));
  for (const data::Shard& shard : listing.shards) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return Status::Ok();
      if (done_.contains(shard.name)) continue;
    }
    std::string path = options_.dir + "/" + shard.files[0];
    if (shard.files.size() == 2) path += "," + options_.dir + "/" + shard.files[1];
    auto check = [&]() -> Result<drift::DatasetDrift> {
      GANTRY_ASSIGN_OR_RETURN(drift::DriftData data, drift::ReadDriftData(path));
      if (data.features.cols != detector_->profile().features.size()) {
        return Status::InvalidArgument(std::to_string(data.features.cols) + " features, the reference has " +
                                       std::to_string(detector_->profile().features.size()));
      }
      const auto categorical = detector_->profile().categorical.empty() ? std::vector<drift::CategoricalColumn>{}
                                                                         : data.Categorical();
      return detector_->Compare(data.features.view(), categorical);
    };
    Result<drift::DatasetDrift> result = check();
    if (!result.ok()) {
      if (failed_.insert(shard.name).second) {
        spdlog::warn("drift watch {}: shard {}: {}", options_.dir, shard.name, result.status().ToString());
      }
      continue;
    }
    json all = drift::EncodeDrift(*result);
    json top = json::array();
    for (const json& f : all["features"]) {
      if (top.size() >= static_cast<size_t>(options_.top_features)) break;
      top.push_back(f);
    }
    for (const json& c : all["categorical"]) top.push_back(c);
    DriftRecord r{0, options_.dir, shard.name, Now(), result->share, static_cast<int64_t>(result->drifted),
                  static_cast<int64_t>(result->tested), result->dataset_drift, result->share_threshold,
                  result->current_rows, top.dump(-1, ' ', false, json::error_handler_t::replace), "", "", ""};
    GANTRY_RETURN_IF_ERROR(Store(r));
    spdlog::info("drift watch {}: {}: {} of {} features drifted ({:.1f}%){}", options_.dir, shard.name, r.drifted,
                 r.tested, 100 * r.share, r.dataset_drift ? ": DATASET DRIFT" : "");
    if (on_result_) on_result_(r);
  }
  return Status::Ok();
}

Status DriftWatcher::Store(DriftRecord& r) {
  GANTRY_ASSIGN_OR_RETURN(sql::Statement st,
                          db_.Prepare("INSERT OR REPLACE INTO drift_results (dataset, file, time, share, drifted, "
                                      "tested, dataset_drift, share_threshold, rows, features) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.Bind(1, r.dataset).Bind(2, r.file).Bind(3, r.time).Bind(4, r.share).Bind(5, r.drifted).Bind(6, r.tested);
  st.Bind(7, int64_t{r.dataset_drift ? 1 : 0}).Bind(8, r.share_threshold).Bind(9, r.rows).Bind(10, r.features_json);
  GANTRY_RETURN_IF_ERROR(st.Run().WithContext("drift.db"));
  r.id = db_.LastInsertRowId();
  std::lock_guard lock(mu_);
  done_.insert(r.file);
  recent_.insert(recent_.begin(), r);
  if (recent_.size() > kRecentKept) recent_.pop_back();
  return Status::Ok();
}

std::vector<DriftRecord> DriftWatcher::Recent(size_t limit) const {
  std::lock_guard lock(mu_);
  const auto n = static_cast<std::ptrdiff_t>(std::min(limit, recent_.size()));
  return std::vector<DriftRecord>(recent_.begin(), recent_.begin() + n);
}

}  // namespace gantry::monitor
