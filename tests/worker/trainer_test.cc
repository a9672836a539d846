// The training loop with ranks as threads (ThreadCommunicator) and an
// in-memory checkpoint store: no MPI, no child processes.
#include "data/idx_reader.h"
#include "worker/trainer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>

#include <cmath>
#include <thread>

#include "drift/stored_profile.h"
#include "model/checkpoint_model.h"
#include "tests/worker/fake_storage.h"
#include "tests/worker/test_util.h"

namespace gantry::worker {
namespace {

JobSpec TinySpec(const std::string& data_dir) {
  json j = {{"name", "tiny"},
            {"model", {{"builtin", "mlp"}, {"hidden", {16}}}},
            {"data", {{"path", data_dir}}},
            {"resources", {{"workers", 2}}},
            {"train", {{"steps", 12}, {"batch_size", 8}, {"log_every", 5}, {"eval_every", 6},
                       {"bucket_mb", 0.01}, {"optimizer", {{"name", "adam"}, {"lr", 0.01}}}}},
            {"checkpoint", {{"model", "tiny"}, {"every_steps", 4}}}};
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

  struct RankResult {
    Status status;
    TrainSummary summary;
    std::map<std::string, torch::Tensor> params;
  };

  // Runs `world` ranks as threads; rank 0 saves to `store` (null: no saves).
  std::vector<RankResult> RunRanks(int world, const JobSpec& spec, CheckpointStore* store,
                                   const std::string& job = "j-1", int attempt = 1,
                                   const StopSignal* stop = nullptr) {
    testing::ThreadGroup group(world);
    std::vector<RankResult> out(static_cast<size_t>(world));
    auto rank_main = [&](int rank) {
      testing::ThreadCommunicator comm(group, rank);
      auto train = data::LoadIdxDataset(dir_.File("train-images-idx3-ubyte.gz"),
                                  dir_.File("train-labels-idx1-ubyte.gz"), 160);
      auto test = data::LoadIdxDataset(dir_.File("t10k-images-idx3-ubyte.gz"), dir_.File("t10k-labels-idx1-ubyte.gz"));
      ASSERT_TRUE(train.ok() && test.ok());
      MetricsPublisher metrics(ctx_, rank == 0 ? monitor_ : "", {job, attempt, rank, world});
      CheckpointClient disabled(ctx_, "");
      CheckpointStore& s = rank == 0 && store != nullptr ? *store : disabled;
      Trainer trainer({spec, job, attempt, stop, nullptr, "fp", {}}, {train->images, train->labels, data::kNumClasses},
                      {test->images, test->labels, data::kNumClasses}, comm, metrics, s, clock_);
      RankResult& r = out[static_cast<size_t>(rank)];
      r.status = trainer.Run();
      r.summary = trainer.summary();
      for (auto& [name, t] : trainer.NamedState()) r.params[name] = t.detach().clone();
    };
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) threads.emplace_back(rank_main, r);
    for (auto& t : threads) t.join();
    return out;
  }

  static void ExpectOk(const std::vector<RankResult>& rs) {
    for (const auto& r : rs) ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }

