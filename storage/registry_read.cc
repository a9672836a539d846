// Registry: listing, showing, loading and lineage (see registry.h).
#include <optional>
#include <set>

#include "common/ids.h"
#include "storage/checksum.h"
#include "storage/file_io.h"
#include "storage/registry.h"

namespace gantry::storage {
namespace {

// Longest parent chain Lineage() follows; a loop or a very long history
// stops here rather than running away.
constexpr int kMaxAncestors = 64;

json Names(const std::vector<std::string>& v) { return v.empty() ? json::array() : json(v); }

json TagsJson(const std::vector<TagRow>& tags) {
  json out = json::array();
  for (const auto& t : tags) out.push_back({{"tag", t.tag}, {"protect", t.protect}});
  return out;
}

json LineageEntry(const VersionRow& r) {
  json parent = r.parent_version > 0 ? json{{"model", r.parent_model}, {"version", r.parent_version}}
                                     : json(nullptr);
  return {{"model", r.model},     {"version", r.version},   {"job_id", r.job_id},
          {"attempt", r.attempt}, {"step", r.step},         {"epoch", r.epoch},
          {"metrics", r.metrics}, {"created_at", r.created_at},
          {"data_fingerprint", r.data_fingerprint}, {"parent", parent}};
}

// Parses "v12" or "12"; nullopt for anything else.
std::optional<int64_t> ParseVersionRef(const std::string& ref) {
  size_t start = !ref.empty() && ref[0] == 'v' ? 1 : 0;
  if (ref.size() == start || ref.size() - start > 18) return std::nullopt;
  int64_t v = 0;
  for (size_t i = start; i < ref.size(); ++i) {
    if (ref[i] < '0' || ref[i] > '9') return std::nullopt;
    v = v * 10 + (ref[i] - '0');
  }
  return v;
}

}  // namespace

Result<json> Registry::ListVersions(const std::string& model) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(auto rows, index_.Versions(model));
  if (rows.empty()) return NoVersionsError(model);
  GANTRY_ASSIGN_OR_RETURN(auto aliases, index_.AliasesByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(auto tags, index_.TagsByVersion(model));
  json versions = json::array();
  for (const auto& r : rows) {
    versions.push_back({{"version", r.version},
                        {"job_id", r.job_id},
                        {"attempt", r.attempt},
                        {"step", r.step},
                        {"epoch", r.epoch},
                        {"metrics", r.metrics},
                        {"bytes", r.bytes},
                        {"bytes_written", r.bytes_written},
                        {"path", root_ + "/" + r.path},
                        {"created_at", r.created_at},
                        {"aliases", Names(aliases[r.version])},
                        {"tags", TagsJson(tags[r.version])}});
  }
  GANTRY_ASSIGN_OR_RETURN(auto policy, index_.GetRetention(model));
  return json{{"model", model}, {"versions", std::move(versions)},
              {"retention", policy ? policy->ToJson() : json(nullptr)}};
}

Result<json> Registry::ListModels() { return index_.ListModels(); }

Result<json> Registry::GetVersion(const std::string& model, int64_t version) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  const std::string path = root_ + "/" + row.path;
  GANTRY_ASSIGN_OR_RETURN(Manifest m, Manifest::Load(path));
  json out = m.ToJson();
  if (m.format == 1) {
    // Keep what format 1 recorded rather than the defaults of format 2.
    out.erase("hash_algorithm");
  }
  out["path"] = path;
  return out;
}

Result<int64_t> Registry::Resolve(const std::string& model, const std::string& ref) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  if (ref.empty() || ref == "latest") {
    GANTRY_ASSIGN_OR_RETURN(int64_t latest, index_.LatestVersion(model));
    if (latest == 0) return NoVersionsError(model);
    return latest;
  }
  if (auto v = ParseVersionRef(ref)) {
    GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, *v));
    return row.version;
  }
  GANTRY_RETURN_IF_ERROR(ValidateName(ref, "version ref (latest, vN or an alias)"));
  GANTRY_ASSIGN_OR_RETURN(auto v, index_.AliasVersion(model, ref));
  if (v) return *v;
  GANTRY_ASSIGN_OR_RETURN(auto aliases, index_.AliasesByVersion(model));
  std::string known;
  for (const auto& [version, names] : aliases) {
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n + "=v" + std::to_string(version);
  }
  return Status::NotFound("model '" + model + "' has no alias '" + ref + "' (" +
                          (known.empty() ? std::string("it has no aliases") : "aliases: " + known) +
                          "; use vN, latest, or `gantry ckpt alias set`)");
}

