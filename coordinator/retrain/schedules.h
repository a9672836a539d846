// Schedules: the coordinator's retraining schedules (docs/retraining.md).
//
// Owns the ScheduleStore (on its own handle of the coordinator's database,
// whose schema already has the schedule tables), the Retrainer, and the
// ports that connect the Retrainer to this coordinator:
//   - a run is an ordinary job: the schedule's job template with
//     checkpoint.model = the schedule's model, warm_start and
//     retrain.champion = MODEL@v<champion> (pinned, so the alias moving
//     during the run changes nothing), data.path = the watched directory and
//     retrain.new_files = the run's new files, retrain.replay = the
//     schedule's replay share. It is submitted through Coordinator::Submit
//     with a request id derived from the schedule and its run number, so a
//     coordinator that crashes between submitting and recording the run
//     gets the same job back on the next tick instead of a second one;
//   - the outcome is read when the job has ended: the newest version it
//     saved (storage list_versions/lineage): its test_* metrics are the
//     challenger's held-out scores, its champion_test_* metrics the
//     champion's on the same set (the worker scores both, job spec
//     `retrain:`), and its lineage holds the training data's fingerprint;
//   - the alias moves through storage's set_alias (ModelRegistry).
// Tick() runs the Retrainer at most once per `tick_interval` of the
// injected clock (`retry_interval` after a tick that failed), from the
// coordinator's loop; a trigger or alert makes the next loop turn tick.
//
// Alerts: the monitor sends every alert that starts firing to the
// coordinator (`schedule_alert`); OnAlert() turns it into a drift or metric
// trigger of every schedule it names (see Retrainer::OnAlert).
//
// Thread safety: one thread (the coordinator's loop), like Coordinator.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/sqlite.h"
#include "coordinator/coordinator.h"
#include "coordinator/retrain/registry.h"
#include "coordinator/retrain/retrainer.h"
#include "coordinator/retrain/schedule_store.h"

namespace gantry::coordinator {

// The files of a watched directory the new-data trigger counts: regular
// files, not hidden, not in-progress names (shard_dataset.h's rules: names
// starting with '.' or '_', ending in .tmp, .part, .partial or '~'), in name
// order. `samples` is counted for plain CSV files (rows after the header)
// and plain IDX label files (the header's count); 0 otherwise.
Result<std::vector<DataFile>> ListDataFiles(const std::string& dir);

// Retrainer's ports on a Coordinator and a ModelRegistry.
class CoordinatorRetrainPorts final : public RetrainPorts {
 public:
  CoordinatorRetrainPorts(Coordinator& coordinator, ModelRegistry& registry, ScheduleStore& store)
      : coordinator_(coordinator), registry_(registry), store_(store) {}

  Result<std::string> SubmitRun(const ScheduleSpec& spec, const RunPlan& plan) override;
  Result<RunOutcome> PollRun(const std::string& job_id) override;
  Result<std::vector<DataFile>> ListData(const std::string& dir) override { return ListDataFiles(dir); }
  Result<std::optional<int64_t>> ResolveAlias(const std::string& model, const std::string& alias) override {
    return registry_.ResolveAlias(model, alias);
  }
  Status MoveAlias(const std::string& model, const std::string& alias, int64_t version) override {
    return registry_.SetAlias(model, alias, version);
  }

  // The job spec a run of `spec` submits (public for tests).
  static JobSpec RunJob(const ScheduleSpec& spec, const RunPlan& plan, int64_t run_number);

 private:
  Coordinator& coordinator_;
  ModelRegistry& registry_;
  ScheduleStore& store_;
};

class Schedules {
 public:
  struct Options {
    std::chrono::milliseconds tick_interval{1000};
    // After a tick with an error (e.g. storage down: each registry call
    // waits out its timeout on the coordinator's loop).
    std::chrono::milliseconds retry_interval{10000};
  };
  // Opens `db_path` (the coordinator's database) and migrates it.
  static Result<std::unique_ptr<Schedules>> Open(const std::string& db_path, Coordinator& coordinator,
                                                 ModelRegistry& registry, const Clock& clock, Options options);
  static Result<std::unique_ptr<Schedules>> Open(const std::string& db_path, Coordinator& coordinator,
                                                 ModelRegistry& registry, const Clock& clock) {
    return Open(db_path, coordinator, registry, clock, Options{});
  }

  // `spec`: the schedule's wire form (a ScheduleSpec with the job inline and
  // absolute paths; `gantry schedule add` makes it from the YAML file).
  Result<ScheduleRecord> Add(const json& spec);
  Result<std::vector<ScheduleRecord>> List() { return store_.List(); }
  Result<ScheduleRecord> Get(const std::string& name) { return store_.Get(name); }
  Status SetPaused(const std::string& name, bool paused) { return store_.SetPaused(name, paused); }
  Status Remove(const std::string& name);
  // A manual trigger; failed_precondition for a paused schedule. The run
  // starts on the next tick (or after the run going now).
  Status Trigger(const std::string& name);
  Result<std::vector<RunRecord>> History(const std::string& name);
  Result<std::optional<RunRecord>> ActiveRun(const std::string& name) { return store_.ActiveRun(name); }
  void OnAlert(AlertSignal alert);
  // The alert's model: its `model` label, else the model of the deployment
  // its source names, else MODEL of a serving alert's "DEPLOYMENT/MODEL",
  // else the source itself.
  // Maps an alert's source (a deployment name) to the model it serves;
  // empty when it is not one. Set by main from the deployments.
  void SetModelOfSource(std::function<std::string(const std::string&)> f) { model_of_source_ = std::move(f); }

  void Tick();
  // Runs the Retrainer now, whatever the interval (tests).
  Status TickNow();

 private:
  Schedules(sql::Db db, Coordinator& coordinator, ModelRegistry& registry, const Clock& clock, Options options);

  sql::Db db_;
  ScheduleStore store_;
  CoordinatorRetrainPorts ports_;
  Retrainer retrainer_;
  const Clock& clock_;
  Options options_;
  std::chrono::steady_clock::time_point next_tick_{};
  std::function<std::string(const std::string&)> model_of_source_;
};

}  // namespace gantry::coordinator
