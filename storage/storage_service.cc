#include "storage/storage_service.h"

#include "common/fields.h"
#include "storage/inbox.h"
#include "storage/storage_json.h"

namespace gantry::storage {
namespace {

json TensorsWithData(const LoadedVersion& v) {
  json tensors = json::array();
  for (size_t i = 0; i < v.data.size(); ++i) {
    const TensorRecord& t = v.manifest.tensors[i];
    tensors.push_back({{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape},
                       {"data", json::binary(v.data[i])}});
  }
  return tensors;
}

// load_checkpoint picks its version by `version` (an int) if given, else
// by `ref`; with `job_id` it must be (or, without a version, is the newest
// of) that job's versions: a resuming worker wants its own job's state.
Result<int64_t> ResolveForLoad(Registry& registry, const json& body, const std::string& model,
                               const std::string& ref) {
  GANTRY_ASSIGN_OR_RETURN(int64_t version, In(GetInt(body, "version", 0), "load_checkpoint"));
  GANTRY_ASSIGN_OR_RETURN(std::string job, In(GetString(body, "job_id", ""), "load_checkpoint"));
  if (job.empty()) {
    if (version > 0) return version;
    return registry.Resolve(model, ref);
  }
  GANTRY_ASSIGN_OR_RETURN(VersionList list, registry.ListVersions(model));
  int64_t newest = 0;
  for (const auto& v : list.versions) {
    if (v.row.prov.job_id != job) continue;
    const int64_t n = v.row.version;
    if (version > 0 ? n == version : n > newest) newest = n;
  }
  if (newest == 0) {
    return Status::NotFound("model '" + model + "' has no checkpoint of job " + job +
                            (version > 0 ? " at version " + std::to_string(version) : std::string()));
  }
  return newest;
}

}  // namespace

void RegisterStorageHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed) {
  server.Handle("save_checkpoint", [&registry, feed](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(req.body));
    GANTRY_ASSIGN_OR_RETURN(std::string request_id, GetRequestId(req.body, "save_checkpoint"));
    GANTRY_ASSIGN_OR_RETURN(SaveResult saved, registry.Save(c, request_id));
    if (feed) feed->VersionSaved(saved);
    return ToJson(saved);
  });
  server.Handle("list_versions", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), "list_versions"));
    GANTRY_ASSIGN_OR_RETURN(VersionList list, registry.ListVersions(model));
    return ToJson(list);
  });
  server.Handle("list_models", [&registry](const Request&) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto models, registry.ListModels());
    return ToJson(models);
  });
  server.Handle("get_version", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(std::string model, In(GetString(req.body, "model"), "get_version"));
    if (req.body.contains("ref") && !req.body.contains("version")) {
      GANTRY_ASSIGN_OR_RETURN(std::string ref, GetRef(req.body, "get_version", std::nullopt));
      GANTRY_ASSIGN_OR_RETURN(int64_t v, registry.Resolve(model, ref));
      GANTRY_ASSIGN_OR_RETURN(VersionDetail detail, registry.GetVersion(model, v));
      return ToJson(detail);
    }
    GANTRY_ASSIGN_OR_RETURN(int64_t version, In(GetInt(req.body, "version"), "get_version"));
    if (version < 1) {
      return Status::InvalidArgument("get_version: version must be >= 1 (got " + std::to_string(version) + ")");
    }
    GANTRY_ASSIGN_OR_RETURN(VersionDetail detail, registry.GetVersion(model, version));
    return ToJson(detail);
  });
  server.Handle("show_version", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "show_version"));
    GANTRY_ASSIGN_OR_RETURN(ShowResult shown, registry.Show(mr.first, mr.second));
    return ToJson(shown);
  });
  server.Handle("load_checkpoint", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "load_checkpoint"));
    GANTRY_ASSIGN_OR_RETURN(std::string include, In(GetString(req.body, "include", "all"), "load_checkpoint"));
    if (include != "all" && include != "model") {
      return Status::InvalidArgument("load_checkpoint: include must be 'all' or 'model' (got '" + include + "')");
    }
    // `also`: training-state tensors wanted beside the model ones (a
    // server reading the drift profile without the optimizer state).
    std::vector<std::string> also;
    if (auto a = req.body.find("also"); a != req.body.end()) {
      if (!a->is_array()) return Status::InvalidArgument("load_checkpoint: also must be a list of tensor names");
      for (const json& n : *a) {
        if (!n.is_string()) return Status::InvalidArgument("load_checkpoint: also must be a list of tensor names");
        also.push_back(n.get<std::string>());
      }
    }
    GANTRY_ASSIGN_OR_RETURN(int64_t version, ResolveForLoad(registry, req.body, mr.first, mr.second));
    GANTRY_ASSIGN_OR_RETURN(LoadedVersion v, registry.Load(mr.first, version, include == "model", also));
    json out = v.manifest.ToJson();
    out["path"] = v.path;
    out["tensors"] = TensorsWithData(v);
    return out;
  });
  server.Handle("lineage", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(auto mr, GetModelRef(req.body, "lineage"));
    GANTRY_ASSIGN_OR_RETURN(LineageInfo lineage, registry.Lineage(mr.first, mr.second));
    return ToJson(lineage);
  });
  server.Handle("diff_versions", [&registry](const Request& req) -> Result<json> {
    auto side = [&](const char* key) -> Result<std::pair<std::string, std::string>> {
      auto it = req.body.find(key);
      if (it == req.body.end() || !it->is_object()) {
        return Status::InvalidArgument(std::string("diff_versions: field '") + key + "' must be a map {model, ref}");
      }
      return GetModelRef(*it, std::string("diff_versions: ") + key);
    };
    GANTRY_ASSIGN_OR_RETURN(auto a, side("a"));
    GANTRY_ASSIGN_OR_RETURN(auto b, side("b"));
    GANTRY_ASSIGN_OR_RETURN(DiffResult diff, registry.Diff(a.first, a.second, b.first, b.second));
    return ToJson(diff);
  });
  RegisterStorageAdminHandlers(server, registry, feed);
  RegisterInboxHandlers(server, registry, feed);
}

}  // namespace gantry::storage
