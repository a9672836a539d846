#include "monitor/serving_drift.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <zmq.hpp>

#include "common/rpc.h"
#include "drift/profile_json.h"
#include "drift/statistics.h"
#include "drift/stored_profile.h"

namespace gantry::monitor {
namespace {

constexpr size_t kRecentKept = 200;

constexpr char kSchema[] = R"(
CREATE TABLE IF NOT EXISTS serving_drift_results (
  id INTEGER PRIMARY KEY,
  dataset TEXT NOT NULL,
  deployment TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  window_index INTEGER NOT NULL,
  time REAL NOT NULL,
  share REAL NOT NULL,
  drifted INTEGER NOT NULL,
  tested INTEGER NOT NULL,
  dataset_drift INTEGER NOT NULL,
  share_threshold REAL NOT NULL,
  rows INTEGER NOT NULL,
  features TEXT NOT NULL
);)";

std::string WindowName(const std::string& version, int64_t index) {
  return "v" + version + " window " + std::to_string(index);
}

}  // namespace

std::string ServingDriftSource(const std::string& deployment, const std::string& model) {
  return "serving:" + deployment + "/" + model;
}

ProfileFetch StorageProfileFetch(DataDir dir) {
  return [dir](const std::string& model, const std::string& version) -> Result<drift::ReferenceProfile> {
    GANTRY_ASSIGN_OR_RETURN(std::string endpoint, dir.Endpoint(kStorage, "api"));
    zmq::context_t ctx(1);
    RpcClient client(ctx, endpoint, std::chrono::seconds(60));
    // The weights come along (include: model); not the optimizer state.
    GANTRY_ASSIGN_OR_RETURN(
        json reply,
        client.Call("load_checkpoint",
                    {{"model", model},
                     {"ref", "v" + version},
                     {"include", "model"},
                     {"also", json::array({drift::kProfileTensorName, drift::kEvalPredictionsTensorName})}}));
    return drift::ProfileFromCheckpointReply(reply, model + "@v" + version);
  };
}

ServingDrift::ServingDrift(ServingDriftOptions options, sql::Db db, ProfileFetch fetch, const Clock& clock,
                           OnResult on_result)
    : options_(options), db_(std::move(db)), fetch_(std::move(fetch)), clock_(clock), on_result_(std::move(on_result)) {}

Result<std::unique_ptr<ServingDrift>> ServingDrift::Create(ServingDriftOptions options, const std::string& db_path,
                                                           ProfileFetch fetch, const Clock& clock, OnResult on_result) {
  if (options.window_rows < 2) {
    return Status::InvalidArgument("--serving-drift-window must be >= 2 rows (got " +
                                   std::to_string(options.window_rows) + "); the profile is calibrated on 1000");
  }
  if (options.max_queued_rows < static_cast<size_t>(options.window_rows)) {
    options.max_queued_rows = static_cast<size_t>(options.window_rows);
  }
  if (!fetch) return Status::InvalidArgument("serving drift: no profile source");
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(db_path));
  GANTRY_RETURN_IF_ERROR(db.Exec(kSchema).WithContext(db_path));
  std::unique_ptr<ServingDrift> d(
      new ServingDrift(options, std::move(db), std::move(fetch), clock, std::move(on_result)));
  GANTRY_ASSIGN_OR_RETURN(sql::Statement q,
                          d->db_.Prepare("SELECT id, dataset, deployment, model, version, window_index, time, share, "
                                         "drifted, tested, dataset_drift, share_threshold, rows, features "
                                         "FROM serving_drift_results ORDER BY id DESC"));
  while (true) {
    GANTRY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    DriftRecord r;
    r.id = q.ColumnInt(0);
    r.dataset = q.ColumnText(1);
    r.deployment = q.ColumnText(2);
    r.model = q.ColumnText(3);
    r.version = q.ColumnText(4);
    const int64_t index = q.ColumnInt(5);
    r.file = WindowName(r.version, index);
    r.time = q.ColumnDouble(6);
    r.share = q.ColumnDouble(7);
    r.drifted = q.ColumnInt(8);
    r.tested = q.ColumnInt(9);
    r.dataset_drift = q.ColumnInt(10) != 0;
    r.share_threshold = q.ColumnDouble(11);
    r.rows = q.ColumnInt(12);
    r.features_json = q.ColumnText(13);
    // Window numbers continue after a restart.
    Window& w = d->windows_[{r.deployment, r.model, r.version}];
    w.next_index = std::max(w.next_index, index + 1);
    if (d->recent_.size() < kRecentKept) d->recent_.push_back(std::move(r));
  }
  return d;
}

