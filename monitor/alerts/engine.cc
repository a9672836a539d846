#include "monitor/alerts/engine.h"

#include <algorithm>
#include <cmath>

namespace gantry::monitor::alerts {
namespace {

bool IsTerminal(const std::string& state) {
  return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED";
}

const double* FindValue(const MetricSample& s, const std::string& name) {
  for (const auto& [n, v] : s.values) {
    if (n == name) return &v;
  }
  return nullptr;
}

int StateOrder(AlertState s) {
  switch (s) {
    case AlertState::kFiring: return 0;
    case AlertState::kPending: return 1;
    case AlertState::kResolved: return 2;
    case AlertState::kInactive: return 3;
  }
  return 3;
}

}  // namespace

AlertEngine::AlertEngine(const Clock& clock, std::vector<Rule> cluster_rules, Options options)
    : clock_(clock), options_(std::move(options)), cluster_rules_(std::move(cluster_rules)) {}

void AlertEngine::SetJobRules(const std::string& job_id, std::vector<Rule> rules) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& r : rules) r.scope = RuleScope::kJob;
  job_rules_[job_id] = std::move(rules);
}

void AlertEngine::Restore(std::vector<AlertInstance> instances) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& inst : instances) {
    if (inst.state == AlertState::kInactive) continue;
    AlertKey key = inst.key;
    instances_[key] = std::move(inst);
  }
}

std::vector<const Rule*> AlertEngine::RulesFor(const std::string& job) const {
  std::vector<const Rule*> out;
  for (const auto& r : cluster_rules_) out.push_back(&r);
  auto it = job_rules_.find(job);
  if (it != job_rules_.end()) {
    for (const auto& r : it->second) out.push_back(&r);
  }
  return out;
}

const Rule* AlertEngine::FindRule(const AlertKey& key) const {
  if (key.scope == RuleScope::kCluster) {
    for (const auto& r : cluster_rules_) {
      if (r.name == key.rule) return &r;
    }
    return nullptr;
  }
  auto it = job_rules_.find(key.job);
  if (it == job_rules_.end()) return nullptr;
  for (const auto& r : it->second) {
    if (r.name == key.rule) return &r;
  }
  return nullptr;
}

void AlertEngine::Change(AlertInstance& inst, AlertState to, std::vector<Transition>& out) {
  Transition t;
  t.from = inst.state;
  t.to = to;
  t.time = clock_.WallSeconds();
  inst.state = to;
  inst.since = t.time;
  if (to == AlertState::kFiring) t.action = inst.action;
  t.alert = inst;
  out.push_back(std::move(t));
}

// The condition stopped holding (or its subject went away).
void AlertEngine::EndInstance(AlertInstance& inst, const std::string& why, std::vector<Transition>& out) {
  inst.condition = false;
  inst.why = why;
  if (inst.state == AlertState::kPending) Change(inst, AlertState::kInactive, out);
  else if (inst.state == AlertState::kFiring) Change(inst, AlertState::kResolved, out);
}

void AlertEngine::Apply(const Rule& rule, const AlertKey& key, const Evaluation& e, std::vector<Transition>& out) {
  auto it = instances_.find(key);
  if (!e.holds) {
    if (it == instances_.end()) return;  // never active: nothing to say
    AlertInstance& inst = it->second;
    inst.value = e.value;
    if (inst.state == AlertState::kPending || inst.state == AlertState::kFiring) {
      EndInstance(inst, e.why, out);
    } else {
      inst.condition = false;
    }
    if (inst.state == AlertState::kInactive) instances_.erase(it);
    return;
  }
  if (it == instances_.end()) {
    AlertInstance fresh;
    fresh.key = key;
    it = instances_.emplace(key, std::move(fresh)).first;
  }
  AlertInstance& inst = it->second;
  // Refreshed on every evaluation, so an edited rule shows at once.
  inst.kind = rule.kind;
  inst.severity = rule.severity;
  inst.action = rule.action;
  inst.webhook = rule.webhook.empty() ? options_.default_webhook : rule.webhook;
  inst.labels = rule.labels;
  inst.annotations = rule.annotations;
  inst.condition = true;
  inst.value = e.value;
  inst.why = e.why;
  const double now = clock_.WallSeconds();
  switch (inst.state) {
    case AlertState::kInactive:
    case AlertState::kResolved:
      inst.active_since = now;
      Change(inst, rule.for_seconds <= 0 ? AlertState::kFiring : AlertState::kPending, out);
      break;
    case AlertState::kPending:
      if (now - inst.active_since >= rule.for_seconds) Change(inst, AlertState::kFiring, out);
      break;
    case AlertState::kFiring:
      break;
  }
}

