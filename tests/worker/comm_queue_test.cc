// CommQueue: FIFO order, the inline fast path of Run(), and its exclusion
// with the queue's own thread (collectives must never run concurrently).
#include "worker/comm_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace gantry::worker {
namespace {

TEST(CommQueue, RunOnAnIdleQueueRunsOnTheCallersThread) {
  CommQueue q;
  std::thread::id ran_on;
  ASSERT_TRUE(q.Run([&] {
                 ran_on = std::this_thread::get_id();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(CommQueue, RunWaitsBehindQueuedWorkAndKeepsOrder) {
  CommQueue q;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::mutex mu;
  std::vector<int> order;
  auto record = [&](int i) {
    std::lock_guard<std::mutex> l(mu);
    order.push_back(i);
  };
  std::atomic<bool> first_started{false};
  auto first = q.Push([&] {
    first_started = true;
    released.wait();
    record(1);
    return Status::Ok();
  });
  ASSERT_TRUE(testing::WaitFor([&] { return first_started.load(); }));
  std::thread::id ran_on;
  auto second = std::async(std::launch::async, [&] {
    return q.Run([&] {
      ran_on = std::this_thread::get_id();
      record(2);
      return Status::Ok();
    });
  });
  // The queued job holds the queue: Run() must not overtake it.
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  EXPECT_TRUE(first->Wait().ok());
  EXPECT_TRUE(second.get().ok());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_NE(ran_on, std::this_thread::get_id()) << "ran inline although the queue was busy";
}

TEST(CommQueue, QueuedWorkWaitsForAnInlineJob) {
  CommQueue q;
  std::atomic<bool> pushed_ran{false};
  std::unique_ptr<Work> pushed;
  bool ran_during_inline = false;
  ASSERT_TRUE(q.Run([&] {
                 pushed = q.Push([&] {
                   pushed_ran = true;
                   return Status::Ok();
                 });
                 // Give the queue's thread every chance to (wrongly) start it.
                 ran_during_inline = testing::WaitFor([&] { return pushed_ran.load(); },
                                                      std::chrono::milliseconds(50));
                 return Status::Ok();
               }).ok());
  EXPECT_FALSE(ran_during_inline) << "two communication jobs ran at once";
  ASSERT_TRUE(pushed->Wait().ok());
  EXPECT_TRUE(pushed_ran.load());
}

TEST(CommQueue, ExceptionsBecomeStatusOnBothPaths) {
  CommQueue q;
  Status inline_status = q.Run([]() -> Status { throw std::runtime_error("boom"); });
  EXPECT_FALSE(inline_status.ok());
  EXPECT_NE(inline_status.message().find("boom"), std::string::npos);
  Status queued = q.Push([]() -> Status { throw std::runtime_error("bang"); })->Wait();
  EXPECT_NE(queued.message().find("bang"), std::string::npos);
  // The queue still works afterwards.
  EXPECT_TRUE(q.Run([] { return Status::Ok(); }).ok());
}

}  // namespace
}  // namespace gantry::worker
