// The training loop with two ranks as threads (ThreadCommunicator) and an
// in-process fake storage service: no MPI, no child processes.
#include "worker/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

JobSpec TinySpec(const std::string& data_dir) {
  json j = {{"name", "tiny"},
            {"model", {{"builtin", "mlp"}, {"hidden", {16}}}},
            {"data", {{"path", data_dir}, {"train_images", "train-images-idx3-ubyte.gz"},
                      {"train_labels", "train-labels-idx1-ubyte.gz"},
                      {"test_images", "t10k-images-idx3-ubyte.gz"},
                      {"test_labels", "t10k-labels-idx1-ubyte.gz"}}},
            {"resources", {{"workers", 2}}},
            {"train", {{"steps", 12}, {"batch_size", 8}, {"log_every", 5}, {"eval_every", 6},
                       {"optimizer", {{"name", "adam"}, {"lr", 0.01}}}}},
            {"checkpoint", {{"every_steps", 4}}}};
  auto spec = JobSpec::Parse(j);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return *spec;
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    testing::WriteSyntheticDataset(dir_.path(), "train", 200);
    testing::WriteSyntheticDataset(dir_.path(), "t10k", 50);
    spec_ = TinySpec(dir_.path());
  }

  // Runs both ranks; rank 0 saves to `storage` ("" = no checkpoints).
  void RunRanks(const std::string& storage) {
    testing::ThreadGroup group(2);
    auto rank_main = [&](int rank) {
      testing::ThreadCommunicator comm(group, rank);
      auto train = LoadIdxDataset(dir_.File("train-images-idx3-ubyte.gz"),
                                  dir_.File("train-labels-idx1-ubyte.gz"), 160);
      auto test = LoadIdxDataset(dir_.File("t10k-images-idx3-ubyte.gz"),
                                 dir_.File("t10k-labels-idx1-ubyte.gz"));
      ASSERT_TRUE(train.ok() && test.ok());
      MetricsPublisher metrics(ctx_, "", {"j-1", 1, rank, 2});
      CheckpointClient checkpoints(ctx_, rank == 0 ? storage : "");
      Trainer trainer({spec_, "j-1", 1}, *train, *test, comm, metrics, checkpoints, clock_);
      status_[rank] = trainer.Run();
      summary_[rank] = trainer.summary();
    };
    std::thread t0(rank_main, 0), t1(rank_main, 1);
    t0.join();
    t1.join();
  }

  testing::TempDir dir_;
  JobSpec spec_;
  zmq::context_t ctx_{1};
  SystemClock clock_;
  Status status_[2];
  TrainSummary summary_[2];
};

// A storage service on a thread that fails the save_checkpoint calls for
// which `fail` answers true.
class FakeStorage {
 public:
  FakeStorage(zmq::context_t& ctx, std::function<bool(int64_t step)> fail)
      : server_(ctx, RpcServerOptions{}) {
    EXPECT_TRUE(server_.Bind().ok());
    server_.Handle("save_checkpoint", [this, fail](const Request& req) -> Result<json> {
      int64_t step = req.body.value("step", int64_t{-1});
      if (fail(step)) return Status::Unavailable("disk full (fake)");
      return json{{"model", req.body.value("model", "")}, {"version", ++saved_}};
    });
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }
  ~FakeStorage() {
    server_.Stop();
    thread_.join();
  }
  std::string endpoint() const { return server_.endpoint(); }
  int saved() const { return saved_.load(); }

 private:
  RpcServer server_;
  std::atomic<int> saved_{0};
  std::thread thread_;
};

TEST_F(TrainerTest, RanksAgreeAndLearn) {
  RunRanks("");
  ASSERT_TRUE(status_[0].ok()) << status_[0].ToString();
  ASSERT_TRUE(status_[1].ok()) << status_[1].ToString();
  for (const auto& s : summary_) {
    EXPECT_EQ(s.steps, 12);
    EXPECT_TRUE(std::isfinite(s.loss));
    ASSERT_TRUE(s.test_accuracy.has_value());
  }
  // Metrics are reduced over ranks, so both report the same numbers.
  EXPECT_DOUBLE_EQ(summary_[0].loss, summary_[1].loss);
  EXPECT_DOUBLE_EQ(*summary_[0].test_accuracy, *summary_[1].test_accuracy);
}

TEST_F(TrainerTest, PeriodicSaveFailureIsNotFatal) {
  FakeStorage storage(ctx_, [](int64_t step) { return step == 4; });
  RunRanks(storage.endpoint());
  ASSERT_TRUE(status_[0].ok()) << status_[0].ToString();
  ASSERT_TRUE(status_[1].ok()) << status_[1].ToString();
  EXPECT_EQ(storage.saved(), 2);  // steps 8 and 12 (final)
  EXPECT_EQ(summary_[0].checkpoints_saved, 2);
}

TEST_F(TrainerTest, FinalSaveFailureFailsEveryRank) {
  FakeStorage storage(ctx_, [](int64_t step) { return step == 12; });
  RunRanks(storage.endpoint());
  EXPECT_FALSE(status_[0].ok());
  EXPECT_NE(status_[0].message().find("final checkpoint"), std::string::npos) << status_[0].ToString();
  EXPECT_NE(status_[0].message().find("disk full"), std::string::npos) << status_[0].ToString();
  EXPECT_FALSE(status_[1].ok());
}

TEST_F(TrainerTest, TooFewSamplesIsABadSpec) {
  spec_.train.batch_size = 100;  // 2 x 100 > 160 samples
  RunRanks("");
  EXPECT_EQ(status_[0].code(), StatusCode::kInvalidArgument) << status_[0].ToString();
}

}  // namespace
}  // namespace gantry::worker
