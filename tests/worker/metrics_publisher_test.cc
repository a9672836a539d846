// MetricsPublisher's message: one MessagePack frame in the monitor's
// envelope (docs/protocol.md).
#include "worker/metrics_publisher.h"

#include <gtest/gtest.h>

namespace gantry::worker {
namespace {

TEST(MetricsPublisher, EncodesOneMsgpackFrame) {
  MetricsPoint p;
  p.step = 20;
  p.total_steps = 100;
  p.time = 1.7e9;
  p.values = {{"loss", 0.5}};
  auto j = ParseMsgpack(MetricsPublisher::Encode({"j-1", 2, 0, 4}, p));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["v"], 1);
  EXPECT_EQ((*j)["type"], "metrics");
  EXPECT_EQ((*j)["body"]["job_id"], "j-1");
  EXPECT_EQ((*j)["body"]["attempt"], 2);
  EXPECT_EQ((*j)["body"]["world_size"], 4);
  EXPECT_EQ((*j)["body"]["step"], 20);
  EXPECT_EQ((*j)["body"]["values"]["loss"], 0.5);
}

}  // namespace
}  // namespace gantry::worker
