// The CLI's rendering: sizes, tables, metrics, labels and the job views,
// from canned replies shaped as docs/protocol.md says.
#include "cli/render.h"

#include <gtest/gtest.h>

#include <ctime>
#include <sstream>

#include "cli/context.h"

namespace gantry::cli {
namespace {

TEST(RenderTest, HumanSizesUseBinaryUnits) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(512.0 * (1 << 20)), "512.0 MiB");
  EXPECT_EQ(FormatBytes(3.0 * (1ull << 40)), "3.0 TiB");
  EXPECT_EQ(FormatBytes(5000.0 * (1ull << 40)), "5000.0 TiB") << "TiB is the largest unit";
}

TEST(RenderTest, DurationsAndNumbers) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(72), "1m12s");
  EXPECT_EQ(FormatDuration(3 * 3600 + 4 * 60 + 5), "3h04m");
  EXPECT_EQ(FormatDuration(-1), "-");
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatNumber(0.123456), "0.1235");
  EXPECT_EQ(FormatNumber(12346.0), "1.235e+04");
}

TEST(RenderTest, TableColumnsAlignToTheWidestCell) {
  std::string t = FormatTable({"ID", "STATE"}, {{"j-1", "RUNNING"}, {"job-long-id", "QUEUED"}});
  EXPECT_EQ(t,
            "ID           STATE\n"
            "j-1          RUNNING\n"
            "job-long-id  QUEUED\n");
  EXPECT_EQ(FormatTable({"A"}, {}), "A\n");
}

TEST(RenderTest, MetricsAndLabels) {
  EXPECT_EQ(FormatMetrics({{"loss", 0.25}, {"note", "x"}, {"test_accuracy", 0.875}}), "loss=0.25 test_accuracy=0.875");
  EXPECT_EQ(FormatMetrics(json::object()), "-");
  EXPECT_EQ(FormatMetrics(nullptr), "-");
  json v = {{"aliases", {"production"}},
            {"tags", {{{"tag", "best"}, {"protect", true}}, {{"tag", "old"}, {"protect", false}}}}};
  EXPECT_EQ(FormatLabels(v), "production,#best!,#old");
  EXPECT_EQ(FormatLabels(json::object()), "-");
}

TEST(RenderTest, RefsSplitAtTheAt) {
  EXPECT_EQ(SplitRef("mnist@v3"), std::make_pair(std::string("mnist"), std::string("v3")));
  EXPECT_EQ(SplitRef("mnist"), std::make_pair(std::string("mnist"), std::string("latest")));
  EXPECT_EQ(SplitRef("mnist@production"), std::make_pair(std::string("mnist"), std::string("production")));
}

json JobWire(const std::string& id, const std::string& state, double started, double finished) {
  return {{"job_id", id},        {"name", "fmnist"}, {"state", state},        {"priority", 0},
          {"workers", 2},        {"slots", 2},       {"submitted_at", 0.0},   {"updated_at", 0.0},
          {"started_at", started}, {"finished_at", finished}, {"attempt", 1}, {"restarts", 0},
          {"model", "fmnist"},   {"reason", "finished"}};
}

TEST(RenderTest, JobsTableAndEmptyHint) {
  std::ostringstream empty;
  RenderJobs({{"jobs", json::array()}}, empty);
  EXPECT_EQ(empty.str(), "no jobs yet; submit one with `gantry submit configs/jobs/fashion_mnist.yaml`\n");

  std::ostringstream out;
  RenderJobs({{"jobs", {JobWire("j-20261201-0001", "SUCCEEDED", 1000, 1072)}}}, out);
  std::istringstream lines(out.str());
  std::string header, row, extra;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_FALSE(std::getline(lines, extra)) << out.str();
  EXPECT_EQ(header.rfind("ID", 0), 0u);
  EXPECT_NE(header.find("STATE"), std::string::npos);
  EXPECT_EQ(row.rfind("j-20261201-0001  fmnist", 0), 0u) << row;
  EXPECT_NE(row.find("SUCCEEDED"), std::string::npos);
  EXPECT_NE(row.find("1m12s"), std::string::npos) << "duration from started_at/finished_at: " << row;
  EXPECT_EQ(header.find("STATE"), row.find("SUCCEEDED")) << "columns line up";
}

