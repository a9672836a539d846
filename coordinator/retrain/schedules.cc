#include "coordinator/retrain/schedules.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace gantry::coordinator {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Names a producer is still writing (shard_dataset.h's rules).
bool InProgress(const std::string& name) {
  if (name.empty() || name[0] == '.' || name[0] == '_') return true;
  for (const char* s : {".tmp", ".part", ".partial", "~"}) {
    if (EndsWith(name, s)) return true;
  }
  return false;
}

int64_t CountSamples(const fs::path& path, const std::string& name) {
  if (EndsWith(name, ".csv")) {
    std::ifstream in(path, std::ios::binary);
    int64_t lines = 0;
    bool last_newline = true;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const std::streamsize n = in.gcount();
      lines += std::count(buf, buf + n, '\n');
      last_newline = buf[n - 1] == '\n';
    }
    if (!last_newline) ++lines;
    return std::max<int64_t>(0, lines - 1);  // the header
  }
  if (EndsWith(name, "-labels-idx1-ubyte")) {
    std::ifstream in(path, std::ios::binary);
    unsigned char h[8];
    if (!in.read(reinterpret_cast<char*>(h), 8) || h[2] != 0x08 || h[3] != 0x01) return 0;
    return (int64_t{h[4]} << 24) | (int64_t{h[5]} << 16) | (int64_t{h[6]} << 8) | int64_t{h[7]};
  }
  return 0;
}

// A stable request id for run `n` of a schedule (8..64 of [0-9A-Za-z_-]).
std::string RunRequestId(const ScheduleRecord& r, int64_t n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  const std::string key = r.spec.name + "|" + std::to_string(r.created_at);
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  char buf[64];
  std::snprintf(buf, sizeof buf, "retrain-%016llx-%lld", static_cast<unsigned long long>(h),
                static_cast<long long>(n));
  return buf;
}

// The held-out scores in a version's metrics: test_X (the trained model) or
// champion_test_X (the champion), under both X and test_X.
std::optional<EvalScores> HeldOutScores(const SavedVersion& v, const std::string& prefix, int64_t version) {
  EvalScores s;
  s.version = version;
  for (const auto& [name, value] : v.metrics) {
    if (name.rfind(prefix + "test_", 0) != 0) continue;
    const std::string test_name = name.substr(prefix.size());
    s.metrics[test_name] = value;
    s.metrics[test_name.substr(5)] = value;
  }
  if (s.metrics.empty()) return std::nullopt;
  return s;
}

}  // namespace

Result<std::vector<DataFile>> ListDataFiles(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::Unavailable("triggers.new_data.dir " + dir + ": cannot list it: " + ec.message());
  std::vector<DataFile> out;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (InProgress(name) || !entry.is_regular_file(ec)) continue;
    out.push_back({name, CountSamples(entry.path(), name)});
  }
  std::sort(out.begin(), out.end(), [](const DataFile& a, const DataFile& b) { return a.name < b.name; });
  return out;
}

JobSpec CoordinatorRetrainPorts::RunJob(const ScheduleSpec& spec, const RunPlan& plan, int64_t run_number) {
  JobSpec job = spec.job;
  job.checkpoint.model = spec.model;
  if (plan.champion_version) {
    const std::string ref = spec.model + "@v" + std::to_string(*plan.champion_version);
    job.warm_start = ref;
    job.retrain.champion = ref;
  }
  if (spec.new_data && job.data.format == "shards") {
    job.data.path = spec.new_data->dir;
    job.retrain.new_files = plan.new_files;
  }
  job.retrain.replay = job.retrain.new_files.empty() ? 0 : spec.replay;
  job.retrain.replay_seed = job.train.seed + static_cast<uint64_t>(run_number);
  return job;
}

Result<std::string> CoordinatorRetrainPorts::SubmitRun(const ScheduleSpec& spec, const RunPlan& plan) {
  GANTRY_ASSIGN_OR_RETURN(ScheduleRecord record, store_.Get(spec.name));
  GANTRY_ASSIGN_OR_RETURN(auto history, store_.History(spec.name));
  const auto number = static_cast<int64_t>(history.size()) + 1;
  JobSpec job = RunJob(spec, plan, number);
  GANTRY_ASSIGN_OR_RETURN(Job submitted, coordinator_.Submit(job.ToJson(), RunRequestId(record, number)));
  return submitted.id;
}

Result<RunOutcome> CoordinatorRetrainPorts::PollRun(const std::string& job_id) {
  GANTRY_ASSIGN_OR_RETURN(JobView view, coordinator_.Describe(job_id));
  RunOutcome out;
  if (!IsTerminal(view.job.state)) return out;
  out.finished = true;
  out.succeeded = view.job.state == JobState::kSucceeded;
  if (!out.succeeded) {
    out.error = std::string(JobStateName(view.job.state)) + (view.job.reason.empty() ? "" : ": " + view.job.reason);
    return out;
  }
  const std::string& model = view.job.spec.checkpoint.model;
  GANTRY_ASSIGN_OR_RETURN(auto saved, registry_.LatestOfJob(model, job_id));
  if (!saved) return out;
  out.data_fingerprint = saved->data_fingerprint;
  out.challenger = HeldOutScores(*saved, "", saved->version);
  if (!out.challenger) out.challenger = EvalScores{saved->version, {}};  // the gate says what is missing
  if (auto v = saved->metrics.find("champion_version"); v != saved->metrics.end()) {
    out.champion = HeldOutScores(*saved, "champion_", static_cast<int64_t>(v->second));
  }
  return out;
}

