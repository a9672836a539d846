// AsyncCheckpointer (one save in flight, outcomes never dropped; retries in
// async_checkpointer_test.cc), optimizer
// state round trips, tensor encoding, and StopSignal.
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>

#include <condition_variable>
#include <mutex>

#include "tests/worker/fake_storage.h"
#include "worker/async_checkpointer.h"
#include "worker/optimizer_state.h"
#include "worker/stop_signal.h"

namespace gantry::worker {
namespace {

// A store whose saves block until the test opens the gate.
class GatedStore final : public CheckpointStore {
 public:
  bool enabled() const override { return true; }
  Result<SavedCheckpoint> Save(const Checkpoint& c) override {
    std::unique_lock<std::mutex> l(mu);
    ++entered;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
    if (c.step == 2) return Status::Internal("disk full (fake)");
    return SavedCheckpoint{"m", c.step};
  }
  Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string&, const std::string&) override {
    return std::optional<Checkpoint>();
  }
  Result<Checkpoint> LoadRef(const std::string&, const std::string&, bool) override {
    return Status::NotFound("x");
  }

  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;   // GUARDED_BY(mu)
  bool open = false;  // GUARDED_BY(mu)
};

Checkpoint AtStep(int64_t step) {
  Checkpoint c;
  c.model = "m";
  c.step = step;
  return c;
}

// One tensor as the wire carries it ({name, dtype, shape, data}), through
// the public codec (EncodeCheckpoint writes the save_checkpoint body).
Result<json> TensorJson(const std::string& name, const torch::Tensor& t) {
  Checkpoint c = AtStep(0);
  c.tensors[name] = t;
  GANTRY_ASSIGN_OR_RETURN(std::string bytes, EncodeCheckpoint(c));
  GANTRY_ASSIGN_OR_RETURN(json body, ParseMsgpack(bytes));
  return body["tensors"].at(0);
}


TEST(AsyncCheckpointer, SubmitReturnsWhileTheSaveRunsAndReportsEveryOutcome) {
  GatedStore store;
  AsyncCheckpointer saver(store, /*async=*/true);
  ASSERT_TRUE(saver.Submit(AtStep(1)).ok());  // returns with the save blocked
  {
    std::unique_lock<std::mutex> l(store.mu);
    store.cv.wait(l, [&] { return store.entered == 1; });
  }
  EXPECT_TRUE(saver.TakeFinished().empty());
  // A second Submit does not wait for the first: it becomes the one pending
  // snapshot, sent once the first save is over.
  EXPECT_TRUE(saver.Submit(AtStep(2)).ok());
  {
    std::lock_guard<std::mutex> l(store.mu);
    store.open = true;
  }
  store.cv.notify_all();
  saver.Flush();
  auto done = saver.TakeFinished();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_EQ(done[0].saved.version, 1);
  EXPECT_EQ(done[1].step, 2);
  EXPECT_EQ(done[1].status.code(), StatusCode::kInternal);
}

TEST(AsyncCheckpointer, InlineModeReturnsTheSaveStatus) {
  GatedStore store;
  store.open = true;
  AsyncCheckpointer saver(store, /*async=*/false);
  EXPECT_TRUE(saver.Submit(AtStep(1)).ok());
  EXPECT_EQ(saver.Submit(AtStep(2)).code(), StatusCode::kInternal);
  EXPECT_EQ(saver.TakeFinished().size(), 2u);
}

TEST(AsyncCheckpointer, DestructorFinishesTheSaveInFlight) {
  testing::FakeRegistry reg;
  testing::FakeStore store(reg);
  {
    AsyncCheckpointer saver(store, true);
    ASSERT_TRUE(saver.Submit(AtStep(7)).ok());
  }
  EXPECT_EQ(reg.size(), 1u);
}

// Optimizer state survives a round trip bit for bit: the next step of a
// restored optimizer equals the next step of the original.
template <typename Opt, typename Options>
void RoundTrip(Options options) {
  torch::manual_seed(1);
  torch::nn::Linear a(4, 3);
  torch::nn::Linear b(4, 3);
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < 2; ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  Opt oa(a->parameters(), options);
  Opt ob(b->parameters(), options);
  torch::Tensor x = torch::randn({6, 4});
  for (int s = 0; s < 3; ++s) {
    oa.zero_grad();
    a->forward(x).pow(2).sum().backward();
    oa.step();
  }
  NamedTensors pa = {{"weight", a->weight}, {"bias", a->bias}};
  NamedTensors pb = {{"weight", b->weight}, {"bias", b->bias}};
  auto saved = SaveOptimizerState(oa, pa);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  ASSERT_FALSE(saved->empty());
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [n, t] : *saved) {
    EXPECT_EQ(n.rfind("optimizer/", 0), 0u) << n;
    by_name[n] = t.clone();
  }
  {
    torch::NoGradGuard g;
    b->weight.copy_(a->weight);
    b->bias.copy_(a->bias);
  }
  ASSERT_TRUE(RestoreOptimizerState(ob, pb, by_name).ok());
  oa.zero_grad();
  a->forward(x).pow(2).sum().backward();
  oa.step();
  ob.zero_grad();
  b->forward(x).pow(2).sum().backward();
  ob.step();
  EXPECT_TRUE(torch::equal(a->weight, b->weight));
  EXPECT_TRUE(torch::equal(a->bias, b->bias));
}

