// "2026-03-08 06:59:00" (UTC) <-> system_clock time points, for schedule tests.
#pragma once

#include <date/date.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace gantry::coordinator::testing_time {

inline std::chrono::system_clock::time_point Utc(const char* text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (std::sscanf(text, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s) != 6) return {};
  const date::sys_days day = date::year{y} / mo / d;
  return std::chrono::system_clock::time_point(day) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s);
}

inline std::string Format(std::chrono::system_clock::time_point t) {
  return date::format("%F %T", date::floor<std::chrono::seconds>(t));
}

}  // namespace gantry::coordinator::testing_time
