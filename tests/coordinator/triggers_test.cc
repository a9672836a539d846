// New-data triggers fire once per batch (also after a restart that reloads
// the consumed set); triggers during a run coalesce into the next run.
#include "coordinator/retrain/triggers.h"

#include <gtest/gtest.h>

namespace gantry::coordinator {
namespace {

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

TEST(NewDataTracker, ABatchTriggersOnceAndNotAgainAfterARestart) {
  NewDataConfig cfg{2, 0};
  NewDataTracker tracker(cfg, {"old.idx"});
  std::vector<DataFile> listing = {{"old.idx", 100}, {"b.idx", 10}};
  EXPECT_FALSE(tracker.Check(listing, kNow)) << "one new file is below min_files 2";
  listing.push_back({"a.idx", 20});
  auto t = tracker.Check(listing, kNow);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, TriggerKind::kNewData);
  EXPECT_EQ(t->detail, "2 new files, 30 samples");
  auto batch = tracker.Pending(listing);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].name, "a.idx");
  tracker.Consume(batch);
  EXPECT_FALSE(tracker.Check(listing, kNow));

  // A restarted coordinator rebuilds the tracker from the stored set.
  NewDataTracker reloaded(cfg, tracker.consumed());
  EXPECT_FALSE(reloaded.Check(listing, kNow));
  EXPECT_TRUE(reloaded.Pending(listing).empty());
}

TEST(NewDataTracker, SampleThreshold) {
  NewDataTracker tracker({0, 1000}, {});
  EXPECT_FALSE(tracker.Check({{"a", 999}}, kNow));
  EXPECT_TRUE(tracker.Check({{"a", 999}, {"b", 1}}, kNow));
}

TEST(RunCoalescer, OneRunAtATimeAndTriggersDuringARunMerge) {
  RunCoalescer c;
  EXPECT_FALSE(c.Start()) << "nothing fired";
  c.Fire({TriggerKind::kCron, "cron", kNow});
  c.Fire({TriggerKind::kNewData, "1 new file", kNow});
  auto first = c.Start();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 2u) << "two triggers in one tick make one run";
  EXPECT_TRUE(c.running());

  c.Fire({TriggerKind::kDrift, "drift", kNow});
  c.Fire({TriggerKind::kManual, "trigger", kNow});
  EXPECT_FALSE(c.Start()) << "a run is going";
  EXPECT_EQ(c.pending(), 2u);
  c.Finished();
  auto second = c.Start();
  ASSERT_TRUE(second);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_STREQ(TriggerKindName((*second)[0].kind), "drift");
  EXPECT_FALSE(c.Start());
}

}  // namespace
}  // namespace gantry::coordinator