ServingDrift::~ServingDrift() { Stop(); }

void ServingDrift::OnMessage(const IngestMessage& msg) {
  const auto* s = std::get_if<ServingSamplesMessage>(&msg.record);
  if (s == nullptr) return;
  {
    std::lock_guard lock(mu_);
    stats_.rows_received += s->rows();
    if (queued_rows_ + s->rows() > options_.max_queued_rows) {
      stats_.rows_dropped += s->rows();
      return;
    }
    queued_rows_ += s->rows();
    queue_.push_back(*s);
  }
  cv_.notify_one();
}

void ServingDrift::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ServingDrift::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ServingDrift::Run() {
  std::string last_error;
  while (true) {
    {
      std::unique_lock lock(mu_);
      // Wake for samples, and every few seconds for profile retries.
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
    }
    Status s = ProcessQueued();
    if (!s.ok() && s.ToString() != last_error) spdlog::warn("serving drift: {}", s.ToString());
    last_error = s.ok() ? "" : s.ToString();
  }
}

const drift::DriftDetector* ServingDrift::DetectorFor(const std::string& model, const std::string& version) {
  Profile& p = profiles_[{model, version}];
  if (p.detector) return &*p.detector;
  if (p.permanent || (!p.error.empty() && clock_.WallSeconds() < p.retry_at)) return nullptr;
  Result<drift::DriftDetector> det = [&]() -> Result<drift::DriftDetector> {
    GANTRY_ASSIGN_OR_RETURN(drift::ReferenceProfile profile, fetch_(model, version));
    return drift::DriftDetector::Create(std::move(profile));
  }();
  if (det.ok()) {
    p.detector.emplace(std::move(det).value());
    p.error.clear();
    spdlog::info("serving drift: profile of {}@v{}: {} features, threshold {}", model, version,
                 p.detector->profile().features.size(),
                 p.detector->profile().calibration ? p.detector->profile().calibration->share_threshold : 0.0);
    return &*p.detector;
  }
  p.error = det.status().ToString();
  p.permanent = det.status().code() == StatusCode::kNotFound || det.status().code() == StatusCode::kInvalidArgument;
  p.retry_at = clock_.WallSeconds() + options_.profile_retry_seconds;
  spdlog::warn("serving drift: no profile for {}@v{}{}: {}", model, version,
               p.permanent ? "" : " (retried in " + std::to_string(options_.profile_retry_seconds) + " s)", p.error);
  return nullptr;
}

Status ServingDrift::ProcessQueued() {
  std::deque<ServingSamplesMessage> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
    queued_rows_ = 0;
  }
  Status first = Status::Ok();
  for (ServingSamplesMessage& s : batch) {
    const Key key{s.deployment, s.model, s.version};
    Window& w = windows_[key];
    if (w.row_size != s.row_size) {
      // Another width (a new model behind the same version name): start over.
      w.row_size = s.row_size;
      w.inputs.clear();
      w.predictions.clear();
    }
    size_t done = 0;
    while (done < s.rows()) {
      const size_t room = static_cast<size_t>(options_.window_rows) - w.predictions.size();
      const size_t take = std::min(room, s.rows() - done);
      const auto row_size = static_cast<size_t>(s.row_size);
      w.inputs.insert(w.inputs.end(), s.inputs.begin() + static_cast<std::ptrdiff_t>(done * row_size),
                      s.inputs.begin() + static_cast<std::ptrdiff_t>((done + take) * row_size));
      w.predictions.insert(w.predictions.end(), s.predictions.begin() + static_cast<std::ptrdiff_t>(done),
                           s.predictions.begin() + static_cast<std::ptrdiff_t>(done + take));
      done += take;
      if (w.predictions.size() >= static_cast<size_t>(options_.window_rows)) {
        Status c = CheckWindow(key, w);
        if (!c.ok() && first.ok()) first = c;
        w.inputs.clear();
        w.predictions.clear();
      }
    }
  }
  return first;
}

