// RegistryFeed: the storage service's PUB socket announcing registry events,
// so that deployments (gantry-serve) follow an alias without polling.
//
// Each event is two frames: the topic "registry/<model>" (a subscriber
// filters by model with the prefix) and a MessagePack map
//   {v: 1, type, model, version, alias?, previous?, tags?}
// with type one of:
//   version_saved    a new version was committed (save_checkpoint,
//                    import_version); `version` is it
//   alias_moved      set_alias; `alias` now names `version`, `previous` is
//                    the version it named before (absent for a new alias)
//   alias_removed    remove_alias; `version` is the one it named
//   version_deleted  delete_version
// Events are published after the registry change is durable, in the order
// the (single-threaded) service applied them. PUB drops messages for a
// subscriber that is not connected yet or too slow (ZeroMQ's high-water
// mark), so a subscriber resolves its alias once after subscribing and then
// follows the feed (docs/protocol.md, "Storage feed").
//
// Thread safety: one thread (the storage service's serve thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/status.h"
#include "storage/registry_types.h"

namespace gantry::storage {

inline constexpr const char* kRegistryTopicPrefix = "registry/";

class RegistryFeed {
 public:
  explicit RegistryFeed(zmq::context_t& ctx);
  // Binds the PUB socket ("tcp://127.0.0.1:0" picks a free port); endpoint()
  // is the concrete address after. unavailable when it cannot bind.
  Status Bind(const std::string& address);
  const std::string& endpoint() const { return endpoint_; }

  void VersionSaved(const SaveResult& saved);
  void AliasMoved(const AliasChange& change);
  void AliasRemoved(const AliasChange& change);
  void VersionDeleted(const std::string& model, int64_t version);

 private:
  void Publish(const std::string& model, const json& event);

  zmq::socket_t pub_;
  std::string endpoint_;
};

}  // namespace gantry::storage
