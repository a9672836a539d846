#include "storage/storage_service.h"

namespace gantry::storage {

void RegisterStorageHandlers(RpcServer& server, Registry& registry) {
  server.Handle("save_checkpoint", [&registry](const Request& req) -> Result<json> {
    GANTRY_ASSIGN_OR_RETURN(Checkpoint c, ParseCheckpoint(req.body));
    return registry.Save(c);
  });
  server.Handle("list_versions", [&registry](const Request& req) -> Result<json> {
    auto model = GetString(req.body, "model");
    if (!model.ok()) return model.status().WithContext("list_versions");
    return registry.ListVersions(*model);
  });
  server.Handle("list_models", [&registry](const Request&) -> Result<json> {
    return registry.ListModels();
  });
  server.Handle("get_version", [&registry](const Request& req) -> Result<json> {
    auto model = GetString(req.body, "model");
    if (!model.ok()) return model.status().WithContext("get_version");
    auto version = GetInt(req.body, "version");
    if (!version.ok()) return version.status().WithContext("get_version");
    if (*version < 1) {
      return Status::InvalidArgument("get_version: version must be >= 1 (got " +
                                     std::to_string(*version) + ")");
    }
    return registry.GetVersion(*model, *version);
  });
}

}  // namespace gantry::storage
