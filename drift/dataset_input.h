// Datasets as drift detection reads them, through the data library
// (gantry::data): any format the worker trains on.
//
//   a directory                shards (data/shard_dataset.h: CSV files or IDX pairs)
//   NAME.csv / NAME.csv.gz     one CSV file with a label column (data/csv_reader.h)
//   an IDX images file         ...-images-idx3-ubyte[.gz], with its labels file
//                              ...-labels-idx1-ubyte[.gz] beside it when present
//   IMAGES,LABELS              an explicit IDX pair
//
// Features become one float32 row per sample (IDX images flattened to
// rows x cols pixels named "px<r>_<c>", CSV columns by their header name);
// labels become the categorical column "label". IDX pixels come normalised
// (idx_reader.h); every statistic but Wasserstein is invariant to that
// affine map, and Wasserstein is then in normalised units (the normed one is
// unchanged).
//
// Part of gantry_drift_data, which links gantry::data and so LibTorch; the
// statistics library itself (gantry::drift) does not. Thread safety: free
// functions; results belong to the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "drift/matrix.h"
#include "drift/profile.h"

namespace gantry::drift {

struct DriftData {
  Matrix features;                  // float32, rows x features
  std::vector<std::string> names;   // one per feature column
  std::vector<int64_t> labels;      // one per row; empty when the data has none
  std::vector<std::string> files;   // what was read
  // The label column for DriftDetector::Compare / BuildProfile (empty span
  // when there are no labels). Valid while *this lives.
  std::vector<CategoricalColumn> Categorical() const;
};

struct ReadOptions {
  std::string label_column = "label";  // CSV
  // Keep `sample` rows drawn without replacement (std::mt19937_64(seed)),
  // in their file order; 0 keeps all.
  int64_t sample = 0;
  uint64_t seed = 1;
};

Result<DriftData> ReadDriftData(const std::string& path, const ReadOptions& options = {});

}  // namespace gantry::drift
