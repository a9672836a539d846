// Alert instances and their state changes: what the engine returns, the
// store persists, notifiers send and `gantry alerts` lists.
//
// An instance is one rule applied to one subject: (scope, rule, job[, rank]).
// `job` is a job id, or for drift and serving rules the observed source
// (a dataset or deployment name). rank is -1 when the rule is per job.
//
// States, as Prometheus has them:
//   inactive --condition holds--> pending --held for `for`--> firing
//   pending --condition stops--> inactive
//   firing --condition stops--> resolved --holds again--> pending (or firing when for = 0)
//
// Thread safety: plain data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "monitor/alerts/rule.h"

namespace gantry::monitor::alerts {

enum class AlertState { kInactive, kPending, kFiring, kResolved };
const char* StateName(AlertState s);  // "inactive", "pending", "firing", "resolved"
std::optional<AlertState> StateFromName(const std::string& s);

struct AlertKey {
  RuleScope scope = RuleScope::kCluster;
  std::string rule;
  std::string job;
  int64_t rank = -1;

  friend bool operator<(const AlertKey& a, const AlertKey& b) {
    return std::tie(a.scope, a.rule, a.job, a.rank) < std::tie(b.scope, b.rule, b.job, b.rank);
  }
  friend bool operator==(const AlertKey& a, const AlertKey& b) {
    return std::tie(a.scope, a.rule, a.job, a.rank) == std::tie(b.scope, b.rule, b.job, b.rank);
  }
  // "cluster/loss-nan/job-7" or ".../rank 3": the primary key in the store.
  std::string ToString() const;
};

struct AlertInstance {
  AlertKey key;
  RuleKind kind = RuleKind::kThreshold;
  AlertState state = AlertState::kInactive;
  double since = 0;         // wall seconds of the last state change
  double active_since = 0;  // wall seconds the condition started holding (pending/firing)
  double value = 0;         // the observed value behind the latest evaluation
  std::string why;          // "loss is NaN at step 120"
  std::string severity;
  Action action = Action::kNone;
  std::string webhook;      // effective URL (rule's or the cluster default); may be empty
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // The condition at the latest evaluation: a pending instance whose
  // condition still holds becomes firing when `for` elapses even without new data.
  bool condition = false;
};

// One state change of one instance.
struct Transition {
  AlertInstance alert;  // the instance after the change (alert.state == to)
  AlertState from = AlertState::kInactive;
  AlertState to = AlertState::kInactive;
  double time = 0;      // wall seconds
  // kCancel only on the change into firing of a rule with action: cancel,
  // so one firing asks once; none otherwise.
  Action action = Action::kNone;
};

}  // namespace gantry::monitor::alerts
