// AsyncCheckpointer while storage is gone (issue 8, item 4): a failed save
// is kept (one pending snapshot at most, a newer one replaces it) and retried
// with the same request id once storage is back; the final save waits up to
// its limit and then fails naming storage. Time is a ManualClock; waits poll
// with a real-time deadline.
#include <gtest/gtest.h>

#include <atomic>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "worker/async_checkpointer.h"

namespace gantry::worker {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A store that is "down" (unavailable) until told otherwise, can hold a
// save at its start (gate), and records every try.
class ScriptedStore final : public CheckpointStore {
 public:
  struct Try {
    int64_t step;
    std::string request_id;
    bool saved;
    std::set<std::string> tensors = {};  // names sent
  };
  bool enabled() const override { return true; }
  Result<SavedCheckpoint> Save(const Checkpoint& c) override {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return !gate_closed; });
    const bool ok = !down && !broken;
    std::set<std::string> names;
    for (const auto& [name, t] : c.tensors) names.insert(name);
    tries.push_back({c.step, c.request_id, ok, std::move(names)});
    cv.notify_all();
    if (broken) return Status::Internal("disk full (fake)");
    if (down) return Status::Unavailable("storage at tcp://fake does not answer (fake)");
    return SavedCheckpoint{"m", static_cast<int64_t>(tries.size())};
  }
  Result<std::optional<Checkpoint>> LoadLatestOfJob(const std::string&, const std::string&) override {
    return std::optional<Checkpoint>();
  }
  Result<Checkpoint> LoadRef(const std::string&, const std::string&, bool) override { return Status::NotFound("x"); }

  void Set(bool is_down, bool closed = false) {
    std::lock_guard<std::mutex> l(mu);
    down = is_down;
    gate_closed = closed;
    cv.notify_all();
  }
  // Polls (real time, with a deadline) until `pred` holds on the tries.
  bool WaitTries(const std::function<bool(const std::vector<Try>&)>& pred) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, seconds(20), [&] { return pred(tries); });
  }
  std::vector<Try> Tries() {
    std::lock_guard<std::mutex> l(mu);
    return tries;
  }

  std::mutex mu;
  std::condition_variable cv;
  bool down = false;         // GUARDED_BY(mu)
  bool broken = false;       // GUARDED_BY(mu): a non-retryable failure
  bool gate_closed = false;  // GUARDED_BY(mu)
  std::vector<Try> tries;    // GUARDED_BY(mu)
};

Checkpoint AtStep(int64_t step) {
  Checkpoint c;
  c.model = "m";
  c.step = step;
  return c;
}

AsyncCheckpointerOptions Opts(const Clock& clock, bool async = true) {
  AsyncCheckpointerOptions o;
  o.async = async;
  o.clock = &clock;
  o.retry_initial = milliseconds(500);
  o.retry_max = milliseconds(2000);
  return o;
}

// A manual clock that notices when the thread running Finish() first reads
// it, so a test can wait until Finish() has taken its deadline before it
// advances time past that deadline.
class WatchedClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    const auto now = clock_.Now();  // read before telling: time may move after
    if (finisher_) {
      std::lock_guard<std::mutex> l(mu_);
      finisher_read_ = true;
      cv_.notify_all();
    }
    return now;
  }
  double WallSeconds() const override { return clock_.WallSeconds(); }
  void Advance(std::chrono::steady_clock::duration d) { clock_.Advance(d); }
  // Runs saver.Finish(limit) on a new thread; returns once it read the clock.
  std::future<Status> StartFinish(AsyncCheckpointer& saver, std::chrono::milliseconds limit) {
    auto finish = std::async(std::launch::async, [&saver, limit] {
      finisher_ = true;
      return saver.Finish(limit);
    });
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return finisher_read_; });
    return finish;
  }

 private:
  static thread_local bool finisher_;
  ManualClock clock_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable bool finisher_read_ = false;  // GUARDED_BY(mu_)
};
thread_local bool WatchedClock::finisher_ = false;

size_t Saved(const std::vector<ScriptedStore::Try>& t) {
  size_t n = 0;
  for (const auto& x : t) n += x.saved;
  return n;
}

