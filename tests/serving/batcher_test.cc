// The dynamic batcher: batch formation up to max_batch, max_delay on a manual
// clock, the bounded queue, stop modes and BatchFn failures. Synchronisation
// is by gates, futures and polled counters, never by sleeping.
#include "serving/batcher.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>
#include <stdexcept>

#include "serving/api_error.h"
#include "tests/serving/serving_test_util.h"

namespace gantry::serving {
namespace {
using namespace std::chrono_literals;
using testing::Gate;
using testing::Ready;
using testing::SumFn;
using testing::WaitFor;

BatcherOptions Opts(size_t max_batch, size_t row_size = 2) {
  BatcherOptions o;
  o.row_size = row_size;
  o.max_batch = max_batch;
  return o;
}

std::vector<float> Rows(size_t n, float v, size_t row_size = 2) {
  return std::vector<float>(n * row_size, v);
}

TEST(Batcher, QueuedRequestsRunAsOneBatchUpToMaxBatch) {
  Gate gate;
  auto fn = std::make_shared<SumFn>(&gate);
  Batcher b(Opts(8), [fn](const BatchInput& in) { return (*fn)(in); });
  auto first = b.Submit(Rows(1, 1));
  ASSERT_TRUE(gate.WaitEntered(1));  // the worker is busy with the first
  std::vector<std::future<Result<RowsResult>>> rest;
  for (int i = 0; i < 10; ++i) rest.push_back(b.Submit(Rows(1, static_cast<float>(i))));
  EXPECT_EQ(b.stats().queued_rows, 10u);
  gate.Open();
  ASSERT_TRUE(Ready(first));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Ready(rest[i]));
    auto r = rest[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->rows, 1u);
    EXPECT_EQ(r->row_size, 1u);
    EXPECT_FLOAT_EQ(r->data[0], 2.0f * static_cast<float>(i));  // its own row, not a neighbour's
    EXPECT_EQ(r->batch_rows, i < 8 ? 8u : 2u);
  }
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{1, 8, 2}));
  EXPECT_EQ(b.stats().batches, 3u);
  EXPECT_EQ(b.stats().rows, 11u);
}

TEST(Batcher, RequestsAreNeverSplit) {
  Gate gate;
  auto fn = std::make_shared<SumFn>(&gate);
  Batcher b(Opts(4), [fn](const BatchInput& in) { return (*fn)(in); });
  auto first = b.Submit(Rows(1, 0));
  ASSERT_TRUE(gate.WaitEntered(1));
  auto a = b.Submit(Rows(3, 1));
  auto c = b.Submit(Rows(3, 2));
  gate.Open();
  ASSERT_TRUE(Ready(a) && Ready(c));
  auto ra = a.get();
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->data, (std::vector<float>{2, 2, 2}));
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{1, 3, 3}));
}

TEST(Batcher, RefusesRequestsLargerThanMaxBatchAndPartialRows) {
  Batcher b(Opts(4), SumFn());
  auto big = b.Submit(Rows(5, 1)).get();
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find("5 rows exceed max_batch 4"), std::string::npos);
  auto partial = b.Submit(std::vector<float>{1, 2, 3}).get();
  EXPECT_EQ(partial.status().code(), StatusCode::kInvalidArgument);
  auto empty = b.Submit(std::vector<float>{}).get();
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b.stats().rejected, 3u);
}

TEST(Batcher, MaxDelayWaitsOnTheInjectedClock) {
  ManualClock clock;
  BatcherOptions o = Opts(8);
  o.max_delay = 100ms;
  o.clock = &clock;
  auto fn = std::make_shared<SumFn>();
  Batcher b(o, [fn](const BatchInput& in) { return (*fn)(in); });
  auto a = b.Submit(Rows(1, 1));
  ASSERT_TRUE(WaitFor([&] { return b.stats().waits >= 1; }));
  clock.Advance(60ms);
  b.Notify();
  auto c = b.Submit(Rows(2, 1));  // waits for the oldest's deadline, not its own
  const uint64_t waits = b.stats().waits;
  ASSERT_TRUE(WaitFor([&] { return b.stats().waits > waits; }));
  clock.Advance(39ms);  // 99 ms after the first request
  b.Notify();
  const uint64_t waits2 = b.stats().waits;
  ASSERT_TRUE(WaitFor([&] { return b.stats().waits > waits2; }));
  EXPECT_EQ(b.stats().batches, 0u);
  EXPECT_EQ(a.wait_for(0s), std::future_status::timeout);
  clock.Advance(1ms);  // the deadline
  b.Notify();
  ASSERT_TRUE(Ready(a) && Ready(c));
  auto ra = a.get();
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->batch_rows, 3u);
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{3}));
}

