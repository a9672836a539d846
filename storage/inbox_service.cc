// The checkpoint data plane's handlers (storage/inbox.h).
#include <spdlog/spdlog.h>

#include <memory>
#include <set>

#include "common/fast_checksum.h"
#include "common/fields.h"
#include "common/rpc.h"
#include "storage/inbox.h"
#include "storage/registry.h"
#include "storage/registry_feed.h"
#include "storage/storage_json.h"

namespace gantry::storage {
namespace {

constexpr const char* kWhat = "save_checkpoint_file";

Status Bad(const std::string& field, const std::string& why) {
  return Status::InvalidArgument(std::string(kWhat) + ": " + field + " " + why);
}

Result<int64_t> NonNegative(const json& obj, const char* key, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return Bad(field + "." + key, "must be an integer >= 0");
  }
  return it->get<int64_t>();
}

// One {name, dtype, shape, offset, bytes, checksum} entry, its bytes a view
// into `file`, checked against its shape and checksum.
Result<TensorData> FileTensor(const json& t, const std::string& field, std::span<const uint8_t> file) {
  if (!t.is_object()) return Bad(field, "must be a map {name, dtype, shape, offset, bytes, checksum}");
  TensorData out;
  GANTRY_ASSIGN_OR_RETURN(out.name, In(GetString(t, "name"), std::string(kWhat) + ": " + field));
  GANTRY_RETURN_IF_ERROR(CheckTensorName(out.name, field + ".name"));
  GANTRY_ASSIGN_OR_RETURN(std::string dtype, In(GetString(t, "dtype"), std::string(kWhat) + ": " + field));
  auto parsed = ParseDType(dtype);
  if (!parsed) return Bad(field + ".dtype", "'" + dtype + "' is not one of " + std::string(KnownDTypes()));
  out.dtype = *parsed;
  auto shape = t.find("shape");
  if (shape == t.end() || !shape->is_array() || shape->size() > kMaxTensorRank) {
    return Bad(field + ".shape", "must be a list of at most " + std::to_string(kMaxTensorRank) + " sizes");
  }
  uint64_t need = DTypeSize(out.dtype);
  for (const json& d : *shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return Bad(field + ".shape", "must hold integers >= 0");
    const auto u = static_cast<uint64_t>(d.get<int64_t>());
    if (u != 0 && need > (uint64_t{1} << 62) / u) return Bad(field + ".shape", "is too large");
    need *= u;
    out.shape.push_back(d.get<int64_t>());
  }
  GANTRY_ASSIGN_OR_RETURN(int64_t offset, NonNegative(t, "offset", field));
  GANTRY_ASSIGN_OR_RETURN(int64_t bytes, NonNegative(t, "bytes", field));
  if (static_cast<uint64_t>(bytes) != need) {
    return Bad(field + ".bytes", "is " + std::to_string(bytes) + ", shape " + ShapeString(out.shape) + " " + dtype +
                                     " needs " + std::to_string(need));
  }
  if (static_cast<uint64_t>(offset) > file.size() || static_cast<uint64_t>(bytes) > file.size() - offset) {
    return Status::InvalidArgument(std::string(kWhat) + ": tensor '" + out.name + "' ends at byte " +
                                   std::to_string(offset + bytes) + " of a " + std::to_string(file.size()) +
                                   "-byte inbox file (a torn write? write the file again)");
  }
  out.data = file.subspan(static_cast<size_t>(offset), static_cast<size_t>(bytes));
  auto sum = t.find("checksum");
  if (sum == t.end() || !sum->is_number_unsigned()) return Bad(field + ".checksum", "must be an unsigned integer");
  if (FastChecksum(out.data.data(), out.data.size()) != sum->get<uint64_t>()) {
    return Status::InvalidArgument(std::string(kWhat) + ": tensor '" + out.name +
                                   "' does not match its checksum in the inbox file (write the file again)");
  }
  return out;
}

Result<SaveResult> SaveFromFile(Registry& registry, const Inbox& inbox, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(body, "file"), kWhat));
  GANTRY_ASSIGN_OR_RETURN(std::string path, inbox.PathOf(name));
  GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpointMeta(body, kWhat));
  auto step = body.find("step");
  if (step == body.end() || !step->is_number_integer() || step->get<int64_t>() < 0) {
    return Bad("step", "must be an integer >= 0");
  }
  c.prov.step = step->get<int64_t>();
  auto tensors = body.find("tensors");
  if (tensors == body.end() || !tensors->is_array()) {
    return Bad("tensors", "must be a list of {name, dtype, shape, offset, bytes, checksum}");
  }
  GANTRY_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  std::set<std::string> seen;
  for (size_t i = 0; i < tensors->size(); ++i) {
    const std::string field = "tensors[" + std::to_string(i) + "]";
    GANTRY_ASSIGN_OR_RETURN(TensorData t, FileTensor((*tensors)[i], field, file.bytes()));
    if (!seen.insert(t.name).second) return Bad(field + ".name", "'" + t.name + "' appears twice");
    c.tensors.push_back(std::move(t));
  }
  // The same commit as save_checkpoint: staged, fsynced, renamed, indexed,
  // and a repeated request id answers the version its first try saved.
  GANTRY_ASSIGN_OR_RETURN(std::string request_id, GetRequestId(body, kWhat));
  // The file may become the version's pack (Registry::SourceFile): the
  // bytes then reach the disk once.
  const Registry::SourceFile source{path, file.bytes()};
  GANTRY_ASSIGN_OR_RETURN(SaveResult saved, registry.Save(c, request_id, &source));
  return saved;
}

}  // namespace

void RegisterInboxHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed) {
  auto opened = Inbox::Open(registry.root());
  if (!opened.ok()) {
    spdlog::warn("checkpoint inbox unavailable ({}); workers save through save_checkpoint",
                 opened.status().ToString());
    return;
  }
  auto inbox = std::make_shared<Inbox>(std::move(opened).value());
  server.Handle("checkpoint_inbox", [inbox](const Request&) -> Result<json> {
    return json{{"dir", inbox->dir()}, {"token", inbox->token()}, {"chunk_bytes", kInboxChunkBytes}};
  });
  server.Handle("put_chunk", [inbox](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string name, In(GetString(req.body, "file"), "put_chunk"));
    GANTRY_ASSIGN_OR_RETURN(int64_t offset, In(GetInt(req.body, "offset"), "put_chunk"));
    auto data = req.body.find("data");
    if (data == req.body.end() || !data->is_binary()) {
      return Status::InvalidArgument("put_chunk: field 'data' must be binary");
    }
    const auto& bytes = data->get_binary();
    if (static_cast<int64_t>(bytes.size()) > kInboxChunkBytes) {
      return Status::InvalidArgument("put_chunk: a chunk holds at most " + std::to_string(kInboxChunkBytes) +
                                     " bytes (got " + std::to_string(bytes.size()) + ")");
    }
    GANTRY_RETURN_IF_ERROR(inbox->PutChunk(name, offset, {bytes.data(), bytes.size()}));
    return json{{"file", name}, {"bytes", offset + static_cast<int64_t>(bytes.size())}};
  });
  server.Handle("save_checkpoint_file", [inbox, &registry, feed](const Request& req) -> Result<json> {
    auto saved = SaveFromFile(registry, *inbox, req.body);
    if (saved.ok() && feed) feed->VersionSaved(*saved);
    // Done with the file either way (unless the save took it as its pack):
    // a retry writes it again.
    if (auto name = GetString(req.body, "file"); name.ok()) inbox->Remove(*name);
    if (!saved.ok()) return saved.status();
    return ToJson(*saved);
  });
}

}  // namespace gantry::storage