TEST(AsyncCheckpointerRetry, KeptWhileStorageIsDownAndRetriedWithTheSameRequestId) {
  ManualClock clock;
  ScriptedStore store;
  store.Set(/*down=*/true);
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(10)).ok());
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 1; }));
  saver.Flush();  // the failed try is over; the snapshot waits for its retry
  auto first = saver.TakeFinished();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].will_retry);
  EXPECT_EQ(first[0].status.code(), StatusCode::kUnavailable);
  // Storage is back; the retry comes once the backoff has passed on the clock.
  store.Set(/*down=*/false);
  clock.Advance(milliseconds(500));
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 2; }));
  ASSERT_TRUE(saver.Finish(seconds(1)).ok());
  auto tries = store.Tries();
  ASSERT_EQ(tries.size(), 2u);
  EXPECT_EQ(tries[1].step, 10);
  EXPECT_TRUE(tries[1].saved);
  EXPECT_EQ(tries[0].request_id.size(), 16u) << "request ids are 8 random bytes in hex (common/ids.h)";
  EXPECT_EQ(tries[0].request_id, tries[1].request_id) << "a retry must carry the same request id";
  auto done = saver.TakeFinished();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_FALSE(done[0].will_retry);
}

TEST(AsyncCheckpointerRetry, WhileStorageAnswersANewerSnapshotWaitsAndNoneIsDropped) {
  ManualClock clock;
  ScriptedStore store;
  store.Set(/*down=*/false, /*closed=*/true);  // step 1's save is held in flight
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(1)).ok());
  ASSERT_TRUE(saver.Submit(AtStep(2)).ok());  // queued beside the one in flight
  // Step 3 comes while step 2 is still queued; storage has not failed, so
  // Submit waits for step 2 to be taken instead of replacing it. The gate
  // opens once the trainer is about to submit (if Submit did not wait, it
  // would have replaced step 2 before the held save could finish).
  std::atomic<bool> submitting{false};
  std::thread storage([&] {
    while (!submitting.load()) std::this_thread::yield();
    store.Set(/*down=*/false, /*closed=*/false);
  });
  submitting = true;
  EXPECT_TRUE(saver.Submit(AtStep(3)).ok());
  storage.join();
  ASSERT_TRUE(saver.Finish(seconds(1)).ok());
  auto tries = store.Tries();
  ASSERT_EQ(tries.size(), 3u);
  EXPECT_EQ(tries[0].step, 1);
  EXPECT_EQ(tries[1].step, 2);
  EXPECT_EQ(tries[2].step, 3);
  EXPECT_EQ(Saved(tries), 3u);
  for (const auto& o : saver.TakeFinished()) EXPECT_TRUE(o.status.ok()) << o.step << ": " << o.status.ToString();
}

TEST(AsyncCheckpointerRetry, ANewerSnapshotReplacesOneWaitingForItsRetry) {
  ManualClock clock;
  ScriptedStore store;
  store.Set(/*down=*/true);
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(5)).ok());
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 1; }));
  saver.Flush();
  ASSERT_TRUE(saver.Submit(AtStep(6)).ok());  // replaces step 5, tried at once
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 2; }));
  saver.Flush();
  store.Set(/*down=*/false);
  clock.Advance(seconds(5));
  ASSERT_TRUE(saver.Finish(seconds(1)).ok());
  auto tries = store.Tries();
  ASSERT_EQ(tries.size(), 3u);
  EXPECT_EQ(tries[2].step, 6);
  EXPECT_TRUE(tries[2].saved);
  EXPECT_EQ(Saved(tries), 1u);
  std::set<int64_t> superseded;
  for (const auto& o : saver.TakeFinished()) {
    if (o.status.code() == StatusCode::kAborted) superseded.insert(o.step);
  }
  EXPECT_EQ(superseded, std::set<int64_t>{5});
}

TEST(AsyncCheckpointerRetry, FinalSaveWaitsUpToItsLimitThenFailsNamingStorage) {
  WatchedClock clock;
  ScriptedStore store;
  store.Set(/*down=*/true);
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(40)).ok());
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 1; }));
  saver.Flush();  // the failed try is back in pending_ with its retry time set
  // The deadline is taken when Finish starts: time moves only after that.
  auto finish = clock.StartFinish(saver, seconds(120));
  clock.Advance(seconds(119));
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() >= 2; })) << "no retry while waiting";
  EXPECT_EQ(finish.wait_for(milliseconds(0)), std::future_status::timeout) << "Finish gave up before its limit";
  clock.Advance(seconds(2));
  ASSERT_EQ(finish.wait_for(seconds(20)), std::future_status::ready);
  Status st = finish.get();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("storage"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("step 40"), std::string::npos) << st.ToString();
  // Retries stop once the limit passed, even when storage comes back.
  const size_t before = store.Tries().size();
  store.Set(/*down=*/false);
  clock.Advance(seconds(60));
  saver.Flush();
  EXPECT_EQ(store.Tries().size(), before);
  EXPECT_EQ(Saved(store.Tries()), 0u);
}

