// gantry-worker as a real process: under `mpirun -np 2` against an in-test
// fake storage service (RpcServer) and an in-test monitor (ZeroMQ PULL), and
// alone for argument and spec errors.
#include "tests/worker/process_util.h"

namespace gantry::worker {
namespace {

TEST_F(WorkerProcessTest, TwoRanksUnderMpirunReportAndCheckpoint) {
  if (mpirun_.empty()) GTEST_SKIP() << "mpirun not found on PATH (install openmpi-bin)";

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

  zmq::socket_t pull(ctx_, zmq::socket_type::router);
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  std::string monitor = pull.get(zmq::sockopt::last_endpoint);

  // A coordinator that only records heartbeats.
  RpcServer coordinator(ctx_, RpcServerOptions{});
  ASSERT_TRUE(coordinator.Bind().ok());
  std::vector<json> beats;  // GUARDED_BY(mu)
  coordinator.Handle("heartbeat", [&](const Request& req) -> Result<json> {
    std::lock_guard<std::mutex> l(mu);
    beats.push_back(req.body);
    return json::object();
  });
  std::thread coord([&] { (void)coordinator.Serve(); });

  auto argv = Mpirun(2);
  for (std::string a : {worker_, std::string("--job-id"), std::string("j-test"), std::string("--attempt"),
                        std::string("1"), std::string("--spec"),
                        WriteSpec({{"train", {{"heartbeat_seconds", 0.05}}}}), std::string("--storage"),
                        storage.endpoint(), std::string("--monitor"), monitor, std::string("--coordinator"),
                        coordinator.endpoint(), std::string("--log-dir"), dir_.File("logs")}) {
    argv.push_back(a);
  }
  ExitInfo exit = RunToEnd(argv, &pull);
  storage.Stop();
  server.join();
  coordinator.Stop();
  coord.join();
  ASSERT_TRUE(exit.ok()) << exit.ToString() << "\n" << Logs();

  // Checkpoints: periodic at step 5, final at step 10, from rank 0 only.
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(saves.size(), 2u) << Logs();
  const json& last = saves.back();
  EXPECT_EQ(last["model"], "tiny-model");
  EXPECT_EQ(last["job_id"], "j-test");
  EXPECT_EQ(last["attempt"], 1);
  EXPECT_EQ(last["step"], 10);
  EXPECT_EQ(last["meta"]["world_size"], 2);
  EXPECT_TRUE(last["metrics"].contains("test_accuracy"));
  std::map<std::string, std::vector<int64_t>> want = {
      {"1.weight", {32, 784}}, {"1.bias", {32}}, {"3.weight", {10, 32}}, {"3.bias", {10}}};
  size_t plain = 0;
  for (const json& t : last["tensors"]) {
    std::string name = t["name"];
    if (name.find('/') != std::string::npos) continue;  // optimizer/..., trainer/...
    ++plain;
    ASSERT_TRUE(want.count(name)) << name;
    EXPECT_EQ(t["dtype"], "float32");
    EXPECT_EQ(t["shape"].get<std::vector<int64_t>>(), want[name]);
    int64_t numel = 1;
    for (int64_t d : want[name]) numel *= d;
    EXPECT_EQ(static_cast<int64_t>(t["data"].get_binary().size()), numel * 4) << name;
  }
  EXPECT_EQ(plain, want.size());
  EXPECT_EQ(last["trainer_state"]["step"], 10);
  EXPECT_EQ(last["trainer_state"]["preempted"], false);

  // Heartbeats: from both ranks, the last ones at the final step.
  std::map<int, int64_t> beat_step;
  for (const json& b : beats) {
    EXPECT_EQ(b["job_id"], "j-test");
    beat_step[b["rank"].get<int>()] = std::max(beat_step[b["rank"].get<int>()], b["step"].get<int64_t>());
  }
  EXPECT_EQ(beat_step.size(), 2u) << beats.size() << " heartbeats";

  // Metrics: steps 4, 8, 10, then the final evaluation from rank 0; the
  // step-time breakdown from each rank.
  bool finite_loss = false;
  bool test_accuracy = false;
  bool rank1_timing = false;
  json last_rank0;
  for (const json& m : metrics_) {
    EXPECT_EQ(m["type"], "metrics");
    EXPECT_EQ(m["body"]["job_id"], "j-test");
    EXPECT_EQ(m["body"]["world_size"], 2);
    const json& v = m["body"]["values"];
    if (m["body"]["rank"] == 1) {
      EXPECT_FALSE(v.contains("loss")) << v.dump();
      rank1_timing |= v.contains("step_time") && v.contains("comm_time") && v.contains("data_time");
      continue;
    }
    EXPECT_EQ(m["body"]["rank"], 0);
    last_rank0 = m;
    if (v.contains("loss")) finite_loss |= std::isfinite(v["loss"].get<double>());
    if (v.contains("test_accuracy")) test_accuracy = true;
  }
  EXPECT_TRUE(finite_loss) << metrics_.size() << " metrics points";
  EXPECT_TRUE(test_accuracy);
  EXPECT_TRUE(rank1_timing);
  EXPECT_EQ(last_rank0["body"]["step"], 10);

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
