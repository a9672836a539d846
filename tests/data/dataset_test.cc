#include "data/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "data/idx_reader.h"
#include "tests/support/data_test_util.h"

namespace gantry::data {
namespace {

using data_testing::Contains;
using data_testing::PathIn;
using data_testing::TempDir;
using data_testing::WriteFile;
using data_testing::WriteIdxPair;

DataSpec Spec(const std::string& format, const std::string& path) {
  DataSpec s;
  s.format = format;
  s.path = path;
  return s;
}

TEST(LoadData, IdxFilesWithFingerprintAndLimit) {
  TempDir dir;
  WriteIdxPair(dir, "train", {1, 2, 3, 4});
  WriteIdxPair(dir, "t10k", {5, 6});
  DataSpec spec = Spec("idx", dir.path() + "/");  // a trailing '/' changes nothing
  spec.train_images = "train-images-idx3-ubyte.gz";
  spec.train_labels = "train-labels-idx1-ubyte.gz";
  auto d = LoadData(spec);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->train.features.sizes(), (std::vector<int64_t>{4, 1, 2, 2}));
  EXPECT_EQ(d->train.SampleShape(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(d->train.num_classes, 10);
  EXPECT_EQ(d->test.size(), 2);
  EXPECT_EQ(d->files, (std::vector<std::string>{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}));
  EXPECT_EQ(d->fingerprint.size(), 64u);

  auto again = LoadData(spec);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fingerprint, d->fingerprint);

  spec.limit = 2;
  auto limited = LoadData(spec);
  ASSERT_TRUE(limited.ok()) << limited.status().ToString();
  EXPECT_EQ(limited->train.size(), 2);
  EXPECT_EQ(limited->test.size(), 2);  // the test set is never cut
  EXPECT_NE(limited->fingerprint, d->fingerprint);

  // New content in one test file, same names: a different fingerprint.
  spec.limit = 0;
  WriteIdxPair(dir, "t10k", {5, 7});
  auto changed = LoadData(spec);
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->fingerprint, d->fingerprint);
}

TEST(LoadData, CsvClassesComeFromTrainAndTestLabels) {
  TempDir dir;
  WriteFile(PathIn(dir, "train.csv"), "f1,f2,target\n1,2,0\n3,4,2\n5,6,1\n");
  WriteFile(PathIn(dir, "test.csv"), "f1,f2,target\n7,8,4\n");
  DataSpec spec = Spec("csv", dir.path());
  spec.train_file = "train.csv";
  spec.test_file = "test.csv";
  spec.label_column = "target";
  auto d = LoadData(spec);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->train.features.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(d->train.labels.equal(torch::tensor({0, 2, 1}, torch::kInt64)));
  EXPECT_EQ(d->train.num_classes, 5);
  EXPECT_EQ(d->test.num_classes, 5);
  EXPECT_EQ(d->feature_names, (std::vector<std::string>{"f1", "f2"}));
  EXPECT_EQ(d->files, (std::vector<std::string>{"train.csv", "test.csv"}));

  // File names are part of the fingerprint, not only the bytes.
  WriteFile(PathIn(dir, "train2.csv"), "f1,f2,target\n1,2,0\n3,4,2\n5,6,1\n");
  spec.train_file = "train2.csv";
  auto renamed = LoadData(spec);
  ASSERT_TRUE(renamed.ok());
  EXPECT_NE(renamed->fingerprint, d->fingerprint);

  // Without a test file the test set is empty but shaped like the samples.
  spec.test_file.clear();
  auto no_test = LoadData(spec);
  ASSERT_TRUE(no_test.ok()) << no_test.status().ToString();
  EXPECT_EQ(no_test->test.features.sizes(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(no_test->train.num_classes, 3);
  ASSERT_EQ(no_test->notes.size(), 1u);

  WriteFile(PathIn(dir, "other.csv"), "f1,f3,target\n7,8,1\n");
  spec.test_file = "other.csv";
  auto mismatch = LoadData(spec);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(Contains(mismatch.status().message(), "data.test_file has 2 feature columns that differ"))
      << mismatch.status().message();
}

TEST(LoadData, ShardsGrowAndTheFingerprintFollows) {
  TempDir dir;
  WriteFile(PathIn(dir, "part-0001.csv"), "a,b,label\n1,2,0\n");
  WriteFile(PathIn(dir, "test.csv"), "a,b,label\n9,9,1\n");  // inside the directory, yet not a shard
  DataSpec spec = Spec("shards", dir.path());
  spec.test_file = "test.csv";
  auto first = LoadData(spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->train.size(), 1);
  EXPECT_EQ(first->test.size(), 1);
  EXPECT_EQ(first->train.num_classes, 2);
  EXPECT_EQ(first->files, (std::vector<std::string>{"part-0001.csv", "test.csv"}));

  // A shard still being written is ignored: nothing changes.
  WriteFile(PathIn(dir, "part-0002.csv.tmp"), "a,b,label\n3,");
  auto partial = LoadData(spec);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->fingerprint, first->fingerprint);

  // Once renamed into place it is appended after part-0001.
  std::filesystem::rename(PathIn(dir, "part-0002.csv.tmp"), PathIn(dir, "part-0002.csv"));
  WriteFile(PathIn(dir, "part-0002.csv"), "a,b,label\n3,4,1\n");
  auto grown = LoadData(spec);
  ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  EXPECT_TRUE(grown->train.labels.equal(torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_NE(grown->fingerprint, first->fingerprint);
}

TEST(LoadData, IdxShardsWithACsvTestSet) {
  TempDir dir;
  WriteIdxPair(dir, "s1", {1, 2});
  WriteFile(PathIn(dir, "held.csv"), "p0,p1,p2,p3,label\n0.1,0.2,0.3,0.4,7\n");
  DataSpec spec = Spec("shards", dir.path());
  spec.test_file = "held.csv";
  auto d = LoadData(spec);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->train.num_classes, 10);
  EXPECT_EQ(d->test.features.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));  // rows of pixels viewed as images
  // Raw pixels, normalised as the IDX shards are.
  EXPECT_NEAR(d->test.features.view({-1})[1].item<double>(), (0.2 / 255.0 - kPixelMean) / kPixelStd, 1e-5);

  WriteFile(PathIn(dir, "held.csv"), "p0,p1,p2,label\n0.1,0.2,0.3,7\n");
  auto bad = LoadData(spec);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), "samples of shape [3] (3 values) cannot be viewed as [1, 2, 2]"))
      << bad.status().message();
}

