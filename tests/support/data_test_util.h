// Helpers for the data, model and worker tests: files written on the fly
// (text or IDX, plain or gzip) in a temporary folder, and a synthetic
// learnable image dataset.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace gantry::data_testing {

using gantry::testing::TempDir;

inline std::string PathIn(const TempDir& dir, const std::string& name) { return dir.path() + "/" + name; }

// IDX header for unsigned bytes with `dims`.
inline std::string IdxHeader(const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) h.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return h;
}

inline void WriteBytes(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

inline void WriteFile(const std::string& path, const std::string& bytes, bool gzip = false) {
  WriteBytes(path, bytes, gzip);
}

inline void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims,
                     const std::vector<uint8_t>& data, bool gzip = true) {
  WriteBytes(path, IdxHeader(dims) + std::string(data.begin(), data.end()), gzip);
}

// n images of 28x28 where class k lights up row band k: learnable in a few steps.
inline void WriteSyntheticDataset(const std::string& dir, const std::string& prefix, uint32_t n) {
  std::vector<uint8_t> images(static_cast<size_t>(n) * 28 * 28);
  std::vector<uint8_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) {
    labels[i] = static_cast<uint8_t>((i * 7) % 10);
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        bool on = r / 3 == labels[i] || ((r * 31 + c * 17 + i) % 11 == 0);
        images[(static_cast<size_t>(i) * 28 + r) * 28 + c] = on ? 220 : 10;
      }
    }
  }
  WriteIdx(dir + "/" + prefix + "-images-idx3-ubyte.gz", {n, 28, 28}, images, true);
  WriteIdx(dir + "/" + prefix + "-labels-idx1-ubyte.gz", {n}, labels, true);
}

// An IDX shard NAME of 2x2 images whose pixels encode label and index.
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

}  // namespace gantry::data_testing
