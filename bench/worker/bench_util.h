// Helpers of the worker benchmarks: timing, min/median/max, and the JSON
// line format of ../shared/BENCHMARKS.md.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace gantry::worker::bench {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Spread {
  double min = 0, median = 0, max = 0;
};

inline Spread Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v.front(), v[v.size() / 2], v.back()};
}

inline std::string Json(const Spread& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"min\":%.6g,\"median\":%.6g,\"max\":%.6g}", s.min, s.median, s.max);
  return buf;
}

// One figure: value = ratio of medians, with both sides' spread.
inline void Emit(const std::string& bench, const std::string& metric, double value, const std::string& unit,
                 size_t n, const Spread& gantry, const Spread& baseline, const std::string& note = "") {
  std::printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\",\"n\":%zu,\"gantry\":%s,"
              "\"baseline\":%s%s}\n",
              bench.c_str(), metric.c_str(), value, unit.c_str(), n, Json(gantry).c_str(), Json(baseline).c_str(),
              note.empty() ? "" : (",\"note\":\"" + note + "\"").c_str());
  std::fflush(stdout);
}

}  // namespace gantry::worker::bench