Result<json> Registry::Show(const std::string& model, const std::string& ref) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_ASSIGN_OR_RETURN(json out, GetVersion(model, version));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  GANTRY_ASSIGN_OR_RETURN(auto aliases, index_.AliasesByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(auto tags, index_.TagsByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(bool is_protected, index_.IsProtected(model, version));
  out["aliases"] = Names(aliases[version]);
  out["tags"] = TagsJson(tags[version]);
  out["protected"] = is_protected;
  out["bytes_written"] = row.bytes_written;
  return out;
}

Result<LoadedVersion> Registry::Load(const std::string& model, int64_t version, bool model_tensors_only) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  LoadedVersion out;
  out.path = root_ + "/" + row.path;
  GANTRY_ASSIGN_OR_RETURN(Manifest m, Manifest::Load(out.path));
  const std::string where = model + " v" + std::to_string(version);
  if (m.model != model || m.version != version) {
    return Status::Corruption(out.path + "/manifest.json describes " + m.model + " v" +
                              std::to_string(m.version) + ", not " + where + " (run `gantry ckpt fsck`)");
  }
  std::optional<File> tensors_bin;  // format 1 only
  std::vector<TensorRecord> kept;
  for (auto& t : m.tensors) {
    if (model_tensors_only && !IsModelTensor(t.name)) continue;
    if (!SizeMatchesShape(t)) return VerifyTensor(t, {}, where);
    std::vector<uint8_t> data;
    if (t.in_folder()) {  // format 1
      if (!tensors_bin) {
        auto f = File::OpenRead(out.path + "/tensors.bin");
        if (!f.ok()) return Status::Corruption(where + ": " + f.status().message() + " (run `gantry ckpt fsck`)");
        tensors_bin = std::move(f).value();
      }
      data.resize(t.bytes);
      GANTRY_RETURN_IF_ERROR(tensors_bin->ReadAt(t.offset, data));
    } else {
      GANTRY_ASSIGN_OR_RETURN(auto blob, index_.GetBlob(t.blob));
      if (!blob) {
        return Status::Corruption(where + ": tensor '" + t.name + "' names blob " + t.blob +
                                  ", which the index lacks (run `gantry ckpt fsck`)");
      }
      GANTRY_ASSIGN_OR_RETURN(data, blobs_.Read(blob->location()));
    }
    GANTRY_RETURN_IF_ERROR(VerifyTensor(t, data, where));
    out.data.push_back(std::move(data));
    kept.push_back(std::move(t));
  }
  m.tensors = std::move(kept);
  out.manifest = std::move(m);
  return out;
}

Result<json> Registry::Lineage(const std::string& model, const std::string& ref) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  json out = LineageEntry(row);
  json ancestors = json::array();
  std::set<std::pair<std::string, int64_t>> seen = {{row.model, row.version}};
  std::string pm = row.parent_model;
  int64_t pv = row.parent_version;
  for (int i = 0; i < kMaxAncestors && pv > 0; ++i) {
    if (!seen.insert({pm, pv}).second) break;
    GANTRY_ASSIGN_OR_RETURN(auto parent, index_.GetVersion(pm, pv));
    if (!parent) {
      ancestors.push_back({{"model", pm}, {"version", pv}, {"exists", false}});
      break;
    }
    json e = LineageEntry(*parent);
    e["exists"] = true;
    ancestors.push_back(std::move(e));
    pm = parent->parent_model;
    pv = parent->parent_version;
  }
  out["ancestors"] = std::move(ancestors);
  return out;
}

}  // namespace gantry::storage
