#include "common/job_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/config.h"
#include "tests/support/test_support.h"

namespace gantry {
namespace {

const char* kValid = R"(
name: fashion-mnist
model: {builtin: mlp, hidden: [64]}
data: {path: /tmp}
resources: {workers: 2}
train:
  steps: 50
  batch_size: 32
  optimizer: {name: sgd, lr: 0.1}
checkpoint: {every_steps: 10}
)";

Result<JobSpec> ParseYaml(const std::string& text, const std::vector<std::string>& sets = {}) {
  auto j = YamlToJson(text);
  if (!j.ok()) return j.status();
  for (const auto& s : sets) {
    Status st = ApplyOverride(*j, s);
    if (!st.ok()) return st;
  }
  return JobSpec::Parse(*j);
}

std::string Error(const std::string& text, const std::vector<std::string>& sets = {}) {
  auto r = ParseYaml(text, sets);
  return r.ok() ? "" : r.status().message();
}

TEST(JobSpec, ParsesValidSpecWithDefaults) {
  auto s = ParseYaml(kValid);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "fashion-mnist");
  EXPECT_EQ(s->resources.workers, 2);
  EXPECT_EQ(s->train.steps, 50);
  EXPECT_EQ(s->train.threads, 1);
  EXPECT_EQ(s->checkpoint.model, "fashion-mnist");  // defaults to the name
  EXPECT_EQ(s->model.hidden, std::vector<int64_t>{64});
  EXPECT_EQ(s->SlotsNeeded(), 2);
}

TEST(JobSpec, ToJsonRoundTrips) {
  auto s = ParseYaml(kValid);
  ASSERT_TRUE(s.ok());
  auto again = JobSpec::Parse(s->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), s->ToJson());
}

TEST(JobSpec, AlertsAreValidatedAndKept) {
  const std::string rules = "alerts:\n  - {name: nan-cancel, kind: nonfinite, metric: loss, action: cancel}\n";
  auto s = ParseYaml(std::string(kValid) + rules);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->alerts.is_array());
  EXPECT_EQ(s->alerts[0]["name"], "nan-cancel");
  auto again = JobSpec::Parse(s->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), s->ToJson());
  EXPECT_TRUE(ParseYaml(kValid)->ToJson().count("alerts") == 0);
  std::string e = Error(std::string(kValid) + "alerts:\n  - {name: x, kind: nonfinite, for: soon}\n");
  EXPECT_NE(e.find("alerts[0].for"), std::string::npos) << e;
  e = Error(std::string(kValid) + "alerts:\n  - {name: x, kind: nonfinite, action: explode}\n");
  EXPECT_NE(e.find("alerts[0].action"), std::string::npos) << e;
}

TEST(JobSpec, NegativeBatchSizeNamesFieldAndValue) {
  EXPECT_EQ(Error(kValid, {"train.batch_size=-4"}), "job spec: train.batch_size must be > 0 (got -4)");
}

TEST(JobSpec, MaxRuntimeTakesSecondsOrUnits) {
  auto plain = ParseYaml(kValid);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->max_runtime, 0) << "not declared";
  EXPECT_FALSE(plain->ToJson().contains("max_runtime"));
  auto secs = ParseYaml(std::string(kValid) + "max_runtime: 90\n");
  ASSERT_TRUE(secs.ok()) << secs.status().ToString();
  EXPECT_EQ(secs->max_runtime, 90);
  auto hours = ParseYaml(std::string(kValid) + "max_runtime: 2h\n");
  ASSERT_TRUE(hours.ok()) << hours.status().ToString();
  EXPECT_EQ(hours->max_runtime, 7200);
  EXPECT_EQ(JobSpec::Parse(hours->ToJson())->max_runtime, 7200) << "round trip";
  EXPECT_EQ(ParseYaml(std::string(kValid) + "max_runtime: 30m\n")->max_runtime, 1800);
  std::string e = Error(std::string(kValid) + "max_runtime: soon\n");
  EXPECT_NE(e.find("max_runtime must be a positive duration"), std::string::npos) << e;
  e = Error(std::string(kValid) + "max_runtime: -5\n");
  EXPECT_NE(e.find("max_runtime must be a positive duration"), std::string::npos) << e;
  e = Error(std::string(kValid) + "max_runtime: 3w\n");
  EXPECT_NE(e.find("(got \"3w\")"), std::string::npos) << e;
}

TEST(JobSpec, UnknownFieldIsRefused) {
  std::string e = Error(kValid, {"train.batchsize=4"});
  EXPECT_NE(e.find("unknown field train.batchsize"), std::string::npos) << e;
  e = Error(std::string(kValid) + "colour: blue\n");
  EXPECT_NE(e.find("unknown field colour"), std::string::npos) << e;
}

TEST(JobSpec, WrongTypeNamesField) {
  std::string e = Error(kValid, {"resources.workers=two"});
  EXPECT_EQ(e, "job spec: resources.workers must be an integer (got \"two\")");
  e = Error(kValid, {"train.optimizer.lr=fast"});
  EXPECT_NE(e.find("train.optimizer.lr must be a number"), std::string::npos) << e;
  e = Error("name: x\ndata: [1, 2]\n");
  EXPECT_NE(e.find("data must be a map"), std::string::npos) << e;
}

