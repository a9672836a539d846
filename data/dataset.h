// Training data as in-memory tensors, loaded from a job spec's `data` block.
//
// LoadData() reads the format the spec names and returns the training set,
// the held-out test set and the data fingerprint:
//   idx:    data.train_images/train_labels and test_images/test_labels
//           (gzip or plain IDX; pixels normalised, see idx_reader.h);
//           features [N, 1, rows, cols], 10 classes.
//   csv:    data.train_file and the optional data.test_file (csv_reader.h);
//           features [N, F]; classes = max label (train and test) + 1.
//   shards: every shard in the directory data.path (shard_dataset.h) plus the
//           optional CSV data.test_file; classes as for their kind.
// data.limit keeps the first N training samples in every format (the test
// set is never cut). Paths are relative to data.path. Every rank loads the
// same files in the same order, so samples have the same index everywhere and
// the DistributedSampler keeps working; a shard that arrives while ranks load
// can still make them differ, which the fingerprint exposes (compare it
// across ranks before training).
//
// Part of the data library (gantry::data), below the components: the worker
// trains on it, and serving and drift detection are meant to read the same
// formats through it. It depends on common/ only, plus LibTorch and zlib:
// LibTorch because every reader hands back torch tensors (features float32
// [N, ...], labels int64 [N]), the form the trainer and the model library
// consume, so no user has to copy plain buffers into tensors again.
//
// Thread safety: free functions; results belong to the caller.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/job_spec.h"
#include "common/status.h"
#include "data/shard_dataset.h"

namespace gantry::data {

struct TensorDataset {
  torch::Tensor features;   // float32 [N, ...]
  torch::Tensor labels;     // int64 [N], each in [0, num_classes)
  int64_t num_classes = 0;  // what the model predicts (may exceed max label + 1)

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  // Shape of one sample: features.sizes() without the first dimension.
  std::vector<int64_t> SampleShape() const;
  // Views every sample as `shape` (no copy), e.g. CSV rows of 784 pixels as
  // [1, 28, 28] for a model that says so. Fails when the element counts differ.
  Status ViewSamplesAs(const std::vector<int64_t>& shape);
};

struct DataSplits {
  TensorDataset train;
  TensorDataset test;  // empty (size 0, same sample shape) when the spec names none
  std::string fingerprint;                 // 64 hex digits, see fingerprint.h
  std::vector<std::string> files;          // data files read, relative to data.path
  std::vector<std::string> feature_names;  // CSV column names; empty for images
  std::vector<std::string> notes;          // what was skipped and why (log them)
};

// A retraining run's choice of shards (the job spec's `retrain:` section,
// docs/retraining.md "A run"): the shards named in `new_files` (by shard or
// file name) plus ceil(replay x older) of the other shards, picked by a
// generator seeded with `seed`, so every rank (and a rerun) picks the same.
struct ShardSelection {
  std::vector<std::string> new_files;
  double replay = 0;
  uint64_t seed = 0;
};
// The names of the shards of `listing` that `selection` keeps, in listing
// order; invalid_argument naming retrain.new_files when a new file is not a
// shard of the listing.
Result<std::vector<std::string>> SelectShards(const ShardListing& listing, const ShardSelection& selection);

Result<DataSplits> LoadData(const DataSpec& spec, const std::optional<ShardSelection>& selection = std::nullopt);
// With the spec's retrain.new_files, only the selected shards are read.
Result<DataSplits> LoadData(const JobSpec& spec);

// "[1, 28, 28]", for messages.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace gantry::data
