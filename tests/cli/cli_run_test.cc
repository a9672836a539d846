// The whole command line run in process (cli::RunCli): argument parsing,
// error messages and exit codes, and --json / table output against fake
// services that answer on loopback like the real ones (a run file with this
// process's pid points the CLI at them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/app.h"
#include "common/data_dir.h"
#include "common/process.h"
#include "common/rpc.h"
#include "tests/support/test_support.h"

namespace gantry::cli {
namespace {

struct Output {
  int code = 0;
  std::string out, err;
};

Output Gantry(std::vector<std::string> args) {
  args.insert(args.begin(), "gantry");
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Output o;
  o.code = RunCli(args);
  std::fflush(stdout);
  o.out = ::testing::internal::GetCapturedStdout();
  o.err = ::testing::internal::GetCapturedStderr();
  return o;
}

// A service of the cluster in `dir` served from a thread of this test.
class FakeService {
 public:
  FakeService(const DataDir& dir, const std::string& name) : dir_(dir), name_(name), server_(ctx_, {}) {
    EXPECT_TRUE(server_.Bind().ok());
  }
  ~FakeService() {
    server_.Stop();
    if (thread_.joinable()) thread_.join();
    dir_.RemoveServiceInfo(name_);
  }
  void Handle(const std::string& type, Handler h) { server_.Handle(type, std::move(h)); }
  void Start() {
    ServiceInfo info{name_, ::getpid(), {{"api", server_.endpoint()}}};
    EXPECT_TRUE(dir_.WriteServiceInfo(info).ok());
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }

 private:
  DataDir dir_;
  std::string name_;
  zmq::context_t ctx_;
  RpcServer server_;
  std::thread thread_;
};

class CliRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("GANTRY_DATA_DIR");
    ASSERT_TRUE(dir_.Ensure().ok());
  }
  gantry::testing::TempDir tmp_;
  DataDir dir_{tmp_.path() + "/cluster"};
};