TEST(JobSpec, MissingRequiredFields) {
  EXPECT_NE(Error("data: {path: /tmp}\n").find("name is required"), std::string::npos);
  EXPECT_NE(Error("name: x\n").find("data.path is required"), std::string::npos);
}

TEST(JobSpec, EnumsAndRanges) {
  EXPECT_NE(Error(kValid, {"model.builtin=resnet"}).find("model.builtin must be one of mlp, cnn"), std::string::npos);
  EXPECT_NE(Error(kValid, {"resources.workers=0"}).find("resources.workers must be > 0"), std::string::npos);
  EXPECT_NE(Error(kValid, {"train.optimizer.name=lbfgs"}).find("train.optimizer.name"), std::string::npos);
  EXPECT_NE(Error(kValid, {"name=../evil"}).find("name is invalid"), std::string::npos);
}

TEST(JobSpec, RelativePathsResolveAgainstSpecDirectory) {
  auto j = YamlToJson("name: x\ndata: {path: data/fmnist}\n");
  ASSERT_TRUE(j.ok());
  auto s = JobSpec::Parse(*j, "/home/u/project/configs");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->data.path, "/home/u/project/configs/data/fmnist");
}

TEST(JobSpec, CheckFilesReportsMissingData) {
  testing::TempDir tmp;
  const std::filesystem::path dir = tmp.path();
  auto s = ParseYaml(kValid, {"data.path=" + dir.string()});
  ASSERT_TRUE(s.ok());
  Status missing = s->CheckFiles();
  EXPECT_NE(missing.message().find("data.train_images"), std::string::npos) << missing.ToString();
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"}) {
    std::ofstream(dir / f) << "x";
  }
  EXPECT_TRUE(s->CheckFiles().ok());
  auto gone = ParseYaml(kValid, {"data.path=/nonexistent/dir"});
  ASSERT_TRUE(gone.ok());
  EXPECT_NE(gone->CheckFiles().message().find("data.path"), std::string::npos);
}

TEST(Config, OverrideSyntaxErrors) {
  json j = json::object();
  EXPECT_FALSE(ApplyOverride(j, "novalue").ok());
  EXPECT_FALSE(ApplyOverride(j, "a..b=1").ok());
  EXPECT_TRUE(ApplyOverride(j, "a.b=1").ok());
  EXPECT_EQ(j["a"]["b"], 1);
  EXPECT_FALSE(ApplyOverride(j, "a.b.c=1").ok());  // a.b is a number
}

TEST(Config, YamlScalarsKeepTheirTypes) {
  auto j = YamlToJson("a: 50\nb: 0.5\nc: true\nd: '50'\ne: hello\nf: ~\n");
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE((*j)["a"].is_number_integer());
  EXPECT_TRUE((*j)["b"].is_number_float());
  EXPECT_TRUE((*j)["c"].is_boolean());
  EXPECT_TRUE((*j)["d"].is_string());
  EXPECT_EQ((*j)["e"], "hello");
  EXPECT_TRUE((*j)["f"].is_null());
  EXPECT_FALSE(YamlToJson("a: [1, 2").ok());
}

}  // namespace
}  // namespace gantry

namespace gantry {
namespace {

TEST(JobSpec, RetrainSectionIsValidatedAndRoundTrips) {
  const std::string shards = std::string(kValid) +
                             "retrain: {new_files: [part-1.csv], replay: 0.2, replay_seed: 3, champion: m@v2}\n";
  // new_files need a shard directory; champion needs a held-out set.
  EXPECT_NE(Error(shards).find("retrain.new_files needs data.format shards"), std::string::npos) << Error(shards);
  auto ok = ParseYaml(shards, {"data.format=shards", "data.test_file=/tmp/holdout.csv"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->retrain.new_files, (std::vector<std::string>{"part-1.csv"}));
  EXPECT_EQ(ok->retrain.champion, "m@v2");
  auto back = JobSpec::Parse(ok->ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->retrain.new_files, ok->retrain.new_files);
  EXPECT_DOUBLE_EQ(back->retrain.replay, 0.2);
  EXPECT_EQ(back->retrain.replay_seed, 3u);
  EXPECT_EQ(back->retrain.champion, "m@v2");
  EXPECT_EQ(ParseYaml(kValid)->ToJson().count("retrain"), 0u) << "an ordinary job has no retrain section";

  EXPECT_NE(Error(kValid, {"data.format=shards", "retrain.champion=m@v1"})
                .find("retrain.champion needs a held-out set to score it on: set data.test_file"),
            std::string::npos);
  EXPECT_NE(Error(kValid, {"retrain.champion=nope"}).find("retrain.champion must be MODEL@REF"), std::string::npos);
  EXPECT_NE(Error(kValid, {"retrain.replay=1"}).find("retrain.replay must be in [0, 1)"), std::string::npos);
  EXPECT_NE(Error(std::string(kValid) + "retrain: {new_files: [a/b.csv]}\n", {"data.format=shards"})
                .find("retrain.new_files must name shards of data.path without a directory"),
            std::string::npos);
  EXPECT_NE(Error(kValid, {"retrain.bogus=1"}).find("unknown field retrain.bogus"), std::string::npos);
}

}  // namespace
}  // namespace gantry