Schedules::Schedules(sql::Db db, Coordinator& coordinator, ModelRegistry& registry, const Clock& clock,
                     Options options)
    : db_(std::move(db)),
      store_(db_),
      ports_(coordinator, registry, store_),
      retrainer_(store_, ports_),
      clock_(clock),
      options_(options) {}

Result<std::unique_ptr<Schedules>> Schedules::Open(const std::string& db_path, Coordinator& coordinator,
                                                   ModelRegistry& registry, const Clock& clock, Options options) {
  GANTRY_ASSIGN_OR_RETURN(sql::Db db, sql::Db::Open(db_path, /*durable=*/true));
  GANTRY_RETURN_IF_ERROR(db.Migrate(CoordinatorSchema()).WithContext("migrating " + db_path));
  return std::unique_ptr<Schedules>(new Schedules(std::move(db), coordinator, registry, clock, options));
}

Result<ScheduleRecord> Schedules::Add(const json& spec_json) {
  GANTRY_ASSIGN_OR_RETURN(ScheduleSpec spec, ScheduleSpec::Parse(spec_json));
  if (spec.new_data && !fs::path(spec.new_data->dir).is_absolute()) {
    return Status::InvalidArgument("schedule: triggers.new_data.dir must be an absolute path (got '" +
                                   spec.new_data->dir + "'; gantry schedule add resolves it)");
  }
  // A run trains on the new files through the job's shard directory.
  if (spec.new_data && spec.job.data.format != "shards") {
    return Status::InvalidArgument("schedule: job: data.format must be shards to train on the files of "
                                   "triggers.new_data.dir (got '" + spec.job.data.format + "')");
  }
  GANTRY_RETURN_IF_ERROR(store_.Add(spec, clock_.WallSeconds()));
  spdlog::info("schedule {} added (model {}, champion alias {})", spec.name, spec.model, spec.champion);
  return store_.Get(spec.name);
}

Status Schedules::Remove(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(auto active, store_.ActiveRun(name));
  if (active) {
    return Status::FailedPrecondition("schedule " + name + " has a run going (job " + active->job_id +
                                      "): wait for it, or cancel it with `gantry cancel " + active->job_id +
                                      "`, then remove the schedule");
  }
  return store_.Remove(name);
}

Status Schedules::Trigger(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(ScheduleRecord r, store_.Get(name));
  if (r.paused) {
    return Status::FailedPrecondition("schedule " + name + " is paused: `gantry schedule resume " + name +
                                      "` first");
  }
  const auto now = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::duration<double>(clock_.WallSeconds())));
  GANTRY_RETURN_IF_ERROR(retrainer_.TriggerNow(name, now));
  next_tick_ = {};  // start it on the next loop turn
  return Status::Ok();
}

Result<std::vector<RunRecord>> Schedules::History(const std::string& name) {
  GANTRY_ASSIGN_OR_RETURN(auto runs, store_.History(name));
  // A removed schedule keeps its runs; an unknown name with none is an error.
  if (runs.empty()) GANTRY_RETURN_IF_ERROR(store_.Get(name).status());
  return runs;
}

void Schedules::OnAlert(AlertSignal alert) {
  if (alert.model.empty() && model_of_source_) alert.model = model_of_source_(alert.source);
  if (alert.model.empty()) {
    // Serving alerts name their subject "DEPLOYMENT/MODEL" (monitor's
    // alert_wiring.cc); a watched directory is an absolute path.
    const auto slash = alert.source.find('/');
    const bool served = slash != std::string::npos && slash > 0 && slash + 1 < alert.source.size();
    alert.model = served ? alert.source.substr(slash + 1) : alert.source;
  }
  const auto now = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::duration<double>(clock_.WallSeconds())));
  retrainer_.OnAlert(alert, now);
  next_tick_ = {};
}

void Schedules::Tick() {
  const auto now = clock_.Now();
  if (now < next_tick_) return;
  // Retrainer::Tick logs each schedule's error. A failing tick is most often
  // storage not answering, and each call waits out its timeout on this
  // loop: wait longer before the next try.
  const Status st = TickNow();
  next_tick_ = clock_.Now() + (st.ok() ? options_.tick_interval : options_.retry_interval);
}

Status Schedules::TickNow() {
  const auto now = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::duration<double>(clock_.WallSeconds())));
  return retrainer_.Tick(now);
}

}  // namespace gantry::coordinator
