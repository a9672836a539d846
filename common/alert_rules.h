// Alert rules (common/ so that JobSpec validates a spec's `alerts:` at
// submit without linking the monitor; monitor/alerts/rule.h re-exports them
// into gantry::monitor::alerts): what to watch, read from YAML (configs/alerts.yaml for the
// cluster, the `alerts:` section of a job spec for one job). docs/monitor.md
// ("Alert rules") documents every field.
//
// ParseRules() validates a list of rules and names the offending field with
// the fix, like job specs: `alerts[2].for must be a duration like 30s (got
// "x")`. It takes the YAML already read into JSON (common/config.h's
// YamlToJson / LoadYamlFile), so the job-spec parser can call it on its own
// `alerts` value.
//
// Thread safety: plain data and pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/status.h"

namespace gantry::alert_rules {

enum class RuleKind {
  kThreshold,       // metric op value
  kNonFinite,       // metric is NaN or +-Inf
  kNoProgress,      // no new step for `after`
  kThroughputDrop,  // metric is drop_percent below the job's running median
  kStraggler,       // a rank's metric > factor x the median of the other ranks
  kDrift,           // share of drifted features >= share (or the detector's verdict)
};
enum class CompareOp { kGt, kGe, kLt, kLe };
enum class Action {
  kNone,
  kCancel,  // ask the coordinator to cancel the job (the engine only reports it)
};
// Where a rule came from: the cluster file or one job's spec. Part of an
// alert's identity, so a job rule may reuse a cluster rule's name.
enum class RuleScope { kCluster, kJob };

const char* KindName(RuleKind k);      // "threshold", "nonfinite", ...
std::optional<RuleKind> KindFromName(const std::string& s);
const char* OpName(CompareOp op);      // ">", ">=", "<", "<="
const char* ActionName(Action a);      // "none", "cancel"
const char* ScopeName(RuleScope s);    // "cluster", "job"
bool Compare(double lhs, CompareOp op, double rhs);

struct Rule {
  std::string name;  // unique within its file or spec; [A-Za-z0-9_.-]
  RuleKind kind = RuleKind::kThreshold;
  RuleScope scope = RuleScope::kCluster;
  // The series the rule reads. Defaults by kind: nonfinite "loss",
  // throughput_drop "samples_per_sec", straggler "step_time"; threshold
  // needs it; no_progress and drift ignore it.
  std::string metric;
  CompareOp op = CompareOp::kGt;  // threshold
  double value = 0;               // threshold
  // How long the condition must hold before pending becomes firing. 0 fires
  // at once (no pending state), as in Prometheus.
  double for_seconds = 0;
  double after_seconds = 600;      // no_progress: no new step for this long
  double drop_percent = 30;        // throughput_drop: X% below the median
  int64_t window = 100;            // throughput_drop: samples in the median
  int64_t min_samples = 10;        // throughput_drop: judge only after this many
  double factor = 1.5;             // straggler: k
  std::optional<double> share;     // drift: threshold; absent = the detector's verdict
  // Per (job, rank) instances for threshold/nonfinite; false = one per job.
  // straggler is always per rank; the others per job (drift: per source).
  bool per_rank = false;
  std::string severity = "warning";  // info | warning | critical
  Action action = Action::kNone;
  std::string webhook;  // http://host:port/path; empty = the cluster default
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// The cluster file: `alerts:` (a list of rules), optional `webhook:` (the
// default URL for rules without their own) and `keep_resolved:` (how long
// resolved alerts stay listed).
struct AlertsConfig {
  std::vector<Rule> rules;
  std::string webhook;
  double keep_resolved_seconds = 3600;
};

// Validates a YAML list of rules read as JSON. `path` is the list's field
// path ("alerts"); errors read "<what>: alerts[2].for must be ...". `scope`
// is stamped on every rule.
Result<std::vector<Rule>> ParseRules(const json& list, const std::string& path,
                                     RuleScope scope = RuleScope::kJob,
                                     const std::string& what = "job spec");
Result<AlertsConfig> ParseAlertsConfig(const json& root);
// Reads and validates a cluster file; errors start with the file's path.
Result<AlertsConfig> LoadAlertsFile(const std::string& path);

// "30s", "5m", "1h", "1d", "250ms", "1h30m", or a plain number of seconds.
// Negative or malformed values are refused.
Result<double> ParseDuration(const json& v);
// Checks a webhook URL: http://HOST[:PORT][/PATH], plain http only.
Status CheckWebhookUrl(const std::string& url);

}  // namespace gantry::alert_rules
