// The naming, retention, maintenance and interop requests of the storage
// service (see storage_service.h).
#include "common/fields.h"
#include "storage/storage_json.h"
#include "storage/storage_service.h"
#include "storage/torch_io.h"

namespace gantry::storage {
namespace {

Status CheckFormat(const json& body, const std::string& what) {
  GANTRY_ASSIGN_OR_RETURN(std::string format, In(GetString(body, "format", "torch"), what));
  if (format != "torch") {
    return Status::InvalidArgument(what + ": format '" + format + "' is not supported (only 'torch')");
  }
  return Status::Ok();
}

Result<json> Export(Registry& registry, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(body, "export_version"));
  GANTRY_RETURN_IF_ERROR(CheckFormat(body, "export_version"));
  GANTRY_ASSIGN_OR_RETURN(std::string include, In(GetString(body, "include", "model"), "export_version"));
  if (include != "all" && include != "model") {
    return Status::InvalidArgument("export_version: include must be 'model' or 'all' (got '" + include + "')");
  }
  if (!TorchInteropAvailable()) return EncodeTorchStateDict({}).status();
  GANTRY_ASSIGN_OR_RETURN(int64_t version, registry.Resolve(mr.first, mr.second));
  GANTRY_ASSIGN_OR_RETURN(LoadedVersion v, registry.Load(mr.first, version, include == "model"));
  std::vector<StateDictTensor> tensors;
  for (size_t i = 0; i < v.data.size(); ++i) {
    const TensorRecord& t = v.manifest.tensors[i];
    tensors.push_back({t.name, t.dtype, t.shape, std::move(v.data[i])});
  }
  GANTRY_ASSIGN_OR_RETURN(std::string bytes, EncodeTorchStateDict(tensors));
  const uint64_t size = bytes.size();
  return json{{"model", mr.first},         {"version", version},
              {"format", "torch"},          {"tensors", tensors.size()},
              {"bytes", size},
              {"data", json::binary(std::vector<uint8_t>(bytes.begin(), bytes.end()))}};
}

Result<json> Import(Registry& registry, const json& body) {
  GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpointMeta(body, "import_version"));
  GANTRY_RETURN_IF_ERROR(CheckFormat(body, "import_version"));
  GANTRY_ASSIGN_OR_RETURN(c.prov.step, In(GetInt(body, "step", 0), "import_version"));
  if (c.prov.step < 0) return Status::InvalidArgument("import_version: step must be >= 0");
  auto data = body.find("data");
  if (data == body.end() || !data->is_binary()) {
    return Status::InvalidArgument("import_version: field 'data' must be binary (the file's bytes)");
  }
  const auto& bin = data->get_binary();
  GANTRY_ASSIGN_OR_RETURN(
      auto tensors,
      DecodeTorchStateDict(std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size())));
  if (tensors.empty()) return Status::InvalidArgument("import_version: the state dict holds no tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    GANTRY_RETURN_IF_ERROR(CheckTensorName(tensors[i].name, "import_version: tensor"));
    c.tensors.push_back({tensors[i].name, tensors[i].dtype, tensors[i].shape, tensors[i].data});
  }
  if (!c.prov.meta.contains("source")) c.prov.meta["source"] = "torch import";
  GANTRY_ASSIGN_OR_RETURN(std::string request_id, GetRequestId(body, "import_version"));
  GANTRY_ASSIGN_OR_RETURN(SaveResult saved, registry.Save(c, request_id));
  return ToJson(saved);
}

}  // namespace

void RegisterStorageAdminHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed) {
  server.Handle("set_alias", [&registry, feed](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "set_alias"));
    GANTRY_ASSIGN_OR_RETURN(std::string alias, In(GetString(req.body, "alias"), "set_alias"));
    GANTRY_ASSIGN_OR_RETURN(AliasChange r, registry.SetAlias(mr.first, alias, mr.second));
    if (feed) feed->AliasMoved(r);
    return SetAliasJson(r);
  });
  server.Handle("remove_alias", [&registry, feed](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), "remove_alias"));
    GANTRY_ASSIGN_OR_RETURN(std::string alias, In(GetString(req.body, "alias"), "remove_alias"));
    GANTRY_ASSIGN_OR_RETURN(AliasChange r, registry.RemoveAlias(model, alias));
    if (feed) feed->AliasRemoved(r);
    return RemoveAliasJson(r);
  });
  server.Handle("tag_version", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "tag_version"));
    GANTRY_ASSIGN_OR_RETURN(std::string tag, In(GetString(req.body, "tag"), "tag_version"));
    GANTRY_ASSIGN_OR_RETURN(bool protect, In(GetBool(req.body, "protect", false), "tag_version"));
    GANTRY_ASSIGN_OR_RETURN(TagChange r, registry.Tag(mr.first, mr.second, tag, protect));
    return TagJson(r);
  });
  server.Handle("untag_version", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "untag_version"));
    GANTRY_ASSIGN_OR_RETURN(std::string tag, In(GetString(req.body, "tag"), "untag_version"));
    GANTRY_ASSIGN_OR_RETURN(TagChange r, registry.Untag(mr.first, mr.second, tag));
    return UntagJson(r);
  });
  server.Handle("delete_version", [&registry, feed](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), "delete_version"));
    // No default ref here: deleting "latest" by omission would be a trap.
    GANTRY_ASSIGN_OR_RETURN(std::string ref, GetRef(req.body, "delete_version", std::nullopt));
    GANTRY_ASSIGN_OR_RETURN(bool force, In(GetBool(req.body, "force", false), "delete_version"));
    GANTRY_ASSIGN_OR_RETURN(DeleteResult r, registry.Delete(model, ref, force));
    if (feed) feed->VersionDeleted(r.model, r.version);
    return ToJson(r);
  });
  server.Handle("set_retention", [&registry](const Request& req) -> Result<json> {
    const std::string what = "set_retention";
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), what));
    GANTRY_ASSIGN_OR_RETURN(bool keep_all, In(GetBool(req.body, "keep_all", false), what));
    std::optional<RetentionPolicy> policy;
    if (!keep_all) {
      RetentionPolicy& p = policy.emplace();
      GANTRY_ASSIGN_OR_RETURN(p.keep_latest, In(GetInt(req.body, "keep_latest"), what));
      GANTRY_ASSIGN_OR_RETURN(p.keep_best, In(GetInt(req.body, "keep_best", 0), what));
      GANTRY_ASSIGN_OR_RETURN(p.metric, In(GetString(req.body, "metric", ""), what));
      GANTRY_ASSIGN_OR_RETURN(p.mode, In(GetString(req.body, "mode", "min"), what));
    }
    GANTRY_ASSIGN_OR_RETURN(RetentionInfo r, registry.SetRetention(model, policy));
    return SetRetentionJson(r);
  });
  server.Handle("get_retention", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), "get_retention"));
    GANTRY_ASSIGN_OR_RETURN(RetentionInfo r, registry.GetRetention(model));
    return GetRetentionJson(r);
  });
  server.Handle("gc", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model", ""), "gc"));
    GANTRY_ASSIGN_OR_RETURN(bool dry_run, In(GetBool(req.body, "dry_run", false), "gc"));
    GANTRY_ASSIGN_OR_RETURN(GcReport r, registry.CollectGarbage(model, dry_run));
    return ToJson(r);
  });
  server.Handle("fsck", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(bool repair, In(GetBool(req.body, "repair", false), "fsck"));
    GANTRY_ASSIGN_OR_RETURN(FsckReport r, registry.Fsck(repair));
    return ToJson(r);
  });
  server.Handle("export_version", [&registry](const Request& req) { return Export(registry, req.body); });
  server.Handle("import_version", [&registry, feed](const Request& req) -> Result<json> {
    Result<json> out = Import(registry, req.body);
    if (feed && out.ok()) {
      SaveResult saved;
      saved.model = out->value("model", "");
      saved.version = out->value("version", int64_t{0});
      feed->VersionSaved(saved);
    }
    return out;
  });
}

}  // namespace gantry::storage
