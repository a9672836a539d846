// Retrainer: drives every retraining schedule, one tick at a time
// (docs/retraining.md). Each tick, for each schedule that is not paused:
//   1. a run that is going is polled; when its job has ended, the gate
//      (gate.h) compares the challenger with the champion on the run's
//      held-out set, the alias moves only on a promotion, and the decision
//      is recorded with both scores (ScheduleStore::FinishRun);
//   2. otherwise the triggers are collected: cron (due once however many
//      fire times passed, ScheduleStore keeps the last one handled), new
//      data (files no run used yet), drift and metric alerts and manual
//      triggers delivered since the last tick; all of them start ONE run,
//      which warm-starts from MODEL@champion on the new files.
// Alerts and manual triggers that arrive while a run is going wait for the
// next run (RunCoalescer); they live in memory, where cron and new-data
// state is in SQLite.
//
// The coordinator's concrete services sit behind RetrainPorts, so tests drive
// the logic with a fake and explicit times. One thread (the coordinator
// loop).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/retrain/gate.h"
#include "coordinator/retrain/schedule_store.h"
#include "coordinator/retrain/triggers.h"

namespace gantry::coordinator {

// What a run trains on and starts from.
struct RunPlan {
  std::vector<std::string> new_files;       // relative to the watched dir
  std::optional<int64_t> champion_version;  // warm start; none for a first model
  std::vector<Trigger> triggers;
};

// How a run's job ended and what its evaluation measured.
struct RunOutcome {
  bool finished = false;
  bool succeeded = false;
  std::string error;                      // when it did not succeed
  std::optional<EvalScores> challenger;   // the run's new version
  std::optional<EvalScores> champion;     // the champion on the same held-out set
  std::string data_fingerprint;
};

class RetrainPorts {
 public:
  virtual ~RetrainPorts() = default;
  // Submits the run's training job; returns its job id.
  virtual Result<std::string> SubmitRun(const ScheduleSpec& spec, const RunPlan& plan) = 0;
  virtual Result<RunOutcome> PollRun(const std::string& job_id) = 0;
  virtual Result<std::vector<DataFile>> ListData(const std::string& dir) = 0;
  // The version MODEL@alias names; nullopt when the alias does not exist.
  virtual Result<std::optional<int64_t>> ResolveAlias(const std::string& model, const std::string& alias) = 0;
  virtual Status MoveAlias(const std::string& model, const std::string& alias, int64_t version) = 0;
};

// An alert the monitor published, as the retrainer needs it.
struct AlertSignal {
  std::string rule;
  std::string kind;   // "drift" for drift rules
  std::string model;  // the model the alert concerns (drift and serving alerts)
  std::string why;
  std::string source;  // the alert's subject: a job id, dataset directory or deployment name
};

class Retrainer {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  Retrainer(ScheduleStore& store, RetrainPorts& ports) : store_(store), ports_(ports) {}

  // Runs one round over every schedule. Errors of one schedule are logged
  // and recorded, never stop the others; the returned status is the first.
  Status Tick(TimePoint now);
  // `gantry schedule trigger NAME`: not_found for an unknown schedule.
  Status TriggerNow(const std::string& name, TimePoint now);
  // A firing alert: becomes a trigger of every schedule it matches: a drift
  // alert of the schedule's model or of its watched directory (`source` is
  // triggers.new_data.dir) when `drift: true`, or a rule named in `alerts`
  // (for the schedule's model, or naming no model).
  void OnAlert(const AlertSignal& alert, TimePoint now);

 private:
  Status TickOne(const ScheduleRecord& record, TimePoint now);
  Status Settle(const ScheduleRecord& record, const RunRecord& run, TimePoint now);
  RunCoalescer& Coalescer(const std::string& name) { return coalescers_[name]; }

  ScheduleStore& store_;
  RetrainPorts& ports_;
  std::map<std::string, RunCoalescer> coalescers_;
};

double ToSeconds(std::chrono::system_clock::time_point t);

}  // namespace gantry::coordinator
