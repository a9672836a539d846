#include "data/shard_dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "data/csv_reader.h"
#include "data/idx_reader.h"

namespace gantry::data {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A file still being written, or a tool's own bookkeeping (_SUCCESS, .DS_Store).
bool InProgress(const std::string& name) {
  if (name.empty() || name[0] == '.' || name[0] == '_') return true;
  for (std::string_view s : {".tmp", ".part", ".partial", "~"}) {
    if (EndsWith(name, s)) return true;
  }
  return false;
}

// NAME when `file` is NAME<suffix> or NAME<suffix>.gz for one of `suffixes`.
bool StripIdxSuffix(const std::string& file, std::string_view suffix, std::string& prefix) {
  for (std::string ending : {std::string(suffix), std::string(suffix) + ".gz"}) {
    if (EndsWith(file, ending) && file.size() > ending.size()) {
      prefix = file.substr(0, file.size() - ending.size());
      return true;
    }
  }
  return false;
}

constexpr std::string_view kImagesSuffix = "-images-idx3-ubyte";
constexpr std::string_view kLabelsSuffix = "-labels-idx1-ubyte";
constexpr const char* kExpected =
    "expected NAME.csv[.gz], or NAME-images-idx3-ubyte[.gz] with NAME-labels-idx1-ubyte[.gz]";

std::string KindName(Shard::Kind k) { return k == Shard::Kind::kCsv ? "CSV" : "IDX"; }

std::string JoinNames(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
  return s;
}

}  // namespace

Result<ShardListing> ListShards(const std::string& dir, const std::vector<std::string>& exclude) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::InvalidArgument("data.path " + dir + ": cannot list the shard directory: " + ec.message());
  ShardListing out;
  std::map<std::string, std::pair<std::string, std::string>> pairs;  // NAME -> (images, labels)
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::InvalidArgument("data.path " + dir + ": listing failed: " + ec.message());
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) || InProgress(name)) continue;
    if (std::find(exclude.begin(), exclude.end(), name) != exclude.end()) continue;
    std::string prefix;
    if (EndsWith(name, ".csv") || EndsWith(name, ".csv.gz")) {
      out.shards.push_back({Shard::Kind::kCsv, name, {name}});
    } else if (const bool images = StripIdxSuffix(name, kImagesSuffix, prefix);
               images || StripIdxSuffix(name, kLabelsSuffix, prefix)) {
      std::string& slot = images ? pairs[prefix].first : pairs[prefix].second;
      if (!slot.empty()) {
        return Status::InvalidArgument("data.path " + dir + ": shard " + prefix + " has two " +
                                       (images ? "images" : "labels") + " files (" + slot + ", " + name +
                                       "); keep one");
      }
      slot = name;
    } else {
      out.notes.push_back("skipped " + name + " (not a shard: " + kExpected + ")");
    }
  }
  // A failed increment leaves the iterator at the end, so the loop ends quietly.
  if (ec) return Status::InvalidArgument("data.path " + dir + ": listing failed: " + ec.message());
  for (const auto& [prefix, files] : pairs) {
    if (files.first.empty() || files.second.empty()) {
      out.notes.push_back("skipped shard " + prefix + ": " + (files.first.empty() ? files.second : files.first) +
                          " has no " + (files.first.empty() ? "images" : "labels") + " file yet");
      continue;
    }
    out.shards.push_back({Shard::Kind::kIdx, prefix, {files.first, files.second}});
  }
  std::sort(out.shards.begin(), out.shards.end(),
            [](const Shard& a, const Shard& b) { return a.name < b.name; });
  return out;
}

Result<ShardData> LoadShards(const std::string& dir, const ShardOptions& options) {
  GANTRY_ASSIGN_OR_RETURN(ShardListing listing, ListShards(dir, options.exclude));
  ShardData out;
  out.notes = std::move(listing.notes);
  if (listing.shards.empty()) {
    return Status::InvalidArgument("data.path " + dir + ": no complete shard yet (" + kExpected + ")");
  }
  const Shard& first = listing.shards.front();
  out.kind = first.kind;
  std::vector<torch::Tensor> features;
  std::vector<torch::Tensor> labels;
  int64_t loaded = 0;
  for (const Shard& shard : listing.shards) {
    if (options.limit > 0 && loaded >= options.limit) break;
    if (shard.kind != first.kind) {
      return Status::InvalidArgument("data.path " + dir + ": mixes " + KindName(first.kind) + " shards (" +
                                     first.name + ") and " + KindName(shard.kind) + " shards (" + shard.name +
                                     "); keep one kind per directory");
    }
    const int64_t remaining = options.limit > 0 ? options.limit - loaded : 0;
    const std::string base = dir + "/";
    if (shard.kind == Shard::Kind::kCsv) {
      GANTRY_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(base + shard.files[0], {options.label_column, remaining}));
      if (features.empty()) {
        out.feature_names = t.feature_names;
      } else if (t.feature_names != out.feature_names) {
        return Status::InvalidArgument("shard " + base + shard.files[0] + ": feature columns [" +
                                       JoinNames(t.feature_names) + "] differ from the first shard " +
                                       first.name + " [" + JoinNames(out.feature_names) +
                                       "]; every CSV shard needs the same header");
      }
      out.max_label = std::max(out.max_label, t.max_label);
      features.push_back(t.features);
      labels.push_back(t.labels);
    } else {
      GANTRY_ASSIGN_OR_RETURN(Dataset d, LoadIdxDataset(base + shard.files[0], base + shard.files[1], remaining));
      if (!features.empty() && !d.images.sizes().slice(1).equals(features.front().sizes().slice(1))) {
        return Status::InvalidArgument("shard " + shard.name + ": images are " + std::to_string(d.images.size(2)) +
                                       "x" + std::to_string(d.images.size(3)) + " but the first shard " +
                                       first.name + " has " + std::to_string(features.front().size(2)) + "x" +
                                       std::to_string(features.front().size(3)) +
                                       "; every IDX shard needs the same image size");
      }
      // Labels were checked against kNumClasses already; no need to scan them.
      out.max_label = kNumClasses - 1;
      features.push_back(d.images);
      labels.push_back(d.labels);
    }
    loaded += labels.back().size(0);
    out.files.insert(out.files.end(), shard.files.begin(), shard.files.end());
  }
  try {
    out.features = features.size() == 1 ? features[0] : torch::cat(features);
    out.labels = labels.size() == 1 ? labels[0] : torch::cat(labels);
  } catch (const std::exception& e) {
    return Status::Internal("joining the shards of " + dir + ": " + e.what());
  }
  return out;
}

}  // namespace gantry::data