  testing::TempDir dir_;
  JobSpec spec_;
  zmq::context_t ctx_{1};
  std::string monitor_;
  SystemClock clock_;
};

TEST_F(TrainerTest, RanksAgreeAndLearn) {
  auto rs = RunRanks(2, spec_, nullptr);
  ExpectOk(rs);
  for (const auto& r : rs) {
    EXPECT_EQ(r.summary.steps, 12);
    ASSERT_TRUE(r.summary.loss.has_value());
    EXPECT_TRUE(std::isfinite(*r.summary.loss));
    ASSERT_TRUE(r.summary.test_accuracy.has_value());
  }
  // Metrics are reduced over ranks, so both report the same numbers, and
  // averaged gradients keep the replicas identical.
  EXPECT_DOUBLE_EQ(*rs[0].summary.loss, *rs[1].summary.loss);
  for (auto& [name, t] : rs[0].params) EXPECT_TRUE(torch::equal(t, rs[1].params[name])) << name;
}

// Acceptance: 2 ranks at batch B == 1 rank at batch 2B, same seed and data order.
TEST_F(TrainerTest, TwoRanksMatchOneRankWithTwiceTheBatch) {
  JobSpec two = spec_;
  two.train.optimizer.name = "sgd";
  two.train.optimizer.lr = 0.1;
  two.train.steps = 15;  // crosses an epoch boundary (160 / 16 = 10 steps per epoch)
  JobSpec one = two;
  one.train.batch_size = 2 * two.train.batch_size;
  auto a = RunRanks(2, two, nullptr);
  auto b = RunRanks(1, one, nullptr);
  ExpectOk(a);
  ExpectOk(b);
  ASSERT_EQ(a[0].params.size(), 4u);
  for (auto& [name, t] : a[0].params) {
    const torch::Tensor& u = b[0].params[name];
    const double diff = (t - u).abs().max().item<double>();
    const double scale = std::max(1e-12, u.abs().max().item<double>());
    EXPECT_LE(diff / scale, 1e-5) << name;
  }
}

// Resuming from a checkpoint of the same job gives bit-identical parameters.
TEST_F(TrainerTest, ResumeIsBitIdentical) {
  testing::FakeRegistry full_reg;
  testing::FakeStore full(full_reg);
  auto ref = RunRanks(2, spec_, &full, "j-ref");
  ExpectOk(ref);
  ASSERT_EQ(full_reg.size(), 3u);  // steps 4, 8 and the final 12
  // A crash after step 8: only the first two saves exist; attempt 2 resumes.
  testing::FakeRegistry reg;
  for (size_t i = 0; i < 2; ++i) reg.Add(full_reg.bodies()[i]);
  testing::FakeStore store(reg);
  auto resumed = RunRanks(2, spec_, &store, "j-ref", /*attempt=*/2);
  ExpectOk(resumed);
  EXPECT_EQ(resumed[0].summary.first_step, 8);
  EXPECT_EQ(resumed[0].summary.loaded_from, "tiny@v2");
  for (auto& [name, t] : ref[0].params) EXPECT_TRUE(torch::equal(t, resumed[0].params[name])) << name;
  // The resumed attempt's saves name their parent.
  EXPECT_EQ(reg.bodies().back()["parent_version"], 2);
  EXPECT_EQ(reg.bodies().back()["trainer_state"]["step"], 12);
  // Optimizer state (Adam) and every rank's RNG travel with the parameters.
  auto tensors = TensorsFromJson(reg.bodies()[1]["tensors"]);
  ASSERT_TRUE(tensors.ok());
  EXPECT_TRUE(tensors->count("optimizer/1.weight/exp_avg"));
  EXPECT_TRUE(tensors->count("optimizer/1.weight/step"));
  EXPECT_TRUE(tensors->count("trainer/rng/cpu/rank1"));
}

// Each version carries the predicted classes of the latest evaluation before
// it (the evaluation its test_accuracy comes from), counted over both ranks'
// halves of the test set: the final one equals its own weights' predictions.
TEST_F(TrainerTest, VersionsCarryThePredictionsOfTheirEvaluation) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  ExpectOk(RunRanks(2, spec_, &store, "j-pred"));
  ASSERT_EQ(reg.size(), 3u);  // steps 4, 8, 12; evaluations at 6 and 12
  auto first = TensorsFromJson(reg.bodies()[0]["tensors"]);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->count(drift::kEvalPredictionsTensorName));  // nothing evaluated by step 4
  auto last = TensorsFromJson(reg.bodies()[2]["tensors"]);
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->count(drift::kEvalPredictionsTensorName));
  const torch::Tensor saved = last->at(drift::kEvalPredictionsTensorName);
  EXPECT_EQ(saved.scalar_type(), torch::kInt64);
  ASSERT_EQ(saved.sizes(), torch::IntArrayRef({data::kNumClasses}));
  EXPECT_EQ(saved.sum().item<int64_t>(), 50);  // the whole test set, not one rank's half

  auto test = data::LoadIdxDataset(dir_.File("t10k-images-idx3-ubyte.gz"), dir_.File("t10k-labels-idx1-ubyte.gz"));
  ASSERT_TRUE(test.ok());
  std::vector<int64_t> shape(test->images.sizes().begin() + 1, test->images.sizes().end());
  auto m = model::CreateModel(spec_.model, shape, data::kNumClasses);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(model::LoadWeights(**m, *last, "tiny@v3").ok());
  (*m)->SetTraining(false);
  torch::NoGradGuard no_grad;
  auto logits = (*m)->Forward(test->images);
  ASSERT_TRUE(logits.ok());
  const torch::Tensor want = torch::bincount(logits->argmax(1), {}, data::kNumClasses);
  EXPECT_TRUE(torch::equal(saved, want)) << saved << want;
}

