// AlertStore: alert instances and their state changes in SQLite, in the
// monitor's database file (<data>/monitor.db, WAL), so a restarted monitor
// shows the same firing alert with the same since-time.
//
//   alert_instances(scope, rule, job, rank, kind, state, since, active_since,
//     value, why, severity, action, webhook, labels, annotations, condition)
//     primary key (scope, rule, job, rank); one row per pending, firing or
//     resolved instance (a change to inactive deletes the row).
//   alert_events(id, scope, rule, job, rank, from_state, to_state, time,
//     value, why, action)  index (job, time): every state change, kept.
//
// NaN values are stored as NULL and read back as NaN. labels/annotations are
// JSON objects of strings.
//
// Schema versions: the monitor's file is shared with MetricsStore, which owns
// PRAGMA user_version; these tables keep their own version in
// schema_components(component = 'alerts', version).
//
// Ownership: owns its own connection to the file. Thread safety: one thread
// at a time.
#pragma once

#include <string>
#include <vector>

#include "common/sqlite.h"
#include "monitor/alerts/alert.h"

namespace gantry::monitor::alerts {

class AlertStore {
 public:
  static Result<AlertStore> Open(const std::string& path);

  AlertStore(AlertStore&&) = default;
  AlertStore& operator=(AlertStore&&) = default;

  // Writes the changes in one transaction: the events, and each instance's
  // latest state.
  Status Record(const std::vector<Transition>& transitions);
  // Every stored instance (pending, firing, resolved), for AlertEngine::Restore.
  Result<std::vector<AlertInstance>> Load();
  // State changes of `job` (all jobs when empty), newest first, at most
  // `limit`. Each Transition's alert carries key, value and why only.
  Result<std::vector<Transition>> History(const std::string& job, int64_t limit);
  // Deletes resolved instances whose state changed before `before` (wall
  // seconds); their events stay.
  Status PruneResolved(double before);

 private:
  explicit AlertStore(sql::Db db) : db_(std::move(db)) {}
  sql::Db db_;
};

}  // namespace gantry::monitor::alerts
