// The worker's save through the checkpoint data plane against the real
// storage handlers (in process, ZeroMQ over loopback): same host (the file
// written straight into the inbox), remote (put_chunk; the token differs),
// and the one-frame fallback give the same version contents.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "storage/registry.h"
#include "storage/storage_service.h"
#include "tests/support/test_support.h"
#include "worker/checkpoint_client.h"

namespace gantry::worker {
namespace {

class CheckpointPlaneTest : public ::testing::Test {
 protected:
  CheckpointPlaneTest()
      : registry_(std::move(storage::Registry::Open(dir_.path(), clock_)).value()), server_(ctx_, Options()) {
    storage::RegisterStorageHandlers(server_, registry_);
    EXPECT_TRUE(server_.Bind().ok());
    thread_ = std::thread([this] { (void)server_.Serve(); });
  }
  ~CheckpointPlaneTest() override {
    server_.Stop();
    thread_.join();
  }
  static RpcServerOptions Options() {
    RpcServerOptions o;
    o.max_message_bytes = 64 << 20;
    return o;
  }
  static Checkpoint State(int64_t step) {
    Checkpoint c;
    c.model = "plane";
    c.job_id = "j-1";
    c.step = step;
    c.request_id = "plane-step-" + std::to_string(step);  // distinct: storage dedups by it
    c.tensors["0.weight"] = torch::randn({300, 700});
    c.tensors["0.bias"] = torch::randn({300});
    c.tensors["optimizer/step"] = torch::tensor({int64_t{step}});
    c.tensors["empty"] = torch::zeros({0, 4});
    return c;
  }
  void ExpectStored(const Checkpoint& sent, int64_t version) {
    CheckpointClient reader(ctx_, server_.endpoint());
    auto got = reader.LoadRef("plane", "v" + std::to_string(version), false);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->step, sent.step);
    ASSERT_EQ(got->tensors.size(), sent.tensors.size());
    for (const auto& [name, t] : sent.tensors) EXPECT_TRUE(torch::equal(t, got->tensors.at(name))) << name;
  }
  std::vector<std::string> InboxFiles() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/inbox")) {
      out.push_back(e.path().filename().string());
    }
    return out;
  }

  gantry::testing::TempDir dir_;
  ManualClock clock_;
  storage::Registry registry_;
  zmq::context_t ctx_;
  RpcServer server_;
  std::thread thread_;
};

TEST_F(CheckpointPlaneTest, SameHostSaveWritesIntoTheInboxAndLeavesNothing) {
  CheckpointClient client(ctx_, server_.endpoint());
  Checkpoint c = State(5);
  auto saved = client.Save(c);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_TRUE(client.last_save_same_host());
  ExpectStored(c, saved->version);
  EXPECT_EQ(InboxFiles(), std::vector<std::string>{".token"});
}

TEST_F(CheckpointPlaneTest, RemoteWriterStreamsChunksAndFrameFallbackStillWorks) {
  {  // another host's token: the worker must not see this folder as its own
    std::ofstream(dir_.path() + "/inbox/.token", std::ios::trunc) << "not-the-token";
  }
  CheckpointClient remote(ctx_, server_.endpoint());
  Checkpoint c = State(6);
  auto saved = remote.Save(c);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_FALSE(remote.last_save_same_host());
  ExpectStored(c, saved->version);

  CheckpointClient frame(ctx_, server_.endpoint(), /*use_inbox=*/false);
  Checkpoint d = State(7);
  auto framed = frame.Save(d);
  ASSERT_TRUE(framed.ok()) << framed.status().ToString();
  ExpectStored(d, framed->version);
  EXPECT_EQ(InboxFiles(), std::vector<std::string>{".token"});
}

}  // namespace
}  // namespace gantry::worker