TEST(Batcher, FullBatchDoesNotWaitForMaxDelay) {
  ManualClock clock;
  BatcherOptions o = Opts(4);
  o.max_delay = 1h;
  o.clock = &clock;
  auto fn = std::make_shared<SumFn>();
  Batcher b(o, [fn](const BatchInput& in) { return (*fn)(in); });
  auto a = b.Submit(Rows(1, 1));
  ASSERT_TRUE(WaitFor([&] { return b.stats().waits >= 1; }));
  auto c = b.Submit(Rows(3, 1));  // fills max_batch: runs without the clock moving
  ASSERT_TRUE(Ready(a) && Ready(c));
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{4}));
}

TEST(Batcher, FullQueueAnswersResourceExhaustedAtOnce) {
  Gate gate;
  BatcherOptions o = Opts(2);
  o.max_queued_requests = 2;
  o.max_queued_rows = 3;
  Batcher b(o, SumFn(&gate));
  auto running = b.Submit(Rows(1, 1));
  ASSERT_TRUE(gate.WaitEntered(1));
  auto q1 = b.Submit(Rows(2, 1));
  auto rows_full = b.Submit(Rows(2, 1)).get();  // 2 + 2 rows > 3
  ASSERT_FALSE(rows_full.ok());
  EXPECT_EQ(rows_full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ApiErrorFromStatus(rows_full.status()).http_status, 503);
  auto q2 = b.Submit(Rows(1, 1));
  auto requests_full = b.Submit(Rows(1, 1)).get();  // a third queued request
  ASSERT_FALSE(requests_full.ok());
  EXPECT_EQ(requests_full.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(requests_full.status().message().find("serving queue full"), std::string::npos);
  EXPECT_EQ(b.stats().rejected, 2u);
  gate.Open();
  ASSERT_TRUE(Ready(q1) && Ready(q2));
  EXPECT_TRUE(q1.get().ok());
  EXPECT_TRUE(q2.get().ok());
  EXPECT_TRUE(b.Submit(Rows(2, 1)).get().ok());  // room again
}

TEST(Batcher, DefaultQueueHoldsAThousandRowsEvenAtMaxBatchOne) {
  Gate gate;
  Batcher b(Opts(1), SumFn(&gate));
  auto running = b.Submit(Rows(1, 1));
  ASSERT_TRUE(gate.WaitEntered(1));
  std::vector<std::future<Result<RowsResult>>> queued;
  for (int i = 0; i < 1024; ++i) queued.push_back(b.Submit(Rows(1, 1)));
  auto refused = b.Submit(Rows(1, 1)).get();  // the 1,025th queued row
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b.stats().rejected, 1u);
  gate.Open();
  for (auto& q : queued) ASSERT_TRUE(Ready(q) && q.get().ok());
}

TEST(Batcher, StopFailFailsPendingWithUnavailable) {
  Gate gate;
  Batcher b(Opts(2), SumFn(&gate));
  auto running = b.Submit(Rows(2, 1));
  ASSERT_TRUE(gate.WaitEntered(1));
  auto p1 = b.Submit(Rows(1, 1));
  auto p2 = b.Submit(Rows(2, 1));
  std::thread stopper([&] { b.Stop(StopMode::kFail); });
  ASSERT_TRUE(WaitFor([&] { return b.stopping(); }));
  auto late = b.Submit(Rows(1, 1)).get();
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  gate.Open();
  stopper.join();
  ASSERT_TRUE(Ready(running));
  EXPECT_TRUE(running.get().ok());  // the batch in flight finishes
  for (auto* f : {&p1, &p2}) {
    ASSERT_TRUE(Ready(*f));
    auto r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  }
  EXPECT_EQ(b.stats().batches, 1u);
}

TEST(Batcher, StopDrainRunsPending) {
  Gate gate;
  auto fn = std::make_shared<SumFn>(&gate);
  ManualClock clock;
  BatcherOptions o = Opts(2);
  o.max_delay = 1h;  // drain does not wait for company
  o.clock = &clock;
  Batcher b(o, [fn](const BatchInput& in) { return (*fn)(in); });
  auto running = b.Submit(Rows(2, 1));
  ASSERT_TRUE(gate.WaitEntered(1));
  auto p1 = b.Submit(Rows(2, 1));
  auto p2 = b.Submit(Rows(1, 1));
  std::thread stopper([&] { b.Stop(StopMode::kDrain); });
  ASSERT_TRUE(WaitFor([&] { return b.stopping(); }));
  gate.Open();
  stopper.join();
  for (auto* f : {&running, &p1, &p2}) {
    ASSERT_TRUE(Ready(*f));
    EXPECT_TRUE(f->get().ok());
  }
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{2, 2, 1}));
  EXPECT_EQ(b.Submit(Rows(1, 1)).get().status().code(), StatusCode::kUnavailable);
}

