// The evaluation gate of a retraining run: given the champion's and the
// challenger's scores on the same held-out set, decide whether the
// challenger takes the champion alias (docs/retraining.md, "The gate").
//
// Rules, in the order they are checked (the first that fails is the reason):
//   1. the challenger has a finite value for the gate metric;
//   2. it meets `floor` when one is set (always required with no champion:
//      a first model is promoted only above an absolute floor);
//   3. with a champion: it beats the champion's value by at least `margin`
//      (and strictly, so equal scores never move the alias);
//   4. no guardrail metric gets worse by more than its `max_drop`.
// Every decision carries both scores and a sentence saying why, for the
// schedule's history.
//
// Pure functions; no state, any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gantry::coordinator {

struct Guardrail {
  std::string metric;
  double max_drop = 0;            // in the metric's own units, >= 0
  bool higher_is_better = true;   // false for loss-like metrics
};

struct GateConfig {
  std::string metric = "accuracy";
  bool higher_is_better = true;
  double margin = 0;              // >= 0
  std::optional<double> floor;    // required to promote a first model
  std::vector<Guardrail> guardrails;
};

// Scores of one model version on the held-out set.
struct EvalScores {
  int64_t version = 0;
  std::map<std::string, double> metrics;
};

struct GateDecision {
  bool promote = false;
  std::string reason;
  std::optional<double> champion_value;
  std::optional<double> challenger_value;
};

GateDecision DecidePromotion(const GateConfig& config, const std::optional<EvalScores>& champion,
                             const EvalScores& challenger);

}  // namespace gantry::coordinator