TEST(OptimizerState, SgdMomentumRoundTrips) {
  RoundTrip<torch::optim::SGD>(torch::optim::SGDOptions(0.1).momentum(0.9));
}
TEST(OptimizerState, AdamRoundTrips) { RoundTrip<torch::optim::Adam>(torch::optim::AdamOptions(0.01)); }
TEST(OptimizerState, AdamWAmsgradRoundTrips) {
  RoundTrip<torch::optim::AdamW>(torch::optim::AdamWOptions(0.01).amsgrad(true));
}

TEST(OptimizerState, MissingTensorIsCorruption) {
  torch::nn::Linear a(2, 2);
  torch::optim::Adam opt(a->parameters(), torch::optim::AdamOptions(0.1));
  NamedTensors p = {{"weight", a->weight}};
  std::map<std::string, torch::Tensor> saved = {{"optimizer/weight/step", torch::tensor(int64_t{3})}};
  EXPECT_EQ(RestoreOptimizerState(opt, p, saved).code(), StatusCode::kCorruption);
}

TEST(TensorCodec, RoundTripsAndRejectsBadSizes) {
  torch::Tensor t = torch::arange(6, torch::kFloat32).view({2, 3});
  auto j = TensorJson("w", t);
  ASSERT_TRUE(j.ok());
  auto back = TensorsFromJson(json::array({*j}));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(torch::equal(back->at("w"), t));
  (*j)["shape"] = {4, 3};
  EXPECT_EQ(TensorsFromJson(json::array({*j})).status().code(), StatusCode::kInvalidArgument);
}

