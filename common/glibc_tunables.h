// GLIBC_TUNABLES for the processes Gantry starts: malloc settings that
// glibc reads once, at process start, so they travel in the environment.
#pragma once

#include <string>
#include <string_view>

namespace gantry {

// Transparent huge pages for malloc's large blocks (glibc >= 2.35; older
// ones ignore it): a training rank fills hundreds of MB of fresh tensors
// with its data set, and 4 KiB page faults cost the demo job's ranks ~1 s
// of their 2 s data load (docs/performance.md, "Worker").
inline constexpr char kRankHugePages[] = "glibc.malloc.hugetlb=1";

// A deeper per-thread cache of freed small blocks for gantry-serve: a batch
// of 30 requests frees ~30 blocks of each size at once on one HTTP thread,
// more than the default 7 a size class, and the rest went through malloc's
// slower bins (~18% of the server's CPU). +15-20% requests/s at concurrency
// 64 on 2 cores (docs/performance.md, "Serving").
inline constexpr char kServeMallocCache[] = "glibc.malloc.tcache_count=256";

// `current` (a GLIBC_TUNABLES value, or null) with `setting` ("name=value")
// appended, unless `current` already sets that name: a value the user gave
// wins.
inline std::string WithGlibcTunable(const char* current, std::string_view setting) {
  std::string t = current == nullptr ? "" : current;
  const std::string_view name = setting.substr(0, setting.find('='));
  if (t.find(name) != std::string::npos) return t;
  if (!t.empty()) t += ':';
  t += setting;
  return t;
}

}  // namespace gantry
