// The storage service's wire API: binds request types to a Registry.
// docs/protocol.md ("Storage") has every body and reply; in short:
//
//   save_checkpoint  {model, step, tensors, job_id?, attempt?, epoch?, metrics?, meta?,
//                     parent_version?, parent_model?, data_fingerprint?,
//                     optimizer_state?, trainer_state?} -> {model, version, ...}
//   list_versions {model}      list_models {}      get_version {model, version | ref}
//   (every `ref` is "latest", "vN", "N", an alias, or an integer N)
//   show_version {model, ref}  load_checkpoint {model, ref?, version?, job_id?, include?}
//   lineage {model, ref}       diff_versions {a: {model, ref}, b: {model, ref}}
//   set_alias {model, alias, ref}    remove_alias {model, alias}
//   tag_version {model, ref, tag, protect?}   untag_version {model, ref, tag}
//   delete_version {model, ref, force?}
//   set_retention {model, keep_latest, keep_best?, metric?, mode?} | {model, keep_all: true}
//   get_retention {model}      gc {model?, dry_run?}      fsck {repair?}
//   export_version {model, ref, format: "torch", include?} -> {..., data: bin}
//   import_version {model, format: "torch", data: bin, step?, ...} -> as save_checkpoint
//
// Ownership: the handlers keep a reference to `registry`, which must outlive
// the server. Thread safety: handlers run on the server's serve thread,
// one at a time; that is what serialises concurrent savers.
#pragma once

#include <optional>
#include <string>

#include "common/rpc.h"
#include "storage/registry.h"
#include "storage/registry_feed.h"

namespace gantry::storage {

// Largest request the storage service accepts by default; checkpoints travel
// in one message, so this bounds the biggest model that can be saved.
inline constexpr int64_t kDefaultMaxMessageMb = 512;

// Registers every request type above. With a feed, registry changes are
// announced on it (registry_feed.h); the feed must outlive the server.
void RegisterStorageHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed = nullptr);
// The naming, retention, maintenance and interop half (storage_admin.cc);
// called by RegisterStorageHandlers.
void RegisterStorageAdminHandlers(RpcServer& server, Registry& registry, RegistryFeed* feed);

}  // namespace gantry::storage
