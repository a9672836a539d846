#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "common/fs.h"
#include "data/csv_reader.h"
#include "data/fingerprint.h"
#include "data/idx_reader.h"
#include "data/shard_dataset.h"

namespace gantry::data {
namespace {

namespace fs = std::filesystem;

// How a data file is named in the fingerprint and the log: relative to
// data.path when it lies below it, so the same data mounted elsewhere (or on
// another host) keeps its fingerprint.
std::string NameFor(const std::string& abs, const std::string& base) {
  fs::path rel = fs::path(abs).lexically_relative(fs::path(base));
  if (rel.empty() || *rel.begin() == "..") return abs;
  return rel.generic_string();
}

// data.path as an absolute, normal directory name without a trailing '/'.
std::string DirPath(const std::string& path) {
  std::error_code ec;  // absolute() fails only without a working directory; keep the path then
  fs::path p = fs::absolute(fs::path(path), ec);
  if (ec) p = path;
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p.string();
}

TensorDataset EmptyLike(const TensorDataset& train) {
  std::vector<int64_t> shape = {0};
  for (int64_t d : train.SampleShape()) shape.push_back(d);
  return {torch::empty(shape, torch::kFloat32), torch::empty({0}, torch::kInt64), train.num_classes};
}

struct Loaded {
  DataSplits splits;
  std::vector<std::pair<std::string, std::string>> files;  // (role, absolute path) in reading order
};

Status LoadIdx(const DataSpec& spec, Loaded& out) {
  auto path = [&](const std::string& f) { return AbsolutePath(f, spec.path); };
  GANTRY_ASSIGN_OR_RETURN(Dataset train,
                          LoadIdxDataset(path(spec.train_images), path(spec.train_labels), spec.limit));
  GANTRY_ASSIGN_OR_RETURN(Dataset test, LoadIdxDataset(path(spec.test_images), path(spec.test_labels)));
  out.splits.train = {train.images, train.labels, kNumClasses};
  out.splits.test = {test.images, test.labels, kNumClasses};
  for (const auto& f : {spec.train_images, spec.train_labels}) out.files.emplace_back("train", path(f));
  for (const auto& f : {spec.test_images, spec.test_labels}) out.files.emplace_back("test", path(f));
  return Status::Ok();
}

// The held-out CSV (data.test_file), checked against the training features.
Status LoadTestCsv(const DataSpec& spec, Loaded& out, int64_t& max_label) {
  TensorDataset& train = out.splits.train;
  if (spec.test_file.empty()) {
    out.splits.test = EmptyLike(train);
    out.splits.notes.push_back("no data.test_file: the test set is empty");
    return Status::Ok();
  }
  const std::string file = AbsolutePath(spec.test_file, spec.path);
  GANTRY_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(file, {spec.label_column, 0}));
  if (!out.splits.feature_names.empty() && t.feature_names != out.splits.feature_names) {
    return Status::InvalidArgument(file + ": data.test_file has " + std::to_string(t.feature_names.size()) +
                                   " feature columns that differ from the training data's " +
                                   std::to_string(out.splits.feature_names.size()) +
                                   "; use the same header (same names, same order)");
  }
  max_label = std::max(max_label, t.max_label);
  out.splits.test = {t.features, t.labels, 0};
  // IDX shards with a CSV test set: rows of raw pixels (0..255) become
  // images, normalised as idx_reader.cc normalises the shards (and as
  // gantry-serve normalises its inputs).
  if (Status st = out.splits.test.ViewSamplesAs(train.SampleShape()); !st.ok()) {
    return st.WithContext(file + ": data.test_file does not match the training samples");
  }
  if (train.features.defined() && train.features.dim() == 4) {
    out.splits.test.features = out.splits.test.features.div(255.0).sub_(kPixelMean).div_(kPixelStd);
  }
  out.files.emplace_back("test", file);
  return Status::Ok();
}

Status LoadCsv(const DataSpec& spec, Loaded& out) {
  const std::string file = AbsolutePath(spec.train_file, spec.path);
  GANTRY_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(file, {spec.label_column, spec.limit}));
  out.splits.feature_names = t.feature_names;
  out.splits.train = {t.features, t.labels, 0};
  out.files.emplace_back("train", file);
  int64_t max_label = t.max_label;
  GANTRY_RETURN_IF_ERROR(LoadTestCsv(spec, out, max_label));
  out.splits.train.num_classes = out.splits.test.num_classes = max_label + 1;
  return Status::Ok();
}

