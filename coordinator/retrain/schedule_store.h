// ScheduleStore: retraining schedules, their runs and decisions, and the data
// files each run used, in the coordinator's SQLite database
// (docs/retraining.md, "The record").
//
// Tables (created by ScheduleMigrations(), appended to the coordinator's own
// migration list so one user_version orders them):
//   schedules      name, spec (JSON), paused, created_at, last_cron_at
//   schedule_runs  seq, schedule, job_id, state, triggers (JSON), files (JSON),
//                  started_at, finished_at, decision (JSON)
//   schedule_files (schedule, name) -> run seq: a file is used by one run
//
// StartRun() records the run and marks its files used in one transaction, so
// after a crash either both happened or neither: a batch of new data starts
// exactly one run, also across a coordinator restart.
//
// Thread safety: one thread (the coordinator's loop), like JobStore.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/sqlite.h"
#include "coordinator/retrain/schedule_spec.h"

namespace gantry::coordinator {

std::vector<std::string> ScheduleMigrations();

struct ScheduleRecord {
  ScheduleSpec spec;
  bool paused = false;
  double created_at = 0;
  std::optional<double> last_cron_at;  // the cron fire time last handled
};

// What the gate decided for one run, with both sides' evidence.
struct RunDecision {
  bool promote = false;
  std::string reason;
  std::optional<int64_t> champion_version;
  std::optional<int64_t> challenger_version;
  std::optional<double> champion_value;
  std::optional<double> challenger_value;
  std::string metric;
  std::string data_fingerprint;  // of the run's training data
};

enum class RunState { kRunning, kPromoted, kRejected, kFailed };
const char* RunStateName(RunState s);

struct RunRecord {
  int64_t seq = 0;
  std::string schedule;
  std::string job_id;
  RunState state = RunState::kRunning;
  std::vector<Trigger> triggers;
  std::vector<std::string> files;
  double started_at = 0;
  std::optional<double> finished_at;
  std::optional<RunDecision> decision;
  std::string error;  // why a run failed
};

class ScheduleStore {
 public:
  // `db` must have had ScheduleMigrations() applied; it outlives the store.
  explicit ScheduleStore(sql::Db& db) : db_(&db) {}

  // already_exists when the name is taken.
  Status Add(const ScheduleSpec& spec, double now);
  Status Remove(const std::string& name);  // not_found when absent
  Status SetPaused(const std::string& name, bool paused);
  Status SetLastCron(const std::string& name, double fire_time);
  Result<ScheduleRecord> Get(const std::string& name);
  Result<std::vector<ScheduleRecord>> List();

  // Records a started run and marks `files` used by it; returns its seq.
  Result<int64_t> StartRun(const std::string& schedule, const std::string& job_id,
                           const std::vector<Trigger>& triggers, const std::vector<std::string>& files,
                           double now);
  Status FinishRun(int64_t seq, RunState state, const std::optional<RunDecision>& decision,
                   const std::string& error, double now);
  // Runs of a schedule, oldest first.
  Result<std::vector<RunRecord>> History(const std::string& schedule);
  // The schedule's run still going, if any.
  Result<std::optional<RunRecord>> ActiveRun(const std::string& schedule);
  Result<std::set<std::string>> UsedFiles(const std::string& schedule);

 private:
  Result<std::vector<RunRecord>> QueryRuns(const std::string& where, const std::string& schedule);
  sql::Db* db_;
};

}  // namespace gantry::coordinator