Status ServingDrift::CheckWindow(const Key& key, Window& w) {
  const auto& [deployment, model, version] = key;
  const int64_t index = w.next_index++;
  const drift::DriftDetector* det = DetectorFor(model, version);
  const size_t cols = static_cast<size_t>(w.row_size);
  if (det != nullptr && det->profile().features.size() != cols) {
    const std::string why = model + "@v" + version + ": samples have " + std::to_string(cols) +
                            " features, the profile " + std::to_string(det->profile().features.size());
    if (logged_.insert(why).second) spdlog::warn("serving drift: {}; windows skipped", why);
    det = nullptr;
  }
  if (det == nullptr) {
    std::lock_guard lock(mu_);
    ++stats_.windows_skipped;
    return Status::Ok();
  }
  const size_t rows = w.predictions.size();
  const drift::MatrixView view = drift::MatrixView::Of(std::span<const float>(w.inputs), rows, cols);
  GANTRY_ASSIGN_OR_RETURN(drift::DatasetDrift result, det->Compare(view));
  json all = drift::EncodeDrift(result);
  json top = json::array();
  for (const json& f : all["features"]) {
    if (top.size() >= static_cast<size_t>(options_.top_features)) break;
    top.push_back(f);
  }
  // The predicted classes against what this version predicted on its
  // evaluation set or, for versions saved without that, the training labels.
  const drift::CategoricalProfile* reference = nullptr;
  if (det->profile().predictions) reference = &*det->profile().predictions;
  for (const drift::CategoricalProfile& c : det->profile().categorical) {
    if (reference == nullptr && c.name == "label") reference = &c;
  }
  if (reference != nullptr) {
    std::map<int64_t, int64_t> counts;
    for (int64_t p : w.predictions) ++counts[p];
    const drift::ChiSquareResult chi = drift::ChiSquareHomogeneity(reference->counts, counts);
    json pc = {{"name", "predicted_class"},
               {"reference", det->profile().predictions ? "eval_predictions" : "label"},
               {"chi2_statistic", chi.statistic},
               {"chi2_dof", chi.dof},
               {"chi2_p_value", chi.p_value},
               {"drifted", chi.dof > 0 && chi.p_value <= 0.05}};
    json dist = json::object();
    for (const auto& [cls, n] : counts) dist[std::to_string(cls)] = static_cast<double>(n) / static_cast<double>(rows);
    pc["distribution"] = std::move(dist);
    top.push_back(std::move(pc));
  }
  DriftRecord r;
  r.dataset = ServingDriftSource(deployment, model);
  r.file = WindowName(version, index);
  r.time = clock_.WallSeconds();
  r.share = result.share;
  r.drifted = static_cast<int64_t>(result.drifted);
  r.tested = static_cast<int64_t>(result.tested);
  r.dataset_drift = result.dataset_drift;
  r.share_threshold = result.share_threshold;
  r.rows = static_cast<int64_t>(rows);
  r.features_json = top.dump(-1, ' ', false, json::error_handler_t::replace);
  r.deployment = deployment;
  r.model = model;
  r.version = version;
  GANTRY_RETURN_IF_ERROR(Store(r));
  spdlog::info("serving drift {}@v{}: {}: {} of {} features drifted ({:.1f}%){}", r.dataset, version, r.file,
               r.drifted, r.tested, 100 * r.share, r.dataset_drift ? ": DRIFT" : "");
  if (on_result_) on_result_(r);
  return Status::Ok();
}

Status ServingDrift::Store(DriftRecord& r) {
  GANTRY_ASSIGN_OR_RETURN(sql::Statement st,
                          db_.Prepare("INSERT INTO serving_drift_results (dataset, deployment, model, version, "
                                      "window_index, time, share, drifted, tested, dataset_drift, share_threshold, rows, "
                                      "features) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  const int64_t index = windows_[{r.deployment, r.model, r.version}].next_index - 1;
  st.Bind(1, r.dataset).Bind(2, r.deployment).Bind(3, r.model).Bind(4, r.version).Bind(5, index);
  st.Bind(6, r.time).Bind(7, r.share).Bind(8, r.drifted).Bind(9, r.tested);
  st.Bind(10, int64_t{r.dataset_drift ? 1 : 0}).Bind(11, r.share_threshold).Bind(12, r.rows).Bind(13, r.features_json);
  GANTRY_RETURN_IF_ERROR(st.Run().WithContext("drift.db"));
  r.id = db_.LastInsertRowId();
  std::lock_guard lock(mu_);
  ++stats_.windows_checked;
  recent_.insert(recent_.begin(), r);
  if (recent_.size() > kRecentKept) recent_.pop_back();
  return Status::Ok();
}

std::vector<DriftRecord> ServingDrift::Recent(size_t limit) const {
  std::lock_guard lock(mu_);
  const auto n = static_cast<std::ptrdiff_t>(std::min(limit, recent_.size()));
  return std::vector<DriftRecord>(recent_.begin(), recent_.begin() + n);
}

ServingDriftStats ServingDrift::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace gantry::monitor