std::vector<Transition> AlertEngine::ObserveMetrics(const MetricSample& s) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Transition> out;
  const double now = clock_.WallSeconds();
  JobTrack& t = jobs_[s.job_id];
  // A late re-delivery from an earlier attempt says nothing about the job now.
  if (s.attempt < t.attempt) return out;
  t.running = true;
  if (s.attempt > t.attempt) {
    t.rank_latest.clear();  // a new attempt may run on other ranks
    t.attempt = s.attempt;
    t.last_step = s.step;
    t.last_progress = now;
  } else if (s.step > t.last_step) {
    t.last_step = s.step;
    t.last_progress = now;
  }
  for (const Rule* rule : RulesFor(s.job_id)) {
    const double* v = rule->metric.empty() ? nullptr : FindValue(s, rule->metric);
    AlertKey key{rule->scope, rule->name, s.job_id, -1};
    switch (rule->kind) {
      case RuleKind::kThreshold:
        if (!v) break;
        if (rule->per_rank) key.rank = s.rank;
        Apply(*rule, key, EvalThreshold(*rule, *v, s.step, Active(key)), out);
        break;
      case RuleKind::kNonFinite:
        if (!v) break;
        if (rule->per_rank) key.rank = s.rank;
        Apply(*rule, key, EvalNonFinite(*rule, *v, s.step, Active(key)), out);
        break;
      case RuleKind::kNoProgress:
        Apply(*rule, key, EvalNoProgress(*rule, t.running, now - t.last_progress, t.last_step, Active(key)), out);
        break;
      case RuleKind::kThroughputDrop: {
        if (!v || !std::isfinite(*v)) break;
        std::deque<double>& h = t.history[rule->metric];
        if (static_cast<int64_t>(h.size()) >= rule->min_samples) {
          std::vector<double> recent(h.end() - std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(h.size()), rule->window),
                                     h.end());
          Apply(*rule, key, EvalThroughputDrop(*rule, *v, *Median(recent), s.step, Active(key)), out);
        }
        break;
      }
      case RuleKind::kStraggler: {
        if (!v || !std::isfinite(*v)) break;
        auto& latest = t.rank_latest[rule->metric];
        latest[s.rank] = *v;
        EvalStragglers(s.job_id, *rule, latest, out);
        break;
      }
      case RuleKind::kDrift:
        break;
    }
  }
  // Appended after the rules read the history, so a sample is judged
  // against the samples before it; once per metric, bounded by the widest
  // window of the rules that read it.
  std::map<std::string, int64_t> caps;
  for (const Rule* rule : RulesFor(s.job_id)) {
    if (rule->kind == RuleKind::kThroughputDrop) caps[rule->metric] = std::max(caps[rule->metric], rule->window);
  }
  for (const auto& [metric, cap] : caps) {
    const double* v = FindValue(s, metric);
    if (!v || !std::isfinite(*v)) continue;
    std::deque<double>& h = t.history[metric];
    h.push_back(*v);
    while (static_cast<int64_t>(h.size()) > cap) h.pop_front();
  }
  return out;
}

void AlertEngine::EvalStragglers(const std::string& job, const Rule& rule, const std::map<int64_t, double>& latest,
                                 std::vector<Transition>& out) {
  if (latest.size() < 2) return;
  std::vector<double> others;
  for (const auto& [rank, value] : latest) {
    others.clear();
    for (const auto& [r2, v2] : latest) {
      if (r2 != rank) others.push_back(v2);
    }
    const AlertKey key{rule.scope, rule.name, job, rank};
    Apply(rule, key, EvalStraggler(rule, rank, value, *Median(others), Active(key)), out);
  }
}

