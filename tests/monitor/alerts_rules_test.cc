// Alert rules from YAML: every kind parses with its defaults, and each
// mistake is refused with the field path and the fix.
#include <gtest/gtest.h>

#include <fstream>

#include "common/config.h"
#include "monitor/alerts/rule.h"
#include "tests/monitor/test_support.h"

namespace gantry::monitor::alerts {
namespace {

json Yaml(const std::string& text) {
  auto j = YamlToJson(text);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : json();
}

// The error message of parsing `yaml` (an `alerts:` list) as job-spec rules.
std::string Error(const std::string& yaml) {
  json root = Yaml(yaml);
  auto r = ParseRules(root["alerts"], "alerts");
  if (r.ok()) return "(parsed)";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(AlertRulesTest, ParsesEveryKindWithDefaults) {
  json root = Yaml(R"(
alerts:
  - {name: high-loss, kind: threshold, metric: loss, op: ">=", value: 5, for: 2m, severity: critical,
     labels: {team: vision, tier: 1}, annotations: {runbook: "http://wiki/loss"}}
  - {name: loss-nan, kind: nonfinite, action: cancel}
  - {name: stalled, kind: no_progress, after: 10m}
  - {name: slow, kind: throughput_drop, drop_percent: 40, window: 20, min_samples: 5, for: 1m30s}
  - {name: straggler, kind: straggler, factor: 2, for: 30s}
  - {name: drift, kind: drift, share: 0.1, webhook: "http://127.0.0.1:9/hook"}
  - {name: drift-verdict, kind: drift}
)");
  auto r = ParseRules(root["alerts"], "alerts", RuleScope::kJob);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& rules = *r;
  ASSERT_EQ(rules.size(), 7u);
  EXPECT_EQ(rules[0].kind, RuleKind::kThreshold);
  EXPECT_EQ(rules[0].op, CompareOp::kGe);
  EXPECT_EQ(rules[0].value, 5);
  EXPECT_EQ(rules[0].for_seconds, 120);
  EXPECT_EQ(rules[0].severity, "critical");
  EXPECT_EQ(rules[0].labels.at("tier"), "1");
  EXPECT_EQ(rules[0].annotations.at("runbook"), "http://wiki/loss");
  EXPECT_EQ(rules[0].scope, RuleScope::kJob);
  EXPECT_EQ(rules[1].metric, "loss");
  EXPECT_EQ(rules[1].action, Action::kCancel);
  EXPECT_EQ(rules[1].for_seconds, 0);
  EXPECT_EQ(rules[2].after_seconds, 600);
  EXPECT_EQ(rules[3].metric, "samples_per_sec");
  EXPECT_EQ(rules[3].drop_percent, 40);
  EXPECT_EQ(rules[3].window, 20);
  EXPECT_EQ(rules[3].min_samples, 5);
  EXPECT_EQ(rules[3].for_seconds, 90);
  EXPECT_EQ(rules[4].metric, "step_time");
  EXPECT_EQ(rules[4].factor, 2);
  ASSERT_TRUE(rules[5].share.has_value());
  EXPECT_EQ(*rules[5].share, 0.1);
  EXPECT_EQ(rules[5].webhook, "http://127.0.0.1:9/hook");
  EXPECT_FALSE(rules[6].share.has_value());
  EXPECT_EQ(rules[6].action, Action::kNone);
  EXPECT_EQ(rules[6].severity, "warning");
}

TEST(AlertRulesTest, DurationsAcceptUnitsAndRefuseJunk) {
  EXPECT_EQ(*ParseDuration(json("30s")), 30);
  EXPECT_EQ(*ParseDuration(json("5m")), 300);
  EXPECT_EQ(*ParseDuration(json("1h30m")), 5400);
  EXPECT_EQ(*ParseDuration(json("250ms")), 0.25);
  EXPECT_EQ(*ParseDuration(json("1d")), 86400);
  EXPECT_EQ(*ParseDuration(json(45)), 45);
  EXPECT_EQ(*ParseDuration(json("45")), 45);
  EXPECT_FALSE(ParseDuration(json("x")).ok());
  EXPECT_FALSE(ParseDuration(json("5 m")).ok());
  EXPECT_FALSE(ParseDuration(json("5w")).ok());
  EXPECT_FALSE(ParseDuration(json("m5")).ok());
  EXPECT_FALSE(ParseDuration(json(-1)).ok());
  EXPECT_FALSE(ParseDuration(json("")).ok());
}

TEST(AlertRulesTest, ErrorsNameTheFieldAndTheFix) {
  const std::string ok3 = "  - {name: a, kind: nonfinite}\n  - {name: b, kind: nonfinite}\n";
  EXPECT_EQ(Error("alerts:\n" + ok3 + "  - {name: c, kind: threshold, metric: loss, value: 1, for: x}\n"),
            "job spec: alerts[2].for must be a duration like 30s, 5m or 1h (got \"x\")");
  EXPECT_EQ(Error("alerts:\n  - {kind: nonfinite}\n"),
            "job spec: alerts[0].name is required (a short id such as loss-nan)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: magic}\n"),
            "job spec: alerts[0].kind must be one of threshold, nonfinite, no_progress, throughput_drop, "
            "straggler, drift (got 'magic')");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: threshold, value: 1}\n"),
            "job spec: alerts[0].metric is required for a threshold rule (e.g. loss)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: threshold, metric: loss}\n"),
            "job spec: alerts[0].value is required for a threshold rule (the number to compare with)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: threshold, metric: loss, value: 1, op: '=='}\n"),
            "job spec: alerts[0].op must be one of \">\", \">=\", \"<\", \"<=\" (quote it in YAML) (got '==')");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: threshold, metric: loss, value: high}\n"),
            "job spec: alerts[0].value must be a number (got \"high\")");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, metrc: loss}\n"),
            "job spec: unknown field alerts[0].metrc (check the spelling; docs/monitor.md lists every field)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, factor: 2}\n"),
            "job spec: alerts[0].factor applies to straggler rules only (this rule is nonfinite)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, action: kill}\n"),
            "job spec: alerts[0].action must be none or cancel (got 'kill')");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, severity: page}\n"),
            "job spec: alerts[0].severity must be info, warning or critical (got 'page')");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: straggler, factor: 0.5}\n"),
            "job spec: alerts[0].factor must be > 1 (got 0.500000)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: throughput_drop, drop_percent: 120}\n"),
            "job spec: alerts[0].drop_percent must be between 0 and 100, exclusive (got 120.000000)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: drift, share: 2}\n"),
            "job spec: alerts[0].share must be in (0, 1], a fraction of the features (got 2.000000)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: no_progress, after: 0s}\n"),
            "job spec: alerts[0].after must be > 0 (how long without a new step)");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, webhook: 'https://x/y'}\n"),
            "job spec: alerts[0].webhook must be plain http:// (got 'https://x/y'); for TLS point it at a "
            "local relay such as an nginx proxy");
  EXPECT_EQ(Error("alerts:\n  - {name: a, kind: nonfinite, labels: [x]}\n"),
            "job spec: alerts[0].labels must be a map of names to text (got [\"x\"])");
  EXPECT_EQ(Error("alerts:\n  - {name: 'a b', kind: nonfinite}\n"),
            "job spec: alerts[0].name must be 1-64 letters, digits, '_', '-' or '.' (got 'a b')");
  EXPECT_EQ(Error("alerts:\n" + ok3 + "  - {name: a, kind: nonfinite}\n"),
            "job spec: alerts[2].name 'a' is used by an earlier rule; rule names must be unique");
  EXPECT_EQ(Error("alerts: {name: a}\n"), "job spec: alerts must be a list of rules (got {\"name\":\"a\"})");
  EXPECT_EQ(Error("alerts:\n  - loss\n"), "job spec: alerts[0] must be a map with name and kind (got \"loss\")");
}