Status LoadShardDir(const DataSpec& spec, const std::optional<ShardSelection>& selection, Loaded& out) {
  const std::string& dir = spec.path;
  ShardOptions options{spec.label_column, spec.limit, {}};
  // A test file kept inside the shard directory is not a shard.
  if (!spec.test_file.empty()) {
    fs::path test = AbsolutePath(spec.test_file, dir);
    if (test.parent_path() == fs::path(dir)) options.exclude.push_back(test.filename().string());
  }
  std::string chosen_note;
  if (selection) {
    // The shards not chosen are left out like the test file.
    GANTRY_ASSIGN_OR_RETURN(ShardListing listing, ListShards(dir, options.exclude));
    GANTRY_ASSIGN_OR_RETURN(std::vector<std::string> keep, SelectShards(listing, *selection));
    for (const Shard& shard : listing.shards) {
      if (std::find(keep.begin(), keep.end(), shard.name) != keep.end()) continue;
      for (const std::string& f : shard.files) options.exclude.push_back(f);
    }
    chosen_note = "retrain: " + std::to_string(keep.size()) + " of " + std::to_string(listing.shards.size()) +
                  " shards (" + std::to_string(selection->new_files.size()) + " new file(s), replay " +
                  std::to_string(selection->replay) + ")";
  }
  GANTRY_ASSIGN_OR_RETURN(ShardData d, LoadShards(dir, options));
  out.splits.notes = std::move(d.notes);
  if (!chosen_note.empty()) out.splits.notes.push_back(chosen_note);
  out.splits.feature_names = d.feature_names;
  out.splits.train = {d.features, d.labels, 0};
  for (const auto& f : d.files) out.files.emplace_back("train", dir + "/" + f);
  int64_t max_label = d.max_label;
  GANTRY_RETURN_IF_ERROR(LoadTestCsv(spec, out, max_label));
  out.splits.train.num_classes = out.splits.test.num_classes = max_label + 1;
  return Status::Ok();
}

}  // namespace

std::vector<int64_t> TensorDataset::SampleShape() const {
  if (!features.defined() || features.dim() == 0) return {};
  auto s = features.sizes();
  return {s.begin() + 1, s.end()};
}

Status TensorDataset::ViewSamplesAs(const std::vector<int64_t>& shape) {
  const std::vector<int64_t> have = SampleShape();
  int64_t want_n = 1, have_n = 1;
  for (int64_t d : shape) want_n *= d;
  for (int64_t d : have) have_n *= d;
  if (want_n != have_n) {
    return Status::InvalidArgument("samples of shape " + ShapeString(have) + " (" + std::to_string(have_n) +
                                   " values) cannot be viewed as " + ShapeString(shape) + " (" +
                                   std::to_string(want_n) + " values)");
  }
  if (have == shape) return Status::Ok();
  std::vector<int64_t> full = {features.size(0)};
  full.insert(full.end(), shape.begin(), shape.end());
  try {
    features = features.reshape(full);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("reshaping samples: ") + e.what());
  }
  return Status::Ok();
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<std::vector<std::string>> SelectShards(const ShardListing& listing, const ShardSelection& selection) {
  std::set<std::string> wanted(selection.new_files.begin(), selection.new_files.end());
  std::vector<bool> is_new(listing.shards.size(), false);
  std::vector<size_t> older;
  for (size_t i = 0; i < listing.shards.size(); ++i) {
    const Shard& shard = listing.shards[i];
    bool hit = wanted.erase(shard.name) > 0;
    for (const std::string& f : shard.files) hit = wanted.erase(f) > 0 || hit;
    is_new[i] = hit;
    if (!hit) older.push_back(i);
  }
  if (!wanted.empty()) {
    return Status::InvalidArgument("job spec: retrain.new_files: " + *wanted.begin() +
                                   " is not a shard of data.path (was it removed or renamed?)");
  }
  // Fisher-Yates with an explicit generator and modulo: the same choice on
  // every rank and every standard library.
  std::mt19937_64 gen(selection.seed);
  for (size_t i = older.size(); i > 1; --i) std::swap(older[i - 1], older[gen() % i]);
  const auto replayed = static_cast<size_t>(std::ceil(selection.replay * static_cast<double>(older.size())));
  for (size_t k = 0; k < std::min(replayed, older.size()); ++k) is_new[older[k]] = true;
  std::vector<std::string> out;
  for (size_t i = 0; i < listing.shards.size(); ++i) {
    if (is_new[i]) out.push_back(listing.shards[i].name);
  }
  return out;
}

Result<DataSplits> LoadData(const JobSpec& spec) {
  if (spec.retrain.new_files.empty()) return LoadData(spec.data);
  return LoadData(spec.data, ShardSelection{spec.retrain.new_files, spec.retrain.replay, spec.retrain.replay_seed});
}

Result<DataSplits> LoadData(const DataSpec& given, const std::optional<ShardSelection>& selection) {
  DataSpec spec = given;
  spec.path = DirPath(given.path);
  Loaded out;
  if (spec.format == "idx") {
    GANTRY_RETURN_IF_ERROR(LoadIdx(spec, out));
  } else if (spec.format == "csv") {
    GANTRY_RETURN_IF_ERROR(LoadCsv(spec, out));
  } else if (spec.format == "shards") {
    GANTRY_RETURN_IF_ERROR(LoadShardDir(spec, selection, out));
  } else {
    return Status::InvalidArgument("job spec: data.format must be one of idx, csv, shards (got '" +
                                   spec.format + "')");
  }
  // Digested after parsing, so a malformed file is reported before the
  // (longer) digest of everything else.
  DataFingerprint fp;
  fp.AddSetting("format", spec.format);
  if (spec.format != "idx") fp.AddSetting("label_column", spec.label_column);
  if (spec.limit > 0) fp.AddSetting("limit", std::to_string(spec.limit));
  for (const auto& [role, file] : out.files) {
    const std::string name = NameFor(file, spec.path);
    GANTRY_RETURN_IF_ERROR(fp.AddFile(role, name, file));
    out.splits.files.push_back(name);
  }
  out.splits.fingerprint = fp.Hex();
  if (out.splits.train.num_classes < 2) {
    out.splits.notes.push_back("every label is 0: the model has a single class to predict");
  }
  return std::move(out.splits);
}

}  // namespace gantry::data
