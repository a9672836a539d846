// bench_storage_dedup: bytes written for a version in which 10% of the
// tensors changed, against the bytes of the full state (what a store
// without deduplication writes every time). Also times that save against a
// full save. The figure counts what the registry wrote (new blobs, packed
// small tensors, manifest) and cross-checks it with the growth of the data
// folder on disk.
//
//   bench_storage_dedup [--rounds N] [--mb M]
#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>

#include "bench/storage/bench_common.h"
#include "common/clock.h"
#include "storage/registry.h"

namespace gantry::storage::bench {
namespace {

uint64_t FolderBytes(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().filename() != "registry.db-wal") n += it->file_size(ec);
  }
  return n;
}

void Check(const Status& s, const char* what) { bench::Check(s, "bench_storage_dedup", what); }

int Main(int argc, char** argv) {
  const auto [rounds, mb] = ParseArgs(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  ScratchDir dir;
  const std::string data = dir.path() + "/data";
  State state = State::Make(mb, 1 << 20, 7);
  SystemClock clock;
  auto opened = Registry::Open(data, clock);
  Check(opened.status(), "open registry");
  Registry& reg = *opened;

  // v1: the full state.
  auto t0 = std::chrono::steady_clock::now();
  auto full = reg.Save(state.View("bench", 0));
  Stats full_time;
  full_time.samples.push_back(Seconds(t0));
  Check(full.status(), "full save");
  const double full_bytes = static_cast<double>(full->bytes_written);

  Stats ratio, disk_ratio, partial_time;
  for (int r = 1; r <= rounds; ++r) {
    // 10% of the layers (weight and bias together) change.
    State next = state;
    for (size_t i = 0; i < next.data.size(); ++i) {
      if ((i / 2) % 10 == static_cast<size_t>(r % 10)) std::memcpy(next.data[i].data(), &r, sizeof r);
    }
    const uint64_t before = FolderBytes(data);
    t0 = std::chrono::steady_clock::now();
    auto saved = reg.Save(next.View("bench", r));
    partial_time.samples.push_back(Seconds(t0));
    Check(saved.status(), "partial save");
    ratio.samples.push_back(static_cast<double>(saved->bytes_written) / full_bytes);
    disk_ratio.samples.push_back(static_cast<double>(FolderBytes(data) - before) / static_cast<double>(state.Bytes()));
    // A fresh full save between rounds keeps every round's baseline the same.
    state.Touch(1000 + static_cast<uint64_t>(r));
    t0 = std::chrono::steady_clock::now();
    Check(reg.Save(state.View("bench", 1000 + r)).status(), "full save");
    full_time.samples.push_back(Seconds(t0));
  }
  PrintFigure("checkpoint_dedup", "bytes_written_ratio_10pct_changed", ratio.Median(), "x", ratio.samples.size(),
              {{"bytes_written", ratio.Median() * full_bytes}, {"disk_growth_ratio", disk_ratio.Median()}},
              {{"bytes_written", full_bytes}, {"state_bytes", state.Bytes()}},
              {{"goal", "<= 0.15"}, {"ratio", ratio.ToJson("x")}});
  PrintFigure("checkpoint_dedup", "time_ratio_10pct_vs_full_save", partial_time.Median() / full_time.Median(), "x",
              partial_time.samples.size(), partial_time.ToJson("s"), full_time.ToJson("s"));
  return 0;
}

}  // namespace
}  // namespace gantry::storage::bench

int main(int argc, char** argv) { return gantry::storage::bench::Main(argc, argv); }