// A resumed attempt whose checkpoint is already at the last step writes no
// new version, and reports no training loss it did not measure.
TEST_F(TrainerTest, ResumedAtTheLastStepSavesNothing) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  ExpectOk(RunRanks(2, spec_, &store, "j-end"));
  ASSERT_EQ(reg.size(), 3u);
  const json first = reg.bodies().back();
  EXPECT_TRUE(first["metrics"].contains("loss"));  // measured by attempt 1
  EXPECT_TRUE(first["metrics"].contains("test_accuracy"));
  auto rs = RunRanks(2, spec_, &store, "j-end", /*attempt=*/2);
  ExpectOk(rs);
  EXPECT_EQ(reg.size(), 3u);
  for (const auto& r : rs) {
    EXPECT_EQ(r.summary.first_step, 12);
    EXPECT_EQ(r.summary.steps, 12);
    EXPECT_FALSE(r.summary.loss.has_value());
    EXPECT_FALSE(r.summary.accuracy.has_value());
    EXPECT_TRUE(r.summary.test_accuracy.has_value());  // evaluated on resume
  }
}

TEST_F(TrainerTest, ResumeWithOneRankContinuesAtTheSameSample) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  JobSpec spec = spec_;
  spec.train.steps = 8;
  spec.checkpoint.every_steps = 4;
  ExpectOk(RunRanks(2, spec, &store, "j-w"));
  // Keep the step-4 save only, then resume with one rank to step 12.
  testing::FakeRegistry one_reg;
  one_reg.Add(reg.bodies()[0]);
  testing::FakeStore one_store(one_reg);
  spec.train.steps = 12;
  auto rs = RunRanks(1, spec, &one_store, "j-w", 2);
  ExpectOk(rs);
  const json saved = reg.bodies()[0]["trainer_state"];
  EXPECT_EQ(saved["epoch_offset"], 4 * 16);  // 4 steps x 8 x 2 ranks
  // After 8 more one-rank steps: 64 + 8 x 8 = 128 samples into epoch 0
  // (160 samples; one-rank global batch 8 keeps it in epoch 0).
  const json last = one_reg.bodies().back()["trainer_state"];
  EXPECT_EQ(last["step"], 12);
  EXPECT_EQ(last["epoch"], 0);
  EXPECT_EQ(last["epoch_offset"], 64 + 8 * 8);
  EXPECT_EQ(last["samples_seen"], 64 + 8 * 8);
  EXPECT_EQ(last["world_size"], 1);
}

TEST_F(TrainerTest, AsyncSaveFailureIsReportedAndTrainingGoesOn) {
  zmq::socket_t pull(ctx_, zmq::socket_type::router);
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  monitor_ = pull.get(zmq::sockopt::last_endpoint);
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  store.on_save = [](const json& body) -> Status {
    return body["step"] == 4 ? Status::Internal("disk full (fake)") : Status::Ok();
  };
  auto rs = RunRanks(2, spec_, &store);
  ExpectOk(rs);
  EXPECT_EQ(reg.size(), 2u);  // 8 and the final 12
  EXPECT_EQ(rs[0].summary.checkpoints_saved, 2);
  EXPECT_EQ(rs[0].summary.checkpoints_failed, 1);
  bool event = false;
  zmq::message_t m;
  while (pull.recv(m, zmq::recv_flags::dontwait)) {
    if (m.more()) continue;  // the ROUTER's routing id frame
    auto j = ParseMsgpack(m.to_string_view());
    ASSERT_TRUE(j.ok());
    const json& v = (*j)["body"]["values"];
    if (v.contains("checkpoint_failed")) {
      event = true;
      EXPECT_EQ(v["checkpoint_step"], 4);
    }
  }
  EXPECT_TRUE(event) << "no checkpoint_failed event reached the monitor socket";
}

