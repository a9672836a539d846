// Helpers for the worker's data and model tests: files written on the fly
// (text or IDX, plain or gzip) in a temporary folder.
#pragma once


#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_support.h"
#include "tests/worker/test_util.h"

namespace gantry::worker::data_testing {

using gantry::testing::TempDir;

inline std::string PathIn(const TempDir& dir, const std::string& name) { return dir.path() + "/" + name; }

inline void WriteFile(const std::string& path, const std::string& bytes, bool gzip = false) {
  testing::WriteBytes(path, bytes, gzip);
}

inline void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims,
                     const std::vector<uint8_t>& data, bool gzip = true) {
  testing::WriteIdx(path, dims, data, gzip);
}

inline void WriteIdxPair(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> pixels;
  for (size_t i = 0; i < labels.size(); ++i) {
    for (int p = 0; p < 4; ++p) pixels.push_back(static_cast<uint8_t>(10 * labels[i] + i));
  }
  const auto n = static_cast<uint32_t>(labels.size());
  WriteIdx(PathIn(dir, name + "-images-idx3-ubyte.gz"), {n, 2, 2}, pixels);
  WriteIdx(PathIn(dir, name + "-labels-idx1-ubyte.gz"), {n}, labels);
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace gantry::worker::data_testing
