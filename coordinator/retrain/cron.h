// CronSchedule: a five-field cron expression evaluated in a time zone, the
// time trigger of a retraining schedule (docs/retraining.md, "Triggers").
//
// Syntax (Vixie cron, as crontab(5) describes it):
//   minute hour day-of-month month day-of-week
//   each field: `*`, a value, a range `a-b`, a list `a,b-c`, a step `*/n`,
//   `a-b/n` or `a/n` (a to the field's maximum); months jan..dec and
//   weekdays sun..sat by name; weekday 7 is Sunday like 0.
//   Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
//   When both day fields are restricted, a day matching either fires (Vixie
//   semantics); when one of them is `*`, both must match.
//
// Wall-clock time and daylight saving. A schedule fires once at each local
// time that matches, in the named IANA zone (read from /usr/share/zoneinfo):
//   - a matching local time skipped by a spring-forward change (02:30 on the
//     night clocks go 02:00 -> 03:00) fires at the end of the gap (03:00),
//     once, however many matching minutes the gap held;
//   - a local time that happens twice at a fall-back change fires on its first
//     occurrence only, so "30 1 * * *" runs once that night.
//
// Missed runs: NextAfter(last_fire) <= now means "due", however many fire
// times passed while nobody looked, so a coordinator that was down for a day
// runs a schedule once, not 24 times (Due()).
//
// Thread safety: immutable after Parse(); any thread may call its methods.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace date {
class time_zone;
}

namespace gantry::coordinator {

class CronSchedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // `time_zone` is an IANA name ("Europe/Berlin"); "" means UTC. Errors name
  // the field and the value: cron field 2 (hour): 24 is out of range 0-23.
  // An expression that never fires (30 February) is refused too.
  static Result<CronSchedule> Parse(std::string_view expression, std::string_view time_zone = "UTC");

  // The first fire time strictly after `after`, to the second; nullopt when
  // none falls in the next eight years.
  std::optional<TimePoint> NextAfter(TimePoint after) const;
  // True when a fire time lies in (last, now]: the schedule is due once.
  bool Due(TimePoint last, TimePoint now) const;

  const std::string& expression() const { return expression_; }
  const std::string& time_zone() const { return time_zone_name_; }

 private:
  CronSchedule() = default;
  bool DayMatches(unsigned day_of_month, unsigned weekday) const;

  std::string expression_;
  std::string time_zone_name_;
  const date::time_zone* zone_ = nullptr;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> weekdays_;        // 0 = Sunday
  bool day_of_month_star_ = false;
  bool weekday_star_ = false;
};

}  // namespace gantry::coordinator
