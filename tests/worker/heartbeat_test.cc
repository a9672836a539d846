// HeartbeatSender against an in-test coordinator (RpcServer on a thread).
#include "worker/heartbeat.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "tests/support/test_support.h"

namespace gantry::worker {
namespace {

TEST(Heartbeat, BeatsCarryTheCurrentStepAndSurviveErrors) {
  zmq::context_t ctx(1);
  RpcServer server(ctx, RpcServerOptions{});
  ASSERT_TRUE(server.Bind().ok());
  std::mutex mu;
  std::vector<json> beats;  // GUARDED_BY(mu)
  server.Handle("heartbeat", [&](const Request& req) -> Result<json> {
    std::lock_guard<std::mutex> l(mu);
    beats.push_back(req.body);
    // Every other beat fails: the sender must carry on regardless.
    if (beats.size() % 2 == 0) return Status::Internal("coordinator hiccup (fake)");
    return json::object();
  });
  std::thread serve([&] { (void)server.Serve(); });
  SystemClock clock;
  {
    HeartbeatSender hb(ctx, server.endpoint(), {"j-9", 2, 1}, std::chrono::milliseconds(20), clock);
    ASSERT_TRUE(hb.enabled());
    hb.SetStep(7);
    EXPECT_TRUE(gantry::testing::WaitFor([&] {
      std::lock_guard<std::mutex> l(mu);
      return beats.size() >= 4 && beats.back()["step"] == 7;
    }));
    EXPECT_GE(hb.failed(), 1);
  }
  server.Stop();
  serve.join();
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(beats[0]["job_id"], "j-9");
  EXPECT_EQ(beats[0]["attempt"], 2);
  EXPECT_EQ(beats[0]["rank"], 1);
  EXPECT_GT(beats[0]["time"].get<double>(), 1.6e9);
}

TEST(Heartbeat, EmptyEndpointIsDisabled) {
  zmq::context_t ctx(1);
  SystemClock clock;
  HeartbeatSender hb(ctx, "", {"j", 1, 0}, std::chrono::milliseconds(10), clock);
  EXPECT_FALSE(hb.enabled());
}

}  // namespace
}  // namespace gantry::worker