TEST(Batcher, BatchFnFailuresReachEveryRequestOfTheBatch) {
  Gate gate;
  int calls = 0;
  Batcher b(Opts(4), [&](const BatchInput&) -> Result<BatchOutput> {
    if (++calls == 1) {
      gate.Pass();
      return Status::Internal("forward failed");
    }
    if (calls == 2) throw std::runtime_error("boom");
    return BatchOutput{{1, 2, 3}, "v"};  // 3 elements for 2 rows
  });
  auto a = b.Submit(Rows(1, 1));
  ASSERT_TRUE(gate.WaitEntered(1));
  gate.Open();
  EXPECT_EQ(a.get().status().message(), "forward failed");
  auto thrown = b.Submit(Rows(1, 1)).get();
  EXPECT_EQ(thrown.status().code(), StatusCode::kInternal);
  EXPECT_NE(thrown.status().message().find("boom"), std::string::npos);
  auto wrong = b.Submit(Rows(2, 1)).get();
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
  EXPECT_NE(wrong.status().message().find("3 elements for 2 rows"), std::string::npos);
  EXPECT_EQ(b.stats().failed_batches, 3u);
}

TEST(Batcher, ThrowingCallbackDoesNotStopTheWorker) {
  Batcher b(Opts(4), SumFn());
  EXPECT_EQ(b.Submit(Rows(1, 1), DoneFn()).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(b.Submit(Rows(1, 1), [](Result<RowsResult>) { throw std::runtime_error("x"); }).ok());
  auto after = b.Submit(Rows(1, 1)).get();
  EXPECT_TRUE(after.ok()) << after.status().ToString();
}

// A stand-in for an HTTP event loop: closures deferred on a thread marked as
// a loop wait here until the test runs them, as a loop would reach them
// after the completions already ready on it.
thread_local bool t_is_loop = false;
thread_local std::vector<std::function<void()>> t_deferred;

bool TestDefer(std::function<void()> fn) {
  if (!t_is_loop) return false;
  t_deferred.push_back(std::move(fn));
  return true;
}

size_t RunDeferred() {
  std::vector<std::function<void()>> fns;
  fns.swap(t_deferred);
  for (auto& f : fns) f();
  return fns.size();
}

struct LoopThread {  // marks the test's thread as a loop for its scope
  LoopThread() { t_is_loop = true; }
  ~LoopThread() {
    t_deferred.clear();
    t_is_loop = false;
  }
};

BatcherOptions LoopOpts(size_t max_batch) {
  BatcherOptions o = Opts(max_batch);
  o.run_on_submitting_loop = true;
  return o;
}

TEST(Batcher, BatchesOnTheSubmittingLoopWithTheRequestsReadBeforeTheFlush) {
  LoopThread loop;
  auto fn = std::make_shared<SumFn>();
  std::thread::id forward_thread;
  Batcher b(LoopOpts(8), [fn, &forward_thread](const BatchInput& in) {
    forward_thread = std::this_thread::get_id();
    return (*fn)(in);
  });
  std::vector<std::optional<Result<RowsResult>>> got(3);
  std::vector<std::thread::id> done_threads(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.Submit(Rows(1, static_cast<float>(i)), [&, i](Result<RowsResult> r) {
      done_threads[i] = std::this_thread::get_id();
      got[i] = std::move(r);
    }, &TestDefer).ok());
  }
  // Nothing ran yet: one flush is deferred on this loop, the worker was not woken.
  EXPECT_EQ(t_deferred.size(), 1u);
  EXPECT_FALSE(got[0].has_value());
  EXPECT_EQ(b.stats().queued_requests, 3u);
  EXPECT_EQ(RunDeferred(), 1u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(got[i].has_value());
    ASSERT_TRUE(got[i]->ok()) << got[i]->status().ToString();
    EXPECT_FLOAT_EQ((*got[i])->data[0], 2.0f * static_cast<float>(i));
    EXPECT_EQ((*got[i])->batch_rows, 3u);
    EXPECT_EQ(done_threads[i], std::this_thread::get_id());
  }
  EXPECT_EQ(forward_thread, std::this_thread::get_id());
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{3}));
  EXPECT_EQ(b.stats().loop_batches, 1u);
  EXPECT_EQ(b.stats().batches, 1u);
  EXPECT_TRUE(t_deferred.empty());  // the queue is empty: no flush again
}