TEST(RenderTest, EstimatedStartOfWaitingJobs) {
  json j = JobWire("j", "QUEUED", 0, 0);
  EXPECT_EQ(EstimatedStart(j, 1000), "unknown") << "no estimated_start";
  j["estimated_start"] = nullptr;
  EXPECT_EQ(EstimatedStart(j, 1000), "unknown");
  j["estimated_start"] = 1250.0;
  EXPECT_EQ(EstimatedStart(j, 1000), "in " + FormatDuration(250));
  EXPECT_EQ(EstimatedStart(j, 1300), "now");
  j["state"] = "RUNNING";
  EXPECT_EQ(EstimatedStart(j, 1000), "-");
  std::ostringstream out;
  json waiting = JobWire("j-2", "QUEUED", 0, 0);
  waiting["reason"] = "behind job j-1 (reservation: starting now could delay it)";
  RenderJobs({{"jobs", {waiting}}}, out);
  EXPECT_NE(out.str().find("START"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("unknown  behind job j-1 (reservation"), std::string::npos) << out.str();
}

TEST(RenderTest, JobDurationBeforeStartIsADash) {
  EXPECT_EQ(JobDuration(JobWire("j", "QUEUED", 0, 0)), "-");
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_EQ(JobDuration(JobWire("j", "RUNNING", now - 30, 0)).back(), 's') << "running: up to now";
}

TEST(RenderTest, JobShowListsAttemptsAndProgress) {
  json reply = {{"job", JobWire("j-1", "RUNNING", 1000, 0)},
                {"spec",
                 {{"resources", {{"slots_per_worker", 1}, {"device", "cpu"}}},
                  {"model", {{"builtin", "mlp"}}},
                  {"data", {{"path", "/data/fmnist"}}}}},
                {"job_dir", "/c/jobs/j-1"},
                {"progress", {{"ranks", {{{"rank", 0}, {"step", 40}, {"seconds_since_heartbeat", 2.0}}}},
                              {"seconds_since_heartbeat", 2.0}}},
                {"attempts",
                 {{{"attempt", 1}, {"outcome", ""}, {"started_at", 1000.0}, {"ended_at", 0.0},
                   {"message", ""}, {"log_dir", "/c/jobs/j-1/attempt-1"}}}}};
  std::ostringstream out;
  RenderJob(reply, out);
  const std::string s = out.str();
  EXPECT_NE(s.find("Job j-1 (fmnist)"), std::string::npos) << s;
  EXPECT_NE(s.find("workers    2 x 1 slot (cpu)"), std::string::npos) << s;
  EXPECT_NE(s.find("rank 0 step 40 (2s ago)"), std::string::npos) << s;
  EXPECT_NE(s.find("running"), std::string::npos) << "an attempt without outcome is running: " << s;
  EXPECT_NE(s.find("/c/jobs/j-1/attempt-1"), std::string::npos);
}

TEST(RenderTest, RequestSizeIsCheckedAgainstTheServicesLimit) {
  json ping = {{"service", "storage"}, {"max_message_bytes", 1 << 20}};
  EXPECT_TRUE(CheckRequestFits(ping, 1 << 20, "model.pt").ok());
  Status s = CheckRequestFits(ping, (1 << 20) + 1, "model.pt");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("model.pt"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("at most 1.0 MiB"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--max-message-mb"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckRequestFits({{"service", "storage"}}, uint64_t{1} << 40, "x").ok())
      << "a service that states no limit is not second-guessed";
}

}  // namespace
}  // namespace gantry::cli
