#include "drift/dataset_input.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "data/csv_reader.h"
#include "data/idx_reader.h"
#include "data/shard_dataset.h"

namespace gantry::drift {
namespace fs = std::filesystem;
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// features [N, ...] float32 and labels [N] int64 -> DriftData.
Result<DriftData> FromTensors(const torch::Tensor& features, const torch::Tensor& labels,
                              std::vector<std::string> names, std::vector<std::string> files) {
  DriftData d;
  try {
    torch::Tensor f = features.to(torch::kFloat32).reshape({features.size(0), -1}).contiguous();
    d.features.type = ElementType::kFloat32;
    d.features.rows = static_cast<size_t>(f.size(0));
    d.features.cols = static_cast<size_t>(f.size(1));
    d.features.bytes.resize(static_cast<size_t>(f.nbytes()));
    if (!d.features.bytes.empty()) std::memcpy(d.features.bytes.data(), f.data_ptr(), d.features.bytes.size());
    if (labels.defined() && labels.numel() > 0) {
      torch::Tensor l = labels.to(torch::kInt64).contiguous();
      d.labels.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    }
    if (names.empty() && features.dim() == 4) {
      const int64_t h = features.size(2), w = features.size(3), c = features.size(1);
      for (int64_t k = 0; k < c; ++k) {
        for (int64_t r = 0; r < h; ++r) {
          for (int64_t col = 0; col < w; ++col) {
            names.push_back((c > 1 ? "c" + std::to_string(k) + "_" : std::string()) + "px" + std::to_string(r) +
                            "_" + std::to_string(col));
          }
        }
      }
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("drift data: ") + e.what());
  }
  if (names.size() != d.features.cols) {
    names.clear();
    for (size_t i = 0; i < d.features.cols; ++i) names.push_back("f" + std::to_string(i));
  }
  d.names = std::move(names);
  d.files = std::move(files);
  return d;
}

// "x-images-idx3-ubyte.gz" -> "x-labels-idx1-ubyte.gz" when that exists.
std::string LabelsBeside(const std::string& images) {
  std::string l = images;
  const auto pos = l.rfind("images-idx3");
  if (pos == std::string::npos) return "";
  l.replace(pos, std::strlen("images-idx3"), "labels-idx1");
  return fs::exists(l) ? l : "";
}

Result<DriftData> ReadIdx(const std::string& images, const std::string& labels) {
  if (labels.empty()) {
    GANTRY_ASSIGN_OR_RETURN(data::IdxArray a, data::ReadIdx(images));
    if (a.dims.size() < 2) return Status::InvalidArgument(images + ": an IDX file of samples needs >= 2 dimensions");
    std::vector<int64_t> shape = a.dims;
    torch::Tensor t = torch::from_blob(a.data.data(), {static_cast<int64_t>(a.data.size())}, torch::kUInt8)
                          .to(torch::kFloat32)
                          .div_(255.0)
                          .sub_(data::kPixelMean)
                          .div_(data::kPixelStd);
    if (shape.size() == 3) shape.insert(shape.begin() + 1, 1);
    return FromTensors(t.reshape(shape), torch::Tensor(), {}, {images});
  }
  GANTRY_ASSIGN_OR_RETURN(data::Dataset ds, data::LoadIdxDataset(images, labels));
  return FromTensors(ds.images, ds.labels, {}, {images, labels});
}

Result<DriftData> ReadPath(const std::string& path, const ReadOptions& options) {
  if (auto comma = path.find(','); comma != std::string::npos) {
    return ReadIdx(path.substr(0, comma), path.substr(comma + 1));
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    data::ShardOptions so;
    so.label_column = options.label_column;
    GANTRY_ASSIGN_OR_RETURN(data::ShardData s, data::LoadShards(path, so));
    return FromTensors(s.features, s.labels, s.feature_names, s.files);
  }
  if (!fs::exists(path, ec)) return Status::NotFound(path + ": no such file or directory");
  if (EndsWith(path, ".csv") || EndsWith(path, ".csv.gz")) {
    data::CsvOptions co;
    co.label_column = options.label_column;
    GANTRY_ASSIGN_OR_RETURN(data::CsvTable t, data::ReadCsv(path, co));
    return FromTensors(t.features, t.labels, t.feature_names, {path});
  }
  if (path.find("idx") != std::string::npos) return ReadIdx(path, LabelsBeside(path));
  return Status::InvalidArgument(path +
                                 ": not a dataset drift detection reads (a shard directory, NAME.csv[.gz], an IDX "
                                 "images file, or IMAGES,LABELS)");
}

}  // namespace

std::vector<CategoricalColumn> DriftData::Categorical() const {
  if (labels.empty()) return {};
  return {CategoricalColumn{"label", std::span<const int64_t>(labels)}};
}

Result<DriftData> ReadDriftData(const std::string& path, const ReadOptions& options) {
  GANTRY_ASSIGN_OR_RETURN(DriftData d, ReadPath(path, options));
  if (d.features.rows == 0) return Status::InvalidArgument(path + ": no samples");
  if (options.sample > 0 && static_cast<size_t>(options.sample) < d.features.rows) {
    std::vector<size_t> rows(d.features.rows);
    std::iota(rows.begin(), rows.end(), size_t{0});
    std::mt19937_64 rng(options.seed);
    for (int64_t i = 0; i < options.sample; ++i) {
      std::uniform_int_distribution<size_t> pick(static_cast<size_t>(i), rows.size() - 1);
      std::swap(rows[static_cast<size_t>(i)], rows[pick(rng)]);
    }
    rows.resize(static_cast<size_t>(options.sample));
    std::sort(rows.begin(), rows.end());
    Matrix m = Matrix::SelectRows(d.features.view(), rows);
    if (!d.labels.empty()) {
      std::vector<int64_t> l;
      l.reserve(rows.size());
      for (size_t r : rows) l.push_back(d.labels[r]);
      d.labels = std::move(l);
    }
    d.features = std::move(m);
  }
  return d;
}

}  // namespace gantry::drift
