// The evaluation gate: a worse challenger is never promoted; a first model
// needs a floor; guardrails hold a promotion back.
#include "coordinator/retrain/gate.h"

#include <gtest/gtest.h>

#include <cmath>

namespace gantry::coordinator {
namespace {

EvalScores Scores(int64_t version, std::map<std::string, double> m) { return {version, std::move(m)}; }

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Gate, WorseOrEqualChallengerIsNeverPromoted) {
  GateConfig cfg;
  cfg.margin = 0;
  auto champ = Scores(3, {{"accuracy", 0.85}});
  for (double acc : {0.84, 0.85, 0.0}) {
    auto d = DecidePromotion(cfg, champ, Scores(4, {{"accuracy", acc}}));
    EXPECT_FALSE(d.promote) << acc;
    EXPECT_TRUE(Has(d.reason, "below the margin")) << d.reason;
    EXPECT_EQ(*d.champion_value, 0.85);
    EXPECT_EQ(*d.challenger_value, acc);
  }
}

TEST(Gate, MarginMustBeMet) {
  GateConfig cfg;
  cfg.margin = 0.01;
  auto champ = Scores(3, {{"accuracy", 0.85}});
  EXPECT_FALSE(DecidePromotion(cfg, champ, Scores(4, {{"accuracy", 0.855}})).promote);
  auto d = DecidePromotion(cfg, champ, Scores(4, {{"accuracy", 0.87}}));
  EXPECT_TRUE(d.promote);
  EXPECT_TRUE(Has(d.reason, "beats champion v3")) << d.reason;
}

TEST(Gate, LowerIsBetterMetrics) {
  GateConfig cfg;
  cfg.metric = "loss";
  cfg.higher_is_better = false;
  auto champ = Scores(1, {{"loss", 0.5}});
  EXPECT_TRUE(DecidePromotion(cfg, champ, Scores(2, {{"loss", 0.4}})).promote);
  EXPECT_FALSE(DecidePromotion(cfg, champ, Scores(2, {{"loss", 0.6}})).promote);
}

TEST(Gate, FirstModelNeedsAFloor) {
  GateConfig cfg;
  auto d = DecidePromotion(cfg, std::nullopt, Scores(1, {{"accuracy", 0.9}}));
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(Has(d.reason, "set evaluation.floor")) << d.reason;
  cfg.floor = 0.8;
  EXPECT_TRUE(DecidePromotion(cfg, std::nullopt, Scores(1, {{"accuracy", 0.9}})).promote);
  d = DecidePromotion(cfg, std::nullopt, Scores(1, {{"accuracy", 0.7}}));
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(Has(d.reason, "below the floor 0.8")) << d.reason;
}

TEST(Gate, NonFiniteOrMissingChallengerMetricIsRefused) {
  GateConfig cfg;
  cfg.floor = 0.1;
  EXPECT_FALSE(DecidePromotion(cfg, std::nullopt, Scores(1, {{"accuracy", std::nan("")}})).promote);
  auto d = DecidePromotion(cfg, std::nullopt, Scores(1, {{"loss", 0.1}}));
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(Has(d.reason, "has no finite accuracy")) << d.reason;
}

TEST(Gate, GuardrailHoldsBackABetterChallenger) {
  GateConfig cfg;
  cfg.guardrails.push_back({"recall_class_6", 0.02, true});
  auto champ = Scores(3, {{"accuracy", 0.85}, {"recall_class_6", 0.60}});
  auto d = DecidePromotion(cfg, champ, Scores(4, {{"accuracy", 0.90}, {"recall_class_6", 0.50}}));
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(Has(d.reason, "guardrail recall_class_6 got worse by 0.1")) << d.reason;
  EXPECT_TRUE(DecidePromotion(cfg, champ, Scores(4, {{"accuracy", 0.90}, {"recall_class_6", 0.59}})).promote);
  d = DecidePromotion(cfg, champ, Scores(4, {{"accuracy", 0.90}}));
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(Has(d.reason, "missing from the challenger")) << d.reason;
}

}  // namespace
}  // namespace gantry::coordinator