TEST(Batcher, AFlushRunsOneBatchThenDefersItselfSoTheLoopReadsInBetween) {
  LoopThread loop;
  auto fn = std::make_shared<SumFn>();
  Batcher b(LoopOpts(2), [fn](const BatchInput& in) { return (*fn)(in); });
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { answered += r.ok() ? 1 : 100; }, &TestDefer).ok());
  }
  EXPECT_EQ(RunDeferred(), 1u);
  EXPECT_EQ(answered, 2);            // one batch of max_batch rows
  EXPECT_EQ(t_deferred.size(), 1u);  // and the flush deferred again for the rest
  // A request read before the next flush joins the rest.
  ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { answered += r.ok() ? 1 : 100; }, &TestDefer).ok());
  EXPECT_EQ(t_deferred.size(), 1u);  // no second flush scheduled
  EXPECT_EQ(RunDeferred(), 1u);
  EXPECT_EQ(answered, 4);
  EXPECT_EQ(fn->sizes(), (std::vector<size_t>{2, 2}));
  EXPECT_EQ(b.stats().loop_batches, 2u);
}

TEST(Batcher, AFlushThatNeverRunsHandsTheQueueToTheWorker) {
  LoopThread loop;
  Batcher b(LoopOpts(8), SumFn());
  std::promise<Result<RowsResult>> p;
  auto f = p.get_future();
  ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { p.set_value(std::move(r)); }, &TestDefer).ok());
  ASSERT_EQ(t_deferred.size(), 1u);
  t_deferred.clear();  // the loop stopped: its pending handlers are destroyed
  ASSERT_TRUE(Ready(f));
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(b.stats().loop_batches, 0u);
  EXPECT_EQ(b.stats().batches, 1u);
  // The next request on the loop schedules a flush again.
  ASSERT_TRUE(b.Submit(Rows(1, 1), [](Result<RowsResult>) {}, &TestDefer).ok());
  EXPECT_EQ(t_deferred.size(), 1u);
}

TEST(Batcher, OffALoopTheWorkerRunsTheBatch) {
  Batcher b(LoopOpts(8), SumFn());  // this thread is no loop: TestDefer refuses
  std::promise<Result<RowsResult>> p;
  auto f = p.get_future();
  ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { p.set_value(std::move(r)); }, &TestDefer).ok());
  ASSERT_TRUE(Ready(f));
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(b.stats().loop_batches, 0u);
}

TEST(Batcher, StopWaitsForABatchRunningOnALoop) {
  Gate gate;
  auto fn = std::make_shared<SumFn>(&gate);
  Batcher b(LoopOpts(8), [fn](const BatchInput& in) { return (*fn)(in); });
  std::promise<Result<RowsResult>> p;
  auto running = p.get_future();
  auto loop_thread = std::async(std::launch::async, [&] {
    LoopThread loop;
    EXPECT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { p.set_value(std::move(r)); }, &TestDefer).ok());
    RunDeferred();  // holds the gate
  });
  ASSERT_TRUE(gate.WaitEntered(1));
  auto stopped = std::async(std::launch::async, [&] { b.Stop(StopMode::kFail); });
  ASSERT_TRUE(WaitFor([&] { return b.stopping(); }));
  // Stop cannot return while the loop's batch still runs.
  EXPECT_EQ(stopped.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  gate.Open();
  ASSERT_TRUE(Ready(stopped));
  ASSERT_TRUE(Ready(running));
  EXPECT_TRUE(running.get().ok());
  loop_thread.get();
}

TEST(Batcher, AFlushOutlivingTheBatcherDoesNothing) {
  LoopThread loop;
  int calls = 0;
  std::optional<Status> status;
  {
    Batcher b(LoopOpts(8), SumFn());
    ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) {
      ++calls;
      status = r.status();
    }, &TestDefer).ok());
  }  // Stop(kFail) answers it
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), StatusCode::kUnavailable);
  EXPECT_EQ(RunDeferred(), 1u);  // finds the batcher gone
  EXPECT_EQ(calls, 1);
}

TEST(Batcher, NoLoopFlushWithMaxDelay) {
  LoopThread loop;
  ManualClock clock;
  BatcherOptions o = LoopOpts(8);
  o.max_delay = 1h;
  o.clock = &clock;
  Batcher b(o, SumFn());
  std::promise<Result<RowsResult>> p;
  auto f = p.get_future();
  ASSERT_TRUE(b.Submit(Rows(1, 1), [&](Result<RowsResult> r) { p.set_value(std::move(r)); }, &TestDefer).ok());
  EXPECT_TRUE(t_deferred.empty());  // max_delay batching is the worker's
  ASSERT_TRUE(WaitFor([&] { return b.stats().waits > 0; }));
  clock.Advance(1h);
  b.Notify();
  ASSERT_TRUE(Ready(f));
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(b.stats().loop_batches, 0u);
}

}  // namespace
}  // namespace gantry::serving