TEST(LoadData, RefusesUnknownFormatAndMissingFiles) {
  TempDir dir;
  auto d = LoadData(Spec("parquet", dir.path()));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.status().message(), "data.format must be one of idx, csv, shards"));
  DataSpec csv = Spec("csv", dir.path());
  csv.train_file = "missing.csv";
  d = LoadData(csv);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.status().message(), PathIn(dir, "missing.csv") + ": cannot open")) << d.status().message();
}

TEST(TensorDataset, ViewSamplesAs) {
  TensorDataset ds{torch::arange(24, torch::kFloat32).view({2, 12}), torch::zeros({2}, torch::kInt64), 3};
  ASSERT_TRUE(ds.ViewSamplesAs({3, 4}).ok());
  EXPECT_EQ(ds.features.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(ds.features[1][0][0].item<float>(), 12.0f);
  Status st = ds.ViewSamplesAs({5});
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "samples of shape [3, 4] (12 values) cannot be viewed as [5]")) << st.message();
}

}  // namespace
}  // namespace gantry::data

namespace gantry::data {
namespace {

// A retraining run (job spec `retrain:`): the new shards plus a seeded
// replay share of the older ones; nothing else is read.
TEST(LoadData, RetrainSelectionReadsNewShardsPlusASeededReplayShare) {
  TempDir dir;
  for (int i = 0; i < 6; ++i) {
    WriteFile(PathIn(dir, "part-" + std::to_string(i) + ".csv"),
              "x,label\n" + std::to_string(i) + ",0\n" + std::to_string(i) + ",1\n");
  }
  WriteFile(PathIn(dir, "holdout.csv"), "x,label\n9,1\n");
  JobSpec job;
  job.data.format = "shards";
  job.data.path = dir.path();
  job.data.test_file = "holdout.csv";
  job.retrain.new_files = {"part-4.csv", "part-5.csv"};
  job.retrain.replay = 0.5;  // ceil(0.5 x 4 older) = 2 of them
  job.retrain.replay_seed = 7;
  auto d = LoadData(job);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->train.size(), 8);  // 4 shards of 2 rows
  std::vector<std::string> train_files(d->files.begin(), d->files.end() - 1);
  ASSERT_EQ(train_files.size(), 4u);
  EXPECT_TRUE(std::count(train_files.begin(), train_files.end(), "part-4.csv"));
  EXPECT_TRUE(std::count(train_files.begin(), train_files.end(), "part-5.csv"));
  EXPECT_EQ(d->files.back(), "holdout.csv");
  // The same seed picks the same shards; the fingerprint says which.
  auto again = LoadData(job);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files, d->files);
  EXPECT_EQ(again->fingerprint, d->fingerprint);
  // Other seeds pick other older shards at least sometimes, never the new ones out.
  bool differs = false;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    job.retrain.replay_seed = seed;
    auto other = LoadData(job);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->train.size(), 8);
    differs = differs || other->files != d->files;
  }
  EXPECT_TRUE(differs);
  // No replay: the new shards only.
  job.retrain.replay = 0;
  auto only_new = LoadData(job);
  ASSERT_TRUE(only_new.ok());
  EXPECT_EQ(only_new->files, (std::vector<std::string>{"part-4.csv", "part-5.csv", "holdout.csv"}));
  // A new file that is not there names the field.
  job.retrain.new_files = {"part-9.csv"};
  auto missing = LoadData(job);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "retrain.new_files: part-9.csv is not a shard"))
      << missing.status().message();
}

}  // namespace
}  // namespace gantry::data
