// The storage service's wire API: binds request types to a Registry.
//
//   save_checkpoint {model, job_id?, attempt?, step, epoch?, metrics?, meta?,
//                    tensors: [{name, dtype, shape, data: bin}]}
//                   -> {model, version, path, bytes}
//   list_versions   {model} -> {model, versions: [{version, job_id, attempt,
//                    step, epoch, metrics, bytes, path, created_at}]}
//   list_models     {} -> {models: [{name, versions, latest}]}
//   get_version     {model, version} -> manifest + {path}
//
// Ownership: the handlers keep a reference to `registry`, which must outlive
// the server. Thread safety: handlers run on the server's serve thread.
#pragma once

#include "common/rpc.h"
#include "storage/registry.h"

namespace gantry::storage {

// Largest request the storage service accepts by default; checkpoints travel
// in one message, so this bounds the biggest model that can be saved.
inline constexpr int64_t kDefaultMaxMessageMb = 512;

void RegisterStorageHandlers(RpcServer& server, Registry& registry);

}  // namespace gantry::storage
