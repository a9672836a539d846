#include "coordinator/retrain/gate.h"

#include <cmath>
#include <cstdio>

namespace gantry::coordinator {
namespace {

std::optional<double> Find(const EvalScores& s, const std::string& metric) {
  auto it = s.metrics.find(metric);
  if (it == s.metrics.end() || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string V(int64_t version) { return "v" + std::to_string(version); }

}  // namespace

GateDecision DecidePromotion(const GateConfig& config, const std::optional<EvalScores>& champion,
                             const EvalScores& challenger) {
  GateDecision d;
  const double sign = config.higher_is_better ? 1.0 : -1.0;
  d.challenger_value = Find(challenger, config.metric);
  if (champion) d.champion_value = Find(*champion, config.metric);

  if (!d.challenger_value) {
    d.reason = "challenger " + V(challenger.version) + " has no finite " + config.metric;
    return d;
  }
  const double c = *d.challenger_value;
  if (config.floor && sign * (c - *config.floor) < 0) {
    d.reason = "challenger " + V(challenger.version) + " " + config.metric + " " + Num(c) +
               " is below the floor " + Num(*config.floor);
    return d;
  }
  if (!champion) {
    if (!config.floor) {
      d.reason = "no champion yet and no evaluation.floor: set evaluation.floor to promote a first model";
      return d;
    }
    d.promote = true;
    d.reason = "first model: " + config.metric + " " + Num(c) + " meets the floor " + Num(*config.floor);
    return d;
  }
  if (!d.champion_value) {
    // A champion that cannot be scored is replaced by one that can.
    d.promote = true;
    d.reason = "champion " + V(champion->version) + " has no finite " + config.metric + "; challenger has " +
               Num(c);
    return d;
  }
  const double gain = sign * (c - *d.champion_value);
  if (gain <= 0 || gain < config.margin) {
    d.reason = "challenger " + V(challenger.version) + " " + config.metric + " " + Num(c) + " vs champion " +
               V(champion->version) + " " + Num(*d.champion_value) + ": gain " + Num(gain) +
               " is below the margin " + Num(config.margin);
    if (gain <= 0 && config.margin == 0) d.reason += " (must be strictly better)";
    return d;
  }
  for (const Guardrail& g : config.guardrails) {
    auto before = Find(*champion, g.metric);
    auto after = Find(challenger, g.metric);
    if (!before || !after) {
      d.reason = "guardrail " + g.metric + " is missing from the " + (before ? "challenger" : "champion") +
                 "'s evaluation";
      return d;
    }
    const double drop = (g.higher_is_better ? 1.0 : -1.0) * (*before - *after);
    if (drop > g.max_drop) {
      d.reason = "guardrail " + g.metric + " got worse by " + Num(drop) + " (" + Num(*before) + " -> " +
                 Num(*after) + "), more than its limit " + Num(g.max_drop);
      return d;
    }
  }
  d.promote = true;
  d.reason = "challenger " + V(challenger.version) + " " + config.metric + " " + Num(c) + " beats champion " +
             V(champion->version) + " " + Num(*d.champion_value) + " by " + Num(gain) + " (margin " +
             Num(config.margin) + ")";
  return d;
}

}  // namespace gantry::coordinator
