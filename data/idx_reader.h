// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// Layout: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type
// Gantry reads), a byte holding the number of dimensions, then each
// dimension as a big-endian uint32, then the elements in row-major order.
// ReadIdx validates all of it and refuses trailing or missing bytes; every
// error names the file. Compression is detected from the content (zlib reads
// plain files transparently), not from the file name.
//
// LoadIdxDataset pairs an images file [N, rows, cols] with a labels file [N]
// and normalises pixels to float ((x / 255 - kPixelMean) / kPixelStd).
//
// Thread safety: free functions without shared state.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry::data {

// Fashion-MNIST's training-set pixel statistics. Fixed rather than computed
// per run so that every checkpoint of a model sees inputs on the same scale
// (a retrain on new data must not silently change the preprocessing).
inline constexpr double kPixelMean = 0.2860;
inline constexpr double kPixelStd = 0.3530;
// Number of classes the builtin models predict; labels must be below it.
inline constexpr int64_t kNumClasses = 10;
// Refuse files that decompress beyond this (a corrupt or hostile header
// should not make a rank allocate unbounded memory). 1 GiB holds ~1.3M
// 28x28 images.
inline constexpr int64_t kMaxIdxBytes = int64_t{1} << 30;

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// Reads one IDX file of unsigned bytes.
Result<IdxArray> ReadIdx(const std::string& path);

struct Dataset {
  torch::Tensor images;  // float32 [N, 1, rows, cols], normalised
  torch::Tensor labels;  // int64 [N], each in [0, kNumClasses)
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Reads an images/labels pair. `limit` > 0 keeps only the first `limit`
// samples (all of them when the files hold fewer).
Result<Dataset> LoadIdxDataset(const std::string& images_path, const std::string& labels_path,
                               int64_t limit = 0);

}  // namespace gantry::data
