// Registry: listing, showing, loading and lineage (see registry.h).
#include <algorithm>
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

Result<VersionList> Registry::ListVersions(const std::string& model) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(auto rows, index_.Versions(model));
  if (rows.empty()) return NoVersionsError(model);
  GANTRY_ASSIGN_OR_RETURN(auto aliases, index_.AliasesByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(auto tags, index_.TagsByVersion(model));
  VersionList out;
  out.model = model;
  for (auto& r : rows) {
    VersionInfo info;
    info.aliases = std::move(aliases[r.version]);
    info.tags = std::move(tags[r.version]);
    info.row = std::move(r);
    info.row.path = root_ + "/" + info.row.path;
    out.versions.push_back(std::move(info));
  }
  GANTRY_ASSIGN_OR_RETURN(out.retention, index_.GetRetention(model));
  return out;
}

Result<std::vector<ModelInfo>> Registry::ListModels() { return index_.ListModels(); }

Result<VersionDetail> Registry::GetVersion(const std::string& model, int64_t version) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  VersionDetail out;
  out.path = root_ + "/" + row.path;
  GANTRY_ASSIGN_OR_RETURN(out.manifest, Manifest::Load(out.path));
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

Result<ShowResult> Registry::Show(const std::string& model, const std::string& ref) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  ShowResult out;
  GANTRY_ASSIGN_OR_RETURN(out.detail, GetVersion(model, version));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  GANTRY_ASSIGN_OR_RETURN(auto aliases, index_.AliasesByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(auto tags, index_.TagsByVersion(model));
  GANTRY_ASSIGN_OR_RETURN(out.is_protected, index_.IsProtected(model, version));
  out.aliases = std::move(aliases[version]);
  out.tags = std::move(tags[version]);
  out.bytes_written = row.bytes_written;
  return out;
}

Result<LoadedVersion> Registry::Load(const std::string& model, int64_t version, bool model_tensors_only,
                                     const std::vector<std::string>& also) {
  GANTRY_RETURN_IF_ERROR(ValidateName(model, "model"));
  GANTRY_ASSIGN_OR_RETURN(VersionRow row, RequireVersion(model, version));
  LoadedVersion out;
  out.path = root_ + "/" + row.path;
  GANTRY_ASSIGN_OR_RETURN(Manifest m, Manifest::Load(out.path));
  const std::string where = model + " v" + std::to_string(version);
  if (m.prov.model != model || m.version != version) {
    return Status::Corruption(out.path + "/manifest.json describes " + m.prov.model + " v" +
                              std::to_string(m.version) + ", not " + where + " (run `gantry ckpt fsck`)");
  }
  std::optional<File> tensors_bin;  // format 1 only
  std::vector<TensorRecord> kept;
  for (auto& t : m.tensors) {
    if (model_tensors_only && !IsModelTensor(t.name) &&
        std::find(also.begin(), also.end(), t.name) == also.end()) {
      continue;
    }
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

Result<LineageInfo> Registry::Lineage(const std::string& model, const std::string& ref) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, Resolve(model, ref));
  LineageInfo out;
  GANTRY_ASSIGN_OR_RETURN(out.version, RequireVersion(model, version));
  std::set<std::pair<std::string, int64_t>> seen = {{model, version}};
  std::string pm = out.version.prov.parent_model;
  int64_t pv = out.version.prov.parent_version;
  for (int i = 0; i < kMaxAncestors && pv > 0; ++i) {
    if (!seen.insert({pm, pv}).second) break;
    GANTRY_ASSIGN_OR_RETURN(auto parent, index_.GetVersion(pm, pv));
    out.ancestors.push_back({pm, pv, parent});
    if (!parent) break;
    pm = parent->prov.parent_model;
    pv = parent->prov.parent_version;
  }
  return out;
}

}  // namespace gantry::storage
