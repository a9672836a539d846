// Parsing and validation of alert rules (alert_rules.h).
#include <cmath>
#include <set>

#include "common/config.h"
#include "common/alert_rules.h"

namespace gantry::alert_rules {
namespace {

std::string Describe(const json& j) {
  std::string s = j.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

const std::set<std::string> kCommonFields = {"name",     "kind",   "metric", "for",   "per_rank",
                                             "severity", "action", "webhook", "labels", "annotations"};

// Fields that only some kinds read: a stray one is a mistake worth naming.
struct KindField {
  const char* field;
  std::set<RuleKind> kinds;
};
const std::vector<KindField> kKindFields = {
    {"op", {RuleKind::kThreshold}},
    {"value", {RuleKind::kThreshold}},
    {"after", {RuleKind::kNoProgress}},
    {"drop_percent", {RuleKind::kThroughputDrop}},
    {"window", {RuleKind::kThroughputDrop}},
    {"min_samples", {RuleKind::kThroughputDrop}},
    {"factor", {RuleKind::kStraggler}},
    {"share", {RuleKind::kDrift}},
};

std::optional<CompareOp> OpFromName(const std::string& s) {
  if (s == ">" || s == "gt") return CompareOp::kGt;
  if (s == ">=" || s == "ge") return CompareOp::kGe;
  if (s == "<" || s == "lt") return CompareOp::kLt;
  if (s == "<=" || s == "le") return CompareOp::kLe;
  return std::nullopt;
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// A map of scalar values read as strings (labels, annotations).
void GetStringMap(FieldReader& r, const json& obj, const std::string& key,
                  std::map<std::string, std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_object()) return r.Fail(key, "must be a map of names to text (got " + Describe(*it) + ")");
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (kv->is_string()) out[kv.key()] = kv->get<std::string>();
    else if (kv->is_number() || kv->is_boolean()) out[kv.key()] = kv->dump();
    else return r.Fail(key + "." + kv.key(), "must be text (got " + Describe(*kv) + ")");
  }
}

void GetDuration(FieldReader& r, const json& obj, const std::string& key, double& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  auto d = ParseDuration(*it);
  if (!d.ok()) return r.Fail(key, "must be a duration like 30s, 5m or 1h (got " + Describe(*it) + ")");
  out = *d;
}

Result<Rule> ParseRule(const json& obj, const std::string& path, RuleScope scope, const std::string& what) {
  if (!obj.is_object()) {
    return Status::InvalidArgument(what + ": " + path + " must be a map with name and kind (got " +
                                   Describe(obj) + ")");
  }
  Rule rule;
  rule.scope = scope;
  FieldReader r(obj, path, what);
  std::string kind;
  r.Get("name", rule.name);
  r.Get("kind", kind);
  if (!r.Has("name")) {
    r.Fail("name", "is required (a short id such as loss-nan)");
  } else if (!ValidName(rule.name)) {
    r.Fail("name", "must be 1-64 letters, digits, '_', '-' or '.' (got '" + rule.name + "')");
  }
  if (!r.Has("kind")) {
    r.Fail("kind", "is required: threshold, nonfinite, no_progress, throughput_drop, straggler or drift");
  } else if (auto k = KindFromName(kind)) {
    rule.kind = *k;
  } else {
    r.Fail("kind", "must be one of threshold, nonfinite, no_progress, throughput_drop, straggler, drift (got '" +
                       kind + "')");
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (kCommonFields.count(it.key())) continue;
    bool known = false;
    for (const auto& kf : kKindFields) {
      if (it.key() != kf.field) continue;
      known = true;
      if (!kf.kinds.count(rule.kind)) {
        std::string kinds;
        for (RuleKind k : kf.kinds) kinds += std::string(kinds.empty() ? "" : ", ") + KindName(k);
        r.Fail(it.key(), std::string("applies to ") + kinds + " rules only (this rule is " + KindName(rule.kind) + ")");
      }
    }
    if (!known) {
      return Status::InvalidArgument(what + ": unknown field " + r.FieldPath(it.key()) +
                                     " (check the spelling; docs/monitor.md lists every field)");
    }
  }

  r.Get("metric", rule.metric);
  if (rule.metric.empty()) {
    switch (rule.kind) {
      case RuleKind::kThreshold:
        if (!r.Has("metric")) r.Fail("metric", "is required for a threshold rule (e.g. loss)");
        break;
      case RuleKind::kNonFinite: rule.metric = "loss"; break;
      case RuleKind::kThroughputDrop: rule.metric = "samples_per_sec"; break;
      case RuleKind::kStraggler: rule.metric = "step_time"; break;
      default: break;
    }
  }
  GetDuration(r, obj, "for", rule.for_seconds);
  r.Get("per_rank", rule.per_rank);
  r.Get("severity", rule.severity);
  if (rule.severity != "info" && rule.severity != "warning" && rule.severity != "critical") {
    r.Fail("severity", "must be info, warning or critical (got '" + rule.severity + "')");
  }
  std::string action = "none";
  r.Get("action", action);
  if (action == "cancel") rule.action = Action::kCancel;
  else if (action != "none") r.Fail("action", "must be none or cancel (got '" + action + "')");
  r.Get("webhook", rule.webhook);
  if (!rule.webhook.empty()) {
    if (Status s = CheckWebhookUrl(rule.webhook); !s.ok()) r.Fail("webhook", s.message());
  }
  GetStringMap(r, obj, "labels", rule.labels);
  GetStringMap(r, obj, "annotations", rule.annotations);

  switch (rule.kind) {
    case RuleKind::kThreshold: {
      std::string op = ">";
      r.Get("op", op);
      if (auto o = OpFromName(op)) rule.op = *o;
      else r.Fail("op", "must be one of \">\", \">=\", \"<\", \"<=\" (quote it in YAML) (got '" + op + "')");
      if (!r.Has("value")) r.Fail("value", "is required for a threshold rule (the number to compare with)");
      r.Get("value", rule.value);
      if (!std::isfinite(rule.value)) r.Fail("value", "must be a finite number");
      break;
    }
    case RuleKind::kNoProgress:
      GetDuration(r, obj, "after", rule.after_seconds);
      if (rule.after_seconds <= 0) r.Fail("after", "must be > 0 (how long without a new step)");
      break;
    case RuleKind::kThroughputDrop:
      r.Get("drop_percent", rule.drop_percent);
      if (!(rule.drop_percent > 0 && rule.drop_percent < 100)) {
        r.Fail("drop_percent", "must be between 0 and 100, exclusive (got " + std::to_string(rule.drop_percent) + ")");
      }
      r.Get("window", rule.window);
      if (rule.window < 3 || rule.window > 100000) {
        r.Fail("window", "must be between 3 and 100000 samples (got " + std::to_string(rule.window) + ")");
      }
      r.Get("min_samples", rule.min_samples);
      if (rule.min_samples < 1 || rule.min_samples > rule.window) {
        r.Fail("min_samples", "must be between 1 and window (got " + std::to_string(rule.min_samples) + ")");
      }
      break;
    case RuleKind::kStraggler:
      r.Get("factor", rule.factor);
      if (!(rule.factor > 1)) r.Fail("factor", "must be > 1 (got " + std::to_string(rule.factor) + ")");
      break;
    case RuleKind::kDrift:
      if (r.Has("share")) {
        double s = 0;
        r.Get("share", s);
        if (!(s > 0 && s <= 1)) r.Fail("share", "must be in (0, 1], a fraction of the features (got " + std::to_string(s) + ")");
        rule.share = s;
      }
      break;
    case RuleKind::kNonFinite:
      break;
  }
  // Every field was checked above (unknown ones refused with the right
  // docs page); mark them read so Finish() reports only value errors.
  for (auto it = obj.begin(); it != obj.end(); ++it) (void)r.Child(it.key());
  GANTRY_RETURN_IF_ERROR(r.Finish());
  return rule;
}

}  // namespace

Result<std::vector<Rule>> ParseRules(const json& list, const std::string& path, RuleScope scope,
                                     const std::string& what) {
  if (list.is_null()) return std::vector<Rule>{};
  if (!list.is_array()) {
    return Status::InvalidArgument(what + ": " + path + " must be a list of rules (got " + Describe(list) + ")");
  }
  std::vector<Rule> rules;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    GANTRY_ASSIGN_OR_RETURN(Rule rule, ParseRule(list[i], p, scope, what));
    if (!names.insert(rule.name).second) {
      return Status::InvalidArgument(what + ": " + p + ".name '" + rule.name +
                                     "' is used by an earlier rule; rule names must be unique");
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

Result<AlertsConfig> ParseAlertsConfig(const json& root) {
  const std::string what = "alerts file";
  AlertsConfig cfg;
  if (root.is_null()) return cfg;  // an empty file: no rules
  if (!root.is_object()) {
    return Status::InvalidArgument(what + ": the document must be a map with alerts, webhook and keep_resolved (got " +
                                   Describe(root) + ")");
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() != "alerts" && it.key() != "webhook" && it.key() != "keep_resolved") {
      return Status::InvalidArgument(what + ": unknown field " + it.key() +
                                     " (check the spelling; docs/monitor.md lists every field)");
    }
  }
  FieldReader r(root, "", what);
  r.Get("webhook", cfg.webhook);
  if (!cfg.webhook.empty()) {
    if (Status s = CheckWebhookUrl(cfg.webhook); !s.ok()) r.Fail("webhook", s.message());
  }
  GetDuration(r, root, "keep_resolved", cfg.keep_resolved_seconds);
  (void)r.Child("keep_resolved");  // read above; marks the fields as known
  (void)r.Child("alerts");
  GANTRY_RETURN_IF_ERROR(r.Finish());
  if (root.contains("alerts")) {
    GANTRY_ASSIGN_OR_RETURN(cfg.rules, ParseRules(root["alerts"], "alerts", RuleScope::kCluster, what));
  }
  return cfg;
}

Result<AlertsConfig> LoadAlertsFile(const std::string& path) {
  GANTRY_ASSIGN_OR_RETURN(json root, LoadYamlFile(path));
  auto cfg = ParseAlertsConfig(root);
  if (!cfg.ok()) return cfg.status().WithContext(path);
  return cfg;
}

Result<double> ParseDuration(const json& v) {
  if (v.is_number()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) return Status::InvalidArgument("negative duration");
    return d;
  }
  if (!v.is_string()) return Status::InvalidArgument("not a duration");
  const std::string s = v.get<std::string>();
  if (s.empty()) return Status::InvalidArgument("empty duration");
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return Status::InvalidArgument("duration needs a number");
    double n = 0;
    try {
      n = std::stod(s.substr(start, i - start));
    } catch (...) {
      return Status::InvalidArgument("bad number");
    }
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string unit = s.substr(ustart, i - ustart);
    double mul = 0;
    if (unit == "ms") mul = 1e-3;
    else if (unit == "s") mul = 1;
    else if (unit == "m") mul = 60;
    else if (unit == "h") mul = 3600;
    else if (unit == "d") mul = 86400;
    else if (unit.empty() && start == 0 && i == s.size()) mul = 1;  // "30" = 30 s
    else return Status::InvalidArgument("unknown unit");
    total += n * mul;
  }
  return total;
}