TEST_F(TrainerTest, FinalSaveFailureFailsEveryRank) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  store.on_save = [](const json& body) -> Status {
    return body["step"] == 12 ? Status::Internal("disk full (fake)") : Status::Ok();
  };
  auto rs = RunRanks(2, spec_, &store);
  EXPECT_FALSE(rs[0].status.ok());
  EXPECT_NE(rs[0].status.message().find("final checkpoint"), std::string::npos) << rs[0].status.ToString();
  EXPECT_NE(rs[0].status.message().find("disk full"), std::string::npos) << rs[0].status.ToString();
  EXPECT_FALSE(rs[1].status.ok());
}

// Storage gone at the final save: the save is retried up to
// checkpoint.final_save_timeout, then the attempt fails naming storage.
TEST_F(TrainerTest, FinalSaveWithStorageGoneFailsAfterItsLimit) {
  JobSpec spec = spec_;
  spec.checkpoint.final_save_timeout = 0.3;
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  std::atomic<int> final_tries{0};
  store.on_save = [&](const json& body) -> Status {
    if (body["step"] != 12) return Status::Ok();
    ++final_tries;
    return Status::Unavailable("storage at tcp://fake does not answer (fake)");
  };
  auto rs = RunRanks(2, spec, &store);
  ASSERT_FALSE(rs[0].status.ok());
  EXPECT_EQ(rs[0].status.code(), StatusCode::kUnavailable) << rs[0].status.ToString();
  EXPECT_NE(rs[0].status.message().find("storage did not take the checkpoint of step 12"), std::string::npos)
      << rs[0].status.ToString();
  EXPECT_FALSE(rs[1].status.ok());
  EXPECT_GE(final_tries.load(), 1);
  EXPECT_EQ(reg.size(), 2u);  // 4 and 8 only
}

TEST_F(TrainerTest, SynchronousSavesKeepTheOldPath) {
  JobSpec spec = spec_;
  spec.checkpoint.async = false;
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  auto rs = RunRanks(2, spec, &store);
  ExpectOk(rs);
  EXPECT_EQ(reg.size(), 3u);
  EXPECT_EQ(rs[0].summary.checkpoints_saved, 3);
}

// A stop request on one rank: all ranks stop after the same step and save.
TEST_F(TrainerTest, StopSignalMakesAllRanksCheckpointAndStop) {
  auto stop = StopSignal::Install();
  ASSERT_TRUE(stop.ok()) << stop.status().ToString();
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  StopSignal* s = stop->get();
  // The step-4 save raises the "signal". Inline saves, so that it is raised
  // at step 4: an async save would wait on its own thread for the drift
  // profile's thread, and these 12 steps may all be done before it sends.
  store.on_save = [s](const json& body) {
    if (body["step"] == 4) s->Raise(SIGTERM);
    return Status::Ok();
  };
  JobSpec spec = spec_;
  spec.checkpoint.async = false;
  auto rs = RunRanks(2, spec, &store, "j-1", 1, s);
  ExpectOk(rs);
  ASSERT_TRUE(rs[0].summary.preempted);
  ASSERT_TRUE(rs[1].summary.preempted);
  EXPECT_EQ(rs[0].summary.steps, rs[1].summary.steps);
  EXPECT_LT(rs[0].summary.steps, 12);
  const json last = reg.bodies().back();
  EXPECT_EQ(last["step"], rs[0].summary.steps);
  EXPECT_EQ(last["trainer_state"]["preempted"], true);
}

TEST_F(TrainerTest, TooFewSamplesIsABadSpec) {
  JobSpec spec = spec_;
  spec.train.batch_size = 100;  // 2 x 100 > 160 samples
  auto rs = RunRanks(2, spec, nullptr);
  EXPECT_EQ(rs[0].status.code(), StatusCode::kInvalidArgument) << rs[0].status.ToString();
}