TEST(CheckpointCodec, ReplyDecodesToTypedFieldsAndRoundTrips) {
  auto w = TensorJson("1.weight", torch::arange(6, torch::kFloat32).view({2, 3}));
  auto m = TensorJson("optimizer/1.weight/momentum_buffer", torch::ones({2, 3}));
  ASSERT_TRUE(w.ok() && m.ok());
  json reply = {{"model", "mnist"}, {"version", 3}, {"job_id", "j-1"}, {"attempt", 2}, {"step", 40},
                {"epoch", 1}, {"metrics", {{"loss", 0.25}, {"note", "text is skipped"}}},
                {"meta", {{"job_name", "fm"}, {"world_size", 2}, {"model", "mlp [16]"},
                          {"model_builtin", "mlp"}, {"model_hidden", {16}}, {"input_shape", {1, 28, 28}},
                          {"num_classes", 10}, {"normalize", {{"mean", 0.5}, {"std", 0.25}}},
                          {"trainer_state", {{"step", 40}, {"epoch", 1}, {"epoch_offset", 128}, {"seed", 7}}}}},
                {"tensors", {*w, *m}}};
  auto c = CheckpointFromReply(reply);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->Source(), "mnist@v3");
  EXPECT_EQ(c->job_id, "j-1");
  EXPECT_EQ(c->attempt, 2);
  EXPECT_EQ(c->metrics, (std::map<std::string, double>{{"loss", 0.25}}));
  EXPECT_EQ(c->world_size, 2);
  EXPECT_EQ(c->manifest.builtin, "mlp");
  EXPECT_EQ(c->manifest.hidden, (std::vector<int64_t>{16}));
  EXPECT_EQ(c->manifest.input_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(c->manifest.num_classes, 10);
  ASSERT_TRUE(c->manifest.normalize.has_value());
  EXPECT_EQ(c->manifest.normalize->std, 0.25);
  // An older store kept trainer_state inside meta only.
  ASSERT_TRUE(c->trainer_state.has_value());
  EXPECT_EQ(c->trainer_state->epoch_offset, 128);
  EXPECT_EQ(c->trainer_state->seed, std::optional<uint64_t>(7));
  ASSERT_EQ(c->tensors.size(), 2u);
  EXPECT_TRUE(c->tensors.at("1.weight").equal(torch::arange(6, torch::kFloat32).view({2, 3})));

  // What rank 0 hands the other ranks decodes to the same checkpoint.
  auto bytes = EncodeCheckpoint(*c);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = DecodeCheckpoint(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Source(), "mnist@v3");
  EXPECT_EQ(back->manifest.hidden, c->manifest.hidden);
  EXPECT_EQ(back->manifest.normalize->mean, 0.5);
  EXPECT_EQ(back->trainer_state->step, 40);
  EXPECT_EQ(back->metrics, c->metrics);
  ASSERT_EQ(back->tensors.size(), 2u);
  EXPECT_TRUE(back->tensors.at("optimizer/1.weight/momentum_buffer").equal(torch::ones({2, 3})));
}

// The typed checkpoint encodes to the save_checkpoint body storage parses
// (docs/protocol.md), and decodes back to the same fields.
TEST(CheckpointCodec, SaveBodyCarriesEveryFieldAndOnlyMeasuredMetrics) {
  Checkpoint c = AtStep(40);
  c.job_id = "j-1";
  c.attempt = 2;
  c.epoch = 1;
  c.metrics = {{"test_accuracy", 0.75}};  // loss unmeasured: absent
  c.job_name = "fm";
  c.world_size = 2;
  c.manifest.builtin = "mlp";
  c.manifest.hidden = {16};
  c.manifest.normalize = model::Normalization{0.5, 0.25};
  TrainerStateRecord ts;
  ts.format = 1;
  ts.step = 40;
  ts.epoch = 1;
  ts.epoch_offset = 128;
  ts.seed = 7;
  c.trainer_state = ts;
  c.optimizer = OptimizerRecord{"sgd", 0.1, 0.9, 0.0};
  c.parent_model = "base";
  c.parent_version = 3;
  c.data_fingerprint = "fp";
  c.tensors["1.weight"] = torch::arange(6, torch::kFloat32).view({2, 3});
  auto bytes = EncodeCheckpoint(c);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto body = ParseMsgpack(*bytes);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["metrics"], (json{{"test_accuracy", 0.75}}));
  EXPECT_EQ((*body)["meta"]["model_hidden"], json::array({16}));
  EXPECT_EQ((*body)["meta"]["normalize"]["std"], 0.25);
  EXPECT_EQ((*body)["trainer_state"]["epoch_offset"], 128);
  EXPECT_EQ((*body)["optimizer_state"]["momentum"], 0.9);
  EXPECT_EQ((*body)["parent_model"], "base");
  EXPECT_EQ((*body)["parent_version"], 3);
  EXPECT_EQ((*body)["data_fingerprint"], "fp");
  ASSERT_EQ((*body)["tensors"].size(), 1u);
  EXPECT_EQ((*body)["tensors"][0]["shape"], json::array({2, 3}));
  auto back = DecodeCheckpoint(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->metrics, c.metrics);
  ASSERT_TRUE(back->optimizer.has_value());
  EXPECT_EQ(back->optimizer->name, "sgd");
  EXPECT_EQ(back->parent_model, "base");
  EXPECT_EQ(back->parent_version, 3);
  EXPECT_EQ(back->data_fingerprint, "fp");
  EXPECT_TRUE(back->tensors.at("1.weight").equal(c.tensors.at("1.weight")));
  // A load_checkpoint reply carries lineage as {parent, data_fingerprint}.
  json reply = *body;
  reply.erase("parent_model");
  reply.erase("parent_version");
  reply.erase("data_fingerprint");
  reply["lineage"] = {{"parent", {{"model", "base"}, {"version", 2}}}, {"data_fingerprint", "fp2"}};
  auto loaded = CheckpointFromReply(reply);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->parent_model, "base");
  EXPECT_EQ(loaded->parent_version, 2);
  EXPECT_EQ(loaded->data_fingerprint, "fp2");
  // No parent: no parent fields (storage rejects parent_version 0).
  c.parent_model.clear();
  c.parent_version = 0;
  auto plain = ParseMsgpack(*EncodeCheckpoint(c));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->contains("parent_version"));
  EXPECT_FALSE(plain->contains("parent_model"));
}