TEST(AsyncCheckpointerRetry, FinalSaveSucceedsWhenStorageReturnsWithinTheLimit) {
  ManualClock clock;
  ScriptedStore store;
  store.Set(/*down=*/true);
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(40)).ok());
  ASSERT_TRUE(store.WaitTries([](const auto& t) { return t.size() == 1; }));
  saver.Flush();  // the failed try is back in pending_ with its retry time set
  auto finish = std::async(std::launch::async, [&] { return saver.Finish(seconds(120)); });
  clock.Advance(seconds(30));  // storage restarting
  store.Set(/*down=*/false);
  clock.Advance(seconds(5));
  ASSERT_EQ(finish.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_TRUE(finish.get().ok());
  EXPECT_EQ(Saved(store.Tries()), 1u);
  EXPECT_EQ(store.Tries().back().step, 40);
}

TEST(AsyncCheckpointerRetry, OtherFailuresAreFinalAndNotRetried) {
  ManualClock clock;
  ScriptedStore store;
  {
    std::lock_guard<std::mutex> l(store.mu);
    store.broken = true;
  }
  AsyncCheckpointer saver(store, Opts(clock));
  ASSERT_TRUE(saver.Submit(AtStep(8)).ok());
  EXPECT_TRUE(saver.Finish(seconds(120)).ok()) << "nothing left pending";
  auto done = saver.TakeFinished();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), StatusCode::kInternal);
  EXPECT_FALSE(done[0].will_retry);
  clock.Advance(seconds(60));
  saver.Flush();
  EXPECT_EQ(store.Tries().size(), 1u);
}

TEST(AsyncCheckpointerRetry, InlineModeRetriesInFinishOnTheCallersThread) {
  ManualClock clock;
  ScriptedStore store;
  store.Set(/*down=*/true);
  AsyncCheckpointer saver(store, Opts(clock, /*async=*/false));
  EXPECT_EQ(saver.Submit(AtStep(3)).code(), StatusCode::kUnavailable);
  auto finish = std::async(std::launch::async, [&] { return saver.Finish(seconds(120)); });
  store.Set(/*down=*/false);
  clock.Advance(seconds(1));
  ASSERT_EQ(finish.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_TRUE(finish.get().ok());
  auto tries = store.Tries();
  ASSERT_EQ(tries.size(), 2u);
  EXPECT_EQ(tries[0].request_id, tries[1].request_id);
  EXPECT_TRUE(tries[1].saved);
}

// A tensor still being computed at snapshot time (the drift profile) does
// not hold up Submit(): the saver's thread waits for it and sends it with
// the snapshot; one that comes out undefined is left out.
TEST(AsyncCheckpointerDeferred, TheSaverWaitsForDeferredTensorsNotTheCaller) {
  ManualClock clock;
  ScriptedStore store;
  AsyncCheckpointer saver(store, Opts(clock));
  std::promise<torch::Tensor> profile;
  std::promise<torch::Tensor> nothing;
  Checkpoint c = AtStep(400);
  c.tensors["w"] = torch::ones({2});
  c.deferred["trainer/drift_profile"] = profile.get_future().share();
  c.deferred["trainer/none"] = nothing.get_future().share();
  ASSERT_TRUE(saver.Submit(std::move(c)).ok());  // returns with the profile unfinished
  EXPECT_TRUE(store.Tries().empty());
  nothing.set_value(torch::Tensor());
  profile.set_value(torch::zeros({3}, torch::kUInt8));
  ASSERT_TRUE(saver.Finish(seconds(5)).ok());
  auto tries = store.Tries();
  ASSERT_EQ(tries.size(), 1u);
  EXPECT_EQ(tries[0].tensors, (std::set<std::string>{"trainer/drift_profile", "w"}));
}

}  // namespace
}  // namespace gantry::worker
