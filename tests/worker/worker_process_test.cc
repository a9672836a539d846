// gantry-worker as a real process: under `mpirun -np 2` against an in-test
// fake storage service (RpcServer) and an in-test monitor (ZeroMQ PULL), and
// alone for argument and spec errors.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <map>
#include <thread>

#include "common/process.h"
#include "common/rpc.h"
#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

using std::chrono::steady_clock;

std::string BinDir() {
  const char* env = std::getenv("GANTRY_BIN_DIR");
#ifdef GANTRY_TEST_BIN_DIR
  return env != nullptr ? env : GANTRY_TEST_BIN_DIR;
#else
  return env != nullptr ? env : SelfDir() + "/../bin";
#endif
}

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path != nullptr ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    worker_ = BinDir() + "/gantry-worker";
    ASSERT_EQ(::access(worker_.c_str(), X_OK), 0) << "no executable " << worker_;
    testing::WriteSyntheticDataset(dir_.path(), "train", 600);
    testing::WriteSyntheticDataset(dir_.path(), "t10k", 100);
  }

  std::string WriteSpec(json overrides) {
    json spec = {{"name", "tiny"},
                 {"model", {{"builtin", "mlp"}, {"hidden", {32}}}},
                 {"data", {{"path", dir_.path()}, {"limit", 512}}},
                 {"resources", {{"workers", 2}}},
                 {"train", {{"steps", 10}, {"batch_size", 16}, {"log_every", 4}, {"threads", 1}}},
                 {"checkpoint", {{"model", "tiny-model"}, {"every_steps", 5}}}};
    if (overrides.is_object()) spec.merge_patch(overrides);
    std::string path = dir_.File("spec.json");
    std::ofstream(path) << spec.dump(2);
    return path;
  }

  // Runs `argv` to completion (at most `limit`), draining `pull` meanwhile.
  ExitInfo RunToEnd(std::vector<std::string> argv, zmq::socket_t* pull,
                    std::chrono::seconds limit = std::chrono::seconds(60)) {
    SpawnOptions opts;
    opts.argv = std::move(argv);
    opts.env = {{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
                {"OMP_NUM_THREADS", "1"}};
    opts.stdout_path = dir_.File("launcher.log");
    auto child = ChildProcess::Spawn(opts);
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return {};
    auto deadline = steady_clock::now() + limit;
    while (steady_clock::now() < deadline) {
      if (auto exit = child->Poll()) {
        Drain(pull, std::chrono::milliseconds(0));
        return *exit;
      }
      // Waiting on the metrics socket is the pause between polls of the child.
      Drain(pull, std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "worker still running after " << limit.count() << " s";
    return child->Terminate(std::chrono::seconds(2));
  }

  void Drain(zmq::socket_t* pull, std::chrono::milliseconds wait) {
    // Without a metrics socket, waiting on an idle one paces the loop.
    if (pull == nullptr) pull = &idle_;
    zmq::pollitem_t item{pull->handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, wait);
    zmq::message_t m;
    while (pull->recv(m, zmq::recv_flags::dontwait)) {
      auto j = ParseMsgpack(m.to_string_view());
      ASSERT_TRUE(j.ok()) << j.status().ToString();
      metrics_.push_back(*j);
    }
  }

  std::string Logs() const {
    std::string all = "--- launcher.log\n" + Slurp(dir_.File("launcher.log"));
    for (const char* f : {"rank-0.log", "rank-1.log"}) {
      all += std::string("--- ") + f + "\n" + Slurp(dir_.File(std::string("logs/") + f));
    }
    return all;
  }

  testing::TempDir dir_;
  std::string worker_;
  zmq::context_t ctx_{1};
  zmq::socket_t idle_{ctx_, zmq::socket_type::pull};  // never receives anything
  std::vector<json> metrics_;
};

TEST_F(WorkerProcessTest, TwoRanksUnderMpirunReportAndCheckpoint) {
  std::string mpirun = FindOnPath("mpirun");
  if (mpirun.empty()) GTEST_SKIP() << "mpirun not found on PATH (install openmpi-bin)";

  std::mutex mu;
  std::vector<json> saves;  // GUARDED_BY(mu)
  RpcServer storage(ctx_, RpcServerOptions{});
  ASSERT_TRUE(storage.Bind().ok());
  storage.Handle("save_checkpoint", [&](const Request& req) -> Result<json> {
    std::lock_guard<std::mutex> l(mu);
    saves.push_back(req.body);
    return json{{"model", req.body["model"]}, {"version", static_cast<int>(saves.size())}};
  });
  // The default 4 MiB request limit is plenty for this model.
  std::thread server([&] { (void)storage.Serve(); });

  zmq::socket_t pull(ctx_, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  std::string monitor = pull.get(zmq::sockopt::last_endpoint);

  ExitInfo exit = RunToEnd({mpirun, "-np", "2", "--oversubscribe", "--bind-to", "none", worker_,
                            "--job-id", "j-test", "--attempt", "3", "--spec", WriteSpec({}),
                            "--storage", storage.endpoint(), "--monitor", monitor, "--log-dir",
                            dir_.File("logs")},
                           &pull);
  storage.Stop();
  server.join();
  ASSERT_TRUE(exit.ok()) << exit.ToString() << "\n" << Logs();

  // Checkpoints: periodic at step 5, final at step 10, from rank 0 only.
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(saves.size(), 2u) << Logs();
  const json& last = saves.back();
  EXPECT_EQ(last["model"], "tiny-model");
  EXPECT_EQ(last["job_id"], "j-test");
  EXPECT_EQ(last["attempt"], 3);
  EXPECT_EQ(last["step"], 10);
  EXPECT_EQ(last["meta"]["world_size"], 2);
  EXPECT_TRUE(last["metrics"].contains("test_accuracy"));
  std::map<std::string, std::vector<int64_t>> want = {
      {"1.weight", {32, 784}}, {"1.bias", {32}}, {"3.weight", {10, 32}}, {"3.bias", {10}}};
  ASSERT_EQ(last["tensors"].size(), want.size());
  for (const json& t : last["tensors"]) {
    std::string name = t["name"];
    ASSERT_TRUE(want.count(name)) << name;
    EXPECT_EQ(t["dtype"], "float32");
    EXPECT_EQ(t["shape"].get<std::vector<int64_t>>(), want[name]);
    int64_t numel = 1;
    for (int64_t d : want[name]) numel *= d;
    EXPECT_EQ(static_cast<int64_t>(t["data"].get_binary().size()), numel * 4) << name;
  }

  // Metrics: steps 4, 8, 10, then the final evaluation.
  bool finite_loss = false;
  bool test_accuracy = false;
  for (const json& m : metrics_) {
    EXPECT_EQ(m["type"], "metrics");
    EXPECT_EQ(m["body"]["job_id"], "j-test");
    EXPECT_EQ(m["body"]["rank"], 0);
    EXPECT_EQ(m["body"]["world_size"], 2);
    const json& v = m["body"]["values"];
    if (v.contains("loss")) finite_loss |= std::isfinite(v["loss"].get<double>());
    if (v.contains("test_accuracy")) test_accuracy = true;
  }
  EXPECT_TRUE(finite_loss) << metrics_.size() << " metrics points";
  EXPECT_TRUE(test_accuracy);
  ASSERT_FALSE(metrics_.empty());
  EXPECT_EQ(metrics_.back()["body"]["step"], 10);

  // Each rank wrote its own log.
  EXPECT_NE(Slurp(dir_.File("logs/rank-1.log")).find("rank 1/2 step 10/10"), std::string::npos)
      << Logs();
}

TEST_F(WorkerProcessTest, BadSpecExitsWithTwoAndNamesTheField) {
  ExitInfo exit = RunToEnd({worker_, "--job-id", "j-bad", "--attempt", "1", "--spec",
                            WriteSpec({{"train", {{"batch_size", -4}}}}), "--storage", "",
                            "--monitor", "", "--log-dir", dir_.File("logs")},
                           nullptr);
  EXPECT_EQ(exit.exit_code, 2) << exit.ToString();
  EXPECT_NE(Slurp(dir_.File("logs/rank-0.log")).find("train.batch_size must be > 0"),
            std::string::npos)
      << Logs();
}

TEST_F(WorkerProcessTest, BadDataExitsWithTwoAndNamesTheFile) {
  testing::WriteBytes(dir_.File("t10k-labels-idx1-ubyte.gz"), "not an idx file", false);
  ExitInfo exit = RunToEnd({worker_, "--job-id", "j-bad", "--attempt", "1", "--spec",
                            WriteSpec({}), "--storage", "", "--monitor", "", "--log-dir",
                            dir_.File("logs")},
                           nullptr);
  EXPECT_EQ(exit.exit_code, 2) << exit.ToString();
  EXPECT_NE(Slurp(dir_.File("logs/rank-0.log")).find("t10k-labels-idx1-ubyte.gz"), std::string::npos)
      << Logs();
}

TEST_F(WorkerProcessTest, MissingArgumentExitsWithTwo) {
  ExitInfo exit = RunToEnd({worker_, "--job-id", "j-bad"}, nullptr);
  EXPECT_EQ(exit.exit_code, 2) << exit.ToString();
}

}  // namespace
}  // namespace gantry::worker
