// Schedule YAML: a full spec reads back; each kind of mistake names its field.
#include "coordinator/retrain/schedule_spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/config.h"
#include "tests/support/test_support.h"

namespace gantry::coordinator {
namespace {

const char* kJob = R"(
job:
  name: fmnist
  model: {builtin: mlp}
  data: {format: idx, path: /usr/share/datasets/fashion-mnist}
  resources: {workers: 1}
  train: {epochs: 1, batch_size: 64}
)";

Result<ScheduleSpec> ParseYaml(const std::string& text) {
  auto j = YamlToJson(text);
  if (!j.ok()) return j.status();
  return ScheduleSpec::Parse(*j);
}

TEST(ScheduleSpec, FullSpecReadsBack) {
  auto s = ParseYaml(std::string("name: nightly\nchampion: prod\nreplay: 0.25\n") + kJob + R"(
triggers:
  cron: "0 3 * * *"
  time_zone: Europe/Berlin
  new_data: {dir: /srv/incoming, min_files: 2}
  drift: true
  alerts: [live-accuracy-low]
evaluation:
  metric: accuracy
  margin: 0.005
  floor: 0.8
  guardrails: [{metric: loss, max_drop: 0.05, higher_is_better: false}]
)");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "nightly");
  EXPECT_EQ(s->model, "fmnist") << "defaults to the job's model";
  EXPECT_EQ(s->champion, "prod");
  ASSERT_TRUE(s->cron);
  EXPECT_EQ(s->cron->time_zone(), "Europe/Berlin");
  ASSERT_TRUE(s->new_data);
  EXPECT_EQ(s->new_data->thresholds.min_files, 2);
  EXPECT_TRUE(s->on_drift);
  EXPECT_EQ(s->on_alerts, std::vector<std::string>{"live-accuracy-low"});
  EXPECT_DOUBLE_EQ(s->replay, 0.25);
  EXPECT_EQ(*s->gate.floor, 0.8);
  ASSERT_EQ(s->gate.guardrails.size(), 1u);
  EXPECT_FALSE(s->gate.guardrails[0].higher_is_better);

  // ToJson is a spec Parse accepts again, to the same values.
  auto again = ScheduleSpec::Parse(s->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), s->ToJson());
}

TEST(ScheduleSpec, MistakesNameTheField) {
  struct Case {
    std::string yaml;
    std::string want;
  };
  const std::string job = kJob;
  const Case cases[] = {
      {"champion: x\n" + job, "schedule: name is required"},
      {"name: a\n", "schedule: job is required"},
      {"name: a\njob: /nonexistent/job.yaml\n", "schedule: job cannot read /nonexistent/job.yaml"},
      {"name: a\nreplay: 1.5\n" + job, "schedule: replay must be in [0, 1)"},
      {"name: a\nretries: 3\n" + job, "unknown field retries"},
      {"name: a\n" + job + "triggers: {cron: '0 25 * * *'}\n", "triggers.cron is invalid: cron field 2 (hour)"},
      {"name: a\n" + job + "triggers: {cron: '@daily', time_zone: Moon/Base}\n", "triggers.time_zone is invalid"},
      {"name: a\n" + job + "triggers: {time_zone: UTC}\n", "triggers.time_zone is only meaningful with triggers.cron"},
      {"name: a\n" + job + "triggers: {new_data: {min_files: 1}}\n", "triggers.new_data.dir is required"},
      {"name: a\n" + job + "triggers: {alerts: [1]}\n", "triggers.alerts must be a list of alert rule names"},
      {"name: a\n" + job + "evaluation: {margin: -1}\n", "evaluation.margin must be >= 0"},
      {"name: a\n" + job + "evaluation: {guardrails: [{max_drop: 1}]}\n",
       "evaluation.guardrails[0].metric is required"},
      {"name: a\n" + job + "evaluation: {metrc: loss}\n", "unknown field evaluation.metrc"},
      {"name: a\njob: {name: j, resources: {workers: 0}}\n", "schedule: job spec: data.path is required"},
  };
  for (const Case& c : cases) {
    auto s = ParseYaml(c.yaml);
    ASSERT_FALSE(s.ok()) << c.yaml;
    EXPECT_NE(s.status().message().find(c.want), std::string::npos)
        << "want: " << c.want << "\ngot:  " << s.status().message();
  }
}

TEST(ScheduleSpec, JobTemplateFromAFileRelativeToTheSchedule) {
  testing::TempDir dir;
  // kJob's body without its "job:" line, unindented by two spaces.
  std::string body;
  std::istringstream in(kJob);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  ", 0) == 0) body += line.substr(2) + "\n";
  }
  std::ofstream(dir.File("train.yaml")) << body;
  auto j = YamlToJson("name: weekly\njob: train.yaml\n");
  ASSERT_TRUE(j.ok());
  auto s = ScheduleSpec::Parse(*j, dir.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->job.name, "fmnist");
  EXPECT_EQ(s->champion, "production");
  EXPECT_FALSE(s->cron);
}

}  // namespace
}  // namespace gantry::coordinator