TEST(CheckpointCodec, WrongTypesAndMissingTensorsAreCorruption) {
  json reply = {{"model", "mnist"}, {"version", 3}, {"step", "forty"}, {"tensors", json::array()}};
  auto bad = CheckpointFromReply(reply);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
  EXPECT_NE(bad.status().message().find("'step'"), std::string::npos) << bad.status().message();
  reply["step"] = 40;
  reply["meta"] = {{"input_shape", "28x28"}};
  EXPECT_EQ(CheckpointFromReply(reply).status().code(), StatusCode::kCorruption);
  reply.erase("meta");
  reply.erase("tensors");
  auto none = CheckpointFromReply(reply);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("mnist@v3 has no tensors"), std::string::npos) << none.status().message();
  reply["tensors"] = json::array();
  auto empty = CheckpointFromReply(reply);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_FALSE(empty->trainer_state.has_value());  // cannot resume exactly from it
}

TEST(StopSignal, RealSignalsSetTheFlagAndOnlyOneInstanceExists) {
  auto s = StopSignal::Install();
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(StopSignal::Install().ok());
  EXPECT_EQ((*s)->requested(), 0);
  ASSERT_EQ(::raise(SIGUSR1), 0);  // handled synchronously on this thread
  EXPECT_EQ((*s)->requested(), SIGUSR1);
  ::raise(SIGTERM);  // the first signal wins
  EXPECT_EQ((*s)->requested(), SIGUSR1);
}

TEST(CheckpointClient, EncodesTensorsAsRawBytes) {
  auto f = TensorJson("w", torch::arange(6, torch::kFloat32).view({2, 3}).t());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)["dtype"], "float32");
  EXPECT_EQ((*f)["shape"], json::array({3, 2}));
  const auto& bytes = (*f)["data"].get_binary();
  ASSERT_EQ(bytes.size(), 24u);
  float v[6];
  std::memcpy(v, bytes.data(), sizeof v);
  EXPECT_EQ(v[1], 3.0f);  // transposed, then made contiguous
  for (auto [dtype, name] : {std::pair{torch::kFloat64, "float64"}, {torch::kInt64, "int64"},
                             {torch::kInt32, "int32"}, {torch::kUInt8, "uint8"}}) {
    auto t = TensorJson("t", torch::zeros({2}, dtype));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ((*t)["dtype"], name);
  }
  EXPECT_FALSE(TensorJson("h", torch::zeros({2}, torch::kFloat16)).ok());
}

}  // namespace
}  // namespace gantry::worker
