#include "coordinator/retrain/cron.h"

#include <date/tz.h>

#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <sstream>
#include <vector>

namespace gantry::coordinator {
namespace {

struct FieldSpec {
  const char* name;
  int min;
  int max;
  // Names accepted for values (jan -> 1, sun -> 0); empty when none.
  const std::array<const char*, 12>* names;
  int first_named;  // the value of names[0]
};

constexpr std::array<const char*, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 12> kWeekdayNames = {"sun", "mon", "tue", "wed", "thu", "fri",
                                                       "sat", "",    "",    "",    "",    ""};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, &kMonthNames, 1},
    {"day-of-week", 0, 7, &kWeekdayNames, 0},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, int index, std::string_view expression)
      : spec_(spec), index_(index), expression_(expression) {}

  Status Error(const std::string& why) const {
    std::ostringstream out;
    out << "cron field " << index_ + 1 << " (" << spec_.name << "): " << why << " in \"" << expression_
        << "\"";
    return Status::InvalidArgument(out.str());
  }

  Result<int> Value(std::string_view text) const {
    if (spec_.names != nullptr) {
      std::string lower = Lower(text);
      for (size_t i = 0; i < spec_.names->size(); ++i) {
        if (lower == (*spec_.names)[i]) return spec_.first_named + static_cast<int>(i);
      }
    }
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return Error("'" + std::string(text) + "' is not a number" +
                   (spec_.names != nullptr ? " or a name" : std::string()));
    }
    if (v < spec_.min || v > spec_.max) {
      return Error(std::to_string(v) + " is out of range " + std::to_string(spec_.min) + "-" +
                   std::to_string(spec_.max));
    }
    return v;
  }

  // Parses one comma-separated field into the values it allows.
  Result<std::vector<int>> Parse(std::string_view field, bool& star) const {
    std::vector<int> values;
    star = !field.empty() && field[0] == '*';
    size_t pos = 0;
    while (pos <= field.size()) {
      size_t comma = field.find(',', pos);
      std::string_view item = field.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                                : comma - pos);
      if (item.empty()) return Error("empty list item");
      int step = 1;
      size_t slash = item.find('/');
      std::string_view range = item.substr(0, slash);
      if (slash != std::string_view::npos) {
        std::string_view step_text = item.substr(slash + 1);
        auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
        if (step_text.empty() || ec != std::errc() || end != step_text.data() + step_text.size() || step < 1) {
          return Error("step '" + std::string(step_text) + "' must be a whole number >= 1");
        }
      }
      int lo = spec_.min;
      int hi = spec_.max;
      if (range != "*") {
        size_t dash = range.find('-');
        GANTRY_ASSIGN_OR_RETURN(lo, Value(range.substr(0, dash)));
        if (dash != std::string_view::npos) {
          GANTRY_ASSIGN_OR_RETURN(hi, Value(range.substr(dash + 1)));
          if (hi < lo) return Error("range " + std::string(range) + " runs backwards");
        } else if (slash == std::string_view::npos) {
          hi = lo;  // a single value; `a/n` keeps hi at the maximum
        }
      }
      for (int v = lo; v <= hi; v += step) values.push_back(v);
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
    return values;
  }

 private:
  const FieldSpec& spec_;
  int index_;
  std::string_view expression_;
};

const std::map<std::string, std::string>& Macros() {
  static const std::map<std::string, std::string> kMacros = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  return kMacros;
}

// Eight years cover every leap-day schedule's next fire.
constexpr int kSearchDays = 366 * 8;

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expression, std::string_view time_zone) {
  CronSchedule cron;
  cron.expression_ = std::string(expression);
  cron.time_zone_name_ = time_zone.empty() ? "UTC" : std::string(time_zone);
  try {
    cron.zone_ = date::locate_zone(cron.time_zone_name_);
  } catch (const std::exception&) {
    return Status::InvalidArgument("unknown time zone '" + cron.time_zone_name_ +
                                   "': use an IANA name such as UTC or Europe/Berlin "
                                   "(the names under /usr/share/zoneinfo)");
  }

  std::string text(expression);
  if (!text.empty() && text[0] == '@') {
    auto it = Macros().find(Lower(text));
    if (it == Macros().end()) {
      return Status::InvalidArgument("unknown cron macro '" + text +
                                     "': use @yearly, @monthly, @weekly, @daily or @hourly");
    }
    text = it->second;
  }
  std::istringstream in(text);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 5) {
    return Status::InvalidArgument("cron expression \"" + std::string(expression) + "\" has " +
                                   std::to_string(fields.size()) +
                                   " fields; it needs 5: minute hour day-of-month month day-of-week");
  }
  for (int i = 0; i < 5; ++i) {
    FieldParser parser(kFields[i], i, expression);
    bool star = false;
    GANTRY_ASSIGN_OR_RETURN(std::vector<int> values, parser.Parse(fields[i], star));
    for (int v : values) {
      switch (i) {
        case 0: cron.minutes_.set(v); break;
        case 1: cron.hours_.set(v); break;
        case 2: cron.days_of_month_.set(v); break;
        case 3: cron.months_.set(v); break;
        default: cron.weekdays_.set(v % 7); break;
      }
    }
    if (i == 2) cron.day_of_month_star_ = star;
    if (i == 4) cron.weekday_star_ = star;
  }
  // 1972-01-01 is a leap year's start: the search reaches every calendar day.
  if (!cron.NextAfter(std::chrono::system_clock::time_point(std::chrono::seconds(63072000)))) {
    return Status::InvalidArgument("cron expression \"" + std::string(expression) +
                                   "\" never fires (no month has that day)");
  }
  return cron;
}

bool CronSchedule::DayMatches(unsigned day_of_month, unsigned weekday) const {
  bool dom = days_of_month_.test(day_of_month);
  bool dow = weekdays_.test(weekday);
  if (day_of_month_star_ || weekday_star_) return dom && dow;
  return dom || dow;
}

std::optional<CronSchedule::TimePoint> CronSchedule::NextAfter(TimePoint after) const {
  using namespace std::chrono;
  const auto t = date::floor<seconds>(after);
  const auto local_now = zone_->to_local(t);
  const auto start = date::floor<minutes>(local_now) + minutes(1);
  auto day = date::floor<date::days>(start);
  for (int i = 0; i < kSearchDays; ++i, day += date::days(1)) {
    const date::year_month_day ymd(day);
    if (!months_.test(static_cast<unsigned>(ymd.month()))) continue;
    if (!DayMatches(static_cast<unsigned>(ymd.day()), date::weekday(day).c_encoding())) continue;
    for (int h = 0; h < 24; ++h) {
      if (!hours_.test(h)) continue;
      for (int m = 0; m < 60; ++m) {
        if (!minutes_.test(m)) continue;
        const date::local_seconds wall = day + hours(h) + minutes(m);
        if (wall < start) continue;
        const date::local_info info = zone_->get_info(wall);
        date::sys_seconds fire;
        if (info.result == date::local_info::nonexistent) {
          fire = info.first.end;  // the instant the gap ends
        } else {
          fire = date::sys_seconds(wall.time_since_epoch()) - info.first.offset;  // earliest
        }
        if (fire > t) return TimePoint(fire);
      }
    }
  }
  return std::nullopt;
}

bool CronSchedule::Due(TimePoint last, TimePoint now) const {
  auto next = NextAfter(last);
  return next && *next <= now;
}

}  // namespace gantry::coordinator
