// Shared pieces of the storage benchmarks: a model-shaped state, timing
// statistics, and the JSON line every figure prints (../../../shared/BENCHMARKS.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "storage/checkpoint.h"

namespace gantry::storage::bench {

// A state shaped like a small transformer's: `large` weight matrices of
// `large_bytes` each and as many small vectors (biases, norms) of 2 KiB,
// float32, filled with pseudo-random bytes.
struct State {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<uint8_t>> data;

  static State Make(int large, size_t large_bytes, uint64_t seed);
  uint64_t Bytes() const;
  // Changes every tensor (or those with index % stride == 0) so no content
  // repeats: 8 bytes at the front carry `round`.
  void Touch(uint64_t round, int stride = 1);
  // A Checkpoint viewing this state's bytes (no copy).
  Checkpoint View(const std::string& model, int64_t step) const;
  // The save_checkpoint request body (copies the bytes).
  json Body(const std::string& model, int64_t step) const;
};

struct Stats {
  std::vector<double> samples;
  double Median() const;
  double Min() const;
  double Max() const;
  json ToJson(const std::string& unit) const;  // {median, min, max, unit}
};

double Seconds(std::chrono::steady_clock::time_point since);

// Command line shared by the storage benchmarks: [--rounds N] [--mb M].
struct Args {
  int rounds = 5;
  int mb = 100;  // 1 MiB weight matrices in the state
};
Args ParseArgs(int argc, char** argv);
// Ends the benchmark with a message naming `bench` and `what` if `s` failed.
void Check(const Status& s, const char* bench, const char* what);
// One figure: {"bench", "metric", "value", "unit", "n", "gantry", "baseline", ...extra}.
void PrintFigure(const std::string& bench, const std::string& metric, double value, const std::string& unit, size_t n,
                 const json& gantry, const json& baseline, const json& extra = json::object());
// A fresh folder under $TMPDIR (or /tmp); removed by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace gantry::storage::bench
