// CronSchedule: parsing errors, next fire times in UTC and across DST changes,
// missed runs collapsing into one.
#include "coordinator/retrain/cron.h"

#include <gtest/gtest.h>

#include "tests/coordinator/utc_text.h"

namespace gantry::coordinator {
namespace {

using TimePoint = CronSchedule::TimePoint;

TimePoint Utc(const char* text) { return testing_time::Utc(text); }

std::string Format(std::optional<TimePoint> t) {
  if (!t) return "never";
  return testing_time::Format(*t);
}

CronSchedule Must(const char* expr, const char* zone = "UTC") {
  auto c = CronSchedule::Parse(expr, zone);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(Cron, EveryFifteenMinutesInUtc) {
  auto c = Must("*/15 * * * *");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-01 10:00:00"))), "2026-12-01 10:15:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-01 10:14:59"))), "2026-12-01 10:15:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-01 23:50:00"))), "2026-12-02 00:00:00");
}

TEST(Cron, ListsRangesStepsAndNames) {
  auto c = Must("5,35 9-17/4 * jan-mar MON-fri");  // hours 9, 13, 17
  // 2026-12-31 is outside January..March; 2027-01-01 is a Friday.
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-31 12:00:00"))), "2027-01-01 09:05:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2027-01-01 09:05:00"))), "2027-01-01 09:35:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2027-01-01 09:35:00"))), "2027-01-01 13:05:00");
  // Friday 17:35 -> Monday 2027-01-04 09:05.
  EXPECT_EQ(Format(c.NextAfter(Utc("2027-01-01 17:35:00"))), "2027-01-04 09:05:00");
}

TEST(Cron, BothDayFieldsRestrictedMeansEither) {
  // The 13th, or any Friday (Vixie semantics).
  auto c = Must("0 0 13 * 5");
  // 2026-11-13 is a Friday; after it the next Friday is 11-20.
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-11-13 00:00:00"))), "2026-11-20 00:00:00");
  // 2026-12-11 is a Friday, before the 13th (a Sunday).
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-10 00:00:00"))), "2026-12-11 00:00:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-11 00:00:00"))), "2026-12-13 00:00:00");
  // A star in one day field means both must match: Fridays in December only.
  auto d = Must("0 0 * 12 fri");
  EXPECT_EQ(Format(d.NextAfter(Utc("2026-12-25 00:00:00"))), "2027-12-03 00:00:00");
}

TEST(Cron, SundayIsZeroOrSevenAndMacrosExpand) {
  EXPECT_EQ(Format(Must("0 12 * * 7").NextAfter(Utc("2026-12-01 00:00:00"))), "2026-12-06 12:00:00");
  EXPECT_EQ(Format(Must("0 12 * * 0").NextAfter(Utc("2026-12-01 00:00:00"))), "2026-12-06 12:00:00");
  EXPECT_EQ(Format(Must("@daily").NextAfter(Utc("2026-12-01 00:00:00"))), "2026-12-02 00:00:00");
  EXPECT_EQ(Format(Must("@hourly").NextAfter(Utc("2026-12-01 00:30:00"))), "2026-12-01 01:00:00");
  EXPECT_EQ(Format(Must("@yearly").NextAfter(Utc("2026-12-01 00:00:00"))), "2027-01-01 00:00:00");
}

TEST(Cron, LeapDayIsFoundYearsAhead) {
  auto c = Must("0 6 29 2 *");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-01 00:00:00"))), "2028-02-29 06:00:00");
}

TEST(Cron, NamedTimeZoneShiftsTheFireTime) {
  // 09:00 in Tokyo (UTC+9, no DST) is 00:00 UTC.
  auto c = Must("0 9 * * *", "Asia/Tokyo");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-12-01 00:00:00"))), "2026-12-02 00:00:00");
  EXPECT_EQ(c.time_zone(), "Asia/Tokyo");
}

// America/New_York, 2026: clocks go 02:00 -> 03:00 on 8 March (07:00 UTC) and
// 02:00 -> 01:00 on 1 November (06:00 UTC).
TEST(Cron, SpringForwardGapFiresOnceAtTheEndOfTheGap) {
  auto c = Must("30 2 * * *", "America/New_York");
  // 7 March 02:30 EST = 07:30 UTC; 8 March 02:30 does not exist -> 03:00 EDT = 07:00 UTC.
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-03-07 00:00:00"))), "2026-03-07 07:30:00");
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-03-07 07:30:00"))), "2026-03-08 07:00:00");
  // 9 March 02:30 EDT = 06:30 UTC.
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-03-08 07:00:00"))), "2026-03-09 06:30:00");

  // Every minute: the whole gap collapses into one fire at its end, then 03:01.
  auto m = Must("* * * * *", "America/New_York");
  EXPECT_EQ(Format(m.NextAfter(Utc("2026-03-08 06:59:00"))), "2026-03-08 07:00:00");
  EXPECT_EQ(Format(m.NextAfter(Utc("2026-03-08 07:00:00"))), "2026-03-08 07:01:00");
}

TEST(Cron, FallBackRepeatedHourFiresOnce) {
  auto c = Must("30 1 * * *", "America/New_York");
  // 1 November 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-11-01 00:00:00"))), "2026-11-01 05:30:00");
  // Not again at 06:30 UTC: the next is 2 November 01:30 EST = 06:30 UTC.
  EXPECT_EQ(Format(c.NextAfter(Utc("2026-11-01 05:30:00"))), "2026-11-02 06:30:00");
  // A 02:00 job fires 1 November at 02:00 EST = 07:00 UTC, a day's 25 hours after 31 October's.
  auto two = Must("0 2 * * *", "America/New_York");
  EXPECT_EQ(Format(two.NextAfter(Utc("2026-10-31 06:00:00"))), "2026-11-01 07:00:00");
}

TEST(Cron, MissedRunsWhileDownAreDueOnce) {
  auto c = Must("0 * * * *");
  const TimePoint last = Utc("2026-12-01 00:00:00");
  EXPECT_FALSE(c.Due(last, Utc("2026-12-01 00:59:59")));
  EXPECT_TRUE(c.Due(last, Utc("2026-12-01 01:00:00")));
  // Down for a day: due (once); after running at `now`, the next is the next hour.
  const TimePoint now = Utc("2026-12-02 00:10:00");
  EXPECT_TRUE(c.Due(last, now));
  EXPECT_FALSE(c.Due(now, now));
  EXPECT_EQ(Format(c.NextAfter(now)), "2026-12-02 01:00:00");
}

TEST(Cron, BadExpressionsNameTheField) {
  struct Case {
    const char* expr;
    const char* zone;
    const char* want;
  };
  const Case cases[] = {
      {"0 24 * * *", "UTC", "cron field 2 (hour): 24 is out of range 0-23"},
      {"61 * * * *", "UTC", "cron field 1 (minute): 61 is out of range 0-59"},
      {"* * * foo *", "UTC", "cron field 4 (month): 'foo' is not a number or a name"},
      {"*/0 * * * *", "UTC", "step '0' must be a whole number >= 1"},
      {"5-1 * * * *", "UTC", "range 5-1 runs backwards"},
      {"1,,2 * * * *", "UTC", "empty list item"},
      {"* * * *", "UTC", "has 4 fields; it needs 5"},
      {"@often", "UTC", "unknown cron macro '@often'"},
      {"0 0 30 2 *", "UTC", "never fires"},
      {"0 0 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"},
  };
  for (const Case& c : cases) {
    auto r = CronSchedule::Parse(c.expr, c.zone);
    ASSERT_FALSE(r.ok()) << c.expr;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace gantry::coordinator