TEST_F(CliRunTest, UsageErrorsExitNonZeroWithCli11sMessage) {
  Output none = Gantry({});
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("subcommand"), std::string::npos) << none.err;

  Output bad_state = Gantry({"wait", "j-1", "--state", "BOGUS"});
  EXPECT_NE(bad_state.code, 0);
  EXPECT_NE(bad_state.err.find("BOGUS"), std::string::npos) << bad_state.err;

  Output zero_slots = Gantry({"up", "--slots", "0"});
  EXPECT_NE(zero_slots.code, 0);
  EXPECT_NE(zero_slots.err.find("--slots"), std::string::npos) << zero_slots.err;

  Output missing = Gantry({"ckpt", "export", "m@v1"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("--output"), std::string::npos) << missing.err;

  Output help = Gantry({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("submit"), std::string::npos);
}

TEST_F(CliRunTest, NoClusterSaysHowToStartOne) {
  Output o = Gantry({"--data-dir", dir_.root(), "jobs"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err.rfind("gantry: no Gantry coordinator is running for data dir " + dir_.root(), 0), 0u) << o.err;
  EXPECT_NE(o.err.find("gantry up"), std::string::npos) << o.err;
  EXPECT_TRUE(o.out.empty());
}

TEST_F(CliRunTest, ErrorsBeforeAnyRequestNameTheProblem) {
  Output spec = Gantry({"--data-dir", dir_.root(), "submit", tmp_.path() + "/missing.yaml"});
  EXPECT_EQ(spec.code, 1);
  EXPECT_EQ(spec.err.rfind("gantry: ", 0), 0u) << spec.err;
  EXPECT_NE(spec.err.find("missing.yaml"), std::string::npos) << spec.err;

  Output rm = Gantry({"--data-dir", dir_.root(), "ckpt", "rm", "mnist"});
  EXPECT_EQ(rm.code, 1);
  EXPECT_EQ(rm.err, "gantry: name the version to delete: MODEL@vN\n");
}

TEST_F(CliRunTest, JobsAsJsonAndAsATable) {
  FakeService coord(dir_, kCoordinator);
  json job = {{"job_id", "j-1"}, {"name", "fmnist"}, {"state", "QUEUED"}, {"priority", 0},
              {"workers", 2}, {"slots", 2}, {"submitted_at", 0.0}, {"updated_at", 0.0},
              {"started_at", 0.0}, {"finished_at", 0.0}, {"attempt", 0}, {"restarts", 0},
              {"model", "fmnist"}, {"reason", "waiting for free slots: needs 2, 1 of 2 free"}};
  json seen;
  coord.Handle("list_jobs", [&](const Request& r) -> Result<json> {
    seen = r.body;
    return json{{"jobs", {job}}};
  });
  coord.Start();

  Output as_json = Gantry({"--data-dir", dir_.root(), "jobs", "--json", "--limit", "7"});
  ASSERT_EQ(as_json.code, 0) << as_json.err;
  EXPECT_EQ(json::parse(as_json.out), (json{{"jobs", {job}}})) << "--json prints the reply as it came";
  EXPECT_EQ(seen["limit"], 7);

  Output all = Gantry({"--data-dir", dir_.root(), "jobs", "--all"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(seen["limit"], 100000) << "--all asks for every job";
  EXPECT_EQ(all.out.rfind("ID ", 0), 0u) << all.out;
  EXPECT_NE(all.out.find("j-1  fmnist  QUEUED"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("waiting for free slots"), std::string::npos);
}

TEST_F(CliRunTest, ServiceErrorsAreOneLineAndExitOne) {
  FakeService coord(dir_, kCoordinator);
  coord.Handle("cancel_job", [](const Request& r) -> Result<json> {
    return Status::NotFound("no job " + r.body.value("job_id", std::string()) + " (list jobs with `gantry jobs`)");
  });
  coord.Start();
  Output o = Gantry({"--data-dir", dir_.root(), "cancel", "j-404"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "gantry: no job j-404 (list jobs with `gantry jobs`)\n");
}

TEST_F(CliRunTest, ReplyOfAnUnexpectedShapeIsAnErrorNotACrash) {
  FakeService coord(dir_, kCoordinator);
  coord.Handle("list_jobs", [](const Request&) -> Result<json> {
    return json{{"jobs", {{{"job_id", 5}}}}};  // job_id a number, every other field missing
  });
  coord.Start();
  Output o = Gantry({"--data-dir", dir_.root(), "jobs"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err.rfind("gantry: ", 0), 0u) << o.err;
}

TEST_F(CliRunTest, ImportChecksTheStoragesRealFrameLimit) {
  FakeService storage(dir_, kStorage);
  bool imported = false;
  storage.Handle("ping", [](const Request&) -> Result<json> {
    return json{{"service", "storage"}, {"max_message_bytes", 100 << 10}};
  });
  storage.Handle("import_version", [&](const Request&) -> Result<json> {
    imported = true;
    return json{{"model", "m"}, {"version", 1}, {"bytes", 10}, {"bytes_written", 10}};
  });
  storage.Start();
  const std::string big = tmp_.path() + "/big.pt";
  std::ofstream(big) << std::string(64 << 10, 'x');  // + the envelope allowance: over 100 KiB
  Output o = Gantry({"--data-dir", dir_.root(), "ckpt", "import", "m", big});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("at most 100.0 KiB"), std::string::npos) << o.err;
  EXPECT_FALSE(imported) << "nothing is sent that the service would drop";

  const std::string small = tmp_.path() + "/small.pt";
  std::ofstream(small) << "tiny";
  Output ok = Gantry({"--data-dir", dir_.root(), "ckpt", "import", "m", small, "--json"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_TRUE(imported);
  EXPECT_EQ(json::parse(ok.out)["version"], 1);
}

TEST_F(CliRunTest, ImportIsRefusedByTheRealStoragesConfiguredLimit) {
  const std::string bin = gantry::testing::BinDir() + "/gantry-storage";
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << "no " << bin;
  SpawnOptions so;
  so.argv = {bin, "--data-dir", dir_.root(), "--bind", "tcp://127.0.0.1:0", "--max-message-mb", "1"};
  so.stdout_path = tmp_.path() + "/storage.out";
  auto storage = ChildProcess::Spawn(so);
  ASSERT_TRUE(storage.ok()) << storage.status().ToString();
  ASSERT_TRUE(gantry::testing::WaitFor([&] {
    auto info = dir_.ReadServiceInfo(kStorage);
    return info.ok() && info->pid == storage->pid();
  }, std::chrono::seconds(20)));
  EXPECT_EQ(dir_.ReadServiceInfo(kStorage)->max_message_bytes, 1 << 20) << "the run file states the limit";
  const std::string big = tmp_.path() + "/big.pt";
  std::ofstream(big) << std::string(2 << 20, 'x');
  Output o = Gantry({"--data-dir", dir_.root(), "ckpt", "import", "m", big});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.err.find("at most 1.0 MiB"), std::string::npos) << o.err;
  storage->Terminate(std::chrono::seconds(5));
}

}  // namespace
}  // namespace gantry::cli
