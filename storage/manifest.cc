#include "storage/manifest.h"

#include "common/fs.h"
#include "storage/content_hash.h"

namespace gantry::storage {
namespace {

Status Bad(const std::string& where, const std::string& why) {
  return Status::Corruption(where + ": " + why + " (run `gantry ckpt fsck`)");
}

// Field readers that never throw: a manifest is read back from disk, where
// it may have been damaged.
int64_t IntOr(const json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}
std::string StrOr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
json ObjOr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : json::object();
}

Result<TensorRecord> RecordFromJson(const json& t, const std::string& where) {
  if (!t.is_object()) return Bad(where, "tensor entry is not a map");
  TensorRecord r;
  r.name = StrOr(t, "name");
  if (r.name.empty()) return Bad(where, "tensor entry without a name");
  auto dtype = ParseDType(StrOr(t, "dtype"));
  if (!dtype) return Bad(where, "tensor '" + r.name + "' has an unknown dtype");
  r.dtype = *dtype;
  auto shape = t.find("shape");
  if (shape == t.end() || !shape->is_array()) return Bad(where, "tensor '" + r.name + "' has no shape");
  for (const auto& d : *shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return Bad(where, "tensor '" + r.name + "' has a bad shape");
    r.shape.push_back(d.get<int64_t>());
  }
  int64_t bytes = IntOr(t, "bytes", -1);
  int64_t offset = IntOr(t, "offset", 0);
  if (bytes < 0 || offset < 0) return Bad(where, "tensor '" + r.name + "' has a bad size or offset");
  r.bytes = static_cast<uint64_t>(bytes);
  r.offset = static_cast<uint64_t>(offset);
  r.hash = StrOr(t, "hash");
  r.blob = StrOr(t, "blob");
  if (auto crc = t.find("crc32"); crc != t.end() && crc->is_number_unsigned()) {
    r.crc32 = crc->get<uint32_t>();
  }
  if (r.hash.empty() && !r.crc32) return Bad(where, "tensor '" + r.name + "' has no checksum");
  return r;
}

}  // namespace

std::string DumpJson(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

json TensorRecord::ToJson() const {
  json j = {{"name", name}, {"dtype", DTypeName(dtype)}, {"shape", shape}, {"bytes", bytes}};
  if (!hash.empty()) j["hash"] = hash;
  if (crc32) j["crc32"] = *crc32;
  if (in_folder()) {
    j["offset"] = offset;
  } else {
    j["blob"] = blob;
  }
  return j;
}

json Manifest::ToJson() const {
  json tensors_json = json::array();
  for (const auto& t : tensors) tensors_json.push_back(t.ToJson());
  json parent = prov.has_parent() ? json{{"model", prov.parent_model}, {"version", prov.parent_version}}
                                  : json(nullptr);
  return {{"format", format},
          {"model", prov.model},
          {"version", version},
          {"job_id", prov.job_id},
          {"attempt", prov.attempt},
          {"step", prov.step},
          {"epoch", prov.epoch},
          {"created_at", prov.created_at},
          {"metrics", prov.metrics},
          {"meta", prov.meta},
          {"optimizer_state", optimizer_state},
          {"trainer_state", trainer_state},
          {"lineage", {{"parent", parent}, {"data_fingerprint", prov.data_fingerprint}}},
          {"bytes", bytes},
          {"hash_algorithm", kHashAlgorithm},
          {"tensors", std::move(tensors_json)}};
}

Result<Manifest> Manifest::FromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "manifest is not a JSON map");
  Manifest m;
  m.format = static_cast<int>(IntOr(j, "format", 1));
  if (m.format < 1 || m.format > kManifestFormat) {
    return Status::FailedPrecondition(where + ": manifest format " + std::to_string(m.format) +
                                      " is newer than this gantry-storage knows; upgrade Gantry");
  }
  Provenance& p = m.prov;
  p.model = StrOr(j, "model");
  m.version = IntOr(j, "version", 0);
  if (p.model.empty() || m.version < 1) return Bad(where, "manifest lacks model or version");
  p.job_id = StrOr(j, "job_id");
  p.attempt = IntOr(j, "attempt", 0);
  p.step = IntOr(j, "step", 0);
  p.epoch = IntOr(j, "epoch", 0);
  if (auto c = j.find("created_at"); c != j.end() && c->is_number()) p.created_at = c->get<double>();
  p.metrics = ObjOr(j, "metrics");
  p.meta = ObjOr(j, "meta");
  m.optimizer_state = ObjOr(j, "optimizer_state");
  m.trainer_state = ObjOr(j, "trainer_state");
  json lineage = ObjOr(j, "lineage");
  if (auto parent = lineage.find("parent"); parent != lineage.end() && parent->is_object()) {
    p.parent_model = StrOr(*parent, "model");
    p.parent_version = IntOr(*parent, "version", 0);
  }
  p.data_fingerprint = StrOr(lineage, "data_fingerprint");
  auto tensors = j.find("tensors");
  if (tensors == j.end() || !tensors->is_array()) return Bad(where, "manifest has no tensor list");
  for (const auto& t : *tensors) {
    GANTRY_ASSIGN_OR_RETURN(TensorRecord r, RecordFromJson(t, where));
    m.bytes += r.bytes;
    m.tensors.push_back(std::move(r));
  }
  return m;
}

Result<Manifest> Manifest::Load(const std::string& version_dir) {
  const std::string path = version_dir + "/manifest.json";
  auto text = ReadFile(path);
  if (!text.ok()) return Bad(path, "cannot be read");
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(path, "is not valid JSON");
  return FromJson(j, path);
}

}  // namespace gantry::storage