void AlertEngine::EvalNoProgressFor(const std::string& job, const JobTrack& t, std::vector<Transition>& out) {
  const double now = clock_.WallSeconds();
  for (const Rule* rule : RulesFor(job)) {
    if (rule->kind != RuleKind::kNoProgress) continue;
    Apply(*rule, AlertKey{rule->scope, rule->name, job, -1},
          EvalNoProgress(*rule, t.running, now - t.last_progress, t.last_step), out);
  }
}

std::vector<Transition> AlertEngine::ObserveJobState(const std::string& job_id, const std::string& state) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Transition> out;
  if (IsTerminal(state)) {
    for (auto it = instances_.begin(); it != instances_.end();) {
      AlertInstance& inst = it->second;
      if (inst.key.job == job_id) EndInstance(inst, "the job ended (" + state + ")", out);
      it = inst.state == AlertState::kInactive ? instances_.erase(it) : std::next(it);
    }
    jobs_.erase(job_id);
    job_rules_.erase(job_id);
    return out;
  }
  JobTrack& t = jobs_[job_id];
  t.running = state == "RUNNING";
  if (t.running) t.last_progress = clock_.WallSeconds();
  EvalNoProgressFor(job_id, t, out);
  return out;
}

std::vector<Transition> AlertEngine::ObserveServing(const MetricSample& s) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Transition> out;
  // A deployment is not a job: only the rules that read one value apply
  // (no progress, throughput and stragglers are about training steps).
  for (const Rule* rule : RulesFor(s.job_id)) {
    if (rule->kind != RuleKind::kThreshold && rule->kind != RuleKind::kNonFinite) continue;
    const double* v = rule->metric.empty() ? nullptr : FindValue(s, rule->metric);
    if (!v) continue;
    AlertKey key{rule->scope, rule->name, s.job_id, -1};
    Apply(*rule, key,
          rule->kind == RuleKind::kThreshold ? EvalThreshold(*rule, *v, s.step) : EvalNonFinite(*rule, *v, s.step),
          out);
  }
  return out;
}

std::vector<Transition> AlertEngine::ObserveDrift(const DriftSample& d) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Transition> out;
  for (const Rule* rule : RulesFor(d.source)) {
    if (rule->kind != RuleKind::kDrift) continue;
    Apply(*rule, AlertKey{rule->scope, rule->name, d.source, -1}, EvalDrift(*rule, d), out);
  }
  return out;
}

std::vector<Transition> AlertEngine::Tick() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Transition> out;
  const double now = clock_.WallSeconds();
  for (const auto& [job, t] : jobs_) EvalNoProgressFor(job, t, out);
  for (auto it = instances_.begin(); it != instances_.end();) {
    AlertInstance& inst = it->second;
    const Rule* rule = FindRule(inst.key);
    if (!rule && inst.key.scope == RuleScope::kCluster) {
      EndInstance(inst, "the rule was removed from the configuration", out);
    } else if (rule && inst.state == AlertState::kPending && inst.condition &&
               now - inst.active_since >= rule->for_seconds) {
      Change(inst, AlertState::kFiring, out);
    }
    bool expired = inst.state == AlertState::kResolved && now - inst.since >= options_.keep_resolved_seconds;
    bool gone = inst.state == AlertState::kInactive || expired;
    it = gone ? instances_.erase(it) : std::next(it);
  }
  return out;
}

std::vector<AlertInstance> AlertEngine::List() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<AlertInstance> out;
  for (const auto& [key, inst] : instances_) {
    if (inst.state != AlertState::kInactive) out.push_back(inst);
  }
  std::sort(out.begin(), out.end(), [](const AlertInstance& a, const AlertInstance& b) {
    if (StateOrder(a.state) != StateOrder(b.state)) return StateOrder(a.state) < StateOrder(b.state);
    if (a.since != b.since) return a.since > b.since;
    return a.key < b.key;
  });
  return out;
}

}  // namespace gantry::monitor::alerts
