// A directory of shards: training data that arrives over time.
//
// A shard is either one CSV file (NAME.csv or NAME.csv.gz, see csv_reader.h)
// or an IDX pair (NAME-images-idx3-ubyte[.gz] + NAME-labels-idx1-ubyte[.gz],
// see idx_reader.h). ListShards() looks at the directory's own entries (not
// sub-directories) and, so that a producer can write a shard in place and
// then rename it, ignores names starting with '.' or '_' and names ending in
// .tmp, .part, .partial or '~'. Shards are read in sorted name order (byte
// order; for a pair the order of NAME), so appending part-0042 after
// part-0041 only appends samples. One directory holds one kind: CSV shards
// must share their header; IDX shards their image size. An IDX file without
// its partner yet is skipped with a note (its partner may still be on the
// way); any other name is skipped with a note.
//
// Thread safety: free functions without shared state. The directory may
// change while it is read; what was listed is what is read, and a shard that
// vanishes in between is an error (rerun).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gantry::data {

struct Shard {
  enum class Kind { kCsv, kIdx };
  Kind kind = Kind::kCsv;
  std::string name;                // sort key: the CSV file name, or NAME of a pair
  std::vector<std::string> files;  // [csv] or [images, labels], names in the directory
};

struct ShardListing {
  std::vector<Shard> shards;       // sorted by name
  std::vector<std::string> notes;  // names skipped and why
};

// `exclude`: file names in `dir` that are not shards (the test file).
Result<ShardListing> ListShards(const std::string& dir, const std::vector<std::string>& exclude = {});

struct ShardOptions {
  std::string label_column = "label";  // CSV shards
  int64_t limit = 0;                   // keep the first N samples over all shards (0 = all)
  std::vector<std::string> exclude;    // as for ListShards
};

struct ShardData {
  Shard::Kind kind = Shard::Kind::kCsv;
  torch::Tensor features;  // float32: CSV [N, F]; IDX [N, 1, rows, cols], normalised
  torch::Tensor labels;    // int64 [N]
  int64_t max_label = -1;
  std::vector<std::string> feature_names;  // CSV header without the label column
  std::vector<std::string> files;          // names read, in order (fewer when limit stops early)
  std::vector<std::string> notes;
};

// Fails when the directory holds no complete shard, mixes kinds, or shards
// disagree on their header or image size; every error names the shard.
Result<ShardData> LoadShards(const std::string& dir, const ShardOptions& options);

}  // namespace gantry::data