Status CheckWebhookUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status::InvalidArgument("must be plain http:// (got '" + url +
                                   "'); for TLS point it at a local relay such as an nginx proxy");
  }
  if (url.rfind(scheme, 0) != 0 || url.size() == scheme.size() || url[scheme.size()] == '/' ||
      url[scheme.size()] == ':') {
    return Status::InvalidArgument("must be a URL like http://127.0.0.1:9000/hook (got '" + url + "')");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Status::InvalidArgument("must not contain spaces or control characters (got '" + url + "')");
    }
  }
  return Status::Ok();
}

std::optional<RuleKind> KindFromName(const std::string& s) {
  for (RuleKind k : {RuleKind::kThreshold, RuleKind::kNonFinite, RuleKind::kNoProgress,
                     RuleKind::kThroughputDrop, RuleKind::kStraggler, RuleKind::kDrift}) {
    if (s == KindName(k)) return k;
  }
  return std::nullopt;
}

const char* KindName(RuleKind k) {
  switch (k) {
    case RuleKind::kThreshold: return "threshold";
    case RuleKind::kNonFinite: return "nonfinite";
    case RuleKind::kNoProgress: return "no_progress";
    case RuleKind::kThroughputDrop: return "throughput_drop";
    case RuleKind::kStraggler: return "straggler";
    case RuleKind::kDrift: return "drift";
  }
  return "?";
}

const char* OpName(CompareOp op) {
  switch (op) {
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
  }
  return "?";
}

const char* ActionName(Action a) { return a == Action::kCancel ? "cancel" : "none"; }
const char* ScopeName(RuleScope s) { return s == RuleScope::kJob ? "job" : "cluster"; }

bool Compare(double lhs, CompareOp op, double rhs) {
  switch (op) {
    case CompareOp::kGt: return lhs > rhs;
    case CompareOp::kGe: return lhs >= rhs;
    case CompareOp::kLt: return lhs < rhs;
    case CompareOp::kLe: return lhs <= rhs;
  }
  return false;
}

}  // namespace gantry::alert_rules