TEST(AlertRulesTest, ClusterFileReadsWebhookAndRules) {
  testing::TempDir dir;
  std::string path = dir.path() + "/alerts.yaml";
  std::ofstream(path) << "webhook: http://127.0.0.1:9000/hook\nkeep_resolved: 2h\n"
                         "alerts:\n  - {name: stalled, kind: no_progress, after: 5m}\n";
  auto cfg = LoadAlertsFile(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->webhook, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(cfg->keep_resolved_seconds, 7200);
  ASSERT_EQ(cfg->rules.size(), 1u);
  EXPECT_EQ(cfg->rules[0].scope, RuleScope::kCluster);
  EXPECT_EQ(cfg->rules[0].after_seconds, 300);

  std::ofstream(path) << "webhok: http://x\n";
  cfg = LoadAlertsFile(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("unknown field webhok"), std::string::npos) << cfg.status().message();
  EXPECT_EQ(cfg.status().message().rfind(path, 0), 0u) << cfg.status().message();
}

TEST(AlertRulesTest, ShippedDefaultFileIsValid) {
  auto cfg = LoadAlertsFile(std::string(GANTRY_TEST_SOURCE_DIR) + "/configs/alerts.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_GE(cfg->rules.size(), 5u);
}

}  // namespace
}  // namespace gantry::monitor::alerts