TEST_F(TrainerTest, WarmStartLoadsParametersOnly) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  ExpectOk(RunRanks(2, spec_, &store, "j-a"));
  JobSpec warm = spec_;
  warm.warm_start = "tiny@v3";
  warm.train.steps = 2;
  warm.checkpoint.every_steps = 0;
  auto rs = RunRanks(2, warm, &store, "j-b");
  ExpectOk(rs);
  EXPECT_EQ(rs[0].summary.loaded_from, "tiny@v3");
  EXPECT_EQ(rs[0].summary.first_step, 0);  // parameters only: the step count starts over
  EXPECT_EQ(reg.bodies().back()["parent_version"], 3);
  JobSpec bad = warm;
  bad.warm_start = "tiny@v9";
  EXPECT_EQ(RunRanks(2, bad, &store, "j-c")[1].status.code(), StatusCode::kNotFound);
  // Another architecture: every rank fails, naming the checkpoint and the
  // tensors that do not fit (model::LoadWeights).
  JobSpec wider = warm;
  wider.model.hidden = {32};
  auto mismatch = RunRanks(2, wider, &store, "j-d");
  for (const auto& r : mismatch) {
    ASSERT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status.ToString();
    EXPECT_NE(r.status.message().find("checkpoint tiny@v3"), std::string::npos) << r.status.message();
    EXPECT_NE(r.status.message().find("1.weight [16, 784] vs [32, 784]"), std::string::npos) << r.status.message();
  }
}

// retrain.champion: every rank scores the champion on the held-out set
// before training, the run then trains from its own starting point, and
// both scores are saved with the new version.
TEST_F(TrainerTest, ChampionIsScoredOnTheSameHeldOutSetAndSavedBeside) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  ExpectOk(RunRanks(2, spec_, &store, "j-a"));
  const int64_t champion = static_cast<int64_t>(reg.size());
  const json champion_body = reg.bodies().back();
  JobSpec run = spec_;
  run.warm_start = "tiny@v" + std::to_string(champion);
  run.train.steps = 3;
  run.checkpoint.every_steps = 0;
  auto plain = RunRanks(2, run, &store, "j-b");
  ExpectOk(plain);
  run.retrain.champion = run.warm_start;
  auto scored = RunRanks(2, run, &store, "j-c");
  ExpectOk(scored);
  for (const auto& r : scored) {
    ASSERT_TRUE(r.summary.champion_test_accuracy);
    // The champion's score is its own final evaluation on this test set.
    EXPECT_NEAR(*r.summary.champion_test_accuracy, champion_body["metrics"]["test_accuracy"].get<double>(), 1e-9);
    EXPECT_NEAR(*r.summary.champion_test_loss, champion_body["metrics"]["test_loss"].get<double>(), 1e-6);
    EXPECT_EQ(r.summary.champion_version, champion);
  }
  // Scoring the champion changes nothing about the run itself.
  for (const auto& [name, t] : plain[0].params) EXPECT_TRUE(t.equal(scored[0].params.at(name))) << name;
  EXPECT_EQ(*plain[0].summary.test_accuracy, *scored[0].summary.test_accuracy);
  const json saved = reg.bodies().back()["metrics"];
  EXPECT_EQ(saved["champion_version"].get<double>(), static_cast<double>(champion));
  EXPECT_NEAR(saved["champion_test_accuracy"].get<double>(), *scored[0].summary.champion_test_accuracy, 1e-12);
  EXPECT_NEAR(saved["test_accuracy"].get<double>(), *scored[0].summary.test_accuracy, 1e-12);
  // A champion that is not there fails the run, naming the field.
  run.retrain.champion = "tiny@v99";
  auto missing = RunRanks(2, run, &store, "j-d");
  EXPECT_EQ(missing[0].status.code(), StatusCode::kNotFound) << missing[0].status.ToString();
  EXPECT_NE(missing[0].status.message().find("retrain.champion tiny@v99"), std::string::npos)
      << missing[0].status.message();
}

}  // namespace
}  // namespace gantry::worker
